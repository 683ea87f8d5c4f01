//! survey-sender over the real SDK against moto: the post-delivery journey, marketing rules (quiet
//! hours across zones and a DST change, frequency cap, survey throttle, unsubscribe, suppression),
//! overlapping sweeps, sweep read cost at 2,000 due items (10,000 under `AFTERCARE_TEST_SCALE=full`),
//! the one-click feedback loop and the feedback API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::adapters::store::keys;
use aftercare::clock::ManualClock;
use aftercare::domain::EmailAddress;
use aftercare::domain::catalogue::{ProductInput, Sku};
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::{MerchantId, OrderId};
use aftercare::ports::ContactLookup as _;
use aftercare::ports::catalogue::Catalogue as _;
use aftercare::ports::feedback::{ContactBook as _, FeedbackBook as _};
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare_tests::counter::{CallCounter, counted_clients};
use aftercare_tests::{Env, Item, SentEmail, num, s};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;
use survey_sender::SweepReport;

const BASE: &str = "https://api.test";

use aftercare_tests::long_deadline;

fn key() -> SigningKey {
    SigningKey::new(&[42u8; 32]).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    orders: order_placed::App,
    app: survey_sender::App,
    links: survey_sender::Links,
}

impl World {
    async fn new() -> Self {
        Self::build(None, |_| {}).await
    }

    /// A world whose merchant settings `tune` adjusts (journey steps, rules).
    async fn build(
        counter: Option<&CallCounter>,
        tune: impl FnOnce(&mut aftercare::domain::Merchant),
    ) -> Self {
        let mut env = Env::new().await;
        let m = &mut env.merchant;
        m.settings.reviews.url_template = Some("https://shop.test/p/{sku}/review?o={order}".into());
        tune(m);
        env.store
            .put_merchant(&env.merchant, Timestamp::now())
            .await
            .unwrap();
        let item = |sku: &str, name: &str, related: &[&str], tips: &[&str]| {
            let input: ProductInput = serde_json::from_value(json!({
                "name": name,
                "url": format!("https://shop.test/p/{}", name.replace(' ', "-")),
                "price": 2900, "currency": "EUR",
                "tips": {"en": tips}, "related": related,
            }))
            .unwrap();
            input
                .validate(Sku::parse("sku", sku).unwrap(), Timestamp::now())
                .unwrap()
        };
        let catalogue = [
            item(
                "TENT-2P",
                "Ridge tent",
                &["GROUND-1", "PEG-AL-10"],
                &["Pitch it once at home before the first trip."],
            ),
            item("PEG-AL-10", "Pegs", &[], &[]),
            item("GROUND-1", "Ground sheet", &[], &[]),
        ];
        env.store
            .put_products(&env.merchant.id, &catalogue)
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(t("2026-11-20T10:00:00Z")));
        let mut config = env.config().with_signing_key(key());
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        let (ddb, ses) = match counter {
            Some(c) => counted_clients(&env.sdk, c),
            None => (env.dynamodb(), env.ses()),
        };
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
        }
    }

    fn order(&self, id: &str, email: &str, tz: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["email"] = email.into();
        o["customer"]["id"] = format!("c-{email}").replace('@', "-at-").into();
        o["customer"]["time_zone"] = tz.into();
        o
    }

    async fn place(&self, order: &Value) {
        let resp = order_placed::handle(
            &self.orders,
            self.env.http_event(order, Some(&self.env.api_key)),
            "t",
            long_deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
    }

    /// Anchors the order's journey at `delivered` (what shipment-update does on delivery).
    async fn deliver(&self, order_id: &str, delivered: &str) {
        let o = OrderId::parse("o", order_id).unwrap();
        let order = self
            .env
            .store
            .get_order(&self.env.merchant.id, &o)
            .await
            .unwrap()
            .unwrap();
        let at = t(delivered);
        let schedule = self.env.merchant.settings.journey.schedule(at);
        assert!(
            self.env
                .store
                .anchor_journey(
                    &order,
                    at,
                    aftercare::domain::followup::AnchorReason::Delivered,
                    &schedule,
                    at
                )
                .await
                .unwrap()
        );
    }

    async fn sweep_at(&self, at: &str) -> SweepReport {
        self.clock.set(t(at));
        survey_sender::sweep(&self.app, &self.links, long_deadline())
            .await
            .unwrap()
    }

    async fn follow_up(&self, order_id: &str, kind: FollowUpKind) -> Item {
        self.env
            .items_in(
                &format!("O#{order_id}"),
                &format!("FOLLOWUP#{}", kind.as_str()),
            )
            .await
            .pop()
            .unwrap()
    }

    async fn emails(&self, to: &str, kind: &str) -> Vec<SentEmail> {
        self.env
            .emails_to(to)
            .await
            .into_iter()
            .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some(kind))
            .collect()
    }

    /// An HTTP API call to survey-sender: (status, body text).
    async fn http(
        &self,
        route: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        auth: bool,
    ) -> (i64, String) {
        let params: Vec<(&str, &str)> = token.map(|t| vec![("token", t)]).unwrap_or_default();
        let mut event = self.env.api_event(
            route,
            path,
            &params,
            body,
            auth.then_some(self.env.api_key.as_str()),
        );
        if body.is_some() {
            event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
        }
        if let Some((p, q)) = path.split_once('?') {
            event["rawPath"] = p.into();
            aftercare_tests::with_query(&mut event, q);
        }
        let resp = survey_sender::handle(&self.app, &self.links, event, "t", long_deadline())
            .await
            .unwrap();
        (
            resp["statusCode"].as_i64().unwrap(),
            resp["body"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

/// The survey links in an email's text part, in score order.
fn score_links(email: &SentEmail) -> Vec<String> {
    let text = email.part("text/plain").unwrap();
    let mut links: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let w = word.trim_matches(|c: char| c == '<' || c == '>' || c == '(' || c == ')');
        if w.starts_with(&format!("{BASE}/v1/survey/")) && !links.contains(&w.to_owned()) {
            links.push(w.to_owned());
        }
    }
    links
}

fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

fn decisions(item: &Item) -> Vec<(String, String)> {
    item.get("decisions")
        .and_then(|d| d.as_l().ok())
        .map(|l| {
            l.iter()
                .map(|d| {
                    let m = d.as_m().unwrap();
                    let get = |k: &str| {
                        m.get(k)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default()
                    };
                    (get("action"), get("reason"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_journey_sends_each_follow_up_once_at_its_time() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    w.place(&w.order("SO-1001", &ann, "Europe/London")).await;
    w.deliver("SO-1001", "2026-11-23T13:05:00Z").await;

    assert_eq!(
        w.sweep_at("2026-11-24T14:00:00Z").await.due,
        0,
        "nothing due a day after delivery"
    );
    let r = w.sweep_at("2026-11-26T14:00:00Z").await;
    assert_eq!((r.due, r.sent, r.errors), (1, 1, 0), "{r:?}");
    let again = w.sweep_at("2026-11-26T14:00:00Z").await;
    assert_eq!(
        (again.due, again.sent),
        (0, 0),
        "a rerun finds nothing left"
    );

    let tips = w.emails(&ann, "usage_tips").await;
    assert_eq!(tips.len(), 1);
    let unsubscribe = tips[0].header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with(&format!("<{BASE}/v1/unsubscribe/")),
        "{unsubscribe}"
    );
    assert_eq!(
        tips[0].header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        tips[0]
            .part("text/html")
            .unwrap()
            .contains("Pitch it once at home")
    );

    assert_eq!(w.sweep_at("2026-11-30T14:00:00Z").await.sent, 1);
    let survey = w.emails(&ann, "feedback_survey").await;
    assert_eq!(survey.len(), 1);
    assert_eq!(
        score_links(&survey[0]).len(),
        11,
        "NPS 0..10, one link each"
    );

    assert_eq!(w.sweep_at("2026-12-03T14:00:00Z").await.sent, 1);
    let cross = w.emails(&ann, "cross_sell").await;
    let html = cross[0].part("text/html").unwrap();
    assert!(
        html.contains("Ground sheet"),
        "recommends a related product"
    );
    assert!(
        !html.contains("https://shop.test/p/Pegs"),
        "never one the customer bought"
    );

    assert_eq!(w.sweep_at("2026-12-07T14:00:00Z").await.sent, 1);
    let review = w.emails(&ann, "review_request").await;
    assert!(
        review[0]
            .part("text/plain")
            .unwrap()
            .contains("https://shop.test/p/TENT-2P/review?o=SO-1001")
    );

    assert_eq!(w.sweep_at("2026-12-30T14:00:00Z").await.due, 0);
    for kind in FollowUpKind::ALL {
        let item = w.follow_up("SO-1001", kind).await;
        assert_eq!(s(&item, "status"), "sent", "{kind:?}");
        assert!(!s(&item, "message_id").is_empty());
        assert!(!item.contains_key("DUEPK"), "out of the due index");
        assert_eq!(decisions(&item), vec![("sent".into(), String::new())]);
    }
    let surveys_sent = w
        .env
        .store
        .surveys_sent_between(
            &w.env.merchant.id,
            t("2026-11-01T00:00:00Z"),
            t("2026-12-31T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(surveys_sent, 1);
}

/// The return page links in an email's text part.
fn return_links(email: &SentEmail) -> Vec<String> {
    let text = email.part("text/plain").unwrap();
    text.split_whitespace()
        .filter(|w| w.starts_with(&format!("{BASE}/v1/return/")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_usage_tips_start_a_return_only_when_the_policy_is_on() {
    let w = World::build(None, |m| {
        m.settings.returns.enabled = true;
        m.settings.returns.window_days = 30;
    })
    .await;
    let ann = w.env.customer_email();
    w.place(&w.order("SO-1001", &ann, "Europe/London")).await;
    w.deliver("SO-1001", "2026-11-23T13:05:00Z").await;
    assert_eq!(w.sweep_at("2026-11-26T14:00:00Z").await.sent, 1);

    let tips = w.emails(&ann, "usage_tips").await;
    assert_eq!(tips.len(), 1);
    let links = return_links(&tips[0]);
    assert_eq!(
        links.len(),
        1,
        "one return link in the text part: {links:?}"
    );
    let html = tips[0].part("text/html").unwrap();
    assert!(html.contains("Start a return"), "{html}");
    assert!(
        html.contains(&links[0].replace('/', "&#x2f;")) || html.contains(&links[0]),
        "the HTML links the same page"
    );

    // The link opens the order's return page through shipment-update's handler.
    let (_, portal) = w.env.app_at("2026-11-26T14:00:00Z", &key());
    let token = token_of(&links[0]);
    let resp = shipment_update::handle(
        &portal,
        w.env.api_event(
            shipment_update::ROUTE_RETURN_PAGE,
            &format!("/v1/return/{token}"),
            &[("token", token.as_str())],
            None,
            None,
        ),
        "t",
        long_deadline(),
    )
    .await
    .unwrap();
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let page = resp["body"].as_str().unwrap();
    assert!(page.contains(r#"id="return-form""#), "{page}");
    assert!(page.contains("SO-1001"), "{page}");

    // A merchant who takes no returns online: no link.
    let off = World::build(None, |m| m.settings.returns.enabled = false).await;
    let ann = off.env.customer_email();
    off.place(&off.order("SO-1001", &ann, "Europe/London"))
        .await;
    off.deliver("SO-1001", "2026-11-23T13:05:00Z").await;
    assert_eq!(off.sweep_at("2026-11-26T14:00:00Z").await.sent, 1);
    let tips = off.emails(&ann, "usage_tips").await;
    assert_eq!(tips.len(), 1);
    assert!(return_links(&tips[0]).is_empty(), "{tips:?}");
    assert!(
        !tips[0]
            .part("text/html")
            .unwrap()
            .contains("Start a return")
    );
}

#[tokio::test]
async fn quiet_hours_defer_to_eight_in_the_recipients_zone_across_a_dst_change() {
    let w = World::build(None, |m| {
        let j = &mut m.settings.journey;
        j.usage_tips.enabled = false;
        j.cross_sell.enabled = false;
        j.review_request.enabled = false;
    })
    .await;
    let ny = format!("ny.{}@example.com", w.env.tag);
    let london = format!("ldn.{}@example.com", w.env.tag);
    w.place(&w.order("SO-NY", &ny, "America/New_York")).await;
    w.place(&w.order("SO-LDN", &london, "Europe/London")).await;
    // Surveys due 2026-11-01T02:00Z: 22:00 on 31 October in New York (EDT), 02:00 in London.
    w.deliver("SO-NY", "2026-10-25T02:00:00Z").await;
    w.deliver("SO-LDN", "2026-10-25T02:00:00Z").await;

    let r = w.sweep_at("2026-11-01T02:05:00Z").await;
    assert_eq!((r.due, r.deferred, r.sent), (2, 2, 0), "{r:?}");
    let ny_item = w.follow_up("SO-NY", FollowUpKind::FeedbackSurvey).await;
    // US clocks go back at 02:00 on 1 November: 08:00 local is then EST, 13:00Z (not 12:00Z).
    assert_eq!(t(&s(&ny_item, "due_at")), t("2026-11-01T13:00:00Z"));
    assert_eq!(
        decisions(&ny_item),
        vec![("deferred".into(), "quiet_hours".into())]
    );
    let ldn_item = w.follow_up("SO-LDN", FollowUpKind::FeedbackSurvey).await;
    assert_eq!(
        t(&s(&ldn_item, "due_at")),
        t("2026-11-01T08:00:00Z"),
        "08:00 GMT"
    );

    assert_eq!(
        w.sweep_at("2026-11-01T08:00:00Z").await.sent,
        1,
        "London's morning"
    );
    assert_eq!(
        w.sweep_at("2026-11-01T12:59:00Z").await.due,
        0,
        "not yet New York's"
    );
    assert_eq!(w.sweep_at("2026-11-01T13:00:00Z").await.sent, 1);
    assert_eq!(w.emails(&ny, "feedback_survey").await.len(), 1);
    assert_eq!(w.emails(&london, "feedback_survey").await.len(), 1);
}

#[tokio::test]
async fn the_frequency_cap_defers_and_the_survey_throttle_skips() {
    let w = World::build(None, |m| {
        let j = &mut m.settings.journey;
        j.cross_sell.enabled = false;
        j.review_request.enabled = false;
    })
    .await;
    let ann = w.env.customer_email();
    w.place(&w.order("SO-1", &ann, "Europe/London")).await;
    w.place(&w.order("SO-2", &ann, "Europe/London")).await;
    w.deliver("SO-1", "2026-11-23T13:00:00Z").await;
    w.deliver("SO-2", "2026-11-23T13:00:00Z").await;

    // Both orders' tips are due together: one goes, the other waits 16 h (then past quiet hours).
    let r = w.sweep_at("2026-11-26T14:00:00Z").await;
    assert_eq!((r.due, r.sent, r.deferred), (2, 1, 1), "{r:?}");
    let items = [
        w.follow_up("SO-1", FollowUpKind::UsageTips).await,
        w.follow_up("SO-2", FollowUpKind::UsageTips).await,
    ];
    let deferred = items
        .iter()
        .find(|i| s(i, "status") == "scheduled")
        .unwrap();
    assert_eq!(
        decisions(deferred),
        vec![("deferred".into(), "frequency_cap".into())]
    );
    // 14:00Z + 16 h = 06:00 London, inside quiet hours → 08:00 London.
    assert_eq!(t(&s(deferred, "due_at")), t("2026-11-27T08:00:00Z"));
    assert_eq!(w.sweep_at("2026-11-27T08:00:00Z").await.sent, 1);
    assert_eq!(w.emails(&ann, "usage_tips").await.len(), 2);

    // Surveys: the first goes; the second order's, 0 days later, is throttled (one per 30 days).
    let r = w.sweep_at("2026-11-30T14:00:00Z").await;
    assert_eq!((r.sent, r.skipped), (1, 1), "{r:?}");
    let throttled = [
        w.follow_up("SO-1", FollowUpKind::FeedbackSurvey).await,
        w.follow_up("SO-2", FollowUpKind::FeedbackSurvey).await,
    ]
    .into_iter()
    .find(|i| s(i, "status") == "skipped")
    .unwrap();
    assert_eq!(s(&throttled, "outcome"), "survey_throttled");
    assert_eq!(w.emails(&ann, "feedback_survey").await.len(), 1);
}

#[tokio::test]
async fn unsubscribed_and_suppressed_recipients_are_skipped_with_the_reason() {
    let w = World::build(None, |m| {
        let j = &mut m.settings.journey;
        j.cross_sell.enabled = false;
        j.review_request.enabled = false;
    })
    .await;
    let ann = w.env.customer_email();
    let bob = format!("bob.{}@example.com", w.env.tag);
    w.place(&w.order("SO-A", &ann, "Europe/London")).await;
    w.place(&w.order("SO-B", &bob, "Europe/London")).await;
    w.deliver("SO-A", "2026-11-23T13:00:00Z").await;
    w.deliver("SO-B", "2026-11-23T13:00:00Z").await;
    let bob_address = EmailAddress::parse("e", &bob).unwrap();
    w.env
        .store
        .put_suppression(
            &w.env.merchant.id,
            &bob_address,
            "hard_bounce",
            Timestamp::now(),
        )
        .await
        .unwrap();

    let r = w.sweep_at("2026-11-26T14:00:00Z").await;
    assert_eq!((r.sent, r.skipped), (1, 1), "{r:?}");
    assert_eq!(
        s(
            &w.follow_up("SO-B", FollowUpKind::UsageTips).await,
            "outcome"
        ),
        "suppressed"
    );
    assert!(w.emails(&bob, "usage_tips").await.is_empty());

    // Ann uses the RFC 8058 one-click unsubscribe of her tips email.
    let tips = w.emails(&ann, "usage_tips").await;
    let url = tips[0].header("List-Unsubscribe").unwrap();
    let url = url.trim_matches(|c| c == '<' || c == '>');
    let token = token_of(url);
    let path = format!("/v1/unsubscribe/{token}");
    let (status, page) = w
        .http(
            survey_sender::ROUTE_UNSUBSCRIBE,
            &path,
            Some(&token),
            Some("List-Unsubscribe=One-Click"),
            false,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let r = w.sweep_at("2026-11-30T14:00:00Z").await;
    assert_eq!((r.sent, r.skipped), (0, 2), "{r:?}");
    assert_eq!(
        s(
            &w.follow_up("SO-A", FollowUpKind::FeedbackSurvey).await,
            "outcome"
        ),
        "unsubscribed"
    );

    // The page shows the state and lets her resubscribe.
    let (status, page) = w
        .http(
            survey_sender::ROUTE_UNSUBSCRIBE_PAGE,
            &path,
            Some(&token),
            None,
            false,
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("value=\"resubscribe\""), "{page}");
    let (status, _) = w
        .http(
            survey_sender::ROUTE_UNSUBSCRIBE,
            &path,
            Some(&token),
            Some("action=resubscribe"),
            false,
        )
        .await;
    assert_eq!(status, 200);
    let contact = w
        .env
        .store
        .contact(
            &w.env.merchant.id,
            &aftercare::domain::CustomerId::parse("c", &format!("c-{ann}").replace('@', "-at-"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(!contact.unsubscribed);
    // A forged token changes nothing.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (status, _) = w
        .http(
            survey_sender::ROUTE_UNSUBSCRIBE,
            &format!("/v1/unsubscribe/{forged}"),
            Some(&forged),
            Some("List-Unsubscribe=One-Click"),
            false,
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn overlapping_sweeps_send_each_follow_up_once() {
    let w = World::build(None, |m| {
        let j = &mut m.settings.journey;
        j.usage_tips.enabled = false;
        j.cross_sell.enabled = false;
        j.review_request.enabled = false;
    })
    .await;
    let customers: Vec<String> = (0..12)
        .map(|i| format!("c{i}.{}@example.com", w.env.tag))
        .collect();
    for (i, c) in customers.iter().enumerate() {
        w.place(&w.order(&format!("SO-{i}"), c, "Europe/London"))
            .await;
        w.deliver(&format!("SO-{i}"), "2026-11-23T13:00:00Z").await;
    }
    // A second Lambda instance: its own app (own caches), same table, same clock.
    let mut config = w.env.config().with_signing_key(key());
    config.public_base_url = Some(BASE.into());
    config.ses_max_send_rate = 1000;
    let other =
        survey_sender::App::with_parts(config, w.env.dynamodb(), w.env.ses(), w.clock.clone())
            .unwrap();
    w.clock.set(t("2026-11-30T14:00:00Z"));
    let (a, b) = tokio::join!(
        survey_sender::sweep(&w.app, &w.links, long_deadline()),
        survey_sender::sweep(&other, &w.links, long_deadline())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 12, "{a:?} {b:?}");
    assert_eq!(a.errors + b.errors, 0);
    for c in &customers {
        assert_eq!(w.emails(c, "feedback_survey").await.len(), 1, "{c}");
    }
}

#[tokio::test]
async fn a_sweep_of_many_due_items_reads_only_what_is_due() {
    let counter = CallCounter::default();
    let w = World::build(Some(&counter), |_| {}).await;
    let ann = w.env.customer_email();
    w.place(&w.order("SO-0", &ann, "Europe/London")).await;
    let template = w
        .env
        .store
        .get_order(&w.env.merchant.id, &OrderId::parse("o", "SO-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    let customer = template.order.customer.id.clone();
    // Ann unsubscribed: every follow-up is processed (read, decided, settled) without mail, so the
    // figure is the sweep's own cost.
    w.env
        .store
        .set_unsubscribed(&w.env.merchant.id, &customer, true, Timestamp::now())
        .await
        .unwrap();
    let m: &MerchantId = &w.env.merchant.id;
    let due_at = t("2026-11-30T14:00:00Z");
    let later = t("2026-12-20T14:00:00Z");
    let ddb = w.env.dynamodb();
    let mut batch = Vec::new();
    let total_due = aftercare_tests::scaled(2_000, 10_000);
    for i in 0..(total_due + 1_000) {
        let order_id = OrderId::parse("o", &format!("BULK-{i}")).unwrap();
        let mut order = template.clone();
        order.order.id = order_id.clone();
        let mut item: Item = serde_dynamo::to_item(&order).unwrap();
        let k = keys::order(m, &order_id);
        item.insert(
            "PK".into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.pk),
        );
        item.insert(
            "SK".into(),
            aws_sdk_dynamodb::types::AttributeValue::S(k.sk),
        );
        batch.push(item);
        // 1,000 more follow-ups are not due yet: they must not be read.
        let at = if i < total_due { due_at } else { later };
        let fk = keys::follow_up(m, &order_id, "usage_tips");
        let (dpk, dsk) = keys::due("followup", at, &fk);
        let fu = json!({
            "PK": fk.pk, "SK": fk.sk, "DUEPK": dpk, "DUESK": dsk, "_type": "follow_up",
            "order_id": order_id.as_str(), "customer_id": customer.as_str(), "recipient": ann,
            "kind": "usage_tips", "due_at": at.to_string(), "anchor": at.to_string(),
            "anchor_reason": "delivered", "status": "scheduled",
        });
        batch.push(serde_dynamo::to_item(&fu).unwrap());
    }
    for chunk in batch.chunks(25) {
        let writes = chunk
            .iter()
            .map(|i| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = ddb
            .batch_write_item()
            .request_items(&w.env.table, writes)
            .send()
            .await
            .unwrap();
        assert!(
            out.unprocessed_items
                .unwrap_or_default()
                .values()
                .all(|v| v.is_empty())
        );
    }
    counter.reset();
    w.clock.set(t("2026-11-30T15:00:00Z"));
    let r = survey_sender::sweep(
        &w.app,
        &w.links,
        // At full scale the sweep gets a Lambda's longest timeout (15 minutes).
        aftercare::usecases::send::Deadline::after(std::time::Duration::from_secs(
            aftercare_tests::scaled(120, 900) as u64,
        )),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.due, r.skipped, r.sent, r.errors),
        (total_due, total_due, 0, 0),
        "{r:?}"
    );
    let ratio = r.items_read as f64 / r.due as f64;
    assert!(ratio <= 1.05, "items read ÷ items due = {ratio}");
    let calls = counter.calls();
    assert!(!calls.keys().any(|k| k.ends_with(".Scan")), "{calls:?}");
    // Per item: one BatchGetItem and one conditional update; plus the index queries and the
    // retention sweep's hourly mark (one update per sweep).
    assert_eq!(
        calls.get("DynamoDB.BatchGetItem"),
        Some(&(total_due as u32)),
        "{calls:?}"
    );
    assert_eq!(
        calls.get("DynamoDB.UpdateItem"),
        Some(&(total_due as u32 + 1)),
        "{calls:?}"
    );
    println!(
        "{total_due} due items: {} read, calls {calls:?}",
        r.items_read
    );
    let again = w.sweep_at("2026-11-30T15:00:00Z").await;
    assert_eq!(again.due, 0);
}

#[tokio::test]
async fn a_detractor_answer_alerts_the_merchant_once_and_cancels_the_review_request() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    w.place(&w.order("SO-1001", &ann, "Europe/London")).await;
    w.deliver("SO-1001", "2026-11-23T13:05:00Z").await;
    w.sweep_at("2026-11-26T14:00:00Z").await;
    w.sweep_at("2026-11-30T14:00:00Z").await;
    let survey = w.emails(&ann, "feedback_survey").await;
    let links = score_links(&survey[0]);
    let token = token_of(&links[3]);
    let path = format!("/v1/survey/{token}");

    // Opening the link (as a mail scanner would) records nothing.
    let (status, page) = w
        .http(
            survey_sender::ROUTE_SURVEY_PAGE,
            &path,
            Some(&token),
            None,
            false,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("value=\"3\" checked") || page.contains("value=\"3\"  checked"),
        "score 3 preselected"
    );
    assert!(
        w.env.items_with_sk("FEEDBACK").await.is_empty(),
        "GET must not vote"
    );

    let (status, page) = w
        .http(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &path,
            Some(&token),
            Some("score=3&comment=Arrived+damp+%3Cscript%3E"),
            false,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"thanks\""));
    let fb = w.env.items_in("O#SO-1001", "FEEDBACK").await.pop().unwrap();
    assert_eq!(
        (
            num(&fb, "score"),
            s(&fb, "band").as_str(),
            s(&fb, "comment").as_str()
        ),
        (3, "detractor", "Arrived damp <script>")
    );

    let ops = format!("ops@{}.shop.example", w.env.tag);
    let alerts = w.emails(&ops, "merchant_detractor_alert").await;
    assert_eq!(alerts.len(), 1);
    let alert = alerts[0].part("text/html").unwrap();
    assert!(
        alert.contains("Arrived damp &lt;script&gt;"),
        "the comment is shown, escaped"
    );
    for kind in [FollowUpKind::ReviewRequest, FollowUpKind::CrossSell] {
        let item = w.follow_up("SO-1001", kind).await;
        assert_eq!(s(&item, "status"), "cancelled", "{kind:?}");
        assert_eq!(
            decisions(&item),
            vec![("cancelled".into(), "cancelled_by_feedback".into())]
        );
    }

    // A later answer replaces the earlier one; the merchant is not alerted twice.
    let (status, _) = w
        .http(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &path,
            Some(&token),
            Some("score=2&comment=Still+damp"),
            false,
        )
        .await;
    assert_eq!(status, 200);
    let fb = w.env.items_in("O#SO-1001", "FEEDBACK").await.pop().unwrap();
    assert_eq!((num(&fb, "score"), num(&fb, "answers")), (2, 2));
    assert_eq!(w.emails(&ops, "merchant_detractor_alert").await.len(), 1);

    // Nothing more goes to Ann for this order.
    let r = w.sweep_at("2026-12-30T14:00:00Z").await;
    assert_eq!(r.due, 0, "{r:?}");
    assert!(w.emails(&ann, "review_request").await.is_empty());
    assert!(w.emails(&ann, "cross_sell").await.is_empty());

    // Tampered, expired and foreign tokens: 4xx, nothing recorded.
    let before = w.env.items_with_sk("FEEDBACK").await;
    let mut tampered = token.clone().into_bytes();
    tampered[5] ^= 1;
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = aftercare::token::sign(
        &key(),
        &aftercare::token::Claims {
            merchant: "m-someone-else".into(),
            purpose: "survey".into(),
            subject: format!("c-{ann}/SO-1001").replace('@', "-at-"),
            value: Some("0".into()),
            expires: t("2027-06-01T00:00:00Z").as_second(),
        },
    );
    let wrong_purpose = aftercare::token::sign(
        &key(),
        &aftercare::token::Claims {
            merchant: w.env.merchant.id.to_string(),
            purpose: "unsubscribe".into(),
            subject: format!("c-{ann}/SO-1001").replace('@', "-at-"),
            value: Some("0".into()),
            expires: t("2027-06-01T00:00:00Z").as_second(),
        },
    );
    for (bad, want) in [
        (tampered.as_str(), 400),
        (foreign.as_str(), 404),
        (wrong_purpose.as_str(), 400),
    ] {
        let (status, page) = w
            .http(
                survey_sender::ROUTE_SURVEY_ANSWER,
                &format!("/v1/survey/{bad}"),
                Some(bad),
                Some("score=0"),
                false,
            )
            .await;
        assert_eq!(status, want, "{page}");
        assert!(page.contains("id=\"error\""));
    }
    w.clock.set(t("2027-03-01T00:00:00Z")); // more than 90 days after the survey went out
    let (status, _) = w
        .http(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &path,
            Some(&token),
            Some("score=0"),
            false,
        )
        .await;
    assert_eq!(status, 410);
    let (status, _) = w
        .http(
            survey_sender::ROUTE_SURVEY_ANSWER,
            &path,
            Some(&token),
            Some("score=11"),
            false,
        )
        .await;
    assert_eq!(status, 410, "expiry is checked before anything else");
    assert_eq!(w.env.items_with_sk("FEEDBACK").await, before);
}

#[tokio::test]
async fn a_promoter_answer_brings_the_review_request_forward_and_the_api_reports_scores() {
    let w = World::new().await;
    let ann = w.env.customer_email();
    let bob = format!("bob.{}@example.com", w.env.tag);
    for (o, c) in [("SO-A", &ann), ("SO-B", &bob)] {
        w.place(&w.order(o, c, "Europe/London")).await;
        w.deliver(o, "2026-11-23T13:05:00Z").await;
    }
    w.sweep_at("2026-11-26T14:00:00Z").await;
    w.sweep_at("2026-11-30T14:00:00Z").await;
    let answer = |who: &str, score: usize, comment: &'static str| {
        let who = who.to_owned();
        let w = &w;
        async move {
            let email = w.emails(&who, "feedback_survey").await.pop().unwrap();
            let token = token_of(&score_links(&email)[score]);
            let (status, _) = w
                .http(
                    survey_sender::ROUTE_SURVEY_ANSWER,
                    &format!("/v1/survey/{token}"),
                    Some(&token),
                    Some(&format!("score={score}&comment={comment}")),
                    false,
                )
                .await;
            assert_eq!(status, 200);
        }
    };
    w.clock.set(t("2026-12-01T09:00:00Z"));
    answer(&ann, 10, "Lovely").await;
    w.clock.set(t("2026-12-01T09:05:00Z"));
    answer(&bob, 6, "Meh").await;
    let review = w.follow_up("SO-A", FollowUpKind::ReviewRequest).await;
    assert_eq!(
        t(&s(&review, "due_at")),
        t("2026-12-01T11:00:00Z"),
        "promoter: two hours after the answer"
    );
    let not_promoted = w.follow_up("SO-B", FollowUpKind::ReviewRequest).await;
    assert_eq!(
        s(&not_promoted, "status"),
        "cancelled",
        "the detractor's review request is cancelled"
    );
    assert_eq!(
        decisions(&review),
        vec![("rescheduled".into(), "promoter".into())]
    );
    let r = w.sweep_at("2026-12-01T11:00:00Z").await;
    assert_eq!(r.sent, 1);
    assert_eq!(w.emails(&ann, "review_request").await.len(), 1);

    let (status, body) = w
        .http(
            survey_sender::ROUTE_FEEDBACK,
            "/v1/feedback?from=2026-11-01&to=2026-12-31",
            None,
            None,
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let summary = &body["summary"];
    assert_eq!(
        (
            summary["responses"].as_u64(),
            summary["surveys_sent"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(
        summary["score"].as_f64(),
        Some(0.0),
        "one promoter, one detractor"
    );
    assert_eq!(summary["response_rate"].as_f64(), Some(1.0));
    assert_eq!(body["responses"][0]["comment"], "Meh", "newest first");
    let (status, body) = w
        .http(
            survey_sender::ROUTE_FEEDBACK,
            "/v1/feedback?from=2026-11-01&to=2026-12-31&limit=1",
            None,
            None,
            true,
        )
        .await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["responses"].as_array().unwrap().len(), 1);
    assert_eq!(body["next_cursor"], "1");

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-12-31&to=2026-11-01", "from"),
        ("limit=abc", "limit"),
        ("from=2020-01-01&to=2026-01-01", "from"),
    ] {
        let (status, body) = w
            .http(
                survey_sender::ROUTE_FEEDBACK,
                &format!("/v1/feedback?{query}"),
                None,
                None,
                true,
            )
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let (status, _) = w
        .http(
            survey_sender::ROUTE_FEEDBACK,
            "/v1/feedback",
            None,
            None,
            false,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_refunded_line_is_neither_reviewed_nor_recommended_nor_named() {
    use aftercare::usecases::followups::drop_returned_lines;
    let w = World::new().await;
    let ann = format!("ann.refund.{}@example.com", w.env.tag);
    w.place(&w.order("SO-2001", &ann, "Europe/Berlin")).await;
    w.deliver("SO-2001", "2026-11-23T12:00:00Z").await;
    // The tent goes back (a refund naming its line, or a return).
    let order = OrderId::parse("o", "SO-2001").unwrap();
    let tent = [Sku::parse("sku", "TENT-2P").unwrap()];
    let now = t("2026-11-25T10:00:00Z");
    let changed = drop_returned_lines(
        &w.env.store,
        &w.env.merchant.id,
        &order,
        &tent,
        "refunded",
        now,
    )
    .await
    .unwrap();
    assert_eq!(changed.len(), 2, "{changed:?}");
    for at in [
        "2026-11-27T14:00:00Z",
        "2026-11-30T14:00:00Z",
        "2026-12-03T14:00:00Z",
        "2026-12-07T14:00:00Z",
    ] {
        w.sweep_at(at).await;
    }
    let review = w.emails(&ann, "review_request").await;
    assert_eq!(review.len(), 1);
    let text = review[0].part("text/plain").unwrap();
    assert!(
        text.contains("https://shop.test/p/PEG-AL-10/review"),
        "{text}"
    );
    assert!(
        !text.contains("TENT-2P"),
        "no review asked for what came back: {text}"
    );
    // The cross-sell built on the pegs alone (they relate to nothing): nothing worth sending, and
    // the tent's related products are not offered on the strength of a tent sent back.
    for email in w.emails(&ann, "cross_sell").await {
        let html = email.part("text/html").unwrap();
        assert!(
            !html.contains("Ridge tent") && !html.contains("TENT-2P"),
            "{html}"
        );
    }
}
