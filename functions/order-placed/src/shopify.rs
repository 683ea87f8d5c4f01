//! The Shopify connector: a store's webhooks, posted to `POST /v1/connectors/shopify/{merchantId}`,
//! feed the same use-cases as the merchant API, with no glue code.
//!
//! Every delivery, in this order, before anything is read or stored:
//! 1. the merchant must have a Shopify store connected (`connectors.shopify`);
//! 2. `X-Shopify-Hmac-Sha256` must be the base64 HMAC-SHA256 of the raw body with one of the
//!    store's secrets (several during a rotation; constant-time);
//! 3. `X-Shopify-Shop-Domain` must be the connected store's domain.
//!
//! Any failure answers 401 and stores nothing; an unknown merchant looks exactly like a bad
//! signature. Then `X-Shopify-Event-Id` (else `X-Shopify-Webhook-Id`) dedupes: Shopify retries a
//! delivery with the same id (8 times over 4 hours) when it fails or takes over 5 seconds, and a
//! delivery already handled answers `duplicate`. The record is written after the work, so a redelivery after a crash does the work
//! again, which every use-case takes as a replay.
//!
//! Topics:
//! * `orders/create` → the order is placed and thanked, exactly as `POST /v1/orders` (a merchant
//!   who thanks on payment, `thank_on: paid`, gets `orders/paid` instead: the create is answered
//!   `waiting_for_payment` and stores nothing). `orders/paid` places it too (a replay when the
//!   create came first).
//! * `fulfillments/create` and `fulfillments/update` → the order's shipment (`shopify-<fulfillment
//!   id>`), recorded exactly as `POST /v1/orders/{orderId}/shipments` does (the "shipped" email), with
//!   the carrier (`tracking_company`), every parcel of `tracking_numbers` with its `tracking_urls`, the
//!   fulfilled lines; its `shipment_status` becomes a checkpoint (see [`checkpoint_status`]). A
//!   fulfillment of an order not stored yet answers 503, so Shopify delivers it again later.
//! * `refunds/create` → the refund, as a billing event `POST /v1/billing-events` would carry it:
//!   the refunded share of the order's loyalty points is taken back once (a refund in full also
//!   takes back a referrer's reward), and the customer gets one "refund issued" email
//!   (`shopify-<refund id>`). The amount is the sum of the refund's successful `refund`
//!   transactions. The lines of its `refund_line_items` leave the order's pending review request
//!   and cross-sell (which never name them then; one left with none is cancelled).
//! * `orders/cancelled` → the order's follow-ups still scheduled are cancelled (`order_cancelled`)
//!   and its points taken back in full, once (as a refund of the whole order would).
//! * `customers/redact` → the customer's erasure (`shopify-<id>`, else by address);
//!   `customers/data_request` → an export request on record (the data is at
//!   `GET /v1/customers/shopify-<id>/export`); `shop/redact` → acknowledged and logged for the
//!   operator (`aftercare-admin merchant delete`).
//! * Any other topic → 200 `ignored` (logged): Shopify removes a subscription that keeps failing.
//!
//! The same topics also arrive through Amazon EventBridge ([`from_eventbridge`]).
//!
//! Answers: 200 for everything authentic, acted on or not (a refusal says why, with the field);
//! 503 only when storage is busy and a retry will help; 401 as above.

use crate::App;
use crate::connector::{place_mapped, refused};
use aftercare::domain::connectors::shopify::{ShopifyOrder, order_input};
use aftercare::domain::merchant::{ShopifyConnector, ThankOn};
use aftercare::domain::privacy::Subject;
use aftercare::domain::{CustomerId, EmailAddress, Merchant};
use aftercare::http::{self, ApiError};
use aftercare::usecases::privacy::Privacy;
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const ROUTE: &str = "POST /v1/connectors/shopify/{merchantId}";
pub const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";
const SOURCE: &str = "shopify";
/// Who a privacy request made by a compliance topic is recorded as requested by.
const REQUESTED_BY: &str = "shopify";
/// How long a redact works inside the delivery (Shopify waits 5 seconds for an answer); the
/// sweep carries on the rest.
const IN_REQUEST: Duration = Duration::from_secs(3);

fn unauthorized() -> ApiError {
    ApiError::new(
        401,
        "invalid_signature",
        "the X-Shopify-Hmac-Sha256 header is missing or invalid",
    )
    .field("X-Shopify-Hmac-Sha256")
}

/// Our customer id of a Shopify customer id.
pub fn customer_id(shopify_id: &Value) -> Option<CustomerId> {
    let id = match shopify_id {
        Value::Number(n) => n.as_u64().map(|n| n.to_string())?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
        _ => return None,
    };
    CustomerId::parse("customer.id", &format!("shopify-{id}")).ok()
}

/// The merchant and its connected store, if the request is authentic (see the module doc).
async fn verified(
    app: &App,
    req: &ApiGatewayV2httpRequest,
) -> Result<(std::sync::Arc<Merchant>, ShopifyConnector, Vec<u8>), ApiError> {
    let merchant = app.tenancy.path_merchant(req, unauthorized).await?;
    let shop = merchant
        .connectors
        .shopify
        .clone()
        .ok_or_else(unauthorized)?;
    let body = http::body_bytes(req)?;
    let secrets: Vec<&[u8]> = shop.secrets.iter().map(|s| s.0.as_bytes()).collect();
    aftercare::signature::verify_base64_hmac(http::header(req, SIGNATURE_HEADER), &body, &secrets)
        .map_err(|_| unauthorized())?;
    let domain = http::header(req, "x-shopify-shop-domain")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if domain != shop.shop_domain {
        return Err(ApiError::new(
            401,
            "wrong_shop",
            "X-Shopify-Shop-Domain is not the store connected to this merchant",
        )
        .field("X-Shopify-Shop-Domain"));
    }
    Ok((merchant, shop, body))
}

/// A delivery's id: printable ASCII, at most 128 characters.
fn delivery_id(req: &ApiGatewayV2httpRequest) -> Result<String, ApiError> {
    let id = http::header(req, "x-shopify-event-id")
        .or_else(|| http::header(req, "x-shopify-webhook-id"))
        .map(str::trim)
        .unwrap_or_default();
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            400,
            "invalid_format",
            "X-Shopify-Event-Id (or X-Shopify-Webhook-Id) must name the delivery",
        )
        .field("X-Shopify-Event-Id"));
    }
    Ok(id.to_owned())
}

pub async fn webhook(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let (merchant, shop, body) = verified(app, req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let topic = http::header(req, "x-shopify-topic")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(400, "required", "X-Shopify-Topic is required").field("X-Shopify-Topic")
        })?
        .to_owned();
    let delivery = delivery_id(req)?;
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(400, "invalid_json", format!("the body is not JSON: {e}")).field("body")
    })?;
    let outcome = handle(
        app, &merchant, &shop, &topic, &delivery, &payload, &body, deadline,
    )
    .await?;
    Ok((200, outcome))
}

/// One authentic delivery, however it came (HTTPS or EventBridge): deduped, then its topic.
#[allow(clippy::too_many_arguments)]
async fn handle(
    app: &App,
    merchant: &Merchant,
    shop: &ShopifyConnector,
    topic: &str,
    delivery: &str,
    payload: &Value,
    body: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    if app
        .store
        .delivery_seen(&merchant.id, SOURCE, delivery)
        .await?
    {
        tracing::info!(topic, "Shopify delivery already handled");
        return Ok(json!({"result": "duplicate", "topic": topic}));
    }
    let outcome = match topic {
        "orders/create" | "orders/paid" => {
            order(app, merchant, shop, topic, payload, deadline).await?
        }
        "fulfillments/create" | "fulfillments/update" => {
            fulfillment(app, merchant, payload, deadline).await?
        }
        "refunds/create" => refund(app, merchant, payload, body, deadline).await?,
        "orders/cancelled" => cancelled(app, merchant, payload, body, deadline).await?,
        "customers/redact" => redact(app, merchant, payload, deadline).await?,
        "customers/data_request" => data_request(app, merchant, payload).await?,
        "shop/redact" => {
            tracing::warn!(
                "Shopify asks to erase this shop's data (shop/redact): the operator runs \
                 `aftercare-admin merchant delete` for this merchant"
            );
            json!({"result": "acknowledged", "action": "merchant_delete_by_operator"})
        }
        _ => {
            tracing::info!(topic, "Shopify topic not handled; acknowledged");
            json!({"result": "ignored"})
        }
    };
    app.store
        .mark_delivery(&merchant.id, SOURCE, delivery, topic, app.clock.now())
        .await?;
    let mut outcome = outcome;
    outcome["topic"] = topic.into();
    Ok(outcome)
}

/// The `detail-type` of a Shopify webhook delivered through Amazon EventBridge.
pub const EVENTBRIDGE_DETAIL_TYPE: &str = "shopifyWebhook";

/// A Shopify webhook delivered through Amazon EventBridge: the partner event source (`source`
/// `aws.partner/shopify.com/<app id>/<name>`) carries the body as `detail.payload` and the
/// `X-Shopify-*` headers as `detail.metadata`, with no HMAC (only Shopify can publish to its
/// partner source). The shop's domain names the merchant; then it is handled exactly as an HTTPS
/// delivery. A delivery that a retry could help fails the invocation (EventBridge and Lambda
/// retry it, then the dead-letter queue keeps it); any other outcome is the invocation's result.
pub async fn from_eventbridge(
    app: &App,
    event: &aftercare::lambda::trigger::EventEnvelope,
    deadline: Deadline,
) -> Result<Value, aftercare::lambda::error::HandlerError> {
    use aftercare::lambda::error::HandlerError;
    let invalid = |what: &str| HandlerError::new("InvalidEvent", what.to_owned());
    if !event.source.starts_with("aws.partner/shopify.com") {
        return Err(invalid(
            "a shopifyWebhook event must come from Shopify's partner source",
        ));
    }
    let metadata = &event.detail["metadata"];
    let header = |name: &str| -> Option<&str> {
        metadata.as_object().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        })
    };
    let (Some(topic), Some(domain)) = (header("X-Shopify-Topic"), header("X-Shopify-Shop-Domain"))
    else {
        return Err(invalid(
            "detail.metadata must name X-Shopify-Topic and X-Shopify-Shop-Domain",
        ));
    };
    let domain = domain.to_ascii_lowercase();
    let delivery = header("X-Shopify-Event-Id")
        .or_else(|| header("X-Shopify-Webhook-Id"))
        .unwrap_or(&event.id)
        .to_owned();
    let unknown = || Ok(json!({"result": "ignored", "reason": "unknown_shop", "topic": topic}));
    let Some(id) = app
        .store
        .merchant_of_shop(&domain)
        .await
        .map_err(transient)?
    else {
        tracing::warn!(shop = %domain, topic, "a Shopify event of a shop no merchant connected");
        return unknown();
    };
    use aftercare::ports::MerchantDirectory as _;
    let merchant = match app.merchants.merchant(&id).await.map_err(transient)? {
        Some(m) => m,
        None => return unknown(),
    };
    let Some(shop) = merchant
        .connectors
        .shopify
        .clone()
        .filter(|s| s.shop_domain == domain)
    else {
        return unknown();
    };
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let payload = &event.detail["payload"];
    let body = serde_json::to_vec(payload).unwrap_or_default();
    match handle(
        app, &merchant, &shop, topic, &delivery, payload, &body, deadline,
    )
    .await
    {
        Ok(outcome) => Ok(outcome),
        Err(e) if e.status >= 500 => Err(HandlerError::new("Transient", e.message)),
        Err(e) => Ok(refused(e)),
    }
}

fn transient(e: aftercare::ports::StoreError) -> aftercare::lambda::error::HandlerError {
    aftercare::lambda::error::HandlerError::new("Transient", e.to_string())
}

/// `orders/create` and `orders/paid`.
async fn order(
    app: &App,
    merchant: &Merchant,
    shop: &ShopifyConnector,
    topic: &str,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    if topic == "orders/create" && shop.thank_on == ThankOn::Paid {
        return Ok(json!({"result": "waiting_for_payment"}));
    }
    let mapped = order_input(payload).map(
        |ShopifyOrder {
             input, name, test, ..
         }| { (input, json!({"name": name, "test": test})) },
    );
    place_mapped(app, merchant, "shopify", mapped, deadline).await
}

/// `customers/redact`: `{"shop_id", "shop_domain", "customer": {"id", "email", "phone"},
/// "orders_to_redact": [...]}`.
async fn redact(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let customer = &payload["customer"];
    let subject = match customer_id(&customer["id"]) {
        Some(c) => Subject::Customer(c),
        None => match customer["email"]
            .as_str()
            .and_then(|e| EmailAddress::parse("customer.email", e).ok())
        {
            Some(e) => Subject::Address(e),
            None => {
                return Ok(refused(
                    ApiError::new(400, "required", "customer.id or customer.email is required")
                        .field("customer.id"),
                ));
            }
        },
    };
    let privacy = Privacy {
        book: &app.store,
        merchants: app.merchants.as_ref(),
    };
    let until = Instant::now()
        + deadline
            .remaining()
            .saturating_sub(aftercare::usecases::sweep::STOP_MARGIN)
            .min(IN_REQUEST);
    let request = privacy
        .erase(&merchant.id, &subject, REQUESTED_BY, app.clock.now(), until)
        .await?;
    Ok(json!({"result": "erasure", "request_id": request.id, "status": request.status.as_str()}))
}

/// `customers/data_request`: `{"shop_id", "shop_domain", "orders_requested": [...], "customer":
/// {"id", "email", "phone"}, "data_request": {"id"}}`. The export is on record; the merchant
/// fetches it from the API and hands it over.
async fn data_request(app: &App, merchant: &Merchant, payload: &Value) -> Result<Value, ApiError> {
    let customer = match customer_id(&payload["customer"]["id"]) {
        Some(c) => c,
        None => {
            return Ok(refused(
                ApiError::new(400, "required", "customer.id is required").field("customer.id"),
            ));
        }
    };
    let privacy = Privacy {
        book: &app.store,
        merchants: app.merchants.as_ref(),
    };
    let page = privacy
        .export(
            &merchant.id,
            &Subject::Customer(customer.clone()),
            None,
            REQUESTED_BY,
            app.clock.now(),
        )
        .await
        .map_err(|e| match e {
            aftercare::usecases::privacy::PrivacyError::Store(e) => ApiError::from(e),
            other => ApiError::new(400, "invalid", other.to_string()),
        })?;
    Ok(json!({
        "result": "export_recorded", "request_id": page.request_id,
        "export": format!("/v1/customers/{customer}/export"),
    }))
}

/// Our tracking status of a Shopify fulfillment's `shipment_status` (none: nothing to record).
pub fn checkpoint_status(shipment_status: &str) -> Option<&'static str> {
    Some(match shipment_status {
        "label_printed" | "label_purchased" | "confirmed" => "info_received",
        "in_transit" => "in_transit",
        "out_for_delivery" => "out_for_delivery",
        "attempted_delivery" => "attempt_failed",
        "ready_for_pickup" => "available_for_pickup",
        "delivered" => "delivered",
        "failure" => "exception",
        _ => return None,
    })
}

/// A Shopify id (a JSON number or a string of digits) as a decimal string.
fn decimal_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// An RFC 3339 time with any offset, as our API takes it (UTC).
fn instant(v: &Value) -> Option<String> {
    v.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.to_string())
}

/// `fulfillments/create` and `fulfillments/update`: `{"id", "order_id", "status",
/// "tracking_company", "tracking_number", "tracking_numbers", "tracking_url", "tracking_urls",
/// "shipment_status", "line_items": [{"sku", "variant_id", "quantity", ...}], "created_at",
/// "updated_at", "name"}`.
async fn fulfillment(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::domain::OrderId;
    use aftercare::domain::ids::ShipmentId;
    use aftercare::domain::shipment::{CheckpointInput, ShipmentInput, ShipmentItemInput};
    let (Some(fid), Some(oid)) = (decimal_id(&payload["id"]), decimal_id(&payload["order_id"]))
    else {
        return Ok(refused(
            ApiError::new(400, "required", "id and order_id are required").field("order_id"),
        ));
    };
    if payload["status"].as_str() == Some("cancelled") {
        return Ok(json!({"result": "ignored", "reason": "fulfillment_cancelled"}));
    }
    let order_id = OrderId::parse("order_id", &oid)?;
    let shipment_id = ShipmentId::parse("id", &format!("shopify-{fid}"))?;
    let items = payload["line_items"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    let sku = l["sku"]
                        .as_str()
                        .filter(|s| !s.trim().is_empty())
                        .map(str::to_owned)
                        .or_else(|| decimal_id(&l["variant_id"]).map(|v| format!("variant-{v}")))
                        .or_else(|| decimal_id(&l["id"]).map(|v| format!("line-{v}")))?;
                    Some(ShipmentItemInput {
                        sku,
                        quantity: l["quantity"].as_i64().unwrap_or(1),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (first, more) = parcels(payload);
    let input = ShipmentInput {
        id: shipment_id.to_string(),
        carrier: payload["tracking_company"]
            .as_str()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or("Shopify")
            .to_owned(),
        // A fulfillment without a tracking number is still a shipment: its name (`#1001.1`)
        // stands in for the number.
        tracking_number: Some(first.tracking_number)
            .filter(|n| !n.is_empty())
            .or_else(|| payload["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("shopify-{fid}")),
        tracking_url: first.tracking_url,
        additional_tracking: more,
        items,
        promised_date: None,
        shipped_at: instant(&payload["created_at"]),
    };
    let mut outcome =
        match shipment_update::record_shipment(app, merchant, &order_id, input, deadline).await {
            Ok((created, _)) => json!({
                "result": if created { "shipment_created" } else { "shipment_known" },
                "shipment_id": shipment_id,
            }),
            // A later `fulfillments/update` that changes what the shipment was created with (a
            // tracking number added or corrected): the shipment as first recorded is kept (its
            // "shipped" email already went) and the update's status still applies.
            Err(aftercare::usecases::shipments::TrackingError::Conflict) => {
                tracing::info!(
                    "a Shopify fulfillment changed after it was recorded; kept as first recorded"
                );
                json!({
                    "result": "shipment_known", "shipment_id": shipment_id,
                    "changes": "kept_as_first_recorded",
                })
            }
            // The order is not stored yet (its create is still on the way): Shopify delivers the
            // fulfillment again later.
            Err(aftercare::usecases::shipments::TrackingError::UnknownOrder) => {
                return Err(ApiError::unavailable(
                    "the fulfillment's order is not stored yet; deliver it again",
                ));
            }
            Err(e) => {
                let e = ApiError::from(e);
                return if e.status >= 500 {
                    Err(e)
                } else {
                    Ok(refused(e))
                };
            }
        };
    if let Some(status) = payload["shipment_status"]
        .as_str()
        .and_then(checkpoint_status)
    {
        let at = instant(&payload["updated_at"])
            .or_else(|| instant(&payload["created_at"]))
            .unwrap_or_else(|| app.clock.now().to_string());
        let cp = CheckpointInput {
            id: Some(format!("shopify-{fid}-{status}")),
            status: status.to_owned(),
            occurred_at: at,
            location: None,
            message: None,
        };
        match shipment_update::record_checkpoint(app, merchant, &shipment_id, cp, deadline).await {
            Ok(result) => outcome["checkpoint"] = result,
            Err(e) => {
                let e = ApiError::from(e);
                if e.status >= 500 {
                    return Err(e);
                }
                outcome["checkpoint"] = refused(e);
            }
        }
    }
    Ok(outcome)
}

/// A fulfillment's parcels: `tracking_numbers` paired with `tracking_urls` by position (else the
/// single `tracking_number` and `tracking_url`), the first apart from the rest.
fn parcels(
    payload: &Value,
) -> (
    aftercare::domain::shipment::ParcelInput,
    Vec<aftercare::domain::shipment::ParcelInput>,
) {
    use aftercare::domain::shipment::ParcelInput;
    let texts = |many: &str, one: &str| -> Vec<Option<String>> {
        let clean = |v: &Value| {
            v.as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        match payload[many].as_array().filter(|a| !a.is_empty()) {
            Some(all) => all.iter().map(clean).collect(),
            None => vec![clean(&payload[one])],
        }
    };
    let numbers = texts("tracking_numbers", "tracking_number");
    let urls = texts("tracking_urls", "tracking_url");
    let mut all = numbers
        .into_iter()
        .enumerate()
        .filter_map(|(i, number)| {
            Some(ParcelInput {
                tracking_number: number?,
                tracking_url: urls.get(i).cloned().flatten(),
            })
        })
        .collect::<Vec<_>>()
        .into_iter();
    let first = all.next().unwrap_or_else(|| ParcelInput {
        tracking_number: String::new(),
        tracking_url: urls.first().cloned().flatten(),
    });
    (first, all.collect())
}

/// `orders/cancelled`: the order as on `orders/create`, with `cancelled_at` and `cancel_reason`.
async fn cancelled(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::domain::OrderId;
    let Some(oid) = decimal_id(&payload["id"]) else {
        return Ok(refused(
            ApiError::new(400, "required", "id is required").field("id"),
        ));
    };
    let order_id = OrderId::parse("id", &oid)?;
    let Some(order) = app.store.get_order(&merchant.id, &order_id).await? else {
        return Ok(json!({"result": "ignored", "reason": "unknown_order"}));
    };
    crate::connector::cancel_order(
        app,
        merchant,
        &order,
        &format!("shopify-cancel-{oid}"),
        raw,
        deadline,
    )
    .await
}

/// `refunds/create`: `{"id", "order_id", "created_at", "refund_line_items": [...], "transactions":
/// [{"kind": "refund", "status": "success", "amount": "12.50", "currency": "EUR", ...}], ...}`.
async fn refund(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::domain::OrderId;
    use aftercare::domain::connectors::minor_units;
    use aftercare::domain::money::Currency;
    let (Some(rid), Some(oid)) = (decimal_id(&payload["id"]), decimal_id(&payload["order_id"]))
    else {
        return Ok(refused(
            ApiError::new(400, "required", "id and order_id are required").field("order_id"),
        ));
    };
    let order_id = OrderId::parse("order_id", &oid)?;
    let Some(order) = app.store.get_order(&merchant.id, &order_id).await? else {
        tracing::info!("a Shopify refund of an order Aftercare does not hold; acknowledged");
        return Ok(json!({"result": "ignored", "reason": "unknown_order"}));
    };
    let currency: Currency = order.order.currency;
    let mut amount = 0i64;
    for (i, t) in payload["transactions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if t["kind"].as_str() != Some("refund") || t["status"].as_str() != Some("success") {
            continue;
        }
        if t["currency"].as_str().is_some_and(|c| c != currency.code()) {
            continue;
        }
        let field = format!("transactions[{i}].amount");
        match minor_units(&field, &t["amount"], currency) {
            Ok(a) => amount = amount.saturating_add(a),
            Err(e) => return Ok(refused(e.into())),
        }
    }
    let named = refunded_skus(payload);
    let mut outcome = crate::connector::refund(
        app,
        merchant,
        &order,
        &format!("shopify-{rid}"),
        amount,
        Some(&named),
        raw,
        deadline,
    )
    .await?;
    // Every line refunded in full: also the review request and cross-sell that kept no lines.
    if fully_refunded(&order.order, payload) {
        use aftercare::domain::followup::FollowUpKind;
        let mut cancelled = outcome["follow_ups_cancelled"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Value::Array(more) = crate::connector::cancel_follow_ups(
            app,
            merchant,
            &order,
            &[FollowUpKind::ReviewRequest, FollowUpKind::CrossSell],
            "refunded",
        )
        .await?
        {
            cancelled.extend(more);
        }
        outcome["follow_ups_cancelled"] = cancelled.into();
    }
    Ok(outcome)
}

/// The SKU a refund line names, as the order's lines were mapped: its `line_item.sku`, else
/// `variant-<variant_id>`, else `line-<line_item_id>`.
fn refund_line_sku(r: &Value) -> Option<String> {
    let line = &r["line_item"];
    line["sku"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| decimal_id(&line["variant_id"]).map(|v| format!("variant-{v}")))
        .or_else(|| decimal_id(&r["line_item_id"]).map(|v| format!("line-{v}")))
}

/// The SKUs of a refund's `refund_line_items` that give back at least one unit.
fn refunded_skus(refund: &Value) -> Vec<aftercare::domain::catalogue::Sku> {
    let skus: Vec<String> = refund["refund_line_items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|r| r["quantity"].as_i64().unwrap_or(0) > 0)
        .filter_map(refund_line_sku)
        .collect();
    aftercare::domain::catalogue::distinct_skus(skus.iter().map(String::as_str))
}

/// Whether a refund's `refund_line_items` give back every unit of every line of `order` (by SKU,
/// as the order's lines were mapped).
fn fully_refunded(order: &aftercare::domain::Order, refund: &Value) -> bool {
    let mut back: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for r in refund["refund_line_items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(sku) = refund_line_sku(r) {
            *back.entry(sku).or_default() += r["quantity"].as_i64().unwrap_or(0);
        }
    }
    !order.items.is_empty()
        && order
            .items
            .iter()
            .all(|i| back.get(i.sku.as_str()).copied().unwrap_or(0) >= i.quantity)
}
