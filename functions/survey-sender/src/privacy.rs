//! A customer's data requests (Bearer key): export and erasure, by customer id or by email
//! address, and the status of a request. See [`aftercare::usecases::privacy`] for what they do
//! and the README's "Privacy" section for what is erased and what is kept.
//!
//! * `GET /v1/customers/{customerId}/export?cursor=` and `GET /v1/privacy/export?email=&cursor=`
//!   → 200 `{"request_id"?, "customer_ids", "items": {"<kind>": [...]}, "next_cursor"}`; follow
//!   `next_cursor` until it is null.
//! * `POST /v1/customers/{customerId}/erasure` and `POST /v1/privacy/erasure` with
//!   `{"email": "..."}` → 200 with the request once complete, 202 while it runs (it carries on by
//!   itself); asking again answers the same request.
//! * `GET /v1/privacy/requests/{requestId}` → the request's status and counts, or 404.
//!
//! The scheduled sweep carries on erasures whose invocation ended first and erases customers at
//! the end of the merchant's retention period ([`sweep`]).

use aftercare::app::App;
use aftercare::domain::privacy::{PrivacyRequest, RequestStatus, Subject};
use aftercare::domain::validation::parse_json;
use aftercare::domain::{CustomerId, EmailAddress};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup};
use aftercare::usecases::privacy::{Privacy, PrivacyError, RetentionDue, RetentionOutcome};
use aftercare::usecases::send::Deadline;
use aftercare::usecases::sweep::STOP_MARGIN;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const ROUTE_EXPORT_CUSTOMER: &str = "GET /v1/customers/{customerId}/export";
pub const ROUTE_EXPORT_EMAIL: &str = "GET /v1/privacy/export";
pub const ROUTE_ERASE_CUSTOMER: &str = "POST /v1/customers/{customerId}/erasure";
pub const ROUTE_ERASE_EMAIL: &str = "POST /v1/privacy/erasure";
pub const ROUTE_REQUEST: &str = "GET /v1/privacy/requests/{requestId}";

/// How long an erasure works inside an API request: well inside API Gateway's 30-second limit;
/// the sweep carries on what is left.
const IN_REQUEST: Duration = Duration::from_secs(20);
/// How often the retention sweep reads its due entries (at most).
const RETENTION_EVERY: Duration = Duration::from_secs(3_600);
/// How many UTC days back the sweeps look for erasures and retention entries they missed.
const LOOKBACK_DAYS: u32 = 14;

fn privacy(
    app: &App,
) -> Privacy<'_, aftercare::adapters::store::Store, aftercare::adapters::store::merchants::Merchants>
{
    Privacy {
        book: &app.store,
        merchants: app.merchants.as_ref(),
    }
}

/// A request as the API shows it (no subject: a completed request does not hold one, and a
/// running one's is the caller's own input).
pub fn view(r: &PrivacyRequest) -> Value {
    json!({
        "request_id": r.id, "kind": r.kind.as_str(), "status": r.status.as_str(),
        "subject_kind": r.subject_kind.as_str(), "requested_by": r.requested_by,
        "requested_at": r.requested_at, "updated_at": r.updated_at,
        "completed_at": r.completed_at, "counts": r.counts, "runs": r.runs,
    })
}

fn customer_of(req: &ApiGatewayV2httpRequest) -> Result<CustomerId, ApiError> {
    let raw = req
        .path_parameters
        .get("customerId")
        .map(|c| http::percent_decode(c))
        .unwrap_or_default();
    Ok(CustomerId::parse("customerId", &raw)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErasureByEmail {
    email: String,
}

/// Where an erasure inside a request stops working.
fn until(deadline: Deadline) -> Instant {
    let budget = deadline
        .remaining()
        .saturating_sub(STOP_MARGIN)
        .min(IN_REQUEST);
    Instant::now() + budget
}

pub async fn route(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let (merchant, key_id) = app.tenancy.caller(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let m = &merchant.id;
    let now = app.clock.now();
    let privacy = privacy(app);
    let route = http::route_key(req);
    match route.as_str() {
        ROUTE_EXPORT_CUSTOMER | ROUTE_EXPORT_EMAIL => {
            let subject = match route.as_str() {
                ROUTE_EXPORT_CUSTOMER => Subject::Customer(customer_of(req)?),
                _ => Subject::Address(EmailAddress::parse(
                    "email",
                    http::query_param(req, "email").unwrap_or_default(),
                )?),
            };
            let cursor = http::query_param(req, "cursor");
            let page = privacy
                .export(m, &subject, cursor, &key_id, now)
                .await
                .map_err(|e| match e {
                    PrivacyError::BadCursor => {
                        ApiError::new(400, "invalid_cursor", e.to_string()).field("cursor")
                    }
                    PrivacyError::Store(e) => e.into(),
                })?;
            if cursor.is_none() {
                tracing::info!(subject = subject.kind().as_str(), "data export requested");
            }
            Ok((200, serde_json::to_value(page).unwrap_or_default()))
        }
        ROUTE_ERASE_CUSTOMER | ROUTE_ERASE_EMAIL => {
            let subject = match route.as_str() {
                ROUTE_ERASE_CUSTOMER => Subject::Customer(customer_of(req)?),
                _ => {
                    http::require_json(req)?;
                    let input: ErasureByEmail = parse_json(&http::body_bytes(req)?)?;
                    Subject::Address(EmailAddress::parse("email", &input.email)?)
                }
            };
            tracing::info!(subject = subject.kind().as_str(), "erasure requested");
            let request = privacy
                .erase(m, &subject, &key_id, now, until(deadline))
                .await?;
            let status = match request.status {
                RequestStatus::Completed => 200,
                RequestStatus::Running => 202,
            };
            Ok((status, view(&request)))
        }
        _ => {
            let id = req
                .path_parameters
                .get("requestId")
                .map(String::as_str)
                .unwrap_or_default();
            let valid = (id.starts_with("er_") || id.starts_with("ex_"))
                && id.len() <= 64
                && id[3..].bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                return Err(ApiError::not_found("a privacy request with this id"));
            }
            match privacy.request(m, id).await? {
                Some(r) => Ok((200, view(&r))),
                None => Err(ApiError::not_found("a privacy request with this id")),
            }
        }
    }
}

/// What the privacy sweeps did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct PrivacyReport {
    /// Erasures carried on after their first invocation ended.
    pub erasures_resumed: usize,
    pub erasures_completed: usize,
    /// Customers erased at the end of the retention period.
    pub retention_erased: usize,
    /// Retention entries looked at again later (a longer period, a running subscription).
    pub retention_deferred: usize,
    pub left_for_next_run: usize,
    pub errors: usize,
}

#[derive(Clone, Copy)]
enum Outcome {
    Resumed { completed: bool },
    Retention(RetentionOutcome),
    LeftDue,
}

/// Carries on running erasures, then erases the customers whose retention period ended.
pub async fn sweep(
    app: &App,
    deadline: Deadline,
) -> Result<(PrivacyReport, aftercare::usecases::sweep::Swept), HandlerError> {
    let privacy = &privacy(app);
    let until = Instant::now() + deadline.remaining().saturating_sub(STOP_MARGIN);
    let mut report = PrivacyReport::default();
    let mut tally = |o: Outcome| match o {
        Outcome::Resumed { completed } => {
            report.erasures_resumed += 1;
            report.erasures_completed += usize::from(completed);
        }
        Outcome::Retention(RetentionOutcome::Erased) => report.retention_erased += 1,
        Outcome::Retention(RetentionOutcome::Deferred | RetentionOutcome::Taken) => {
            report.retention_deferred += 1;
        }
        Outcome::Retention(RetentionOutcome::LeftDue) | Outcome::LeftDue => {
            report.left_for_next_run += 1;
        }
    };
    let resumed = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::Privacy,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due: Due<PrivacyRequest>| async move {
            let request = match due.entry {
                Ok(r) => r,
                Err(e) => return Err(e),
            };
            let now = app.clock.now();
            let done = privacy.carry_on(request, now, until).await?;
            Ok(Outcome::Resumed {
                completed: done.status == RequestStatus::Completed,
            })
        },
        &mut tally,
    )
    .await?;
    // Retention is measured in days: one sweep an hour reads its due entries, whichever it is.
    let turn = {
        use aftercare::ports::privacy::PrivacyBook as _;
        app.store
            .retention_turn(app.clock.now(), RETENTION_EVERY)
            .await?
    };
    if !turn {
        report.errors = resumed.errors;
        return Ok((report, resumed));
    }
    let retained = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::Retention,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due: Due<RetentionDue>| async move {
            let now = app.clock.now();
            Ok(Outcome::Retention(
                privacy.retain_or_erase(&due, now, until).await?,
            ))
        },
        &mut tally,
    )
    .await?;
    report.errors = resumed.errors + retained.errors;
    let swept = aftercare::usecases::sweep::Swept {
        due: resumed.due + retained.due,
        items_read: resumed.items_read + retained.items_read,
        errors: resumed.errors + retained.errors,
        over_quota: resumed.over_quota + retained.over_quota,
    };
    Ok((report, swept))
}
