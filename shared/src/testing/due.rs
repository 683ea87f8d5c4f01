//! The due index in memory: what is due by a time, per group, with the same token the store
//! hands out (so a sweep's conditional moves compare against what it saw).

use super::table::{MemTable, RowKey, Write};
use crate::adapters::store::keys;
use crate::domain::MerchantId;
use crate::ports::{Due, DueGroup, DueToken, DueWork, StoreError};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Mutex;

struct Entry {
    group: DueGroup,
    merchant: MerchantId,
    id: String,
    due_at: Timestamp,
    body: Value,
}

/// The due work read, and how many items that was.
fn with_count<T>(due: Vec<Due<T>>) -> (Vec<Due<T>>, u64) {
    let read = u64::try_from(due.len()).unwrap_or(u64::MAX);
    (due, read)
}

/// A due item's entry, or why it does not decode (a sweep skips it and carries on).
fn decode<T: DeserializeOwned>(item: Value) -> Result<T, StoreError> {
    serde_json::from_value(item).map_err(|e| StoreError::Unexpected {
        operation: "decode due item",
        source: Box::new(e),
    })
}

#[derive(Default)]
pub struct MemDue {
    entries: Mutex<Vec<Entry>>,
}

impl MemDue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `body` (the item's stored form) in `group`, due at `due_at`, as merchant `m`'s item
    /// `id`.
    pub fn add(
        &self,
        group: DueGroup,
        m: &MerchantId,
        id: &str,
        due_at: Timestamp,
        body: &impl Serialize,
    ) {
        let body = serde_json::to_value(body).unwrap_or(Value::Null);
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(Entry {
                group,
                merchant: m.clone(),
                id: id.to_owned(),
                due_at,
                body,
            });
        }
    }
}

impl DueWork for MemDue {
    async fn due<T: DeserializeOwned + Send>(
        &self,
        group: DueGroup,
        now: Timestamp,
        lookback_days: u32,
    ) -> Result<(Vec<Due<T>>, u64), StoreError> {
        let since = keys::due_since(now, lookback_days);
        let entries = self.entries.lock().map_err(|_| StoreError::Unexpected {
            operation: "Query due",
            source: "the in-memory index was poisoned".into(),
        })?;
        let due: Vec<Due<T>> = entries
            .iter()
            .filter(|e| e.group == group && e.due_at <= now && e.due_at >= since)
            .map(|e| {
                let pk = format!("M#{}", e.merchant);
                Due {
                    merchant: e.merchant.clone(),
                    token: DueToken {
                        seen: format!("{:013}#{pk}#{}", e.due_at.as_millisecond(), e.id),
                        pk,
                        sk: e.id.clone(),
                    },
                    entry: decode(e.body.clone()),
                }
            })
            .collect();
        Ok(with_count(due))
    }

    async fn complete_due(
        &self,
        due: &DueToken,
        _outcome: &str,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut entries = self.entries.lock().map_err(|_| StoreError::Unexpected {
            operation: "UpdateItem complete due",
            source: "the in-memory index was poisoned".into(),
        })?;
        let before = entries.len();
        entries.retain(|e| !(format!("M#{}", e.merchant) == due.pk && e.id == due.sk));
        Ok(entries.len() < before)
    }
}

/// The due index of the rows a table holds, as the store's sparse index reads it: the items whose
/// `DUEPK` is in the group's partitions of the last `lookback_days` UTC days and whose `DUESK` is
/// due by `now`, in due order, each with the token a conditional move compares against.
impl DueWork for MemTable {
    async fn due<T: DeserializeOwned + Send>(
        &self,
        group: DueGroup,
        now: Timestamp,
        lookback_days: u32,
    ) -> Result<(Vec<Due<T>>, u64), StoreError> {
        let partitions = keys::due_partitions(group.as_str());
        let (from, until) = keys::due_window(now, lookback_days);
        let mut due = Vec::new();
        for (key, item) in self.rows() {
            let (Some(pk), Some(seen)) = (item["DUEPK"].as_str(), item["DUESK"].as_str()) else {
                continue;
            };
            if !partitions.iter().any(|p| p == pk) || seen < from.as_str() || seen > until.as_str()
            {
                continue;
            }
            let Some(merchant) = keys::merchant_of(&key.pk) else {
                continue;
            };
            due.push(Due {
                merchant,
                token: DueToken {
                    pk: key.pk.clone(),
                    sk: key.sk.clone(),
                    seen: seen.to_owned(),
                },
                entry: decode(item.clone()),
            });
        }
        due.sort_by(|a, b| a.token.seen.cmp(&b.token.seen));
        Ok(with_count(due))
    }
    /// `REMOVE DUEPK, DUESK SET done_at, outcome` if the item is still in the index.
    async fn complete_due(
        &self,
        due: &DueToken,
        outcome: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let outcome = outcome.to_owned();
        self.write(Write::Update {
            key: RowKey {
                pk: due.pk.clone(),
                sk: due.sk.clone(),
            },
            condition: Box::new(|row| row.is_some_and(|r| r.get("DUEPK").is_some())),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                if let Some(map) = row.as_object_mut() {
                    map.remove("DUEPK");
                    map.remove("DUESK");
                }
                row["done_at"] = json!(now.to_string());
                row["outcome"] = json!(outcome);
                row
            }),
        })
    }
}
