//! The scheduled sweep over the shipment group of the due index, through the shared sweep driver
//! (merchants in turn, the per-merchant quota, bounded concurrency, the deadline margin):
//!
//! * `late`: the promised date passed. Unless the parcel is out for delivery (or further), the
//!   customer is told it is running late and the merchant is alerted, once each.
//! * `fallback`: no delivery scan within the fallback window. The journey is anchored to
//!   shipping + N days, so the follow-ups still go.
//!
//! * `return` (the return-reminder group): an approved return whose parcel has not been sent by
//!   its send-by date gets one reminder ([`aftercare::usecases::returns::Returns::remind`]).
//!
//! A check whose email could not be sent yet stays due for the next run; one that fails counts as
//! an error (the invocation fails when the run ends, so the alarm fires and the schedule retries).

use crate::{App, SWEEP_LOOKBACK_DAYS, tracking::tracking};
use aftercare::domain::returns::ReturnRecord;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::DueGroup;
use aftercare::ports::{Due, DueWork as _, MerchantDirectory as _, StoreError};
use aftercare::usecases::returns::ReturnError;
use aftercare::usecases::send::Deadline;
use aftercare::usecases::shipments::CheckOutcome;
use serde::Serialize;
use serde_json::Value;

/// One due return reminder: sent once, or taken out of the index when no longer needed (the
/// parcel went, the return moved on, the merchant is gone).
async fn remind(
    app: &App,
    due: Due<ReturnRecord>,
    deadline: Deadline,
) -> Result<Reminder, StoreError> {
    let now = app.clock.now();
    let settle = |outcome: &'static str| async move {
        app.store.complete_due(&due.token, outcome, now).await?;
        Ok(Reminder::NotNeeded)
    };
    let record = match &due.entry {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "a return in the reminder index does not parse; taken out");
            return settle("malformed").await;
        }
    };
    let Some(merchant) = app.merchants.merchant(&due.merchant).await? else {
        return settle("unknown_merchant").await;
    };
    match crate::returns::returns(app)
        .remind(&merchant, &record.id, deadline)
        .await
    {
        Ok(Some(_)) => Ok(Reminder::Sent),
        Ok(None) => settle("not_needed").await,
        Err(ReturnError::Store(e)) => Err(e),
        Err(ReturnError::Busy | ReturnError::Unsent) => Ok(Reminder::LeftDue),
        Err(e) => {
            tracing::warn!(error = %e, return_id = %record.id, "return reminder not needed");
            settle("not_needed").await
        }
    }
}

/// What a sweep did.
#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub due: usize,
    /// Due-index items read to find them (≈ `due`, never the table).
    pub items_read: u64,
    pub late_notices: usize,
    pub journeys_anchored: usize,
    pub not_needed: usize,
    pub skipped_by_other_sweep: usize,
    /// Not started before the deadline margin, over the merchant's quota, or an email that could
    /// not be sent yet: due again next run.
    pub left_for_next_run: usize,
    pub errors: usize,
    /// Return reminders sent (or found sent) and reminders no longer needed.
    pub return_reminders: usize,
    pub return_reminders_not_needed: usize,
}

/// What became of a due return reminder.
#[derive(Debug, Clone, Copy)]
enum Reminder {
    Sent,
    NotNeeded,
    LeftDue,
}

/// The scheduled sweep over the shipment group of the due index.
pub async fn sweep(app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
    let mut report = SweepReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::ShipmentChecks,
        SWEEP_LOOKBACK_DAYS,
        deadline,
        CheckOutcome::LeftDue,
        |due| async move {
            tracking(app)
                .check(app.merchants.as_ref(), &app.store, &due, deadline)
                .await
        },
        |outcome| match outcome {
            CheckOutcome::LateNotice => report.late_notices += 1,
            CheckOutcome::Anchored => report.journeys_anchored += 1,
            CheckOutcome::NotNeeded | CheckOutcome::Unknown => report.not_needed += 1,
            CheckOutcome::Taken => report.skipped_by_other_sweep += 1,
            CheckOutcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    let reminded = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::ReturnReminders,
        SWEEP_LOOKBACK_DAYS,
        deadline,
        Reminder::LeftDue,
        |due: Due<ReturnRecord>| async move { remind(app, due, deadline).await },
        |outcome| match outcome {
            Reminder::Sent => report.return_reminders += 1,
            Reminder::NotNeeded => report.return_reminders_not_needed += 1,
            Reminder::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due += reminded.due;
    report.items_read += reminded.items_read;
    report.errors += reminded.errors;
    let report = swept.finish("shipment", report)?;
    let report = reminded.finish("return reminder", report)?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}
