//! The send ledger in memory: the same keys, conditions and suppression guard as the DynamoDB
//! store's claims (`adapters::store::claims`), over a [`MemTable`].

use super::table::{Cancelled, Condition, MemTable, RowKey, Write, absent, present};
use crate::adapters::store::claims::{LEASE_EXPIRED, PARKED_GROUP, SUPPRESSED_REASON};
use crate::adapters::store::keys;
use crate::domain::MerchantId;
use crate::domain::send::{
    ClaimResult, Parked, Reclaim, Resolution, SendIdentity, SendRecord, SendStatus,
};
use crate::ports::{
    Due, DueGroup, DueToken, DueWork, ParkedSends, ResendClaim, SendLedger, StoreError,
};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemSendLedger {
    pub table: MemTable,
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Unexpected {
        operation: "decode send record",
        source: Box::new(e),
    }
}

fn row_of(record: &SendRecord) -> Result<Value, StoreError> {
    serde_json::to_value(record).map_err(corrupt)
}

fn record_of(row: Value) -> Result<SendRecord, StoreError> {
    serde_json::from_value(row).map_err(corrupt)
}

fn status_is(status: SendStatus) -> impl Fn(Option<&Value>) -> bool + Send + Sync {
    move |row| row.is_some_and(|r| r["status"] == json!(status.as_str()))
}

impl MemSendLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(id: &SendIdentity) -> RowKey {
        RowKey::from(&keys::send(id))
    }

    fn suppression(id: &SendIdentity, recipient: &str) -> RowKey {
        RowKey::from(&keys::suppression_beside(&keys::send(id), recipient))
    }

    fn suppressed(m: &MerchantId, email: &str) -> RowKey {
        RowKey::from(&keys::suppression_beside(&keys::merchant(m), email))
    }

    /// Suppresses `email` for merchant `m` (a hard bounce or complaint arrived).
    pub fn suppress(&self, m: &MerchantId, email: &str) {
        let key = Self::suppressed(m, email);
        let _ = self.table.write(Write::Put {
            key,
            row: json!({"email": email}),
            condition: Box::new(|_| true),
        });
    }

    /// Lifts the suppression of `email`.
    pub fn lift(&self, m: &MerchantId, email: &str) {
        self.table.remove(&Self::suppressed(m, email));
    }

    /// The record of `id` as stored (for assertions).
    pub fn record(&self, id: &SendIdentity) -> Option<SendRecord> {
        self.table
            .get(&Self::key(id))
            .and_then(|row| record_of(row).ok())
    }

    /// The check, inside a transaction, on the suppression of `id`'s `recipient`:
    /// `attribute_not_exists(PK)` with [`absent`], `attribute_exists(PK)` with [`present`].
    pub(crate) fn suppression_check(
        id: &SendIdentity,
        recipient: &str,
        condition: Condition,
    ) -> Write {
        Write::Check {
            key: Self::suppression(id, recipient),
            condition,
        }
    }

    /// Runs the writes `build(false)` guarded by the suppression check of `id`'s recipient (the
    /// check goes last); when only that check fails, runs `build(true)` (the claim's write swapped
    /// for its `suppressed` record) guarded by the suppression still standing: the store's
    /// `transact_guarded`.
    pub(crate) fn transact_guarded(
        &self,
        id: &SendIdentity,
        recipient: &str,
        build: impl Fn(bool) -> Result<Vec<Write>, StoreError>,
    ) -> Result<Guarded, StoreError> {
        let mut writes = build(false)?;
        writes.push(Self::suppression_check(id, recipient, absent()));
        let mut reasons = match self.table.transact(writes)? {
            Ok(()) => return Ok(Guarded::Done),
            Err(Cancelled(reasons)) => reasons,
        };
        let guard_failed = reasons.pop().unwrap_or(false);
        if !guard_failed || reasons.iter().any(|f| *f) {
            return Ok(Guarded::Cancelled(Cancelled(reasons)));
        }
        let mut writes = build(true)?;
        writes.push(Self::suppression_check(id, recipient, present()));
        match self.table.transact(writes)? {
            Ok(()) => Ok(Guarded::Suppressed),
            Err(Cancelled(mut reasons)) => {
                if reasons.pop().unwrap_or(false) {
                    // Lifted between the two attempts: let the trigger redeliver and decide again.
                    return Err(StoreError::Transient {
                        operation: "TransactWriteItems send claim",
                        source: "the suppression was lifted during the write".into(),
                    });
                }
                Ok(Guarded::Cancelled(Cancelled(reasons)))
            }
        }
    }

    /// The write of a new claim on `id`: `record`, or its `suppressed` form.
    pub(crate) fn claim_write(
        id: &SendIdentity,
        record: &SendRecord,
        suppressed: bool,
    ) -> Result<Write, StoreError> {
        let mut record = record.clone();
        if suppressed {
            record.status = SendStatus::Suppressed;
            record.attempts = 0;
            record.last_error = Some(SUPPRESSED_REASON.to_owned());
        }
        Ok(Write::Put {
            key: Self::key(id),
            row: row_of(&record)?,
            condition: absent(),
        })
    }
}

/// How a transaction holding a guarded claim ended (the store's `Guarded`).
pub(crate) enum Guarded {
    /// Everything was written; the claim is ours.
    Done,
    /// Everything else was written; the claim was recorded as `suppressed`.
    Suppressed,
    /// A condition other than the guard failed: by position, the guard's left out.
    Cancelled(Cancelled),
}

impl Guarded {
    /// Whether the claim was written as `suppressed`, if everything was written.
    pub(crate) fn written(self) -> Result<bool, Cancelled> {
        match self {
            Guarded::Done => Ok(false),
            Guarded::Suppressed => Ok(true),
            Guarded::Cancelled(c) => Err(c),
        }
    }
}

impl SendLedger for MemSendLedger {
    async fn get_send(&self, id: &SendIdentity) -> Result<Option<SendRecord>, StoreError> {
        self.table.get(&Self::key(id)).map(record_of).transpose()
    }

    async fn claim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        _expires_at: i64,
    ) -> Result<ClaimResult, StoreError> {
        let build = |suppressed| Ok(vec![Self::claim_write(id, record, suppressed)?]);
        match self.transact_guarded(id, &record.recipient, build)? {
            Guarded::Done => Ok(ClaimResult::Claimed(record.clone())),
            Guarded::Suppressed => Ok(ClaimResult::Suppressed),
            Guarded::Cancelled(_) => match self.get_send(id).await? {
                Some(existing) => Ok(ClaimResult::Taken(existing)),
                None => Err(StoreError::Transient {
                    operation: "TransactWriteItems send claim",
                    source: "the claim was cancelled but no record is stored".into(),
                }),
            },
        }
    }

    async fn reclaim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        token: &str,
        lease_until: Timestamp,
    ) -> Result<Reclaim, StoreError> {
        let reclaim = |token: String| Write::Update {
            key: Self::key(id),
            condition: Box::new(status_is(SendStatus::Retry)),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                let attempts = row["attempts"].as_u64().unwrap_or(0) + 1;
                row["status"] = json!(SendStatus::InProgress.as_str());
                row["claim_token"] = json!(token);
                row["lease_until_ms"] = json!(lease_until.as_millisecond());
                row["attempts"] = json!(attempts);
                row
            }),
        };
        let settle = || Write::Update {
            key: Self::key(id),
            condition: Box::new(status_is(SendStatus::Retry)),
            apply: Box::new(|row| {
                let mut row = row.unwrap_or(Value::Null);
                row["status"] = json!(SendStatus::Suppressed.as_str());
                row["last_error"] = json!(SUPPRESSED_REASON);
                row
            }),
        };
        Ok(
            match self.transact_guarded(id, &record.recipient, |suppressed| {
                Ok(vec![match suppressed {
                    false => reclaim(token.to_owned()),
                    true => settle(),
                }])
            })? {
                Guarded::Done => Reclaim::Claimed,
                Guarded::Suppressed => Reclaim::Suppressed,
                Guarded::Cancelled(_) => Reclaim::Lost,
            },
        )
    }

    async fn finish_send(
        &self,
        id: &SendIdentity,
        token: &str,
        status: SendStatus,
        message_id: Option<&str>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let holder = token.to_owned();
        let (message_id, error) = (message_id.map(str::to_owned), error.map(str::to_owned));
        self.table.write(Write::Update {
            key: Self::key(id),
            condition: Box::new(move |row| {
                status_is(SendStatus::InProgress)(row)
                    && row.is_some_and(|r| r["claim_token"] == json!(holder))
            }),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                row["status"] = json!(status.as_str());
                row["updated_at"] = json!(now);
                if let Some(id) = message_id {
                    row["message_id"] = json!(id);
                    row["sent_at"] = json!(now);
                }
                if let Some(e) = error {
                    row["last_error"] = json!(e);
                }
                if status != SendStatus::Retry {
                    remove(&mut row, &["parked_message"]);
                }
                row
            }),
        })
    }

    async fn park_send(
        &self,
        id: &SendIdentity,
        token: &str,
        reason: &str,
        parked: &Parked,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let holder = token.to_owned();
        self.table.write(Write::Update {
            key: Self::key(id),
            condition: Box::new(move |row| {
                status_is(SendStatus::InProgress)(row)
                    && row.is_some_and(|r| r["claim_token"] == json!(holder))
            }),
            apply: parking(id, parked, reason, now),
        })
    }

    async fn park_abandoned_send(
        &self,
        id: &SendIdentity,
        parked: &Parked,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let now_ms = now.as_millisecond();
        self.table.write(Write::Update {
            key: Self::key(id),
            condition: Box::new(move |row| {
                status_is(SendStatus::InProgress)(row)
                    && row.is_some_and(|r| r["lease_until_ms"].as_i64().unwrap_or(0) <= now_ms)
            }),
            apply: parking(id, parked, LEASE_EXPIRED, now),
        })
    }
}

fn remove(row: &mut Value, attributes: &[&str]) {
    if let Some(map) = row.as_object_mut() {
        for a in attributes {
            map.remove(*a);
        }
    }
}

/// The store's parking update: `ambiguous`, the message kept, due at the window's end.
fn parking(
    id: &SendIdentity,
    parked: &Parked,
    reason: &str,
    now: Timestamp,
) -> Box<dyn FnOnce(Option<Value>) -> Value + Send> {
    let (due_pk, due_sk) = keys::due(PARKED_GROUP, parked.decide_at, &keys::send(id));
    let (message, reason) = (parked.message.clone(), reason.to_owned());
    Box::new(move |row| {
        let mut row = row.unwrap_or(Value::Null);
        row["status"] = json!(SendStatus::Ambiguous.as_str());
        row["updated_at"] = json!(now);
        row["last_error"] = json!(reason);
        row["DUEPK"] = json!(due_pk);
        row["DUESK"] = json!(due_sk);
        if let Some(message) = message {
            row["parked_message"] = json!(message);
        }
        row
    })
}

/// The parked sends in the table's due index.
impl DueWork for MemSendLedger {
    async fn due<T: DeserializeOwned + Send>(
        &self,
        group: DueGroup,
        now: Timestamp,
        lookback_days: u32,
    ) -> Result<(Vec<Due<T>>, u64), StoreError> {
        self.table.due(group, now, lookback_days).await
    }

    async fn complete_due(
        &self,
        due: &DueToken,
        outcome: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.table.complete_due(due, outcome, now).await
    }
}

/// Whether `row` is still where the sweep saw it (`DUESK = :seen`).
fn seen_at(row: Option<&Value>, due: &DueToken) -> bool {
    row.is_some_and(|r| r["DUESK"] == json!(due.seen))
}

impl ParkedSends for MemSendLedger {
    async fn claim_resend(
        &self,
        due: &DueToken,
        claim: &ResendClaim<'_>,
        now: Timestamp,
    ) -> Result<Reclaim, StoreError> {
        let ResendClaim {
            id,
            recipient,
            token,
            lease_until,
            check_at,
        } = *claim;
        let resent = json!(Resolution::ResentAfterSilence.as_str());
        let parked = move |row: Option<&Value>| {
            row.is_some_and(|r| {
                (r["status"] == json!(SendStatus::Ambiguous.as_str())
                    && r.get("resolution").is_none_or(Value::is_null))
                    || (r["status"] == json!(SendStatus::Retry.as_str())
                        && r["resolution"] == resent)
            })
        };
        let (due_pk, due_sk) = keys::due(PARKED_GROUP, check_at, &keys::send(id));
        let build = |suppressed: bool| -> Result<Vec<Write>, StoreError> {
            let (seen, parked) = (due.clone(), parked.clone());
            let condition = Box::new(move |row: Option<&Value>| seen_at(row, &seen) && parked(row));
            let (token, due_pk, due_sk) = (token.to_owned(), due_pk.clone(), due_sk.clone());
            Ok(vec![Write::Update {
                key: Self::key(id),
                condition,
                apply: Box::new(move |row| {
                    let mut row = row.unwrap_or(Value::Null);
                    row["updated_at"] = json!(now);
                    if suppressed {
                        row["status"] = json!(SendStatus::Suppressed.as_str());
                        row["last_error"] = json!(SUPPRESSED_REASON);
                        remove(&mut row, &["DUEPK", "DUESK", "parked_message"]);
                        return row;
                    }
                    let attempts = row["attempts"].as_u64().unwrap_or(0) + 1;
                    row["status"] = json!(SendStatus::InProgress.as_str());
                    row["claim_token"] = json!(token);
                    row["lease_until_ms"] = json!(lease_until.as_millisecond());
                    row["attempts"] = json!(attempts);
                    row["resolution"] = json!(Resolution::ResentAfterSilence.as_str());
                    row["resolved_at"] = json!(now);
                    row["DUEPK"] = json!(due_pk);
                    row["DUESK"] = json!(due_sk);
                    row
                }),
            }])
        };
        Ok(match self.transact_guarded(id, recipient, build)? {
            Guarded::Done => Reclaim::Claimed,
            Guarded::Suppressed => Reclaim::Suppressed,
            Guarded::Cancelled(_) => Reclaim::Lost,
        })
    }

    async fn close_parked(
        &self,
        due: &DueToken,
        from: SendStatus,
        status: SendStatus,
        resolution: Option<Resolution>,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let seen = due.clone();
        let reason = reason.to_owned();
        self.table.write(Write::Update {
            key: RowKey {
                pk: due.pk.clone(),
                sk: due.sk.clone(),
            },
            condition: Box::new(move |row| seen_at(row, &seen) && status_is(from)(row)),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                row["status"] = json!(status.as_str());
                row["last_error"] = json!(reason);
                row["updated_at"] = json!(now);
                if let Some(resolution) = resolution {
                    row["resolution"] = json!(resolution.as_str());
                    row["resolved_at"] = json!(now);
                }
                remove(&mut row, &["DUEPK", "DUESK", "parked_message"]);
                row
            }),
        })
    }
}
