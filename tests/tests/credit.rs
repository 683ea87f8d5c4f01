//! Store credit over the real SDK against moto: an issue posts once per source, 50 concurrent
//! redemptions never overdraw, a redemption's Idempotency-Key replayed 100 times answers the same
//! and posts once (another amount under it is a conflict), adjustments never go below zero, and
//! every store condition refuses a posting decided on a stale read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare::domain::credit::{CreditPosting, issue, redeem};
use aftercare::domain::{Currency, CustomerId, Money};
use aftercare::ports::credit::CreditBook;
use aftercare::token::SigningKey;
use aftercare::usecases::credit::{CreditIssued, StoreCredit};
use aftercare_tests::{Env, deadline, num, s};
use order_placed::App;
use order_placed::credit::{ROUTE_ADJUST, ROUTE_GET, ROUTE_REDEEM};
use serde_json::{Value, json};
use std::sync::Arc;

const C: &str = "cust-4711";

fn app(env: &Env) -> App {
    let config = env
        .config()
        .with_signing_key(SigningKey::new(&[9u8; 32]).unwrap());
    App::with_parts(config, env.dynamodb(), env.ses(), Arc::new(SystemClock)).unwrap()
}

async fn call(app: &App, event: Value) -> Value {
    order_placed::handle(app, event, "test-request", deadline())
        .await
        .unwrap()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("currency", "EUR").unwrap())
}

fn customer() -> CustomerId {
    CustomerId::parse("customerId", C).unwrap()
}

/// A store credit API request for `customer`, with `key` as its Idempotency-Key.
fn credit_event(
    env: &Env,
    route: &str,
    customer: &str,
    body: Option<Value>,
    key: Option<&str>,
    api_key: &str,
) -> Value {
    let path = match route {
        ROUTE_GET => format!("/v1/customers/{customer}/credit"),
        ROUTE_REDEEM => format!("/v1/customers/{customer}/credit/redemptions"),
        _ => format!("/v1/customers/{customer}/credit/adjustments"),
    };
    let body = body.map(|b| b.to_string());
    let mut event = env.api_event(
        route,
        &path,
        &[("customerId", customer)],
        body.as_deref(),
        Some(api_key),
    );
    if let Some(k) = key {
        event["headers"]["idempotency-key"] = k.into();
    }
    event
}

fn redemption(env: &Env, amount: i64, key: &str) -> Value {
    credit_event(
        env,
        ROUTE_REDEEM,
        C,
        Some(json!({"amount": amount, "currency": "EUR", "order_id": "SO-9"})),
        Some(key),
        &env.api_key,
    )
}

/// The customer (their order placed) and an app.
async fn world() -> (Env, App) {
    let env = Env::new().await;
    let app = app(&env);
    let resp = call(&app, env.http_event(&env.order(), Some(&env.api_key))).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    (env, app)
}

async fn issue_for(app: &App, env: &Env, source: &str, amount: i64, bonus: i64) -> CreditIssued {
    StoreCredit { book: &app.store }
        .issue(
            &env.merchant.id,
            &customer(),
            eur(amount),
            bonus,
            source,
            Some("returned: too small"),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
}

async fn statement(app: &App, env: &Env) -> Value {
    let resp = call(
        app,
        credit_event(env, ROUTE_GET, C, None, None, &env.api_key),
    )
    .await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    body(&resp)
}

async fn entries(env: &Env, prefix: &str) -> usize {
    env.items_in(&format!("C#{C}"), &format!("CREDITLOG#{prefix}"))
        .await
        .len()
}

#[tokio::test]
async fn an_issue_posts_once_per_source_and_fifty_concurrent_redemptions_never_overdraw() {
    let (env, app) = world().await;

    // A return's credit with a 10 % bonus, issued twice: one entry, the same figures.
    let first = issue_for(&app, &env, "return-r1", 1_000, 100).await;
    assert_eq!(
        (first.total, first.balance_after, first.fresh),
        (1_100, 1_100, true)
    );
    let again = issue_for(&app, &env, "return-r1", 1_000, 100).await;
    assert_eq!(
        again,
        CreditIssued {
            fresh: false,
            ..first.clone()
        }
    );
    assert_eq!(entries(&env, "issue:").await, 1);
    let st = statement(&app, &env).await;
    assert_eq!(
        st["balances"],
        json!([{"currency": "EUR", "balance": 1100, "issued": 1100, "redeemed": 0}])
    );
    assert_eq!(st["history"][0]["bonus"], 100);

    // 50 concurrent redemptions of 30 (1500 asked of 1100).
    let events: Vec<Value> = (0..50)
        .map(|i| redemption(&env, 30, &format!("r{i}")))
        .collect();
    let results = futures_util::future::join_all(events.into_iter().map(|e| call(&app, e))).await;
    let mut ok = 0;
    let mut won = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match r["statusCode"].as_i64().unwrap() {
            201 => {
                ok += 1;
                won.push(format!("CREDITLOG#redeem:r{i}"));
            }
            422 => {
                assert_eq!(body(r)["error"]["code"], "insufficient_credit");
                assert_eq!(body(r)["error"]["field"], "amount");
            }
            503 => {}
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert!(ok >= 1);
    assert!(30 * ok <= 1_100, "{ok} redemptions of 30 from 1100");
    let st = statement(&app, &env).await;
    assert_eq!(st["balances"][0]["balance"], 1_100 - 30 * ok);
    assert_eq!(st["balances"][0]["redeemed"], 30 * ok);
    // Exactly the successful ones have entries.
    let mut posted: Vec<String> = env
        .items_in(&format!("C#{C}"), "CREDITLOG#redeem:")
        .await
        .iter()
        .map(|i| s(i, "SK"))
        .collect();
    posted.sort();
    won.sort();
    assert_eq!(posted, won);
    // The stored summary agrees, and its version counts every entry.
    let summary = env.items_in(&format!("C#{C}"), "CREDIT#EUR").await;
    assert_eq!(summary.len(), 1);
    assert_eq!(num(&summary[0], "balance"), 1_100 - 30 * ok);
    assert_eq!(num(&summary[0], "version"), 1 + ok);

    // The ledger is newest first and paged with an opaque cursor.
    let mut get = credit_event(&env, ROUTE_GET, C, None, None, &env.api_key);
    aftercare_tests::with_query(&mut get, "limit=2");
    let page = body(&call(&app, get).await);
    assert_eq!(page["history"].as_array().unwrap().len(), 2);
    assert_eq!(page["history"][0]["kind"], "redeemed");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut get = credit_event(&env, ROUTE_GET, C, None, None, &env.api_key);
    aftercare_tests::with_query(&mut get, &format!("limit=100&cursor={cursor}"));
    let rest = body(&call(&app, get).await);
    let rest = rest["history"].as_array().unwrap();
    assert_eq!(rest.len() as i64, 1 + ok - 2);
    assert_eq!(rest.last().unwrap()["kind"], "issued");
}

#[tokio::test]
async fn a_redemption_replayed_a_hundred_times_answers_the_same_and_posts_once() {
    let (env, app) = world().await;
    issue_for(&app, &env, "return-r1", 5_000, 0).await;
    let results = futures_util::future::join_all(
        (0..100).map(|_| call(&app, redemption(&env, 1_250, "checkout-1"))),
    )
    .await;
    let statuses: Vec<i64> = results
        .iter()
        .map(|r| r["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    let answers: Vec<Value> = results.iter().map(body).collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "the same answer");
    assert_eq!(
        answers[0]["balance"],
        json!({"currency": "EUR", "balance": 3750})
    );
    assert_eq!(answers[0]["entry"]["amount"], -1_250);
    assert_eq!(answers[0]["entry"]["order_id"], "SO-9");
    assert_eq!(entries(&env, "redeem:").await, 1);

    // Once more after a later posting: still the first answer (the balance right after it).
    issue_for(&app, &env, "return-r2", 100, 0).await;
    let resp = call(&app, redemption(&env, 1_250, "checkout-1")).await;
    assert_eq!(
        (resp["statusCode"].as_i64(), body(&resp)),
        (Some(200), answers[0].clone())
    );

    // The same key with another amount: a conflict, nothing written.
    let resp = call(&app, redemption(&env, 1_000, "checkout-1")).await;
    assert_eq!(resp["statusCode"], 409, "{resp}");
    assert_eq!(body(&resp)["error"]["code"], "idempotency_conflict");
    assert_eq!(body(&resp)["error"]["field"], "Idempotency-Key");
    assert_eq!(entries(&env, "redeem:").await, 1);
    assert_eq!(statement(&app, &env).await["balances"][0]["balance"], 3_850);
}

#[tokio::test]
async fn adjustments_need_a_reason_and_never_take_the_balance_below_zero() {
    let (env, app) = world().await;
    issue_for(&app, &env, "return-r1", 500, 0).await;
    let adjust = |amount: i64, reason: Option<&str>, key: Option<&str>| {
        let mut b = json!({"amount": amount, "currency": "EUR"});
        if let Some(r) = reason {
            b["reason"] = r.into();
        }
        credit_event(&env, ROUTE_ADJUST, C, Some(b), key, &env.api_key)
    };
    let refused = |resp: &Value| {
        (
            resp["statusCode"].as_i64().unwrap(),
            body(resp)["error"]["code"].as_str().unwrap().to_owned(),
            body(resp)["error"]["field"].as_str().unwrap().to_owned(),
        )
    };
    let resp = call(&app, adjust(100, None, Some("a0"))).await;
    assert_eq!(refused(&resp), (400, "required".into(), "reason".into()));
    let resp = call(&app, adjust(100, Some("goodwill"), None)).await;
    assert_eq!(
        refused(&resp),
        (400, "required".into(), "Idempotency-Key".into())
    );
    let resp = call(&app, adjust(-501, Some("typo"), Some("a1"))).await;
    assert_eq!(
        refused(&resp),
        (422, "insufficient_credit".into(), "amount".into())
    );
    let resp = call(&app, adjust(-500, Some("typo"), Some("a2"))).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    assert_eq!(body(&resp)["balance"]["balance"], 0);
    let resp = call(&app, adjust(250, Some("goodwill"), Some("a3"))).await;
    assert_eq!(body(&resp)["entry"]["note"], "goodwill");
    assert_eq!(body(&resp)["balance"]["balance"], 250);
    let resp = call(&app, adjust(250, Some("other reason"), Some("a3"))).await;
    assert_eq!(resp["statusCode"], 409);
    // Bad input names its field; an unknown customer is not found.
    let bad = credit_event(
        &env,
        ROUTE_REDEEM,
        C,
        Some(json!({"amount": 5, "currency": "EURO"})),
        Some("k"),
        &env.api_key,
    );
    assert_eq!(
        refused(&call(&app, bad).await),
        (422, "invalid_currency".into(), "currency".into())
    );
    let bad = credit_event(
        &env,
        ROUTE_REDEEM,
        C,
        Some(json!({"amount": 0, "currency": "EUR"})),
        Some("k"),
        &env.api_key,
    );
    assert_eq!(
        refused(&call(&app, bad).await),
        (422, "out_of_range".into(), "amount".into())
    );
    let nobody = credit_event(
        &env,
        ROUTE_REDEEM,
        "nobody",
        Some(json!({"amount": 5, "currency": "EUR"})),
        Some("k"),
        &env.api_key,
    );
    assert_eq!(call(&app, nobody).await["statusCode"], 404);
    let nobody = credit_event(&env, ROUTE_GET, "nobody", None, None, &env.api_key);
    assert_eq!(call(&app, nobody).await["statusCode"], 404);
    assert_eq!(entries(&env, "").await, 3, "the issue and two adjustments");
}

#[tokio::test]
async fn another_merchants_key_can_neither_read_nor_redeem_the_credit() {
    let (env, app) = world().await;
    issue_for(&app, &env, "return-r1", 500, 0).await;
    let other = env.add_merchant("other").await;
    let get = credit_event(&env, ROUTE_GET, C, None, None, &other.api_key);
    assert_eq!(call(&app, get).await["statusCode"], 404);
    let redeem = credit_event(
        &env,
        ROUTE_REDEEM,
        C,
        Some(json!({"amount": 100, "currency": "EUR"})),
        Some("x1"),
        &other.api_key,
    );
    assert_eq!(call(&app, redeem).await["statusCode"], 404);
    let redeem = credit_event(
        &env,
        ROUTE_REDEEM,
        C,
        Some(json!({"amount": 100, "currency": "EUR"})),
        Some("x1"),
        "ak_not_a_key",
    );
    assert_eq!(call(&app, redeem).await["statusCode"], 401);
    assert_eq!(entries(&env, "redeem:").await, 0);
    assert_eq!(statement(&app, &env).await["balances"][0]["balance"], 500);
}

/// The entry's condition: one entry per source, even from a caller that posts on a current
/// summary without looking for the entry first (a replay never posts twice).
#[tokio::test]
async fn the_credit_ledger_takes_one_entry_per_source_even_from_a_caller_that_did_not_look() {
    let (env, app) = world().await;
    let (m, c) = (&env.merchant.id, &customer());
    let now = jiff::Timestamp::now();
    let read = app
        .store
        .read(m, c, eur(0).currency, "issue:return-r1")
        .await
        .unwrap();
    let entry = issue(&read.summary, "return-r1", eur(700), 0, None, now).unwrap();
    let posted = app.store.post(m, c, &read.summary, &entry).await.unwrap();
    let CreditPosting::Done(after) = posted else {
        panic!("{posted:?}")
    };
    // The same entry again, on the summary as it now is: refused by the entry's condition alone.
    assert_eq!(
        app.store.post(m, c, &after, &entry).await.unwrap(),
        CreditPosting::Duplicate
    );
    let st = app.store.statement(m, c).await.unwrap();
    assert_eq!((st.entries.len(), st.summaries[0].balance), (1, 700));
}

/// The summary's conditions: a first posting of a currency (no summary read) and a later one
/// (`version = :v`) both refuse to commit on a read another posting has moved on from.
#[tokio::test]
async fn a_credit_posting_decided_on_a_stale_read_writes_nothing() {
    let (env, app) = world().await;
    let (m, c) = (&env.merchant.id, &customer());
    let now = jiff::Timestamp::now();
    let first = app
        .store
        .read(m, c, eur(0).currency, "issue:return-r2")
        .await
        .unwrap();
    assert_eq!(first.summary.version, 0);
    issue_for(&app, &env, "return-r1", 1_000, 0).await;
    let late = issue(&first.summary, "return-r2", eur(5), 0, None, now).unwrap();
    assert_eq!(
        app.store.post(m, c, &first.summary, &late).await.unwrap(),
        CreditPosting::Stale
    );

    let stale = app
        .store
        .read(m, c, eur(0).currency, "redeem:k2")
        .await
        .unwrap();
    assert_eq!(stale.summary.balance, 1_000);
    let resp = call(&app, redemption(&env, 1_000, "k1")).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    // Decided on the old read the balance allows it; the write's condition does not.
    let overdraw = redeem(&stale.summary, "k2", 1_000, None, "h", now).unwrap();
    assert_eq!(
        app.store
            .post(m, c, &stale.summary, &overdraw)
            .await
            .unwrap(),
        CreditPosting::Stale
    );
    let st = app.store.statement(m, c).await.unwrap();
    assert_eq!((st.entries.len(), st.summaries[0].balance), (2, 0));
}
