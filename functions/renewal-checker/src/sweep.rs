//! The daily sweep: every subscription due for a notice, once.
//!
//! Reads only the renewal group of the due index (what is due within the look-back window, from
//! each shard of the group), so the items it reads are the subscriptions due, however many are not.
//! For each, with bounded concurrency: the plan (the latest notice due, the next one), the
//! customer's chosen language and time zone, the claim on the notice's identity (guarded against
//! suppression) and the SES call (paced), then one conditional update moving the subscription to
//! its next notice. A subscription updated while the sweep worked on it keeps its new place; the
//! claim keeps the notice single.

use crate::Links;
use crate::compose::notice_email;
use aftercare::adapters::store::subscriptions::SubscriptionRecord;
use aftercare::app::App;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::renewals::{NoticeOutcome as Outcome, RenewalNotices};
use aftercare::usecases::send::{Deadline, Pacer};
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

/// One due subscription, through the shared renewal-notice use-case.
async fn process(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<SubscriptionRecord>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let notices = RenewalNotices {
        book: &app.store,
        merchants: app.merchants.as_ref(),
        courier: app.courier(),
        pacer,
        retention: app.retention(),
    };
    notices
        .process(due, deadline, |merchant, record, notice, reference| {
            notice_email(app, links, merchant, record, notice, reference)
        })
        .await
}
