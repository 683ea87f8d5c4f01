//! The scheduled dunning sweep: each invoice due for its next step, through the shared sweep
//! driver: the reminder or final notice (claimed with the invoice's advance in one transaction),
//! the merchant's alert when the cadence runs out, or the wait until the next step.

use super::*;
use aftercare::domain::billing::DunningStep;
use aftercare::ports::MerchantDirectory as _;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Reminder,
    Final,
    Exhausted,
    Waiting,
    Suppressed,
    Failed,
    Taken,
    LeftDue,
}

/// The scheduled sweep over invoices in dunning.
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
        DueGroup::Dunning,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move { step(app, links, pacer, &due, deadline).await },
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

pub(crate) async fn step(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<InvoiceRecord>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let held = |b: bool, o: Outcome| if b { o } else { Outcome::Taken };
    let Ok(record) = &due.entry else {
        tracing::error!(key = %due.token, "malformed invoice; taken out of the index");
        app.store
            .move_invoice_due(&due.token, None, None, now)
            .await?;
        return Ok(Outcome::Failed);
    };
    let Some(merchant) = app.merchants.merchant(&record.merchant_id).await? else {
        app.store
            .move_invoice_due(&due.token, None, None, now)
            .await?;
        return Ok(Outcome::Failed);
    };
    let first = record.first_failed_at.unwrap_or(record.updated_at);
    let action = dunning_action(
        first,
        record.next_step,
        record.last_email_at(),
        now,
        &merchant.settings.dunning,
    );
    match action {
        DunningAction::Done => {
            let moved = app
                .store
                .move_invoice_due(&due.token, None, None, now)
                .await?;
            Ok(held(moved, Outcome::Waiting))
        }
        DunningAction::Wait { until } => {
            let moved = app
                .store
                .move_invoice_due(&due.token, Some(until), None, now)
                .await?;
            Ok(held(moved, Outcome::Waiting))
        }
        DunningAction::Exhaust { step } => {
            exhaust(app, &merchant, due, record, step, first, deadline).await
        }
        DunningAction::Send { step, next } => {
            send_step(
                app, links, pacer, due, &merchant, record, step, next, deadline,
            )
            .await
        }
    }
}

/// The cadence ran out without a recovery: the invoice leaves the index and the merchant's people
/// are told, once.
async fn exhaust(
    app: &App,
    merchant: &Merchant,
    due: &Due<InvoiceRecord>,
    record: &InvoiceRecord,
    step: DunningStep,
    first: Timestamp,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let inv = &record.invoice;
    let moved = app
        .store
        .move_invoice_due(&due.token, None, Some(step.index), now)
        .await?;
    if !moved {
        return Ok(Outcome::Taken);
    }
    if let Some(ops) = &merchant.ops_email {
        let kind = EmailKind::MerchantDunningAlert;
        let (key, claim) = claim(app, &merchant.id, inv, kind, 0, ops.as_str(), deadline);
        let emails = record.emails_first + record.emails_reminder + record.emails_final;
        let alert = || {
            let locale = merchant.default_locale;
            let data = json!({
                "customer": customer_value(&inv.customer),
                "invoice": {
                    "id": inv.id, "amount": inv.amount.format(locale), "plan_name": inv.plan_name,
                    "failed_on": long_date(first, &merchant.time_zone, locale),
                    "cancel_on": long_date(step.at, &merchant.time_zone, locale),
                },
                "dunning": {"emails_sent": emails},
            });
            let to = Mailbox::new(Some(&merchant.name), ops.clone());
            compose(
                &app.renderer,
                merchant,
                kind,
                to,
                locale,
                &data,
                &key.reference(),
            )
        };
        let expires = app.send_expiry(merchant, now);
        app.courier()
            .claim_and_send(&key, &claim, expires, deadline, alert)
            .await?;
    }
    Ok(Outcome::Exhausted)
}

/// The next email of the cadence: claimed together with the invoice's advance, then sent (or
/// resumed from an earlier attempt's record).
#[allow(clippy::too_many_arguments)]
async fn send_step(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<InvoiceRecord>,
    merchant: &Merchant,
    record: &InvoiceRecord,
    step: DunningStep,
    next: Option<Timestamp>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let inv = &record.invoice;
    let kind = email_kind(step.kind);
    if !pacer.slot(deadline).await {
        return Ok(Outcome::LeftDue);
    }
    let (key, claim) = claim(
        app,
        &merchant.id,
        inv,
        kind,
        step.index,
        inv.customer.email.as_str(),
        deadline,
    );
    let expires = app.send_expiry(merchant, now);
    let claimed = app
        .store
        .claim_dunning_step(
            &due.token,
            step.index,
            step.kind.as_str(),
            next,
            (&key, &claim),
            expires,
            now,
        )
        .await?;
    let reminder = if step.kind == StepKind::Reminder {
        step.index
    } else {
        0
    };
    let personal: Cow<'_, InvoiceRecord> = match claimed {
        StepClaim::Moved | StepClaim::Suppressed => Cow::Borrowed(record),
        StepClaim::ClaimExists | StepClaim::Claimed => {
            Cow::Owned(personalised(app, merchant, record).await?)
        }
    };
    let record = &*personal;
    let build = || {
        invoice_email(
            app,
            links,
            merchant,
            record,
            kind,
            reminder,
            &key.reference(),
        )
    };
    let courier = app.courier();
    let outcome = match claimed {
        StepClaim::Moved => return Ok(Outcome::Taken),
        StepClaim::ClaimExists => match app.store.get_send(&key).await? {
            Some(theirs) => courier.resume(&key, &theirs, deadline, build).await?,
            None => return Ok(Outcome::LeftDue),
        },
        StepClaim::Suppressed => SendOutcome::Suppressed,
        StepClaim::Claimed => match build() {
            Some(email) => {
                courier
                    .send_claimed(&key, &claim.claim_token, &email, deadline)
                    .await?
            }
            None => {
                courier
                    .abandon(&key, &claim.claim_token, "not composed")
                    .await?
            }
        },
    };
    Ok(match outcome {
        SendOutcome::Sent { .. } if step.kind == StepKind::Final => Outcome::Final,
        SendOutcome::Sent { .. } => Outcome::Reminder,
        SendOutcome::RetryLater { .. } => {
            // The step stays claimed in `retry`; the next run resumes it (ClaimExists).
            Outcome::LeftDue
        }
        SendOutcome::InProgress | SendOutcome::Settled(SendStatus::Sent) => Outcome::Taken,
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            Outcome::Suppressed
        }
        _ => Outcome::Failed,
    })
}
