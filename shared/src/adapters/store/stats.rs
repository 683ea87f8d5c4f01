//! Email analytics: per merchant, per day (UTC) and per email kind, how many emails SES accepted
//! and how many of them were delivered, bounced, complained about, opened and clicked.
//!
//! The counters are kept by email-events as SES reports: each metric counts a message at most once
//! (the send record remembers which metrics it has counted, in the same conditional write that
//! records the event), so redelivered events and repeated opens never inflate a rate. One item
//! per (day, kind), `STATS#<day>#<kind>`, so a report over a range is one Query.

use super::{Store, StoreError, classify, from_item, keys, n, s};
use crate::domain::MerchantId;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How long daily counters are kept.
pub const STATS_RETENTION: std::time::Duration = std::time::Duration::from_secs(800 * 86_400);

/// The metric an SES event type counts towards, if any.
pub fn metric_of(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "send" => "sent",
        "delivery" => "delivered",
        "hard_bounce" | "soft_bounce" => "bounced",
        "complaint" => "complained",
        "open" => "opened",
        "click" => "clicked",
        "reject" => "rejected",
        _ => return None,
    })
}

/// One day's counters for one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DailyStats {
    pub day: String,
    pub kind: String,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub complained: u64,
    pub opened: u64,
    pub clicked: u64,
    pub rejected: u64,
}

impl DailyStats {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &DailyStats) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.bounced += other.bounced;
        self.complained += other.complained;
        self.opened += other.opened;
        self.clicked += other.clicked;
        self.rejected += other.rejected;
    }

    /// `part / whole`, or 0 with nothing to divide by.
    pub fn rate(part: u64, whole: u64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            // Counts of emails stay far below 2^52: exact as f64.
            #[allow(clippy::cast_precision_loss)]
            let r = part as f64 / whole as f64;
            r
        }
    }

    /// Complaints per email sent (how SES and mailbox providers count it).
    pub fn complaint_rate(&self) -> f64 {
        Self::rate(self.complained, self.sent)
    }
}

impl Store {
    /// Counts one message towards `metric` of `kind` on `day`.
    pub async fn count_email_metric(
        &self,
        m: &MerchantId,
        day: Date,
        kind: &str,
        metric: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let day = day.to_string();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::email_stats(m, &day, kind).to_map()))
            .update_expression(
                "SET #type = :t, #day = :day, kind = :kind, expires_at = :exp ADD #metric :one",
            )
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_names("#day", "day")
            .expression_attribute_names("#metric", metric)
            .expression_attribute_values(":t", s("email_stats"))
            .expression_attribute_values(":day", s(&day))
            .expression_attribute_values(":kind", s(kind))
            .expression_attribute_values(":exp", n(keys::expires_at(now, STATS_RETENTION)))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| classify("UpdateItem email stats", e))?;
        Ok(())
    }

    /// The daily counters from `from` to `to` (inclusive), every kind, oldest day first.
    pub async fn email_stats(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyStats>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(keys::tenant(m)))
                .expression_attribute_values(":from", s(keys::email_stats_from(&from.to_string())))
                .expression_attribute_values(":to", s(keys::email_stats_to(&to.to_string())))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query email stats", e))?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<DailyStats>("email_stats", item)?);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}
