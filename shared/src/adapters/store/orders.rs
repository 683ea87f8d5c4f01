//! Orders: the one-transaction write of an order with everything that belongs to it.

use super::claims::{ClaimGuard, Guarded, SendIdentity};
use super::write::{self, build_err, put, put_new};
use super::{Store, StoreError, classify, from_item, keys, n, s, to_item};
pub use crate::domain::order::{IdempotencyRecord, OrderRecord, OrderReplay, PlaceOutcome};
use crate::domain::{MerchantId, OrderId};
pub use crate::ports::NewOrder;
use aws_sdk_dynamodb::types::{Get, TransactGetItem, TransactWriteItem};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const ORDER: &str = "order";
const IDEMPOTENCY: &str = "idempotency";
/// How long the idempotency record of an order outlives it being placed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

impl Store {
    /// The order's writes, the thank-you email's claim last, and the guard of that claim (none
    /// for a customer without an address: nothing is claimed).
    fn order_transaction(
        &self,
        new: &NewOrder<'_>,
    ) -> Result<(Vec<TransactWriteItem>, Option<ClaimGuard>), StoreError> {
        let rec = new.record;
        let m = &rec.merchant_id;
        let order = &rec.order;
        let c = &order.customer;
        let now = new.now;
        let mut items = Vec::with_capacity(7);

        let idem = IdempotencyRecord {
            scope: ORDER.into(),
            key: order.id.to_string(),
            content_hash: rec.content_hash.clone(),
            created_at: now,
        };
        let mut idem_item = to_item(
            IDEMPOTENCY,
            &keys::idempotency(m, ORDER, order.id.as_str()),
            &idem,
        )?;
        idem_item.insert(
            keys::TTL.into(),
            n(keys::expires_at(now, IDEMPOTENCY_WINDOW)),
        );
        items.push(put_new(&self.table, idem_item)?);

        items.push(put_new(
            &self.table,
            to_item(ORDER, &keys::order(m, &order.id), rec)?,
        )?);

        // Customer profile: latest contact details win; first order date is kept; count grows.
        let mut set = vec![
            "#type = :ctype",
            "customer_id = :cid",
            "first_order_at = if_not_exists(first_order_at, :placed)",
            "last_order_at = :placed",
            "updated_at = :now",
        ];
        let profile_key = keys::customer(m, &c.id);
        let mut upd = self
            .tx_update(&profile_key)
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":ctype", s("customer"))
            .expression_attribute_values(":cid", s(c.id.as_str()))
            .expression_attribute_values(":placed", s(order.placed_at.to_string()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1));
        // The latest address wins; an order without one leaves the profile's as it was.
        if let Some(email) = &c.email {
            set.push("email = :email");
            upd = upd.expression_attribute_values(":email", s(email.as_str()));
        }
        for (attr, placeholder, value) in [
            ("first_name", ":fn", &c.first_name),
            ("last_name", ":ln", &c.last_name),
            ("locale", ":loc", &c.locale),
            ("time_zone", ":tz", &c.time_zone),
        ] {
            if let Some(v) = value {
                set.push(match attr {
                    "first_name" => "first_name = :fn",
                    "last_name" => "last_name = :ln",
                    "locale" => "locale = :loc",
                    _ => "time_zone = :tz",
                });
                upd = upd.expression_attribute_values(placeholder, s(v.as_str()));
            }
        }
        if let Some(owner) = new.referral_code {
            // Where the customer's erasure finds their code.
            set.push("referral_code = :rc");
            upd = upd.expression_attribute_values(":rc", s(owner.code.as_str()));
        }
        if let Some(at) = new.retention_due {
            // The retention sweep's entry moves out with every order (see `usecases::privacy`).
            let (due_pk, due_sk) = keys::due(super::privacy::RETENTION_GROUP, at, &profile_key);
            set.push("DUEPK = :dpk");
            set.push("DUESK = :dsk");
            upd = upd
                .expression_attribute_values(":dpk", s(due_pk))
                .expression_attribute_values(":dsk", s(due_sk));
        }
        items.push(write::update(upd.update_expression(format!(
            "SET {} ADD order_count :one",
            set.join(", ")
        )))?);

        // The address notes both ways (see `privacy.rs`).
        if let Some(email) = &c.email {
            for note in super::privacy::address_notes(m, &c.id, &email.normalized())? {
                items.push(put(&self.table, note, None)?);
            }
        }

        let spend = self
            .tx_update(&keys::customer_spend(m, &c.id, order.currency))
            .update_expression("SET #type = :t, currency = :cur ADD amount :amt, order_count :one")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s("customer_spend"))
            .expression_attribute_values(":cur", s(order.currency.code()))
            .expression_attribute_values(":amt", n(order.total))
            .expression_attribute_values(":one", n(1));
        items.push(write::update(spend)?);

        let index = CustomerOrderRef {
            order_id: order.id.clone(),
            placed_at: order.placed_at,
            total: order.total,
            currency: order.currency.code().to_owned(),
        };
        let index_key = keys::customer_order(m, &c.id, order.placed_at, &order.id);
        items.push(put(
            &self.table,
            to_item("customer_order", &index_key, &index)?,
            None,
        )?);

        if let Some(owner) = new.referral_code {
            items.push(self.referral_code_put(m, owner)?);
        }
        if let Some(entry) = new.ledger {
            items.push(self.ledger_put(m, &c.id, entry)?);
            items.push(self.ledger_credit(m, &c.id, entry.points, now)?);
        }
        if let Some(notice) = new.expiry {
            items.push(self.loyalty_notice_put(m, notice)?);
        }

        let Some((claim_id, claim)) = new.claim else {
            return Ok((items, None));
        };
        let (claim, guard) =
            self.guarded_claim(items.len(), claim_id, claim, new.send_expires_at)?;
        items.push(claim);
        Ok((items, Some(guard)))
    }

    /// The update that records on an order who referred it (with the referral).
    pub fn order_referred_by(
        &self,
        m: &MerchantId,
        o: &OrderId,
        referrer: &crate::domain::CustomerId,
    ) -> Result<TransactWriteItem, StoreError> {
        write::update(
            self.tx_update(&keys::order(m, o))
                .update_expression("SET referred_by = :r")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":r", s(referrer.as_str())),
        )
    }

    pub async fn get_order(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.get_as("GetItem order", ORDER, &keys::order(m, order_id))
            .await
    }
}

/// A customer's order index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerOrderRef {
    pub order_id: OrderId,
    pub placed_at: Timestamp,
    pub total: i64,
    pub currency: String,
}

impl crate::ports::OrderBook for Store {
    async fn loyalty(
        &self,
        m: &MerchantId,
        c: &crate::domain::CustomerId,
    ) -> Result<crate::domain::loyalty::LoyaltyState, StoreError> {
        Store::loyalty(self, m, c).await
    }

    /// Writes, in one `TransactWriteItems`: the idempotency record, the order, the customer profile
    /// upsert, the per-currency spend, the customer's order index entry, the pending loyalty
    /// earn and the thank-you email's claim. All or nothing.
    async fn place_order(&self, new: &NewOrder<'_>) -> Result<PlaceOutcome, StoreError> {
        const OPERATION: &str = "TransactWriteItems order";
        let (items, guard) = self.order_transaction(new)?;
        let Some(guard) = guard else {
            return Ok(match self.transact(OPERATION, items).await? {
                write::Attempt::Done => PlaceOutcome::Created { suppressed: false },
                write::Attempt::Cancelled(_) => PlaceOutcome::AlreadyExists,
            });
        };
        Ok(
            match self.transact_guarded(OPERATION, items, guard).await? {
                Guarded::Done => PlaceOutcome::Created { suppressed: false },
                Guarded::Suppressed => PlaceOutcome::Created { suppressed: true },
                Guarded::Cancelled(_) => PlaceOutcome::AlreadyExists,
            },
        )
    }

    /// Reads, consistently and in one call, what a replay of an order needs.
    async fn order_replay(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        send: &SendIdentity,
    ) -> Result<OrderReplay, StoreError> {
        let get = |key: keys::Key| -> Result<TransactGetItem, StoreError> {
            let get = Get::builder()
                .table_name(&self.table)
                .set_key(Some(key.to_map()))
                .build()
                .map_err(build_err("build Get"))?;
            Ok(TransactGetItem::builder().get(get).build())
        };
        let out = self
            .client
            .transact_get_items()
            .transact_items(get(keys::idempotency(m, ORDER, order_id.as_str()))?)
            .transact_items(get(keys::order(m, order_id))?)
            .transact_items(get(keys::send(send))?)
            .send()
            .await
            .map_err(|e| classify("TransactGetItems order replay", e))?;
        let mut responses = out
            .responses
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.item);
        let mut next = || responses.next().flatten();
        Ok(OrderReplay {
            idempotency: next().map(|i| from_item(IDEMPOTENCY, i)).transpose()?,
            order: next().map(|i| from_item(ORDER, i)).transpose()?,
            send: next().map(|i| from_item("send", i)).transpose()?,
        })
    }
}
