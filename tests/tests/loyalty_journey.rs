//! The loyalty programme over time, over the real SDK against moto and the real handlers on a
//! virtual clock: delivery moves the return window of the order's points and of the referrer's
//! reward; the referrer hears once, when the reward is final (never if the order comes back);
//! tiers multiply the next earn and show in the emails; the next marketing email notes newly
//! available points once; points expire after the inactivity period with one notice 14 days
//! before, and a newer order moves both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::loyalty::{Tier, TierBasis};
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, SentEmail, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;
use survey_sender::SweepReport;

// Every handler call and sweep here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn key() -> SigningKey {
    SigningKey::new(&[7u8; 32]).unwrap()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    /// One App serves every function (they share the crate's App).
    app: aftercare::app::App,
    links: survey_sender::Links,
}

impl World {
    async fn new(tune: impl FnOnce(&mut aftercare::domain::Merchant)) -> Self {
        let mut env = Env::new().await;
        tune(&mut env.merchant);
        env.save_merchant().await;
        let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key());
        Self {
            links: survey_sender::Links::new(BASE, key()),
            env,
            clock,
            app,
        }
    }

    fn customer(&self, id: &str, order_id: &str, placed_at: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = order_id.into();
        o["placed_at"] = placed_at.into();
        o["customer"]["id"] = id.into();
        o["customer"]["email"] = self.email(id).into();
        o
    }

    fn email(&self, customer: &str) -> String {
        self.env
            .customer_email()
            .replace("ann.", &format!("{customer}."))
    }

    async fn place(&self, order: &Value) -> Value {
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(order, Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
        body(&resp)
    }

    async fn shipment_call(&self, route: &str, path: &str, params: &[(&str, &str)], b: Value) {
        let event = self.env.api_event(
            route,
            path,
            params,
            Some(&b.to_string()),
            Some(&self.env.api_key),
        );
        let resp = shipment_update::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        assert!(
            resp["statusCode"].as_i64().unwrap() < 300,
            "{route}: {resp}"
        );
    }

    /// Ships the whole order and delivers it at `at` (the clock moves there).
    async fn deliver(&self, order: &Value, at: &str) {
        self.clock.set(t(at));
        let o = order["id"].as_str().unwrap();
        let sh = format!("SH-{o}");
        let items: Vec<Value> = order["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| json!({"sku": i["sku"], "quantity": i["quantity"]}))
            .collect();
        self.shipment_call(
            shipment_update::ROUTE_CREATE,
            &format!("/v1/orders/{o}/shipments"),
            &[("orderId", o)],
            json!({"id": sh, "carrier": "DHL", "tracking_number": format!("JD{o}"), "items": items}),
        )
        .await;
        self.shipment_call(
            shipment_update::ROUTE_CHECKPOINT,
            &format!("/v1/shipments/{sh}/events"),
            &[("shipmentId", &sh)],
            json!({"status": "delivered", "occurred_at": at}),
        )
        .await;
    }

    async fn sweep_at(&self, at: &str) -> SweepReport {
        self.clock.set(t(at));
        survey_sender::sweep(&self.app, &self.links, deadline())
            .await
            .unwrap()
    }

    async fn ledger(&self, customer: &str, source: &str) -> Vec<aftercare_tests::Item> {
        self.env
            .items_in(&format!("C#{customer}"), &format!("LEDGER#{source}"))
            .await
    }

    async fn emails(&self, customer: &str, kind: &str) -> Vec<SentEmail> {
        self.env
            .emails_to(&self.email(customer))
            .await
            .into_iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .collect()
    }

    async fn balance(&self, customer: &str) -> Value {
        let event = self.env.api_event(
            order_placed::loyalty::ROUTE_GET,
            &format!("/v1/customers/{customer}/loyalty"),
            &[("customerId", customer)],
            None,
            Some(&self.env.api_key),
        );
        let resp = order_placed::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        assert_eq!(resp["statusCode"], 200, "{resp}");
        body(&resp)
    }
}

fn text(email: &SentEmail) -> String {
    email.part("text/plain").unwrap()
}

#[tokio::test]
async fn delivery_moves_the_window_and_the_referrer_hears_once_when_the_reward_is_final() {
    let w = World::new(|_| {}).await;
    let ann = w
        .place(&w.customer("ann", "SO-1001", "2026-11-20T09:30:00Z"))
        .await;
    let code = ann["loyalty"]["referral_code"].as_str().unwrap().to_owned();
    let mut order = w.customer("bob", "SO-2001", "2026-11-20T09:30:00Z");
    order["referral_code"] = code.to_lowercase().into();
    let bob = w.place(&order).await;
    assert_eq!(bob["loyalty"]["referral"]["status"], "recorded", "{bob}");
    let reward = w.ledger("ann", "referral:SO-2001").await;
    assert_eq!(s(&reward[0], "available_at"), "2026-12-20T09:30:00Z");

    // Delivered five days later: both windows now close 30 days after delivery.
    w.deliver(&order, "2026-11-25T12:00:00Z").await;
    for (customer, source) in [("ann", "referral:SO-2001"), ("bob", "order:SO-2001")] {
        let entry = w.ledger(customer, source).await;
        assert_eq!(
            s(&entry[0], "available_at"),
            "2026-12-25T12:00:00Z",
            "{source}"
        );
    }
    // A redelivered delivery scan changes nothing.
    w.deliver(&order, "2026-11-25T12:00:00Z").await;

    // The notice comes due at the old instant, finds the reward pending and moves on with it.
    let r = w.sweep_at("2026-12-20T10:00:00Z").await;
    assert_eq!(
        (r.loyalty.due, r.loyalty.moved, r.loyalty.sent),
        (1, 1, 0),
        "{r:?}"
    );
    assert!(w.emails("ann", "loyalty_referral_reward").await.is_empty());
    let b = w.balance("ann").await;
    assert_eq!(b["balance"]["pending"], 500, "{b}");

    // Final: two overlapping sweeps tell Ann once.
    w.clock.set(t("2026-12-25T12:01:00Z"));
    let (a, b) = tokio::join!(
        survey_sender::sweep(&w.app, &w.links, deadline()),
        survey_sender::sweep(&w.app, &w.links, deadline()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.loyalty.sent + b.loyalty.sent, 1, "{a:?} {b:?}");
    let told = w.emails("ann", "loyalty_referral_reward").await;
    assert_eq!(told.len(), 1);
    let body = text(&told[0]);
    assert!(body.contains("500 points"), "{body}");
    // Her own order's 254 points and the 500 are available by now.
    assert!(body.contains("Your balance: 754 points"), "{body}");
    let r = w.sweep_at("2026-12-25T13:00:00Z").await;
    assert_eq!(r.loyalty.due, 0);
}

#[tokio::test]
async fn a_referees_order_refunded_in_full_takes_the_reward_back_and_nobody_is_told() {
    let w = World::new(|_| {}).await;
    let ann = w
        .place(&w.customer("ann", "SO-1001", "2026-11-20T09:30:00Z"))
        .await;
    let mut order = w.customer("bob", "SO-2001", "2026-11-20T09:30:00Z");
    order["referral_code"] = ann["loyalty"]["referral_code"].clone();
    w.place(&order).await;

    let refund = |id: &str, amount: i64| {
        let b = json!({
            "id": format!("ev-{id}"), "type": "refund", "customer": order["customer"],
            "refund": {"id": id, "amount": amount, "currency": order["currency"], "order_id": "SO-2001"}
        })
        .to_string();
        w.env.api_event(
            billing_alert::ROUTE_EVENTS,
            "/v1/billing-events",
            &[],
            Some(&b),
            Some(&w.env.api_key),
        )
    };
    let deliver = |event: Value| async {
        let links = billing_alert::Links::new(BASE, key());
        let resp = billing_alert::handle(&w.app, &links, event, "t", deadline())
            .await
            .unwrap();
        body(&resp)
    };
    // A partial refund keeps the reward; the rest of the order coming back takes it.
    w.clock.set(t("2026-11-28T10:00:00Z"));
    let total = order["total"].as_i64().unwrap();
    assert_eq!(
        deliver(refund("re_1", total / 2)).await["result"],
        "reversed"
    );
    assert_eq!(w.balance("ann").await["balance"]["pending"], 754);
    let second = refund("re_2", total);
    assert_eq!(deliver(second.clone()).await["result"], "reversed");
    assert_eq!(deliver(second).await["result"], "duplicate");
    let b = w.balance("ann").await;
    assert_eq!(b["balance"]["pending"], 254, "{b}");
    assert_eq!(w.ledger("ann", "refund:re_2:referral").await.len(), 1);

    let r = w.sweep_at("2026-12-20T10:00:00Z").await;
    assert_eq!((r.loyalty.closed, r.loyalty.sent), (1, 0), "{r:?}");
    assert!(w.emails("ann", "loyalty_referral_reward").await.is_empty());
}

#[tokio::test]
async fn tiers_multiply_the_next_earn_and_the_next_marketing_email_notes_new_points_once() {
    let w = World::new(|m| {
        m.settings.loyalty.tier_basis = TierBasis::Points;
        m.settings.loyalty.tiers = vec![
            Tier {
                name: "Silver".into(),
                threshold: 0,
                multiplier_percent: 100,
            },
            Tier {
                name: "Gold".into(),
                threshold: 200,
                multiplier_percent: 200,
            },
        ];
    })
    .await;
    let first = w
        .place(&w.customer("ann", "SO-1001", "2026-11-20T09:30:00Z"))
        .await;
    assert_eq!(first["loyalty"]["points_earned"], 254);
    assert_eq!(first["loyalty"]["tier"], "Silver");

    // Her 254 points this year make her Gold: the next order earns double.
    w.clock.set(t("2026-12-22T10:00:00Z"));
    let order = w.customer("ann", "SO-1002", "2026-12-22T09:30:00Z");
    let second = w.place(&order).await;
    assert_eq!(second["loyalty"]["points_earned"], 508, "{second}");
    assert_eq!(second["loyalty"]["tier"], "Gold");
    let thanks = w.emails("ann", "order_thanks").await;
    let last = thanks.iter().find(|e| text(e).contains("SO-1002")).unwrap();
    assert!(text(last).contains("You are a Gold member."));
    let b = w.balance("ann").await;
    assert_eq!(b["tier"]["name"], "Gold", "{b}");
    assert_eq!(b["tier"]["qualifying"], 254 + 508);
    assert_eq!(b["tier"]["next"], Value::Null);
    let entry = w.ledger("ann", "order:SO-1002").await;
    assert_eq!(s(&entry[0], "reason"), "Gold tier: 254 points ×2");

    // The first order's points became available on 20 December: the next marketing email (the
    // second order's usage tips) says so; the one after it does not repeat it.
    w.deliver(&order, "2026-12-23T10:00:00Z").await;
    let r = w.sweep_at("2026-12-26T11:00:00Z").await;
    assert_eq!(r.sent, 1, "{r:?}");
    let tips = w.emails("ann", "usage_tips").await;
    let body = text(&tips[0]);
    assert!(
        body.contains("254 of your points are now available."),
        "{body}"
    );
    assert!(body.contains("You are a Gold member."), "{body}");
    w.sweep_at("2026-12-30T11:00:00Z").await;
    let survey = w.emails("ann", "feedback_survey").await;
    assert_eq!(survey.len(), 1);
    assert!(!text(&survey[0]).contains("now available"));
}

#[tokio::test]
async fn points_expire_after_inactivity_with_one_notice_and_a_newer_order_moves_both() {
    let w = World::new(|m| m.settings.loyalty.expire_after_months = 3).await;
    w.place(&w.customer("ann", "SO-1001", "2026-11-20T09:30:00Z"))
        .await;
    w.place(&w.customer("bob", "SO-2001", "2026-11-20T09:30:00Z"))
        .await;
    // Bob orders again in January: his clock starts over.
    w.clock.set(t("2027-01-15T10:00:00Z"));
    w.place(&w.customer("bob", "SO-2002", "2027-01-15T09:30:00Z"))
        .await;

    // 14 days before 20 February: Ann is told once; Bob's notice is not due.
    let r = w.sweep_at("2027-02-06T10:00:00Z").await;
    assert_eq!((r.loyalty.due, r.loyalty.sent), (1, 1), "{r:?}");
    let r = w.sweep_at("2027-02-06T11:00:00Z").await;
    assert_eq!(r.loyalty.due, 0, "{r:?}");
    let notice = w.emails("ann", "loyalty_points_expiring").await;
    assert_eq!(notice.len(), 1);
    let body = text(&notice[0]);
    assert!(body.contains("Your 254 loyalty points"), "{body}");
    assert!(body.contains("20 February 2027"), "{body}");
    assert!(w.emails("bob", "loyalty_points_expiring").await.is_empty());

    // On the day they go, once.
    let r = w.sweep_at("2027-02-20T10:00:00Z").await;
    assert_eq!(r.loyalty.expired, 1, "{r:?}");
    let r = w.sweep_at("2027-02-20T11:00:00Z").await;
    assert_eq!(r.loyalty.due, 0);
    let b = w.balance("ann").await;
    assert_eq!(b["balance"]["available"], 0, "{b}");
    let expiry = w.env.items_in("C#ann", "LEDGER#expire:").await;
    assert_eq!(expiry.len(), 1);
    assert_eq!(aftercare_tests::num(&expiry[0], "points"), -254);
    // Bob still has his: his notice is due on 1 April, his expiry on 15 April.
    let b = w.balance("bob").await;
    assert_eq!(b["balance"]["available"], 508, "{b}");
    let r = w.sweep_at("2027-04-01T10:00:00Z").await;
    assert_eq!(r.loyalty.sent, 1, "{r:?}");
}

/// `loyalty.rebase_exists`. Delivery moves a pending earn's window only while the earn exists:
/// when another writer deletes it (an erasure) between the ledger read and the write, no stub
/// ledger entry (a window without points) is left behind.
#[tokio::test]
async fn an_earn_deleted_before_delivery_moves_its_window_leaves_no_stub_entry() {
    aftercare_tests::mutate::delete_before("loyalty.rebase_exists");
    let w = World::new(|_| {}).await;
    let order = w.customer("cara", "SO-9001", "2026-11-20T09:00:00Z");
    w.place(&order).await;
    assert_eq!(w.ledger("cara", "order:SO-9001").await.len(), 1);
    w.deliver(&order, "2026-11-25T10:00:00Z").await;
    assert_eq!(
        w.ledger("cara", "order:SO-9001").await,
        Vec::<aftercare_tests::Item>::new()
    );
}
