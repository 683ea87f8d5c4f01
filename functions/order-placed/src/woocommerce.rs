//! The WooCommerce connector: a store's webhooks (WooCommerce → Settings → Advanced → Webhooks,
//! API version WP REST API v3), posted to `POST /v1/connectors/woocommerce/{merchantId}`, feed the
//! same use-cases as the merchant API.
//!
//! Every delivery, in this order, before anything is stored:
//! 1. the merchant must have a WooCommerce store connected (`connectors.woocommerce`), else 401
//!    exactly like a bad signature;
//! 2. the unsigned ping WooCommerce sends when a webhook is saved (a form body `webhook_id=<n>`,
//!    no signature) answers 200 `ping` and stores nothing;
//! 3. `X-WC-Webhook-Signature` must be the base64 HMAC-SHA256 of the raw body with one of the
//!    store's secrets (several during a rotation; constant-time), else 401;
//! 4. `X-WC-Webhook-Source` must be the connected store's URL, else 401 `wrong_store`.
//!
//! Then the delivery is deduplicated by `X-WC-Webhook-Delivery-ID` with the order's `id` and
//! `date_modified_gmt` (a redelivery from the webhook's log in the admin repeats the delivery id);
//! a delivery already handled answers `duplicate`. The record is written after the work, so a
//! redelivery after a crash does the work again, which every use-case takes as a replay.
//!
//! Topics (`X-WC-Webhook-Topic`):
//! * `order.created`, `order.updated` → when the order's `status` is one of the connector's
//!   `place_on` (default `processing`, `completed`), the order is placed and thanked exactly as
//!   `POST /v1/orders` (a later delivery of the same order is a replay: one thank-you). Other
//!   statuses answer `ignored`.
//! * The same topics with status `completed` and items of the Shipment Tracking extension
//!   (`_wc_shipment_tracking_items` in `meta_data`) → one shipment per item (`woo-<tracking_id>`),
//!   recorded exactly as `POST /v1/orders/{orderId}/shipments` (the "shipped" email). The order is
//!   placed first when its status allows; an order that is not stored and may not be placed
//!   answers `ignored`.
//! * `order.updated` to `cancelled`: the order's scheduled follow-ups are cancelled and its points
//!   taken back in full; to `refunded`: its points taken back in full and its review request and
//!   cross-sell cancelled; each once, through the same helpers as Shopify's topics.
//! * An order Aftercare holds whose payload lists `refunds` (`{"id", "reason", "total"}`, the
//!   total negative, as the REST API shows an order's refunds): each refund once (`woo-<refund
//!   id>`): its share of the points, one "refund issued" email, and for a refund of the whole
//!   order its lines out of the review request and cross-sell. A refunded order that lists its
//!   refunds is refunded through them; one that lists none, as the order's whole total.
//! * `order.deleted` and any other topic → 200 `ignored` (logged).
//!
//! WooCommerce does not retry a failed delivery and disables a webhook after 5 failures in a row,
//! so everything authentic answers 200 (a refusal says why, with the field); 503 only when storage
//! is busy.

use crate::App;
use crate::connector::{place_mapped, refused};
use aftercare::domain::Merchant;
use aftercare::domain::OrderId;
use aftercare::domain::connectors::woocommerce::{self, TrackingItem, WooOrder};
use aftercare::domain::ids::ShipmentId;
use aftercare::domain::merchant::WooConnector;
use aftercare::domain::shipment::ShipmentInput;
use aftercare::http::{self, ApiError};
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Value, json};

pub const ROUTE: &str = "POST /v1/connectors/woocommerce/{merchantId}";
pub const SIGNATURE_HEADER: &str = "x-wc-webhook-signature";
const SOURCE: &str = "woocommerce";

fn unauthorized() -> ApiError {
    ApiError::new(
        401,
        "invalid_signature",
        "the X-WC-Webhook-Signature header is missing or invalid",
    )
    .field("X-WC-Webhook-Signature")
}

/// The ping WooCommerce posts when a webhook is saved: `webhook_id=<n>`, unsigned.
fn is_ping(req: &ApiGatewayV2httpRequest, body: &[u8]) -> bool {
    let id = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.trim().strip_prefix("webhook_id="));
    http::header(req, SIGNATURE_HEADER).is_none()
        && id.is_some_and(|id| {
            !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
        })
}

enum Verified {
    Ping,
    Delivery(WooConnector, Vec<u8>),
}

/// The merchant's connected store, if the request is authentic (see the module doc).
async fn verified(
    app: &App,
    req: &ApiGatewayV2httpRequest,
) -> Result<(std::sync::Arc<Merchant>, Verified), ApiError> {
    let merchant = app.tenancy.path_merchant(req, unauthorized).await?;
    let store = merchant
        .connectors
        .woocommerce
        .clone()
        .ok_or_else(unauthorized)?;
    let body = http::body_bytes(req)?;
    if is_ping(req, &body) {
        return Ok((merchant, Verified::Ping));
    }
    let secrets: Vec<&[u8]> = store.secrets.iter().map(|s| s.0.as_bytes()).collect();
    aftercare::signature::verify_base64_hmac(http::header(req, SIGNATURE_HEADER), &body, &secrets)
        .map_err(|_| unauthorized())?;
    let source = http::header(req, "x-wc-webhook-source").and_then(WooConnector::normalise_url);
    if source.as_deref() != Some(store.store_url.as_str()) {
        return Err(ApiError::new(
            401,
            "wrong_store",
            "X-WC-Webhook-Source is not the store connected to this merchant",
        )
        .field("X-WC-Webhook-Source"));
    }
    Ok((merchant, Verified::Delivery(store, body)))
}

/// The delivery's dedupe id: `X-WC-Webhook-Delivery-ID`, the resource's `id` and its
/// `date_modified_gmt`.
fn delivery_id(req: &ApiGatewayV2httpRequest, payload: &Value) -> Result<String, ApiError> {
    let id = http::header(req, "x-wc-webhook-delivery-id")
        .map(str::trim)
        .unwrap_or_default();
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            400,
            "invalid_format",
            "X-WC-Webhook-Delivery-ID must name the delivery",
        )
        .field("X-WC-Webhook-Delivery-ID"));
    }
    let resource = match &payload["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let modified = payload["date_modified_gmt"].as_str().unwrap_or_default();
    let key = format!("{id}:{resource}:{modified}");
    Ok(key
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(256)
        .collect())
}

pub async fn webhook(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let (merchant, verified) = verified(app, req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let (store, body) = match verified {
        Verified::Ping => {
            tracing::info!("WooCommerce webhook saved (ping)");
            return Ok((200, json!({"result": "ping"})));
        }
        Verified::Delivery(store, body) => (store, body),
    };
    let topic = http::header(req, "x-wc-webhook-topic")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(400, "required", "X-WC-Webhook-Topic is required")
                .field("X-WC-Webhook-Topic")
        })?
        .to_owned();
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(400, "invalid_json", format!("the body is not JSON: {e}")).field("body")
    })?;
    let delivery = delivery_id(req, &payload)?;
    if app
        .store
        .delivery_seen(&merchant.id, SOURCE, &delivery)
        .await?
    {
        tracing::info!(topic, "WooCommerce delivery already handled");
        return Ok((200, json!({"result": "duplicate", "topic": topic})));
    }
    let outcome = match topic.as_str() {
        "order.created" | "order.updated" => {
            order(app, &merchant, &store, &payload, deadline).await?
        }
        _ => {
            tracing::info!(topic, "WooCommerce topic not handled; acknowledged");
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

/// `order.created` and `order.updated`.
async fn order(
    app: &App,
    merchant: &Merchant,
    store: &WooConnector,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let status = woocommerce::status(payload).unwrap_or_default().to_owned();
    if status == "cancelled" || status == "refunded" {
        return cancelled_or_refunded(app, merchant, &status, payload, deadline).await;
    }
    let mut outcome = placed_or_shipped(app, merchant, store, &status, payload, deadline).await?;
    // A partial refund leaves the order `processing` or `completed` and lists itself.
    if let Some(refunds) = refunds(app, merchant, payload, deadline).await? {
        outcome["refunds"] = refunds;
    }
    Ok(outcome)
}

/// An order in any status but `cancelled` and `refunded`: placed when its status allows, and
/// its parcels recorded.
async fn placed_or_shipped(
    app: &App,
    merchant: &Merchant,
    store: &WooConnector,
    status: &str,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let status = status.to_owned();
    let tracking = if status == "completed" {
        woocommerce::tracking_items(payload)
    } else {
        Vec::new()
    };
    if !store.places(&status) && tracking.is_empty() {
        tracing::info!(
            status,
            "WooCommerce order in a status that does not place it"
        );
        return Ok(json!({"result": "ignored", "reason": "status", "status": status}));
    }
    let mut outcome = if store.places(&status) {
        place(app, merchant, payload, deadline).await?
    } else {
        json!({"result": "not_placed", "status": status})
    };
    if !tracking.is_empty() {
        let Some(order_id) = aftercare::domain::connectors::decimal_id("id", Some(&payload["id"]))
            .ok()
            .flatten()
            .and_then(|id| OrderId::parse("id", &id).ok())
        else {
            return Ok(refused(
                ApiError::new(400, "required", "id is required").field("id"),
            ));
        };
        let mut shipments = Vec::with_capacity(tracking.len());
        for item in tracking {
            shipments.push(shipment(app, merchant, &order_id, item, deadline).await?);
        }
        if shipments.iter().all(|s| s["result"] == "ignored") && outcome["result"] == "not_placed" {
            return Ok(json!({"result": "ignored", "reason": "order_not_stored"}));
        }
        outcome["shipments"] = shipments.into();
    }
    Ok(outcome)
}

/// An order that became `cancelled` (its scheduled follow-ups cancelled, its points taken back in
/// full) or `refunded` (its points taken back in full, its review request and cross-sell
/// cancelled), once each whatever is redelivered. An order Aftercare does not hold is ignored.
async fn cancelled_or_refunded(
    app: &App,
    merchant: &Merchant,
    status: &str,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let Some(id) = aftercare::domain::connectors::decimal_id("id", Some(&payload["id"]))
        .ok()
        .flatten()
    else {
        return Ok(refused(
            ApiError::new(400, "required", "id is required").field("id"),
        ));
    };
    let order_id = OrderId::parse("id", &id)?;
    let Some(order) = app.store.get_order(&merchant.id, &order_id).await? else {
        return Ok(json!({"result": "ignored", "reason": "order_not_stored", "status": status}));
    };
    let raw = serde_json::to_vec(&json!({"id": id, "status": status})).unwrap_or_default();
    if status == "cancelled" {
        crate::connector::cancel_order(
            app,
            merchant,
            &order,
            &format!("woo-cancel-{id}"),
            &raw,
            deadline,
        )
        .await
    } else if let Some(refunds) = refunds(app, merchant, payload, deadline).await? {
        // Each refund it lists, once (its points, its email, its lines), and the review request
        // and cross-sell of an order refunded in full.
        let cancelled = crate::connector::cancel_follow_ups(
            app,
            merchant,
            &order,
            &[
                aftercare::domain::followup::FollowUpKind::ReviewRequest,
                aftercare::domain::followup::FollowUpKind::CrossSell,
            ],
            "refunded",
        )
        .await?;
        Ok(
            json!({"result": "order_refunded", "refunds": refunds, "follow_ups_cancelled": cancelled}),
        )
    } else {
        let mut outcome = crate::connector::refund_order(
            app,
            merchant,
            &order,
            &format!("woo-refund-{id}"),
            &raw,
            deadline,
        )
        .await?;
        if outcome["result"] != "duplicate" {
            outcome["result"] = "order_refunded".into();
        }
        Ok(outcome)
    }
}

/// One refund an order's `refunds` lists: `{"id", "reason", "total"}` (the total negative, as
/// WooCommerce's REST API shows an order's refunds); with `line_items` (a refund resource's
/// lines, `{"sku", "quantity", ...}`, quantities negative) when the payload carries them.
struct ListedRefund {
    id: String,
    amount: i64,
    lines: Option<Vec<aftercare::domain::catalogue::Sku>>,
    raw: Vec<u8>,
}

/// The refunds a payload lists (`None` when it lists none), for an order Aftercare holds: each
/// handled once under `woo-<refund id>` (its share of the points, the customer's "refund
/// issued" email, the lines it gives back taken out of the review request and cross-sell:
/// those it names, else every line for a refund of the whole order). A refund the payload lists
/// again (every later `order.updated` does) changes nothing and sends nothing.
async fn refunds(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    deadline: Deadline,
) -> Result<Option<Value>, ApiError> {
    let Some(listed) = payload["refunds"].as_array().filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let Some(order_id) = aftercare::domain::connectors::decimal_id("id", Some(&payload["id"]))
        .ok()
        .flatten()
        .and_then(|id| OrderId::parse("id", &id).ok())
    else {
        return Ok(None);
    };
    let Some(order) = app.store.get_order(&merchant.id, &order_id).await? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(listed.len());
    for (i, entry) in listed.iter().enumerate() {
        let refund = match listed_refund(i, entry, order.order.currency) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                out.push(refused(e.into()));
                continue;
            }
        };
        let mut done = crate::connector::refund(
            app,
            merchant,
            &order,
            &format!("woo-{}", refund.id),
            refund.amount,
            refund.lines.as_deref(),
            &refund.raw,
            deadline,
        )
        .await?;
        done["refund_id"] = refund.id.into();
        out.push(done);
    }
    Ok(Some(out.into()))
}

/// `refunds[i]` of an order payload in `currency`; `None` without an id.
fn listed_refund(
    i: usize,
    entry: &Value,
    currency: aftercare::domain::money::Currency,
) -> Result<Option<ListedRefund>, aftercare::domain::FieldError> {
    let Some(id) =
        aftercare::domain::connectors::decimal_id(&format!("refunds[{i}].id"), Some(&entry["id"]))?
    else {
        return Ok(None);
    };
    let total = match &entry["total"] {
        Value::String(t) => Value::String(t.trim().trim_start_matches('-').to_owned()),
        Value::Number(n) => Value::String(n.to_string().trim_start_matches('-').to_owned()),
        other => other.clone(),
    };
    let amount = aftercare::domain::connectors::minor_units(
        &format!("refunds[{i}].total"),
        &total,
        currency,
    )?;
    // As the order's lines were mapped: the SKU, else `variation-<id>`, `product-<id>`, `line-<id>`.
    let line_sku = |l: &Value| -> Option<String> {
        let id = |name: &str| {
            aftercare::domain::connectors::decimal_id(name, Some(&l[name]))
                .ok()
                .flatten()
                .filter(|v| v != "0")
        };
        l["sku"]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| id("variation_id").map(|v| format!("variation-{v}")))
            .or_else(|| id("product_id").map(|v| format!("product-{v}")))
            .or_else(|| id("id").map(|v| format!("line-{v}")))
    };
    let lines = entry["line_items"].as_array().map(|lines| {
        let skus: Vec<String> = lines
            .iter()
            .filter(|l| l["quantity"].as_i64().unwrap_or(0) != 0)
            .filter_map(line_sku)
            .collect();
        aftercare::domain::catalogue::distinct_skus(skus.iter().map(String::as_str))
    });
    let raw =
        serde_json::to_vec(&json!({"order_id": entry["id"], "refund": entry})).unwrap_or_default();
    Ok(Some(ListedRefund {
        id,
        amount,
        lines,
        raw,
    }))
}

/// Places (or replays) the order.
async fn place(
    app: &App,
    merchant: &Merchant,
    payload: &Value,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let mapped = woocommerce::order_input(payload)
        .map(|WooOrder { input, number, .. }| (input, json!({"number": number})));
    place_mapped(app, merchant, "woocommerce", mapped, deadline).await
}

/// One Shipment Tracking item as the order's shipment `woo-<tracking_id>`.
async fn shipment(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    item: TrackingItem,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let shipment_id = format!("woo-{}", item.tracking_id);
    if ShipmentId::parse("tracking_id", &shipment_id).is_err() {
        return Ok(refused(
            ApiError::new(400, "invalid_format", "tracking_id is not a valid id")
                .field("meta_data._wc_shipment_tracking_items.tracking_id"),
        ));
    }
    let input = ShipmentInput {
        id: shipment_id.clone(),
        carrier: item.carrier.unwrap_or_else(|| "WooCommerce".to_owned()),
        tracking_number: item.tracking_number,
        tracking_url: item.tracking_url,
        additional_tracking: Vec::new(),
        items: Vec::new(),
        promised_date: None,
        shipped_at: item.shipped_at,
    };
    match shipment_update::record_shipment(app, merchant, order_id, input, deadline).await {
        Ok((created, _)) => Ok(json!({
            "result": if created { "shipment_created" } else { "shipment_known" },
            "shipment_id": shipment_id,
        })),
        Err(aftercare::usecases::shipments::TrackingError::UnknownOrder) => {
            tracing::info!("WooCommerce shipment of an order that is not stored; ignored");
            Ok(
                json!({"result": "ignored", "reason": "order_not_stored", "shipment_id": shipment_id}),
            )
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status >= 500 {
                Err(e)
            } else {
                Ok(refused(e))
            }
        }
    }
}
