//! API keys, stored by digest only.

use super::{Store, StoreError, classify, first_as, keys, s, to_item, update_held};
use crate::domain::MerchantId;
use crate::domain::apikey::{ApiKeyRecord, KeyStatus};
use crate::domain::ids::KeyId;
use jiff::Timestamp;

const ENTITY: &str = "api_key";

impl Store {
    /// Stores a new key record under its digest. Fails with `ConditionFailed` if the id exists.
    pub async fn put_api_key(
        &self,
        record: &ApiKeyRecord,
        hash_hex: &str,
    ) -> Result<(), StoreError> {
        let key = keys::api_key(&record.merchant_id, &record.key_id);
        let mut item = to_item(ENTITY, &key, record)?;
        let (gpk, gsk) = keys::api_key_lookup(hash_hex);
        item.insert(keys::GSI1PK.into(), s(gpk));
        item.insert(keys::GSI1SK.into(), s(gsk));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(|e| classify("PutItem api key", e))?;
        Ok(())
    }

    /// Finds the key with this digest, if any (revoked keys are returned with their status).
    pub async fn find_api_key(&self, hash_hex: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let (gpk, _) = keys::api_key_lookup(hash_hex);
        let out = self
            .table_query()
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_values(":pk", s(gpk))
            .limit(2)
            .send()
            .await
            .map_err(|e| classify("Query api key", e))?;
        first_as(ENTITY, out.items)
    }

    /// Revokes a key. Returns false if the merchant has no such key.
    pub async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key_id: &KeyId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = self
            .update_item(&keys::api_key(merchant, key_id))
            .update_expression("SET #status = :revoked, revoked_at = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoked", s("revoked"))
            .expression_attribute_values(":now", s(now.to_string()));
        update_held("UpdateItem revoke key", update).await
    }

    /// A merchant's keys (metadata only).
    pub async fn list_api_keys(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let query = self.prefix_query(&keys::api_keys(merchant));
        self.query_all_as("Query api keys", ENTITY, query).await
    }
}

impl ApiKeyRecord {
    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active
    }
}
