//! renewal-checker over the real SDK against moto: order-safe subscription upserts, renewal
//! reminders and card notices exactly once under 100 replayed events and overlapping sweeps, the
//! combined renewal + card email, signed links and the hosted page, and the sweep's read cost with
//! 20,000 subscriptions of which 1,000 are due (100,000 under `AFTERCARE_TEST_SCALE=full`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::Clock;
use aftercare::adapters::store::keys;
use aftercare::adapters::store::subscriptions::SubscriptionRecord;
use aftercare::clock::ManualClock;
use aftercare::domain::EmailAddress;
use aftercare::domain::ids::SubscriptionId;
use aftercare::domain::subscription::SubscriptionInput;
use aftercare::token::SigningKey;
use aftercare_tests::counter::{CallCounter, counted_clients};
use aftercare_tests::{Env, Item, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

const BASE: &str = "https://api.test";

// Every handler call and sweep here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

fn key() -> SigningKey {
    SigningKey::new(&[7u8; 32]).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    app: renewal_checker::App,
    links: renewal_checker::Links,
}

impl World {
    async fn new(counter: Option<&CallCounter>) -> Self {
        let env = Env::new().await;
        let clock = Arc::new(ManualClock::new(t("2026-11-20T09:00:00Z")));
        let mut config = env.config().with_signing_key(key());
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        let (ddb, ses) = match counter {
            Some(c) => counted_clients(&env.sdk, c),
            None => (env.dynamodb(), env.ses()),
        };
        let app = renewal_checker::App::with_parts(config, ddb, ses, clock.clone()).unwrap();
        Self {
            links: renewal_checker::Links::new(BASE, key()),
            env,
            clock,
            app,
        }
    }

    fn subscription(&self, email: &str) -> Value {
        json!({
            "customer": {"id": format!("c-{}", email.replace('@', "-at-")), "email": email, "first_name": "Ann"},
            "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
            "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
            "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
            "manage_url": "https://shop.test/account/subscriptions",
            "updated_at": "2026-11-20T08:00:00Z"
        })
    }

    async fn put(&self, id: &str, body: &Value) -> Value {
        let body = body.to_string();
        let event = self.env.api_event(
            renewal_checker::ROUTE_PUT,
            &format!("/v1/subscriptions/{id}"),
            &[("subscriptionId", id)],
            Some(&body),
            Some(&self.env.api_key),
        );
        renewal_checker::handle(&self.app, &self.links, event, "t", deadline())
            .await
            .unwrap()
    }

    async fn sweep_at(&self, at: &str) -> renewal_checker::SweepReport {
        self.clock.set(t(at));
        renewal_checker::sweep(&self.app, &self.links, deadline())
            .await
            .unwrap()
    }

    async fn get(&self, route: &str, path: &str, token: &str) -> Value {
        let event = self
            .env
            .api_event(route, path, &[("token", token)], None, None);
        renewal_checker::handle(&self.app, &self.links, event, "t", deadline())
            .await
            .unwrap()
    }

    fn event(&self, id: &str, sub: &Value) -> Value {
        json!({
            "version": "0", "id": format!("evt-{id}"), "detail-type": renewal_checker::DETAIL_TYPE,
            "source": "shop", "account": "123456789012", "time": "2026-11-20T08:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"merchant_id": self.env.merchant.id, "subscription_id": id, "subscription": sub}
        })
    }
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn upserts_are_idempotent_and_a_stale_update_never_overwrites() {
    let w = World::new(None).await;
    let ann = w.env.customer_email();
    let sub = w.subscription(&ann);
    let created = w.put("sub_1", &sub).await;
    assert_eq!(created["statusCode"], 201, "{created}");
    assert_eq!(body(&created)["notices"][0]["kind"], "renewal_reminder");
    let again = w.put("sub_1", &sub).await;
    assert_eq!(again["statusCode"], 200);
    assert_eq!(body(&again)["result"], "unchanged");

    let mut newer = sub.clone();
    newer["price"] = 2490.into();
    newer["updated_at"] = "2026-11-20T08:30:00Z".into();
    assert_eq!(body(&w.put("sub_1", &newer).await)["result"], "updated");

    // Older state arriving late is refused and changes nothing.
    let mut stale = sub.clone();
    stale["price"] = 990.into();
    stale["updated_at"] = "2026-11-20T08:10:00Z".into();
    let refused = w.put("sub_1", &stale).await;
    assert_eq!(refused["statusCode"], 409);
    assert_eq!(body(&refused)["error"]["field"], "updated_at");
    let stored = w
        .env
        .store
        .get_subscription(
            &w.env.merchant.id,
            &SubscriptionId::parse("s", "sub_1").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.subscription.price.amount, 2490);

    // The same via EventBridge: acknowledged as stale, not an error to retry.
    let out = renewal_checker::handle(&w.app, &w.links, w.event("sub_1", &stale), "t", deadline())
        .await
        .unwrap();
    assert_eq!(out["result"], "stale");

    // Bad input names the field and stores nothing.
    let mut bad = sub.clone();
    bad["payment_method"]["last4"] = "42".into();
    let resp = w.put("sub_2", &bad).await;
    assert_eq!(resp["statusCode"], 400);
    assert_eq!(body(&resp)["error"]["field"], "payment_method.last4");
    assert!(w.env.items_in("SUB#sub_2", "SUB").await.is_empty());
}

#[tokio::test]
async fn each_notice_goes_once_under_100_replayed_events_and_overlapping_sweeps() {
    let w = World::new(None).await;
    let ann = w.env.customer_email();
    let mut annual = w.subscription(&ann);
    annual["interval"] = "annual".into();
    // Replayed 100 times, 10 at a time, as EventBridge might.
    for round in 0..10 {
        let calls = (0..10).map(|_| {
            renewal_checker::handle(&w.app, &w.links, w.event("sub_a", &annual), "t", deadline())
        });
        for out in futures_util::future::join_all(calls).await {
            let out = out.unwrap();
            assert!(
                ["created", "unchanged", "updated"].contains(&out["result"].as_str().unwrap()),
                "round {round}: {out}"
            );
        }
    }
    // 30 days before: one reminder, whatever the number of sweeps and their overlap.
    w.clock.set(t("2026-11-20T10:00:00Z"));
    for _ in 0..3 {
        let sweeps = (0..5).map(|_| renewal_checker::sweep(&w.app, &w.links, deadline()));
        for r in futures_util::future::join_all(sweeps).await {
            assert_eq!(r.unwrap().errors, 0);
        }
    }
    let mails = w.env.emails_to(&ann).await;
    assert_eq!(mails.len(), 1, "one 30-day reminder");
    let text = mails[0].part("text/plain").unwrap();
    assert!(
        text.contains("Coffee club") && text.contains("/v1/subscription-links/"),
        "{text}"
    );
    // Nothing until 7 days before; then exactly one more.
    assert_eq!(w.sweep_at("2026-12-05T09:00:00Z").await.sent, 0);
    for _ in 0..5 {
        w.sweep_at("2026-12-13T09:30:00Z").await;
    }
    assert_eq!(w.env.emails_to(&ann).await.len(), 2);
    // A replay of the update after the notices changes nothing.
    renewal_checker::handle(&w.app, &w.links, w.event("sub_a", &annual), "t", deadline())
        .await
        .unwrap();
    w.sweep_at("2026-12-14T09:30:00Z").await;
    assert_eq!(w.env.emails_to(&ann).await.len(), 2);
}

#[tokio::test]
async fn a_card_expiring_near_the_renewal_gets_one_combined_email() {
    let w = World::new(None).await;
    let ann = w.env.customer_email();
    let mut sub = w.subscription(&ann);
    // Renews 2027-01-03; the card (12/26) stops working 2027-01-01: its 7-day notice (12-25) is
    // within 3 days of the renewal reminder (12-27), so they go together; the 30-day card notice
    // (12-02) goes alone.
    sub["next_renewal_at"] = "2027-01-03T09:00:00Z".into();
    sub["payment_method"]["exp_year"] = 2026.into();
    assert_eq!(w.put("sub_c", &sub).await["statusCode"], 201);
    let first = w.sweep_at("2026-12-02T09:00:00Z").await;
    assert_eq!((first.sent, first.combined), (1, 0), "{first:?}");
    for _ in 0..5 {
        w.sweep_at("2026-12-25T09:00:00Z").await;
    }
    w.sweep_at("2026-12-27T09:30:00Z").await;
    let mails = w.env.emails_to(&ann).await;
    assert_eq!(mails.len(), 2, "card notice, then one combined email");
    let subjects: Vec<String> = mails.iter().map(|m| m.header("Subject").unwrap()).collect();
    let combined = mails
        .iter()
        .find(|m| m.raw.contains("renewal_reminder"))
        .map(|m| m.part("text/plain").unwrap())
        .unwrap_or_else(|| panic!("no combined email among {subjects:?}"));
    assert!(combined.contains("4242"), "{combined}");
    assert!(combined.contains("Coffee club"));
}

#[tokio::test]
async fn links_are_recorded_redirected_and_the_hosted_page_takes_requests() {
    let w = World::new(None).await;
    let ann = w.env.customer_email();
    let sub = w.subscription(&ann);
    w.put("sub_l", &sub).await;
    let id = SubscriptionId::parse("s", "sub_l").unwrap();
    let m = &w.env.merchant.id;
    let link = w
        .links
        .subscription(m, &id, "manage", t("2026-12-20T09:00:00Z"));
    let token = link.rsplit('/').next().unwrap().to_owned();
    let resp = w
        .get(
            renewal_checker::ROUTE_LINK,
            "/v1/subscription-links/x",
            &token,
        )
        .await;
    assert_eq!(resp["statusCode"], 303, "{resp}");
    let location = resp["headers"]["location"].as_str().unwrap();
    assert!(
        location
            .starts_with("https://shop.test/account/subscriptions?aftercare_subscription=sub_l")
    );
    assert!(location.contains("aftercare_signature="), "{location}");
    let clicks = w.env.items_in("SUB#sub_l", "CLICK#").await;
    assert_eq!(clicks.len(), 1);
    assert_eq!(s(&clicks[0], "action"), "manage");

    // A tampered token is refused and records nothing.
    let mut bad = token.clone();
    bad.push('x');
    let resp = w
        .get(
            renewal_checker::ROUTE_LINK,
            "/v1/subscription-links/x",
            &bad,
        )
        .await;
    assert_eq!(resp["statusCode"], 400);
    assert_eq!(w.env.items_in("SUB#sub_l", "CLICK#").await.len(), 1);

    // Without a portal, the link leads to the hosted page, where the customer can ask to cancel.
    let mut own = sub.clone();
    own.as_object_mut().unwrap().remove("manage_url");
    own["updated_at"] = "2026-11-20T08:30:00Z".into();
    w.put("sub_l", &own).await;
    let resp = w
        .get(
            renewal_checker::ROUTE_LINK,
            "/v1/subscription-links/x",
            &token,
        )
        .await;
    assert_eq!(
        resp["headers"]["location"],
        format!("{BASE}/v1/subscription-page/{token}")
    );
    let page = w
        .get(
            renewal_checker::ROUTE_PAGE,
            "/v1/subscription-page/x",
            &token,
        )
        .await;
    assert_eq!(page["statusCode"], 200);
    assert!(page["body"].as_str().unwrap().contains("Coffee club"));
    let mut post = w.env.api_event(
        renewal_checker::ROUTE_PAGE_POST,
        "/v1/subscription-page/x",
        &[("token", &token)],
        Some("action=cancel"),
        None,
    );
    post["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
    let done = renewal_checker::handle(&w.app, &w.links, post, "t", deadline())
        .await
        .unwrap();
    assert_eq!(done["statusCode"], 200, "{done}");
    let actions: Vec<String> = w
        .env
        .items_in("SUB#sub_l", "CLICK#")
        .await
        .iter()
        .map(|i| s(i, "action"))
        .collect();
    assert!(
        actions.contains(&"cancel_requested".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_click_reaches_the_merchants_webhook_signed_and_a_failing_endpoint_never_blocks_it() {
    // The endpoint fails once (retried), then accepts; later it refuses (400: not retried).
    let hook = aftercare_tests::receiver::Receiver::start(vec![503, 200, 400]).await;
    let w = World::new(None).await;
    let mut merchant = w.env.merchant.clone();
    merchant.settings.webhook.url = Some(hook.url.clone());
    w.env
        .store
        .put_merchant(&merchant, Timestamp::now())
        .await
        .unwrap();
    let sub = w.subscription(&w.env.customer_email());
    w.put("sub_w", &sub).await;
    let id = SubscriptionId::parse("s", "sub_w").unwrap();
    let link = w
        .links
        .subscription(&merchant.id, &id, "manage", t("2026-12-20T09:00:00Z"));
    let token = link.rsplit('/').next().unwrap().to_owned();
    let click = || {
        w.get(
            renewal_checker::ROUTE_LINK,
            "/v1/subscription-links/x",
            &token,
        )
    };

    assert_eq!(click().await["statusCode"], 303);
    let got = hook.received();
    assert_eq!(got.len(), 2, "one retry after the 503");
    assert_eq!(got[0].body, got[1].body, "the retry is the same event");
    let r = &got[1];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/aftercare")
    );
    assert_eq!(r.headers["content-type"], "application/json");
    let secret = w.env.webhook_secret();
    let verified = aftercare::signature::verify(
        r.headers.get("aftercare-signature").map(String::as_str),
        &r.body,
        &[secret.as_bytes()],
        w.clock.now(),
    );
    assert!(verified.is_ok(), "{verified:?}");
    let wrong = aftercare::signature::verify(
        r.headers.get("aftercare-signature").map(String::as_str),
        &r.body,
        &[b"whsec_someone_else_0123456789abcdef".as_slice()],
        w.clock.now(),
    );
    assert!(wrong.is_err());
    let event: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(event["type"], "Subscription Link Clicked");
    assert_eq!(event["merchant_id"], merchant.id.as_str());
    assert_eq!(event["data"]["subscription_id"], "sub_w");
    assert_eq!(event["data"]["action"], "manage");
    assert_eq!(event["id"], event["data"]["event_id"]);

    // A refusing endpoint gets one attempt; the customer is redirected all the same and the
    // click is recorded.
    assert_eq!(click().await["statusCode"], 303);
    assert_eq!(hook.received().len(), 3);
    assert_eq!(w.env.items_in("SUB#sub_w", "CLICK#").await.len(), 2);
}

#[tokio::test]
async fn the_sweep_reads_only_the_due_subscriptions_of_many() {
    let counter = CallCounter::default();
    let w = World::new(Some(&counter)).await;
    let ann = w.env.customer_email();
    // Every due subscription belongs to a suppressed address: each is read, decided and moved
    // without mail, so the figure is the sweep's own cost.
    w.env
        .store
        .put_suppression(
            &w.env.merchant.id,
            &EmailAddress::parse("e", &ann).unwrap(),
            "test",
            Timestamp::now(),
        )
        .await
        .unwrap();
    let input: SubscriptionInput = serde_json::from_value(w.subscription(&ann)).unwrap();
    let now = t("2026-11-20T09:00:00Z");
    let template = input
        .validate(SubscriptionId::parse("s", "tpl").unwrap(), now)
        .unwrap();
    let m = &w.env.merchant.id;
    let (total, due) = (aftercare_tests::scaled(20_000, 100_000), 1_000);
    let due_at = t("2026-12-13T09:00:00Z");
    let ddb = w.env.dynamodb();
    let mut items: Vec<Item> = Vec::with_capacity(total);
    for i in 0..total {
        let id = SubscriptionId::parse("s", &format!("bulk-{i}")).unwrap();
        let mut sub = template.clone();
        sub.id = id.clone();
        if i >= due {
            // Renews later: its first notice sits in a later partition of the index.
            sub.next_renewal_at = t("2027-02-20T09:00:00Z");
        }
        let record = SubscriptionRecord::new(m.clone(), sub.clone(), now);
        let k = keys::subscription(m, &id);
        let at = if i < due {
            due_at
        } else {
            t("2027-02-13T09:00:00Z")
        };
        let (dpk, dsk) = keys::due("renewal", at, &k);
        let mut item: Item = serde_dynamo::to_item(&record).unwrap();
        for (name, v) in [
            ("PK", k.pk),
            ("SK", k.sk),
            ("DUEPK", dpk),
            ("DUESK", dsk),
            ("_type", "subscription".into()),
        ] {
            item.insert(name.into(), aws_sdk_dynamodb::types::AttributeValue::S(v));
        }
        items.push(item);
    }
    let writes = items.chunks(25).map(|chunk| {
        let ddb = ddb.clone();
        let table = w.env.table.clone();
        let requests: Vec<_> = chunk
            .iter()
            .map(|i| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        async move {
            let out = ddb
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .unwrap();
            assert!(
                out.unprocessed_items
                    .unwrap_or_default()
                    .values()
                    .all(|v| v.is_empty())
            );
        }
    });
    use futures_util::StreamExt;
    futures_util::stream::iter(writes)
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    counter.reset();
    let r = w.sweep_at("2026-12-13T10:00:00Z").await;
    assert_eq!(
        (r.due, r.suppressed, r.sent, r.errors),
        (due, due, 0, 0),
        "{r:?}"
    );
    let ratio = r.items_read as f64 / r.due as f64;
    assert!(ratio <= 1.05, "items read ÷ due = {ratio}");
    let calls = counter.calls();
    assert!(!calls.keys().any(|k| k.ends_with(".Scan")), "{calls:?}");
    println!(
        "{total} subscriptions, {due} due: {} read, calls {calls:?}",
        r.items_read
    );
    assert_eq!(w.sweep_at("2026-12-13T10:00:00Z").await.due, 0);
}
