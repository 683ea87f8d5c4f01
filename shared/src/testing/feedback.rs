//! In memory: customers' answers and choices, under the DynamoDB store's keys and with its
//! conditions (`adapters::store::{followups, customers}`), over the send ledger's [`MemTable`].
//!
//! An answer is put only where none is stored, or over the answer it replaces (its count); a
//! follow-up is cancelled only while it is scheduled and in the due index, and brought forward
//! only from where it was read (`DUESK = :seen`); an unsubscribe keeps the first time it happened.

use super::ledger::MemSendLedger;
use super::table::{MemTable, RowKey, Write, absent, always, decode, decode_err};
use crate::adapters::store::followups::ContactItem;
use crate::adapters::store::keys;
use crate::adapters::store::shipments::FOLLOW_UP_GROUP;
use crate::domain::catalogue::Sku;
use crate::domain::followup::{
    AnchorReason, DecisionAction, DecisionEntry, FollowUp, FollowUpKind, FollowUpStatus,
    LinesDropped,
};
use crate::domain::marketing::{ContactState, Preferences};
use crate::domain::survey::FeedbackRecord;
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::StoreError;
use crate::ports::feedback::{ContactBook, FeedbackBook};
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Default)]
pub struct MemFeedback {
    /// The send ledger over the same table (its claims are the detractor alerts').
    pub ledger: MemSendLedger,
    /// What concurrent requests or an unavailable store do to the next calls.
    script: Arc<Mutex<Script>>,
}

#[derive(Default)]
struct Script {
    /// Another answer to the order, landing between the next answer's read and its write.
    rival: Option<FeedbackRecord>,
    /// The next cancelling of follow-ups fails.
    cancel_fails: bool,
    /// Another refund's lines, dropped from the follow-up between the next drop's read and its
    /// write.
    rival_drop: Option<Vec<Sku>>,
}

/// The row as an object to change (a new one where there was none).
fn object(row: Option<Value>) -> Map<String, Value> {
    match row {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn follow_up_key(m: &MerchantId, o: &OrderId, kind: FollowUpKind) -> RowKey {
    RowKey::from(&keys::follow_up(m, o, kind.as_str()))
}

/// A SKU list attribute: `SET name = :list`, or `REMOVE name` for none (as the store keeps them).
fn set_list(row: &mut Map<String, Value>, name: &str, skus: &[Sku]) {
    if skus.is_empty() {
        row.remove(name);
    } else {
        row.insert(name.into(), json!(skus));
    }
}

/// `list_append(if_not_exists(decisions, :empty), :d)`.
fn append_decision(row: &mut Map<String, Value>, decision: &DecisionEntry) {
    let entry = serde_json::to_value(decision).unwrap_or(Value::Null);
    match row.get_mut("decisions") {
        Some(Value::Array(list)) => list.push(entry),
        _ => {
            row.insert("decisions".into(), json!([entry]));
        }
    }
}

/// `GSI1SK BETWEEN :from AND :to` over one gsi1 partition, in sort key order.
fn in_range(table: &MemTable, partitions: &[String], from: Timestamp, to: Timestamp) -> Vec<Value> {
    let (low, high) = (keys::time_sort_key(from, ""), keys::time_sort_key(to, ""));
    table
        .gsi1(partitions)
        .into_iter()
        .filter(|(sk, _)| low <= *sk && *sk <= high)
        .map(|(_, row)| row)
        .collect()
}

impl MemFeedback {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        &self.ledger.table
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `rival`, another answer to the same order, lands between the next answer's read and its
    /// write (a concurrent request).
    pub fn answer_between(&self, rival: FeedbackRecord) {
        self.script().rival = Some(rival);
    }

    /// The next cancelling of follow-ups fails, as an unavailable store's would.
    pub fn fail_next_cancel(&self) {
        self.script().cancel_fails = true;
    }

    /// Schedules the order's follow-up of `kind` at `due_at`, in the due index.
    pub fn schedule(
        &self,
        m: &MerchantId,
        o: &OrderId,
        c: &CustomerId,
        kind: FollowUpKind,
        due_at: Timestamp,
    ) {
        self.schedule_lines(m, o, c, kind, due_at, &[]);
    }

    /// Another refund drops `skus` from the follow-up between the next drop's read and write.
    pub fn rival_drop(&self, skus: Vec<Sku>) {
        self.script().rival_drop = Some(skus);
    }

    /// Schedules the order's follow-up of `kind` at `due_at`, keeping the order's `skus`.
    pub fn schedule_lines(
        &self,
        m: &MerchantId,
        o: &OrderId,
        c: &CustomerId,
        kind: FollowUpKind,
        due_at: Timestamp,
        skus: &[Sku],
    ) {
        let key = keys::follow_up(m, o, kind.as_str());
        let follow_up = FollowUp {
            order_id: o.clone(),
            customer_id: c.to_string(),
            recipient: None,
            kind,
            due_at,
            anchor: due_at,
            anchor_reason: AnchorReason::Delivered,
            status: FollowUpStatus::Scheduled,
            decisions: Vec::new(),
            outcome: None,
            message_id: None,
            skus: skus.to_vec(),
            refunded_skus: Vec::new(),
        };
        let mut row = object(serde_json::to_value(&follow_up).ok());
        let (pk, sk) = keys::due(FOLLOW_UP_GROUP, due_at, &key);
        row.insert(keys::DUEPK.into(), json!(pk));
        row.insert(keys::DUESK.into(), json!(sk));
        let _ = self.table().write(Write::Put {
            key: RowKey::from(&key),
            row: Value::Object(row),
            condition: always(),
        });
    }

    /// The order's follow-up of `kind` as stored, and whether it is in the due index.
    pub fn follow_up(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kind: FollowUpKind,
    ) -> Option<(FollowUp, bool)> {
        let row = self.table().get(&follow_up_key(m, o, kind))?;
        let due = row.get(keys::DUESK).is_some();
        decode(row).ok().map(|f| (f, due))
    }

    /// Records a survey sent for the order at `at` (the sweep's entry in the sent-surveys index).
    pub fn survey_sent(&self, m: &MerchantId, o: &OrderId, at: Timestamp) {
        let _ = self.table().write(Write::Put {
            key: follow_up_key(m, o, FollowUpKind::FeedbackSurvey),
            row: json!({
                keys::GSI1PK: keys::surveys_sent_index(m, o),
                keys::GSI1SK: keys::time_sort_key(at, o.as_str()),
                "status": FollowUpStatus::Sent.as_str(),
            }),
            condition: always(),
        });
    }

    /// The contact item as stored (for assertions on what a write left).
    pub fn contact_row(&self, m: &MerchantId, c: &CustomerId) -> Option<Value> {
        self.table().get(&RowKey::from(&keys::contact(m, c)))
    }

    /// Writes `write` to the contact item of `c` (always: the store's contact updates are
    /// unconditional).
    fn update_contact(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        apply: impl FnOnce(&mut Map<String, Value>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.table().write(Write::Update {
            key: RowKey::from(&keys::contact(m, c)),
            condition: always(),
            apply: Box::new(move |row| {
                let mut row = object(row);
                apply(&mut row);
                row.insert(keys::TYPE.into(), json!("contact"));
                Value::Object(row)
            }),
        })?;
        Ok(())
    }

    /// The answer put only where none is stored, or over the answer it replaces (its count).
    fn put(&self, record: &FeedbackRecord, replaces: Option<u32>) -> Result<bool, StoreError> {
        let mut row = object(Some(serde_json::to_value(record).map_err(decode_err)?));
        row.insert(
            keys::GSI1PK.into(),
            json!(keys::feedback_index(&record.merchant_id, &record.order_id)),
        );
        row.insert(
            keys::GSI1SK.into(),
            json!(keys::time_sort_key(
                record.answered_at,
                record.order_id.as_str()
            )),
        );
        self.table().write(Write::Put {
            key: RowKey::from(&keys::feedback(&record.merchant_id, &record.order_id)),
            row: Value::Object(row),
            condition: match replaces {
                None => absent(),
                Some(count) => Box::new(move |row| {
                    row.is_some_and(|r| r["answers"].as_u64() == Some(u64::from(count)))
                }),
            },
        })
    }
}

impl FeedbackBook for MemFeedback {
    async fn feedback(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<FeedbackRecord>, StoreError> {
        self.table()
            .get(&RowKey::from(&keys::feedback(m, o)))
            .map(decode)
            .transpose()
    }

    async fn put_feedback(
        &self,
        record: &FeedbackRecord,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError> {
        let rival = self.script().rival.take();
        if let Some(rival) = rival
            && !self.put(&rival, None)?
        {
            return Err(StoreError::Unexpected {
                operation: "PutItem rival feedback",
                source: "the rival answer was not stored".into(),
            });
        }
        self.put(record, replaces)
    }

    async fn feedback_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<FeedbackRecord>, StoreError> {
        in_range(self.table(), &keys::feedback_partitions(m), from, to)
            .into_iter()
            .map(decode)
            .collect()
    }

    async fn surveys_sent_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(in_range(self.table(), &keys::surveys_sent_partitions(m), from, to).len() as u64)
    }

    async fn cancel_follow_ups(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kinds: &[FollowUpKind],
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<FollowUpKind>, StoreError> {
        if std::mem::take(&mut self.script().cancel_fails) {
            return Err(StoreError::Transient {
                operation: "UpdateItem cancel follow-up",
                source: "throttled (injected)".into(),
            });
        }
        let decision = DecisionEntry::new(now, DecisionAction::Cancelled, Some(reason));
        let mut cancelled = Vec::new();
        for kind in kinds {
            let (decision, reason) = (decision.clone(), reason.to_owned());
            let held = self.table().write(Write::Update {
                key: follow_up_key(m, o, *kind),
                condition: Box::new(|row| {
                    row.is_some_and(|r| {
                        r.get(keys::DUEPK).is_some()
                            && r["status"] == json!(FollowUpStatus::Scheduled.as_str())
                    })
                }),
                apply: Box::new(move |row| {
                    let mut row = object(row);
                    row.insert("status".into(), json!(FollowUpStatus::Cancelled.as_str()));
                    row.insert("outcome".into(), json!(reason));
                    row.insert("done_at".into(), json!(now));
                    append_decision(&mut row, &decision);
                    row.remove(keys::DUEPK);
                    row.remove(keys::DUESK);
                    Value::Object(row)
                }),
            })?;
            if held {
                cancelled.push(*kind);
            }
        }
        Ok(cancelled)
    }

    async fn drop_follow_up_skus(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kinds: &[FollowUpKind],
        skus: &[Sku],
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<(FollowUpKind, LinesDropped)>, StoreError> {
        let mut changed = Vec::new();
        if skus.is_empty() {
            return Ok(changed);
        }
        for kind in kinds {
            let key = follow_up_key(m, o, *kind);
            let mut attempt = 0;
            loop {
                let Some(row) = self.table().get(&key) else {
                    break;
                };
                // The write's condition decides; after a refusal, what was read tells why.
                if attempt > 0
                    && (row.get(keys::DUEPK).is_none()
                        || row["status"] != json!(FollowUpStatus::Scheduled.as_str()))
                {
                    break;
                }
                if attempt == 32 {
                    return Err(StoreError::Transient {
                        operation: "UpdateItem drop follow-up lines",
                        source: "the follow-up kept changing".into(),
                    });
                }
                attempt += 1;
                let follow_up: FollowUp = decode(row)?;
                let Some(after) = follow_up.without_lines(skus) else {
                    break;
                };
                if let Some(rival) = self.script().rival_drop.take()
                    && let Some(theirs) = follow_up.without_lines(&rival)
                {
                    let _ = self.table().write(Write::Update {
                        key: key.clone(),
                        condition: always(),
                        apply: Box::new(move |row| {
                            let mut row = object(row);
                            set_list(&mut row, "skus", &theirs.skus);
                            set_list(&mut row, "refunded_skus", &theirs.refunded_skus);
                            Value::Object(row)
                        }),
                    });
                }
                // `skus = :seen_skus` (or absent) AND `refunded_skus = :seen_refunded` (or
                // absent), with the follow-up scheduled and in the due index.
                // (`skus` is not looked at for a follow-up that kept none.)
                let list = |v: &[Sku]| (!v.is_empty()).then(|| json!(v));
                let (seen_skus, seen_refunded) =
                    (list(&follow_up.skus), list(&follow_up.refunded_skus));
                let check_skus = seen_skus.is_some();
                let cancel = after.cancel;
                let decision = DecisionEntry::new(now, DecisionAction::Cancelled, Some(reason));
                let reason = reason.to_owned();
                let held = self.table().write(Write::Update {
                    key: key.clone(),
                    condition: Box::new(move |row| {
                        row.is_some_and(|r| {
                            r.get(keys::DUEPK).is_some()
                                && r["status"] == json!(FollowUpStatus::Scheduled.as_str())
                                && (!check_skus || r.get("skus").cloned() == seen_skus)
                                && r.get("refunded_skus").cloned() == seen_refunded
                        })
                    }),
                    apply: Box::new(move |row| {
                        let mut row = object(row);
                        row.insert("refunded_skus".into(), json!(after.refunded_skus));
                        if cancel {
                            row.insert("status".into(), json!(FollowUpStatus::Cancelled.as_str()));
                            row.insert("outcome".into(), json!(reason));
                            row.insert("done_at".into(), json!(now));
                            append_decision(&mut row, &decision);
                            row.remove(keys::DUEPK);
                            row.remove(keys::DUESK);
                            row.remove("skus");
                        } else {
                            set_list(&mut row, "skus", &after.skus);
                        }
                        Value::Object(row)
                    }),
                })?;
                if held {
                    let what = match cancel {
                        true => LinesDropped::Cancelled,
                        false => LinesDropped::Trimmed,
                    };
                    changed.push((*kind, what));
                    break;
                }
            }
        }
        Ok(changed)
    }

    async fn bring_forward(
        &self,
        m: &MerchantId,
        o: &OrderId,
        kind: FollowUpKind,
        at: Timestamp,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let key = keys::follow_up(m, o, kind.as_str());
        let Some(row) = self.table().get(&RowKey::from(&key)) else {
            return Ok(false);
        };
        let Some(seen) = row[keys::DUESK].as_str().map(str::to_owned) else {
            return Ok(false);
        };
        let follow_up: FollowUp = decode(row)?;
        if follow_up.status != FollowUpStatus::Scheduled || follow_up.due_at <= at {
            return Ok(false);
        }
        let mut decision = DecisionEntry::new(at, DecisionAction::Rescheduled, Some(reason));
        decision.until = Some(at);
        let (pk, sk) = keys::due(FOLLOW_UP_GROUP, at, &key);
        self.table().write(Write::Update {
            key: RowKey::from(&key),
            condition: Box::new(move |row| row.is_some_and(|r| r[keys::DUESK] == json!(seen))),
            apply: Box::new(move |row| {
                let mut row = object(row);
                row.insert(keys::DUEPK.into(), json!(pk));
                row.insert(keys::DUESK.into(), json!(sk));
                row.insert("due_at".into(), json!(at));
                row.insert("status".into(), json!(FollowUpStatus::Scheduled.as_str()));
                append_decision(&mut row, &decision);
                Value::Object(row)
            }),
        })
    }
}

impl ContactBook for MemFeedback {
    async fn set_unsubscribed(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        unsubscribed: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.update_contact(m, c, move |row| {
            row.insert("unsubscribed".into(), json!(unsubscribed));
            row.insert("updated_at".into(), json!(now));
            if unsubscribed {
                row.entry("unsubscribed_at").or_insert(json!(now));
            } else {
                row.insert("resubscribed_at".into(), json!(now));
                row.remove("unsubscribed_at");
            }
        })
    }

    async fn set_preferences(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        prefs: &Preferences,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let prefs = prefs.clone();
        self.update_contact(m, c, move |row| {
            row.insert("unsubscribed".into(), json!(!prefs.subscribed));
            let kinds: Vec<&str> = prefs.opted_out.iter().map(|k| k.as_str()).collect();
            row.insert("opted_out".into(), json!(kinds));
            row.insert("updated_at".into(), json!(now));
            if prefs.subscribed {
                row.remove("unsubscribed_at");
            } else {
                row.entry("unsubscribed_at").or_insert(json!(now));
            }
            match prefs.locale {
                Some(l) => row.insert("locale".into(), json!(l.as_str())),
                None => row.remove("locale"),
            };
            match &prefs.time_zone {
                Some(z) => row.insert("time_zone".into(), json!(z)),
                None => row.remove("time_zone"),
            };
        })
    }
}

impl crate::ports::ContactLookup for MemFeedback {
    async fn contact(&self, m: &MerchantId, c: &CustomerId) -> Result<ContactState, StoreError> {
        Ok(self
            .contact_row(m, c)
            .map(decode::<ContactItem>)
            .transpose()?
            .unwrap_or_default()
            .into())
    }
}
