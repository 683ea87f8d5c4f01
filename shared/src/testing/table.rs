//! A table of rows in memory with DynamoDB's write semantics: conditional puts, updates and checks,
//! and transactions that apply every write or none.

use crate::adapters::store::keys;
use crate::ports::StoreError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// A row that does not decode as the item it should be.
pub fn decode_err(e: serde_json::Error) -> StoreError {
    StoreError::Unexpected {
        operation: "decode item",
        source: Box::new(e),
    }
}

/// An item's row.
pub fn row(value: &impl serde::Serialize) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(decode_err)
}

/// The item a row holds.
pub fn decode<T: serde::de::DeserializeOwned>(row: Value) -> Result<T, StoreError> {
    serde_json::from_value(row).map_err(decode_err)
}

/// The item a row holds, if there is a row.
pub fn parse<T: serde::de::DeserializeOwned>(
    value: Option<Value>,
) -> Result<Option<T>, StoreError> {
    value.map(decode).transpose()
}

/// The row's number attribute `field`, zero where it has none (`if_not_exists(field, :zero)`).
pub fn number(row: Option<&Value>, field: &str) -> u64 {
    row.and_then(|r| r[field].as_u64()).unwrap_or(0)
}

/// A row's primary key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub pk: String,
    pub sk: String,
}

impl From<&keys::Key> for RowKey {
    fn from(k: &keys::Key) -> Self {
        Self {
            pk: k.pk.clone(),
            sk: k.sk.clone(),
        }
    }
}

/// A condition on a row as it is before the transaction (`None`: no such row).
pub type Condition = Box<dyn Fn(Option<&Value>) -> bool + Send + Sync>;

/// The condition that always holds.
pub fn always() -> Condition {
    Box::new(|_| true)
}

/// `attribute_not_exists(PK)`.
pub fn absent() -> Condition {
    Box::new(|row| row.is_none())
}

/// `attribute_exists(PK)`.
pub fn present() -> Condition {
    Box::new(|row| row.is_some())
}

/// One write of a transaction.
pub enum Write {
    /// Replaces the row with `row` if `condition` holds.
    Put {
        key: RowKey,
        row: Value,
        condition: Condition,
    },
    /// Replaces the row with `apply(current)` if `condition` holds.
    Update {
        key: RowKey,
        condition: Condition,
        apply: Box<dyn FnOnce(Option<Value>) -> Value + Send>,
    },
    /// Writes nothing; the transaction needs `condition` to hold.
    Check { key: RowKey, condition: Condition },
}

impl Write {
    fn key(&self) -> &RowKey {
        match self {
            Write::Put { key, .. } | Write::Update { key, .. } | Write::Check { key, .. } => key,
        }
    }

    fn condition(&self) -> &Condition {
        match self {
            Write::Put { condition, .. }
            | Write::Update { condition, .. }
            | Write::Check { condition, .. } => condition,
        }
    }
}

/// A transaction cancelled because conditions failed: for each write, in order, whether its
/// condition is what failed (DynamoDB's `ConditionalCheckFailed` among the cancellation reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled(pub Vec<bool>);

impl Cancelled {
    pub fn failed(&self, i: usize) -> bool {
        self.0.get(i).copied().unwrap_or(false)
    }
}

/// Rows by key, shared by clones (one table, many adapters).
#[derive(Clone, Default)]
pub struct MemTable {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    rows: BTreeMap<RowKey, Value>,
    /// Transient failures to answer the next writes with, as DynamoDB's throttling would.
    faults: VecDeque<&'static str>,
}

impl MemTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &RowKey) -> Option<Value> {
        self.lock().rows.get(key).cloned()
    }

    /// Deletes a row (an operator's action, outside any transaction).
    pub fn remove(&self, key: &RowKey) {
        self.lock().rows.remove(key);
    }

    /// Every row, in key order (for assertions).
    pub fn rows(&self) -> Vec<(RowKey, Value)> {
        self.lock()
            .rows
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The rows of partition `pk` whose sort key begins with `sk_prefix`, in key order (a Query
    /// with `begins_with(SK, :prefix)`).
    pub fn query(&self, pk: &str, sk_prefix: &str) -> Vec<(RowKey, Value)> {
        self.lock()
            .rows
            .iter()
            .filter(|(k, _)| k.pk == pk && k.sk.starts_with(sk_prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The rows `within` names, in key order (a Query).
    pub fn within(&self, within: &keys::Within) -> Vec<(RowKey, Value)> {
        self.query(&within.pk, &within.prefix)
    }

    /// The rows of the gsi1 `partitions` (the shards of one listing), each with its gsi1 sort
    /// key, in that key's order (a Query on the index per shard, merged).
    pub fn gsi1(&self, partitions: &[String]) -> Vec<(String, Value)> {
        let mut found: Vec<(String, Value)> = self
            .lock()
            .rows
            .values()
            .filter(|row| {
                row[keys::GSI1PK]
                    .as_str()
                    .is_some_and(|pk| partitions.iter().any(|p| p == pk))
            })
            .filter_map(|row| Some((row[keys::GSI1SK].as_str()?.to_owned(), row.clone())))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// The next `n` writes fail as throttled, writing nothing.
    pub fn fail_next_writes(&self, n: usize, operation: &'static str) {
        let mut inner = self.lock();
        inner.faults.extend(std::iter::repeat_n(operation, n));
    }

    /// Applies `writes` all together or not at all. Conditions are evaluated against the rows as
    /// they were before the transaction; two writes to one row are refused, as DynamoDB refuses
    /// them (`ValidationException`).
    pub fn transact(&self, writes: Vec<Write>) -> Result<Result<(), Cancelled>, StoreError> {
        let mut inner = self.lock();
        if let Some(operation) = inner.faults.pop_front() {
            return Err(StoreError::Transient {
                operation,
                source: "throttled (injected)".into(),
            });
        }
        let mut seen = BTreeSet::new();
        if !writes.iter().all(|w| seen.insert(w.key().clone())) {
            return Err(StoreError::Rejected {
                operation: "TransactWriteItems",
                source: "a transaction cannot include two operations on one item".into(),
            });
        }
        let failed: Vec<bool> = writes
            .iter()
            .map(|w| !(w.condition())(inner.rows.get(w.key())))
            .collect();
        if failed.iter().any(|f| *f) {
            return Ok(Err(Cancelled(failed)));
        }
        for write in writes {
            match write {
                Write::Put { key, row, .. } => {
                    inner.rows.insert(key, row);
                }
                Write::Update { key, apply, .. } => {
                    let current = inner.rows.remove(&key);
                    inner.rows.insert(key, apply(current));
                }
                Write::Check { .. } => {}
            }
        }
        Ok(Ok(()))
    }

    /// One conditional write on its own: true if it was applied.
    pub fn write(&self, write: Write) -> Result<bool, StoreError> {
        Ok(self.transact(vec![write])?.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(sk: &str) -> RowKey {
        RowKey {
            pk: "M#acme".into(),
            sk: sk.into(),
        }
    }

    fn put(sk: &str, condition: Condition) -> Write {
        Write::Put {
            key: key(sk),
            row: json!({"sk": sk}),
            condition,
        }
    }

    #[test]
    fn a_transaction_rolls_back_wholly_when_one_condition_fails() {
        let table = MemTable::new();
        table
            .write(put("SUPPRESS#a@example.com", always()))
            .unwrap();
        let before = table.rows();

        let outcome = table
            .transact(vec![
                put("ORDER#1", absent()),
                Write::Update {
                    key: key("CUSTOMER#c1"),
                    condition: always(),
                    apply: Box::new(|_| json!({"orders": 1})),
                },
                put("SEND#c1#order_thanks#1#0", absent()),
                Write::Check {
                    key: key("SUPPRESS#a@example.com"),
                    condition: absent(),
                },
            ])
            .unwrap();

        // Like DynamoDB: cancelled, the reason at the failing write's position, nothing written.
        assert_eq!(outcome, Err(Cancelled(vec![false, false, false, true])));
        assert_eq!(table.rows(), before);
    }

    #[test]
    fn conditions_see_the_rows_as_they_were_before_the_transaction() {
        let table = MemTable::new();
        let both_new = || vec![put("A", absent()), put("B", absent())];
        let outcome = table.transact(both_new()).unwrap();
        assert_eq!(outcome, Ok(()));
        assert_eq!(table.rows().len(), 2);
        // A replay of the same transaction fails on both items and changes nothing.
        let again = table.transact(both_new()).unwrap();
        assert_eq!(again, Err(Cancelled(vec![true, true])));
        assert_eq!(table.rows().len(), 2);
    }

    #[test]
    fn two_writes_to_one_item_are_refused_and_write_nothing() {
        let table = MemTable::new();
        let err = table
            .transact(vec![put("A", always()), put("A", always())])
            .unwrap_err();
        assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
        assert!(table.rows().is_empty());
    }

    #[test]
    fn an_injected_fault_fails_the_write_and_writes_nothing() {
        let table = MemTable::new();
        table.fail_next_writes(1, "PutItem");
        let err = table.write(put("A", always())).unwrap_err();
        assert!(err.is_transient());
        assert!(table.rows().is_empty());
        assert!(table.write(put("A", always())).unwrap());
    }
}
