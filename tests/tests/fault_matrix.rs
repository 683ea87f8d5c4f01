//! Faults on every AWS call, at the wire (`aftercare_tests::wire`): for each request an `Order
//! Placed` event makes, in order, and each fault that request's service can answer (throttling, a
//! 5xx, a timeout; for SES also SendingPaused, AccountSuspended and MessageRejected), before the
//! request arrives and after it was handled, once and for the rest of the invocation: the event is
//! delivered into the fault, then redelivered as Lambda retries (minutes later) until it succeeds,
//! and SES's events for what it accepted reach email-events. Whatever the fault: at most one
//! email, the order stored and its points awarded exactly once, no retry storm, and the send
//! record tells the truth. Before the silence window: `sent` when the email went (reconciled from
//! SES's event when its answer was lost), else `failed` or `ambiguous` (parked: SES has no
//! idempotency token, so a send whose outcome is unknown is not repeated while its event may
//! still come). Then the clock passes the window and survey-sender's sweep runs: every parked
//! thank-you (transactional) is sent once more (`resent_after_silence`), so every case but a
//! rejection ends with exactly one email and a `sent` record; one whose Send event did arrive is
//! never resent.
//!
//! Definitive refusals (throttling, paused or suspended sending, a rejection) are injected before
//! the request arrives only: SES does not accept a message and answer that it refused it. After a
//! refusal that means "not now" the email must still go on a redelivery; only a rejection, or an
//! outcome no one can know (see the test), may leave it unsent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::{Clock, ManualClock};
use aftercare::domain::OrderId;
use aftercare_tests::wire::{Fault, Plan, Service, When, WireFaults};
use aftercare_tests::{Env, deadline, s, sent_emails_matching};
use std::sync::Arc;

fn app(
    env: &Env,
    clock: &Arc<ManualClock>,
    clients: (aws_sdk_dynamodb::Client, aws_sdk_sesv2::Client),
) -> order_placed::App {
    order_placed::App::with_parts(env.config(), clients.0, clients.1, clock.clone()).unwrap()
}

/// The status of case `n`'s thank-you send record (`none` without one).
async fn record_of(env: &Env, n: usize) -> String {
    env.items_in(
        &format!("C#c-fm-{n}#SEND"),
        &format!("SEND#c-fm-{n}#order_thanks#FM-{n}#0"),
    )
    .await
    .first()
    .map(|r| s(r, "status"))
    .unwrap_or_else(|| "none".into())
}

/// Just past the deployment's default silence window.
fn past_the_window() -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(aftercare::usecases::send::DEFAULT_SILENCE_WINDOW).unwrap()
        + jiff::SignedDuration::from_secs(1)
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
    let mut resolved: std::collections::BTreeMap<String, usize> = Default::default();
    let links = survey_sender::Links::new(
        aftercare_tests::BASE,
        aftercare::token::SigningKey::new(&[7u8; 32]).unwrap(),
    );
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
                    let mut reported = 0;
                    let mut report = async |violations: &mut Vec<String>| {
                        let sent = sent_emails_matching(&env.endpoint, &to).await;
                        for email in sent.iter().skip(reported) {
                            let out = email_events::handle(
                                &events,
                                env.send_event(email, clock.now()),
                                "ses",
                                deadline(),
                            )
                            .await
                            .unwrap();
                            if out["result"] != "recorded" {
                                violations.push(format!("{case}: SES's event was {out}"));
                            }
                        }
                        reported = sent.len();
                    };
                    report(&mut violations).await;
                    let before_the_window = record_of(&env, n).await;
                    // The silence window passes: survey-sender's sweep decides what SES never
                    // spoke about (an order's thank-you is transactional: sent once more).
                    clock.advance(past_the_window());
                    let swept = survey_sender::sweep(&clean, &links, deadline())
                        .await
                        .unwrap();
                    report(&mut violations).await;
                    let parked_sweep = swept.parked.clone();
                    if before_the_window == "ambiguous" && parked_sweep.resent != 1 {
                        violations.push(format!(
                            "{case}: parked, but the sweep after the window did {parked_sweep:?}"
                        ));
                    }
                    if before_the_window != "ambiguous" && parked_sweep.resent != 0 {
                        violations.push(format!(
                            "{case}: {before_the_window} before the window, yet resent"
                        ));
                    }
                    *resolved.entry(before_the_window.clone()).or_default() += 1;
                    let sent = sent_emails_matching(&env.endpoint, &to).await;
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
                    let record = record_of(&env, n).await;
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
                    // Once the window has passed, every email went exactly once (SES's event
                    // reconciled a lost answer; silence resent what never reached SES), unless
                    // SES rejected it.
                    match (emails, record.as_str()) {
                        (1, "sent") | (0, "failed") => {}
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
                    // Only a rejection leaves an email unsent for good. What no one could know
                    // at first (a timeout or 5xx on SendEmail, or the claim written but its
                    // answer lost for the whole invocation) was parked, and the silence after
                    // it sent the email once; the rest was retried until it went.
                    if emails == 0 && fault != Fault::MessageRejected {
                        violations.push(format!("{case}: the email never went"));
                    }
                    let stored = env
                        .items_in(&format!("C#c-fm-{n}#SEND"), "SEND#")
                        .await
                        .pop();
                    let resolution = stored.as_ref().and_then(|r| r.get("resolution").cloned());
                    // A copy kept for a resend goes once the send is decided, by SES's event or
                    // by the resend.
                    if stored.is_some_and(|r| r.contains_key("parked_message")) {
                        violations.push(format!("{case}: the kept message outlived its decision"));
                    }
                    if before_the_window == "ambiguous"
                        && resolution
                            != Some(aws_sdk_dynamodb::types::AttributeValue::S(
                                "resent_after_silence".into(),
                            ))
                    {
                        violations.push(format!(
                            "{case}: resent without its resolution on record ({resolution:?})"
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "{tried} faulty deliveries over {} requests: before the silence window {resolved:?}; \
         after it {outcomes:?}",
        requests.len()
    );
    assert!(
        resolved.get("ambiguous").copied().unwrap_or(0) > 0,
        "the matrix parks some sends ({resolved:?}): else it proves nothing about silence"
    );
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}
