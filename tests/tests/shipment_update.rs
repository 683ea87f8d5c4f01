//! shipment-update over the real SDK against moto: the tracking journey, replays, out-of-order and
//! split shipments, late detection, the journey fallback, webhooks and the read API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::{Clock, ManualClock};
use aftercare_tests::counter::{CallCounter, counted_clients};
use aftercare_tests::{Env, deadline, s};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::sync::Arc;

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: shipment_update::App,
    orders: order_placed::App,
}

impl World {
    async fn new() -> Self {
        Self::with_clients(None).await
    }

    async fn with_clients(counter: Option<&CallCounter>) -> Self {
        let env = Env::new().await;
        let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
        let (ddb, ses) = match counter {
            Some(c) => counted_clients(&env.sdk, c),
            None => (env.dynamodb(), env.ses()),
        };
        let app = shipment_update::App::with_parts(env.config(), ddb, ses, clock.clone()).unwrap();
        let orders =
            order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
                .unwrap();
        Self {
            env,
            clock,
            app,
            orders,
        }
    }

    async fn place_order(&self) {
        let resp = order_placed::handle(
            &self.orders,
            self.env
                .http_event(&self.env.order(), Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201);
    }

    async fn call(&self, event: Value) -> (i64, Value) {
        let resp = shipment_update::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        let body = resp["body"]
            .as_str()
            .map(|b| serde_json::from_str(b).unwrap())
            .unwrap_or(Value::Null);
        (resp["statusCode"].as_i64().unwrap(), body)
    }

    async fn ship(&self, id: &str, items: Value, promised: Option<&str>) -> (i64, Value) {
        let mut body = json!({
            "id": id, "carrier": "DHL", "tracking_number": format!("JD{id}"),
            "tracking_url": format!("https://track.example/{id}"), "items": items
        });
        if let Some(p) = promised {
            body["promised_date"] = p.into();
        }
        let event = self.env.api_event(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-1001/shipments",
            &[("orderId", "SO-1001")],
            Some(&body.to_string()),
            Some(&self.env.api_key),
        );
        self.call(event).await
    }

    fn checkpoint_event(&self, shipment: &str, status: &str, at: &str) -> Value {
        let body = json!({"status": status, "occurred_at": at, "location": "Berlin"}).to_string();
        self.env.api_event(
            shipment_update::ROUTE_CHECKPOINT,
            &format!("/v1/shipments/{shipment}/events"),
            &[("shipmentId", shipment)],
            Some(&body),
            Some(&self.env.api_key),
        )
    }

    async fn checkpoint(&self, shipment: &str, status: &str, at: &str) -> (i64, Value) {
        self.call(self.checkpoint_event(shipment, status, at)).await
    }

    async fn subjects(&self) -> Vec<String> {
        let mut subjects: Vec<String> = self
            .env
            .emails_to(&self.env.customer_email())
            .await
            .iter()
            .map(|e| e.header("Subject").unwrap())
            .collect();
        subjects.sort();
        subjects
    }

    async fn follow_ups(&self) -> Vec<(String, String)> {
        let mut f: Vec<_> = self
            .env
            .items_in("O#SO-1001", "FOLLOWUP#")
            .await
            .iter()
            .map(|i| (s(i, "kind"), s(i, "due_at")))
            .collect();
        f.sort();
        f
    }
}

fn all_items() -> Value {
    json!([{"sku": "TENT-2P", "quantity": 1}, {"sku": "PEG-AL-10", "quantity": 2}])
}

#[tokio::test]
async fn the_tracking_journey_sends_each_email_once_and_schedules_the_follow_ups() {
    let w = World::new().await;
    w.place_order().await;
    let (status, body) = w.ship("SH-1", all_items(), Some("2026-11-24")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"]["status"], "sent");
    for (st, at) in [
        ("info_received", "2026-11-20T11:00:00Z"),
        ("in_transit", "2026-11-21T08:00:00Z"),
        ("out_for_delivery", "2026-11-22T07:30:00Z"),
        ("delivered", "2026-11-22T13:05:00Z"),
    ] {
        let (code, body) = w.checkpoint("SH-1", st, at).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["result"], "applied", "{st}: {body}");
    }
    assert_eq!(
        w.subjects().await,
        vec![
            "Thank you for your order SO-1001",
            "Your order SO-1001 arrives today",
            "Your order SO-1001 has been delivered",
            "Your order SO-1001 is on its way",
        ]
    );
    // Follow-ups anchored at delivery with the default offsets.
    assert_eq!(
        w.follow_ups().await,
        vec![
            ("cross_sell".into(), "2026-12-02T13:05:00Z".into()),
            ("feedback_survey".into(), "2026-11-29T13:05:00Z".into()),
            ("review_request".into(), "2026-12-06T13:05:00Z".into()),
            ("usage_tips".into(), "2026-11-25T13:05:00Z".into()),
        ]
    );
    let shipped = w
        .env
        .emails_to(&w.env.customer_email())
        .await
        .into_iter()
        .find(|e| e.header("Subject").unwrap().contains("on its way"))
        .unwrap();
    let html = shipped.part("text/html").unwrap();
    assert!(
        html.contains("https:&#x2f;&#x2f;track.example&#x2f;SH-1")
            || html.contains("https://track.example/SH-1")
    );
    assert!(html.contains("Ridge 2-person tent"));
    assert!(html.contains("24 November 2026"), "promised date");
}

#[tokio::test]
async fn a_hundred_replays_of_every_checkpoint_change_nothing() {
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(w.ship("SH-1", all_items(), None).await.0, 201);
    let steps = [
        ("in_transit", "2026-11-21T08:00:00Z"),
        ("out_for_delivery", "2026-11-22T07:30:00Z"),
        ("delivered", "2026-11-22T13:05:00Z"),
    ];
    for (st, at) in steps {
        assert_eq!(w.checkpoint("SH-1", st, at).await.1["result"], "applied");
    }
    let before = w.env.items().await;
    for _ in 0..100 {
        for (st, at) in steps {
            let (code, body) = w.checkpoint("SH-1", st, at).await;
            assert_eq!((code, body["result"].as_str()), (200, Some("duplicate")));
        }
    }
    // Re-creating the same shipment is a replay too.
    let (code, body) = w.ship("SH-1", all_items(), None).await;
    assert_eq!(
        (code, body["email"]["status"].as_str()),
        (200, Some("sent"))
    );
    assert_eq!(w.env.items().await, before, "nothing rewritten");
    assert_eq!(
        w.subjects().await.len(),
        4,
        "thank-you, shipped, out for delivery, delivered"
    );
    assert_eq!(w.follow_ups().await.len(), 4);
}

#[tokio::test]
async fn late_and_shuffled_checkpoints_never_move_a_shipment_backwards() {
    let steps = [
        ("info_received", "2026-11-20T11:00:00Z"),
        ("in_transit", "2026-11-21T08:00:00Z"),
        ("exception", "2026-11-21T18:00:00Z"),
        ("in_transit", "2026-11-22T06:00:00Z"),
        ("out_for_delivery", "2026-11-22T07:30:00Z"),
        ("attempt_failed", "2026-11-22T12:00:00Z"),
        ("out_for_delivery", "2026-11-23T07:30:00Z"),
        ("delivered", "2026-11-23T10:00:00Z"),
    ];
    // Several delivery orders of the same checkpoints (deterministic shuffles) end in one state.
    let mut finals = Vec::new();
    for seed in [1u64, 7, 42, 1234] {
        let w = World::new().await;
        w.place_order().await;
        assert_eq!(w.ship("SH-1", all_items(), None).await.0, 201);
        let mut order: Vec<usize> = (0..steps.len()).collect();
        let mut x = seed;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        for i in order {
            let (code, _) = w.checkpoint("SH-1", steps[i].0, steps[i].1).await;
            assert_eq!(code, 200);
        }
        // A late in_transit after delivery is history only.
        let (_, body) = w
            .checkpoint("SH-1", "in_transit", "2026-11-22T09:00:00Z")
            .await;
        assert_eq!(body["result"], "recorded");
        assert_eq!(body["status"], "delivered");
        let view = w
            .call(w.env.api_event(
                shipment_update::ROUTE_GET_ORDER,
                "/v1/orders/SO-1001",
                &[("orderId", "SO-1001")],
                None,
                Some(&w.env.api_key),
            ))
            .await
            .1;
        assert_eq!(
            view["shipments"][0]["history"].as_array().unwrap().len(),
            steps.len() + 1
        );
        finals.push((
            view["status"].clone(),
            view["shipments"][0]["status"].clone(),
            view["shipments"][0]["delivered_at"].clone(),
        ));
        assert_eq!(w.follow_ups().await.len(), 4);
        // Each milestone at most once, whatever the order.
        let subjects = w.subjects().await;
        let distinct: std::collections::BTreeSet<_> = subjects.iter().collect();
        assert_eq!(distinct.len(), subjects.len(), "{subjects:?}");
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:?}");
    assert_eq!(
        finals[0],
        (
            json!("delivered"),
            json!("delivered"),
            json!("2026-11-23T10:00:00Z")
        )
    );
}

#[tokio::test]
async fn a_split_order_is_delivered_when_every_shipment_is() {
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(
        w.ship("SH-A", json!([{"sku": "TENT-2P", "quantity": 1}]), None)
            .await
            .0,
        201
    );
    assert_eq!(
        w.ship("SH-B", json!([{"sku": "PEG-AL-10", "quantity": 2}]), None)
            .await
            .0,
        201
    );
    let (_, body) = w
        .checkpoint("SH-A", "delivered", "2026-11-22T10:00:00Z")
        .await;
    assert_eq!(body["order_delivered"], false);
    assert!(w.follow_ups().await.is_empty());
    let (_, body) = w
        .checkpoint("SH-B", "delivered", "2026-11-24T16:00:00Z")
        .await;
    assert_eq!(body["order_delivered"], true);
    let f = w.follow_ups().await;
    assert_eq!(f.len(), 4);
    assert!(
        f.contains(&("usage_tips".into(), "2026-11-27T16:00:00Z".into())),
        "anchored at the last delivery: {f:?}"
    );
    // Shipping more than was ordered is refused.
    let (code, body) = w
        .ship("SH-C", json!([{"sku": "TENT-2P", "quantity": 5}]), None)
        .await;
    assert_eq!(
        (code, body["error"]["field"].as_str()),
        (400, Some("items[0].quantity"))
    );
}

#[tokio::test]
async fn a_late_shipment_is_announced_once_and_the_merchant_alerted() {
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(w.ship("SH-1", all_items(), Some("2026-11-22")).await.0, 201);
    w.checkpoint("SH-1", "in_transit", "2026-11-21T08:00:00Z")
        .await;
    // Not yet late on the promised day (merchant time zone Europe/Berlin).
    w.clock.set("2026-11-22T22:30:00Z".parse().unwrap());
    let report = shipment_update::sweep(&w.app, deadline()).await.unwrap();
    assert_eq!(report["late_notices"], 0, "{report}");
    // Two overlapping sweeps after the promised date.
    w.clock.set("2026-11-23T09:00:00Z".parse().unwrap());
    let (a, b) = tokio::join!(
        shipment_update::sweep(&w.app, deadline()),
        shipment_update::sweep(&w.app, deadline())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a["late_notices"].as_u64().unwrap() + b["late_notices"].as_u64().unwrap() >= 1);
    shipment_update::sweep(&w.app, deadline()).await.unwrap();
    let late: Vec<_> = w
        .subjects()
        .await
        .into_iter()
        .filter(|s| s.contains("running late"))
        .collect();
    assert_eq!(late, vec!["Your order SO-1001 is running late"]);
    let ops = w
        .env
        .emails_to(&format!("ops@{}.shop.example", w.env.tag))
        .await;
    assert_eq!(ops.len(), 1);
    assert_eq!(
        ops[0].header("Subject").unwrap(),
        "Late shipment: order SO-1001"
    );
    // Reached the final mile in time: no notice.
    let w = World::new().await;
    w.place_order().await;
    w.ship("SH-1", all_items(), Some("2026-11-22")).await;
    w.checkpoint("SH-1", "out_for_delivery", "2026-11-22T08:00:00Z")
        .await;
    w.clock.set("2026-11-25T09:00:00Z".parse().unwrap());
    let report = shipment_update::sweep(&w.app, deadline()).await.unwrap();
    assert_eq!(report["late_notices"], 0);
    assert!(
        w.subjects()
            .await
            .iter()
            .all(|s| !s.contains("running late"))
    );
}

#[tokio::test]
async fn without_a_delivery_scan_the_journey_is_anchored_to_shipping_plus_ten_days() {
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(w.ship("SH-1", all_items(), None).await.0, 201);
    w.clock.advance(SignedDuration::from_hours(24 * 9));
    shipment_update::sweep(&w.app, deadline()).await.unwrap();
    assert!(w.follow_ups().await.is_empty(), "not yet");
    w.clock.advance(SignedDuration::from_hours(24 * 2));
    let report = shipment_update::sweep(&w.app, deadline()).await.unwrap();
    assert_eq!(report["journeys_anchored"], 1, "{report}");
    let f = w.follow_ups().await;
    assert!(
        f.contains(&("feedback_survey".into(), "2026-12-07T10:00:00Z".into())),
        "{f:?}"
    );
    let followup = &w.env.items_in("O#SO-1001", "FOLLOWUP#usage_tips").await[0];
    assert_eq!(s(followup, "anchor_reason"), "no_delivery_scan");
    // A delivery scan arriving later does not schedule the journey twice.
    let (_, body) = w
        .checkpoint("SH-1", "delivered", "2026-12-01T10:00:00Z")
        .await;
    assert_eq!(body["order_delivered"], true);
    assert_eq!(w.follow_ups().await, f);
}

fn sign(env: &Env, body: &str, at: Timestamp) -> String {
    aftercare::signature::sign(
        env.webhook_secret().as_bytes(),
        at.as_second(),
        body.as_bytes(),
    )
}

fn webhook_event(env: &Env, merchant: &str, body: &str, signature: Option<&str>) -> Value {
    let mut e = env.api_event(
        shipment_update::ROUTE_WEBHOOK,
        &format!("/v1/webhooks/tracking/{merchant}"),
        &[("merchantId", merchant)],
        Some(body),
        None,
    );
    if let Some(sig) = signature {
        e["headers"]["x-aftercare-signature"] = sig.into();
    }
    e
}

#[tokio::test]
async fn webhooks_are_verified_before_anything_is_stored() {
    let w = World::new().await;
    w.place_order().await;
    w.ship("SH-1", all_items(), None).await;
    let m = w.env.merchant.id.to_string();
    let now = w.clock.now();
    let body = json!({"shipment_id": "SH-1", "id": "cp-77", "status": "in_transit", "occurred_at": "2026-11-20T12:00:00Z"}).to_string();
    let before = w.env.items().await;
    let cases = [
        ("no signature", webhook_event(&w.env, &m, &body, None)),
        (
            "wrong secret",
            webhook_event(
                &w.env,
                &m,
                &body,
                Some(&aftercare::signature::sign(
                    b"whsec_wrong_wrong_wrong_wrong_wrong_00",
                    now.as_second(),
                    body.as_bytes(),
                )),
            ),
        ),
        (
            "tampered body",
            webhook_event(
                &w.env,
                &m,
                &body.replace("in_transit", "delivered"),
                Some(&sign(&w.env, &body, now)),
            ),
        ),
        (
            "stale timestamp",
            webhook_event(
                &w.env,
                &m,
                &body,
                Some(&sign(&w.env, &body, now - SignedDuration::from_secs(301))),
            ),
        ),
        (
            "future timestamp",
            webhook_event(
                &w.env,
                &m,
                &body,
                Some(&sign(&w.env, &body, now + SignedDuration::from_secs(301))),
            ),
        ),
        (
            "malformed header",
            webhook_event(&w.env, &m, &body, Some("v1=deadbeef")),
        ),
        (
            "unknown merchant",
            webhook_event(
                &w.env,
                "no-such-merchant",
                &body,
                Some(&sign(&w.env, &body, now)),
            ),
        ),
    ];
    for (name, event) in cases {
        let (code, body) = w.call(event).await;
        assert_eq!(code, 401, "{name}: {body}");
        assert_eq!(body["error"]["field"], "X-Aftercare-Signature", "{name}");
    }
    assert_eq!(w.env.items().await, before, "nothing stored");
    // A valid delivery is applied; the same signed request again (a redelivery, or a captured
    // copy) is a duplicate that changes nothing.
    let signed = sign(&w.env, &body, now);
    let (code, out) = w
        .call(webhook_event(&w.env, &m, &body, Some(&signed)))
        .await;
    assert_eq!(
        (code, out["result"].as_str()),
        (200, Some("applied")),
        "{out}"
    );
    let after_first = w.env.items().await;
    let (code, out) = w
        .call(webhook_event(&w.env, &m, &body, Some(&signed)))
        .await;
    assert_eq!(
        (code, out["result"].as_str()),
        (200, Some("duplicate")),
        "{out}"
    );
    assert_eq!(w.env.items().await, after_first);
    // Re-signed (a legitimate redelivery by the sender) it is a duplicate checkpoint, not an error.
    w.clock.advance(SignedDuration::from_secs(5));
    let (code, out) = w
        .call(webhook_event(
            &w.env,
            &m,
            &body,
            Some(&sign(&w.env, &body, w.clock.now())),
        ))
        .await;
    assert_eq!((code, out["result"].as_str()), (200, Some("duplicate")));
}

#[tokio::test]
async fn malformed_shipments_and_checkpoints_are_refused_naming_the_field() {
    let w = World::new().await;
    w.place_order().await;
    w.ship("SH-1", all_items(), None).await;
    let before = w.env.items().await;
    let create = |body: Value| {
        w.env.api_event(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-1001/shipments",
            &[("orderId", "SO-1001")],
            Some(&body.to_string()),
            Some(&w.env.api_key),
        )
    };
    let ok = json!({"id": "SH-9", "carrier": "DHL", "tracking_number": "JD9", "items": [{"sku": "TENT-2P", "quantity": 1}]});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cp = |body: Value| {
        w.env.api_event(
            shipment_update::ROUTE_CHECKPOINT,
            "/v1/shipments/SH-1/events",
            &[("shipmentId", "SH-1")],
            Some(&body.to_string()),
            Some(&w.env.api_key),
        )
    };
    let cases: Vec<(&str, Value, i64, &str)> = vec![
        ("missing id", create(without("id")), 400, "id"),
        (
            "id with separator",
            create(with("id", json!("SH#1"))),
            400,
            "id",
        ),
        (
            "missing carrier",
            create(without("carrier")),
            400,
            "carrier",
        ),
        (
            "empty carrier",
            create(with("carrier", json!(" "))),
            400,
            "carrier",
        ),
        (
            "carrier with newline",
            create(with("carrier", json!("DHL\nBcc: x"))),
            400,
            "carrier",
        ),
        (
            "missing tracking number",
            create(without("tracking_number")),
            400,
            "tracking_number",
        ),
        (
            "numeric tracking number",
            create(with("tracking_number", json!(123))),
            400,
            "tracking_number",
        ),
        (
            "script tracking url",
            create(with("tracking_url", json!("javascript:alert(1)"))),
            400,
            "tracking_url",
        ),
        (
            "bad promised date",
            create(with("promised_date", json!("next week"))),
            400,
            "promised_date",
        ),
        (
            "bad shipped_at",
            create(with("shipped_at", json!("yesterday"))),
            400,
            "shipped_at",
        ),
        (
            "unknown sku",
            create(with("items", json!([{"sku": "NOPE", "quantity": 1}]))),
            400,
            "items[0].sku",
        ),
        (
            "zero quantity",
            create(with("items", json!([{"sku": "TENT-2P", "quantity": 0}]))),
            400,
            "items[0].quantity",
        ),
        (
            "items not a list",
            create(with("items", json!("TENT-2P"))),
            400,
            "items",
        ),
        (
            "invalid JSON",
            w.env.api_event(
                shipment_update::ROUTE_CREATE,
                "/v1/orders/SO-1001/shipments",
                &[("orderId", "SO-1001")],
                Some("{"),
                Some(&w.env.api_key),
            ),
            400,
            "",
        ),
        (
            "unknown order",
            w.env.api_event(
                shipment_update::ROUTE_CREATE,
                "/v1/orders/SO-404/shipments",
                &[("orderId", "SO-404")],
                Some(&ok.to_string()),
                Some(&w.env.api_key),
            ),
            404,
            "",
        ),
        (
            "bad order id",
            w.env.api_event(
                shipment_update::ROUTE_CREATE,
                "/v1/orders/a%23b/shipments",
                &[("orderId", "a#b")],
                Some(&ok.to_string()),
                Some(&w.env.api_key),
            ),
            400,
            "orderId",
        ),
        (
            "unknown status",
            cp(json!({"status": "teleported", "occurred_at": "2026-11-21T08:00:00Z"})),
            400,
            "status",
        ),
        (
            "missing status",
            cp(json!({"occurred_at": "2026-11-21T08:00:00Z"})),
            400,
            "status",
        ),
        (
            "missing time",
            cp(json!({"status": "in_transit"})),
            400,
            "occurred_at",
        ),
        (
            "bad time",
            cp(json!({"status": "in_transit", "occurred_at": "21/11/2026"})),
            400,
            "occurred_at",
        ),
        (
            "overlong message",
            cp(
                json!({"status": "in_transit", "occurred_at": "2026-11-21T08:00:00Z", "message": "x".repeat(501)}),
            ),
            400,
            "message",
        ),
        (
            "control characters in location",
            cp(
                json!({"status": "in_transit", "occurred_at": "2026-11-21T08:00:00Z", "location": "A\u{0}B"}),
            ),
            400,
            "location",
        ),
        (
            "checkpoint id with separator",
            cp(json!({"id": "a#b", "status": "in_transit", "occurred_at": "2026-11-21T08:00:00Z"})),
            400,
            "id",
        ),
        (
            "unknown shipment",
            w.env.api_event(
                shipment_update::ROUTE_CHECKPOINT,
                "/v1/shipments/SH-404/events",
                &[("shipmentId", "SH-404")],
                Some(
                    &json!({"status": "in_transit", "occurred_at": "2026-11-21T08:00:00Z"})
                        .to_string(),
                ),
                Some(&w.env.api_key),
            ),
            404,
            "",
        ),
        (
            "no key",
            w.env.api_event(
                shipment_update::ROUTE_CHECKPOINT,
                "/v1/shipments/SH-1/events",
                &[("shipmentId", "SH-1")],
                Some("{}"),
                None,
            ),
            401,
            "Authorization",
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, event, status, field) in cases {
        let (code, body) = w.call(event).await;
        assert_eq!(code, status, "{name}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{name}: {body}");
        }
    }
    assert_eq!(w.env.items().await, before, "nothing written");
}

#[tokio::test]
async fn a_checkpoint_costs_one_conditional_write_and_at_most_one_send() {
    let counter = CallCounter::default();
    let w = World::with_clients(Some(&counter)).await;
    w.place_order().await;
    w.ship("SH-1", all_items(), None).await;
    // Without an email: the shipment read and one transactional write.
    counter.reset();
    w.checkpoint("SH-1", "in_transit", "2026-11-21T08:00:00Z")
        .await;
    let calls = counter.calls();
    assert_eq!(
        calls.get("DynamoDB.TransactWriteItems"),
        Some(&1),
        "{calls:?}"
    );
    assert_eq!(counter.total_calls(), 2, "{calls:?}");
    // With an email: plus one send and its record.
    counter.reset();
    w.checkpoint("SH-1", "out_for_delivery", "2026-11-22T07:30:00Z")
        .await;
    let calls = counter.calls();
    assert_eq!(
        calls.get("DynamoDB.TransactWriteItems"),
        Some(&1),
        "{calls:?}"
    );
    assert_eq!(calls.get("SESv2.SendEmail"), Some(&1), "{calls:?}");
    assert_eq!(counter.total_calls(), 4, "{calls:?}");
    assert_eq!(counter.retries(), 0);
    // A replay: one read, one write that changes nothing, no send.
    counter.reset();
    w.checkpoint("SH-1", "out_for_delivery", "2026-11-22T07:30:00Z")
        .await;
    assert_eq!(counter.calls().get("SESv2.SendEmail"), None);
    assert_eq!(counter.total_calls(), 2);
}

#[tokio::test]
async fn eventbridge_creates_shipments_and_records_checkpoints() {
    let w = World::new().await;
    w.place_order().await;
    let mut create = aftercare_tests::fixture("eventbridge-order-placed.json");
    create["detail-type"] = "Shipment Updated".into();
    create["detail"] = json!({
        "merchant_id": w.env.merchant.id, "order_id": "SO-1001",
        "shipment": {"id": "SH-E", "carrier": "UPS", "tracking_number": "1Z999", "items": [{"sku": "TENT-2P", "quantity": 1}]}
    });
    let out = shipment_update::handle(&w.app, create.clone(), "t", deadline())
        .await
        .unwrap();
    assert_eq!(out["email"]["status"], "sent");
    let mut cp = create.clone();
    cp["detail"] = json!({"merchant_id": w.env.merchant.id, "shipment_id": "SH-E", "checkpoint": {"status": "delivered", "occurred_at": "2026-11-22T09:00:00Z"}});
    let out = shipment_update::handle(&w.app, cp.clone(), "t", deadline())
        .await
        .unwrap();
    assert_eq!(out["result"], "applied");
    assert_eq!(
        shipment_update::handle(&w.app, cp, "t", deadline())
            .await
            .unwrap()["result"],
        "duplicate"
    );
    let mut bad = create.clone();
    bad["detail"]["shipment"]["carrier"] = "".into();
    let err = shipment_update::handle(&w.app, bad, "t", deadline())
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidEvent");
    assert!(err.message.contains("carrier"), "{}", err.message);
}

/// An exception scanned after delivery is history only: the delivered shipment takes no issue
/// and no exception email goes.
#[tokio::test]
async fn an_exception_after_delivery_leaves_the_delivered_shipment_as_it_is() {
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(w.ship("SH-1", all_items(), None).await.0, 201);
    let (code, _) = w
        .checkpoint("SH-1", "delivered", "2026-11-23T10:00:00Z")
        .await;
    assert_eq!(code, 200);
    let subjects = w.subjects().await;
    let (code, body) = w
        .checkpoint("SH-1", "exception", "2026-11-23T12:00:00Z")
        .await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "delivered", "{body}");
    let shipment = w.env.items_in("S#SH-1", "SHIPMENT").await;
    let issue = shipment[0].get("issue_status");
    assert!(
        matches!(
            issue,
            None | Some(aws_sdk_dynamodb::types::AttributeValue::Null(true))
        ),
        "{issue:?}"
    );
    assert_eq!(w.subjects().await, subjects);
}

/// `shipments.history_only_exists`. A late checkpoint of a delivered shipment is kept in its
/// history only while the shipment exists: when another writer deletes the shipment (an erasure)
/// just before that write, the checkpoint is not stored either, leaving no history of a shipment
/// that is gone.
#[tokio::test]
async fn a_late_checkpoint_of_a_shipment_deleted_meanwhile_is_not_stored() {
    aftercare_tests::mutate::delete_before("shipments.history_only_exists");
    let w = World::new().await;
    w.place_order().await;
    assert_eq!(w.ship("SH-1", all_items(), None).await.0, 201);
    let (code, _) = w
        .checkpoint("SH-1", "delivered", "2026-11-23T10:00:00Z")
        .await;
    assert_eq!(code, 200);
    let history = w.env.items_in("S#SH-1", "CP#").await.len();
    assert_eq!(history, 1);
    // Late: history only, and the shipment is deleted just before that write.
    let (_, body) = w
        .checkpoint("SH-1", "in_transit", "2026-11-22T09:00:00Z")
        .await;
    assert!(
        w.env.items_in("S#SH-1", "SHIPMENT").await.is_empty(),
        "{body}"
    );
    assert!(
        w.env.items_in("S#SH-1", "CP#20261122").await.is_empty(),
        "{body}"
    );
}
