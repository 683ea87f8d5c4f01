//! The port of failed invoices and their dunning: each billing event recorded with its marker (a
//! redelivery is a duplicate) and, where it owes the customer an email, that email's claim, in
//! one all-or-nothing write; the sweep's conditional moves of a due invoice; what the emails need
//! of the customer; and a refund's reversal on the loyalty ledger.

use super::{DueToken, StoreError};
use crate::domain::billing::{
    DunningStep, EventKey, FailureOutcome, InvoiceRecord, PaymentOutcome, Reversal, StepClaim,
};
use crate::domain::loyalty::{LedgerEntry, LoyaltyState};
use crate::domain::order::OrderRecord;
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::{CustomerId, MerchantId, OrderId};
use jiff::Timestamp;
use std::future::Future;

/// A new email claim written together with the state change that owes it.
#[derive(Debug, Clone, Copy)]
pub struct ClaimWrite<'a> {
    pub id: &'a SendIdentity,
    pub record: &'a SendRecord,
    /// The record's TTL (epoch seconds).
    pub expires_at: i64,
}

/// Invoices in dunning, processed billing events and refund reversals.
pub trait BillingBook: crate::ports::ContactLookup {
    /// The content hash of the event `event_id` of `provider`, if it was processed.
    fn event_hash(
        &self,
        m: &MerchantId,
        provider: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Writes only the event's marker (an event that changes nothing else); false if it existed.
    fn mark_event(
        &self,
        m: &MerchantId,
        ev: &EventKey<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A payment failed: `record` is the invoice entering dunning (first email counted as sent),
    /// due again at `next_due`; written with the event's marker and the first email's `claim`
    /// (guarded by the suppression check) only if the invoice is new.
    fn record_payment_failed(
        &self,
        record: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        next_due: Option<Timestamp>,
        now: Timestamp,
    ) -> impl Future<Output = Result<FailureOutcome, StoreError>> + Send;

    /// A payment succeeded: an invoice in dunning (or exhausted) becomes paid and recovered,
    /// leaves the due index and the "all set" email's `claim` is taken, in one write; otherwise
    /// the paid invoice is recorded so a late failure changes nothing.
    fn record_payment_succeeded(
        &self,
        paid: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<PaymentOutcome, StoreError>> + Send;

    /// Takes `step` of the invoice of `due`: advances it (if it is still failed and where the
    /// sweep saw it) to `next` (or out of the index) and creates the step's email `claim`, in one
    /// write.
    fn claim_dunning_step(
        &self,
        due: &DueToken,
        step: &DunningStep,
        next: Option<Timestamp>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<StepClaim, StoreError>> + Send;

    /// Moves the invoice of `due` to `until` (waiting), or out of the index (as `exhausted` with
    /// step `exhausted_step` handled, if given); only if it is still failed and where the sweep
    /// saw it. False if it moved.
    fn move_invoice_due(
        &self,
        due: &DueToken,
        until: Option<Timestamp>,
        exhausted_step: Option<u32>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Invoices whose first failure lies in `[from, to)`.
    fn invoices_failed_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<InvoiceRecord>, StoreError>> + Send;

    /// The return of order `o` being refunded with `amount` (resolution refund, not rejected,
    /// that refund's amount), if any: a shop's or Stripe's refund of it shares the return's
    /// "refund issued" email. One GetItem of the order's return tally, one BatchGetItem of its
    /// returns (none when the order has no return).
    fn refunded_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
        amount: i64,
    ) -> impl Future<Output = Result<Option<crate::domain::ids::ReturnId>, StoreError>> + Send;

    /// Notes on the order's return tally a refund reported when no return of the order was
    /// resolved as a refund of its amount, so that the return it pays adopts it when resolved.
    /// Once per refund, and only for an order that is held (nothing is written otherwise).
    fn note_refund(
        &self,
        m: &MerchantId,
        o: &OrderId,
        refund: &crate::domain::returns::ReportedRefund,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The order a refund names (what it earned, who referred it).
    fn refunded_order(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> impl Future<Output = Result<Option<OrderRecord>, StoreError>> + Send;

    /// Reads customer `c`'s ledger, lets `decide` choose the reversal to post on what it read and
    /// posts it conditioned on the ledger not having changed since (with the marker of `event`,
    /// if given, in the same write); after a lost race it reads and decides again.
    fn post_reversal(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        event: Option<&EventKey<'_>>,
        now: Timestamp,
        decide: impl FnMut(&LoyaltyState) -> Option<LedgerEntry> + Send,
    ) -> impl Future<Output = Result<Reversal, StoreError>> + Send;
}
