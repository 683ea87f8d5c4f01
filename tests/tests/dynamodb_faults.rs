//! DynamoDB's own answers at the wire (`aftercare_tests::wire::Shape`), the ones moto never gives
//! (RELIABILITY.md §3, "DynamoDB's own failure modes", has the figures):
//!
//! * for every TransactWriteItems every trigger makes, a `TransactionCanceledException` whose
//!   reasons mix `None` with `TransactionConflict`: once, retried, the clean outcome; on every
//!   attempt, a retryable failure (an error, a 5xx) with nothing written, then a redelivery settles
//!   exactly once (the detractor answer's loop closing, best effort by design, answers and the
//!   next answer closes it);
//! * the same with `ConditionalCheckFailed` on each action in turn, which always contradicts what
//!   is stored: the outcome the reason documents (answered, nothing written, or what the next
//!   delivery completes) or a re-read that asks for a redelivery, which then ends clean; never a
//!   duplicate, never a refusal (4xx) that leaves the clean run's work undone;
//! * `ProvisionedThroughputExceeded` on every write that sets or removes an index key: as a
//!   conflict, once and on every attempt;
//! * a BatchGetItem that leaves half of its keys unprocessed: the clean outcome;
//! * a due-index Query answered by a lagging replica (an item settled a moment ago answered again,
//!   one just written missing): nothing is sent twice, and the missed one goes on the next sweep.
//!
//! Each case runs in a world of its own: the trigger's setup deliveries, then the delivery under
//! test with the fault, then Lambda's (or the client's) redeliveries while it answers a retryable
//! failure, then one more delivery minutes later. Its outcome is compared with the same world's
//! clean run: the items stored (key and status), the emails sent (recipient and kind), the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::Clock;
use aftercare::clock::ManualClock;
use aftercare::lambda::error::HandlerError;
use aftercare::signature;
use aftercare::token::SigningKey;
use aftercare_tests::wire::{Fault, Plan, Reason, Shape, When, WireFaults};
use aftercare_tests::{BASE, Env, deadline, fixture, s, sent_emails_matching};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Orders,
    Shipments,
    Surveys,
    Renewals,
    Billing,
    EmailEvents,
}

/// What a delivery carries (built when it is delivered: signatures and links use the clock).
#[derive(Clone, Copy, Debug)]
enum Ev {
    OrderPost(&'static str, &'static str),
    OrderEvent(&'static str, &'static str),
    ShipmentCreate(&'static str, &'static str),
    Checkpoint(&'static str, &'static str),
    TrackingWebhook(&'static str, &'static str),
    StripeFailed(&'static str, &'static str),
    StripePaid(&'static str, &'static str),
    BillingFailed(&'static str),
    Scheduled,
    PutSubscription(&'static str),
    SurveyAnswer(&'static str, &'static str, u8),
    LoyaltyAdjust(&'static str, i64),
    LoyaltyRedeem(&'static str, i64),
    Bounce(&'static str, &'static str),
    Messages(&'static str),
    TrackPage(&'static str, &'static str),
}

#[derive(Clone, Copy, Debug)]
struct Step {
    f: Function,
    ev: Ev,
    /// The clock is set to this before the delivery.
    at: Option<&'static str>,
    /// SES refuses every send of this delivery (throttled): the send is left to retry.
    ses_down: bool,
}

const fn step(f: Function, ev: Ev) -> Step {
    Step {
        f,
        ev,
        at: None,
        ses_down: false,
    }
}

const fn step_at(f: Function, ev: Ev, at: &'static str) -> Step {
    Step {
        f,
        ev,
        at: Some(at),
        ses_down: false,
    }
}

struct Scenario {
    name: &'static str,
    setup: Vec<Step>,
    step: Step,
}

const START: &str = "2026-11-20T10:00:00Z";

struct World {
    env: Env,
    clock: Arc<ManualClock>,
    faults: WireFaults,
    app: aftercare::app::App,
    surveys: survey_sender::Links,
    renewals: renewal_checker::Links,
    billing: billing_alert::Links,
    key: SigningKey,
}

impl World {
    async fn new() -> Self {
        let env = Env::new().await;
        let key = SigningKey::new(&[33u8; 32]).unwrap();
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let faults = WireFaults::new(aftercare::adapters::aws::http_client());
        let app = Self::build(&env, &clock, &key, faults.clients(&env.sdk));
        Self {
            surveys: survey_sender::Links::new(BASE, key.clone()),
            renewals: renewal_checker::Links::new(BASE, key.clone()),
            billing: billing_alert::Links::new(BASE, key.clone()),
            env,
            clock,
            faults,
            app,
            key,
        }
    }

    fn build(
        env: &Env,
        clock: &Arc<ManualClock>,
        key: &SigningKey,
        (ddb, ses): (aws_sdk_dynamodb::Client, aws_sdk_sesv2::Client),
    ) -> aftercare::app::App {
        let mut config = env.config().with_signing_key(key.clone());
        config.public_base_url = Some(BASE.into());
        config.ses_max_send_rate = 1000;
        aftercare::app::App::with_parts(config, ddb, ses, clock.clone()).unwrap()
    }

    fn email(&self, who: &str) -> String {
        format!("{who}.{}@example.com", self.env.tag)
    }

    async fn deliver(&self, st: Step) -> Result<Value, HandlerError> {
        if let Some(at) = st.at {
            self.clock.set(at.parse().unwrap());
        }
        let event = self.event(st.ev).await;
        if st.ses_down {
            // SES (only SES: this client's DynamoDB is not used) throttles every send.
            let down = WireFaults::new(aftercare::adapters::aws::http_client());
            down.arm(Some(Plan {
                request: 1,
                fault: Fault::Throttled,
                when: When::Before,
                persist: true,
            }));
            let ses = down.clients(&self.env.sdk).1;
            let ddb = self.faults.clients(&self.env.sdk).0;
            let app = Self::build(&self.env, &self.clock, &self.key, (ddb, ses));
            return self.run(&app, st.f, event).await;
        }
        self.run(&self.app, st.f, event).await
    }

    async fn run(
        &self,
        app: &aftercare::app::App,
        f: Function,
        event: Value,
    ) -> Result<Value, HandlerError> {
        let d = deadline();
        match f {
            Function::Orders => order_placed::handle(app, event, "t", d).await,
            Function::Shipments => shipment_update::handle(app, event, "t", d).await,
            Function::Surveys => survey_sender::handle(app, &self.surveys, event, "t", d).await,
            Function::Renewals => renewal_checker::handle(app, &self.renewals, event, "t", d).await,
            Function::Billing => billing_alert::handle(app, &self.billing, event, "t", d).await,
            Function::EmailEvents => email_events::handle(app, event, "t", d).await,
        }
    }

    fn api(&self, route: &str, path: &str, params: &[(&str, &str)], body: Option<&str>) -> Value {
        self.env
            .api_event(route, path, params, body, Some(&self.env.api_key))
    }

    fn order(&self, who: &str, id: &str) -> Value {
        let mut o = self.env.order();
        o["id"] = id.into();
        o["customer"]["id"] = who.into();
        o["customer"]["email"] = self.email(who).into();
        o
    }

    fn stripe(&self, kind: &str, who: &str, invoice: &str) -> Value {
        let m = self.env.merchant.id.to_string();
        let object = json!({"id": invoice, "object": "invoice", "customer": who,
            "customer_email": self.email(who), "customer_name": "Rae Six", "amount_due": 1990,
            "amount_paid": if kind == "invoice.paid" { 1990 } else { 0 }, "currency": "eur",
            "subscription": format!("sub_{who}"),
            "hosted_invoice_url": format!("https://invoice.stripe.test/{invoice}"),
            "lines": {"data": [{"description": "Coffee club"}]}});
        let body = json!({"id": format!("evt_{kind}_{invoice}"), "object": "event", "type": kind,
            "created": self.clock.now().as_second(), "data": {"object": object}})
        .to_string();
        let mut event = self.env.api_event(
            billing_alert::ROUTE_STRIPE,
            &format!("/v1/webhooks/stripe/{m}"),
            &[("merchantId", &m)],
            Some(&body),
            None,
        );
        event["headers"]["stripe-signature"] = signature::sign(
            self.env.webhook_secret().as_bytes(),
            self.clock.now().as_second(),
            body.as_bytes(),
        )
        .into();
        event
    }

    async fn event(&self, ev: Ev) -> Value {
        let m = self.env.merchant.id.to_string();
        match ev {
            Ev::OrderPost(who, id) => self
                .env
                .http_event(&self.order(who, id), Some(&self.env.api_key)),
            Ev::OrderEvent(who, id) => self.env.order_event(&self.order(who, id)),
            Ev::ShipmentCreate(order, id) => self.api(
                shipment_update::ROUTE_CREATE,
                &format!("/v1/orders/{order}/shipments"),
                &[("orderId", order)],
                Some(
                    &json!({"id": id, "carrier": "DHL", "tracking_number": format!("JD{id}")})
                        .to_string(),
                ),
            ),
            Ev::Checkpoint(shipment, at) => self.api(
                shipment_update::ROUTE_CHECKPOINT,
                &format!("/v1/shipments/{shipment}/events"),
                &[("shipmentId", shipment)],
                Some(&json!({"status": "delivered", "occurred_at": at}).to_string()),
            ),
            Ev::TrackingWebhook(shipment, at) => {
                let body = json!({"shipment_id": shipment, "id": format!("cp-{shipment}"),
                    "status": "delivered", "occurred_at": at})
                .to_string();
                let mut event = self.env.api_event(
                    shipment_update::ROUTE_WEBHOOK,
                    &format!("/v1/webhooks/tracking/{m}"),
                    &[("merchantId", &m)],
                    Some(&body),
                    None,
                );
                event["headers"]["x-aftercare-signature"] = signature::sign(
                    self.env.webhook_secret().as_bytes(),
                    self.clock.now().as_second(),
                    body.as_bytes(),
                )
                .into();
                event
            }
            Ev::StripeFailed(who, invoice) => self.stripe("invoice.payment_failed", who, invoice),
            Ev::StripePaid(who, invoice) => self.stripe("invoice.paid", who, invoice),
            Ev::BillingFailed(who) => {
                let body = json!({"id": format!("ev-{who}"), "type": "payment_failed",
                    "customer": {"id": who, "email": self.email(who), "first_name": "Rae"},
                    "invoice": {"id": format!("in_{who}"), "amount": 1490, "currency": "EUR",
                        "subscription_id": format!("sub_{who}"),
                        "payment_url": format!("https://pay.test/in_{who}"), "plan_name": "Tea club"}})
                .to_string();
                self.api(
                    billing_alert::ROUTE_EVENTS,
                    "/v1/billing-events",
                    &[],
                    Some(&body),
                )
            }
            Ev::Scheduled => json!({"version": "0", "id": "sched-1",
                "detail-type": "Scheduled Event", "source": "aws.events",
                "time": self.clock.now().to_string(), "detail": {}}),
            Ev::PutSubscription(who) => {
                let body = json!({"customer": {"id": who, "email": self.email(who), "first_name": "Rae"},
                    "plan_name": "Coffee club", "interval": "monthly", "price": 1990, "currency": "EUR",
                    "status": "active", "next_renewal_at": "2026-12-20T09:00:00Z",
                    "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
                    "manage_url": "https://shop.test/account/subscriptions",
                    "updated_at": "2026-11-20T08:00:00Z"})
                .to_string();
                let id = format!("sub_{who}");
                self.api(
                    renewal_checker::ROUTE_PUT,
                    &format!("/v1/subscriptions/{id}"),
                    &[("subscriptionId", &id)],
                    Some(&body),
                )
            }
            Ev::SurveyAnswer(who, order, score) => {
                let until = self.clock.now() + jiff::SignedDuration::from_hours(24 * 30);
                let link = self.surveys.survey(&m, who, order, score, until);
                let token = link.rsplit('/').next().unwrap().to_owned();
                let mut event = self.env.api_event(
                    survey_sender::ROUTE_SURVEY_ANSWER,
                    &format!("/v1/survey/{token}"),
                    &[("token", &token)],
                    Some(&format!("score={score}&comment=Late")),
                    None,
                );
                event["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
                event
            }
            Ev::LoyaltyAdjust(who, points) => {
                let mut event = self.api(
                    order_placed::loyalty::ROUTE_ADJUST,
                    &format!("/v1/customers/{who}/loyalty/adjustments"),
                    &[("customerId", who)],
                    Some(&json!({"points": points, "reason": "welcome"}).to_string()),
                );
                event["headers"]["idempotency-key"] = format!("adj-{points}").into();
                event
            }
            Ev::LoyaltyRedeem(who, points) => {
                let mut event = self.api(
                    order_placed::loyalty::ROUTE_REDEEM,
                    &format!("/v1/customers/{who}/loyalty/redemptions"),
                    &[("customerId", who)],
                    Some(&json!({"points": points}).to_string()),
                );
                event["headers"]["idempotency-key"] = format!("red-{points}").into();
                event
            }
            Ev::Bounce(who, order) => {
                let record = self
                    .env
                    .items_in(
                        &format!("C#{who}#SEND"),
                        &format!("SEND#{who}#order_thanks#{order}"),
                    )
                    .await
                    .pop()
                    .unwrap();
                let text = fixture("ses-bounce-permanent.json")
                    .to_string()
                    .replace("MESSAGE_ID", &s(&record, "message_id"))
                    .replace("RECIPIENT", &self.email(who))
                    .replace("MERCHANT", &m)
                    .replace("SEND_REF", &s(&record, "SK"))
                    .replace("EVENT_ID", &format!("ev-bounce-{who}"))
                    .replace("\"AT\"", "\"2026-11-20T10:00:05.000Z\"");
                serde_json::from_str(&text).unwrap()
            }
            Ev::Messages(who) => self.api(
                email_events::ROUTE_MESSAGES,
                &format!("/v1/customers/{who}/messages"),
                &[("customerId", who)],
                None,
            ),
            Ev::TrackPage(order, shipment) => {
                let resp = self
                    .run(
                        &self.app,
                        Function::Shipments,
                        self.api(
                            shipment_update::ROUTE_GET_ORDER,
                            &format!("/v1/orders/{order}"),
                            &[("orderId", order)],
                            None,
                        ),
                    )
                    .await
                    .unwrap();
                let view: Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
                let url = view["shipments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["id"] == shipment)
                    .unwrap()["tracking_page_url"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let token = url.rsplit('/').next().unwrap().to_owned();
                self.env.api_event(
                    shipment_update::ROUTE_TRACK_PAGE,
                    &format!("/v1/track/{token}"),
                    &[("token", &token)],
                    None,
                    None,
                )
            }
        }
    }

    /// The stored items as `PK SK status`, this world's tag and generated ids taken out, sorted.
    async fn state(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .env
            .items()
            .await
            .iter()
            .map(|i| self.normal(&format!("{} {} {}", s(i, "PK"), s(i, "SK"), s(i, "status"))))
            .collect();
        items.sort();
        items
    }

    /// The emails sent in this world, as `recipient kind`, sorted.
    async fn emails(&self) -> Vec<String> {
        let mut sent: Vec<String> = sent_emails_matching(&self.env.endpoint, &self.env.tag)
            .await
            .iter()
            .map(|e| {
                self.normal(&format!(
                    "{} {}",
                    e.destinations.join(","),
                    e.header("X-Aftercare-Kind").unwrap_or_default()
                ))
            })
            .collect();
        sent.sort();
        sent
    }

    /// `text` with this world's tag and every generated id (a ULID, a hash of an address, a
    /// referral code) replaced.
    fn normal(&self, text: &str) -> String {
        let text = text
            .replace(&self.env.tag, "TAG")
            .split(' ')
            .map(|field| {
                let parts: Vec<&str> = field.split('#').collect();
                parts
                    .iter()
                    .enumerate()
                    .map(|(i, part)| {
                        let code = part.len() == 14
                            && part.split('-').count() == 3
                            && part.split('-').all(|p| p.len() == 4);
                        // A statistics counter's shard is picked at random.
                        let shard = i > 0 && parts[i - 1] == "STATS";
                        match (code, shard) {
                            (true, _) => "CODE",
                            (_, true) => "N",
                            _ => part,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("#")
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut out = String::new();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if word.len() == 26 || word.len() == 32 {
                out.push_str("ID");
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in text.chars() {
            if c.is_ascii_alphanumeric() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

/// A delivery's answer: `error` (a handler error: the trigger redelivers), or the HTTP status
/// (`ok` for a non-HTTP trigger).
fn answer(result: &Result<Value, HandlerError>) -> String {
    match result {
        Err(_) => "error".into(),
        Ok(v) => v["statusCode"]
            .as_i64()
            .map_or_else(|| "ok".into(), |s| s.to_string()),
    }
}

/// Whether the trigger delivers again: a handler error, or a 5xx the client retries.
fn retryable(answer: &str) -> bool {
    answer == "error" || answer.starts_with('5')
}

/// What a run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    answer: String,
    state: Vec<String>,
    emails: Vec<String>,
}

/// Entries of `a` not in `b` (as multisets).
fn extra(a: &[String], b: &[String]) -> Vec<String> {
    let mut left = b.to_vec();
    a.iter()
        .filter(|x| match left.iter().position(|y| y == *x) {
            Some(i) => {
                left.remove(i);
                false
            }
            None => true,
        })
        .cloned()
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Conflict { nth: usize, persist: bool },
    ConditionFailed { nth: usize, at: usize },
    Throughput { nth: usize, persist: bool },
    Unprocessed { nth: usize },
}

impl Case {
    fn shape(self) -> Shape {
        match self {
            Case::Conflict { nth, persist } => Shape::Cancel {
                nth,
                reason: Reason::Conflict,
                persist,
            },
            Case::ConditionFailed { nth, at } => Shape::Cancel {
                nth,
                reason: Reason::ConditionFailed(at),
                persist: false,
            },
            Case::Throughput { nth, persist } => Shape::Throughput { nth, persist },
            Case::Unprocessed { nth } => Shape::Unprocessed { nth },
        }
    }
}

/// Runs `scenario` in a fresh world with `case` shaping the delivery under test; answers the
/// world (for inspection), the first answer, and whether the shape struck.
async fn run_case(scenario: &Scenario, case: Option<Case>) -> (World, String, usize) {
    let (w, first, shaped, _) = run_case_from(scenario, case).await;
    (w, first, shaped)
}

/// As [`run_case`], also answering the state before the delivery under test.
async fn run_case_from(
    scenario: &Scenario,
    case: Option<Case>,
) -> (World, String, usize, Vec<String>) {
    let w = World::new().await;
    for st in &scenario.setup {
        let a = answer(&w.deliver(*st).await);
        assert!(
            !retryable(&a) || st.ses_down,
            "{}: setup {st:?} answered {a}",
            scenario.name
        );
    }
    let before = w.state().await;
    w.faults.shape(case.map(Case::shape));
    let first = answer(&w.deliver(scenario.step).await);
    let shaped = w.faults.shaped();
    w.faults.shape(None);
    (w, first, shaped, before)
}

/// The trigger redelivers while the answer is retryable (up to three times, minutes apart).
async fn settle(w: &World, scenario: &Scenario, first: &str) -> String {
    let mut last = first.to_owned();
    for _ in 0..3 {
        if !retryable(&last) {
            break;
        }
        w.clock.advance(jiff::SignedDuration::from_secs(120));
        last = answer(
            &w.deliver(Step {
                at: None,
                ..scenario.step
            })
            .await,
        );
    }
    last
}

/// Every fault case of `scenarios`, checked against each one's clean run.
async fn matrix(scenarios: &[Scenario]) {
    let mut violations = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut cases = 0;
    for scenario in scenarios {
        // The clean run, counting what the delivery under test sends to DynamoDB.
        let probe = World::new().await;
        for st in &scenario.setup {
            let a = answer(&probe.deliver(*st).await);
            assert!(
                !retryable(&a) || st.ses_down,
                "{}: setup {st:?} answered {a}",
                scenario.name
            );
        }
        probe.faults.arm(None);
        let clean_answer = answer(&probe.deliver(scenario.step).await);
        assert!(
            !retryable(&clean_answer),
            "{}: clean run answered {clean_answer}",
            scenario.name
        );
        let transactions = probe.faults.transactions();
        let batch_gets = probe
            .faults
            .seen()
            .iter()
            .filter(|(_, op)| op == "DynamoDB.BatchGetItem")
            .count();
        let index_writes = probe.faults.index_writes();
        let clean = Outcome {
            answer: clean_answer.clone(),
            state: probe.state().await,
            emails: probe.emails().await,
        };
        // A second clean run ends the same (what the comparison relies on).
        let (again, _, _) = run_case(scenario, None).await;
        let again_state = again.state().await;
        if again_state != clean.state {
            violations.push(format!(
                "{}: two clean runs differ: {:?} / {:?}",
                scenario.name,
                extra(&again_state, &clean.state),
                extra(&clean.state, &again_state)
            ));
            continue;
        }
        eprintln!(
            "{}: clean {clean_answer}, {} emails, transactions {transactions:?}, {batch_gets} BatchGetItem, {index_writes} index writes",
            scenario.name,
            clean.emails.len()
        );

        let mut all = Vec::new();
        for (k, tx) in transactions.iter().enumerate() {
            for persist in [false, true] {
                all.push(Case::Conflict {
                    nth: k + 1,
                    persist,
                });
            }
            for at in 0..tx.len() {
                all.push(Case::ConditionFailed { nth: k + 1, at });
            }
        }
        for k in 0..index_writes {
            for persist in [false, true] {
                all.push(Case::Throughput {
                    nth: k + 1,
                    persist,
                });
            }
        }
        for k in 0..batch_gets {
            all.push(Case::Unprocessed { nth: k + 1 });
        }

        for case in all {
            cases += 1;
            let name = match case {
                Case::ConditionFailed { nth, at } => format!(
                    "{}: {case:?} ({})",
                    scenario.name,
                    transactions[nth - 1].get(at).cloned().unwrap_or_default()
                ),
                _ => format!("{}: {case:?}", scenario.name),
            };
            let (w, first, shaped, before) = run_case_from(scenario, Some(case)).await;
            if shaped == 0 {
                violations.push(format!("{name}: the shape never struck"));
                continue;
            }
            let after_first = w.state().await;
            let last = settle(&w, scenario, &first).await;
            let settled = Outcome {
                answer: last.clone(),
                state: w.state().await,
                emails: w.emails().await,
            };
            // The same trigger once more, minutes later (the client's retry, the next sweep).
            w.clock.advance(jiff::SignedDuration::from_secs(900));
            let replay = answer(
                &w.deliver(Step {
                    at: None,
                    ..scenario.step
                })
                .await,
            );
            let replayed = Outcome {
                answer: replay.clone(),
                state: w.state().await,
                emails: w.emails().await,
            };
            let is_clean = |o: &Outcome| o.state == clean.state && o.emails == clean.emails;
            let kind =
                match case {
                    Case::Conflict { persist: false, .. }
                    | Case::Throughput { persist: false, .. } => "retried",
                    Case::Conflict { persist: true, .. }
                    | Case::Throughput { persist: true, .. } => "persistent",
                    Case::ConditionFailed { .. } => "condition",
                    Case::Unprocessed { .. } => "unprocessed",
                };
            // What the faulty delivery (and its redeliveries) wrote that the clean run does not
            // end with, beyond what was stored before it.
            let written = extra(&extra(&after_first, &before), &clean.state);
            let verdict = if first == clean.answer && is_clean(&settled) {
                "the clean outcome"
            } else if retryable(&first) && is_clean(&settled) {
                "redelivered, then the clean outcome"
            } else if first.starts_with('4') && !is_clean(&settled) {
                // A refusal the client does not retry, with the clean run's work undone.
                "refused, the work undone"
            } else if !retryable(&first) && is_clean(&replayed) {
                "answered; the next delivery completes it"
            } else if !retryable(&first)
                && extra(&extra(&replayed.state, &before), &clean.state).is_empty()
                && extra(&replayed.emails, &clean.emails).is_empty()
            {
                "answered on the reason, nothing written"
            } else {
                "wrong"
            };
            eprintln!("  {name}: first {first}, then {last}, replay {replay}: {verdict}");
            *outcomes
                .entry(format!("{kind}: first {first}: {verdict}"))
                .or_default() += 1;
            if !written.is_empty() {
                *outcomes
                    .entry(format!(
                        "{kind}: left by the failed delivery until the redelivery: {written:?}"
                    ))
                    .or_default() += 1;
            }
            let mut wrong = Vec::new();
            let fine = match kind {
                "retried" | "unprocessed" => verdict == "the clean outcome",
                "persistent" => matches!(
                    verdict,
                    "the clean outcome"
                        | "redelivered, then the clean outcome"
                        | "answered; the next delivery completes it"
                ),
                _ => !matches!(verdict, "wrong" | "refused, the work undone"),
            };
            if !fine {
                wrong.push(verdict.to_owned());
            }
            let dup = extra(&replayed.emails, &clean.emails);
            if !dup.is_empty() {
                wrong.push(format!("emails beyond the clean run: {dup:?}"));
            }
            if retryable(&replay) {
                wrong.push(format!("the replay answered {replay}"));
            }
            if !wrong.is_empty() {
                violations.push(format!(
                    "{name}: first {first}, settled {last}, replay {replay}: {}; beyond clean {:?}; missing {:?}",
                    wrong.join("; "),
                    extra(&replayed.state, &clean.state),
                    extra(&clean.state, &replayed.state)
                ));
            }
        }
    }
    eprintln!("{cases} cases: {outcomes:#?}");
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

use Function::*;

const ORDER_R1: Step = step(Orders, Ev::OrderPost("r1", "SO-R1"));
const SHIP_R1: Step = step(Shipments, Ev::ShipmentCreate("SO-R1", "SH-R1"));
const DELIVERED_R1: Step = step(Shipments, Ev::Checkpoint("SH-R1", "2026-11-20T09:50:00Z"));

#[tokio::test]
async fn orders_and_loyalty_under_dynamodb_faults() {
    matrix(&[
        Scenario {
            name: "POST /v1/orders",
            setup: vec![],
            step: ORDER_R1,
        },
        Scenario {
            name: "Order Placed event",
            setup: vec![],
            step: step(Orders, Ev::OrderEvent("r2", "SO-R2")),
        },
        Scenario {
            name: "POST /v1/orders after SES refused (reclaim)",
            setup: vec![Step {
                ses_down: true,
                ..ORDER_R1
            }],
            step: ORDER_R1,
        },
        Scenario {
            name: "loyalty adjustment",
            setup: vec![ORDER_R1],
            step: step(Orders, Ev::LoyaltyAdjust("r1", 500)),
        },
        Scenario {
            name: "loyalty redemption",
            setup: vec![ORDER_R1, step(Orders, Ev::LoyaltyAdjust("r1", 500))],
            step: step(Orders, Ev::LoyaltyRedeem("r1", 100)),
        },
    ])
    .await;
}

#[tokio::test]
async fn shipments_under_dynamodb_faults() {
    matrix(&[
        Scenario {
            name: "POST shipments",
            setup: vec![ORDER_R1],
            step: SHIP_R1,
        },
        Scenario {
            name: "POST checkpoint (delivered)",
            setup: vec![ORDER_R1, SHIP_R1],
            step: DELIVERED_R1,
        },
        Scenario {
            name: "tracking webhook (delivered)",
            setup: vec![ORDER_R1, SHIP_R1],
            step: step(
                Shipments,
                Ev::TrackingWebhook("SH-R1", "2026-11-20T09:55:00Z"),
            ),
        },
        Scenario {
            name: "tracking page",
            setup: vec![ORDER_R1, SHIP_R1, DELIVERED_R1],
            step: step(Shipments, Ev::TrackPage("SO-R1", "SH-R1")),
        },
    ])
    .await;
}

#[tokio::test]
async fn billing_under_dynamodb_faults() {
    const FAILED: Step = step(Billing, Ev::StripeFailed("r6", "in_r6"));
    matrix(&[
        Scenario {
            name: "Stripe invoice.payment_failed",
            setup: vec![],
            step: FAILED,
        },
        Scenario {
            name: "POST billing-events payment_failed",
            setup: vec![],
            step: step(Billing, Ev::BillingFailed("r7")),
        },
        Scenario {
            name: "Stripe invoice.paid after a failure (recovered)",
            setup: vec![FAILED],
            step: step(Billing, Ev::StripePaid("r6", "in_r6")),
        },
        Scenario {
            name: "Stripe invoice.paid (no failure)",
            setup: vec![],
            step: step(Billing, Ev::StripePaid("r6", "in_r6")),
        },
        Scenario {
            name: "dunning sweep",
            setup: vec![FAILED],
            step: step_at(Billing, Ev::Scheduled, "2026-11-23T10:00:00Z"),
        },
    ])
    .await;
}

#[tokio::test]
async fn surveys_renewals_and_ses_events_under_dynamodb_faults() {
    matrix(&[
        Scenario {
            name: "PUT subscription",
            setup: vec![],
            step: step(Renewals, Ev::PutSubscription("r8")),
        },
        Scenario {
            name: "renewal sweep",
            setup: vec![step(Renewals, Ev::PutSubscription("r8"))],
            step: step_at(Renewals, Ev::Scheduled, "2026-12-13T10:00:00Z"),
        },
        Scenario {
            name: "survey sweep",
            setup: vec![ORDER_R1, SHIP_R1, DELIVERED_R1],
            step: step_at(Surveys, Ev::Scheduled, "2026-11-23T10:00:00Z"),
        },
        Scenario {
            name: "survey answer (detractor)",
            setup: vec![ORDER_R1, SHIP_R1, DELIVERED_R1],
            step: step(Surveys, Ev::SurveyAnswer("r1", "SO-R1", 3)),
        },
        Scenario {
            name: "SES bounce event",
            setup: vec![ORDER_R1],
            step: step(EmailEvents, Ev::Bounce("r1", "SO-R1")),
        },
        Scenario {
            name: "message log",
            setup: vec![
                ORDER_R1,
                SHIP_R1,
                DELIVERED_R1,
                step_at(Surveys, Ev::Scheduled, "2026-11-23T10:00:00Z"),
            ],
            step: step(EmailEvents, Ev::Messages("r1")),
        },
    ])
    .await;
}

/// A sweep whose due-index Query a lagging replica answers: the first sweep misses one item
/// written a moment ago (left out of the answer), the second is answered again the items the
/// first settled. Every email goes exactly once: what the first sweep sent is not sent again,
/// and what it missed goes on the next sweep.
async fn a_lagging_due_index(setup: &[Step], sweep: Step) -> (usize, usize, usize) {
    // The clean run: one sweep sends what is due.
    let clean = World::new().await;
    for st in setup {
        assert!(!retryable(&answer(&clean.deliver(*st).await)));
    }
    assert_eq!(answer(&clean.deliver(sweep).await), "ok");
    let due = clean.emails().await;

    let w = World::new().await;
    for st in setup {
        assert!(!retryable(&answer(&w.deliver(*st).await)));
    }
    let before = w.emails().await;
    let swept = extra(&due, &before);
    assert!(
        swept.len() >= 2,
        "the sweep has at least two emails to send: {swept:?}"
    );
    w.faults.shape(Some(Shape::StaleDue {
        ghosts: false,
        hide: 1,
    }));
    assert_eq!(answer(&w.deliver(sweep).await), "ok");
    assert_eq!(w.faults.shaped(), 1, "one due item was left out");
    let first = extra(&w.emails().await, &before);
    assert_eq!(
        first.len(),
        swept.len() - 1,
        "the first sweep sent all but the missed one: {first:?} of {swept:?}"
    );

    // The next sweep, a minute on: the replica still answers what the first sweep settled.
    w.faults.shape(Some(Shape::StaleDue {
        ghosts: true,
        hide: 0,
    }));
    w.clock.advance(jiff::SignedDuration::from_secs(60));
    assert_eq!(answer(&w.deliver(Step { at: None, ..sweep }).await), "ok");
    let ghosts = w.faults.shaped();
    assert!(ghosts >= 1, "settled items were answered again");
    w.faults.shape(None);
    let all = w.emails().await;
    assert_eq!(
        all, due,
        "after the second sweep: each email once, the missed one too"
    );
    // A third sweep, clean: nothing more.
    assert_eq!(answer(&w.deliver(Step { at: None, ..sweep }).await), "ok");
    assert_eq!(w.emails().await, due);
    (swept.len(), 1, ghosts)
}

#[tokio::test]
async fn a_lagging_due_index_sends_nothing_twice_and_the_missed_item_on_the_next_sweep() {
    let mut figures = Vec::new();
    // The survey sweep: two customers' deliveries, three days on.
    let survey = a_lagging_due_index(
        &[
            ORDER_R1,
            SHIP_R1,
            DELIVERED_R1,
            step(Orders, Ev::OrderPost("r2", "SO-R2")),
            step(Shipments, Ev::ShipmentCreate("SO-R2", "SH-R2")),
            step(Shipments, Ev::Checkpoint("SH-R2", "2026-11-20T09:51:00Z")),
        ],
        step_at(Surveys, Ev::Scheduled, "2026-11-23T10:00:00Z"),
    )
    .await;
    figures.push(("survey sweep", survey));
    // The dunning sweep: two failed payments, three days on.
    let dunning = a_lagging_due_index(
        &[
            step(Billing, Ev::StripeFailed("r6", "in_r6")),
            step(Billing, Ev::StripeFailed("r7", "in_r7")),
        ],
        step_at(Billing, Ev::Scheduled, "2026-11-23T10:00:00Z"),
    )
    .await;
    figures.push(("dunning sweep", dunning));
    for (name, (emails, missed, ghosts)) in figures {
        eprintln!(
            "{name}: {emails} emails due, {missed} missed by the first sweep and sent by the next, {ghosts} settled items answered again and not resent"
        );
    }
}
