//! The tracking use-case ([`aftercare::usecases::shipments`]) over the app's store, mailer and
//! renderer, and its answers as the API's JSON.

use super::*;
use aftercare::adapters::mail::SesMailer;
use aftercare::adapters::store::Store;
use aftercare::usecases::shipments::{ComposeShipmentEmail, ShipmentCreated, Tracking};

/// The tracking use-case, its emails rendered by [`shipment_email`].
pub(crate) fn tracking(
    app: &App,
) -> Tracking<'_, Store, Store, SesMailer, impl ComposeShipmentEmail<OutgoingEmail> + '_> {
    Tracking {
        book: &app.store,
        courier: app.courier(),
        retention: app.retention(),
        compose: move |merchant: &Merchant,
                       record: &ShipmentRecord,
                       kind: EmailKind,
                       cp: Option<&Checkpoint>| {
            shipment_email(app, merchant, record, kind, cp)
        },
    }
}

/// Creates a shipment: whether this request created it, and the shipment's view.
pub(crate) async fn create_shipment(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    input: ShipmentInput,
    deadline: Deadline,
) -> Result<(bool, Value), TrackingError> {
    let ShipmentCreated {
        created,
        record,
        history,
        email,
    } = tracking(app)
        .create(merchant, order_id, input, deadline)
        .await?;
    let view = shipment_view(&record, &history, Some(&email), app.links.as_ref());
    Ok((created, view))
}

/// Records a checkpoint: its result as JSON.
pub(crate) async fn checkpoint(
    app: &App,
    merchant: &Merchant,
    shipment_id: &ShipmentId,
    input: CheckpointInput,
    webhook_replay_key: Option<&str>,
    deadline: Deadline,
) -> Result<Value, TrackingError> {
    let result = tracking(app)
        .checkpoint(merchant, shipment_id, input, webhook_replay_key, deadline)
        .await?;
    Ok(serde_json::to_value(result).unwrap_or_default())
}
