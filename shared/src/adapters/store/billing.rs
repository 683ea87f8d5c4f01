//! Invoices in dunning, processed billing events, and refund reversals.
//!
//! Each billing event is one `TransactWriteItems`: the invoice's state change (conditioned on the
//! state it changes from), the event's marker (conditioned on not existing: the provider's event
//! id makes redeliveries duplicates) and, when the change owes the customer an email, that email's
//! send claim. Out-of-order delivery is settled by the invoice's state: once paid, a late failure
//! changes nothing and sends nothing.

use super::claims::{ClaimGuard, Guarded, SendIdentity, SendRecord, claim_item};
use super::write::{Attempt, build_err, codes_failed, put, with_due};
use super::{Item, Store, StoreError, classify, from_item, keys, n, s, to_item};
use crate::domain::MerchantId;
use crate::domain::billing::InvoiceFacts;
use crate::domain::ids::InvoiceId;
use crate::ports::DueToken;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const INVOICE: &str = "invoice";
const EVENT: &str = "billing_event";
/// Due-index group of invoices waiting for their next dunning step.
pub const DUNNING_GROUP: &str = "dunning";
/// How long a processed event id is remembered.
pub const EVENT_MEMORY: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// In dunning.
    Failed,
    Paid,
    /// Dunning ran out without payment.
    Exhausted,
}

/// An invoice as stored (only invoices that failed, or were paid before we saw them fail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub merchant_id: MerchantId,
    pub invoice: InvoiceFacts,
    pub status: InvoiceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<Timestamp>,
    /// Paid after failing.
    #[serde(default)]
    pub recovered: bool,
    /// The first dunning step not yet handled (0 = the first email).
    #[serde(default)]
    pub next_step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_email_ms: Option<i64>,
    /// Emails sent per step kind (`first`, `reminder`, `final`, `recovered`).
    #[serde(default)]
    pub emails_first: u32,
    #[serde(default)]
    pub emails_reminder: u32,
    #[serde(default)]
    pub emails_final: u32,
    #[serde(default)]
    pub emails_recovered: u32,
    pub updated_at: Timestamp,
}

impl InvoiceRecord {
    /// An invoice entering dunning now, its first email (step 0) counted as sent.
    pub fn failed(merchant_id: MerchantId, invoice: InvoiceFacts, now: Timestamp) -> Self {
        Self {
            status: InvoiceStatus::Failed,
            first_failed_at: Some(now),
            paid_at: None,
            next_step: 1,
            last_email_ms: Some(now.as_millisecond()),
            emails_first: 1,
            ..Self::paid(merchant_id, invoice, now)
        }
    }

    /// An invoice paid now (before any failure we know of).
    pub fn paid(merchant_id: MerchantId, invoice: InvoiceFacts, now: Timestamp) -> Self {
        Self {
            merchant_id,
            invoice,
            status: InvoiceStatus::Paid,
            first_failed_at: None,
            paid_at: Some(now),
            recovered: false,
            next_step: 0,
            last_email_ms: None,
            emails_first: 0,
            emails_reminder: 0,
            emails_final: 0,
            emails_recovered: 0,
            updated_at: now,
        }
    }

    pub fn last_email_at(&self) -> Option<Timestamp> {
        self.last_email_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    }
}

/// A processed event's marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EventMarker {
    provider: String,
    event_id: String,
    kind: String,
    content_hash: String,
    at: Timestamp,
}

/// The marker of the event being processed.
pub struct EventKey<'a> {
    pub provider: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub content_hash: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// First failure: dunning started and we hold the first email's claim (or, `suppressed`, the
    /// claim was recorded as suppressed: nothing to send).
    Started { suppressed: bool },
    /// The invoice was already in dunning (a provider retry failed again): nothing to send now.
    AlreadyDunning,
    /// Already paid (a late failure): nothing changes, nothing is sent.
    AlreadyPaid,
    /// This event was processed before.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Paid after failing: dunning stopped and we hold the "all set" email's claim (unless the
    /// recipient is `suppressed`).
    Recovered {
        suppressed: bool,
    },
    /// Paid without a failure we knew of: recorded so a late failure is ignored.
    PaidFirst,
    AlreadyPaid,
    Duplicate,
}

/// What a dunning step claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepClaim {
    Claimed,
    /// The invoice advanced; the step's email was recorded as suppressed (nothing to send).
    Suppressed,
    /// The invoice moved (paid, or another sweep took the step).
    Moved,
    /// The step's email was claimed before.
    ClaimExists,
}

impl Store {
    fn event_put(
        &self,
        m: &MerchantId,
        ev: &EventKey<'_>,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let marker = EventMarker {
            provider: ev.provider.to_owned(),
            event_id: ev.event_id.to_owned(),
            kind: ev.kind.to_owned(),
            content_hash: ev.content_hash.to_owned(),
            at: now,
        };
        let mut item = to_item(
            EVENT,
            &keys::billing_event(m, ev.provider, ev.event_id),
            &marker,
        )?;
        item.insert(keys::TTL.into(), n(keys::expires_at(now, EVENT_MEMORY)));
        put(&self.table, item, Some("attribute_not_exists(PK)"))
    }

    /// Whether this event id was processed, and with which content hash.
    pub async fn billing_event_hash(
        &self,
        m: &MerchantId,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(
                "GetItem billing event",
                &keys::billing_event(m, provider, event_id),
            )
            .await?
            .map(|i| from_item::<EventMarker>(EVENT, i))
            .transpose()?
            .map(|e| e.content_hash))
    }

    /// Only the event's marker (events that change nothing else).
    pub async fn mark_billing_event(
        &self,
        m: &MerchantId,
        ev: &EventKey<'_>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        match self
            .transact(
                "TransactWriteItems billing event",
                vec![self.event_put(m, ev, now)?],
            )
            .await?
        {
            Attempt::Done => Ok(true),
            Attempt::Cancelled(_) => Ok(false),
        }
    }

    pub async fn get_invoice(
        &self,
        m: &MerchantId,
        id: &InvoiceId,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        self.get("GetItem invoice", &keys::invoice(m, id))
            .await?
            .map(|i| from_item(INVOICE, i))
            .transpose()
    }

    fn invoice_item(
        &self,
        record: &InvoiceRecord,
        due: Option<Timestamp>,
    ) -> Result<Item, StoreError> {
        let key = keys::invoice(&record.merchant_id, &record.invoice.id);
        let mut item = to_item(INVOICE, &key, record)?;
        if let Some(first) = record.first_failed_at {
            item.insert(
                keys::GSI1PK.into(),
                s(keys::dunning_index(&record.merchant_id)),
            );
            item.insert(
                keys::GSI1SK.into(),
                s(keys::time_sort_key(first, record.invoice.id.as_str())),
            );
        }
        if let Some(at) = due {
            item = with_due(item, DUNNING_GROUP, at, &key);
        }
        Ok(item)
    }

    /// A payment failed. `record` is the invoice in dunning (first email counted as sent),
    /// `claim` the first email's claim, `next_due` the first reminder.
    pub async fn record_payment_failed(
        &self,
        record: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: (&SendIdentity, &SendRecord),
        send_expires_at: i64,
        next_due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<FailureOutcome, StoreError> {
        let claim_key = keys::send(claim.0);
        let claim = (&claim_key, claim.1);
        let m = &record.merchant_id;
        let items = vec![
            put(
                &self.table,
                self.invoice_item(record, next_due)?,
                Some("attribute_not_exists(PK)"),
            )?,
            self.event_put(m, ev, now)?,
            put(
                &self.table,
                claim_item(claim.0, claim.1, send_expires_at)?,
                Some("attribute_not_exists(PK)"),
            )?,
        ];
        let guard = ClaimGuard::for_claim(&self.table, 2, claim.0, claim.1, send_expires_at)?;
        match self
            .transact_guarded("TransactWriteItems payment failed", items, guard)
            .await?
        {
            Guarded::Done => Ok(FailureOutcome::Started { suppressed: false }),
            Guarded::Suppressed => Ok(FailureOutcome::Started { suppressed: true }),
            Guarded::Cancelled(codes) if codes_failed(&codes, 1) => Ok(FailureOutcome::Duplicate),
            Guarded::Cancelled(_) => {
                // The invoice exists: remember the event, and report what state it is in.
                if !self.mark_billing_event(m, ev, now).await? {
                    return Ok(FailureOutcome::Duplicate);
                }
                let stored = self.get_invoice(m, &record.invoice.id).await?;
                Ok(match stored.map(|r| r.status) {
                    Some(InvoiceStatus::Paid) => FailureOutcome::AlreadyPaid,
                    _ => FailureOutcome::AlreadyDunning,
                })
            }
        }
    }

    /// A payment succeeded. If the invoice was in dunning (or exhausted), it becomes paid and
    /// recovered, leaves the due index and `claim` (the "all set" email) is taken, in one
    /// transaction; otherwise the paid invoice is recorded so a late failure changes nothing.
    pub async fn record_payment_succeeded(
        &self,
        paid: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: (&SendIdentity, &SendRecord),
        send_expires_at: i64,
        now: Timestamp,
    ) -> Result<PaymentOutcome, StoreError> {
        let claim_key = keys::send(claim.0);
        let claim = (&claim_key, claim.1);
        let m = &paid.merchant_id;
        let key = keys::invoice(m, &paid.invoice.id);
        let recover = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .update_expression(
                "SET #status = :paid, recovered = :true, paid_at = :now, updated_at = :now, \
                 emails_recovered = emails_recovered + :one REMOVE DUEPK, DUESK",
            )
            .condition_expression("#status IN (:failed, :exhausted)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":paid", s("paid"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":exhausted", s("exhausted"))
            .expression_attribute_values(
                ":true",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now.to_string()))
            .build()
            .map_err(build_err("build Update"))?;
        let items = vec![
            TransactWriteItem::builder().update(recover).build(),
            self.event_put(m, ev, now)?,
            put(
                &self.table,
                claim_item(claim.0, claim.1, send_expires_at)?,
                Some("attribute_not_exists(PK)"),
            )?,
        ];
        let guard = ClaimGuard::for_claim(&self.table, 2, claim.0, claim.1, send_expires_at)?;
        match self
            .transact_guarded("TransactWriteItems payment recovered", items, guard)
            .await?
        {
            Guarded::Done => return Ok(PaymentOutcome::Recovered { suppressed: false }),
            Guarded::Suppressed => return Ok(PaymentOutcome::Recovered { suppressed: true }),
            Guarded::Cancelled(codes) if codes_failed(&codes, 1) => {
                return Ok(PaymentOutcome::Duplicate);
            }
            Guarded::Cancelled(codes) if !codes_failed(&codes, 0) => {
                // Recovered before by another event (its claim exists): remember this one.
                return Ok(if self.mark_billing_event(m, ev, now).await? {
                    PaymentOutcome::AlreadyPaid
                } else {
                    PaymentOutcome::Duplicate
                });
            }
            Guarded::Cancelled(_) => {}
        }
        // Not in dunning: record it paid (unless it exists, i.e. already paid).
        let items = vec![
            put(
                &self.table,
                self.invoice_item(paid, None)?,
                Some("attribute_not_exists(PK)"),
            )?,
            self.event_put(m, ev, now)?,
        ];
        match self
            .transact("TransactWriteItems invoice paid", items)
            .await?
        {
            Attempt::Done => Ok(PaymentOutcome::PaidFirst),
            Attempt::Cancelled(codes) if codes_failed(&codes, 1) => Ok(PaymentOutcome::Duplicate),
            Attempt::Cancelled(_) => Ok(if self.mark_billing_event(m, ev, now).await? {
                PaymentOutcome::AlreadyPaid
            } else {
                PaymentOutcome::Duplicate
            }),
        }
    }

    /// Claims dunning step `step` (kind `step_kind`) of a due invoice: advances the invoice (if it
    /// is still failed and where the sweep saw it) and creates the email's claim, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_dunning_step(
        &self,
        due: &DueToken,
        step: u32,
        step_kind: &str,
        next: Option<Timestamp>,
        claim: (&SendIdentity, &SendRecord),
        send_expires_at: i64,
        now: Timestamp,
    ) -> Result<StepClaim, StoreError> {
        let key = &due.key();
        let seen_due_sk: &str = &due.seen;
        let claim_key = keys::send(claim.0);
        let claim = (&claim_key, claim.1);
        let counter = match step_kind {
            "first" => "emails_first",
            "final" => "emails_final",
            _ => "emails_reminder",
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .condition_expression("DUESK = :seen AND #status = :failed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", s(seen_due_sk))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":step", n(step + 1))
            .expression_attribute_values(":ms", n(now.as_millisecond()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now.to_string()));
        let base = format!(
            "SET next_step = :step, last_email_ms = :ms, updated_at = :now, {counter} = {counter} + :one"
        );
        let expression = match next {
            Some(at) => {
                let (pk, sk) = keys::due(DUNNING_GROUP, at, key);
                update = update
                    .expression_attribute_values(":dpk", s(pk))
                    .expression_attribute_values(":dsk", s(sk));
                format!("{base}, DUEPK = :dpk, DUESK = :dsk")
            }
            None => format!("{base} REMOVE DUEPK, DUESK"),
        };
        let update = update
            .update_expression(expression)
            .build()
            .map_err(build_err("build Update"))?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            put(
                &self.table,
                claim_item(claim.0, claim.1, send_expires_at)?,
                Some("attribute_not_exists(PK)"),
            )?,
        ];
        let guard = ClaimGuard::for_claim(&self.table, 1, claim.0, claim.1, send_expires_at)?;
        match self
            .transact_guarded("TransactWriteItems dunning step", items, guard)
            .await?
        {
            Guarded::Done => Ok(StepClaim::Claimed),
            Guarded::Suppressed => Ok(StepClaim::Suppressed),
            Guarded::Cancelled(codes) if codes_failed(&codes, 1) => Ok(StepClaim::ClaimExists),
            Guarded::Cancelled(_) => Ok(StepClaim::Moved),
        }
    }

    /// Moves a due invoice: to `until` (waiting), or out of the index as `exhausted` with
    /// `next_step` handled. Only if it is still failed and where the sweep saw it.
    pub async fn move_invoice_due(
        &self,
        due: &DueToken,
        until: Option<Timestamp>,
        exhausted_step: Option<u32>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = &due.key();
        let seen_due_sk: &str = &due.seen;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .condition_expression("DUESK = :seen AND #status = :failed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", s(seen_due_sk))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":now", s(now.to_string()));
        let expression = match (until, exhausted_step) {
            (_, Some(step)) => {
                req = req
                    .expression_attribute_values(":ex", s("exhausted"))
                    .expression_attribute_values(":step", n(step + 1));
                "SET #status = :ex, next_step = :step, updated_at = :now REMOVE DUEPK, DUESK"
                    .to_owned()
            }
            (Some(at), None) => {
                let (pk, sk) = keys::due(DUNNING_GROUP, at, key);
                req = req
                    .expression_attribute_values(":dpk", s(pk))
                    .expression_attribute_values(":dsk", s(sk));
                "SET DUEPK = :dpk, DUESK = :dsk, updated_at = :now".to_owned()
            }
            (None, None) => "SET updated_at = :now REMOVE DUEPK, DUESK".to_owned(),
        };
        let result = req.update_expression(expression).send().await;
        super::condition_held(result.map_err(|e| classify("UpdateItem invoice due", e)))
    }

    /// Invoices whose first failure lies in `[from, to)`.
    pub async fn invoices_failed_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let (items, _) = self
            .time_range("Query dunning", &keys::dunning_index(m), from, to, false)
            .await?;
        items.into_iter().map(|i| from_item(INVOICE, i)).collect()
    }

    /// The marker of a handled billing event, for a transaction of the caller's.
    pub fn billing_event_marker(
        &self,
        m: &MerchantId,
        ev: &EventKey<'_>,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        self.event_put(m, ev, now)
    }
}

/// Parses a dunning-group due item.
pub fn invoice_record(item: Item) -> Result<InvoiceRecord, StoreError> {
    from_item(INVOICE, item)
}
