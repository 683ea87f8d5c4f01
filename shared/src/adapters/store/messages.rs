//! The message log: what the merchant sees of every email to one customer, and why a touchpoint
//! did or did not go.
//!
//! Nothing is written for it: it reads what the send path already keeps. Every email has a send
//! record (`SEND#<customer>#<kind>#<subject>#<step>`, the exactly-once claim) carrying its status,
//! SES message id and the events SES reported; a claim refused because the recipient is suppressed
//! is a record too. Follow-ups keep every decision (deferrals, skips, cancellation) on their own
//! item. So the log of one customer is one Query of their send records plus the follow-ups of their
//! orders (one Query of the order index, one BatchGetItem per 25 orders), and the trace of one
//! touchpoint is a GetItem and a Query. Both expire with the records' TTL (the merchant's
//! `retention.message_log_days`): a record past its expiry is left out at once, although DynamoDB
//! deletes expired items only some time later.

use super::claims::SendStatus;
use super::{Item, Store, StoreError, classify, from_item, keys};
use crate::domain::followup::FollowUp;
use crate::domain::followup::FollowUpKind;
use crate::domain::{CustomerId, MerchantId, OrderId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Most send records one log read collects (a customer with more sees the newest of these).
pub const MAX_LOGGED_SENDS: usize = 2_000;
/// Most orders whose follow-ups one log read collects (the newest).
pub const MAX_LOGGED_ORDERS: usize = 100;

/// One SES event as kept on a send record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A send record as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoggedSend {
    pub kind: String,
    pub subject: String,
    pub step: u32,
    pub customer_id: String,
    pub recipient: String,
    pub status: SendStatus,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    /// The furthest SES state reported (`send`, `delivery`, `open`, `click`, `bounce`, …).
    #[serde(default)]
    pub delivery_state: Option<String>,
    #[serde(default)]
    pub events: Vec<LoggedEvent>,
    /// Epoch seconds after which the record is gone (its TTL).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// How a parked send was decided after SES's silence, and when.
    #[serde(default)]
    pub resolution: Option<crate::domain::send::Resolution>,
    #[serde(default)]
    pub resolved_at: Option<Timestamp>,
}

impl LoggedSend {
    /// Whether the record's retention ran out by `now` (DynamoDB may not have deleted it yet).
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now.as_second())
    }
}

/// One customer's sends and follow-ups, as stored.
#[derive(Debug, Clone, Default)]
pub struct CustomerLog {
    pub sends: Vec<LoggedSend>,
    pub follow_ups: Vec<FollowUp>,
}

/// One touchpoint's records: its follow-up (for journey kinds) and its send records (one per step).
#[derive(Debug, Clone, Default)]
pub struct Touchpoint {
    pub follow_up: Option<FollowUp>,
    pub sends: Vec<LoggedSend>,
}

impl Store {
    /// Every send record `within` names, but those past their expiry at `now`.
    async fn sends_within(
        &self,
        within: &keys::Within,
        now: Timestamp,
    ) -> Result<Vec<LoggedSend>, StoreError> {
        let mut sends = Vec::new();
        for item in self
            .query_prefix_upto("Query message log", within, MAX_LOGGED_SENDS)
            .await?
        {
            let send = from_item::<LoggedSend>("send", item)?;
            if !send.expired(now) {
                sends.push(send);
            }
        }
        Ok(sends)
    }

    /// The customer's send records and the follow-ups of their newest orders.
    pub async fn customer_log(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
    ) -> Result<CustomerLog, StoreError> {
        let sends = self.sends_within(&keys::customer_sends(m, c), now).await?;
        let orders = self.customer_order_ids(m, c, MAX_LOGGED_ORDERS).await?;
        let mut wanted = Vec::new();
        for o in &orders {
            for kind in FollowUpKind::ALL {
                wanted.push(keys::follow_up(m, o, kind.as_str()).to_map());
            }
        }
        let mut follow_ups = Vec::new();
        for chunk in wanted.chunks(100) {
            let found = self
                .batch_get("BatchGetItem follow-ups", chunk.to_vec())
                .await?;
            for item in found.into_values() {
                follow_ups.push(super::shipments::follow_up(item)?);
            }
        }
        // The order index is by customer; the follow-up must say so too (defence in depth).
        follow_ups.retain(|f| f.customer_id == c.as_str());
        Ok(CustomerLog { sends, follow_ups })
    }

    /// The ids of the customer's newest `limit` orders (the order index, newest first).
    async fn customer_order_ids(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let page = self
            .prefix_query(&keys::customer_orders(m, c))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(100))
            .projection_expression("order_id")
            .send()
            .await
            .map_err(|e| classify("Query customer orders", e))?;
        Ok(page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i: &Item| i.get("order_id").and_then(|v| v.as_s().ok()))
            .filter_map(|id| OrderId::parse("order_id", id).ok())
            .collect())
    }

    /// The records of one touchpoint: `kind` (an email kind) about `subject` (an order id, a
    /// subscription id, an invoice id) for customer `c`.
    pub async fn touchpoint(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        kind: &str,
        subject: &str,
        now: Timestamp,
    ) -> Result<Touchpoint, StoreError> {
        let follow_up = match (
            FollowUpKind::parse(kind),
            OrderId::parse("order", subject).ok(),
        ) {
            (Some(k), Some(o)) => self
                .get("GetItem follow-up", &keys::follow_up(m, &o, k.as_str()))
                .await?
                .map(super::shipments::follow_up)
                .transpose()?
                .filter(|f| f.customer_id == c.as_str()),
            _ => None,
        };
        let mut sends = self
            .sends_within(&keys::touchpoint_sends(m, c, kind, subject), now)
            .await?;
        sends.sort_by_key(|s| s.step);
        Ok(Touchpoint { follow_up, sends })
    }
}
