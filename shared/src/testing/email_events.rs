//! The email-event log and the daily counters in memory, over a [`MemTable`] shared with the send
//! ledger ([`super::MemSendLedger`]): the same items under the same keys as the DynamoDB store's
//! (`adapters::store::email_events`, `adapters::store::stats`), written with the same conditions.
//!
//! * An event lands on a send record only if the record holds its SES message id and has not seen
//!   its event id (listed while the list has room, [`MAX_EVENTS_PER_SEND`]); a record without a
//!   message id (`in_progress` or `ambiguous`) adopts the event's, if the event is addressed to
//!   its recipient.
//! * The first event of each metric on a message counts it on the event's UTC day; the message's
//!   state only moves up (`event_rank < rank`).
//! * A soft bounce extends the address's streak, a delivery after its last bounce ends it; a hard
//!   bounce, a complaint or the eighth soft bounce in a row suppress the address at once (the
//!   suppression the ledger's claim guard checks).

use super::table::{MemTable, RowKey, Write, always};
use crate::adapters::store::email_events::MAX_EVENTS_PER_SEND;
use crate::adapters::store::keys;
use crate::adapters::store::stats::STATS_RETENTION;
use crate::domain::email_event::{
    Applied, DailyStats, EmailEvent, EmailEventKind, metric_of, suppression,
};
use crate::domain::send::SendStatus;
use crate::domain::{EmailAddress, MerchantId};
use crate::ports::StoreError;
use crate::ports::email_events::{EmailEventLog, EmailStats};
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct MemEmailEvents {
    pub table: MemTable,
}

/// Holds the row an update saw, as DynamoDB's `ReturnValues` answers it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<Value>>>);

impl Seen {
    fn keep(&self, row: Option<&Value>) {
        if let Ok(mut seen) = self.0.lock() {
            *seen = row.cloned();
        }
    }

    fn take(&self) -> Option<Value> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

fn has(list: &Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|i| i.as_str() == Some(item)))
}

/// `ADD set :item` on a string set kept as a JSON array.
fn add(row: &mut Value, set: &str, item: &str) {
    if !has(&row[set], item) {
        match row[set].as_array_mut() {
            Some(list) => list.push(json!(item)),
            None => row[set] = json!([item]),
        }
    }
}

fn event_value(event_id: &str, event: &EmailEvent) -> Value {
    let mut v = json!({
        "id": event_id, "type": event.kind.as_str(), "at": event.at.to_string(),
        "rank": event.kind.rank(),
    });
    let detail = match &event.kind {
        EmailEventKind::Bounce { sub_type, .. } => Some(sub_type.clone()),
        EmailEventKind::Complaint { feedback_type } => feedback_type.clone(),
        EmailEventKind::Reject { reason } => Some(reason.clone()),
        EmailEventKind::Click { link } => Some(link.clone()),
        EmailEventKind::DeliveryDelay { delay_type } => Some(delay_type.clone()),
        _ => None,
    };
    if let Some(d) = detail {
        v["detail"] = json!(d);
    }
    v
}

impl MemEmailEvents {
    pub fn new() -> Self {
        Self::default()
    }

    /// The log over `table` (the send ledger's, so it sees the records the ledger writes).
    pub fn on(table: MemTable) -> Self {
        Self { table }
    }

    /// The send record `send_ref` of merchant `m` as stored (for assertions).
    pub fn send_record(&self, m: &MerchantId, send_ref: &str) -> Option<Value> {
        self.table.get(&RowKey::from(&keys::send_ref(m, send_ref)?))
    }

    /// The reason `email` is suppressed for merchant `m`, if it is.
    pub fn suppression(&self, m: &MerchantId, email: &str) -> Option<String> {
        let email = EmailAddress::parse("email", email).ok()?;
        self.table
            .get(&RowKey::from(&keys::suppression(m, &email)))
            .and_then(|row| row["reason"].as_str().map(str::to_owned))
    }

    /// Adds `stats` to the counters of its day and kind (email counted before the test began).
    pub fn add_stats(&self, m: &MerchantId, stats: &DailyStats) {
        let spread = format!("{}#{}", stats.day, stats.kind);
        let key = RowKey::from(&keys::email_stats(m, &stats.day, &stats.kind, &spread));
        let stats = stats.clone();
        let _ = self.table.write(Write::Update {
            key,
            condition: always(),
            apply: Box::new(move |row| {
                let mut sum: DailyStats = row
                    .and_then(|r| serde_json::from_value(r).ok())
                    .unwrap_or_default();
                sum.add(&stats);
                sum.day = stats.day;
                sum.kind = stats.kind;
                serde_json::to_value(sum).unwrap_or(Value::Null)
            }),
        });
    }

    /// The store's `record_event`: marks `event_id` seen on the record (and its metric counted)
    /// and, `listed`, appends the event while the list has room. The record as it was, or none if
    /// a condition failed.
    fn record_event(
        &self,
        key: &RowKey,
        event_id: &str,
        event: &EmailEvent,
        listed: bool,
    ) -> Result<Option<Value>, StoreError> {
        let (mid, id, seen_id) = (
            event.message_id.clone(),
            event_id.to_owned(),
            event_id.to_owned(),
        );
        let entry = event_value(event_id, event);
        let metric = metric_of(event.kind.as_str());
        let seen = Seen::default();
        let before = seen.clone();
        let applied = self.table.write(Write::Update {
            key: key.clone(),
            condition: Box::new(move |row| {
                row.is_some_and(|r| {
                    r["message_id"].as_str() == Some(mid.as_str())
                        && !has(&r["event_ids"], &id)
                        && (!listed
                            || r["events"]
                                .as_array()
                                .is_none_or(|l| l.len() < MAX_EVENTS_PER_SEND))
                })
            }),
            apply: Box::new(move |row| {
                before.keep(row.as_ref());
                let mut row = row.unwrap_or(Value::Null);
                if listed {
                    match row["events"].as_array_mut() {
                        Some(list) => list.push(entry),
                        None => row["events"] = json!([entry]),
                    }
                }
                if row["event_rank"].is_null() {
                    row["event_rank"] = json!(0);
                }
                add(&mut row, "event_ids", &seen_id);
                if let Some(metric) = metric {
                    add(&mut row, "counted", metric);
                }
                row
            }),
        })?;
        Ok(if applied { seen.take() } else { None })
    }

    /// The store's `adopt_message`: a record without a message id, `in_progress` or `ambiguous`,
    /// addressed to one of the event's recipients, becomes `sent` with the event's message id.
    fn adopt_message(
        &self,
        key: &RowKey,
        event: &EmailEvent,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut recipients: Vec<String> = event
            .recipients
            .iter()
            .flat_map(|r| [r.clone(), r.to_lowercase()])
            .collect();
        recipients.sort();
        recipients.dedup();
        recipients.truncate(90);
        if recipients.is_empty() {
            return Ok(false);
        }
        let (mid, at) = (event.message_id.clone(), event.at);
        self.table.write(Write::Update {
            key: key.clone(),
            condition: Box::new(move |row| {
                row.is_some_and(|r| {
                    r["message_id"].is_null()
                        && [SendStatus::InProgress, SendStatus::Ambiguous]
                            .iter()
                            .any(|s| r["status"] == json!(s.as_str()))
                        && r["recipient"]
                            .as_str()
                            .is_some_and(|to| recipients.iter().any(|r| r == to))
                })
            }),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                row["status"] = json!(SendStatus::Sent.as_str());
                row["message_id"] = json!(mid);
                row["sent_at"] = json!(at);
                row["updated_at"] = json!(now);
                row["reconciled_at"] = json!(now);
                if let Some(map) = row.as_object_mut() {
                    map.remove("parked_message");
                }
                row
            }),
        })
    }

    /// The store's `apply_recorded`: the analytics count, the message's state, bounce streaks and
    /// suppressions.
    fn apply_recorded(
        &self,
        m: &MerchantId,
        key: &RowKey,
        event: &EmailEvent,
        before: Option<Value>,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        if let (Some(before), Some(metric)) = (&before, metric_of(event.kind.as_str()))
            && let (false, Some(kind)) = (has(&before["counted"], metric), before["kind"].as_str())
        {
            let day = event.at.to_zoned(jiff::tz::TimeZone::UTC).date();
            self.count(m, day, kind, metric, &event.message_id, now)?;
        }
        let (rank, state) = (event.kind.rank(), event.kind.as_str());
        self.table.write(Write::Update {
            key: key.clone(),
            condition: Box::new(move |row| {
                row.and_then(|r| r["event_rank"].as_u64())
                    .is_some_and(|r| r < u64::from(rank))
            }),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                row["event_rank"] = json!(rank);
                row["delivery_state"] = json!(state);
                row
            }),
        })?;
        let mut suppressed = Vec::new();
        for address in &event.recipients {
            let Ok(email) = EmailAddress::parse("recipient", address) else {
                continue;
            };
            let streak = RowKey::from(&keys::bounce_streak(m, &email));
            let at = event.at.as_millisecond();
            let before = match &event.kind {
                EmailEventKind::Bounce { hard: false, .. } => {
                    let seen = Seen::default();
                    let after = seen.clone();
                    self.table.write(Write::Update {
                        key: streak,
                        condition: always(),
                        apply: Box::new(move |row| {
                            let mut row = row.unwrap_or_else(|| json!({}));
                            row["type"] = json!("bounce_streak");
                            row["last_soft_ms"] = json!(at);
                            let n = row["soft_bounces"].as_u64().unwrap_or(0) + 1;
                            row["soft_bounces"] = json!(n);
                            after.keep(Some(&row));
                            row
                        }),
                    })?;
                    let n = seen.take().and_then(|r| r["soft_bounces"].as_u64());
                    u32::try_from(n.unwrap_or(1))
                        .unwrap_or(u32::MAX)
                        .saturating_sub(1)
                }
                EmailEventKind::Delivery => {
                    self.table.write(Write::Update {
                        key: streak,
                        condition: Box::new(move |row| {
                            row.and_then(|r| r["last_soft_ms"].as_i64())
                                .is_some_and(|last| last < at)
                        }),
                        apply: Box::new(move |row| {
                            let mut row = row.unwrap_or(Value::Null);
                            row["soft_bounces"] = json!(0);
                            row["last_delivery_ms"] = json!(at);
                            row
                        }),
                    })?;
                    0
                }
                _ => 0,
            };
            if let Some(reason) = suppression(&event.kind, before) {
                self.table.write(Write::Put {
                    key: RowKey::from(&keys::suppression(m, &email)),
                    row: json!({"email": email.normalized(), "reason": reason.as_str(), "at": now}),
                    condition: always(),
                })?;
                suppressed.push((email.normalized(), reason));
            }
        }
        Ok(Applied::Recorded { suppressed })
    }

    /// The store's `count_email_metric`.
    fn count(
        &self,
        m: &MerchantId,
        day: Date,
        kind: &str,
        metric: &'static str,
        message_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (day, kind) = (day.to_string(), kind.to_owned());
        let key = RowKey::from(&keys::email_stats(m, &day, &kind, message_id));
        self.table.write(Write::Update {
            key,
            condition: always(),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["type"] = json!("email_stats");
                row["day"] = json!(day);
                row["kind"] = json!(kind);
                row["expires_at"] = json!(keys::expires_at(now, STATS_RETENTION));
                row[metric] = json!(row[metric].as_u64().unwrap_or(0) + 1);
                row
            }),
        })?;
        Ok(())
    }
}

impl EmailEventLog for MemEmailEvents {
    async fn apply_email_event(
        &self,
        m: &MerchantId,
        send_ref: &str,
        event_id: &str,
        event: &EmailEvent,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        let Some(key) = keys::send_ref(m, send_ref).filter(|_| send_ref.starts_with("SEND#"))
        else {
            return Ok(Applied::Unmatched);
        };
        let key = RowKey::from(&key);
        let mut before = self.record_event(&key, event_id, event, true)?;
        if before.is_none() {
            let Some(item) = self.table.get(&key) else {
                return Ok(Applied::Unmatched);
            };
            let held = item["message_id"].as_str();
            if held.is_none() {
                let adopted = self.adopt_message(&key, event, now)?;
                before = self.record_event(&key, event_id, event, true)?;
                return match before {
                    Some(_) => self.apply_recorded(m, &key, event, before, now),
                    None if adopted => Ok(Applied::Duplicate),
                    None => Ok(Applied::Unmatched),
                };
            }
            if held != Some(event.message_id.as_str()) {
                return Ok(Applied::Unmatched);
            }
            if has(&item["event_ids"], event_id) {
                return Ok(Applied::Duplicate);
            }
            before = self.record_event(&key, event_id, event, false)?;
            if before.is_none() {
                return Ok(Applied::Duplicate);
            }
        }
        self.apply_recorded(m, &key, event, before, now)
    }
}

impl EmailStats for MemEmailEvents {
    async fn email_stats(
        &self,
        m: &MerchantId,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyStats>, StoreError> {
        let (low, high) = (
            keys::day_counters_from(&from.to_string()),
            keys::day_counters_to(&to.to_string()),
        );
        let partitions = keys::email_stats_partitions(m);
        let shards = self
            .table
            .rows()
            .into_iter()
            .filter(|(k, _)| partitions.contains(&k.pk) && k.sk >= low && k.sk <= high)
            .map(|(_, row)| {
                serde_json::from_value(row).map_err(|e| StoreError::Unexpected {
                    operation: "decode email stats",
                    source: Box::new(e),
                })
            })
            .collect::<Result<Vec<DailyStats>, StoreError>>()?;
        Ok(DailyStats::summed(shards))
    }
}
