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
use aftercare::token::{self, Claims, LinkSigner, SigningKey};
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep};

pub const DETAIL_TYPE: &str = "Subscription Updated";
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";
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
pub const LINK_PURPOSE: &str = "subscription";
/// Events published for the merchant.
pub const EVENT_LINK_CLICKED: &str = "Subscription Link Clicked";
pub const EVENT_ACTION_REQUESTED: &str = "Subscription Action Requested";
/// How long links in a notice work after the renewal (or card expiry) they are about.
pub const LINK_GRACE_DAYS: i64 = 60;

/// Signs and builds the links in subscription emails.
pub struct Links(LinkSigner);

impl Links {
    pub fn new(base: &str, key: SigningKey) -> Self {
        Self(LinkSigner::new(base, key))
    }

    pub fn from_config(config: &aftercare::Config) -> Result<Self, ConfigError> {
        config.link_signer().map(Self)
    }

    /// A one-click link: `manage`, `renew` or `update_payment`. The hosted page takes the same
    /// token (`/v1/subscription-page/{token}`).
    pub fn link(
        &self,
        merchant: &MerchantId,
        sub: &SubscriptionId,
        action: &str,
        until: Timestamp,
    ) -> String {
        let expires = until
            .saturating_add(jiff::SignedDuration::from_hours(24 * LINK_GRACE_DAYS))
            .unwrap_or(until);
        self.0.url(
            "/v1/subscription-links",
            &Claims {
                merchant: merchant.to_string(),
                purpose: LINK_PURPOSE.into(),
                subject: sub.to_string(),
                value: Some(action.to_owned()),
                expires: expires.as_second(),
            },
        )
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, token::TokenError> {
        self.0.verify(token, LINK_PURPOSE, now)
    }

    pub fn base(&self) -> &str {
        self.0.base()
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
    let trigger = aftercare::lambda::trigger::Trigger::parse(payload)
        .map_err(|e| HandlerError::new("InvalidEvent", e.to_string()))?;
    match trigger {
        aftercare::lambda::trigger::Trigger::Http(req) => {
            let rid = http::request_id(&req, request_id).to_owned();
            let span = tracing::info_span!("http", request_id = %rid, route = %http::route_key(&req), merchant_id = tracing::field::Empty);
            let resp = async { Box::pin(http_inner(app, links, &req, &rid)).await }
                .instrument(span)
                .await;
            Ok(serde_json::to_value(resp).unwrap_or_else(|_| json!({"statusCode": 500})))
        }
        aftercare::lambda::trigger::Trigger::Event(event) => {
            let span = tracing::info_span!("event", request_id, event_id = %event.id, detail_type = %event.detail_type);
            async {
                match event.detail_type.as_str() {
                    SCHEDULE_DETAIL_TYPE => {
                        let report = Box::pin(sweep(app, links, deadline)).await?;
                        Ok(serde_json::to_value(report).unwrap_or_default())
                    }
                    DETAIL_TYPE => Box::pin(handle_event(app, event.detail.clone())).await,
                    other => Err(HandlerError::new(
                        "InvalidEvent",
                        format!("unexpected detail-type {other:?}"),
                    )),
                }
            }
            .instrument(span)
            .await
        }
    }
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
        .tenancy
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
