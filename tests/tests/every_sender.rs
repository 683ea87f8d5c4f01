//! After a hard bounce or a complaint, no function sends to that address again: the SES event
//! (fixture in the shape SES publishes to EventBridge) goes through the real email-events handler,
//! then every sender is driven for the same customer over the real SDK against moto: order-placed
//! (thank-you), shipment-update (shipped, out for delivery, delivered), survey-sender (every
//! follow-up and the loyalty expiry notice), renewal-checker (renewal reminder and card notice) and
//! billing-alert (payment failed, dunning reminders, payment recovered). Exactly one email reaches
//! the address: the one that bounced or was complained about. Every email that was due is on record
//! as suppressed or skipped for that reason, so the message log can say why it did not go.
//!
//! And the customer's chosen language and time zone reach the senders whose provider data would
//! say otherwise (renewal-checker, billing-alert), through the merchant's own SES configuration set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::marketing::Preferences;
use aftercare::domain::{CustomerId, Locale};
use aftercare::ports::feedback::ContactBook as _;
use aftercare::signature;
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, fixture, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

// Every handler call and sweep here gets a Lambda's longest budget.
use aftercare_tests::long_deadline as deadline;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    /// One App serves every function (they share the crate's App).
    app: aftercare::app::App,
    key: SigningKey,
}

impl World {
    async fn new() -> Self {
        let mut env = Env::new().await;
        env.merchant.settings.loyalty.expire_after_months = 3;
        env.merchant.settings.reviews.url_template = Some("https://shop.test/r/{sku}".into());
        env.save_merchant().await;
        let key = SigningKey::new(&[5u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-20T10:00:00Z", &key);
        Self {
            env,
            clock,
            app,
            key,
        }
    }

    fn email(&self) -> String {
        self.env.customer_email()
    }

    fn order(&self, id: &str, placed_at: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["placed_at"] = placed_at.into();
        o
    }

    /// Places an order; answers the thank-you email's status.
    async fn place(&self, order: &Value) -> String {
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(order, Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        body["email"]["status"].as_str().unwrap().to_owned()
    }

    /// The SES event `fixture_name` for the email whose send record has sort key `send_ref`, fed
    /// to the email-events handler as EventBridge delivers it.
    async fn ses_event(&self, fixture_name: &str, send_ref: &str) {
        let record = self.env.items_with_sk(send_ref).await.pop().unwrap();
        let text = serde_json::to_string(&fixture(fixture_name))
            .unwrap()
            .replace("MESSAGE_ID", &s(&record, "message_id"))
            .replace("RECIPIENT", &self.email())
            .replace("MERCHANT", self.env.merchant.id.as_str())
            .replace("SEND_REF", send_ref)
            .replace("EVENT_ID", "ev-suppress")
            .replace("\"AT\"", "\"2026-11-20T10:05:00.000Z\"");
        let out = email_events::handle(
            &self.app,
            serde_json::from_str(&text).unwrap(),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(out["result"], "recorded", "{out}");
    }

    /// A merchant API call to shipment-update: (status, body).
    async fn shipment(&self, route: &str, path: &str, param: (&str, &str), body: Value) -> Value {
        let event = self.env.api_event(
            route,
            path,
            &[param],
            Some(&body.to_string()),
            Some(&self.env.api_key),
        );
        let resp = shipment_update::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        assert!(
            resp["statusCode"] == 201 || resp["statusCode"] == 200,
            "{resp}"
        );
        serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
    }

    async fn survey_sweep_at(&self, at: &str) -> survey_sender::SweepReport {
        self.clock.set(t(at));
        let links = survey_sender::Links::new(BASE, self.key.clone());
        survey_sender::sweep(&self.app, &links, deadline())
            .await
            .unwrap()
    }

    async fn subscription(&self) -> Value {
        let email = self.email();
        let body = json!({
            "customer": {"id": "c-ann", "email": email, "first_name": "Ann"},
            "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
            "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
            "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2026},
            "manage_url": "https://shop.test/account/subscriptions",
            "updated_at": "2026-11-20T08:00:00Z"
        })
        .to_string();
        let event = self.env.api_event(
            renewal_checker::ROUTE_PUT,
            "/v1/subscriptions/sub-1",
            &[("subscriptionId", "sub-1")],
            Some(&body),
            Some(&self.env.api_key),
        );
        let links = renewal_checker::Links::new(BASE, self.key.clone());
        renewal_checker::handle(&self.app, &links, event, "t", deadline())
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

    /// A signed Stripe webhook of `kind` for invoice `in_1` of the customer.
    async fn stripe(&self, event_id: &str, kind: &str) -> Value {
        let invoice = json!({
            "id": "in_1", "object": "invoice", "customer": "cus_1", "customer_email": self.email(),
            "customer_name": "Ann Example", "amount_due": 1990, "amount_paid": 1990,
            "currency": "eur", "subscription": "sub_1",
            "hosted_invoice_url": "https://invoice.stripe.test/in_1",
            "lines": {"data": [{"description": "Coffee club"}]}
        });
        let now = aftercare::Clock::now(self.clock.as_ref()).as_second();
        let body = json!({"id": event_id, "object": "event", "type": kind, "created": now,
            "data": {"object": invoice}})
        .to_string();
        let m = self.env.merchant.id.to_string();
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
        serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
    }

    async fn dunning_sweep_at(&self, at: &str) -> Value {
        self.clock.set(t(at));
        self.billing(
            json!({"version": "0", "id": "sched", "detail-type": "Scheduled Event",
            "source": "aws.events", "detail": {}}),
        )
        .await
    }

    /// Send records for the customer's address other than `except`: (kind, status).
    async fn other_sends(&self, except: &str) -> Vec<(String, String)> {
        let mut sends: Vec<_> = self
            .env
            .items_with_sk("SEND#")
            .await
            .iter()
            .filter(|i| s(i, "recipient") == self.email() && s(i, "SK") != except)
            .map(|i| (s(i, "kind"), s(i, "status")))
            .collect();
        sends.sort();
        sends
    }
}

async fn nothing_reaches_the_address_after(fixture_name: &str) {
    let w = World::new().await;
    assert_eq!(
        w.place(&w.order("SO-1001", "2026-11-20T09:30:00Z")).await,
        "sent"
    );
    let first = w.env.items_with_sk("SEND#").await.pop().unwrap();
    let first_ref = s(&first, "SK");
    w.ses_event(fixture_name, &first_ref).await;

    // order-placed: the next order is stored, its thank-you recorded as suppressed.
    assert_eq!(
        w.place(&w.order("SO-1002", "2026-11-20T09:45:00Z")).await,
        "suppressed"
    );

    // shipment-update: the shipment and its checkpoints apply; no milestone email goes.
    let shipped = w
        .shipment(
            shipment_update::ROUTE_CREATE,
            "/v1/orders/SO-1002/shipments",
            ("orderId", "SO-1002"),
            json!({"id": "SH-1", "carrier": "DHL", "tracking_number": "JD1",
                   "tracking_url": "https://track.example/1", "items": [{"sku": "TENT-2P", "quantity": 1}]}),
        )
        .await;
    assert_eq!(shipped["email"]["status"], "suppressed", "{shipped}");
    for (status, at) in [
        ("out_for_delivery", "2026-11-21T07:00:00Z"),
        ("delivered", "2026-11-21T12:00:00Z"),
    ] {
        let out = w
            .shipment(
                shipment_update::ROUTE_CHECKPOINT,
                "/v1/shipments/SH-1/events",
                ("shipmentId", "SH-1"),
                json!({"status": status, "occurred_at": at, "location": "Berlin"}),
            )
            .await;
        assert_eq!(out["result"], "applied", "{out}");
        assert_eq!(out["email"], "suppressed", "{out}");
    }

    // survey-sender: every follow-up of the delivered order comes due and is skipped.
    let mut skipped = 0;
    for at in [
        "2026-11-25T12:00:00Z",
        "2026-12-05T12:00:00Z",
        "2026-12-20T12:00:00Z",
        "2027-01-20T12:00:00Z",
    ] {
        let r = w.survey_sweep_at(at).await;
        assert_eq!(r.sent, 0, "{r:?}");
        skipped += r.skipped;
    }
    assert!(skipped >= 3, "follow-ups skipped: {skipped}");
    for f in w.env.items_in("O#SO-1002", "FOLLOWUP#").await {
        assert_eq!(s(&f, "status"), "skipped", "{f:?}");
        let decisions = format!("{:?}", f["decisions"]);
        assert!(decisions.contains("suppressed"), "{decisions}");
    }
    // The loyalty expiry notice, 14 days before the points go (three months after SO-1002).
    let r = w.survey_sweep_at("2027-02-06T12:00:00Z").await;
    assert_eq!((r.loyalty.due, r.loyalty.sent), (1, 0), "{r:?}");

    // renewal-checker: the reminder and the card notice come due; neither goes.
    w.clock.set(t("2026-11-20T10:00:00Z"));
    let resp = w.subscription().await;
    assert!(
        resp["statusCode"] == 201 || resp["statusCode"] == 200,
        "{resp}"
    );
    let mut suppressed = 0;
    for at in [
        "2026-12-01T09:00:00Z",
        "2026-12-13T09:00:00Z",
        "2026-12-17T09:00:00Z",
    ] {
        let r = w.renewal_sweep_at(at).await;
        assert_eq!(r.sent, 0, "{r:?}");
        suppressed += r.suppressed;
    }
    assert!(suppressed >= 1, "renewal notices suppressed: {suppressed}");

    // billing-alert: dunning starts and runs its course, the recovery is recorded; no email.
    w.clock.set(t("2027-03-01T10:00:00Z"));
    let failed = w.stripe("evt_1", "invoice.payment_failed").await;
    assert_eq!(failed["result"], "dunning_started", "{failed}");
    assert_eq!(failed["email"], "suppressed", "{failed}");
    let swept = w.dunning_sweep_at("2027-03-04T10:00:00Z").await;
    assert_eq!(swept["reminders_sent"], 0, "{swept}");
    assert_eq!(swept["suppressed"], 1, "{swept}");
    w.clock.set(t("2027-03-05T10:00:00Z"));
    let paid = w.stripe("evt_2", "invoice.payment_succeeded").await;
    assert_eq!(paid["result"], "recovered", "{paid}");
    assert_eq!(paid["email"], "suppressed", "{paid}");

    // One email ever reached the address: the first thank-you.
    let emails = w.env.emails_to(&w.email()).await;
    assert_eq!(
        emails.len(),
        1,
        "{:?}",
        emails
            .iter()
            .map(|e| e.header("Subject"))
            .collect::<Vec<_>>()
    );
    // Everything else that was due is on record as suppressed.
    let others = w.other_sends(&first_ref).await;
    assert!(others.len() >= 6, "{others:?}");
    assert!(
        others.iter().all(|(_, status)| status == "suppressed"),
        "{others:?}"
    );
}

#[tokio::test]
async fn after_a_complaint_no_function_sends_to_the_address_again() {
    nothing_reaches_the_address_after("ses-complaint.json").await;
}

#[tokio::test]
async fn after_a_hard_bounce_no_function_sends_to_the_address_again() {
    nothing_reaches_the_address_after("ses-bounce-permanent.json").await;
}

/// A customer's chosen language and time zone win over what the payment provider said (English,
/// no zone) in the renewal reminder and every dunning email, and a merchant with its own SES
/// configuration set has every email sent through it.
#[tokio::test]
async fn renewal_and_dunning_mail_speaks_the_chosen_language_through_the_merchants_configuration_set()
 {
    let mut w = World::new().await;
    w.env.merchant.sender.configuration_set = Some("aftercare-test-acme".into());
    w.env
        .store
        .put_merchant(&w.env.merchant, Timestamp::now())
        .await
        .unwrap();
    let chosen = Preferences {
        subscribed: true,
        opted_out: Default::default(),
        locale: Some(Locale::De),
        time_zone: Some("Europe/Berlin".into()),
    };
    // The merchant's id for the subscription's customer, and Stripe's for the invoice's.
    for c in ["c-ann", "cus_1"] {
        w.app
            .store
            .set_preferences(
                &w.env.merchant.id,
                &CustomerId::parse("customer", c).unwrap(),
                &chosen,
                Timestamp::now(),
            )
            .await
            .unwrap();
    }

    let resp = w.subscription().await;
    assert!(
        resp["statusCode"] == 201 || resp["statusCode"] == 200,
        "{resp}"
    );
    let r = w.renewal_sweep_at("2026-12-13T09:00:00Z").await;
    assert_eq!(r.sent, 1, "{r:?}");
    w.clock.set(t("2027-03-01T10:00:00Z"));
    let failed = w.stripe("evt_1", "invoice.payment_failed").await;
    assert_eq!(failed["email"], "sent", "{failed}");
    let swept = w.dunning_sweep_at("2027-03-04T10:00:00Z").await;
    assert_eq!(swept["reminders_sent"], 1, "{swept}");

    let emails = w.env.emails_to(&w.email()).await;
    let subjects: Vec<_> = emails.iter().filter_map(|e| e.subject()).collect();
    assert_eq!(emails.len(), 3, "{subjects:?}");
    for (email, opening) in emails
        .iter()
        .zip(["Ihr Abo", "Ihre Zahlung", "Erinnerung:"])
    {
        let subject = email.subject().unwrap_or_default();
        assert!(subject.starts_with(opening), "{subject}");
        let html = email.part("text/html").unwrap();
        assert!(html.contains(r#"<html lang="de""#), "{subject}");
        assert_eq!(
            email.configuration_set.as_deref(),
            Some("aftercare-test-acme"),
            "{subject}"
        );
    }
}
