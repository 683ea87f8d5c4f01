//! Billing events in, emails out: the first failed-payment email, the cadence's reminders and
//! final notice (the sweep), "you're all set" on recovery, the merchant's alert when dunning runs
//! out, and refund reversals on the loyalty ledger.

use crate::Links;
use aftercare::adapters::mail::billing::{compose, customer_value, zone};
use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::billing::{
    EventKey, FailureOutcome, InvoiceRecord, InvoiceStatus, PaymentOutcome, StepClaim,
};
use aftercare::adapters::store::loyalty::Decided;
use aftercare::app::App;
use aftercare::domain::billing::{
    BillingEvent, DunningAction, InvoiceFacts, RefundFacts, StepKind, dunning_action,
    dunning_schedule, refund_reversal,
};
use aftercare::domain::loyalty::{LedgerKind, net_points, order_source, referral_source, reverse};
use aftercare::domain::send::{SendIdentity, SendRecord, SendStatus};
use aftercare::domain::{Merchant, MerchantId};
use aftercare::http::ApiError;
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, SendLedger, StoreError};
use aftercare::usecases::send::{Deadline, Pacer, SendOutcome};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use std::borrow::Cow;

mod sweep;

pub use sweep::{SweepReport, sweep};

/// How many UTC days back the sweep looks (longer than any cadence step can be late).
pub const LOOKBACK_DAYS: u32 = 14;

fn email_kind(step: StepKind) -> EmailKind {
    match step {
        StepKind::Final => EmailKind::PaymentFinalNotice,
        _ => EmailKind::PaymentFailed,
    }
}

/// The claim identity of a dunning email: one per invoice and step.
fn claim(
    app: &App,
    m: &MerchantId,
    inv: &InvoiceFacts,
    kind: EmailKind,
    step: u32,
    to: &str,
    deadline: Deadline,
) -> (SendIdentity, SendRecord) {
    let id = SendIdentity::new(m, &inv.customer.id, kind, inv.id.as_str(), step);
    let record = id.claim(
        to,
        app.clock.now(),
        deadline.lease_until(app.clock.as_ref()),
    );
    (id, record)
}

/// The email of `kind` about `record`'s invoice.
fn invoice_email(
    app: &App,
    links: &Links,
    merchant: &Merchant,
    record: &InvoiceRecord,
    kind: EmailKind,
    reminder: u32,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let inv = &record.invoice;
    let locale = inv.customer.locale_or(merchant.default_locale);
    let tz = zone(&inv.customer, merchant);
    let failed = record.first_failed_at.unwrap_or(record.updated_at);
    let cancel_on = dunning_schedule(failed, &merchant.settings.dunning)
        .last()
        .map(|s| s.at)
        .unwrap_or(failed);
    let update_url = (kind != EmailKind::PaymentRecovered)
        .then(|| links.update_payment(&merchant.id, inv, cancel_on));
    let data = json!({
        "customer": customer_value(&inv.customer),
        "invoice": {
            "id": inv.id, "amount": inv.amount.format(locale), "plan_name": inv.plan_name,
            "failed_on": long_date(failed, tz, locale), "cancel_on": long_date(cancel_on, tz, locale),
            "reminder": reminder,
        },
        "links": {"update_payment_url": update_url},
    });
    let to = Mailbox::new(
        inv.customer.display_name().as_deref(),
        inv.customer.email.clone(),
    );
    compose(&app.renderer, merchant, kind, to, locale, &data, send_ref)
}

/// `record` with the customer's chosen language and time zone over the payment provider's.
async fn personalised(
    app: &App,
    merchant: &Merchant,
    record: &InvoiceRecord,
) -> Result<InvoiceRecord, StoreError> {
    let customer = &record.invoice.customer;
    let contact = app.store.get_contact(&merchant.id, &customer.id).await?;
    let mut personal = record.clone();
    personal.invoice.customer = contact.personalise(customer);
    Ok(personal)
}

/// Not sent yet and worth another try: the provider should redeliver.
fn redelivery(outcome: &SendOutcome) -> Result<(), ApiError> {
    if outcome.wants_redelivery() {
        Err(ApiError::unavailable(
            "recorded, but the email could not be sent yet; redeliver this event to finish",
        ))
    } else {
        Ok(())
    }
}

/// Where a billing event left its email's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// This event took it: send now.
    Ours,
    /// This event took it, recorded as suppressed: nothing to send.
    Suppressed,
    /// An earlier delivery of the event took it: carry on from its record.
    Earlier,
}

/// Sends the email whose claim a billing event just took, or carries on from an earlier
/// delivery's claim (a redelivery after a crash or an SES refusal to send now).
#[allow(clippy::too_many_arguments)]
async fn send_or_resume(
    app: &App,
    links: &Links,
    merchant: &Merchant,
    record: &InvoiceRecord,
    kind: EmailKind,
    claim: Claim,
    claimed: &(SendIdentity, SendRecord),
    deadline: Deadline,
) -> Result<SendOutcome, ApiError> {
    let (key, record_of_claim) = claimed;
    let courier = app.courier();
    // Only an email about to be built needs the customer's choices (one read of their contact).
    let personal: Cow<'_, InvoiceRecord> = match claim {
        Claim::Suppressed => Cow::Borrowed(record),
        Claim::Ours | Claim::Earlier => Cow::Owned(personalised(app, merchant, record).await?),
    };
    let record = &*personal;
    let build = || invoice_email(app, links, merchant, record, kind, 0, &key.reference());
    let outcome = match claim {
        Claim::Suppressed => SendOutcome::Suppressed,
        Claim::Ours => match build() {
            Some(email) => {
                courier
                    .send_claimed(key, &record_of_claim.claim_token, &email, deadline)
                    .await?
            }
            None => {
                courier
                    .abandon(key, &record_of_claim.claim_token, "not composed")
                    .await?
            }
        },
        Claim::Earlier => match app.store.get_send(key).await? {
            Some(theirs) => courier.resume(key, &theirs, deadline, build).await?,
            None => SendOutcome::Settled(SendStatus::Sent),
        },
    };
    redelivery(&outcome)?;
    Ok(outcome)
}

/// Processes one billing event (already authenticated and parsed).
pub async fn process(
    app: &App,
    links: &Links,
    merchant: &Merchant,
    ev: &EventKey<'_>,
    event: BillingEvent,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let now = app.clock.now();
    let expires = app.send_expiry(merchant, now);
    match event {
        BillingEvent::PaymentFailed(inv) => {
            let settings = &merchant.settings.dunning;
            let schedule = dunning_schedule(now, settings);
            let record = InvoiceRecord::failed(merchant.id.clone(), inv, now);
            let kind = EmailKind::PaymentFailed;
            let claimed = claim(
                app,
                &merchant.id,
                &record.invoice,
                kind,
                0,
                record.invoice.customer.email.as_str(),
                deadline,
            );
            let next = schedule.get(1).map(|s| s.at);
            let outcome = app
                .store
                .record_payment_failed(&record, ev, (&claimed.0, &claimed.1), expires, next, now)
                .await?;
            let claim = match outcome {
                FailureOutcome::Started { suppressed: false } => Some(Claim::Ours),
                FailureOutcome::Started { suppressed: true } => Some(Claim::Suppressed),
                FailureOutcome::Duplicate => Some(Claim::Earlier),
                FailureOutcome::AlreadyDunning | FailureOutcome::AlreadyPaid => None,
            };
            let email = match claim {
                Some(claim) => Some(
                    send_or_resume(
                        app, links, merchant, &record, kind, claim, &claimed, deadline,
                    )
                    .await?,
                ),
                None => None,
            };
            let result = match outcome {
                FailureOutcome::Started { .. } => "dunning_started",
                FailureOutcome::Duplicate => "duplicate",
                FailureOutcome::AlreadyDunning => "already_in_dunning",
                FailureOutcome::AlreadyPaid => "already_paid",
            };
            tracing::info!(invoice_id = %record.invoice.id, result, "payment failed");
            Ok(
                json!({"result": result, "invoice_id": record.invoice.id, "email": email.as_ref().map(SendOutcome::as_str)}),
            )
        }
        BillingEvent::PaymentSucceeded(inv) => {
            let record = InvoiceRecord::paid(merchant.id.clone(), inv, now);
            let kind = EmailKind::PaymentRecovered;
            let claimed = claim(
                app,
                &merchant.id,
                &record.invoice,
                kind,
                0,
                record.invoice.customer.email.as_str(),
                deadline,
            );
            let outcome = app
                .store
                .record_payment_succeeded(&record, ev, (&claimed.0, &claimed.1), expires, now)
                .await?;
            let claim = match outcome {
                PaymentOutcome::Recovered { suppressed: false } => Some(Claim::Ours),
                PaymentOutcome::Recovered { suppressed: true } => Some(Claim::Suppressed),
                PaymentOutcome::Duplicate => Some(Claim::Earlier),
                PaymentOutcome::PaidFirst | PaymentOutcome::AlreadyPaid => None,
            };
            let email = match claim {
                Some(claim) => Some(
                    send_or_resume(
                        app, links, merchant, &record, kind, claim, &claimed, deadline,
                    )
                    .await?,
                ),
                None => None,
            };
            let result = match outcome {
                PaymentOutcome::Recovered { .. } => "recovered",
                PaymentOutcome::PaidFirst => "paid",
                PaymentOutcome::AlreadyPaid => "already_paid",
                PaymentOutcome::Duplicate => "duplicate",
            };
            tracing::info!(invoice_id = %record.invoice.id, result, "payment succeeded");
            Ok(
                json!({"result": result, "invoice_id": record.invoice.id, "email": email.as_ref().map(SendOutcome::as_str)}),
            )
        }
        BillingEvent::Refund(refund) => refund_reversal_entry(app, merchant, ev, &refund).await,
    }
}

/// Whether nothing is left of the earn `source` on `entries` (the order came back in full).
fn fully_reversed(entries: &[aftercare::domain::loyalty::LedgerEntry], source: &str) -> bool {
    entries
        .iter()
        .find(|e| e.kind == LedgerKind::Earn && e.source == source)
        .is_some_and(|earn| net_points(entries, earn) <= 0)
}

async fn refund_reversal_entry(
    app: &App,
    merchant: &Merchant,
    ev: &EventKey<'_>,
    refund: &RefundFacts,
) -> Result<Value, ApiError> {
    let now = app.clock.now();
    let order = match &refund.order_id {
        Some(o) => app.store.get_order(&merchant.id, o).await?,
        None => None,
    };
    let points = order
        .as_ref()
        .filter(|o| o.order.currency == refund.amount.currency)
        .map(|o| {
            refund_reversal(
                o.points_earned,
                o.order.merchandise_value(),
                refund.amount.amount,
            )
        })
        .unwrap_or(0);
    if points == 0 {
        let fresh = app.store.mark_billing_event(&merchant.id, ev, now).await?;
        return Ok(
            json!({"result": if fresh { "no_points_to_reverse" } else { "duplicate" }, "points_reversed": 0}),
        );
    }
    let (Some(order), Some(order_id)) = (order.as_ref(), refund.order_id.as_ref()) else {
        return Ok(json!({"result": "no_points_to_reverse", "points_reversed": 0}));
    };
    let source = format!("refund:{}", refund.id);
    let against = order_source(order_id.as_str());
    let requested = i64::try_from(points).unwrap_or(i64::MAX);
    let marker = [app.store.billing_event_marker(&merchant.id, ev, now)?];
    let mut returned = false;
    let decided = app
        .store
        .decide_and_post(
            &merchant.id,
            &order.order.customer.id,
            now,
            &marker,
            |state| {
                let entry = reverse(&state.entries, now, &against, requested, source.clone());
                returned = entry.as_ref().is_some_and(|e| {
                    let mut after = state.entries.clone();
                    after.push(e.clone());
                    fully_reversed(&after, &against)
                });
                entry
            },
        )
        .await?;
    // A referee's order refunded in full takes the referrer's reward back too (from pending while
    // the window is open; never below zero). Also on a replay, in case the first run stopped here.
    let referral_back = match &decided {
        Decided::Posted { .. } => returned,
        Decided::Duplicate(state) | Decided::Declined(state) => {
            fully_reversed(&state.entries, &against)
        }
        _ => false,
    };
    if referral_back && let Some(referrer) = &order.referred_by {
        let reward = referral_source(order_id.as_str());
        let source = format!("refund:{}:referral", refund.id);
        let taken = app
            .store
            .decide_and_post(&merchant.id, referrer, now, &[], |state| {
                let points = state.entry(&reward)?.points;
                reverse(&state.entries, now, &reward, points, source.clone())
            })
            .await?;
        if let Decided::Posted { entry, .. } = taken {
            tracing::info!(refund = %refund.id, referrer = %referrer, reversed = -entry.points, "referral reward taken back");
        }
    }
    Ok(match decided {
        Decided::Posted { entry, .. } => {
            tracing::info!(refund = %refund.id, requested, reversed = -entry.points, "refund reversal");
            json!({"result": "reversed", "points_reversed": -entry.points})
        }
        Decided::Declined(state) if state.entry(&source).is_none() => {
            // Nothing left of that earn to take back (refunded or spent before).
            let fresh = app.store.mark_billing_event(&merchant.id, ev, now).await?;
            json!({"result": if fresh { "no_points_to_reverse" } else { "duplicate" }, "points_reversed": 0})
        }
        Decided::Declined(_) | Decided::Duplicate(_) | Decided::ExtraRefused(_) => {
            app.store.mark_billing_event(&merchant.id, ev, now).await?;
            json!({"result": "duplicate", "points_reversed": 0})
        }
        Decided::Busy => {
            return Err(ApiError::unavailable(
                "the customer's loyalty ledger is busy; the event will be retried",
            ));
        }
    })
}

/// `GET /v1/billing/recovery?from=&to=`: how dunning did for invoices that first failed in the
/// period.
pub async fn recovery(
    app: &App,
    merchant: &Merchant,
    from: Timestamp,
    to: Timestamp,
) -> Result<Value, ApiError> {
    let invoices = app
        .store
        .invoices_failed_between(&merchant.id, from, to)
        .await?;
    let failed = invoices.len();
    let recovered: Vec<&InvoiceRecord> = invoices.iter().filter(|i| i.recovered).collect();
    let mut amounts: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &recovered {
        // Saturating: invoices stored before amounts were bounded must not overflow the sum.
        let sum = amounts
            .entry(r.invoice.amount.currency.code().to_owned())
            .or_default();
        *sum = sum.saturating_add(r.invoice.amount.amount);
    }
    let count = |s: InvoiceStatus| invoices.iter().filter(|i| i.status == s).count();
    let sum = |f: fn(&InvoiceRecord) -> u32| invoices.iter().map(f).sum::<u32>();
    Ok(json!({
        "from": from, "to": to,
        "failed_invoices": failed,
        "recovered": recovered.len(),
        "recovered_amount": amounts.iter().map(|(c, a)| json!({"currency": c, "amount": a})).collect::<Vec<_>>(),
        "recovery_rate": if failed == 0 { None } else { Some(recovered.len() as f64 / failed as f64) },
        "in_dunning": count(InvoiceStatus::Failed),
        "exhausted": count(InvoiceStatus::Exhausted),
        "emails_sent": {
            "first": sum(|i| i.emails_first),
            "reminder": sum(|i| i.emails_reminder),
            "final": sum(|i| i.emails_final),
            "recovered": sum(|i| i.emails_recovered),
        },
    }))
}
