//! The port of shipments and their checkpoints: what recording a shipment, a tracking checkpoint
//! and the checks of the due index need of the store ([`crate::usecases::shipments`]).

use crate::domain::followup::{AnchorReason, FollowUp, FollowUpKind};
use crate::domain::ids::ShipmentId;
use crate::domain::loyalty::Rebased;
use crate::domain::order::OrderRecord;
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::shipment::{
    Checkpoint, CheckpointOutcome, CreateOutcome, ShipmentCheck, ShipmentPointer, ShipmentRecord,
    TrackingPointer,
};
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::StoreError;
use jiff::Timestamp;
use std::future::Future;

/// What creating a shipment writes, all or nothing.
pub struct NewShipment<'a> {
    pub record: &'a ShipmentRecord,
    /// The shipment's checks in the due index, and when each is due.
    pub due: &'a [(ShipmentCheck, Timestamp)],
    /// The "shipped" email's claim (guarded by the suppression check); none when the customer
    /// has no address.
    pub claim: Option<(&'a SendIdentity, &'a SendRecord)>,
    pub send_expires_at: i64,
}

/// What a revision of a shipment's expected delivery date writes, all or nothing.
pub struct NewDateRevision<'a> {
    pub merchant_id: &'a MerchantId,
    pub shipment_id: &'a ShipmentId,
    pub order_id: &'a OrderId,
    pub revision: &'a crate::domain::shipment::DateRevision,
    /// When the shipment is late by the new date: its late check moves there.
    pub late_at: Option<Timestamp>,
    /// The "new delivery date" email's claim (guarded by the suppression check); none when the
    /// customer is not told (no earlier date, no address, or the merchant turned it off).
    pub claim: Option<(&'a SendIdentity, &'a SendRecord)>,
    pub send_expires_at: i64,
}

/// What one checkpoint writes.
pub struct NewCheckpoint<'a> {
    pub merchant_id: &'a MerchantId,
    pub shipment_id: &'a ShipmentId,
    pub checkpoint: &'a Checkpoint,
    pub claim: Option<(&'a SendIdentity, &'a SendRecord)>,
    pub send_expires_at: i64,
    /// For a delivery: the order whose shipment pointer gets the delivery time.
    pub delivered_order: Option<&'a OrderId>,
    pub webhook_replay_key: Option<&'a str>,
    pub now: Timestamp,
}

/// Shipments, their checkpoints, the order they belong to and its post-delivery journey.
pub trait ShipmentBook: Send + Sync {
    /// The order, as placed.
    fn order(
        &self,
        m: &MerchantId,
        id: &OrderId,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;

    /// Writes the shipment, the order's pointer to it, its parcels' tracking pointers, its due
    /// checks and the "shipped" email's claim, all or nothing; `AlreadyExists` if a shipment with
    /// this id exists.
    fn create_shipment(
        &self,
        new: &NewShipment<'_>,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// The shipment (consistent read).
    fn shipment(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> impl Future<Output = Result<Option<ShipmentRecord>, StoreError>> + Send;

    /// The shipment's checkpoints, oldest first.
    fn shipment_history(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> impl Future<Output = Result<Vec<Checkpoint>, StoreError>> + Send;

    /// Records a checkpoint: its history (once), the state's monotonic advance, the milestone
    /// email's claim (guarded by the suppression check), the webhook signature's replay marker and
    /// a delivery on the order's pointer.
    fn record_checkpoint(
        &self,
        new: &NewCheckpoint<'_>,
    ) -> impl Future<Output = Result<CheckpointOutcome, StoreError>> + Send;

    /// The shipments a parcel's normalised tracking number points to (normally one).
    fn shipments_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> impl Future<Output = Result<Vec<TrackingPointer>, StoreError>> + Send;

    /// Records a new expected date on the shipment provided its revision is still the one before
    /// (`Stale` otherwise: a concurrent delivery revised it), moves its late check and claims the
    /// email. All or nothing.
    fn revise_expected_date(
        &self,
        new: &NewDateRevision<'_>,
    ) -> impl Future<Output = Result<crate::domain::shipment::RevisionOutcome, StoreError>> + Send;

    /// The order's pointers to its shipments (consistent read).
    fn order_shipments(
        &self,
        m: &MerchantId,
        order: &OrderId,
    ) -> impl Future<Output = Result<Vec<ShipmentPointer>, StoreError>> + Send;

    /// The order's scheduled follow-ups.
    fn order_follow_ups(
        &self,
        m: &MerchantId,
        order: &OrderId,
    ) -> impl Future<Output = Result<Vec<FollowUp>, StoreError>> + Send;

    /// Anchors the order's post-delivery journey once: marks the order and schedules the
    /// follow-ups. False if it was anchored before.
    fn anchor_journey(
        &self,
        order: &OrderRecord,
        anchor: Timestamp,
        reason: AnchorReason,
        follow_ups: &[(FollowUpKind, Timestamp)],
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves a still-pending earn's `available_at` (the return window counted from delivery).
    fn rebase_earn(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        source: &str,
        available_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<Rebased, StoreError>> + Send;
}

/// The tracking page's only write: a shipment's view counter.
pub trait ShipmentViews: Send + Sync {
    /// Adds one to the shipment's tracking-page view count; false when the shipment is not
    /// stored (erased since it was read), which writes nothing.
    fn count_view(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
