//! Returns over the real SDK against moto, through the real shipment-update handler: the merchant
//! API (create, list, read, approve, reject, receive, resolve, the return parcel), the customer's
//! requests held to the policy (window, exclusions, quantities, auto-approval), the reminder sweep,
//! the carrier's delivery scan of the return parcel, store credit, and every email once under
//! concurrent and repeated deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::{Clock, ManualClock};
use aftercare::domain::OrderId;
use aftercare::domain::returns::{Requester, ReturnInput, ReturnLineInput};
use aftercare::signature::sign_easypost;
use aftercare_tests::{Env, deadline, fixture_file, with_query};
use jiff::SignedDuration;
use serde_json::{Value, json};
use shipment_update::aggregators::Provider;
use std::sync::Arc;

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: shipment_update::App,
}

const ORDER: &str = "SO-1001";

impl World {
    /// The example merchant (its return policy: 30 days, refund / store credit (+10 %) /
    /// exchange, auto-approval up to €50, `GIFT-CARD` excluded), order SO-1001 placed and
    /// delivered on 22 November.
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(change: impl FnOnce(&mut aftercare::domain::Merchant)) -> Self {
        let mut env = Env::new().await;
        change(&mut env.merchant);
        env.save_merchant().await;
        let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
        let app = shipment_update::App::with_parts(
            env.config(),
            env.dynamodb(),
            env.ses(),
            clock.clone(),
        )
        .unwrap();
        let mut order = env.order();
        order["items"].as_array_mut().unwrap().push(
            json!({"sku": "GIFT-CARD", "name": "Gift card", "quantity": 1, "unit_price": 2000}),
        );
        order["total"] = (order["total"].as_i64().unwrap() + 2000).into();
        let resp = env.place_order(clock.clone(), &order).await;
        assert_eq!(resp["statusCode"], 201, "{resp}");
        let w = Self { env, clock, app };
        let ship =
            json!({"id": "SH-1", "carrier": "DHL", "tracking_number": "JD0001", "items": []});
        let (status, _) = w
            .api(
                shipment_update::ROUTE_CREATE,
                "/v1/orders/SO-1001/shipments",
                &[("orderId", ORDER)],
                Some(ship),
                None,
            )
            .await;
        assert_eq!(status, 201);
        let delivered = json!({"status": "delivered", "occurred_at": "2026-11-22T10:00:00Z"});
        let (status, _) = w
            .api(
                shipment_update::ROUTE_CHECKPOINT,
                "/v1/shipments/SH-1/events",
                &[("shipmentId", "SH-1")],
                Some(delivered),
                None,
            )
            .await;
        assert_eq!(status, 200);
        w.clock.set("2026-11-25T10:00:00Z".parse().unwrap());
        w
    }

    async fn call(&self, event: Value) -> (i64, Value) {
        let resp = shipment_update::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        let body = resp["body"]
            .as_str()
            .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        (resp["statusCode"].as_i64().unwrap(), body)
    }

    async fn api(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Option<Value>,
        key: Option<&str>,
    ) -> (i64, Value) {
        let body = body.map(|b| b.to_string());
        let mut event = self.env.api_event(
            route,
            path,
            params,
            body.as_deref(),
            Some(&self.env.api_key),
        );
        if let Some(k) = key {
            event["headers"]["idempotency-key"] = k.into();
        }
        self.call(event).await
    }

    /// `POST /v1/orders/SO-1001/returns` under `key`.
    async fn create(&self, key: &str, items: &[(&str, i64)], resolution: &str) -> (i64, Value) {
        let body = json!({
            "items": items.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q, "reason": "damaged"})).collect::<Vec<_>>(),
            "resolution": resolution,
        });
        self.api(
            shipment_update::returns::ROUTE_CREATE_RETURN,
            "/v1/orders/SO-1001/returns",
            &[("orderId", ORDER)],
            Some(body),
            Some(key),
        )
        .await
    }

    /// `POST /v1/returns/{id}/{action}`.
    async fn act(&self, id: &str, action: &str, body: Option<Value>) -> (i64, Value) {
        self.api(
            shipment_update::returns::ROUTE_RETURN_ACTION,
            &format!("/v1/returns/{id}/{action}"),
            &[("returnId", id), ("action", action)],
            body,
            None,
        )
        .await
    }

    async fn get(&self, id: &str) -> (i64, Value) {
        self.api(
            shipment_update::returns::ROUTE_GET_RETURN,
            &format!("/v1/returns/{id}"),
            &[("returnId", id)],
            None,
            None,
        )
        .await
    }

    /// A customer's request (what the return page sends), held to the policy.
    async fn customer(
        &self,
        key: &str,
        items: &[(&str, i64)],
        resolution: &str,
    ) -> Result<aftercare::usecases::returns::Outcome, aftercare::usecases::returns::ReturnError>
    {
        let input = ReturnInput {
            items: items
                .iter()
                .map(|(sku, q)| ReturnLineInput {
                    sku: (*sku).into(),
                    quantity: *q,
                    reason: "too_small".into(),
                    exchange_sku: None,
                })
                .collect(),
            resolution: resolution.into(),
            comment: None,
        };
        shipment_update::returns::returns(&self.app)
            .request(
                &self.env.merchant,
                &OrderId::parse("o", ORDER).unwrap(),
                key,
                &input,
                Requester::Customer,
                deadline(),
            )
            .await
    }

    /// The customer's emails of `kind`.
    /// A `refund` billing event of the order, as the shop reports one.
    fn shop_refund(&self, event: &str, refund: &str, amount: i64) -> String {
        let order = self.env.order();
        json!({
            "id": event, "type": "refund", "customer": order["customer"],
            "refund": {"id": refund, "amount": amount, "currency": "EUR", "order_id": ORDER}
        })
        .to_string()
    }

    /// Reports `body` to billing-alert's `POST /v1/billing-events`: answered 200.
    async fn report_refund(&self, body: &str) {
        let key = aftercare::token::SigningKey::new(&[9u8; 32]).unwrap();
        let billing = billing_alert::App::with_parts(
            self.env.config(),
            self.env.dynamodb(),
            self.env.ses(),
            self.clock.clone(),
        )
        .unwrap();
        let links = billing_alert::Links::new(aftercare_tests::BASE, key);
        let event = self.env.api_event(
            billing_alert::ROUTE_EVENTS,
            "/v1/billing-events",
            &[],
            Some(body),
            Some(&self.env.api_key),
        );
        let resp = billing_alert::handle(&billing, &links, event, "t", deadline())
            .await
            .unwrap();
        assert_eq!(resp["statusCode"], 200, "{resp}");
    }

    async fn emails(&self, kind: &str) -> Vec<aftercare_tests::SentEmail> {
        self.env
            .emails_to(&self.env.customer_email())
            .await
            .into_iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .collect()
    }
}

#[tokio::test]
async fn a_merchant_creates_a_return_once_per_key_and_a_replay_answers_the_same() {
    let w = World::new().await;
    let (status, first) = w.create("k-1", &[("PEG-AL-10", 1)], "refund").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["status"], "requested");
    assert_eq!(first["amounts"]["refund"], 1250);
    assert_eq!(first["source"], "api");
    let id = first["id"].as_str().unwrap().to_owned();
    let (status, again) = w.create("k-1", &[("PEG-AL-10", 1)], "refund").await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    let (status, conflict) = w.create("k-1", &[("PEG-AL-10", 2)], "refund").await;
    assert_eq!(status, 409);
    assert_eq!(conflict["error"]["field"], "Idempotency-Key");
    let (status, missing) = w
        .api(
            shipment_update::returns::ROUTE_CREATE_RETURN,
            "/v1/orders/SO-1001/returns",
            &[("orderId", ORDER)],
            Some(json!({"items": [], "resolution": "refund"})),
            None,
        )
        .await;
    assert_eq!(
        (status, missing["error"]["field"].as_str()),
        (400, Some("Idempotency-Key"))
    );
    let (status, too_many) = w.create("k-2", &[("PEG-AL-10", 2)], "refund").await;
    assert_eq!(status, 422, "{too_many}");
    assert_eq!(too_many["error"]["field"], "items[0].quantity");
    let (status, read) = w.get(&id).await;
    assert_eq!(
        (status, read["lines"][0]["sku"].as_str()),
        (200, Some("PEG-AL-10"))
    );
    assert_eq!(w.emails("return_requested").await.len(), 1);
}

#[tokio::test]
async fn the_policy_holds_a_customer_to_the_window_exclusions_and_quantities() {
    let w = World::new().await;
    let excluded = w
        .customer("c-1", &[("GIFT-CARD", 1)], "refund")
        .await
        .unwrap_err();
    assert!(
        matches!(&excluded, aftercare::usecases::returns::ReturnError::Invalid(e) if e.code == "excluded" && e.field == "items[0].quantity"),
        "{excluded:?}"
    );
    // Partial quantities: one peg now, the other later; a third is refused.
    let one = w
        .customer("c-2", &[("PEG-AL-10", 1)], "refund")
        .await
        .unwrap();
    assert!(one.changed);
    let two = w
        .customer("c-3", &[("PEG-AL-10", 1)], "refund")
        .await
        .unwrap();
    assert!(two.changed);
    let three = w
        .customer("c-4", &[("PEG-AL-10", 1)], "refund")
        .await
        .unwrap_err();
    assert!(
        matches!(&three, aftercare::usecases::returns::ReturnError::Invalid(e) if e.code == "already_returned"),
        "{three:?}"
    );
    // Auto-approval: the pegs (€12.50) are under €50, approved at once; the tent is not.
    assert_eq!(one.record.status.as_str(), "approved");
    let tent = w
        .customer("c-5", &[("TENT-2P", 1)], "exchange")
        .await
        .unwrap();
    assert_eq!(tent.record.status.as_str(), "requested");
    assert_eq!(
        tent.record.lines[0].exchange_sku.as_deref(),
        Some("TENT-2P")
    );
    assert_eq!(w.emails("return_approved").await.len(), 2);
    assert_eq!(w.emails("return_requested").await.len(), 1);
    // Outside the window (30 days from the delivery on 22 November): refused for the customer,
    // still possible for the merchant.
    w.clock.set("2026-12-22T10:00:01Z".parse().unwrap());
    let late = w
        .customer("c-6", &[("TENT-2P", 1)], "refund")
        .await
        .unwrap_err();
    assert!(
        matches!(&late, aftercare::usecases::returns::ReturnError::Invalid(e) if e.code == "already_returned" || e.code == "window_closed"),
        "{late:?}"
    );
    let (status, body) = w
        .act(
            tent.record.id.as_str(),
            "reject",
            Some(json!({"reason": "Used"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let late = w
        .customer("c-7", &[("TENT-2P", 1)], "refund")
        .await
        .unwrap_err();
    assert!(
        matches!(&late, aftercare::usecases::returns::ReturnError::Invalid(e) if e.code == "window_closed"),
        "{late:?}"
    );
    let (status, by_merchant) = w.create("m-late", &[("TENT-2P", 1)], "refund").await;
    assert_eq!(status, 201, "{by_merchant}");
    assert_eq!(by_merchant["within_window"], false);
}

#[tokio::test]
async fn each_move_emails_once_under_concurrent_and_repeated_deliveries() {
    let w = World::new().await;
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "store_credit").await;
    let id = created["id"].as_str().unwrap().to_owned();
    // As the issue asks: 64 at once, then 100 one after another, for every move.
    let (concurrent, repeated) = (64, 100);
    for action in ["approve", "receive", "resolve"] {
        let answers =
            futures_util::future::join_all((0..concurrent).map(|_| w.act(&id, action, None))).await;
        for (status, body) in &answers {
            assert!(
                *status == 200 || *status == 503,
                "{action}: {status} {body}"
            );
        }
        for _ in 0..repeated {
            let (status, body) = w.act(&id, action, None).await;
            assert_eq!(status, 200, "{action}: {body}");
        }
    }
    for kind in [
        "return_requested",
        "return_approved",
        "return_received",
        "store_credit_issued",
    ] {
        assert_eq!(w.emails(kind).await.len(), 1, "{kind}");
    }
    // Store credit: the tent's €249 plus the 10 % bonus, once, and the email shows the balance.
    let (_, read) = w.get(&id).await;
    assert_eq!(read["status"], "resolved");
    assert_eq!(read["credit"]["amount"], 24_900);
    assert_eq!(read["credit"]["bonus"], 2_490);
    assert_eq!(read["credit"]["balance"], 27_390);
    let entries = w.env.items_with_sk("CREDITLOG#").await;
    assert_eq!(entries.len(), 1, "one credit entry");
    let email = &w.emails("store_credit_issued").await[0];
    let text = email.part("text/plain").unwrap();
    assert!(
        text.contains("273.90"),
        "the balance is in the email: {text}"
    );
    // A resolved return moves no more.
    let (status, body) = w.act(&id, "reject", Some(json!({"reason": "late"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("invalid_transition"))
    );
}

#[tokio::test]
async fn concurrent_requests_under_one_key_make_one_return_and_one_email() {
    let w = World::new().await;
    let answers = futures_util::future::join_all(
        (0..64).map(|_| w.create("same", &[("TENT-2P", 1)], "refund")),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == 200 || *s == 201)
        .map(|(_, b)| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1);
    for (status, body) in &answers {
        assert!([200, 201, 503].contains(status), "{status} {body}");
    }
    assert_eq!(
        w.env
            .items_with_sk("RETURN")
            .await
            .iter()
            .filter(|i| aftercare_tests::s(i, "SK") == "RETURN")
            .count(),
        1
    );
    assert_eq!(w.emails("return_requested").await.len(), 1);
}

#[tokio::test]
async fn refund_and_exchange_resolutions_and_a_rejection_tell_the_customer_once() {
    let w = World::new().await;
    let (_, refund) = w.create("r", &[("PEG-AL-10", 1)], "refund").await;
    let (_, exchange) = w.create("x", &[("TENT-2P", 1)], "exchange").await;
    let (_, rejected) = w.create("j", &[("PEG-AL-10", 1)], "refund").await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    for (r, steps) in [
        (id(&refund), &["approve", "receive", "resolve"][..]),
        (id(&exchange), &["receive", "resolve", "resolve"][..]),
    ] {
        for step in steps {
            let (status, body) = w.act(&r, step, None).await;
            assert_eq!(status, 200, "{step}: {body}");
        }
    }
    let (status, body) = w.act(&id(&rejected), "reject", None).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("reason"))
    );
    let reason = "The pegs were bent by use, so we cannot take them back.";
    for _ in 0..3 {
        let (status, body) = w
            .act(&id(&rejected), "reject", Some(json!({"reason": reason})))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(w.emails("refund_issued").await.len(), 1);
    assert_eq!(w.emails("exchange_shipped").await.len(), 1);
    let rejection = w.emails("return_rejected").await;
    assert_eq!(rejection.len(), 1);
    assert!(
        rejection[0]
            .part("text/plain")
            .unwrap()
            .contains("bent by use")
    );
    // The received-then-resolved exchange approved on the way.
    let (_, ex) = w.get(&id(&exchange)).await;
    let history: Vec<&str> = ex["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["requested", "approved", "received", "resolved"]);
    // The listing: by status and period, newest first.
    let mut event = w.env.api_event(
        shipment_update::returns::ROUTE_LIST_RETURNS,
        "/v1/returns",
        &[],
        None,
        Some(&w.env.api_key),
    );
    with_query(&mut event, "status=resolved&from=2026-11-01&to=2026-12-01");
    let (status, list) = w.call(event).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["returns"].as_array().unwrap().len(), 2);
    let mut bad = w.env.api_event(
        shipment_update::returns::ROUTE_LIST_RETURNS,
        "/v1/returns",
        &[],
        None,
        Some(&w.env.api_key),
    );
    with_query(&mut bad, "status=lost");
    let (status, body) = w.call(bad).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("status"))
    );
}

#[tokio::test]
async fn an_approved_return_not_sent_is_reminded_once_by_the_sweep() {
    let w = World::new().await;
    let (_, a) = w.create("a", &[("TENT-2P", 1)], "refund").await;
    let (_, b) = w.create("b", &[("PEG-AL-10", 1)], "refund").await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    w.act(&a, "approve", None).await;
    w.act(&b, "approve", None).await;
    let (status, body) = w
        .act(
            &b,
            "parcel",
            Some(json!({"tracking_number": "1Z 999 AA1 0123456784", "carrier": "UPS"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Before the send-by date nothing is due.
    let swept = shipment_update::sweep(&w.app, deadline()).await.unwrap();
    assert_eq!(swept["return_reminders"], 0);
    w.clock
        .set(w.clock.now() + SignedDuration::from_hours(24 * 8));
    for _ in 0..3 {
        shipment_update::sweep(&w.app, deadline()).await.unwrap();
    }
    let reminders = w.emails("return_reminder").await;
    assert_eq!(
        reminders.len(),
        1,
        "only the return whose parcel was not sent"
    );
    let (_, read) = w.get(&a).await;
    assert!(read["reminded_at"].is_string());
}

#[tokio::test]
async fn the_carriers_delivery_scan_of_the_return_parcel_receives_the_return_once() {
    let w = World::new().await;
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "refund").await;
    let id = created["id"].as_str().unwrap().to_owned();
    w.act(&id, "approve", None).await;
    let number = "EZ4000000004";
    w.act(
        &id,
        "parcel",
        Some(json!({"tracking_number": number, "carrier": "USPS"})),
    )
    .await;
    let mut body: Value =
        serde_json::from_str(&fixture_file("easypost/tracker-updated.json")).unwrap();
    body["result"]["tracking_code"] = number.into();
    let raw = body.to_string();
    let secret = Env::tracking_secret_for("easypost", &w.env.tag);
    let merchant = w.env.merchant.id.as_str().to_owned();
    let event = || {
        let mut e = w.env.api_event(
            Provider::EasyPost.route(),
            &format!("/v1/connectors/easypost/{merchant}"),
            &[("merchantId", merchant.as_str())],
            Some(&raw),
            None,
        );
        e["headers"]["x-hmac-signature"] = sign_easypost(&secret, raw.as_bytes()).into();
        e
    };
    let (status, first) = w.call(event()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["result"], "applied");
    assert_eq!(first["status"], "received");
    for _ in 0..5 {
        let (status, again) = w.call(event()).await;
        assert_eq!((status, again["result"].as_str()), (200, Some("duplicate")));
    }
    let (_, read) = w.get(&id).await;
    assert_eq!(read["status"], "received");
    assert_eq!(
        read["history"].as_array().unwrap().last().unwrap()["by"],
        "carrier"
    );
    assert_eq!(w.emails("return_received").await.len(), 1);
    // No outbound shipment was touched.
    assert_eq!(w.emails("shipment_delivered").await.len(), 1);
}

#[tokio::test]
async fn another_merchants_key_finds_none_of_these_returns() {
    let w = World::new().await;
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "refund").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let other = w.env.add_merchant("other").await;
    for (route, path, params) in [
        (
            shipment_update::returns::ROUTE_GET_RETURN,
            format!("/v1/returns/{id}"),
            vec![("returnId", id.as_str())],
        ),
        (
            shipment_update::returns::ROUTE_RETURN_ACTION,
            format!("/v1/returns/{id}/approve"),
            vec![("returnId", id.as_str()), ("action", "approve")],
        ),
    ] {
        let event = w
            .env
            .api_event(route, &path, &params, None, Some(&other.api_key));
        let (status, _) = w.call(event).await;
        assert_eq!(status, 404, "{route}");
    }
    let event = w.env.api_event(
        shipment_update::returns::ROUTE_LIST_RETURNS,
        "/v1/returns",
        &[],
        None,
        Some(&other.api_key),
    );
    let (status, list) = w.call(event).await;
    assert_eq!(
        (status, list["returns"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (_, read) = w.get(&id).await;
    assert_eq!(read["status"], "requested");
}

#[tokio::test]
async fn concurrent_requests_under_different_keys_never_return_more_than_was_ordered() {
    let w = World::new().await;
    // The order's first returns (no tally yet), then the rest racing for what is left.
    for round in 0..2 {
        let keys: Vec<String> = (0..8).map(|i| format!("r{round}-{i}")).collect();
        let answers = futures_util::future::join_all(
            keys.iter()
                .map(|k| w.create(k, &[("PEG-AL-10", 1)], "refund")),
        )
        .await;
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        let expected = if round == 0 { 2 } else { 0 };
        assert_eq!(created, expected, "round {round}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
            assert!(
                *status == 503 || body["error"]["code"] == "already_returned",
                "{status} {body}"
            );
        }
    }
    let tally = w.env.items_in("O#SO-1001", "RETURNS").await;
    assert_eq!(aftercare_tests::num(&tally[0], "version"), 2);
    assert_eq!(w.emails("return_requested").await.len(), 2);
}

#[tokio::test]
async fn approving_and_rejecting_at_once_one_wins_and_only_its_email_goes() {
    let w = World::new().await;
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "refund").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let answers = futures_util::future::join_all((0..16).map(|i| {
        let id = id.clone();
        let w = &w;
        async move {
            if i % 2 == 0 {
                w.act(&id, "approve", None).await
            } else {
                w.act(&id, "reject", Some(json!({"reason": "Worn"}))).await
            }
        }
    }))
    .await;
    for (status, body) in &answers {
        assert!([200, 409, 503].contains(status), "{status} {body}");
    }
    let (_, read) = w.get(&id).await;
    let status = read["status"].as_str().unwrap().to_owned();
    let (approved, rejected) = (
        w.emails("return_approved").await.len(),
        w.emails("return_rejected").await.len(),
    );
    match status.as_str() {
        "approved" => assert_eq!((approved, rejected), (1, 0)),
        "rejected" => assert_eq!((approved, rejected), (0, 1)),
        other => panic!("the return ended {other}"),
    }
    let history: Vec<&str> = read["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["requested", status.as_str()]);
}

#[tokio::test]
async fn approved_lines_leave_the_review_request_and_a_credit_resolution_takes_their_points_back() {
    let w = World::new().await;
    let review = || async {
        let items = w.env.items_in("O#SO-1001", "FOLLOWUP#review_request").await;
        let stored: aftercare::domain::followup::FollowUp =
            serde_dynamo::from_item(items.into_iter().next().unwrap()).unwrap();
        stored
    };
    let before = review().await;
    assert!(
        before.skus.iter().any(|s| s.as_str() == "TENT-2P"),
        "{before:?}"
    );
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "store_credit").await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Only asked for: the review request still names the tent.
    assert!(review().await.skus.iter().any(|s| s.as_str() == "TENT-2P"));
    for _ in 0..3 {
        assert_eq!(w.act(&id, "approve", None).await.0, 200);
    }
    let after = review().await;
    assert!(
        !after.skus.iter().any(|s| s.as_str() == "TENT-2P"),
        "{after:?}"
    );
    assert!(
        after.skus.iter().any(|s| s.as_str() == "PEG-AL-10"),
        "the pegs stay: {after:?}"
    );
    assert!(after.refunded_skus.iter().any(|s| s.as_str() == "TENT-2P"));
    let reversals = || async {
        w.env
            .items_in("C#cust-4711", "LEDGER#refund:return-")
            .await
            .len()
    };
    assert_eq!(reversals().await, 0);
    for step in ["receive", "resolve", "resolve"] {
        assert_eq!(w.act(&id, step, None).await.0, 200);
    }
    assert_eq!(reversals().await, 1, "the tent's points taken back once");
}

#[tokio::test]
async fn analytics_count_units_by_sku_and_reason_and_the_revenue_kept() {
    let w = World::new().await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let (_, credit) = w.create("c", &[("TENT-2P", 1)], "store_credit").await;
    let (_, refund) = w.create("r", &[("PEG-AL-10", 1)], "refund").await;
    let (_, rejected) = w.create("j", &[("PEG-AL-10", 1)], "exchange").await;
    for step in ["receive", "resolve"] {
        w.act(&id(&credit), step, None).await;
        w.act(&id(&refund), step, None).await;
    }
    w.act(&id(&rejected), "reject", Some(json!({"reason": "Worn"})))
        .await;
    // Two more pairs of pegs sold (delivered twice), and a test order's, which is no sale.
    for (id, test) in [("SO-1002", false), ("SO-1002", false), ("SO-T1", true)] {
        let mut order = w.env.order();
        order["id"] = id.into();
        order["test"] = test.into();
        order["items"] = json!([{"sku": "PEG-AL-10", "name": "Aluminium pegs (10)", "quantity": 2, "unit_price": 1250}]);
        order["discount"] = 0.into();
        order["total"] = (2500 + 495).into();
        let resp = w.env.place_order(w.clock.clone(), &order).await;
        assert!(
            resp["statusCode"] == 201 || resp["statusCode"] == 200,
            "{resp}"
        );
    }
    let mut event = w.env.api_event(
        shipment_update::returns::ROUTE_RETURNS_ANALYTICS,
        "/v1/returns/analytics",
        &[],
        None,
        Some(&w.env.api_key),
    );
    with_query(&mut event, "from=2026-11-01&to=2026-12-01");
    let (status, report) = w.call(event).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["returns"], 3);
    assert_eq!(report["by_status"]["resolved"], 2);
    assert_eq!(report["by_status"]["rejected"], 1);
    let eur = &report["currencies"][0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(
        eur["totals"]["units"], 2,
        "the rejected return brought nothing back"
    );
    assert_eq!(eur["totals"]["value"], 24_900 + 1_250);
    let sku = |s: &str| {
        eur["by_sku"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["sku"] == s)
            .cloned()
            .unwrap()
    };
    assert_eq!(sku("TENT-2P")["units"], 1);
    assert_eq!(sku("PEG-AL-10")["value"], 1_250);
    // Units back over units sold: the tent's one of one; one pair of pegs of four sold (the
    // rejected return's pair and the test order's are neither).
    assert_eq!(
        (
            &sku("TENT-2P")["units_sold"],
            &sku("TENT-2P")["return_rate"]
        ),
        (&json!(1), &json!(1.0))
    );
    assert_eq!(
        (
            &sku("PEG-AL-10")["units_sold"],
            &sku("PEG-AL-10")["return_rate"]
        ),
        (&json!(4), &json!(0.25))
    );
    assert_eq!(eur["by_reason"][0]["reason"], "damaged");
    assert_eq!(eur["by_reason"][0]["label"], "Arrived damaged");
    assert_eq!(eur["refunded"], 1_250);
    assert_eq!(eur["store_credit_issued"], 24_900);
    assert_eq!(eur["store_credit_bonus"], 2_490);
    assert_eq!(eur["revenue_retained"], 24_900);
    assert_eq!(eur["kept_share"], 0.9522);
    let mut empty = w.env.api_event(
        shipment_update::returns::ROUTE_RETURNS_ANALYTICS,
        "/v1/returns/analytics",
        &[],
        None,
        Some(&w.env.api_key),
    );
    with_query(&mut empty, "from=2026-12-01&to=2026-11-01");
    let (status, body) = w.call(empty).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("to")));
}

#[tokio::test]
async fn one_key_sent_with_two_different_requests_at_once_keeps_one_and_refuses_the_other() {
    let w = World::new().await;
    let answers = futures_util::future::join_all((0..8).map(|i| {
        const TENT: &[(&str, i64)] = &[("TENT-2P", 1)];
        const PEGS: &[(&str, i64)] = &[("PEG-AL-10", 1)];
        w.create("shared-key", if i % 2 == 0 { TENT } else { PEGS }, "refund")
    }))
    .await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let winner = created[0]["lines"][0]["sku"].clone();
    for (status, body) in &answers {
        match status {
            201 => {}
            200 => assert_eq!(
                body["lines"][0]["sku"], winner,
                "a replay answers the winner"
            ),
            409 => assert_eq!(body["error"]["field"], "Idempotency-Key"),
            503 => {}
            other => panic!("{other} {body}"),
        }
    }
    let (_, stored) = w.get(created[0]["id"].as_str().unwrap()).await;
    assert_eq!(
        stored["lines"][0]["sku"], winner,
        "the stored return is the one answered 201"
    );
    assert_eq!(w.emails("return_requested").await.len(), 1);
}

#[tokio::test]
async fn the_shops_refund_of_a_refunded_return_is_the_same_refund_one_email_one_reversal() {
    let w = World::new().await;
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "refund").await;
    let id = created["id"].as_str().unwrap().to_owned();
    for step in ["approve", "receive", "resolve"] {
        assert_eq!(w.act(&id, step, None).await.0, 200);
    }
    // The shop then refunds the same amount and tells Aftercare (here through the generic
    // billing events; Stripe, Shopify and WooCommerce refunds take the same path).
    let refund = w.shop_refund("ev-shop-refund", "shop-re-1", 24_900);
    for _ in 0..3 {
        w.report_refund(&refund).await;
    }
    assert_eq!(
        w.emails("refund_issued").await.len(),
        1,
        "one refund, one email"
    );
    let reversals = w.env.items_in("C#cust-4711", "LEDGER#refund:").await;
    assert_eq!(
        reversals.len(),
        1,
        "its points taken back once: {reversals:?}"
    );
    // Another refund of the order (another amount) is its own.
    w.report_refund(&w.shop_refund("ev-shop-refund-2", "shop-re-2", 500))
        .await;
    assert_eq!(w.emails("refund_issued").await.len(), 2);
}

#[tokio::test]
async fn a_shops_refund_reported_before_the_return_is_resolved_is_adopted_one_email_one_reversal() {
    let w = World::new().await;
    // The shop refunds the tent first (reported three times), and a refund of an order
    // Aftercare does not hold is noted nowhere.
    for _ in 0..3 {
        w.report_refund(&w.shop_refund("ev-early", "shop-re-early", 24_900))
            .await;
    }
    assert_eq!(w.emails("refund_issued").await.len(), 1);
    let mut unknown: Value =
        serde_json::from_str(&w.shop_refund("ev-x", "shop-re-x", 24_900)).unwrap();
    unknown["refund"]["order_id"] = "SO-404".into();
    w.report_refund(&unknown.to_string()).await;
    assert!(w.env.items_in("O#SO-404", "RETURNS").await.is_empty());
    let tally = w.env.items_in(&format!("O#{ORDER}"), "RETURNS").await;
    assert_eq!(
        tally[0]["refunds"].as_l().unwrap().len(),
        1,
        "noted once: {tally:?}"
    );
    // (That other order's refund is told all the same.)
    assert_eq!(w.emails("refund_issued").await.len(), 2);
    // Then the merchant records the return and resolves it as a refund of that amount: it is the
    // refund the shop reported, told and reversed already.
    let (_, created) = w.create("k", &[("TENT-2P", 1)], "refund").await;
    let id = created["id"].as_str().unwrap().to_owned();
    for step in ["approve", "receive", "resolve", "resolve"] {
        assert_eq!(w.act(&id, step, None).await.0, 200);
    }
    let (_, resolved) = w.act(&id, "resolve", None).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(
        resolved["refund_reported"]["subject"], "shop-re-early",
        "{resolved}"
    );
    assert_eq!(
        w.emails("refund_issued").await.len(),
        2,
        "the shop's refund of the tent told once, nothing more"
    );
    let reversals = w.env.items_in("C#cust-4711", "LEDGER#refund:").await;
    assert_eq!(reversals.len(), 1, "taken back once: {reversals:?}");
    // A return no reported refund pays is told as usual.
    let (_, pegs) = w.create("k2", &[("PEG-AL-10", 1)], "refund").await;
    let pegs = pegs["id"].as_str().unwrap().to_owned();
    for step in ["approve", "receive", "resolve"] {
        assert_eq!(w.act(&pegs, step, None).await.0, 200);
    }
    assert_eq!(w.emails("refund_issued").await.len(), 3);
}
