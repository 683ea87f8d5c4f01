//! The ports: what the use-cases need from the outside world, as small traits. The adapters
//! implement them ([`crate::adapters::store::Store`] over DynamoDB,
//! [`crate::adapters::mail::SesMailer`] over SES v2), and so do the in-memory adapters the fast
//! test tier runs on (`crate::testing`, compiled only for tests), faithful to the semantics the
//! use-cases rely on: conditional writes, all-or-nothing transactions, the suppression condition.
//!
//! The errors are the ports' own: a use-case decides on [`StoreError`] and [`SendFailure`]
//! variants, never on an SDK's error type.

use crate::domain::send::{ClaimResult, Parked, Reclaim, SendIdentity, SendRecord, SendStatus};
use jiff::Timestamp;
use std::future::Future;
use thiserror::Error;

pub use crate::clock::Clock;

pub mod billing;
pub mod catalogue;
pub mod credit;
pub mod email_events;
pub mod feedback;
pub mod followups;
pub mod loyalty;
pub mod privacy;
pub mod returns;
pub mod shipments;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A condition did not hold: someone else got there first (a duplicate, a lost race).
    #[error("the write's condition did not hold")]
    ConditionFailed,
    /// Throttling, a transaction conflict that outlasted our retries, a timeout, a 5xx: try later.
    #[error("DynamoDB is temporarily unavailable ({operation})")]
    Transient {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// DynamoDB refused the request as invalid (item too large, bad expression).
    #[error("DynamoDB rejected {operation}")]
    Rejected {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// A stored item does not have the expected shape.
    #[error("a stored {entity} item is malformed")]
    Corrupt {
        entity: &'static str,
        #[source]
        source: serde_dynamo::Error,
    },
    #[error("unexpected DynamoDB failure in {operation}")]
    Unexpected {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// SES answered and did not send; trying again later may work (throttling, paused sending).
    #[error("SES did not send the message ({code}); it may be retried")]
    NotSentRetryable { code: String },
    /// SES answered and will not send this message (rejected, unverified identity, bad request).
    #[error("SES refused the message ({code})")]
    Rejected { code: String },
    /// We cannot know whether SES sent it (timeout, connection lost, server error).
    #[error("the outcome of the send is unknown ({reason})")]
    Ambiguous { reason: String },
    /// The message could not be built; nothing was sent.
    #[error("the message could not be built: {0}")]
    Invalid(String),
}

/// The send ledger: the exactly-once claim on every email (see [`crate::usecases::send`]).
///
/// Every method is conditional: a claim is created only where none exists and only if the
/// recipient is not suppressed (else the record is written as `suppressed`); a re-claim only from
/// `retry`; a finish only by the holder of the claim token; an abandon only once the lease ran out.
pub trait SendLedger: Send + Sync {
    /// The send record of `id`, if any.
    fn get_send(
        &self,
        id: &SendIdentity,
    ) -> impl Future<Output = Result<Option<SendRecord>, StoreError>> + Send;

    /// Creates the claim `record` on `id` (its TTL `expires_at`, epoch seconds).
    fn claim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        expires_at: i64,
    ) -> impl Future<Output = Result<ClaimResult, StoreError>> + Send;

    /// Takes over a record left in `retry` with a new `token`, leased until `lease_until`.
    fn reclaim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        token: &str,
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<Reclaim, StoreError>> + Send;

    /// Moves the claim we hold with `token` to `status`; false if we no longer hold it.
    fn finish_send(
        &self,
        id: &SendIdentity,
        token: &str,
        status: SendStatus,
        message_id: Option<&str>,
        error: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Parks the claim we hold with `token` as `ambiguous` for `reason` (SES's answer is unknown),
    /// keeping `parked` for the silence sweep; false if we no longer hold it.
    fn park_send(
        &self,
        id: &SendIdentity,
        token: &str,
        reason: &str,
        parked: &Parked,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Parks an `in_progress` record whose lease ran out as `ambiguous` (its holder may have
    /// reached SES), keeping `parked`; false if it moved on.
    fn park_abandoned_send(
        &self,
        id: &SendIdentity,
        parked: &Parked,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The one resend of a parked send: whose, to whom, under which token, and its timing.
#[derive(Debug, Clone, Copy)]
pub struct ResendClaim<'a> {
    pub id: &'a SendIdentity,
    pub recipient: &'a str,
    pub token: &'a str,
    /// Until when the resend may be in flight.
    pub lease_until: Timestamp,
    /// When the record is looked at again (a resend that died, or that SES asked to wait for).
    pub check_at: Timestamp,
}

/// Parked sends as the silence sweep decides them: each parked record is in the due index (group
/// [`DueGroup::ParkedSends`]) from the end of its silence window.
pub trait ParkedSends: SendLedger + DueWork {
    /// Takes the parked record `due` names for its one resend under `token` (leased until
    /// `lease_until`, then found again at `check_at`), recording
    /// [`crate::domain::send::Resolution::ResentAfterSilence`]: only if it is still where the sweep
    /// saw it, still `ambiguous` and never decided (or released for a retry by that resend), and
    /// its recipient is not suppressed (then it becomes `suppressed` and leaves the index).
    fn claim_resend(
        &self,
        due: &DueToken,
        claim: &ResendClaim<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Reclaim, StoreError>> + Send;

    /// Decides the record `due` names for good: `status` with `resolution` (if any) and `reason`,
    /// out of the index, its kept message dropped; only if it is still where the sweep saw it and
    /// in `from`. False if it moved.
    fn close_parked(
        &self,
        due: &DueToken,
        from: SendStatus,
        status: SendStatus,
        resolution: Option<crate::domain::send::Resolution>,
        reason: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The mail transport: one attempt to hand one message over, classified.
pub trait Mailer: Send + Sync {
    /// What the transport sends (for SES, the composed [`crate::adapters::mail::OutgoingEmail`]).
    /// It is kept (as JSON) on a parked send record, so the silence sweep can send it once more.
    type Message: Send + Sync + serde::Serialize + serde::de::DeserializeOwned;

    /// One call; the message id on acceptance.
    fn send(
        &self,
        message: &Self::Message,
        now: Timestamp,
    ) -> impl Future<Output = Result<String, SendFailure>> + Send;
}

/// The kinds of scheduled work, each a group of the sparse due index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DueGroup {
    /// Follow-up emails after delivery (survey-sender).
    FollowUps,
    /// A shipment's late and fallback checks (shipment-update).
    ShipmentChecks,
    /// Subscription renewal and card-expiry notices (renewal-checker).
    Renewals,
    /// The next step of a failed invoice's dunning cadence (billing-alert).
    Dunning,
    /// Loyalty notices: rewards available, points expiring (survey-sender).
    Loyalty,
    /// Erasures to carry on after their first invocation ran out of time (survey-sender).
    Privacy,
    /// Customers whose data reached the end of the merchant's retention period (survey-sender).
    Retention,
    /// Sends parked `ambiguous`, due when their silence window ends (survey-sender).
    ParkedSends,
    /// Approved returns whose parcel has not been sent: the one reminder (shipment-update).
    ReturnReminders,
}

impl DueGroup {
    /// The group's name in the index.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DueGroup::FollowUps => "followup",
            DueGroup::ShipmentChecks => "shipment",
            DueGroup::Renewals => "renewal",
            DueGroup::Dunning => "dunning",
            DueGroup::Loyalty => "loyalty",
            DueGroup::Privacy => "privacy",
            DueGroup::Retention => "retention",
            DueGroup::ParkedSends => "parked",
            DueGroup::ReturnReminders => "return",
        }
    }
}

/// Where a sweep found an item of due work: enough for the store to change it only if it is still
/// where the sweep saw it (another sweep may have moved it since). Opaque outside this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueToken {
    pub(crate) pk: String,
    pub(crate) sk: String,
    /// The item's due sort key when it was read: its due time first, so it orders the work.
    pub(crate) seen: String,
}

impl DueToken {
    /// Orders due work by due time (then by item).
    pub fn due_order(&self) -> &str {
        &self.seen
    }
}

impl std::fmt::Display for DueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sk)
    }
}

/// One item of due work: whose it is, where it was found, and what it is (an error if the stored
/// item does not parse, so the sweep can take it out of the index instead of retrying it forever).
#[derive(Debug)]
pub struct Due<T> {
    pub merchant: crate::domain::MerchantId,
    pub token: DueToken,
    pub entry: Result<T, StoreError>,
}

/// The due index: what is due now, never the whole table.
pub trait DueWork: Send + Sync {
    /// The items of `group` due at `now`, looking `lookback_days` UTC days back, with the number of
    /// index items read to find them (the sweep's read cost).
    fn due<T: serde::de::DeserializeOwned + Send>(
        &self,
        group: DueGroup,
        now: Timestamp,
        lookback_days: u32,
    ) -> impl Future<Output = Result<(Vec<Due<T>>, u64), StoreError>> + Send;

    /// Takes the item of `due` out of the index, once, recording `outcome`: false if another
    /// sweep already did.
    fn complete_due(
        &self,
        due: &DueToken,
        outcome: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Everything written when an order is placed.
pub struct NewOrder<'a> {
    pub record: &'a crate::domain::order::OrderRecord,
    pub ledger: Option<&'a crate::domain::loyalty::LedgerEntry>,
    /// The customer's points-expiry notice, rescheduled from this order.
    pub expiry: Option<&'a crate::domain::loyalty::LoyaltyNotice>,
    /// The customer's referral code (written with every order: it is deterministic).
    pub referral_code: Option<&'a crate::domain::loyalty::ReferralCodeOwner>,
    /// The thank-you email's claim and its key; none for a customer without an address.
    pub claim: Option<(&'a SendIdentity, &'a SendRecord)>,
    pub send_expires_at: i64,
    /// When the customer's data is erased if nothing else happens (the merchant's retention
    /// period from now); none keeps it.
    pub retention_due: Option<Timestamp>,
    pub now: Timestamp,
}

/// Orders: placing one with everything that goes with it, in one all-or-nothing write, and what a
/// replay needs to answer.
pub trait OrderBook: Send + Sync {
    /// A customer's loyalty ledger (for the tier an order is placed in).
    fn loyalty(
        &self,
        m: &crate::domain::MerchantId,
        c: &crate::domain::CustomerId,
    ) -> impl Future<Output = Result<crate::domain::loyalty::LoyaltyState, StoreError>> + Send;

    /// Writes the order, its idempotency record, the customer's profile and spend, the order
    /// index, the loyalty earn and expiry notice, the referral code and the thank-you email's
    /// claim (guarded by the suppression check), all or nothing.
    fn place_order(
        &self,
        new: &NewOrder<'_>,
    ) -> impl Future<Output = Result<crate::domain::order::PlaceOutcome, StoreError>> + Send;

    /// Reads, consistently, the idempotency record, the order and the email's send record.
    fn order_replay(
        &self,
        m: &crate::domain::MerchantId,
        order_id: &crate::domain::OrderId,
        send: &SendIdentity,
    ) -> impl Future<Output = Result<crate::domain::order::OrderReplay, StoreError>> + Send;

    /// Adds a placed order's units to the merchant's units sold per SKU, once however often
    /// and however concurrently it is called: chunk after chunk from `from` (the mark as the
    /// caller read it), each written with the order's mark of chunks counted (on its
    /// idempotency record) conditioned on the chunks before it. An order with no mark (a test
    /// order, one placed before counting existed, an erased one) counts nothing.
    fn count_sold(
        &self,
        m: &crate::domain::MerchantId,
        order_id: &crate::domain::OrderId,
        sold: &crate::domain::order::UnitsSold,
        from: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Merchants by id, as every trigger that names its merchant needs them (cached by the adapter).
pub trait MerchantDirectory: Send + Sync {
    fn merchant(
        &self,
        id: &crate::domain::MerchantId,
    ) -> impl Future<Output = Result<Option<std::sync::Arc<crate::domain::Merchant>>, StoreError>> + Send;
}

/// What a customer told a merchant about themselves and the mail they want: language, time zone,
/// unsubscribes, preferences, and the marketing mail's send history (the defaults for a customer
/// who never chose). Every port whose use-case personalises an email or honours a choice has it.
pub trait ContactLookup: Send + Sync {
    fn contact(
        &self,
        m: &crate::domain::MerchantId,
        c: &crate::domain::CustomerId,
    ) -> impl Future<Output = Result<crate::domain::marketing::ContactState, StoreError>> + Send;
}

/// Subscriptions due for a notice, and what the customer told us about themselves.
pub trait RenewalBook: ContactLookup {
    /// Moves the subscription of `due` to its next notice at `next` (or out of the index),
    /// recording `handled`; only if it is still where the sweep saw it. False if it moved.
    fn move_subscription_due(
        &self,
        due: &DueToken,
        next: Option<Timestamp>,
        handled: Option<&str>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
