//! The order book in memory: placing an order writes the same things the DynamoDB store writes, in
//! one all-or-nothing transaction with the same conditions (the idempotency record and the order
//! must not exist; the claim is guarded by the suppression check), over the send ledger's table.

use super::ledger::MemSendLedger;
use super::loyalty::{entry_put, ledger_state};
use super::table::{MemTable, RowKey, Write, absent, always, number, parse, row};
use crate::adapters::store::keys;
use crate::domain::loyalty::LoyaltyState;
use crate::domain::order::{IdempotencyRecord, OrderRecord, OrderReplay, PlaceOutcome};
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
}
