//! What the sweep of a due follow-up works with: what it reads for it, what claiming its send
//! found, the conditions the claim re-checks, and the "points now available" note its email may
//! carry. (Apart from [`super::followup`], which the marketing rules, orders and sends build on.)

use super::Merchant;
use super::catalogue::{Product, Sku};
use super::loyalty::{LoyaltyState, balance, newly_available, tier_status};
use super::marketing::ContactState;
use super::order::OrderRecord;
use super::send::SendRecord;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a due follow-up needs, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct FollowUpContext {
    pub order: Option<OrderRecord>,
    pub contact: ContactState,
    pub suppressed: bool,
    /// The send record of this follow-up, if an earlier attempt claimed it.
    pub send: Option<SendRecord>,
    /// The products asked for with it (those that exist), by SKU.
    pub products: BTreeMap<Sku, Product>,
    /// Whether a return of the order is under way (its return tally lists one open).
    pub return_open: bool,
}

/// What claiming a follow-up's send found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpClaim {
    /// We hold the send's claim; the contact state is stamped.
    Claimed,
    /// A send record exists already (an earlier attempt): carry on from it.
    ClaimExists,
    /// Another sweep moved the follow-up (sent, deferred, skipped or cancelled it).
    Moved,
    /// The contact state changed since it was read (cap, throttle or unsubscribe): decide again.
    ContactChanged,
}

/// The conditions a claim re-checks on the contact state.
#[derive(Debug, Clone, Copy)]
pub struct ContactGuard {
    /// No marketing email after this instant (the frequency cap's start), if capped.
    pub cap_since: Option<Timestamp>,
    /// No survey after this instant, for surveys under a throttle.
    pub survey_since: Option<Timestamp>,
    pub is_survey: bool,
}

/// The "points now available" note of a follow-up email: points that became available since the
/// customer was last told, their balance and tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointsNote {
    pub newly: i64,
    pub available: i64,
    pub tier: Option<String>,
}

impl PointsNote {
    /// The note for the customer whose ledger is `state`, under `merchant`'s programme; `None`
    /// when there is nothing new to tell.
    pub fn of(state: &LoyaltyState, merchant: &Merchant, now: Timestamp) -> Option<Self> {
        let settings = &merchant.settings.loyalty;
        let newly = newly_available(&state.entries, state.noted_through, now);
        let available = balance(&state.entries, now).available;
        if newly <= 0 || available <= 0 {
            return None;
        }
        let tier = tier_status(&state.entries, settings, now, &merchant.zone())
            .and_then(|s| s.current)
            .map(|t| t.name);
        Some(Self {
            newly: newly.min(available),
            available,
            tier,
        })
    }
}
