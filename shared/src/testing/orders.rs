//! The order book in memory: placing an order writes the same things the DynamoDB store writes, in
//! one all-or-nothing transaction with the same conditions (the idempotency record and the order
//! must not exist; the claim is guarded by the suppression check), over the send ledger's table.

use super::ledger::MemSendLedger;
use super::loyalty::{entry_put, ledger_state};
use super::table::{MemTable, RowKey, Write, absent, always, number, parse, row};
use crate::adapters::store::keys;
use crate::domain::loyalty::LoyaltyState;
use crate::domain::order::{IdempotencyRecord, OrderRecord, OrderReplay, PlaceOutcome, UnitsSold};
use crate::domain::send::SendIdentity;
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::{NewOrder, OrderBook, SendLedger, StoreError};
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemOrderBook {
    /// The send ledger over the same table (its claims are the thank-you emails').
    pub ledger: MemSendLedger,
}

fn put(key: keys::Key, row: Value, only_new: bool) -> Write {
    Write::Put {
        key: RowKey::from(&key),
        row,
        condition: if only_new { absent() } else { always() },
    }
}

impl MemOrderBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        &self.ledger.table
    }

    /// The order as stored, if any.
    pub fn order(&self, m: &MerchantId, o: &OrderId) -> Option<OrderRecord> {
        parse(self.table().get(&RowKey::from(&keys::order(m, o))))
            .ok()
            .flatten()
    }

    /// Orders the customer's profile counts.
    pub fn orders_counted(&self, m: &MerchantId, c: &CustomerId) -> u64 {
        self.table()
            .get(&RowKey::from(&keys::customer(m, c)))
            .and_then(|r| r["orders"].as_u64())
            .unwrap_or(0)
    }

    /// Units of `sku` counted sold, every day and shard together.
    pub fn units_sold(&self, m: &MerchantId, sku: &str) -> u64 {
        self.table()
            .query(&keys::sold_pk(m, sku), "")
            .iter()
            .map(|(_, row)| number(Some(row), "units"))
            .sum()
    }

    /// Deletes the order (an erasure), leaving its idempotency record.
    pub fn erase_order(&self, m: &MerchantId, o: &OrderId) {
        self.table().remove(&RowKey::from(&keys::order(m, o)));
    }

    fn writes(&self, new: &NewOrder<'_>, suppressed: bool) -> Result<Vec<Write>, StoreError> {
        let rec = new.record;
        let (m, order) = (&rec.merchant_id, &rec.order);
        let c = &order.customer;
        let idempotency = IdempotencyRecord {
            scope: "order".into(),
            key: order.id.to_string(),
            content_hash: rec.content_hash.clone(),
            created_at: new.now,
            sold_chunks: order.units_sold().map(|_| 0),
        };
        let mut writes = vec![
            put(
                keys::idempotency(m, "order", order.id.as_str()),
                row(&idempotency)?,
                true,
            ),
            put(keys::order(m, &order.id), row(rec)?, true),
            Write::Update {
                key: RowKey::from(&keys::customer(m, &c.id)),
                condition: always(),
                apply: Box::new(
                    |current| json!({ "orders": number(current.as_ref(), "orders") + 1 }),
                ),
            },
        ];
        if let Some(owner) = new.referral_code {
            writes.push(put(keys::referral_code(m, &owner.code), row(owner)?, false));
        }
        if let Some(entry) = new.ledger {
            writes.push(entry_put(m, &c.id, entry)?);
        }
        if let Some(notice) = new.expiry {
            writes.push(put(notice.key(m), row(notice)?, false));
        }
        if let Some((id, claim)) = new.claim {
            writes.push(MemSendLedger::claim_write(id, claim, suppressed)?);
        }
        Ok(writes)
    }
}

impl OrderBook for MemOrderBook {
    async fn loyalty(&self, m: &MerchantId, c: &CustomerId) -> Result<LoyaltyState, StoreError> {
        ledger_state(self.table(), m, c)
    }

    async fn place_order(&self, new: &NewOrder<'_>) -> Result<PlaceOutcome, StoreError> {
        let Some((id, claim)) = new.claim else {
            return Ok(match self.table().transact(self.writes(new, false)?)? {
                Ok(()) => PlaceOutcome::Created { suppressed: false },
                Err(_) => PlaceOutcome::AlreadyExists,
            });
        };
        let build = |suppressed| self.writes(new, suppressed);
        let guarded = self.ledger.transact_guarded(id, &claim.recipient, build)?;
        Ok(match guarded.written() {
            Ok(suppressed) => PlaceOutcome::Created { suppressed },
            Err(_) => PlaceOutcome::AlreadyExists,
        })
    }

    async fn order_replay(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        send: &SendIdentity,
    ) -> Result<OrderReplay, StoreError> {
        let idempotency = self.table().get(&RowKey::from(&keys::idempotency(
            m,
            "order",
            order_id.as_str(),
        )));
        Ok(OrderReplay {
            idempotency: parse(idempotency)?,
            order: parse(self.table().get(&RowKey::from(&keys::order(m, order_id))))?,
            send: self.ledger.get_send(send).await?,
        })
    }

    /// The store's chunk by chunk count: each chunk one transaction, the mark on the
    /// idempotency record moved on only from the chunk's own number.
    async fn count_sold(
        &self,
        m: &MerchantId,
        o: &OrderId,
        sold: &UnitsSold,
        from: u32,
    ) -> Result<(), StoreError> {
        let mark = RowKey::from(&keys::idempotency(m, "order", o.as_str()));
        let day = sold.day.to_string();
        let mut next = u64::from(from);
        for _ in 0..2 * sold.chunks() + 2 {
            let Ok(i) = usize::try_from(next) else { break };
            if i >= sold.chunks() {
                return Ok(());
            }
            let done = next;
            let mut writes = vec![Write::Update {
                key: mark.clone(),
                condition: Box::new(move |row| {
                    row.and_then(|r| r["sold_chunks"].as_u64()) == Some(done)
                }),
                apply: Box::new(move |row| {
                    let mut row = row.unwrap_or_else(|| json!({}));
                    row["sold_chunks"] = json!(done + 1);
                    row
                }),
            }];
            for (sku, units) in sold.chunk(i) {
                let units = *units;
                writes.push(Write::Update {
                    key: RowKey::from(&keys::sold(m, sku, &day, o)),
                    condition: always(),
                    apply: Box::new(
                        move |row| json!({ "units": number(row.as_ref(), "units") + units }),
                    ),
                });
            }
            match self.table().transact(writes)? {
                Ok(()) => next += 1,
                Err(_) => match self
                    .table()
                    .get(&mark)
                    .and_then(|r| r["sold_chunks"].as_u64())
                {
                    Some(done) => next = next.max(done),
                    None => return Ok(()),
                },
            }
        }
        Err(StoreError::Transient {
            operation: "count units sold",
            source: "the order's count kept moving".into(),
        })
    }
}
