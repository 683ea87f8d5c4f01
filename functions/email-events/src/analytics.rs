//! `GET /v1/analytics/email?from=&to=&kind=` (Bearer key): sent, delivered, bounced, complained,
//! opened and clicked, with their rates, in total, per kind and per day (UTC), from the daily
//! counters email-events keeps (`aftercare::ports::email_events::EmailStats`): one Query, whatever the volume.
//!
//! Rates: delivery, bounce and complaint per email sent (as SES and mailbox providers count
//! them); open and click per email delivered. Each metric counts an email once (a second open of
//! the same email is not a second open).

use aftercare::adapters::mail::EmailKind;
use aftercare::app::App;
use aftercare::domain::Merchant;
use aftercare::domain::email_event::DailyStats;
use aftercare::http::{self, ApiError};
use aftercare::ports::email_events::EmailStats;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::civil::Date;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ROUTE_ANALYTICS: &str = "GET /v1/analytics/email";

/// Longest range one request may cover.
const MAX_DAYS: i64 = 366;
/// The range without `from`: the 30 days up to `to`.
const DEFAULT_DAYS: i64 = 29;

fn rounded(r: f64) -> f64 {
    (r * 1_000_000.0).round() / 1_000_000.0
}

/// Counters with their rates.
fn view(s: &DailyStats) -> Value {
    let rate = DailyStats::rate;
    json!({
        "sent": s.sent, "delivered": s.delivered, "bounced": s.bounced,
        "complained": s.complained, "opened": s.opened, "clicked": s.clicked,
        "rejected": s.rejected,
        "delivery_rate": rounded(rate(s.delivered, s.sent)),
        "bounce_rate": rounded(rate(s.bounced, s.sent)),
        "complaint_rate": rounded(rate(s.complained, s.sent)),
        "open_rate": rounded(rate(s.opened, s.delivered)),
        "click_rate": rounded(rate(s.clicked, s.delivered)),
    })
}

/// The first day a `YYYY-MM-DD` date can name (jiff also reads signed six-digit years).
const EARLIEST: Date = jiff::civil::date(0, 1, 1);

fn date_param(req: &ApiGatewayV2httpRequest, field: &str) -> Result<Option<Date>, ApiError> {
    http::query_param(req, field)
        .map(|v| {
            v.parse::<Date>()
                .ok()
                .filter(|d| *d >= EARLIEST)
                .ok_or_else(|| {
                    ApiError::new(400, "invalid_format", "expected a date as YYYY-MM-DD")
                        .field(field)
                })
        })
        .transpose()
}

pub async fn email(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let to = date_param(req, "to")?.unwrap_or(today);
    let from = match date_param(req, "from")? {
        Some(d) => d,
        None => to
            .checked_sub(jiff::Span::new().days(DEFAULT_DAYS))
            .unwrap_or(to)
            .max(EARLIEST),
    };
    let days = (to - from).get_days();
    if days < 0 {
        return Err(ApiError::new(400, "out_of_range", "to is before from").field("to"));
    }
    if i64::from(days) >= MAX_DAYS {
        return Err(ApiError::new(
            400,
            "out_of_range",
            format!("a report covers at most {MAX_DAYS} days"),
        )
        .field("to"));
    }
    let kind = match http::query_param(req, "kind") {
        None => None,
        Some(k) => Some(
            EmailKind::ALL
                .iter()
                .find(|e| e.as_str() == k)
                .ok_or_else(|| {
                    ApiError::new(400, "invalid_value", "not an email kind").field("kind")
                })?
                .as_str(),
        ),
    };
    let mut rows = app.store.email_stats(&merchant.id, from, to).await?;
    if let Some(k) = kind {
        rows.retain(|r| r.kind == k);
    }
    let mut total = DailyStats::default();
    let mut by_kind: BTreeMap<String, DailyStats> = BTreeMap::new();
    let mut by_day: BTreeMap<String, DailyStats> = BTreeMap::new();
    for r in &rows {
        total.add(r);
        by_kind.entry(r.kind.clone()).or_default().add(r);
        by_day.entry(r.day.clone()).or_default().add(r);
    }
    let with = |name: &str, value: &str, s: &DailyStats| {
        let mut v = view(s);
        v[name] = value.into();
        v
    };
    Ok((
        200,
        json!({
            "from": from.to_string(), "to": to.to_string(), "kind": kind,
            "totals": view(&total),
            "by_kind": by_kind.iter().map(|(k, s)| with("kind", k, s)).collect::<Vec<_>>(),
            "by_day": by_day.iter().map(|(d, s)| with("day", d, s)).collect::<Vec<_>>(),
        }),
    ))
}
