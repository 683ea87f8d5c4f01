//! What the shop-platform connectors do alike once a platform's delivery is verified and mapped:
//! taking an order's points back through the billing use-case and cancelling an order.

use crate::App;
use aftercare::domain::Merchant;
use aftercare::domain::order::OrderRecord;
use aftercare::http::ApiError;
use aftercare::usecases::send::Deadline;
use serde_json::{Value, json};

/// Takes back the points of `amount` of `order` once, under the billing event `event_id` (the
/// billing use-case: a refund in full also takes back a referrer's reward).
pub(crate) async fn reverse_points(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    amount: i64,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::domain::billing::{BillingEvent, EventKey, RefundFacts};
    use aftercare::domain::money::Money;
    use aftercare::usecases::billing::{BillingEvents, Handled, RefundOutcome};
    let facts = RefundFacts {
        id: event_id.to_owned(),
        customer: order.order.customer.clone(),
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
            |_, _, _| None,
        )
        .await?;
    Ok(match handled {
        Handled::Refund(RefundOutcome::Reversed { points }) => {
            json!({"result": "refund_recorded", "points_reversed": -points.abs()})
        }
        Handled::Refund(RefundOutcome::NothingToReverse) => {
            json!({"result": "refund_recorded", "points_reversed": 0})
        }
        _ => json!({"result": "duplicate"}),
    })
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
    use aftercare::domain::followup::FollowUpKind;
    use aftercare::ports::feedback::FeedbackBook as _;
    let cancelled = app
        .store
        .cancel_follow_ups(
            &merchant.id,
            &order.order.id,
            &FollowUpKind::ALL,
            "order_cancelled",
            app.clock.now(),
        )
        .await?;
    let mut outcome = reverse_points(
        app,
        merchant,
        order,
        event_id,
        order.order.total,
        raw,
        deadline,
    )
    .await?;
    outcome["result"] = "order_cancelled".into();
    outcome["follow_ups_cancelled"] = cancelled
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .into();
    Ok(outcome)
}

/// Refunds `order` in full: its points (once, under `event_id`) and its review request and
/// cross-sell, which would ask about what came back.
pub(crate) async fn refund_order(
    app: &App,
    merchant: &Merchant,
    order: &OrderRecord,
    event_id: &str,
    raw: &[u8],
    deadline: Deadline,
) -> Result<Value, ApiError> {
    use aftercare::domain::followup::FollowUpKind;
    use aftercare::ports::feedback::FeedbackBook as _;
    let mut outcome = reverse_points(
        app,
        merchant,
        order,
        event_id,
        order.order.total,
        raw,
        deadline,
    )
    .await?;
    let cancelled = app
        .store
        .cancel_follow_ups(
            &merchant.id,
            &order.order.id,
            &[FollowUpKind::ReviewRequest, FollowUpKind::CrossSell],
            "refunded",
            app.clock.now(),
        )
        .await?;
    outcome["follow_ups_cancelled"] = cancelled
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .into();
    Ok(outcome)
}
