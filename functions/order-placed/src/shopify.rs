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
//! delivery with the same id (19 times over 48 hours), and a delivery already handled answers
//! `duplicate`. The record is written after the work, so a redelivery after a crash does the work
//! again, which every use-case takes as a replay.
//!
//! Topics:
//! * `orders/create` → the order is placed and thanked, exactly as `POST /v1/orders` (a merchant
//!   who thanks on payment, `thank_on: paid`, gets `orders/paid` instead: the create is answered
//!   `waiting_for_payment` and stores nothing). `orders/paid` places it too (a replay when the
//!   create came first).
//! * `customers/redact` → the customer's erasure (`shopify-<id>`, else by address);
//!   `customers/data_request` → an export request on record (the data is at
//!   `GET /v1/customers/shopify-<id>/export`); `shop/redact` → acknowledged and logged for the
//!   operator (`aftercare-admin merchant delete`).
//! * Any other topic → 200 `ignored` (logged): Shopify removes a subscription that keeps failing.
//!
//! Answers: 200 for everything authentic, acted on or not (a refusal says why, with the field);
//! 503 only when storage is busy and a retry will help; 401 as above.

use crate::App;
use aftercare::domain::connectors::shopify::{ShopifyOrder, order_input};
use aftercare::domain::merchant::{ShopifyConnector, ThankOn};
use aftercare::domain::privacy::Subject;
use aftercare::domain::{CustomerId, EmailAddress, Merchant, MerchantId};
use aftercare::http::{self, ApiError};
use aftercare::ports::MerchantDirectory as _;
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
/// How long a redact works inside the delivery; the sweep carries on the rest.
const IN_REQUEST: Duration = Duration::from_secs(15);

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
    let raw = req
        .path_parameters
        .get("merchantId")
        .map(String::as_str)
        .unwrap_or_default();
    let id = MerchantId::parse("merchantId", raw).map_err(|_| unauthorized())?;
    let merchant = app.merchants.merchant(&id).await?.ok_or_else(unauthorized)?;
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

/// A refusal of an authentic delivery, answered 200 so Shopify does not retry what cannot succeed.
fn refused(e: ApiError) -> Value {
    json!({"result": "refused", "error": {"code": e.code, "message": e.message, "field": e.field}})
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
    if app.store.delivery_seen(&merchant.id, SOURCE, &delivery).await? {
        tracing::info!(topic, "Shopify delivery already handled");
        return Ok((200, json!({"result": "duplicate", "topic": topic})));
    }
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(400, "invalid_json", format!("the body is not JSON: {e}")).field("body")
    })?;
    let outcome = match topic.as_str() {
        "orders/create" | "orders/paid" => {
            order(app, &merchant, &shop, &topic, &payload, deadline).await?
        }
        "customers/redact" => redact(app, &merchant, &payload, deadline).await?,
        "customers/data_request" => data_request(app, &merchant, &payload).await?,
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
        .mark_delivery(&merchant.id, SOURCE, &delivery, &topic, app.clock.now())
        .await?;
    let mut outcome = outcome;
    outcome["topic"] = topic.into();
    Ok((200, outcome))
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
    let ShopifyOrder {
        input, name, test, ..
    } = match order_input(payload) {
        Ok(o) => o,
        Err(e) if e.code == "no_email" => {
            tracing::info!("Shopify order without an email address; not stored");
            return Ok(json!({"result": "ignored", "reason": "no_email"}));
        }
        Err(e) => return Ok(refused(e.into())),
    };
    match crate::place(app, merchant, input, deadline).await {
        Ok(placed) => Ok(json!({
            "result": if placed.created { "placed" } else { "replay" },
            "order_id": placed.record.order.id, "name": name, "test": test,
            "email": placed.outcome.as_str(),
        })),
        Err(e) if e.status >= 500 => Err(e),
        Err(e) => Ok(refused(e)),
    }
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
