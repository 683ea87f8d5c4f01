//! The port of the post-delivery follow-ups: what a sweep reads for a due follow-up, and the
//! conditional moves that decide it. Every move is conditioned on the follow-up still sitting
//! where the sweep found it (its [`DueToken`]), so two overlapping sweeps cannot both act on it.

use super::catalogue::Catalogue;
use super::{DueToken, StoreError};
use crate::domain::catalogue::Sku;
use crate::domain::followup::{DecisionEntry, FollowUpStatus};
use crate::domain::followup_sweep::{ContactGuard, FollowUpClaim, FollowUpContext};
use crate::domain::loyalty::LoyaltyState;
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::{CustomerId, EmailAddress, MerchantId, OrderId};
use jiff::Timestamp;
use std::future::Future;

/// Follow-ups, the customer's contact state they are decided on, the catalogue their usage tips
/// and recommendations come from, and the loyalty ledger their "points now available" note is
/// read from.
pub trait FollowUpBook: crate::ports::ContactLookup + Catalogue {
    /// The order, the customer's contact state, whether the recipient is suppressed (`recipient`,
    /// else the order's address), the follow-up's send record `send` and the stored products among
    /// `products` (at most [`crate::domain::catalogue::MAX_FOLLOW_UP_SKUS`] are read), in one
    /// round trip.
    fn follow_up_context(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        customer: &CustomerId,
        recipient: Option<&EmailAddress>,
        send: &SendIdentity,
        products: &[Sku],
    ) -> impl Future<Output = Result<FollowUpContext, StoreError>> + Send;

    /// Claims a follow-up's send, all or nothing: marks the follow-up `sending` (if it is still
    /// where the sweep saw it), stamps the customer's contact state (if `guard` still allows it and
    /// they are still subscribed) and creates the send claim (if none exists and the recipient is
    /// not suppressed).
    fn claim_follow_up(
        &self,
        due: &DueToken,
        contact: (&MerchantId, &CustomerId),
        guard: ContactGuard,
        claim: (&SendIdentity, &SendRecord),
        send_expires_at: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<FollowUpClaim, StoreError>> + Send;

    /// Moves a follow-up to `until` in the due index, recording `decision`. False if it had moved.
    fn defer_follow_up(
        &self,
        due: &DueToken,
        until: Timestamp,
        decision: &DecisionEntry,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes a follow-up out of the due index for good with `status`, recording `decision` (and
    /// the message id), only if it is still where the sweep saw it. `survey_sent` adds it to the
    /// merchant's sent-surveys index. False if it had moved.
    fn settle_follow_up(
        &self,
        due: &DueToken,
        status: FollowUpStatus,
        decision: &DecisionEntry,
        message_id: Option<&str>,
        survey_sent: Option<(&MerchantId, &OrderId)>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The customer's loyalty ledger (for the points note).
    fn points_ledger(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> impl Future<Output = Result<LoyaltyState, StoreError>> + Send;

    /// Records that the points available by `now` were told of; never moves backwards.
    fn note_available(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
