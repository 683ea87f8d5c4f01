//! Billing events in, emails out, through the shared use-case ([`aftercare::usecases::billing`]):
//! the first failed-payment email, the cadence's reminders and final notice (the sweep), "you're
//! all set" on recovery, the merchant's alert when dunning runs out, refund reversals on the
//! loyalty ledger with the customer's "refund issued" email, and a refund of the whole order
//! taking its lines out of the pending review request and cross-sell
//! ([`aftercare::usecases::followups::drop_returned_lines`]). Here: composing those emails, and
//! the answers the triggers get.

use crate::Links;
use aftercare::adapters::mail::billing::{compose, customer_value, zone};
use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::app::App;
use aftercare::domain::Merchant;
use aftercare::domain::billing::{
    BillingEvent, EventKey, FailureOutcome, InvoiceRecord, InvoiceStatus, PaymentOutcome,
    dunning_schedule,
};
use aftercare::domain::followup::LinesDropped;
use aftercare::http::ApiError;
use aftercare::ports::billing::BillingBook as _;
use aftercare::usecases::billing::{BillingEvents, DunningEmail, Handled, RefundOutcome};
use aftercare::usecases::followups::{drop_returned_lines, refunded_lines};
use aftercare::usecases::send::{Deadline, SendOutcome};
use jiff::Timestamp;
use serde_json::{Value, json};

mod sweep;

pub use sweep::{SweepReport, sweep};

/// How many UTC days back the sweep looks (longer than any cadence step can be late).
pub const LOOKBACK_DAYS: u32 = 14;

/// The email `email` asks for, referenced `send_ref`.
fn compose_email(
    app: &App,
    links: &Links,
    merchant: &Merchant,
    email: DunningEmail<'_>,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    match email {
        DunningEmail::Invoice {
            record,
            kind,
            reminder,
        } => invoice_email(app, links, merchant, record, kind, reminder, send_ref),
        DunningEmail::Exhausted {
            record,
            to,
            failed_on,
            cancel_on,
            emails_sent,
        } => {
            let inv = &record.invoice;
            let locale = merchant.default_locale;
            let data = json!({
                "customer": customer_value(&inv.customer),
                "invoice": {
                    "id": inv.id, "amount": inv.amount.format(locale), "plan_name": inv.plan_name,
                    "failed_on": long_date(failed_on, &merchant.time_zone, locale),
                    "cancel_on": long_date(cancel_on, &merchant.time_zone, locale),
                },
                "dunning": {"emails_sent": emails_sent},
            });
            let to = Mailbox::new(Some(&merchant.name), to.clone());
            let kind = EmailKind::MerchantDunningAlert;
            compose(&app.renderer, merchant, kind, to, locale, &data, send_ref)
        }
        DunningEmail::Refund(notice) => aftercare::adapters::mail::refunds::refund_email(
            &app.renderer,
            merchant,
            notice.customer,
            notice.amount,
            notice.order,
            send_ref,
        ),
    }
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
        inv.customer.email.clone()?,
    );
    compose(&app.renderer, merchant, kind, to, locale, &data, send_ref)
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
    let events = BillingEvents {
        book: &app.store,
        courier: app.courier(),
        retention: app.retention(),
    };
    // A refund names no lines: one of the whole order gives every line back, and so does the
    // partial refund that brings the payment's refunds in all to the whole order.
    let refunded = match &event {
        BillingEvent::Refund(r) => r
            .order_id
            .clone()
            .map(|o| (o, r.refunded_in_all.unwrap_or(r.amount))),
        _ => None,
    };
    let handled = events
        .process(
            merchant,
            ev,
            event,
            deadline,
            |merchant, email, send_ref| compose_email(app, links, merchant, email, send_ref),
        )
        .await?;
    let mut lines_dropped = Vec::new();
    if let Some((order_id, amount)) = refunded
        && let Some(order) = app.store.get_order(&merchant.id, &order_id).await?
    {
        let lines = refunded_lines(&order.order, None, amount);
        lines_dropped = drop_returned_lines(
            &app.store,
            &merchant.id,
            &order_id,
            &lines,
            "refunded",
            app.clock.now(),
        )
        .await?;
    }
    let email = |e: &Option<SendOutcome>| e.as_ref().map(SendOutcome::as_str);
    Ok(match handled {
        Handled::PaymentFailed {
            invoice,
            outcome,
            email: sent,
        } => {
            let result = match outcome {
                FailureOutcome::Started { .. } => "dunning_started",
                FailureOutcome::Duplicate => "duplicate",
                FailureOutcome::AlreadyDunning => "already_in_dunning",
                FailureOutcome::AlreadyPaid => "already_paid",
            };
            json!({"result": result, "invoice_id": invoice, "email": email(&sent)})
        }
        Handled::PaymentSucceeded {
            invoice,
            outcome,
            email: sent,
        } => {
            let result = match outcome {
                PaymentOutcome::Recovered { .. } => "recovered",
                PaymentOutcome::PaidFirst => "paid",
                PaymentOutcome::AlreadyPaid => "already_paid",
                PaymentOutcome::Duplicate => "duplicate",
            };
            json!({"result": result, "invoice_id": invoice, "email": email(&sent)})
        }
        Handled::Refund {
            outcome,
            email: sent,
        } => {
            let (result, points) = match outcome {
                RefundOutcome::Reversed { points } => ("reversed", points),
                RefundOutcome::NothingToReverse => ("no_points_to_reverse", 0),
                RefundOutcome::Duplicate => ("duplicate", 0),
            };
            let mut out =
                json!({"result": result, "points_reversed": points, "email": email(&sent)});
            for (key, what) in [
                ("follow_ups_trimmed", LinesDropped::Trimmed),
                ("follow_ups_cancelled", LinesDropped::Cancelled),
            ] {
                let kinds: Vec<&str> = lines_dropped
                    .iter()
                    .filter(|(_, w)| *w == what)
                    .map(|(k, _)| k.as_str())
                    .collect();
                if !kinds.is_empty() {
                    out[key] = kinds.into();
                }
            }
            out
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
