//! Send records: the claim that makes an email exactly-once.
//!
//! Before an email is handed to SES, a record keyed on its business identity
//! (`merchant / customer / kind / subject / step`, see [`keys::send`]) is created in state
//! `in_progress` with a lease derived from the invocation's remaining time and a random claim
//! token. Only the holder of the token moves it on:
//!
//! ```text
//!               ┌──────────── SES accepted ───────────▶ sent (message id)
//!  (none) ──▶ in_progress ── SES said "not sent, later" ▶ retry ──▶ in_progress (re-claim)
//!               │        └── SES refused for good ─────▶ failed
//!               └── outcome unknown, or lease expired ─▶ ambiguous (reconciled from SES events)
//! ```
//!
//! A record is never deleted after a send attempt, and `in_progress` is never re-claimed blindly
//! once its lease has run out: the owner may have reached SES. Such a record is marked `ambiguous`.

use super::{Item, Store, StoreError, classify, from_item, keys, n, s, to_item};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const ENTITY: &str = "send";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    InProgress,
    Sent,
    Retry,
    Failed,
    Ambiguous,
}

impl SendStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SendStatus::InProgress => "in_progress",
            SendStatus::Sent => "sent",
            SendStatus::Retry => "retry",
            SendStatus::Failed => "failed",
            SendStatus::Ambiguous => "ambiguous",
        }
    }
}

/// One email's send record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub kind: String,
    /// What the email is about (an order id, a subscription id).
    pub subject: String,
    pub step: u32,
    pub customer_id: String,
    pub recipient: String,
    pub status: SendStatus,
    /// Random token of the attempt that holds the claim.
    pub claim_token: String,
    /// Epoch milliseconds until which the holder may still be sending.
    pub lease_until_ms: i64,
    pub attempts: u32,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

impl SendRecord {
    pub fn new_claim(
        kind: &str,
        subject: &str,
        step: u32,
        customer_id: &str,
        recipient: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Self {
        Self {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            step,
            customer_id: customer_id.to_owned(),
            recipient: recipient.to_owned(),
            status: SendStatus::InProgress,
            claim_token: crate::domain::ids::new_id(),
            lease_until_ms: lease_until.as_millisecond(),
            attempts: 1,
            message_id: None,
            sent_at: None,
            last_error: None,
            created_at: now,
        }
    }

    pub fn lease_expired(&self, now: Timestamp) -> bool {
        now.as_millisecond() >= self.lease_until_ms
    }
}

/// Builds the item for a new claim (also used inside other transactions).
pub(crate) fn claim_item(
    key: &keys::Key,
    record: &SendRecord,
    expires_at: i64,
) -> Result<Item, StoreError> {
    let mut item = to_item(ENTITY, key, record)?;
    item.insert(keys::TTL.into(), n(expires_at));
    Ok(item)
}

/// What happened when a claim was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// We hold the claim with this record.
    Claimed(SendRecord),
    /// Someone else holds or held it; this is their record.
    Taken(SendRecord),
}

impl Store {
    pub async fn get_send(&self, key: &keys::Key) -> Result<Option<SendRecord>, StoreError> {
        self.get("GetItem send", key)
            .await?
            .map(|i| from_item(ENTITY, i))
            .transpose()
    }

    /// Creates the claim, or takes over a record left in `retry`.
    pub async fn claim_send(
        &self,
        key: &keys::Key,
        record: &SendRecord,
        expires_at: i64,
    ) -> Result<ClaimResult, StoreError> {
        let item = claim_item(key, record, expires_at)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #status = :retry")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":retry", s(SendStatus::Retry.as_str()))
            .send()
            .await;
        match result.map_err(|e| classify("PutItem send claim", e)) {
            Ok(_) => Ok(ClaimResult::Claimed(record.clone())),
            Err(StoreError::ConditionFailed) => match self.get_send(key).await? {
                Some(existing) => Ok(ClaimResult::Taken(existing)),
                // Gone between the two calls (TTL); treat as taken by nobody we know: do not send.
                None => Err(StoreError::ConditionFailed),
            },
            Err(e) => Err(e),
        }
    }

    /// Re-claims a record in `retry` for a new attempt.
    pub async fn reclaim_send(
        &self,
        key: &keys::Key,
        token: &str,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .update_expression("SET #status = :ip, claim_token = :token, lease_until_ms = :lease ADD attempts :one")
            .condition_expression("#status = :retry")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":retry", s(SendStatus::Retry.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":lease", n(lease_until.as_millisecond()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        super::condition_held(result.map_err(|e| classify("UpdateItem reclaim send", e)))
    }

    /// Moves a claim we hold (`token`) to `status`. Returns false if we no longer hold it.
    pub async fn finish_send(
        &self,
        key: &keys::Key,
        token: &str,
        status: SendStatus,
        message_id: Option<&str>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut update = String::from("SET #status = :status, updated_at = :now");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .condition_expression("#status = :ip AND claim_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":now", s(now.to_string()));
        if let Some(id) = message_id {
            update.push_str(", message_id = :mid, sent_at = :now");
            req = req.expression_attribute_values(":mid", s(id));
        }
        if let Some(err) = error {
            update.push_str(", last_error = :err");
            req = req.expression_attribute_values(":err", s(err));
        }
        super::condition_held(
            req.update_expression(update)
                .send()
                .await
                .map_err(|e| classify("UpdateItem finish send", e)),
        )
    }

    /// Marks an `in_progress` record whose lease has run out as `ambiguous` (its holder may have
    /// reached SES). Returns false if the record moved on meanwhile.
    pub async fn mark_abandoned_send(
        &self,
        key: &keys::Key,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .update_expression("SET #status = :amb, updated_at = :now, last_error = :why")
            .condition_expression("#status = :ip AND lease_until_ms <= :nowms")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":amb", s(SendStatus::Ambiguous.as_str()))
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":nowms", n(now.as_millisecond()))
            .expression_attribute_values(
                ":why",
                s("claim lease expired before the outcome was recorded"),
            )
            .send()
            .await;
        super::condition_held(result.map_err(|e| classify("UpdateItem abandon send", e)))
    }
}
