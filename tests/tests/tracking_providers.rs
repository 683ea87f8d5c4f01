//! Tracking aggregators' webhooks over the real SDK against moto, through the real shipment-update
//! handler: payloads in the shape of EasyPost's, AfterShip's and Shippo's published samples,
//! signed as each provider signs them, wrongly signed, duplicated, shuffled, for an unknown
//! tracking number, and every status of each provider's vocabulary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::signature::{sign, sign_base64_hmac, sign_easypost};
use aftercare_tests::{Env, deadline, fixture_file, with_query};
use serde_json::{Value, json};
use shipment_update::aggregators::Provider;
use std::sync::Arc;

struct World {
    env: Env,
    app: shipment_update::App,
    orders: order_placed::App,
}

/// AfterShip's `edd_revise` for the parcel shipped by [`World::ship_promised`]: event `event_id`,
/// in transit, the carrier now expecting it on `date`.
fn edd_revise(event_id: &str, date: &str) -> Value {
    let mut b = fixture("aftership/tracking-update.json");
    b["event"] = "edd_revise".into();
    b["event_id"] = event_id.into();
    b["msg"]["tag"] = "InTransit".into();
    b["msg"]["subtag"] = "InTransit_001".into();
    b["msg"]["checkpoints"] = json!([b["msg"]["checkpoints"][0].clone()]);
    b["msg"]["latest_estimated_delivery"]["datetime"] = date.into();
    b
}

impl World {
    /// Records shipment `id` of order SO-1001 (AfterShip's sample parcel) with a delivery promised
    /// on `promised`.
    async fn ship_promised(&self, id: &str, promised: &str) {
        let body = json!({"id": id, "carrier": "USPS", "tracking_number": "9405511202575421535949",
            "items": [], "promised_date": promised});
        let event = self.env.api_event(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-1001/shipments",
            &[("orderId", "SO-1001")],
            Some(&body.to_string()),
            Some(&self.env.api_key),
        );
        assert_eq!(self.call(event).await.0, 201);
    }

    async fn new() -> Self {
        let env = Env::new().await;
        let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
        let app = shipment_update::App::with_parts(
            env.config(),
            env.dynamodb(),
            env.ses(),
            clock.clone(),
        )
        .unwrap();
        let orders =
            order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock).unwrap();
        let w = Self { env, app, orders };
        let resp = order_placed::handle(
            &w.orders,
            w.env.http_event(&w.env.order(), Some(&w.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201);
        w
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

    /// The order's shipment `id` by `carrier` with tracking number `number`, through the API.
    async fn ship(&self, id: &str, carrier: &str, number: &str) {
        let body = json!({"id": id, "carrier": carrier, "tracking_number": number, "items": []});
        let event = self.env.api_event(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-1001/shipments",
            &[("orderId", "SO-1001")],
            Some(&body.to_string()),
            Some(&self.env.api_key),
        );
        let (status, out) = self.call(event).await;
        assert_eq!(status, 201, "{out}");
    }

    /// `body` posted to `merchant`'s `provider` URL, signed with `secret` as the provider signs
    /// (none: unsigned).
    fn delivery(
        &self,
        provider: Provider,
        merchant: &str,
        body: &str,
        secret: Option<&str>,
    ) -> Value {
        let path = format!("/v1/connectors/{}/{merchant}", provider.name());
        let mut event = self.env.api_event(
            provider.route(),
            &path,
            &[("merchantId", merchant)],
            Some(body),
            None,
        );
        let headers = &mut event["headers"];
        match (provider, secret) {
            (Provider::EasyPost, Some(s)) => {
                headers["x-hmac-signature"] = sign_easypost(s, body.as_bytes()).into();
            }
            (Provider::AfterShip, Some(s)) => {
                headers["aftership-hmac-sha256"] =
                    sign_base64_hmac(s.as_bytes(), body.as_bytes()).into();
                headers["as-webhook-version"] = "2025-01".into();
            }
            (Provider::Shippo, Some(s)) => {
                headers["shippo-auth-signature"] =
                    sign(s.as_bytes(), 1_795_168_800, body.as_bytes()).into();
            }
            (_, None) => {}
        }
        if provider == Provider::Shippo {
            with_query(
                &mut event,
                &format!("token={}", Env::shippo_token_for(&self.env.tag)),
            );
        }
        event
    }

    /// A correctly signed delivery to this merchant: (status, body).
    async fn post(&self, provider: Provider, body: &Value) -> (i64, Value) {
        let secret = Env::tracking_secret_for(provider.name(), &self.env.tag);
        let event = self.delivery(
            provider,
            self.env.merchant.id.as_str(),
            &body.to_string(),
            Some(&secret),
        );
        self.call(event).await
    }

    async fn emails(&self, kind: &str) -> usize {
        self.env
            .emails_to(&self.env.customer_email())
            .await
            .iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .count()
    }

    /// The stored shipment's status (its state as stored, not what the answer said).
    async fn status_of(&self, shipment: &str) -> Option<String> {
        let items = self
            .env
            .items_in(&format!("S#{shipment}"), "SHIPMENT")
            .await;
        let stored: aftercare::domain::shipment::ShipmentRecord =
            serde_dynamo::from_item(items.into_iter().next()?).unwrap();
        stored.state().status().map(|s| s.as_str().to_owned())
    }
}

fn fixture(path: &str) -> Value {
    serde_json::from_str(&fixture_file(path)).unwrap()
}

#[tokio::test]
async fn easypost_moves_the_shipment_through_its_milestones_once_whatever_is_redelivered() {
    let w = World::new().await;
    w.ship("SH-EP", "FedEx Ground", "EZ4000000004").await;
    let event = fixture("easypost/tracker-updated.json");
    let (status, out) = w.post(Provider::EasyPost, &event).await;
    assert_eq!(
        (status, out["result"].as_str(), out["status"].as_str()),
        (200, Some("applied"), Some("delivered")),
        "{out}"
    );
    assert_eq!(out["shipment_id"], "SH-EP");
    assert_eq!(out["event_id"], "evt_aftercare_0001");
    assert_eq!(w.status_of("SH-EP").await.as_deref(), Some("delivered"));
    let history = w.env.items_in("S#SH-EP", "CP#").await;
    assert_eq!(history.len(), 7, "each tracking detail is a checkpoint");
    // Shopify-style redelivery (same event), a new event with the same history, and the history
    // shuffled: nothing more is recorded or sent.
    let (_, dup) = w.post(Provider::EasyPost, &event).await;
    assert_eq!(dup["result"], "duplicate", "{dup}");
    let mut again = event.clone();
    again["id"] = "evt_aftercare_0002".into();
    let details = again["result"]["tracking_details"].as_array_mut().unwrap();
    details.reverse();
    let (_, unchanged) = w.post(Provider::EasyPost, &again).await;
    assert_eq!(unchanged["result"], "unchanged", "{unchanged}");
    assert_eq!(w.env.items_in("S#SH-EP", "CP#").await.len(), 7);
    for kind in [
        "shipment_shipped",
        "shipment_out_for_delivery",
        "shipment_delivered",
    ] {
        assert_eq!(w.emails(kind).await, 1, "{kind}");
    }
    // The delivery scheduled the order's journey.
    assert!(!w.env.items_in("O#SO-1001", "FOLLOWUP#").await.is_empty());
}

#[tokio::test]
async fn bad_signatures_and_unknown_numbers_store_nothing() {
    let w = World::new().await;
    w.ship("SH-1", "USPS", "9405511202575421535949").await;
    let merchant = w.env.merchant.id.as_str().to_owned();
    let body = fixture("aftership/tracking-update.json").to_string();
    let before = w.env.items().await.len();
    for provider in Provider::ALL {
        let wrong = w.delivery(provider, &merchant, &body, Some("not-the-secret-at-all"));
        let unsigned = w.delivery(provider, &merchant, &body, None);
        for event in [wrong, unsigned] {
            let (status, out) = w.call(event).await;
            assert_eq!(status, 401, "{provider:?}: {out}");
            assert_eq!(out["error"]["code"], "invalid_signature", "{out}");
        }
    }
    // Shippo's URL token is checked as well as its signature.
    let secret = Env::tracking_secret_for("shippo", &w.env.tag);
    let mut event = w.delivery(Provider::Shippo, &merchant, &body, Some(&secret));
    with_query(&mut event, "token=shippo-token-guessed-0123456789");
    assert_eq!(w.call(event).await.0, 401);
    assert_eq!(w.env.items().await.len(), before, "nothing stored");

    // An authentic update for a parcel no shipment has: acknowledged, nothing stored.
    let mut unknown = fixture("aftership/tracking-update.json");
    unknown["msg"]["tracking_number"] = "1Z999AA10123456784".into();
    let (status, out) = w.post(Provider::AfterShip, &unknown).await;
    assert_eq!(
        (status, out["result"].as_str(), out["reason"].as_str()),
        (200, Some("ignored"), Some("unknown_tracking_number")),
        "{out}"
    );
    assert_eq!(w.env.items().await.len(), before, "nothing stored");
    // An event that carries no tracking, and a payload that cannot be read: acknowledged.
    let (status, out) = w
        .post(
            Provider::AfterShip,
            &json!({"event": "tracking_pending_time", "event_id": "x"}),
        )
        .await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("ignored")),
        "{out}"
    );
    let mut broken = fixture("aftership/tracking-update.json");
    broken["msg"]["checkpoints"][0]["checkpoint_time"] = "noon".into();
    let (status, out) = w.post(Provider::AfterShip, &broken).await;
    assert_eq!(
        (status, out["result"].as_str()),
        (200, Some("refused")),
        "{out}"
    );
    assert_eq!(
        out["error"]["field"], "msg.checkpoints[0].checkpoint_time",
        "{out}"
    );
    assert_eq!(w.env.items().await.len(), before, "nothing stored");
}

#[tokio::test]
async fn another_merchants_tracking_number_changes_nothing() {
    let w = World::new().await;
    w.ship("SH-A", "USPS", "9405511202575421535949").await;
    let other = w.env.add_merchant("b").await;
    let tag_b = format!("{}-b", w.env.tag);
    let body = fixture("aftership/tracking-update.json").to_string();
    let secret_b = Env::tracking_secret_for("aftership", &tag_b);
    let event = w.delivery(
        Provider::AfterShip,
        other.merchant.id.as_str(),
        &body,
        Some(&secret_b),
    );
    let (status, out) = w.call(event).await;
    assert_eq!(
        (status, out["reason"].as_str()),
        (200, Some("unknown_tracking_number")),
        "B's URL finds no parcel of A's: {out}"
    );
    // A's secret on B's URL is refused outright.
    let secret_a = Env::tracking_secret_for("aftership", &w.env.tag);
    let event = w.delivery(
        Provider::AfterShip,
        other.merchant.id.as_str(),
        &body,
        Some(&secret_a),
    );
    assert_eq!(w.call(event).await.0, 401);
    assert!(w.env.items_in("S#SH-A", "CP#").await.is_empty());
    assert_eq!(w.status_of("SH-A").await, None);
}

#[tokio::test]
async fn aftership_and_shippo_samples_end_delivered_with_each_email_once() {
    let w = World::new().await;
    w.ship("SH-AS", "USPS", "9405511202575421535949").await;
    w.ship("SH-SH", "USPS Priority Mail", "9205590164917312751089")
        .await;
    let af = fixture("aftership/tracking-update.json");
    let (_, out) = w.post(Provider::AfterShip, &af).await;
    assert_eq!(
        (out["result"].as_str(), out["status"].as_str()),
        (Some("applied"), Some("delivered")),
        "{out}"
    );
    let (_, dup) = w.post(Provider::AfterShip, &af).await;
    assert_eq!(dup["result"], "duplicate");
    let sh = fixture("shippo/track-updated.json");
    let (_, out) = w.post(Provider::Shippo, &sh).await;
    assert_eq!(
        (out["result"].as_str(), out["status"].as_str()),
        (Some("applied"), Some("delivered")),
        "{out}"
    );
    assert_eq!(
        out["event_id"],
        "9205590164917312751089-8c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f"
    );
    let (_, dup) = w.post(Provider::Shippo, &sh).await;
    assert_eq!(dup["result"], "duplicate");
    assert_eq!(w.emails("shipment_delivered").await, 2, "one per shipment");
    assert_eq!(w.emails("shipment_shipped").await, 2);
}

#[tokio::test]
async fn a_revised_delivery_date_is_emailed_once_per_revision() {
    let w = World::new().await;
    w.ship_promised("SH-D", "2026-11-23").await;
    let (_, out) = w
        .post(Provider::AfterShip, &edd_revise("edd-1", "2026-11-25"))
        .await;
    assert_eq!(
        (
            out["expected_date"]["result"].as_str(),
            out["expected_date"]["email"].as_str()
        ),
        (Some("revised"), Some("sent")),
        "{out}"
    );
    // Redelivered, and the same estimate in a later event: still one email.
    w.post(Provider::AfterShip, &edd_revise("edd-1", "2026-11-25"))
        .await;
    let (_, same) = w
        .post(Provider::AfterShip, &edd_revise("edd-2", "2026-11-25"))
        .await;
    assert_eq!(same["expected_date"]["result"], "unchanged", "{same}");
    assert_eq!(w.emails("shipment_new_date").await, 1);
    let (_, later) = w
        .post(Provider::AfterShip, &edd_revise("edd-3", "2026-11-27"))
        .await;
    assert_eq!(later["expected_date"]["result"], "revised", "{later}");
    assert_eq!(w.emails("shipment_new_date").await, 2);
    let email = w
        .env
        .emails_to(&w.env.customer_email())
        .await
        .into_iter()
        .find(|e| e.header("X-Aftercare-Kind").as_deref() == Some("shipment_new_date"))
        .unwrap();
    let text = email.part("text/plain").unwrap_or_default();
    assert!(
        text.contains("25 November 2026"),
        "the first revision's email names its date: {text}"
    );
    // Late detection follows the latest date: the late check moved to the day after the 27th.
    let due = w.env.items_in("S#SH-D", "DUE#late").await;
    let due: Value = serde_dynamo::from_item(due.into_iter().next().unwrap()).unwrap();
    assert_eq!(due["due_at"], "2026-11-27T23:00:00Z", "{due}");
}

/// Posts, for each (provider status, expected status), an update with that one status for a
/// parcel of its own, and checks where the shipment ends.
async fn every_status(
    provider: Provider,
    table: &[(&str, Option<&str>)],
    payload: impl Fn(&str, &str) -> Value,
) {
    let w = World::new().await;
    for (i, (theirs, ours)) in table.iter().enumerate() {
        let number = format!("TRK{i:04}XYZ");
        let shipment = format!("SH-{i}");
        w.ship(&shipment, "Carrier", &number).await;
        let (status, out) = w.post(provider, &payload(theirs, &number)).await;
        assert_eq!(status, 200, "{theirs}: {out}");
        assert_eq!(
            w.status_of(&shipment).await.as_deref(),
            *ours,
            "{provider:?} {theirs}: {out}"
        );
    }
}

#[tokio::test]
async fn every_easypost_status_ends_where_the_mapping_table_says() {
    let table = [
        ("pre_transit", Some("info_received")),
        ("in_transit", Some("in_transit")),
        ("out_for_delivery", Some("out_for_delivery")),
        ("available_for_pickup", Some("available_for_pickup")),
        ("delivered", Some("delivered")),
        ("return_to_sender", Some("returned_to_sender")),
        ("failure", Some("exception")),
        ("cancelled", Some("exception")),
        ("canceled", Some("exception")),
        ("error", None),
        ("unknown", None),
    ];
    every_status(Provider::EasyPost, &table, |status, number| {
        let mut e = fixture("easypost/tracker-updated.json");
        e["id"] = format!("evt_{number}").into();
        e["result"]["tracking_code"] = number.into();
        e["result"]["carrier"] = "Carrier".into();
        e["result"]["status"] = status.into();
        let detail = e["result"]["tracking_details"][0].clone();
        e["result"]["tracking_details"] = json!([detail]);
        e["result"]["tracking_details"][0]["status"] = status.into();
        e
    })
    .await;
}

#[tokio::test]
async fn every_aftership_tag_ends_where_the_mapping_table_says() {
    let table = [
        ("Pending", None),
        ("InfoReceived", Some("info_received")),
        ("InTransit", Some("in_transit")),
        ("OutForDelivery", Some("out_for_delivery")),
        ("AttemptFail", Some("attempt_failed")),
        ("Delivered", Some("delivered")),
        ("AvailableForPickup", Some("available_for_pickup")),
        ("Exception", Some("exception")),
        ("Expired", None),
    ];
    every_status(Provider::AfterShip, &table, |tag, number| {
        let mut b = fixture("aftership/tracking-update.json");
        b["event_id"] = format!("ev-{number}").into();
        b["msg"]["tracking_number"] = number.into();
        b["msg"]["tag"] = tag.into();
        b["msg"]["subtag"] = format!("{tag}_001").into();
        let cp = b["msg"]["checkpoints"][0].clone();
        b["msg"]["checkpoints"] = json!([cp]);
        b["msg"]["checkpoints"][0]["tag"] = tag.into();
        b["msg"]["checkpoints"][0]["subtag"] = format!("{tag}_001").into();
        b
    })
    .await;
}

#[tokio::test]
async fn every_shippo_status_ends_where_the_mapping_table_says() {
    let table = [
        ("PRE_TRANSIT", Some("info_received")),
        ("TRANSIT", Some("in_transit")),
        ("DELIVERED", Some("delivered")),
        ("RETURNED", Some("returned_to_sender")),
        ("FAILURE", Some("exception")),
        ("UNKNOWN", None),
    ];
    every_status(Provider::Shippo, &table, |status, number| {
        let mut b = fixture("shippo/track-updated.json");
        b["data"]["tracking_number"] = number.into();
        let mut entry = b["data"]["tracking_status"].clone();
        entry["status"] = status.into();
        entry["object_id"] = format!("obj-{number}").into();
        b["data"]["tracking_history"] = json!([entry.clone()]);
        b["data"]["tracking_status"] = entry;
        b
    })
    .await;
}

/// The provider's sample for tracking number `number`, its history reversed (`shuffled`) and
/// under event id `event`.
fn sample(provider: Provider, number: &str, event: &str, shuffled: bool) -> Value {
    let (path, list): (&str, &[&str]) = match provider {
        Provider::EasyPost => (
            "easypost/tracker-updated.json",
            &["result", "tracking_details"],
        ),
        Provider::AfterShip => ("aftership/tracking-update.json", &["msg", "checkpoints"]),
        Provider::Shippo => ("shippo/track-updated.json", &["data", "tracking_history"]),
    };
    let mut body = fixture(path);
    match provider {
        Provider::EasyPost => {
            body["id"] = event.into();
            body["result"]["tracking_code"] = number.into();
        }
        Provider::AfterShip => {
            body["event_id"] = event.into();
            body["msg"]["tracking_number"] = number.into();
        }
        Provider::Shippo => {
            body["data"]["tracking_number"] = number.into();
            body["data"]["tracking_status"]["object_id"] = event.into();
        }
    }
    if shuffled {
        body[list[0]][list[1]].as_array_mut().unwrap().reverse();
    }
    body
}

/// A shipment's checkpoints as (status, time), sorted.
async fn history(w: &World, shipment: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = w
        .env
        .items_in(&format!("S#{shipment}"), "CP#")
        .await
        .iter()
        .map(|c| {
            (
                aftercare_tests::s(c, "status"),
                aftercare_tests::s(c, "occurred_at"),
            )
        })
        .collect();
    h.sort();
    h
}

#[tokio::test]
async fn every_provider_ends_in_the_same_state_whatever_the_order_and_ignores_unknown_parcels() {
    let w = World::new().await;
    for (i, provider) in Provider::ALL.into_iter().enumerate() {
        let (in_order, shuffled) = (format!("SH-O{i}"), format!("SH-S{i}"));
        let (n1, n2) = (format!("ORD{i}0001"), format!("SHF{i}0001"));
        w.ship(&in_order, "Carrier", &n1).await;
        w.ship(&shuffled, "Carrier", &n2).await;
        let (_, a) = w
            .post(provider, &sample(provider, &n1, &format!("e-{i}-1"), false))
            .await;
        let (_, b) = w
            .post(provider, &sample(provider, &n2, &format!("e-{i}-2"), true))
            .await;
        assert_eq!(a["result"], "applied", "{provider:?}: {a}");
        assert_eq!(b["result"], "applied", "{provider:?}: {b}");
        assert_eq!(
            w.status_of(&in_order).await,
            w.status_of(&shuffled).await,
            "{provider:?}"
        );
        assert_eq!(w.status_of(&shuffled).await.as_deref(), Some("delivered"));
        let recorded = history(&w, &in_order).await;
        assert!(
            recorded.len() >= 2 && recorded.iter().all(|(s, t)| !s.is_empty() && !t.is_empty()),
            "{provider:?}: {recorded:?}"
        );
        assert_eq!(recorded, history(&w, &shuffled).await, "{provider:?}");
        // A parcel no shipment has: answered 200, nothing stored.
        let before = w.env.items().await.len();
        let (status, out) = w
            .post(
                provider,
                &sample(provider, "NOSUCH0001", &format!("e-{i}-3"), false),
            )
            .await;
        assert_eq!(
            (status, out["reason"].as_str()),
            (200, Some("unknown_tracking_number")),
            "{provider:?}: {out}"
        );
        assert_eq!(
            w.env.items().await.len(),
            before,
            "{provider:?}: nothing stored"
        );
    }
    // One shipped and one delivered email per shipment, whatever the order.
    assert_eq!(w.emails("shipment_delivered").await, 6);
}

/// `shipments.date_revision`, a race made at the wire: another update revised the expected date
/// between this update's read and its write. The stale revision is not written over it, and no
/// "new date" email goes for it.
#[tokio::test]
async fn a_date_revised_by_another_update_meanwhile_is_not_overwritten_by_a_stale_one() {
    aftercare_tests::mutate::update_before(
        "shipments.date_revision",
        "SET expected_date = :d, date_revision = :r",
        json!({}),
        json!({":d": {"S": "2026-11-28"}, ":r": {"N": "1"}}),
    );
    let w = World::new().await;
    w.ship_promised("SH-R", "2026-11-23").await;
    let (_, out) = w
        .post(Provider::AfterShip, &edd_revise("edd-race", "2026-11-25"))
        .await;
    assert_ne!(out["expected_date"]["result"], "revised", "{out}");
    let shipment = w.env.items_in("S#SH-R", "SHIPMENT").await.pop().unwrap();
    assert_eq!(aftercare_tests::s(&shipment, "expected_date"), "2026-11-28");
    assert_eq!(w.emails("shipment_new_date").await, 0);
}
