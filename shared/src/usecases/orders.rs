//! Placing an order, whoever sends it (the merchant API, an EventBridge event, a shop platform's
//! webhook): validated at the edge into an [`OrderInput`], then this one path decides.
//!
//! 1. [`PlaceOrder::store`]: the loyalty earn (in the tier the customer orders in), the expiry
//!    notice, the thank-you email's identity and claim, and one all-or-nothing write of all of it.
//!    A replay of the same order (same id, same contents) finds what the first delivery stored; a
//!    different order under the same id is a [`PlaceError::Conflict`]; an order erased on request
//!    is never placed again ([`PlaceError::Erased`]).
//! 2. [`PlaceOrder::send`]: the thank-you email through the send protocol, once: sent now by the
//!    delivery that holds the claim, resumed by a redelivery after a retryable failure, settled on
//!    the record otherwise.
//!
//! 3. [`PlaceOrder::count_sold`]: the order's units join the merchant's units sold per SKU (a
//!    return rate's denominator), once whichever delivery gets there, after the email: nothing
//!    the customer sees waits on it, and a count that cannot finish asks for a redelivery.
//!
//! Between the first two, a caller records what is not part of the order's own write (a
//! referral).

use crate::domain::loyalty::{
    LedgerEntry, LoyaltyNotice, NoticeKind, ReferralCodeOwner, expires_at, expiry_notice_at,
    tier_status,
};
use crate::domain::order::{Order, OrderInput, OrderRecord, PlaceOutcome};
use crate::domain::send::{EmailKind, SendIdentity, SendRecord, SendStatus};
use crate::domain::{FieldError, Merchant};
use crate::ports::{Mailer, NewOrder, OrderBook, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, SendOutcome};
use jiff::Timestamp;

/// The email every placed order gets.
pub const THANK_YOU: EmailKind = EmailKind::OrderThanks;

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// An order with this id was placed before with other contents.
    #[error("an order with this id was already placed with different contents")]
    Conflict,
    /// The order was placed, then erased on request: it is not placed again.
    #[error("this order was erased and cannot be placed again")]
    Erased,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the order's write needs beyond the order: the time, the claim's lease and expiry, and how
/// to derive the customer's referral code (deterministic, written with every order; `None` when
/// the merchant runs no referral programme).
pub struct Placing<R> {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    pub send_expires_at: i64,
    pub referral_code: R,
}

/// An order stored now or found stored by a replay, and where its thank-you email stands.
#[derive(Debug)]
pub struct Stored {
    /// This delivery wrote the order (or holds the claim its lost-response write took).
    pub created: bool,
    pub record: OrderRecord,
    /// The thank-you email's identity.
    pub email: SendIdentity,
    pub referral_code: Option<ReferralCodeOwner>,
    pending: Pending,
    /// The first chunk of the order's units sold still to count, as far as this delivery knows
    /// (`None`: nothing to count).
    sold_from: Option<u32>,
}

/// What the thank-you email needs next.
#[derive(Debug)]
enum Pending {
    /// This delivery holds the claim: send.
    Send { claim_token: String },
    /// The recipient is suppressed; the record says so.
    Suppressed,
    /// Another delivery's record: carry on from it.
    Resume(Box<SendRecord>),
    /// No record any more: it outlived its retention, settled long ago.
    Settled,
    /// The customer gave no address: nothing to send, ever.
    Unaddressed,
}

pub struct PlaceOrder<'a, B, L, M> {
    pub book: &'a B,
    pub courier: Courier<'a, L, M>,
}

impl<B: OrderBook, L: SendLedger, M: Mailer> PlaceOrder<'_, B, L, M> {
    /// Validates and stores `input` for `merchant` (or finds it stored).
    pub async fn store<R>(
        &self,
        merchant: &Merchant,
        input: OrderInput,
        placing: Placing<R>,
    ) -> Result<Stored, PlaceError>
    where
        R: FnOnce(&Order) -> Option<ReferralCodeOwner>,
    {
        let order = input.validate()?;
        let referral_code = (placing.referral_code)(&order);
        tracing::Span::current().record("order_id", order.id.as_str());
        let now = placing.now;
        let settings = &merchant.settings.loyalty;
        // Tiers multiply the earn: the tier is the one the customer is in as they order (one read
        // of their ledger, only for programmes with tiers).
        let tier = match settings.enabled && !settings.tiers.is_empty() {
            true => {
                let state = self.book.loyalty(&merchant.id, &order.customer.id).await?;
                tier_status(&state.entries, settings, now, &merchant.zone()).and_then(|t| t.current)
            }
            false => None,
        };
        let ledger = LedgerEntry::earn_for_order(&order, settings, tier.as_ref(), now);
        let expiry = expires_at(order.placed_at, settings).map(|expires| LoyaltyNotice {
            customer_id: order.customer.id.clone(),
            kind: NoticeKind::ExpiryNotice,
            source: None,
            due_at: expiry_notice_at(expires),
        });
        let record = OrderRecord {
            merchant_id: merchant.id.clone(),
            points_earned: ledger
                .as_ref()
                .map(|l| u64::try_from(l.points).unwrap_or(0))
                .unwrap_or(0),
            tier: tier.map(|t| t.name),
            referred_by: None,
            content_hash: order.content_hash(),
            order,
            received_at: now,
        };
        let customer = &record.order.customer;
        let email = SendIdentity::new(
            &merchant.id,
            &customer.id,
            THANK_YOU,
            record.order.id.as_str(),
            0,
        );
        // An order without an address is stored with no claim: it is never mailed.
        let claim = customer
            .email
            .as_ref()
            .map(|to| email.claim(to.as_str(), now, placing.lease_until));
        let new = NewOrder {
            record: &record,
            ledger: ledger.as_ref(),
            expiry: expiry.as_ref(),
            referral_code: referral_code.as_ref(),
            claim: claim.as_ref().map(|c| (&email, c)),
            send_expires_at: placing.send_expires_at,
            retention_due: now
                .checked_add(merchant.settings.retention.customer_lifetime())
                .ok(),
            now,
        };
        // A new order's count of units sold starts at 0 (written with it); a replay carries on
        // from the mark it read.
        let fresh = record.order.units_sold().map(|_| 0);
        let (created, record, pending, sold_from) =
            match (self.book.place_order(&new).await?, claim) {
                (PlaceOutcome::Created { .. }, None) => (true, record, Pending::Unaddressed, fresh),
                (PlaceOutcome::Created { suppressed: true }, Some(_)) => {
                    (true, record, Pending::Suppressed, fresh)
                }
                (PlaceOutcome::Created { suppressed: false }, Some(claim)) => (
                    true,
                    record,
                    Pending::Send {
                        claim_token: claim.claim_token,
                    },
                    fresh,
                ),
                (PlaceOutcome::AlreadyExists, claim) => {
                    self.replayed(record, &email, claim).await?
                }
            };
        Ok(Stored {
            created,
            record,
            email,
            referral_code,
            pending,
            sold_from,
        })
    }

    /// A replay, or a race this delivery lost: what the earlier write stored decides.
    async fn replayed(
        &self,
        record: OrderRecord,
        email: &SendIdentity,
        claim: Option<SendRecord>,
    ) -> Result<(bool, OrderRecord, Pending, Option<u32>), PlaceError> {
        let replay = self
            .book
            .order_replay(&record.merchant_id, &record.order.id, email)
            .await?;
        // The idempotency record exists but the order does not: only possible if the order was
        // erased (its record is then the order id's tombstone, kept for good). Whatever the
        // payload, do not resurrect it.
        let Some(stored) = replay.order else {
            return match replay.idempotency {
                Some(_) => Err(PlaceError::Erased),
                // Neither is stored: what cancelled the write is not there (a conflict DynamoDB
                // reported as a failed condition, or items gone since). Decide again later.
                None => Err(PlaceError::Store(StoreError::Transient {
                    operation: "TransactWriteItems order",
                    source: "cancelled, yet neither the order nor its idempotency record is stored"
                        .into(),
                })),
            };
        };
        if stored.content_hash != record.content_hash {
            return Err(PlaceError::Conflict);
        }
        // How far the units sold are counted (none to count without a mark).
        let mark = replay.idempotency.and_then(|i| i.sold_chunks);
        let Some(claim) = claim else {
            return Ok((false, stored, Pending::Unaddressed, mark));
        };
        // Our own write may have landed with its response lost, the retry then meeting our
        // items: the claim token says whether this delivery holds the claim.
        Ok(match replay.send {
            Some(s) if s.claim_token == claim.claim_token && s.status == SendStatus::InProgress => {
                (
                    true,
                    stored,
                    Pending::Send {
                        claim_token: claim.claim_token,
                    },
                    mark,
                )
            }
            Some(theirs) => (false, stored, Pending::Resume(Box::new(theirs)), mark),
            None => (false, stored, Pending::Settled, mark),
        })
    }

    /// Adds `stored`'s units to the merchant's units sold, from the chunk this delivery found
    /// still to count. A count that cannot finish now (the store's retries spent) is an error
    /// for the caller to answer as "busy, deliver again": the order and its email are done, and
    /// the redelivery carries on from where the mark says the count stopped.
    pub async fn count_sold(&self, stored: &Stored) -> Result<(), PlaceError> {
        let order = &stored.record.order;
        let (Some(from), Some(sold)) = (stored.sold_from, order.units_sold()) else {
            return Ok(());
        };
        self.book
            .count_sold(&stored.record.merchant_id, &order.id, &sold, from)
            .await?;
        Ok(())
    }

    /// Sends (or resumes, or settles on) the thank-you email of `stored`; `compose` is called only
    /// if an email is to go now.
    pub async fn send<F>(
        &self,
        stored: &Stored,
        deadline: Deadline,
        compose: F,
    ) -> Result<SendOutcome, StoreError>
    where
        F: FnOnce() -> Option<M::Message>,
    {
        let courier = &self.courier;
        let id = &stored.email;
        let outcome = match &stored.pending {
            Pending::Suppressed => {
                tracing::info!("order stored; its thank-you email's recipient is suppressed");
                SendOutcome::Suppressed
            }
            Pending::Send { claim_token } => {
                tracing::info!(
                    points = stored.record.points_earned,
                    items = stored.record.order.items.len(),
                    "order stored"
                );
                courier
                    .send_composed(id, claim_token, compose(), deadline)
                    .await?
            }
            Pending::Resume(theirs) => courier.resume(id, theirs, deadline, compose).await?,
            Pending::Settled => SendOutcome::Settled(SendStatus::Sent),
            Pending::Unaddressed => {
                tracing::info!("order stored; it has no email address, so nothing is sent");
                SendOutcome::Unaddressed
            }
        };
        if !stored.created {
            tracing::info!(email = ?outcome, "order replayed");
        }
        Ok(outcome)
    }
}

/// Placing an order on the in-memory order book and send ledger: every decision and error path,
/// no network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::validation::from_value;
    use crate::testing::fixtures;
    use crate::testing::{MemOrderBook, ScriptedMailer};

    struct World {
        book: MemOrderBook,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        merchant: Merchant,
    }

    impl World {
        fn new() -> Self {
            Self {
                book: MemOrderBook::new(),
                mailer: ScriptedMailer::new(),
                clock: ManualClock::new("2026-11-20T09:31:00Z".parse().unwrap()),
                merchant: fixtures::merchant(),
            }
        }

        fn use_case(
            &self,
        ) -> PlaceOrder<'_, MemOrderBook, crate::testing::MemSendLedger, ScriptedMailer<String>>
        {
            PlaceOrder {
                book: &self.book,
                courier: fixtures::courier(&self.book.ledger, &self.mailer, &self.clock),
            }
        }

        async fn store(&self, order: serde_json::Value) -> Result<Stored, PlaceError> {
            let now = self.clock.now();
            self.use_case()
                .store(
                    &self.merchant,
                    from_value::<OrderInput>(order).unwrap(),
                    Placing {
                        now,
                        lease_until: now + jiff::SignedDuration::from_mins(1),
                        send_expires_at: 0,
                        referral_code: |_: &Order| None,
                    },
                )
                .await
        }

        /// Places `order` and sends its email, as a delivery of the trigger would.
        async fn place(
            &self,
            order: serde_json::Value,
        ) -> Result<(Stored, SendOutcome), PlaceError> {
            let stored = self.store(order).await?;
            let outcome = self
                .use_case()
                .send(&stored, fixtures::deadline(), || {
                    Some(stored.record.order.id.to_string())
                })
                .await?;
            self.use_case().count_sold(&stored).await?;
            Ok((stored, outcome))
        }

        fn customer(&self) -> crate::domain::CustomerId {
            fixtures::order().customer.id
        }
    }

    fn order() -> serde_json::Value {
        crate::domain::order::tests::sample()
    }

    #[tokio::test]
    async fn an_order_is_stored_with_its_points_and_thanked_once() {
        let w = World::new();
        let (stored, outcome) = w.place(order()).await.unwrap();
        assert!(stored.created);
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        assert!(stored.record.points_earned > 0);
        let id = &stored.record.order.id;
        assert_eq!(
            w.book.order(&w.merchant.id, id),
            Some(stored.record.clone())
        );
        assert_eq!(w.book.orders_counted(&w.merchant.id, &w.customer()), 1);
        let ledger = w.book.loyalty(&w.merchant.id, &w.customer()).await.unwrap();
        assert_eq!(ledger.entries.len(), 1);
        assert_eq!(w.mailer.accepted(), ["SO-1001"]);
    }

    #[tokio::test]
    async fn a_replay_changes_nothing_and_sends_nothing() {
        let w = World::new();
        w.place(order()).await.unwrap();
        let before = w.book.table().rows();
        let (again, outcome) = w.place(order()).await.unwrap();
        assert!(!again.created);
        assert_eq!(outcome, SendOutcome::Settled(SendStatus::Sent));
        assert_eq!(
            w.book.table().rows(),
            before,
            "no second write of points or counts"
        );
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn of_two_concurrent_deliveries_one_places_and_one_email_goes() {
        let w = World::new();
        let (a, b) = tokio::join!(w.place(order()), w.place(order()));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(u8::from(a.0.created) + u8::from(b.0.created), 1);
        assert_eq!(w.book.orders_counted(&w.merchant.id, &w.customer()), 1);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn another_order_under_the_same_id_is_a_conflict_and_writes_nothing() {
        let w = World::new();
        w.place(order()).await.unwrap();
        let before = w.book.table().rows();
        let mut other = order();
        other["shipping"] = 0.into();
        other["total"] = 20400.into();
        let err = w.place(other).await.unwrap_err();
        assert!(matches!(err, PlaceError::Conflict), "{err:?}");
        assert_eq!(w.book.table().rows(), before);
    }

    #[tokio::test]
    async fn an_erased_order_is_not_placed_again() {
        let w = World::new();
        let (stored, _) = w.place(order()).await.unwrap();
        w.book.erase_order(&w.merchant.id, &stored.record.order.id);
        let err = w.place(order()).await.unwrap_err();
        assert!(matches!(err, PlaceError::Erased), "{err:?}");
        assert_eq!(w.book.order(&w.merchant.id, &stored.record.order.id), None);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn an_erased_order_id_is_refused_whatever_the_payload() {
        let w = World::new();
        let (stored, _) = w.place(order()).await.unwrap();
        w.book.erase_order(&w.merchant.id, &stored.record.order.id);
        let mut changed = order();
        changed["customer"]["first_name"] = serde_json::json!("Someone else");
        let err = w.place(changed).await.unwrap_err();
        assert!(matches!(err, PlaceError::Erased), "{err:?}");
        assert_eq!(w.book.order(&w.merchant.id, &stored.record.order.id), None);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_suppressed_customers_order_is_stored_and_not_emailed() {
        let w = World::new();
        w.book.ledger.suppress(&w.merchant.id, "ann@example.com");
        let (stored, outcome) = w.place(order()).await.unwrap();
        assert!(stored.created);
        assert_eq!(outcome, SendOutcome::Suppressed);
        assert!(
            w.book
                .order(&w.merchant.id, &stored.record.order.id)
                .is_some()
        );
        assert_eq!(
            w.book.ledger.record(&stored.email).map(|r| r.status),
            Some(SendStatus::Suppressed)
        );
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn an_invalid_order_is_refused_naming_the_field_and_writes_nothing() {
        let w = World::new();
        let mut bad = order();
        bad["items"][0]["quantity"] = 0.into();
        let err = w.store(bad).await.unwrap_err();
        match err {
            PlaceError::Invalid(e) => assert_eq!(e.field, "items[0].quantity"),
            other => panic!("{other:?}"),
        }
        assert!(w.book.table().rows().is_empty());
    }

    /// An order of `skus` distinct SKUs, `quantity` of each.
    fn order_of(skus: usize, quantity: i64) -> serde_json::Value {
        let mut o = order();
        o["items"] = (0..skus)
            .map(|i| serde_json::json!({"sku": format!("SKU-{i:03}"), "name": "Part", "quantity": quantity, "unit_price": 100}))
            .collect();
        let subtotal = i64::try_from(skus).unwrap() * quantity * 100;
        o["discount"] = 0.into();
        o["total"] = (subtotal + 495).into();
        o
    }

    #[tokio::test]
    async fn an_order_counts_its_units_sold_once_however_often_and_concurrently_delivered() {
        let w = World::new();
        let (a, b) = tokio::join!(w.place(order()), w.place(order()));
        a.unwrap();
        b.unwrap();
        for _ in 0..3 {
            w.place(order()).await.unwrap();
        }
        let m = &w.merchant.id;
        assert_eq!(
            (
                w.book.units_sold(m, "TENT-2"),
                w.book.units_sold(m, "PEG-10")
            ),
            (1, 2)
        );
    }

    #[tokio::test]
    async fn an_order_of_more_skus_than_one_write_holds_counts_each_once() {
        let w = World::new();
        w.place(order_of(250, 2)).await.unwrap();
        w.place(order_of(250, 2)).await.unwrap();
        let m = &w.merchant.id;
        for sku in ["SKU-000", "SKU-098", "SKU-099", "SKU-249"] {
            assert_eq!(w.book.units_sold(m, sku), 2, "{sku}");
        }
        assert_eq!(w.book.units_sold(m, "SKU-250"), 0);
    }

    #[tokio::test]
    async fn a_count_cut_short_is_finished_by_the_redelivery_without_counting_twice() {
        use crate::adapters::store::keys;
        use crate::testing::table::{RowKey, Write, always};
        let w = World::new();
        let (stored, _) = w.place(order_of(250, 1)).await.unwrap();
        assert!(stored.created);
        let (m, o) = (w.merchant.id.clone(), stored.record.order.id.clone());
        let counted = |sku: &str| w.book.units_sold(&m, sku);
        assert_eq!((counted("SKU-000"), counted("SKU-249")), (1, 1));
        // Stage a delivery that stopped after its first chunk: the mark says one chunk, the
        // counters hold the first chunk only.
        for i in 99..250 {
            let sku = format!("SKU-{i:03}");
            w.book
                .table()
                .remove(&RowKey::from(&keys::sold(&m, &sku, "2026-11-20", &o)));
        }
        let mark = RowKey::from(&keys::idempotency(&m, "order", o.as_str()));
        let staged = w.book.table().write(Write::Update {
            key: mark,
            condition: always(),
            apply: Box::new(|row| {
                let mut row = row.unwrap();
                row["sold_chunks"] = 1.into();
                row
            }),
        });
        assert!(staged.unwrap());
        assert_eq!((counted("SKU-098"), counted("SKU-099")), (1, 0));
        let (again, _) = w.place(order_of(250, 1)).await.unwrap();
        assert!(!again.created);
        for sku in [
            "SKU-000", "SKU-098", "SKU-099", "SKU-197", "SKU-198", "SKU-249",
        ] {
            assert_eq!(counted(sku), 1, "{sku}");
        }
    }

    #[tokio::test]
    async fn a_count_that_cannot_be_written_asks_for_a_redelivery_which_finishes_it() {
        let w = World::new();
        let stored = w.store(order()).await.unwrap();
        let sent = w
            .use_case()
            .send(&stored, fixtures::deadline(), || Some("thanks".to_owned()))
            .await
            .unwrap();
        assert!(matches!(sent, SendOutcome::Sent { .. }), "{sent:?}");
        w.book
            .table()
            .fail_next_writes(1, "TransactWriteItems units sold");
        let err = w.use_case().count_sold(&stored).await.unwrap_err();
        assert!(
            matches!(err, PlaceError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        let m = &w.merchant.id;
        assert_eq!(w.book.units_sold(m, "TENT-2"), 0);
        let (again, outcome) = w.place(order()).await.unwrap();
        assert!(!again.created);
        assert_eq!(outcome, SendOutcome::Settled(SendStatus::Sent));
        assert_eq!(
            (
                w.book.units_sold(m, "TENT-2"),
                w.book.units_sold(m, "PEG-10")
            ),
            (1, 2)
        );
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_test_order_counts_nothing_sold() {
        let w = World::new();
        let mut o = order();
        o["test"] = true.into();
        w.place(o).await.unwrap();
        assert_eq!(w.book.units_sold(&w.merchant.id, "TENT-2"), 0);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_the_redelivery_places_it_once() {
        let w = World::new();
        w.book
            .table()
            .fail_next_writes(1, "TransactWriteItems order");
        let err = w.place(order()).await.unwrap_err();
        assert!(
            matches!(err, PlaceError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert!(w.book.table().rows().is_empty());
        let (stored, outcome) = w.place(order()).await.unwrap();
        assert!(stored.created);
        assert!(matches!(outcome, SendOutcome::Sent { .. }));
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn an_email_that_failed_retryably_is_finished_by_the_redelivery() {
        let w = World::new();
        let throttled = || crate::ports::SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        };
        let w = World {
            mailer: ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
            ..w
        };
        let (_, first) = w.place(order()).await.unwrap();
        assert!(first.wants_redelivery(), "{first:?}");
        let (again, second) = w.place(order()).await.unwrap();
        assert!(!again.created);
        assert!(matches!(second, SendOutcome::Sent { .. }), "{second:?}");
        assert_eq!(w.mailer.accepted().len(), 1);
    }
}
