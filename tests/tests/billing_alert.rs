//! billing-alert over the real SDK against moto: Stripe's signature scheme (valid, wrong secret,
//! tampered body, expired, several `v1`, missing header; nothing stored on failure), dunning
//! emails exactly once under 100× replay and concurrent delivery, out-of-order events, the cadence
//! on a virtual clock, recovery, the merchant's alert, refund reversals and the recovery report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::Clock;
use aftercare::clock::ManualClock;
use aftercare::signature;
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, num, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

// Every handler call and sweep here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: billing_alert::App,
    links: billing_alert::Links,
}

impl World {
    async fn new() -> Self {
        Self::with(Env::new().await)
    }

    /// The world over `env` (its merchant as the test saved it).
    fn with(env: Env) -> Self {
        let key = SigningKey::new(&[9u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-02T10:00:00Z", &key);
        Self {
            links: billing_alert::Links::new(BASE, key),
            env,
            clock,
            app,
        }
    }

    fn invoice(&self, email: &str, id: &str) -> Value {
        json!({
            "id": id, "object": "invoice", "customer": "cus_1", "customer_email": email,
            "customer_name": "Ann Example", "amount_due": 1990, "amount_paid": 1990, "currency": "eur",
            "subscription": "sub_1", "hosted_invoice_url": format!("https://invoice.stripe.test/{id}"),
            "lines": {"data": [{"description": "Coffee club"}]}
        })
    }

    fn stripe_body(&self, event_id: &str, kind: &str, object: Value) -> String {
        json!({"id": event_id, "object": "event", "type": kind, "created": self.clock.now().as_second(),
            "data": {"object": object}})
        .to_string()
    }

    fn stripe_event(&self, body: &str, header: Option<String>) -> Value {
        let m = self.env.merchant.id.to_string();
        let mut event = self.env.api_event(
            billing_alert::ROUTE_STRIPE,
            &format!("/v1/webhooks/stripe/{m}"),
            &[("merchantId", &m)],
            Some(body),
            None,
        );
        if let Some(h) = header {
            event["headers"]["stripe-signature"] = h.into();
        }
        event
    }

    fn signed(&self, body: &str) -> Value {
        let header = signature::sign(
            self.env.webhook_secret().as_bytes(),
            self.clock.now().as_second(),
            body.as_bytes(),
        );
        self.stripe_event(body, Some(header))
    }

    async fn deliver(&self, event: Value) -> Value {
        billing_alert::handle(&self.app, &self.links, event, "t", deadline())
            .await
            .unwrap()
    }

    async fn sweep_at(&self, at: &str) -> Value {
        self.clock.set(t(at));
        let event = json!({"version": "0", "id": "sched", "detail-type": "Scheduled Event",
            "source": "aws.events", "detail": {}});
        billing_alert::handle(&self.app, &self.links, event, "t", deadline())
            .await
            .unwrap()
    }

    async fn kinds_to(&self, email: &str) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .env
            .emails_to(email)
            .await
            .iter()
            .map(|m| {
                [
                    "payment_failed",
                    "payment_final_notice",
                    "payment_recovered",
                ]
                .into_iter()
                .find(|k| m.raw.contains(&format!("#{k}#")))
                .unwrap_or("other")
                .to_owned()
            })
            .collect();
        kinds.sort();
        kinds
    }
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn stripe_signatures_are_checked_as_stripe_documents_before_anything_is_stored() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let body_text = w.stripe_body(
        "evt_sig",
        "invoice.payment_failed",
        w.invoice(&ann, "in_sig"),
    );
    let now = w.clock.now().as_second();
    let secret = w.env.webhook_secret();
    let good = signature::sign(secret.as_bytes(), now, body_text.as_bytes());
    let wrong = signature::sign(b"whsec_someone_else", now, body_text.as_bytes());
    let expired = signature::sign(secret.as_bytes(), now - 301, body_text.as_bytes());
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    let cases: Vec<(Option<String>, String, u16, &str)> = vec![
        (None, body_text.clone(), 401, "invalid_signature"),
        (
            Some(wrong.clone()),
            body_text.clone(),
            401,
            "invalid_signature",
        ),
        (
            Some(good.clone()),
            body_text.replace("1990", "1"),
            401,
            "invalid_signature",
        ),
        (Some(expired), body_text.clone(), 401, "stale_signature"),
        (
            Some("t=abc,v1=zz".into()),
            body_text.clone(),
            401,
            "invalid_signature",
        ),
    ];
    for (header, body, status, code) in cases {
        let resp = w.deliver(w.stripe_event(&body, header.clone())).await;
        assert_eq!(resp["statusCode"], status, "{header:?}");
        assert_eq!(body_of(&resp)["error"]["code"], code);
        assert_eq!(body_of(&resp)["error"]["field"], "Stripe-Signature");
    }
    assert!(
        w.env.items_with_sk("INVOICE").await.is_empty(),
        "nothing stored"
    );
    assert!(w.env.items_with_sk("BEVT").await.is_empty());
    assert!(w.env.emails_to(&ann).await.is_empty());
    // Several v1 (a secret rotation): one matching is enough.
    let rotated = format!("t={now},v1={},v1={v1}", wrong.split_once(",v1=").unwrap().1);
    let resp = w.deliver(w.stripe_event(&body_text, Some(rotated))).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(body(&resp)["result"], "dunning_started");
    assert_eq!(w.kinds_to(&ann).await, vec!["payment_failed"]);
}

fn body_of(resp: &Value) -> Value {
    body(resp)
}

#[tokio::test]
async fn each_dunning_email_goes_once_under_100_concurrent_replays() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let failed = w.stripe_body("evt_f1", "invoice.payment_failed", w.invoice(&ann, "in_1"));
    for _ in 0..10 {
        let deliveries = (0..10).map(|_| w.deliver(w.signed(&failed)));
        for resp in futures_util::future::join_all(deliveries).await {
            assert_eq!(resp["statusCode"], 200, "{resp}");
        }
    }
    assert_eq!(w.kinds_to(&ann).await, vec!["payment_failed"]);
    let paid = w.stripe_body("evt_p1", "invoice.paid", w.invoice(&ann, "in_1"));
    w.clock.set(t("2026-11-03T10:00:00Z"));
    for _ in 0..10 {
        let deliveries = (0..10).map(|_| w.deliver(w.signed(&paid)));
        futures_util::future::join_all(deliveries).await;
    }
    assert_eq!(
        w.kinds_to(&ann).await,
        vec!["payment_failed", "payment_recovered"]
    );
    // Recovered: the cadence stopped.
    for day in [
        "2026-11-05T11:00:00Z",
        "2026-11-10T11:00:00Z",
        "2026-11-20T11:00:00Z",
    ] {
        w.sweep_at(day).await;
    }
    assert_eq!(w.kinds_to(&ann).await.len(), 2);
}

#[tokio::test]
async fn a_late_failure_after_payment_sends_nothing() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let paid = w.stripe_body("evt_p2", "invoice.paid", w.invoice(&ann, "in_2"));
    assert_eq!(body(&w.deliver(w.signed(&paid)).await)["result"], "paid");
    let failed = w.stripe_body("evt_f2", "invoice.payment_failed", w.invoice(&ann, "in_2"));
    let resp = w.deliver(w.signed(&failed)).await;
    assert_eq!(body(&resp)["result"], "already_paid");
    assert!(w.env.emails_to(&ann).await.is_empty());
    w.sweep_at("2026-11-20T11:00:00Z").await;
    assert!(w.env.emails_to(&ann).await.is_empty());
}

#[tokio::test]
async fn the_cadence_runs_on_the_clock_and_ends_with_the_merchants_alert() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let failed = w.stripe_body("evt_f3", "invoice.payment_failed", w.invoice(&ann, "in_3"));
    w.deliver(w.signed(&failed)).await;
    // Sweeps twice a day for 16 days, each run twice (overlap).
    let mut at = t("2026-11-02T10:30:00Z");
    while at < t("2026-11-18T10:00:00Z") {
        w.sweep_at(&at.to_string()).await;
        w.sweep_at(&at.to_string()).await;
        at = at
            .checked_add(jiff::SignedDuration::from_hours(12))
            .unwrap();
    }
    let mails = w.env.emails_to(&ann).await;
    let kinds = w.kinds_to(&ann).await;
    assert_eq!(
        kinds,
        vec!["payment_failed"; 4]
            .into_iter()
            .chain(["payment_final_notice"])
            .collect::<Vec<_>>(),
        "first + reminders on days 3, 5, 7 + final notice"
    );
    assert!(
        mails
            .iter()
            .all(|m| m.part("text/plain").unwrap().contains("/v1/billing-links/"))
    );
    let ops = w.env.merchant.ops_email.clone().unwrap();
    let alerts = w.env.emails_to(ops.as_str()).await;
    assert_eq!(alerts.len(), 1, "dunning exhausted: one alert");
    let inv = &w.env.items_in("INV#in_3", "INVOICE").await[0];
    assert_eq!(s(inv, "status"), "exhausted");
    assert_eq!(num(inv, "emails_reminder"), 3);

    // The report.
    let event = w.env.api_event(
        billing_alert::ROUTE_RECOVERY,
        "/v1/billing/recovery",
        &[],
        None,
        Some(&w.env.api_key),
    );
    let mut event = event;
    event["queryStringParameters"] = json!({"from": "2026-11-01", "to": "2026-11-30"});
    event["rawQueryString"] = "from=2026-11-01&to=2026-11-30".into();
    let report = body(&w.deliver(event).await);
    assert_eq!(report["failed_invoices"], 1, "{report}");
    assert_eq!(report["exhausted"], 1);
    assert_eq!(report["emails_sent"]["reminder"], 3);
    assert_eq!(report["emails_sent"]["final"], 1);
}

#[tokio::test]
async fn the_link_in_a_dunning_email_redirects_to_the_invoice() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let failed = w.stripe_body("evt_f4", "invoice.payment_failed", w.invoice(&ann, "in_4"));
    w.deliver(w.signed(&failed)).await;
    let html = w.env.emails_to(&ann).await[0].part("text/plain").unwrap();
    let start = html.find("/v1/billing-links/").unwrap() + "/v1/billing-links/".len();
    let token: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
        .collect();
    let event = w.env.api_event(
        billing_alert::ROUTE_LINK,
        "/v1/billing-links/x",
        &[("token", &token)],
        None,
        None,
    );
    let resp = w.deliver(event).await;
    assert_eq!(resp["statusCode"], 303, "{resp}");
    assert_eq!(
        resp["headers"]["location"],
        "https://invoice.stripe.test/in_4"
    );
}

#[tokio::test]
async fn generic_events_refund_reversal_and_idempotency_conflicts() {
    let w = World::new().await;
    // An order that earned points.
    let order = w.env.order();
    let resp = w.env.place_order(w.clock.clone(), &order).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    let earned = body(&resp)["loyalty"]["points_earned"].as_i64().unwrap();
    assert!(earned > 0);
    let refund = json!({
        "id": "rf-1", "type": "refund", "customer": order["customer"],
        "refund": {"id": "re_1", "amount": order["total"], "currency": order["currency"], "order_id": order["id"]}
    })
    .to_string();
    let post = |b: &str| {
        w.env.api_event(
            billing_alert::ROUTE_EVENTS,
            "/v1/billing-events",
            &[],
            Some(b),
            Some(&w.env.api_key),
        )
    };
    let first = body(&w.deliver(post(&refund)).await);
    assert_eq!(first["result"], "reversed", "{first}");
    assert!(first["points_reversed"].as_i64().unwrap() > 0);
    for _ in 0..5 {
        assert_eq!(body(&w.deliver(post(&refund)).await)["result"], "duplicate");
    }
    let entries = w.env.items_with_sk("LEDGER#").await;
    let reversals: Vec<_> = entries
        .iter()
        .filter(|i| s(i, "SK").starts_with("LEDGER#refund:"))
        .collect();
    assert_eq!(reversals.len(), 1);
    assert_eq!(
        num(reversals[0], "points"),
        -earned.min(first["points_reversed"].as_i64().unwrap())
    );

    // The same id with different content is a conflict, not an overwrite.
    let changed = refund.replace("re_1", "re_2");
    let resp = w.deliver(post(&changed)).await;
    assert_eq!(resp["statusCode"], 409);
    assert_eq!(body(&resp)["error"]["field"], "id");
    // Bad input names the field.
    let bad =
        json!({"id": "x", "type": "payment_failed", "customer": order["customer"]}).to_string();
    let resp = w.deliver(post(&bad)).await;
    assert_eq!(resp["statusCode"], 400);
    assert_eq!(body(&resp)["error"]["field"], "invoice");
}

/// A redelivered payment event is answered `duplicate` (not taken for news about its invoice),
/// and a second success of a paid invoice, under another event id, finds it paid.
#[tokio::test]
async fn a_redelivered_payment_event_is_a_duplicate_and_a_second_success_finds_the_invoice_paid() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let failed = w.stripe_body("evt_f3", "invoice.payment_failed", w.invoice(&ann, "in_3"));
    let first = body(&w.deliver(w.signed(&failed)).await);
    let again = body(&w.deliver(w.signed(&failed)).await);
    assert_eq!(again["result"], "duplicate", "{first} then {again}");

    let paid = w.stripe_body("evt_p4", "invoice.paid", w.invoice(&ann, "in_4"));
    assert_eq!(body(&w.deliver(w.signed(&paid)).await)["result"], "paid");
    let paid_again = w.stripe_body("evt_p5", "invoice.paid", w.invoice(&ann, "in_4"));
    let second = body(&w.deliver(w.signed(&paid_again)).await);
    assert_eq!(second["result"], "already_paid", "{second}");
    assert_eq!(w.kinds_to(&ann).await, vec!["payment_failed"]);
}

/// Places the example order (through order-placed) and anchors its journey: its review request
/// and cross-sell due in ten days, as a delivery would schedule them. The order as posted.
async fn placed_with_follow_ups(w: &World) -> Value {
    use aftercare::domain::followup::{AnchorReason, FollowUpKind};
    use aftercare::ports::shipments::ShipmentBook as _;
    let order = w.env.order();
    let resp = w.env.place_order(w.clock.clone(), &order).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    let id = aftercare::domain::OrderId::parse("id", order["id"].as_str().unwrap()).unwrap();
    let record = w
        .app
        .store
        .get_order(&w.env.merchant.id, &id)
        .await
        .unwrap()
        .unwrap();
    let now = w.clock.now();
    let due = t("2026-11-20T10:00:00Z");
    let follow_ups = [
        (FollowUpKind::ReviewRequest, due),
        (FollowUpKind::CrossSell, due),
    ];
    let anchored = w
        .app
        .store
        .anchor_journey(&record, now, AnchorReason::Delivered, &follow_ups, now)
        .await
        .unwrap();
    assert!(anchored);
    order
}

impl World {
    /// `POST /v1/billing-events` of a `refund` of the whole `order` (refund `re_whole`).
    fn whole_refund(&self, order: &Value) -> Value {
        let refund = json!({
            "id": "rf-whole", "type": "refund", "customer": order["customer"],
            "refund": {"id": "re_whole", "amount": order["total"], "currency": order["currency"],
                "order_id": order["id"]}
        })
        .to_string();
        self.env.api_event(
            billing_alert::ROUTE_EVENTS,
            "/v1/billing-events",
            &[],
            Some(&refund),
            Some(&self.env.api_key),
        )
    }

    /// The "refund issued" emails `email` got: their plain text.
    async fn refunds_told(&self, email: &str) -> Vec<String> {
        self.env
            .emails_to(email)
            .await
            .iter()
            .filter(|m| m.header("X-Aftercare-Kind").as_deref() == Some("refund_issued"))
            .map(|m| m.part("text/plain").unwrap_or_default())
            .collect()
    }

    async fn follow_up_statuses(&self, order: &Value) -> Vec<String> {
        let o = order["id"].as_str().unwrap();
        let mut statuses = Vec::new();
        for kind in ["review_request", "cross_sell"] {
            for f in self
                .env
                .items_in(&format!("O#{o}"), &format!("FOLLOWUP#{kind}"))
                .await
            {
                statuses.push(format!("{kind} {}", s(&f, "status")));
            }
        }
        statuses
    }
}

#[tokio::test]
async fn a_stripe_refund_is_told_once_under_redelivery_and_concurrency() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let order = placed_with_follow_ups(&w).await;
    // Stripe's `charge.refunded`: a partial refund first (its charge's `amount_refunded` so far).
    let charge = |refunded: i64| {
        json!({
            "id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge", "amount": order["total"],
            "amount_captured": order["total"], "amount_refunded": refunded, "captured": true,
            "currency": "eur", "customer": "cus_NffrFeUfNV2Hib", "paid": true,
            "refunded": refunded == order["total"].as_i64().unwrap(), "receipt_email": ann,
            "billing_details": {"email": ann, "name": "Ann Example", "phone": null,
                "address": {"city": null, "country": "DE", "line1": null, "line2": null,
                    "postal_code": null, "state": null}},
            "metadata": {"order_id": order["id"]}, "status": "succeeded"
        })
    };
    let partial = w.stripe_body("evt_r1", "charge.refunded", charge(2500));
    let first = body(&w.deliver(w.signed(&partial)).await);
    assert_eq!(first["email"], "sent", "{first}");
    for _ in 0..20 {
        let resp = w.deliver(w.signed(&partial)).await;
        assert_eq!(resp["statusCode"], 200, "{resp}");
    }
    let all = futures_util::future::join_all((0..16).map(|_| w.deliver(w.signed(&partial)))).await;
    assert!(all.iter().all(|r| r["statusCode"] == 200), "{all:?}");
    let told = w.refunds_told(&ann).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("€25.00"), "{}", told[0]);
    // A part of the order names no line: the journey stays.
    assert_eq!(
        w.follow_up_statuses(&order).await,
        ["review_request scheduled", "cross_sell scheduled"]
    );
    // The rest refunded later (its own event, the charge's running total): its own email once.
    let rest = order["total"].as_i64().unwrap();
    let full = w.stripe_body("evt_r2", "charge.refunded", charge(rest));
    let mut full: Value = serde_json::from_str(&full).unwrap();
    full["data"]["previous_attributes"] = json!({"amount_refunded": 2500});
    let full = full.to_string();
    let all = futures_util::future::join_all((0..16).map(|_| w.deliver(w.signed(&full)))).await;
    assert!(all.iter().all(|r| r["statusCode"] == 200), "{all:?}");
    assert_eq!(w.refunds_told(&ann).await.len(), 2);
    // Together the two refunds are the whole order: every line is back, the journey ends.
    assert_eq!(
        w.follow_up_statuses(&order).await,
        ["review_request cancelled", "cross_sell cancelled"]
    );
}

#[tokio::test]
async fn a_merchant_whose_shop_tells_refunds_gets_no_refund_email_from_us_and_the_rest_happens() {
    let mut env = Env::new().await;
    env.merchant.settings.orders.refund_email = false;
    env.save_merchant().await;
    let w = World::with(env);
    let ann = w.env.customer_email();
    let order = placed_with_follow_ups(&w).await;
    let done = body(&w.deliver(w.whole_refund(&order)).await);
    assert!(done["email"].is_null(), "{done}");
    assert!(w.refunds_told(&ann).await.is_empty());
    // The points and the journey move as for any refund.
    assert_eq!(
        w.env.items_in("C#cust-4711", "LEDGER#refund:").await.len(),
        1,
        "{done}"
    );
    assert_eq!(
        done["follow_ups_cancelled"],
        json!(["review_request", "cross_sell"]),
        "{done}"
    );
}

#[tokio::test]
async fn an_api_refund_of_the_whole_order_is_told_once_and_ends_its_review_request() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let order = placed_with_follow_ups(&w).await;
    let post = || w.whole_refund(&order);
    let first = body(&w.deliver(post()).await);
    assert_eq!(first["email"], "sent", "{first}");
    assert_eq!(
        first["follow_ups_cancelled"],
        json!(["review_request", "cross_sell"]),
        "{first}"
    );
    for _ in 0..20 {
        assert_eq!(w.deliver(post()).await["statusCode"], 200);
    }
    let all = futures_util::future::join_all((0..16).map(|_| w.deliver(post()))).await;
    assert!(all.iter().all(|r| r["statusCode"] == 200), "{all:?}");
    let told = w.refunds_told(&ann).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains(order["id"].as_str().unwrap()),
        "names the order: {}",
        told[0]
    );
    assert_eq!(
        w.follow_up_statuses(&order).await,
        ["review_request cancelled", "cross_sell cancelled"]
    );
}
