//! The ports of customers' answers and choices: survey answers with the follow-ups an answer
//! changes ([`FeedbackBook`]), and the customer's contact state, the unsubscribe and preferences
//! every marketing sender honours ([`ContactBook`]).

use super::StoreError;
use crate::domain::catalogue::Sku;
use crate::domain::followup::{FollowUpKind, LinesDropped};
use crate::domain::marketing::Preferences;
use crate::domain::survey::FeedbackRecord;
use crate::domain::{CustomerId, MerchantId, OrderId};
use jiff::Timestamp;
use std::future::Future;

/// Survey answers, and the order's pending follow-ups an answer cancels or brings forward.
pub trait FeedbackBook: Send + Sync {
    /// The answer given for an order, if any.
    fn feedback(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> impl Future<Output = Result<Option<FeedbackRecord>, StoreError>> + Send;

    /// Stores `record` (indexed by its answer time) only if the answer stored is still the one it
    /// replaces: none when `replaces` is `None`, else the answer counted `replaces` times. False
    /// if another answer got there first.
    fn put_feedback(
        &self,
        record: &FeedbackRecord,
        replaces: Option<u32>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The answers given in `[from, to)`, oldest first (every page read).
    fn feedback_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<Vec<FeedbackRecord>, StoreError>> + Send;

    /// How many surveys were sent in `[from, to)`.
    fn surveys_sent_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Cancels the order's follow-ups of `kinds` still scheduled (not started sending), recording
    /// `reason`. The kinds cancelled by this call.
    fn cancel_follow_ups(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kinds: &[FollowUpKind],
        reason: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<FollowUpKind>, StoreError>> + Send;

    /// Takes `skus` (lines refunded or returned) out of the order's follow-ups of `kinds` still
    /// scheduled: each records them as refunded (its email never names them) and keeps only its
    /// other SKUs; one left with none of its SKUs is cancelled, recording `reason`. Each write is
    /// conditioned on the follow-up being as read (scheduled, in the due index, its SKU lists
    /// unchanged) and read again after a lost race; a follow-up that already dropped them is left
    /// as it is. The kinds changed by this call, with what became of them.
    fn drop_follow_up_skus(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kinds: &[FollowUpKind],
        skus: &[Sku],
        reason: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<(FollowUpKind, LinesDropped)>, StoreError>> + Send;

    /// Brings the order's scheduled follow-up of `kind` forward to `at` if it is due later. True
    /// if it moved.
    fn bring_forward(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kind: FollowUpKind,
        at: Timestamp,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What a customer told a merchant about its marketing mail.
pub trait ContactBook: crate::ports::ContactLookup {
    /// Unsubscribes the customer from marketing-class mail (keeping the time they first did), or
    /// resubscribes them.
    fn set_unsubscribed(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        unsubscribed: bool,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores the customer's preferences (the contact state's send history is left as it is).
    fn set_preferences(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        prefs: &Preferences,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
