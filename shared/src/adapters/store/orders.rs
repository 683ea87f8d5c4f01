//! Orders: the one-transaction write of an order with everything that belongs to it.

use super::claims::{ClaimGuard, Guarded, SendIdentity, SendRecord, claim_item};
use super::{Item, Store, StoreError, classify, from_item, keys, n, s, to_item};
use crate::domain::loyalty::LedgerEntry;
use crate::domain::{MerchantId, Order, OrderId};
use aws_sdk_dynamodb::types::{Get, Put, TransactGetItem, TransactWriteItem, Update};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const ORDER: &str = "order";
const IDEMPOTENCY: &str = "idempotency";
/// How long the idempotency record of an order outlives it being placed.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub merchant_id: MerchantId,
    pub order: Order,
    pub content_hash: String,
    pub received_at: Timestamp,
    pub points_earned: u64,
    /// The loyalty tier the order was placed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The customer whose referral code the order carried (recorded with the referral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_by: Option<crate::domain::CustomerId>,
}

/// The idempotency record of an inbound event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub key: String,
    pub content_hash: String,
    pub created_at: Timestamp,
}

/// Everything written when an order is placed.
pub struct NewOrder<'a> {
    pub record: &'a OrderRecord,
    pub ledger: Option<&'a LedgerEntry>,
    /// The customer's points-expiry notice, rescheduled from this order.
    pub expiry: Option<&'a super::loyalty::LoyaltyNotice>,
    /// The customer's referral code (written with every order: it is deterministic).
    pub referral_code: Option<&'a super::loyalty::ReferralCodeOwner>,
    /// The thank-you email's claim and its key.
    pub claim: (&'a SendIdentity, &'a SendRecord),
    pub send_expires_at: i64,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceOutcome {
    /// Stored; `suppressed` when the thank-you email's recipient is suppressed (its record says so
    /// and it must not be sent).
    Created { suppressed: bool },
    /// The idempotency record or the order already exists: this is a replay or a race we lost.
    AlreadyExists,
}

/// What a replay needs to answer: the idempotency record, the order and the email's record.
#[derive(Debug, Clone, Default)]
pub struct OrderReplay {
    pub idempotency: Option<IdempotencyRecord>,
    pub order: Option<OrderRecord>,
    pub send: Option<SendRecord>,
}

fn put(item: Item, table: &str, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(|e| StoreError::Unexpected {
            operation: "build Put",
            source: Box::new(e),
        })?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl Store {
    /// Writes, in one `TransactWriteItems`: the idempotency record, the order, the customer profile
    /// upsert, the per-currency spend, the customer's order index entry, the pending loyalty
    /// earn and the thank-you email's claim. All or nothing.
    pub async fn place_order(&self, new: &NewOrder<'_>) -> Result<PlaceOutcome, StoreError> {
        let items = self.order_transaction(new)?;
        let (claim_id, claim) = new.claim;
        let claim_key = &keys::send(claim_id);
        // The claim is the transaction's last write (see `order_transaction`).
        let guard = ClaimGuard::for_claim(
            &self.table,
            items.len().saturating_sub(1),
            claim_key,
            claim,
            new.send_expires_at,
        )?;
        Ok(
            match self
                .transact_guarded("TransactWriteItems order", items, guard)
                .await?
            {
                Guarded::Done => PlaceOutcome::Created { suppressed: false },
                Guarded::Suppressed => PlaceOutcome::Created { suppressed: true },
                Guarded::Cancelled(_) => PlaceOutcome::AlreadyExists,
            },
        )
    }

    fn order_transaction(&self, new: &NewOrder<'_>) -> Result<Vec<TransactWriteItem>, StoreError> {
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
        items.push(put(
            idem_item,
            &self.table,
            Some("attribute_not_exists(PK)"),
        )?);

        items.push(put(
            to_item(ORDER, &keys::order(m, &order.id), rec)?,
            &self.table,
            Some("attribute_not_exists(PK)"),
        )?);

        // Customer profile: latest contact details win; first order date is kept; count grows.
        let mut set = vec![
            "#type = :ctype",
            "customer_id = :cid",
            "email = :email",
            "first_order_at = if_not_exists(first_order_at, :placed)",
            "last_order_at = :placed",
            "updated_at = :now",
        ];
        let mut upd = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::customer(m, &c.id).to_map()))
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":ctype", s("customer"))
            .expression_attribute_values(":cid", s(c.id.as_str()))
            .expression_attribute_values(":email", s(c.email.as_str()))
            .expression_attribute_values(":placed", s(order.placed_at.to_string()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1));
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
        let upd = upd
            .update_expression(format!("SET {} ADD order_count :one", set.join(", ")))
            .build()
            .map_err(|e| StoreError::Unexpected {
                operation: "build Update",
                source: Box::new(e),
            })?;
        items.push(TransactWriteItem::builder().update(upd).build());

        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(
                keys::customer_spend(m, &c.id, order.currency).to_map(),
            ))
            .update_expression("SET #type = :t, currency = :cur ADD amount :amt, order_count :one")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s("customer_spend"))
            .expression_attribute_values(":cur", s(order.currency.code()))
            .expression_attribute_values(":amt", n(order.total))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StoreError::Unexpected {
                operation: "build Update",
                source: Box::new(e),
            })?;
        items.push(TransactWriteItem::builder().update(spend).build());

        let index = CustomerOrderRef {
            order_id: order.id.clone(),
            placed_at: order.placed_at,
            total: order.total,
            currency: order.currency.code().to_owned(),
        };
        let index_key = keys::customer_order(m, &c.id, order.placed_at, &order.id);
        items.push(put(
            to_item("customer_order", &index_key, &index)?,
            &self.table,
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

        let (claim_id, claim) = new.claim;
        let claim_key = &keys::send(claim_id);
        items.push(put(
            claim_item(claim_key, claim, new.send_expires_at)?,
            &self.table,
            Some("attribute_not_exists(PK)"),
        )?);
        Ok(items)
    }

    /// Reads, consistently and in one call, what a replay of an order needs.
    pub async fn order_replay(
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
                .map_err(|e| StoreError::Unexpected {
                    operation: "build Get",
                    source: Box::new(e),
                })?;
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

    /// The update that records on an order who referred it (with the referral).
    pub fn order_referred_by(
        &self,
        m: &MerchantId,
        o: &OrderId,
        referrer: &crate::domain::CustomerId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(keys::order(m, o).to_map()))
            .update_expression("SET referred_by = :r")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":r", s(referrer.as_str()))
            .build()
            .map_err(|e| StoreError::Unexpected {
                operation: "build Update",
                source: Box::new(e),
            })?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub async fn get_order(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.get("GetItem order", &keys::order(m, order_id))
            .await?
            .map(|i| from_item(ORDER, i))
            .transpose()
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
