//! The loyalty ledger and referrals over the real SDK against moto: 50 concurrent redemptions never
//! overdraw, redemptions are idempotent per key, pending points cannot be spent, adjustments need
//! a reason, and a referral rewards the referrer exactly once (self-referral and repeat referral
//! refused with their reason).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare::token::SigningKey;
use aftercare_tests::{Env, deadline, s};
use order_placed::App;
use serde_json::{Value, json};
use std::sync::Arc;

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

fn loyalty_event(
    env: &Env,
    route: &str,
    customer: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> Value {
    let path = match route {
        order_placed::loyalty::ROUTE_GET => format!("/v1/customers/{customer}/loyalty"),
        order_placed::loyalty::ROUTE_REDEEM => {
            format!("/v1/customers/{customer}/loyalty/redemptions")
        }
        _ => format!("/v1/customers/{customer}/loyalty/adjustments"),
    };
    let body = body.map(|b| b.to_string());
    let mut event = env.api_event(
        route,
        &path,
        &[("customerId", customer)],
        body.as_deref(),
        Some(&env.api_key),
    );
    if let Some(k) = key {
        event["headers"]["idempotency-key"] = k.into();
    }
    event
}

async fn balance(app: &App, env: &Env, customer: &str) -> Value {
    let resp = call(
        app,
        loyalty_event(env, order_placed::loyalty::ROUTE_GET, customer, None, None),
    )
    .await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    body(&resp)
}

#[tokio::test]
async fn fifty_concurrent_redemptions_never_overdraw_and_each_key_redeems_once() {
    let env = Env::new().await;
    let app = app(&env);
    let order = env.order();
    let resp = call(&app, env.http_event(&order, Some(&env.api_key))).await;
    assert_eq!(resp["statusCode"], 201);
    let c = "cust-4711";

    // The order's 254 points are pending: nothing can be spent yet.
    let b = balance(&app, &env, c).await;
    assert_eq!(b["balance"]["pending"], 254);
    assert_eq!(b["balance"]["available"], 0);
    let resp = call(
        &app,
        loyalty_event(
            &env,
            order_placed::loyalty::ROUTE_REDEEM,
            c,
            Some(json!({"points": 10})),
            Some("early"),
        ),
    )
    .await;
    assert_eq!(resp["statusCode"], 422);
    assert_eq!(body(&resp)["error"]["code"], "insufficient_points");
    assert_eq!(body(&resp)["error"]["field"], "points");

    // An adjustment needs a reason; with one, it credits 1000 at once.
    let adjust = |points: i64, reason: Option<&str>, key: &str| {
        let mut b = json!({"points": points});
        if let Some(r) = reason {
            b["reason"] = r.into();
        }
        loyalty_event(
            &env,
            order_placed::loyalty::ROUTE_ADJUST,
            c,
            Some(b),
            Some(key),
        )
    };
    let resp = call(&app, adjust(1000, None, "a0")).await;
    assert_eq!(
        (
            resp["statusCode"].as_i64(),
            body(&resp)["error"]["field"].as_str()
        ),
        (Some(422), Some("reason"))
    );
    let resp = call(&app, adjust(1000, Some("welcome bonus"), "a1")).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    assert_eq!(body(&resp)["balance"]["available"], 1000);

    // 50 concurrent redemptions of 30 points (1500 asked of 1000).
    let events: Vec<Value> = (0..50)
        .map(|i| {
            loyalty_event(
                &env,
                order_placed::loyalty::ROUTE_REDEEM,
                c,
                Some(json!({"points": 30})),
                Some(&format!("r{i}")),
            )
        })
        .collect();
    let results = futures_util::future::join_all(events.into_iter().map(|e| call(&app, e))).await;
    let mut ok = 0;
    for r in &results {
        match r["statusCode"].as_i64().unwrap() {
            201 => ok += 1,
            422 => assert_eq!(body(r)["error"]["code"], "insufficient_points"),
            503 => {}
            other => panic!("unexpected {other}: {r}"),
        }
    }
    let b = balance(&app, &env, c).await;
    let available = b["balance"]["available"].as_i64().unwrap();
    assert!(ok >= 1);
    assert!(available >= 0);
    assert_eq!(
        available,
        1000 - 30 * ok,
        "{ok} redemptions of 30 from 1000"
    );
    assert_eq!(b["balance"]["redeemed"], 30 * ok);
    let redeem_entries = env.items_in("C#cust-4711", "LEDGER#redeem:").await;
    assert_eq!(redeem_entries.len() as i64, ok);

    // Replaying a key that redeemed answers the same, without a second entry; other points → 409.
    let winner = results.iter().position(|r| r["statusCode"] == 201).unwrap();
    let replay = loyalty_event(
        &env,
        order_placed::loyalty::ROUTE_REDEEM,
        c,
        Some(json!({"points": 30})),
        Some(&format!("r{winner}")),
    );
    let resp = call(&app, replay).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(body(&resp)["entry"]["points"], -30);
    let other = loyalty_event(
        &env,
        order_placed::loyalty::ROUTE_REDEEM,
        c,
        Some(json!({"points": 31})),
        Some(&format!("r{winner}")),
    );
    let resp = call(&app, other).await;
    assert_eq!(resp["statusCode"], 409);
    assert_eq!(
        env.items_in("C#cust-4711", "LEDGER#redeem:").await.len() as i64,
        ok
    );

    // History is newest first and paged with an opaque cursor.
    let mut get = loyalty_event(&env, order_placed::loyalty::ROUTE_GET, c, None, None);
    get["queryStringParameters"] = json!({"limit": "2"});
    get["rawQueryString"] = "limit=2".into();
    let page = body(&call(&app, get).await);
    assert_eq!(page["history"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());

    // Without a key, or for a stranger: refused, nothing written.
    let resp = call(
        &app,
        loyalty_event(
            &env,
            order_placed::loyalty::ROUTE_REDEEM,
            c,
            Some(json!({"points": 1})),
            None,
        ),
    )
    .await;
    assert_eq!(body(&resp)["error"]["field"], "Idempotency-Key");
    let resp = call(
        &app,
        loyalty_event(
            &env,
            order_placed::loyalty::ROUTE_REDEEM,
            "nobody",
            Some(json!({"points": 1})),
            Some("x"),
        ),
    )
    .await;
    assert_eq!(resp["statusCode"], 404);
}

#[tokio::test]
async fn a_referral_rewards_the_referrer_once_and_refuses_self_and_repeat_referrals() {
    let env = Env::new().await;
    let app = app(&env);
    let ann = env.order();
    let resp = call(&app, env.http_event(&ann, Some(&env.api_key))).await;
    let code = body(&resp)["loyalty"]["referral_code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 14, "{code}");
    let sent = env.emails_to(&env.customer_email()).await;
    assert!(
        sent[0].part("text/plain").unwrap().contains(&code),
        "the thank-you email shows the code"
    );

    let order_by = |id: &str, customer: &str, email: &str, code: &str| {
        let mut o = env.order();
        o["id"] = id.into();
        o["customer"]["id"] = customer.into();
        o["customer"]["email"] = email.into();
        o["referral_code"] = code.into();
        env.http_event(&o, Some(&env.api_key))
    };
    let bob = format!("bob.{}@example.com", env.tag);
    // Typed loosely (lower case, no dashes): still Ann's code.
    let loose = code.to_lowercase().replace('-', "");
    let resp = call(&app, order_by("SO-2001", "cust-bob", &bob, &loose)).await;
    assert_eq!(resp["statusCode"], 201, "{resp}");
    let referral = &body(&resp)["loyalty"]["referral"];
    assert_eq!(referral["status"], "recorded", "{referral}");
    assert_eq!(referral["reward_points"], 500);

    // The replayed order records nothing more.
    let resp = call(&app, order_by("SO-2001", "cust-bob", &bob, &loose)).await;
    assert_eq!(resp["statusCode"], 200);
    assert_eq!(body(&resp)["loyalty"]["referral"]["status"], "recorded");
    let rewards = env.items_in("C#cust-4711", "LEDGER#referral:").await;
    assert_eq!(rewards.len(), 1);
    let b = balance(&app, &env, "cust-4711").await;
    assert_eq!(
        b["balance"]["pending"],
        254 + 500,
        "the reward is pending like the order's points"
    );

    // Bob again, with another order: he was referred already.
    let resp = call(&app, order_by("SO-2002", "cust-bob", &bob, &code)).await;
    assert_eq!(
        body(&resp)["loyalty"]["referral"]["reason"],
        "already_referred"
    );
    // Ann with her own code, and "someone else" with Ann's email: self-referral.
    let resp = call(
        &app,
        order_by("SO-2003", "cust-4711", &env.customer_email(), &code),
    )
    .await;
    assert_eq!(
        body(&resp)["loyalty"]["referral"]["reason"],
        "self_referral"
    );
    let resp = call(
        &app,
        order_by(
            "SO-2004",
            "cust-ann-2",
            &env.customer_email().to_uppercase(),
            &code,
        ),
    )
    .await;
    assert_eq!(
        body(&resp)["loyalty"]["referral"]["reason"],
        "self_referral"
    );
    // A code nobody has.
    let resp = call(
        &app,
        order_by("SO-2005", "cust-cat", "cat@example.com", "ZZZZ-ZZZZ-ZZZZ"),
    )
    .await;
    assert_eq!(body(&resp)["loyalty"]["referral"]["reason"], "unknown_code");
    // Every refused order still placed; still one reward.
    assert_eq!(
        env.items_in("C#cust-4711", "LEDGER#referral:").await.len(),
        1
    );
    let orders = env.items_with_sk("ORDER").await;
    let placed = orders
        .iter()
        .filter(|i| s(i, "SK") == "ORDER" && s(i, "PK").contains("#O#SO-200"))
        .count();
    assert_eq!(placed, 5);
}
