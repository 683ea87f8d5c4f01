//! The merchant's complaint-rate alert: when a complaint is recorded and the spam complaint rate
//! of the merchant's email over the last 7 days (UTC days, from the daily counters) is above
//! [`COMPLAINT_ALERT_RATE`], the operations address hears it once that day, with the rate per
//! kind of email. Gmail and Yahoo filter senders above 0.3%; SES reviews accounts above about
//! 0.1%: the alert comes while there is still room to act.

use aftercare::adapters::mail::format::{long_date, percent};
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::stats::DailyStats;
use aftercare::app::App;
use aftercare::domain::send::SendIdentity;
use aftercare::domain::{Merchant, MerchantId};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::MerchantDirectory;
use aftercare::usecases::send::{Deadline, SendOutcome};
use jiff::{Span, Timestamp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Complaints per email sent, over 7 days, above which the merchant is alerted.
pub const COMPLAINT_ALERT_RATE: f64 = 0.001;
/// Days the rate is measured over (today included).
pub const WINDOW_DAYS: i64 = 7;

/// Checks the merchant's 7-day complaint rate after a complaint; alerts once a day above the
/// limit. Answers what became of the alert, if one was due.
pub async fn after_complaint(
    app: &App,
    merchant_id: &MerchantId,
    now: Timestamp,
    deadline: Deadline,
) -> Result<Option<SendOutcome>, HandlerError> {
    let Some(merchant) = app.merchants.merchant(merchant_id).await? else {
        return Ok(None);
    };
    let Some(ops) = merchant.ops_email.clone() else {
        return Ok(None);
    };
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let from = today
        .checked_sub(Span::new().days(WINDOW_DAYS - 1))
        .unwrap_or(today);
    let rows = app.store.email_stats(merchant_id, from, today).await?;
    let mut total = DailyStats::default();
    let mut by_kind: BTreeMap<String, DailyStats> = BTreeMap::new();
    for r in &rows {
        total.add(r);
        by_kind.entry(r.kind.clone()).or_default().add(r);
    }
    if total.sent == 0 || total.complaint_rate() <= COMPLAINT_ALERT_RATE {
        return Ok(None);
    }
    tracing::warn!(
        rate = total.complaint_rate(),
        sent = total.sent,
        complained = total.complained,
        "complaint rate above the limit"
    );
    let kind = EmailKind::MerchantComplaintAlert;
    let day = today.to_string();
    let key = SendIdentity::merchant_alert(merchant_id, kind, &day);
    let record = key.claim(ops.as_str(), now, deadline.lease_until(app.clock.as_ref()));
    let at = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| long_date(z.timestamp(), "UTC", merchant.default_locale))
            .unwrap_or_else(|_| d.to_string())
    };
    let kinds: Vec<Value> = by_kind
        .iter()
        .filter(|(_, s)| s.complained > 0)
        .map(|(k, s)| {
            json!({"kind": k, "complained": s.complained, "sent": s.sent,
                   "rate": percent(s.complaint_rate(), merchant.default_locale)})
        })
        .collect();
    let data = json!({"complaints": {
        "rate": percent(total.complaint_rate(), merchant.default_locale),
        "threshold": percent(COMPLAINT_ALERT_RATE, merchant.default_locale),
        "sent": total.sent, "complained": total.complained, "from": at(from), "to": at(today),
        "kinds": kinds,
    }});
    let expires = app.send_expiry(&merchant, now);
    let outcome = app
        .courier()
        .claim_and_send(&key, &record, expires, deadline, || {
            compose(app, &merchant, ops.clone(), &data, &key.reference())
        })
        .await?;
    Ok(Some(outcome))
}

fn compose(
    app: &App,
    merchant: &Merchant,
    ops: aftercare::domain::EmailAddress,
    data: &Value,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let kind = EmailKind::MerchantComplaintAlert;
    let rendered = app
        .renderer
        .render(kind, merchant.default_locale, merchant, data)
        .inspect_err(|e| tracing::error!(error = ?e, "complaint alert failed to render"))
        .ok()?;
    let to = Mailbox::new(Some(&merchant.name), ops);
    Some(OutgoingEmail::compose(
        merchant, to, kind, rendered, send_ref, None,
    ))
}
