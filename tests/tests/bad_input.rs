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

/// `POST /v1/billing-events` bounds amounts as orders do: an invoice or refund amount past
/// `MAX_AMOUNT` is refused naming the field and stores nothing. (Found while testing the API
/// against docs/openapi.yaml: two recovered invoices of `i64::MAX` made `GET
/// /v1/billing/recovery` overflow its per-currency sum and answer 502.) Amounts up to the bound
/// sum in the recovery report.
#[tokio::test]
async fn billing_event_amounts_are_bounded_and_the_recovery_report_sums_them() {
    use aftercare::domain::money::MAX_AMOUNT;
    let env = Env::new().await;
    let key = aftercare::token::SigningKey::new(&[9u8; 32]).unwrap();
    let mut config = env.config().with_signing_key(key.clone());
    config.public_base_url = Some("https://api.test".into());
    let app =
        billing_alert::App::with_parts(config, env.dynamodb(), env.ses(), Arc::new(SystemClock))
            .unwrap();
    let links = billing_alert::Links::new("https://api.test", key);
    let post = |body: Value| {
        env.api_event(
            billing_alert::ROUTE_EVENTS,
            "/v1/billing-events",
            &[],
            Some(&body.to_string()),
            Some(&env.api_key),
        )
    };
    let event = |id: &str, kind: &str, invoice: &str, amount: i64| {
        json!({"id": id, "type": kind,
               "customer": {"id": "cus_big", "email": env.customer_email()},
               "invoice": {"id": invoice, "amount": amount, "currency": "EUR"}})
    };
    let answer = |resp: Value| -> (i64, Value) {
        let body = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        (resp["statusCode"].as_i64().unwrap(), body)
    };

    let before = env.items().await;
    let refund = json!({"id": "ev-refund-big", "type": "refund",
        "customer": {"id": "cus_big", "email": env.customer_email()},
        "refund": {"id": "re_big", "amount": i64::MAX, "currency": "EUR", "order_id": "SO-1001"}});
    for (body, field) in [
        (
            event("ev-big", "payment_failed", "inv-big", i64::MAX),
            "invoice.amount",
        ),
        (
            event("ev-big-2", "payment_succeeded", "inv-big", MAX_AMOUNT + 1),
            "invoice.amount",
        ),
        (refund, "refund.amount"),
    ] {
        let resp = billing_alert::handle(&app, &links, post(body), "big", deadline())
            .await
            .unwrap();
        let (status, body) = answer(resp);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "out_of_range", "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    assert_eq!(env.items().await, before, "nothing stored");

    // Two invoices of the largest amount, failed then paid: the report adds them up.
    for n in 1..=2 {
        let invoice = format!("inv-max-{n}");
        for kind in ["payment_failed", "payment_succeeded"] {
            let body = event(&format!("ev-{kind}-{n}"), kind, &invoice, MAX_AMOUNT);
            let resp = billing_alert::handle(&app, &links, post(body), "max", deadline())
                .await
                .unwrap();
            let (status, body) = answer(resp);
            assert_eq!(status, 200, "{body}");
        }
    }
    let report = env.api_event(
        billing_alert::ROUTE_RECOVERY,
        "/v1/billing/recovery",
        &[],
        None,
        Some(&env.api_key),
    );
    let resp = billing_alert::handle(&app, &links, report, "report", deadline())
        .await
        .unwrap();
    let (status, body) = answer(resp);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recovered"], 2, "{body}");
    assert_eq!(
        body["recovered_amount"],
        json!([{"currency": "EUR", "amount": 2 * MAX_AMOUNT}]),
        "{body}"
    );
}

/// Report periods never reach before year 0: RFC 3339 (and the spec's `date-time` / `date`) has no
/// room for jiff's signed six-digit years, which `GET /v1/feedback`, `/v1/billing/recovery` and
/// `/v1/analytics/email` used to answer (`"from": "-000001-12-06T00:00:00Z"` for `?to=0000-01-05`,
/// found testing against docs/openapi.yaml). A default start is clamped to 0000-01-01; an explicit
/// one before it is refused naming the field.
#[tokio::test]
async fn report_periods_stay_within_rfc3339_years() {
    let env = Env::new().await;
    let key = aftercare::token::SigningKey::new(&[9u8; 32]).unwrap();
    let mut config = env.config().with_signing_key(key.clone());
    config.public_base_url = Some("https://api.test".into());
    let app = App::with_parts(config, env.dynamodb(), env.ses(), Arc::new(SystemClock)).unwrap();
    let billing_links = billing_alert::Links::new("https://api.test", key.clone());
    let survey_links = survey_sender::Links::new("https://api.test", key);
    let get = |route: &str, query: &[(&str, &str)]| {
        let (_, path) = route.split_once(' ').unwrap();
        let mut event = env.api_event(route, path, &[], None, Some(&env.api_key));
        event["queryStringParameters"] = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        event
    };
    let call = async |route: &str, query: &[(&str, &str)]| -> (i64, Value) {
        let event = get(route, query);
        let resp = match route {
            billing_alert::ROUTE_RECOVERY => {
                billing_alert::handle(&app, &billing_links, event, "p", deadline()).await
            }
            survey_sender::ROUTE_FEEDBACK => {
                survey_sender::handle(&app, &survey_links, event, "p", deadline()).await
            }
            _ => email_events::handle(&app, event, "p", deadline()).await,
        }
        .unwrap();
        let body = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        (resp["statusCode"].as_i64().unwrap(), body)
    };
    for (route, earliest) in [
        (billing_alert::ROUTE_RECOVERY, "0000-01-01T00:00:00Z"),
        (survey_sender::ROUTE_FEEDBACK, "0000-01-01T00:00:00Z"),
        (email_events::ROUTE_ANALYTICS, "0000-01-01"),
    ] {
        let (status, body) = call(route, &[("to", "0000-01-05")]).await;
        assert_eq!(status, 200, "{route}: {body}");
        assert_eq!(body["from"], earliest, "{route}: {body}");
        let (status, body) = call(route, &[("from", "-000001-12-06"), ("to", "0000-01-05")]).await;
        assert_eq!(status, 400, "{route}: {body}");
        assert_eq!(body["error"]["code"], "invalid_format", "{route}: {body}");
        assert_eq!(body["error"]["field"], "from", "{route}: {body}");
    }
    let (status, body) = call(billing_alert::ROUTE_RECOVERY, &[("to", "0000-01-01")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "to", "{body}");
}
