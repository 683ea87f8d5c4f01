//! Email analytics: per merchant, per day (UTC) and per email kind, how many emails SES accepted
//! and how many of them were delivered, bounced, complained about, opened and clicked.
//!
//! The counters are kept by email-events as SES reports: each metric counts a message at most once
//! (the send record remembers which metrics it has counted, in the same conditional write that
//! records the event), so redelivered events and repeated opens never inflate a rate. One item
//! per (day, kind) in each of the merchant's counter shards (`M#<m>#STATS#<shard>` / `<day>#<kind>`,
//! the shard picked by the message id, so a busy day's counting is no hot key): a report over a
//! range is one Query per shard, summed.

use super::{Store, StoreError, classify, keys, n, s};
use crate::domain::MerchantId;
use crate::domain::email_event::DailyStats;
use crate::ports::email_events::EmailStats;
use jiff::Timestamp;
use jiff::civil::Date;

/// How long daily counters are kept.
pub const STATS_RETENTION: std::time::Duration = std::time::Duration::from_secs(800 * 86_400);

impl Store {
    /// Counts one message (SES id `message_id`) towards `metric` of `kind` on `day`.
    pub async fn count_email_metric(
        &self,
        m: &MerchantId,
        day: Date,
        kind: &str,
        metric: &str,
        message_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let day = day.to_string();
        self.update_item(&keys::email_stats(m, &day, kind, message_id))
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
}

impl EmailStats for Store {
    async fn email_stats(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyStats>, StoreError> {
        let (from, to) = (
            keys::day_counters_from(&from.to_string()),
            keys::day_counters_to(&to.to_string()),
        );
        let queries = keys::email_stats_partitions(m)
            .into_iter()
            .map(|pk| {
                self.table_query()
                    .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":from", s(&from))
                    .expression_attribute_values(":to", s(&to))
            })
            .collect();
        let pages = self.query_each("Query email stats", queries).await?;
        let shards: Vec<DailyStats> = super::from_items("email_stats", pages.items)?;
        Ok(DailyStats::summed(shards))
    }
}
