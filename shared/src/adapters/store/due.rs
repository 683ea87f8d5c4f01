//! The due index as the sweeps see it: typed due work ([`Due`]) read from the sparse, write-sharded
//! GSI, and the token that lets a sweep change an item only if it is still where it was seen.

use super::{Item, Store, StoreError, from_item, keys, s, update_held};
use crate::domain::MerchantId;
use crate::ports::{Due, DueGroup, DueToken, DueWork};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::de::DeserializeOwned;

impl DueToken {
    /// The key of the item the token names.
    pub(crate) fn key(&self) -> keys::Key {
        keys::Key {
            pk: self.pk.clone(),
            sk: self.sk.clone(),
        }
    }

    /// A token for the item at `key` seen at the due sort key `seen` (for the store's own
    /// read-then-move paths).
    pub(crate) fn at(key: &keys::Key, seen: &str) -> Self {
        Self {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            seen: seen.to_owned(),
        }
    }

    /// The merchant whose partition the item is in.
    pub(crate) fn merchant(&self) -> Option<MerchantId> {
        keys::merchant_of(&self.pk)
    }
}

impl Store {
    /// Items of `group` due at or before `now`, from the last `days` UTC days (today included),
    /// oldest due first, with the number of index items DynamoDB read for them (ScannedCount):
    /// the sweep's read cost, reported so it can be checked against the work done. Queries each
    /// shard of the group in the due index for that window; never scans.
    async fn due_items_counted(
        &self,
        group: &str,
        now: Timestamp,
        days: u32,
    ) -> Result<(Vec<(DueToken, Item)>, u64), StoreError> {
        let (from, until) = keys::due_window(now, days);
        let queries = keys::due_partitions(group)
            .into_iter()
            .map(|partition| {
                self.table_query()
                    .index_name(keys::DUE)
                    .key_condition_expression("DUEPK = :p AND DUESK BETWEEN :from AND :until")
                    .expression_attribute_values(":p", s(partition))
                    .expression_attribute_values(":from", s(&from))
                    .expression_attribute_values(":until", s(&until))
            })
            .collect();
        let pages = self.query_each("Query due", queries).await?;
        let scanned = pages.scanned;
        let mut out = Vec::new();
        for item in pages.items {
            let (
                Some(AttributeValue::S(pk)),
                Some(AttributeValue::S(sk)),
                Some(AttributeValue::S(seen)),
            ) = (
                item.get(keys::PK),
                item.get(keys::SK),
                item.get(keys::DUESK),
            )
            else {
                continue;
            };
            let token = DueToken {
                pk: pk.clone(),
                sk: sk.clone(),
                seen: seen.clone(),
            };
            out.push((token, item));
        }
        out.sort_by(|a, b| a.0.seen.cmp(&b.0.seen));
        Ok((out, scanned))
    }
}

impl Store {
    /// An UpdateItem of the item `due` names, conditioned on it still being where the sweep saw
    /// it (`DUESK = :seen`) and, if given, on `also`.
    pub(crate) fn update_seen(
        &self,
        due: &DueToken,
        also: Option<&str>,
    ) -> UpdateItemFluentBuilder {
        let condition = match also {
            Some(also) => format!("DUESK = :seen AND {also}"),
            None => "DUESK = :seen".to_owned(),
        };
        self.update_item(&due.key())
            .condition_expression(condition)
            .expression_attribute_values(":seen", s(&due.seen))
    }
}

impl DueWork for Store {
    async fn due<T: DeserializeOwned + Send>(
        &self,
        group: DueGroup,
        now: Timestamp,
        lookback_days: u32,
    ) -> Result<(Vec<Due<T>>, u64), StoreError> {
        let (items, read) = self
            .due_items_counted(group.as_str(), now, lookback_days)
            .await?;
        let due = items
            .into_iter()
            .filter_map(|(token, item)| {
                let Some(merchant) = token.merchant() else {
                    tracing::error!(key = %token, "due item outside any merchant partition; ignored");
                    return None;
                };
                Some(Due {
                    merchant,
                    entry: from_item(group.as_str(), item),
                    token,
                })
            })
            .collect();
        Ok((due, read))
    }

    async fn complete_due(
        &self,
        due: &DueToken,
        outcome: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = self
            .update_item(&due.key())
            .update_expression("REMOVE DUEPK, DUESK SET done_at = :now, outcome = :o")
            .condition_expression("attribute_exists(DUEPK)")
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":o", s(outcome));
        update_held("UpdateItem complete due", update).await
    }
}
