//! Returns in memory: the same items, keys and conditions as the DynamoDB store's
//! (`adapters::store::returns`), over the shipments' table (orders, shipment pointers and the
//! send ledger live there too). A write is one all-or-nothing transaction: the return (new, or
//! from the version read), the tally (from the version read, or new) and the guarded claim.

use super::shipments::MemShipments;
use super::table::{Condition, MemTable, RowKey, Write, absent, row};
use crate::adapters::store::keys;
use crate::domain::catalogue::Product;
use crate::domain::ids::ReturnId;
use crate::domain::order::OrderRecord;
use crate::domain::returns::{CreditFigures, ReturnRecord, ReturnTally};
use crate::domain::shipment::ShipmentPointer;
use crate::domain::{MerchantId, OrderId};
use crate::ports::returns::{
    OrderForReturn, ReturnBook, ReturnParcelPointer, ReturnWrite, Written,
};
use crate::ports::{DueGroup, StoreError};
use crate::testing::MemSendLedger;
use jiff::Timestamp;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemReturns {
    /// Orders and their shipments (and the send ledger) over the same table.
    pub shipments: MemShipments,
}

/// `version = :v` on the row as it is.
fn at_version(v: u32) -> Condition {
    Box::new(move |row: Option<&Value>| {
        row.is_some_and(|r| r["version"].as_u64() == Some(u64::from(v)))
    })
}

impl MemReturns {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        self.shipments.table()
    }

    pub fn ledger(&self) -> &MemSendLedger {
        &self.shipments.ledger
    }

    /// Stores a placed order.
    pub fn add_order(&self, record: &OrderRecord) {
        self.shipments.add_order(record);
    }

    /// Stores the pointer of a shipment of `o` delivered at `at` (if it was).
    pub fn add_shipment(
        &self,
        m: &MerchantId,
        o: &OrderId,
        pointer: &ShipmentPointer,
    ) -> Result<(), StoreError> {
        let key = keys::order_shipment(m, o, &pointer.shipment_id);
        self.table().write(Write::Put {
            key: RowKey::from(&key),
            row: row(pointer)?,
            condition: Box::new(|_| true),
        })?;
        Ok(())
    }

    /// Stores a product of the catalogue.
    pub fn add_product(&self, m: &MerchantId, product: &Product) -> Result<(), StoreError> {
        let key = keys::product(m, &product.sku);
        self.table().write(Write::Put {
            key: RowKey::from(&key),
            row: row(product)?,
            condition: Box::new(|_| true),
        })?;
        Ok(())
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &keys::Key,
    ) -> Result<Option<T>, StoreError> {
        super::table::parse(self.table().get(&RowKey::from(key)))
    }

    /// The return's row: the record, and its due-index keys while the reminder is pending.
    fn return_row(
        record: &ReturnRecord,
        reminder_at: Option<Timestamp>,
    ) -> Result<Value, StoreError> {
        let mut value = row(record)?;
        let key = keys::return_item(&record.merchant_id, &record.id);
        value[keys::GSI1PK] = json!(keys::returns_index(&record.merchant_id, &record.id));
        value[keys::GSI1SK] = json!(keys::time_sort_key(record.created_at, record.id.as_str()));
        if let Some(at) = reminder_at {
            let (pk, sk) = keys::due(DueGroup::ReturnReminders.as_str(), at, &key);
            value[keys::DUEPK] = json!(pk);
            value[keys::DUESK] = json!(sk);
        }
        Ok(value)
    }
}

impl ReturnBook for MemReturns {
    async fn order_for_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<OrderForReturn>, StoreError> {
        let Some(order) = self.get::<OrderRecord>(&keys::order(m, o))? else {
            return Ok(None);
        };
        let shipments = self
            .table()
            .within(&keys::order_shipments(m, o))
            .into_iter()
            .map(|(_, v)| super::table::decode(v))
            .collect::<Result<Vec<ShipmentPointer>, _>>()?;
        let tally = self.return_tally(m, o).await?.unwrap_or_default();
        Ok(Some(OrderForReturn {
            order,
            shipments,
            tally,
        }))
    }

    async fn return_tally(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<ReturnTally>, StoreError> {
        self.get(&keys::order_returns(m, o))
    }

    async fn return_record(
        &self,
        m: &MerchantId,
        r: &ReturnId,
    ) -> Result<Option<ReturnRecord>, StoreError> {
        self.get(&keys::return_item(m, r))
    }

    async fn returns_of(
        &self,
        m: &MerchantId,
        ids: &[ReturnId],
    ) -> Result<Vec<ReturnRecord>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.get::<ReturnRecord>(&keys::return_item(m, id))?);
        }
        Ok(out)
    }

    async fn write_return(&self, w: &ReturnWrite<'_>) -> Result<Written, StoreError> {
        let record = w.record;
        let m = &record.merchant_id;
        let return_key = RowKey::from(&keys::return_item(m, &record.id));
        let return_row = Self::return_row(record, w.reminder_at)?;
        let tally = match w.tally {
            Some(t) => Some((
                RowKey::from(&keys::order_returns(m, &record.order_id)),
                row(t)?,
                t.version.saturating_sub(1),
            )),
            None => None,
        };
        let pointer = match w.parcel_pointer {
            Some(number) => Some((
                RowKey::from(&keys::return_tracking(m, number, &record.id)),
                row(&ReturnParcelPointer {
                    return_id: record.id.clone(),
                    order_id: record.order_id.clone(),
                })?,
            )),
            None => None,
        };
        let before = w.before;
        let writes = |claim: Option<Write>| {
            let mut writes = vec![Write::Put {
                key: return_key.clone(),
                row: return_row.clone(),
                condition: match before {
                    None => absent(),
                    Some(v) => at_version(v),
                },
            }];
            if let Some((key, value)) = &pointer {
                writes.push(Write::Put {
                    key: key.clone(),
                    row: value.clone(),
                    condition: Box::new(|_| true),
                });
            }
            if let Some((key, value, before)) = &tally {
                writes.push(Write::Put {
                    key: key.clone(),
                    row: value.clone(),
                    condition: match before {
                        0 => absent(),
                        v => at_version(*v),
                    },
                });
            }
            writes.extend(claim);
            writes
        };
        let outcome = match w.claim {
            None => self
                .table()
                .transact(writes(None))?
                .map(|()| false)
                .map_err(|c| c.0),
            Some((id, claim)) => {
                let build = |suppressed| {
                    Ok(writes(Some(MemSendLedger::claim_write(
                        id, claim, suppressed,
                    )?)))
                };
                self.ledger()
                    .transact_guarded(id, &claim.recipient, build)?
                    .written()
                    .map_err(|c| c.0)
            }
        };
        Ok(match outcome {
            Ok(suppressed) => Written::Done { suppressed },
            Err(failed) if before.is_none() && failed.first().copied().unwrap_or(false) => {
                Written::Exists
            }
            Err(_) => Written::Moved,
        })
    }

    async fn returns_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ReturnRecord>, StoreError> {
        let (lo, hi) = (keys::time_sort_key(from, ""), keys::time_sort_key(to, ""));
        self.table()
            .gsi1(&keys::returns_partitions(m))
            .into_iter()
            .filter(|(sk, _)| *sk >= lo && *sk <= hi)
            .map(|(_, v)| super::table::decode(v))
            .collect()
    }

    async fn returns_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> Result<Vec<ReturnParcelPointer>, StoreError> {
        self.table()
            .within(&keys::return_trackings(m, number))
            .into_iter()
            .map(|(_, v)| super::table::decode(v))
            .collect()
    }

    async fn products_of(
        &self,
        m: &MerchantId,
        skus: &[String],
    ) -> Result<Vec<Product>, StoreError> {
        let mut out = Vec::new();
        for sku in skus {
            let Ok(sku) = crate::domain::catalogue::Sku::parse("sku", sku) else {
                continue;
            };
            out.extend(self.get::<Product>(&keys::product(m, &sku))?);
        }
        Ok(out)
    }
}

/// Store credit in memory, for the return use-case's fast tests: one balance per customer and
/// currency, each source given once (a replay answers the figures it gave).
#[derive(Default)]
pub struct MemCredit {
    given: std::sync::Mutex<std::collections::BTreeMap<String, CreditFigures>>,
    balances: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
}

impl MemCredit {
    pub fn new() -> Self {
        Self::default()
    }

    /// The customer's balance in `currency`.
    pub fn balance(&self, c: &crate::domain::CustomerId, currency: crate::domain::Currency) -> i64 {
        self.balances
            .lock()
            .map(|b| {
                b.get(&format!("{c}#{}", currency.code()))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }
}

impl crate::usecases::returns::IssueCredit for MemCredit {
    async fn issue_credit(
        &self,
        m: &MerchantId,
        c: &crate::domain::CustomerId,
        currency: crate::domain::Currency,
        amount: i64,
        bonus: i64,
        source: &str,
        _now: Timestamp,
    ) -> Result<CreditFigures, crate::usecases::returns::ReturnError> {
        let poisoned = || {
            crate::usecases::returns::ReturnError::Store(StoreError::Unexpected {
                operation: "issue credit",
                source: "the in-memory ledger was poisoned".into(),
            })
        };
        let mut given = self.given.lock().map_err(|_| poisoned())?;
        let key = format!("{m}#{c}#{source}");
        if let Some(figures) = given.get(&key) {
            return Ok(*figures);
        }
        let mut balances = self.balances.lock().map_err(|_| poisoned())?;
        let balance = balances
            .entry(format!("{c}#{}", currency.code()))
            .or_default();
        *balance += amount + bonus;
        let figures = CreditFigures {
            amount,
            bonus,
            balance: *balance,
        };
        given.insert(key, figures);
        Ok(figures)
    }
}
