//! The ports: what the use-cases need from the outside world, as small traits. The adapters
//! implement them ([`crate::adapters::store::Store`] over DynamoDB,
//! [`crate::adapters::mail::SesMailer`] over SES v2), and so do the in-memory adapters the fast
//! test tier runs on (`crate::testing`, compiled only for tests), faithful to the semantics the
//! use-cases rely on: conditional writes, all-or-nothing transactions, the suppression condition.
//!
//! The errors are the ports' own: a use-case decides on [`StoreError`] and [`SendFailure`]
//! variants, never on an SDK's error type.

use crate::domain::send::{ClaimResult, Reclaim, SendIdentity, SendRecord, SendStatus};
use jiff::Timestamp;
use std::future::Future;
use thiserror::Error;

pub use crate::clock::Clock;

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

    /// Marks an `in_progress` record whose lease ran out as `ambiguous`; false if it moved on.
    fn mark_abandoned_send(
        &self,
        id: &SendIdentity,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The mail transport: one attempt to hand one message over, classified.
pub trait Mailer: Send + Sync {
    /// What the transport sends (for SES, the composed [`crate::adapters::mail::OutgoingEmail`]).
    type Message: Send + Sync;

    /// One call; the message id on acceptance.
    fn send(
        &self,
        message: &Self::Message,
        now: Timestamp,
    ) -> impl Future<Output = Result<String, SendFailure>> + Send;
}
