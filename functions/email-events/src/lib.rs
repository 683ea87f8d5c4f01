//! email-events: what happened to every email after SES took it, and the suppressions that follow.
//!
//! Triggers (one code path after parsing):
//! * EventBridge (default bus, `source: aws.ses`): the configuration set's event destination
//!   publishes `Email Sent`, `Email Delivered`, `Email Bounced`, `Email Complaint Received`,
//!   `Email Rejected`, `Email Opened`, `Email Clicked`, `Email Rendering Failed` and
//!   `Email Delivery Delayed`. Each is recorded once on the send record it belongs to (found by
//!   the `X-Aftercare-Ref` header every message carries, checked against the SES message id);
//!   a hard bounce or complaint suppresses the address for the merchant at once, the eighth soft
//!   bounce in a row does too. Redeliveries and any arrival order change nothing. A complaint
//!   that takes the merchant's 7-day complaint rate above 0.1% alerts their operations address
//!   once that day. The decisions are the shared use-case's
//!   ([`aftercare::usecases::email_events`]); this function parses the event, composes the alert
//!   (see [`alert`]) and answers.
//! * HTTP API (Bearer key): `GET /v1/suppressions/{email}` → the suppression (reason, time) or
//!   404; `DELETE /v1/suppressions/{email}` lifts it (and forgets the soft-bounce streak);
//!   `GET /v1/customers/{customerId}/messages` and `…/explain` (see [`log`]): the message log and
//!   the decision trace of one touchpoint; `GET /v1/analytics/email` (see [`analytics`]).
//!
//! Its own function rather than the senders': one configuration set feeds one rule, its IAM grant
//! is narrow (SES send only for the complaint-rate alert), and a burst of opens never competes
//! with customer-facing work.

use aftercare::adapters::store::followups::Suppression;
use aftercare::config::ConfigError;
use aftercare::domain::email_event::parse;
use aftercare::domain::{EmailAddress, Merchant};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::lambda::trigger::EventEnvelope;
use aftercare::runtime::Function;
use aftercare::usecases::email_events::{EventOutcome, RecordEmailEvent};
use aftercare::usecases::send::{Deadline, SendOutcome};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde_json::{Value, json};

pub use aftercare::app::{App, InitError};

/// The SES event source on the default bus.
pub const SOURCE: &str = "aws.ses";
/// The detail-types this function records.
pub const DETAIL_TYPES: [&str; 9] = [
    "Email Sent",
    "Email Delivered",
    "Email Bounced",
    "Email Complaint Received",
    "Email Rejected",
    "Email Opened",
    "Email Clicked",
    "Email Rendering Failed",
    "Email Delivery Delayed",
];
pub const ROUTE_GET: &str = "GET /v1/suppressions/{email}";
pub const ROUTE_DELETE: &str = "DELETE /v1/suppressions/{email}";
pub use analytics::ROUTE_ANALYTICS;
pub use log::{ROUTE_EXPLAIN, ROUTE_MESSAGES};
pub const ROUTES: [&str; 5] = [
    ROUTE_GET,
    ROUTE_DELETE,
    ROUTE_MESSAGES,
    ROUTE_EXPLAIN,
    ROUTE_ANALYTICS,
];

mod alert;
mod analytics;
mod log;

/// email-events in the shared Lambda shell ([`aftercare::runtime`]).
pub struct EmailEvents;

impl Function for EmailEvents {
    fn init(_: &App) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    async fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        rid: &str,
        _deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        http::respond(http_inner(app, req).await, rid)
    }

    async fn event(
        &self,
        app: &App,
        event: &EventEnvelope,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        if event.source != SOURCE || !DETAIL_TYPES.contains(&event.detail_type.as_str()) {
            return Err(HandlerError::new(
                "InvalidEvent",
                format!(
                    "unexpected event {:?} from {:?}",
                    event.detail_type, event.source
                ),
            ));
        }
        email_event(app, &event.id, &event.detail, deadline).await
    }
}

/// Handles one invocation.
pub async fn handle(
    app: &App,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    aftercare::runtime::dispatch(&EmailEvents, app, payload, request_id, deadline).await
}

/// Records one SES event through the shared use-case. An event that is not ours, or not
/// well-formed, is answered (and logged), never retried: retrying cannot make it ours.
async fn email_event(
    app: &App,
    event_id: &str,
    detail: &Value,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    let event = match parse(detail) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(field = %e.field, error = %e.message, "malformed SES event ignored");
            return Ok(json!({"result": "invalid", "field": e.field}));
        }
    };
    let usecase = RecordEmailEvent {
        log: &app.store,
        merchants: app.merchants.as_ref(),
        courier: app.courier(),
        retention: app.retention(),
    };
    let outcome = usecase
        .record(
            event_id,
            &event,
            deadline,
            |merchant, report, ops, reference| {
                alert::compose(app, merchant, report, ops, reference)
            },
        )
        .await?;
    Ok(match outcome {
        EventOutcome::Recorded {
            suppressed,
            complaint_alert,
        } => json!({
            "result": "recorded", "event": event.kind.as_str(),
            "suppressed": suppressed.iter().map(|(email, why)| json!({"email": email, "reason": why.as_str()})).collect::<Vec<_>>(),
            "complaint_alert": complaint_alert.as_ref().map(SendOutcome::as_str),
        }),
        EventOutcome::Duplicate => json!({"result": "duplicate"}),
        EventOutcome::Unmatched => json!({"result": "unmatched"}),
    })
}

fn view(email: &EmailAddress, s: &Suppression) -> Value {
    json!({"email": email.normalized(), "reason": s.reason, "suppressed_at": s.at})
}

async fn http_inner(app: &App, req: &ApiGatewayV2httpRequest) -> Result<(u16, Value), ApiError> {
    let route = http::route_key(req);
    if !ROUTES.contains(&route.as_str()) {
        return Err(ApiError::not_found("the route"));
    }
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    match route.as_str() {
        ROUTE_MESSAGES => log::messages(app, &merchant, req).await,
        ROUTE_EXPLAIN => log::explain(app, &merchant, req).await,
        ROUTE_ANALYTICS => analytics::email(app, &merchant, req).await,
        _ => suppressions(app, &merchant, req).await,
    }
}

async fn suppressions(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let raw = req
        .path_parameters
        .get("email")
        .map(|e| http::percent_decode(e))
        .unwrap_or_default();
    let email = EmailAddress::parse("email", &raw)?;
    let route = http::route_key(req);
    let found = match route.as_str() {
        ROUTE_GET => app.store.get_suppression(&merchant.id, &email).await?,
        ROUTE_DELETE => {
            let lifted = app.store.lift_suppression(&merchant.id, &email).await?;
            if lifted.is_some() {
                tracing::info!("suppression lifted by the merchant");
            }
            lifted
        }
        _ => return Err(ApiError::not_found("the route")),
    };
    match found {
        Some(s) if route == ROUTE_DELETE => Ok((
            200,
            json!({"lifted": true, "suppression": view(&email, &s)}),
        )),
        Some(s) => Ok((200, view(&email, &s))),
        None => Err(ApiError::not_found("a suppression of this address")),
    }
}
