//! The Shopify connector over the real SDK against moto, through the real order-placed handler:
//! deliveries in the shape of Shopify's published webhook samples, signed as Shopify signs them
//! (base64 HMAC-SHA256 of the raw body with the store's secret), duplicated, mis-signed, from
//! another store, and the compliance topics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::domain::merchant::ThankOn;
use aftercare::signature::sign_base64_hmac;
use aftercare_tests::{Env, fixture_file, s};
use serde_json::{Value, json};

// Every handler call here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

const ORDER_ID: &str = "5940139491234567890";
const CUSTOMER: &str = "shopify-7741425221763";

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
        let (_clock, app) = env.app_at("2026-11-20T10:00:00Z", &key);
        Self { env, app }
    }

    /// The published-sample order, to this test's address.
    fn order(&self) -> Value {
        let mut o: Value =
            serde_json::from_str(&fixture_file("shopify/orders-create.json")).unwrap();
        let email = self.email();
        o["email"] = email.clone().into();
        o["contact_email"] = email.clone().into();
        o["customer"]["email"] = email.into();
        o
    }

    fn email(&self) -> String {
        format!("lena.{}@example.de", self.env.tag)
    }

    /// A delivery of `topic` with `payload`, to `merchant`'s URL, signed with `secret` as `shop`.
    fn delivery(
        &self,
        topic: &str,
        event_id: &str,
        payload: &Value,
        secret: Option<&str>,
        shop: &str,
        merchant: &str,
    ) -> Value {
        let raw = payload.to_string();
        let path = format!("/v1/connectors/shopify/{merchant}");
        let mut event = self.env.api_event(
            order_placed::shopify::ROUTE,
            &path,
            &[("merchantId", merchant)],
            Some(&raw),
            None,
        );
        event["headers"]["x-shopify-topic"] = topic.into();
        event["headers"]["x-shopify-shop-domain"] = shop.into();
        event["headers"]["x-shopify-event-id"] = event_id.into();
        event["headers"]["x-shopify-webhook-id"] = format!("wh-{event_id}").into();
        event["headers"]["x-shopify-api-version"] = "2025-10".into();
        event["headers"]["x-shopify-triggered-at"] = "2026-11-20T09:30:01.000Z".into();
        if let Some(secret) = secret {
            event["headers"]["x-shopify-hmac-sha256"] =
                sign_base64_hmac(secret.as_bytes(), raw.as_bytes()).into();
        }
        event
    }

    /// A correctly signed delivery from this merchant's store: (status, body).
    async fn post(&self, topic: &str, event_id: &str, payload: &Value) -> (i64, Value) {
        let secret = Env::shopify_secret_for(&self.env.tag);
        let event = self.delivery(
            topic,
            event_id,
            payload,
            Some(&secret),
            &self.env.shop_domain(),
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

    /// How many emails of `kind` this test's customer got.
    async fn kind_sent(&self, kind: &str) -> usize {
        self.env
            .emails_to(&self.email())
            .await
            .iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .count()
    }

    async fn thank_yous(&self) -> usize {
        self.env
            .emails_to(&self.email())
            .await
            .iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some("order_thanks"))
            .count()
    }
}

#[tokio::test]
async fn an_order_from_the_store_is_placed_and_thanked_once_whatever_shopify_redelivers() {
    let w = World::new().await;
    let (status, out) = w.post("orders/create", "ev-create-1", &w.order()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["result"].as_str(), out["topic"].as_str()),
        (Some("placed"), Some("orders/create")),
        "{out}"
    );
    assert_eq!(
        out["order_id"], ORDER_ID,
        "the id beyond 2^53 is kept exactly"
    );
    assert_eq!(out["name"], "#1001");
    assert_eq!(out["email"], "sent");

    // Stored exactly as the native API would: the totals reconcile, the customer is Shopify's.
    let order = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "ORDER")
        .await
        .pop()
        .unwrap();
    let stored: Value = serde_dynamo::from_item(order).unwrap();
    assert_eq!(stored["order"]["total"], 25895, "{stored}");
    assert_eq!(stored["order"]["discount"], 2000);
    assert_eq!(stored["order"]["shipping"], 495);
    assert_eq!(stored["order"]["customer"]["id"], CUSTOMER);
    assert_eq!(stored["order"]["items"][1]["sku"], "PEG-AL-10");
    assert_eq!(stored["order"]["items"][1]["unit_price"], 1250);
    assert_eq!(
        stored["order"].get("test"),
        None,
        "a real order carries no test mark"
    );
    // The German customer is thanked in German.
    let mail = w.env.emails_to(&w.email()).await;
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0]
            .subject()
            .unwrap_or_default()
            .contains("Vielen Dank"),
        "{:?}",
        mail[0].subject()
    );

    // Shopify's retry of the same delivery, then orders/paid for the same order: nothing new.
    let (status, again) = w.post("orders/create", "ev-create-1", &w.order()).await;
    assert_eq!(
        (status, again["result"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    let (status, paid) = w.post("orders/paid", "ev-paid-1", &w.order()).await;
    assert_eq!(
        (status, paid["result"].as_str()),
        (200, Some("replay")),
        "{paid}"
    );
    assert_eq!(w.thank_yous().await, 1);
}

#[tokio::test]
async fn unsigned_missigned_or_foreign_deliveries_are_refused_and_store_nothing() {
    let w = World::new().await;
    let other = w.env.add_merchant("other").await;
    let before = w.env.items().await.len();
    let m = w.env.merchant.id.to_string();
    let secret = Env::shopify_secret_for(&w.env.tag);
    let order = w.order();
    let cases = [
        (
            "no signature",
            w.delivery(
                "orders/create",
                "e1",
                &order,
                None,
                &w.env.shop_domain(),
                &m,
            ),
            "invalid_signature",
        ),
        (
            "wrong secret",
            w.delivery(
                "orders/create",
                "e2",
                &order,
                Some("shpss_not_the_secret_0000"),
                &w.env.shop_domain(),
                &m,
            ),
            "invalid_signature",
        ),
        (
            "another shop",
            w.delivery(
                "orders/create",
                "e3",
                &order,
                Some(&secret),
                "someone-else.myshopify.com",
                &m,
            ),
            "wrong_shop",
        ),
        // Signed for this merchant, posted to the other merchant's URL.
        (
            "another merchant's URL",
            w.delivery(
                "orders/create",
                "e4",
                &order,
                Some(&secret),
                &w.env.shop_domain(),
                other.merchant.id.as_str(),
            ),
            "invalid_signature",
        ),
        (
            "unknown merchant",
            w.delivery(
                "orders/create",
                "e5",
                &order,
                Some(&secret),
                &w.env.shop_domain(),
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
    let mut tampered = w.delivery(
        "orders/create",
        "e6",
        &order,
        Some(&secret),
        &w.env.shop_domain(),
        &m,
    );
    tampered["body"] = tampered["body"]
        .as_str()
        .unwrap()
        .replace("249.00", "2.49")
        .into();
    let (status, _) = w.send(tampered).await;
    assert_eq!(status, 401);
    assert_eq!(w.env.items().await.len(), before, "nothing stored");
    assert_eq!(w.thank_yous().await, 0);
}

#[tokio::test]
async fn a_store_that_thanks_on_payment_waits_for_orders_paid() {
    let w = World::with(|m| {
        if let Some(shop) = m.connectors.shopify.as_mut() {
            shop.thank_on = ThankOn::Paid;
        }
    })
    .await;
    let (status, out) = w.post("orders/create", "ev-c", &w.order()).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("waiting_for_payment")),
        "{out}"
    );
    assert!(
        w.env
            .items_in(&format!("O#{ORDER_ID}"), "")
            .await
            .is_empty()
    );
    let (status, out) = w.post("orders/paid", "ev-p", &w.order()).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("placed")),
        "{out}"
    );
    assert_eq!(w.thank_yous().await, 1);
}

#[tokio::test]
async fn an_order_edited_after_placing_keeps_the_placed_order_and_its_one_thank_you() {
    let w = World::new().await;
    let (_, out) = w.post("orders/create", "ev-c", &w.order()).await;
    assert_eq!(out["result"], "placed", "{out}");
    let placed = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "ORDER")
        .await
        .remove(0);
    // The merchant edits the order (one more unit of the first line) before it is paid: Shopify's
    // `orders/paid` then carries totals the placed order does not have.
    let mut edited = w.order();
    edited["line_items"][0]["quantity"] = 2.into();
    for field in ["total_price", "subtotal_price", "current_total_price"] {
        let total: f64 = edited[field].as_str().unwrap().parse().unwrap();
        edited[field] = format!("{:.2}", total + 249.0).into();
    }
    let (status, out) = w.post("orders/paid", "ev-p", &edited).await;
    assert_eq!(
        (status, out["result"].as_str(), out["reason"].as_str()),
        (200, Some("already_placed"), Some("edited_after_placing")),
        "{out}"
    );
    let kept = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "ORDER")
        .await
        .remove(0);
    assert_eq!(kept, placed, "the placed order is kept as it was");
    assert_eq!(w.thank_yous().await, 1);
}

#[tokio::test]
async fn the_compliance_topics_reach_the_privacy_use_cases() {
    let w = World::new().await;
    w.post("orders/create", "ev-1", &w.order()).await;
    let shop = json!({"shop_id": 954889, "shop_domain": w.env.shop_domain()});

    // customers/data_request: an export on record, the data at the API.
    let mut request = shop.clone();
    request["orders_requested"] = json!([5940139491234567890u64]);
    request["customer"] = json!({"id": 7741425221763u64, "email": w.email(), "phone": null});
    request["data_request"] = json!({"id": 9999});
    let (status, out) = w.post("customers/data_request", "ev-dr", &request).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("export_recorded")),
        "{out}"
    );
    assert_eq!(out["export"], format!("/v1/customers/{CUSTOMER}/export"));
    let audit: Vec<_> = w
        .env
        .items()
        .await
        .into_iter()
        .filter(|i| s(i, "_type") == "privacy_request")
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(s(&audit[0], "requested_by"), "shopify");

    // customers/redact: the customer is erased.
    let mut redact = shop.clone();
    redact["customer"] =
        json!({"id": 7741425221763u64, "email": w.email(), "phone": "+49301234567"});
    redact["orders_to_redact"] = json!([5940139491234567890u64]);
    let (status, out) = w.post("customers/redact", "ev-cr", &redact).await;
    assert_eq!(
        (status, out["result"].as_str(), out["status"].as_str()),
        (200, Some("erasure"), Some("completed")),
        "{out}"
    );
    let traces: Vec<String> = w
        .env
        .items()
        .await
        .iter()
        .map(|i| format!("{i:?}"))
        .filter(|t| t.contains(CUSTOMER) || t.contains(&w.email()))
        .collect();
    assert_eq!(traces, Vec::<String>::new());
    // The order replayed by Shopify after the redact stays erased.
    let (status, out) = w.post("orders/create", "ev-late", &w.order()).await;
    assert_eq!(
        (
            status,
            out["result"].as_str(),
            out["error"]["code"].as_str()
        ),
        (200, Some("refused"), Some("order_erased")),
        "{out}"
    );

    // shop/redact is acknowledged for the operator; other topics are acknowledged and ignored.
    let (status, out) = w.post("shop/redact", "ev-sr", &shop).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("acknowledged")),
        "{out}"
    );
    let (status, out) = w.post("products/update", "ev-pu", &json!({"id": 1})).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("ignored")),
        "{out}"
    );
}

#[tokio::test]
async fn an_order_without_an_email_address_is_stored_shipped_and_never_mailed() {
    let w = World::new().await;
    let mut no_email = w.order();
    for field in ["email", "contact_email"] {
        no_email[field] = Value::Null;
    }
    no_email["customer"]["email"] = Value::Null;
    let (status, out) = w.post("orders/create", "ev-ne", &no_email).await;
    assert_eq!(
        (status, out["result"].as_str(), out["email"].as_str()),
        (200, Some("placed"), Some("no_address")),
        "{out}"
    );
    let order = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "ORDER")
        .await
        .pop()
        .expect("the order is stored");
    let stored: Value = serde_dynamo::from_item(order).unwrap();
    assert_eq!(stored["order"]["customer"]["id"], CUSTOMER, "{stored}");
    assert!(stored["order"]["customer"].get("email").is_none());
    assert!(stored["points_earned"].as_u64().unwrap() > 0, "{stored}");
    // A replay is a replay; the fulfillment and its delivery are recorded; nothing is claimed,
    // sent or scheduled for a customer nobody can write to.
    let (_, again) = w.post("orders/create", "ev-ne2", &no_email).await;
    assert_eq!(
        (again["result"].as_str(), again["email"].as_str()),
        (Some("replay"), Some("no_address")),
        "{again}"
    );
    let (status, shipped) = w.post("fulfillments/create", "ev-nf", &fulfillment()).await;
    assert_eq!(
        (status, shipped["result"].as_str()),
        (200, Some("shipment_created")),
        "{shipped}"
    );
    let mut delivered = fulfillment();
    delivered["shipment_status"] = "delivered".into();
    let (_, out) = w.post("fulfillments/update", "ev-nd", &delivered).await;
    assert_eq!(
        (
            out["checkpoint"]["result"].as_str(),
            out["checkpoint"]["email"].as_str()
        ),
        (Some("applied"), Some("no_address")),
        "{out}"
    );
    assert!(
        w.env
            .items_in(&format!("O#{ORDER_ID}"), "FOLLOWUP#")
            .await
            .is_empty(),
        "no follow-ups for an order without an address"
    );
    let sends = w.env.items_in(&format!("C#{CUSTOMER}#SEND"), "").await;
    assert!(sends.is_empty(), "nothing claimed: {sends:?}");
    assert_eq!(w.env.emails_to(&w.email()).await.len(), 0);
}

#[tokio::test]
async fn an_order_shopify_cannot_describe_our_way_is_acknowledged_not_retried() {
    let w = World::new().await;
    let mut bad = w.order();
    bad["line_items"][1]["price"] = "12.5.0".into();
    let (status, out) = w.post("orders/create", "ev-bad", &bad).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("refused")),
        "{out}"
    );
    assert!(
        out["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .contains("line_items[1].price"),
        "{out}"
    );
    assert!(
        w.env
            .items_in(&format!("O#{ORDER_ID}"), "")
            .await
            .is_empty()
    );
}

fn fulfillment() -> Value {
    serde_json::from_str(&fixture_file("shopify/fulfillments-create.json")).unwrap()
}

#[tokio::test]
async fn a_fulfillment_becomes_the_shipment_with_its_tracking_and_status_in_any_order() {
    let w = World::new().await;
    // The fulfillment arrives before its order: Shopify is asked to deliver it again.
    let (status, out) = w.post("fulfillments/create", "ev-f1", &fulfillment()).await;
    assert_eq!(status, 503, "{out}");
    w.post("orders/create", "ev-o1", &w.order()).await;
    // Shopify's retry of the same delivery now records the shipment and its status.
    let (status, out) = w.post("fulfillments/create", "ev-f1", &fulfillment()).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("shipment_created")),
        "{out}"
    );
    assert_eq!(out["shipment_id"], "shopify-4870582911234");
    let shipment = w
        .env
        .items_in("S#shopify-4870582911234", "SHIPMENT")
        .await
        .pop()
        .unwrap();
    let stored: Value = serde_dynamo::from_item(shipment).unwrap();
    assert_eq!(stored["shipment"]["carrier"], "DHL Express", "{stored}");
    assert_eq!(
        stored["shipment"]["tracking_number"],
        "JD014600006281234567"
    );
    assert_eq!(
        stored["shipment"]["additional_tracking"],
        json!([{
            "tracking_number": "JD014600006281234568",
            "tracking_url": "https://www.dhl.com/en/express/tracking.html?AWB=JD014600006281234568",
        }]),
        "the fulfillment's second tracking number is the shipment's second parcel: {stored}"
    );
    assert_eq!(stored["shipment"]["order_id"], ORDER_ID);
    assert_eq!(stored["shipment"]["items"][0]["sku"], "TENT-2P");
    assert_eq!(stored["progress_status"], "in_transit", "{stored}");
    let shipped = |emails: &[aftercare_tests::SentEmail]| {
        emails
            .iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some("shipment_shipped"))
            .count()
    };
    assert_eq!(shipped(&w.env.emails_to(&w.email()).await), 1);
    let email = w
        .env
        .emails_to(&w.email())
        .await
        .into_iter()
        .find(|e| e.header("X-Aftercare-Kind").as_deref() == Some("shipment_shipped"))
        .unwrap();
    for number in ["JD014600006281234567", "JD014600006281234568"] {
        assert!(
            email
                .part("text/plain")
                .unwrap_or_default()
                .contains(number)
                && email.part("text/html").unwrap_or_default().contains(number),
            "the shipped email names both parcels"
        );
    }

    // An update that corrects a tracking number and says out for delivery: the shipment keeps
    // what it was created with, the status applies.
    let mut corrected = fulfillment();
    corrected["tracking_numbers"][1] = "JD014600006281239999".into();
    corrected["shipment_status"] = "out_for_delivery".into();
    corrected["updated_at"] = "2026-11-21T08:00:00+01:00".into();
    let (status, out) = w.post("fulfillments/update", "ev-f1b", &corrected).await;
    assert_eq!(
        (status, out["result"].as_str(), out["changes"].as_str()),
        (200, Some("shipment_known"), Some("kept_as_first_recorded")),
        "{out}"
    );
    assert_eq!(out["checkpoint"]["result"], "applied", "{out}");

    // The update: delivered. Then a late, shuffled in_transit update changes nothing.
    let mut delivered = fulfillment();
    delivered["shipment_status"] = "delivered".into();
    delivered["updated_at"] = "2026-11-22T11:00:00+01:00".into();
    let (status, out) = w.post("fulfillments/update", "ev-f2", &delivered).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("shipment_known")),
        "{out}"
    );
    assert_eq!(out["checkpoint"]["result"], "applied", "{out}");
    let mut late = fulfillment();
    late["updated_at"] = "2026-11-21T09:00:00+01:00".into();
    let (status, _) = w.post("fulfillments/update", "ev-f3", &late).await;
    assert_eq!(status, 200);
    let shipment = w
        .env
        .items_in("S#shopify-4870582911234", "SHIPMENT")
        .await
        .pop()
        .unwrap();
    let stored: Value = serde_dynamo::from_item(shipment).unwrap();
    assert_eq!(stored["progress_status"], "delivered", "{stored}");
    // One shipped email, whatever was redelivered; the delivery scheduled the follow-ups.
    let (_, dup) = w.post("fulfillments/update", "ev-f2", &delivered).await;
    assert_eq!(dup["result"], "duplicate");
    assert_eq!(shipped(&w.env.emails_to(&w.email()).await), 1);
    assert!(
        !w.env
            .items_in(&format!("O#{ORDER_ID}"), "FOLLOWUP#")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_partial_refund_takes_back_its_share_of_the_points_once() {
    let w = World::new().await;
    w.post("orders/create", "ev-o", &w.order()).await;
    let refund: Value = serde_json::from_str(&fixture_file("shopify/refunds-create.json")).unwrap();
    let (status, out) = w.post("refunds/create", "ev-r1", &refund).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("refund_recorded")),
        "{out}"
    );
    let reversed = out["points_reversed"].as_i64().unwrap();
    assert!(reversed < 0, "{out}");
    let ledger = w
        .env
        .items_in(&format!("C#{CUSTOMER}"), "LEDGER#refund:")
        .await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    // The same refund delivered again under another event id (an admin resend): taken back once.
    let (status, again) = w.post("refunds/create", "ev-r2", &refund).await;
    assert_eq!(
        (status, again["result"].as_str()),
        (200, Some("duplicate")),
        "{again}"
    );
    assert_eq!(
        w.env
            .items_in(&format!("C#{CUSTOMER}"), "LEDGER#refund:")
            .await
            .len(),
        1
    );
    // A refund of an order Aftercare never held is acknowledged.
    let mut unknown = refund.clone();
    unknown["order_id"] = json!(1234u64);
    let (status, out) = w.post("refunds/create", "ev-r3", &unknown).await;
    assert_eq!(
        (status, out["reason"].as_str()),
        (200, Some("unknown_order")),
        "{out}"
    );
}

#[tokio::test]
async fn a_cancelled_order_loses_its_pending_follow_ups_and_its_points_once() {
    let w = World::new().await;
    w.post("orders/create", "ev-o", &w.order()).await;
    let mut delivered = fulfillment();
    delivered["shipment_status"] = "delivered".into();
    w.post("fulfillments/create", "ev-f", &delivered).await;
    assert_eq!(
        w.env
            .items_in(&format!("O#{ORDER_ID}"), "FOLLOWUP#")
            .await
            .len(),
        4
    );
    let mut cancelled = w.order();
    cancelled["cancelled_at"] = "2026-11-23T09:00:00+01:00".into();
    cancelled["cancel_reason"] = "customer".into();
    let (status, out) = w.post("orders/cancelled", "ev-c", &cancelled).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("order_cancelled")),
        "{out}"
    );
    assert_eq!(
        out["follow_ups_cancelled"].as_array().map(Vec::len),
        Some(4),
        "{out}"
    );
    assert!(out["points_reversed"].as_i64().unwrap() < 0, "{out}");
    for f in w.env.items_in(&format!("O#{ORDER_ID}"), "FOLLOWUP#").await {
        assert_eq!(s(&f, "status"), "cancelled", "{f:?}");
    }
    // The same cancellation again (an admin resend under a new event id) takes nothing twice.
    let (_, again) = w.post("orders/cancelled", "ev-c2", &cancelled).await;
    assert_eq!(again["points_reversed"], Value::Null, "{again}");
    assert_eq!(
        w.env
            .items_in(&format!("C#{CUSTOMER}"), "LEDGER#refund:")
            .await
            .len(),
        1
    );
    assert_eq!(
        w.kind_sent("order_cancelled").await,
        0,
        "the cancellation email is the merchant's choice, off by default"
    );
}

#[tokio::test]
async fn a_merchant_who_wants_it_tells_the_customer_of_the_cancellation_once() {
    let w = World::with(|m| m.settings.orders.cancellation_email = true).await;
    w.post("orders/create", "ev-o", &w.order()).await;
    let mut cancelled = w.order();
    cancelled["cancelled_at"] = "2026-11-23T09:00:00+01:00".into();
    cancelled["cancel_reason"] = "inventory".into();
    let (status, out) = w.post("orders/cancelled", "ev-c", &cancelled).await;
    assert_eq!(
        (status, out["result"].as_str(), out["email"].as_str()),
        (200, Some("order_cancelled"), Some("sent")),
        "{out}"
    );
    // Shopify's retry, an admin's resend under a new id, and both at once: still one email.
    let (a, b) = tokio::join!(
        w.post("orders/cancelled", "ev-c", &cancelled),
        w.post("orders/cancelled", "ev-c3", &cancelled)
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    w.post("orders/cancelled", "ev-c2", &cancelled).await;
    assert_eq!(w.kind_sent("order_cancelled").await, 1);
    let email = w
        .env
        .emails_to(&w.email())
        .await
        .into_iter()
        .find(|e| e.header("X-Aftercare-Kind").as_deref() == Some("order_cancelled"))
        .unwrap();
    // In the customer's language (the sample order's `customer_locale` is German), with the
    // order's number and the points taken back.
    let text = email.part("text/plain").unwrap_or_default();
    assert!(
        email.subject().unwrap_or_default().contains("storniert"),
        "{:?}",
        email.subject()
    );
    assert!(
        text.contains(ORDER_ID) && text.contains("Treuepunkte"),
        "{text}"
    );
}

#[tokio::test]
async fn a_test_order_is_placed_and_marked_as_such() {
    let w = World::new().await;
    let mut test_order = w.order();
    test_order["test"] = true.into();
    let (status, out) = w.post("orders/create", "ev-t", &test_order).await;
    assert_eq!(
        (status, out["result"].as_str(), out["test"].as_bool()),
        (200, Some("placed"), Some(true)),
        "{out}"
    );
    let order = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "ORDER")
        .await
        .pop()
        .unwrap();
    let stored: Value = serde_dynamo::from_item(order).unwrap();
    assert_eq!(stored["order"]["test"], true, "{stored}");
}

#[tokio::test]
async fn a_refund_of_every_line_cancels_the_review_request_and_cross_sell() {
    let w = World::new().await;
    w.post("orders/create", "ev-o", &w.order()).await;
    let mut delivered = fulfillment();
    delivered["shipment_status"] = "delivered".into();
    w.post("fulfillments/create", "ev-f", &delivered).await;
    let mut refund: Value =
        serde_json::from_str(&fixture_file("shopify/refunds-create.json")).unwrap();
    // The partial refund (the pegs only) leaves the journey as it is.
    let (_, partial) = w.post("refunds/create", "ev-r1", &refund).await;
    assert_eq!(partial["follow_ups_cancelled"], Value::Null, "{partial}");
    // A second refund giving back the tent too: every line came back.
    refund["id"] = json!(929361464u64);
    refund["refund_line_items"] = json!([
        {"id": 1, "line_item_id": 13688971493691u64, "quantity": 1,
         "line_item": {"id": 13688971493691u64, "sku": "TENT-2P", "quantity": 1, "price": "249.00"}},
        {"id": 2, "line_item_id": 13688971526459u64, "quantity": 2,
         "line_item": {"id": 13688971526459u64, "sku": "PEG-AL-10", "quantity": 2, "price": "12.50"}}
    ]);
    refund["transactions"][0]["amount"] = "235.78".into();
    let (status, full) = w.post("refunds/create", "ev-r2", &refund).await;
    assert_eq!(status, 200, "{full}");
    let mut cancelled: Vec<&str> = full["follow_ups_cancelled"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    cancelled.sort();
    assert_eq!(cancelled, vec!["cross_sell", "review_request"], "{full}");
    let mut statuses: Vec<(String, String)> = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), "FOLLOWUP#")
        .await
        .iter()
        .map(|f| (s(f, "SK"), s(f, "status")))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|(_, st)| st == "cancelled").count(),
        2,
        "{statuses:?}"
    );
}

/// A Shopify webhook as its Amazon EventBridge partner source delivers it.
fn eventbridge(topic: &str, shop: &str, event_id: &str, payload: &Value) -> Value {
    json!({
        "version": "0", "id": format!("eb-{event_id}"), "detail-type": "shopifyWebhook",
        "source": "aws.partner/shopify.com/4873701/aftercare", "account": "123456789012",
        "time": "2026-11-20T09:30:01Z", "region": "eu-central-1", "resources": [],
        "detail": {
            "payload": payload,
            "metadata": {
                "Content-Type": "application/json", "X-Shopify-Topic": topic,
                "X-Shopify-Shop-Domain": shop, "X-Shopify-Order-Id": ORDER_ID,
                "X-Shopify-Test": "false", "X-Shopify-Webhook-Id": format!("wh-{event_id}"),
                "X-Shopify-Event-Id": event_id, "X-Shopify-API-Version": "2025-10",
                "X-Shopify-Triggered-At": "2026-11-20T09:30:01.000Z"
            }
        }
    })
}

#[tokio::test]
async fn the_same_topics_arrive_through_amazon_eventbridge() {
    let w = World::new().await;
    let shop = w.env.shop_domain();
    let out = order_placed::handle(
        &w.app,
        eventbridge("orders/create", &shop, "eb-1", &w.order()),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(
        (out["result"].as_str(), out["order_id"].as_str()),
        (Some("placed"), Some(ORDER_ID)),
        "{out}"
    );
    // EventBridge delivers at least once: the same event again changes nothing.
    let again = order_placed::handle(
        &w.app,
        eventbridge("orders/create", &shop, "eb-1", &w.order()),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(again["result"], "duplicate", "{again}");
    let shipped = order_placed::handle(
        &w.app,
        eventbridge("fulfillments/create", &shop, "eb-2", &fulfillment()),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(shipped["result"], "shipment_created", "{shipped}");
    assert_eq!(w.thank_yous().await, 1);
    // A shop no merchant connected, and an event from another source.
    let stranger = order_placed::handle(
        &w.app,
        eventbridge("orders/create", "nobody.myshopify.com", "eb-3", &w.order()),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(
        (stranger["result"].as_str(), stranger["reason"].as_str()),
        (Some("ignored"), Some("unknown_shop")),
        "{stranger}"
    );
    let mut forged = eventbridge("orders/create", &shop, "eb-4", &w.order());
    forged["source"] = "com.acme.shop".into();
    assert!(
        order_placed::handle(&w.app, forged, "t", deadline())
            .await
            .is_err()
    );
}

/// The order's follow-up of `kind` as stored: (status, skus, refunded skus).
async fn follow_up(w: &World, kind: &str) -> (String, Vec<String>, Vec<String>) {
    let item = w
        .env
        .items_in(&format!("O#{ORDER_ID}"), &format!("FOLLOWUP#{kind}"))
        .await
        .pop()
        .unwrap();
    let f: Value = serde_dynamo::from_item(item).unwrap();
    let list = |name: &str| -> Vec<String> {
        f[name]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        f["status"].as_str().unwrap_or_default().to_owned(),
        list("skus"),
        list("refunded_skus"),
    )
}

#[tokio::test]
async fn a_refund_is_told_once_under_redelivery_and_concurrency_and_drops_only_its_lines() {
    let w = World::new().await;
    w.post("orders/create", "ev-o", &w.order()).await;
    let mut delivered = fulfillment();
    delivered["shipment_status"] = "delivered".into();
    w.post("fulfillments/create", "ev-f", &delivered).await;
    let refund: Value = serde_json::from_str(&fixture_file("shopify/refunds-create.json")).unwrap();
    let (status, first) = w.post("refunds/create", "ev-r1", &refund).await;
    assert_eq!(
        (status, first["email"].as_str()),
        (200, Some("sent")),
        "{first}"
    );
    assert_eq!(
        first["follow_ups_trimmed"],
        json!(["review_request", "cross_sell"]),
        "{first}"
    );
    // Shopify's retries of the delivery (20), then 16 deliveries of the same refund at once
    // (an admin's resends under new event ids).
    for _ in 0..20 {
        let (status, _) = w.post("refunds/create", "ev-r1", &refund).await;
        assert_eq!(status, 200);
    }
    let ids: Vec<String> = (0..16).map(|i| format!("ev-r1-{i}")).collect();
    let all =
        futures_util::future::join_all(ids.iter().map(|id| w.post("refunds/create", id, &refund)))
            .await;
    assert!(all.iter().all(|(status, _)| *status == 200), "{all:?}");
    assert_eq!(w.kind_sent("refund_issued").await, 1);
    let email = w
        .env
        .emails_to(&w.email())
        .await
        .into_iter()
        .find(|e| e.header("X-Aftercare-Kind").as_deref() == Some("refund_issued"))
        .unwrap();
    // In the customer's language (German), with the amount and the order.
    let text = email.part("text/plain").unwrap_or_default();
    assert!(text.contains("23,17") && text.contains(ORDER_ID), "{text}");
    assert!(
        email.subject().unwrap_or_default().contains("Erstattung"),
        "{:?}",
        email.subject()
    );
    // Only the pegs left the review request and the cross-sell: the tent's stay, scheduled.
    for kind in ["review_request", "cross_sell"] {
        let (status, skus, refunded) = follow_up(&w, kind).await;
        assert_eq!(status, "scheduled", "{kind}");
        assert!(!skus.contains(&"PEG-AL-10".to_owned()), "{kind} {skus:?}");
        assert!(skus.contains(&"TENT-2P".to_owned()), "{kind} {skus:?}");
        assert_eq!(refunded, ["PEG-AL-10"], "{kind}");
    }
    let (survey, _, refunded) = follow_up(&w, "feedback_survey").await;
    assert_eq!(survey, "scheduled");
    assert!(refunded.is_empty(), "the survey asks about the whole order");
}
