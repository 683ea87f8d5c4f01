//! The port of returns: what asking for, moving and listing returns need of the store
//! ([`crate::usecases::returns`]).

use crate::domain::catalogue::Product;
use crate::domain::ids::ReturnId;
use crate::domain::order::OrderRecord;
use crate::domain::returns::{ReturnRecord, ReturnTally};
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::shipment::ShipmentPointer;
use crate::domain::{MerchantId, OrderId};
use crate::ports::StoreError;
use jiff::Timestamp;
use std::future::Future;

/// An order as a return sees it: the order, its shipments' deliveries and what already came back.
#[derive(Debug, Clone)]
pub struct OrderForReturn {
    pub order: OrderRecord,
    pub shipments: Vec<ShipmentPointer>,
    pub tally: ReturnTally,
}

impl OrderForReturn {
    /// When the whole order was delivered: its last shipment's delivery, once every shipment has
    /// one (none while any is on its way, or when it never shipped).
    pub fn delivered_at(&self) -> Option<Timestamp> {
        if self.shipments.is_empty() {
            return None;
        }
        self.shipments
            .iter()
            .map(|s| s.delivered_at)
            .collect::<Option<Vec<_>>>()
            .and_then(|all| all.into_iter().max())
    }
}

/// A write of a return: the record (new, or its move from version `before`), the order's tally
/// when it changes (from version `tally.version - 1`), the reminder's place in the due index and
/// the email's claim (guarded by the suppression check). All or nothing.
pub struct ReturnWrite<'a> {
    pub record: &'a ReturnRecord,
    /// The version the record had when read; none for a new return.
    pub before: Option<u32>,
    pub tally: Option<&'a ReturnTally>,
    /// When the "send your parcel" reminder is due (the record is then in the due index).
    pub reminder_at: Option<Timestamp>,
    pub claim: Option<(&'a SendIdentity, &'a SendRecord)>,
    pub send_expires_at: i64,
    /// The return parcel's normalised tracking number, when it is recorded now: its pointer is
    /// written with the return, so the tracking providers' updates find it.
    pub parcel_pointer: Option<&'a str>,
}

/// A return parcel's pointer: the return a tracking number belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReturnParcelPointer {
    pub return_id: ReturnId,
    pub order_id: OrderId,
}

/// How a return write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Everything was written; `suppressed` when the email's recipient is suppressed.
    Done { suppressed: bool },
    /// A new return's id is taken: a re-submission (or a concurrent one) got there first.
    Exists,
    /// The record or the order's tally changed since it was read: read again and decide again.
    Moved,
}

/// Returns, the order they come from and their listing.
pub trait ReturnBook: Send + Sync {
    /// The order, its shipment pointers and its return tally (one Query of the order's
    /// partition); none for an unknown order.
    fn order_for_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> impl Future<Output = Result<Option<OrderForReturn>, StoreError>> + Send;

    /// The order's return tally (consistent read); none when the order has had no return.
    fn return_tally(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> impl Future<Output = Result<Option<ReturnTally>, StoreError>> + Send;

    /// A return (consistent read).
    fn return_record(
        &self,
        m: &MerchantId,
        r: &ReturnId,
    ) -> impl Future<Output = Result<Option<ReturnRecord>, StoreError>> + Send;

    /// The returns of `ids` (one BatchGetItem per 100), in no particular order.
    fn returns_of(
        &self,
        m: &MerchantId,
        ids: &[ReturnId],
    ) -> impl Future<Output = Result<Vec<ReturnRecord>, StoreError>> + Send;

    /// Writes a return (see [`ReturnWrite`]).
    fn write_return(
        &self,
        w: &ReturnWrite<'_>,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// The merchant's returns created in `[from, to)`, oldest first (a Query per listing shard).
    fn returns_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<ReturnRecord>, StoreError>> + Send;

    /// The returns whose parcel has the normalised tracking `number` (normally one).
    fn returns_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> impl Future<Output = Result<Vec<ReturnParcelPointer>, StoreError>> + Send;

    /// The catalogue's products of `skus` (categories, exchange variants); unknown ones left out.
    fn products_of(
        &self,
        m: &MerchantId,
        skus: &[String],
    ) -> impl Future<Output = Result<Vec<Product>, StoreError>> + Send;
}
