//! Items past their TTL that DynamoDB has not deleted yet (it deletes them some time after they
//! expire): readers treat them as gone where a person would notice, and decisions come out the
//! same whether an expired item is still there or already deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare_tests::{Env, answer, deadline, s, with_query};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::sync::Arc;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn post(env: &Env, app: &order_placed::App, order: &Value) -> (i64, Value) {
    let resp = order_placed::handle(
        app,
        env.http_event(order, Some(&env.api_key)),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    answer(&resp)
}

async fn get(
    env: &Env,
    app: &email_events::App,
    route: &str,
    path: &str,
    query: &str,
) -> (i64, String) {
    let mut event = env.api_event(
        route,
        &format!("/v1/customers/cust-4711/{path}"),
        &[("customerId", "cust-4711")],
        None,
        Some(&env.api_key),
    );
    with_query(&mut event, query);
    let resp = email_events::handle(app, event, "t", deadline())
        .await
        .unwrap();
    (
        resp["statusCode"].as_i64().unwrap(),
        resp["body"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_send_record_past_its_retention_leaves_the_message_log_before_dynamodb_deletes_it() {
    let mut env = Env::new().await;
    env.merchant.settings.retention.message_log_days = Some(30);
    env.save_merchant().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-20T10:00:00Z")));
    let orders =
        order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
            .unwrap();
    let log = email_events::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
        .unwrap();
    let (status, _) = post(&env, &orders, &env.order()).await;
    assert_eq!(status, 201);
    let explain = "kind=order_thanks&order=SO-1001";

    // On the last day of its retention the thank-you is in the log and can be explained.
    clock.set(t("2026-12-20T09:59:59Z"));
    let (status, body) = get(&env, &log, email_events::ROUTE_MESSAGES, "messages", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("order_thanks"), "{body}");
    let (status, _) = get(&env, &log, email_events::ROUTE_EXPLAIN, "explain", explain).await;
    assert_eq!(status, 200);

    // A second later it has expired: the record is still in the table, and shown nowhere.
    clock.set(t("2026-12-20T10:00:00Z"));
    let record = env
        .items_in("C#cust-4711#SEND", "SEND#cust-4711#order_thanks#")
        .await;
    assert_eq!(
        record.len(),
        1,
        "DynamoDB has not deleted it (moto never does)"
    );
    assert_eq!(
        aftercare_tests::num(&record[0], "expires_at"),
        t("2026-12-20T10:00:00Z").as_second()
    );
    let (status, body) = get(&env, &log, email_events::ROUTE_MESSAGES, "messages", "").await;
    assert_eq!(status, 200);
    assert!(!body.contains("order_thanks"), "{body}");
    let (status, body) = get(&env, &log, email_events::ROUTE_EXPLAIN, "explain", explain).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn an_order_posted_again_after_its_idempotency_record_expired_is_still_one_order() {
    let env = Env::new().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-20T10:00:00Z")));
    let orders =
        order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
            .unwrap();
    let order = env.order();
    let (status, first) = post(&env, &orders, &order).await;
    assert_eq!(status, 201, "{first}");
    let idem = env.items_with_sk("IDEMP").await;
    assert_eq!(idem.len(), 1);
    let idem_expiry = aftercare_tests::num(&idem[0], "expires_at");

    // Past the idempotency record's expiry, first with the record still there, then deleted.
    clock.set(Timestamp::from_second(idem_expiry).unwrap() + SignedDuration::from_hours(1));
    let (status, present) = post(&env, &orders, &order).await;
    env.dynamodb()
        .delete_item()
        .table_name(&env.table)
        .key("PK", AttributeValue::S(s(&idem[0], "PK")))
        .key("SK", AttributeValue::S(s(&idem[0], "SK")))
        .send()
        .await
        .unwrap();
    let (status_deleted, deleted) = post(&env, &orders, &order).await;
    assert_eq!(status, 200, "{present}");
    assert_eq!((status_deleted, &deleted), (status, &present));
    assert_eq!(
        present["received_at"], first["received_at"],
        "the stored order answers"
    );
    assert_eq!(present["loyalty"]["points_earned"], 254);
    assert_eq!(present["email"]["status"], "sent");

    // One order, one ledger entry, one email.
    assert_eq!(env.items_in("O#SO-1001", "ORDER").await.len(), 1);
    assert_eq!(env.items_in("C#cust-4711", "LEDGER#").await.len(), 1);
    assert_eq!(env.emails_to(&env.customer_email()).await.len(), 1);
}
