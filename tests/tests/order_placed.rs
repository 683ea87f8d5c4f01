//! order-placed end to end over the real SDK against moto: HTTP API and EventBridge triggers,
//! idempotency, concurrency, the stored items and the email moto recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare_tests::counter::{CallCounter, counted_clients};
use aftercare_tests::{Env, deadline, num, s};
use order_placed::App;
use serde_json::Value;
use std::sync::Arc;

fn app(env: &Env) -> App {
    App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(SystemClock),
    )
    .unwrap()
}

async fn call(app: &App, event: Value) -> Result<Value, aftercare::lambda::error::HandlerError> {
    order_placed::handle(app, event, "test-request", deadline()).await
}

fn status(resp: &Value) -> i64 {
    resp["statusCode"].as_i64().unwrap()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn http_order_is_stored_once_and_thanked_once() {
    let env = Env::new().await;
    let app = app(&env);
    let order = env.order();

    let resp = call(&app, env.http_event(&order, Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(status(&resp), 201, "{resp}");
    let b = body(&resp);
    assert_eq!(b["order"]["id"], "SO-1001");
    assert_eq!(b["email"]["status"], "sent");
    // (24900 + 2×1250 − 2000) = 25400 merchandise cents → 254 points.
    assert_eq!(b["loyalty"]["points_earned"], 254);
    assert_eq!(b["loyalty"]["status"], "pending");

    // Stored: order, idempotency record, profile, spend, order index, ledger earn, send record.
    let order_items = env.items_in("O#SO-1001", "ORDER").await;
    assert_eq!(order_items.len(), 1);
    assert_eq!(
        s(&order_items[0], "PK"),
        format!("M#{}#O#SO-1001", env.merchant.id)
    );
    assert_eq!(env.items_in("IDEM#order#SO-1001", "IDEMP").await.len(), 1);
    let profile = env.items_in("C#cust-4711", "PROFILE").await;
    assert_eq!(num(&profile[0], "order_count"), 1);
    assert_eq!(s(&profile[0], "first_name"), "Ann");
    let spend = env.items_in("C#cust-4711", "SPEND#EUR").await;
    assert_eq!(num(&spend[0], "amount"), 25895);
    let ledger = env.items_in("C#cust-4711", "LEDGER#").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(num(&ledger[0], "points"), 254);
    assert_eq!(
        s(&ledger[0], "available_at"),
        "2026-12-20T09:30:00Z",
        "pending through the 30-day return window"
    );
    let sends = env
        .items_in("C#cust-4711#SEND", "SEND#cust-4711#order_thanks#SO-1001#0")
        .await;
    assert_eq!(s(&sends[0], "status"), "sent");
    let message_id = s(&sends[0], "message_id");
    assert!(!message_id.is_empty());

    // The email moto recorded.
    let emails = env.emails_to(&env.customer_email()).await;
    assert_eq!(emails.len(), 1);
    let email = &emails[0];
    assert_eq!(
        email.id, message_id,
        "the SES message id is recorded on the send record"
    );
    assert_eq!(email.source, format!("hello@{}.shop.example", env.tag));
    assert_eq!(
        email.header("Subject").unwrap(),
        "Thank you for your order SO-1001"
    );
    assert_eq!(
        email.header("Reply-To").unwrap(),
        format!("<care@{}.shop.example>", env.tag)
    );
    assert!(
        email
            .header("From")
            .unwrap()
            .starts_with("\"Acme Outdoor\"")
    );
    assert!(
        email
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    let html = email.part("text/html").unwrap();
    let text = email.part("text/plain").unwrap();
    for part in [&html, &text] {
        assert!(part.contains("Thank you, Ann!"));
        assert!(part.contains("Ridge 2-person tent"));
        assert!(part.contains("€258.95"), "total formatted for EUR in en");
        assert!(part.contains("254 loyalty points"));
        assert!(part.contains("20 November 2026"));
        assert!(
            part.contains("+49 30 1234 5678"),
            "merchant contact card: {part}"
        );
    }
    assert!(html.contains("#0f766e"), "merchant colour");
}

#[tokio::test]
async fn replay_answers_200_and_changes_nothing() {
    let env = Env::new().await;
    let app = app(&env);
    let event = env.http_event(&env.order(), Some(&env.api_key));
    let first = call(&app, event.clone()).await.unwrap();
    assert_eq!(status(&first), 201);
    let before = env.items().await;
    for _ in 0..5 {
        let again = call(&app, event.clone()).await.unwrap();
        assert_eq!(status(&again), 200);
        assert_eq!(body(&again)["order"], body(&first)["order"]);
        assert_eq!(body(&again)["email"]["status"], "sent");
    }
    // Same payload with different formatting is the same order.
    let pretty = serde_json::to_string_pretty(&env.order()).unwrap();
    assert_eq!(
        status(
            &call(&app, env.http_event_raw(&pretty, Some(&env.api_key)))
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(env.items().await, before, "nothing rewritten");
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
}

#[tokio::test]
async fn different_order_under_the_same_id_is_409() {
    let env = Env::new().await;
    let app = app(&env);
    assert_eq!(
        status(
            &call(&app, env.http_event(&env.order(), Some(&env.api_key)))
                .await
                .unwrap()
        ),
        201
    );
    let before = env.items().await;
    let mut changed = env.order();
    changed["items"][1]["quantity"] = 3.into();
    changed["total"] = 27145.into();
    let resp = call(&app, env.http_event(&changed, Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(status(&resp), 409);
    assert_eq!(body(&resp)["error"]["code"], "idempotency_conflict");
    assert_eq!(body(&resp)["error"]["field"], "id");
    assert_eq!(env.items().await, before);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
}

#[tokio::test]
async fn eventbridge_event_takes_the_same_path() {
    let env = Env::new().await;
    let app = app(&env);
    let event = env.order_event(&env.order());
    let out = call(&app, event.clone()).await.unwrap();
    assert_eq!(out["email"]["status"], "sent");
    assert_eq!(out["loyalty"]["points_earned"], 254);
    // EventBridge redelivers with the same event; and the same order may also arrive over HTTP.
    let again = call(&app, event).await.unwrap();
    assert_eq!(again["email"]["status"], "sent");
    let via_http = call(&app, env.http_event(&env.order(), Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(status(&via_http), 200);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(env.items_in("C#cust-4711", "LEDGER#").await.len(), 1);
}

#[tokio::test]
async fn events_for_unknown_merchants_or_bad_orders_fail_and_write_nothing() {
    let env = Env::new().await;
    let app = app(&env);
    let before = env.items().await;
    let mut event = env.order_event(&env.order());
    event["detail"]["merchant_id"] = "no-such-merchant".into();
    assert_eq!(
        call(&app, event).await.unwrap_err().error_type,
        "UnknownMerchant"
    );
    let mut event = env.order_event(&env.order());
    event["detail"]["order"]["currency"] = "XYZ".into();
    let err = call(&app, event).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidEvent");
    assert!(err.message.contains("order.currency"), "{}", err.message);
    let mut event = env.order_event(&env.order());
    event["detail-type"] = "Order Cancelled".into();
    assert_eq!(
        call(&app, event).await.unwrap_err().error_type,
        "InvalidEvent"
    );
    assert_eq!(
        call(&app, serde_json::json!({"hello": "world"}))
            .await
            .unwrap_err()
            .error_type,
        "InvalidEvent"
    );
    assert_eq!(env.items().await, before);
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
}

#[tokio::test]
async fn twenty_concurrent_deliveries_send_one_email_and_award_points_once() {
    let env = Env::new().await;
    let app = Arc::new(app(&env));
    let order = env.order();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = Arc::clone(&app);
        let event = if i % 2 == 0 {
            env.http_event(&order, Some(&env.api_key))
        } else {
            env.order_event(&order)
        };
        tasks.push(tokio::spawn(async move {
            order_placed::handle(&app, event, "concurrent", deadline()).await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        if out.get("statusCode").and_then(Value::as_i64) == Some(201) {
            created += 1;
        }
    }
    assert!(created <= 1);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
    assert_eq!(env.items_in("C#cust-4711", "LEDGER#").await.len(), 1);
    let profile = env.items_in("C#cust-4711", "PROFILE").await;
    assert_eq!(num(&profile[0], "order_count"), 1);
}

#[tokio::test]
async fn customer_profile_accumulates_across_orders() {
    let env = Env::new().await;
    let app = app(&env);
    let first = env.order();
    let mut second = env.order();
    second["id"] = "SO-1002".into();
    second["placed_at"] = "2026-11-21T12:00:00Z".into();
    second["customer"]["locale"] = "de-DE".into();
    for o in [&first, &second] {
        assert_eq!(
            status(
                &call(&app, env.http_event(o, Some(&env.api_key)))
                    .await
                    .unwrap()
            ),
            201
        );
    }
    let agg = env
        .store
        .get_customer(
            &env.merchant.id,
            &aftercare::domain::CustomerId::parse("c", "cust-4711").unwrap(),
        )
        .await
        .unwrap();
    let profile = agg.profile.unwrap();
    assert_eq!(profile.order_count, 2);
    assert_eq!(profile.lifetime_spend.get("EUR"), Some(&(25895 * 2)));
    assert_eq!(profile.first_order_at.to_string(), "2026-11-20T09:30:00Z");
    assert_eq!(profile.last_order_at.to_string(), "2026-11-21T12:00:00Z");
    assert_eq!(agg.orders.len(), 2);
    assert_eq!(agg.ledger.len(), 2);
    // The second order asked for German.
    let emails = env.emails_to(&env.customer_email()).await;
    assert_eq!(emails.len(), 2);
    assert!(
        emails
            .iter()
            .any(|e| e.part("text/plain").unwrap().contains("Vielen Dank, Ann!"))
    );
    assert!(
        emails
            .iter()
            .any(|e| e.part("text/plain").unwrap().contains("258,95"))
    );
}

#[tokio::test]
async fn unknown_malformed_and_revoked_keys_get_401_and_nothing_is_stored() {
    let env = Env::new().await;
    let app = app(&env);
    let before = env.items().await;
    let order = env.order();
    let unknown = aftercare::domain::apikey::issue().unwrap().secret;
    for key in [None, Some("not-a-key"), Some(unknown.as_str()), Some("ak_")] {
        let resp = call(&app, env.http_event(&order, key)).await.unwrap();
        assert_eq!(status(&resp), 401, "{key:?}");
        assert_eq!(body(&resp)["error"]["field"], "Authorization");
        assert_eq!(resp["headers"]["www-authenticate"], "Bearer");
    }
    // Revocation: a fresh instance (no cache) refuses the key at once.
    let keys = env.store.list_api_keys(&env.merchant.id).await.unwrap();
    env.store
        .revoke_api_key(&env.merchant.id, &keys[0].key_id, jiff::Timestamp::now())
        .await
        .unwrap();
    let fresh = app_without_cache(&env);
    let resp = call(&fresh, env.http_event(&order, Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(status(&resp), 401);
    let mut after = env.items().await;
    after.retain(|i| !s(i, "SK").starts_with("APIKEY#"));
    let mut expected = before.clone();
    expected.retain(|i| !s(i, "SK").starts_with("APIKEY#"));
    assert_eq!(after, expected, "only the key's own status changed");
    assert!(env.emails_to(&env.customer_email()).await.is_empty());
}

fn app_without_cache(env: &Env) -> App {
    let mut config = env.config();
    config.key_cache_ttl = std::time::Duration::ZERO;
    App::with_parts(config, env.dynamodb(), env.ses(), Arc::new(SystemClock)).unwrap()
}

#[tokio::test]
async fn aws_calls_per_event_are_minimal() {
    let env = Env::new().await;
    let counter = CallCounter::default();
    let (ddb, ses) = counted_clients(&env.sdk, &counter);
    let app = App::with_parts(env.config(), ddb, ses, Arc::new(SystemClock)).unwrap();

    // Cold instance: key lookup and merchant read, then the three calls of the order itself.
    let resp = call(&app, env.http_event(&env.order(), Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(status(&resp), 201);
    let calls = counter.calls();
    assert_eq!(calls.get("DynamoDB.Query"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DynamoDB.GetItem"), Some(&1), "{calls:?}");
    // The order's write, then (after the email) the count of its units sold.
    assert_eq!(
        calls.get("DynamoDB.TransactWriteItems"),
        Some(&2),
        "{calls:?}"
    );
    assert_eq!(calls.get("SESv2.SendEmail"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DynamoDB.UpdateItem"), Some(&1), "{calls:?}");
    assert_eq!(counter.total_calls(), 6);
    assert_eq!(counter.retries(), 0);

    // Warm instance: key and merchant cached; one write, one send, one record, one count.
    counter.reset();
    let mut next = env.order();
    next["id"] = "SO-1002".into();
    assert_eq!(
        status(
            &call(&app, env.http_event(&next, Some(&env.api_key)))
                .await
                .unwrap()
        ),
        201
    );
    assert_eq!(counter.total_calls(), 4, "{:?}", counter.calls());

    // A replay costs one transactional write attempt and one consistent read (which also says
    // the units are counted); no send, no count.
    counter.reset();
    assert_eq!(
        status(
            &call(&app, env.http_event(&next, Some(&env.api_key)))
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(counter.calls().get("SESv2.SendEmail"), None);
    assert_eq!(counter.total_calls(), 2, "{:?}", counter.calls());
}

/// Units of `sku` counted sold for this test's merchant, every day and shard together.
async fn units_sold(env: &Env, sku: &str) -> u64 {
    env.items_in(&format!("SOLD#{sku}"), "")
        .await
        .iter()
        .map(|i| num(i, "units") as u64)
        .sum()
}

#[tokio::test]
async fn an_order_of_many_skus_counts_every_unit_sold_once_under_concurrent_deliveries() {
    let env = Env::new().await;
    let app = Arc::new(app(&env));
    // 150 SKUs: two writes of the count (99 SKUs each at most), whoever makes them.
    let mut order = env.order();
    order["items"] = (0..150)
        .map(|i| serde_json::json!({"sku": format!("PART-{i:03}"), "name": "Part", "quantity": 3, "unit_price": 100}))
        .collect();
    order["discount"] = 0.into();
    order["total"] = (150 * 300 + 495).into();
    let deliveries = (0..8).map(|_| {
        let (app, event) = (Arc::clone(&app), env.http_event(&order, Some(&env.api_key)));
        tokio::spawn(async move { call(&app, event).await })
    });
    for delivery in futures_util::future::join_all(deliveries).await {
        let resp = delivery.unwrap().unwrap();
        assert!([200, 201].contains(&status(&resp)), "{resp}");
    }
    assert_eq!(
        status(
            &call(&app, env.http_event(&order, Some(&env.api_key)))
                .await
                .unwrap()
        ),
        200
    );
    for sku in ["PART-000", "PART-098", "PART-099", "PART-149"] {
        assert_eq!(units_sold(&env, sku).await, 3, "{sku}");
    }
    let counters: Vec<_> = env
        .items_with_sk("2026-11-20#")
        .await
        .into_iter()
        .filter(|i| s(i, "PK").contains("#SOLD#"))
        .collect();
    assert_eq!(counters.len(), 150, "one counter per SKU of the day");
    let mark = env.items_in("IDEM#order#SO-1001", "IDEMP").await;
    assert_eq!(num(&mark[0], "sold_chunks"), 2);
    // A test order sells nothing.
    let mut test = env.order();
    test["id"] = "SO-T1".into();
    test["test"] = true.into();
    call(&app, env.http_event(&test, Some(&env.api_key)))
        .await
        .unwrap();
    assert_eq!(units_sold(&env, "TENT-2P").await, 0);
}
