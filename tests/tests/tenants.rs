//! Tenant isolation (RELIABILITY.md §7): with merchant A's credentials nothing of merchant B can be
//! read, listed, changed or inferred, over every route of the API.
//!
//! Merchant B gets one of everything through its own key (an order with loyalty points and store
//! credit, a delivered shipment, a subscription, preferences, an invoice in dunning, a survey
//! answer, a suppressed address). Then every route is called as merchant A, naming B's ids: in paths, in
//! bodies, in A-signed links, in webhooks to B's URL signed with A's secret. Each answer must equal,
//! id for id, the answer for ids that exist nowhere (so it cannot tell B's ids exist), no answer
//! may carry B's data, and B's items and mail must be exactly as they were.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::domain::privacy::{Subject, erasure_id};
use aftercare::domain::{CustomerId, EmailAddress};
use aftercare::signature;
use aftercare::token::{self, Claims, SigningKey};
use aftercare_tests::{BASE, Env, Tenant, deadline};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const NOW: &str = "2026-11-20T10:00:00Z";

/// The ids one probe names.
#[derive(Debug, Clone)]
struct Ids {
    order: String,
    customer: String,
    shipment: String,
    subscription: String,
    invoice: String,
    email: String,
}

impl Ids {
    fn all(&self) -> [&str; 6] {
        [
            &self.order,
            &self.customer,
            &self.shipment,
            &self.subscription,
            &self.invoice,
            &self.email,
        ]
    }
}

struct World {
    env: Env,
    app: aftercare::app::App,
    key: SigningKey,
    surveys: survey_sender::Links,
    renewals: renewal_checker::Links,
    billing: billing_alert::Links,
    b: Tenant,
}

/// A route's answer: status and body (JSON when it is JSON, else the text).
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: i64,
    body: String,
}

impl World {
    async fn new() -> Self {
        let env = Env::new().await;
        let b = env.add_merchant("b").await;
        let key = SigningKey::new(&[21u8; 32]).unwrap();
        let (_clock, app) = env.app_at(NOW, &key);
        Self {
            surveys: survey_sender::Links::new(BASE, key.clone()),
            renewals: renewal_checker::Links::new(BASE, key.clone()),
            billing: billing_alert::Links::new(BASE, key.clone()),
            key,
            env,
            app,
            b,
        }
    }

    fn a_id(&self) -> String {
        self.env.merchant.id.to_string()
    }

    fn b_id(&self) -> String {
        self.b.merchant.id.to_string()
    }

    /// Routes `event` to the function that serves its route, as API Gateway would.
    async fn call(&self, event: Value) -> Answer {
        let route = event["routeKey"].as_str().unwrap().to_owned();
        let r = route.as_str();
        let (app, d) = (&self.app, deadline());
        let resp = if order_placed::ROUTES.contains(&r) {
            order_placed::handle(app, event, "t", d).await
        } else if shipment_update::ROUTES.contains(&r) {
            shipment_update::handle(app, event, "t", d).await
        } else if survey_sender::ROUTES.contains(&r) {
            survey_sender::handle(app, &self.surveys, event, "t", d).await
        } else if renewal_checker::ROUTES.contains(&r) {
            renewal_checker::handle(app, &self.renewals, event, "t", d).await
        } else if billing_alert::ROUTES.contains(&r) {
            billing_alert::handle(app, &self.billing, event, "t", d).await
        } else if email_events::ROUTES.contains(&r) {
            email_events::handle(app, event, "t", d).await
        } else {
            panic!("no function serves {r}")
        }
        .unwrap();
        Answer {
            status: resp["statusCode"].as_i64().unwrap(),
            body: resp["body"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// `route` at `path` (path parameters `params`) with `key`'s authority.
    fn request(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&str>,
        key: Option<&str>,
    ) -> Value {
        let mut event = self.env.api_event(route, path, params, body, key);
        if let Some(b) = body
            && !b.starts_with('{')
        {
            event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        }
        event
    }

    /// Merchant A's API call.
    fn as_a(&self, route: &str, path: &str, params: &[(&str, &str)], body: Option<&str>) -> Value {
        self.request(route, path, params, body, Some(&self.env.api_key))
    }

    fn link(&self, merchant: &str, purpose: &str, subject: &str, value: Option<&str>) -> String {
        token::sign(
            &self.key,
            &Claims {
                merchant: merchant.to_owned(),
                purpose: purpose.to_owned(),
                subject: subject.to_owned(),
                value: value.map(str::to_owned),
                expires: NOW.parse::<jiff::Timestamp>().unwrap().as_second() + 86_400 * 30,
            },
        )
    }

    /// Merchant B's own history, made through B's key and B's links.
    async fn give_b_one_of_everything(&self, b: &Ids) {
        let key = Some(self.b.api_key.as_str());
        let mut order = self.env.order();
        order["id"] = b.order.clone().into();
        order["customer"]["id"] = b.customer.clone().into();
        order["customer"]["email"] = b.email.clone().into();
        let created = self.call(self.env.http_event(&order, key)).await;
        assert_eq!(created.status, 201, "{created:?}");
        let ship = json!({"id": b.shipment, "carrier": "DHL", "tracking_number": "JDB77",
            "tracking_url": "https://track.example/b77"})
        .to_string();
        let path = format!("/v1/orders/{}/shipments", b.order);
        let shipped = self
            .call(self.request(
                shipment_update::ROUTE_CREATE,
                &path,
                &[("orderId", &b.order)],
                Some(&ship),
                key,
            ))
            .await;
        assert_eq!(shipped.status, 201, "{shipped:?}");
        let delivered =
            json!({"status": "delivered", "occurred_at": "2026-11-19T10:00:00Z"}).to_string();
        let path = format!("/v1/shipments/{}/events", b.shipment);
        let done = self
            .call(self.request(
                shipment_update::ROUTE_CHECKPOINT,
                &path,
                &[("shipmentId", &b.shipment)],
                Some(&delivered),
                key,
            ))
            .await;
        assert!(done.status < 300, "{done:?}");
        let sub = subscription_body(b).to_string();
        let path = format!("/v1/subscriptions/{}", b.subscription);
        let put = self
            .call(self.request(
                renewal_checker::ROUTE_PUT,
                &path,
                &[("subscriptionId", &b.subscription)],
                Some(&sub),
                key,
            ))
            .await;
        assert!(put.status < 300, "{put:?}");
        let prefs = json!({"subscribed": true, "locale": "de"}).to_string();
        let path = format!("/v1/customers/{}/preferences", b.customer);
        let put = self
            .call(self.request(
                survey_sender::ROUTE_PUT_PREFERENCES,
                &path,
                &[("customerId", &b.customer)],
                Some(&prefs),
                key,
            ))
            .await;
        assert_eq!(put.status, 200, "{put:?}");
        let path = format!("/v1/customers/{}/loyalty/adjustments", b.customer);
        let mut adjust = self.request(
            order_placed::loyalty::ROUTE_ADJUST,
            &path,
            &[("customerId", &b.customer)],
            Some(r#"{"points": 500, "reason": "welcome"}"#),
            key,
        );
        adjust["headers"]["idempotency-key"] = "b-welcome".into();
        let adjusted = self.call(adjust).await;
        assert_eq!(adjusted.status, 201, "{adjusted:?}");
        // A return of B's, rejected with a reason only B may read.
        let path = format!("/v1/orders/{}/returns", b.order);
        let mut ret = self.request(
            shipment_update::returns::ROUTE_CREATE_RETURN,
            &path,
            &[("orderId", &b.order)],
            Some(r#"{"items": [{"sku": "TENT-2P", "quantity": 1, "reason": "damaged"}], "resolution": "refund"}"#),
            key,
        );
        ret["headers"]["idempotency-key"] = B_RETURN_KEY.into();
        let returned = self.call(ret).await;
        assert_eq!(returned.status, 201, "{returned:?}");
        let rid = b_return(&self.b_id(), b);
        let path = format!("/v1/returns/{rid}/reject");
        let rejected = self
            .call(self.request(
                shipment_update::returns::ROUTE_RETURN_ACTION,
                &path,
                &[("returnId", &rid), ("action", "reject")],
                Some(r#"{"reason": "B only: worn outdoors"}"#),
                key,
            ))
            .await;
        assert_eq!(rejected.status, 200, "{rejected:?}");
        let path = format!("/v1/customers/{}/credit/adjustments", b.customer);
        let mut credit = self.request(
            order_placed::credit::ROUTE_ADJUST,
            &path,
            &[("customerId", &b.customer)],
            Some(r#"{"amount": 2500, "currency": "EUR", "reason": "welcome"}"#),
            key,
        );
        credit["headers"]["idempotency-key"] = "b-credit".into();
        let credited = self.call(credit).await;
        assert_eq!(credited.status, 201, "{credited:?}");
        let failed = billing_body(b, "payment_failed").to_string();
        let billed = self
            .call(self.request(
                billing_alert::ROUTE_EVENTS,
                "/v1/billing-events",
                &[],
                Some(&failed),
                key,
            ))
            .await;
        assert_eq!(billed.status, 200, "{billed:?}");
        let survey = self.link(
            &self.b_id(),
            survey_sender::SURVEY,
            &format!("{}/{}", b.customer, b.order),
            Some("3"),
        );
        let path = format!("/v1/survey/{survey}");
        let answered = self
            .call(self.request(
                survey_sender::ROUTE_SURVEY_ANSWER,
                &path,
                &[("token", &survey)],
                Some("score=3&comment=B+only"),
                None,
            ))
            .await;
        assert_eq!(answered.status, 200, "{answered:?}");
        self.env
            .store
            .put_suppression(
                &self.b.merchant.id,
                &EmailAddress::parse("email", &format!("bounced.{}", b.email)).unwrap(),
                "hard_bounce",
                self.app.clock.now(),
            )
            .await
            .unwrap();
        let product = json!({"name": "B only", "tips": {"en": ["B only"]}}).to_string();
        let path = format!("/v1/products/{}", b.order);
        let stored = self
            .call(self.request(
                survey_sender::ROUTE_PUT_PRODUCT,
                &path,
                &[("sku", &b.order)],
                Some(&product),
                key,
            ))
            .await;
        assert_eq!(stored.status, 200, "{stored:?}");
        // A customer B erased (its request record is B's) and an export B made.
        let mut gone = self.env.order();
        gone["id"] = format!("{}-gone", b.order).into();
        gone["customer"]["id"] = gone_customer(b).into();
        gone["customer"]["email"] = format!("gone.{}", b.email).into();
        let created = self.call(self.env.http_event(&gone, key)).await;
        assert_eq!(created.status, 201, "{created:?}");
        let path = format!("/v1/customers/{}/erasure", gone_customer(b));
        let erased = self
            .call(self.request(
                survey_sender::ROUTE_ERASE_CUSTOMER,
                &path,
                &[("customerId", &gone_customer(b))],
                None,
                key,
            ))
            .await;
        assert_eq!(erased.status, 200, "{erased:?}");
        let path = format!("/v1/customers/{}/export", b.customer);
        let exported = self
            .call(self.request(
                survey_sender::ROUTE_EXPORT_CUSTOMER,
                &path,
                &[("customerId", &b.customer)],
                None,
                key,
            ))
            .await;
        assert_eq!(exported.status, 200, "{exported:?}");
    }

    /// Every item of merchant B's partitions, and every email to B's customer or from B's domain.
    async fn b_state(&self, b: &Ids) -> (Vec<String>, usize) {
        let prefix = format!("M#{}", self.b_id());
        let mut items: Vec<String> = self
            .env
            .items()
            .await
            .into_iter()
            .filter(|i| {
                i.values().any(|v| {
                    v.as_s()
                        .is_ok_and(|s| s.starts_with(&prefix) || s.contains(&format!("#{prefix}")))
                })
            })
            .map(|i| canonical(serde_dynamo::from_item::<_, Value>(i).unwrap()).to_string())
            .collect();
        items.sort();
        let mail = aftercare_tests::sent_emails(&self.env.endpoint)
            .await
            .into_iter()
            .filter(|e| e.raw.contains(&b.email) || e.raw.contains(&self.b_id()))
            .count();
        (items, mail)
    }
}

/// `v` with every object's keys in order (items' attribute maps come in any order).
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

/// Fails naming what changed in B's state since `before`.
fn assert_untouched(before: &(Vec<String>, usize), after: &(Vec<String>, usize)) {
    let gone: Vec<_> = before.0.iter().filter(|i| !after.0.contains(i)).collect();
    let new: Vec<_> = after.0.iter().filter(|i| !before.0.contains(i)).collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "merchant B's items changed:\n  before: {gone:#?}\n  after: {new:#?}"
    );
    assert_eq!(
        before.1, after.1,
        "emails to merchant B's customers or from its domain"
    );
}

fn subscription_body(ids: &Ids) -> Value {
    json!({
        "customer": {"id": ids.customer, "email": ids.email, "first_name": "Bea"},
        "plan_name": "Tea club", "interval": "monthly", "price": 1490, "currency": "EUR",
        "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
        "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        "manage_url": "https://shop.test/account/subscriptions",
        "updated_at": "2026-11-20T08:00:00Z"
    })
}

fn billing_body(ids: &Ids, kind: &str) -> Value {
    json!({
        "id": format!("ev-{kind}-{}", ids.invoice), "type": kind,
        "customer": {"id": ids.customer, "email": ids.email, "first_name": "Bea"},
        "invoice": {"id": ids.invoice, "amount": 1490, "currency": "EUR",
            "subscription_id": ids.subscription, "payment_url": format!("https://pay.test/{}", ids.invoice),
            "plan_name": "Tea club"}
    })
}

/// Values drawn at random (or digested from the caller's ids) for each new record.
/// The key B's return was asked under.
const B_RETURN_KEY: &str = "b-return";

/// The id of the return `merchant` would have made under [`B_RETURN_KEY`] for `ids`' order.
fn b_return(merchant: &str, ids: &Ids) -> String {
    aftercare::domain::returns::return_id(
        &aftercare::domain::MerchantId::parse("m", merchant).unwrap(),
        &aftercare::domain::OrderId::parse("o", &ids.order).unwrap(),
        B_RETURN_KEY,
    )
    .unwrap()
    .to_string()
}

/// The id (and number, as pages show it) of the return merchant A makes under `key` for `ids`.
fn a_return(w: &World, ids: &Ids, key: &str) -> Vec<String> {
    let id = aftercare::domain::returns::return_id(
        &aftercare::domain::MerchantId::parse("m", &w.a_id()).unwrap(),
        &aftercare::domain::OrderId::parse("o", &ids.order).unwrap(),
        key,
    )
    .unwrap()
    .to_string();
    vec![id.to_ascii_uppercase(), id]
}

const RANDOM: [&str; 6] = [
    "referral_code",
    "message_id",
    "request_id",
    "claim_token",
    "lease_until_ms",
    "content_hash",
];

/// The customer B erased in its history.
fn gone_customer(ids: &Ids) -> String {
    format!("gone-{}", ids.customer)
}

/// A signed tracking-page link as the claims it carries (its ids then normalise like any other).
fn link_claims(url: &str) -> Option<String> {
    let token = url.rsplit('/').next()?;
    let (payload, _) = token.split_once('.')?;
    let json =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).ok()?;
    String::from_utf8(json).ok()
}

fn blank_random(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if RANDOM.contains(&k.as_str()) {
                    *v = "{random}".into();
                } else if k == "tracking_page_url"
                    && let Some(claims) = v.as_str().and_then(link_claims)
                {
                    *v = format!("signed link {claims}").into();
                } else {
                    blank_random(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(blank_random),
        _ => {}
    }
}

/// `text` with every return id (`r` + 16 hex digits, or its upper-case number) as `{return}`.
fn blank_return_ids(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let is_id = boundary
            && matches!(chars[i], 'r' | 'R')
            && chars.len() >= i + 17
            && chars[i + 1..i + 17].iter().all(char::is_ascii_hexdigit)
            && chars.get(i + 17).is_none_or(|c| !c.is_ascii_alphanumeric());
        if is_id {
            out.push_str("{return}");
            i += 17;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `answer` with every id of the probe (and the links made for it) replaced by a placeholder.
fn normalised(answer: &Answer, names: &[&str]) -> Answer {
    let answer = &match serde_json::from_str::<Value>(&answer.body) {
        Ok(mut json) => {
            blank_random(&mut json);
            Answer {
                status: answer.status,
                body: json.to_string(),
            }
        }
        Err(_) => answer.clone(),
    };
    let mut names: Vec<&str> = names.to_vec();
    // Longer first, so an id inside a token or an address is replaced as part of it.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut body = answer.body.clone();
    // A page's one-time form key is random on every rendering.
    let field = r#"name="key" value=""#;
    if let Some(at) = body.find(field) {
        let from = at + field.len();
        if let Some(len) = body[from..].find('"') {
            body.replace_range(from..from + len, "{key}");
        }
    }
    for n in names {
        body = body.replace(n, "{id}");
        body = body.replace(&n.replace('@', "%40"), "{id}");
    }
    // A's own returns, made by earlier probes on the probed order ids, are named by a digest of
    // those ids (`r<16 hex>`, shown as `R<16 HEX>`): one placeholder for them all.
    let body = blank_return_ids(&body);
    Answer {
        status: answer.status,
        body,
    }
}

/// One probe of one route: the request for a set of ids, and the strings naming them in answers.
type Probe<'a> = Box<dyn Fn(&World, &Ids) -> (Value, Vec<String>) + 'a>;

/// Every route of the HTTP API, called as merchant A with the given ids.
fn probes<'a>() -> Vec<(&'static str, Probe<'a>)> {
    fn p<'a>(f: impl Fn(&World, &Ids) -> (Value, Vec<String>) + 'a) -> Probe<'a> {
        Box::new(f)
    }
    let a_link = |purpose: &'static str,
                  subject: fn(&Ids) -> String,
                  value: Option<&'static str>| {
        move |w: &World, ids: &Ids| -> String { w.link(&w.a_id(), purpose, &subject(ids), value) }
    };
    vec![
        (
            order_placed::ROUTE,
            p(|w, ids| {
                let mut o = w.env.order();
                o["id"] = ids.order.clone().into();
                o["customer"]["id"] = ids.customer.clone().into();
                (w.env.http_event(&o, Some(&w.env.api_key)), vec![])
            }),
        ),
        (
            order_placed::loyalty::ROUTE_GET,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/loyalty", ids.customer);
                (
                    w.as_a(
                        order_placed::loyalty::ROUTE_GET,
                        &path,
                        &[("customerId", &ids.customer)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            order_placed::loyalty::ROUTE_REDEEM,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/loyalty/redemptions", ids.customer);
                let mut e = w.as_a(
                    order_placed::loyalty::ROUTE_REDEEM,
                    &path,
                    &[("customerId", &ids.customer)],
                    Some(r#"{"points": 10}"#),
                );
                e["headers"]["idempotency-key"] = format!("redeem-{}", ids.customer).into();
                (e, vec![format!("redeem-{}", ids.customer)])
            }),
        ),
        (
            order_placed::loyalty::ROUTE_ADJUST,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/loyalty/adjustments", ids.customer);
                let mut e = w.as_a(
                    order_placed::loyalty::ROUTE_ADJUST,
                    &path,
                    &[("customerId", &ids.customer)],
                    Some(r#"{"points": -10, "reason": "probe"}"#),
                );
                e["headers"]["idempotency-key"] = format!("adjust-{}", ids.customer).into();
                (e, vec![format!("adjust-{}", ids.customer)])
            }),
        ),
        (
            order_placed::credit::ROUTE_GET,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/credit", ids.customer);
                (
                    w.as_a(
                        order_placed::credit::ROUTE_GET,
                        &path,
                        &[("customerId", &ids.customer)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            order_placed::credit::ROUTE_REDEEM,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/credit/redemptions", ids.customer);
                let mut e = w.as_a(
                    order_placed::credit::ROUTE_REDEEM,
                    &path,
                    &[("customerId", &ids.customer)],
                    Some(r#"{"amount": 10, "currency": "EUR"}"#),
                );
                e["headers"]["idempotency-key"] = format!("credit-redeem-{}", ids.customer).into();
                (e, vec![format!("credit-redeem-{}", ids.customer)])
            }),
        ),
        (
            order_placed::credit::ROUTE_ADJUST,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/credit/adjustments", ids.customer);
                let mut e = w.as_a(
                    order_placed::credit::ROUTE_ADJUST,
                    &path,
                    &[("customerId", &ids.customer)],
                    Some(r#"{"amount": -10, "currency": "EUR", "reason": "probe"}"#),
                );
                e["headers"]["idempotency-key"] = format!("credit-adjust-{}", ids.customer).into();
                (e, vec![format!("credit-adjust-{}", ids.customer)])
            }),
        ),
        (
            shipment_update::ROUTE_CREATE,
            p(|w, ids| {
                let body = json!({"id": format!("{}-x", ids.shipment), "carrier": "DHL", "tracking_number": "JD1"}).to_string();
                let path = format!("/v1/orders/{}/shipments", ids.order);
                (
                    w.as_a(
                        shipment_update::ROUTE_CREATE,
                        &path,
                        &[("orderId", &ids.order)],
                        Some(&body),
                    ),
                    vec![],
                )
            }),
        ),
        (
            shipment_update::ROUTE_CHECKPOINT,
            p(|w, ids| {
                let body = json!({"status": "exception", "occurred_at": "2026-11-20T09:00:00Z"})
                    .to_string();
                let path = format!("/v1/shipments/{}/events", ids.shipment);
                (
                    w.as_a(
                        shipment_update::ROUTE_CHECKPOINT,
                        &path,
                        &[("shipmentId", &ids.shipment)],
                        Some(&body),
                    ),
                    vec![],
                )
            }),
        ),
        (
            shipment_update::ROUTE_GET_ORDER,
            p(|w, ids| {
                let path = format!("/v1/orders/{}", ids.order);
                (
                    w.as_a(
                        shipment_update::ROUTE_GET_ORDER,
                        &path,
                        &[("orderId", &ids.order)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            // A tracking-page link signed for merchant A naming B's shipment: A has no such
            // shipment, so it is the error page, as for a shipment that exists nowhere.
            shipment_update::ROUTE_TRACK_PAGE,
            p(move |w, ids| {
                let t = a_link(
                    aftercare::links::purpose::TRACK,
                    |i| i.shipment.clone(),
                    None,
                )(w, ids);
                (
                    w.request(
                        shipment_update::ROUTE_TRACK_PAGE,
                        &format!("/v1/track/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            // A return-portal link signed for merchant A naming B's order: A has no such order,
            // so it is the error page, as for an order that exists nowhere.
            shipment_update::ROUTE_RETURN_PAGE,
            p(move |w, ids| {
                let t =
                    a_link(aftercare::links::purpose::RETURN, |i| i.order.clone(), None)(w, ids);
                (
                    w.request(
                        shipment_update::ROUTE_RETURN_PAGE,
                        &format!("/v1/return/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            shipment_update::ROUTE_RETURN_SUBMIT,
            p(move |w, ids| {
                let t =
                    a_link(aftercare::links::purpose::RETURN, |i| i.order.clone(), None)(w, ids);
                (
                    w.request(
                        shipment_update::ROUTE_RETURN_SUBMIT,
                        &format!("/v1/return/{t}"),
                        &[("token", &t)],
                        Some("key=probe&resolution=refund&qty-0=1&reason-0=too_small"),
                        None,
                    ),
                    [vec![t], a_return(w, ids, "probe")].concat(),
                )
            }),
        ),
        (
            shipment_update::returns::ROUTE_CREATE_RETURN,
            p(|w, ids| {
                let path = format!("/v1/orders/{}/returns", ids.order);
                let mut event = w.as_a(
                    shipment_update::returns::ROUTE_CREATE_RETURN,
                    &path,
                    &[("orderId", &ids.order)],
                    Some(r#"{"items": [{"sku": "PEG-AL-10", "quantity": 1, "reason": "damaged"}], "resolution": "refund"}"#),
                );
                event["headers"]["idempotency-key"] = "probe-return".into();
                (event, a_return(w, ids, "probe-return"))
            }),
        ),
        (
            shipment_update::returns::ROUTE_LIST_RETURNS,
            p(|w, _| {
                // B's return was rejected: A's rejected returns (none) never include it.
                let mut event = w.as_a(
                    shipment_update::returns::ROUTE_LIST_RETURNS,
                    "/v1/returns",
                    &[],
                    None,
                );
                aftercare_tests::with_query(&mut event, "status=rejected");
                (event, vec![])
            }),
        ),
        (
            shipment_update::returns::ROUTE_RETURNS_ANALYTICS,
            p(|w, _| {
                (
                    w.as_a(
                        shipment_update::returns::ROUTE_RETURNS_ANALYTICS,
                        "/v1/returns/analytics",
                        &[],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            shipment_update::returns::ROUTE_GET_RETURN,
            p(|w, ids| {
                let rid = b_return(&w.b_id(), ids);
                let path = format!("/v1/returns/{rid}");
                (
                    w.as_a(
                        shipment_update::returns::ROUTE_GET_RETURN,
                        &path,
                        &[("returnId", &rid)],
                        None,
                    ),
                    vec![rid],
                )
            }),
        ),
        (
            shipment_update::returns::ROUTE_RETURN_ACTION,
            p(|w, ids| {
                let rid = b_return(&w.b_id(), ids);
                let path = format!("/v1/returns/{rid}/resolve");
                (
                    w.as_a(
                        shipment_update::returns::ROUTE_RETURN_ACTION,
                        &path,
                        &[("returnId", &rid), ("action", "resolve")],
                        None,
                    ),
                    vec![rid],
                )
            }),
        ),
        (
            shipment_update::ROUTE_WEBHOOK,
            p(|w, ids| {
                // B's webhook URL, signed with A's secret (the merchant id is the probed id here).
                let m = if ids.order.starts_with("SO-B") {
                    w.b_id()
                } else {
                    format!("m-{}", ids.customer)
                };
                let body = json!({"shipment_id": ids.shipment, "id": "cp-x", "status": "exception",
                "occurred_at": "2026-11-20T09:00:00Z"})
                .to_string();
                let mut e = w.request(
                    shipment_update::ROUTE_WEBHOOK,
                    &format!("/v1/webhooks/tracking/{m}"),
                    &[("merchantId", &m)],
                    Some(&body),
                    None,
                );
                e["headers"]["x-aftercare-signature"] = signature::sign(
                    w.env.webhook_secret().as_bytes(),
                    w.app.clock.now().as_second(),
                    body.as_bytes(),
                )
                .into();
                (e, vec![m])
            }),
        ),
        (
            email_events::ROUTE_GET,
            p(|w, ids| {
                let email = format!("bounced.{}", ids.email);
                let path = format!("/v1/suppressions/{email}");
                (
                    w.as_a(email_events::ROUTE_GET, &path, &[("email", &email)], None),
                    vec![email],
                )
            }),
        ),
        (
            email_events::ROUTE_DELETE,
            p(|w, ids| {
                let email = format!("bounced.{}", ids.email);
                let path = format!("/v1/suppressions/{email}");
                (
                    w.as_a(
                        email_events::ROUTE_DELETE,
                        &path,
                        &[("email", &email)],
                        None,
                    ),
                    vec![email],
                )
            }),
        ),
        (
            email_events::ROUTE_MESSAGES,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/messages", ids.customer);
                (
                    w.as_a(
                        email_events::ROUTE_MESSAGES,
                        &path,
                        &[("customerId", &ids.customer)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            email_events::ROUTE_EXPLAIN,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/explain", ids.customer);
                let mut e = w.as_a(
                    email_events::ROUTE_EXPLAIN,
                    &path,
                    &[("customerId", &ids.customer)],
                    None,
                );
                e["queryStringParameters"] = json!({"order_id": ids.order});
                (e, vec![])
            }),
        ),
        (
            email_events::ROUTE_ANALYTICS,
            p(|w, _| {
                (
                    w.as_a(
                        email_events::ROUTE_ANALYTICS,
                        "/v1/analytics/email",
                        &[],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        // A customer's data requests, naming B's customer, B's address, B's erasure request.
        (
            survey_sender::ROUTE_EXPORT_CUSTOMER,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/export", ids.customer);
                let route = survey_sender::ROUTE_EXPORT_CUSTOMER;
                (
                    w.as_a(route, &path, &[("customerId", &ids.customer)], None),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_EXPORT_EMAIL,
            p(|w, ids| {
                let path = format!("/v1/privacy/export?email={}", ids.email);
                let mut event = w.as_a(survey_sender::ROUTE_EXPORT_EMAIL, &path, &[], None);
                event["rawPath"] = "/v1/privacy/export".into();
                aftercare_tests::with_query(&mut event, &format!("email={}", ids.email));
                (event, vec![])
            }),
        ),
        (
            survey_sender::ROUTE_ERASE_CUSTOMER,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/erasure", ids.customer);
                let route = survey_sender::ROUTE_ERASE_CUSTOMER;
                (
                    w.as_a(route, &path, &[("customerId", &ids.customer)], None),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_ERASE_EMAIL,
            p(|w, ids| {
                let body = json!({"email": ids.email}).to_string();
                let route = survey_sender::ROUTE_ERASE_EMAIL;
                (
                    w.as_a(route, "/v1/privacy/erasure", &[], Some(&body)),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_REQUEST,
            p(|w, ids| {
                let b = aftercare::domain::MerchantId::parse("m", &w.b_id()).unwrap();
                let subject =
                    Subject::Customer(CustomerId::parse("c", &gone_customer(ids)).unwrap());
                let id = erasure_id(&b, &subject);
                let path = format!("/v1/privacy/requests/{id}");
                let route = survey_sender::ROUTE_REQUEST;
                (w.as_a(route, &path, &[("requestId", &id)], None), vec![id])
            }),
        ),
        // The SKU of B's product is B's order id.
        (
            survey_sender::ROUTE_GET_PRODUCT,
            p(|w, ids| {
                let path = format!("/v1/products/{}", ids.order);
                let route = survey_sender::ROUTE_GET_PRODUCT;
                (w.as_a(route, &path, &[("sku", &ids.order)], None), vec![])
            }),
        ),
        (
            survey_sender::ROUTE_DELETE_PRODUCT,
            p(|w, ids| {
                let path = format!("/v1/products/{}", ids.order);
                let route = survey_sender::ROUTE_DELETE_PRODUCT;
                (w.as_a(route, &path, &[("sku", &ids.order)], None), vec![])
            }),
        ),
        (
            survey_sender::ROUTE_PUT_PRODUCT,
            p(|w, ids| {
                let path = format!("/v1/products/{}", ids.order);
                let route = survey_sender::ROUTE_PUT_PRODUCT;
                let body = Some(r#"{"name": "A's own"}"#);
                (w.as_a(route, &path, &[("sku", &ids.order)], body), vec![])
            }),
        ),
        (
            survey_sender::ROUTE_PUT_PRODUCTS,
            p(|w, ids| {
                let body = json!({"products": [{"sku": ids.order, "name": "A's own"}]}).to_string();
                let route = survey_sender::ROUTE_PUT_PRODUCTS;
                (w.as_a(route, "/v1/products", &[], Some(&body)), vec![])
            }),
        ),
        (
            survey_sender::ROUTE_FEEDBACK,
            p(|w, _| {
                (
                    w.as_a(survey_sender::ROUTE_FEEDBACK, "/v1/feedback", &[], None),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_GET_PREFERENCES,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/preferences", ids.customer);
                (
                    w.as_a(
                        survey_sender::ROUTE_GET_PREFERENCES,
                        &path,
                        &[("customerId", &ids.customer)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_PUT_PREFERENCES,
            p(|w, ids| {
                let path = format!("/v1/customers/{}/preferences", ids.customer);
                (
                    w.as_a(
                        survey_sender::ROUTE_PUT_PREFERENCES,
                        &path,
                        &[("customerId", &ids.customer)],
                        Some(r#"{"subscribed": false}"#),
                    ),
                    vec![],
                )
            }),
        ),
        (
            survey_sender::ROUTE_SURVEY_PAGE,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::SURVEY,
                    |i| format!("{}/{}", i.customer, i.order),
                    Some("9"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_SURVEY_PAGE,
                        &format!("/v1/survey/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            survey_sender::ROUTE_SURVEY_ANSWER,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::SURVEY,
                    |i| format!("{}/{}", i.customer, i.order),
                    Some("9"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_SURVEY_ANSWER,
                        &format!("/v1/survey/{t}"),
                        &[("token", &t)],
                        Some("score=10&comment=probe"),
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            survey_sender::ROUTE_UNSUBSCRIBE_PAGE,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::UNSUBSCRIBE,
                    |i| i.customer.clone(),
                    Some("b***@example.com"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_UNSUBSCRIBE_PAGE,
                        &format!("/v1/unsubscribe/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            survey_sender::ROUTE_UNSUBSCRIBE,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::UNSUBSCRIBE,
                    |i| i.customer.clone(),
                    Some("b***@example.com"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_UNSUBSCRIBE,
                        &format!("/v1/unsubscribe/{t}"),
                        &[("token", &t)],
                        Some("List-Unsubscribe=One-Click"),
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            survey_sender::ROUTE_PREFERENCES_PAGE,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::PREFERENCES,
                    |i| i.customer.clone(),
                    Some("b***@example.com"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_PREFERENCES_PAGE,
                        &format!("/v1/preferences/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            survey_sender::ROUTE_PREFERENCES_SAVE,
            p(move |w, ids| {
                let t = a_link(
                    survey_sender::PREFERENCES,
                    |i| i.customer.clone(),
                    Some("b***@example.com"),
                )(w, ids);
                (
                    w.request(
                        survey_sender::ROUTE_PREFERENCES_SAVE,
                        &format!("/v1/preferences/{t}"),
                        &[("token", &t)],
                        Some("form=preferences&time_zone=Europe%2FParis"),
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            renewal_checker::ROUTE_PUT,
            p(|w, ids| {
                let path = format!("/v1/subscriptions/{}", ids.subscription);
                let mut body = subscription_body(ids);
                body["customer"]["email"] = w.env.customer_email().into();
                body["plan_name"] = "Probe plan".into();
                (
                    w.as_a(
                        renewal_checker::ROUTE_PUT,
                        &path,
                        &[("subscriptionId", &ids.subscription)],
                        Some(&body.to_string()),
                    ),
                    vec![],
                )
            }),
        ),
        (
            renewal_checker::ROUTE_GET,
            p(|w, ids| {
                let path = format!("/v1/subscriptions/{}", ids.subscription);
                (
                    w.as_a(
                        renewal_checker::ROUTE_GET,
                        &path,
                        &[("subscriptionId", &ids.subscription)],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            renewal_checker::ROUTE_LINK,
            p(move |w, ids| {
                let t = a_link(
                    renewal_checker::LINK_PURPOSE,
                    |i| i.subscription.clone(),
                    Some("manage"),
                )(w, ids);
                (
                    w.request(
                        renewal_checker::ROUTE_LINK,
                        &format!("/v1/subscription-links/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            renewal_checker::ROUTE_PAGE,
            p(move |w, ids| {
                let t = a_link(
                    renewal_checker::LINK_PURPOSE,
                    |i| i.subscription.clone(),
                    Some("manage"),
                )(w, ids);
                (
                    w.request(
                        renewal_checker::ROUTE_PAGE,
                        &format!("/v1/subscription-page/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            renewal_checker::ROUTE_PAGE_POST,
            p(move |w, ids| {
                let t = a_link(
                    renewal_checker::LINK_PURPOSE,
                    |i| i.subscription.clone(),
                    Some("manage"),
                )(w, ids);
                (
                    w.request(
                        renewal_checker::ROUTE_PAGE_POST,
                        &format!("/v1/subscription-page/{t}"),
                        &[("token", &t)],
                        Some("action=cancel"),
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
        (
            billing_alert::ROUTE_STRIPE,
            p(|w, ids| {
                let m = if ids.order.starts_with("SO-B") {
                    w.b_id()
                } else {
                    format!("m-{}", ids.customer)
                };
                let body = json!({"id": format!("evt_{}", ids.invoice), "object": "event", "type": "invoice.payment_succeeded",
                "created": w.app.clock.now().as_second(), "data": {"object": {"id": ids.invoice, "object": "invoice",
                "customer": ids.customer, "customer_email": ids.email, "amount_due": 1490, "amount_paid": 1490,
                "currency": "eur", "subscription": ids.subscription}}}).to_string();
                let mut e = w.request(
                    billing_alert::ROUTE_STRIPE,
                    &format!("/v1/webhooks/stripe/{m}"),
                    &[("merchantId", &m)],
                    Some(&body),
                    None,
                );
                e["headers"]["stripe-signature"] = signature::sign(
                    w.env.webhook_secret().as_bytes(),
                    w.app.clock.now().as_second(),
                    body.as_bytes(),
                )
                .into();
                (e, vec![m])
            }),
        ),
        // A Shopify delivery signed with A's store secret and domain, posted to B's URL.
        (
            order_placed::shopify::ROUTE,
            p(|w, ids| {
                let m = if ids.order.starts_with("SO-B") {
                    w.b_id()
                } else {
                    format!("m-{}", ids.customer)
                };
                let body =
                    json!({"id": 5940139491234567890u64, "name": "#1001", "email": ids.email,
                    "currency": "EUR", "total_price": "14.90", "line_items": []})
                    .to_string();
                let mut e = w.request(
                    order_placed::shopify::ROUTE,
                    &format!("/v1/connectors/shopify/{m}"),
                    &[("merchantId", &m)],
                    Some(&body),
                    None,
                );
                let secret = Env::shopify_secret_for(&w.env.tag);
                e["headers"]["x-shopify-hmac-sha256"] =
                    signature::sign_base64_hmac(secret.as_bytes(), body.as_bytes()).into();
                e["headers"]["x-shopify-shop-domain"] = w.env.shop_domain().into();
                e["headers"]["x-shopify-topic"] = "orders/create".into();
                e["headers"]["x-shopify-event-id"] = format!("ev-{}", ids.order).into();
                (e, vec![m])
            }),
        ),
        // A WooCommerce delivery signed with A's webhook secret, from A's store, posted to B's URL.
        (
            order_placed::woocommerce::ROUTE,
            p(|w, ids| {
                let m = if ids.order.starts_with("SO-B") {
                    w.b_id()
                } else {
                    format!("m-{}", ids.customer)
                };
                let body = json!({"id": 727, "number": "727", "status": "processing",
                    "currency": "EUR", "date_created_gmt": "2026-11-20T15:30:00",
                    "date_modified_gmt": "2026-11-20T15:30:00", "total": "14.90",
                    "billing": {"email": ids.email}, "line_items": []})
                .to_string();
                let mut e = w.request(
                    order_placed::woocommerce::ROUTE,
                    &format!("/v1/connectors/woocommerce/{m}"),
                    &[("merchantId", &m)],
                    Some(&body),
                    None,
                );
                let secret = Env::woo_secret_for(&w.env.tag);
                e["headers"]["x-wc-webhook-signature"] =
                    signature::sign_base64_hmac(secret.as_bytes(), body.as_bytes()).into();
                e["headers"]["x-wc-webhook-source"] = w.env.store_url().into();
                e["headers"]["x-wc-webhook-topic"] = "order.created".into();
                e["headers"]["x-wc-webhook-delivery-id"] = format!("d-{}", ids.order).into();
                (e, vec![m])
            }),
        ),
        // Tracking aggregators' updates for A's parcel, signed with A's secrets (and A's Shippo
        // token), posted to B's URL.
        (
            shipment_update::aggregators::ROUTE_EASYPOST,
            p(|w, ids| tracking_probe(w, ids, shipment_update::aggregators::Provider::EasyPost)),
        ),
        (
            shipment_update::aggregators::ROUTE_AFTERSHIP,
            p(|w, ids| tracking_probe(w, ids, shipment_update::aggregators::Provider::AfterShip)),
        ),
        (
            shipment_update::aggregators::ROUTE_SHIPPO,
            p(|w, ids| tracking_probe(w, ids, shipment_update::aggregators::Provider::Shippo)),
        ),
        (
            billing_alert::ROUTE_EVENTS,
            p(|w, ids| {
                let mut body = billing_body(ids, "payment_succeeded");
                body["customer"]["email"] = w.env.customer_email().into();
                body["invoice"]["plan_name"] = "Probe plan".into();
                (
                    w.as_a(
                        billing_alert::ROUTE_EVENTS,
                        "/v1/billing-events",
                        &[],
                        Some(&body.to_string()),
                    ),
                    vec![],
                )
            }),
        ),
        (
            billing_alert::ROUTE_RECOVERY,
            p(|w, _| {
                (
                    w.as_a(
                        billing_alert::ROUTE_RECOVERY,
                        "/v1/billing/recovery",
                        &[],
                        None,
                    ),
                    vec![],
                )
            }),
        ),
        (
            billing_alert::ROUTE_LINK,
            p(move |w, ids| {
                let t = a_link(
                    billing_alert::LINK_PURPOSE,
                    |i| i.invoice.clone(),
                    Some("https://pay.test/x"),
                )(w, ids);
                (
                    w.request(
                        billing_alert::ROUTE_LINK,
                        &format!("/v1/billing-links/{t}"),
                        &[("token", &t)],
                        None,
                        None,
                    ),
                    vec![t],
                )
            }),
        ),
    ]
}

#[tokio::test]
async fn merchant_a_can_neither_read_change_nor_infer_anything_of_merchant_b_on_any_route() {
    let w = World::new().await;
    let tag = &w.env.tag;
    let b = Ids {
        order: "SO-B77".into(),
        customer: "cust-b77".into(),
        shipment: "SH-B77".into(),
        subscription: "sub_b77".into(),
        invoice: "in_b77".into(),
        email: format!("bea.{tag}@example.com"),
    };
    let nobody = Ids {
        order: "SO-Z99".into(),
        customer: "cust-z99".into(),
        shipment: "SH-Z99".into(),
        subscription: "sub_z99".into(),
        invoice: "in_z99".into(),
        email: format!("zed.{tag}@example.com"),
    };
    w.give_b_one_of_everything(&b).await;
    let before = w.b_state(&b).await;
    assert!(
        before.0.len() > 15,
        "B has data to protect: {}",
        before.0.len()
    );
    assert!(before.1 > 0, "B's customer was mailed");

    // Every route of the spec is probed.
    let probes = probes();
    let probed: BTreeSet<&str> = probes.iter().map(|(r, _)| *r).collect();
    let spec: BTreeSet<String> = aftercare_tests::infra::api_routes();
    assert_eq!(
        probed
            .iter()
            .map(|r| r.to_string())
            .collect::<BTreeSet<_>>(),
        spec,
        "every route of the API is probed"
    );

    // B's data must not appear in any answer: its customer's address, its merchant id, its
    // survey comment, its subscription's plan.
    let b_only = [
        b.email.as_str(),
        &w.b_id(),
        "B only",
        "Tea club",
        "pay.test/in_b77",
    ];
    for (route, probe) in &probes {
        let (event, mut names) = probe(&w, &b);
        let theirs = w.call(event).await;
        let (event, mut other) = probe(&w, &nobody);
        let unknown = w.call(event).await;
        names.extend(b.all().iter().map(|s| s.to_string()));
        other.extend(nobody.all().iter().map(|s| s.to_string()));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let other: Vec<&str> = other.iter().map(String::as_str).collect();
        assert_eq!(
            normalised(&theirs, &names),
            normalised(&unknown, &other),
            "{route}: B's ids answer differently from ids that exist nowhere"
        );
        for marker in b_only {
            let shown = normalised(&theirs, &names).body;
            assert!(
                !shown.contains(marker),
                "{route} shows B's {marker}: {shown}"
            );
        }
    }

    assert_untouched(&before, &w.b_state(&b).await);
}

/// A link signed for merchant A whose merchant is then changed to B (or the reverse) is refused on
/// every link route, like any tampered link, and changes nothing of either.
#[tokio::test]
async fn a_link_moved_to_another_merchant_is_refused_on_every_link_route() {
    let w = World::new().await;
    let tag = &w.env.tag;
    let b = Ids {
        order: "SO-B77".into(),
        customer: "cust-b77".into(),
        shipment: "SH-B77".into(),
        subscription: "sub_b77".into(),
        invoice: "in_b77".into(),
        email: format!("bea.{tag}@example.com"),
    };
    w.give_b_one_of_everything(&b).await;
    let before = w.b_state(&b).await;
    let mut links = 0;
    for (route, probe) in probes() {
        if !route.contains("{token}") {
            continue;
        }
        let (mut event, _) = probe(&w, &b);
        let genuine = event["pathParameters"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (payload, sig) = genuine.split_once('.').unwrap();
        let mut claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        claims["m"] = w.b_id().into();
        let moved = format!(
            "{}.{sig}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                serde_json::to_vec(&claims).unwrap()
            )
        );
        event["pathParameters"]["token"] = moved.clone().into();
        let path = event["rawPath"].as_str().unwrap().replace(&genuine, &moved);
        event["rawPath"] = path.clone().into();
        event["requestContext"]["http"]["path"] = path.into();
        let answer = w.call(event).await;
        assert!(
            (400..500).contains(&answer.status),
            "{route}: a moved link answered {answer:?}"
        );
        links += 1;
    }
    assert_eq!(links, 13, "every link route was tried");
    assert_untouched(&before, &w.b_state(&b).await);
}

/// A tracking provider's update for the probe's shipment parcel, signed with A's credentials as
/// the provider signs, posted to the probed merchant's URL.
fn tracking_probe(
    w: &World,
    ids: &Ids,
    provider: shipment_update::aggregators::Provider,
) -> (Value, Vec<String>) {
    use shipment_update::aggregators::Provider;
    let m = if ids.order.starts_with("SO-B") {
        w.b_id()
    } else {
        format!("m-{}", ids.customer)
    };
    let number = format!("JD{}", ids.shipment.trim_start_matches("SH-"));
    let body = match provider {
        Provider::EasyPost => json!({"id": format!("evt_{}", ids.order), "object": "Event",
            "description": "tracker.updated", "result": {"object": "Tracker", "tracking_code": number,
            "carrier": "DHL", "status": "delivered", "updated_at": "2026-11-21T10:00:00Z",
            "tracking_details": []}}),
        Provider::AfterShip => json!({"event": "tracking_update", "event_id": format!("ev-{}", ids.order),
            "msg": {"tracking_number": number, "slug": "dhl", "tag": "Delivered",
            "updated_at": "2026-11-21T10:00:00Z", "checkpoints": []}, "ts": 1_795_254_400}),
        Provider::Shippo => json!({"event": "track_updated", "test": false, "data": {
            "tracking_number": number, "carrier": "dhl_express", "tracking_history": [],
            "tracking_status": {"object_id": ids.order, "status": "DELIVERED",
            "status_date": "2026-11-21T10:00:00Z"}}}),
    }
    .to_string();
    let mut e = w.request(
        provider.route(),
        &format!("/v1/connectors/{}/{m}", provider.name()),
        &[("merchantId", &m)],
        Some(&body),
        None,
    );
    let secret = Env::tracking_secret_for(provider.name(), &w.env.tag);
    match provider {
        Provider::EasyPost => {
            e["headers"]["x-hmac-signature"] =
                signature::sign_easypost(&secret, body.as_bytes()).into();
        }
        Provider::AfterShip => {
            e["headers"]["aftership-hmac-sha256"] =
                signature::sign_base64_hmac(secret.as_bytes(), body.as_bytes()).into();
        }
        Provider::Shippo => {
            e["headers"]["shippo-auth-signature"] = signature::sign(
                secret.as_bytes(),
                w.app.clock.now().as_second(),
                body.as_bytes(),
            )
            .into();
            aftercare_tests::with_query(
                &mut e,
                &format!("token={}", Env::shippo_token_for(&w.env.tag)),
            );
        }
    }
    (e, vec![m])
}

/// Merchant B's own tracking link shows B's page; the same shipment named in a link of merchant A
/// (A's key, A's id) shows A's error page, 404, with nothing of B's shipment on it, and counts no
/// view on B's shipment.
#[tokio::test]
async fn a_tracking_link_for_one_merchant_shows_nothing_of_anothers_shipment() {
    let w = World::new().await;
    let tag = &w.env.tag;
    let b = Ids {
        order: "SO-B77".into(),
        customer: "cust-b77".into(),
        shipment: "SH-B77".into(),
        subscription: "sub_b77".into(),
        invoice: "in_b77".into(),
        email: format!("bea.{tag}@example.com"),
    };
    w.give_b_one_of_everything(&b).await;
    let open = |merchant: String| {
        let t = w.link(
            &merchant,
            aftercare::links::purpose::TRACK,
            &b.shipment,
            None,
        );
        w.request(
            shipment_update::ROUTE_TRACK_PAGE,
            &format!("/v1/track/{t}"),
            &[("token", &t)],
            None,
            None,
        )
    };
    let views = || async {
        let pk = format!("M#{}#S#{}", w.b_id(), b.shipment);
        w.env
            .items()
            .await
            .into_iter()
            .find(|i| {
                aftercare_tests::s(i, "PK") == pk && aftercare_tests::s(i, "SK") == "SHIPMENT"
            })
            .unwrap()
            .get("views")
            .map(|v| v.as_n().unwrap().clone())
    };

    let own = w.call(open(w.b_id())).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.body.contains("JDB77"));
    assert_eq!(views().await.as_deref(), Some("1"));

    let moved = w.call(open(w.a_id())).await;
    assert_eq!(moved.status, 404, "{moved:?}");
    assert!(moved.body.contains(r#"id="error""#), "{moved:?}");
    assert!(moved.body.contains(&w.env.merchant.name));
    assert!(!moved.body.contains("JDB77") && !moved.body.contains(&w.b_id()));
    assert_eq!(
        views().await.as_deref(),
        Some("1"),
        "no view counted on B's shipment"
    );
}
