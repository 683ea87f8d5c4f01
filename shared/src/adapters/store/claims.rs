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
//!
//! Every claim is conditioned, in the same write, on its recipient not being suppressed for the
//! merchant (a `ConditionCheck` on the `SUPPRESS#<email>` item; see [`ClaimGuard`]). When only that
//! check fails, the claim is written as `suppressed` instead: the email is never sent, the
//! decision is on record for the message log, and a redelivery settles on it. So no send path can
//! forget the check, and it costs no extra call.

use super::write::{self, Attempt, CONDITION_FAILED, build_err, put_new};
use super::{Item, Store, StoreError, keys, n, s, to_item, update_held};
pub use crate::domain::send::{
    ClaimResult, Parked, Reclaim, Resolution, SendIdentity, SendRecord, SendStatus,
};
use crate::ports::{DueGroup, DueToken, ResendClaim};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use jiff::Timestamp;

const ENTITY: &str = "send";

/// The due-index group parked sends wait in.
pub(crate) const PARKED_GROUP: &str = DueGroup::ParkedSends.as_str();

/// Why a claim whose holder never recorded an outcome was parked.
pub const LEASE_EXPIRED: &str = "claim lease expired before the outcome was recorded";

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

/// The put of a new claim inside a transaction (conditioned on no record existing).
pub(crate) fn claim_put(
    table: &str,
    key: &keys::Key,
    record: &SendRecord,
    expires_at: i64,
) -> Result<TransactWriteItem, StoreError> {
    put_new(table, claim_item(key, record, expires_at)?)
}

/// Why a claim was written as `suppressed`.
pub const SUPPRESSED_REASON: &str = "the recipient is suppressed";

/// The record written in place of a claim whose recipient is suppressed.
pub(crate) fn suppressed_item(
    key: &keys::Key,
    record: &SendRecord,
    expires_at: i64,
) -> Result<Item, StoreError> {
    let mut skipped = record.clone();
    skipped.status = SendStatus::Suppressed;
    skipped.attempts = 0;
    skipped.last_error = Some(SUPPRESSED_REASON.to_owned());
    claim_item(key, &skipped, expires_at)
}

/// The suppression item of a claim's recipient, in the claim's merchant partition.
fn suppression_key(key: &keys::Key, record: &SendRecord) -> keys::Key {
    keys::suppression_beside(key, &record.recipient)
}

/// A check, inside a transaction, that a claim's recipient is not suppressed.
pub(crate) fn suppression_check(
    table: &str,
    key: &keys::Key,
    record: &SendRecord,
) -> Result<TransactWriteItem, StoreError> {
    suppression_condition(table, key, record, "attribute_not_exists(PK)")
}

fn suppression_condition(
    table: &str,
    key: &keys::Key,
    record: &SendRecord,
    condition: &str,
) -> Result<TransactWriteItem, StoreError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(suppression_key(key, record).to_map()))
        .condition_expression(condition)
        .build()
        .map_err(build_err("build ConditionCheck"))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// The suppression check that guards a claim inside a transaction, and what replaces the claim
/// when the check is what failed.
pub(crate) struct ClaimGuard {
    /// Position of the claim's write in the transaction.
    at: usize,
    /// `attribute_not_exists` on the recipient's suppression item (appended last).
    clear: TransactWriteItem,
    /// `attribute_exists` on it: the second attempt asserts the suppression still stands.
    held: TransactWriteItem,
    /// The write that replaces the claim's.
    instead: TransactWriteItem,
}

impl ClaimGuard {
    /// Guards the claim written at position `at` of a transaction; `instead` replaces that write
    /// when the recipient is suppressed.
    pub(crate) fn new(
        table: &str,
        at: usize,
        key: &keys::Key,
        record: &SendRecord,
        instead: TransactWriteItem,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            at,
            clear: suppression_check(table, key, record)?,
            held: suppression_condition(table, key, record, "attribute_exists(PK)")?,
            instead,
        })
    }

    /// Guards a new claim's Put at position `at`; a suppressed recipient gets the `suppressed`
    /// record instead.
    pub(crate) fn for_claim(
        table: &str,
        at: usize,
        key: &keys::Key,
        record: &SendRecord,
        expires_at: i64,
    ) -> Result<Self, StoreError> {
        let instead = put_new(table, suppressed_item(key, record, expires_at)?)?;
        Self::new(table, at, key, record, instead)
    }
}

/// How a transaction holding a guarded claim ended.
pub(crate) enum Guarded {
    /// Everything was written; the claim is ours.
    Done,
    /// Everything else was written; the claim was recorded as `suppressed`.
    Suppressed,
    /// A condition other than the guard failed: codes by position (the guard's left out).
    Cancelled(Vec<String>),
}

impl Store {
    /// The put of a new claim at position `at` of a transaction, and the guard that goes with it.
    pub(crate) fn guarded_claim(
        &self,
        at: usize,
        id: &SendIdentity,
        record: &SendRecord,
        expires_at: i64,
    ) -> Result<(TransactWriteItem, ClaimGuard), StoreError> {
        let key = keys::send(id);
        Ok((
            claim_put(&self.table, &key, record, expires_at)?,
            ClaimGuard::for_claim(&self.table, at, &key, record, expires_at)?,
        ))
    }

    pub(crate) async fn get_send_at(
        &self,
        key: &keys::Key,
    ) -> Result<Option<SendRecord>, StoreError> {
        self.get_as("GetItem send", ENTITY, key).await
    }

    /// Runs a transaction holding a claim guarded by `guard` (see [`ClaimGuard`]): the guard's
    /// check goes last; when it alone fails, the claim's write is swapped for the guard's
    /// replacement and the transaction runs once more.
    pub(crate) async fn transact_guarded(
        &self,
        operation: &'static str,
        mut items: Vec<TransactWriteItem>,
        guard: ClaimGuard,
    ) -> Result<Guarded, StoreError> {
        items.push(guard.clear);
        let mut codes = match self.transact(operation, items.clone()).await? {
            Attempt::Done => return Ok(Guarded::Done),
            Attempt::Cancelled(codes) => codes,
        };
        let guard_failed = codes.pop().is_some_and(|c| c == CONDITION_FAILED);
        if !guard_failed || codes.iter().any(|c| c == CONDITION_FAILED) {
            return Ok(Guarded::Cancelled(codes));
        }
        if let Some(slot) = items.get_mut(guard.at) {
            *slot = guard.instead;
        }
        if let Some(last) = items.last_mut() {
            *last = guard.held;
        }
        match self.transact(operation, items).await? {
            Attempt::Done => Ok(Guarded::Suppressed),
            Attempt::Cancelled(mut codes) => {
                if codes.pop().is_some_and(|c| c == CONDITION_FAILED) {
                    // Lifted between the two attempts: let the trigger redeliver and decide again.
                    return Err(StoreError::Transient {
                        operation,
                        source: "the suppression was lifted during the write".into(),
                    });
                }
                Ok(Guarded::Cancelled(codes))
            }
        }
    }
}

impl crate::ports::SendLedger for Store {
    async fn get_send(&self, id: &SendIdentity) -> Result<Option<SendRecord>, StoreError> {
        self.get_send_at(&keys::send(id)).await
    }

    /// Creates the claim, or takes over a record left in `retry`; provided the recipient is not
    /// suppressed (then the record says `suppressed`).
    async fn claim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        expires_at: i64,
    ) -> Result<ClaimResult, StoreError> {
        let key = &keys::send(id);
        let claim = claim_put(&self.table, key, record, expires_at)?;
        let guard = ClaimGuard::for_claim(&self.table, 0, key, record, expires_at)?;
        match self
            .transact_guarded("TransactWriteItems send claim", vec![claim], guard)
            .await?
        {
            Guarded::Done => Ok(ClaimResult::Claimed(record.clone())),
            Guarded::Suppressed => Ok(ClaimResult::Suppressed),
            Guarded::Cancelled(_) => match self.get_send_at(key).await? {
                Some(existing) => Ok(ClaimResult::Taken(existing)),
                // Cancelled, yet nothing is stored (a conflict DynamoDB reported as a condition, or
                // the record expired between the two calls): decide again on the next delivery.
                None => Err(StoreError::Transient {
                    operation: "TransactWriteItems send claim",
                    source: "the claim was cancelled but no record is stored".into(),
                }),
            },
        }
    }

    /// Re-claims a record in `retry` for a new attempt, unless its recipient has been suppressed
    /// since (then the record becomes `suppressed`).
    async fn reclaim_send(
        &self,
        id: &SendIdentity,
        record: &SendRecord,
        token: &str,
        lease_until: Timestamp,
    ) -> Result<Reclaim, StoreError> {
        let key = &keys::send(id);
        let update = |expression: &str| {
            self.tx_update(key)
                .update_expression(expression)
                .condition_expression("#status = :retry")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":retry", s(SendStatus::Retry.as_str()))
        };
        let reclaim = write::update(
            update(
                "SET #status = :ip, claim_token = :token, lease_until_ms = :lease ADD attempts :one",
            )
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":lease", n(lease_until.as_millisecond()))
            .expression_attribute_values(":one", n(1)),
        )?;
        let settle = write::update(
            update("SET #status = :sup, last_error = :why")
                .expression_attribute_values(":sup", s(SendStatus::Suppressed.as_str()))
                .expression_attribute_values(":why", s(SUPPRESSED_REASON)),
        )?;
        let guard = ClaimGuard::new(&self.table, 0, key, record, settle)?;
        let items = vec![reclaim];
        Ok(
            match self
                .transact_guarded("TransactWriteItems reclaim send", items, guard)
                .await?
            {
                Guarded::Done => Reclaim::Claimed,
                Guarded::Suppressed => Reclaim::Suppressed,
                Guarded::Cancelled(_) => Reclaim::Lost,
            },
        )
    }

    /// Moves a claim we hold (`token`) to `status`. Returns false if we no longer hold it.
    async fn finish_send(
        &self,
        id: &SendIdentity,
        token: &str,
        status: SendStatus,
        message_id: Option<&str>,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = &keys::send(id);
        let mut update = String::from("SET #status = :status, updated_at = :now");
        let mut req = self
            .update_item(key)
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
        // A message kept for a resend goes once the resend is decided (a retry still needs it).
        if status != SendStatus::Retry {
            update.push_str(" REMOVE parked_message");
        }
        update_held("UpdateItem finish send", req.update_expression(update)).await
    }

    async fn park_send(
        &self,
        id: &SendIdentity,
        token: &str,
        reason: &str,
        parked: &Parked,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = self
            .parking(id, parked, now, reason)
            .condition_expression("#status = :ip AND claim_token = :token")
            .expression_attribute_values(":token", s(token));
        update_held("UpdateItem park send", update).await
    }

    async fn park_abandoned_send(
        &self,
        id: &SendIdentity,
        parked: &Parked,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let update = self
            .parking(id, parked, now, LEASE_EXPIRED)
            .condition_expression("#status = :ip AND lease_until_ms <= :nowms")
            .expression_attribute_values(":nowms", n(now.as_millisecond()));
        update_held("UpdateItem abandon send", update).await
    }
}

impl Store {
    /// The update that parks `id`'s record as `ambiguous` with `parked` kept and its due entry at
    /// the end of the silence window (the caller adds the condition).
    fn parking(
        &self,
        id: &SendIdentity,
        parked: &Parked,
        now: Timestamp,
        reason: &str,
    ) -> UpdateItemFluentBuilder {
        let key = keys::send(id);
        let (due_pk, due_sk) = keys::due(PARKED_GROUP, parked.decide_at, &key);
        let mut set = String::from(
            "SET #status = :amb, updated_at = :now, last_error = :why, DUEPK = :dpk, DUESK = :dsk",
        );
        let mut update = self
            .update_item(&key)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":amb", s(SendStatus::Ambiguous.as_str()))
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":dpk", s(due_pk))
            .expression_attribute_values(":dsk", s(due_sk));
        if let Some(message) = &parked.message {
            set.push_str(", parked_message = :msg");
            update = update.expression_attribute_values(":msg", s(message));
        }
        update.update_expression(set)
    }
}

impl crate::ports::ParkedSends for Store {
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
        let key = &keys::send(id);
        let (due_pk, due_sk) = keys::due(PARKED_GROUP, check_at, key);
        let update = |expression: &str| {
            self.tx_update(key)
                .update_expression(expression)
                .condition_expression(
                    "DUESK = :seen AND ((#status = :amb AND attribute_not_exists(resolution)) \
                     OR (#status = :retry AND resolution = :resent))",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":seen", s(&due.seen))
                .expression_attribute_values(":amb", s(SendStatus::Ambiguous.as_str()))
                .expression_attribute_values(":retry", s(SendStatus::Retry.as_str()))
                .expression_attribute_values(":resent", s(Resolution::ResentAfterSilence.as_str()))
        };
        let resend = write::update(
            update(
                "SET #status = :ip, claim_token = :token, lease_until_ms = :lease, \
                 resolution = :resent, resolved_at = :now, updated_at = :now, \
                 DUEPK = :dpk, DUESK = :dsk ADD attempts :one",
            )
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":lease", n(lease_until.as_millisecond()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":dpk", s(due_pk))
            .expression_attribute_values(":dsk", s(due_sk))
            .expression_attribute_values(":one", n(1)),
        )?;
        let settle = write::update(
            update(
                "SET #status = :sup, last_error = :why, updated_at = :now \
                 REMOVE DUEPK, DUESK, parked_message",
            )
            .expression_attribute_values(":sup", s(SendStatus::Suppressed.as_str()))
            .expression_attribute_values(":why", s(SUPPRESSED_REASON))
            .expression_attribute_values(":now", s(now.to_string())),
        )?;
        // The guard needs only the recipient: the suppression item is keyed on it.
        let record = id.claim(recipient, now, now);
        let guard = ClaimGuard::new(&self.table, 0, key, &record, settle)?;
        Ok(
            match self
                .transact_guarded("TransactWriteItems resend claim", vec![resend], guard)
                .await?
            {
                Guarded::Done => Reclaim::Claimed,
                Guarded::Suppressed => Reclaim::Suppressed,
                Guarded::Cancelled(_) => Reclaim::Lost,
            },
        )
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
        let mut set = String::from("SET #status = :to, last_error = :why, updated_at = :now");
        let mut update = self
            .update_seen(due, Some("#status = :from"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(status.as_str()))
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", s(now.to_string()));
        if let Some(resolution) = resolution {
            set.push_str(", resolution = :res, resolved_at = :now");
            update = update.expression_attribute_values(":res", s(resolution.as_str()));
        }
        set.push_str(" REMOVE DUEPK, DUESK, parked_message");
        update_held(
            "UpdateItem close parked send",
            update.update_expression(set),
        )
        .await
    }
}
