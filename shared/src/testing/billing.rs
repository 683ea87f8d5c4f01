//! In memory: failed invoices and their dunning, over the send ledger's table, with the DynamoDB
//! store's keys, conditions and transactions (`adapters::store::billing`): a billing event's
//! invoice change, marker and email claim are one all-or-nothing write whose claim is guarded by
//! the suppression check; a sweep's advance holds only if the invoice is still failed and where
//! the sweep saw it (`DUESK = :seen`); a refund's reversal is posted on the ledger version it was
//! decided on, with the event's marker in the same write. It is also the due index of the
//! invoices it holds.

use super::ledger::{Guarded, MemSendLedger};
use super::loyalty::{entry_put, ledger_state};
use super::table::{
    Condition, MemTable, RowKey, Write, absent, always, decode, number, parse, row,
};
use crate::adapters::store::billing::DUNNING_GROUP;
use crate::adapters::store::keys;
use crate::domain::billing::{
    DunningStep, EventKey, FailureOutcome, InvoiceRecord, InvoiceStatus, PaymentOutcome, Reversal,
    StepClaim,
};
use crate::domain::ids::InvoiceId;
use crate::domain::loyalty::LEDGER_ATTEMPTS;
use crate::domain::loyalty::{LedgerEntry, LoyaltyState};
use crate::domain::marketing::ContactState;
use crate::domain::order::OrderRecord;
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::billing::{BillingBook, ClaimWrite};
use crate::ports::{DueToken, StoreError};
use jiff::Timestamp;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemBilling {
    /// The send ledger over the same table (its claims are the dunning emails').
    pub ledger: MemSendLedger,
}

fn status_is(row: Option<&Value>, statuses: &[InvoiceStatus]) -> bool {
    row.is_some_and(|r| statuses.iter().any(|s| r["status"] == json!(s)))
}

/// `DUESK = :seen AND #status = :failed`.
fn where_seen(seen: &str) -> Condition {
    let seen = seen.to_owned();
    Box::new(move |row| {
        status_is(row, &[InvoiceStatus::Failed]) && row.is_some_and(|r| r["DUESK"] == json!(seen))
    })
}

/// Sets the due-index attributes of the invoice at `key` to `at`, or removes them.
fn set_due(row: &mut Value, key: &keys::Key, at: Option<Timestamp>) {
    let Some(fields) = row.as_object_mut() else {
        return;
    };
    match at {
        Some(at) => {
            let (pk, sk) = keys::due(DUNNING_GROUP, at, key);
            fields.insert("DUEPK".into(), json!(pk));
            fields.insert("DUESK".into(), json!(sk));
        }
        None => {
            fields.remove("DUEPK");
            fields.remove("DUESK");
        }
    }
}

impl MemBilling {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        &self.ledger.table
    }

    /// The invoice as stored, if any.
    pub fn invoice(&self, m: &MerchantId, i: &InvoiceId) -> Option<InvoiceRecord> {
        parse(self.table().get(&RowKey::from(&keys::invoice(m, i))))
            .ok()
            .flatten()
    }

    /// The invoice's due sort key (`None`: out of the index).
    pub fn due_at(&self, m: &MerchantId, i: &InvoiceId) -> Option<String> {
        self.table()
            .get(&RowKey::from(&keys::invoice(m, i)))
            .and_then(|r| r["DUESK"].as_str().map(str::to_owned))
    }

    /// Stores an order (as order-placed would), for refunds to name.
    pub fn put_order(&self, record: &OrderRecord) {
        let key = keys::order(&record.merchant_id, &record.order.id);
        if let Ok(row) = row(record) {
            let _ = self.table().write(put(key, row, false));
        }
    }

    pub fn set_contact(&self, m: &MerchantId, c: &CustomerId, contact: &ContactState) {
        if let Ok(row) = row(contact) {
            let _ = self.table().write(put(keys::contact(m, c), row, false));
        }
    }

    /// Posts `entry` on the customer's ledger, moving its version on (as any credit does).
    pub fn post(&self, m: &MerchantId, c: &CustomerId, entry: &LedgerEntry) {
        let Ok(entry_put) = entry_put(m, c, entry) else {
            return;
        };
        let _ = self.table().transact(vec![
            entry_put,
            bump_version(keys::ledger_summary(m, c), None),
        ]);
    }

    /// The customer's ledger as stored.
    pub fn loyalty(&self, m: &MerchantId, c: &CustomerId) -> Result<LoyaltyState, StoreError> {
        ledger_state(self.table(), m, c)
    }

    fn invoice_row(record: &InvoiceRecord, due: Option<Timestamp>) -> Result<Value, StoreError> {
        let key = keys::invoice(&record.merchant_id, &record.invoice.id);
        let mut value = row(record)?;
        if let (Some(first), Some(fields)) = (record.first_failed_at, value.as_object_mut()) {
            fields.insert(
                "GSI1PK".into(),
                json!(keys::dunning_index(&record.merchant_id, &record.invoice.id)),
            );
            fields.insert(
                "GSI1SK".into(),
                json!(keys::time_sort_key(first, record.invoice.id.as_str())),
            );
        }
        set_due(&mut value, &key, due);
        Ok(value)
    }

    fn event_put(m: &MerchantId, ev: &EventKey<'_>, now: Timestamp) -> Write {
        let marker = json!({
            "provider": ev.provider, "event_id": ev.event_id, "kind": ev.kind,
            "content_hash": ev.content_hash, "at": now,
        });
        put(
            keys::billing_event(m, ev.provider, ev.event_id),
            marker,
            true,
        )
    }

    /// Runs `build(false)` with the claim of `claim` guarded by its recipient's suppression check
    /// (the send ledger's `transact_guarded`).
    fn transact_guarded(
        &self,
        claim: &ClaimWrite<'_>,
        build: impl Fn(bool) -> Result<Vec<Write>, StoreError>,
    ) -> Result<Guarded, StoreError> {
        self.ledger
            .transact_guarded(claim.id, &claim.record.recipient, build)
    }

    fn claim_put(claim: &ClaimWrite<'_>, suppressed: bool) -> Result<Write, StoreError> {
        MemSendLedger::claim_write(claim.id, claim.record, suppressed)
    }
}

fn put(key: keys::Key, row: Value, only_new: bool) -> Write {
    Write::Put {
        key: RowKey::from(&key),
        row,
        condition: if only_new { absent() } else { always() },
    }
}

/// The ledger summary's version moved on, conditioned on it still being `read` (if given).
fn bump_version(key: keys::Key, read: Option<u64>) -> Write {
    Write::Update {
        key: RowKey::from(&key),
        condition: match read {
            Some(read) => Box::new(move |row| number(row, "version") == read),
            None => always(),
        },
        apply: Box::new(|row| json!({ "version": number(row.as_ref(), "version") + 1 })),
    }
}

impl BillingBook for MemBilling {
    async fn event_hash(
        &self,
        m: &MerchantId,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .table()
            .get(&RowKey::from(&keys::billing_event(m, provider, event_id)))
            .and_then(|r| r["content_hash"].as_str().map(str::to_owned)))
    }

    async fn mark_event(
        &self,
        m: &MerchantId,
        ev: &EventKey<'_>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.table().write(Self::event_put(m, ev, now))
    }

    async fn record_payment_failed(
        &self,
        record: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        next_due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<FailureOutcome, StoreError> {
        let m = &record.merchant_id;
        let key = keys::invoice(m, &record.invoice.id);
        let invoice = Self::invoice_row(record, next_due)?;
        let build = |suppressed| {
            Ok(vec![
                put(key.clone(), invoice.clone(), true),
                Self::event_put(m, ev, now),
                Self::claim_put(&claim, suppressed)?,
            ])
        };
        match self.transact_guarded(&claim, build)?.written() {
            Ok(suppressed) => Ok(FailureOutcome::Started { suppressed }),
            Err(c) if c.failed(1) => Ok(FailureOutcome::Duplicate),
            Err(_) => {
                if !self.mark_event(m, ev, now).await? {
                    return Ok(FailureOutcome::Duplicate);
                }
                Ok(
                    match self.invoice(m, &record.invoice.id).map(|r| r.status) {
                        Some(InvoiceStatus::Paid) => FailureOutcome::AlreadyPaid,
                        _ => FailureOutcome::AlreadyDunning,
                    },
                )
            }
        }
    }

    async fn record_payment_succeeded(
        &self,
        paid: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> Result<PaymentOutcome, StoreError> {
        let m = &paid.merchant_id;
        let key = keys::invoice(m, &paid.invoice.id);
        let recover = || Write::Update {
            key: RowKey::from(&key),
            condition: Box::new(|row| {
                status_is(row, &[InvoiceStatus::Failed, InvoiceStatus::Exhausted])
            }),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                let recovered = row["emails_recovered"].as_u64().unwrap_or(0) + 1;
                row["status"] = json!(InvoiceStatus::Paid);
                row["recovered"] = json!(true);
                row["paid_at"] = json!(now);
                row["updated_at"] = json!(now);
                row["emails_recovered"] = json!(recovered);
                if let Some(fields) = row.as_object_mut() {
                    fields.remove("DUEPK");
                    fields.remove("DUESK");
                }
                row
            }),
        };
        let build = |suppressed| {
            Ok(vec![
                recover(),
                Self::event_put(m, ev, now),
                Self::claim_put(&claim, suppressed)?,
            ])
        };
        match self.transact_guarded(&claim, build)?.written() {
            Ok(suppressed) => return Ok(PaymentOutcome::Recovered { suppressed }),
            Err(c) if c.failed(1) => return Ok(PaymentOutcome::Duplicate),
            Err(c) if !c.failed(0) => {
                // Recovered before by another event (its claim exists): remember this one.
                return Ok(match self.mark_event(m, ev, now).await? {
                    true => PaymentOutcome::AlreadyPaid,
                    false => PaymentOutcome::Duplicate,
                });
            }
            Err(_) => {}
        }
        // Not in dunning: record it paid (unless it exists, i.e. already paid).
        let writes = vec![
            put(key.clone(), Self::invoice_row(paid, None)?, true),
            Self::event_put(m, ev, now),
        ];
        match self.table().transact(writes)? {
            Ok(()) => Ok(PaymentOutcome::PaidFirst),
            Err(c) if c.failed(1) => Ok(PaymentOutcome::Duplicate),
            Err(_) => Ok(match self.mark_event(m, ev, now).await? {
                true => PaymentOutcome::AlreadyPaid,
                false => PaymentOutcome::Duplicate,
            }),
        }
    }

    async fn claim_dunning_step(
        &self,
        due: &DueToken,
        step: &DunningStep,
        next: Option<Timestamp>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> Result<StepClaim, StoreError> {
        let key = due.key();
        let counter = match step.kind.as_str() {
            "first" => "emails_first",
            "final" => "emails_final",
            _ => "emails_reminder",
        };
        let index = step.index;
        let advance = || {
            let key = key.clone();
            Write::Update {
                key: RowKey::from(&key),
                condition: where_seen(&due.seen),
                apply: Box::new(move |row| {
                    let mut row = row.unwrap_or(Value::Null);
                    let sent = row[counter].as_u64().unwrap_or(0) + 1;
                    row["next_step"] = json!(index + 1);
                    row["last_email_ms"] = json!(now.as_millisecond());
                    row["updated_at"] = json!(now);
                    row[counter] = json!(sent);
                    set_due(&mut row, &key, next);
                    row
                }),
            }
        };
        let build = |suppressed| Ok(vec![advance(), Self::claim_put(&claim, suppressed)?]);
        Ok(match self.transact_guarded(&claim, build)? {
            Guarded::Done => StepClaim::Claimed,
            Guarded::Suppressed => StepClaim::Suppressed,
            Guarded::Cancelled(c) if c.failed(1) => StepClaim::ClaimExists,
            Guarded::Cancelled(_) => StepClaim::Moved,
        })
    }

    async fn move_invoice_due(
        &self,
        due: &DueToken,
        until: Option<Timestamp>,
        exhausted_step: Option<u32>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = due.key();
        self.table().write(Write::Update {
            key: RowKey::from(&key),
            condition: where_seen(&due.seen),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or(Value::Null);
                row["updated_at"] = json!(now);
                match (until, exhausted_step) {
                    (_, Some(step)) => {
                        row["status"] = json!(InvoiceStatus::Exhausted);
                        row["next_step"] = json!(step + 1);
                        set_due(&mut row, &key, None);
                    }
                    (at, None) => set_due(&mut row, &key, at),
                }
                row
            }),
        })
    }

    async fn invoices_failed_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let (low, high) = (keys::time_sort_key(from, ""), keys::time_sort_key(to, ""));
        self.table()
            .gsi1(&keys::dunning_partitions(m))
            .into_iter()
            .filter(|(sk, _)| low <= *sk && *sk < high)
            .map(|(_, row)| decode(row))
            .collect()
    }

    async fn refunded_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
        amount: i64,
    ) -> Result<Option<crate::domain::ids::ReturnId>, StoreError> {
        let tally: Option<crate::domain::returns::ReturnTally> =
            parse(self.table().get(&RowKey::from(&keys::order_returns(m, o))))?;
        let mut returns = Vec::new();
        for r in tally.map(|t| t.returns).unwrap_or_default() {
            returns.extend(parse::<crate::domain::returns::ReturnRecord>(
                self.table().get(&RowKey::from(&keys::return_item(m, &r))),
            )?);
        }
        Ok(crate::domain::returns::refunded_by(&returns, amount))
    }

    async fn note_refund(
        &self,
        m: &MerchantId,
        o: &OrderId,
        refund: &crate::domain::returns::ReportedRefund,
    ) -> Result<(), StoreError> {
        use crate::domain::returns::ReturnTally;
        let entry = refund.clone();
        let noted = entry.clone();
        // Cancelled (the order is not held, or the refund is noted already): done either way.
        let _noted = self
            .table()
            .transact(vec![
                Write::Check {
                    key: RowKey::from(&keys::order(m, o)),
                    condition: crate::testing::table::present(),
                },
                Write::Update {
                    key: RowKey::from(&keys::order_returns(m, o)),
                    condition: Box::new(move |row| {
                        let tally: Option<ReturnTally> =
                            row.and_then(|r| serde_json::from_value(r.clone()).ok());
                        !tally.is_some_and(|t| t.refunds.contains(&noted))
                    }),
                    apply: Box::new(move |row| {
                        let mut tally: ReturnTally = row
                            .and_then(|r| serde_json::from_value(r).ok())
                            .unwrap_or_default();
                        tally.refunds.push(entry);
                        tally.version = tally.version.saturating_add(1);
                        serde_json::to_value(tally).unwrap_or_default()
                    }),
                },
            ])?
            .is_ok();
        Ok(())
    }

    async fn refunded_order(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        parse(self.table().get(&RowKey::from(&keys::order(m, o))))
    }

    async fn post_reversal(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        event: Option<&EventKey<'_>>,
        now: Timestamp,
        mut decide: impl FnMut(&LoyaltyState) -> Option<LedgerEntry> + Send,
    ) -> Result<Reversal, StoreError> {
        for _ in 0..LEDGER_ATTEMPTS {
            let state = self.loyalty(m, c)?;
            let Some(entry) = decide(&state) else {
                return Ok(Reversal::Declined(state));
            };
            if state.entry(&entry.source).is_some() {
                return Ok(Reversal::Duplicate(state));
            }
            let mut writes = vec![
                entry_put(m, c, &entry)?,
                bump_version(keys::ledger_summary(m, c), Some(state.version)),
            ];
            writes.extend(event.map(|ev| Self::event_put(m, ev, now)));
            match self.table().transact(writes)? {
                Ok(()) => return Ok(Reversal::Posted { entry }),
                Err(c0) if c0.failed(0) => return Ok(Reversal::Duplicate(self.loyalty(m, c)?)),
                Err(c0) if c0.failed(1) => continue,
                Err(_) => return Ok(Reversal::EventSeen),
            }
        }
        Ok(Reversal::Busy)
    }
}

impl crate::ports::ContactLookup for MemBilling {
    async fn contact(&self, m: &MerchantId, c: &CustomerId) -> Result<ContactState, StoreError> {
        Ok(parse(self.table().get(&RowKey::from(&keys::contact(m, c))))?.unwrap_or_default())
    }
}
