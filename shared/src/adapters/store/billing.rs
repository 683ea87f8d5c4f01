//! Invoices in dunning, processed billing events, and refund reversals.
//!
//! Each billing event is one `TransactWriteItems`: the invoice's state change (conditioned on the
//! state it changes from), the event's marker (conditioned on not existing: the provider's event
//! id makes redeliveries duplicates) and, when the change owes the customer an email, that email's
//! send claim. Out-of-order delivery is settled by the invoice's state: once paid, a late failure
//! changes nothing and sends nothing.

use super::claims::Guarded;
use super::loyalty::Decided;
use super::write::{self, Attempt, codes_failed, put_new, with_due};
use super::{Item, Store, StoreError, from_items, keys, n, s, to_item, update_held};
use crate::domain::billing::{
    DunningStep, EventKey, FailureOutcome, InvoiceRecord, InvoiceStatus, PaymentOutcome, Reversal,
    StepClaim,
};
use crate::domain::ids::InvoiceId;
use crate::domain::loyalty::{LedgerEntry, LoyaltyState};
use crate::domain::order::OrderRecord;
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::DueToken;
use crate::ports::billing::{BillingBook, ClaimWrite};
use aws_sdk_dynamodb::types::TransactWriteItem;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const INVOICE: &str = "invoice";
const EVENT: &str = "billing_event";
/// Due-index group of invoices waiting for their next dunning step.
pub const DUNNING_GROUP: &str = "dunning";
/// How long a processed event id is remembered.
pub const EVENT_MEMORY: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);

/// A processed event's marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EventMarker {
    provider: String,
    event_id: String,
    kind: String,
    content_hash: String,
    at: Timestamp,
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
        put_new(&self.table, item)
    }

    async fn get_invoice(
        &self,
        m: &MerchantId,
        id: &InvoiceId,
    ) -> Result<Option<InvoiceRecord>, StoreError> {
        self.get_as("GetItem invoice", INVOICE, &keys::invoice(m, id))
            .await
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
                s(keys::dunning_index(&record.merchant_id, &record.invoice.id)),
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
}

impl Store {
    /// The customer's pointer to the invoice and the address notes (see `privacy.rs`), written
    /// with the invoice so the customer's export and erasure reach it.
    fn invoice_pointers(
        &self,
        record: &InvoiceRecord,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let m = &record.merchant_id;
        let customer = &record.invoice.customer;
        let pointer = to_item(
            "customer_invoice",
            &keys::customer_invoice(m, &customer.id, &record.invoice.id),
            &InvoicePointer {
                invoice_id: &record.invoice.id,
            },
        )?;
        let mut items = vec![write::put(&self.table, pointer, None)?];
        if let Some(email) = &customer.email {
            for note in super::privacy::address_notes(m, &customer.id, &email.normalized())? {
                items.push(write::put(&self.table, note, None)?);
            }
        }
        Ok(items)
    }
}

#[derive(serde::Serialize)]
struct InvoicePointer<'a> {
    invoice_id: &'a InvoiceId,
}

impl BillingBook for Store {
    /// Whether this event id was processed, and with which content hash.
    async fn event_hash(
        &self,
        m: &MerchantId,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let marker: Option<EventMarker> = self
            .get_as(
                "GetItem billing event",
                EVENT,
                &keys::billing_event(m, provider, event_id),
            )
            .await?;
        Ok(marker.map(|e| e.content_hash))
    }

    /// Only the event's marker (events that change nothing else).
    async fn mark_event(
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

    /// A payment failed. `record` is the invoice in dunning (first email counted as sent),
    /// `claim` the first email's claim, `next_due` the first reminder.
    async fn record_payment_failed(
        &self,
        record: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        next_due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<FailureOutcome, StoreError> {
        let m = &record.merchant_id;
        let (claim, guard) = self.guarded_claim(2, claim.id, claim.record, claim.expires_at)?;
        let mut items = vec![
            put_new(&self.table, self.invoice_item(record, next_due)?)?,
            self.event_put(m, ev, now)?,
            claim,
        ];
        items.extend(self.invoice_pointers(record)?);
        match self
            .transact_guarded("TransactWriteItems payment failed", items, guard)
            .await?
        {
            Guarded::Done => Ok(FailureOutcome::Started { suppressed: false }),
            Guarded::Suppressed => Ok(FailureOutcome::Started { suppressed: true }),
            Guarded::Cancelled(codes) if codes_failed(&codes, 1) => Ok(FailureOutcome::Duplicate),
            Guarded::Cancelled(_) => {
                // The invoice exists: remember the event, and report what state it is in.
                if !self.mark_event(m, ev, now).await? {
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
    async fn record_payment_succeeded(
        &self,
        paid: &InvoiceRecord,
        ev: &EventKey<'_>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> Result<PaymentOutcome, StoreError> {
        let m = &paid.merchant_id;
        let key = keys::invoice(m, &paid.invoice.id);
        let recover = self
            .tx_update(&key)
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
            .expression_attribute_values(":now", s(now.to_string()));
        let (claim, guard) = self.guarded_claim(2, claim.id, claim.record, claim.expires_at)?;
        let items = vec![write::update(recover)?, self.event_put(m, ev, now)?, claim];
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
                return Ok(if self.mark_event(m, ev, now).await? {
                    PaymentOutcome::AlreadyPaid
                } else {
                    PaymentOutcome::Duplicate
                });
            }
            Guarded::Cancelled(_) => {}
        }
        // Not in dunning: record it paid (unless it exists, i.e. already paid).
        let mut items = vec![
            put_new(&self.table, self.invoice_item(paid, None)?)?,
            self.event_put(m, ev, now)?,
        ];
        items.extend(self.invoice_pointers(paid)?);
        match self
            .transact("TransactWriteItems invoice paid", items)
            .await?
        {
            Attempt::Done => Ok(PaymentOutcome::PaidFirst),
            Attempt::Cancelled(codes) if codes_failed(&codes, 1) => Ok(PaymentOutcome::Duplicate),
            Attempt::Cancelled(_)
                if matches!(
                    self.get_invoice(m, &paid.invoice.id)
                        .await?
                        .map(|r| r.status),
                    Some(InvoiceStatus::Failed | InvoiceStatus::Exhausted)
                ) =>
            {
                // Not in dunning when the first write looked, in dunning now (a failure landed
                // between the two writes): decide again, so the payment recovers it.
                Err(StoreError::Transient {
                    operation: "TransactWriteItems invoice paid",
                    source: "the invoice entered dunning between the two writes".into(),
                })
            }
            Attempt::Cancelled(_) => Ok(if self.mark_event(m, ev, now).await? {
                PaymentOutcome::AlreadyPaid
            } else {
                PaymentOutcome::Duplicate
            }),
        }
    }

    /// Claims dunning step `step` of a due invoice: advances the invoice (if it
    /// is still failed and where the sweep saw it) and creates the email's claim, in one transaction.
    async fn claim_dunning_step(
        &self,
        due: &DueToken,
        step: &DunningStep,
        next: Option<Timestamp>,
        claim: ClaimWrite<'_>,
        now: Timestamp,
    ) -> Result<StepClaim, StoreError> {
        let key = &due.key();
        let seen_due_sk: &str = &due.seen;
        let counter = step.kind.email_counter();
        let mut update = self
            .tx_update(key)
            .condition_expression("DUESK = :seen AND #status = :failed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", s(seen_due_sk))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":step", n(step.index + 1))
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
        let (claim, guard) = self.guarded_claim(1, claim.id, claim.record, claim.expires_at)?;
        let items = vec![write::update(update.update_expression(expression))?, claim];
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
    async fn move_invoice_due(
        &self,
        due: &DueToken,
        until: Option<Timestamp>,
        exhausted_step: Option<u32>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = &due.key();
        let mut req = self
            .update_seen(due, Some("#status = :failed"))
            .expression_attribute_names("#status", "status")
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
        update_held("UpdateItem invoice due", req.update_expression(expression)).await
    }

    /// Invoices whose first failure lies in `[from, to)`.
    async fn invoices_failed_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let (items, _) = self
            .time_range(
                "Query dunning",
                keys::dunning_partitions(m),
                from,
                to,
                false,
            )
            .await?;
        from_items(INVOICE, items)
    }

    async fn refunded_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
        amount: i64,
    ) -> Result<Option<crate::domain::ids::ReturnId>, StoreError> {
        use crate::ports::returns::ReturnBook as _;
        let tally = self.return_tally(m, o).await?;
        let Some(tally) = tally.filter(|t| !t.returns.is_empty()) else {
            return Ok(None);
        };
        let returns = self.returns_of(m, &tally.returns).await?;
        Ok(crate::domain::returns::refunded_by(&returns, amount))
    }

    /// One transaction: the order must be there (a check) and the refund not noted yet (the
    /// tally's list does not hold it); the tally is created if the order has none, its version
    /// moved on so that a return deciding on an older read tries again.
    async fn note_refund(
        &self,
        m: &MerchantId,
        o: &OrderId,
        refund: &crate::domain::returns::ReportedRefund,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
        let entry =
            serde_dynamo::to_attribute_value::<_, AttributeValue>(refund).map_err(|source| {
                StoreError::Corrupt {
                    entity: "reported_refund",
                    source,
                }
            })?;
        let order = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(keys::order(m, o).to_map()))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(write::build_err("build ConditionCheck"))?;
        let tally = self
            .tx_update(&keys::order_returns(m, o))
            .update_expression(
                "SET #type = :t, refunds = list_append(if_not_exists(refunds, :none), :one) \
                 ADD version :inc",
            )
            .condition_expression("NOT contains(refunds, :entry)")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s("return_tally"))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":one", AttributeValue::L(vec![entry.clone()]))
            .expression_attribute_values(":entry", entry)
            .expression_attribute_values(":inc", n(1));
        let items = vec![
            TransactWriteItem::builder().condition_check(order).build(),
            write::update(tally)?,
        ];
        // Cancelled: the order is not held, or the refund is noted already. Either way, done.
        self.transact("TransactWriteItems reported refund", items)
            .await?;
        Ok(())
    }

    async fn refunded_order(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<OrderRecord>, StoreError> {
        self.get_order(m, o).await
    }

    /// The loyalty ledger's own read-decide-post loop, with the event's marker as its extra item.
    async fn post_reversal(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        event: Option<&EventKey<'_>>,
        now: Timestamp,
        decide: impl FnMut(&LoyaltyState) -> Option<LedgerEntry> + Send,
    ) -> Result<Reversal, StoreError> {
        let marker = event.map(|ev| self.event_put(m, ev, now)).transpose()?;
        let extra: Vec<TransactWriteItem> = marker.into_iter().collect();
        Ok(
            match self.decide_and_post(m, c, now, &extra, decide).await? {
                Decided::Posted { entry, .. } => Reversal::Posted { entry },
                Decided::Declined(state) => Reversal::Declined(state),
                Decided::Duplicate(state) => Reversal::Duplicate(state),
                Decided::ExtraRefused(_) => Reversal::EventSeen,
                Decided::Busy => Reversal::Busy,
            },
        )
    }
}
