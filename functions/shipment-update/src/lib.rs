//! shipment-update: shipments and their tracking, shipping emails once per milestone, late
//! detection, and the post-delivery journey's schedule.
//!
//! Triggers (one code path after parsing):
//! * HTTP API (Bearer key): `POST /v1/orders/{orderId}/shipments` creates a shipment and sends the
//!   "shipped" email; `POST /v1/shipments/{shipmentId}/events` records a tracking checkpoint;
//!   `GET /v1/orders/{orderId}` returns the order with its shipments and their histories.
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
use aftercare::adapters::store::orders::OrderRecord;
use aftercare::adapters::store::shipments::{
    CheckpointOutcome, CreateOutcome, NewCheckpoint, ShipmentRecord,
};
use aftercare::domain::customer::CustomerRef;
use aftercare::domain::followup::AnchorReason;
use aftercare::domain::ids::ShipmentId;
use aftercare::domain::send::{SendIdentity, SendRecord, SendStatus};
use aftercare::domain::shipment::{
    Checkpoint, CheckpointInput, Milestone, ShipmentInput, TrackingStatus,
};
use aftercare::domain::validation::{from_value, parse_json};
use aftercare::domain::{FieldError, Merchant, MerchantId, OrderId};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::usecases::send::{Deadline, SendOutcome};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep};

pub mod sweep;

pub const DETAIL_TYPE: &str = "Shipment Updated";
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";
pub const ROUTE_CREATE: &str = "POST /v1/orders/{orderId}/shipments";
pub const ROUTE_CHECKPOINT: &str = "POST /v1/shipments/{shipmentId}/events";
pub const ROUTE_WEBHOOK: &str = "POST /v1/webhooks/tracking/{merchantId}";
pub const ROUTE_GET_ORDER: &str = "GET /v1/orders/{orderId}";
pub const ROUTES: [&str; 4] = [
    ROUTE_CREATE,
    ROUTE_CHECKPOINT,
    ROUTE_WEBHOOK,
    ROUTE_GET_ORDER,
];
/// The signature header of tracking webhooks.
pub const SIGNATURE_HEADER: &str = "x-aftercare-signature";
/// How many days back a sweep looks for due items it has not completed.
pub const SWEEP_LOOKBACK_DAYS: u32 = 14;

/// Handles one invocation.
pub async fn handle(
    app: &App,
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
            let resp = async {
                // Boxed: keeps the invocation future shallow (the routes' futures are large).
                http::respond(Box::pin(http_inner(app, &req, deadline)).await, &rid)
            }
            .instrument(span)
            .await;
            Ok(serde_json::to_value(resp).unwrap_or_else(|_| json!({"statusCode": 500})))
        }
        aftercare::lambda::trigger::Trigger::Event(event) => {
            let span = tracing::info_span!("event", request_id, event_id = %event.id, detail_type = %event.detail_type);
            async {
                match event.detail_type.as_str() {
                    SCHEDULE_DETAIL_TYPE => Box::pin(sweep(app, deadline)).await,
                    DETAIL_TYPE => {
                        Box::pin(handle_event(app, event.detail.clone(), deadline)).await
                    }
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
    if !ROUTES.contains(&route.as_str()) {
        return Err(ApiError::not_found("the route"));
    }
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    match route.as_str() {
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
            Ok((200, serde_json::to_value(result).unwrap_or_default()))
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
    Ok((200, serde_json::to_value(result).unwrap_or_default()))
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
    let failed = |e: ApiError| e.into_handler_error("detail");
    let detail: ShipmentDetail = from_value(detail).map_err(invalid)?;
    let merchant_id = MerchantId::parse("merchant_id", &detail.merchant_id).map_err(invalid)?;
    let merchant = app.tenancy.merchant(&merchant_id).await?.ok_or_else(|| {
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
            let result = checkpoint(app, &merchant, &shipment_id, input, None, deadline)
                .await
                .map_err(failed)?;
            Ok(serde_json::to_value(result).unwrap_or_default())
        }
        _ => Err(HandlerError::new(
            "InvalidEvent",
            "detail needs either shipment (with order_id) or checkpoint (with shipment_id)",
        )),
    }
}

fn milestone_kind(m: Milestone) -> EmailKind {
    match m {
        Milestone::Shipped => EmailKind::ShipmentShipped,
        Milestone::OutForDelivery => EmailKind::ShipmentOutForDelivery,
        Milestone::AvailableForPickup => EmailKind::ShipmentAvailableForPickup,
        Milestone::Delivered => EmailKind::ShipmentDelivered,
        Milestone::AttemptFailed => EmailKind::ShipmentAttemptFailed,
        Milestone::Exception => EmailKind::ShipmentException,
        Milestone::Late => EmailKind::ShipmentLate,
    }
}

/// The claim of a milestone email: one per (customer, kind, shipment).
pub(crate) fn milestone_claim(
    app: &App,
    merchant: &MerchantId,
    customer: &CustomerRef,
    kind: EmailKind,
    shipment: &ShipmentId,
    to: &str,
    deadline: Deadline,
) -> (SendIdentity, SendRecord) {
    let id = SendIdentity::new(merchant, &customer.id, kind, shipment.as_str(), 0);
    let record = id.claim(
        to,
        app.clock.now(),
        deadline.lease_until(app.clock.as_ref()),
    );
    (id, record)
}

/// When the promised date has passed: the start of the next day in the merchant's time zone.
fn late_after(promised: jiff::civil::Date, tz: &str) -> Option<Timestamp> {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    promised
        .tomorrow()
        .ok()?
        .to_zoned(zone)
        .ok()
        .map(|z| z.timestamp())
}

async fn create_shipment(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    input: ShipmentInput,
    deadline: Deadline,
) -> Result<(bool, Value), ApiError> {
    let order = app
        .store
        .get_order(&merchant.id, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the order"))?;
    let now = app.clock.now();
    let content_hash = input.content_hash();
    let shipment = input.validate_for(&order.order, now)?;
    let customer = order.order.customer.clone();
    let record = ShipmentRecord::new(
        merchant.id.clone(),
        shipment,
        customer.clone(),
        content_hash,
        now,
    );
    let sh = &record.shipment;
    let mut due = vec![(
        "fallback",
        merchant.settings.journey.fallback_anchor(sh.shipped_at),
    )];
    if let Some(at) = sh
        .promised_date
        .and_then(|d| late_after(d, &merchant.time_zone))
    {
        due.push(("late", at));
    }
    let kind = EmailKind::ShipmentShipped;
    let (key, claim) = milestone_claim(
        app,
        &merchant.id,
        &customer,
        kind,
        &sh.id,
        customer.email.as_str(),
        deadline,
    );
    let expires = app.send_expiry(merchant, now);
    let courier = app.courier();
    match app
        .store
        .create_shipment(&record, &due, (&key, &claim), expires)
        .await?
    {
        CreateOutcome::Created { suppressed } => {
            tracing::info!(shipment_id = %sh.id, order_id = %order_id, suppressed, "shipment created");
            let email = match suppressed {
                true => None,
                false => Some(shipment_email(app, merchant, &record, kind, None)),
            };
            let outcome = match email {
                None => SendOutcome::Suppressed,
                Some(Some(email)) => {
                    courier
                        .send_claimed(&key, &claim.claim_token, &email, deadline)
                        .await?
                }
                Some(None) => {
                    courier
                        .abandon(&key, &claim.claim_token, "the email could not be rendered")
                        .await?
                }
            };
            redelivery(&outcome)?;
            Ok((true, shipment_view(&record, &[], Some(&outcome))))
        }
        CreateOutcome::AlreadyExists => {
            let stored = app.store.get_shipment(&merchant.id, &sh.id).await?;
            let Some(stored) = stored.filter(|s| {
                s.content_hash == record.content_hash && s.shipment.order_id == *order_id
            }) else {
                return Err(ApiError::new(
                    409,
                    "idempotency_conflict",
                    "a different shipment with this id exists",
                )
                .field("id"));
            };
            let outcome = match app.store.get_send(&key).await? {
                Some(send) => {
                    courier
                        .resume(&key, &send, deadline, || {
                            shipment_email(app, merchant, &stored, kind, None)
                        })
                        .await?
                }
                None => SendOutcome::Settled(SendStatus::Sent),
            };
            redelivery(&outcome)?;
            let history = app.store.shipment_history(&merchant.id, &sh.id).await?;
            Ok((false, shipment_view(&stored, &history, Some(&outcome))))
        }
    }
}

/// Not sent yet and worth another try: the caller's trigger should redeliver.
fn redelivery(outcome: &SendOutcome) -> Result<(), ApiError> {
    if outcome.wants_redelivery() {
        Err(ApiError::unavailable(
            "stored, but the email could not be sent yet; retry this request to finish",
        ))
    } else {
        Ok(())
    }
}

/// What a checkpoint did.
#[derive(Debug, Serialize)]
pub struct CheckpointResult {
    pub shipment_id: String,
    pub checkpoint_id: String,
    /// `applied` (state advanced), `recorded` (history only), `duplicate`.
    pub result: &'static str,
    pub status: Option<TrackingStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_delivered: Option<bool>,
}

async fn checkpoint(
    app: &App,
    merchant: &Merchant,
    shipment_id: &ShipmentId,
    input: CheckpointInput,
    webhook_replay_key: Option<&str>,
    deadline: Deadline,
) -> Result<CheckpointResult, ApiError> {
    let cp = input.validate()?;
    // The shipment names the customer (for the email's claim and content); consistent read.
    let record = app
        .store
        .get_shipment(&merchant.id, shipment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the shipment"))?;
    let now = app.clock.now();
    let milestone = cp.status.milestone().map(milestone_kind);
    let claimed = milestone.map(|kind| {
        milestone_claim(
            app,
            &merchant.id,
            &record.customer,
            kind,
            shipment_id,
            record.customer.email.as_str(),
            deadline,
        )
    });
    let delivered = cp.status == TrackingStatus::Delivered;
    let new = NewCheckpoint {
        merchant_id: &merchant.id,
        shipment_id,
        checkpoint: &cp,
        claim: claimed.as_ref().map(|(k, r)| (k, r)),
        send_expires_at: app.send_expiry(merchant, now),
        delivered_order: delivered.then_some(&record.shipment.order_id),
        webhook_replay_key,
        now,
    };
    let outcome = app.store.record_checkpoint(&new).await?;
    let mut state = record.state();
    let mut result = CheckpointResult {
        shipment_id: shipment_id.to_string(),
        checkpoint_id: cp.id.clone(),
        result: "recorded",
        status: state.status(),
        email: None,
        order_delivered: None,
    };
    match outcome {
        // A signed request seen before is the sender's redelivery (or a captured copy): it
        // changes nothing and answers like any duplicate, so a sender retrying after a lost
        // answer sees success instead of an authentication failure that would page someone.
        CheckpointOutcome::Duplicate | CheckpointOutcome::ReplayedSignature => {
            result.result = "duplicate"
        }
        CheckpointOutcome::HistoryOnly => {}
        CheckpointOutcome::UnknownShipment => return Err(ApiError::not_found("the shipment")),
        CheckpointOutcome::Advanced {
            claimed: holds,
            suppressed,
        } => {
            state.apply(cp.status, cp.occurred_at);
            result.result = "applied";
            result.status = state.status();
            tracing::info!(shipment_id = %shipment_id, status = cp.status.as_str(), suppressed, "checkpoint applied");
            if suppressed {
                result.email = Some(SendOutcome::Suppressed.as_str());
            }
            if let (true, Some(kind), Some((key, claim))) = (holds, milestone, &claimed) {
                let courier = app.courier();
                let sent = match shipment_email(app, merchant, &record, kind, Some(&cp)) {
                    Some(email) => {
                        courier
                            .send_claimed(key, &claim.claim_token, &email, deadline)
                            .await?
                    }
                    None => {
                        courier
                            .abandon(key, &claim.claim_token, "the email could not be rendered")
                            .await?
                    }
                };
                result.email = Some(sent.as_str());
                redelivery(&sent)?;
            }
            if delivered {
                result.order_delivered =
                    Some(order_delivered(app, merchant, &record.shipment.order_id).await?);
            }
        }
    }
    Ok(result)
}

/// When every shipment of the order is delivered, anchors the journey at the last delivery.
async fn order_delivered(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
) -> Result<bool, ApiError> {
    let pointers = app.store.order_shipments(&merchant.id, order_id).await?;
    let deliveries: Option<Vec<Timestamp>> = pointers.iter().map(|p| p.delivered_at).collect();
    let Some(last) = deliveries.and_then(|d| d.into_iter().max()) else {
        return Ok(false);
    };
    let Some(order) = app.store.get_order(&merchant.id, order_id).await? else {
        return Ok(true);
    };
    let schedule = merchant.settings.journey.schedule(last);
    if app
        .store
        .anchor_journey(
            &order,
            last,
            AnchorReason::Delivered,
            &schedule,
            app.clock.now(),
        )
        .await?
    {
        tracing::info!(order_id = %order_id, follow_ups = schedule.len(), "order delivered; journey scheduled");
    }
    rebase_points(app, merchant, &order, last).await?;
    Ok(true)
}

/// Counts the return window of the order's points (and of the reward of whoever referred it)
/// from delivery rather than the order date. Idempotent: a redelivered update changes nothing.
async fn rebase_points(
    app: &App,
    merchant: &Merchant,
    order: &aftercare::adapters::store::orders::OrderRecord,
    delivered: Timestamp,
) -> Result<(), ApiError> {
    use aftercare::domain::loyalty::{available_at, order_source, referral_source};
    let settings = &merchant.settings.loyalty;
    if !settings.enabled {
        return Ok(());
    }
    let until = available_at(delivered, settings);
    let id = order.order.id.as_str();
    let earns = [
        (order.points_earned > 0).then(|| (&order.order.customer.id, order_source(id))),
        order.referred_by.as_ref().map(|r| (r, referral_source(id))),
    ];
    for (customer, source) in earns.into_iter().flatten() {
        let now = app.clock.now();
        let rebased = app
            .store
            .rebase_earn(&merchant.id, customer, &source, until, now)
            .await?;
        tracing::info!(source, available_at = %until, outcome = ?rebased, "points' return window counted from delivery");
    }
    Ok(())
}

/// Renders a shipment email for its customer.
pub(crate) fn shipment_email(
    app: &App,
    merchant: &Merchant,
    record: &ShipmentRecord,
    kind: EmailKind,
    cp: Option<&Checkpoint>,
) -> Option<OutgoingEmail> {
    let customer = &record.customer;
    let locale = customer.locale_or(merchant.default_locale);
    let data = email_data(merchant, record, cp, locale);
    let rendered = app
        .renderer
        .render(kind, locale, merchant, &data)
        .inspect_err(|e| tracing::error!(error = ?e, "shipment email failed to render"))
        .ok()?;
    let to = Mailbox::new(customer.display_name().as_deref(), customer.email.clone());
    let id = SendIdentity::new(
        &merchant.id,
        &customer.id,
        kind,
        record.shipment.id.as_str(),
        0,
    );
    Some(OutgoingEmail::compose(
        merchant,
        to,
        kind,
        rendered,
        &id.reference(),
        None,
    ))
}

pub(crate) fn email_data(
    merchant: &Merchant,
    record: &ShipmentRecord,
    cp: Option<&Checkpoint>,
    locale: aftercare::domain::Locale,
) -> Value {
    let sh = &record.shipment;
    let tz = record
        .customer
        .time_zone
        .as_deref()
        .unwrap_or(&merchant.time_zone);
    let promised_on = sh
        .promised_date
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| {
            // A calendar date: format it as that date, whatever the zone.
            long_date(z.timestamp(), "UTC", locale)
        });
    json!({
        "customer": {
            "greeting_name": record.customer.first_name,
            "name": record.customer.display_name().unwrap_or_else(|| record.customer.email.to_string()),
            "email": record.customer.email,
        },
        "order": {"number": sh.order_id},
        "shipment": {
            "carrier": sh.carrier, "tracking_number": sh.tracking_number, "tracking_url": sh.tracking_url,
            "promised_on": promised_on, "status": record.state().status().map(|s| s.as_str()).unwrap_or("info_received"),
            "items": sh.items.iter().map(|i| json!({"name": i.name.clone().unwrap_or_else(|| i.sku.clone()), "quantity": i.quantity})).collect::<Vec<_>>(),
            "shipped_on": long_date(sh.shipped_at, tz, locale),
        },
        "checkpoint": {
            "location": cp.and_then(|c| c.location.clone()),
            "message": cp.and_then(|c| c.message.clone()),
        },
    })
}

fn shipment_view(
    record: &ShipmentRecord,
    history: &[Checkpoint],
    email: Option<&SendOutcome>,
) -> Value {
    let state = record.state();
    let mut v = json!({
        "id": record.shipment.id,
        "order_id": record.shipment.order_id,
        "carrier": record.shipment.carrier,
        "tracking_number": record.shipment.tracking_number,
        "tracking_url": record.shipment.tracking_url,
        "items": record.shipment.items,
        "promised_date": record.shipment.promised_date,
        "shipped_at": record.shipment.shipped_at,
        "status": state.status(),
        "delivered_at": state.delivered_at(),
        "history": history,
    });
    if let Some(e) = email {
        v["email"] = json!({"kind": EmailKind::ShipmentShipped.as_str(), "status": e.as_str()});
    }
    v
}

/// `GET /v1/orders/{orderId}`: the order with its shipments and their histories.
async fn order_view(
    app: &App,
    merchant: &MerchantId,
    order_id: &OrderId,
) -> Result<Value, ApiError> {
    let order: OrderRecord = app
        .store
        .get_order(merchant, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the order"))?;
    let mut shipments = Vec::new();
    for pointer in app.store.order_shipments(merchant, order_id).await? {
        if let Some(record) = app
            .store
            .get_shipment(merchant, &pointer.shipment_id)
            .await?
        {
            let history = app
                .store
                .shipment_history(merchant, &pointer.shipment_id)
                .await?;
            shipments.push(shipment_view(&record, &history, None));
        }
    }
    let delivered =
        !shipments.is_empty() && shipments.iter().all(|s| s["delivered_at"].is_string());
    let mut follow_ups = app.store.order_follow_ups(merchant, order_id).await?;
    follow_ups.sort_by_key(|f| f.due_at);
    Ok(json!({
        "order": order.order,
        "received_at": order.received_at,
        "loyalty": {"points_earned": order.points_earned},
        "status": if delivered { "delivered" } else if shipments.is_empty() { "placed" } else { "shipped" },
        "shipments": shipments,
        "follow_ups": follow_ups.iter().map(|f| json!({
            "kind": f.kind.as_str(), "due_at": f.due_at, "status": f.status, "anchor_reason": f.anchor_reason,
        })).collect::<Vec<_>>(),
    }))
}
