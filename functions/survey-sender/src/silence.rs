//! The parked-send sweep: sends parked `ambiguous` whose silence window ended without SES's
//! event, decided by policy (see [`aftercare::usecases::silence`]): transactional ones sent once
//! more, marketing ones closed as unsent. Reads only the due index's `parked` group.

use aftercare::app::App;
use aftercare::domain::send::SendRecord;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup};
use aftercare::usecases::send::Deadline;
use aftercare::usecases::silence::{Silence, SilenceOutcome as Outcome};
use aftercare::usecases::sweep::Swept;
use serde::Serialize;

/// How many UTC days back the sweep looks for parked sends it has not decided (missed runs).
pub const LOOKBACK_DAYS: u32 = 14;

/// What one parked-send sweep did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ParkedReport {
    pub due: usize,
    pub items_read: u64,
    /// Transactional emails sent once more (`resent_after_silence`).
    pub resent: usize,
    /// Marketing emails closed as unsent (`closed_after_silence`).
    pub closed: usize,
    /// Resends whose own outcome is unknown: left `ambiguous` for good.
    pub resend_unknown: usize,
    pub rejected: usize,
    pub suppressed: usize,
    /// SES's event had arrived meanwhile: only taken out of the index.
    pub already_settled: usize,
    pub taken_by_other_sweep: usize,
    pub left_for_next_run: usize,
    pub errors: usize,
}

/// Decides every parked send whose silence window has ended.
pub async fn sweep(app: &App, deadline: Deadline) -> Result<(ParkedReport, Swept), HandlerError> {
    let silence = &Silence {
        courier: app.courier(),
    };
    let mut report = ParkedReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::ParkedSends,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due: Due<SendRecord>| async move { silence.decide(&due, deadline).await },
        |outcome| match outcome {
            Outcome::Resent => report.resent += 1,
            Outcome::Closed => report.closed += 1,
            Outcome::ResendUnknown => report.resend_unknown += 1,
            Outcome::Rejected => report.rejected += 1,
            Outcome::Suppressed => report.suppressed += 1,
            Outcome::AlreadySettled => report.already_settled += 1,
            Outcome::Taken => report.taken_by_other_sweep += 1,
            Outcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    Ok((report, swept))
}
