//! The port of customers' loyalty ledgers: append-only entries, one per source, and a version that
//! every posting is conditioned on, so a decision is only ever committed on the state it was made
//! on (no redemption overdraws, however many race).

use super::StoreError;
use crate::domain::loyalty::{LedgerEntry, LoyaltyState, Posting, Referral, ReferralCodeOwner};
use crate::domain::{CustomerId, MerchantId};
use jiff::Timestamp;
use std::future::Future;

/// A merchant's customers' loyalty ledgers and referral codes.
pub trait LoyaltyLedger: Send + Sync {
    /// The customer's ledger entries (oldest first) and its version, read consistently.
    fn ledger(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<LoyaltyState, StoreError>> + Send;

    /// Whether the customer has a profile (placed an order).
    fn has_customer(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Who owns a (normalised) referral code, if anyone.
    fn referral_code_owner(
        &self,
        m: &MerchantId,
        code: &str,
    ) -> impl Future<Output = Result<Option<ReferralCodeOwner>, StoreError>> + Send;

    /// Posts `entry` on the customer's ledger if no entry has its source and the ledger is still
    /// at `read.version`, caching the balance after it as of `now`; with `referral`'s writes in
    /// the same all-or-nothing transaction. Nothing is written unless everything is.
    fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &LoyaltyState,
        entry: &LedgerEntry,
        now: Timestamp,
        referral: Option<&Referral>,
    ) -> impl Future<Output = Result<Posting, StoreError>> + Send;
}
