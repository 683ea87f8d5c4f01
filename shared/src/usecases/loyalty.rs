//! A customer's loyalty points, whoever asks: where they stand ([`Loyalty::standing`]), a
//! redemption or a merchant's adjustment ([`Loyalty::post`]) and the referral an order's code
//! makes ([`Loyalty::record_referral`]).
//!
//! Every posting is decided on the ledger as read and committed only if the ledger is still at
//! the version read (the port's condition), so two redemptions racing for the same points cannot
//! both spend them: the loser reads again and decides again on what the winner left. A request is
//! keyed by its idempotency key (the entry's source): a replay finds its entry and answers the
//! same, moving nothing; the same key with other points is a conflict.

use crate::domain::loyalty::{
    Balance, LEDGER_ATTEMPTS, LedgerEntry, LedgerError, LoyaltyNotice, LoyaltyState, NoticeKind,
    Posting, Referee, Referral, ReferralRefusal, TierStatus, adjust, balance,
    normalize_referral_code, redeem, referral_reward, tier_status,
};
use crate::domain::{CustomerId, FieldError, Merchant, MerchantId, Order};
use crate::ports::StoreError;
use crate::ports::loyalty::LoyaltyLedger;
use jiff::Timestamp;

/// The most points one redemption or adjustment moves.
pub const MAX_POINTS: i64 = 10_000_000;
/// The longest reason an adjustment may give.
const MAX_REASON: usize = 200;

/// Why a loyalty request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    /// The request's points or reason are out of bounds (the field is named).
    #[error(transparent)]
    Invalid(FieldError),
    #[error("the customer was not found")]
    UnknownCustomer,
    /// The idempotency key was used before with other points.
    #[error("this Idempotency-Key was used with different points")]
    KeyReused,
    #[error("points must be a positive whole number")]
    NotPositive,
    #[error("only {available} points are available")]
    Insufficient { available: i64 },
    /// The customer's ledger kept changing under the request: retry it as is.
    #[error("the customer's ledger is busy; retry with the same Idempotency-Key")]
    Busy,
    /// The referrer's ledger kept changing under the referral: retry the order.
    #[error("the referrer's loyalty ledger is busy; retry the order to finish")]
    ReferrerBusy,
    /// The order was not stored when its referral was recorded (erased meanwhile).
    #[error("the order changed while its referral was recorded; retry the order to finish")]
    OrderChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What moves a customer's points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointsKind {
    /// The customer spends available points.
    Redemption,
    /// The merchant credits (positive) or debits (negative) points, with a reason.
    Adjustment,
}

/// A request to move a customer's points, keyed by the caller's idempotency key.
#[derive(Debug, Clone)]
pub struct PointsRequest {
    pub kind: PointsKind,
    pub key: String,
    pub points: i64,
    /// An adjustment's reason (ignored for a redemption).
    pub reason: Option<String>,
}

impl PointsRequest {
    /// The points and the adjustment's reason within bounds, or the field that is not.
    fn reason(&self) -> Result<Option<String>, FieldError> {
        let redeeming = self.kind == PointsKind::Redemption;
        if self.points == 0
            || self.points.unsigned_abs() > MAX_POINTS.unsigned_abs()
            || (redeeming && self.points < 0)
        {
            return Err(FieldError::new(
                "points",
                "out_of_range",
                if redeeming {
                    "points must be 1 to 10,000,000"
                } else {
                    "points must be non-zero and at most 10,000,000 either way"
                },
            ));
        }
        if redeeming {
            return Ok(None);
        }
        match self.reason.as_deref().map(str::trim) {
            Some(r)
                if !r.is_empty() && r.len() <= MAX_REASON && !r.chars().any(char::is_control) =>
            {
                Ok(Some(r.to_owned()))
            }
            _ => Err(FieldError::new(
                "reason",
                "required",
                "an adjustment needs a reason (1 to 200 characters, one line)",
            )),
        }
    }

    /// The ledger source the request's entry is stored under.
    fn source(&self) -> String {
        match self.kind {
            PointsKind::Redemption => format!("redeem:{}", self.key),
            PointsKind::Adjustment => format!("adjust:{}", self.key),
        }
    }

    /// The points the request's entry carries on the ledger.
    fn signed_points(&self) -> i64 {
        match self.kind {
            PointsKind::Redemption => -self.points,
            PointsKind::Adjustment => self.points,
        }
    }
}

/// A posted entry and the balance with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub entry: LedgerEntry,
    pub balance: Balance,
    /// A replay of an earlier request: its entry, nothing moved now.
    pub replayed: bool,
}

/// Where a customer stands.
#[derive(Debug, Clone)]
pub struct Standing {
    /// Their ledger, oldest first.
    pub entries: Vec<LedgerEntry>,
    pub balance: Balance,
    /// Their tier this year (`None` when the programme has no tiers).
    pub tier: Option<TierStatus>,
}

/// What an order's referral code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referred {
    /// The code's owner earns `reward_points`, pending until the order's return window closes.
    Recorded {
        code: String,
        reward_points: i64,
    },
    Refused {
        code: String,
        why: ReferralRefusal,
    },
}

pub struct Loyalty<'a, L> {
    pub ledger: &'a L,
}

impl<L: LoyaltyLedger> Loyalty<'_, L> {
    /// The customer's balance and tier at `now` (unknown: no ledger and no profile).
    pub async fn standing(
        &self,
        merchant: &Merchant,
        c: &CustomerId,
        now: Timestamp,
    ) -> Result<Standing, LoyaltyError> {
        let state = self.ledger.ledger(&merchant.id, c).await?;
        if state.entries.is_empty() && !self.ledger.has_customer(&merchant.id, c).await? {
            return Err(LoyaltyError::UnknownCustomer);
        }
        let tier = tier_status(
            &state.entries,
            &merchant.settings.loyalty,
            now,
            &merchant.zone(),
        );
        Ok(Standing {
            balance: balance(&state.entries, now),
            entries: state.entries,
            tier,
        })
    }

    /// Posts a redemption or an adjustment once per idempotency key: decided on the ledger as
    /// read, committed only on that same ledger, decided again after a lost race.
    pub async fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        request: &PointsRequest,
        now: Timestamp,
    ) -> Result<Moved, LoyaltyError> {
        let reason = request.reason().map_err(LoyaltyError::Invalid)?;
        if !self.ledger.has_customer(m, c).await? {
            return Err(LoyaltyError::UnknownCustomer);
        }
        let source = request.source();
        let decide = |entries: &[LedgerEntry]| match &reason {
            None => redeem(entries, now, request.points, &request.key),
            Some(r) => adjust(entries, now, request.points, r, &request.key),
        };
        for attempt in 1..=LEDGER_ATTEMPTS {
            let state = self.ledger.ledger(m, c).await?;
            if let Some(replayed) = replay(&state, request, &source, now) {
                return replayed;
            }
            let entry = decide(&state.entries).map_err(|e| match e {
                LedgerError::NotPositive => LoyaltyError::NotPositive,
                LedgerError::Insufficient { .. } => LoyaltyError::Insufficient {
                    available: balance(&state.entries, now).available,
                },
            })?;
            match self.ledger.post(m, c, &state, &entry, now, None).await? {
                Posting::Done(balance) => {
                    tracing::info!(
                        kind = entry.kind.as_str(),
                        points = entry.points,
                        "ledger entry posted"
                    );
                    return Ok(Moved {
                        entry,
                        balance,
                        replayed: false,
                    });
                }
                // A concurrent delivery of the same request got there first: answer as its replay.
                Posting::Duplicate => {
                    let state = self.ledger.ledger(m, c).await?;
                    return replay(&state, request, &source, now)
                        .unwrap_or(Err(LoyaltyError::Busy));
                }
                Posting::Stale => tokio::time::sleep(crate::retry::backoff(attempt)).await,
                Posting::AlreadyReferred | Posting::OrderGone => return Err(LoyaltyError::Busy),
            }
        }
        Err(LoyaltyError::Busy)
    }

    /// Records the referral `typed` (the order's referral code, as the customer typed it) makes:
    /// the code's owner earns the programme's reward once per referred email address. A replay of
    /// the order answers the same and writes nothing.
    pub async fn record_referral(
        &self,
        merchant: &Merchant,
        order: &Order,
        typed: &str,
        now: Timestamp,
    ) -> Result<Referred, LoyaltyError> {
        let refused = |code: &str, why| Referred::Refused {
            code: code.to_owned(),
            why,
        };
        let Some(code) = normalize_referral_code(typed) else {
            return Ok(refused(typed, ReferralRefusal::UnknownCode));
        };
        let Some(reward) = referral_reward(order, &merchant.settings.loyalty, now) else {
            return Ok(refused(&code, ReferralRefusal::ProgrammeOff));
        };
        let m = &merchant.id;
        let Some(owner) = self.ledger.referral_code_owner(m, &code).await? else {
            return Ok(refused(&code, ReferralRefusal::UnknownCode));
        };
        let Some(email) = order.customer.email.as_ref() else {
            return Ok(refused(&code, ReferralRefusal::NoAddress));
        };
        let email = email.as_str().to_ascii_lowercase();
        if owner.customer_id == order.customer.id || owner.email == email {
            return Ok(refused(&code, ReferralRefusal::SelfReferral));
        }
        let referrer = &owner.customer_id;
        let referral = Referral {
            referee: Referee {
                email,
                order_id: order.id.to_string(),
                referrer: referrer.clone(),
                created_at: now,
            },
            notice: LoyaltyNotice {
                customer_id: referrer.clone(),
                kind: NoticeKind::ReferralReward,
                source: Some(reward.source.clone()),
                due_at: reward.available_at.unwrap_or(now),
            },
            order: order.id.clone(),
        };
        let recorded = Referred::Recorded {
            code: code.clone(),
            reward_points: reward.points,
        };
        for attempt in 1..=LEDGER_ATTEMPTS {
            let state = self.ledger.ledger(m, referrer).await?;
            if state.entry(&reward.source).is_some() {
                return Ok(recorded);
            }
            match self
                .ledger
                .post(m, referrer, &state, &reward, now, Some(&referral))
                .await?
            {
                Posting::Done(_) => {
                    tracing::info!(%referrer, points = reward.points, "referral recorded");
                    return Ok(recorded);
                }
                Posting::Duplicate => return Ok(recorded),
                Posting::AlreadyReferred => {
                    return Ok(refused(&code, ReferralRefusal::AlreadyReferred));
                }
                Posting::OrderGone => return Err(LoyaltyError::OrderChanged),
                Posting::Stale => tokio::time::sleep(crate::retry::backoff(attempt)).await,
            }
        }
        Err(LoyaltyError::ReferrerBusy)
    }
}

/// The answer to a replay of `request`, if its entry is on the ledger: the same entry with the
/// balance now, or a conflict if the key was used with other points.
fn replay(
    state: &LoyaltyState,
    request: &PointsRequest,
    source: &str,
    now: Timestamp,
) -> Option<Result<Moved, LoyaltyError>> {
    let stored = state.entry(source)?;
    Some(if stored.points == request.signed_points() {
        Ok(Moved {
            entry: stored.clone(),
            balance: balance(&state.entries, now),
            replayed: true,
        })
    } else {
        Err(LoyaltyError::KeyReused)
    })
}

/// Points and referrals on the in-memory ledgers: every decision and error path, no network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::loyalty::{LedgerKind, ReferralCodeOwner, referral_code};
    use crate::http::ApiError;
    use crate::testing::fixtures;
    use crate::testing::loyalty::MemLoyalty;
    use jiff::SignedDuration;

    struct World {
        ledger: MemLoyalty,
        merchant: Merchant,
        customer: CustomerId,
        now: Timestamp,
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    impl World {
        fn new() -> Self {
            let w = Self {
                ledger: MemLoyalty::new(),
                merchant: fixtures::merchant(),
                customer: CustomerId::parse("customerId", "cus_1").unwrap(),
                now: "2026-11-20T09:31:00Z".parse().unwrap(),
            };
            w.ledger.add_customer(&w.merchant.id, &w.customer).unwrap();
            w
        }

        /// The customer with `points` available (an order's earn whose window closed) and
        /// `pending` more still in an order's return window.
        fn with_points(self, points: i64, pending: i64) -> Self {
            for (source, points, available) in [
                ("order:SO-1", points, self.now - days(10)),
                ("order:SO-2", pending, self.now + days(20)),
            ] {
                let earn = LedgerEntry {
                    kind: LedgerKind::Earn,
                    points,
                    source: source.into(),
                    created_at: self.now - days(40),
                    available_at: Some(available),
                    against: None,
                    reason: None,
                    spend: None,
                };
                if points > 0 {
                    assert!(
                        self.ledger
                            .credit(&self.merchant.id, &self.customer, &earn)
                            .unwrap()
                    );
                }
            }
            self
        }

        fn loyalty(&self) -> Loyalty<'_, MemLoyalty> {
            Loyalty {
                ledger: &self.ledger,
            }
        }

        async fn send(
            &self,
            kind: PointsKind,
            key: &str,
            points: i64,
            reason: Option<&str>,
        ) -> Result<Moved, LoyaltyError> {
            let request = PointsRequest {
                kind,
                key: key.into(),
                points,
                reason: reason.map(str::to_owned),
            };
            self.loyalty()
                .post(&self.merchant.id, &self.customer, &request, self.now)
                .await
        }

        async fn redeem(&self, key: &str, points: i64) -> Result<Moved, LoyaltyError> {
            self.send(PointsKind::Redemption, key, points, None).await
        }

        async fn adjust(
            &self,
            key: &str,
            points: i64,
            reason: Option<&str>,
        ) -> Result<Moved, LoyaltyError> {
            self.send(PointsKind::Adjustment, key, points, reason).await
        }

        async fn balance(&self) -> Balance {
            let state = self
                .ledger
                .ledger(&self.merchant.id, &self.customer)
                .await
                .unwrap();
            balance(&state.entries, self.now)
        }

        async fn entries(&self, c: &CustomerId) -> Vec<LedgerEntry> {
            self.ledger
                .ledger(&self.merchant.id, c)
                .await
                .unwrap()
                .entries
        }
    }

    fn refused_field(err: LoyaltyError) -> (u16, &'static str, Option<String>) {
        let api = ApiError::from(err);
        (api.status, api.code, api.field)
    }

    #[tokio::test]
    async fn a_redemption_within_the_balance_posts_once_with_the_balance_after() {
        let w = World::new().with_points(100, 50);
        let moved = w.redeem("k1", 60).await.unwrap();
        assert!(!moved.replayed);
        assert_eq!(
            (moved.entry.kind, moved.entry.points),
            (LedgerKind::Redeem, -60)
        );
        assert_eq!(moved.entry.source, "redeem:k1");
        assert_eq!((moved.balance.available, moved.balance.pending), (40, 50));
        assert_eq!(w.balance().await, moved.balance);
        let summary = w.ledger.summary(&w.merchant.id, &w.customer).unwrap();
        assert_eq!(summary["available"], 40, "the cached balance follows");
    }

    #[tokio::test]
    async fn an_overdraw_is_refused_naming_points_and_writes_nothing() {
        let w = World::new().with_points(100, 50);
        let before = w.ledger.table.rows();
        let err = w.redeem("k1", 101).await.unwrap_err();
        assert!(
            matches!(err, LoyaltyError::Insufficient { available: 100 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "only 100 points are available");
        assert_eq!(
            refused_field(err),
            (422, "insufficient_points", Some("points".into()))
        );
        assert_eq!(w.ledger.table.rows(), before);
    }

    #[tokio::test]
    async fn a_replay_answers_the_same_and_moves_no_points() {
        let w = World::new().with_points(100, 0);
        let first = w.redeem("k1", 60).await.unwrap();
        let before = w.ledger.table.rows();
        let again = w.redeem("k1", 60).await.unwrap();
        assert!(again.replayed);
        assert_eq!((&again.entry, again.balance), (&first.entry, first.balance));
        assert_eq!(
            w.ledger.table.rows(),
            before,
            "nothing written by the replay"
        );
        // The same key with other points is a conflict, and moves nothing either.
        let err = w.redeem("k1", 50).await.unwrap_err();
        assert!(matches!(err, LoyaltyError::KeyReused), "{err:?}");
        assert_eq!(
            refused_field(err),
            (409, "idempotency_conflict", Some("Idempotency-Key".into()))
        );
        assert_eq!(w.ledger.table.rows(), before);
        assert_eq!(w.balance().await.available, 40);
    }

    #[tokio::test]
    async fn of_two_concurrent_redemptions_of_the_whole_balance_exactly_one_succeeds() {
        let w = World::new().with_points(100, 0);
        let (a, b) = tokio::join!(w.redeem("k1", 100), w.redeem("k2", 100));
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("exactly one must succeed: {other:?}"),
        };
        assert_eq!(won.balance.available, 0);
        assert!(
            matches!(lost, LoyaltyError::Insufficient { available: 0 }),
            "{lost:?}"
        );
        assert_eq!(w.balance().await.available, 0);
        assert_eq!(w.balance().await.redeemed, 100);
        assert_eq!(w.entries(&w.customer).await.len(), 2);
    }

    #[tokio::test]
    async fn two_concurrent_deliveries_of_one_request_move_the_points_once() {
        let w = World::new().with_points(100, 0);
        let (a, b) = tokio::join!(w.redeem("k1", 60), w.redeem("k1", 60));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(u8::from(a.replayed) + u8::from(b.replayed), 1);
        assert_eq!(a.entry, b.entry);
        assert_eq!(w.balance().await.available, 40);
    }

    #[tokio::test]
    async fn a_redemption_decided_on_a_stale_read_is_refused_by_the_writes_condition() {
        let w = World::new().with_points(100, 0);
        let (m, c) = (&w.merchant.id, &w.customer);
        let stale = w.ledger.ledger(m, c).await.unwrap();
        w.redeem("k1", 100).await.unwrap();
        let before = w.ledger.table.rows();
        // Decided on the old read the balance allows it; the write's condition does not.
        let entry = redeem(&stale.entries, w.now, 100, "k2").unwrap();
        let posting = w.ledger.post(m, c, &stale, &entry, w.now, None).await;
        assert_eq!(posting.unwrap(), Posting::Stale);
        assert_eq!(w.ledger.table.rows(), before);
        assert_eq!(w.balance().await.available, 0);
    }

    #[tokio::test]
    async fn adjustments_credit_and_debit_with_a_reason() {
        let w = World::new().with_points(100, 0);
        let credit = w.adjust("a1", 15, Some(" goodwill ")).await.unwrap();
        assert_eq!((credit.entry.points, credit.balance.available), (15, 115));
        assert_eq!(credit.entry.reason.as_deref(), Some("goodwill"));
        let debit = w.adjust("a2", -115, Some("typo")).await.unwrap();
        assert_eq!((debit.entry.points, debit.balance.available), (-115, 0));
        let before = w.ledger.table.rows();
        let err = w.adjust("a3", -1, Some("typo")).await.unwrap_err();
        assert!(
            matches!(err, LoyaltyError::Insufficient { available: 0 }),
            "{err:?}"
        );
        for reason in [None, Some("  "), Some("two\nlines")] {
            let err = w.adjust("a4", 5, reason).await.unwrap_err();
            assert_eq!(refused_field(err), (422, "required", Some("reason".into())));
        }
        assert_eq!(w.ledger.table.rows(), before);
        // A replay of the credit answers it again, with the balance now.
        let again = w.adjust("a1", 15, Some("goodwill")).await.unwrap();
        assert!(again.replayed);
        assert_eq!((again.entry.points, again.balance.available), (15, 0));
    }

    #[tokio::test]
    async fn points_out_of_bounds_are_refused_naming_the_field_and_write_nothing() {
        let w = World::new().with_points(100, 0);
        let before = w.ledger.table.rows();
        for points in [0, -5, MAX_POINTS + 1, i64::MIN] {
            let err = w.redeem("k1", points).await.unwrap_err();
            assert_eq!(
                refused_field(err),
                (422, "out_of_range", Some("points".into())),
                "{points}"
            );
        }
        for points in [0, -MAX_POINTS - 1, i64::MIN] {
            let err = w.adjust("a1", points, Some("why")).await.unwrap_err();
            assert_eq!(
                refused_field(err),
                (422, "out_of_range", Some("points".into())),
                "{points}"
            );
        }
        assert_eq!(w.ledger.table.rows(), before);
    }

    #[tokio::test]
    async fn an_unknown_customer_is_not_found_and_nothing_is_written() {
        let w = World::new();
        let nobody = CustomerId::parse("customerId", "cus_nobody").unwrap();
        let request = PointsRequest {
            kind: PointsKind::Redemption,
            key: "k1".into(),
            points: 1,
            reason: None,
        };
        let err = w
            .loyalty()
            .post(&w.merchant.id, &nobody, &request, w.now)
            .await
            .unwrap_err();
        assert!(matches!(err, LoyaltyError::UnknownCustomer), "{err:?}");
        assert_eq!(ApiError::from(err).status, 404);
        let err = w
            .loyalty()
            .standing(&w.merchant, &nobody, w.now)
            .await
            .unwrap_err();
        assert!(matches!(err, LoyaltyError::UnknownCustomer), "{err:?}");
        assert_eq!(w.ledger.table.rows().len(), 1, "only the known profile");
    }

    #[tokio::test]
    async fn a_transient_store_failure_writes_nothing_and_the_retry_posts_once() {
        let w = World::new().with_points(100, 0);
        let before = w.ledger.table.rows();
        w.ledger
            .table
            .fail_next_writes(1, "TransactWriteItems ledger");
        let err = w.redeem("k1", 60).await.unwrap_err();
        assert!(
            matches!(err, LoyaltyError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert_eq!(ApiError::from(err).status, 503);
        assert_eq!(w.ledger.table.rows(), before);
        assert!(!w.redeem("k1", 60).await.unwrap().replayed);
        assert!(w.redeem("k1", 60).await.unwrap().replayed);
        assert_eq!(w.balance().await.available, 40);
    }

    #[tokio::test]
    async fn standing_is_the_balance_and_tier_now() {
        let w = World::new().with_points(100, 50);
        let standing = w
            .loyalty()
            .standing(&w.merchant, &w.customer, w.now)
            .await
            .unwrap();
        assert_eq!(standing.entries.len(), 2);
        assert_eq!(
            (standing.balance.available, standing.balance.pending),
            (100, 50)
        );
        assert_eq!(standing.tier, None, "the sample programme has no tiers");
    }

    // Referrals: Bob shares his code; Ann's order carries it.

    fn bob() -> ReferralCodeOwner {
        ReferralCodeOwner {
            code: referral_code(&[7; 32]),
            customer_id: CustomerId::parse("customerId", "cus_bob").unwrap(),
            email: "bob@example.com".into(),
        }
    }

    fn anns_order(id: &str) -> Order {
        let mut v = crate::domain::order::tests::sample();
        v["id"] = id.into();
        fixtures::order_from(v)
    }

    impl World {
        /// Bob's code on file and Ann's order `id` stored.
        fn referring(self, id: &str) -> (Self, Order) {
            self.ledger
                .add_referral_code(&self.merchant.id, &bob())
                .unwrap();
            let order = anns_order(id);
            self.ledger.add_order(&self.merchant.id, &order.id).unwrap();
            (self, order)
        }

        async fn refer(&self, order: &Order, typed: &str) -> Result<Referred, LoyaltyError> {
            self.loyalty()
                .record_referral(&self.merchant, order, typed, self.now)
                .await
        }
    }

    #[tokio::test]
    async fn a_referral_is_recorded_once() {
        let (w, order) = World::new().referring("SO-1001");
        let m = &w.merchant.id;
        let typed = bob().code.to_lowercase().replace('-', " ");
        let referred = w.refer(&order, &typed).await.unwrap();
        let recorded = Referred::Recorded {
            code: bob().code,
            reward_points: 500,
        };
        assert_eq!(referred, recorded);
        let ledger = w.entries(&bob().customer_id).await;
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            (ledger[0].source.as_str(), ledger[0].points),
            ("referral:SO-1001", 500)
        );
        assert!(ledger[0].is_pending(w.now), "pending through the window");
        let referee = w.ledger.referee(m, "ann@example.com").unwrap();
        assert_eq!(
            (referee.order_id.as_str(), &referee.referrer),
            ("SO-1001", &bob().customer_id)
        );
        assert_eq!(
            w.ledger.referred_by(m, &order.id).as_deref(),
            Some("cus_bob")
        );
        // A replay of the order answers the same and writes nothing.
        let before = w.ledger.table.rows();
        assert_eq!(w.refer(&order, &bob().code).await.unwrap(), recorded);
        assert_eq!(w.ledger.table.rows(), before);
    }

    #[tokio::test]
    async fn a_self_referral_or_an_unknown_code_is_refused_and_writes_nothing() {
        let (w, order) = World::new().referring("SO-1001");
        let mut own = bob();
        own.email = "ann@example.com".into();
        own.code = referral_code(&[8; 32]);
        w.ledger.add_referral_code(&w.merchant.id, &own).unwrap();
        let before = w.ledger.table.rows();
        let refused = |code: &str, why| Referred::Refused {
            code: code.into(),
            why,
        };
        assert_eq!(
            w.refer(&order, &own.code).await.unwrap(),
            refused(&own.code, ReferralRefusal::SelfReferral)
        );
        let stranger = referral_code(&[9; 32]);
        assert_eq!(
            w.refer(&order, &stranger).await.unwrap(),
            refused(&stranger, ReferralRefusal::UnknownCode)
        );
        assert_eq!(
            w.refer(&order, "not a code").await.unwrap(),
            refused("not a code", ReferralRefusal::UnknownCode)
        );
        assert_eq!(w.ledger.table.rows(), before);
    }

    #[tokio::test]
    async fn a_customer_referred_before_by_another_order_is_refused() {
        let (w, first) = World::new().referring("SO-1001");
        w.refer(&first, &bob().code).await.unwrap();
        let second = anns_order("SO-1002");
        w.ledger.add_order(&w.merchant.id, &second.id).unwrap();
        let before = w.ledger.table.rows();
        assert_eq!(
            w.refer(&second, &bob().code).await.unwrap(),
            Referred::Refused {
                code: bob().code,
                why: ReferralRefusal::AlreadyReferred
            }
        );
        assert_eq!(w.ledger.table.rows(), before, "no second reward");
    }

    #[tokio::test]
    async fn a_referral_writes_nothing_when_its_order_is_gone_or_the_store_fails() {
        let (w, order) = World::new().referring("SO-1001");
        let before = w.ledger.table.rows();
        let gone = anns_order("SO-1009");
        let err = w.refer(&gone, &bob().code).await.unwrap_err();
        assert!(matches!(err, LoyaltyError::OrderChanged), "{err:?}");
        assert_eq!(ApiError::from(err).status, 503);
        w.ledger
            .table
            .fail_next_writes(1, "TransactWriteItems ledger");
        let err = w.refer(&order, &bob().code).await.unwrap_err();
        assert!(
            matches!(err, LoyaltyError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert_eq!(w.ledger.table.rows(), before);
        // The order's retry records it.
        assert!(matches!(
            w.refer(&order, &bob().code).await.unwrap(),
            Referred::Recorded { .. }
        ));
        assert_eq!(w.entries(&bob().customer_id).await.len(), 1);
    }

    #[test]
    fn an_adjustments_key_and_a_redemptions_are_apart() {
        let request = |kind| PointsRequest {
            kind,
            key: "k".into(),
            points: 5,
            reason: Some("r".into()),
        };
        assert_eq!(request(PointsKind::Redemption).source(), "redeem:k");
        assert_eq!(request(PointsKind::Adjustment).source(), "adjust:k");
    }
}
