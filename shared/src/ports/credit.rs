//! The port of customers' store credit: append-only entries, one per source, and a summary per
//! currency whose version every posting is conditioned on, so a decision is only ever committed
//! on the balance it was made on (no redemption overdraws, however many race).

use super::StoreError;
use crate::domain::credit::{CreditEntry, CreditPosting, CreditRead, CreditStatement};
use crate::domain::{Currency, CustomerId, MerchantId};
use std::future::Future;

/// A merchant's customers' store credit.
pub trait CreditBook: Send + Sync {
    /// Whether the customer has a profile (placed an order).
    fn has_customer(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The summary of the customer's credit in `currency` (version 0 when it has none) and the
    /// entry of `source`, whatever its currency, if there is one: read strongly consistently.
    fn read(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
        source: &str,
    ) -> impl Future<Output = Result<CreditRead, StoreError>> + Send;

    /// Every currency's summary and every entry of the customer (entries oldest first).
    fn statement(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<CreditStatement, StoreError>> + Send;

    /// Posts `entry` if no entry has its source and its currency's summary is still at `read`'s
    /// version, moving the summary on to `read.after(entry)`: both or neither.
    fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &crate::domain::credit::CreditSummary,
        entry: &CreditEntry,
    ) -> impl Future<Output = Result<CreditPosting, StoreError>> + Send;
}
