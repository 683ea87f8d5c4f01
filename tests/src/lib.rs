//! Test harness: real AWS SDK clients against the moto server started by the test command, one
//! isolated table per test (created from `infra/template.yaml`), a merchant with a verified sender
//! identity and an API key, real event fixtures, and readers for what moto recorded.
//!
//! Panicking is how a harness reports a broken environment, so the workspace's `unwrap`/`expect`
//! lints are relaxed in this test-support crate only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod counter;
pub mod crash;
pub mod infra;
pub mod mutate;
pub mod receiver;
pub mod wire;

use aftercare::adapters::store::Store;
use aftercare::clock::ManualClock;
use aftercare::domain::Merchant;
use aftercare::domain::apikey::{self, ApiKeyRecord, KeyStatus};
use aftercare::domain::merchant::MerchantInput;
use aftercare::token::SigningKey;
use aftercare::usecases::send::Deadline;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub type Item = HashMap<String, AttributeValue>;

/// Environment variable naming the moto server the test command started, or several, separated by
/// commas: moto serves one request at a time, so the test command starts three and spreads the test
/// processes over them ([`moto_endpoint`]).
pub const MOTO_ENDPOINT: &str = "AFTERCARE_TEST_MOTO_ENDPOINT";

/// Base URL of the public API in the links of test emails.
pub const BASE: &str = "https://api.test";

/// The workspace root. Cargo and nextest tell a test process its package directory at run time;
/// that is preferred over the directory baked in at compile time, which is stale when a warm
/// build cache is reused from a checkout elsewhere.
pub fn root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package.parent().unwrap().to_path_buf()
}

pub fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/events").join(name);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A fixture under `tests/fixtures/` as text (a platform's payload signed over its exact bytes).
pub fn fixture_file(path: &str) -> String {
    let path = root().join("tests/fixtures").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn example(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("examples").join(name)).unwrap()).unwrap()
}

/// The nextest test group (`.config/nextest.toml`) of the tests that load moto most: the burst with
/// 64 deliveries in flight, and the two sweeps that seed thousands of items. They take turns on the
/// first server, so the latency every other test sees (sweeps, the warm-up's 2 s bound) does not depend on
/// them.
pub const HEAVY_GROUP: &str = "moto-heavy";

/// The moto endpoint of this test process; the scenario tests need it and fail loudly (never skip)
/// without it. With several servers, the [`HEAVY_GROUP`] gets the first one to itself and every
/// other test one of the rest, picked by nextest's slot number (unique among the tests running at
/// one time) so concurrent tests spread evenly; under `cargo test` the process id picks. Every
/// [`Env`] of one process uses the same server.
pub fn moto_endpoint() -> String {
    let all = std::env::var(MOTO_ENDPOINT).unwrap_or_else(|_| {
        panic!("{MOTO_ENDPOINT} is not set: run the tests with ./scripts/test, which starts moto server")
    });
    let servers: Vec<&str> = all
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let group = std::env::var("NEXTEST_TEST_GROUP").unwrap_or_default();
    let slot = std::env::var("NEXTEST_TEST_GLOBAL_SLOT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or_else(|| std::process::id() as usize);
    pick_server(&servers, group == HEAVY_GROUP, slot).to_owned()
}

fn pick_server<'a>(servers: &[&'a str], heavy: bool, slot: usize) -> &'a str {
    match (servers, heavy) {
        ([], _) => panic!("{MOTO_ENDPOINT} names no server"),
        ([only], _) => only,
        ([first, ..], true) => first,
        ([_, rest @ ..], false) => rest[slot % rest.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::pick_server;

    #[test]
    fn heavy_tests_get_the_first_server_and_the_others_share_the_rest() {
        let servers = ["a", "b", "c"];
        assert_eq!(pick_server(&servers, true, 5), "a");
        let light: Vec<_> = (0..4)
            .map(|slot| pick_server(&servers, false, slot))
            .collect();
        assert_eq!(light, ["b", "c", "b", "c"]);
        assert_eq!(pick_server(&["only"], true, 3), "only");
        assert_eq!(pick_server(&["only"], false, 3), "only");
    }
}

/// SDK configuration pointing at moto with test credentials. The SDK's standard retries stay as in
/// production (attempts, which errors, the retry quota), but its backoff starts at 5 ms instead of
/// 1 s: a test waits for the outcome of a retry, not for real time to pass. Under
/// `AFTERCARE_TEST_MUTATE` its HTTP client rewrites the named condition ([`mutate`]); otherwise it
/// is the production client.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aftercare::adapters::aws::loader()
        .http_client(mutate::sdk_http_client())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "aftercare-tests",
        ))
        .load()
        .await
}

/// Environment variable that runs the scale tests at the benchmark's full size
/// (`AFTERCARE_TEST_SCALE=full`, set by `bench/scale_tests.py`).
pub const SCALE: &str = "AFTERCARE_TEST_SCALE";

/// A scale test's size: `test` in the test command, `full` under `AFTERCARE_TEST_SCALE=full`. The
/// property a scale test asserts (no loss, no duplicate, reads ÷ due) holds at either size; the
/// full size is a figure for BENCHMARKS.md, not a stronger check.
pub fn scaled(test: usize, full: usize) -> usize {
    match std::env::var(SCALE).as_deref() {
        Ok("full") => full,
        _ => test,
    }
}

/// A Lambda's longest budget in the test command, for sweeps and journeys over many items. A test
/// waits for outcomes, never for this budget to run out.
pub fn long_deadline() -> Deadline {
    Deadline::after(Duration::from_secs(120))
}

/// A generous deadline for handler calls in tests.
pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

/// A unique lowercase suffix.
pub fn unique() -> String {
    aftercare::domain::ids::new_id()
}

/// A merchant of a test world: its settings, API key and tracking-webhook secret.
pub struct Tenant {
    pub merchant: Merchant,
    pub api_key: String,
    pub webhook_secret: String,
}

/// Stores the example merchant as `m-<tag>`, sending from its own verified domain (so its emails
/// are told apart from other tests'), with an active API key.
async fn register_merchant(store: &Store, sdk: &SdkConfig, tag: &str) -> Tenant {
    let domain = format!("{tag}.shop.example");
    let webhook_secret = Env::webhook_secret_for(tag);
    let mut input = example("merchant.json");
    input["id"] = format!("m-{tag}").into();
    input["sender"]["from_email"] = format!("hello@{domain}").into();
    input["sender"]["reply_to"] = format!("care@{domain}").into();
    input["support"]["email"] = format!("care@{domain}").into();
    input["ops_email"] = format!("ops@{domain}").into();
    input["webhook_secrets"] = serde_json::json!([webhook_secret]);
    input["connectors"] = serde_json::json!({"shopify": {
        "shop_domain": format!("{tag}.myshopify.com"),
        "secrets": [Env::shopify_secret_for(tag)],
    }, "woocommerce": {
        "store_url": format!("https://{domain}"),
        "secrets": [Env::woo_secret_for(tag)],
    }, "easypost": {
        "secrets": [Env::tracking_secret_for("easypost", tag)],
    }, "aftership": {
        "secrets": [Env::tracking_secret_for("aftership", tag)],
    }, "shippo": {
        "token": Env::shippo_token_for(tag),
        "secrets": [Env::tracking_secret_for("shippo", tag)],
    }});
    let merchant = serde_json::from_value::<MerchantInput>(input)
        .unwrap()
        .validate()
        .unwrap();
    store
        .put_merchant(&merchant, jiff::Timestamp::now())
        .await
        .unwrap();
    aws_sdk_sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    let issued = apikey::issue().unwrap();
    let record = ApiKeyRecord {
        key_id: issued.key_id.clone(),
        merchant_id: merchant.id.clone(),
        status: KeyStatus::Active,
        created_at: jiff::Timestamp::now(),
        revoked_at: None,
        label: Some("tests".into()),
    };
    store.put_api_key(&record, &issued.hash).await.unwrap();
    Tenant {
        merchant,
        api_key: issued.secret,
        webhook_secret,
    }
}

/// An isolated world for one test.
pub struct Env {
    pub endpoint: String,
    pub sdk: SdkConfig,
    pub table: String,
    pub store: Store,
    pub merchant: Merchant,
    pub api_key: String,
    pub tag: String,
}

impl Env {
    pub async fn new() -> Self {
        let endpoint = moto_endpoint();
        let sdk = sdk_config(&endpoint).await;
        let tag = unique();
        let table = format!("aftercare-test-{tag}");
        let dynamodb = aftercare::adapters::aws::dynamodb_client(&sdk);
        infra::create_table_from_template(&dynamodb, &table).await;
        let store = Store::new(dynamodb, table.clone());

        let Tenant {
            merchant, api_key, ..
        } = register_merchant(&store, &sdk, &tag).await;
        Self {
            endpoint,
            sdk,
            table,
            store,
            merchant,
            api_key,
            tag,
        }
    }

    fn webhook_secret_for(tag: &str) -> String {
        format!("whsec_{tag}_0123456789abcdef")
    }

    /// The secret of the Shopify store every test merchant has connected (`<tag>.myshopify.com`).
    pub fn shopify_secret_for(tag: &str) -> String {
        format!("shpss_{tag}_0123456789abcdef")
    }

    /// The secret of the WooCommerce store every test merchant has connected
    /// (`https://<tag>.shop.example/`).
    pub fn woo_secret_for(tag: &str) -> String {
        format!("wcwh_{tag}_0123456789abcdef")
    }

    /// The webhook secret of the tracking `provider` every test merchant has connected (EasyPost's
    /// with a non-ASCII character, as its NFKD keying must handle).
    pub fn tracking_secret_for(provider: &str, tag: &str) -> String {
        match provider {
            "easypost" => format!("s\u{e9}cret-{tag}-easypost"),
            other => format!("{other}-{tag}-0123456789abcdef"),
        }
    }

    /// The URL token of the Shippo connection every test merchant has.
    pub fn shippo_token_for(tag: &str) -> String {
        format!("shippo-token-{tag}-0123456789")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }

    /// This world's merchant's WooCommerce store URL, as `X-WC-Webhook-Source` carries it.
    pub fn store_url(&self) -> String {
        format!("https://{}.shop.example/", self.tag)
    }

    /// This world's merchant's Shopify store domain.
    pub fn shop_domain(&self) -> String {
        format!("{}.myshopify.com", self.tag)
    }

    /// Another merchant in this world's table (id `m-<tag>-<name>`), with its own sending domain,
    /// API key and webhook secret.
    pub async fn add_merchant(&self, name: &str) -> Tenant {
        register_merchant(&self.store, &self.sdk, &format!("{}-{name}", self.tag)).await
    }

    /// The merchant's tracking-webhook secret.
    pub fn webhook_secret(&self) -> String {
        Self::webhook_secret_for(&self.tag)
    }

    /// An API Gateway v2 event for `method path` (route template `route`) with `params` and `body`.
    pub fn api_event(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&str>,
        key: Option<&str>,
    ) -> Value {
        let mut event = self.http_event_raw(body.unwrap_or(""), key);
        let (method, _) = route.split_once(' ').unwrap();
        event["routeKey"] = route.into();
        event["rawPath"] = path.into();
        event["requestContext"]["routeKey"] = route.into();
        event["requestContext"]["http"]["method"] = method.into();
        event["requestContext"]["http"]["path"] = path.into();
        event["pathParameters"] = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        if body.is_none() {
            event.as_object_mut().unwrap().remove("body");
            event["headers"]
                .as_object_mut()
                .unwrap()
                .remove("content-length");
            event["headers"]
                .as_object_mut()
                .unwrap()
                .remove("content-type");
        }
        event
    }

    /// SES's `Send` event for an email moto accepted, at `at`, as the configuration set publishes
    /// it for this world's merchant.
    pub fn send_event(&self, email: &SentEmail, at: jiff::Timestamp) -> Value {
        let text = serde_json::to_string(&fixture("ses-send.json"))
            .unwrap()
            .replace("MESSAGE_ID", &email.id)
            .replace("RECIPIENT", &email.destinations[0])
            .replace("MERCHANT", self.merchant.id.as_str())
            .replace("SEND_REF", &email.header("X-Aftercare-Ref").unwrap())
            .replace("EVENT_ID", &format!("ev-{}", email.id))
            .replace("\"2026-11-20T10:00:00.123Z\"", &format!("\"{at}\""));
        serde_json::from_str(&text).unwrap()
    }

    pub fn config(&self) -> aftercare::Config {
        aftercare::Config::for_table(&self.table)
    }

    /// The one App every function builds, over this world's moto: a manual clock at `now`,
    /// one-click links signed with `key` under [`BASE`], and SES pacing out of the way.
    pub fn app_at(&self, now: &str, key: &SigningKey) -> (Arc<ManualClock>, aftercare::app::App) {
        let clock = Arc::new(ManualClock::new(now.parse().unwrap()));
        let mut config = self.config().with_signing_key(key.clone());
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        let app =
            aftercare::app::App::with_parts(config, self.dynamodb(), self.ses(), clock.clone())
                .unwrap();
        (clock, app)
    }

    /// Posts `order` to order-placed's API with this world's key, on `clock`'s time: the order
    /// placed (or found placed) and thanked as the function would. Its response.
    pub async fn place_order(&self, clock: Arc<ManualClock>, order: &Value) -> Value {
        let app = order_placed::App::with_parts(self.config(), self.dynamodb(), self.ses(), clock)
            .unwrap();
        order_placed::handle(
            &app,
            self.http_event(order, Some(&self.api_key)),
            "place",
            deadline(),
        )
        .await
        .unwrap()
    }

    /// Stores `self.merchant` again after a test changed its settings.
    pub async fn save_merchant(&self) {
        self.store
            .put_merchant(&self.merchant, jiff::Timestamp::now())
            .await
            .unwrap();
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aftercare::adapters::aws::dynamodb_client(&self.sdk)
    }

    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        aftercare::adapters::aws::ses_client(&self.sdk)
    }

    /// The example order with a customer email unique to this test.
    pub fn order(&self) -> Value {
        let mut order = example("order.json");
        order["customer"]["email"] = self.customer_email().into();
        order
    }

    pub fn customer_email(&self) -> String {
        format!("ann.{}@example.com", self.tag)
    }

    /// The API Gateway fixture carrying `order` as its body, authenticated with `key`.
    pub fn http_event(&self, order: &Value, key: Option<&str>) -> Value {
        self.http_event_raw(&serde_json::to_string(order).unwrap(), key)
    }

    pub fn http_event_raw(&self, body: &str, key: Option<&str>) -> Value {
        let mut event = fixture("apigw-post-order.json");
        event["body"] = body.into();
        event["headers"]["content-length"] = body.len().to_string().into();
        match key {
            Some(k) => event["headers"]["authorization"] = format!("Bearer {k}").into(),
            None => {
                event["headers"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorization");
            }
        }
        event
    }

    /// The EventBridge fixture carrying `order` for this merchant.
    pub fn order_event(&self, order: &Value) -> Value {
        let mut event = fixture("eventbridge-order-placed.json");
        event["detail"]["merchant_id"] = self.merchant.id.as_str().into();
        event["detail"]["order"] = order.clone();
        event["id"] = unique().into();
        event
    }

    /// Every item in this test's table (a Scan: test inspection only, never product code).
    pub async fn items(&self) -> Vec<Item> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamodb()
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            all.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return all,
            }
        }
    }

    /// Items of the merchant's partition `M#<merchant>#<partition>` whose sort key starts with
    /// `sk_prefix` (the key schema of `aftercare::adapters::store::keys`, spelled out so a test
    /// reads as the layout it checks).
    pub async fn items_in(&self, partition: &str, sk_prefix: &str) -> Vec<Item> {
        let pk = format!("M#{}#{partition}", self.merchant.id);
        self.items()
            .await
            .into_iter()
            .filter(|i| s(i, "PK") == pk && s(i, "SK").starts_with(sk_prefix))
            .collect()
    }

    /// Items whose sort key starts with `prefix`.
    pub async fn items_with_sk(&self, prefix: &str) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|i| s(i, "SK").starts_with(prefix))
            .collect()
    }

    /// Emails moto recorded for `recipient`.
    pub async fn emails_to(&self, recipient: &str) -> Vec<SentEmail> {
        sent_emails_matching(&self.endpoint, recipient)
            .await
            .into_iter()
            .filter(|e| e.destinations.iter().any(|d| d.contains(recipient)))
            .collect()
    }
}

/// A string attribute of an item ("" if absent).
pub fn s(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// A number attribute of an item.
pub fn num(item: &Item, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default()
}

/// One message moto recorded.
#[derive(Debug, Clone)]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub destinations: Vec<String>,
    pub raw: String,
    /// The SES configuration set named on the send.
    pub configuration_set: Option<String>,
}

impl SentEmail {
    /// A header's value (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The decoded body of the first part with this content type.
    pub fn part(&self, content_type: &str) -> Option<String> {
        mime_part(&self.raw, content_type)
    }

    /// The Subject as a reader sees it: RFC 2047 encoded words (UTF-8, Q or B) decoded.
    pub fn subject(&self) -> Option<String> {
        let header = self.header("Subject")?;
        let mut out = String::new();
        let mut last_encoded = false;
        for word in header.split(' ') {
            let encoded = word
                .strip_prefix("=?")
                .and_then(|w| w.strip_suffix("?="))
                .and_then(|w| {
                    let mut parts = w.splitn(3, '?');
                    let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
                    match encoding {
                        "Q" | "q" => Some(decode_qp(&text.replace('_', " "))),
                        "B" | "b" => {
                            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text)
                                .ok()
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        }
                        _ => None,
                    }
                });
            // Whitespace between adjacent encoded words is not part of the text.
            let joins_encoded = last_encoded && encoded.is_some();
            if !out.is_empty() && !joins_encoded {
                out.push(' ');
            }
            last_encoded = encoded.is_some();
            out.push_str(encoded.as_deref().unwrap_or(word));
        }
        Some(out)
    }
}

fn mime_part(raw: &str, content_type: &str) -> Option<String> {
    let raw = raw.replace("\r\n", "\n");
    let head = raw.split("\n\n").next()?.replace("\n ", " ");
    let boundary = head
        .split("boundary=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_owned();
    raw.split(&format!("--{boundary}")).find_map(|part| {
        let part = part.strip_prefix('\n')?;
        let (headers, body) = part.split_once("\n\n")?;
        if !headers.contains(&format!("Content-Type: {content_type}")) {
            return None;
        }
        let body = body.strip_suffix('\n').unwrap_or(body);
        if headers.contains("base64") {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .ok()?,
            )
            .ok()
        } else if headers.contains("quoted-printable") {
            Some(decode_qp(body))
        } else {
            Some(body.to_owned())
        }
    })
}

fn decode_qp(s: &str) -> String {
    let joined = s.replace("\r\n", "\n").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything moto's SES recorded, from `/moto-api/data.json`.
pub async fn sent_emails(endpoint: &str) -> Vec<SentEmail> {
    sent_emails_matching(endpoint, "").await
}

/// Emails moto's SES accepted whose recipients contain `to` (served by `scripts/moto_server.py`
/// straight from the SES backend, so the cost does not grow with the DynamoDB tables).
pub async fn sent_emails_matching(endpoint: &str, to: &str) -> Vec<SentEmail> {
    fetch_sent(endpoint, to, false).await
}

/// Like [`sent_emails_matching`] without the raw messages (`raw` is empty): for counting
/// thousands of emails.
pub async fn sent_envelopes_matching(endpoint: &str, to: &str) -> Vec<SentEmail> {
    fetch_sent(endpoint, to, true).await
}

async fn fetch_sent(endpoint: &str, to: &str, brief: bool) -> Vec<SentEmail> {
    let query: String = to
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let brief = if brief { "&brief=1" } else { "" };
    let body = http_get(endpoint, &format!("/_test/emails?to={query}{brief}")).await;
    let messages: Vec<Value> = serde_json::from_slice(&body).unwrap();
    messages
        .into_iter()
        .map(|m| SentEmail {
            id: m["id"].as_str().unwrap_or_default().to_owned(),
            source: m["source"].as_str().unwrap_or_default().to_owned(),
            destinations: m["destinations"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            raw: m["raw_data"].as_str().unwrap_or_default().to_owned(),
            configuration_set: m["configuration_set"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Sets an API Gateway event's query string, `rawQueryString` and `queryStringParameters` alike,
/// from `a=1&b=2`.
pub fn with_query(event: &mut Value, query: &str) {
    event["rawQueryString"] = query.into();
    event["queryStringParameters"] = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
}

/// An API Gateway answer as (status, JSON body).
pub fn answer(resp: &Value) -> (i64, Value) {
    (
        resp["statusCode"].as_i64().unwrap(),
        serde_json::from_str(resp["body"].as_str().unwrap()).unwrap(),
    )
}

/// A minimal HTTP/1.0 GET over loopback (no HTTP client dependency for one JSON document).
pub async fn http_get(endpoint: &str, path: &str) -> Vec<u8> {
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&hostport).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).unwrap();
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        buf.split_off(split + 4)
    })
    .await
    .unwrap()
}
