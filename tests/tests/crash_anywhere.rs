//! Crash anywhere: the function process ends (`abort`, as a Lambda sandbox is killed; not an
//! injected error) before and after each AWS request in turn, for one order (order-placed) and
//! one follow-up (survey-sender's sweep). Each run is a child process (`src/bin/crash_child.rs`)
//! over the production SDK clients against this test's moto table. After each crash the trigger
//! is redelivered as Lambda would (the event a couple of minutes later, past the claim's lease;
//! the schedule's next run), SES's events for what it accepted reach email-events, and the clock
//! passes the silence window so survey-sender's sweep settles what crashed between the claim and
//! SES. Every crash point must end with exactly one stored state, no duplicate email, and:
//! * the thank-you (transactional): exactly one email, its record `sent`;
//! * the usage tips (marketing): one email and `sent`, or, when the crash fell between the claim
//!   and SES, none and `unsent` (`closed_after_silence`): marketing is never resent blindly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::clock::Clock as _;
use aftercare::domain::OrderId;
use aftercare::domain::followup::AnchorReason;
use aftercare::ports::shipments::ShipmentBook as _;
use aftercare::token::SigningKey;
use aftercare_tests::crash::{CRASH_AT, CrashPoint, Moment};
use aftercare_tests::{BASE, Env, SentEmail, deadline, s, sent_emails_matching};
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;

/// The key the child processes sign links with (`crash_child::KEY`).
const KEY: [u8; 32] = [9u8; 32];

/// The child binary: nextest names it at run time; cargo at build time.
fn child() -> PathBuf {
    std::env::var_os("NEXTEST_BIN_EXE_crash_child")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_crash_child")))
}

/// What a child run did: crashed, or finished with its request count and answer.
#[derive(Debug)]
enum Run {
    Crashed,
    Finished { requests: usize, result: Value },
}

struct World {
    env: Env,
    clock: Arc<aftercare::clock::ManualClock>,
    app: aftercare::app::App,
    links: survey_sender::Links,
    events: std::path::PathBuf,
}

impl World {
    async fn new() -> Self {
        let mut env = Env::new().await;
        let j = &mut env.merchant.settings.journey;
        j.feedback_survey.enabled = false;
        j.review_request.enabled = false;
        j.cross_sell.enabled = false;
        j.usage_tips.enabled = true;
        env.save_merchant().await;
        let key = SigningKey::new(&KEY).unwrap();
        let (clock, app) = env.app_at("2026-12-01T12:00:00Z", &key);
        let events = std::env::temp_dir().join(format!("aftercare-crash-{}", env.tag));
        std::fs::create_dir_all(&events).unwrap();
        Self {
            links: survey_sender::Links::new(BASE, key),
            env,
            clock,
            app,
            events,
        }
    }

    fn email(&self, n: usize) -> String {
        format!("ca.{n}.{}@example.com", self.env.tag)
    }

    /// Case `n`'s `Order Placed` event (its own order and customer).
    fn order_event(&self, n: usize) -> Value {
        let mut order = self.env.order();
        order["id"] = format!("CA-{n}").into();
        order["customer"]["id"] = format!("c-ca-{n}").into();
        order["customer"]["email"] = self.email(n).into();
        order["customer"]["time_zone"] = "Europe/London".into();
        self.env.order_event(&order)
    }

    /// Runs the child `mode` at `at`, crashing at `crash`.
    async fn run(
        &self,
        mode: &str,
        at: Timestamp,
        event: Option<&Value>,
        crash: Option<CrashPoint>,
    ) -> Run {
        let mut cmd = std::process::Command::new(child());
        cmd.arg(mode)
            .arg(&self.env.endpoint)
            .arg(&self.env.table)
            .arg(at.to_string());
        if let Some(event) = event {
            let path = self
                .events
                .join(format!("{}.json", aftercare_tests::unique()));
            std::fs::write(&path, serde_json::to_vec(event).unwrap()).unwrap();
            cmd.arg(path);
        }
        cmd.env_remove(CRASH_AT);
        if let Some(point) = crash {
            cmd.env(CRASH_AT, point.env_value());
        }
        // The child blocks only a thread of its own, so cases run side by side.
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        if out.status.success() {
            let line: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
            return Run::Finished {
                requests: line["requests"].as_u64().unwrap() as usize,
                result: line["result"].clone(),
            };
        }
        assert_eq!(
            out.status.signal(),
            Some(6),
            "the child ended by abort, not otherwise: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Run::Crashed
    }

    /// SES's Send event for every email to `to` not reported yet, to email-events.
    async fn report_sends(&self, to: &str, reported: &mut usize) -> Vec<SentEmail> {
        let sent = sent_emails_matching(&self.env.endpoint, to).await;
        for email in sent.iter().skip(*reported) {
            let out = email_events::handle(
                &self.app,
                self.env.send_event(email, self.clock.now()),
                "ses",
                deadline(),
            )
            .await
            .unwrap();
            assert_eq!(out["result"], "recorded", "{out}");
        }
        *reported = sent.len();
        sent
    }

    /// The send record of `kind` for case `n`: (status, resolution).
    async fn record(&self, n: usize, kind: &str) -> (String, String) {
        let record = self
            .env
            .items_in(
                &format!("C#c-ca-{n}#SEND"),
                &format!("SEND#c-ca-{n}#{kind}#CA-{n}#0"),
            )
            .await
            .pop();
        match record {
            Some(r) => (
                s(&r, "status"),
                r.get("resolution")
                    .map(|_| s(&r, "resolution"))
                    .unwrap_or_default(),
            ),
            None => ("none".into(), String::new()),
        }
    }

    /// After a run (crashed or not) at `at`: redelivery until it settles, SES's events, and the
    /// silence window passing with survey-sender's sweep. Answers the emails `kind` sent to case
    /// `n`'s customer.
    async fn settle(
        &self,
        n: usize,
        kind: &str,
        at: Timestamp,
        redeliver: impl AsyncFn(&Self) -> bool,
    ) -> Vec<SentEmail> {
        let to = self.email(n);
        let mut reported = 0;
        self.clock.set(at);
        let mut settled = false;
        for _ in 0..3 {
            self.clock.advance(SignedDuration::from_secs(120));
            if redeliver(self).await {
                settled = true;
                break;
            }
        }
        assert!(settled, "case {n}: the redelivery never settled");
        self.report_sends(&to, &mut reported).await;
        let window =
            SignedDuration::try_from(aftercare::usecases::send::DEFAULT_SILENCE_WINDOW).unwrap();
        self.clock.advance(window + SignedDuration::from_secs(1));
        let (parked, _) = survey_sender::silence::sweep(&self.app, deadline())
            .await
            .unwrap();
        assert_eq!(parked.errors, 0, "{parked:?}");
        self.report_sends(&to, &mut reported)
            .await
            .into_iter()
            .filter(|e| {
                e.header("X-Aftercare-Ref")
                    .is_some_and(|r| r.contains(&format!("#{kind}#")))
            })
            .collect()
    }

    /// Places case `n`'s order in this process, on its day (setup, not a crash subject).
    async fn place(&self, n: usize) {
        self.clock.set(day(n));
        let out = order_placed::handle(&self.app, self.order_event(n), "setup", deadline())
            .await
            .unwrap();
        assert_eq!(out["email"]["status"], "sent", "{out}");
    }

    /// Delivers case `n`'s order so that its usage tips fall due at `due`.
    async fn deliver_for(&self, n: usize, due: Timestamp) {
        let journey = &self.env.merchant.settings.journey;
        let probe = journey.schedule(due);
        let tips = probe
            .iter()
            .find(|(kind, _)| *kind == aftercare::domain::followup::FollowUpKind::UsageTips)
            .unwrap();
        let delivered = due - (tips.1 - due);
        let order = self
            .env
            .store
            .get_order(
                &self.env.merchant.id,
                &OrderId::parse("o", &format!("CA-{n}")).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let schedule = journey.schedule(delivered);
        assert!(
            self.env
                .store
                .anchor_journey(
                    &order,
                    delivered,
                    AnchorReason::Delivered,
                    &schedule,
                    delivered
                )
                .await
                .unwrap()
        );
    }
}

/// Case `n` runs on its own day at noon, whatever the cases before it did with the clock.
fn day(n: usize) -> Timestamp {
    let base: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    base + SignedDuration::from_hours(24 * n as i64)
}

/// Every crash point of a run that makes `requests` requests.
fn points(requests: usize) -> Vec<CrashPoint> {
    (1..=requests)
        .flat_map(|request| {
            [Moment::Before, Moment::After].map(|moment| CrashPoint { request, moment })
        })
        .collect()
}

/// What a crash test found: every crash point's outcome, and what broke a promise.
#[derive(Default)]
struct Findings {
    violations: Vec<String>,
    outcomes: BTreeMap<String, usize>,
}

impl Findings {
    /// Reports the crash points tried and fails on any violation; `settled_by` must be among the
    /// outcomes (some crash fell between the claim and SES and the silence settled it).
    fn finish(self, what: &str, points: usize, requests: usize, settled_by: &str) {
        let Findings {
            violations,
            outcomes,
        } = self;
        eprintln!(
            "crash-anywhere, {what}: {points} crash points (before and after each of {requests} \
             requests): {outcomes:?}"
        );
        assert!(
            outcomes.keys().any(|k| k.contains(settled_by)),
            "some crash fell between the claim and SES and ended {settled_by}: {outcomes:?}"
        );
        assert!(
            violations.is_empty(),
            "{} violations:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
}

#[tokio::test]
async fn an_order_process_killed_before_or_after_any_request_ends_with_one_email_and_one_order() {
    let w = World::new().await;
    let Findings {
        mut violations,
        mut outcomes,
    } = Findings::default();
    let mut n = 0;

    // Learn its requests from a run that does not crash.
    let Run::Finished { requests, result } =
        w.run("order", day(n), Some(&w.order_event(n)), None).await
    else {
        panic!("the probe crashed");
    };
    assert_eq!(result["email"]["status"], "sent", "{result}");
    let order_points = points(requests);
    for point in &order_points {
        n += 1;
        let event = w.order_event(n);
        let run = w.run("order", day(n), Some(&event), Some(*point)).await;
        let case = format!("order request {} {}", point.request, point.moment.as_str());
        if !matches!(run, Run::Crashed) {
            violations.push(format!("{case}: the child did not crash ({run:?})"));
        }
        let emails = w
            .settle(n, "order_thanks", day(n), async |w: &World| {
                order_placed::handle(&w.app, event.clone(), "redelivery", deadline())
                    .await
                    .is_ok()
            })
            .await;
        let (status, resolution) = w.record(n, "order_thanks").await;
        let ledger = w
            .env
            .items_in(&format!("C#c-ca-{n}"), "LEDGER#")
            .await
            .len();
        let orders = w.env.items_in(&format!("O#CA-{n}"), "ORDER").await.len();
        *outcomes
            .entry(format!(
                "order: {} email, {status} {resolution}",
                emails.len()
            ))
            .or_default() += 1;
        if emails.len() != 1 || status != "sent" || ledger != 1 || orders != 1 {
            violations.push(format!(
                "{case}: {} emails, record {status}, {ledger} ledger entries, {orders} orders",
                emails.len()
            ));
        }
    }

    Findings {
        violations,
        outcomes,
    }
    .finish(
        "order",
        order_points.len(),
        requests,
        "resent_after_silence",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follow_up_sweep_killed_before_or_after_any_request_sends_at_most_once_and_settles() {
    let w = World::new().await;
    let Findings {
        mut violations,
        mut outcomes,
    } = Findings::default();
    let n = 0;

    // A delivered order whose usage tips are due; the sweep is the invocation. Learn its
    // requests from a run that does not crash.
    w.place(n).await;
    w.deliver_for(n, day(n)).await;
    let Run::Finished { requests, result } = w.run("follow-ups", day(n), None, None).await else {
        panic!("the probe crashed");
    };
    assert_eq!(result["sent"], 1, "{result}");
    let follow_up_points = points(requests);
    // Each crash point in a world of its own (a table of its own keeps moto's index reads
    // quick), four at a time.
    let cases = futures_util::stream::iter(follow_up_points.iter().copied())
        .map(|point| async move { follow_up_case(point).await })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    for (outcome, violation) in cases {
        *outcomes.entry(outcome).or_default() += 1;
        violations.extend(violation);
    }

    Findings {
        violations,
        outcomes,
    }
    .finish(
        "follow-up",
        follow_up_points.len(),
        requests,
        "closed_after_silence",
    );
}

/// One crash point of the follow-up sweep in a world of its own: its outcome, and what broke a
/// promise.
async fn follow_up_case(point: CrashPoint) -> (String, Option<String>) {
    let w = World::new().await;
    let n = 1;
    w.place(n).await;
    w.deliver_for(n, day(n)).await;
    let run = w.run("follow-ups", day(n), None, Some(point)).await;
    let case = format!(
        "follow-up request {} {}",
        point.request,
        point.moment.as_str()
    );
    let mut violation = None;
    if !matches!(run, Run::Crashed) {
        violation = Some(format!("{case}: the child did not crash ({run:?})"));
    }
    let emails = w
        .settle(n, "usage_tips", day(n), async |w: &World| {
            survey_sender::sweep_follow_ups(&w.app, &w.links, deadline())
                .await
                .is_ok()
        })
        .await;
    let (status, resolution) = w.record(n, "usage_tips").await;
    let still_due = w
        .env
        .items_in(&format!("O#CA-{n}"), "FOLLOWUP#usage_tips")
        .await
        .iter()
        .any(|f| f.contains_key("DUEPK"));
    match (emails.len(), status.as_str(), resolution.as_str()) {
        (1, "sent", "") | (0, "unsent", "closed_after_silence") => {}
        (e, st, r) => violation = Some(format!("{case}: {e} emails with the record {st} {r}")),
    }
    if still_due {
        violation = Some(format!("{case}: the follow-up is still due"));
    }
    (
        format!("follow-up: {} email, {status} {resolution}", emails.len()),
        violation,
    )
}
