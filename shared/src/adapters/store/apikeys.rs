//! API keys, stored by digest only.

use super::{Store, StoreError, classify, from_item, keys, s, to_item};
use crate::domain::MerchantId;
use crate::domain::apikey::{ApiKeyRecord, KeyStatus};
use crate::domain::ids::KeyId;
use aws_sdk_dynamodb::types::AttributeValue;
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
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_values(":pk", s(gpk))
            .limit(2)
            .send()
            .await
            .map_err(|e| classify("Query api key", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| from_item(ENTITY, item))
            .transpose()
    }

    /// Revokes a key. Returns false if the merchant has no such key.
    pub async fn revoke_api_key(
        &self,
        merchant: &MerchantId,
        key_id: &KeyId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::api_key(merchant, key_id).to_map()))
            .update_expression("SET #status = :revoked, revoked_at = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoked", s("revoked"))
            .expression_attribute_values(":now", s(now.to_string()))
            .send()
            .await;
        super::condition_held(result.map_err(|e| classify("UpdateItem revoke key", e)))
    }

    /// A merchant's keys (metadata only).
    pub async fn list_api_keys(
        &self,
        merchant: &MerchantId,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys_out = Vec::new();
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(keys::tenant(merchant)))
                .expression_attribute_values(":prefix", s(keys::API_KEY_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query api keys", e))?;
            for item in out.items.unwrap_or_default() {
                keys_out.push(from_item::<ApiKeyRecord>(ENTITY, item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(keys_out)
    }
}

impl ApiKeyRecord {
    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active
    }
}
