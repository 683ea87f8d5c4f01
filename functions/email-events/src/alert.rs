//! The merchant's complaint-rate alert as an email: what the shared use-case decided to send
//! ([`aftercare::usecases::email_events`]: the spam complaint rate of the merchant's email over
//! the last 7 UTC days above [`COMPLAINT_ALERT_RATE`], once that day), rendered in the merchant's
//! language with the rate per kind of email, for their operations address.

use aftercare::adapters::mail::format::{long_date, percent};
use aftercare::adapters::mail::{Mailbox, OutgoingEmail};
use aftercare::app::App;
use aftercare::domain::{EmailAddress, Merchant};
use aftercare::usecases::email_events::{COMPLAINT_ALERT, COMPLAINT_ALERT_RATE, ComplaintReport};
use serde_json::{Value, json};

/// The alert's email, or `None` (logged) if it cannot be rendered.
pub fn compose(
    app: &App,
    merchant: &Merchant,
    report: &ComplaintReport,
    ops: &EmailAddress,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let locale = merchant.default_locale;
    let at = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| long_date(z.timestamp(), "UTC", locale))
            .unwrap_or_else(|_| d.to_string())
    };
    let kinds: Vec<Value> = report
        .by_kind
        .iter()
        .filter(|(_, s)| s.complained > 0)
        .map(|(k, s)| {
            json!({"kind": k, "complained": s.complained, "sent": s.sent,
                   "rate": percent(s.complaint_rate(), locale)})
        })
        .collect();
    let total = &report.total;
    let data = json!({"complaints": {
        "rate": percent(total.complaint_rate(), locale),
        "threshold": percent(COMPLAINT_ALERT_RATE, locale),
        "sent": total.sent, "complained": total.complained,
        "from": at(report.from), "to": at(report.to),
        "kinds": kinds,
    }});
    let rendered = app
        .renderer
        .render(COMPLAINT_ALERT, locale, merchant, &data)
        .inspect_err(|e| tracing::error!(error = ?e, "complaint alert failed to render"))
        .ok()?;
    let to = Mailbox::new(Some(&merchant.name), ops.clone());
    Some(OutgoingEmail::compose(
        merchant,
        to,
        COMPLAINT_ALERT,
        rendered,
        send_ref,
        None,
    ))
}
