//! order-placed: a merchant's order becomes a stored order, an updated customer profile, pending
//! loyalty points and a personal thank-you email — exactly once.
//!
//! Triggers (one code path after parsing):
//! * API Gateway HTTP API: `POST /v1/orders` with `Authorization: Bearer <key>` and the order as
//!   the JSON body. 201 on create, 200 on replay, 409 for a different order under the same id.
//! * EventBridge: `detail-type: "Order Placed"`, `detail: {"merchant_id": ..., "order": {...}}`.
//! * A connected Shopify store's webhooks: `POST /v1/connectors/shopify/{merchantId}` (see
//!   [`shopify`]).
//! * A connected WooCommerce store's webhooks: `POST /v1/connectors/woocommerce/{merchantId}` (see
//!   [`woocommerce`]).
//!
//! AWS calls on the happy path: one `TransactWriteItems` (order, idempotency record, customer,
//! spend, order index, loyalty earn, expiry notice, email claim), one `SendEmail`, one
//! `UpdateItem` recording the SES message id; plus the API-key lookup and merchant read when a
//! warm instance has not cached them, one ledger Query when the programme has tiers, and the
//! referral's reads and transaction when the order carries a code.

use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::orders::OrderRecord;
use aftercare::config::ConfigError;
use aftercare::domain::send::SendIdentity;
use aftercare::domain::validation::{from_value, parse_json};
use aftercare::domain::{FieldError, Merchant, MerchantId, Order, OrderInput};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::lambda::trigger::EventEnvelope;
use aftercare::ports::MerchantDirectory as _;
use aftercare::runtime::Function;
use aftercare::usecases::orders::{PlaceOrder, Placing};
use aftercare::usecases::send::{Deadline, SendOutcome};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod connector;
pub mod credit;
pub mod loyalty;
pub mod shopify;
pub mod woocommerce;

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
    credit::ROUTE_GET,
    credit::ROUTE_REDEEM,
    credit::ROUTE_ADJUST,
    shopify::ROUTE,
    woocommerce::ROUTE,
];
const KIND: EmailKind = EmailKind::OrderThanks;

/// Most entries a page of a customer's loyalty ledger or store credit holds.
pub(crate) const MAX_PAGE: usize = 100;

/// The customer a `/v1/customers/{customerId}/…` route names; a 400 naming `customerId`.
pub(crate) fn customer_in_path(
    req: &ApiGatewayV2httpRequest,
) -> Result<aftercare::domain::CustomerId, ApiError> {
    let customer = req
        .path_parameters
        .get("customerId")
        .map(String::as_str)
        .unwrap_or_default();
    Ok(aftercare::domain::CustomerId::parse(
        "customerId",
        customer,
    )?)
}

/// Everything built once at init and borrowed by every invocation.
pub use aftercare::app::{App, InitError};

/// The `detail` of an "Order Placed" event.
#[derive(Debug, Deserialize)]
pub struct OrderPlacedDetail {
    pub merchant_id: String,
    pub order: Value,
}

/// order-placed in the shared Lambda shell ([`aftercare::runtime`]).
pub struct OrderPlaced;

impl Function for OrderPlaced {
    fn init(_: &App) -> Result<Self, ConfigError> {
        Ok(Self)
    }

    async fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        rid: &str,
        deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        http::respond(http_inner(app, req, deadline).await, rid)
    }

    async fn event(
        &self,
        app: &App,
        event: &EventEnvelope,
        deadline: Deadline,
    ) -> Result<Value, HandlerError> {
        handle_event(app, event, deadline).await
    }
}

/// Handles one invocation. `payload` is the raw event; `request_id` the Lambda request id.
pub async fn handle(
    app: &App,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    aftercare::runtime::dispatch(&OrderPlaced, app, payload, request_id, deadline).await
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
    // A Shopify store's webhook: its own signature instead of a key (see [`shopify`]).
    if route == shopify::ROUTE {
        return shopify::webhook(app, req, deadline).await;
    }
    // A WooCommerce store's webhook, likewise (see [`woocommerce`]).
    if route == woocommerce::ROUTE {
        return woocommerce::webhook(app, req, deadline).await;
    }
    // Tenant first: nothing is parsed or stored for an unauthenticated caller.
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    if credit::ROUTES.contains(&route.as_str()) {
        return credit::serve(app, &merchant, req, &route).await;
    }
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
    if event.detail_type == shopify::EVENTBRIDGE_DETAIL_TYPE {
        return shopify::from_eventbridge(app, event, deadline).await;
    }
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
        .merchants
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
        // A customer without an address cannot be told a code: none.
        email: c.email.as_ref()?.as_str().to_ascii_lowercase(),
    })
}

/// Validates and places an order for `merchant`, then sends (or resumes) its thank-you email.
/// Places an order for `merchant`: the shared use-case stores it (or finds it stored), the order's
/// referral is recorded, then its thank-you email goes through the send protocol.
pub async fn place(
    app: &App,
    merchant: &Merchant,
    input: OrderInput,
    deadline: Deadline,
) -> Result<Placed, ApiError> {
    let now = app.clock.now();
    let use_case = PlaceOrder {
        book: &app.store,
        courier: app.courier(),
    };
    let stored = use_case
        .store(
            merchant,
            input,
            Placing {
                now,
                lease_until: deadline.lease_until(app.clock.as_ref()),
                send_expires_at: app.send_expiry(merchant, now),
                referral_code: |order: &Order| referral_code_of(app, merchant, order),
            },
        )
        .await?;
    let order = &stored.record.order;
    let referral = match &order.referral_code {
        Some(code) => Some(loyalty::record_referral(app, merchant, order, code, now).await?),
        None => None,
    };
    let code = stored.referral_code.as_ref().map(|o| o.code.as_str());
    let outcome = use_case
        .send(&stored, deadline, || {
            thank_you(app, merchant, &stored.record, &stored.email, code)
        })
        .await?;
    // After the email: a count that cannot finish now answers "busy" for a redelivery, which
    // finds the order and its email done and finishes the count.
    use_case.count_sold(&stored).await?;
    Ok(Placed {
        created: stored.created,
        referral_code: stored.referral_code.as_ref().map(|o| o.code.clone()),
        record: stored.record,
        outcome,
        referral,
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
    let (locale, tz) = where_of(merchant, order);
    let available_on =
        aftercare::domain::loyalty::available_at(order.placed_at, &merchant.settings.loyalty);
    let mut data = order_data(merchant, order);
    data["loyalty"] = json!({
        "points": record.points_earned, "available_on": long_date(available_on, tz, locale),
        "referral_code": referral_code, "referral_points": merchant.settings.loyalty.referral_points,
        "tier": record.tier,
    });
    order_email(app, merchant, order, KIND, &data, send_key)
}

/// The language and time zone to write to `order`'s customer in.
fn where_of<'a>(merchant: &'a Merchant, order: &'a Order) -> (aftercare::domain::Locale, &'a str) {
    let customer = &order.customer;
    (
        customer.locale_or(merchant.default_locale),
        customer.time_zone.as_deref().unwrap_or(&merchant.time_zone),
    )
}

/// The customer and order as the order emails show them (amounts formatted in the customer's
/// language).
fn order_data(merchant: &Merchant, order: &Order) -> Value {
    let customer = &order.customer;
    let (locale, tz) = where_of(merchant, order);
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
    json!({
        "customer": {"greeting_name": customer.first_name, "first_name": customer.first_name, "last_name": customer.last_name},
        "order": {
            "number": order.id, "placed_on": long_date(order.placed_at, tz, locale), "items": items,
            "subtotal": fmt(order.subtotal), "shipping": fmt(order.shipping), "tax": nonzero(order.tax),
            "discount": nonzero(order.discount), "total": fmt(order.total),
        },
    })
}

/// An order email of `kind` with `data` to the order's customer (none when it fails to render or
/// the customer has no address).
fn order_email(
    app: &App,
    merchant: &Merchant,
    order: &Order,
    kind: EmailKind,
    data: &Value,
    send_key: &SendIdentity,
) -> Option<OutgoingEmail> {
    let customer = &order.customer;
    let (locale, _) = where_of(merchant, order);
    let rendered = match app.renderer.render(kind, locale, merchant, data) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = ?e, kind = kind.as_str(), "order email failed to render");
            return None;
        }
    };
    let to = Mailbox::new(customer.display_name().as_deref(), customer.email.clone()?);
    Some(OutgoingEmail::compose(
        merchant,
        to,
        kind,
        rendered,
        &send_key.reference(),
        None,
    ))
}

/// The cancellation email of `record` (`points`: the loyalty points this cancellation took back).
pub(crate) fn cancellation_email(
    app: &App,
    merchant: &Merchant,
    record: &OrderRecord,
    points: i64,
    send_key: &SendIdentity,
) -> Option<OutgoingEmail> {
    let mut data = order_data(merchant, &record.order);
    data["loyalty"] = json!({"points": (points != 0).then_some(points.abs())});
    order_email(
        app,
        merchant,
        &record.order,
        EmailKind::OrderCancelled,
        &data,
        send_key,
    )
}
