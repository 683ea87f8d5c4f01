//! shipment-update: shipments and their tracking, shipping emails once per milestone, late
//! detection, and the post-delivery journey's schedule.
//!
//! Triggers (one code path after parsing):
//! * HTTP API (Bearer key): `POST /v1/orders/{orderId}/shipments` creates a shipment and sends the
//!   "shipped" email; `POST /v1/shipments/{shipmentId}/events` records a tracking checkpoint;
//!   `GET /v1/orders/{orderId}` returns the order with its shipments and their histories.
//! * HTTP API (Bearer key): returns (see [`returns`]): `POST /v1/orders/{orderId}/returns`,
//!   `GET /v1/returns`, `GET /v1/returns/{returnId}`, `POST /v1/returns/{returnId}/{action}`.
//! * HTTP API (signed link): `GET /v1/track/{token}`, the shipment's branded tracking page
//!   (see [`page`]); it records nothing but a view count.
//! * HTTP API (signed link): `GET /v1/return/{token}` and `POST /v1/return/{token}`, the order's
//!   return portal (see [`portal`]): the page records nothing; the form asks for a return once.
//! * HTTP API (signed): `POST /v1/webhooks/tracking/{merchantId}` — a carrier or aggregator
//!   checkpoint, authenticated by `X-Aftercare-Signature: t=<unix>,v1=<hmac-sha256 hex>` over
//!   `"<t>.<raw body>"` with one of the merchant's webhook secrets (5-minute window, replays refused).
//! * EventBridge `Shipment Updated`: `detail: {merchant_id, order_id, shipment}` to create,
//!   `{merchant_id, shipment_id, checkpoint}` to record a checkpoint.
//! * EventBridge schedule (`Scheduled Event`): sweeps the due index for late shipments (promised
//!   date passed without out-for-delivery: one "running late" email and a merchant alert) and for
//!   shipments without a delivery scan (the journey is then anchored to shipping + N days).
//!
//! Delivery of the whole order (every shipment delivered) anchors the journey: usage tips, survey,
//! cross-sell and review request are written to the due index once, for survey-sender to send.

use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::config::ConfigError;
use aftercare::domain::ids::ShipmentId;
use aftercare::domain::send::SendIdentity;
use aftercare::domain::shipment::{Checkpoint, CheckpointInput, ShipmentInput, ShipmentRecord};
use aftercare::domain::validation::{from_value, parse_json};
use aftercare::domain::{FieldError, Merchant, MerchantId, OrderId};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::lambda::trigger::EventEnvelope;
use aftercare::ports::MerchantDirectory as _;
use aftercare::runtime::Function;
use aftercare::usecases::send::{Deadline, SendOutcome};
use aftercare::usecases::shipments::TrackingError;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep};

pub mod aggregators;
mod email;
mod page;
mod portal;
pub mod returns;
pub mod sweep;
mod tracking;
mod view;

pub use aftercare::usecases::shipments::CheckpointResult;
pub(crate) use email::*;
use tracking::*;
use view::*;

/// A shipment another inbound adapter reports (a shop platform's fulfillment), recorded exactly as
/// `POST /v1/orders/{orderId}/shipments` records it: whether it was created, and its view.
pub async fn record_shipment(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    input: ShipmentInput,
    deadline: Deadline,
) -> Result<(bool, Value), TrackingError> {
    create_shipment(app, merchant, order_id, input, deadline).await
}

/// A tracking status another inbound adapter reports, applied exactly as
/// `POST /v1/shipments/{shipmentId}/events` applies it.
pub async fn record_checkpoint(
    app: &App,
    merchant: &Merchant,
    shipment_id: &ShipmentId,
    input: CheckpointInput,
    deadline: Deadline,
) -> Result<Value, TrackingError> {
    checkpoint(app, merchant, shipment_id, input, None, deadline).await
}

pub const DETAIL_TYPE: &str = "Shipment Updated";
pub use aftercare::runtime::SCHEDULE_DETAIL_TYPE;
pub const ROUTE_CREATE: &str = "POST /v1/orders/{orderId}/shipments";
pub const ROUTE_CHECKPOINT: &str = "POST /v1/shipments/{shipmentId}/events";
pub const ROUTE_WEBHOOK: &str = "POST /v1/webhooks/tracking/{merchantId}";
pub const ROUTE_GET_ORDER: &str = "GET /v1/orders/{orderId}";
pub const ROUTE_TRACK_PAGE: &str = "GET /v1/track/{token}";
pub const ROUTE_RETURN_PAGE: &str = "GET /v1/return/{token}";
pub const ROUTE_RETURN_SUBMIT: &str = "POST /v1/return/{token}";
pub const ROUTES: [&str; 15] = [
    ROUTE_CREATE,
    ROUTE_CHECKPOINT,
    ROUTE_WEBHOOK,
    ROUTE_GET_ORDER,
    aggregators::ROUTE_EASYPOST,
    aggregators::ROUTE_AFTERSHIP,
    aggregators::ROUTE_SHIPPO,
    ROUTE_TRACK_PAGE,
    returns::ROUTE_CREATE_RETURN,
    returns::ROUTE_LIST_RETURNS,
    returns::ROUTE_GET_RETURN,
    returns::ROUTE_RETURN_ACTION,
    returns::ROUTE_RETURNS_ANALYTICS,
    ROUTE_RETURN_PAGE,
    ROUTE_RETURN_SUBMIT,
];
pub use aftercare::links::Links;
/// The signature header of tracking webhooks.
pub const SIGNATURE_HEADER: &str = "x-aftercare-signature";
/// How many days back a sweep looks for due items it has not completed.
pub const SWEEP_LOOKBACK_DAYS: u32 = 14;

/// shipment-update in the shared Lambda shell ([`aftercare::runtime`]). Its tracking page and
/// shipping emails sign links with the App's [`Links`], required at init: a deployment without
/// the signing key fails there.
pub struct ShipmentUpdate;

impl Function for ShipmentUpdate {
    fn init(app: &App) -> Result<Self, ConfigError> {
        Links::from_config(&app.config).map(|_| Self)
    }

    async fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        rid: &str,
        deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        let route = http::route_key(req);
        let token = || req.path_parameters.get("token").map_or("", String::as_str);
        match route.as_str() {
            ROUTE_TRACK_PAGE => return page::track_page(app, token(), rid).await,
            ROUTE_RETURN_PAGE => return portal::return_page(app, token(), rid).await,
            ROUTE_RETURN_SUBMIT => {
                return portal::return_submit(app, req, token(), rid, deadline).await;
            }
            _ => {}
        }
        http::respond(http_inner(app, req, deadline).await, rid)
    }

    async fn event(
        &self,
        app: &App,
        event: &EventEnvelope,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        if event.detail_type != DETAIL_TYPE {
            return Err(aftercare::runtime::unexpected(&event.detail_type));
        }
        Box::pin(handle_event(app, event.detail.clone(), deadline)).await
    }

    async fn schedule(&self, app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
        Box::pin(sweep(app, deadline)).await
    }
}

/// Handles one invocation.
pub async fn handle(
    app: &App,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    aftercare::runtime::dispatch(&ShipmentUpdate, app, payload, request_id, deadline).await
}

fn path_param<'a>(req: &'a ApiGatewayV2httpRequest, name: &str) -> Result<&'a str, ApiError> {
    req.path_parameters
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::new(400, "required", format!("{name} is required")).field(name))
}

async fn http_inner(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let route = http::route_key(req);
    if route == ROUTE_WEBHOOK {
        return webhook(app, req, deadline).await;
    }
    // A tracking aggregator's webhook: its own authentication instead of a key.
    if let Some(provider) = aggregators::Provider::of_route(&route) {
        return aggregators::webhook(app, req, provider, deadline).await;
    }
    if !ROUTES.contains(&route.as_str()) {
        return Err(ApiError::not_found("the route"));
    }
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    match route.as_str() {
        returns::ROUTE_CREATE_RETURN
        | returns::ROUTE_LIST_RETURNS
        | returns::ROUTE_GET_RETURN
        | returns::ROUTE_RETURN_ACTION
        | returns::ROUTE_RETURNS_ANALYTICS => {
            returns::api(app, &merchant, req, &route, deadline).await
        }
        ROUTE_GET_ORDER => {
            let order_id = OrderId::parse("orderId", path_param(req, "orderId")?)?;
            Ok((200, order_view(app, &merchant.id, &order_id).await?))
        }
        ROUTE_CREATE => {
            let order_id = OrderId::parse("orderId", path_param(req, "orderId")?)?;
            http::require_json(req)?;
            let input: ShipmentInput = parse_json(&http::body_bytes(req)?)?;
            let (created, view) =
                create_shipment(app, &merchant, &order_id, input, deadline).await?;
            Ok((if created { 201 } else { 200 }, view))
        }
        _ => {
            let shipment_id = ShipmentId::parse("shipmentId", path_param(req, "shipmentId")?)?;
            http::require_json(req)?;
            let input: CheckpointInput = parse_json(&http::body_bytes(req)?)?;
            let result = checkpoint(app, &merchant, &shipment_id, input, None, deadline).await?;
            Ok((200, result))
        }
    }
}

/// A carrier webhook: the signature is checked before anything is parsed or stored.
async fn webhook(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let aftercare::http::auth::SignedWebhook {
        merchant,
        body,
        verified,
    } = app
        .tenancy
        .verify_webhook(
            req,
            SIGNATURE_HEADER,
            "X-Aftercare-Signature",
            app.clock.now(),
        )
        .await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    #[derive(Deserialize)]
    struct Payload {
        shipment_id: String,
        #[serde(flatten)]
        checkpoint: CheckpointInput,
    }
    let payload: Payload = parse_json(&body)?;
    let shipment_id = ShipmentId::parse("shipment_id", &payload.shipment_id)?;
    let result = checkpoint(
        app,
        &merchant,
        &shipment_id,
        payload.checkpoint,
        Some(&verified.replay_key),
        deadline,
    )
    .await?;
    Ok((200, result))
}

#[derive(Debug, Deserialize)]
struct ShipmentDetail {
    merchant_id: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    shipment: Option<Value>,
    #[serde(default)]
    shipment_id: Option<String>,
    #[serde(default)]
    checkpoint: Option<Value>,
}

async fn handle_event(app: &App, detail: Value, deadline: Deadline) -> Result<Value, HandlerError> {
    let invalid = |e: FieldError| {
        HandlerError::new("InvalidEvent", format!("detail.{}: {}", e.field, e.message))
    };
    let failed = |e: TrackingError| ApiError::from(e).into_handler_error("detail");
    let detail: ShipmentDetail = from_value(detail).map_err(invalid)?;
    let merchant_id = MerchantId::parse("merchant_id", &detail.merchant_id).map_err(invalid)?;
    let merchant = app.merchants.merchant(&merchant_id).await?.ok_or_else(|| {
        HandlerError::new("UnknownMerchant", format!("no merchant {merchant_id}"))
    })?;
    match (detail.shipment, detail.checkpoint) {
        (Some(shipment), None) => {
            let order_id =
                OrderId::parse("order_id", detail.order_id.as_deref().unwrap_or_default())
                    .map_err(invalid)?;
            let input: ShipmentInput =
                from_value(shipment).map_err(|e| invalid(e.within("shipment")))?;
            let (_, view) = create_shipment(app, &merchant, &order_id, input, deadline)
                .await
                .map_err(failed)?;
            Ok(view)
        }
        (None, Some(cp)) => {
            let shipment_id = ShipmentId::parse(
                "shipment_id",
                detail.shipment_id.as_deref().unwrap_or_default(),
            )
            .map_err(invalid)?;
            let input: CheckpointInput =
                from_value(cp).map_err(|e| invalid(e.within("checkpoint")))?;
            checkpoint(app, &merchant, &shipment_id, input, None, deadline)
                .await
                .map_err(failed)
        }
        _ => Err(HandlerError::new(
            "InvalidEvent",
            "detail needs either shipment (with order_id) or checkpoint (with shipment_id)",
        )),
    }
}
