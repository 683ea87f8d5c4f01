//! The scheduled sweep: every due follow-up, once.
//!
//! Reads only the due index (each shard of the follow-up group, what is due in the look-back window),
//! then for each item, with bounded concurrency: one BatchGetItem (order, contact state,
//! suppression, send record), the marketing decision, and either one conditional update (defer /
//! skip) or the claim transaction, the SES call (paced under the configured rate) and the settle
//! update. Items it cannot finish stay due for the next run; nothing is dropped.

use crate::Links;
use crate::compose::follow_up_email;
use aftercare::app::App;
use aftercare::domain::followup::FollowUp;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::followups::{FollowUpOutcome as Outcome, FollowUps};
use aftercare::usecases::send::{Deadline, Pacer};
use serde::Serialize;

/// How many UTC days back a sweep looks for follow-ups it has not finished (missed runs).
pub const LOOKBACK_DAYS: u32 = 14;

/// What one sweep did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    pub due: usize,
    /// Due-index items DynamoDB read to find them (ScannedCount): ≈ `due`, never the table.
    pub items_read: u64,
    pub sent: usize,
    pub deferred: usize,
    pub skipped: usize,
    pub failed: usize,
    /// SES outcome unknown: parked for reconciliation, never resent.
    pub ambiguous: usize,
    /// Another sweep held or moved it.
    pub taken_by_other_sweep: usize,
    /// Left due for the next run (SES asked us to slow down, the deadline came near, contention).
    pub left_for_next_run: usize,
    pub errors: usize,
    /// Parked sends decided after SES's silence, swept after the follow-ups.
    pub parked: crate::silence::ParkedReport,
    /// The loyalty notices swept after the follow-ups.
    pub loyalty: crate::loyalty::LoyaltyReport,
    /// Erasures carried on and retention erasures, swept last.
    pub privacy: crate::privacy::PrivacyReport,
}

/// Sweeps the follow-ups due now, then parked sends, loyalty notices and privacy work.
pub async fn sweep(
    app: &App,
    links: &Links,
    deadline: Deadline,
) -> Result<SweepReport, HandlerError> {
    let pacer = Pacer::new(app.config.ses_max_send_rate);
    let (mut report, swept) = follow_ups(app, links, &pacer, deadline).await?;
    let (parked, parked_swept) = crate::silence::sweep(app, deadline).await?;
    report.parked = parked;
    let (loyalty, loyalty_swept) = crate::loyalty::sweep(app, &pacer, deadline).await?;
    report.loyalty = loyalty;
    let (privacy, privacy_swept) = crate::privacy::sweep(app, deadline).await?;
    report.privacy = privacy;
    let all = [parked_swept, loyalty_swept, privacy_swept]
        .into_iter()
        .fold(swept, |all, s| aftercare::usecases::sweep::Swept {
            due: all.due + s.due,
            items_read: all.items_read + s.items_read,
            errors: all.errors + s.errors,
            over_quota: all.over_quota + s.over_quota,
        });
    all.finish("follow-up, parked-send, loyalty and privacy", report)
}

/// Sweeps only the follow-ups due now (the first part of [`sweep`]).
pub async fn sweep_follow_ups(
    app: &App,
    links: &Links,
    deadline: Deadline,
) -> Result<SweepReport, HandlerError> {
    let pacer = Pacer::new(app.config.ses_max_send_rate);
    let (report, swept) = follow_ups(app, links, &pacer, deadline).await?;
    swept.finish("follow-up", report)
}

async fn follow_ups(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    deadline: Deadline,
) -> Result<(SweepReport, aftercare::usecases::sweep::Swept), HandlerError> {
    let mut report = SweepReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::FollowUps,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move { process(app, links, pacer, &due, deadline).await },
        |outcome| match outcome {
            Outcome::Sent => report.sent += 1,
            Outcome::Deferred => report.deferred += 1,
            Outcome::Skipped => report.skipped += 1,
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
    Ok((report, swept))
}

/// Works on one due follow-up (see [`aftercare::usecases::followups`]), its email composed here.
async fn process(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<FollowUp>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let follow_ups = FollowUps {
        book: &app.store,
        merchants: app.merchants.as_ref(),
        courier: app.courier(),
        pacer,
        retention: app.retention(),
    };
    follow_ups
        .process(due, deadline, |draft| follow_up_email(app, links, draft))
        .await
}
