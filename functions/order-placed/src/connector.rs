//! What the shop-platform connectors do alike once a platform's delivery is verified and mapped:
//! placing a mapped order, refusing what cannot succeed (answered 200, so the platform does not
//! retry or disable the webhook), taking an order's points back through the billing use-case,
//! cancelling an order's follow-ups.

use crate::App;
use aftercare::domain::catalogue::Sku;
use aftercare::domain::followup::{FollowUpKind, LinesDropped};
use aftercare::domain::order::OrderRecord;
use aftercare::domain::send::{EmailKind, SendIdentity};
use aftercare::domain::{FieldError, Merchant, OrderInput};
use aftercare::http::ApiError;
use aftercare::usecases::followups::{drop_returned_lines, refunded_lines};
use aftercare::usecases::send::{Deadline, SendOutcome};
use serde_json::{Value, json};

pub(crate) use aftercare::http::refused;

/// Places an order mapped from `platform`'s payload as `POST /v1/orders` does: `placed` or
/// `replay` with `extras` (what the platform calls the order; an order with no email address is
/// stored and its `email` is `no_address`), `already_placed` for an order edited after it was
/// placed, `refused` for anything else the mapping or the use-case refuses; an error only when a
/// retry will help.
pub(crate) async fn place_mapped(
    app: &App,
    merchant: &Merchant,
    platform: &str,
    mapped: Result<(OrderInput, Value), FieldError>,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let (input, extras) = match mapped {
        Ok(mapped) => mapped,
        Err(e) => return Ok(refused(e.into())),
    };
    match crate::place(app, merchant, input, deadline).await {
        Ok(placed) => {
            let mut out = json!({
                "result": if placed.created { "placed" } else { "replay" },
                "order_id": placed.record.order.id, "email": placed.outcome.as_str(),
            });
            if let (Some(out), Value::Object(extras)) = (out.as_object_mut(), extras) {
                out.extend(extras);
            }
            Ok(out)
        }
        Err(e) if e.status >= 500 => Err(e),
        // The platform's order was edited after Aftercare placed it (a line added, a discount
        // changed, then `orders/paid` or `order.updated` carries the new totals): the order as
        // placed is kept, its thank-you already went, and nothing is retried.
        Err(e) if e.code == "idempotency_conflict" => {
            tracing::info!(
                platform,
                "an order placed earlier was edited; the placed order is kept"
            );
            Ok(json!({"result": "already_placed", "reason": "edited_after_placing"}))
        }
        Err(e) => Ok(refused(e)),
    }
}

/// Cancels `order`'s follow-ups of `kinds` still scheduled, recording `reason`: the kinds
/// cancelled, for the answer.
pub(crate) async fn cancel_follow_ups(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    kinds: &[FollowUpKind],
    reason: &str,
) -> Result<Value, ApiError> {
    use aftercare::ports::feedback::FeedbackBook as _;
    let cancelled = app
        .store
        .cancel_follow_ups(
            &merchant.id,
            &order.order.id,
            kinds,
            reason,
            app.clock.now(),
        )
        .await?;
    Ok(cancelled
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .into())
}

/// Takes back the points of `amount` of `order` once, under the billing event `event_id` (the
/// billing use-case: a refund in full also takes back a referrer's reward); with `tell`, the
/// customer also gets the "refund issued" email, once per `event_id` (a cancellation tells
/// nothing here: its own email does, where the merchant turned it on).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reverse_points(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    amount: i64,
    raw: &[u8],
    tell: bool,
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::adapters::mail::refunds::refund_email;
    use aftercare::domain::billing::{BillingEvent, EventKey, RefundFacts};
    use aftercare::domain::money::Money;
    use aftercare::usecases::billing::{BillingEvents, DunningEmail, Handled, RefundOutcome};
    let mut customer = order.order.customer.clone();
    if !tell {
        // No address, nothing to tell: the reversal alone.
        customer.email = None;
    }
    let facts = RefundFacts {
        refunded_in_all: None,
        id: event_id.to_owned(),
        customer,
        order_id: Some(order.order.id.clone()),
        amount: Money {
            amount,
            currency: order.order.currency,
        },
    };
    let hash = {
        use sha2::{Digest, Sha256};
        hex::encode(&Sha256::digest(raw)[..16])
    };
    let ev = EventKey {
        provider: source_of(event_id),
        event_id,
        kind: "refund",
        content_hash: &hash,
    };
    let events = BillingEvents {
        book: &app.store,
        courier: app.courier(),
        retention: app.retention(),
    };
    let handled = events
        .process(
            merchant,
            &ev,
            BillingEvent::Refund(facts),
            deadline,
            |merchant, email, send_ref| match email {
                DunningEmail::Refund(notice) => refund_email(
                    &app.renderer,
                    merchant,
                    notice.customer,
                    notice.amount,
                    notice.order,
                    send_ref,
                ),
                _ => None,
            },
        )
        .await?;
    let Handled::Refund { outcome, email } = handled else {
        return Ok(json!({"result": "duplicate"}));
    };
    let mut out = match outcome {
        RefundOutcome::Reversed { points } => {
            json!({"result": "refund_recorded", "points_reversed": -points.abs()})
        }
        RefundOutcome::NothingToReverse => {
            json!({"result": "refund_recorded", "points_reversed": 0})
        }
        RefundOutcome::Duplicate => json!({"result": "duplicate"}),
    };
    if let Some(email) = email {
        out["email"] = email.as_str().into();
    }
    Ok(out)
}

/// The provider an event id of a connector names (`shopify-…`, `woo-…`).
fn source_of(event_id: &str) -> &'static str {
    if event_id.starts_with("woo-") {
        "woocommerce"
    } else {
        "shopify"
    }
}

/// Cancels `order`: its follow-ups still scheduled (`order_cancelled`) and its points in full,
/// once (under the billing event `event_id`).
pub(crate) async fn cancel_order(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let cancelled =
        cancel_follow_ups(app, merchant, order, &FollowUpKind::ALL, "order_cancelled").await?;
    let mut outcome = reverse_points(
        app,
        merchant,
        order,
        event_id,
        order.order.total,
        raw,
        false,
        deadline,
    )
    .await?;
    outcome["result"] = "order_cancelled".into();
    outcome["follow_ups_cancelled"] = cancelled;
    if merchant.settings.orders.cancellation_email {
        let points = outcome["points_reversed"].as_i64().unwrap_or(0);
        let email = tell_cancelled(app, merchant, order, points, deadline).await?;
        outcome["email"] = email.as_str().into();
    }
    Ok(outcome)
}

/// The customer's cancellation email, once per order (its claim dedupes every redelivery and
/// every platform that reports the same cancellation).
async fn tell_cancelled(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    points: i64,
    deadline: Deadline,
) -> Result<SendOutcome, ApiError> {
    let customer = &order.order.customer;
    let Some(to) = &customer.email else {
        return Ok(SendOutcome::Unaddressed);
    };
    let id = SendIdentity::new(
        &merchant.id,
        &customer.id,
        EmailKind::OrderCancelled,
        order.order.id.as_str(),
        0,
    );
    let now = app.clock.now();
    let claim = id.claim(to.as_str(), now, deadline.lease_until(app.clock.as_ref()));
    let outcome = app
        .courier()
        .claim_and_send(
            &id,
            &claim,
            app.send_expiry(merchant, now),
            deadline,
            || crate::cancellation_email(app, merchant, order, points, &id),
        )
        .await?;
    if outcome.wants_redelivery() {
        return Err(ApiError::unavailable(
            "the cancellation email could not be sent now; deliver the webhook again",
        ));
    }
    Ok(outcome)
}

/// A refund of `amount` of `order` a platform reported as `event_id` (`shopify-<refund id>`,
/// `woo-<refund id>`): its share of the points taken back once, the customer told once ("refund
/// issued", the billing use-case), and the lines it gives back (`named` SKUs, else every line
/// when it refunds the whole order) taken out of the order's pending review request and
/// cross-sell (the follow-ups use-case), which never name them then; one left with no line is
/// cancelled (`refunded`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn refund(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    amount: i64,
    named: Option<&[Sku]>,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let mut outcome =
        reverse_points(app, merchant, order, event_id, amount, raw, true, deadline).await?;
    let lines = refunded_lines(&order.order, named, order.order.money(amount));
    let changed = drop_returned_lines(
        &app.store,
        &merchant.id,
        &order.order.id,
        &lines,
        "refunded",
        app.clock.now(),
    )
    .await?;
    let kinds = |what: LinesDropped| -> Vec<&'static str> {
        changed
            .iter()
            .filter(|(_, w)| *w == what)
            .map(|(k, _)| k.as_str())
            .collect()
    };
    let (trimmed, cancelled) = (kinds(LinesDropped::Trimmed), kinds(LinesDropped::Cancelled));
    if !trimmed.is_empty() {
        outcome["follow_ups_trimmed"] = trimmed.into();
    }
    if !cancelled.is_empty() {
        outcome["follow_ups_cancelled"] = cancelled.into();
    }
    Ok(outcome)
}

/// Refunds `order` in full (its points once, under `event_id`, and the customer told once) and
/// cancels its review request and cross-sell, which would ask about what came back.
pub(crate) async fn refund_order(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    let mut outcome = refund(
        app,
        merchant,
        order,
        event_id,
        order.order.total,
        None,
        raw,
        deadline,
    )
    .await?;
    // Also those that kept no lines to drop (scheduled before follow-ups kept them).
    let mut cancelled = outcome["follow_ups_cancelled"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Value::Array(more) = cancel_follow_ups(
        app,
        merchant,
        order,
        &[FollowUpKind::ReviewRequest, FollowUpKind::CrossSell],
        "refunded",
    )
    .await?
    {
        cancelled.extend(more);
    }
    outcome["follow_ups_cancelled"] = cancelled.into();
    Ok(outcome)
}
