//! The catalogue as its own items, over the real SDK against moto: 5,000 products stored through
//! the bulk path, follow-ups whose usage tips (localised, else the merchant's default locale) and
//! cross-sell come from the products of their order at the cost of at most one more BatchGetItem,
//! and the products API (its four routes, bad input, and one merchant's key never reaching another
//! merchant's products).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::OrderId;
use aftercare::domain::followup::AnchorReason;
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare::usecases::catalogue::{MAX_BULK, Outcome, Products};
use aftercare_tests::counter::{CallCounter, counted_clients};
use aftercare_tests::{Env, SentEmail, long_deadline};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const BASE: &str = "https://api.test";
/// Products in the catalogue (the issue asks for at least 5,000 against moto).
const PRODUCTS: usize = 5_000;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn key() -> SigningKey {
    SigningKey::new(&[42u8; 32]).unwrap()
}

fn sku(i: usize) -> String {
    format!("P#{i:05}")
}

/// Product `i`: tips in English and German, three related products (one of them bought along).
fn product(i: usize) -> Value {
    json!({
        "sku": sku(i),
        "name": format!("Product {i}"),
        "url": format!("https://shop.test/p/{i}"),
        "price": 1000 + i, "currency": "EUR",
        "tips": {"en": [format!("English tip {i}")], "de": [format!("Deutscher Tipp {i}")]},
        "related": [sku(4000 + i), sku(i + 1), sku(4100 + i)],
    })
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    orders: order_placed::App,
    app: survey_sender::App,
    links: survey_sender::Links,
    counter: CallCounter,
}

impl World {
    async fn new() -> Self {
        let mut env = Env::new().await;
        // Only the two kinds that talk about products.
        env.merchant.settings.journey.feedback_survey.enabled = false;
        env.merchant.settings.journey.review_request.enabled = false;
        env.store
            .put_merchant(&env.merchant, Timestamp::now())
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(t("2026-11-20T10:00:00Z")));
        let mut config = env.config().with_signing_key(key());
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        let counter = CallCounter::default();
        let (ddb, ses) = counted_clients(&env.sdk, &counter);
        let app = survey_sender::App::with_parts(config, ddb, ses, clock.clone()).unwrap();
        let orders =
            order_placed::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
                .unwrap();
        Self {
            links: survey_sender::Links::new(BASE, key()),
            env,
            clock,
            orders,
            app,
            counter,
        }
    }

    /// Places an order of products 1, 2 and 3 for a customer of `locale`, delivered at `delivered`.
    async fn order(&self, id: &str, email: &str, locale: &str, delivered: &str) {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["email"] = email.into();
        o["customer"]["id"] = format!("c-{id}").into();
        o["customer"]["locale"] = locale.into();
        o["customer"]["time_zone"] = "Europe/Berlin".into();
        o["items"] = (1..=3)
            .map(|i| json!({"sku": sku(i), "name": format!("Product {i}"), "quantity": 1, "unit_price": 1000 + i}))
            .collect();
        o["total"] = json!(3006 + 495 - 2000);
        let resp = order_placed::handle(
            &self.orders,
            self.env.http_event(&o, Some(&self.env.api_key)),
            "t",
            long_deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
        let order = self
            .env
            .store
            .get_order(&self.env.merchant.id, &OrderId::parse("o", id).unwrap())
            .await
            .unwrap()
            .unwrap();
        let at = t(delivered);
        let schedule = self.env.merchant.settings.journey.schedule(at);
        assert!(
            self.env
                .store
                .anchor_journey(&order, at, AnchorReason::Delivered, &schedule, at)
                .await
                .unwrap()
        );
    }

    /// A sweep at `at`: how many it sent and the DynamoDB calls it made.
    async fn sweep_at(&self, at: &str) -> (usize, BTreeMap<String, u32>) {
        self.clock.set(t(at));
        self.counter.reset();
        let r = survey_sender::sweep(&self.app, &self.links, long_deadline())
            .await
            .unwrap();
        let calls = self
            .counter
            .calls()
            .into_iter()
            .filter(|(k, _)| k.starts_with("DynamoDB."))
            .collect();
        (r.sent, calls)
    }

    async fn email(&self, to: &str, kind: &str) -> String {
        let found: Vec<SentEmail> = self
            .env
            .emails_to(to)
            .await
            .into_iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .collect();
        assert_eq!(found.len(), 1, "one {kind} email to {to}");
        found[0].part("text/plain").unwrap()
    }

    /// A products API call with `key`: (status, JSON body).
    async fn api(
        &self,
        route: &str,
        sku: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (i64, Value) {
        let path = match sku {
            Some(s) => format!("/v1/products/{s}"),
            None => "/v1/products".into(),
        };
        let params: Vec<(&str, &str)> = sku.map(|s| vec![("sku", s)]).unwrap_or_default();
        let raw = body.map(|b| b.to_string());
        let mut event = self
            .env
            .api_event(route, &path, &params, raw.as_deref(), key);
        if body.is_some() {
            event["headers"]["content-type"] = "application/json".into();
        }
        let resp = survey_sender::handle(&self.app, &self.links, event, "t", long_deadline())
            .await
            .unwrap();
        let text = resp["body"].as_str().unwrap_or_default();
        (
            resp["statusCode"].as_i64().unwrap(),
            serde_json::from_str(text).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn follow_ups_take_their_tips_and_recommendations_from_a_catalogue_of_five_thousand() {
    let w = World::new().await;
    // The bulk path, as the products API and the import take it: 5,000 products in one request.
    let products = Products {
        catalogue: &w.env.store,
        merchant: &w.env.merchant.id,
    };
    let items: Vec<(String, Value)> = (0..PRODUCTS)
        .map(|i| (format!("products[{i}]"), product(i)))
        .collect();
    let results = products
        .upsert_many(items, &mut BTreeSet::new(), Timestamp::now())
        .await
        .unwrap();
    assert_eq!(results.len(), PRODUCTS);
    assert!(results.iter().all(|r| r.outcome == Outcome::Stored));
    let (de, fr) = (
        format!("de.{}@example.com", w.env.tag),
        format!("fr.{}@example.com", w.env.tag),
    );
    w.order("SO-DE", &de, "de-DE", "2026-11-23T13:05:00Z").await;
    w.order("SO-FR", &fr, "fr-FR", "2026-11-23T13:05:00Z").await;

    // +3 days: usage tips, the products read with the follow-up's one BatchGetItem.
    let (sent, tips_calls) = w.sweep_at("2026-11-26T14:00:00Z").await;
    assert_eq!(sent, 2, "{tips_calls:?}");
    assert_eq!(
        tips_calls.get("DynamoDB.BatchGetItem"),
        Some(&2),
        "one per follow-up, as before the catalogue moved: {tips_calls:?}"
    );
    let de_tips = w.email(&de, "usage_tips").await;
    for i in 1..=3 {
        assert!(
            de_tips.contains(&format!("Deutscher Tipp {i}")),
            "{de_tips}"
        );
    }
    assert!(!de_tips.contains("English tip"), "{de_tips}");
    let fr_tips = w.email(&fr, "usage_tips").await;
    assert!(
        fr_tips.contains("English tip 2"),
        "no French tips: the merchant's default locale's: {fr_tips}"
    );
    assert!(
        !fr_tips.contains("Product 4001"),
        "only the bought products"
    );

    // +10 days: cross-sell, the related products read with one more BatchGetItem.
    let (sent, cross_calls) = w.sweep_at("2026-12-03T14:00:00Z").await;
    assert_eq!(sent, 2, "{cross_calls:?}");
    // The first sweep read the merchant (GetItem) into the cache the second one found it in.
    let get_items =
        |calls: &mut BTreeMap<String, u32>| calls.remove("DynamoDB.GetItem").unwrap_or(0);
    let (mut cross_rest, mut expected) = (cross_calls.clone(), tips_calls.clone());
    assert!(get_items(&mut cross_rest) <= get_items(&mut expected));
    *expected.get_mut("DynamoDB.BatchGetItem").unwrap() += 2;
    assert_eq!(
        cross_rest, expected,
        "the usage tips' calls plus one BatchGetItem per follow-up"
    );
    assert!(!cross_calls.keys().any(|k| k.ends_with(".Scan")));
    let cross = w.email(&de, "cross_sell").await;
    for name in ["Product 4001", "Product 4002", "Product 4101"] {
        assert!(cross.contains(name), "{name} in {cross}");
    }
    assert!(
        !cross.contains("https://shop.test/p/2") && !cross.contains("https://shop.test/p/3"),
        "never a product they bought: {cross}"
    );
}

#[tokio::test]
async fn the_products_api_stores_reads_and_deletes_a_merchants_own_products() {
    let w = World::new().await;
    let key = w.env.api_key.clone();
    let own = Some(key.as_str());
    let (put, get, delete, bulk) = (
        survey_sender::ROUTE_PUT_PRODUCT,
        survey_sender::ROUTE_GET_PRODUCT,
        survey_sender::ROUTE_DELETE_PRODUCT,
        survey_sender::ROUTE_PUT_PRODUCTS,
    );
    // The SKU in the path is URL-encoded.
    let tent = json!({"name": "Ridge tent", "price": 24900, "currency": "EUR",
        "tips": {"de": ["Einmal zu Hause aufbauen."]}, "related": ["MAT 1"]});
    let (status, body) = w.api(put, Some("TENT%2F2P"), Some(&tent), own).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sku"], "TENT/2P");
    let (status, body) = w.api(get, Some("TENT%2F2P"), None, own).await;
    assert_eq!(
        (status, &body["tips"]["de"][0]),
        (200, &json!("Einmal zu Hause aufbauen."))
    );
    assert_eq!(body["currency"], "EUR");

    // Bad input names the field.
    for (sku, product, field) in [
        ("%20", json!({"name": "x"}), "sku"),
        ("A%0AB", json!({"name": "x"}), "sku"),
        ("TENT", json!({"name": "x", "colour": "red"}), "colour"),
        (
            "TENT",
            json!({"name": "x", "tips": {"de": ["ok", ""]}}),
            "tips.de[1]",
        ),
        ("TENT", json!({"name": "x", "sku": "OTHER"}), "sku"),
    ] {
        let (status, body) = w.api(put, Some(sku), Some(&product), own).await;
        assert_eq!(status, 400, "{sku} {product}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let too_many: Vec<Value> = (0..=MAX_BULK)
        .map(|i| json!({"sku": format!("S{i}"), "name": "P"}))
        .collect();
    let (status, body) = w
        .api(bulk, None, Some(&json!({"products": too_many})), own)
        .await;
    assert_eq!(
        (status, &body["error"]["field"], &body["error"]["code"]),
        (400, &json!("products"), &json!("too_many"))
    );
    let (status, body) = w
        .api(bulk, None, Some(&json!({"products": [], "extra": 1})), own)
        .await;
    assert_eq!((status, &body["error"]["field"]), (400, &json!("extra")));

    // A bulk upsert: one result per product.
    let batch = json!({"products": [
        {"sku": "MAT 1", "name": "Mat"},
        {"sku": "MAT 2", "name": "Mat", "price": 100},
        {"sku": "MAT 1", "name": "Mat again"},
    ]});
    let (status, body) = w.api(bulk, None, Some(&batch), own).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"],
        json!([
            {"sku": "MAT 1", "status": "stored"},
            {"sku": "MAT 2", "status": "invalid", "error": {"code": "required", "message": "currency is required", "field": "products[1].currency"}},
            {"sku": "MAT 1", "status": "invalid", "error": {"code": "duplicate_sku", "message": "this SKU is already in the request; each product once", "field": "products[2].sku"}},
        ])
    );
    assert_eq!(
        (body["stored"].as_u64(), body["invalid"].as_u64()),
        (Some(1), Some(2))
    );

    // Another merchant's key reaches none of these products; no key, nothing at all.
    let other = w.env.add_merchant("other").await;
    let theirs = Some(other.api_key.as_str());
    assert_eq!(w.api(get, Some("TENT%2F2P"), None, theirs).await.0, 404);
    assert_eq!(w.api(delete, Some("TENT%2F2P"), None, theirs).await.0, 404);
    let (status, _) = w
        .api(
            put,
            Some("TENT%2F2P"),
            Some(&json!({"name": "Theirs"})),
            theirs,
        )
        .await;
    assert_eq!(status, 200, "their own product of the same SKU");
    let (_, body) = w.api(get, Some("TENT%2F2P"), None, own).await;
    assert_eq!(body["name"], "Ridge tent", "ours is untouched");
    assert_eq!(w.api(get, Some("TENT%2F2P"), None, None).await.0, 401);

    let (status, body) = w.api(delete, Some("TENT%2F2P"), None, own).await;
    assert_eq!((status, &body["deleted"]), (200, &json!(true)));
    assert_eq!(w.api(get, Some("TENT%2F2P"), None, own).await.0, 404);
    assert_eq!(w.api(delete, Some("TENT%2F2P"), None, own).await.0, 404);
    let (_, body) = w.api(get, Some("TENT%2F2P"), None, theirs).await;
    assert_eq!(body["name"], "Theirs");
}
