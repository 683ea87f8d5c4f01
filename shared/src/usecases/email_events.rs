//! Recording an email event, whatever delivered it: SES reports what happened to an email (sent,
//! delivered, bounced, complained about, opened, clicked, …) and this one path decides.
//!
//! 1. The event names its merchant and its send record (the `X-Aftercare-Merchant` and
//!    `X-Aftercare-Ref` headers every message carries); one that does not is mail Aftercare did
//!    not send: [`EventOutcome::Unmatched`], nothing stored.
//! 2. It is recorded once on that send record ([`EmailEventLog::apply_email_event`]): only on the
//!    record holding its SES message id, once per event id (a redelivery is a
//!    [`EventOutcome::Duplicate`]), whatever order events arrive in; a hard bounce or a complaint
//!    suppresses the address for the merchant at once, the eighth soft bounce in a row too.
//! 3. A complaint that takes the merchant's complaint rate over the last [`WINDOW_DAYS`] UTC days
//!    (from the daily counters) above [`COMPLAINT_ALERT_RATE`] alerts the merchant's operations
//!    address, once that day: the alert is an email of its own identity (merchant, day) through
//!    the send protocol. Gmail and Yahoo filter senders above 0.3%; SES reviews accounts above
//!    about 0.1%: the alert comes while there is still room to act.

use crate::domain::email_event::{
    Applied, DailyStats, EmailEvent, EmailEventKind, SuppressionReason,
};
use crate::domain::send::{EmailKind, SendIdentity};
use crate::domain::{EmailAddress, Merchant, MerchantId};
use crate::lambda::error::HandlerError;
use crate::ports::email_events::{EmailEventLog, EmailStats};
use crate::ports::{Mailer, MerchantDirectory, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Retention, SendOutcome};
use jiff::civil::Date;
use jiff::{Span, Timestamp};
use std::collections::BTreeMap;

/// Complaints per email sent, over [`WINDOW_DAYS`], above which the merchant is alerted.
pub const COMPLAINT_ALERT_RATE: f64 = 0.001;
/// Days the complaint rate is measured over (today included).
pub const WINDOW_DAYS: i64 = 7;
/// The email the merchant's operations address gets when the complaint rate is too high.
pub const COMPLAINT_ALERT: EmailKind = EmailKind::MerchantComplaintAlert;

/// Why an event could not be recorded (its trigger should deliver it again).
#[derive(Debug, thiserror::Error)]
pub enum EmailEventError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EmailEventError {
    /// Whether a redelivery may succeed where this attempt failed.
    pub fn is_transient(&self) -> bool {
        match self {
            EmailEventError::Store(e) => e.is_transient(),
        }
    }
}

impl From<EmailEventError> for HandlerError {
    /// An event not recorded ends the invocation like the store failure it is: `Transient` (the
    /// trigger delivers it again) or `Internal`. (Here rather than in `lambda::error`, which the
    /// use-cases' sweep driver imports: the conversion keeps the layers free of a circle.)
    fn from(e: EmailEventError) -> Self {
        match e {
            EmailEventError::Store(e) => e.into(),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Recorded now: the addresses it suppressed, and what became of the complaint-rate alert if
    /// one was due.
    Recorded {
        suppressed: Vec<(String, SuppressionReason)>,
        complaint_alert: Option<SendOutcome>,
    },
    /// Recorded before (a redelivery): nothing changed.
    Duplicate,
    /// Not about an email of ours: nothing recorded.
    Unmatched,
}

/// The merchant's email over the complaint window when its complaint rate is above the limit:
/// what the alert reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplaintReport {
    /// The window's first and last UTC day.
    pub from: Date,
    pub to: Date,
    pub total: DailyStats,
    /// The counters per kind of email.
    pub by_kind: BTreeMap<String, DailyStats>,
}

pub struct RecordEmailEvent<'a, E, D, L, M> {
    /// The email-event log and the daily counters it keeps.
    pub log: &'a E,
    pub merchants: &'a D,
    pub courier: Courier<'a, L, M>,
    /// How long the send records written are kept.
    pub retention: Retention,
}

impl<E, D, L, M> RecordEmailEvent<'_, E, D, L, M>
where
    E: EmailEventLog + EmailStats,
    D: MerchantDirectory,
    L: SendLedger,
    M: Mailer,
{
    /// Records `event` (its trigger's id `event_id`, the same on every redelivery). `compose`
    /// builds the complaint-rate alert (the merchant, the report, the operations address, the
    /// email's reference) when one is to go.
    pub async fn record<F>(
        &self,
        event_id: &str,
        event: &EmailEvent,
        deadline: Deadline,
        compose: F,
    ) -> Result<EventOutcome, EmailEventError>
    where
        F: FnOnce(&Merchant, &ComplaintReport, &EmailAddress, &str) -> Option<M::Message>,
    {
        let merchant = event
            .merchant
            .as_deref()
            .and_then(|m| MerchantId::parse("merchant", m).ok());
        let (Some(merchant), Some(send_ref)) = (merchant, event.send_ref.as_deref()) else {
            tracing::info!(message_id = %event.message_id, "SES event of a message Aftercare did not send");
            return Ok(EventOutcome::Unmatched);
        };
        let now = self.courier.clock.now();
        let applied = self
            .log
            .apply_email_event(&merchant, send_ref, event_id, event, now)
            .await?;
        Ok(match applied {
            Applied::Recorded { suppressed } => {
                tracing::info!(
                    kind = event.kind.as_str(),
                    suppressed = suppressed.len(),
                    "email event recorded"
                );
                let complaint_alert = match event.kind {
                    EmailEventKind::Complaint { .. } => {
                        self.after_complaint(&merchant, now, deadline, compose)
                            .await?
                    }
                    _ => None,
                };
                EventOutcome::Recorded {
                    suppressed,
                    complaint_alert,
                }
            }
            Applied::Duplicate => EventOutcome::Duplicate,
            Applied::Unmatched => {
                tracing::info!(message_id = %event.message_id, "no send record holds this message");
                EventOutcome::Unmatched
            }
        })
    }

    /// Checks the merchant's complaint rate after a complaint; alerts once a day above the limit.
    /// Answers what became of the alert, if one was due.
    async fn after_complaint<F>(
        &self,
        merchant_id: &MerchantId,
        now: Timestamp,
        deadline: Deadline,
        compose: F,
    ) -> Result<Option<SendOutcome>, StoreError>
    where
        F: FnOnce(&Merchant, &ComplaintReport, &EmailAddress, &str) -> Option<M::Message>,
    {
        let Some(merchant) = self.merchants.merchant(merchant_id).await? else {
            return Ok(None);
        };
        let Some(ops) = merchant.ops_email.clone() else {
            return Ok(None);
        };
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let from = today
            .checked_sub(Span::new().days(WINDOW_DAYS - 1))
            .unwrap_or(today);
        let rows = self.log.email_stats(merchant_id, from, today).await?;
        let mut report = ComplaintReport {
            from,
            to: today,
            total: DailyStats::default(),
            by_kind: BTreeMap::new(),
        };
        for r in &rows {
            report.total.add(r);
            report.by_kind.entry(r.kind.clone()).or_default().add(r);
        }
        let total = &report.total;
        if total.sent == 0 || total.complaint_rate() <= COMPLAINT_ALERT_RATE {
            return Ok(None);
        }
        tracing::warn!(
            rate = total.complaint_rate(),
            sent = total.sent,
            complained = total.complained,
            "complaint rate above the limit"
        );
        let id = SendIdentity::merchant_alert(merchant_id, COMPLAINT_ALERT, &today.to_string());
        let claim = id.claim(ops.as_str(), now, deadline.lease_until(self.courier.clock));
        let expires = self.retention.send_expiry(&merchant, now);
        let outcome = self
            .courier
            .claim_and_send(&id, &claim, expires, deadline, || {
                compose(&merchant, &report, &ops, &id.reference())
            })
            .await?;
        Ok(Some(outcome))
    }
}

/// Email events on the in-memory email-event log (sharing its table with the send ledger),
/// merchants and mailer.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::CustomerId;
    use crate::domain::send::SendStatus;
    use crate::testing::email_events::MemEmailEvents;
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemMerchants, MemSendLedger, ScriptedMailer};

    const NOW: &str = "2026-11-20T09:00:00Z";

    /// An email Aftercare sent (its send record holds the SES message id).
    struct Sent {
        reference: String,
        message_id: String,
        recipient: String,
    }

    struct World {
        log: MemEmailEvents,
        ledger: MemSendLedger,
        merchants: MemMerchants,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        merchant: Merchant,
    }

    impl World {
        fn new() -> Self {
            Self::with(fixtures::merchant())
        }

        fn with(merchant: Merchant) -> Self {
            let ledger = MemSendLedger::new();
            Self {
                log: MemEmailEvents::on(ledger.table.clone()),
                ledger,
                merchants: MemMerchants::with(merchant.clone()),
                mailer: ScriptedMailer::new(),
                clock: ManualClock::new(NOW.parse().unwrap()),
                merchant,
            }
        }

        fn courier(&self) -> Courier<'_, MemSendLedger, ScriptedMailer<String>> {
            fixtures::courier(&self.ledger, &self.mailer, &self.clock)
        }

        /// Sends `customer` their thank-you email for order `order`.
        async fn sent(&self, customer: &str, order: &str) -> Sent {
            let c = CustomerId::parse("customer", customer).unwrap();
            let id = SendIdentity::new(&self.merchant.id, &c, EmailKind::OrderThanks, order, 0);
            let recipient = format!("{customer}@example.com");
            let deadline = deadline();
            let claim = id.claim(
                &recipient,
                self.clock.now(),
                deadline.lease_until(&self.clock),
            );
            let outcome = self
                .courier()
                .claim_and_send(&id, &claim, 0, deadline, || Some(format!("thanks {order}")))
                .await
                .unwrap();
            let SendOutcome::Sent { message_id } = outcome else {
                panic!("not sent: {outcome:?}");
            };
            Sent {
                reference: id.reference(),
                message_id,
                recipient,
            }
        }

        /// SES's `kind` event about `sent`, `minutes` after the send.
        fn event(&self, sent: &Sent, kind: EmailEventKind, minutes: i64) -> EmailEvent {
            let sent_at = self.clock.now();
            EmailEvent {
                kind,
                message_id: sent.message_id.clone(),
                at: sent_at + Span::new().minutes(minutes),
                sent_at,
                recipients: vec![sent.recipient.clone()],
                merchant: Some(self.merchant.id.to_string()),
                send_ref: Some(sent.reference.clone()),
            }
        }

        /// Records `event` under `id`; the alert's email names its address and its counts.
        async fn record(
            &self,
            id: &str,
            event: &EmailEvent,
        ) -> Result<EventOutcome, EmailEventError> {
            let usecase = RecordEmailEvent {
                log: &self.log,
                merchants: &self.merchants,
                courier: self.courier(),
                retention: Retention {
                    default: std::time::Duration::ZERO,
                },
            };
            usecase
                .record(id, event, deadline(), |_, report, ops, _| {
                    Some(format!(
                        "alert to {ops}: {} of {}",
                        report.total.complained, report.total.sent
                    ))
                })
                .await
        }

        /// Records SES's Send event of `sent` under `id`.
        async fn record_send(&self, id: &str, sent: &Sent) {
            let send = self.event(sent, EmailEventKind::Send, 0);
            self.record(id, &send).await.unwrap();
        }

        /// The merchant's email stats of today.
        async fn stats_today(&self) -> Vec<DailyStats> {
            let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
            self.log
                .email_stats(&self.merchant.id, today, today)
                .await
                .unwrap()
        }

        fn suppressed(&self, email: &str) -> Option<String> {
            self.log.suppression(&self.merchant.id, email)
        }

        fn alerts(&self) -> Vec<String> {
            let mut alerts = self.mailer.accepted();
            alerts.retain(|m| m.starts_with("alert"));
            alerts
        }
    }

    fn recorded(suppressed: &[(&str, SuppressionReason)]) -> EventOutcome {
        EventOutcome::Recorded {
            suppressed: suppressed
                .iter()
                .map(|(e, r)| ((*e).to_owned(), *r))
                .collect(),
            complaint_alert: None,
        }
    }

    fn hard() -> EmailEventKind {
        EmailEventKind::Bounce {
            hard: true,
            sub_type: "General".into(),
        }
    }

    fn soft() -> EmailEventKind {
        EmailEventKind::Bounce {
            hard: false,
            sub_type: "MailboxFull".into(),
        }
    }

    fn complaint() -> EmailEventKind {
        EmailEventKind::Complaint {
            feedback_type: Some("abuse".into()),
        }
    }

    /// Ann complains (`a-2`): the complaint suppresses her, and no alert goes out.
    async fn complains_without_alert(w: &World, ann: &Sent) {
        let outcome = w
            .record("a-2", &w.event(ann, complaint(), 5))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            recorded(&[("ann@example.com", SuppressionReason::Complaint)])
        );
        assert!(w.alerts().is_empty());
    }

    #[tokio::test]
    async fn an_event_is_recorded_once_on_its_own_send_record_in_any_order() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        let delivered = w.event(&ann, EmailEventKind::Delivery, 1);
        assert_eq!(w.record("ev-1", &delivered).await.unwrap(), recorded(&[]));
        let opened = w.event(&ann, EmailEventKind::Open, 60);
        assert_eq!(w.record("ev-2", &opened).await.unwrap(), recorded(&[]));
        // The Send event arrives last: recorded, but the state stays "open".
        let send = w.event(&ann, EmailEventKind::Send, 0);
        assert_eq!(w.record("ev-3", &send).await.unwrap(), recorded(&[]));
        let record = w.log.send_record(&w.merchant.id, &ann.reference).unwrap();
        assert_eq!(record["delivery_state"], "open");
        let types: Vec<_> = record["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types, ["delivery", "open", "send"]);
        let stats = w.stats_today().await;
        assert_eq!(
            (
                stats.len(),
                stats[0].sent,
                stats[0].delivered,
                stats[0].opened
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(w.suppressed(&ann.recipient), None);
    }

    #[tokio::test]
    async fn a_redelivered_event_is_a_duplicate_and_counts_once_even_at_the_same_time() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        let delivered = w.event(&ann, EmailEventKind::Delivery, 1);
        let (a, b) = tokio::join!(w.record("ev-1", &delivered), w.record("ev-1", &delivered));
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, EventOutcome::Duplicate));
        assert_eq!(outcomes, [recorded(&[]), EventOutcome::Duplicate]);
        assert_eq!(
            w.record("ev-1", &delivered).await.unwrap(),
            EventOutcome::Duplicate
        );
        // Another delivery event of the same email is recorded, but the email counts once.
        assert_eq!(w.record("ev-2", &delivered).await.unwrap(), recorded(&[]));
        let stats = w.stats_today().await;
        assert_eq!(stats[0].delivered, 1);
        let record = w.log.send_record(&w.merchant.id, &ann.reference).unwrap();
        assert_eq!(record["events"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_event_of_another_message_or_of_mail_we_did_not_send_is_unmatched() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        // Naming Ann's record, but another message id: never recorded on it.
        let mut forged = w.event(&ann, complaint(), 5);
        forged.message_id = "someone-elses-message".into();
        assert_eq!(
            w.record("ev-1", &forged).await.unwrap(),
            EventOutcome::Unmatched
        );
        // A record that does not exist.
        let mut unknown = w.event(&ann, EmailEventKind::Delivery, 1);
        unknown.send_ref = Some("SEND#ann#order_thanks#SO-404#0".into());
        assert_eq!(
            w.record("ev-2", &unknown).await.unwrap(),
            EventOutcome::Unmatched
        );
        // Mail someone else sent through the account: no headers of ours.
        let mut foreign = w.event(&ann, complaint(), 5);
        foreign.merchant = None;
        assert_eq!(
            w.record("ev-3", &foreign).await.unwrap(),
            EventOutcome::Unmatched
        );
        let mut foreign = w.event(&ann, complaint(), 5);
        foreign.send_ref = None;
        assert_eq!(
            w.record("ev-4", &foreign).await.unwrap(),
            EventOutcome::Unmatched
        );
        assert_eq!(w.suppressed(&ann.recipient), None);
        let record = w.log.send_record(&w.merchant.id, &ann.reference).unwrap();
        assert!(record.get("events").is_none(), "{record}");
        assert!(w.alerts().is_empty());
    }

    #[tokio::test]
    async fn a_hard_bounce_suppresses_at_once_and_the_next_email_is_not_sent() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        let bounce = w.event(&ann, hard(), 1);
        assert_eq!(
            w.record("ev-1", &bounce).await.unwrap(),
            recorded(&[("ann@example.com", SuppressionReason::HardBounce)])
        );
        assert_eq!(w.suppressed(&ann.recipient).as_deref(), Some("hard_bounce"));
        assert_eq!(
            w.record("ev-1", &bounce).await.unwrap(),
            EventOutcome::Duplicate
        );
        // The send ledger's guard sees the suppression: Ann's next email is never sent.
        let calls = w.mailer.calls();
        let c = CustomerId::parse("customer", "ann").unwrap();
        let next = SendIdentity::new(&w.merchant.id, &c, EmailKind::OrderThanks, "SO-2", 0);
        let claim = next.claim(&ann.recipient, w.clock.now(), w.clock.now());
        let outcome = w
            .courier()
            .claim_and_send(&next, &claim, 0, deadline(), || Some("thanks SO-2".into()))
            .await
            .unwrap();
        assert_eq!(outcome, SendOutcome::Suppressed);
        assert_eq!(w.mailer.calls(), calls);
    }

    #[tokio::test]
    async fn the_eighth_soft_bounce_in_a_row_suppresses_and_the_seventh_does_not() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        for i in 0..7 {
            let bounce = w.event(&ann, soft(), i);
            assert_eq!(
                w.record(&format!("soft-{i}"), &bounce).await.unwrap(),
                recorded(&[]),
                "bounce {i}"
            );
        }
        assert_eq!(w.suppressed(&ann.recipient), None);
        // A redelivered bounce does not count twice.
        let again = w.event(&ann, soft(), 6);
        assert_eq!(
            w.record("soft-6", &again).await.unwrap(),
            EventOutcome::Duplicate
        );
        assert_eq!(w.suppressed(&ann.recipient), None);
        let eighth = w.event(&ann, soft(), 7);
        assert_eq!(
            w.record("soft-7", &eighth).await.unwrap(),
            recorded(&[("ann@example.com", SuppressionReason::RepeatedSoftBounces)])
        );
        assert_eq!(
            w.suppressed(&ann.recipient).as_deref(),
            Some("repeated_soft_bounces")
        );
    }

    #[tokio::test]
    async fn a_delivery_after_the_last_soft_bounce_ends_the_streak_a_late_one_does_not() {
        let w = World::new();
        let (ann, bob) = (w.sent("ann", "SO-1").await, w.sent("bob", "SO-2").await);
        for sent in [&ann, &bob] {
            for i in 0..7 {
                let bounce = w.event(sent, soft(), 10 + i);
                let id = format!("{}-soft-{i}", sent.recipient);
                assert_eq!(w.record(&id, &bounce).await.unwrap(), recorded(&[]));
            }
        }
        // Ann's delivery is reported late (it happened before her last bounce): the streak goes
        // on, and her next soft bounce is the eighth.
        let early = w.event(&ann, EmailEventKind::Delivery, 12);
        assert_eq!(
            w.record("ann-delivery", &early).await.unwrap(),
            recorded(&[])
        );
        let eighth = w.event(&ann, soft(), 40);
        assert_eq!(
            w.record("ann-soft-7", &eighth).await.unwrap(),
            recorded(&[("ann@example.com", SuppressionReason::RepeatedSoftBounces)])
        );
        // Bob's delivery happened after his last bounce: the streak starts again.
        let after = w.event(&bob, EmailEventKind::Delivery, 30);
        assert_eq!(
            w.record("bob-delivery", &after).await.unwrap(),
            recorded(&[])
        );
        for i in 0..7 {
            let bounce = w.event(&bob, soft(), 40 + i);
            let id = format!("bob-soft-after-{i}");
            assert_eq!(w.record(&id, &bounce).await.unwrap(), recorded(&[]), "{i}");
        }
        assert_eq!(w.suppressed(&bob.recipient), None);
    }

    #[tokio::test]
    async fn a_complaint_above_the_rate_alerts_the_ops_address_once_that_day() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        let bob = w.sent("bob", "SO-2").await;
        w.record_send("a-1", &ann).await;
        w.record_send("b-1", &bob).await;
        // 1 complaint in 2 emails is far above 0.1%.
        let outcome = w
            .record("a-2", &w.event(&ann, complaint(), 5))
            .await
            .unwrap();
        let EventOutcome::Recorded {
            suppressed,
            complaint_alert,
        } = outcome
        else {
            panic!("not recorded: {outcome:?}");
        };
        assert_eq!(
            suppressed,
            [("ann@example.com".to_owned(), SuppressionReason::Complaint)]
        );
        assert!(
            matches!(complaint_alert, Some(SendOutcome::Sent { .. })),
            "{complaint_alert:?}"
        );
        assert_eq!(w.alerts(), ["alert to ops@acme.example: 1 of 2"]);
        // A second complaint that day is recorded; the day's alert was sent: nothing more.
        let outcome = w
            .record("b-2", &w.event(&bob, complaint(), 6))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            EventOutcome::Recorded {
                suppressed: vec![("bob@example.com".to_owned(), SuppressionReason::Complaint)],
                complaint_alert: Some(SendOutcome::Settled(SendStatus::Sent)),
            }
        );
        assert_eq!(w.alerts().len(), 1);
        // The next day, still above the rate: that day's alert.
        w.clock.advance(jiff::SignedDuration::from_hours(24));
        let carl = w.sent("carl", "SO-3").await;
        w.record_send("c-1", &carl).await;
        w.record("c-2", &w.event(&carl, complaint(), 5))
            .await
            .unwrap();
        assert_eq!(w.alerts().len(), 2);
    }

    #[tokio::test]
    async fn a_complaint_below_the_rate_sends_no_alert() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        w.record_send("a-1", &ann).await;
        // 1 complaint in 1,000 emails over the week is the limit itself, not above it.
        let day = w.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let earlier = day.checked_sub(Span::new().days(WINDOW_DAYS - 1)).unwrap();
        w.log.add_stats(
            &w.merchant.id,
            &DailyStats {
                day: earlier.to_string(),
                kind: "shipment_update".into(),
                sent: 999,
                ..DailyStats::default()
            },
        );
        complains_without_alert(&w, &ann).await;
    }

    #[tokio::test]
    async fn a_merchant_without_an_ops_address_gets_no_alert() {
        let mut input = crate::domain::merchant::tests::sample_input();
        input.as_object_mut().unwrap().remove("ops_email");
        let w = World::with(fixtures::merchant_from(input));
        let ann = w.sent("ann", "SO-1").await;
        w.record_send("a-1", &ann).await;
        complains_without_alert(&w, &ann).await;
        assert_eq!(w.suppressed(&ann.recipient).as_deref(), Some("complaint"));
    }

    #[tokio::test]
    async fn a_transient_store_failure_surfaces_as_retryable_and_the_redelivery_records_it() {
        let w = World::new();
        let ann = w.sent("ann", "SO-1").await;
        let bounce = w.event(&ann, hard(), 1);
        w.ledger.table.fail_next_writes(1, "UpdateItem email event");
        let err = w.record("ev-1", &bounce).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(HandlerError::from(err).error_type, "Transient");
        assert_eq!(w.suppressed(&ann.recipient), None);
        // The trigger delivers it again: recorded, once.
        assert_eq!(
            w.record("ev-1", &bounce).await.unwrap(),
            recorded(&[("ann@example.com", SuppressionReason::HardBounce)])
        );
        assert_eq!(
            w.record("ev-1", &bounce).await.unwrap(),
            EventOutcome::Duplicate
        );
    }
}
