//! The post-delivery follow-ups in memory, over the send ledger's table and under the DynamoDB
//! store's keys: the follow-up item carries its place in the due index (`DUEPK`, `DUESK`, read by
//! [`DueWork`] like the store's index), every move is conditioned on `DUESK` still being where the
//! sweep saw it, and a claim is one all-or-nothing transaction of the follow-up's mark, the
//! contact-state stamp (conditioned on the cap, the survey throttle and the subscription), the
//! send claim (only where none exists) and the suppression check, cancelled item by item as
//! TransactWriteItems is.

use super::ledger::MemSendLedger;
use super::loyalty::{entry_put, ledger_state};
use super::table::{Condition, MemTable, RowKey, Write, absent, always, parse, row};
use crate::adapters::store::followups::ContactItem;
use crate::adapters::store::keys;
use crate::domain::catalogue::{MAX_FOLLOW_UP_SKUS, Sku};
use crate::domain::followup::{DecisionEntry, FollowUp, FollowUpStatus};
use crate::domain::followup_sweep::{ContactGuard, FollowUpClaim, FollowUpContext};
use crate::domain::loyalty::{LedgerEntry, LoyaltyState};
use crate::domain::marketing::ContactState;
use crate::domain::order::OrderRecord;
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::{CustomerId, EmailAddress, MerchantId, OrderId};
use crate::ports::catalogue::read_set;
use crate::ports::followups::FollowUpBook;
use crate::ports::{DueGroup, DueToken, SendLedger, StoreError};
use jiff::Timestamp;
use serde_json::{Value, json};

const GROUP: DueGroup = DueGroup::FollowUps;

#[derive(Clone, Default)]
pub struct MemFollowUps {
    /// The send ledger over the same table (its claims are the follow-ups' emails; it holds the
    /// suppression list).
    pub ledger: MemSendLedger,
    /// Batch reads of products outside the follow-up's context read.
    pub product_reads: super::products::BatchReads,
}

/// `DUESK = :seen`.
fn still_at(seen: &str) -> Condition {
    let seen = seen.to_owned();
    Box::new(move |row| row.is_some_and(|r| r["DUESK"] == json!(seen)))
}

/// Appends `decision` to the row's decisions (`list_append(if_not_exists(...))`).
fn append_decision(row: &mut Value, decision: Value) {
    match row["decisions"].as_array_mut() {
        Some(list) => list.push(decision),
        None => row["decisions"] = json!([decision]),
    }
}

fn remove(row: &mut Value, field: &str) {
    if let Some(map) = row.as_object_mut() {
        map.remove(field);
    }
}

impl MemFollowUps {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        &self.ledger.table
    }

    fn key(m: &MerchantId, f: &FollowUp) -> RowKey {
        RowKey::from(&keys::follow_up(m, &f.order_id, f.kind.as_str()))
    }

    /// Schedules `follow_up` of merchant `m`: the item, in the due index at its `due_at`.
    pub fn schedule(&self, m: &MerchantId, follow_up: &FollowUp) -> Result<(), StoreError> {
        let key = keys::follow_up(m, &follow_up.order_id, follow_up.kind.as_str());
        let (pk, sk) = keys::due(GROUP.as_str(), follow_up.due_at, &key);
        let mut item = row(follow_up)?;
        item["DUEPK"] = json!(pk);
        item["DUESK"] = json!(sk);
        self.table().write(Write::Put {
            key: RowKey::from(&key),
            row: item,
            condition: always(),
        })?;
        Ok(())
    }

    /// The follow-up item as stored: the follow-up and its due sort key (`None`: out of the index).
    pub fn follow_up(&self, m: &MerchantId, f: &FollowUp) -> Option<(FollowUp, Option<String>)> {
        let item = self.table().get(&Self::key(m, f))?;
        let seen = item["DUESK"].as_str().map(str::to_owned);
        let follow_up = serde_json::from_value(item).ok()?;
        Some((follow_up, seen))
    }

    /// The field `field` of the follow-up item as stored.
    pub fn field(&self, m: &MerchantId, f: &FollowUp, field: &str) -> Value {
        self.table()
            .get(&Self::key(m, f))
            .map(|item| item[field].clone())
            .unwrap_or(Value::Null)
    }

    /// Stores the order (as order-placed does).
    pub fn put_order(&self, record: &OrderRecord) -> Result<(), StoreError> {
        let key = keys::order(&record.merchant_id, &record.order.id);
        self.table().write(Write::Put {
            key: RowKey::from(&key),
            row: row(record)?,
            condition: always(),
        })?;
        Ok(())
    }

    /// Deletes the order (an erasure).
    pub fn erase_order(&self, m: &MerchantId, o: &OrderId) {
        self.table().remove(&RowKey::from(&keys::order(m, o)));
    }

    /// Replaces the customer's contact state (an unsubscribe, a preference, an earlier email).
    pub fn set_contact(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        contact: &ContactState,
    ) -> Result<(), StoreError> {
        self.table().write(Write::Put {
            key: RowKey::from(&keys::contact(m, c)),
            // The store's contact item: times as epoch milliseconds, for conditions.
            row: json!({
                "unsubscribed": contact.unsubscribed,
                "unsubscribed_at": contact.unsubscribed_at,
                "opted_out": contact.opted_out,
                "last_marketing_ms": contact.last_marketing_at.map(|t| t.as_millisecond()),
                "last_survey_ms": contact.last_survey_at.map(|t| t.as_millisecond()),
                "locale": contact.locale,
                "time_zone": contact.time_zone,
            }),
            condition: always(),
        })?;
        Ok(())
    }

    /// The customer's contact state as stored.
    pub fn contact(&self, m: &MerchantId, c: &CustomerId) -> ContactState {
        parse::<ContactItem>(self.table().get(&RowKey::from(&keys::contact(m, c))))
            .ok()
            .flatten()
            .unwrap_or_default()
            .into()
    }

    /// Posts `entry` to the customer's loyalty ledger.
    pub fn post_points(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        entry: &LedgerEntry,
    ) -> Result<(), StoreError> {
        self.table().write(entry_put(m, c, entry)?)?;
        self.table().write(Write::Update {
            key: RowKey::from(&keys::ledger_summary(m, c)),
            condition: always(),
            apply: Box::new(|current| {
                let mut summary = current.unwrap_or_else(|| json!({}));
                let version = summary["version"].as_u64().unwrap_or(0) + 1;
                summary["version"] = json!(version);
                summary
            }),
        })?;
        Ok(())
    }

    fn suppressed(&self, m: &MerchantId, email: &EmailAddress) -> bool {
        self.table()
            .get(&RowKey::from(&keys::suppression(m, email)))
            .is_some()
    }
}

impl super::products::CatalogueRows for MemFollowUps {
    fn rows(&self) -> (&MemTable, &super::products::BatchReads) {
        (self.table(), &self.product_reads)
    }
}

impl FollowUpBook for MemFollowUps {
    async fn follow_up_context(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        customer: &CustomerId,
        recipient: Option<&EmailAddress>,
        send: &SendIdentity,
        products: &[Sku],
    ) -> Result<FollowUpContext, StoreError> {
        let order: Option<OrderRecord> =
            parse(self.table().get(&RowKey::from(&keys::order(m, order_id))))?;
        let suppressed = match (recipient, &order) {
            (Some(email), _) => self.suppressed(m, email),
            (None, Some(o)) => o
                .order
                .customer
                .email
                .as_ref()
                .is_some_and(|email| self.suppressed(m, email)),
            (None, None) => false,
        };
        let return_open = parse::<crate::domain::returns::ReturnTally>(
            self.table()
                .get(&RowKey::from(&keys::order_returns(m, order_id))),
        )?
        .is_some_and(|t| t.any_open());
        Ok(FollowUpContext {
            return_open,
            contact: crate::ports::ContactLookup::contact(self, m, customer).await?,
            send: self.ledger.get_send(send).await?,
            order,
            suppressed,
            // Read with the rest, as the store's one BatchGetItem does (not a batch read of its own).
            products: super::products::read(
                self.table(),
                &super::products::BatchReads::default(),
                m,
                &read_set(products)
                    .into_iter()
                    .take(MAX_FOLLOW_UP_SKUS)
                    .cloned()
                    .collect::<Vec<_>>(),
            )?,
        })
    }

    async fn claim_follow_up(
        &self,
        due: &DueToken,
        contact: (&MerchantId, &CustomerId),
        guard: ContactGuard,
        claim: (&SendIdentity, &SendRecord),
        _send_expires_at: i64,
        now: Timestamp,
    ) -> Result<FollowUpClaim, StoreError> {
        let now_ms = now.as_millisecond();
        let mark = Write::Update {
            key: RowKey::from(&due.key()),
            condition: still_at(&due.seen),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["status"] = json!(FollowUpStatus::Sending.as_str());
                row["claimed_at"] = json!(now);
                row
            }),
        };
        let (cap, throttle) = (
            guard.cap_since.map(|t| t.as_millisecond()),
            guard.survey_since.map(|t| t.as_millisecond()),
        );
        let is_survey = guard.is_survey;
        let allowed = move |row: Option<&Value>| {
            let at_or_before = |field: &str, limit: Option<i64>| match (limit, row) {
                (Some(limit), Some(r)) => r[field].as_i64().is_none_or(|ms| ms <= limit),
                _ => true,
            };
            let subscribed = row.is_none_or(|r| r["unsubscribed"] != json!(true));
            subscribed
                && at_or_before("last_marketing_ms", cap)
                && (!is_survey || at_or_before("last_survey_ms", throttle))
        };
        let stamp = Write::Update {
            key: RowKey::from(&keys::contact(contact.0, contact.1)),
            condition: Box::new(allowed),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["last_marketing_ms"] = json!(now_ms);
                row["updated_at"] = json!(now);
                if is_survey {
                    row["last_survey_ms"] = json!(now_ms);
                }
                row
            }),
        };
        let (id, record) = claim;
        let writes = vec![
            mark,
            stamp,
            MemSendLedger::claim_write(id, record, false)?,
            MemSendLedger::suppression_check(id, &record.recipient, absent()),
        ];
        Ok(match self.table().transact(writes)? {
            Ok(()) => FollowUpClaim::Claimed,
            Err(c) if c.failed(2) => FollowUpClaim::ClaimExists,
            Err(c) if c.failed(0) => FollowUpClaim::Moved,
            Err(_) => FollowUpClaim::ContactChanged,
        })
    }

    async fn defer_follow_up(
        &self,
        due: &DueToken,
        until: Timestamp,
        decision: &DecisionEntry,
    ) -> Result<bool, StoreError> {
        let key = due.key();
        let (pk, sk) = keys::due(GROUP.as_str(), until, &key);
        let decision = row(decision)?;
        self.table().write(Write::Update {
            key: RowKey::from(&key),
            condition: still_at(&due.seen),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["DUEPK"] = json!(pk);
                row["DUESK"] = json!(sk);
                row["due_at"] = json!(until);
                row["status"] = json!(FollowUpStatus::Scheduled.as_str());
                append_decision(&mut row, decision);
                row
            }),
        })
    }

    async fn settle_follow_up(
        &self,
        due: &DueToken,
        status: FollowUpStatus,
        decision: &DecisionEntry,
        message_id: Option<&str>,
        survey_sent: Option<(&MerchantId, &OrderId)>,
    ) -> Result<bool, StoreError> {
        let outcome = decision
            .reason
            .clone()
            .unwrap_or_else(|| status.as_str().to_owned());
        let at = decision.at;
        let decision = row(decision)?;
        let message_id = message_id.map(str::to_owned);
        let survey_index = survey_sent.map(|(m, o)| {
            (
                keys::surveys_sent_index(m, o),
                keys::time_sort_key(at, o.as_str()),
            )
        });
        self.table().write(Write::Update {
            key: RowKey::from(&due.key()),
            condition: still_at(&due.seen),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["status"] = json!(status.as_str());
                row["outcome"] = json!(outcome);
                row["done_at"] = json!(at);
                append_decision(&mut row, decision);
                if let Some(id) = message_id {
                    row["message_id"] = json!(id);
                }
                if let Some((pk, sk)) = survey_index {
                    row["GSI1PK"] = json!(pk);
                    row["GSI1SK"] = json!(sk);
                }
                remove(&mut row, "DUEPK");
                remove(&mut row, "DUESK");
                row
            }),
        })
    }

    async fn points_ledger(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<LoyaltyState, StoreError> {
        ledger_state(self.table(), m, c)
    }

    async fn note_available(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // Only on a summary that exists, and never backwards.
        self.table().write(Write::Update {
            key: RowKey::from(&keys::ledger_summary(m, c)),
            condition: Box::new(move |row| {
                row.is_some_and(|r| {
                    r["available_noted_at"]
                        .as_str()
                        .and_then(|t| t.parse::<Timestamp>().ok())
                        .is_none_or(|noted| noted < now)
                })
            }),
            apply: Box::new(move |row| {
                let mut row = row.unwrap_or_else(|| json!({}));
                row["available_noted_at"] = json!(now.to_string());
                row
            }),
        })?;
        Ok(())
    }
}

impl crate::ports::ContactLookup for MemFollowUps {
    async fn contact(&self, m: &MerchantId, c: &CustomerId) -> Result<ContactState, StoreError> {
        Ok(
            parse::<ContactItem>(self.table().get(&RowKey::from(&keys::contact(m, c))))?
                .unwrap_or_default()
                .into(),
        )
    }
}
