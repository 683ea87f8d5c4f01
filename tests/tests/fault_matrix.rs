//! Faults on every AWS call, at the wire (`aftercare_tests::wire`): for each request an `Order
//! Placed` event makes, in order, and each fault that request's service can answer (throttling, a
//! 5xx, a timeout; for SES also SendingPaused, AccountSuspended and MessageRejected), before the
//! request arrives and after it was handled, once and for the rest of the invocation: the event is
//! delivered into the fault, then redelivered as Lambda retries (minutes later) until it succeeds,
//! and SES's events for what it accepted reach email-events. Whatever the fault: at most one
//! email, the order stored and its points awarded exactly once, no retry storm, and the send
//! record tells the truth: `sent` when the email went (reconciled from SES's event when its answer
//! was lost), else `failed` or `ambiguous` (parked: SES has no idempotency token, so a send whose
//! outcome is unknown is never repeated).
//!
//! Definitive refusals (throttling, paused or suspended sending, a rejection) are injected before
//! the request arrives only: SES does not accept a message and answer that it refused it. After a
//! refusal that means "not now" the email must still go on a redelivery; only a rejection, or an
//! outcome no one can know (see the test), may leave it unsent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::{Clock, ManualClock};
use aftercare::domain::OrderId;
use aftercare_tests::wire::{Fault, Plan, Service, When, WireFaults};
use aftercare_tests::{Env, deadline, fixture, s, sent_emails_matching};
use std::sync::Arc;

fn app(
    env: &Env,
    clock: &Arc<ManualClock>,
    clients: (aws_sdk_dynamodb::Client, aws_sdk_sesv2::Client),
) -> order_placed::App {
    order_placed::App::with_parts(env.config(), clients.0, clients.1, clock.clone()).unwrap()
}

/// SES's `Send` event for an email moto accepted, as the configuration set publishes it.
fn send_event(
    env: &Env,
    email: &aftercare_tests::SentEmail,
    at: jiff::Timestamp,
) -> serde_json::Value {
    let text = serde_json::to_string(&fixture("ses-send.json"))
        .unwrap()
        .replace("MESSAGE_ID", &email.id)
        .replace("RECIPIENT", &email.destinations[0])
        .replace("MERCHANT", env.merchant.id.as_str())
        .replace("SEND_REF", &email.header("X-Aftercare-Ref").unwrap())
        .replace("EVENT_ID", &format!("ev-{}", email.id))
        .replace("\"2026-11-20T10:00:00.123Z\"", &format!("\"{at}\""));
    serde_json::from_str(&text).unwrap()
}

fn event(env: &Env, n: usize) -> serde_json::Value {
    let mut order = env.order();
    order["id"] = format!("FM-{n}").into();
    order["customer"]["id"] = format!("c-fm-{n}").into();
    order["customer"]["email"] = format!("fm.{n}.{}@example.com", env.tag).into();
    env.order_event(&order)
}

#[tokio::test]
async fn every_request_of_an_order_failing_every_way_loses_nothing_and_sends_at_most_once() {
    let env = Env::new().await;
    let faults = WireFaults::new(aftercare::adapters::aws::http_client());
    let clock = Arc::new(ManualClock::new("2026-11-20T10:00:00Z".parse().unwrap()));
    let clean = app(&env, &clock, (env.dynamodb(), env.ses()));
    let events =
        email_events::App::with_parts(env.config(), env.dynamodb(), env.ses(), clock.clone())
            .unwrap();

    // The requests one event makes, learned from a run without faults (a fresh App each time:
    // no cached merchant, so the first event's every request is in the plan).
    faults.arm(None);
    order_placed::handle(
        &app(&env, &clock, faults.clients(&env.sdk)),
        event(&env, 0),
        "probe",
        deadline(),
    )
    .await
    .unwrap();
    let requests = faults.seen();
    assert!(
        requests.iter().any(|(_, op)| op == "SES.outbound-emails"),
        "{requests:?}"
    );

    let mut n = 0;
    let mut tried = 0;
    let mut violations = Vec::new();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for (k, (service, op)) in requests.iter().enumerate() {
        for fault in Fault::ALL.into_iter().filter(|f| f.applies_to(*service)) {
            let definitive = !matches!(fault, Fault::Timeout | Fault::ServerError);
            for when in [When::Before, When::After] {
                if definitive && when == When::After {
                    continue;
                }
                for persist in [false, true] {
                    n += 1;
                    tried += 1;
                    let case = format!(
                        "request {} ({op}) {fault:?} {when:?} persist={persist}",
                        k + 1
                    );
                    let faulty = app(&env, &clock, faults.clients(&env.sdk));
                    faults.arm(Some(Plan {
                        request: k + 1,
                        fault,
                        when,
                        persist,
                    }));
                    let first =
                        order_placed::handle(&faulty, event(&env, n), "faulty", deadline()).await;
                    let made = faults.seen().len();
                    if !faults.struck() {
                        violations.push(format!("{case}: the planned request was never made"));
                    }
                    // The SDK retries DynamoDB up to 3 attempts; the app's own retries are bounded.
                    if made > requests.len() * 4 {
                        violations.push(format!(
                            "{case}: {made} requests for a {}-request event",
                            requests.len()
                        ));
                    }
                    // Lambda redelivers a failed event, a minute or two later (past the claim's
                    // lease); an answered one is done.
                    let mut settled = first.is_ok();
                    for _ in 0..3 {
                        if settled {
                            break;
                        }
                        clock.advance(jiff::SignedDuration::from_secs(120));
                        settled = order_placed::handle(&clean, event(&env, n), "retry", deadline())
                            .await
                            .is_ok();
                    }
                    if !settled {
                        violations.push(format!("{case}: never settled"));
                    }

                    // SES publishes a Send event for every email it accepted.
                    let to = format!("fm.{n}.{}@example.com", env.tag);
                    let sent = sent_emails_matching(&env.endpoint, &to).await;
                    for email in &sent {
                        let out = email_events::handle(
                            &events,
                            send_event(&env, email, clock.now()),
                            "ses",
                            deadline(),
                        )
                        .await
                        .unwrap();
                        if out["result"] != "recorded" {
                            violations.push(format!("{case}: SES's event was {out}"));
                        }
                    }
                    let emails = sent.len();
                    let stored = env
                        .store
                        .get_order(
                            &env.merchant.id,
                            &OrderId::parse("o", &format!("FM-{n}")).unwrap(),
                        )
                        .await
                        .unwrap()
                        .is_some();
                    let ledger = env.items_in(&format!("C#c-fm-{n}"), "LEDGER#").await.len();
                    let record = env
                        .items_in(
                            &format!("C#c-fm-{n}#SEND"),
                            &format!("SEND#c-fm-{n}#order_thanks#FM-{n}#0"),
                        )
                        .await
                        .first()
                        .map(|r| s(r, "status"))
                        .unwrap_or_else(|| "none".into());
                    *outcomes
                        .entry(format!("{emails} email, record {record}"))
                        .or_default() += 1;
                    if emails > 1 {
                        violations.push(format!("{case}: {emails} emails"));
                    }
                    if !stored || ledger != 1 {
                        violations.push(format!(
                            "{case}: order stored {stored}, {ledger} ledger entries"
                        ));
                    }
                    match (emails, record.as_str()) {
                        (1, "sent") | (0, "ambiguous" | "failed") => {}
                        (e, r) => violations
                            .push(format!("{case}: {e} email(s) with the send record {r}")),
                    }
                    if fault == Fault::MessageRejected
                        && *service == Service::Ses
                        && when == When::Before
                        && record != "failed"
                    {
                        violations.push(format!("{case}: a rejected email recorded as {record}"));
                    }
                    // An email may stay unsent only when SES refused it, or when no one can know
                    // whether SES got it: a timeout or 5xx on SendEmail, or the claim written but
                    // its answer lost for the whole invocation. Anything SES or DynamoDB answered
                    // with "not done" (throttled, paused, suspended) is retried until it goes.
                    let may_stay_unsent = fault == Fault::MessageRejected
                        || (op.as_str() == "SES.outbound-emails"
                            && when == When::Before
                            && matches!(fault, Fault::Timeout | Fault::ServerError))
                        || (op.as_str() == "DynamoDB.TransactWriteItems"
                            && when == When::After
                            && persist);
                    if emails == 0 && !may_stay_unsent {
                        violations.push(format!("{case}: the email never went"));
                    }
                }
            }
        }
    }
    eprintln!(
        "{tried} faulty deliveries over {} requests: {outcomes:?}",
        requests.len()
    );
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
