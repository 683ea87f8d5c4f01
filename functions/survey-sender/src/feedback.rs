//! `GET /v1/feedback?from=&to=&limit=&cursor=`: the merchant's survey results for a period.
//!
//! The period is `[from, to)`, each an RFC 3339 time or a `YYYY-MM-DD` date (UTC midnight);
//! defaults are the last 30 days, at most 366 days. The summary covers every answer in the period
//! (a later answer replaces an earlier one of the same order); `responses` is one page of them,
//! newest first, with `next_cursor` for the next page.

use aftercare::app::App;
use aftercare::http::{self, ApiError};
use aftercare::usecases::feedback::results;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Value, json};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;
const MAX_PERIOD_DAYS: i64 = 366;

fn parse_usize(field: &'static str, raw: &str, max: usize) -> Result<usize, ApiError> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_format",
                format!("{field} must be a whole number up to {max}"),
            )
            .field(field)
        })
}

pub async fn feedback(app: &App, req: &ApiGatewayV2httpRequest) -> Result<Value, ApiError> {
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let now = app.clock.now();
    let (from, to) = http::period(req, now, 30, MAX_PERIOD_DAYS)?;
    let limit = match http::query_param(req, "limit") {
        Some(raw) => parse_usize("limit", raw, MAX_LIMIT)?.max(1),
        None => DEFAULT_LIMIT,
    };
    // The cursor is an offset into this period's answers, newest first: it names nothing stored,
    // so it cannot reach another merchant's data.
    let offset = match http::query_param(req, "cursor") {
        Some(raw) => parse_usize("cursor", raw, 1_000_000)?,
        None => 0,
    };
    let results = results(&app.store, &merchant, (from, to), offset, limit).await?;
    let page: Vec<Value> = results
        .responses
        .into_iter()
        .map(|a| {
            json!({
                "order_id": a.order_id, "customer_id": a.customer_id, "customer_email": a.customer_email,
                "customer_name": a.customer_name, "scale": a.scale, "score": a.score, "band": a.band,
                "comment": a.comment, "answered_at": a.answered_at, "first_answered_at": a.first_answered_at,
                "answers": a.answers,
            })
        })
        .collect();
    Ok(json!({
        "from": from,
        "to": to,
        "summary": results.summary,
        "responses": page,
        "next_cursor": results.next.map(|n| n.to_string()),
    }))
}
