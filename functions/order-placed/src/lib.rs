//! order-placed: a merchant's order becomes a stored order, an updated customer profile, pending
//! loyalty points and a personal thank-you email — exactly once.
//!
//! Triggers (one code path after parsing):
//! * API Gateway HTTP API: `POST /v1/orders` with `Authorization: Bearer <key>` and the order as
//!   the JSON body. 201 on create, 200 on replay, 409 for a different order under the same id.
//! * EventBridge: `detail-type: "Order Placed"`, `detail: {"merchant_id": ..., "order": {...}}`.
//!
//! AWS calls on the happy path: one `TransactWriteItems` (order, idempotency record, customer,
//! spend, order index, loyalty earn, expiry notice, email claim), one `SendEmail`, one
//! `UpdateItem` recording the SES message id; plus the API-key lookup and merchant read when a
//! warm instance has not cached them, one ledger Query when the programme has tiers, and the
//! referral's reads and transaction when the order carries a code.

use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::loyalty::{LoyaltyNotice, NoticeKind};
use aftercare::adapters::store::orders::{NewOrder, OrderRecord, PlaceOutcome};
use aftercare::domain::loyalty::{LedgerEntry, expires_at, expiry_notice_at, tier_status};
use aftercare::domain::send::{SendIdentity, SendStatus};
use aftercare::domain::validation::{from_value, parse_json};
use aftercare::domain::{FieldError, Merchant, MerchantId, Order, OrderInput};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::lambda::trigger::{EventEnvelope, Trigger};
use aftercare::usecases::send::{Deadline, SendOutcome};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;

pub mod loyalty;

/// The EventBridge `detail-type` this function handles.
pub const DETAIL_TYPE: &str = "Order Placed";
/// The order route.
pub const ROUTE: &str = "POST /v1/orders";
/// Every HTTP route this function serves.
pub const ROUTES: &[&str] = &[
    ROUTE,
    loyalty::ROUTE_GET,
    loyalty::ROUTE_REDEEM,
    loyalty::ROUTE_ADJUST,
];
const KIND: EmailKind = EmailKind::OrderThanks;

/// Everything built once at init and borrowed by every invocation.
pub use aftercare::app::{App, InitError};

/// The `detail` of an "Order Placed" event.
#[derive(Debug, Deserialize)]
pub struct OrderPlacedDetail {
    pub merchant_id: String,
    pub order: Value,
}

/// Handles one invocation. `payload` is the raw event; `request_id` the Lambda request id.
pub async fn handle(
    app: &App,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    let trigger = Trigger::parse(payload).map_err(|e| {
        tracing::error!(error = %e, "unrecognised event");
        HandlerError::new("InvalidEvent", e.to_string())
    })?;
    match trigger {
        Trigger::Http(req) => {
            let rid = http::request_id(&req, request_id).to_owned();
            let span = tracing::info_span!("http", request_id = %rid, route = %http::route_key(&req), merchant_id = tracing::field::Empty, order_id = tracing::field::Empty);
            let resp = handle_http(app, &req, &rid, deadline)
                .instrument(span)
                .await;
            Ok(serde_json::to_value(resp).unwrap_or_else(|_| json!({"statusCode": 500})))
        }
        Trigger::Event(event) => {
            let span = tracing::info_span!("event", request_id, event_id = %event.id, merchant_id = tracing::field::Empty, order_id = tracing::field::Empty);
            handle_event(app, &event, deadline).instrument(span).await
        }
    }
}

async fn handle_http(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    rid: &str,
    deadline: Deadline,
) -> ApiGatewayV2httpResponse {
    http::respond(http_inner(app, req, deadline).await, rid)
}

async fn http_inner(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let route = http::route_key(req);
    if !ROUTES.contains(&route.as_str()) {
        return Err(ApiError::not_found("the route"));
    }
    // Tenant first: nothing is parsed or stored for an unauthenticated caller.
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    if route != ROUTE {
        return loyalty::serve(app, &merchant, req, &route).await;
    }
    http::require_json(req)?;
    let body = http::body_bytes(req)?;
    let input: OrderInput = parse_json(&body)?;
    let placed = place(app, &merchant, input, deadline).await?;
    let status = if placed.created { 201 } else { 200 };
    if placed.outcome.wants_redelivery() {
        return Err(ApiError::unavailable(
            "the order is stored but its confirmation email could not be sent yet; retry this request to finish",
        ));
    }
    Ok((
        status,
        serde_json::to_value(placed.response()).unwrap_or_default(),
    ))
}

async fn handle_event(
    app: &App,
    event: &EventEnvelope,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    if event.detail_type != DETAIL_TYPE {
        return Err(HandlerError::new(
            "InvalidEvent",
            format!("unexpected detail-type {:?}", event.detail_type),
        ));
    }
    let invalid = |e: FieldError| {
        HandlerError::new("InvalidEvent", format!("detail.{}: {}", e.field, e.message))
    };
    let detail: OrderPlacedDetail = from_value(event.detail.clone()).map_err(invalid)?;
    let merchant_id = MerchantId::parse("merchant_id", &detail.merchant_id).map_err(invalid)?;
    tracing::Span::current().record("merchant_id", merchant_id.as_str());
    let merchant = app
        .tenancy
        .merchant(&merchant_id)
        .await
        .map_err(HandlerError::from)?
        .ok_or_else(|| {
            HandlerError::new("UnknownMerchant", format!("no merchant {merchant_id}"))
        })?;
    let input: OrderInput = from_value(detail.order).map_err(|e| {
        invalid(FieldError {
            field: format!("order.{}", e.field)
                .trim_end_matches('.')
                .to_owned(),
            ..e
        })
    })?;
    let placed = place(app, &merchant, input, deadline)
        .await
        .map_err(|e| e.into_handler_error("detail.order"))?;
    if placed.outcome.wants_redelivery() {
        // The order is stored; failing the invocation makes Lambda redeliver, and the replay
        // finishes the send under the same claim.
        return Err(HandlerError::new(
            "EmailDeferred",
            "the confirmation email could not be sent yet",
        ));
    }
    Ok(serde_json::to_value(placed.response()).unwrap_or_default())
}

/// What placing an order produced.
pub struct Placed {
    pub created: bool,
    pub record: OrderRecord,
    pub outcome: SendOutcome,
    /// What the order's referral code did.
    pub referral: Option<loyalty::ReferralOutcome>,
    /// The customer's own code to share.
    pub referral_code: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OrderResponse {
    pub order: Order,
    pub received_at: jiff::Timestamp,
    pub loyalty: LoyaltySummary,
    pub email: EmailSummary,
}

#[derive(Debug, Serialize)]
pub struct LoyaltySummary {
    pub points_earned: u64,
    pub status: &'static str,
    /// The tier the order was placed in (its multiplier applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<loyalty::ReferralOutcome>,
}

#[derive(Debug, Serialize)]
pub struct EmailSummary {
    pub kind: &'static str,
    pub status: &'static str,
}

impl Placed {
    fn response(&self) -> OrderResponse {
        let status = self.outcome.as_str();
        OrderResponse {
            order: self.record.order.clone(),
            received_at: self.record.received_at,
            loyalty: LoyaltySummary {
                points_earned: self.record.points_earned,
                status: if self.record.points_earned > 0 {
                    "pending"
                } else {
                    "none"
                },
                tier: self.record.tier.clone(),
                referral_code: self.referral_code.clone(),
                referral: self.referral.clone(),
            },
            email: EmailSummary {
                kind: KIND.as_str(),
                status,
            },
        }
    }
}

/// The customer's referral code, when the merchant runs a referral programme (and a signing key
/// is configured to derive codes with).
fn referral_code_of(
    app: &App,
    merchant: &Merchant,
    order: &Order,
) -> Option<aftercare::adapters::store::loyalty::ReferralCodeOwner> {
    let settings = &merchant.settings.loyalty;
    if !settings.enabled || settings.referral_points == 0 {
        return None;
    }
    let key = app.config.signing_key().ok()?;
    let c = &order.customer;
    let data = format!("{}\n{}", merchant.id, c.id);
    Some(aftercare::adapters::store::loyalty::ReferralCodeOwner {
        code: aftercare::domain::loyalty::referral_code(
            &key.digest(b"referral-code", data.as_bytes()),
        ),
        customer_id: c.id.clone(),
        email: c.email.as_str().to_ascii_lowercase(),
    })
}

/// Validates and places an order for `merchant`, then sends (or resumes) its thank-you email.
pub async fn place(
    app: &App,
    merchant: &Merchant,
    input: OrderInput,
    deadline: Deadline,
) -> Result<Placed, ApiError> {
    let order = input.validate()?;
    tracing::Span::current().record("order_id", order.id.as_str());
    let now = app.clock.now();
    let content_hash = order.content_hash();
    let settings = &merchant.settings.loyalty;
    // Tiers multiply the earn: the tier is the one the customer is in as they order (one Query
    // of their ledger, only for programmes with tiers).
    let tier = match settings.enabled && !settings.tiers.is_empty() {
        true => {
            let state = app.store.loyalty(&merchant.id, &order.customer.id).await?;
            tier_status(&state.entries, settings, now, &merchant.zone()).and_then(|t| t.current)
        }
        false => None,
    };
    let ledger = LedgerEntry::earn_for_order(&order, settings, tier.as_ref(), now);
    let expiry = expires_at(order.placed_at, settings).map(|expires| LoyaltyNotice {
        customer_id: order.customer.id.clone(),
        kind: NoticeKind::ExpiryNotice,
        source: None,
        due_at: expiry_notice_at(expires),
    });
    let record = OrderRecord {
        merchant_id: merchant.id.clone(),
        points_earned: ledger
            .as_ref()
            .map(|l| u64::try_from(l.points).unwrap_or(0))
            .unwrap_or(0),
        tier: tier.map(|t| t.name),
        referred_by: None,
        order,
        content_hash,
        received_at: now,
    };
    let customer = &record.order.customer;
    let send_key = SendIdentity::new(
        &merchant.id,
        &customer.id,
        KIND,
        record.order.id.as_str(),
        0,
    );
    let claim = send_key.claim(
        customer.email.as_str(),
        now,
        deadline.lease_until(app.clock.as_ref()),
    );
    let code_owner = referral_code_of(app, merchant, &record.order);
    let new = NewOrder {
        record: &record,
        ledger: ledger.as_ref(),
        expiry: expiry.as_ref(),
        referral_code: code_owner.as_ref(),
        claim: (&send_key, &claim),
        send_expires_at: app.send_expiry(merchant, now),
        now,
    };
    let (created, suppressed, stored, found) = match app.store.place_order(&new).await? {
        PlaceOutcome::Created { suppressed } => (true, suppressed, record, None),
        PlaceOutcome::AlreadyExists => {
            let replay = app
                .store
                .order_replay(&merchant.id, &record.order.id, &send_key)
                .await?;
            let stored_hash = replay
                .order
                .as_ref()
                .map(|o| &o.content_hash)
                .or(replay.idempotency.as_ref().map(|i| &i.content_hash));
            if stored_hash != Some(&record.content_hash) {
                return Err(ApiError::new(
                    409,
                    "idempotency_conflict",
                    "an order with this id was already placed with different contents",
                )
                .field("id"));
            }
            let Some(stored) = replay.order else {
                // The idempotency record exists but the order does not: only possible if the order
                // was erased on request. Do not resurrect it.
                return Err(ApiError::new(
                    409,
                    "order_erased",
                    "this order was erased and cannot be placed again",
                )
                .field("id"));
            };
            // Our own write may have landed with its response lost, the retry then meeting our
            // items: the claim token says whether this invocation holds the claim.
            let ours = replay.send.as_ref().is_some_and(|s| {
                s.claim_token == claim.claim_token && s.status == SendStatus::InProgress
            });
            (ours, false, stored, if ours { None } else { replay.send })
        }
    };
    let referral = match &stored.order.referral_code {
        Some(code) => {
            Some(loyalty::record_referral(app, merchant, &stored.order, code, now).await?)
        }
        None => None,
    };
    let code = code_owner.as_ref().map(|o| o.code.as_str());
    let courier = app.courier();
    let outcome = match (created, found) {
        (true, _) if suppressed => {
            tracing::info!("order stored; its thank-you email's recipient is suppressed");
            SendOutcome::Suppressed
        }
        (true, _) => {
            tracing::info!(
                points = stored.points_earned,
                items = stored.order.items.len(),
                "order stored"
            );
            match thank_you(app, merchant, &stored, &send_key, code) {
                Some(email) => {
                    courier
                        .send_claimed(&send_key, &claim.claim_token, &email, deadline)
                        .await?
                }
                None => {
                    courier
                        .abandon(
                            &send_key,
                            &claim.claim_token,
                            "the email could not be rendered",
                        )
                        .await?
                }
            }
        }
        (false, Some(send)) => {
            courier
                .resume(&send_key, &send, deadline, || {
                    thank_you(app, merchant, &stored, &send_key, code)
                })
                .await?
        }
        // The send record outlived its retention and is gone: it was settled long ago.
        (false, None) => SendOutcome::Settled(SendStatus::Sent),
    };
    if !created {
        tracing::info!(email = ?outcome, "order replayed");
    }
    Ok(Placed {
        created,
        record: stored,
        outcome,
        referral,
        referral_code: code_owner.map(|o| o.code),
    })
}

/// The thank-you email for a stored order.
fn thank_you(
    app: &App,
    merchant: &Merchant,
    record: &OrderRecord,
    send_key: &SendIdentity,
    referral_code: Option<&str>,
) -> Option<OutgoingEmail> {
    let order = &record.order;
    let customer = &order.customer;
    let locale = customer.locale_or(merchant.default_locale);
    let tz = customer.time_zone.as_deref().unwrap_or(&merchant.time_zone);
    let fmt = |amount: i64| order.money(amount).format(locale);
    let nonzero = |amount: i64| (amount != 0).then(|| fmt(amount));
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| {
            json!({
                "name": i.name, "sku": i.sku, "quantity": i.quantity, "url": i.url, "image_url": i.image_url,
                "unit_price": fmt(i.unit_price), "line_total": fmt(i.line_total),
            })
        })
        .collect();
    let available_on =
        aftercare::domain::loyalty::available_at(order.placed_at, &merchant.settings.loyalty);
    let data = json!({
        "customer": {"greeting_name": customer.first_name, "first_name": customer.first_name, "last_name": customer.last_name},
        "order": {
            "number": order.id, "placed_on": long_date(order.placed_at, tz, locale), "items": items,
            "subtotal": fmt(order.subtotal), "shipping": fmt(order.shipping), "tax": nonzero(order.tax),
            "discount": nonzero(order.discount), "total": fmt(order.total),
        },
        "loyalty": {
            "points": record.points_earned, "available_on": long_date(available_on, tz, locale),
            "referral_code": referral_code, "referral_points": merchant.settings.loyalty.referral_points,
            "tier": record.tier,
        },
    });
    let rendered = match app.renderer.render(KIND, locale, merchant, &data) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, "thank-you email failed to render");
            return None;
        }
    };
    let name = match (&customer.first_name, &customer.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.clone()),
        (None, Some(l)) => Some(l.clone()),
        (None, None) => None,
    };
    let to = Mailbox::new(name.as_deref(), customer.email.clone());
    Some(OutgoingEmail::compose(
        merchant,
        to,
        KIND,
        rendered,
        &send_key.reference(),
        None,
    ))
}
