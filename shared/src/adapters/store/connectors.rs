//! What the shop-platform connectors remember: the deliveries they already handled, by the
//! platform's own delivery id (`keys::delivery`). Shopify retries a delivery with the same id for up
//! to 4 hours and a WooCommerce admin may resend one from the webhook log, so the record lives a
//! week (TTL); it holds the topic and the time, nothing of the customer.

use super::{Store, StoreError, keys, n, s};
use crate::domain::MerchantId;
use jiff::Timestamp;
use std::time::Duration;

/// How long a handled delivery is remembered.
pub const DELIVERY_MEMORY: Duration = Duration::from_secs(7 * 86_400);

impl Store {
    /// Whether the platform's delivery `id` from `source` was handled already.
    pub async fn delivery_seen(
        &self,
        m: &MerchantId,
        source: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::delivery(m, source, id).to_map()))
            .consistent_read(true)
            .projection_expression("PK")
            .send()
            .await
            .map_err(|e| super::classify("GetItem delivery", e))?;
        Ok(out.item.is_some_and(|i| !i.is_empty()))
    }

    /// Records the delivery `id` from `source` as handled (after its work is done: a redelivery
    /// before this point does the work again, which every use-case takes as a replay).
    pub async fn mark_delivery(
        &self,
        m: &MerchantId,
        source: &str,
        id: &str,
        topic: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = keys::delivery(m, source, id);
        let mut item = key.to_map();
        item.insert(keys::TYPE.into(), s("delivery"));
        item.insert("topic".into(), s(topic));
        item.insert("handled_at".into(), s(now.to_string()));
        item.insert(keys::TTL.into(), n(keys::expires_at(now, DELIVERY_MEMORY)));
        self.put_item("PutItem delivery", item).await
    }
}
