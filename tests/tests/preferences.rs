//! Preferences over the real SDK against moto: the signed preference page linked from every
//! marketing email (GET records nothing; the form opts out of one kind and sets a language and a
//! time zone), the merchant's API, and the sweep honouring all three: the opted-out kind is
//! skipped with its reason, the next email comes in the chosen language, and quiet hours follow
//! the chosen zone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::{CustomerId, OrderId};
use aftercare::ports::ContactLookup as _;
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, SentEmail, s};
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
    app: aftercare::app::App,
    links: survey_sender::Links,
}

impl World {
    async fn new() -> Self {
        let mut env = Env::new().await;
        let j = &mut env.merchant.settings.journey;
        j.usage_tips.enabled = false;
        j.cross_sell.enabled = false;
        env.merchant.settings.marketing.survey_throttle_days = 0;
        env.merchant.settings.marketing.frequency_cap_hours = 0;
        env.merchant.settings.reviews.url_template = Some("https://shop.test/r/{sku}".into());
        env.save_merchant().await;
        let key = SigningKey::new(&[11u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-12T10:00:00Z", &key);
        Self {
            links: survey_sender::Links::new(BASE, key),
            env,
            clock,
            app,
        }
    }

    async fn place_and_deliver(&self, id: &str, delivered: &str) {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["id"] = "ann".into();
        o["customer"]["time_zone"] = "Europe/London".into();
        o["customer"]["locale"] = "en".into();
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(&o, Some(&self.env.api_key)),
            "t",
            deadline(),
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
        self.env
            .store
            .anchor_journey(
                &order,
                at,
                aftercare::domain::followup::AnchorReason::Delivered,
                &schedule,
                at,
            )
            .await
            .unwrap();
    }

    async fn sweep_at(&self, at: &str) -> survey_sender::SweepReport {
        self.clock.set(t(at));
        survey_sender::sweep(&self.app, &self.links, deadline())
            .await
            .unwrap()
    }

    async fn surveys(&self) -> Vec<SentEmail> {
        self.env
            .emails_to(&self.env.customer_email())
            .await
            .into_iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some("feedback_survey"))
            .collect()
    }

    /// A call to survey-sender: (status, body text).
    async fn call(&self, event: Value) -> (i64, String) {
        let resp = survey_sender::handle(&self.app, &self.links, event, "t", deadline())
            .await
            .unwrap();
        (
            resp["statusCode"].as_i64().unwrap(),
            resp["body"].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn page(&self, token: &str, form: Option<&str>) -> (i64, String) {
        let route = match form {
            Some(_) => survey_sender::ROUTE_PREFERENCES_SAVE,
            None => survey_sender::ROUTE_PREFERENCES_PAGE,
        };
        let mut event = self.env.api_event(
            route,
            &format!("/v1/preferences/{token}"),
            &[("token", token)],
            form,
            None,
        );
        if form.is_some() {
            event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        }
        self.call(event).await
    }

    async fn api(&self, body: Option<Value>) -> (i64, Value) {
        let route = match body {
            Some(_) => survey_sender::ROUTE_PUT_PREFERENCES,
            None => survey_sender::ROUTE_GET_PREFERENCES,
        };
        let text = body.map(|b| b.to_string());
        let event = self.env.api_event(
            route,
            "/v1/customers/ann/preferences",
            &[("customerId", "ann")],
            text.as_deref(),
            Some(&self.env.api_key),
        );
        let (status, body) = self.call(event).await;
        (status, serde_json::from_str(&body).unwrap())
    }
}

/// The preference page's token in an email's text part.
fn preferences_token(email: &SentEmail) -> String {
    let text = email.part("text/plain").unwrap();
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{BASE}/v1/preferences/")))
        .unwrap_or_else(|| panic!("no preference link in {text}"));
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_preference_page_changes_kinds_language_and_quiet_hours_for_the_next_emails() {
    let w = World::new().await;
    w.place_and_deliver("SO-1", "2026-11-13T10:00:00Z").await;
    assert_eq!(w.sweep_at("2026-11-20T10:00:00Z").await.sent, 1);
    let surveys = w.surveys().await;
    assert_eq!(surveys.len(), 1);
    let token = preferences_token(&surveys[0]);

    // Opening the page (a mail filter may) records nothing; it shows every kind wanted.
    let (status, html) = w.page(&token, None).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"name="kind_review_request" value="on" checked"#),
        "{html}"
    );
    let ann = CustomerId::parse("c", "ann").unwrap();
    let m = &w.env.merchant.id;
    assert_eq!(
        w.env
            .store
            .contact(m, &ann)
            .await
            .unwrap()
            .preferences()
            .opted_out
            .len(),
        0
    );

    // A time zone we do not know: shown again with why, nothing stored.
    let (status, html) = w
        .page(
            &token,
            Some("form=preferences&marketing=on&time_zone=Mars%2FOlympus"),
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(
        w.env
            .store
            .contact(m, &ann)
            .await
            .unwrap()
            .time_zone
            .is_none()
    );

    // Review requests off, German, New York.
    let form = "form=preferences&marketing=on&kind_usage_tips=on&kind_feedback_survey=on\
                &kind_cross_sell=on&locale=de&time_zone=America%2FNew_York";
    let (status, html) = w.page(&token, Some(form)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Gespeichert"), "{html}");
    let (status, prefs) = w.api(None).await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(
        prefs,
        json!({"customer_id": "ann", "subscribed": true, "opted_out": ["review_request"],
               "locale": "de", "time_zone": "America/New_York", "unsubscribed_at": null})
    );

    // SO-1's review request comes due: skipped, opted out.
    let r = w.sweep_at("2026-11-27T10:00:00Z").await;
    assert_eq!((r.sent, r.skipped), (0, 1), "{r:?}");
    let review = w
        .env
        .items_in("O#SO-1", "FOLLOWUP#review_request")
        .await
        .pop()
        .unwrap();
    assert_eq!(s(&review, "outcome"), "opted_out");

    // SO-2's survey is due at 10:00Z: 05:00 in New York, so it waits for 08:00 there (13:00Z),
    // and it is in German.
    w.place_and_deliver("SO-2", "2026-11-21T10:00:00Z").await;
    let r = w.sweep_at("2026-11-28T10:00:00Z").await;
    assert_eq!((r.sent, r.deferred), (0, 1), "{r:?}");
    let r = w.sweep_at("2026-11-28T13:00:00Z").await;
    assert_eq!(r.sent, 1, "{r:?}");
    let surveys = w.surveys().await;
    assert_eq!(surveys.len(), 2);
    let text = surveys
        .iter()
        .map(|e| e.part("text/plain").unwrap())
        .find(|t| t.contains("SO-2"))
        .unwrap();
    assert!(text.contains("E-Mail-Einstellungen verwalten"), "{text}");

    // A tampered token opens nothing.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = w.page(&forged, None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_merchant_api_sets_preferences_and_names_the_field_it_refuses() {
    let w = World::new().await;
    let (status, prefs) = w.api(None).await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(prefs["subscribed"], true);
    assert_eq!(prefs["opted_out"], json!([]));

    for (body, field) in [
        (
            json!({"opted_out": ["usage_tips", "newsletter"]}),
            "opted_out[1]",
        ),
        (json!({"locale": "xx"}), "locale"),
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, err) = w.api(Some(body.clone())).await;
        assert!(status == 400 || status == 422, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (_, prefs) = w.api(None).await;
    assert_eq!(prefs["opted_out"], json!([]), "nothing stored on refusal");

    let (status, prefs) = w
        .api(Some(
            json!({"subscribed": false, "opted_out": ["cross_sell"], "locale": "fr-CA"}),
        ))
        .await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(prefs["subscribed"], false);
    assert_eq!(prefs["locale"], "fr");
    assert!(prefs["unsubscribed_at"].is_string(), "{prefs}");
    // Partial: only the language changes back (empty clears).
    let (_, prefs) = w.api(Some(json!({"locale": ""}))).await;
    assert_eq!(prefs["locale"], Value::Null);
    assert_eq!(prefs["subscribed"], false);
    assert_eq!(prefs["opted_out"], json!(["cross_sell"]));
}
