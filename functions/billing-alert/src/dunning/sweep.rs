//! The scheduled dunning sweep: each invoice due for its next step, through the shared sweep
//! driver and the shared step ([`aftercare::usecases::billing::DunningSweep`]): the reminder or
//! final notice, the merchant's alert when the cadence runs out, or the wait until the next step.

use super::{LOOKBACK_DAYS, compose_email};
use crate::Links;
use aftercare::app::App;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::DueGroup;
use aftercare::usecases::billing::{DunningSweep, StepOutcome as Outcome};
use aftercare::usecases::send::{Deadline, Pacer};
use serde::Serialize;

/// What one dunning sweep did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    pub items_read: u64,
    pub reminders_sent: usize,
    pub final_notices_sent: usize,
    pub exhausted: usize,
    pub waiting: usize,
    /// Steps taken without an email: the customer's address is suppressed.
    pub suppressed: usize,
    pub failed: usize,
    pub taken_by_other_sweep: usize,
    pub left_for_next_run: usize,
    pub errors: usize,
}

/// The scheduled sweep over invoices in dunning.
pub async fn sweep(
    app: &App,
    links: &Links,
    deadline: Deadline,
) -> Result<SweepReport, HandlerError> {
    let pacer = Pacer::new(app.config.ses_max_send_rate);
    let dunning = DunningSweep {
        book: &app.store,
        merchants: app.merchants.as_ref(),
        courier: app.courier(),
        pacer: &pacer,
        retention: app.retention(),
    };
    let dunning = &dunning;
    let mut report = SweepReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::Dunning,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move {
            dunning
                .step(&due, deadline, |merchant, email, send_ref| {
                    compose_email(app, links, merchant, email, send_ref)
                })
                .await
        },
        |outcome| match outcome {
            Outcome::Reminder => report.reminders_sent += 1,
            Outcome::Final => report.final_notices_sent += 1,
            Outcome::Exhausted => report.exhausted += 1,
            Outcome::Waiting => report.waiting += 1,
            Outcome::Suppressed => report.suppressed += 1,
            Outcome::Failed => report.failed += 1,
            Outcome::Taken => report.taken_by_other_sweep += 1,
            Outcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    swept.finish("invoices", report)
}
