//! Merchant profiles.

use super::{Store, StoreError, classify, from_item, keys, n, to_item};
use crate::domain::{Merchant, MerchantId};
use jiff::Timestamp;

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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("PutItem merchant", e))?;
        Ok(())
    }

    pub async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        self.get("GetItem merchant", &keys::merchant(id))
            .await?
            .map(|item| from_item(ENTITY, item))
            .transpose()
    }
}
