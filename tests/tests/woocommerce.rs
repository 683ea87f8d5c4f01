//! The WooCommerce connector over the real SDK against moto, through the real order-placed handler:
//! deliveries in the shape of WooCommerce's published order webhook sample, signed as WooCommerce
//! signs them (base64 HMAC-SHA256 of the raw body with the webhook's secret), the ping sent when a
//! webhook is saved, redelivered, mis-signed, from another store, and the Shipment Tracking items of
//! a completed order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::signature::sign_base64_hmac;
use aftercare_tests::{Env, fixture_file, s};
use serde_json::{Value, json};

// Every handler call here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

const ORDER_ID: &str = "727";
const CUSTOMER: &str = "woo-26";

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

struct World {
    env: Env,
    app: aftercare::app::App,
}

impl World {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(tune: impl FnOnce(&mut aftercare::domain::Merchant)) -> Self {
        let mut env = Env::new().await;
        tune(&mut env.merchant);
        env.save_merchant().await;
        let key = aftercare::token::SigningKey::new(&[3u8; 32]).unwrap();
        let (_clock, app) = env.app_at("2026-11-20T16:00:00Z", &key);
        Self { env, app }
    }

    /// The published-sample order, to this test's address, in `status`.
    fn order(&self, status: &str) -> Value {
        let mut o: Value =
            serde_json::from_str(&fixture_file("woocommerce/order-created.json")).unwrap();
        o["billing"]["email"] = self.email().into();
        o["status"] = status.into();
        o
    }

    fn email(&self) -> String {
        format!("john.{}@example.com", self.env.tag)
    }

    /// A delivery of `topic` with `payload` to `merchant`'s URL, signed with `secret`, from `source`.
    fn delivery(
        &self,
        topic: &str,
        delivery_id: &str,
        payload: &Value,
        secret: Option<&str>,
        source: &str,
        merchant: &str,
    ) -> Value {
        let raw = payload.to_string();
        let path = format!("/v1/connectors/woocommerce/{merchant}");
        let mut event = self.env.api_event(
            order_placed::woocommerce::ROUTE,
            &path,
            &[("merchantId", merchant)],
            Some(&raw),
            None,
        );
        let (resource, what) = topic.split_once('.').unwrap_or((topic, ""));
        let headers = &mut event["headers"];
        headers["user-agent"] = "WooCommerce/9.4.0 Hookshot (WordPress/6.7)".into();
        headers["x-wc-webhook-source"] = source.into();
        headers["x-wc-webhook-topic"] = topic.into();
        headers["x-wc-webhook-resource"] = resource.into();
        headers["x-wc-webhook-event"] = what.into();
        headers["x-wc-webhook-id"] = "12".into();
        headers["x-wc-webhook-delivery-id"] = delivery_id.into();
        if let Some(secret) = secret {
            headers["x-wc-webhook-signature"] =
                sign_base64_hmac(secret.as_bytes(), raw.as_bytes()).into();
        }
        event
    }

    /// A correctly signed delivery from this merchant's store: (status, body).
    async fn post(&self, topic: &str, delivery_id: &str, payload: &Value) -> (i64, Value) {
        let secret = Env::woo_secret_for(&self.env.tag);
        let event = self.delivery(
            topic,
            delivery_id,
            payload,
            Some(&secret),
            &self.env.store_url(),
            self.env.merchant.id.as_str(),
        );
        self.send(event).await
    }

    async fn send(&self, event: Value) -> (i64, Value) {
        let resp = order_placed::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        (resp["statusCode"].as_i64().unwrap(), body(&resp))
    }

    async fn emails_of(&self, kind: &str) -> usize {
        self.env
            .emails_to(&self.email())
            .await
            .iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .count()
    }

    async fn stored_order(&self) -> Option<Value> {
        self.env
            .items_in(&format!("O#{ORDER_ID}"), "ORDER")
            .await
            .pop()
            .map(|i| serde_dynamo::from_item(i).unwrap())
    }
}

#[tokio::test]
async fn a_processing_order_is_placed_and_thanked_once_whatever_is_redelivered() {
    let w = World::new().await;
    let order = w.order("processing");
    let (status, out) = w.post("order.created", "d-1", &order).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (
            out["result"].as_str(),
            out["topic"].as_str(),
            out["email"].as_str()
        ),
        (Some("placed"), Some("order.created"), Some("sent")),
        "{out}"
    );
    assert_eq!(
        (out["order_id"].as_str(), out["number"].as_str()),
        (Some(ORDER_ID), Some("727"))
    );
    let stored = w.stored_order().await.unwrap();
    let o = &stored["order"];
    assert_eq!(o["customer"]["id"], CUSTOMER, "{stored}");
    assert_eq!(
        (
            &o["subtotal"],
            &o["shipping"],
            &o["tax"],
            &o["discount"],
            &o["total"]
        ),
        (
            &json!(2790),
            &json!(1000),
            &json!(135),
            &json!(200),
            &json!(3725)
        ),
        "{stored}"
    );
    assert_eq!(o["items"][0]["sku"], "product-93");
    assert_eq!(o["items"][0]["unit_price"], 300);
    assert_eq!(o["placed_at"], "2026-11-20T15:30:00Z");

    // A redelivery from the webhook's log repeats the delivery id: a duplicate.
    let (status, again) = w.post("order.created", "d-1", &order).await;
    assert_eq!(
        (status, again["result"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    // order.updated of the same order (say, a note added): a replay, no second thank-you.
    let mut updated = order.clone();
    updated["date_modified_gmt"] = "2026-11-20T15:45:00".into();
    let (status, replay) = w.post("order.updated", "d-2", &updated).await;
    assert_eq!(
        (status, replay["result"].as_str()),
        (200, Some("replay")),
        "{replay}"
    );
    assert_eq!(w.emails_of("order_thanks").await, 1);
}

#[tokio::test]
async fn an_order_staff_entered_without_an_email_is_stored_and_never_mailed() {
    let w = World::new().await;
    let mut order = w.order("processing");
    order["billing"]["email"] = "".into();
    order["customer_id"] = 0.into();
    let (status, out) = w.post("order.created", "d-ne", &order).await;
    assert_eq!(
        (status, out["result"].as_str(), out["email"].as_str()),
        (200, Some("placed"), Some("no_address")),
        "{out}"
    );
    let stored = w.stored_order().await.unwrap();
    assert_eq!(
        stored["order"]["customer"]["id"],
        format!("woo-guest-{ORDER_ID}"),
        "{stored}"
    );
    assert!(stored["order"]["customer"].get("email").is_none());
    // Completed with a Shipment Tracking item: shipped, and still nobody is written to.
    let mut completed = w.order("completed");
    completed["billing"]["email"] = "".into();
    completed["customer_id"] = 0.into();
    completed["date_modified_gmt"] = "2026-11-21T09:00:00".into();
    let (status, out) = w.post("order.updated", "d-ne2", &completed).await;
    assert_eq!(status, 200, "{out}");
    let sends = w
        .env
        .items_in(&format!("C#woo-guest-{ORDER_ID}#SEND"), "")
        .await;
    assert!(sends.is_empty(), "nothing claimed: {sends:?}");
}

#[tokio::test]
async fn a_pending_order_waits_until_it_is_paid() {
    let w = World::new().await;
    let (status, out) = w.post("order.created", "d-p", &w.order("pending")).await;
    assert_eq!(
        (status, out["result"].as_str(), out["status"].as_str()),
        (200, Some("ignored"), Some("pending")),
        "{out}"
    );
    assert!(w.stored_order().await.is_none());
    assert_eq!(w.emails_of("order_thanks").await, 0);
    let mut paid = w.order("processing");
    paid["date_modified_gmt"] = "2026-11-20T15:35:00".into();
    let (status, out) = w.post("order.updated", "d-q", &paid).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("placed")),
        "{out}"
    );
    assert_eq!(w.emails_of("order_thanks").await, 1);
    // Deleted orders and other topics are acknowledged and left alone.
    let (status, out) = w.post("order.deleted", "d-r", &json!({"id": 727})).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("ignored")),
        "{out}"
    );
    let (status, out) = w.post("product.updated", "d-s", &json!({"id": 93})).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("ignored")),
        "{out}"
    );
}

#[tokio::test]
async fn unsigned_missigned_or_foreign_deliveries_are_refused_and_store_nothing() {
    let w = World::new().await;
    let other = w.env.add_merchant("other").await;
    let before = w.env.items().await.len();
    let m = w.env.merchant.id.to_string();
    let secret = Env::woo_secret_for(&w.env.tag);
    let order = w.order("processing");
    let url = w.env.store_url();
    let cases = [
        (
            "no signature",
            w.delivery("order.created", "e1", &order, None, &url, &m),
            "invalid_signature",
        ),
        (
            "wrong secret",
            w.delivery(
                "order.created",
                "e2",
                &order,
                Some("not-the-webhook-secret-000"),
                &url,
                &m,
            ),
            "invalid_signature",
        ),
        (
            "another store",
            w.delivery(
                "order.created",
                "e3",
                &order,
                Some(&secret),
                "https://elsewhere.example/",
                &m,
            ),
            "wrong_store",
        ),
        (
            "another merchant's URL",
            w.delivery(
                "order.created",
                "e4",
                &order,
                Some(&secret),
                &url,
                other.merchant.id.as_str(),
            ),
            "invalid_signature",
        ),
        (
            "unknown merchant",
            w.delivery(
                "order.created",
                "e5",
                &order,
                Some(&secret),
                &url,
                "m-nobody",
            ),
            "invalid_signature",
        ),
    ];
    for (what, event, code) in cases {
        let (status, out) = w.send(event).await;
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (401, Some(code)),
            "{what}: {out}"
        );
    }
    // A tampered body under a valid signature of the original.
    let mut tampered = w.delivery("order.created", "e6", &order, Some(&secret), &url, &m);
    tampered["body"] = tampered["body"]
        .as_str()
        .unwrap()
        .replace("37.25", "3.72")
        .into();
    let (status, _) = w.send(tampered).await;
    assert_eq!(status, 401);
    assert_eq!(w.env.items().await.len(), before, "nothing stored");
    assert_eq!(w.emails_of("order_thanks").await, 0);
}

#[tokio::test]
async fn the_ping_on_saving_a_webhook_is_answered_and_stores_nothing() {
    let w = World::new().await;
    let before = w.env.items().await.len();
    let m = w.env.merchant.id.to_string();
    let mut ping = w.env.api_event(
        order_placed::woocommerce::ROUTE,
        &format!("/v1/connectors/woocommerce/{m}"),
        &[("merchantId", m.as_str())],
        Some("webhook_id=12"),
        None,
    );
    ping["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
    let (status, out) = w.send(ping.clone()).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("ping")),
        "{out}"
    );
    // The same ping to a merchant without a store looks like a bad signature.
    ping["pathParameters"]["merchantId"] = "m-nobody".into();
    let (status, _) = w.send(ping).await;
    assert_eq!(status, 401);
    assert_eq!(w.env.items().await.len(), before);
}

#[tokio::test]
async fn a_completed_order_with_two_tracking_items_ships_twice() {
    let w = World::new().await;
    w.post("order.created", "d-1", &w.order("processing")).await;
    let mut completed = w.order("completed");
    completed["date_modified_gmt"] = "2026-11-21T09:00:00".into();
    completed["date_completed_gmt"] = "2026-11-21T09:00:00".into();
    completed["meta_data"] = json!([{
        "id": 1207, "key": "_wc_shipment_tracking_items", "value": [
            {"tracking_provider": "usps", "custom_tracking_provider": "", "custom_tracking_link": "",
             "tracking_number": "9400111899223197428490", "date_shipped": "1795219200",
             "tracking_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
            {"tracking_provider": "", "custom_tracking_provider": "Bay Couriers",
             "custom_tracking_link": "https://bay-couriers.example/t/BC-1001",
             "tracking_number": "BC-1001", "date_shipped": "1795219200",
             "tracking_id": "0f9e8d7c6b5a49382716f5e4d3c2b1a0"}
        ]
    }]);
    let (status, out) = w.post("order.updated", "d-2", &completed).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "replay", "{out}");
    let results: Vec<_> = out["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["result"].as_str().unwrap_or_default(),
                s["shipment_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("shipment_created", "woo-a1b2c3d4e5f60718293a4b5c6d7e8f90"),
            ("shipment_created", "woo-0f9e8d7c6b5a49382716f5e4d3c2b1a0"),
        ]
    );
    let shipment = w
        .env
        .items_in("S#woo-0f9e8d7c6b5a49382716f5e4d3c2b1a0", "SHIPMENT")
        .await
        .pop()
        .unwrap();
    let stored: Value = serde_dynamo::from_item(shipment).unwrap();
    assert_eq!(stored["shipment"]["carrier"], "Bay Couriers", "{stored}");
    assert_eq!(stored["shipment"]["tracking_number"], "BC-1001");
    assert_eq!(stored["shipment"]["order_id"], ORDER_ID);
    assert_eq!(w.emails_of("shipment_shipped").await, 2);
    assert_eq!(w.emails_of("order_thanks").await, 1);

    // A later update of the completed order (a note) finds both shipments known.
    completed["date_modified_gmt"] = "2026-11-21T10:00:00".into();
    let (_, out) = w.post("order.updated", "d-3", &completed).await;
    assert_eq!(out["shipments"][1]["result"], "shipment_known", "{out}");
    assert_eq!(w.emails_of("shipment_shipped").await, 2);
}

#[tokio::test]
async fn a_completed_order_not_stored_yet_is_placed_before_its_shipments() {
    let w = World::new().await;
    let mut completed = w.order("completed");
    completed["meta_data"] = json!([{"id": 1, "key": "_wc_shipment_tracking_items", "value": [
        {"tracking_provider": "dhl", "custom_tracking_provider": "", "custom_tracking_link": "",
         "tracking_number": "JD0146000062", "date_shipped": "1795219200",
         "tracking_id": "11112222333344445555666677778888"}
    ]}]);
    let (status, out) = w.post("order.updated", "d-1", &completed).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("placed")),
        "{out}"
    );
    assert_eq!(out["shipments"][0]["result"], "shipment_created", "{out}");
    assert_eq!(w.emails_of("order_thanks").await, 1);
    assert_eq!(w.emails_of("shipment_shipped").await, 1);
}

#[tokio::test]
async fn a_yen_order_is_stored_in_whole_yen() {
    let w = World::new().await;
    let mut order = w.order("processing");
    order["currency"] = "JPY".into();
    order["line_items"][0]["subtotal"] = "3000".into();
    order["line_items"][0]["price"] = json!(1500);
    order["line_items"][1]["subtotal"] = "2500".into();
    order["line_items"][1]["price"] = json!(2500);
    order["shipping_total"] = "800".into();
    order["total_tax"] = "0".into();
    order["cart_tax"] = "0".into();
    order["discount_total"] = "500".into();
    order["total"] = "5800".into();
    let (status, out) = w.post("order.created", "d-jpy", &order).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("placed")),
        "{out}"
    );
    let stored = w.stored_order().await.unwrap();
    let o = &stored["order"];
    assert_eq!(o["currency"], "JPY", "{stored}");
    assert_eq!(o["items"][0]["unit_price"], 1500);
    assert_eq!(
        (&o["shipping"], &o["discount"], &o["total"]),
        (&json!(800), &json!(500), &json!(5800))
    );
}

#[tokio::test]
async fn a_store_that_places_only_processing_orders_ignores_the_shipment_of_an_unknown_order() {
    let w = World::with(|m| {
        if let Some(store) = m.connectors.woocommerce.as_mut() {
            store.place_on = vec!["processing".to_owned()];
        }
    })
    .await;
    let mut completed = w.order("completed");
    completed["meta_data"] = json!([{"id": 1, "key": "_wc_shipment_tracking_items", "value": [
        {"tracking_provider": "dhl", "custom_tracking_provider": "", "custom_tracking_link": "",
         "tracking_number": "JD0146000062", "date_shipped": "1795219200",
         "tracking_id": "11112222333344445555666677778888"}
    ]}]);
    let (status, out) = w.post("order.updated", "d-1", &completed).await;
    assert_eq!(
        (status, out["result"].as_str(), out["reason"].as_str()),
        (200, Some("ignored"), Some("order_not_stored")),
        "{out}"
    );
    assert!(w.stored_order().await.is_none());
    assert_eq!(w.emails_of("shipment_shipped").await, 0);
}

#[tokio::test]
async fn a_cancelled_or_refunded_order_gives_its_points_back_once() {
    let w = World::new().await;
    let placed = w.order("processing");
    let (status, out) = w.post("order.created", "d-c1", &placed).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("placed")),
        "{out}"
    );
    let mut cancelled = w.order("cancelled");
    cancelled["date_modified_gmt"] = "2026-11-21T09:00:00".into();
    let (status, out) = w.post("order.updated", "d-c2", &cancelled).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("order_cancelled")),
        "{out}"
    );
    assert!(out["points_reversed"].as_i64().unwrap() < 0, "{out}");
    // The same cancellation resent from the webhook log under a new delivery: nothing twice.
    let (_, again) = w.post("order.updated", "d-c3", &cancelled).await;
    assert_eq!(again["points_reversed"], Value::Null, "{again}");
    // Refunded afterwards: the points are already back (the same order's refund takes nothing).
    let mut refunded = w.order("refunded");
    refunded["date_modified_gmt"] = "2026-11-22T09:00:00".into();
    let (status, out) = w.post("order.updated", "d-c4", &refunded).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["points_reversed"].as_i64().unwrap_or(0), 0, "{out}");
    // An order Aftercare never held.
    let mut unknown = w.order("cancelled");
    unknown["id"] = json!(99_999u64);
    let (_, out) = w.post("order.updated", "d-c5", &unknown).await;
    assert_eq!(out["reason"], "order_not_stored", "{out}");
    assert_eq!(w.emails_of("order_cancelled").await, 0, "off by default");
}

#[tokio::test]
async fn a_merchant_who_wants_it_tells_the_customer_of_a_cancelled_order_once() {
    let w = World::with(|m| m.settings.orders.cancellation_email = true).await;
    w.post("order.created", "d-c1", &w.order("processing"))
        .await;
    let mut cancelled = w.order("cancelled");
    cancelled["date_modified_gmt"] = "2026-11-21T09:00:00".into();
    let (status, out) = w.post("order.updated", "d-c2", &cancelled).await;
    assert_eq!(
        (status, out["result"].as_str(), out["email"].as_str()),
        (200, Some("order_cancelled"), Some("sent")),
        "{out}"
    );
    // Resent from the webhook log, and a later edit of the cancelled order: still one email.
    w.post("order.updated", "d-c3", &cancelled).await;
    cancelled["date_modified_gmt"] = "2026-11-21T10:00:00".into();
    w.post("order.updated", "d-c4", &cancelled).await;
    assert_eq!(w.emails_of("order_cancelled").await, 1);
    assert_eq!(w.emails_of("order_thanks").await, 1);
}

/// Anchors the stored order's post-delivery journey: its review request and cross-sell due in
/// ten days (as a delivery would schedule them).
async fn anchor_follow_ups(w: &World) {
    use aftercare::ports::shipments::ShipmentBook as _;
    let id = aftercare::domain::OrderId::parse("id", ORDER_ID).unwrap();
    let record = w
        .app
        .store
        .get_order(&w.env.merchant.id, &id)
        .await
        .unwrap()
        .unwrap();
    let now: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    let due: jiff::Timestamp = "2026-12-02T10:00:00Z".parse().unwrap();
    use aftercare::domain::followup::{AnchorReason, FollowUpKind};
    let anchored = w
        .app
        .store
        .anchor_journey(
            &record,
            now,
            AnchorReason::Delivered,
            &[
                (FollowUpKind::ReviewRequest, due),
                (FollowUpKind::CrossSell, due),
            ],
            now,
        )
        .await
        .unwrap();
    assert!(anchored);
}

async fn follow_up_status(w: &World, kind: &str) -> String {
    let item = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), &format!("FOLLOWUP#{kind}"))
        .await
        .pop()
        .unwrap();
    s(&item, "status")
}

#[tokio::test]
async fn each_listed_refund_is_told_once_however_often_and_concurrently_it_is_listed() {
    let w = World::new().await;
    w.post("order.created", "d-r0", &w.order("processing"))
        .await;
    anchor_follow_ups(&w).await;
    // A partial refund: the order stays `completed` and lists it (WooCommerce's order shows its
    // refunds as `{"id", "reason", "total"}`, the total negative).
    let mut partial = w.order("completed");
    partial["date_modified_gmt"] = "2026-11-23T09:00:00".into();
    partial["refunds"] = json!([{"id": 731, "reason": "Scuffed box", "total": "-10.00"}]);
    let (status, out) = w.post("order.updated", "d-r1", &partial).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["refunds"][0]["email"], "sent", "{out}");
    for _ in 0..20 {
        let (status, _) = w.post("order.updated", "d-r1", &partial).await;
        assert_eq!(status, 200);
    }
    let ids: Vec<String> = (0..16).map(|i| format!("d-r1-{i}")).collect();
    let all =
        futures_util::future::join_all(ids.iter().map(|id| w.post("order.updated", id, &partial)))
            .await;
    assert!(all.iter().all(|(status, _)| *status == 200), "{all:?}");
    assert_eq!(w.emails_of("refund_issued").await, 1);
    // Ten dollars of an order of 37.25 names no line: the journey stays as it is.
    for kind in ["review_request", "cross_sell"] {
        assert_eq!(follow_up_status(&w, kind).await, "scheduled", "{kind}");
    }
    // Then the rest is refunded: the order becomes `refunded`, listing both refunds. The new one
    // is told once; the whole order came back, so no review request or cross-sell.
    let mut refunded = w.order("refunded");
    refunded["date_modified_gmt"] = "2026-11-24T09:00:00".into();
    refunded["refunds"] = json!([
        {"id": 732, "reason": "", "total": "-27.25"},
        {"id": 731, "reason": "Scuffed box", "total": "-10.00"}
    ]);
    let (status, out) = w.post("order.updated", "d-r2", &refunded).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("order_refunded")),
        "{out}"
    );
    w.post("order.updated", "d-r3", &refunded).await;
    assert_eq!(w.emails_of("refund_issued").await, 2);
    for kind in ["review_request", "cross_sell"] {
        assert_eq!(follow_up_status(&w, kind).await, "cancelled", "{kind}");
    }
    let email = w
        .env
        .emails_to(&w.email())
        .await
        .into_iter()
        .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some("refund_issued"))
        .map(|e| e.part("text/plain").unwrap_or_default())
        .collect::<Vec<_>>();
    assert!(
        email.iter().any(|t| t.contains("27.25")) && email.iter().any(|t| t.contains("10.00")),
        "{email:?}"
    );
}
