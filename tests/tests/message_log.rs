//! The message log and explain API over the real SDK against moto: what the send path keeps
//! answers "why did (or didn't) this email go" for a sent email and the SES events after it, a
//! deferral by quiet hours, a skip for an unsubscribed and for a suppressed customer, and a
//! follow-up cancelled by a detractor's answer; the log pages newest first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::ManualClock;
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::{CustomerId, EmailAddress, OrderId};
use aftercare::ports::feedback::{ContactBook as _, FeedbackBook as _};
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare_tests::{BASE, Env, fixture, s};
use jiff::Timestamp;
use serde_json::Value;
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
        env.merchant.settings.reviews.url_template = Some("https://shop.test/r/{sku}".into());
        env.save_merchant().await;
        let key = SigningKey::new(&[3u8; 32]).unwrap();
        let (clock, app) = env.app_at("2026-11-12T10:00:00Z", &key);
        Self {
            links: survey_sender::Links::new(BASE, key),
            env,
            clock,
            app,
        }
    }

    fn email(&self, who: &str) -> String {
        format!("{who}.{}@example.com", self.env.tag)
    }

    /// Places order `id` for customer `who` (in London); answers the thank-you's status.
    async fn place(&self, who: &str, id: &str) -> String {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["email"] = self.email(who).into();
        o["customer"]["id"] = who.into();
        o["customer"]["time_zone"] = "Europe/London".into();
        let resp = order_placed::handle(
            &self.app,
            self.env.http_event(&o, Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(resp["statusCode"], 201, "{resp}");
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        body["email"]["status"].as_str().unwrap().to_owned()
    }

    /// Anchors the order's journey on delivery at `at` (what shipment-update does).
    async fn deliver(&self, id: &str, at: &str) {
        let o = OrderId::parse("o", id).unwrap();
        let order = self
            .env
            .store
            .get_order(&self.env.merchant.id, &o)
            .await
            .unwrap()
            .unwrap();
        let at = t(at);
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

    async fn sweep_at(&self, at: &str) -> survey_sender::SweepReport {
        self.clock.set(t(at));
        survey_sender::sweep(&self.app, &self.links, deadline())
            .await
            .unwrap()
    }

    /// `GET path?query` on email-events with the merchant's key: (status, body).
    async fn get(&self, route: &str, who: &str, path: &str, query: &str) -> (i64, Value) {
        let mut event = self.env.api_event(
            route,
            &format!("/v1/customers/{who}/{path}"),
            &[("customerId", who)],
            None,
            Some(&self.env.api_key),
        );
        aftercare_tests::with_query(&mut event, query);
        let resp = email_events::handle(&self.app, event, "t", deadline())
            .await
            .unwrap();
        let body = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        (resp["statusCode"].as_i64().unwrap(), body)
    }

    async fn explain(&self, who: &str, kind: &str, order: &str) -> Value {
        let (status, body) = self
            .get(
                email_events::ROUTE_EXPLAIN,
                who,
                "explain",
                &format!("kind={kind}&order={order}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Feeds SES's `fixture_name` event for the send record `send_ref` to email-events; answers
    /// what the function made of it.
    async fn ses_event(&self, fixture_name: &str, who: &str, send_ref: &str, id: &str) -> String {
        let record = self.env.items_with_sk(send_ref).await.pop().unwrap();
        let text = serde_json::to_string(&fixture(fixture_name))
            .unwrap()
            .replace("MESSAGE_ID", &s(&record, "message_id"))
            .replace("RECIPIENT", &self.email(who))
            .replace("MERCHANT", self.env.merchant.id.as_str())
            .replace("SEND_REF", send_ref)
            .replace("EVENT_ID", id)
            .replace("\"AT\"", "\"2026-11-20T08:00:05.000Z\"");
        let out = email_events::handle(
            &self.app,
            serde_json::from_str(&text).unwrap(),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        out["result"].as_str().unwrap().to_owned()
    }
}

/// The trace's steps as (step, reason).
fn steps(trace: &Value) -> Vec<(String, String)> {
    trace["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["reason"]
                    .as_str()
                    .or(s["event"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test]
async fn explain_traces_sent_deferred_unsubscribed_suppressed_and_cancelled() {
    let w = World::new().await;
    for (who, order) in [
        ("ann", "SO-A"),
        ("bob", "SO-B"),
        ("cara", "SO-C"),
        ("dan", "SO-D"),
    ] {
        assert_eq!(w.place(who, order).await, "sent");
        // Surveys due 2026-11-20T02:00Z: 02:00 in London, inside quiet hours.
        w.deliver(order, "2026-11-13T02:00:00Z").await;
    }
    let m = &w.env.merchant.id;
    let now = t("2026-11-19T12:00:00Z");
    w.env
        .store
        .set_unsubscribed(m, &CustomerId::parse("c", "bob").unwrap(), true, now)
        .await
        .unwrap();
    let cara = EmailAddress::parse("e", &w.email("cara")).unwrap();
    w.env
        .store
        .put_suppression(m, &cara, "complaint", now)
        .await
        .unwrap();
    // Dan answered a survey badly elsewhere: his review request is cancelled (what the answer does).
    w.env
        .store
        .cancel_follow_ups(
            m,
            &OrderId::parse("o", "SO-D").unwrap(),
            &[FollowUpKind::ReviewRequest],
            "cancelled_by_feedback",
            now,
        )
        .await
        .unwrap();

    let r = w.sweep_at("2026-11-20T02:05:00Z").await;
    assert_eq!((r.deferred, r.skipped, r.sent), (2, 2, 0), "{r:?}");

    // Deferred by quiet hours, until 08:00 London.
    let ann = w.explain("ann", "feedback_survey", "SO-A").await;
    assert_eq!(ann["result"], "deferred", "{ann}");
    assert_eq!(ann["reason"], "quiet_hours", "{ann}");
    assert_eq!(
        t(ann["due_at"].as_str().unwrap()),
        t("2026-11-20T08:00:00Z")
    );
    assert_eq!(
        steps(&ann),
        [
            pair("scheduled", "delivered"),
            pair("deferred", "quiet_hours")
        ]
    );

    // Skipped: unsubscribed; suppressed.
    let bob = w.explain("bob", "feedback_survey", "SO-B").await;
    assert_eq!(
        (&bob["result"], &bob["reason"]),
        (&"skipped".into(), &"unsubscribed".into()),
        "{bob}"
    );
    let cara_survey = w.explain("cara", "feedback_survey", "SO-C").await;
    assert_eq!(
        (&cara_survey["result"], &cara_survey["reason"]),
        (&"skipped".into(), &"suppressed".into()),
        "{cara_survey}"
    );
    // Cara's next thank-you: the claim itself was refused as suppressed.
    assert_eq!(w.place("cara", "SO-C2").await, "suppressed");
    let thanks = w.explain("cara", "order_thanks", "SO-C2").await;
    assert_eq!(
        (&thanks["result"], &thanks["reason"]),
        (&"skipped".into(), &"suppressed".into()),
        "{thanks}"
    );
    assert_eq!(steps(&thanks), [pair("skipped", "suppressed")]);

    // Cancelled by the detractor's answer.
    let dan = w.explain("dan", "review_request", "SO-D").await;
    assert_eq!(
        (&dan["result"], &dan["reason"]),
        (&"cancelled".into(), &"cancelled_by_feedback".into()),
        "{dan}"
    );

    // Sent at 08:00, then delivered and opened as SES reports.
    let r = w.sweep_at("2026-11-20T08:00:00Z").await;
    assert_eq!(r.sent, 2, "{r:?}");
    let send_ref = "SEND#ann#feedback_survey#SO-A#0";
    for (fixture, id, result) in [
        ("ses-delivery.json", "ev-1", "recorded"),
        ("ses-open.json", "ev-2", "recorded"),
        ("ses-open.json", "ev-2", "duplicate"),
    ] {
        assert_eq!(w.ses_event(fixture, "ann", send_ref, id).await, result);
    }
    let ann = w.explain("ann", "feedback_survey", "SO-A").await;
    assert_eq!(ann["result"], "opened", "{ann}");
    assert_eq!(
        t(ann["sent_at"].as_str().unwrap()),
        t("2026-11-20T08:00:00Z")
    );
    assert!(ann["message_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        steps(&ann),
        [
            pair("scheduled", "delivered"),
            pair("deferred", "quiet_hours"),
            pair("claimed", ""),
            pair("sent", ""),
            pair("event", "delivery"),
            pair("event", "open"),
        ]
    );
    let thanks = w.explain("ann", "order_thanks", "SO-A").await;
    assert_eq!(thanks["result"], "sent", "{thanks}");
}

#[tokio::test]
async fn the_message_log_lists_every_email_newest_first_in_pages() {
    let w = World::new().await;
    assert_eq!(w.place("ann", "SO-A").await, "sent");
    w.deliver("SO-A", "2026-11-13T10:00:00Z").await;
    w.sweep_at("2026-11-20T10:00:00Z").await;
    let send_ref = "SEND#ann#feedback_survey#SO-A#0";
    assert_eq!(
        w.ses_event("ses-delivery.json", "ann", send_ref, "ev-1")
            .await,
        "recorded"
    );

    let (status, body) = w
        .get(email_events::ROUTE_MESSAGES, "ann", "messages", "")
        .await;
    assert_eq!(status, 200, "{body}");
    let log: Vec<(String, String)> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            pair("review_request", "scheduled"),
            pair("feedback_survey", "delivered"),
            pair("order_thanks", "sent"),
        ]
    );
    assert!(body["next_cursor"].is_null());

    // Pages of one, following the cursor, give the same lines.
    let mut paged = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let (status, body) = w
            .get(email_events::ROUTE_MESSAGES, "ann", "messages", &query)
            .await;
        assert_eq!(status, 200, "{body}");
        paged.push(body["messages"][0]["kind"].as_str().unwrap().to_owned());
        match body["next_cursor"].as_str() {
            Some(c) => query = format!("limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, ["review_request", "feedback_survey", "order_thanks"]);

    // Filtered by kind; refusals name the field; an unknown customer is absent.
    let (_, body) = w
        .get(
            email_events::ROUTE_MESSAGES,
            "ann",
            "messages",
            "kind=order_thanks",
        )
        .await;
    assert_eq!(body["messages"].as_array().unwrap().len(), 1, "{body}");
    for (path, query, field) in [
        ("messages", "kind=newsletter", "kind"),
        ("messages", "limit=0", "limit"),
        ("messages", "cursor=nonsense", "cursor"),
        ("explain", "order=SO-A", "kind"),
        ("explain", "kind=order_thanks", "order"),
    ] {
        let route = if path == "messages" {
            email_events::ROUTE_MESSAGES
        } else {
            email_events::ROUTE_EXPLAIN
        };
        let (status, body) = w.get(route, "ann", path, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, _) = w
        .get(email_events::ROUTE_MESSAGES, "nobody", "messages", "")
        .await;
    assert_eq!(status, 404);
    let (status, _) = w
        .get(
            email_events::ROUTE_EXPLAIN,
            "ann",
            "explain",
            "kind=order_thanks&order=SO-ZZZ",
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn analytics_count_each_email_once_per_metric_by_kind_and_day() {
    let w = World::new().await;
    assert_eq!(w.place("ann", "SO-A").await, "sent");
    assert_eq!(w.place("bob", "SO-B").await, "sent");
    let ann = "SEND#ann#order_thanks#SO-A#0";
    let bob = "SEND#bob#order_thanks#SO-B#0";
    w.clock.set(t("2026-11-20T09:00:00Z"));
    for (who, send_ref, fixture, id) in [
        ("ann", ann, "ses-send.json", "a-1"),
        ("ann", ann, "ses-delivery.json", "a-2"),
        ("ann", ann, "ses-open.json", "a-3"),
        ("ann", ann, "ses-open.json", "a-4"), // a second open of the same email
        ("ann", ann, "ses-open.json", "a-4"), // redelivered
        ("ann", ann, "ses-complaint.json", "a-5"),
        ("bob", bob, "ses-send.json", "b-1"),
        ("bob", bob, "ses-bounce-permanent.json", "b-2"),
    ] {
        w.ses_event(fixture, who, send_ref, id).await;
    }
    let (status, body) = w
        .get(
            email_events::ROUTE_ANALYTICS,
            "",
            "",
            "from=2026-11-14&to=2026-11-20",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let totals = &body["totals"];
    for (metric, n) in [
        ("sent", 2),
        ("delivered", 1),
        ("opened", 1),
        ("complained", 1),
        ("bounced", 1),
    ] {
        assert_eq!(totals[metric], n, "{metric}: {body}");
    }
    assert_eq!(totals["complaint_rate"], 0.5, "{body}");
    assert_eq!(totals["bounce_rate"], 0.5, "{body}");
    assert_eq!(totals["open_rate"], 1.0, "{body}");
    assert_eq!(body["by_kind"][0]["kind"], "order_thanks", "{body}");

    // 1 complaint in 2 emails is above 0.1%: the merchant's operations address hears it, once a
    // day however many complaints follow.
    assert_eq!(
        w.ses_event("ses-complaint.json", "bob", bob, "b-3").await,
        "recorded"
    );
    let ops = w.env.merchant.ops_email.as_ref().unwrap().to_string();
    let alerts: Vec<_> = w
        .env
        .emails_to(&ops)
        .await
        .into_iter()
        .filter(|e| e.header("X-Aftercare-Kind").as_deref() == Some("merchant_complaint_alert"))
        .collect();
    assert_eq!(alerts.len(), 1);
    let text = alerts[0].part("text/plain").unwrap();
    // Sent at Ann's complaint, when it was 1 in 1.
    assert!(text.contains("Complaint rate: 100%"), "{text}");
    assert!(text.contains("order_thanks: 1 / 1 (100%)"), "{text}");
    assert_eq!(body["by_day"][0]["day"], "2026-11-20", "{body}");
    // Another kind, another range: nothing.
    let (_, body) = w
        .get(
            email_events::ROUTE_ANALYTICS,
            "",
            "",
            "from=2026-11-21&to=2026-11-22",
        )
        .await;
    assert_eq!(body["totals"]["sent"], 0, "{body}");
    for (query, field) in [
        ("from=20-11-2026", "from"),
        ("from=2026-11-20&to=2026-11-19", "to"),
        ("from=2025-01-01&to=2026-11-20", "to"),
        ("kind=newsletter", "kind"),
    ] {
        let (status, body) = w.get(email_events::ROUTE_ANALYTICS, "", "", query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

impl World {
    /// This world's functions with an SES no answer ever comes back from (the connection fails
    /// after the request may have left): every send's outcome is unknown.
    fn lost_ses(&self) -> aftercare::app::App {
        let key = SigningKey::new(&[3u8; 32]).unwrap();
        let mut config = self.env.config().with_signing_key(key);
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        let ses = aws_sdk_sesv2::config::Builder::from(&self.env.sdk)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        aftercare::app::App::with_parts(
            config,
            self.env.dynamodb(),
            aws_sdk_sesv2::Client::from_conf(ses),
            self.clock.clone(),
        )
        .unwrap()
    }

    /// The send record's status and resolution for `kind` about `order`.
    async fn record(&self, who: &str, kind: &str, order: &str) -> (String, Option<String>) {
        let record = self
            .env
            .items_with_sk(&format!("SEND#{who}#{kind}#{order}#0"))
            .await
            .pop()
            .unwrap();
        let resolution = record.get("resolution").map(|_| s(&record, "resolution"));
        (s(&record, "status"), resolution)
    }
}

#[tokio::test]
async fn sends_ses_never_spoke_about_are_resent_or_closed_after_the_window_and_the_log_says_which()
{
    let w = World::new().await;
    let lost = w.lost_ses();
    let mut o = w.env.order();
    o["id"] = "SO-L".into();
    o["customer"]["email"] = w.email("lia").into();
    o["customer"]["id"] = "lia".into();
    o["customer"]["time_zone"] = "Europe/London".into();
    let resp = order_placed::handle(
        &lost,
        w.env.http_event(&o, Some(&w.env.api_key)),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["email"]["status"], "ambiguous", "{body}");
    assert_eq!(
        w.record("lia", "order_thanks", "SO-L").await,
        ("ambiguous".into(), None)
    );

    // Inside the window nothing is decided: SES's event may still come.
    let early = w.sweep_at("2026-11-12T10:59:00Z").await;
    assert_eq!(early.parked.due, 0, "{early:?}");
    // Past it, the thank-you (transactional) is sent once more.
    let swept = w.sweep_at("2026-11-12T11:00:01Z").await;
    assert_eq!((swept.parked.due, swept.parked.resent), (1, 1), "{swept:?}");
    assert_eq!(w.env.emails_to(&w.email("lia")).await.len(), 1);
    assert_eq!(
        w.record("lia", "order_thanks", "SO-L").await,
        ("sent".into(), Some("resent_after_silence".into()))
    );

    // The survey (marketing) goes out into the same silence a week after delivery …
    w.deliver("SO-L", "2026-11-13T10:00:00Z").await;
    w.clock.set(t("2026-11-20T10:30:00Z"));
    let report = survey_sender::sweep(&lost, &w.links, deadline())
        .await
        .unwrap();
    assert_eq!(report.ambiguous, 1, "{report:?}");
    // … and after the window it is closed, never sent.
    let swept = w.sweep_at("2026-11-20T11:30:01Z").await;
    assert_eq!(
        (swept.parked.closed, swept.parked.resent),
        (1, 0),
        "{swept:?}"
    );
    assert_eq!(
        w.record("lia", "feedback_survey", "SO-L").await,
        ("unsent".into(), Some("closed_after_silence".into()))
    );
    let later = w.sweep_at("2026-11-23T11:30:00Z").await;
    assert_eq!(later.parked.due, 0, "decided for good: {later:?}");
    let emails = w.env.emails_to(&w.email("lia")).await;
    assert_eq!(emails.len(), 1, "the thank-you once, the survey never");

    let (status, log) = w
        .get(email_events::ROUTE_MESSAGES, "lia", "messages", "")
        .await;
    assert_eq!(status, 200, "{log}");
    let line = |kind: &str| {
        log["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {log}"))
    };
    let thanks = line("order_thanks");
    assert_eq!(
        (&thanks["state"], &thanks["resolution"]),
        (&Value::from("sent"), &Value::from("resent_after_silence"))
    );
    let survey = line("feedback_survey");
    assert_eq!(
        (&survey["state"], &survey["resolution"]),
        (&Value::from("unsent"), &Value::from("closed_after_silence"))
    );

    let trace = steps(&w.explain("lia", "order_thanks", "SO-L").await);
    let names: Vec<&str> = trace.iter().map(|(step, _)| step.as_str()).collect();
    assert_eq!(
        names,
        ["claimed", "ambiguous", "resent_after_silence", "sent"],
        "{trace:?}"
    );
    let trace = steps(&w.explain("lia", "feedback_survey", "SO-L").await);
    let last: Vec<&str> = trace
        .iter()
        .rev()
        .take(2)
        .map(|(step, _)| step.as_str())
        .collect();
    assert_eq!(last, ["closed_after_silence", "ambiguous"], "{trace:?}");
}

impl World {
    /// Places order `id` for `who` through `app`; answers the thank-you's status.
    async fn place_with(&self, app: &aftercare::app::App, who: &str, id: &str) -> String {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["email"] = self.email(who).into();
        o["customer"]["id"] = who.into();
        o["customer"]["time_zone"] = "Europe/London".into();
        let resp = order_placed::handle(
            app,
            self.env.http_event(&o, Some(&self.env.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        let body: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
        body["email"]["status"].as_str().unwrap().to_owned()
    }

    /// SES's Send event, message `message_id`, for the parked send `send_ref` to `who`.
    async fn ses_sent(&self, who: &str, send_ref: &str, message_id: &str) -> String {
        let text = serde_json::to_string(&fixture("ses-send.json"))
            .unwrap()
            .replace("MESSAGE_ID", message_id)
            .replace("RECIPIENT", &self.email(who))
            .replace("MERCHANT", self.env.merchant.id.as_str())
            .replace("SEND_REF", send_ref)
            .replace("EVENT_ID", &format!("ev-{message_id}"));
        let out = email_events::handle(
            &self.app,
            serde_json::from_str(&text).unwrap(),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        out["result"].as_str().unwrap().to_owned()
    }

    /// The parked sends due now, as the silence sweep reads them.
    async fn parked_due(&self) -> Vec<aftercare::ports::Due<aftercare::domain::send::SendRecord>> {
        use aftercare::clock::Clock as _;
        use aftercare::ports::DueWork as _;
        let (due, _) = self
            .env
            .store
            .due(
                aftercare::ports::DueGroup::ParkedSends,
                self.clock.now(),
                14,
            )
            .await
            .unwrap();
        due
    }
}

#[tokio::test]
async fn concurrent_sweeps_resend_a_parked_thank_you_once() {
    let w = World::new().await;
    let lost = w.lost_ses();
    assert_eq!(w.place_with(&lost, "kai", "SO-K").await, "ambiguous");
    w.clock.set(t("2026-11-12T11:00:01Z"));
    let sweeps = (0..4).map(|_| survey_sender::silence::sweep(&w.app, deadline()));
    let reports = futures_util::future::join_all(sweeps).await;
    let resent: usize = reports.iter().map(|r| r.as_ref().unwrap().0.resent).sum();
    assert_eq!(resent, 1, "{reports:?}");
    assert_eq!(w.env.emails_to(&w.email("kai")).await.len(), 1);
    assert_eq!(
        w.record("kai", "order_thanks", "SO-K").await,
        ("sent".into(), Some("resent_after_silence".into()))
    );
}

#[tokio::test]
async fn a_parked_send_ses_spoke_about_after_the_sweep_read_it_is_left_as_ses_said() {
    let w = World::new().await;
    let lost = w.lost_ses();
    // A thank-you (would be resent) and a survey (would be closed), both parked.
    assert_eq!(w.place_with(&lost, "noa", "SO-N").await, "ambiguous");
    w.clock.set(t("2026-11-12T11:00:01Z"));
    let thanks = w.parked_due().await;
    assert_eq!(thanks.len(), 1);
    // SES's event arrives between the sweep's read and its decision.
    assert_eq!(
        w.ses_sent("noa", "SEND#noa#order_thanks#SO-N#0", "ses-noa-1")
            .await,
        "recorded"
    );
    let silence = aftercare::usecases::silence::Silence {
        courier: w.app.courier(),
    };
    let outcome = silence.decide(&thanks[0], deadline()).await.unwrap();
    assert_eq!(outcome, aftercare::usecases::silence::SilenceOutcome::Taken);
    assert!(
        w.env.emails_to(&w.email("noa")).await.is_empty(),
        "not resent"
    );
    assert_eq!(
        w.record("noa", "order_thanks", "SO-N").await,
        ("sent".into(), None)
    );

    w.deliver("SO-N", "2026-11-13T10:00:00Z").await;
    w.clock.set(t("2026-11-20T10:30:00Z"));
    let report = survey_sender::sweep_follow_ups(&lost, &w.links, deadline())
        .await
        .unwrap();
    assert_eq!(report.ambiguous, 1, "{report:?}");
    w.clock.set(t("2026-11-20T11:30:01Z"));
    let survey = w.parked_due().await;
    let survey: Vec<_> = survey
        .iter()
        .filter(|d| d.entry.as_ref().is_ok_and(|r| r.kind == "feedback_survey"))
        .collect();
    assert_eq!(survey.len(), 1);
    assert_eq!(
        w.ses_sent("noa", "SEND#noa#feedback_survey#SO-N#0", "ses-noa-2")
            .await,
        "recorded"
    );
    let outcome = silence.decide(survey[0], deadline()).await.unwrap();
    assert_eq!(outcome, aftercare::usecases::silence::SilenceOutcome::Taken);
    assert_eq!(
        w.record("noa", "feedback_survey", "SO-N").await,
        ("sent".into(), None),
        "SES's word stands: not closed as unsent"
    );
}
