//! The port of privacy requests: what Aftercare holds about one data subject, read page by page
//! for an export and erased in resumable steps, and the request records that audit both.

use super::{DueToken, StoreError};
use crate::domain::privacy::{ExportCursor, PrivacyRequest, Tally};
use crate::domain::{CustomerId, EmailAddress, MerchantId};
use jiff::Timestamp;
use std::future::Future;
use std::time::Instant;

/// One item of an export: its kind (the item's type, e.g. `order`, `checkpoint`, `send`) and its
/// attributes as stored, without the table's own keys and index attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedItem {
    pub kind: String,
    pub data: serde_json::Value,
}

/// One page of an export, and where the next one starts (none: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    pub items: Vec<ExportedItem>,
    pub next: Option<ExportCursor>,
}

/// What one erasure step did, and whether the subject is now fully erased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    pub tally: Tally,
    pub complete: bool,
}

pub trait PrivacyBook: Send + Sync {
    /// The customers who used `email` (none if nobody did).
    fn customers_at(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Vec<CustomerId>, StoreError>> + Send;

    /// The page of `customers`' data (then, when there are no customers, of `address`'s own
    /// items) that starts at `cursor`, of about `max_bytes` of JSON.
    fn export_page(
        &self,
        m: &MerchantId,
        customers: &[CustomerId],
        address: Option<&EmailAddress>,
        cursor: &ExportCursor,
        max_bytes: usize,
    ) -> impl Future<Output = Result<ExportPage, StoreError>> + Send;

    /// Erases what is held about customer `c`, step by step until `until`: every item of theirs
    /// deleted, except what must stay in a form that cannot be read back (an order id's
    /// tombstone, an address's suppression under its digest). Idempotent; call again until
    /// `complete`.
    fn erase_customer(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        until: Instant,
        now: Timestamp,
    ) -> impl Future<Output = Result<Erased, StoreError>> + Send;

    /// Erases what is held about an address beyond its customers: its bounce streak, its
    /// referral record and its customer notes (its suppression stays, under the digest).
    fn erase_address(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> impl Future<Output = Result<Tally, StoreError>> + Send;

    fn request(
        &self,
        m: &MerchantId,
        id: &str,
    ) -> impl Future<Output = Result<Option<PrivacyRequest>, StoreError>> + Send;

    /// Stores `request` (a new export's record, or an erasure starting or starting again) unless
    /// an erasure with its id is running: the request as stored either way. A running erasure is
    /// in the due index at `resume_at`, so a sweep carries it on if its invocation ends first.
    fn begin(
        &self,
        request: &PrivacyRequest,
        resume_at: Option<Timestamp>,
    ) -> impl Future<Output = Result<PrivacyRequest, StoreError>> + Send;

    /// Adds one step's counts to the request and moves its resumption to `resume_at`.
    fn progress(
        &self,
        m: &MerchantId,
        id: &str,
        tally: &Tally,
        resume_at: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks a running erasure complete, forgets its subject and takes it out of the due index.
    fn complete(
        &self,
        m: &MerchantId,
        id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<PrivacyRequest, StoreError>> + Send;

    /// Moves a customer's retention entry (where the sweep saw it) to `at`; false if it moved.
    fn defer_retention(
        &self,
        due: &DueToken,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether a subscription of `c` is still running (not cancelled or lapsed).
    fn has_running_subscription(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether this sweep takes the retention sweep's turn: true at most once per `every`, over
    /// every concurrent sweep of the deployment (retention is measured in days; the due index need
    /// not be read every few minutes for it).
    fn retention_turn(
        &self,
        now: Timestamp,
        every: std::time::Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
