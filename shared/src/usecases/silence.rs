//! Deciding a parked send when SES stayed silent about it.
//!
//! A send whose outcome is unknown (SES timed out or failed after the request may have arrived, or
//! an invocation died holding the claim) is parked `ambiguous` with its composed message and a
//! due entry at the end of the silence window ([`crate::usecases::send::Courier::send_claimed`],
//! [`crate::usecases::send::Courier::resume`]). SES publishes an event (Send, Delivery, Bounce, …)
//! for every message it accepts, and email-events makes the record `sent` when it arrives. So a
//! record still parked when the window has passed was, on the evidence, never accepted, and the
//! sweep decides it by the kind's policy ([`crate::domain::send::EmailKind::after_silence`]):
//!
//! * transactional (a receipt, a shipping or billing notice, a privacy answer): sent once more,
//!   under a resend claim on the same record (`ambiguous → in_progress`, `resolution =
//!   resent_after_silence`) taken only where the sweep saw it, so one sweep of many resends it
//!   and no record is resent twice. The resend's own unknown outcome is final (`ambiguous`, no new
//!   due entry); a resend whose holder died is found again at its check time and settled the same
//!   way; a resend SES asked to wait for (`retry`) is taken again at that check.
//! * marketing (tips, the survey, a review request, a cross-sell): closed as `unsent`
//!   (`resolution = closed_after_silence`). Also every kind whose message could not be kept.
//!
//! Records SES spoke about meanwhile (now `sent`) only leave the index. The residual risk: SES
//! accepted the message but its event did not reach us within the window; then the resend is the
//! one duplicate.

use crate::domain::send::{AfterSilence, Reclaim, Resolution, SendRecord, SendStatus};
use crate::ports::{Due, Mailer, ParkedSends, ResendClaim, StoreError};
use crate::usecases::send::{Courier, Deadline, SendOutcome};
use jiff::SignedDuration;

/// How long after a resend's lease its record is looked at again (a resend that died, or that SES
/// asked to wait for).
pub const RESEND_CHECK: SignedDuration = SignedDuration::from_mins(10);

/// What the silence sweep did with one parked send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceOutcome {
    /// Sent once more (transactional).
    Resent,
    /// Closed as `unsent` (marketing, or no message kept to resend).
    Closed,
    /// The resend's own outcome is unknown (or its holder died): `ambiguous` for good.
    ResendUnknown,
    /// SES refused the resend for good.
    Rejected,
    /// The recipient was suppressed since: nothing sent, the record says so.
    Suppressed,
    /// SES spoke about it meanwhile, or it was otherwise settled: taken out of the index only.
    AlreadySettled,
    /// Another sweep moved it first.
    Taken,
    /// Left for a later run (SES asked to wait, the deadline came near, a resend still leased).
    LeftDue,
}

impl SilenceOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            SilenceOutcome::Resent => "resent",
            SilenceOutcome::Closed => "closed",
            SilenceOutcome::ResendUnknown => "resend_unknown",
            SilenceOutcome::Rejected => "rejected",
            SilenceOutcome::Suppressed => "suppressed",
            SilenceOutcome::AlreadySettled => "already_settled",
            SilenceOutcome::Taken => "taken",
            SilenceOutcome::LeftDue => "left_due",
        }
    }
}

/// Why a marketing send was closed.
pub const CLOSED_REASON: &str = "no SES event within the silence window; marketing is not resent";
/// Why a send with no kept message was closed.
pub const NOTHING_KEPT: &str = "no SES event within the silence window; the message was not kept";
/// Why a resend whose holder died was settled.
pub const RESEND_DIED: &str = "the resend's outcome was never recorded; not sent a third time";

/// The silence sweep's work on one parked send, over the send ledger's parked sends.
pub struct Silence<'a, L, M> {
    pub courier: Courier<'a, L, M>,
}

impl<L: ParkedSends, M: Mailer> Silence<'_, L, M> {
    /// Decides the parked send `due` names (see the module).
    pub async fn decide(
        &self,
        due: &Due<SendRecord>,
        deadline: Deadline,
    ) -> Result<SilenceOutcome, StoreError> {
        let ledger = self.courier.store;
        let now = self.courier.clock.now();
        let record = match &due.entry {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(key = %due.token, error = %e, "parked send unreadable; taken out of the index");
                ledger.complete_due(&due.token, "unreadable", now).await?;
                return Ok(SilenceOutcome::AlreadySettled);
            }
        };
        let Some(id) = record.identity(&due.merchant) else {
            tracing::error!(key = %due.token, kind = record.kind, "parked send of an unknown kind; taken out of the index");
            ledger.complete_due(&due.token, "unknown_kind", now).await?;
            return Ok(SilenceOutcome::AlreadySettled);
        };
        let resending = record.resolution == Some(Resolution::ResentAfterSilence);
        match record.status {
            SendStatus::Ambiguous if !resending => {}
            SendStatus::Retry if resending => {}
            SendStatus::InProgress if resending && record.lease_expired(now) => {
                let settled = ledger
                    .close_parked(
                        &due.token,
                        SendStatus::InProgress,
                        SendStatus::Ambiguous,
                        None,
                        RESEND_DIED,
                        now,
                    )
                    .await?;
                return Ok(match settled {
                    true => SilenceOutcome::ResendUnknown,
                    false => SilenceOutcome::Taken,
                });
            }
            SendStatus::InProgress if resending => return Ok(SilenceOutcome::LeftDue),
            _ => {
                ledger
                    .complete_due(&due.token, record.status.as_str(), now)
                    .await?;
                return Ok(SilenceOutcome::AlreadySettled);
            }
        }
        let resend = match id.kind.after_silence() {
            AfterSilence::Close => Err(CLOSED_REASON),
            AfterSilence::Resend => record
                .parked_message
                .as_deref()
                .and_then(|json| serde_json::from_str::<M::Message>(json).ok())
                .ok_or(NOTHING_KEPT),
        };
        let message = match resend {
            Ok(message) => message,
            Err(reason) => {
                let closed = ledger
                    .close_parked(
                        &due.token,
                        record.status,
                        SendStatus::Unsent,
                        Some(Resolution::ClosedAfterSilence),
                        reason,
                        now,
                    )
                    .await?;
                if closed {
                    tracing::warn!(send = %id.reference(), reason, "parked send closed as unsent");
                }
                return Ok(match closed {
                    true => SilenceOutcome::Closed,
                    false => SilenceOutcome::Taken,
                });
            }
        };
        let token = crate::domain::ids::new_id();
        let lease_until = deadline.lease_until(self.courier.clock);
        let check_at = lease_until.checked_add(RESEND_CHECK).unwrap_or(lease_until);
        let claim = ResendClaim {
            id: &id,
            recipient: &record.recipient,
            token: &token,
            lease_until,
            check_at,
        };
        let claim = ledger.claim_resend(&due.token, &claim, now).await?;
        match claim {
            Reclaim::Claimed => {}
            Reclaim::Lost => return Ok(SilenceOutcome::Taken),
            Reclaim::Suppressed => return Ok(SilenceOutcome::Suppressed),
        }
        tracing::warn!(send = %id.reference(), "no SES event within the silence window: sending once more");
        Ok(
            match self
                .courier
                .resend_claimed(&id, &token, &message, deadline)
                .await?
            {
                SendOutcome::Sent { .. } => SilenceOutcome::Resent,
                SendOutcome::Rejected { .. } => SilenceOutcome::Rejected,
                SendOutcome::RetryLater { .. } => SilenceOutcome::LeftDue,
                SendOutcome::Ambiguous => SilenceOutcome::ResendUnknown,
                SendOutcome::Suppressed => SilenceOutcome::Suppressed,
                SendOutcome::InProgress | SendOutcome::Settled(_) | SendOutcome::Unaddressed => {
                    SilenceOutcome::Taken
                }
            },
        )
    }
}

/// The silence policy on the in-memory ledger and mailer: every path of a parked send.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::send::{EmailKind, SendIdentity};
    use crate::domain::{CustomerId, MerchantId};
    use crate::ports::{DueGroup, DueWork, SendFailure, SendLedger};
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemSendLedger, ScriptedMailer};
    use crate::usecases::send::DEFAULT_SILENCE_WINDOW;

    const TO: &str = "ada@example.com";

    struct World {
        ledger: MemSendLedger,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
    }

    fn unknown() -> SendFailure {
        SendFailure::Ambiguous {
            reason: "ServerError after the request was sent".into(),
        }
    }

    fn throttled() -> SendFailure {
        SendFailure::NotSentRetryable {
            code: "TooManyRequestsException".into(),
        }
    }

    fn identity(kind: EmailKind) -> SendIdentity {
        let m = MerchantId::parse("m", "acme").unwrap();
        let c = CustomerId::parse("c", "cust-1").unwrap();
        SendIdentity::new(&m, &c, kind, "SO-1", 0)
    }

    impl World {
        fn failing(failures: impl IntoIterator<Item = SendFailure>) -> Self {
            Self {
                ledger: MemSendLedger::new(),
                mailer: ScriptedMailer::new().then_fail(failures),
                clock: ManualClock::new("2026-12-01T10:00:00Z".parse().unwrap()),
            }
        }

        fn courier(&self) -> Courier<'_, MemSendLedger, ScriptedMailer<String>> {
            fixtures::courier(&self.ledger, &self.mailer, &self.clock)
        }

        /// The email of `id`, as composed for its first send.
        fn email(id: &SendIdentity) -> String {
            format!("the email {}", id.reference())
        }

        /// Claims and sends `id`'s email once.
        async fn send(&self, id: &SendIdentity) -> SendOutcome {
            let record = id.claim(TO, self.clock.now(), deadline().lease_until(&self.clock));
            self.courier()
                .claim_and_send(id, &record, 0, deadline(), || Some(Self::email(id)))
                .await
                .unwrap()
        }

        /// One run of the silence sweep: every parked send due now, decided in turn.
        async fn sweep(&self) -> Vec<SilenceOutcome> {
            let (due, _) = self
                .ledger
                .due::<SendRecord>(DueGroup::ParkedSends, self.clock.now(), 14)
                .await
                .unwrap();
            let silence = Silence {
                courier: self.courier(),
            };
            let mut outcomes = Vec::new();
            for item in &due {
                outcomes.push(silence.decide(item, deadline()).await.unwrap());
            }
            outcomes
        }

        fn after_the_window(&self) {
            let window = SignedDuration::try_from(DEFAULT_SILENCE_WINDOW).unwrap();
            self.clock.advance(window + SignedDuration::from_secs(1));
        }

        fn record(&self, id: &SendIdentity) -> SendRecord {
            self.ledger.record(id).unwrap()
        }

        /// SES's event for the first message arrived: email-events made the record `sent`.
        fn ses_spoke(&self, id: &SendIdentity) {
            let key = crate::testing::table::RowKey::from(&crate::adapters::store::keys::send(id));
            let mut row = self.ledger.table.get(&key).unwrap();
            row["status"] = serde_json::json!("sent");
            row["message_id"] = serde_json::json!("ses-1");
            self.ledger.table.remove(&key);
            let _ = self.ledger.table.write(crate::testing::table::Write::Put {
                key,
                row,
                condition: crate::testing::table::always(),
            });
        }
    }

    #[tokio::test]
    async fn a_transactional_send_ses_never_spoke_about_is_sent_once_more_after_the_window() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::OrderThanks);
        assert_eq!(w.send(&id).await, SendOutcome::Ambiguous);
        let parked = w.record(&id);
        assert_eq!(parked.status, SendStatus::Ambiguous);
        assert_eq!(
            parked.parked_message,
            Some(format!("\"{}\"", World::email(&id)))
        );

        assert!(
            w.sweep().await.is_empty(),
            "nothing is decided inside the window"
        );
        w.clock.advance(SignedDuration::from_mins(59));
        assert!(w.sweep().await.is_empty(), "nor a minute before it ends");

        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::Resent]);
        assert_eq!(
            w.mailer.accepted(),
            [World::email(&id)],
            "the kept message, as composed"
        );
        let record = w.record(&id);
        assert_eq!(record.status, SendStatus::Sent);
        assert_eq!(record.resolution, Some(Resolution::ResentAfterSilence));
        assert_eq!(
            record.parked_message, None,
            "the kept copy goes once decided"
        );

        // The resend's check comes and only takes the record out of the index; nothing goes twice.
        w.clock.advance(SignedDuration::from_hours(2));
        assert_eq!(w.sweep().await, [SilenceOutcome::AlreadySettled]);
        w.clock.advance(SignedDuration::from_hours(48));
        assert!(w.sweep().await.is_empty());
        assert_eq!(w.mailer.calls(), 2);
        assert_eq!(
            w.send(&id).await,
            SendOutcome::Settled(SendStatus::Sent),
            "a late redelivery settles on it"
        );
    }

    #[tokio::test]
    async fn a_marketing_send_ses_never_spoke_about_is_closed_unsent() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::FeedbackSurvey);
        assert_eq!(w.send(&id).await, SendOutcome::Ambiguous);
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::Closed]);
        let record = w.record(&id);
        assert_eq!(record.status, SendStatus::Unsent);
        assert_eq!(record.resolution, Some(Resolution::ClosedAfterSilence));
        assert_eq!(record.parked_message, None);
        assert_eq!(w.mailer.calls(), 1, "never sent again");
        w.clock.advance(SignedDuration::from_hours(48));
        assert!(w.sweep().await.is_empty(), "closed for good");
        assert_eq!(w.send(&id).await, SendOutcome::Settled(SendStatus::Unsent));
    }

    #[tokio::test]
    async fn a_send_ses_spoke_about_is_never_resent() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::ShipmentShipped);
        assert_eq!(w.send(&id).await, SendOutcome::Ambiguous);
        w.ses_spoke(&id);
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::AlreadySettled]);
        assert_eq!(w.mailer.calls(), 1);
        assert_eq!(w.record(&id).status, SendStatus::Sent);
        assert_eq!(w.record(&id).resolution, None);
        assert!(w.sweep().await.is_empty(), "out of the index");
    }

    #[tokio::test]
    async fn a_claim_whose_holder_died_is_parked_by_the_redelivery_and_resent_after_the_window() {
        let w = World::failing([]);
        let id = identity(EmailKind::PaymentFailed);
        // The first invocation claimed and died before SES.
        let record = id.claim(TO, w.clock.now(), deadline().lease_until(&w.clock));
        assert!(matches!(
            w.ledger.claim_send(&id, &record, 0).await.unwrap(),
            crate::domain::send::ClaimResult::Claimed(_)
        ));
        w.clock.advance(SignedDuration::from_mins(5));
        assert_eq!(
            w.send(&id).await,
            SendOutcome::Ambiguous,
            "the redelivery parks it"
        );
        assert_eq!(w.mailer.calls(), 0);
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::Resent]);
        assert_eq!(w.mailer.accepted(), [World::email(&id)]);
    }

    #[tokio::test]
    async fn of_concurrent_sweeps_one_resends() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::OrderThanks);
        w.send(&id).await;
        w.after_the_window();
        let (a, b, c) = tokio::join!(w.sweep(), w.sweep(), w.sweep());
        let all: Vec<_> = [a, b, c].concat();
        let resent = all.iter().filter(|o| **o == SilenceOutcome::Resent).count();
        assert_eq!(resent, 1, "{all:?}");
        assert_eq!(w.mailer.calls(), 2, "the first attempt and one resend");
    }

    #[tokio::test]
    async fn a_resend_whose_outcome_is_unknown_again_is_never_tried_a_third_time() {
        let w = World::failing([unknown(), unknown()]);
        let id = identity(EmailKind::OrderThanks);
        w.send(&id).await;
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::ResendUnknown]);
        let record = w.record(&id);
        assert_eq!(record.status, SendStatus::Ambiguous);
        assert_eq!(record.resolution, Some(Resolution::ResentAfterSilence));
        w.clock.advance(SignedDuration::from_hours(3));
        assert_eq!(w.sweep().await, [SilenceOutcome::AlreadySettled]);
        w.clock.advance(SignedDuration::from_hours(48));
        assert!(w.sweep().await.is_empty());
        assert_eq!(w.mailer.calls(), 2);
    }

    #[tokio::test]
    async fn a_resend_ses_asked_to_wait_for_goes_at_its_check() {
        let w = World::failing([unknown(), throttled(), throttled(), throttled()]);
        let id = identity(EmailKind::ShipmentDelivered);
        w.send(&id).await;
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::LeftDue]);
        assert_eq!(w.record(&id).status, SendStatus::Retry);
        assert!(w.record(&id).parked_message.is_some(), "kept for the retry");
        w.clock.advance(SignedDuration::from_mins(15));
        assert_eq!(w.sweep().await, [SilenceOutcome::Resent]);
        assert_eq!(w.mailer.accepted(), [World::email(&id)]);
    }

    #[tokio::test]
    async fn a_resend_whose_holder_died_is_settled_unknown_at_its_check() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::OrderThanks);
        w.send(&id).await;
        w.after_the_window();
        let (due, _) = w
            .ledger
            .due::<SendRecord>(DueGroup::ParkedSends, w.clock.now(), 14)
            .await
            .unwrap();
        let now = w.clock.now();
        let lease = now.checked_add(SignedDuration::from_mins(1)).unwrap();
        let check = lease.checked_add(RESEND_CHECK).unwrap();
        let claimed = w
            .ledger
            .claim_resend(
                &due[0].token,
                &ResendClaim {
                    id: &id,
                    recipient: TO,
                    token: "dead",
                    lease_until: lease,
                    check_at: check,
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(claimed, Reclaim::Claimed);
        // The sweep that took it died before SES.
        w.clock.advance(SignedDuration::from_mins(5));
        assert!(w.sweep().await.is_empty(), "not before its check");
        w.clock.advance(SignedDuration::from_mins(10));
        assert_eq!(w.sweep().await, [SilenceOutcome::ResendUnknown]);
        assert_eq!(w.record(&id).status, SendStatus::Ambiguous);
        assert_eq!(w.mailer.calls(), 1);
        w.clock.advance(SignedDuration::from_hours(48));
        assert!(w.sweep().await.is_empty());
    }

    #[tokio::test]
    async fn a_recipient_suppressed_meanwhile_gets_no_resend() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::OrderThanks);
        w.send(&id).await;
        w.ledger.suppress(&id.merchant, TO);
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::Suppressed]);
        assert_eq!(w.record(&id).status, SendStatus::Suppressed);
        assert_eq!(w.mailer.calls(), 1);
        assert!(w.sweep().await.is_empty());
    }

    #[tokio::test]
    async fn a_parked_send_whose_message_was_not_kept_is_closed_not_resent() {
        let w = World::failing([unknown()]);
        let id = identity(EmailKind::OrderThanks);
        let huge = "x".repeat(crate::domain::send::MAX_PARKED_MESSAGE + 1);
        let record = id.claim(TO, w.clock.now(), deadline().lease_until(&w.clock));
        let out = w
            .courier()
            .claim_and_send(&id, &record, 0, deadline(), || Some(huge))
            .await
            .unwrap();
        assert_eq!(out, SendOutcome::Ambiguous);
        assert_eq!(w.record(&id).parked_message, None);
        w.after_the_window();
        assert_eq!(w.sweep().await, [SilenceOutcome::Closed]);
        assert_eq!(w.record(&id).status, SendStatus::Unsent);
        assert_eq!(w.record(&id).last_error.as_deref(), Some(NOTHING_KEPT));
    }

    #[test]
    fn transactional_kinds_are_resent_and_marketing_closed() {
        for kind in EmailKind::ALL {
            let expected = match kind.class() {
                crate::domain::send::MailClass::Transactional => AfterSilence::Resend,
                crate::domain::send::MailClass::Marketing => AfterSilence::Close,
            };
            assert_eq!(kind.after_silence(), expected, "{kind:?}");
        }
        assert_eq!(EmailKind::OrderThanks.after_silence(), AfterSilence::Resend);
        assert_eq!(EmailKind::CrossSell.after_silence(), AfterSilence::Close);
    }
}
