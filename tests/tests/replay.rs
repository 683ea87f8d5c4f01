//! Exactly once on every trigger (RELIABILITY.md §1): each of the 19 triggers of the six functions
//! is delivered 64 times at once from nothing, then replayed 100 times one after another. Every delivery gets an
//! answer that is not an error (the losers see a duplicate or in-progress outcome), the email the
//! trigger causes goes exactly once, and once it has settled the replays change no item at all.
//! Four tests, one world each (what a trigger answers to is delivered once first), so they run side
//! by side: orders and shipments; billing and dunning; subscriptions and renewals; the customers'
//! own actions, the survey sweep and SES events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::Clock;
use aftercare::clock::ManualClock;
use aftercare::lambda::error::HandlerError;
use aftercare::signature;
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, deadline, fixture, s};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::sync::Arc;

const CONCURRENT: usize = 64;
const SEQUENTIAL: usize = 100;
/// Every kind of email.
const ANY: &str = "*";

#[derive(Clone, Copy, Debug)]
enum Function {
    Orders,
    Shipments,
    Surveys,
    Renewals,
    Billing,
    EmailEvents,
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: aftercare::app::App,
    surveys: survey_sender::Links,
    renewals: renewal_checker::Links,
    billing: billing_alert::Links,
    /// Deliveries made and emails counted, for the figures.
    deliveries: std::cell::Cell<usize>,
}

impl World {
    async fn new() -> Self {
        let env = Env::new().await;
        let key = SigningKey::new(&[33u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key);
        Self {
            surveys: survey_sender::Links::new(BASE, key.clone()),
            renewals: renewal_checker::Links::new(BASE, key.clone()),
            billing: billing_alert::Links::new(BASE, key),
            env,
            clock,
            app,
            deliveries: std::cell::Cell::new(0),
        }
    }

    fn email(&self, who: &str) -> String {
        format!("{who}.{}@example.com", self.env.tag)
    }

    async fn run(&self, f: Function, event: Value) -> Result<Value, HandlerError> {
        let (app, d) = (&self.app, deadline());
        match f {
            Function::Orders => order_placed::handle(app, event, "t", d).await,
            Function::Shipments => shipment_update::handle(app, event, "t", d).await,
            Function::Surveys => survey_sender::handle(app, &self.surveys, event, "t", d).await,
            Function::Renewals => renewal_checker::handle(app, &self.renewals, event, "t", d).await,
            Function::Billing => billing_alert::handle(app, &self.billing, event, "t", d).await,
            Function::EmailEvents => email_events::handle(app, event, "t", d).await,
        }
    }

    /// Merchant API call (`body` JSON, or a form when it is not).
    fn api(&self, route: &str, path: &str, params: &[(&str, &str)], body: Option<&str>) -> Value {
        let mut event = self
            .env
            .api_event(route, path, params, body, Some(&self.env.api_key));
        if body.is_some_and(|b| !b.starts_with('{')) {
            event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
            event["headers"]
                .as_object_mut()
                .unwrap()
                .remove("authorization");
        }
        event
    }

    fn order(&self, who: &str, id: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["id"] = who.into();
        o["customer"]["email"] = self.email(who).into();
        o
    }

    fn scheduled(&self) -> Value {
        json!({"version": "0", "id": "sched-1", "detail-type": "Scheduled Event",
            "source": "aws.events", "time": self.clock.now().to_string(), "detail": {}})
    }

    /// Emails of `kind` sent to `to`.
    async fn sent(&self, to: &str, kind: &str) -> usize {
        self.env
            .emails_to(to)
            .await
            .iter()
            .filter(|e| kind == ANY || e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .count()
    }

    /// Every item of the table, canonical (attribute maps in order), sorted.
    async fn state(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .env
            .items()
            .await
            .into_iter()
            .map(|i| canonical(serde_dynamo::from_item::<_, Value>(i).unwrap()).to_string())
            .collect();
        items.sort();
        items
    }

    /// Delivers `event` to `f` 64 times at once, then 100 times in a row. No delivery errs; `to`
    /// never gets more than `n` emails of `kind`, and exactly `n` once the first delivery after the
    /// race has settled (a sweep that ran out of time under the race leaves its work due, which is
    /// correct); after that the replays change no item.
    async fn exactly_once(
        &self,
        name: &str,
        f: Function,
        event: Value,
        mail: Option<(&str, &str, usize)>,
    ) {
        let before = match mail {
            Some((to, kind, _)) => self.sent(to, kind).await,
            None => 0,
        };
        let answers = join_all((0..CONCURRENT).map(|_| self.run(f, event.clone()))).await;
        for a in answers {
            accepted(name, a);
        }
        if let Some((to, kind, n)) = mail {
            let sent = self.sent(to, kind).await - before;
            assert!(
                sent <= n,
                "{name}: {sent} {kind} emails to {to} after {CONCURRENT} concurrent deliveries"
            );
        }
        accepted(name, self.run(f, event.clone()).await);
        let settled = self.state().await;
        for _ in 1..SEQUENTIAL {
            accepted(name, self.run(f, event.clone()).await);
        }
        if let Some((to, kind, n)) = mail {
            assert_eq!(
                self.sent(to, kind).await - before,
                n,
                "{name}: {kind} emails to {to} after {SEQUENTIAL} more deliveries"
            );
        }
        let after = self.state().await;
        let changed = differences(&settled, &after);
        assert!(
            changed.is_empty(),
            "{name}: replays changed items: {changed:#?}"
        );
        self.deliveries
            .set(self.deliveries.get() + CONCURRENT + SEQUENTIAL);
    }
}

/// A delivery's answer must not be an error: a handler error (Lambda would retry and alarm) or a
/// 5xx. A duplicate or in-progress answer (2xx, 409) is what the losers get.
fn accepted(name: &str, answer: Result<Value, HandlerError>) {
    let resp = answer.unwrap_or_else(|e| panic!("{name}: a delivery failed: {e:?}"));
    if let Some(status) = resp["statusCode"].as_i64() {
        assert!(
            status < 300 || status == 409 || status == 303,
            "{name}: a delivery answered {status}: {resp}"
        );
    }
}

/// What differs between two states: per item (PK, SK), the attributes whose values changed, and
/// the items added or removed.
fn differences(before: &[String], after: &[String]) -> Vec<String> {
    let index = |state: &[String]| -> std::collections::BTreeMap<(String, String), Value> {
        state
            .iter()
            .map(|i| {
                let v: Value = serde_json::from_str(i).unwrap();
                ((v["PK"].to_string(), v["SK"].to_string()), v)
            })
            .collect()
    };
    let (b, a) = (index(before), index(after));
    let mut out = Vec::new();
    for (key, new) in &a {
        match b.get(key) {
            None => out.push(format!("added {key:?}: {new}")),
            Some(old) => {
                for (field, value) in new.as_object().unwrap() {
                    if old.get(field) != Some(value) {
                        out.push(format!(
                            "{key:?}.{field}: {} → {value}",
                            old.get(field).unwrap_or(&Value::Null)
                        ));
                    }
                }
                for field in old.as_object().unwrap().keys() {
                    if new.get(field).is_none() {
                        out.push(format!("{key:?}.{field} removed"));
                    }
                }
            }
        }
    }
    out.extend(
        b.keys()
            .filter(|k| !a.contains_key(*k))
            .map(|k| format!("removed {k:?}")),
    );
    out
}

fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

impl World {
    /// One delivery of what a trigger under test answers to; it must succeed.
    async fn prepare(&self, f: Function, event: Value) {
        let resp = self.run(f, event).await.unwrap();
        assert!(
            resp["statusCode"].as_i64().is_none_or(|s| s < 300),
            "{resp}"
        );
    }
}

fn shipment(id: &str) -> String {
    json!({"id": id, "carrier": "DHL", "tracking_number": format!("JD{id}")}).to_string()
}

fn delivered_at(at: &str) -> String {
    json!({"status": "delivered", "occurred_at": at}).to_string()
}

#[tokio::test]
async fn orders_and_shipments_act_once_under_64_concurrent_and_100_replayed_deliveries() {
    let w = World::new().await;
    let (r1, r2) = (w.email("r1"), w.email("r2"));

    // order-placed: the merchant API and the EventBridge event.
    let order = w.order("r1", "SO-R1");
    let event = w.env.http_event(&order, Some(&w.env.api_key));
    w.exactly_once(
        "POST /v1/orders",
        Function::Orders,
        event,
        Some((&r1, "order_thanks", 1)),
    )
    .await;
    let event = w.env.order_event(&w.order("r2", "SO-R2"));
    w.exactly_once(
        "Order Placed event",
        Function::Orders,
        event,
        Some((&r2, "order_thanks", 1)),
    )
    .await;

    // shipment-update: a shipment, a checkpoint, a signed carrier webhook.
    let event = w.api(
        shipment_update::ROUTE_CREATE,
        "/v1/orders/SO-R1/shipments",
        &[("orderId", "SO-R1")],
        Some(&shipment("SH-R1")),
    );
    w.exactly_once(
        "POST shipments",
        Function::Shipments,
        event,
        Some((&r1, "shipment_shipped", 1)),
    )
    .await;
    let delivered = delivered_at("2026-11-20T09:50:00Z");
    let event = w.api(
        shipment_update::ROUTE_CHECKPOINT,
        "/v1/shipments/SH-R1/events",
        &[("shipmentId", "SH-R1")],
        Some(&delivered),
    );
    w.exactly_once(
        "POST checkpoint",
        Function::Shipments,
        event,
        Some((&r1, "shipment_delivered", 1)),
    )
    .await;
    let created = w
        .run(
            Function::Shipments,
            w.api(
                shipment_update::ROUTE_CREATE,
                "/v1/orders/SO-R2/shipments",
                &[("orderId", "SO-R2")],
                Some(&shipment("SH-R2")),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created["statusCode"], 201, "{created}");
    let m = w.env.merchant.id.to_string();
    let body = json!({"shipment_id": "SH-R2", "id": "cp-r2", "status": "delivered", "occurred_at": "2026-11-20T09:55:00Z"}).to_string();
    let mut event = w.env.api_event(
        shipment_update::ROUTE_WEBHOOK,
        &format!("/v1/webhooks/tracking/{m}"),
        &[("merchantId", &m)],
        Some(&body),
        None,
    );
    event["headers"]["x-aftercare-signature"] = signature::sign(
        w.env.webhook_secret().as_bytes(),
        w.clock.now().as_second(),
        body.as_bytes(),
    )
    .into();
    w.exactly_once(
        "tracking webhook",
        Function::Shipments,
        event,
        Some((&r2, "shipment_delivered", 1)),
    )
    .await;

    assert_eq!(w.deliveries.get(), 5 * (CONCURRENT + SEQUENTIAL));
}

#[tokio::test]
async fn billing_events_and_the_dunning_sweep_act_once_under_64_concurrent_and_100_replayed_deliveries()
 {
    let w = World::new().await;
    let (r6, r7) = (w.email("r6"), w.email("r7"));
    let m = w.env.merchant.id.to_string();

    // billing-alert: a signed Stripe webhook and the merchant's billing event.
    let invoice = json!({"id": "in_r6", "object": "invoice", "customer": "r6", "customer_email": r6,
        "customer_name": "Rae Six", "amount_due": 1990, "amount_paid": 0, "currency": "eur",
        "subscription": "sub_r6", "hosted_invoice_url": "https://invoice.stripe.test/in_r6",
        "lines": {"data": [{"description": "Coffee club"}]}});
    let body = json!({"id": "evt_r6", "object": "event", "type": "invoice.payment_failed",
        "created": w.clock.now().as_second(), "data": {"object": invoice}})
    .to_string();
    let mut event = w.env.api_event(
        billing_alert::ROUTE_STRIPE,
        &format!("/v1/webhooks/stripe/{m}"),
        &[("merchantId", &m)],
        Some(&body),
        None,
    );
    event["headers"]["stripe-signature"] = signature::sign(
        w.env.webhook_secret().as_bytes(),
        w.clock.now().as_second(),
        body.as_bytes(),
    )
    .into();
    w.exactly_once(
        "Stripe webhook",
        Function::Billing,
        event,
        Some((&r6, "payment_failed", 1)),
    )
    .await;
    let failed = json!({"id": "ev-r7", "type": "payment_failed",
        "customer": {"id": "r7", "email": r7, "first_name": "Rae"},
        "invoice": {"id": "in_r7", "amount": 1490, "currency": "EUR", "subscription_id": "sub_r7",
            "payment_url": "https://pay.test/in_r7", "plan_name": "Tea club"}})
    .to_string();
    let event = w.api(
        billing_alert::ROUTE_EVENTS,
        "/v1/billing-events",
        &[],
        Some(&failed),
    );
    w.exactly_once(
        "POST billing-events",
        Function::Billing,
        event,
        Some((&r7, "payment_failed", 1)),
    )
    .await;

    // The dunning sweep, three days on: the first reminder is due.
    w.clock.set("2026-11-23T10:00:00Z".parse().unwrap());
    w.exactly_once(
        "dunning sweep",
        Function::Billing,
        w.scheduled(),
        Some((&r6, ANY, 1)),
    )
    .await;

    assert_eq!(w.deliveries.get(), 3 * (CONCURRENT + SEQUENTIAL));
}

#[tokio::test]
async fn a_subscription_and_the_renewal_sweep_act_once_under_64_concurrent_and_100_replayed_deliveries()
 {
    let w = World::new().await;
    let r8 = w.email("r8");

    // renewal-checker: the subscription (no email yet).
    let sub = json!({"customer": {"id": "r8", "email": r8, "first_name": "Rae"},
        "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
        "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
        "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        "manage_url": "https://shop.test/account/subscriptions", "updated_at": "2026-11-20T08:00:00Z"})
    .to_string();
    let event = w.api(
        renewal_checker::ROUTE_PUT,
        "/v1/subscriptions/sub_r8",
        &[("subscriptionId", "sub_r8")],
        Some(&sub),
    );
    w.exactly_once("PUT subscription", Function::Renewals, event, None)
        .await;

    w.clock.set("2026-12-13T10:00:00Z".parse().unwrap());
    w.exactly_once(
        "renewal sweep",
        Function::Renewals,
        w.scheduled(),
        Some((&r8, "renewal_reminder", 1)),
    )
    .await;

    assert_eq!(w.deliveries.get(), 2 * (CONCURRENT + SEQUENTIAL));
}

#[tokio::test]
async fn customers_actions_the_survey_sweep_and_ses_events_act_once_under_64_concurrent_and_100_replayed_deliveries()
 {
    let w = World::new().await;
    let r1 = w.email("r1");
    let m = w.env.merchant.id.to_string();
    // What the actions answer to: r1's and r2's orders, r1's delivered.
    w.prepare(
        Function::Orders,
        w.env
            .http_event(&w.order("r1", "SO-R1"), Some(&w.env.api_key)),
    )
    .await;
    w.prepare(Function::Orders, w.env.order_event(&w.order("r2", "SO-R2")))
        .await;
    w.prepare(
        Function::Shipments,
        w.api(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-R1/shipments",
            &[("orderId", "SO-R1")],
            Some(&shipment("SH-R1")),
        ),
    )
    .await;
    w.prepare(
        Function::Shipments,
        w.api(
            shipment_update::ROUTE_CHECKPOINT,
            "/v1/shipments/SH-R1/events",
            &[("shipmentId", "SH-R1")],
            Some(&delivered_at("2026-11-20T09:50:00Z")),
        ),
    )
    .await;

    // Customers' own actions: one-click survey score (a detractor: the merchant is alerted),
    // unsubscribe, preferences, loyalty adjustment and redemption (Idempotency-Key).
    let ops = w
        .env
        .merchant
        .ops_email
        .as_ref()
        .unwrap()
        .as_str()
        .to_owned();
    let until = w.clock.now() + jiff::SignedDuration::from_hours(24 * 30);
    let link = w.surveys.survey(&m, "r1", "SO-R1", 3, until);
    let token = link.rsplit('/').next().unwrap().to_owned();
    let mut event = w.api(
        survey_sender::ROUTE_SURVEY_ANSWER,
        &format!("/v1/survey/{token}"),
        &[("token", &token)],
        Some("score=3&comment=Late"),
    );
    event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
    w.exactly_once(
        "POST survey answer",
        Function::Surveys,
        event,
        Some((&ops, "merchant_detractor_alert", 1)),
    )
    .await;
    let link = w
        .surveys
        .unsubscribe(&m, "r2", "r***@example.com", w.clock.now());
    let token = link.rsplit('/').next().unwrap().to_owned();
    let event = w.api(
        survey_sender::ROUTE_UNSUBSCRIBE,
        &format!("/v1/unsubscribe/{token}"),
        &[("token", &token)],
        Some("List-Unsubscribe=One-Click"),
    );
    w.exactly_once("POST unsubscribe", Function::Surveys, event, None)
        .await;
    let event = w.api(
        survey_sender::ROUTE_PUT_PREFERENCES,
        "/v1/customers/r1/preferences",
        &[("customerId", "r1")],
        Some(r#"{"locale": "de"}"#),
    );
    w.exactly_once("PUT preferences", Function::Surveys, event, None)
        .await;
    let mut event = w.api(
        order_placed::loyalty::ROUTE_ADJUST,
        "/v1/customers/r1/loyalty/adjustments",
        &[("customerId", "r1")],
        Some(r#"{"points": 500, "reason": "welcome"}"#),
    );
    event["headers"]["idempotency-key"] = "adj-1".into();
    w.exactly_once("POST loyalty adjustment", Function::Orders, event, None)
        .await;
    let mut event = w.api(
        order_placed::loyalty::ROUTE_REDEEM,
        "/v1/customers/r1/loyalty/redemptions",
        &[("customerId", "r1")],
        Some(r#"{"points": 100}"#),
    );
    event["headers"]["idempotency-key"] = "red-1".into();
    w.exactly_once("POST loyalty redemption", Function::Orders, event, None)
        .await;
    let mut event = w.api(
        order_placed::credit::ROUTE_ADJUST,
        "/v1/customers/r1/credit/adjustments",
        &[("customerId", "r1")],
        Some(r#"{"amount": 1000, "currency": "EUR", "reason": "goodwill"}"#),
    );
    event["headers"]["idempotency-key"] = "credit-adj-1".into();
    w.exactly_once("POST credit adjustment", Function::Orders, event, None)
        .await;
    let mut event = w.api(
        order_placed::credit::ROUTE_REDEEM,
        "/v1/customers/r1/credit/redemptions",
        &[("customerId", "r1")],
        Some(r#"{"amount": 250, "currency": "EUR", "order_id": "SO-2"}"#),
    );
    event["headers"]["idempotency-key"] = "credit-red-1".into();
    w.exactly_once("POST credit redemption", Function::Orders, event, None)
        .await;
    let balance = w
        .run(
            Function::Orders,
            w.api(
                order_placed::loyalty::ROUTE_GET,
                "/v1/customers/r1/loyalty",
                &[("customerId", "r1")],
                None,
            ),
        )
        .await
        .unwrap();
    let balance: Value = serde_json::from_str(balance["body"].as_str().unwrap()).unwrap();
    assert_eq!(balance["balance"]["available"], 400, "{balance}");

    // The survey sweep, three days on: the usage tips are due.
    w.clock.set("2026-11-23T10:00:00Z".parse().unwrap());
    w.exactly_once(
        "survey sweep",
        Function::Surveys,
        w.scheduled(),
        Some((&r1, "usage_tips", 1)),
    )
    .await;
    // email-events: SES's bounce of r1's thank-you.
    let record = w
        .env
        .items_in("C#r1#SEND", "SEND#r1#order_thanks#")
        .await
        .pop()
        .unwrap();
    let text = fixture("ses-bounce-permanent.json")
        .to_string()
        .replace("MESSAGE_ID", &s(&record, "message_id"))
        .replace("RECIPIENT", &r1)
        .replace("MERCHANT", &m)
        .replace("SEND_REF", &s(&record, "SK"))
        .replace("EVENT_ID", "ev-bounce-r1")
        .replace("\"AT\"", "\"2026-11-20T10:00:05.000Z\"");
    let event: Value = serde_json::from_str(&text).unwrap();
    w.exactly_once("SES bounce event", Function::EmailEvents, event, None)
        .await;

    let credit = w
        .run(
            Function::Orders,
            w.api(
                order_placed::credit::ROUTE_GET,
                "/v1/customers/r1/credit",
                &[("customerId", "r1")],
                None,
            ),
        )
        .await
        .unwrap();
    let credit: Value = serde_json::from_str(credit["body"].as_str().unwrap()).unwrap();
    assert_eq!(credit["balances"][0]["balance"], 750, "{credit}");
    assert_eq!(credit["history"].as_array().unwrap().len(), 2, "{credit}");

    assert_eq!(w.deliveries.get(), 9 * (CONCURRENT + SEQUENTIAL));
}
