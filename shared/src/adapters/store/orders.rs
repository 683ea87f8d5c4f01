//! Orders: the one-transaction write of an order with everything that belongs to it.

use super::claims::{ClaimGuard, Guarded, SendIdentity};
use super::write::{self, build_err, put, put_new};
use super::{Store, StoreError, classify, from_item, keys, n, s, to_item};
use crate::domain::order::UnitsSold;
pub use crate::domain::order::{IdempotencyRecord, OrderRecord, OrderReplay, PlaceOutcome};
use crate::domain::{MerchantId, OrderId};
pub use crate::ports::NewOrder;
use aws_sdk_dynamodb::types::{Get, TransactGetItem, TransactWriteItem};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const ORDER: &str = "order";
const IDEMPOTENCY: &str = "idempotency";
/// Tries of one write of an order's units sold: fewer than an order's own write, since a count
/// that cannot be written now is finished by the order's redelivery.
const COUNT_ATTEMPTS: u32 = 3;
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
            sold_chunks: order.units_sold().map(|_| 0),
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

    /// The next chunk of `sold` still to count, as the order's mark says (`None`: nothing more
    /// to count, or no mark at all).
    async fn sold_chunks_done(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<u32>, StoreError> {
        let record: Option<IdempotencyRecord> = self
            .get_as(
                "GetItem order idempotency",
                IDEMPOTENCY,
                &keys::idempotency(m, ORDER, o.as_str()),
            )
            .await?;
        Ok(record.and_then(|r| r.sold_chunks))
    }

    /// Units of each of `skus` sold from `from` to `to` (UTC days, both included), every
    /// currency's orders together: one Query per SKU (at most [`super::PARALLEL_QUERIES`] at a
    /// time). A SKU nothing was counted for is left out.
    pub async fn units_sold(
        &self,
        m: &MerchantId,
        skus: &[&str],
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        let (from, to) = (
            keys::day_counters_from(&from.to_string()),
            keys::day_counters_to(&to.to_string()),
        );
        let queries: Vec<(String, _)> = skus
            .iter()
            .map(|sku| {
                let query = self
                    .table_query()
                    .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .projection_expression("units")
                    .expression_attribute_values(":pk", s(keys::sold_pk(m, sku)))
                    .expression_attribute_values(":from", s(&from))
                    .expression_attribute_values(":to", s(&to));
                ((*sku).to_owned(), query)
            })
            .collect();
        futures_util::stream::iter(queries)
            .map(|(sku, query)| self.units_of(sku, query))
            .buffer_unordered(super::PARALLEL_QUERIES)
            .try_filter(|(_, units)| std::future::ready(*units > 0))
            .try_collect()
            .await
    }

    /// The units the counters `query` reads add up to, for `sku`.
    async fn units_of(
        &self,
        sku: String,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<(String, u64), StoreError> {
        let pages = self
            .query_pages("Query units sold", query, usize::MAX)
            .await?;
        let units = pages
            .items
            .iter()
            .filter_map(|i| i.get("units")?.as_n().ok()?.parse::<u64>().ok())
            .sum();
        Ok((sku, units))
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

    /// Each chunk in one transaction: the order's mark moved from the chunk's number to the next
    /// (`sold_chunks = :done`) and the chunk's counters added to. A cancelled chunk was counted by
    /// another delivery (or there is no mark): the mark, read again, says where to go on.
    async fn count_sold(
        &self,
        m: &MerchantId,
        o: &OrderId,
        sold: &UnitsSold,
        from: u32,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "TransactWriteItems units sold";
        let chunks = sold.chunks();
        let day = sold.day.to_string();
        // Kept as long as the email counters, from the day they count.
        let day_start = sold
            .day
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(Timestamp::UNIX_EPOCH, |z| z.timestamp());
        let expires = n(keys::expires_at(day_start, super::stats::STATS_RETENTION));
        let mut next = from;
        // Every round counts a chunk or learns the mark moved on; the bound only stops a mark
        // that keeps changing under us (another delivery counting the same order) from looping.
        for _ in 0..2 * chunks + 2 {
            let Ok(i) = usize::try_from(next) else { break };
            if i >= chunks {
                return Ok(());
            }
            let mut items = vec![write::update(
                self.tx_update(&keys::idempotency(m, ORDER, o.as_str()))
                    .update_expression("SET sold_chunks = :next")
                    .condition_expression("sold_chunks = :done")
                    .expression_attribute_values(":done", n(next))
                    .expression_attribute_values(":next", n(next + 1)),
            )?];
            for (sku, units) in sold.chunk(i) {
                items.push(write::update(
                    self.tx_update(&keys::sold(m, sku, &day, o))
                        .update_expression(
                            "SET #type = :t, sku = :sku, #day = :day, expires_at = :exp ADD units :u",
                        )
                        .expression_attribute_names("#type", keys::TYPE)
                        .expression_attribute_names("#day", "day")
                        .expression_attribute_values(":t", s("units_sold"))
                        .expression_attribute_values(":sku", s(sku))
                        .expression_attribute_values(":day", s(&day))
                        .expression_attribute_values(":exp", expires.clone())
                        .expression_attribute_values(":u", n(*units)),
                )?);
            }
            match self
                .transact_within(OPERATION, items, COUNT_ATTEMPTS)
                .await?
            {
                write::Attempt::Done => next += 1,
                write::Attempt::Cancelled(_) => match self.sold_chunks_done(m, o).await? {
                    Some(done) => next = next.max(done),
                    None => return Ok(()),
                },
            }
        }
        Err(StoreError::Transient {
            operation: OPERATION,
            source: "the order's count of units sold kept moving; a redelivery finishes it".into(),
        })
    }
}
