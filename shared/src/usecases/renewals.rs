//! A subscription due for a notice, whoever sweeps it: the plan (the latest notice due, the next
//! one), the customer's own language and time zone, the email claimed on the notice's identity
//! (guarded against suppression) and sent under the pace, then one conditional move of the
//! subscription to its next notice. A subscription updated while the sweep worked on it keeps its
//! new place; the claim keeps the notice single.

use crate::domain::Merchant;
use crate::domain::send::{SendIdentity, SendStatus};
use crate::domain::subscription::{Notice, SubscriptionRecord, plan};
use crate::ports::{Due, Mailer, MerchantDirectory, RenewalBook, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Pacer, Retention, SendOutcome};

/// What became of one due subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// This run sent the notice; `combined` when it was a renewal reminder and card notice in one.
    Sent {
        combined: bool,
    },
    /// Nothing to send now (moved to its next notice, or out of the index).
    NothingDue,
    /// The recipient is suppressed: the notice is handled, unsent.
    Suppressed,
    Failed,
    /// SES may or may not have sent it; parked for reconciliation.
    Ambiguous,
    /// Another sweep held or moved it.
    Taken,
    /// Not sent now; it stays due for the next run.
    LeftDue,
}

pub struct RenewalNotices<'a, B, D, L, M> {
    pub book: &'a B,
    pub merchants: &'a D,
    pub courier: Courier<'a, L, M>,
    pub pacer: &'a Pacer,
    pub retention: Retention,
}

impl<B, D, L, M> RenewalNotices<'_, B, D, L, M>
where
    B: RenewalBook,
    D: MerchantDirectory,
    L: SendLedger,
    M: Mailer,
{
    /// Works on one due subscription. `compose` builds the notice's email (the record with the
    /// customer's own choices applied, the notice, the email's reference) when one is to go.
    pub async fn process<F>(
        &self,
        due: &Due<SubscriptionRecord>,
        deadline: Deadline,
        compose: F,
    ) -> Result<NoticeOutcome, StoreError>
    where
        F: FnOnce(&Merchant, &SubscriptionRecord, &Notice, &str) -> Option<M::Message>,
    {
        let now = self.courier.clock.now();
        let moved = |next, handled: Option<String>| async move {
            self.book
                .move_subscription_due(&due.token, next, handled.as_deref(), now)
                .await
        };
        let Ok(record) = &due.entry else {
            tracing::error!(key = %due.token, "malformed subscription; taken out of the index");
            moved(None, None).await?;
            return Ok(NoticeOutcome::NothingDue);
        };
        let Some(merchant) = self.merchants.merchant(&due.merchant).await? else {
            moved(None, None).await?;
            return Ok(NoticeOutcome::NothingDue);
        };
        let sub = &record.subscription;
        let plan = plan(sub, &merchant.settings.renewals, now);
        let Some(notice) = plan.send else {
            return Ok(match moved(plan.next_due, None).await? {
                true => NoticeOutcome::NothingDue,
                false => NoticeOutcome::Taken,
            });
        };
        let (kind, subject, step) = notice.identity(sub);
        // The language and time zone the customer chose win over the payment provider's.
        let contact = self.book.contact(&merchant.id, &sub.customer.id).await?;
        let mut personal = record.clone();
        personal.subscription.customer = contact.personalise(&sub.customer);
        let handled = format!("{}:{}", notice.kind().as_str(), step);
        let id = SendIdentity::new(&merchant.id, &sub.customer.id, kind, &subject, step);
        if !self.pacer.slot(deadline).await {
            return Ok(NoticeOutcome::LeftDue);
        }
        let claim = id.claim(
            sub.customer.recipient(),
            now,
            deadline.lease_until(self.courier.clock),
        );
        let expires = self.retention.send_expiry(&merchant, now);
        let outcome = self
            .courier
            .claim_and_send(&id, &claim, expires, deadline, || {
                compose(&merchant, &personal, &notice, &id.reference())
            })
            .await?;
        let result = match &outcome {
            SendOutcome::Sent { .. } => NoticeOutcome::Sent {
                combined: notice.renewal_lead.is_some() && notice.card_lead.is_some(),
            },
            SendOutcome::Settled(SendStatus::Sent) => NoticeOutcome::Taken,
            SendOutcome::Settled(SendStatus::Ambiguous) | SendOutcome::Ambiguous => {
                NoticeOutcome::Ambiguous
            }
            // The claim's guard found the address suppressed: the notice is handled, unsent.
            SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
                moved(plan.next_due, Some(format!("{handled}:suppressed"))).await?;
                return Ok(NoticeOutcome::Suppressed);
            }
            SendOutcome::Settled(_) | SendOutcome::Rejected { .. } | SendOutcome::Unaddressed => {
                NoticeOutcome::Failed
            }
            SendOutcome::InProgress => return Ok(NoticeOutcome::Taken),
            SendOutcome::RetryLater { reason } => {
                tracing::warn!(key = %due.token, reason, "not sent now; stays due");
                return Ok(NoticeOutcome::LeftDue);
            }
        };
        let held = moved(plan.next_due, Some(handled)).await?;
        Ok(if held || matches!(result, NoticeOutcome::Sent { .. }) {
            result
        } else {
            NoticeOutcome::Taken
        })
    }
}

/// A renewal notice on the in-memory due index, renewals, merchants, send ledger and mailer.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::ids::SubscriptionId;
    use crate::domain::marketing::ContactState;
    use crate::domain::subscription::SubscriptionInput;
    use crate::domain::{Locale, MerchantId};
    use crate::ports::{DueGroup, DueWork, SendFailure};
    use crate::testing::fixtures;
    use crate::testing::{MemDue, MemMerchants, MemRenewals, MemSendLedger, ScriptedMailer};
    use std::time::Duration;

    /// A week before the sample subscription renews: its 7-day reminder is due.
    const REMINDER_DUE: &str = "2026-12-13T10:00:00Z";

    struct World {
        index: MemDue,
        book: MemRenewals,
        merchants: MemMerchants,
        ledger: MemSendLedger,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        pacer: Pacer,
        merchant: MerchantId,
    }

    impl World {
        fn at(now: &str) -> Self {
            Self::with(now, ScriptedMailer::new())
        }

        fn with(now: &str, mailer: ScriptedMailer<String>) -> Self {
            let merchant = fixtures::merchant();
            let clock = ManualClock::new(now.parse().unwrap());
            let sub: SubscriptionInput =
                serde_json::from_value(crate::domain::subscription::tests::sample_input()).unwrap();
            let id = SubscriptionId::parse("id", "sub_1").unwrap();
            let sub = sub.validate(id, clock.now()).unwrap();
            let record = SubscriptionRecord::new(merchant.id.clone(), sub, clock.now());
            let index = MemDue::new();
            index.add(
                DueGroup::Renewals,
                &merchant.id,
                "SUB#sub_1",
                clock.now(),
                &record,
            );
            Self {
                index,
                book: MemRenewals::new(),
                merchant: merchant.id.clone(),
                merchants: MemMerchants::with(merchant),
                ledger: MemSendLedger::new(),
                mailer,
                clock,
                pacer: Pacer::new(1000),
            }
        }

        async fn due(&self) -> Due<SubscriptionRecord> {
            let (mut due, _) = self
                .index
                .due(DueGroup::Renewals, self.clock.now(), 1)
                .await
                .unwrap();
            due.pop().unwrap()
        }

        /// Processes `due`; the composed email names the customer's locale and the notice kind.
        async fn process(&self, due: &Due<SubscriptionRecord>) -> NoticeOutcome {
            let notices = RenewalNotices {
                book: &self.book,
                merchants: &self.merchants,
                courier: fixtures::courier(&self.ledger, &self.mailer, &self.clock),
                pacer: &self.pacer,
                retention: Retention {
                    default: Duration::ZERO,
                },
            };
            notices
                .process(due, fixtures::deadline(), |_, record, notice, _| {
                    let locale = record.subscription.customer.locale.clone();
                    Some(format!("{:?} {}", locale, notice.kind().as_str()))
                })
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_due_reminder_is_sent_once_and_the_subscription_moves_to_its_next_notice() {
        let w = World::at(REMINDER_DUE);
        let due = w.due().await;
        let first = w.process(&due).await;
        assert!(matches!(first, NoticeOutcome::Sent { .. }), "{first:?}");
        let position = w.book.position(&due.token).unwrap();
        assert_eq!(position.handled.len(), 1);
        assert_ne!(
            position.at.as_deref(),
            Some(due.token.due_order()),
            "moved on"
        );
        // The same item seen again (a second sweep that read it before the move): the claim
        // settles it, nothing is sent twice.
        assert_eq!(w.process(&due).await, NoticeOutcome::Taken);
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn the_customers_own_language_wins() {
        let w = World::at(REMINDER_DUE);
        let due = w.due().await;
        let customer = due.entry.as_ref().unwrap().subscription.customer.id.clone();
        let chosen = ContactState {
            locale: Some(Locale::De),
            ..ContactState::default()
        };
        w.book.set_contact(&w.merchant, &customer, chosen);
        w.process(&due).await;
        assert!(
            w.mailer.accepted()[0].starts_with("Some(\"de\")"),
            "{:?}",
            w.mailer.accepted()
        );
    }

    #[tokio::test]
    async fn a_suppressed_customer_gets_nothing_and_the_notice_counts_as_handled() {
        let w = World::at(REMINDER_DUE);
        w.ledger.suppress(&w.merchant, "ann@example.com");
        let due = w.due().await;
        assert_eq!(w.process(&due).await, NoticeOutcome::Suppressed);
        let handled = w.book.position(&due.token).unwrap().handled;
        assert!(handled[0].ends_with(":suppressed"), "{handled:?}");
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn nothing_due_yet_moves_it_to_its_first_notice_without_sending() {
        let w = World::at("2026-11-21T10:00:00Z");
        let due = w.due().await;
        assert_eq!(w.process(&due).await, NoticeOutcome::NothingDue);
        let position = w.book.position(&due.token).unwrap();
        assert!(position.at.is_some() && position.handled.is_empty());
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_subscription_of_an_unknown_merchant_leaves_the_index() {
        let w = World {
            merchants: MemMerchants::default(),
            ..World::at(REMINDER_DUE)
        };
        let due = w.due().await;
        assert_eq!(w.process(&due).await, NoticeOutcome::NothingDue);
        assert_eq!(w.book.position(&due.token).unwrap().at, None);
    }

    #[tokio::test]
    async fn a_notice_ses_could_not_take_yet_stays_due() {
        let throttled = || SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        };
        let w = World::with(
            REMINDER_DUE,
            ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
        );
        let due = w.due().await;
        assert_eq!(w.process(&due).await, NoticeOutcome::LeftDue);
        assert_eq!(w.book.position(&due.token), None, "not moved");
        // The next run resumes the claim and sends.
        let again = w.process(&due).await;
        assert!(matches!(again, NoticeOutcome::Sent { .. }), "{again:?}");
        assert_eq!(w.mailer.accepted().len(), 1);
    }
}
