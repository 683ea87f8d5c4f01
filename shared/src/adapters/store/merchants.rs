//! Merchant profiles, and the directory every trigger finds its merchant in (cached).

use super::{Store, StoreError, keys, n, to_item};
use crate::cache::TtlCache;
use crate::domain::{Merchant, MerchantId};
use jiff::Timestamp;
use std::sync::Arc;

const ENTITY: &str = "merchant";

impl Store {
    /// Creates or replaces a merchant's profile.
    pub async fn put_merchant(
        &self,
        merchant: &Merchant,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut item = to_item(ENTITY, &keys::merchant(&merchant.id), merchant)?;
        item.insert("updated_at_ms".into(), n(now.as_millisecond()));
        if let Some(shop) = &merchant.connectors.shopify {
            let (gpk, gsk) = keys::shop_lookup(&shop.shop_domain);
            item.insert(keys::GSI1PK.into(), super::s(gpk));
            item.insert(keys::GSI1SK.into(), super::s(gsk));
        }
        self.put_item("PutItem merchant", item).await
    }

    /// The merchant whose connected Shopify store is `shop_domain` (one Query of gsi1).
    pub async fn merchant_of_shop(
        &self,
        shop_domain: &str,
    ) -> Result<Option<MerchantId>, StoreError> {
        let (gpk, _) = keys::shop_lookup(shop_domain);
        let out = self
            .table_query()
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_values(":pk", super::s(gpk))
            .limit(2)
            .send()
            .await
            .map_err(|e| super::classify("Query shop", e))?;
        let merchant: Option<Merchant> = super::first_as(ENTITY, out.items)?;
        Ok(merchant.map(|m| m.id))
    }

    pub async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        self.get_as("GetItem merchant", ENTITY, &keys::merchant(id))
            .await
    }
}

/// Merchants by id for every trigger that names its merchant (API key, webhook path, event detail,
/// due work): the store's profile, remembered by a warm instance for the cache's time-to-live.
pub struct Merchants {
    store: Store,
    cache: TtlCache<MerchantId, Arc<Merchant>>,
}

impl Merchants {
    pub fn new(store: Store, ttl: std::time::Duration) -> Self {
        Self {
            store,
            cache: TtlCache::new(ttl, 1024),
        }
    }
}

impl crate::ports::MerchantDirectory for Merchants {
    async fn merchant(&self, id: &MerchantId) -> Result<Option<Arc<Merchant>>, StoreError> {
        if let Some(m) = self.cache.get(id) {
            return Ok(Some(m));
        }
        let merchant = self.store.get_merchant(id).await?.map(Arc::new);
        if let Some(m) = &merchant {
            self.cache.insert(id.clone(), Arc::clone(m));
        }
        Ok(merchant)
    }
}
