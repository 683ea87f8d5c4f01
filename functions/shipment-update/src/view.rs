//! The JSON views of shipments and orders the API answers with.

use super::*;
use aftercare::usecases::shipments::OrderTracking;

/// A shipment's view, with its tracking page's signed link when `links` signs them.
pub(crate) fn shipment_view(
    record: &ShipmentRecord,
    history: &[Checkpoint],
    email: Option<&SendOutcome>,
    links: Option<&Links>,
) -> Value {
    let state = record.state();
    let mut v = json!({
        "id": record.shipment.id,
        "order_id": record.shipment.order_id,
        "carrier": record.shipment.carrier,
        "tracking_number": record.shipment.tracking_number,
        "tracking_url": record.shipment.tracking_url,
        "additional_tracking": record.shipment.additional_tracking,
        "items": record.shipment.items,
        "promised_date": record.shipment.promised_date,
        "shipped_at": record.shipment.shipped_at,
        "status": state.status(),
        "delivered_at": state.delivered_at(),
        "history": history,
        "tracking_page_url": links.map(|l| l.tracking_page(record)),
    });
    if let Some(e) = email {
        v["email"] = json!({"kind": EmailKind::ShipmentShipped.as_str(), "status": e.as_str()});
    }
    v
}

/// `GET /v1/orders/{orderId}`: the order with its shipments and their histories.
pub(crate) async fn order_view(
    app: &App,
    merchant: &MerchantId,
    order_id: &OrderId,
) -> Result<Value, TrackingError> {
    let OrderTracking {
        order,
        shipments,
        follow_ups,
    } = tracking(app).order(merchant, order_id).await?;
    let shipments: Vec<Value> = shipments
        .iter()
        .map(|(record, history)| shipment_view(record, history, None, app.links.as_ref()))
        .collect();
    let delivered =
        !shipments.is_empty() && shipments.iter().all(|s| s["delivered_at"].is_string());
    Ok(json!({
        "order": order.order,
        "received_at": order.received_at,
        "loyalty": {"points_earned": order.points_earned},
        "status": if delivered { "delivered" } else if shipments.is_empty() { "placed" } else { "shipped" },
        "shipments": shipments,
        "follow_ups": follow_ups.iter().map(|f| json!({
            "kind": f.kind.as_str(), "due_at": f.due_at, "status": f.status, "anchor_reason": f.anchor_reason,
        })).collect::<Vec<_>>(),
    }))
}
