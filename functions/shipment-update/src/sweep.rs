//! The scheduled sweep over the shipment group of the due index, through the shared sweep driver
//! (merchants in turn, the per-merchant quota, bounded concurrency, the deadline margin):
//!
//! * `late`: the promised date passed. Unless the parcel is out for delivery (or further), the
//!   customer is told it is running late and the merchant is alerted, once each.
//! * `fallback`: no delivery scan within the fallback window. The journey is anchored to
//!   shipping + N days, so the follow-ups still go.
//!
//! A check whose email could not be sent yet stays due for the next run; one that fails counts as
//! an error (the invocation fails when the run ends, so the alarm fires and the schedule retries).

use crate::{App, SWEEP_LOOKBACK_DAYS, tracking::tracking};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::DueGroup;
use aftercare::usecases::send::Deadline;
use aftercare::usecases::shipments::CheckOutcome;
use serde::Serialize;
use serde_json::Value;

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
    let report = swept.finish("shipment", report)?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}
