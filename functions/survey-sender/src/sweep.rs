//! The scheduled sweep: every due follow-up, once.
//!
//! Reads only the due index (each (day, shard) partition of the follow-up group, what is due by now),
//! then for each item, with bounded concurrency: one BatchGetItem (order, contact state,
//! suppression, send record), the marketing decision, and either one conditional update (defer /
//! skip) or the claim transaction, the SES call (paced under the configured rate) and the settle
//! update. Items it cannot finish stay due for the next run; nothing is dropped.

use crate::Links;
use crate::compose::follow_up_email;
use crate::loyalty::points_note;
use aftercare::adapters::store::followups::{ContactGuard, FollowUpClaim};
use aftercare::app::App;
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::followup::{DecisionAction, DecisionEntry, FollowUp, FollowUpStatus};
use aftercare::domain::marketing::{self, Decision, DeferReason, SkipReason};
use aftercare::domain::send::{SendIdentity, SendRecord, SendStatus};
use aftercare::domain::{CustomerId, EmailAddress, MerchantId, OrderId};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::send::{Deadline, Pacer, SendOutcome};
use jiff::{SignedDuration, Timestamp};
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
    /// The loyalty notices swept after the follow-ups.
    pub loyalty: crate::loyalty::LoyaltyReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Deferred,
    Skipped,
    Failed,
    Ambiguous,
    Taken,
    LeftDue,
}

/// Sweeps the follow-ups due now.
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
    let (loyalty, loyalty_swept) = crate::loyalty::sweep(app, pacer, deadline).await?;
    report.loyalty = loyalty;
    let both = aftercare::usecases::sweep::Swept {
        due: swept.due + loyalty_swept.due,
        items_read: swept.items_read + loyalty_swept.items_read,
        errors: swept.errors + loyalty_swept.errors,
        over_quota: swept.over_quota + loyalty_swept.over_quota,
    };
    both.finish("follow-up and loyalty", report)
}

async fn process(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<FollowUp>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let skip = |reason: SkipReason| async move {
        let decision = DecisionEntry::new(now, DecisionAction::Skipped, Some(reason.as_str()));
        let moved = app
            .store
            .settle_follow_up(&due.token, FollowUpStatus::Skipped, &decision, None, None)
            .await?;
        Ok::<_, StoreError>(if moved {
            Outcome::Skipped
        } else {
            Outcome::Taken
        })
    };
    let defer = |until: Timestamp, reason: DeferReason| async move {
        let mut decision = DecisionEntry::new(now, DecisionAction::Deferred, Some(reason.as_str()));
        decision.until = Some(until);
        let moved = app
            .store
            .defer_follow_up(&due.token, until, &decision)
            .await?;
        Ok::<_, StoreError>(if moved {
            Outcome::Deferred
        } else {
            Outcome::Taken
        })
    };
    let Ok(follow_up) = &due.entry else {
        tracing::error!(key = %due.token, "malformed follow-up; skipped");
        return skip(SkipReason::NotFound).await;
    };
    let merchant_id = &due.merchant;
    let Ok(customer_id) = CustomerId::parse("customer_id", &follow_up.customer_id) else {
        return skip(SkipReason::NotFound).await;
    };
    let Some(merchant) = app.tenancy.merchant(merchant_id).await? else {
        return skip(SkipReason::NotFound).await;
    };
    let kind = follow_up.kind;
    let email_kind = aftercare::adapters::mail::EmailKind::from(kind);
    let order_id: &OrderId = &follow_up.order_id;
    let send_key = SendIdentity::new(merchant_id, &customer_id, email_kind, order_id.as_str(), 0);
    let recipient = follow_up
        .recipient
        .as_deref()
        .and_then(|r| EmailAddress::parse("recipient", r).ok());
    let ctx = app
        .store
        .follow_up_context(
            merchant_id,
            order_id,
            &customer_id,
            recipient.as_ref(),
            &send_key,
        )
        .await?;
    let Some(order) = ctx.order else {
        return skip(SkipReason::NotFound).await;
    };
    let courier = app.courier();

    // An earlier attempt claimed the send: carry on from its record, never decide twice.
    if let Some(record) = &ctx.send {
        let note = points_note(app, &merchant, &customer_id, now).await?;
        let outcome = courier
            .resume(&send_key, record, deadline, || {
                follow_up_email(
                    app,
                    links,
                    &merchant,
                    &order,
                    &ctx.contact,
                    kind,
                    &send_key.reference(),
                    note.as_ref(),
                    now,
                )
            })
            .await?;
        let noted = note.is_some() && matches!(outcome, SendOutcome::Sent { .. });
        let settled = settle(app, due, kind, merchant_id, order_id, outcome, record, now).await?;
        if noted {
            app.store
                .note_available(merchant_id, &customer_id, now)
                .await?;
        }
        return Ok(settled);
    }

    // Quiet hours in the zone the customer chose, else their order's, else the merchant's.
    let tz = marketing::recipient_zone(
        ctx.contact
            .time_zone
            .as_deref()
            .or(order.order.customer.time_zone.as_deref()),
        &merchant.time_zone,
    );
    let rules = &merchant.settings.marketing;
    match marketing::decide(kind, now, &tz, &ctx.contact, ctx.suppressed, rules) {
        Decision::Skip(reason) => return skip(reason).await,
        Decision::Defer { until, reason } => return defer(until, reason).await,
        Decision::Send => {}
    }
    let note = points_note(app, &merchant, &customer_id, now).await?;
    let Some(email) = follow_up_email(
        app,
        links,
        &merchant,
        &order,
        &ctx.contact,
        kind,
        &send_key.reference(),
        note.as_ref(),
        now,
    ) else {
        return skip(SkipReason::NothingToSend).await;
    };
    if !pacer.slot(deadline).await {
        return Ok(Outcome::LeftDue);
    }
    let since = |span: SignedDuration| now.checked_sub(span).ok();
    let guard = ContactGuard {
        cap_since: (rules.frequency_cap_hours > 0)
            .then(|| since(rules.cap()))
            .flatten(),
        survey_since: (kind == FollowUpKind::FeedbackSurvey && rules.survey_throttle_days > 0)
            .then(|| since(rules.survey_throttle()))
            .flatten(),
        is_survey: kind == FollowUpKind::FeedbackSurvey,
    };
    let record = send_key.claim(
        order.order.customer.email.as_str(),
        now,
        deadline.lease_until(app.clock.as_ref()),
    );
    let expires = app.send_expiry(&merchant, now);
    let claimed = app
        .store
        .claim_follow_up(
            &due.token,
            (merchant_id, &customer_id),
            guard,
            (&send_key, &record),
            expires,
            now,
        )
        .await?;
    let outcome = match claimed {
        FollowUpClaim::Claimed => {
            courier
                .send_claimed(&send_key, &record.claim_token, &email, deadline)
                .await?
        }
        FollowUpClaim::ClaimExists => match app.store.get_send(&send_key).await? {
            Some(theirs) => {
                courier
                    .resume(&send_key, &theirs, deadline, move || Some(email))
                    .await?
            }
            None => return Ok(Outcome::LeftDue),
        },
        FollowUpClaim::Moved => return Ok(Outcome::Taken),
        // Another follow-up of this customer went out (or they unsubscribed) since we read:
        // decide again on what is stored now.
        FollowUpClaim::ContactChanged => {
            let contact = app.store.get_contact(merchant_id, &customer_id).await?;
            return match marketing::decide(kind, now, &tz, &contact, ctx.suppressed, rules) {
                Decision::Skip(reason) => skip(reason).await,
                Decision::Defer { until, reason } => defer(until, reason).await,
                // The contention has passed already: the next run sends it.
                Decision::Send => Ok(Outcome::LeftDue),
            };
        }
    };
    let noted = note.is_some() && matches!(outcome, SendOutcome::Sent { .. });
    let settled = settle(app, due, kind, merchant_id, order_id, outcome, &record, now).await?;
    if noted {
        app.store
            .note_available(merchant_id, &customer_id, now)
            .await?;
    }
    Ok(settled)
}

/// Records what became of the send on the follow-up and takes it out of the due index.
#[allow(clippy::too_many_arguments)]
async fn settle(
    app: &App,
    due: &Due<FollowUp>,
    kind: FollowUpKind,
    merchant_id: &MerchantId,
    order_id: &OrderId,
    outcome: SendOutcome,
    record: &SendRecord,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let (action, message_id, result) = match &outcome {
        SendOutcome::Sent { message_id } => (
            DecisionAction::Sent,
            Some(message_id.clone()),
            Outcome::Sent,
        ),
        // Sent by an earlier attempt (or another sweep): settle it, but it is not this sweep's send.
        SendOutcome::Settled(SendStatus::Sent) => (
            DecisionAction::Sent,
            record.message_id.clone(),
            Outcome::Taken,
        ),
        SendOutcome::Settled(SendStatus::Ambiguous) | SendOutcome::Ambiguous => {
            (DecisionAction::Ambiguous, None, Outcome::Ambiguous)
        }
        // Suppressed since an earlier attempt was told to retry.
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            (DecisionAction::Skipped, None, Outcome::Skipped)
        }
        SendOutcome::Settled(_) | SendOutcome::Rejected { .. } => {
            (DecisionAction::Failed, None, Outcome::Failed)
        }
        SendOutcome::InProgress => return Ok(Outcome::Taken),
        SendOutcome::RetryLater { reason } => {
            tracing::warn!(key = %due.token, reason, "not sent now; stays due");
            return Ok(Outcome::LeftDue);
        }
    };
    let reason = match &outcome {
        SendOutcome::Rejected { code } => Some(code.as_str()),
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            Some(SkipReason::Suppressed.as_str())
        }
        _ => None,
    };
    let decision = DecisionEntry::new(now, action, reason);
    let status = match action {
        DecisionAction::Sent => FollowUpStatus::Sent,
        DecisionAction::Ambiguous => FollowUpStatus::Ambiguous,
        DecisionAction::Skipped => FollowUpStatus::Skipped,
        _ => FollowUpStatus::Failed,
    };
    let survey_sent = (status == FollowUpStatus::Sent && kind == FollowUpKind::FeedbackSurvey)
        .then_some((merchant_id, order_id));
    let moved = app
        .store
        .settle_follow_up(
            &due.token,
            status,
            &decision,
            message_id.as_deref(),
            survey_sent,
        )
        .await?;
    // An email this invocation sent counts as sent even if another sweep settled the follow-up
    // first; one found already sent counts for whoever settles it.
    let sent_now = matches!(outcome, SendOutcome::Sent { .. });
    Ok(if moved || sent_now {
        result
    } else {
        Outcome::Taken
    })
}
