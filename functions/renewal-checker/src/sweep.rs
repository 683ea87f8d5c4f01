//! The daily sweep: every subscription due for a notice, once.
//!
//! Reads only the renewal group of the due index (what is due by now, in each (day, shard)
//! partition of the look-back window), so the items it reads are the subscriptions due, however many are not.
//! For each, with bounded concurrency: the plan (the latest notice due, the next one), the
//! customer's chosen language and time zone, the claim on the notice's identity (guarded against
//! suppression) and the SES call (paced), then one conditional update moving the subscription to
//! its next notice. A subscription updated while the sweep worked on it keeps its new place; the
//! claim keeps the notice single.

use crate::Links;
use crate::compose::notice_email;
use aftercare::adapters::store::subscriptions::SubscriptionRecord;
use aftercare::app::App;
use aftercare::domain::send::{SendIdentity, SendStatus};
use aftercare::domain::subscription::plan;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::send::{Deadline, Pacer, SendOutcome};
use serde::Serialize;

/// How many UTC days back a sweep looks for subscriptions it has not handled (missed runs).
pub const LOOKBACK_DAYS: u32 = 14;

/// What one sweep did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    /// Due-index items DynamoDB read to find them (ScannedCount): ≈ `due`, never the table.
    pub items_read: u64,
    pub sent: usize,
    /// Renewal reminders that also carried the card notice.
    pub combined: usize,
    /// Nothing to send now (superseded, changed, suppressed); moved to the next notice.
    pub nothing_due: usize,
    pub suppressed: usize,
    pub failed: usize,
    pub ambiguous: usize,
    pub taken_by_other_sweep: usize,
    pub left_for_next_run: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent { combined: bool },
    NothingDue,
    Suppressed,
    Failed,
    Ambiguous,
    Taken,
    LeftDue,
}

/// Sweeps the subscriptions due for a notice now.
pub async fn sweep(
    app: &App,
    links: &Links,
    deadline: Deadline,
) -> Result<SweepReport, HandlerError> {
    let pacer = Pacer::new(app.config.ses_max_send_rate);
    let pacer = &pacer;
    let mut report = SweepReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::Renewals,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move { process(app, links, pacer, &due, deadline).await },
        |outcome| match outcome {
            Outcome::Sent { combined } => {
                report.sent += 1;
                report.combined += usize::from(combined);
            }
            Outcome::NothingDue => report.nothing_due += 1,
            Outcome::Suppressed => report.suppressed += 1,
            Outcome::Failed => report.failed += 1,
            Outcome::Ambiguous => report.ambiguous += 1,
            Outcome::Taken => report.taken_by_other_sweep += 1,
            Outcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    swept.finish("subscriptions", report)
}

async fn process(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<SubscriptionRecord>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let moved = |next, handled: Option<String>| async move {
        let held = app
            .store
            .move_subscription_due(&due.token, next, handled.as_deref(), now)
            .await?;
        Ok::<bool, StoreError>(held)
    };
    let Ok(record) = &due.entry else {
        tracing::error!(key = %due.token, "malformed subscription; taken out of the index");
        moved(None, None).await?;
        return Ok(Outcome::NothingDue);
    };
    let Some(merchant) = app.tenancy.merchant(&due.merchant).await? else {
        moved(None, None).await?;
        return Ok(Outcome::NothingDue);
    };
    let sub = &record.subscription;
    let plan = plan(sub, &merchant.settings.renewals, now);
    let Some(notice) = plan.send else {
        return Ok(if moved(plan.next_due, None).await? {
            Outcome::NothingDue
        } else {
            Outcome::Taken
        });
    };
    let (kind, subject, step) = notice.identity(sub);
    // The language and time zone the customer chose win over the payment provider's.
    let contact = app
        .store
        .get_contact(&merchant.id, &sub.customer.id)
        .await?;
    let mut personal = record.clone();
    personal.subscription.customer = contact.personalise(&sub.customer);
    let handled = format!("{}:{}", notice.kind().as_str(), step);
    let id = SendIdentity::new(&merchant.id, &sub.customer.id, kind, &subject, step);
    if !pacer.slot(deadline).await {
        return Ok(Outcome::LeftDue);
    }
    let claim = id.claim(
        sub.customer.email.as_str(),
        now,
        deadline.lease_until(app.clock.as_ref()),
    );
    let expires = app.send_expiry(&merchant, now);
    let outcome = app
        .courier()
        .claim_and_send(&id, &claim, expires, deadline, || {
            notice_email(app, links, &merchant, &personal, &notice, &id.reference())
        })
        .await?;
    let result = match &outcome {
        SendOutcome::Sent { .. } => Outcome::Sent {
            combined: notice.renewal_lead.is_some() && notice.card_lead.is_some(),
        },
        SendOutcome::Settled(SendStatus::Sent) => Outcome::Taken,
        SendOutcome::Settled(SendStatus::Ambiguous) | SendOutcome::Ambiguous => Outcome::Ambiguous,
        // The claim's guard found the address suppressed: the notice is handled, unsent.
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            moved(plan.next_due, Some(format!("{handled}:suppressed"))).await?;
            return Ok(Outcome::Suppressed);
        }
        SendOutcome::Settled(_) | SendOutcome::Rejected { .. } => Outcome::Failed,
        SendOutcome::InProgress => return Ok(Outcome::Taken),
        SendOutcome::RetryLater { reason } => {
            tracing::warn!(key = %due.token, reason, "not sent now; stays due");
            return Ok(Outcome::LeftDue);
        }
    };
    let held = moved(plan.next_due, Some(handled)).await?;
    Ok(if held || matches!(result, Outcome::Sent { .. }) {
        result
    } else {
        Outcome::Taken
    })
}
