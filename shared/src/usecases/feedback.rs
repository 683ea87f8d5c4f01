//! A survey answer, whoever carried it (the score page's form today), and the merchant's survey
//! results.
//!
//! 1. [`SurveyAnswers::answer`]: the score checked against the merchant's scale, then the answer
//!    stored once. The same answer again (a double click, a resent form, a replayed request)
//!    changes nothing, not even the count of answers; a changed answer replaces the earlier one
//!    and counts. Each write is conditioned on the answer it replaces, so two answers racing for
//!    one order are both counted and neither is lost.
//! 2. Closing the loop, after every answer (so a loop that failed to close closes on the next
//!    one): a detractor cancels the order's pending review request and cross-sell and alerts the
//!    merchant, once per order (the alert's claim keeps it single); a promoter brings the review
//!    request forward. A failure here is logged, never the customer's: the answer is stored.
//! 3. [`results`]: a period's summary and one page of its answers, newest first.

use crate::domain::followup::FollowUpKind;
use crate::domain::order::Order;
use crate::domain::send::{EmailKind, SendIdentity};
use crate::domain::survey::{Band, FeedbackRecord, Summary, clean_comment, summarise};
use crate::domain::{FieldError, Merchant, MerchantId};
use crate::ports::feedback::FeedbackBook;
use crate::ports::{Mailer, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Retention, SendOutcome};
use jiff::{SignedDuration, Timestamp};

/// The email a detractor answer sends the merchant.
pub const DETRACTOR_ALERT: EmailKind = EmailKind::MerchantDetractorAlert;
/// The outcome a follow-up cancelled by a detractor answer records.
pub const CANCELLED_BY_FEEDBACK: &str = "cancelled_by_feedback";
/// How many times an answer is written again after another answer to the same order got there
/// first, before giving up (the customer may post again).
const ANSWER_ATTEMPTS: u32 = 3;

/// Why an answer was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The form's score is missing or not on the merchant's scale.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the survey form carried, as posted.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerForm<'a> {
    pub score: Option<&'a str>,
    pub comment: Option<&'a str>,
}

/// An answer stored (or found stored), and what closing the loop did.
#[derive(Debug)]
pub struct Answered {
    pub record: FeedbackRecord,
    /// Stored now (false: the same answer again, nothing changed).
    pub recorded: bool,
    /// What closing the loop did; `None` if it failed (logged; the next answer closes it).
    pub closed: Option<Closed>,
}

/// What an answer set off.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Closed {
    /// The follow-ups a detractor answer cancelled now.
    pub cancelled: Vec<FollowUpKind>,
    /// The merchant's detractor alert (none for other bands, or without an ops address).
    pub alert: Option<SendOutcome>,
    /// A promoter answer brought the review request forward now.
    pub brought_forward: bool,
}

pub struct SurveyAnswers<'a, B, L, M> {
    pub book: &'a B,
    pub courier: Courier<'a, L, M>,
    /// How long the send records written are kept.
    pub retention: Retention,
}

impl<B: FeedbackBook, L: SendLedger, M: Mailer> SurveyAnswers<'_, B, L, M> {
    /// Records the answer `form` gives about `order` (its survey link verified by the caller),
    /// then closes the loop. `compose` builds the merchant's detractor alert (the answer, the
    /// email's reference) when one is to go.
    pub async fn answer<F>(
        &self,
        merchant: &Merchant,
        order: &Order,
        form: AnswerForm<'_>,
        deadline: Deadline,
        compose: F,
    ) -> Result<Answered, AnswerError>
    where
        F: FnOnce(&Merchant, &FeedbackRecord, &str) -> Option<M::Message>,
    {
        let scale = merchant.settings.survey.scale;
        let score = scale.score("score", form.score.ok_or(FieldError::required("score"))?)?;
        let comment = form.comment.and_then(clean_comment);
        let now = self.courier.clock.now();
        let (record, recorded) = self.record(merchant, order, score, comment, now).await?;
        let closed = match self
            .close_the_loop(merchant, &record, deadline, compose)
            .await
        {
            Ok(closed) => Some(closed),
            Err(e) => {
                // The answer is stored; the loop closes on the customer's next answer or an
                // operator's look at the log. The customer still gets their thank-you.
                tracing::error!(error = %e, "closing the loop failed");
                None
            }
        };
        Ok(Answered {
            record,
            recorded,
            closed,
        })
    }

    /// Stores the answer unless it is the one stored; over the earlier answer it read, else again.
    async fn record(
        &self,
        merchant: &Merchant,
        order: &Order,
        score: u8,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<(FeedbackRecord, bool), StoreError> {
        let scale = merchant.settings.survey.scale;
        let band = scale.band(score);
        for _ in 0..ANSWER_ATTEMPTS {
            let earlier = self.book.feedback(&merchant.id, &order.id).await?;
            if let Some(e) = earlier
                .as_ref()
                .filter(|e| e.score == score && e.comment == comment)
            {
                return Ok((e.clone(), false));
            }
            let answer = FeedbackRecord {
                merchant_id: merchant.id.clone(),
                order_id: order.id.clone(),
                customer_id: order.customer.id.clone(),
                customer_email: order
                    .customer
                    .email
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                customer_name: order.customer.display_name(),
                scale,
                score,
                band,
                comment: comment.clone(),
                answered_at: now,
                first_answered_at: earlier.as_ref().map_or(now, |e| e.first_answered_at),
                answers: earlier.as_ref().map_or(1, |e| e.answers.saturating_add(1)),
            };
            let replaces = earlier.as_ref().map(|e| e.answers);
            if self.book.put_feedback(&answer, replaces).await? {
                tracing::info!(order_id = %answer.order_id, score, ?band, "survey answered");
                return Ok((answer, true));
            }
        }
        Err(StoreError::Transient {
            operation: "PutItem feedback",
            source: "other answers to the order kept landing first".into(),
        })
    }

    /// Detractor: cancel the review request and cross-sell, alert the merchant (once per order).
    /// Promoter: bring the review request forward.
    async fn close_the_loop<F>(
        &self,
        merchant: &Merchant,
        answer: &FeedbackRecord,
        deadline: Deadline,
        compose: F,
    ) -> Result<Closed, StoreError>
    where
        F: FnOnce(&Merchant, &FeedbackRecord, &str) -> Option<M::Message>,
    {
        let now = answer.answered_at;
        let mut closed = Closed::default();
        match answer.band {
            Band::Detractor => {
                closed.cancelled = self
                    .book
                    .cancel_follow_ups(
                        &merchant.id,
                        &answer.order_id,
                        &[FollowUpKind::ReviewRequest, FollowUpKind::CrossSell],
                        CANCELLED_BY_FEEDBACK,
                        now,
                    )
                    .await?;
                tracing::info!(cancelled = ?closed.cancelled, "detractor: pending follow-ups cancelled");
                let Some(ops) = &merchant.ops_email else {
                    return Ok(closed);
                };
                let id = SendIdentity::new(
                    &merchant.id,
                    &answer.customer_id,
                    DETRACTOR_ALERT,
                    answer.order_id.as_str(),
                    0,
                );
                let clock = self.courier.clock;
                let claim = id.claim(ops.as_str(), now, deadline.lease_until(clock));
                let expires = self.retention.send_expiry(merchant, now);
                let outcome = self
                    .courier
                    .claim_and_send(&id, &claim, expires, deadline, || {
                        compose(merchant, answer, &id.reference())
                    })
                    .await?;
                tracing::info!(?outcome, "detractor alert");
                closed.alert = Some(outcome);
            }
            Band::Promoter => {
                let hours = merchant.settings.survey.promoter_review_after_hours();
                let at = now
                    .saturating_add(SignedDuration::from_hours(i64::from(hours)))
                    .unwrap_or(now);
                closed.brought_forward = self
                    .book
                    .bring_forward(
                        &merchant.id,
                        &answer.order_id,
                        FollowUpKind::ReviewRequest,
                        at,
                        "promoter",
                    )
                    .await?;
                tracing::info!(
                    moved = closed.brought_forward,
                    "promoter: review request brought forward"
                );
            }
            Band::Passive => {}
        }
        Ok(closed)
    }
}

/// One page of a period's survey results.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Every answer in the period, on the merchant's scale, against the surveys sent in it.
    pub summary: Summary,
    /// The page's answers, newest first.
    pub responses: Vec<FeedbackRecord>,
    /// The offset of the next page, if there is one.
    pub next: Option<usize>,
}

/// The answers given to `merchant` in `[from, to)`: the summary of all of them and the `limit`
/// newest after the first `offset`. The offset names nothing stored, so it cannot reach another
/// merchant's answers.
pub async fn results<B: FeedbackBook>(
    book: &B,
    merchant: &Merchant,
    (from, to): (Timestamp, Timestamp),
    offset: usize,
    limit: usize,
) -> Result<Results, StoreError> {
    let id: &MerchantId = &merchant.id;
    let mut answers = book.feedback_between(id, from, to).await?;
    let sent = book.surveys_sent_between(id, from, to).await?;
    let counted: Vec<_> = answers.iter().map(FeedbackRecord::counted).collect();
    let summary = summarise(merchant.settings.survey.scale, &counted, sent);
    answers.sort_by_key(|a| std::cmp::Reverse(a.answered_at));
    let total = answers.len();
    let responses: Vec<_> = answers.into_iter().skip(offset).take(limit).collect();
    let next = offset + responses.len();
    Ok(Results {
        summary,
        responses,
        next: (next < total).then_some(next),
    })
}

/// Survey answers on the in-memory feedback book, send ledger and mailer.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::followup::FollowUpStatus;
    use crate::domain::send::SendStatus;
    use crate::domain::{CustomerId, OrderId};
    use crate::testing::ScriptedMailer;
    use crate::testing::feedback::MemFeedback;
    use crate::testing::fixtures;

    struct World {
        book: MemFeedback,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        merchant: Merchant,
        order: Order,
    }

    impl World {
        fn new() -> Self {
            Self {
                book: MemFeedback::new(),
                mailer: ScriptedMailer::new(),
                clock: ManualClock::new("2026-12-01T10:00:00Z".parse().unwrap()),
                merchant: fixtures::merchant(),
                order: fixtures::order(),
            }
        }

        fn m(&self) -> &MerchantId {
            &self.merchant.id
        }

        fn answers(
            &self,
        ) -> SurveyAnswers<'_, MemFeedback, crate::testing::MemSendLedger, ScriptedMailer<String>>
        {
            SurveyAnswers {
                book: &self.book,
                courier: fixtures::courier(&self.book.ledger, &self.mailer, &self.clock),
                retention: Retention {
                    default: std::time::Duration::ZERO,
                },
            }
        }

        /// Answers the sample order's survey; the alert names the score it reports.
        async fn answer_order(
            &self,
            order: &Order,
            score: Option<&str>,
            comment: Option<&str>,
        ) -> Result<Answered, AnswerError> {
            self.answers()
                .answer(
                    &self.merchant,
                    order,
                    AnswerForm { score, comment },
                    fixtures::deadline(),
                    |_, answer, _| Some(format!("alert {} {}", answer.order_id, answer.score)),
                )
                .await
        }

        async fn answer(&self, score: &str, comment: Option<&str>) -> Answered {
            self.answer_order(&self.order, Some(score), comment)
                .await
                .unwrap()
        }

        fn stored(&self) -> Option<FeedbackRecord> {
            ready(self.book.feedback(self.m(), &self.order.id))
        }

        fn schedule(&self, kind: FollowUpKind, in_days: i64) {
            let at = self.clock.now() + SignedDuration::from_hours(24 * in_days);
            let c = &self.order.customer.id;
            self.book.schedule(self.m(), &self.order.id, c, kind, at);
        }

        fn follow_up(&self, kind: FollowUpKind) -> (crate::domain::followup::FollowUp, bool) {
            self.book.follow_up(self.m(), &self.order.id, kind).unwrap()
        }

        fn other_order(&self, id: &str, customer: &str) -> Order {
            let mut order = self.order.clone();
            order.id = OrderId::parse("id", id).unwrap();
            order.customer.id = CustomerId::parse("customer", customer).unwrap();
            order
        }
    }

    /// The in-memory book answers at once: its futures complete on their first poll.
    fn ready<T>(f: impl std::future::Future<Output = Result<T, StoreError>>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r.unwrap(),
            std::task::Poll::Pending => panic!("the in-memory book never waits"),
        }
    }

    #[tokio::test]
    async fn the_same_answer_again_changes_nothing_not_even_the_count() {
        let w = World::new();
        let first = w.answer("8", Some("fine")).await;
        assert!(first.recorded);
        let stored = w.stored().unwrap();
        assert_eq!((stored.score, stored.answers), (8, 1));
        // A double click, a resent form: later, the same answer.
        w.clock.advance(SignedDuration::from_mins(5));
        let again = w.answer("8", Some("  fine ")).await;
        assert!(!again.recorded);
        assert_eq!(again.record, stored);
        assert_eq!(w.stored(), Some(stored));
    }

    #[tokio::test]
    async fn a_changed_answer_replaces_the_earlier_one_and_counts() {
        let w = World::new();
        w.answer("9", None).await;
        let first_at = w.clock.now();
        w.clock.advance(SignedDuration::from_hours(1));
        let changed = w.answer("9", Some("great tent")).await;
        assert!(changed.recorded);
        let stored = w.stored().unwrap();
        assert_eq!(stored.answers, 2);
        assert_eq!(stored.comment.as_deref(), Some("great tent"));
        assert_eq!(stored.first_answered_at, first_at);
        assert_eq!(stored.answered_at, w.clock.now());
    }

    #[tokio::test]
    async fn a_detractor_alerts_the_merchant_once_and_cancels_the_review_request_and_cross_sell() {
        let w = World::new();
        for kind in [
            FollowUpKind::ReviewRequest,
            FollowUpKind::CrossSell,
            FollowUpKind::UsageTips,
        ] {
            w.schedule(kind, 3);
        }
        let answered = w.answer("2", Some("tent leaked")).await;
        assert_eq!(answered.record.band, Band::Detractor);
        let closed = answered.closed.unwrap();
        assert!(
            matches!(closed.alert, Some(SendOutcome::Sent { .. })),
            "{closed:?}"
        );
        assert_eq!(
            closed.cancelled,
            [FollowUpKind::ReviewRequest, FollowUpKind::CrossSell]
        );
        let (review, due) = w.follow_up(FollowUpKind::ReviewRequest);
        assert_eq!(review.status, FollowUpStatus::Cancelled);
        assert_eq!(review.outcome.as_deref(), Some(CANCELLED_BY_FEEDBACK));
        assert!(!due, "out of the due index");
        let (tips, due) = w.follow_up(FollowUpKind::UsageTips);
        assert_eq!((tips.status, due), (FollowUpStatus::Scheduled, true));

        // The same answer again, then a changed detractor answer: the alert stays single.
        w.answer("2", Some("tent leaked")).await;
        let changed = w.answer("4", Some("and the zip broke")).await;
        assert!(changed.recorded);
        let closed = changed.closed.unwrap();
        assert_eq!(closed.alert, Some(SendOutcome::Settled(SendStatus::Sent)));
        assert!(closed.cancelled.is_empty());
        assert_eq!(w.mailer.accepted(), ["alert SO-1001 2"]);
    }

    #[tokio::test]
    async fn the_same_detractor_answer_posted_twice_at_once_is_recorded_and_alerted_once() {
        let w = World::new();
        let (a, b) = tokio::join!(w.answer("1", None), w.answer("1", None));
        assert_eq!(
            [a.recorded, b.recorded].iter().filter(|r| **r).count(),
            1,
            "recorded once"
        );
        assert_eq!(w.stored().unwrap().answers, 1);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn an_answer_that_lands_between_the_read_and_the_write_is_counted_not_lost() {
        let w = World::new();
        let rival = FeedbackRecord {
            merchant_id: w.merchant.id.clone(),
            order_id: w.order.id.clone(),
            customer_id: w.order.customer.id.clone(),
            customer_email: w.order.customer.email.clone().unwrap().to_string(),
            customer_name: None,
            scale: w.merchant.settings.survey.scale,
            score: 7,
            band: Band::Passive,
            comment: None,
            answered_at: w.clock.now(),
            first_answered_at: w.clock.now(),
            answers: 1,
        };
        w.book.answer_between(rival);
        let answered = w.answer("10", None).await;
        assert!(answered.recorded);
        let stored = w.stored().unwrap();
        assert_eq!((stored.score, stored.answers), (10, 2));
    }

    #[tokio::test]
    async fn a_promoter_brings_the_review_request_forward_and_alerts_nobody() {
        let w = World::new();
        w.schedule(FollowUpKind::ReviewRequest, 5);
        let answered = w.answer("10", None).await;
        let closed = answered.closed.unwrap();
        assert!(closed.brought_forward);
        assert_eq!(closed.alert, None);
        let (review, due) = w.follow_up(FollowUpKind::ReviewRequest);
        assert_eq!(review.due_at, w.clock.now() + SignedDuration::from_hours(2));
        assert_eq!((review.status, due), (FollowUpStatus::Scheduled, true));
        // The same answer again moves nothing further.
        let again = w.answer("10", None).await;
        assert!(!again.closed.unwrap().brought_forward);
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_score_off_the_scale_or_missing_names_the_field_and_stores_nothing() {
        let w = World::new();
        for score in [Some("11"), Some("x"), None] {
            let err = w.answer_order(&w.order, score, None).await.unwrap_err();
            match err {
                AnswerError::Invalid(e) => assert_eq!(e.field, "score"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(w.stored(), None);
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_store_failure_records_nothing_and_alerts_nobody_until_the_customer_posts_again() {
        let w = World::new();
        w.book.table().fail_next_writes(1, "PutItem feedback");
        let err = w.answer_order(&w.order, Some("3"), None).await.unwrap_err();
        assert!(
            matches!(err, AnswerError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert_eq!(w.stored(), None);
        assert_eq!(w.mailer.calls(), 0);
        let answered = w.answer("3", None).await;
        assert!(answered.recorded);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_loop_that_failed_to_close_keeps_the_answer_and_closes_on_the_next_post() {
        let w = World::new();
        w.schedule(FollowUpKind::ReviewRequest, 3);
        w.book.fail_next_cancel();
        let answered = w.answer("0", None).await;
        assert!(answered.recorded && answered.closed.is_none());
        assert_eq!(w.stored().unwrap().score, 0);
        assert_eq!(w.mailer.calls(), 0);
        // The customer posts the same answer again: nothing is recorded, the loop closes.
        let again = w.answer("0", None).await;
        assert!(!again.recorded);
        let closed = again.closed.unwrap();
        assert_eq!(closed.cancelled, [FollowUpKind::ReviewRequest]);
        assert!(matches!(closed.alert, Some(SendOutcome::Sent { .. })));
    }

    #[tokio::test]
    async fn a_suppressed_ops_address_gets_no_alert() {
        let w = World::new();
        w.book.ledger.suppress(w.m(), "ops@acme.example");
        let closed = w.answer("1", None).await.closed.unwrap();
        assert_eq!(closed.alert, Some(SendOutcome::Suppressed));
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn results_summarise_the_period_and_page_its_answers_newest_first() {
        let w = World::new();
        let from = w.clock.now();
        for (i, score) in ["10", "9", "3"].into_iter().enumerate() {
            let order = w.other_order(&format!("SO-{i}"), &format!("c{i}"));
            w.book.survey_sent(w.m(), &order.id, from);
            w.answer_order(&order, Some(score), None).await.unwrap();
            w.clock.advance(SignedDuration::from_hours(1));
        }
        w.book
            .survey_sent(w.m(), &OrderId::parse("id", "SO-9").unwrap(), from);
        // An answer at the period's end is the next period's.
        let to = w.clock.now();
        let late = w.other_order("SO-late", "c9");
        w.answer_order(&late, Some("0"), None).await.unwrap();

        let first = results(&w.book, &w.merchant, (from, to), 0, 2)
            .await
            .unwrap();
        assert_eq!(
            (first.summary.responses, first.summary.surveys_sent),
            (3, 4)
        );
        assert_eq!(first.summary.response_rate, Some(0.75));
        assert_eq!(first.summary.score, Some(33.3));
        let ids: Vec<_> = first
            .responses
            .iter()
            .map(|r| r.order_id.as_str())
            .collect();
        assert_eq!(ids, ["SO-2", "SO-1"]);
        assert_eq!(first.next, Some(2));
        let rest = results(&w.book, &w.merchant, (from, to), 2, 2)
            .await
            .unwrap();
        let ids: Vec<_> = rest.responses.iter().map(|r| r.order_id.as_str()).collect();
        assert_eq!((ids, rest.next), (vec!["SO-0"], None));
    }
}
