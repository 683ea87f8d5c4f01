//! A customer's store credit, whoever asks: credit issued when a return is resolved as store
//! credit ([`StoreCredit::issue`], called by the returns use-case), spent at the merchant's
//! checkout ([`StoreCredit::redeem`]), corrected by the merchant ([`StoreCredit::adjust`]), and
//! where the customer stands ([`StoreCredit::statement`]).
//!
//! Every posting is decided on its currency's summary as read and committed only if the summary
//! is still at the version read (the port's condition), so two redemptions racing for the same
//! credit cannot both spend it: the loser reads again and decides again on what the winner left,
//! at most [`CREDIT_ATTEMPTS`] times, then answers [`CreditError::Busy`] (503, retry as is).
//! Every posting is keyed by its source (an issue's return, a redemption's or adjustment's
//! idempotency key): a replay finds its entry and answers exactly what the first answered,
//! writing nothing; the same key with another payload is a conflict.

use crate::domain::credit::{
    CREDIT_ATTEMPTS, CreditEntry, CreditKind, CreditPosting, CreditRead, CreditRefusal,
    CreditSummary, adjust, adjust_source, issue, issue_source, redeem, redeem_source,
};
use crate::domain::{Currency, CustomerId, FieldError, MerchantId, Money};
use crate::ports::StoreError;
use crate::ports::credit::CreditBook;
use jiff::Timestamp;

/// Why a store credit request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// The request's amount, bonus, key or text is out of bounds (the field is named).
    #[error(transparent)]
    Invalid(FieldError),
    #[error("the customer was not found")]
    UnknownCustomer,
    /// The idempotency key was used before with another payload.
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    /// The issue's source (a return) was credited before with other figures.
    #[error("credit was issued for this source before, with other figures")]
    SourceReused,
    /// A redemption or a negative adjustment larger than the balance.
    #[error("only {available} (minor units) of store credit is available")]
    Insufficient { available: i64 },
    /// The customer's credit kept changing under the request: retry it as is.
    #[error("the customer's store credit is busy; retry with the same Idempotency-Key")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CreditRefusal> for CreditError {
    fn from(r: CreditRefusal) -> Self {
        match r {
            CreditRefusal::Invalid(f) => CreditError::Invalid(f),
            CreditRefusal::Insufficient { available } => CreditError::Insufficient { available },
        }
    }
}

/// What an issue gave (or, on a replay, had given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditIssued {
    /// The credit for the return itself.
    pub amount: Money,
    /// The bonus on top, in the same currency's minor units (0 without one).
    pub bonus: i64,
    /// `amount + bonus`: what the balance rose by.
    pub total: i64,
    /// The currency's balance right after the issue.
    pub balance_after: i64,
    /// False on a replay: nothing was written now.
    pub fresh: bool,
}

/// A posted redemption or adjustment and the balance right after it: on a replay, exactly what
/// the first answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub entry: CreditEntry,
    /// False on a replay: nothing was written now.
    pub fresh: bool,
}

impl Posted {
    pub fn balance_after(&self) -> Money {
        Money::new(self.entry.balance_after, self.entry.currency)
    }
}

/// A customer's credit: each currency's summary and the entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub balances: Vec<CreditSummary>,
    pub entries: Vec<CreditEntry>,
}

pub struct StoreCredit<'a, B> {
    pub book: &'a B,
}

impl<B: CreditBook> StoreCredit<'_, B> {
    /// Issues `amount` + `bonus` (minor units of `amount`'s currency, may be 0) of credit for
    /// `source` (e.g. `return-<id>`), as one `issued` entry carrying its bonus. Idempotent on
    /// `source`: a replay answers the same figures with `fresh: false`; the same source with
    /// other figures is [`CreditError::SourceReused`].
    #[allow(clippy::too_many_arguments)]
    pub async fn issue(
        &self,
        merchant: &MerchantId,
        customer: &CustomerId,
        amount: Money,
        bonus: i64,
        source: &str,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<CreditIssued, CreditError> {
        // Validated once up front (on an empty summary) so a bad request never touches the store.
        issue(
            &CreditSummary::empty(amount.currency),
            source,
            amount,
            bonus,
            note,
            now,
        )?;
        let replay = |e: &CreditEntry| {
            if e.kind == CreditKind::Issued
                && e.currency == amount.currency
                && e.amount == amount.amount + bonus
                && e.bonus == bonus
            {
                Ok(issued(e, false))
            } else {
                Err(CreditError::SourceReused)
            }
        };
        let posted = self
            .post(
                merchant,
                customer,
                amount.currency,
                &issue_source(source),
                replay,
                |s| issue(s, source, amount, bonus, note, now),
            )
            .await?;
        match posted {
            Ok(entry) => {
                tracing::info!(
                    currency = %amount.currency,
                    total = entry.amount,
                    bonus,
                    "store credit issued"
                );
                Ok(issued(&entry, true))
            }
            Err(replayed) => Ok(replayed),
        }
    }

    /// Spends `amount` of the customer's credit in `currency` once per `key`; `request_hash`
    /// (see [`crate::domain::credit::request_hash`]) tells a replay from another request under
    /// the same key. Never overdraws: [`CreditError::Insufficient`] names what is available.
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem(
        &self,
        merchant: &MerchantId,
        customer: &CustomerId,
        amount: Money,
        order_id: Option<&str>,
        key: &str,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Posted, CreditError> {
        let c = amount.currency;
        redeem(
            &validating(c),
            key,
            amount.amount,
            order_id,
            request_hash,
            now,
        )?;
        self.keyed(
            merchant,
            customer,
            c,
            &redeem_source(key),
            request_hash,
            |s| redeem(s, key, amount.amount, order_id, request_hash, now),
        )
        .await
    }

    /// The merchant's correction of the customer's credit by `amount` (either way; never below
    /// zero), with a reason, once per `key`.
    #[allow(clippy::too_many_arguments)]
    pub async fn adjust(
        &self,
        merchant: &MerchantId,
        customer: &CustomerId,
        amount: Money,
        reason: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
    ) -> Result<Posted, CreditError> {
        let c = amount.currency;
        adjust(
            &validating(c),
            key,
            amount.amount,
            reason,
            request_hash,
            now,
        )?;
        self.keyed(
            merchant,
            customer,
            c,
            &adjust_source(key),
            request_hash,
            |s| adjust(s, key, amount.amount, reason, request_hash, now),
        )
        .await
    }

    /// The customer's balance in `currency` (0 with no entry in it).
    pub async fn balance(
        &self,
        merchant: &MerchantId,
        customer: &CustomerId,
        currency: Currency,
    ) -> Result<Money, CreditError> {
        let read = self.book.read(merchant, customer, currency, "").await?;
        if read.summary.version == 0 && !self.book.has_customer(merchant, customer).await? {
            return Err(CreditError::UnknownCustomer);
        }
        Ok(Money::new(read.summary.balance, currency))
    }

    /// Every currency's balance and the whole ledger, newest first (the caller pages it).
    pub async fn statement(
        &self,
        merchant: &MerchantId,
        customer: &CustomerId,
    ) -> Result<Statement, CreditError> {
        let st = self.book.statement(merchant, customer).await?;
        if st.summaries.is_empty() && !self.book.has_customer(merchant, customer).await? {
            return Err(CreditError::UnknownCustomer);
        }
        let mut balances = st.summaries;
        balances.sort_by(|a, b| a.currency.code().cmp(b.currency.code()));
        let mut entries = st.entries;
        entries.reverse();
        Ok(Statement { balances, entries })
    }

    /// A redemption or adjustment keyed by its idempotency key: a replay answers the stored entry,
    /// another payload under the key is a conflict.
    async fn keyed(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
        source: &str,
        request_hash: &str,
        decide: impl Fn(&CreditSummary) -> Result<CreditEntry, CreditRefusal>,
    ) -> Result<Posted, CreditError> {
        let replay = |e: &CreditEntry| {
            if e.request_hash.as_deref() == Some(request_hash) && e.currency == currency {
                Ok(Posted {
                    entry: e.clone(),
                    fresh: false,
                })
            } else {
                Err(CreditError::KeyReused)
            }
        };
        match self.post(m, c, currency, source, replay, decide).await? {
            Ok(entry) => {
                tracing::info!(
                    kind = entry.kind.as_str(),
                    currency = %entry.currency,
                    amount = entry.amount,
                    "store credit entry posted"
                );
                Ok(Posted { entry, fresh: true })
            }
            Err(replayed) => Ok(replayed),
        }
    }

    /// The loop every posting runs: read, answer a replay from the stored entry, decide, post on
    /// the version read; after a lost race read and decide again. `Ok(Ok(entry))`: posted now;
    /// `Ok(Err(answer))`: a replay's answer.
    async fn post<T>(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
        source: &str,
        replay: impl Fn(&CreditEntry) -> Result<T, CreditError>,
        decide: impl Fn(&CreditSummary) -> Result<CreditEntry, CreditRefusal>,
    ) -> Result<Result<CreditEntry, T>, CreditError> {
        if !self.book.has_customer(m, c).await? {
            return Err(CreditError::UnknownCustomer);
        }
        for attempt in 1..=CREDIT_ATTEMPTS {
            let CreditRead { summary, existing } = self.book.read(m, c, currency, source).await?;
            if let Some(stored) = existing {
                return replay(&stored).map(Err);
            }
            let entry = decide(&summary)?;
            match self.book.post(m, c, &summary, &entry).await? {
                CreditPosting::Done(_) => return Ok(Ok(entry)),
                // A concurrent delivery of the same request got there first: answer as its replay.
                CreditPosting::Duplicate => {
                    let read = self.book.read(m, c, currency, source).await?;
                    return match read.existing {
                        Some(stored) => replay(&stored).map(Err),
                        None => Err(CreditError::Busy),
                    };
                }
                CreditPosting::Stale => tokio::time::sleep(crate::retry::backoff(attempt)).await,
            }
        }
        Err(CreditError::Busy)
    }
}

fn issued(e: &CreditEntry, fresh: bool) -> CreditIssued {
    CreditIssued {
        amount: Money::new(e.amount - e.bonus, e.currency),
        bonus: e.bonus,
        total: e.amount,
        balance_after: e.balance_after,
        fresh,
    }
}

/// A summary that covers any amount: for checking a request's own bounds before any read.
fn validating(currency: Currency) -> CreditSummary {
    CreditSummary {
        balance: i64::MAX / 2,
        ..CreditSummary::empty(currency)
    }
}

/// Store credit on the in-memory adapter: every decision and error path, no network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credit::request_hash;
    use crate::http::ApiError;
    use crate::testing::credit::MemCredit;

    struct World {
        book: MemCredit,
        m: MerchantId,
        c: CustomerId,
        now: Timestamp,
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("c", "EUR").unwrap())
    }

    impl World {
        fn new() -> Self {
            let w = Self {
                book: MemCredit::new(),
                m: MerchantId::parse("merchant", "acme").unwrap(),
                c: CustomerId::parse("customerId", "cus_1").unwrap(),
                now: "2026-12-04T10:00:00Z".parse().unwrap(),
            };
            w.book.add_customer(&w.m, &w.c).unwrap();
            w
        }

        fn credit(&self) -> StoreCredit<'_, MemCredit> {
            StoreCredit { book: &self.book }
        }

        async fn issue(
            &self,
            source: &str,
            amount: i64,
            bonus: i64,
        ) -> Result<CreditIssued, CreditError> {
            self.credit()
                .issue(
                    &self.m,
                    &self.c,
                    eur(amount),
                    bonus,
                    source,
                    Some("return"),
                    self.now,
                )
                .await
        }

        async fn redeem(&self, key: &str, amount: i64) -> Result<Posted, CreditError> {
            let hash = request_hash(&["EUR", &amount.to_string()]);
            self.credit()
                .redeem(&self.m, &self.c, eur(amount), None, key, &hash, self.now)
                .await
        }

        async fn adjust(
            &self,
            key: &str,
            amount: i64,
            reason: &str,
        ) -> Result<Posted, CreditError> {
            let hash = request_hash(&["EUR", &amount.to_string(), reason]);
            self.credit()
                .adjust(&self.m, &self.c, eur(amount), reason, key, &hash, self.now)
                .await
        }

        async fn balance(&self) -> i64 {
            self.credit()
                .balance(&self.m, &self.c, eur(0).currency)
                .await
                .unwrap()
                .amount
        }
    }

    fn api(e: CreditError) -> (u16, &'static str, Option<String>) {
        let a = crate::http::ApiError::from(e);
        (a.status, a.code, a.field)
    }

    #[tokio::test]
    async fn an_issue_posts_once_per_source_with_its_bonus() {
        let w = World::new();
        let first = w.issue("return-r1", 5_000, 500).await.unwrap();
        assert_eq!(
            first,
            CreditIssued {
                amount: eur(5_000),
                bonus: 500,
                total: 5_500,
                balance_after: 5_500,
                fresh: true
            }
        );
        let rows = w.book.table.rows();
        let again = w.issue("return-r1", 5_000, 500).await.unwrap();
        assert_eq!(
            again,
            CreditIssued {
                fresh: false,
                ..first
            }
        );
        assert_eq!(w.book.table.rows(), rows, "a replay writes nothing");
        let err = w.issue("return-r1", 4_000, 0).await.unwrap_err();
        assert_eq!(api(err), (409, "source_conflict", Some("source".into())));
        let second = w.issue("return-r2", 1_000, 0).await.unwrap();
        assert_eq!(second.balance_after, 6_500);
        let s = w.book.summary(&w.m, &w.c, eur(0).currency).unwrap();
        assert_eq!(
            (s.balance, s.issued, s.redeemed, s.version),
            (6_500, 6_500, 0, 2)
        );
    }

    #[tokio::test]
    async fn a_redemption_within_the_balance_posts_once_and_a_replay_answers_the_same() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let first = w.redeem("k1", 400).await.unwrap();
        assert!(first.fresh);
        assert_eq!(
            (first.entry.amount, first.balance_after()),
            (-400, eur(600))
        );
        w.issue("return-r2", 100, 0).await.unwrap();
        let rows = w.book.table.rows();
        let again = w.redeem("k1", 400).await.unwrap();
        assert_eq!(
            (again.entry, again.fresh),
            (first.entry, false),
            "the same answer"
        );
        assert_eq!(w.book.table.rows(), rows);
        let err = w.redeem("k1", 401).await.unwrap_err();
        assert_eq!(
            api(err),
            (409, "idempotency_conflict", Some("Idempotency-Key".into()))
        );
        assert_eq!(w.balance().await, 700);
    }

    #[tokio::test]
    async fn an_overdraw_is_refused_naming_amount_and_writes_nothing() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let rows = w.book.table.rows();
        let err = w.redeem("k1", 1_001).await.unwrap_err();
        assert!(
            matches!(err, CreditError::Insufficient { available: 1_000 }),
            "{err:?}"
        );
        assert_eq!(
            api(err),
            (422, "insufficient_credit", Some("amount".into()))
        );
        let err = w.adjust("a1", -1_001, "typo").await.unwrap_err();
        assert!(
            matches!(err, CreditError::Insufficient { available: 1_000 }),
            "{err:?}"
        );
        assert_eq!(w.book.table.rows(), rows);
    }

    #[tokio::test]
    async fn of_many_concurrent_redemptions_only_what_the_balance_covers_succeeds() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
        let results = futures_util::future::join_all(keys.iter().map(|k| w.redeem(k, 300))).await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 3, "{results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(
                        e,
                        CreditError::Insufficient { available: 100 } | CreditError::Busy
                    ),
                    "{e:?}"
                );
            }
        }
        assert_eq!(w.balance().await, 100);
        let st = w.credit().statement(&w.m, &w.c).await.unwrap();
        assert_eq!(st.entries.len(), 1 + won);
    }

    #[tokio::test]
    async fn two_concurrent_deliveries_of_one_redemption_move_the_credit_once() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let (a, b) = tokio::join!(w.redeem("k1", 600), w.redeem("k1", 600));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(u8::from(a.fresh) + u8::from(b.fresh), 1);
        assert_eq!(a.entry, b.entry);
        assert_eq!(w.balance().await, 400);
    }

    #[tokio::test]
    async fn a_posting_decided_on_a_stale_read_is_refused_by_the_writes_condition() {
        let w = World::new();
        let c = eur(0).currency;
        // A first posting: no summary yet (`attribute_not_exists(PK)`).
        let fresh = w.book.read(&w.m, &w.c, c, "issue:r0").await.unwrap();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let entry = issue(&fresh.summary, "r0", eur(5), 0, None, w.now).unwrap();
        assert_eq!(
            w.book
                .post(&w.m, &w.c, &fresh.summary, &entry)
                .await
                .unwrap(),
            CreditPosting::Stale
        );
        // A later one (`version = :v`).
        let stale = w.book.read(&w.m, &w.c, c, "redeem:k2").await.unwrap();
        w.redeem("k1", 1_000).await.unwrap();
        let rows = w.book.table.rows();
        let entry = redeem(&stale.summary, "k2", 1_000, None, "h", w.now).unwrap();
        assert_eq!(
            w.book
                .post(&w.m, &w.c, &stale.summary, &entry)
                .await
                .unwrap(),
            CreditPosting::Stale
        );
        assert_eq!(w.book.table.rows(), rows);
        assert_eq!(w.balance().await, 0);
    }

    #[tokio::test]
    async fn adjustments_go_either_way_with_a_reason_and_never_below_zero() {
        let w = World::new();
        w.issue("return-r1", 300, 0).await.unwrap();
        let up = w.adjust("a1", 200, " goodwill ").await.unwrap();
        assert_eq!((up.entry.amount, up.entry.balance_after), (200, 500));
        assert_eq!(up.entry.note.as_deref(), Some("goodwill"));
        let down = w.adjust("a2", -500, "typo").await.unwrap();
        assert_eq!(down.entry.balance_after, 0);
        let err = w.adjust("a3", 5, " ").await.unwrap_err();
        assert_eq!(api(err), (422, "invalid_format", Some("reason".into())));
        assert!(
            !w.adjust("a1", 200, " goodwill ").await.unwrap().fresh,
            "a replay"
        );
    }

    #[tokio::test]
    async fn requests_out_of_bounds_or_for_nobody_are_refused_and_write_nothing() {
        let w = World::new();
        w.issue("return-r1", 300, 0).await.unwrap();
        let rows = w.book.table.rows();
        for amount in [0, -5] {
            let err = w.redeem("k1", amount).await.unwrap_err();
            assert_eq!(
                api(err),
                (422, "out_of_range", Some("amount".into())),
                "{amount}"
            );
        }
        let err = w.issue("return-r9", 10, -1).await.unwrap_err();
        assert_eq!(api(err).2.as_deref(), Some("bonus"));
        let nobody = CustomerId::parse("customerId", "cus_nobody").unwrap();
        let err = w
            .credit()
            .issue(&w.m, &nobody, eur(10), 0, "return-r3", None, w.now)
            .await
            .unwrap_err();
        assert_eq!(api(err).0, 404);
        let err = w.credit().statement(&w.m, &nobody).await.unwrap_err();
        assert!(matches!(err, CreditError::UnknownCustomer));
        assert_eq!(w.book.table.rows(), rows);
    }

    #[tokio::test]
    async fn a_transient_store_failure_writes_nothing_and_the_retry_posts_once() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let rows = w.book.table.rows();
        w.book
            .table
            .fail_next_writes(1, "TransactWriteItems credit");
        let err = w.redeem("k1", 600).await.unwrap_err();
        assert_eq!(api(err).0, 503);
        assert_eq!(w.book.table.rows(), rows);
        assert!(w.redeem("k1", 600).await.unwrap().fresh);
        assert!(!w.redeem("k1", 600).await.unwrap().fresh);
        assert_eq!(w.balance().await, 400);
    }

    /// A book on which another writer always posts first: every posting loses its race.
    struct Contended {
        inner: MemCredit,
        rivals: std::sync::atomic::AtomicUsize,
    }

    impl CreditBook for Contended {
        async fn has_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
            self.inner.has_customer(m, c).await
        }

        async fn read(
            &self,
            m: &MerchantId,
            c: &CustomerId,
            currency: Currency,
            source: &str,
        ) -> Result<CreditRead, StoreError> {
            self.inner.read(m, c, currency, source).await
        }

        async fn statement(
            &self,
            m: &MerchantId,
            c: &CustomerId,
        ) -> Result<crate::domain::credit::CreditStatement, StoreError> {
            self.inner.statement(m, c).await
        }

        async fn post(
            &self,
            m: &MerchantId,
            c: &CustomerId,
            read: &CreditSummary,
            entry: &CreditEntry,
        ) -> Result<CreditPosting, StoreError> {
            let n = self
                .rivals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let rival = issue(read, &format!("rival-{n}"), eur(1), 0, None, entry.at).unwrap();
            assert!(matches!(
                self.inner.post(m, c, read, &rival).await?,
                CreditPosting::Done(_)
            ));
            self.inner.post(m, c, read, entry).await
        }
    }

    #[tokio::test]
    async fn a_posting_that_keeps_losing_its_race_gives_up_after_the_bound_as_busy() {
        let w = World::new();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        let book = Contended {
            inner: w.book.clone(),
            rivals: Default::default(),
        };
        let hash = request_hash(&["EUR", "100"]);
        let err = StoreCredit { book: &book }
            .redeem(&w.m, &w.c, eur(100), None, "k1", &hash, w.now)
            .await
            .unwrap_err();
        assert!(matches!(err, CreditError::Busy), "{err:?}");
        let api = ApiError::from(err);
        assert_eq!((api.status, api.retry_after), (503, Some(2)));
        assert_eq!(
            book.rivals.load(std::sync::atomic::Ordering::SeqCst),
            CREDIT_ATTEMPTS as usize,
            "read and decided again after every lost race, then gave up"
        );
        let st = w.credit().statement(&w.m, &w.c).await.unwrap();
        assert!(
            st.entries.iter().all(|e| e.source != "redeem:k1"),
            "nothing of ours written"
        );
        // Once the contention is gone, the same request posts.
        assert!(w.redeem("k1", 100).await.unwrap().fresh);
    }

    #[tokio::test]
    async fn currencies_are_kept_apart_and_a_key_is_one_request_whatever_its_currency() {
        let w = World::new();
        let usd = Currency::parse("c", "USD").unwrap();
        w.issue("return-r1", 1_000, 0).await.unwrap();
        w.credit()
            .issue(
                &w.m,
                &w.c,
                Money::new(700, usd),
                70,
                "return-r2",
                None,
                w.now,
            )
            .await
            .unwrap();
        w.redeem("k1", 100).await.unwrap();
        let hash = request_hash(&["USD", "100"]);
        let err = w
            .credit()
            .redeem(&w.m, &w.c, Money::new(100, usd), None, "k1", &hash, w.now)
            .await
            .unwrap_err();
        assert!(matches!(err, CreditError::KeyReused), "{err:?}");
        let st = w.credit().statement(&w.m, &w.c).await.unwrap();
        let balances: Vec<(String, i64)> = st
            .balances
            .iter()
            .map(|s| (s.currency.code().to_owned(), s.balance))
            .collect();
        assert_eq!(balances, [("EUR".into(), 900), ("USD".into(), 770)]);
        assert_eq!(st.entries.len(), 3);
    }
}
