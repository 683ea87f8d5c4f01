//! A customer's data export and erasure over the real SDK against moto, through the real
//! handlers on a virtual clock.
//!
//! One customer gets every kind of item Aftercare keeps: two orders (the first to an address that
//! hard-bounced since), a shipment with its checkpoints, every follow-up, a survey answer with a
//! comment, a loyalty earn, adjustment and redemption, a referral each way, preferences, a
//! subscription, a failed invoice in dunning, emails with their SES events, a bounce streak and a
//! suppression. The export holds every kind; after the erasure a Scan of the whole table finds
//! none of the customer's identifying strings anywhere (keys included), every sweep and event path
//! runs and nothing more is sent to them, and another customer of the same merchant and a customer
//! of another merchant (same id, same address) are untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::privacy::{RequestStatus, Subject};
use aftercare::domain::{CustomerId, MerchantId};
use aftercare::signature;
use aftercare::token::SigningKey;
use aftercare::usecases::privacy::Privacy;
use aftercare_tests::{BASE, Env, Item, SentEmail, Tenant, fixture, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

// Every handler call and sweep here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

const ERIN: &str = "erin-x93";
const BOB: &str = "bob-k22";
const RITA: &str = "rita-p51";
const COMMENT: &str = "zipper-broke-on-day-two";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap_or("null")).unwrap()
}

struct World {
    env: Env,
    other: Tenant,
    clock: Arc<ManualClock>,
    app: aftercare::app::App,
    key: SigningKey,
}

impl World {
    async fn new() -> Self {
        let mut env = Env::new().await;
        env.merchant.settings.loyalty.referral_points = 200;
        env.merchant.settings.loyalty.expire_after_months = 12;
        env.save_merchant().await;
        let other = env.add_merchant("other").await;
        let key = SigningKey::new(&[9u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key);
        Self {
            env,
            other,
            clock,
            app,
            key,
        }
    }

    fn m(&self) -> &MerchantId {
        &self.env.merchant.id
    }

    fn email(&self) -> String {
        format!("erinna.{}@example.com", self.env.tag)
    }

    fn old_email(&self) -> String {
        format!("erinna.old.{}@example.com", self.env.tag)
    }

    fn order(&self, id: &str, customer: &str, email: &str, first: &str, last: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["placed_at"] = "2026-11-20T09:30:00Z".into();
        o["customer"] = json!({"id": customer, "email": email, "first_name": first,
            "last_name": last, "locale": "en-GB", "time_zone": "Europe/London"});
        o
    }

    /// Places an order with `key`: (status, body).
    async fn place_with(&self, order: &Value, key: &str) -> (i64, Value) {
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(order, Some(key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        (resp["statusCode"].as_i64().unwrap(), body(&resp))
    }

    async fn place(&self, order: &Value) -> Value {
        let (status, body) = self.place_with(order, &self.env.api_key).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// A merchant API call to `function`'s handler: (status, body).
    async fn call(
        &self,
        function: &str,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        body_json: Option<Value>,
        key: &str,
    ) -> (i64, Value) {
        let text = body_json.map(|b| b.to_string());
        let mut event = self
            .env
            .api_event(route, path, params, text.as_deref(), Some(key));
        if let Some((p, q)) = path.split_once('?') {
            event["rawPath"] = p.into();
            aftercare_tests::with_query(&mut event, q);
        }
        if route.contains("loyalty/") || route.contains("credit/") {
            event["headers"]["idempotency-key"] = format!("k-{path}").into();
        }
        let resp = match function {
            "orders" => order_placed::handle(&self.app, event, "t", deadline()).await,
            "shipments" => shipment_update::handle(&self.app, event, "t", deadline()).await,
            "renewals" => {
                let links = renewal_checker::Links::new(BASE, self.key.clone());
                renewal_checker::handle(&self.app, &links, event, "t", deadline()).await
            }
            _ => {
                let links = survey_sender::Links::new(BASE, self.key.clone());
                survey_sender::handle(&self.app, &links, event, "t", deadline()).await
            }
        }
        .unwrap();
        (resp["statusCode"].as_i64().unwrap(), body(&resp))
    }

    /// The SES event `fixture_name` (id `event_id`) for the email whose send record is `send_ref`.
    async fn ses_event(
        &self,
        fixture_name: &str,
        send_ref: &str,
        event_id: &str,
        to: &str,
    ) -> Value {
        let record = self.env.items_with_sk(send_ref).await.pop();
        let message_id = record
            .map(|r| s(&r, "message_id"))
            .unwrap_or_else(|| "gone".into());
        self.ses_event_for(fixture_name, send_ref, event_id, to, &message_id)
            .await
    }

    async fn ses_event_for(
        &self,
        fixture_name: &str,
        send_ref: &str,
        event_id: &str,
        to: &str,
        message_id: &str,
    ) -> Value {
        let text = serde_json::to_string(&fixture(fixture_name))
            .unwrap()
            .replace("MESSAGE_ID", message_id)
            .replace("RECIPIENT", to)
            .replace("MERCHANT", self.m().as_str())
            .replace("SEND_REF", send_ref)
            .replace("EVENT_ID", event_id)
            .replace("\"AT\"", "\"2026-11-20T10:05:00.000Z\"");
        email_events::handle(
            &self.app,
            serde_json::from_str(&text).unwrap(),
            "t",
            deadline(),
        )
        .await
        .unwrap()
    }

    async fn survey_sweep_at(&self, at: &str) -> survey_sender::SweepReport {
        self.clock.set(t(at));
        let links = survey_sender::Links::new(BASE, self.key.clone());
        survey_sender::sweep(&self.app, &links, deadline())
            .await
            .unwrap()
    }

    async fn renewal_sweep_at(&self, at: &str) -> renewal_checker::SweepReport {
        self.clock.set(t(at));
        let links = renewal_checker::Links::new(BASE, self.key.clone());
        renewal_checker::sweep(&self.app, &links, deadline())
            .await
            .unwrap()
    }

    async fn billing(&self, event: Value) -> Value {
        let links = billing_alert::Links::new(BASE, self.key.clone());
        billing_alert::handle(&self.app, &links, event, "t", deadline())
            .await
            .unwrap()
    }

    async fn dunning_sweep_at(&self, at: &str) -> Value {
        self.clock.set(t(at));
        self.billing(
            json!({"version": "0", "id": "sched", "detail-type": "Scheduled Event",
            "source": "aws.events", "detail": {}}),
        )
        .await
    }

    /// A signed Stripe `invoice.payment_failed` for Erin's invoice `in_e1`.
    async fn payment_failed(&self) -> Value {
        self.payment("evt_e1", "invoice.payment_failed").await
    }

    /// A signed Stripe event `kind` about Erin's invoice `in_e1`.
    async fn payment(&self, event_id: &str, kind: &str) -> Value {
        let invoice = json!({
            "id": "in_e1", "object": "invoice", "customer": ERIN, "customer_email": self.email(),
            "customer_name": "Erinna Quaxley", "amount_due": 1990, "amount_paid": 0,
            "currency": "eur", "subscription": "sub-e1",
            "hosted_invoice_url": "https://invoice.stripe.test/in_e1",
            "lines": {"data": [{"description": "Coffee club"}]}
        });
        let now = aftercare::Clock::now(self.clock.as_ref()).as_second();
        let body = json!({"id": event_id, "object": "event", "type": kind,
            "created": now, "data": {"object": invoice}})
        .to_string();
        let m = self.m().to_string();
        let mut event = self.env.api_event(
            billing_alert::ROUTE_STRIPE,
            &format!("/v1/webhooks/stripe/{m}"),
            &[("merchantId", &m)],
            Some(&body),
            None,
        );
        event["headers"]["stripe-signature"] =
            signature::sign(self.env.webhook_secret().as_bytes(), now, body.as_bytes()).into();
        let resp = self.billing(event).await;
        assert_eq!(resp["statusCode"], 200, "{resp}");
        body_of(&resp)
    }

    async fn emails_to_erin(&self) -> Vec<SentEmail> {
        let mut all = self.env.emails_to(&self.email()).await;
        all.extend(self.env.emails_to(&self.old_email()).await);
        all
    }

    /// Every item of the table, by key.
    async fn table(&self) -> BTreeMap<(String, String), Item> {
        self.env
            .items()
            .await
            .into_iter()
            .map(|i| ((s(&i, "PK"), s(&i, "SK")), i))
            .collect()
    }

    fn other_tenant_pk(&self, pk: &str) -> bool {
        let m2 = format!("M#{}", self.other.merchant.id);
        pk == m2 || pk.starts_with(&format!("{m2}#"))
    }

    /// The identifying strings of Erin found anywhere in this merchant's items (keys included).
    async fn traces_of_erin(&self) -> Vec<String> {
        let needles = [
            self.email(),
            self.old_email(),
            "erinna".to_owned(),
            "quaxley".to_owned(),
            ERIN.to_owned(),
            COMMENT.to_owned(),
        ];
        let mut found = Vec::new();
        for ((pk, sk), item) in self.table().await {
            if self.other_tenant_pk(&pk) {
                continue;
            }
            let text = format!("{pk} {sk} {item:?}").to_lowercase();
            for n in &needles {
                if text.contains(n.as_str()) {
                    found.push(format!("{n} in {pk} / {sk}"));
                }
            }
        }
        found
    }

    /// Builds Erin with every kind of item, Bob beside her and a namesake at the other merchant:
    /// the tokens of her survey link and of her unsubscribe link.
    async fn build(&self) -> (String, String) {
        // Bob first: his referral code brings Erin in.
        let bob = self
            .place(&self.order(
                "SO-B1",
                BOB,
                &format!("bob.{}@example.com", self.env.tag),
                "Bob",
                "Stone",
            ))
            .await;
        let bob_code = bob["loyalty"]["referral_code"].as_str().unwrap().to_owned();

        // Erin's first order went to an old address, which then hard-bounced.
        let first = self
            .place(&self.order("SO-E0", ERIN, &self.old_email(), "Erinna", "Quaxley"))
            .await;
        assert_eq!(first["email"]["status"], "sent", "{first}");
        let old_ref = self.send_ref_to(&self.old_email()).await;
        let out = self
            .ses_event(
                "ses-bounce-permanent.json",
                &old_ref,
                "ev-e0-bounce",
                &self.old_email(),
            )
            .await;
        assert_eq!(out["result"], "recorded", "{out}");

        // Her second order, referred by Bob; then Rita comes through Erin's code.
        let mut second = self.order("SO-E1", ERIN, &self.email(), "Erinna", "Quaxley");
        second["referral_code"] = bob_code.into();
        let erin = self.place(&second).await;
        assert_eq!(erin["email"]["status"], "sent", "{erin}");
        let erin_code = erin["loyalty"]["referral_code"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut rita = self.order(
            "SO-R1",
            RITA,
            &format!("rita.{}@example.com", self.env.tag),
            "Rita",
            "Moss",
        );
        rita["referral_code"] = erin_code.into();
        self.place(&rita).await;

        // The thank-you's SES events: delivered, then a soft bounce (a streak on the address).
        let thanks = self.send_ref_to(&self.email()).await;
        for (fixture_name, id) in [
            ("ses-delivery.json", "ev-e1-delivery"),
            ("ses-bounce-transient.json", "ev-e1-soft"),
        ] {
            let out = self
                .ses_event(fixture_name, &thanks, id, &self.email())
                .await;
            assert_eq!(out["result"], "recorded", "{out}");
        }

        // Loyalty: an adjustment, then a redemption.
        let path = format!("/v1/customers/{ERIN}/loyalty/adjustments");
        let (status, out) = self
            .call(
                "orders",
                order_placed::loyalty::ROUTE_ADJUST,
                &path,
                &[("customerId", ERIN)],
                Some(json!({"points": 500, "reason": "goodwill"})),
                &self.env.api_key,
            )
            .await;
        assert!(status == 200 || status == 201, "{out}");
        let path = format!("/v1/customers/{ERIN}/loyalty/redemptions");
        let (status, out) = self
            .call(
                "orders",
                order_placed::loyalty::ROUTE_REDEEM,
                &path,
                &[("customerId", ERIN)],
                Some(json!({"points": 100})),
                &self.env.api_key,
            )
            .await;
        assert!(status == 200 || status == 201, "{out}");

        // Store credit: a return's credit with a bonus, then a redemption.
        let credit = aftercare::usecases::credit::StoreCredit {
            book: &self.app.store,
        };
        let eur = aftercare::domain::Currency::parse("currency", "EUR").unwrap();
        let erin = CustomerId::parse("customerId", ERIN).unwrap();
        credit
            .issue(
                self.m(),
                &erin,
                aftercare::domain::Money::new(2_000, eur),
                200,
                "return-SO-E1",
                Some("zip broke"),
                aftercare::Clock::now(self.clock.as_ref()),
            )
            .await
            .unwrap();
        let path = format!("/v1/customers/{ERIN}/credit/redemptions");
        let (status, out) = self
            .call(
                "orders",
                order_placed::credit::ROUTE_REDEEM,
                &path,
                &[("customerId", ERIN)],
                Some(json!({"amount": 700, "currency": "EUR", "order_id": "SO-E1"})),
                &self.env.api_key,
            )
            .await;
        assert!(status == 200 || status == 201, "{out}");

        // Preferences.
        let path = format!("/v1/customers/{ERIN}/preferences");
        let (status, out) = self
            .call(
                "surveys",
                survey_sender::ROUTE_PUT_PREFERENCES,
                &path,
                &[("customerId", ERIN)],
                Some(json!({"opted_out": ["cross_sell"], "time_zone": "Europe/Berlin"})),
                &self.env.api_key,
            )
            .await;
        assert_eq!(status, 200, "{out}");

        // The shipment, its checkpoints, delivery: the journey is scheduled.
        let (status, out) = self
            .call("shipments", shipment_update::ROUTE_CREATE, "/v1/orders/SO-E1/shipments",
                &[("orderId", "SO-E1")],
                Some(json!({"id": "SH-E1", "carrier": "DHL", "tracking_number": "JD-E1",
                    "tracking_url": "https://track.example/e1", "items": [{"sku": "TENT-2P", "quantity": 1}]})),
                &self.env.api_key)
            .await;
        assert_eq!(status, 201, "{out}");
        for (status_name, at) in [
            ("out_for_delivery", "2026-11-21T07:00:00Z"),
            ("delivered", "2026-11-21T12:00:00Z"),
        ] {
            let (status, out) = self
                .call(
                    "shipments",
                    shipment_update::ROUTE_CHECKPOINT,
                    "/v1/shipments/SH-E1/events",
                    &[("shipmentId", "SH-E1")],
                    Some(json!({"status": status_name, "occurred_at": at, "location": "Berlin"})),
                    &self.env.api_key,
                )
                .await;
            assert!(status == 200 || status == 201, "{out}");
        }

        // The survey goes; Erin answers with a comment.
        self.survey_sweep_at("2026-11-25T14:00:00Z").await;
        self.survey_sweep_at("2026-11-30T14:00:00Z").await;
        let survey = self
            .emails_to_erin()
            .await
            .into_iter()
            .find(|e| e.header("X-Aftercare-Kind").as_deref() == Some("feedback_survey"))
            .expect("the survey went");
        let token = survey_token(&survey);
        let unsubscribe = survey
            .header("List-Unsubscribe")
            .unwrap()
            .split(['<', '>', ','])
            .find(|p| p.contains("/v1/unsubscribe/"))
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let mut event = self.env.api_event(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &format!("/v1/survey/{token}"),
            &[("token", &token)],
            Some(&format!("score=2&comment={COMMENT}")),
            None,
        );
        event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        let links = survey_sender::Links::new(BASE, self.key.clone());
        let resp = survey_sender::handle(&self.app, &links, event, "t", deadline())
            .await
            .unwrap();
        assert_eq!(resp["statusCode"], 200, "{resp}");

        // A return of her second order, its parcel on the way back.
        let order_id = aftercare::domain::OrderId::parse("orderId", "SO-E1").unwrap();
        let input: aftercare::domain::returns::ReturnInput = serde_json::from_value(json!({
            "items": [{"sku": "TENT-2P", "quantity": 1, "reason": "damaged"}],
            "resolution": "refund", "comment": "The zip broke",
        }))
        .unwrap();
        let merchant = self.env.merchant.clone();
        let uc = shipment_update::returns::returns(&self.app);
        let asked = uc
            .request(
                &merchant,
                &order_id,
                "erin-return",
                &input,
                aftercare::domain::returns::Requester::Merchant,
                deadline(),
            )
            .await
            .unwrap();
        let parcel = aftercare::domain::returns::ReturnParcel {
            tracking_number: "RT-ERIN-0001".into(),
            carrier: Some("DHL".into()),
        };
        uc.set_parcel(&merchant, &asked.record.id, parcel)
            .await
            .unwrap();

        // A subscription and a failed invoice in dunning.
        let sub = json!({
            "customer": {"id": ERIN, "email": self.email(), "first_name": "Erinna", "last_name": "Quaxley"},
            "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
            "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
            "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2026},
            "manage_url": "https://shop.test/account/subscriptions",
            "updated_at": "2026-11-30T08:00:00Z"
        });
        let (status, out) = self
            .call(
                "renewals",
                renewal_checker::ROUTE_PUT,
                "/v1/subscriptions/sub-e1",
                &[("subscriptionId", "sub-e1")],
                Some(sub),
                &self.env.api_key,
            )
            .await;
        assert!(status == 200 || status == 201, "{out}");
        let failed = self.payment_failed().await;
        assert_eq!(failed["result"], "dunning_started", "{failed}");

        // The namesake at the other merchant: same id, same address.
        let namesake = self.order("SO-E1", ERIN, &self.email(), "Erinna", "Quaxley");
        let (status, out) = self.place_with(&namesake, &self.other.api_key).await;
        assert_eq!(status, 201, "{out}");
        (token, unsubscribe)
    }

    /// A customer's page behind a signed link: the status.
    async fn link(&self, route: &str, path: &str, token: &str, form: Option<&str>) -> i64 {
        let mut event = self
            .env
            .api_event(route, path, &[("token", token)], form, None);
        if form.is_some() {
            event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        }
        let links = survey_sender::Links::new(BASE, self.key.clone());
        let resp = survey_sender::handle(&self.app, &links, event, "t", deadline())
            .await
            .unwrap();
        resp["statusCode"].as_i64().unwrap()
    }

    /// The sort key of the newest send record to `to`.
    async fn send_ref_to(&self, to: &str) -> String {
        let mut sends: Vec<Item> = self
            .env
            .items_with_sk("SEND#")
            .await
            .into_iter()
            .filter(|i| {
                s(i, "recipient") == to && s(i, "PK").starts_with(&format!("M#{}#", self.m()))
            })
            .collect();
        sends.sort_by_key(|i| s(i, "created_at"));
        s(&sends.pop().expect("a send record"), "SK")
    }

    /// Every page of an export at `path` (a route of survey-sender).
    async fn export(
        &self,
        route: &str,
        path: &str,
        params: &[(&str, &str)],
        key: &str,
    ) -> (Vec<Value>, BTreeMap<String, usize>) {
        let mut pages = Vec::new();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let full = match (&cursor, path.contains('?')) {
                (Some(c), true) => format!("{path}&cursor={c}"),
                (Some(c), false) => format!("{path}?cursor={c}"),
                (None, _) => path.to_owned(),
            };
            let (status, page) = self.call("surveys", route, &full, params, None, key).await;
            assert_eq!(status, 200, "{page}");
            for (kind, items) in page["items"].as_object().unwrap() {
                *kinds.entry(kind.clone()).or_default() += items.as_array().unwrap().len();
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            pages.push(page);
            if cursor.is_none() {
                return (pages, kinds);
            }
            assert!(pages.len() < 50, "the export ends");
        }
    }

    async fn erase(&self, customer: &str, key: &str) -> (i64, Value) {
        let path = format!("/v1/customers/{customer}/erasure");
        self.call(
            "surveys",
            survey_sender::ROUTE_ERASE_CUSTOMER,
            &path,
            &[("customerId", customer)],
            None,
            key,
        )
        .await
    }
}

fn body_of(resp: &Value) -> Value {
    body(resp)
}

/// The token of the survey's score links.
fn survey_token(email: &SentEmail) -> String {
    let text = email.part("text/plain").unwrap();
    let link = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '(' || c == ')'))
        .find(|w| w.starts_with(&format!("{BASE}/v1/survey/")))
        .unwrap()
        .to_owned();
    link.rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// The items whose partition key contains one of `marks`.
fn items_marked(
    table: &BTreeMap<(String, String), Item>,
    marks: &[&str],
) -> BTreeMap<(String, String), Item> {
    table
        .iter()
        .filter(|((pk, _), _)| marks.iter().any(|m| pk.contains(m)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test]
async fn a_customer_is_exported_whole_then_erased_without_a_trace_and_never_mailed_again() {
    let w = World::new().await;
    let (survey, unsubscribe) = w.build().await;

    // The export holds every kind of item.
    let path = format!("/v1/customers/{ERIN}/export");
    let (pages, kinds) = w
        .export(
            survey_sender::ROUTE_EXPORT_CUSTOMER,
            &path,
            &[("customerId", ERIN)],
            &w.env.api_key,
        )
        .await;
    assert!(pages[0]["request_id"].as_str().unwrap().starts_with("ex_"));
    for kind in [
        "customer",
        "contact",
        "customer_spend",
        "customer_order",
        "ledger_summary",
        "ledger",
        "loyalty_notice",
        "credit_summary",
        "credit_entry",
        "return",
        "return_tally",
        "customer_subscription",
        "customer_invoice",
        "customer_address",
        "send",
        "order",
        "order_shipment",
        "follow_up",
        "feedback",
        "shipment",
        "checkpoint",
        "subscription",
        "invoice",
        "suppression",
        "bounce_streak",
        "referee",
        "referral_code",
        "address_customer",
    ] {
        assert!(
            kinds.contains_key(kind),
            "{kind} missing from the export: {kinds:?}"
        );
    }
    let text = serde_json::to_string(&pages).unwrap();
    assert!(text.contains(COMMENT) && text.contains(&w.email()));
    assert!(
        text.contains("ev-e1-delivery"),
        "SES events are in the export"
    );
    assert!(
        !text.contains("\"PK\"") && !text.contains("DUESK"),
        "no table attributes"
    );
    // Nothing of Bob's own (who referred her is hers to know: her order and referral record).
    assert!(!text.contains(&format!("bob.{}@example.com", w.env.tag)) && !text.contains("SO-B1"));
    let namesake_orders = kinds.get("order").copied().unwrap_or_default();
    assert_eq!(
        namesake_orders, 2,
        "Erin's two orders, not the namesake's: {kinds:?}"
    );

    // By address: the same customer, found through the address.
    let by_email = format!("/v1/privacy/export?email={}", w.email());
    let (pages_by_email, kinds_by_email) = w
        .export(
            survey_sender::ROUTE_EXPORT_EMAIL,
            &by_email,
            &[],
            &w.env.api_key,
        )
        .await;
    assert_eq!(pages_by_email[0]["customer_ids"], json!([ERIN]));
    assert_eq!(kinds_by_email.get("order"), Some(&2));

    // A small page budget walks the same items in several pages.
    let erin = CustomerId::parse("c", ERIN).unwrap();
    let mut paged = 0;
    let mut cursor: Option<aftercare::domain::privacy::ExportCursor> = Some(Default::default());
    let mut rounds = 0;
    while let Some(c) = cursor {
        use aftercare::ports::privacy::PrivacyBook;
        let page = w
            .app
            .store
            .export_page(w.m(), std::slice::from_ref(&erin), None, &c, 2_000)
            .await
            .unwrap();
        paged += page.items.len();
        cursor = page.next;
        rounds += 1;
        assert!(rounds < 500);
    }
    assert_eq!(
        paged,
        kinds.values().sum::<usize>(),
        "paging loses and repeats nothing"
    );
    assert!(rounds > 3, "{rounds} pages");

    let before = w.table().await;
    let bob_before = items_marked(&before, &[BOB, "SO-B1"]);
    let emails_before = w.emails_to_erin().await.len();
    assert!(emails_before >= 4, "{emails_before}");

    // The erasure.
    w.clock.set(t("2026-12-01T09:00:00Z"));
    let (status, request) = w.erase(ERIN, &w.env.api_key).await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(request["status"], "completed");
    assert!(
        request["counts"]["erased.order"].as_u64() == Some(2),
        "{request}"
    );
    assert!(
        request["counts"]["kept.suppression"].as_u64() >= Some(1),
        "{request}"
    );
    // Her store credit: the return's issue and the redemption, and the EUR summary.
    assert_eq!(
        (
            request["counts"]["erased.credit_entry"].as_u64(),
            request["counts"]["erased.credit_summary"].as_u64()
        ),
        (Some(2), Some(1)),
        "{request}"
    );
    // Her return and its parcel's pointer.
    assert_eq!(
        (
            request["counts"]["erased.return"].as_u64(),
            request["counts"]["erased.return_tally"].as_u64(),
            request["counts"]["erased.return_parcel_pointer"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{request}"
    );
    assert!(
        !w.table()
            .await
            .keys()
            .any(|(pk, _)| pk.contains("#RET#") || pk.contains("#RTRK#")),
        "no return or parcel pointer left"
    );
    let id = request["request_id"].as_str().unwrap().to_owned();

    // No trace of Erin anywhere in the merchant's items, keys included.
    assert_eq!(w.traces_of_erin().await, Vec::<String>::new());
    let after = w.table().await;
    // What was written or changed: the order ids' tombstones, the audit record, and Rita's order
    // and referral record, which forgot who referred her.
    let kept: BTreeSet<String> = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k) || after[*k] != before[*k])
        .map(|(_, i)| s(i, "_type"))
        .collect();
    assert!(
        kept.iter()
            .all(|k| ["idempotency", "privacy_request", "order", "referee"].contains(&k.as_str())),
        "{kept:?}"
    );
    // Each order id's tombstone is kept for good (no expiry) and holds nothing of the order.
    for o in ["SO-E0", "SO-E1"] {
        let tomb = &after[&(format!("M#{}#IDEM#order#{o}", w.m()), "IDEMP".to_owned())];
        assert!(!tomb.contains_key("expires_at"), "{tomb:?}");
        assert_eq!(s(tomb, "content_hash"), "", "{tomb:?}");
    }
    // Bob is untouched; Rita's order only forgot who referred her.
    assert_eq!(items_marked(&after, &[BOB, "SO-B1"]), bob_before);
    let rita = &after[&(format!("M#{}#O#SO-R1", w.m()), "ORDER".to_owned())];
    assert!(!rita.contains_key("referred_by"), "{rita:?}");
    assert!(
        before[&(format!("M#{}#O#SO-R1", w.m()), "ORDER".to_owned())].contains_key("referred_by")
    );
    // The other merchant's namesake is untouched.
    let theirs = |t: &BTreeMap<(String, String), Item>| -> BTreeMap<(String, String), Item> {
        t.iter()
            .filter(|((pk, _), _)| w.other_tenant_pk(pk))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert!(!theirs(&before).is_empty());
    assert_eq!(theirs(&after), theirs(&before));

    // Every sweep and event path runs on; nothing reaches Erin.
    for at in [
        "2026-12-05T12:00:00Z",
        "2026-12-20T12:00:00Z",
        "2027-01-20T12:00:00Z",
        "2027-11-10T12:00:00Z",
    ] {
        let r = w.survey_sweep_at(at).await;
        assert_eq!(r.sent, 0, "{r:?}");
    }
    for at in ["2026-12-13T09:00:00Z", "2026-12-17T09:00:00Z"] {
        let r = w.renewal_sweep_at(at).await;
        assert_eq!(r.sent, 0, "{r:?}");
    }
    for at in ["2026-12-05T10:00:00Z", "2026-12-30T10:00:00Z"] {
        w.clock.set(t(at));
        let r = shipment_update::sweep(&w.app, deadline()).await.unwrap();
        assert_eq!(r["due"], 0, "{r}");
    }
    for at in [
        "2026-12-05T10:00:00Z",
        "2026-12-12T10:00:00Z",
        "2027-01-05T10:00:00Z",
    ] {
        let swept = w.dunning_sweep_at(at).await;
        assert_eq!(swept["reminders_sent"].as_u64().unwrap_or(0), 0, "{swept}");
    }
    let late = w
        .ses_event_for(
            "ses-open.json",
            &format!("SEND#{ERIN}#order_thanks#SO-E1#0"),
            "ev-late",
            &w.email(),
            "m-late",
        )
        .await;
    assert_ne!(late["result"], "recorded", "{late}");
    // Her old links lead nowhere and write nothing.
    let answer = w
        .link(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &format!("/v1/survey/{survey}"),
            &survey,
            Some(&format!("score=9&comment={COMMENT}")),
        )
        .await;
    assert!(answer == 404 || answer == 410, "{answer}");
    for (route, form) in [
        (
            survey_sender::ROUTE_UNSUBSCRIBE,
            Some("List-Unsubscribe=One-Click"),
        ),
        (survey_sender::ROUTE_UNSUBSCRIBE_PAGE, None),
    ] {
        let status = w
            .link(
                route,
                &format!("/v1/unsubscribe/{unsubscribe}"),
                &unsubscribe,
                form,
            )
            .await;
        assert_eq!(status, 404, "{route}");
    }
    assert_eq!(w.emails_to_erin().await.len(), emails_before);
    assert_eq!(
        w.traces_of_erin().await,
        Vec::<String>::new(),
        "nothing came back"
    );

    // The order replayed, however late, stays erased; the same address later is a new customer.
    let (status, out) = w
        .place_with(
            &w.order("SO-E1", ERIN, &w.email(), "Erinna", "Quaxley"),
            &w.env.api_key,
        )
        .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("order_erased")),
        "{out}"
    );
    let (status, out) = w
        .place_with(
            &w.order("SO-N1", "newcomer-1", &w.email(), "E", "Q"),
            &w.env.api_key,
        )
        .await;
    assert_eq!(status, 201, "{out}");
    let newcomer = w.env.items_in("C#newcomer-1", "LEDGER#").await;
    assert_eq!(
        newcomer.len(),
        1,
        "only the new order's points: {newcomer:?}"
    );
    assert!(w.env.items_in(&format!("C#{ERIN}"), "").await.is_empty());

    // The request reads back, free of the person; asking again is the same request.
    let path = format!("/v1/privacy/requests/{id}");
    let (status, read) = w
        .call(
            "surveys",
            survey_sender::ROUTE_REQUEST,
            &path,
            &[("requestId", &id)],
            None,
            &w.env.api_key,
        )
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["status"], "completed");
    assert!(!read.to_string().contains(ERIN));
    let (status, again) = w.erase(ERIN, &w.env.api_key).await;
    assert_eq!(
        (status, again["request_id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(again["runs"], 2);
    // Stripe still reports on her invoice afterwards: new data about a payment, stored as such
    // (the invoice and its pointers, nothing of what was erased), and nothing is sent.
    // (The newcomer's thank-you went to the address meanwhile: a new customer's.)
    let emails_now = w.emails_to_erin().await.len();
    w.clock.set(t("2027-01-10T10:00:00Z"));
    let paid = w.payment("evt_e2", "invoice.payment_succeeded").await;
    assert_ne!(paid["result"], "recovered", "{paid}");
    assert_eq!(w.emails_to_erin().await.len(), emails_now);
    let back: Vec<String> = w
        .env
        .items_in(&format!("C#{ERIN}"), "")
        .await
        .iter()
        .map(|i| s(i, "SK"))
        .filter(|sk| !sk.starts_with("INV#") && !sk.starts_with("ADDR#"))
        .collect();
    assert_eq!(back, Vec::<String>::new());
}

#[tokio::test]
async fn an_order_and_an_ses_event_during_the_erasure_resurrect_nothing() {
    let w = World::new().await;
    w.build().await;
    let thanks = w.send_ref_to(&w.email()).await;
    let message_id = s(
        &w.env.items_with_sk(&thanks).await.pop().unwrap(),
        "message_id",
    );
    let replay = w.order("SO-E1", ERIN, &w.email(), "Erinna", "Quaxley");
    w.clock.set(t("2026-12-01T09:00:00Z"));
    let to = w.email();
    for round in 0..3 {
        let event_id = format!("ev-race-{round}");
        let (erased, placed, event) = tokio::join!(
            w.erase(ERIN, &w.env.api_key),
            w.place_with(&replay, &w.env.api_key),
            w.ses_event_for("ses-open.json", &thanks, &event_id, &to, &message_id),
        );
        assert!(erased.0 == 200, "{erased:?}");
        // The replay met either the stored order (a duplicate) or its tombstone.
        assert!(
            placed.0 == 200 || placed.0 == 201 || placed.0 == 409,
            "{placed:?}"
        );
        assert!(event["result"].is_string(), "{event}");
    }
    // Whatever interleaving happened, a last erasure pass leaves nothing, and nothing comes back.
    let (status, _) = w.erase(ERIN, &w.env.api_key).await;
    assert_eq!(status, 200);
    assert_eq!(w.traces_of_erin().await, Vec::<String>::new());
    let (status, out) = w.place_with(&replay, &w.env.api_key).await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("order_erased"))
    );
    let late = w
        .ses_event_for(
            "ses-delivery.json",
            &thanks,
            "ev-after",
            &w.email(),
            &message_id,
        )
        .await;
    assert_ne!(late["result"], "recorded", "{late}");
    assert_eq!(w.traces_of_erin().await, Vec::<String>::new());
    assert!(w.env.items_with_sk(&thanks).await.is_empty());
}

#[tokio::test]
async fn an_erasure_cut_short_is_carried_on_by_the_next_sweep() {
    let w = World::new().await;
    w.build().await;
    let privacy = Privacy {
        book: &w.app.store,
        merchants: w.app.merchants.as_ref(),
    };
    let now = t("2026-12-01T09:00:00Z");
    w.clock.set(now);
    // No time at all in this invocation: the request is recorded, nothing completes.
    let subject = Subject::Customer(CustomerId::parse("c", ERIN).unwrap());
    let started = privacy
        .erase(w.m(), &subject, "test", now, std::time::Instant::now())
        .await
        .unwrap();
    assert_eq!(started.status, RequestStatus::Running);
    assert!(!w.traces_of_erin().await.is_empty(), "not yet erased");
    // The running request waits in the due index; the sweep after its resume time finishes it.
    let r = w.survey_sweep_at("2026-12-01T09:03:00Z").await;
    assert_eq!(
        (r.privacy.erasures_resumed, r.privacy.erasures_completed),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(w.traces_of_erin().await, Vec::<String>::new());
    let done = privacy.request(w.m(), &started.id).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    assert_eq!(done.subject, None);
    let r = w.survey_sweep_at("2026-12-01T09:10:00Z").await;
    assert_eq!(r.privacy.erasures_resumed, 0, "{r:?}");
}

#[tokio::test]
async fn an_address_is_erased_with_every_customer_who_used_it_and_its_suppression_stays() {
    let w = World::new().await;
    w.build().await;
    // Someone else (another customer id) used Erin's current address too.
    w.place(&w.order("SO-X1", "erin-alt", &w.email(), "Erinna", "Quaxley"))
        .await;
    let (status, request) = w
        .call(
            "surveys",
            survey_sender::ROUTE_ERASE_EMAIL,
            "/v1/privacy/erasure",
            &[],
            Some(json!({"email": w.email().to_uppercase()})),
            &w.env.api_key,
        )
        .await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(request["counts"]["customers"], 2, "{request}");
    let traces: Vec<String> = w
        .traces_of_erin()
        .await
        .into_iter()
        .filter(|t| !t.contains(&w.old_email()) && !t.contains("erin-alt"))
        .collect();
    assert_eq!(traces, Vec::<String>::new());
    // The old address (hard-bounced) is still never mailed: its suppression stayed, by digest.
    let (status, out) = w
        .place_with(
            &w.order("SO-Z1", "zed-1", &w.old_email(), "Z", "Z"),
            &w.env.api_key,
        )
        .await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["email"]["status"], "suppressed", "{out}");
    // Bad input is refused naming the field; nothing is written.
    let (status, out) = w
        .call(
            "surveys",
            survey_sender::ROUTE_ERASE_EMAIL,
            "/v1/privacy/erasure",
            &[],
            Some(json!({"email": "not-an-address"})),
            &w.env.api_key,
        )
        .await;
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (400, Some("email")),
        "{out}"
    );
    let (status, out) = w
        .call(
            "surveys",
            survey_sender::ROUTE_EXPORT_CUSTOMER,
            "/v1/customers/x/export?cursor=zz",
            &[("customerId", "x")],
            None,
            &w.env.api_key,
        )
        .await;
    assert_eq!(
        (status, out["error"]["field"].as_str()),
        (400, Some("cursor")),
        "{out}"
    );
}

#[tokio::test]
async fn a_merchant_cannot_export_or_erase_another_merchants_customer() {
    let w = World::new().await;
    w.build().await;
    let before = w.table().await;
    // The other merchant's key, asking for Erin (its own namesake exists under the same id).
    let path = format!("/v1/customers/{ERIN}/export");
    let (_, kinds) = w
        .export(
            survey_sender::ROUTE_EXPORT_CUSTOMER,
            &path,
            &[("customerId", ERIN)],
            &w.other.api_key,
        )
        .await;
    assert_eq!(
        kinds.get("order"),
        Some(&1),
        "only its own namesake's order: {kinds:?}"
    );
    let (status, _) = w.erase(ERIN, &w.other.api_key).await;
    assert_eq!(status, 200);
    // This merchant's Erin is untouched by the other merchant's erasure.
    let after = w.table().await;
    let ours = |t: &BTreeMap<(String, String), Item>| items_marked(t, &[&format!("M#{}#", w.m())]);
    assert_eq!(ours(&after), ours(&before));
    // And no key, no data.
    let event = w.env.api_event(
        survey_sender::ROUTE_EXPORT_CUSTOMER,
        &path,
        &[("customerId", ERIN)],
        None,
        None,
    );
    let links = survey_sender::Links::new(BASE, w.key.clone());
    let resp = survey_sender::handle(&w.app, &links, event, "t", deadline())
        .await
        .unwrap();
    assert_eq!(resp["statusCode"], 401);
}

#[tokio::test]
async fn a_customer_inactive_past_the_retention_period_is_erased_and_a_subscriber_is_kept() {
    let mut env = Env::new().await;
    env.merchant.settings.retention.customer_days = Some(30);
    env.save_merchant().await;
    let key = SigningKey::new(&[9u8; 32]).unwrap();
    let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key);
    let other = env.add_merchant("other").await;
    let w = World {
        env,
        other,
        clock,
        app,
        key,
    };
    w.place(&w.order("SO-E1", ERIN, &w.email(), "Erinna", "Quaxley"))
        .await;
    w.place(&w.order(
        "SO-B1",
        BOB,
        &format!("bob.{}@example.com", w.env.tag),
        "Bob",
        "Stone",
    ))
    .await;
    let sub = json!({
        "customer": {"id": BOB, "email": format!("bob.{}@example.com", w.env.tag), "first_name": "Bob"},
        "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
        "status": "active", "next_renewal_at": "2027-06-20T09:00:00Z",
        "updated_at": "2026-11-20T08:00:00Z"
    });
    let (status, out) = w
        .call(
            "renewals",
            renewal_checker::ROUTE_PUT,
            "/v1/subscriptions/sub-b1",
            &[("subscriptionId", "sub-b1")],
            Some(sub),
            &w.env.api_key,
        )
        .await;
    assert!(status == 200 || status == 201, "{out}");
    // Before the period ends nothing happens.
    let r = w.survey_sweep_at("2026-12-10T10:00:00Z").await;
    assert_eq!(r.privacy.retention_erased, 0, "{r:?}");
    assert!(!w.traces_of_erin().await.is_empty());
    // After it: Erin is erased (by `retention`); Bob, a subscriber, is kept and looked at later.
    let r = w.survey_sweep_at("2026-12-21T10:00:00Z").await;
    assert_eq!(
        (r.privacy.retention_erased, r.privacy.retention_deferred),
        (1, 1),
        "{r:?}"
    );
    assert_eq!(w.traces_of_erin().await, Vec::<String>::new());
    assert!(
        !w.env
            .items_in(&format!("C#{BOB}"), "PROFILE")
            .await
            .is_empty()
    );
    let audit: Vec<Item> = w
        .env
        .items()
        .await
        .into_iter()
        .filter(|i| s(i, "_type") == "privacy_request")
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(s(&audit[0], "requested_by"), "retention");
    let r = w.survey_sweep_at("2026-12-22T10:00:00Z").await;
    assert_eq!(
        r.privacy.retention_erased + r.privacy.retention_deferred,
        0,
        "{r:?}"
    );
}

/// `privacy.forget_order_referrer`, `privacy.forget_referee_referrer`,
/// `privacy.referral_code_owner`. The erasure finds a referral through the customer's own records
/// (her reward's ledger entry, her profile's code) but unlinks or deletes only what still names
/// her: when, by the time it runs, the referred order and its referee record name another
/// referrer and her code's item another owner (written meanwhile by another writer: a correction,
/// a re-referral), those stay as they are.
#[tokio::test]
async fn an_erasure_leaves_a_referral_and_a_code_that_now_name_someone_else_as_they_are() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let w = World::new().await;
    let erin = w
        .place(&w.order("SO-E1", ERIN, &w.email(), "Erinna", "Quaxley"))
        .await;
    let erin_code = erin["loyalty"]["referral_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut rita = w.order(
        "SO-R1",
        RITA,
        &format!("rita.{}@example.com", w.env.tag),
        "Rita",
        "Moss",
    );
    rita["referral_code"] = erin_code.into();
    w.place(&rita).await;

    // Another writer moves the referral and the code to Bob after Erin's records were written.
    let before = w.table().await;
    // The items of `kind` whose `attr` names Erin.
    let erins = |kind: &str, attr: &str| -> Vec<(String, String)> {
        before
            .iter()
            .filter(|(_, i)| s(i, "_type") == kind && s(i, attr) == ERIN)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let order_key = (format!("M#{}#O#SO-R1", w.m()), "ORDER".to_owned());
    assert_eq!(s(&before[&order_key], "referred_by"), ERIN);
    let referees = erins("referee", "referrer");
    let codes = erins("referral_code", "customer_id");
    assert_eq!(
        (referees.len(), codes.len()),
        (1, 1),
        "Rita's referral, Erin's code"
    );
    for ((pk, sk), attr) in [
        (order_key.clone(), "referred_by"),
        (referees[0].clone(), "referrer"),
        (codes[0].clone(), "customer_id"),
    ] {
        w.env
            .dynamodb()
            .update_item()
            .table_name(&w.env.table)
            .key("PK", AttributeValue::S(pk))
            .key("SK", AttributeValue::S(sk))
            .update_expression("SET #a = :bob")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":bob", AttributeValue::S(BOB.to_owned()))
            .send()
            .await
            .unwrap();
    }

    w.clock.set(t("2026-12-01T09:00:00Z"));
    let (status, request) = w.erase(ERIN, &w.env.api_key).await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(request["status"], "completed", "{request}");

    let after = w.table().await;
    assert_eq!(s(&after[&order_key], "referred_by"), BOB, "the order");
    assert_eq!(s(&after[&referees[0]], "referrer"), BOB, "the referee");
    let code = after.get(&codes[0]).expect("Bob's code is not deleted");
    assert_eq!(s(code, "customer_id"), BOB, "the code");
    assert_eq!(
        request["counts"]["unlinked.referred_order"],
        Value::Null,
        "{request}"
    );
    assert_eq!(
        request["counts"]["unlinked.referee"],
        Value::Null,
        "{request}"
    );
    assert_eq!(
        request["counts"]["erased.referral_code"],
        Value::Null,
        "{request}"
    );
}
