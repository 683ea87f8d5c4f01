//! Claim → send → record: how every email is sent at most once and, barring an unknowable
//! outcome, exactly once.
//!
//! The claim ([`crate::adapters::store::claims`]) is taken before SES is called. [`Courier::send_claimed`]
//! then makes at most [`MAX_SEND_ATTEMPTS`] calls, retrying only when SES said the message was
//! *not* sent (throttling, paused sending), never after an ambiguous outcome, and never starting a
//! call it may not be able to finish before the invocation's deadline.

use crate::clock::Clock;
use crate::domain::send::{
    ClaimResult, MAX_PARKED_MESSAGE, Parked, Reclaim, SendIdentity, SendRecord, SendStatus,
};
use crate::ports::{Mailer, SendFailure, SendLedger, StoreError};
use jiff::{SignedDuration, Timestamp};
use std::time::{Duration, Instant};

/// Calls to SES for one email within one invocation.
pub const MAX_SEND_ATTEMPTS: u32 = 3;
/// A send is not started with less time than this left before the deadline.
pub const MIN_SEND_BUDGET: Duration = Duration::from_secs(2);
/// How long after the invocation's deadline a claim's lease ends (the runtime has surely stopped
/// the holder by then).
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);
pub use crate::config::DEFAULT_SILENCE_WINDOW;

/// The invocation's deadline on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// From the Lambda context's deadline (epoch milliseconds, wall clock).
    pub fn from_epoch_ms(deadline_ms: u64) -> Self {
        let now_ms = u64::try_from(Timestamp::now().as_millisecond()).unwrap_or(0);
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn after(d: Duration) -> Self {
        Self(Instant::now() + d)
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// When a claim taken now should stop protecting its holder, on `clock`'s time line.
    pub fn lease_until(&self, clock: &dyn Clock) -> Timestamp {
        let span = SignedDuration::try_from(self.remaining() + LEASE_MARGIN)
            .unwrap_or(SignedDuration::from_secs(60));
        clock
            .now()
            .checked_add(span)
            .unwrap_or_else(|_| clock.now())
    }
}

/// Spaces SES calls at least `1 / rate` apart across the sweep's concurrent workers.
pub struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next send slot; false if it comes too late for `deadline`.
    pub async fn slot(&self, deadline: Deadline) -> bool {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            if at.saturating_duration_since(now) + MIN_SEND_BUDGET > deadline.remaining() {
                return false;
            }
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
        true
    }
}

/// What became of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// SES accepted it now.
    Sent { message_id: String },
    /// Its record was already settled (sent, failed or ambiguous): nothing was sent now.
    Settled(SendStatus),
    /// Another invocation holds a live claim on it.
    InProgress,
    /// SES may or may not have sent it; parked for reconciliation, never resent blindly.
    Ambiguous,
    /// SES refused it for good.
    Rejected { code: String },
    /// Not sent; the record is released so a redelivery can try again.
    RetryLater { reason: String },
    /// Not sent, now or ever: the recipient is suppressed (the record says so).
    Suppressed,
    /// Not sent, now or ever: the customer gave no email address (a shop platform's
    /// point-of-sale or phone order). Nothing is claimed or recorded.
    Unaddressed,
}

impl SendOutcome {
    /// The email's state as reported to callers (`sent`, `suppressed`, `in_progress`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Settled(s) => s.as_str(),
            SendOutcome::InProgress => "in_progress",
            SendOutcome::Ambiguous => "ambiguous",
            SendOutcome::Rejected { .. } => "failed",
            SendOutcome::RetryLater { .. } => "retry",
            SendOutcome::Suppressed => "suppressed",
            SendOutcome::Unaddressed => "no_address",
        }
    }

    /// Whether the caller should report a retryable failure so its trigger redelivers.
    pub fn wants_redelivery(&self) -> bool {
        matches!(self, SendOutcome::RetryLater { .. })
    }
}

/// How long send records are kept (their TTL): the merchant's message-log retention, else the
/// deployment's.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub default: Duration,
}

impl Retention {
    /// When a send record written `now` for `merchant` expires, in epoch seconds.
    pub fn send_expiry(&self, merchant: &crate::domain::Merchant, now: Timestamp) -> i64 {
        let kept = merchant
            .settings
            .retention
            .message_log_days
            .map(|days| Duration::from_secs(u64::from(days) * 86_400))
            .unwrap_or(self.default);
        now.as_second()
            .saturating_add(i64::try_from(kept.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The send protocol over a send ledger `L` and a mail transport `M` (in production the DynamoDB
/// store and SES; in the fast tests their in-memory twins).
pub struct Courier<'a, L = crate::adapters::store::Store, M = crate::adapters::mail::SesMailer> {
    pub store: &'a L,
    pub mailer: &'a M,
    pub clock: &'a dyn Clock,
    /// How long a parked send waits for SES's word before the silence sweep decides it.
    pub silence: Duration,
}

/// What to do when SES's answer to a send is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnUnknown {
    /// Park the record with the message, for the silence sweep to decide.
    Park,
    /// Settle it `ambiguous` for good: this was already the one resend.
    Settle,
}

impl<L: SendLedger, M: Mailer> Courier<'_, L, M> {
    /// Sends `email` under the claim `token` we hold on `key`.
    pub async fn send_claimed(
        &self,
        id: &SendIdentity,
        token: &str,
        email: &M::Message,
        deadline: Deadline,
    ) -> Result<SendOutcome, StoreError> {
        self.attempt(id, token, email, deadline, OnUnknown::Park)
            .await
    }

    /// Sends a parked email once more under the resend claim `token` (see
    /// [`crate::usecases::silence`]); an unknown outcome now is final, never a third try.
    pub async fn resend_claimed(
        &self,
        id: &SendIdentity,
        token: &str,
        email: &M::Message,
        deadline: Deadline,
    ) -> Result<SendOutcome, StoreError> {
        self.attempt(id, token, email, deadline, OnUnknown::Settle)
            .await
    }

    async fn attempt(
        &self,
        id: &SendIdentity,
        token: &str,
        email: &M::Message,
        deadline: Deadline,
        on_unknown: OnUnknown,
    ) -> Result<SendOutcome, StoreError> {
        let mut last_code = String::new();
        for attempt in 1..=MAX_SEND_ATTEMPTS {
            if deadline.remaining() < MIN_SEND_BUDGET {
                return self
                    .release(id, token, "not enough time left in the invocation")
                    .await;
            }
            match self.mailer.send(email, self.clock.now()).await {
                Ok(message_id) => {
                    let recorded = self
                        .store
                        .finish_send(
                            id,
                            token,
                            SendStatus::Sent,
                            Some(&message_id),
                            None,
                            self.clock.now(),
                        )
                        .await;
                    match recorded {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(send = %id.reference(), "sent, but the claim had moved on")
                        }
                        // The email went out; the record stays in_progress until its lease ends and
                        // is then reconciled from the SES send event. Never resend.
                        Err(e) => {
                            tracing::error!(send = %id.reference(), error = %e, "sent, but recording it failed")
                        }
                    }
                    tracing::info!(send = %id.reference(), message_id, attempt, "email sent");
                    return Ok(SendOutcome::Sent { message_id });
                }
                Err(SendFailure::NotSentRetryable { code }) => {
                    tracing::warn!(send = %id.reference(), code, attempt, "SES did not send; will retry");
                    last_code = code;
                    if attempt < MAX_SEND_ATTEMPTS {
                        let pause = crate::retry::backoff(attempt).max(Duration::from_millis(50));
                        if deadline.remaining() > pause + MIN_SEND_BUDGET {
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
                Err(SendFailure::Rejected { code }) => {
                    tracing::error!(send = %id.reference(), code, "SES refused the email");
                    self.settle(id, token, SendStatus::Failed, &code).await?;
                    return Ok(SendOutcome::Rejected { code });
                }
                Err(SendFailure::Invalid(reason)) => {
                    tracing::error!(send = %id.reference(), reason, "the email could not be built");
                    self.settle(id, token, SendStatus::Failed, &reason).await?;
                    return Ok(SendOutcome::Rejected {
                        code: "InvalidMessage".into(),
                    });
                }
                Err(SendFailure::Ambiguous { reason }) => {
                    tracing::error!(send = %id.reference(), reason, "send outcome unknown; parked for reconciliation");
                    match on_unknown {
                        OnUnknown::Park => {
                            let parked = self.parked(Some(email));
                            self.store
                                .park_send(id, token, &reason, &parked, self.clock.now())
                                .await?;
                        }
                        OnUnknown::Settle => {
                            self.settle(id, token, SendStatus::Ambiguous, &reason)
                                .await?;
                        }
                    }
                    return Ok(SendOutcome::Ambiguous);
                }
            }
        }
        self.release(id, token, &format!("SES kept answering {last_code}"))
            .await
    }

    /// Sends `email` under the claim `token` we hold on `id`; with no email (it could not be
    /// composed), gives the send up for good.
    pub async fn send_composed(
        &self,
        id: &SendIdentity,
        token: &str,
        email: Option<M::Message>,
        deadline: Deadline,
    ) -> Result<SendOutcome, StoreError> {
        match email {
            Some(email) => self.send_claimed(id, token, &email, deadline).await,
            None => {
                self.abandon(id, token, "the email could not be composed")
                    .await
            }
        }
    }

    /// What a parked send keeps: `email` as JSON (unless too large to keep), and when its silence
    /// window ends.
    fn parked(&self, email: Option<&M::Message>) -> Parked {
        let message = email.and_then(|email| match serde_json::to_string(email) {
            Ok(json) if json.len() <= MAX_PARKED_MESSAGE => Some(json),
            Ok(json) => {
                tracing::warn!(bytes = json.len(), "message too large to keep for a resend");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "message could not be kept for a resend");
                None
            }
        });
        let window =
            SignedDuration::try_from(self.silence).unwrap_or(SignedDuration::from_hours(1));
        let now = self.clock.now();
        Parked {
            message,
            decide_at: now.checked_add(window).unwrap_or(now),
        }
    }

    /// Moves the claim we hold to `status` for `reason` (nothing was sent).
    async fn settle(
        &self,
        id: &SendIdentity,
        token: &str,
        status: SendStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store
            .finish_send(id, token, status, None, Some(reason), self.clock.now())
            .await
            .map(|_| ())
    }

    /// Gives up, for good, on an email whose claim we hold (it cannot be composed).
    pub async fn abandon(
        &self,
        id: &SendIdentity,
        token: &str,
        reason: &str,
    ) -> Result<SendOutcome, StoreError> {
        tracing::error!(send = %id.reference(), reason, "email abandoned");
        self.settle(id, token, SendStatus::Failed, reason).await?;
        Ok(SendOutcome::Rejected {
            code: "NotComposed".into(),
        })
    }

    async fn release(
        &self,
        id: &SendIdentity,
        token: &str,
        reason: &str,
    ) -> Result<SendOutcome, StoreError> {
        self.settle(id, token, SendStatus::Retry, reason).await?;
        Ok(SendOutcome::RetryLater {
            reason: reason.to_owned(),
        })
    }

    /// Carries on from a record found on redelivery. `build` is called only if a send is due.
    pub async fn resume<F>(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        deadline: Deadline,
        build: F,
    ) -> Result<SendOutcome, StoreError>
    where
        F: FnOnce() -> Option<M::Message>,
    {
        let now = self.clock.now();
        match record.status {
            SendStatus::Sent
            | SendStatus::Failed
            | SendStatus::Ambiguous
            | SendStatus::Suppressed
            | SendStatus::Unsent => Ok(SendOutcome::Settled(record.status)),
            SendStatus::InProgress if !record.lease_expired(now) => Ok(SendOutcome::InProgress),
            SendStatus::InProgress => {
                let parked = self.parked(build().as_ref());
                if self.store.park_abandoned_send(id, &parked, now).await? {
                    tracing::warn!(send = %id.reference(), "claim abandoned by a dead invocation; parked as ambiguous");
                    Ok(SendOutcome::Ambiguous)
                } else {
                    Ok(SendOutcome::InProgress)
                }
            }
            SendStatus::Retry => {
                let token = crate::domain::ids::new_id();
                match self
                    .store
                    .reclaim_send(id, record, &token, deadline.lease_until(self.clock))
                    .await?
                {
                    Reclaim::Claimed => {}
                    Reclaim::Lost => return Ok(SendOutcome::InProgress),
                    Reclaim::Suppressed => return Ok(SendOutcome::Suppressed),
                }
                self.send_composed(id, &token, build(), deadline).await
            }
        }
    }

    /// Claims `record` on `key` and sends, for emails whose claim is not part of a larger write.
    pub async fn claim_and_send<F>(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        expires_at: i64,
        deadline: Deadline,
        build: F,
    ) -> Result<SendOutcome, StoreError>
    where
        F: FnOnce() -> Option<M::Message>,
    {
        match self.store.claim_send(id, record, expires_at).await? {
            ClaimResult::Claimed(mine) => {
                self.send_composed(id, &mine.claim_token, build(), deadline)
                    .await
            }
            ClaimResult::Taken(theirs) => match theirs.status {
                SendStatus::InProgress if !theirs.lease_expired(self.clock.now()) => {
                    Ok(SendOutcome::InProgress)
                }
                // A lease that ran out is parked as ambiguous (never resent); a send released for
                // a retry (SES said "not now") is re-claimed and sent.
                SendStatus::InProgress | SendStatus::Retry => {
                    self.resume(id, &theirs, deadline, build).await
                }
                other => Ok(SendOutcome::Settled(other)),
            },
            ClaimResult::Suppressed => Ok(SendOutcome::Suppressed),
        }
    }
}

/// The send protocol on the in-memory ledger and mailer: every decision and error path, no
/// network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::send::EmailKind;
    use crate::domain::{CustomerId, MerchantId};
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemSendLedger, ScriptedMailer};

    const TO: &str = "ada@example.com";

    struct World {
        ledger: MemSendLedger,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
    }

    impl World {
        fn new() -> Self {
            Self::with(ScriptedMailer::new())
        }

        fn with(mailer: ScriptedMailer<String>) -> Self {
            Self {
                ledger: MemSendLedger::new(),
                mailer,
                clock: ManualClock::new("2026-12-01T10:00:00Z".parse().unwrap()),
            }
        }

        /// A world whose mailer fails its first calls with `failures`, in order.
        fn failing(failures: impl IntoIterator<Item = SendFailure>) -> Self {
            Self::with(ScriptedMailer::new().then_fail(failures))
        }

        /// A world whose mailer throttles every attempt of the first send.
        fn throttled_out() -> Self {
            Self::failing([throttled(), throttled(), throttled()])
        }

        fn courier(&self) -> Courier<'_, MemSendLedger, ScriptedMailer<String>> {
            fixtures::courier(&self.ledger, &self.mailer, &self.clock)
        }

        fn claim(&self, id: &SendIdentity, deadline: Deadline) -> SendRecord {
            id.claim(TO, self.clock.now(), deadline.lease_until(&self.clock))
        }

        async fn send(&self, id: &SendIdentity) -> SendOutcome {
            self.send_within(id, deadline()).await.unwrap()
        }

        /// Claims and sends `id`'s email within `deadline`.
        async fn send_within(
            &self,
            id: &SendIdentity,
            deadline: Deadline,
        ) -> Result<SendOutcome, StoreError> {
            self.send_with(id, deadline, Some(id.reference())).await
        }

        /// Claims and sends `email` (`None`: it cannot be composed) within `deadline`.
        async fn send_with(
            &self,
            id: &SendIdentity,
            deadline: Deadline,
            email: Option<String>,
        ) -> Result<SendOutcome, StoreError> {
            let record = self.claim(id, deadline);
            self.courier()
                .claim_and_send(id, &record, 0, deadline, || email)
                .await
        }

        /// A redelivery resuming `id` from its record as stored.
        async fn resume(&self, id: &SendIdentity) -> SendOutcome {
            let record = self.ledger.record(id).unwrap();
            self.courier()
                .resume(id, &record, deadline(), || Some(id.reference()))
                .await
                .unwrap()
        }

        /// Claims `id` within `deadline`, sending nothing.
        async fn claimed(&self, id: &SendIdentity, deadline: Deadline) -> SendRecord {
            let record = self.claim(id, deadline);
            let claimed = self.ledger.claim_send(id, &record, 0).await.unwrap();
            assert!(matches!(claimed, ClaimResult::Claimed(_)));
            record
        }

        /// A redelivery of `id` waits while the claim's lease runs, and once it has run out
        /// parks the email as ambiguous.
        async fn waits_then_parks(&self, id: &SendIdentity) {
            assert_eq!(self.send(id).await, SendOutcome::InProgress);
            self.clock.advance(jiff::SignedDuration::from_mins(5));
            assert_eq!(self.send(id).await, SendOutcome::Ambiguous);
        }

        /// Asked for again, `id` settles on its record's `status`.
        async fn settles_on(&self, id: &SendIdentity, status: SendStatus) {
            assert_eq!(self.send(id).await, SendOutcome::Settled(status));
        }

        /// Nothing was sent, and `id`'s record stands at `status` (`None`: no record).
        fn unsent(&self, id: &SendIdentity, status: Option<SendStatus>) {
            assert_eq!(self.mailer.calls(), 0);
            assert_eq!(self.status(id), status);
        }

        fn status(&self, id: &SendIdentity) -> Option<SendStatus> {
            self.ledger.record(id).map(|r| r.status)
        }
    }

    fn merchant() -> MerchantId {
        MerchantId::parse("m", "acme").unwrap()
    }

    fn identity() -> SendIdentity {
        let customer = CustomerId::parse("c", "cust-1").unwrap();
        SendIdentity::new(&merchant(), &customer, EmailKind::OrderThanks, "SO-1", 0)
    }

    fn throttled() -> SendFailure {
        SendFailure::NotSentRetryable {
            code: "TooManyRequestsException".into(),
        }
    }

    #[tokio::test]
    async fn an_email_is_sent_once_however_often_it_is_asked_for() {
        let w = World::new();
        let id = identity();
        let first = w.send(&id).await;
        assert!(matches!(first, SendOutcome::Sent { .. }), "{first:?}");
        assert_eq!(
            w.send(&id).await,
            SendOutcome::Settled(SendStatus::Sent),
            "a replay settles on the record"
        );
        assert_eq!(w.mailer.accepted(), [id.reference()]);
        let record = w.ledger.record(&id).unwrap();
        assert_eq!(record.status, SendStatus::Sent);
        assert_eq!(record.message_id.as_deref(), Some("mem-0001"));
    }

    #[tokio::test]
    async fn of_two_concurrent_claims_one_sends() {
        let w = World::new();
        let id = identity();
        let (a, b) = tokio::join!(w.send(&id), w.send(&id));
        let sent = [&a, &b]
            .iter()
            .filter(|o| matches!(o, SendOutcome::Sent { .. }))
            .count();
        assert_eq!(sent, 1, "{a:?} {b:?}");
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn a_suppressed_recipient_gets_nothing_and_the_record_says_why() {
        let w = World::new();
        let id = identity();
        w.ledger.suppress(&merchant(), TO);
        assert_eq!(w.send(&id).await, SendOutcome::Suppressed);
        assert_eq!(w.mailer.calls(), 0);
        let record = w.ledger.record(&id).unwrap();
        assert_eq!(record.status, SendStatus::Suppressed);
        assert_eq!(record.attempts, 0);
        // Lifting the suppression later does not resend a decided email.
        w.ledger.lift(&merchant(), TO);
        w.settles_on(&id, SendStatus::Suppressed).await;
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn throttling_is_retried_under_the_claim() {
        let w = World::failing([throttled(), throttled()]);
        let id = identity();
        assert!(matches!(w.send(&id).await, SendOutcome::Sent { .. }));
        assert_eq!(w.mailer.calls(), MAX_SEND_ATTEMPTS);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_send_still_throttled_is_released_and_resumed_on_redelivery() {
        let w = World::throttled_out();
        let id = identity();
        let outcome = w.send(&id).await;
        assert!(outcome.wants_redelivery(), "{outcome:?}");
        assert_eq!(w.status(&id), Some(SendStatus::Retry));
        assert!(w.mailer.accepted().is_empty());

        // The redelivery finds the record in `retry`, re-claims it and sends.
        let resumed = w.resume(&id).await;
        assert!(matches!(resumed, SendOutcome::Sent { .. }), "{resumed:?}");
        let record = w.ledger.record(&id).unwrap();
        assert_eq!((record.status, record.attempts), (SendStatus::Sent, 2));
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_send_released_for_a_retry_is_finished_by_the_next_claim() {
        let w = World::throttled_out();
        let id = identity();
        assert!(w.send(&id).await.wants_redelivery());
        // The next run asks for the same email again (a sweep does not read the record first).
        let again = w.send(&id).await;
        assert!(matches!(again, SendOutcome::Sent { .. }), "{again:?}");
        assert_eq!(w.mailer.accepted().len(), 1);
        w.settles_on(&id, SendStatus::Sent).await;
    }

    #[tokio::test]
    async fn a_recipient_suppressed_while_the_send_waited_is_not_resent() {
        let w = World::throttled_out();
        let id = identity();
        assert!(w.send(&id).await.wants_redelivery());
        w.ledger.suppress(&merchant(), TO);
        let resumed = w.resume(&id).await;
        assert_eq!(resumed, SendOutcome::Suppressed);
        assert_eq!(w.status(&id), Some(SendStatus::Suppressed));
        assert!(w.mailer.accepted().is_empty());
    }

    #[tokio::test]
    async fn a_refusal_is_final() {
        let w = World::failing([SendFailure::Rejected {
            code: "MessageRejected".into(),
        }]);
        let id = identity();
        assert_eq!(
            w.send(&id).await,
            SendOutcome::Rejected {
                code: "MessageRejected".into()
            }
        );
        assert_eq!(w.status(&id), Some(SendStatus::Failed));
        w.settles_on(&id, SendStatus::Failed).await;
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_parked_and_never_resent() {
        let w = World::failing([SendFailure::Ambiguous {
            reason: "timeout".into(),
        }]);
        let id = identity();
        assert_eq!(w.send(&id).await, SendOutcome::Ambiguous);
        assert_eq!(w.status(&id), Some(SendStatus::Ambiguous));
        w.settles_on(&id, SendStatus::Ambiguous).await;
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn a_live_claim_waits_and_an_expired_one_is_marked_ambiguous_not_resent() {
        let w = World::new();
        let id = identity();
        // An invocation claimed the email and died before recording anything.
        w.claimed(&id, deadline()).await;
        w.waits_then_parks(&id).await;
        assert_eq!(w.status(&id), Some(SendStatus::Ambiguous));
        assert_eq!(w.mailer.calls(), 0, "the dead holder may have sent it");
    }

    #[tokio::test]
    async fn an_email_that_cannot_be_composed_is_failed_for_good() {
        let w = World::new();
        let id = identity();
        let outcome = w.send_with(&id, deadline(), None).await.unwrap();
        assert_eq!(
            outcome,
            SendOutcome::Rejected {
                code: "NotComposed".into()
            }
        );
        w.unsent(&id, Some(SendStatus::Failed));
    }

    #[tokio::test]
    async fn no_send_is_started_without_time_to_finish_it() {
        let w = World::new();
        let id = identity();
        let deadline = Deadline::after(MIN_SEND_BUDGET / 2);
        let outcome = w.send_within(&id, deadline).await.unwrap();
        assert!(outcome.wants_redelivery(), "{outcome:?}");
        w.unsent(&id, Some(SendStatus::Retry));
    }

    #[tokio::test]
    async fn a_send_whose_record_could_not_be_written_is_never_resent() {
        let w = World::new();
        let id = identity();
        let deadline = deadline();
        let record = w.claimed(&id, deadline).await;
        // SES accepts; recording the message id fails.
        w.ledger.table.fail_next_writes(1, "UpdateItem finish send");
        let outcome = w
            .courier()
            .send_claimed(&id, &record.claim_token, &id.reference(), deadline)
            .await
            .unwrap();
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        // The record still says in progress: a redelivery waits, and after the lease it is
        // parked as ambiguous, never sent again.
        assert_eq!(w.status(&id), Some(SendStatus::InProgress));
        w.waits_then_parks(&id).await;
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_store_failure_when_taking_the_claim_sends_nothing() {
        let w = World::new();
        let id = identity();
        w.ledger
            .table
            .fail_next_writes(1, "TransactWriteItems send claim");
        let deadline = deadline();
        let err = w.send_within(&id, deadline).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        w.unsent(&id, None);
    }
}
