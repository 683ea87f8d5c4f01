//! Malformed requests get a clear 4xx naming the field, and nothing is written or sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::SystemClock;
use aftercare_tests::{Env, deadline};
use order_placed::App;
use serde_json::{Value, json};
use std::sync::Arc;

type Mutation = Box<dyn Fn(&mut Value)>;

fn set(path: &'static str, value: Value) -> Mutation {
    Box::new(move |order: &mut Value| {
        let (parent, leaf) = path.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            order
        } else {
            order.pointer_mut(parent).unwrap()
        };
        match target {
            Value::Array(a) => a[leaf.parse::<usize>().unwrap()] = value.clone(),
            other => other[leaf] = value.clone(),
        }
    })
}

fn remove(path: &'static str) -> Mutation {
    Box::new(move |order: &mut Value| {
        let (parent, leaf) = path.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            order
        } else {
            order.pointer_mut(parent).unwrap()
        };
        target.as_object_mut().unwrap().remove(leaf);
    })
}

#[tokio::test]
async fn malformed_orders_are_refused_naming_the_field() {
    let env = Env::new().await;
    let app = App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let before = env.items().await;

    let item = env.order()["items"][0].clone();
    let cases: Vec<(&str, Mutation, &str, &str)> = vec![
        ("missing id", remove("/id"), "id", "required"),
        ("numeric id", set("/id", json!(1001)), "id", "invalid_type"),
        (
            "id with key separator",
            set("/id", json!("SO#1")),
            "id",
            "invalid_format",
        ),
        (
            "overlong id",
            set("/id", json!("x".repeat(200))),
            "id",
            "too_long",
        ),
        (
            "missing placed_at",
            remove("/placed_at"),
            "placed_at",
            "required",
        ),
        (
            "unparseable placed_at",
            set("/placed_at", json!("yesterday")),
            "placed_at",
            "invalid_format",
        ),
        (
            "missing currency",
            remove("/currency"),
            "currency",
            "required",
        ),
        (
            "unknown currency",
            set("/currency", json!("EURO")),
            "currency",
            "invalid_currency",
        ),
        (
            "numeric currency",
            set("/currency", json!(978)),
            "currency",
            "invalid_type",
        ),
        (
            "missing customer",
            remove("/customer"),
            "customer",
            "required",
        ),
        (
            "missing email",
            remove("/customer/email"),
            "customer.email",
            "required",
        ),
        (
            "bad email",
            set("/customer/email", json!("ann-at-example.com")),
            "customer.email",
            "invalid_format",
        ),
        (
            "header injection in email",
            set(
                "/customer/email",
                json!("ann@example.com\r\nBcc: all@example.com"),
            ),
            "customer.email",
            "invalid_format",
        ),
        (
            "newline in first name",
            set("/customer/first_name", json!("Ann\nBcc: x@y.z")),
            "customer.first_name",
            "invalid_characters",
        ),
        (
            "overlong first name",
            set("/customer/first_name", json!("A".repeat(101))),
            "customer.first_name",
            "too_long",
        ),
        (
            "bad locale",
            set("/customer/locale", json!("english!")),
            "customer.locale",
            "invalid_format",
        ),
        (
            "bad time zone",
            set("/customer/time_zone", json!("Mars/Olympus_Mons")),
            "customer.time_zone",
            "invalid_time_zone",
        ),
        ("missing items", remove("/items"), "items", "required"),
        ("no items", set("/items", json!([])), "items", "required"),
        (
            "items not a list",
            set("/items", json!({"sku": "A"})),
            "items",
            "invalid_type",
        ),
        (
            "too many items",
            set("/items", Value::Array(vec![item.clone(); 501])),
            "items",
            "too_many",
        ),
        (
            "zero quantity",
            set("/items/0/quantity", json!(0)),
            "items[0].quantity",
            "out_of_range",
        ),
        (
            "negative quantity",
            set("/items/0/quantity", json!(-2)),
            "items[0].quantity",
            "out_of_range",
        ),
        (
            "string quantity",
            set("/items/0/quantity", json!("2")),
            "items[0].quantity",
            "invalid_type",
        ),
        (
            "fractional quantity",
            set("/items/0/quantity", json!(1.5)),
            "items[0].quantity",
            "invalid_type",
        ),
        (
            "negative price",
            set("/items/1/unit_price", json!(-1250)),
            "items[1].unit_price",
            "negative_amount",
        ),
        (
            "absurd price",
            set("/items/1/unit_price", json!(9_000_000_000_000_000_i64)),
            "items[1].unit_price",
            "out_of_range",
        ),
        (
            "empty item name",
            set("/items/0/name", json!("   ")),
            "items[0].name",
            "required",
        ),
        (
            "script link",
            set("/items/0/url", json!("javascript:alert(document.cookie)")),
            "items[0].url",
            "invalid_format",
        ),
        (
            "missing sku",
            remove("/items/1/sku"),
            "items[1].sku",
            "required",
        ),
        (
            "negative shipping",
            set("/shipping", json!(-495)),
            "shipping",
            "negative_amount",
        ),
        (
            "discount above subtotal",
            set("/discount", json!(999_999)),
            "discount",
            "out_of_range",
        ),
        (
            "wrong total",
            set("/total", json!(100)),
            "total",
            "total_mismatch",
        ),
        ("missing total", remove("/total"), "total", "required"),
        (
            "null total",
            set("/total", Value::Null),
            "total",
            "invalid_type",
        ),
    ];
    assert!(cases.len() >= 30);
    for (name, mutate, field, code) in &cases {
        let mut order = env.order();
        mutate(&mut order);
        let resp = order_placed::handle(
            &app,
            env.http_event(&order, Some(&env.api_key)),
            "bad",
            deadline(),
        )
        .await
        .unwrap();
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        assert_eq!(resp["statusCode"], 400, "{name}: {body}");
        assert_eq!(body["error"]["field"], *field, "{name}: {body}");
        assert_eq!(body["error"]["code"], *code, "{name}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }

    // Requests broken before the order is even read.
    let valid = serde_json::to_string(&env.order()).unwrap();
    let mut raw_cases: Vec<(&str, Value, i64, &str)> = vec![
        (
            "invalid JSON",
            env.http_event_raw("{\"id\": ", Some(&env.api_key)),
            400,
            "invalid_json",
        ),
        (
            "empty body",
            env.http_event_raw("", Some(&env.api_key)),
            400,
            "invalid_json",
        ),
        (
            "JSON array",
            env.http_event_raw("[1,2]", Some(&env.api_key)),
            400,
            "invalid_type",
        ),
        (
            "trailing garbage",
            env.http_event_raw(&format!("{valid} x"), Some(&env.api_key)),
            400,
            "invalid_json",
        ),
        (
            "oversized body",
            env.http_event_raw(&" ".repeat(300 * 1024), Some(&env.api_key)),
            413,
            "body_too_large",
        ),
    ];
    let mut no_body = env.http_event(&env.order(), Some(&env.api_key));
    no_body.as_object_mut().unwrap().remove("body");
    raw_cases.push(("no body", no_body, 400, "required"));
    let mut text = env.http_event(&env.order(), Some(&env.api_key));
    text["headers"]["content-type"] = "text/plain".into();
    raw_cases.push(("text body", text, 415, "unsupported_media_type"));
    let mut bad_b64 = env.http_event(&env.order(), Some(&env.api_key));
    bad_b64["isBase64Encoded"] = true.into();
    bad_b64["body"] = "%%%not-base64%%%".into();
    raw_cases.push(("broken base64", bad_b64, 400, "invalid_body"));
    let mut other_route = env.http_event(&env.order(), Some(&env.api_key));
    other_route["routeKey"] = "POST /v1/refunds".into();
    raw_cases.push(("unknown route", other_route, 404, "not_found"));
    for (name, event, status, code) in raw_cases {
        let resp = order_placed::handle(&app, event, "bad", deadline())
            .await
            .unwrap();
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        assert_eq!(resp["statusCode"], status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }

    assert_eq!(env.items().await, before, "nothing written");
    assert!(
        env.emails_to(&env.customer_email()).await.is_empty(),
        "nothing sent"
    );
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    use base64::Engine;
    let env = Env::new().await;
    let app = App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let mut event = env.http_event(&env.order(), Some(&env.api_key));
    let raw = serde_json::to_vec(&env.order()).unwrap();
    event["body"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
    event["isBase64Encoded"] = true.into();
    let resp = order_placed::handle(&app, event, "b64", deadline())
        .await
        .unwrap();
    assert_eq!(resp["statusCode"], 201);
}

#[tokio::test]
async fn a_key_whose_merchant_is_gone_is_unauthorised() {
    let env = Env::new().await;
    let app = App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let issued = aftercare::domain::apikey::issue().unwrap();
    let orphan = aftercare::domain::apikey::ApiKeyRecord {
        key_id: issued.key_id.clone(),
        merchant_id: aftercare::domain::MerchantId::parse("m", "ghost-merchant").unwrap(),
        status: aftercare::domain::apikey::KeyStatus::Active,
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
        label: None,
    };
    env.store.put_api_key(&orphan, &issued.hash).await.unwrap();
    let before = env.items().await;
    let resp = order_placed::handle(
        &app,
        env.http_event(&env.order(), Some(&issued.secret)),
        "ghost",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(resp["statusCode"], 401);
    assert_eq!(env.items().await, before);
}
