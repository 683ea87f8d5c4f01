//! renewal-checker: subscriptions, their renewal reminders and card-expiry notices, and the links
//! in those emails.
//!
//! Triggers (one code path after parsing):
//! * HTTP API (Bearer key): `PUT /v1/subscriptions/{subscriptionId}` stores a subscription
//!   (idempotent; an update older than the stored state never overwrites it: 409
//!   `stale_update`); `GET /v1/subscriptions/{subscriptionId}` returns it with its notice schedule.
//! * EventBridge `Subscription Updated`: `detail: {merchant_id, subscription_id, subscription}`,
//!   the same body as the PUT. Stale updates are acknowledged and ignored.
//! * EventBridge schedule (`Scheduled Event`, daily; safe to rerun or run late): reads only the
//!   subscriptions due for a notice from the due index and sends the latest notice due for each:
//!   a renewal reminder, a card-expiry notice, or one combined email when they fall within days of
//!   each other. Each notice is claimed on its identity (subscription, renewal date or card
//!   expiry, lead time), so a rerun, an overlapping run or a replayed update never sends it twice.
//! * HTTP API (signed links, no key): `GET /v1/subscription-links/{token}` records the click,
//!   publishes `Subscription Link Clicked` and redirects to the merchant's portal (with a signed
//!   query the merchant can verify) or to the hosted page; `GET|POST
//!   /v1/subscription-page/{token}` is the hosted page, where a customer asks to cancel or renew
//!   (published as `Subscription Action Requested` for the merchant's billing system to act on).

mod compose;
mod pages;
mod sweep;

use aftercare::adapters::store::subscriptions::{SubscriptionRecord, UpsertOutcome};
use aftercare::config::ConfigError;
use aftercare::domain::ids::SubscriptionId;
use aftercare::domain::subscription::{SubscriptionInput, notices};
use aftercare::domain::validation::{from_value, parse_json};
use aftercare::domain::{FieldError, Merchant, MerchantId};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::lambda::trigger::EventEnvelope;
use aftercare::ports::MerchantDirectory as _;
use aftercare::runtime::Function;
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep};

pub const DETAIL_TYPE: &str = "Subscription Updated";
pub use aftercare::runtime::SCHEDULE_DETAIL_TYPE;
pub const ROUTE_PUT: &str = "PUT /v1/subscriptions/{subscriptionId}";
pub const ROUTE_GET: &str = "GET /v1/subscriptions/{subscriptionId}";
pub const ROUTE_LINK: &str = "GET /v1/subscription-links/{token}";
pub const ROUTE_PAGE: &str = "GET /v1/subscription-page/{token}";
pub const ROUTE_PAGE_POST: &str = "POST /v1/subscription-page/{token}";
pub const ROUTES: [&str; 5] = [
    ROUTE_PUT,
    ROUTE_GET,
    ROUTE_LINK,
    ROUTE_PAGE,
    ROUTE_PAGE_POST,
];
/// Token purpose of subscription links.
pub use aftercare::links::purpose::SUBSCRIPTION as LINK_PURPOSE;
/// Events published for the merchant.
pub const EVENT_LINK_CLICKED: &str = "Subscription Link Clicked";
pub const EVENT_ACTION_REQUESTED: &str = "Subscription Action Requested";
/// How long links in a notice work after the renewal (or card expiry) they are about.
pub use aftercare::links::SUBSCRIPTION_LINK_GRACE_DAYS as LINK_GRACE_DAYS;

pub use aftercare::links::Links;

/// renewal-checker in the shared Lambda shell ([`aftercare::runtime`]), with the links its
/// notices sign.
pub struct RenewalChecker<'a> {
    pub links: Cow<'a, Links>,
}

impl Function for RenewalChecker<'_> {
    fn init(app: &App) -> Result<Self, ConfigError> {
        Links::from_config(&app.config).map(|links| Self {
            links: Cow::Owned(links),
        })
    }

    async fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        rid: &str,
        _deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        http_inner(app, &self.links, req, rid).await
    }

    async fn event(
        &self,
        app: &App,
        event: &EventEnvelope,
        _deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        if event.detail_type != DETAIL_TYPE {
            return Err(aftercare::runtime::unexpected(&event.detail_type));
        }
        Box::pin(handle_event(app, event.detail.clone())).await
    }

    async fn schedule(&self, app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
        let report = Box::pin(sweep(app, &self.links, deadline)).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    }
}

/// Handles one invocation.
pub async fn handle(
    app: &App,
    links: &Links,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    let function = RenewalChecker {
        links: Cow::Borrowed(links),
    };
    aftercare::runtime::dispatch(&function, app, payload, request_id, deadline).await
}

async fn http_inner(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    rid: &str,
) -> aws_lambda_events::apigw::ApiGatewayV2httpResponse {
    let route = http::route_key(req);
    let token = req
        .path_parameters
        .get("token")
        .map(String::as_str)
        .unwrap_or_default();
    match route.as_str() {
        ROUTE_LINK => pages::link(app, links, token, rid).await,
        ROUTE_PAGE => pages::page(app, links, token, rid).await,
        ROUTE_PAGE_POST => pages::request(app, links, req, token, rid).await,
        ROUTE_PUT | ROUTE_GET => http::respond(api(app, req, &route).await, rid),
        _ => ApiError::not_found("the route").into_response(rid),
    }
}

async fn api(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    route: &str,
) -> Result<(u16, Value), ApiError> {
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let id = req
        .path_parameters
        .get("subscriptionId")
        .map(String::as_str)
        .unwrap_or_default();
    let id = SubscriptionId::parse("subscriptionId", id)?;
    if route == ROUTE_GET {
        let record = app
            .store
            .get_subscription(&merchant.id, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("the subscription"))?;
        return Ok((200, view(&merchant, &record, None)));
    }
    http::require_json(req)?;
    let input: SubscriptionInput = parse_json(&http::body_bytes(req)?)?;
    let now = app.clock.now();
    let sub = input.validate(id, now)?;
    let (outcome, record) =
        aftercare::usecases::subscriptions::apply(&app.store, &merchant, sub, now).await?;
    match outcome {
        UpsertOutcome::Created => Ok((201, view(&merchant, &record, Some("created")))),
        UpsertOutcome::Updated => Ok((200, view(&merchant, &record, Some("updated")))),
        UpsertOutcome::Unchanged(stored) => Ok((200, view(&merchant, &stored, Some("unchanged")))),
        UpsertOutcome::Stale(_) => Err(ApiError::new(
            409,
            "stale_update",
            "a newer state of this subscription is stored; this update was not applied",
        )
        .field("updated_at")),
    }
}

/// The subscription with its notice schedule.
fn view(merchant: &Merchant, record: &SubscriptionRecord, result: Option<&str>) -> Value {
    let sub = &record.subscription;
    let schedule: Vec<Value> = notices(sub, &merchant.settings.renewals)
        .iter()
        .map(|n| {
            json!({
                "kind": n.kind().as_str(), "at": n.at, "renewal_lead_days": n.renewal_lead,
                "card_lead_days": n.card_lead, "auto_renewal_notice": n.auto_renewal,
            })
        })
        .collect();
    let mut v = json!({
        "subscription": sub,
        "received_at": record.received_at,
        "last_notice": record.last_notice,
        "last_notice_at": record.last_notice_at,
        "notices": schedule,
    });
    if let Some(r) = result {
        v["result"] = r.into();
    }
    v
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionDetail {
    merchant_id: String,
    subscription_id: String,
    subscription: Value,
}

async fn handle_event(app: &App, detail: Value) -> Result<Value, HandlerError> {
    let invalid = |e: FieldError| {
        HandlerError::new("InvalidEvent", format!("detail.{}: {}", e.field, e.message))
    };
    let detail: SubscriptionDetail = from_value(detail).map_err(invalid)?;
    let merchant_id = MerchantId::parse("merchant_id", &detail.merchant_id).map_err(invalid)?;
    let merchant = app
        .merchants
        .merchant(&merchant_id)
        .await
        .map_err(HandlerError::from)?
        .ok_or_else(|| {
            HandlerError::new("UnknownMerchant", format!("no merchant {merchant_id}"))
        })?;
    let id = SubscriptionId::parse("subscription_id", &detail.subscription_id).map_err(invalid)?;
    let input: SubscriptionInput =
        from_value(detail.subscription).map_err(|e| invalid(e.within("subscription")))?;
    let now = app.clock.now();
    let sub = input
        .validate(id, now)
        .map_err(|e| invalid(e.within("subscription")))?;
    let (outcome, record) =
        aftercare::usecases::subscriptions::apply(&app.store, &merchant, sub, now).await?;
    // A stale update is an answer, not a failure: redelivering it would change nothing.
    Ok(view(
        &merchant,
        &record,
        Some(aftercare::usecases::subscriptions::outcome_name(&outcome)),
    ))
}
