//! SES email events (fixtures in the shape SES publishes to EventBridge) against the send records
//! a real handler wrote in moto: each event recorded once on its own email's record, a state that
//! never moves backwards, and the suppressions: hard bounce and complaint at once, the eighth soft
//! bounce in a row, a delivery in between ending the streak (one reported late does not).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::adapters::store::keys;
use aftercare::domain::EmailAddress;
use aftercare::domain::email_event::Applied;
use aftercare::domain::email_event::{SuppressionReason, parse};
use aftercare::ports::email_events::EmailEventLog;
use aftercare_tests::{Env, deadline, fixture, s};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde_json::Value;

struct Sent {
    env: Env,
    message_id: String,
    send_ref: String,
}

/// Places the example order; its thank-you email's send record holds the SES message id.
async fn sent() -> Sent {
    let env = Env::new().await;
    let app = order_placed::App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        std::sync::Arc::new(aftercare::clock::SystemClock),
    )
    .unwrap();
    let resp = order_placed::handle(
        &app,
        env.http_event(&env.order(), Some(&env.api_key)),
        "t",
        deadline(),
    )
    .await
    .unwrap();
    assert_eq!(resp["statusCode"], 201);
    let record = env.items_with_sk("SEND#").await.pop().unwrap();
    let message_id = s(&record, "message_id");
    assert!(!message_id.is_empty());
    let send_ref = s(&record, "SK");
    Sent {
        env,
        message_id,
        send_ref,
    }
}

impl Sent {
    /// The fixture `name` as SES would publish it for this email, with event id `id` at `at`.
    fn event(&self, name: &str, id: &str, at: &str) -> Value {
        let text = serde_json::to_string(&fixture(name))
            .unwrap()
            .replace("MESSAGE_ID", &self.message_id)
            .replace("RECIPIENT", &self.env.customer_email())
            .replace("MERCHANT", self.env.merchant.id.as_str())
            .replace("SEND_REF", &self.send_ref)
            .replace("EVENT_ID", id)
            .replace("\"AT\"", &format!("\"{at}\""));
        serde_json::from_str(&text).unwrap()
    }

    async fn apply(&self, envelope: &Value) -> Applied {
        let event = parse(&envelope["detail"]).unwrap();
        assert_eq!(
            event.merchant.as_deref(),
            Some(self.env.merchant.id.as_str())
        );
        self.env
            .store
            .apply_email_event(
                &self.env.merchant.id,
                event.send_ref.as_deref().unwrap(),
                envelope["id"].as_str().unwrap(),
                &event,
                Timestamp::now(),
            )
            .await
            .unwrap()
    }

    /// As if SES's answer had been lost: the claim holds no message id and was parked.
    async fn lose_the_answer(&self) {
        self.env
            .dynamodb()
            .update_item()
            .table_name(&self.env.table)
            .key(
                "PK",
                AttributeValue::S(
                    keys::send_ref(&self.env.merchant.id, &self.send_ref)
                        .unwrap()
                        .pk,
                ),
            )
            .key("SK", AttributeValue::S(self.send_ref.clone()))
            .update_expression("SET #s = :amb, message_id = :null")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":amb", AttributeValue::S("ambiguous".into()))
            .expression_attribute_values(":null", AttributeValue::Null(true))
            .send()
            .await
            .unwrap();
    }

    async fn record(&self) -> aftercare_tests::Item {
        self.env.items_with_sk(&self.send_ref).await.pop().unwrap()
    }

    async fn suppressed(&self) -> bool {
        let email = EmailAddress::parse("e", &self.env.customer_email()).unwrap();
        self.env
            .store
            .is_suppressed(&self.env.merchant.id, &email)
            .await
            .unwrap()
    }
}

fn recorded(suppressed: &[SuppressionReason]) -> Applied {
    Applied::Recorded {
        suppressed: suppressed.iter().map(|r| (String::new(), *r)).collect(),
    }
}

/// `Applied` with the addresses blanked (the reason is what the tests compare).
fn reasons(a: Applied) -> Applied {
    match a {
        Applied::Recorded { suppressed } => Applied::Recorded {
            suppressed: suppressed
                .into_iter()
                .map(|(_, r)| (String::new(), r))
                .collect(),
        },
        other => other,
    }
}

#[tokio::test]
async fn events_are_recorded_once_on_their_own_email_and_the_state_never_moves_back() {
    let w = sent().await;
    let delivered = w.event("ses-delivery.json", "ev-1", "2026-11-20T10:00:02.000Z");
    assert_eq!(w.apply(&delivered).await, recorded(&[]));
    for _ in 0..3 {
        assert_eq!(w.apply(&delivered).await, Applied::Duplicate);
    }
    let opened = w.event("ses-open.json", "ev-2", "2026-11-20T18:00:00.000Z");
    assert_eq!(w.apply(&opened).await, recorded(&[]));
    // The Send event arrives last: recorded, but the state stays "open".
    let send = w.event("ses-send.json", "ev-3", "2026-11-20T10:00:00.123Z");
    assert_eq!(w.apply(&send).await, recorded(&[]));
    let record = w.record().await;
    assert_eq!(s(&record, "delivery_state"), "open");
    let events = record["events"].as_l().unwrap();
    let types: Vec<_> = events
        .iter()
        .map(|e| e.as_m().unwrap()["type"].as_s().unwrap().clone())
        .collect();
    assert_eq!(types, ["delivery", "open", "send"]);

    // An event naming this record but another message id is never recorded on it.
    let mut forged = w.event("ses-complaint.json", "ev-4", "2026-11-21T08:00:00.000Z");
    forged["detail"]["mail"]["messageId"] = "someone-elses-message".into();
    assert_eq!(w.apply(&forged).await, Applied::Unmatched);
    assert!(!w.suppressed().await);
    assert_eq!(w.record().await["events"].as_l().unwrap().len(), 3);
}

#[tokio::test]
async fn an_email_whose_send_was_never_recorded_is_reconciled_by_its_ses_event() {
    let w = sent().await;
    w.lose_the_answer().await;
    // An event about someone else's email naming this record adopts nothing.
    let mut stranger = w.event("ses-send.json", "ev-x", "2026-11-20T10:00:00.123Z");
    stranger["detail"]["mail"]["destination"] = serde_json::json!(["mallory@example.com"]);
    assert_eq!(w.apply(&stranger).await, Applied::Unmatched);
    assert_eq!(s(&w.record().await, "status"), "ambiguous");

    let send = w.event("ses-send.json", "ev-1", "2026-11-20T10:00:00.123Z");
    assert_eq!(w.apply(&send).await, recorded(&[]));
    let record = w.record().await;
    assert_eq!(s(&record, "status"), "sent");
    assert_eq!(s(&record, "message_id"), w.message_id);
    assert!(record.contains_key("reconciled_at"));
    assert_eq!(w.apply(&send).await, Applied::Duplicate);
    // Later events land as on any sent email.
    let delivered = w.event("ses-delivery.json", "ev-2", "2026-11-20T10:00:02.000Z");
    assert_eq!(w.apply(&delivered).await, recorded(&[]));
    assert_eq!(s(&w.record().await, "delivery_state"), "delivery");
}

#[tokio::test]
async fn a_hard_bounce_or_a_complaint_suppresses_at_once_and_once() {
    for (fixture, reason) in [
        ("ses-bounce-permanent.json", SuppressionReason::HardBounce),
        ("ses-complaint.json", SuppressionReason::Complaint),
    ] {
        let w = sent().await;
        let event = w.event(fixture, "ev-1", "2026-11-20T10:00:03.000Z");
        assert_eq!(
            reasons(w.apply(&event).await),
            recorded(&[reason]),
            "{fixture}"
        );
        assert!(w.suppressed().await);
        let item = w.env.items_with_sk("SUPPRESS").await.pop().unwrap();
        assert_eq!(s(&item, "reason"), reason.as_str());
        // Found by the address, yet holding it nowhere (its key is the address's digest), so
        // it can outlive the erasure of the person it protects.
        assert!(
            !format!("{item:?}")
                .to_lowercase()
                .contains(&w.env.customer_email().to_lowercase()),
            "{item:?}"
        );
        assert_eq!(w.apply(&event).await, Applied::Duplicate);
        assert_eq!(s(&w.record().await, "delivery_state"), event_state(fixture));
    }
}

fn event_state(fixture: &str) -> &'static str {
    if fixture.contains("complaint") {
        "complaint"
    } else {
        "hard_bounce"
    }
}

/// A delivery reported late (it happened before the last soft bounce) does not end the streak:
/// the eighth soft bounce in a row still suppresses.
#[tokio::test]
async fn a_delivery_reported_after_newer_soft_bounces_does_not_end_their_streak() {
    let w = sent().await;
    let soft = |i: u32| {
        w.event(
            "ses-bounce-transient.json",
            &format!("soft-{i}"),
            &format!("2026-11-21T10:{i:02}:00.000Z"),
        )
    };
    for i in 0..7 {
        assert_eq!(w.apply(&soft(i)).await, recorded(&[]), "bounce {i}");
    }
    let early = w.event(
        "ses-delivery.json",
        "late-delivery",
        "2026-11-21T10:03:30.000Z",
    );
    assert_eq!(w.apply(&early).await, recorded(&[]));
    assert_eq!(
        reasons(w.apply(&soft(7)).await),
        recorded(&[SuppressionReason::RepeatedSoftBounces])
    );
    assert!(w.suppressed().await);
}

#[tokio::test]
async fn the_eighth_soft_bounce_in_a_row_suppresses_and_a_later_delivery_ends_the_streak() {
    let w = sent().await;
    let soft = |i: u32, minute: u32| {
        w.event(
            "ses-bounce-transient.json",
            &format!("soft-{i}"),
            &format!("2026-11-2{}T10:{minute:02}:00.000Z", 1 + i / 60),
        )
    };
    for i in 0..7 {
        assert_eq!(w.apply(&soft(i, i)).await, recorded(&[]), "bounce {i}");
    }
    // A delivery that happened before the last bounce (reported late) does not end the streak…
    let early = w.event(
        "ses-delivery.json",
        "late-delivery",
        "2026-11-21T10:03:30.000Z",
    );
    assert_eq!(w.apply(&early).await, recorded(&[]));
    // …a delivery after it does.
    let after = w.event("ses-delivery.json", "delivery", "2026-11-21T10:30:00.000Z");
    assert_eq!(w.apply(&after).await, recorded(&[]));
    for i in 0..7 {
        assert_eq!(
            w.apply(&soft(100 + i, 40 + i)).await,
            recorded(&[]),
            "bounce {i} after delivery"
        );
    }
    assert!(!w.suppressed().await);
    // A redelivered bounce does not count twice.
    assert_eq!(w.apply(&soft(106, 46)).await, Applied::Duplicate);
    assert_eq!(
        reasons(w.apply(&soft(107, 47)).await),
        recorded(&[SuppressionReason::RepeatedSoftBounces])
    );
    assert!(w.suppressed().await);
}

#[tokio::test]
async fn a_complaint_after_the_event_list_is_full_still_suppresses_once() {
    let w = sent().await;
    let max = aftercare::adapters::store::email_events::MAX_EVENTS_PER_SEND;
    for i in 0..max {
        let open = w.event(
            "ses-open.json",
            &format!("open-{i}"),
            "2026-11-20T18:00:00.000Z",
        );
        assert_eq!(w.apply(&open).await, recorded(&[]), "open {i}");
    }
    let complaint = w.event(
        "ses-complaint.json",
        "complaint",
        "2026-11-21T08:00:00.000Z",
    );
    assert_eq!(
        reasons(w.apply(&complaint).await),
        recorded(&[SuppressionReason::Complaint])
    );
    assert!(w.suppressed().await);
    assert_eq!(w.apply(&complaint).await, Applied::Duplicate);
    let record = w.record().await;
    assert_eq!(record["events"].as_l().unwrap().len(), max);
    assert_eq!(s(&record, "delivery_state"), "complaint");
}

fn app(env: &Env) -> email_events::App {
    email_events::App::with_parts(
        env.config(),
        env.dynamodb(),
        env.ses(),
        std::sync::Arc::new(aftercare::clock::SystemClock),
    )
    .unwrap()
}

#[tokio::test]
async fn the_function_records_ses_events_and_the_merchant_reads_and_lifts_suppressions() {
    let w = sent().await;
    let app = app(&w.env);
    let call = |event: Value| {
        let app = &app;
        async move { email_events::handle(app, event, "t", deadline()).await }
    };
    let bounce = w.event(
        "ses-bounce-permanent.json",
        "ev-9",
        "2026-11-20T10:00:03.000Z",
    );
    let out = call(bounce.clone()).await.unwrap();
    assert_eq!(out["result"], "recorded", "{out}");
    assert_eq!(out["suppressed"][0]["reason"], "hard_bounce");
    assert_eq!(call(bounce.clone()).await.unwrap()["result"], "duplicate");
    // Mail someone else sent through the account: answered, nothing stored, never retried.
    let mut foreign = bounce.clone();
    foreign["id"] = "ev-10".into();
    foreign["detail"]["mail"]["headers"] = serde_json::json!([]);
    foreign["detail"]["mail"]["tags"] = serde_json::json!({});
    assert_eq!(call(foreign).await.unwrap()["result"], "unmatched");
    let mut malformed = bounce.clone();
    malformed["detail"]["mail"]["messageId"] = Value::Null;
    let out = call(malformed).await.unwrap();
    assert_eq!(
        (out["result"].as_str(), out["field"].as_str()),
        (Some("invalid"), Some("detail.mail.messageId"))
    );
    let mut stranger = bounce.clone();
    stranger["source"] = "acme.orders".into();
    assert!(call(stranger).await.is_err());

    let email = w.env.customer_email();
    let api = |route: &str, key: Option<&str>, address: &str| {
        w.env.api_event(
            route,
            &format!("/v1/suppressions/{address}"),
            &[("email", address)],
            None,
            key,
        )
    };
    let key = Some(w.env.api_key.as_str());
    let status = |resp: &Value| resp["statusCode"].as_i64().unwrap();
    let body =
        |resp: &Value| -> Value { serde_json::from_str(resp["body"].as_str().unwrap()).unwrap() };
    let resp = call(api(email_events::ROUTE_GET, None, &email))
        .await
        .unwrap();
    assert_eq!(status(&resp), 401);
    let encoded = email.replace('@', "%40");
    let resp = call(api(email_events::ROUTE_GET, key, &encoded))
        .await
        .unwrap();
    assert_eq!(status(&resp), 200, "{resp}");
    assert_eq!(body(&resp)["reason"], "hard_bounce");
    assert_eq!(body(&resp)["email"], email.as_str());
    let resp = call(api(email_events::ROUTE_GET, key, "not-an-address"))
        .await
        .unwrap();
    assert_eq!(body(&resp)["error"]["field"], "email", "{resp}");
    let resp = call(api(email_events::ROUTE_DELETE, key, &email))
        .await
        .unwrap();
    assert_eq!(
        (status(&resp), body(&resp)["lifted"].clone()),
        (200, Value::Bool(true))
    );
    assert!(!w.suppressed().await);
    let resp = call(api(email_events::ROUTE_GET, key, &email))
        .await
        .unwrap();
    assert_eq!(status(&resp), 404);
    let resp = call(api(email_events::ROUTE_DELETE, key, &email))
        .await
        .unwrap();
    assert_eq!(status(&resp), 404);
}

/// A race made at the wire: the record is settled with another message id between the event's
/// read and its adoption (another event, or the sender's own late write). The event must not
/// overwrite it.
#[tokio::test]
async fn an_ses_event_never_overwrites_a_message_id_recorded_meanwhile() {
    aftercare_tests::mutate::update_before(
        "email_events.adopt_message",
        "SET message_id = :other, #s = :sent",
        serde_json::json!({"#s": "status"}),
        serde_json::json!({":other": {"S": "the-other-message"}, ":sent": {"S": "sent"}}),
    );
    let w = sent().await;
    w.lose_the_answer().await;
    let send = w.event("ses-send.json", "ev-1", "2026-11-20T10:00:00.123Z");
    assert_ne!(w.apply(&send).await, recorded(&[]), "nothing adopted");
    let record = w.record().await;
    assert_eq!(s(&record, "message_id"), "the-other-message");
    assert_eq!(s(&record, "status"), "sent");
    assert!(!record.contains_key("reconciled_at"), "{record:?}");
}
