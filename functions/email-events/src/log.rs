//! The merchant's view of what happened to a customer's email (Bearer key):
//!
//! * `GET /v1/customers/{customerId}/messages?limit=&cursor=&kind=`: every email, newest first:
//!   sent (and how far it got: delivered, opened, clicked, bounced, complained), skipped with the
//!   reason (suppressed, unsubscribed, opted out, …), deferred (until when and why), cancelled,
//!   scheduled, failed.
//! * `GET /v1/customers/{customerId}/explain?kind=&order=` (or `subject=` for subscriptions and
//!   invoices): the decision trace of one touchpoint: when it was scheduled, each deferral (quiet
//!   hours, frequency cap), each skip (unsubscribed, suppressed, opted out), a cancellation (a
//!   detractor's answer), the claim, the send and every SES event after it.
//!
//! Both read only what the send path keeps (see `aftercare::adapters::store::messages`); another merchant's
//! customer reads as absent.

use aftercare::adapters::mail::EmailKind;
use aftercare::adapters::store::messages::{LoggedSend, Touchpoint};
use aftercare::app::App;
use aftercare::domain::CustomerId;
use aftercare::domain::followup::FollowUp;
use aftercare::domain::followup::{DecisionAction, FollowUpKind, FollowUpStatus};
use aftercare::domain::send::SendStatus;
use aftercare::http::{self, ApiError};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::Timestamp;
use serde_json::{Value, json};

pub const ROUTE_MESSAGES: &str = "GET /v1/customers/{customerId}/messages";
pub const ROUTE_EXPLAIN: &str = "GET /v1/customers/{customerId}/explain";

/// Most lines a page of the message log holds.
const MAX_PAGE: usize = 200;

/// How far SES got with a sent email, as the log names it.
fn delivery_name(state: &str) -> &'static str {
    match state {
        "delivery" => "delivered",
        "open" => "opened",
        "click" => "clicked",
        "hard_bounce" | "soft_bounce" => "bounced",
        "complaint" => "complained",
        "reject" => "rejected",
        "delivery_delay" => "delayed",
        "rendering_failure" => "rendering_failed",
        _ => "sent",
    }
}

/// The headline state of a send record and, when it did not go, why.
fn send_state(s: &LoggedSend) -> (&'static str, Option<String>) {
    match s.status {
        SendStatus::Sent => (
            s.delivery_state.as_deref().map_or("sent", delivery_name),
            None,
        ),
        SendStatus::Suppressed => ("skipped", Some("suppressed".into())),
        SendStatus::Failed => ("failed", s.last_error.clone()),
        SendStatus::Ambiguous => ("unknown", s.last_error.clone()),
        SendStatus::Unsent => ("unsent", s.last_error.clone()),
        SendStatus::InProgress | SendStatus::Retry => ("sending", s.last_error.clone()),
    }
}

/// The headline state of a follow-up that has no send record.
fn follow_up_state(f: &FollowUp) -> (&'static str, Option<String>, Option<Timestamp>) {
    let last = f.decisions.last();
    let reason = last.and_then(|d| d.reason.clone()).or(f.outcome.clone());
    match f.status {
        FollowUpStatus::Skipped => ("skipped", reason, None),
        FollowUpStatus::Cancelled => ("cancelled", reason, None),
        FollowUpStatus::Scheduled if last.is_some_and(|d| d.action == DecisionAction::Deferred) => {
            ("deferred", reason, Some(f.due_at))
        }
        FollowUpStatus::Scheduled => ("scheduled", None, Some(f.due_at)),
        FollowUpStatus::Failed => ("failed", reason, None),
        FollowUpStatus::Sending | FollowUpStatus::Sent | FollowUpStatus::Ambiguous => {
            ("sending", reason, None)
        }
    }
}

fn events_view(s: &LoggedSend) -> Vec<Value> {
    s.events
        .iter()
        .map(|e| json!({"type": e.kind, "at": e.at, "detail": e.detail}))
        .collect()
}

/// One line of the log, with the instant it sorts by.
struct Line {
    at: Timestamp,
    id: String,
    view: Value,
}

fn send_line(s: &LoggedSend) -> Line {
    let (state, reason) = send_state(s);
    let at = s.sent_at.unwrap_or(s.created_at);
    Line {
        at,
        id: format!("send:{}:{}:{}", s.kind, s.subject, s.step),
        view: json!({
            "kind": s.kind, "subject": s.subject, "step": s.step, "state": state, "reason": reason,
            "at": at, "sent_at": s.sent_at, "message_id": s.message_id, "events": events_view(s),
            "resolution": s.resolution.map(|r| r.as_str()),
        }),
    }
}

fn follow_up_line(f: &FollowUp) -> Line {
    let (state, reason, until) = follow_up_state(f);
    // Still to come: when it is due; settled: when it was decided.
    let at = until.unwrap_or_else(|| f.decisions.last().map_or(f.anchor, |d| d.at));
    let kind = EmailKind::from(f.kind).as_str();
    Line {
        at,
        id: format!("follow_up:{}:{}", kind, f.order_id),
        view: json!({
            "kind": kind, "subject": f.order_id, "step": 0, "state": state, "reason": reason,
            "at": at, "due_at": until, "events": [],
        }),
    }
}

fn customer_param(req: &ApiGatewayV2httpRequest) -> Result<CustomerId, ApiError> {
    let raw = req
        .path_parameters
        .get("customerId")
        .map(|c| http::percent_decode(c))
        .unwrap_or_default();
    Ok(CustomerId::parse("customerId", &raw)?)
}

fn kind_param(req: &ApiGatewayV2httpRequest, required: bool) -> Result<Option<String>, ApiError> {
    match http::query_param(req, "kind") {
        None if required => {
            Err(ApiError::new(400, "required", "kind is required (an email kind)").field("kind"))
        }
        None => Ok(None),
        Some(k) => match EmailKind::parse(k) {
            Some(kind) => Ok(Some(kind.as_str().to_owned())),
            None => Err(ApiError::new(
                400,
                "invalid_value",
                format!(
                    "not an email kind; one of {}",
                    EmailKind::ALL
                        .iter()
                        .map(EmailKind::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .field("kind")),
        },
    }
}

/// `GET /v1/customers/{customerId}/messages`.
pub async fn messages(
    app: &App,
    merchant: &aftercare::domain::Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let customer = customer_param(req)?;
    let kind = kind_param(req, false)?;
    let page = http::paging::Page::of(req, "log", MAX_PAGE)?;
    let log = app
        .store
        .customer_log(&merchant.id, &customer, app.clock.now())
        .await?;
    let mut lines: Vec<Line> = log
        .sends
        .iter()
        // Alerts to the merchant's own people are keyed by the customer they are about.
        .filter(|s| EmailKind::parse(&s.kind).is_none_or(|k| !k.is_internal()))
        .map(send_line)
        .collect();
    // Follow-ups that reached a send are told by their send record.
    let sent: std::collections::HashSet<(String, String)> = log
        .sends
        .iter()
        .map(|s| (s.kind.clone(), s.subject.clone()))
        .collect();
    lines.extend(
        log.follow_ups
            .iter()
            .filter(|f| {
                !sent.contains(&(
                    EmailKind::from(f.kind).as_str().to_owned(),
                    f.order_id.to_string(),
                ))
            })
            .map(follow_up_line),
    );
    if let Some(k) = &kind {
        lines.retain(|l| l.view["kind"] == k.as_str());
    }
    if lines.is_empty() && page.start == 0 && kind.is_none() {
        let profile = app
            .store
            .get_customer_profile(&merchant.id, &customer)
            .await?;
        if profile.is_none() {
            return Err(ApiError::not_found("the customer"));
        }
    }
    lines.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    let total = lines.len();
    let shown: Vec<Value> = lines
        .into_iter()
        .skip(page.start)
        .take(page.limit)
        .map(|l| l.view)
        .collect();
    let next_cursor = page.next_cursor(shown.len(), total);
    Ok((
        200,
        json!({"customer_id": customer, "messages": shown, "next_cursor": next_cursor}),
    ))
}

/// `GET /v1/customers/{customerId}/explain`.
pub async fn explain(
    app: &App,
    merchant: &aftercare::domain::Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let customer = customer_param(req)?;
    let kind = kind_param(req, true)?.unwrap_or_default();
    let (field, subject) = match (
        http::query_param(req, "order"),
        http::query_param(req, "subject"),
    ) {
        (Some(o), _) => ("order", o),
        (None, Some(s)) => ("subject", s),
        (None, None) => {
            return Err(ApiError::new(
                400,
                "required",
                "order (or subject, for subscriptions and invoices) is required",
            )
            .field("order"));
        }
    };
    aftercare::domain::OrderId::parse(field, subject)?;
    let touchpoint = app
        .store
        .touchpoint(&merchant.id, &customer, &kind, subject, app.clock.now())
        .await?;
    if touchpoint.follow_up.is_none() && touchpoint.sends.is_empty() {
        return Err(ApiError::not_found("this touchpoint"));
    }
    Ok((200, trace(&customer, &kind, subject, &touchpoint)))
}

/// The decision trace of one touchpoint, oldest step first.
fn trace(customer: &CustomerId, kind: &str, subject: &str, t: &Touchpoint) -> Value {
    let mut steps: Vec<(Timestamp, Value)> = Vec::new();
    if let Some(f) = &t.follow_up {
        steps.push((
            f.anchor,
            json!({"step": "scheduled", "at": f.anchor, "reason": f.anchor_reason}),
        ));
        // Once a send record exists it tells the send and its outcome.
        let told_by_send = |action: &DecisionAction| {
            !t.sends.is_empty()
                && matches!(
                    action,
                    DecisionAction::Sent | DecisionAction::Failed | DecisionAction::Ambiguous
                )
        };
        for d in f.decisions.iter().filter(|d| !told_by_send(&d.action)) {
            steps.push((
                d.at,
                json!({"step": d.action, "at": d.at, "reason": d.reason, "until": d.until}),
            ));
        }
    }
    for s in &t.sends {
        // A suppressed record was never a claim on a send: the guard turned it down.
        if s.status != SendStatus::Suppressed {
            steps.push((
                s.created_at,
                json!({"step": "claimed", "at": s.created_at, "send_step": s.step}),
            ));
        }
        // A parked send decided after SES's silence: parked, then resent or closed (told
        // before the send's own outcome, which comes after at the same instant).
        if let (Some(resolution), Some(at)) = (s.resolution, s.resolved_at) {
            let parked = s.created_at.min(at);
            steps.push((
                parked,
                json!({"step": "ambiguous", "at": parked, "send_step": s.step,
                       "reason": "SES's answer was unknown; parked for its event"}),
            ));
            steps.push((
                at,
                json!({"step": resolution.as_str(), "at": at, "send_step": s.step,
                       "reason": "no SES event within the silence window"}),
            ));
            if s.status == SendStatus::Ambiguous {
                // The one resend's own outcome is unknown too: final.
                steps.push((
                    at,
                    json!({"step": "ambiguous", "at": at, "send_step": s.step, "reason": s.last_error}),
                ));
            }
        }
        match s.status {
            SendStatus::Sent => {
                let at = s.sent_at.unwrap_or(s.created_at);
                steps.push((
                    at,
                    json!({"step": "sent", "at": at, "send_step": s.step, "message_id": s.message_id}),
                ));
            }
            SendStatus::Suppressed => steps.push((
                s.created_at,
                json!({"step": "skipped", "at": s.created_at, "send_step": s.step, "reason": "suppressed"}),
            )),
            // A decided parked send is told by its resolution's steps above.
            SendStatus::Ambiguous | SendStatus::Unsent if s.resolution.is_some() => {}
            SendStatus::Failed | SendStatus::Ambiguous | SendStatus::Unsent => steps.push((
                s.created_at,
                json!({"step": s.status.as_str(), "at": s.created_at, "send_step": s.step, "reason": s.last_error}),
            )),
            SendStatus::InProgress | SendStatus::Retry => {}
        }
        for e in &s.events {
            steps.push((
                e.at,
                json!({"step": "event", "at": e.at, "send_step": s.step, "event": e.kind, "detail": e.detail}),
            ));
        }
    }
    // Stable: a decision and the send it led to keep their order at the same instant.
    steps.sort_by_key(|(at, _)| *at);
    let (result, reason, due_at) = match (t.sends.last(), &t.follow_up) {
        (Some(s), _) => {
            let (state, reason) = send_state(s);
            (state, reason, None)
        }
        (None, Some(f)) => follow_up_state(f),
        (None, None) => ("unknown", None, None),
    };
    let last_sent = t.sends.iter().rev().find(|s| s.status == SendStatus::Sent);
    json!({
        "customer_id": customer, "kind": kind, "subject": subject,
        "journey": t.follow_up.as_ref().map(|f| FollowUpKind::as_str(&f.kind)),
        "result": result, "reason": reason, "due_at": due_at,
        "sent_at": last_sent.and_then(|s| s.sent_at),
        "message_id": last_sent.and_then(|s| s.message_id.clone()),
        "trace": steps.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })
}
