//! Sending the post-delivery journey: follow-up transitions, the customer's contact state
//! (unsubscribe, last marketing email, last survey), suppression look-ups and survey answers.
//!
//! A follow-up leaves the due index exactly once. Every transition is conditioned on the follow-up
//! still sitting where the sweep found it (`DUESK = :seen`), so two overlapping sweeps cannot both
//! act on it; the send itself is claimed in the same transaction that stamps the customer's
//! contact state, whose condition re-checks the frequency cap and survey throttle, so two sweeps
//! racing for *different* follow-ups of one customer cannot both pass the cap either.

use super::claims::{SendIdentity, SendRecord, claim_put, suppression_check};
use super::orders::OrderRecord;
use super::products::found_products;
use super::shipments::FOLLOW_UP_GROUP;
use super::write::{self, Attempt, build_err, codes_failed};
use super::{
    Item, Store, StoreError, classify, from_item, from_items, keys, n, s, to_item, update_held,
};
use crate::domain::catalogue::{MAX_FOLLOW_UP_SKUS, Sku};
use crate::domain::followup::FollowUpKind;
use crate::domain::followup::{
    DecisionAction, DecisionEntry, FollowUp, FollowUpStatus, LinesDropped,
};
use crate::domain::followup_sweep::{ContactGuard, FollowUpClaim, FollowUpContext};
use crate::domain::marketing::ContactState;
use crate::domain::survey::FeedbackRecord;
use crate::domain::{CustomerId, EmailAddress, MerchantId, OrderId};
use crate::ports::DueToken;
use crate::ports::catalogue::read_set;
use crate::ports::feedback::FeedbackBook;
use crate::ports::followups::FollowUpBook;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue, Select};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(super) const CONTACT: &str = "contact";
const FEEDBACK: &str = "feedback";
const SUPPRESSION: &str = "suppression";

/// The contact-state item as stored: times as epoch milliseconds so conditions can compare them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ContactItem {
    #[serde(default)]
    unsubscribed: bool,
    #[serde(default)]
    unsubscribed_at: Option<Timestamp>,
    #[serde(default)]
    opted_out: Vec<FollowUpKind>,
    #[serde(default)]
    last_marketing_ms: Option<i64>,
    #[serde(default)]
    last_survey_ms: Option<i64>,
    #[serde(default)]
    locale: Option<crate::domain::Locale>,
    #[serde(default)]
    time_zone: Option<String>,
}

impl From<ContactItem> for ContactState {
    fn from(c: ContactItem) -> Self {
        let at = |ms: Option<i64>| ms.and_then(|ms| Timestamp::from_millisecond(ms).ok());
        ContactState {
            unsubscribed: c.unsubscribed,
            unsubscribed_at: c.unsubscribed_at,
            opted_out: c.opted_out.into_iter().collect(),
            last_marketing_at: at(c.last_marketing_ms),
            last_survey_at: at(c.last_survey_ms),
            locale: c.locale,
            time_zone: c.time_zone,
        }
    }
}

/// A suppressed address. The item holds no address: its key is the address's digest (see
/// `keys.rs`), so the suppression outlives the erasure of its person without naming them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// `hard_bounce`, `complaint`, `soft_bounces`, `merchant`.
    pub reason: String,
    pub at: Timestamp,
}

impl Store {
    /// Consistent BatchGetItem of up to 100 keys, retrying unprocessed keys.
    pub(crate) async fn batch_get(
        &self,
        operation: &'static str,
        keys_wanted: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut out = HashMap::new();
        let mut pending = keys_wanted;
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_err("build KeysAndAttributes"))?;
            let resp = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            for item in resp
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                    (item.get(keys::PK), item.get(keys::SK))
                {
                    out.insert((pk.clone(), sk.clone()), item);
                }
            }
            if let Some(mut left) = resp.unprocessed_keys
                && let Some(k) = left.remove(&self.table)
            {
                pending = k.keys;
            }
            if !pending.is_empty() {
                if round >= 5 {
                    return Err(StoreError::Transient {
                        operation,
                        source: "unprocessed keys after 5 rounds".into(),
                    });
                }
                tokio::time::sleep(crate::retry::backoff(round)).await;
            }
        }
        Ok(out)
    }

    pub async fn is_suppressed(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> Result<bool, StoreError> {
        Ok(self
            .get("GetItem suppression", &keys::suppression(m, email))
            .await?
            .is_some())
    }

    /// Suppresses an address for this merchant (kept until lifted).
    pub async fn put_suppression(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let record = Suppression {
            reason: reason.to_owned(),
            at: now,
        };
        let item = to_item(SUPPRESSION, &keys::suppression(m, email), &record)?;
        self.put_item("PutItem suppression", item).await
    }

    /// Every gsi1 item of a sharded listing (its `partitions`) whose time sort key lies in
    /// `[from, to)`, oldest first, or only their count: one Query per shard.
    pub(super) async fn time_range(
        &self,
        operation: &'static str,
        partitions: Vec<String>,
        from: Timestamp,
        to: Timestamp,
        count_only: bool,
    ) -> Result<(Vec<Item>, u64), StoreError> {
        let queries = partitions
            .into_iter()
            .map(|partition| {
                let query = self
                    .table_query()
                    .index_name(keys::GSI1)
                    .key_condition_expression("GSI1PK = :p AND GSI1SK BETWEEN :from AND :to")
                    .expression_attribute_values(":p", s(partition))
                    .expression_attribute_values(":from", s(keys::time_sort_key(from, "")))
                    .expression_attribute_values(":to", s(keys::time_sort_key(to, "")));
                if count_only {
                    query.select(Select::Count)
                } else {
                    query
                }
            })
            .collect();
        let mut pages = self.query_each(operation, queries).await?;
        pages.items.sort_by(|a, b| {
            a.get(keys::GSI1SK)
                .and_then(|v| v.as_s().ok())
                .cmp(&b.get(keys::GSI1SK).and_then(|v| v.as_s().ok()))
        });
        Ok((pages.items, pages.count))
    }
}

/// Survey answers and the follow-ups an answer changes.
impl FeedbackBook for Store {
    async fn cancel_follow_ups(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        kinds: &[FollowUpKind],
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<FollowUpKind>, StoreError> {
        let decision = DecisionEntry::new(now, DecisionAction::Cancelled, Some(reason));
        let mut cancelled = Vec::new();
        for kind in kinds {
            let update = self
                .update_item(&keys::follow_up(m, order_id, kind.as_str()))
                .update_expression(
                    "SET #status = :cancelled, outcome = :reason, done_at = :now, \
                     decisions = list_append(if_not_exists(decisions, :empty), :d) \
                     REMOVE DUEPK, DUESK",
                )
                .condition_expression("attribute_exists(DUEPK) AND #status = :scheduled")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":cancelled", s(FollowUpStatus::Cancelled.as_str()))
                .expression_attribute_values(":scheduled", s(FollowUpStatus::Scheduled.as_str()))
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":now", s(now.to_string()))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":d", decision_list(&decision)?);
            if update_held("UpdateItem cancel follow-up", update).await? {
                cancelled.push(*kind);
            }
        }
        Ok(cancelled)
    }

    async fn drop_follow_up_skus(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
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
            let key = keys::follow_up(m, order_id, kind.as_str());
            let mut attempt = 0;
            loop {
                let Some(item) = self.get("GetItem follow-up", &key).await? else {
                    break;
                };
                // The write's condition decides; after a refusal, what was read tells why.
                if attempt > 0
                    && (!item.contains_key(keys::DUEPK)
                        || item.get("status") != Some(&s(FollowUpStatus::Scheduled.as_str())))
                {
                    break;
                }
                if attempt == DROP_ATTEMPTS {
                    return Err(StoreError::Transient {
                        operation: "UpdateItem drop follow-up lines",
                        source: "the follow-up kept changing".into(),
                    });
                }
                attempt += 1;
                let follow_up: FollowUp = from_item("follow_up", item)?;
                let Some(after) = follow_up.without_lines(skus) else {
                    break;
                };
                // Conditioned on the follow-up as read: scheduled, due, and both SKU lists as
                // they were (a rival drop of other lines makes this one read again).
                let mut condition =
                    String::from("attribute_exists(DUEPK) AND #status = :scheduled");
                let mut update = self
                    .update_item(&key)
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":scheduled",
                        s(FollowUpStatus::Scheduled.as_str()),
                    )
                    .expression_attribute_values(":refunded", sku_list(&after.refunded_skus)?);
                // (A follow-up that kept no SKUs never gets any: only its refunded ones change.)
                if !follow_up.skus.is_empty() {
                    condition.push_str(" AND skus = :seen_skus");
                    update = update
                        .expression_attribute_values(":seen_skus", sku_list(&follow_up.skus)?);
                }
                if follow_up.refunded_skus.is_empty() {
                    condition.push_str(" AND attribute_not_exists(refunded_skus)");
                } else {
                    condition.push_str(" AND refunded_skus = :seen_refunded");
                    update = update.expression_attribute_values(
                        ":seen_refunded",
                        sku_list(&follow_up.refunded_skus)?,
                    );
                }
                update = update.condition_expression(condition);
                let outcome = if after.cancel {
                    let decision = DecisionEntry::new(now, DecisionAction::Cancelled, Some(reason));
                    update = update
                        .update_expression(
                            "SET #status = :cancelled, outcome = :reason, done_at = :now, \
                             refunded_skus = :refunded, \
                             decisions = list_append(if_not_exists(decisions, :empty), :d) \
                             REMOVE DUEPK, DUESK, skus",
                        )
                        .expression_attribute_values(
                            ":cancelled",
                            s(FollowUpStatus::Cancelled.as_str()),
                        )
                        .expression_attribute_values(":reason", s(reason))
                        .expression_attribute_values(":now", s(now.to_string()))
                        .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                        .expression_attribute_values(":d", decision_list(&decision)?);
                    LinesDropped::Cancelled
                } else if after.skus.is_empty() {
                    // It kept no SKUs (scheduled before follow-ups did): only the record.
                    update = update.update_expression("SET refunded_skus = :refunded");
                    LinesDropped::Trimmed
                } else {
                    update = update
                        .update_expression("SET skus = :skus, refunded_skus = :refunded")
                        .expression_attribute_values(":skus", sku_list(&after.skus)?);
                    LinesDropped::Trimmed
                };
                if update_held("UpdateItem drop follow-up lines", update).await? {
                    changed.push((*kind, outcome));
                    break;
                }
            }
        }
        Ok(changed)
    }

    async fn bring_forward(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        kind: FollowUpKind,
        at: Timestamp,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let key = keys::follow_up(m, order_id, kind.as_str());
        let Some(item) = self.get("GetItem follow-up", &key).await? else {
            return Ok(false);
        };
        let Some(AttributeValue::S(seen)) = item.get(keys::DUESK).cloned() else {
            return Ok(false);
        };
        let follow_up: FollowUp = from_item("follow_up", item)?;
        if follow_up.status != FollowUpStatus::Scheduled || follow_up.due_at <= at {
            return Ok(false);
        }
        let mut decision = DecisionEntry::new(at, DecisionAction::Rescheduled, Some(reason));
        decision.until = Some(at);
        self.defer_follow_up(&DueToken::at(&key, &seen), at, &decision)
            .await
    }

    async fn feedback(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<FeedbackRecord>, StoreError> {
        self.get_as("GetItem feedback", FEEDBACK, &keys::feedback(m, o))
            .await
    }

    async fn put_feedback(
        &self,
        record: &FeedbackRecord,
        replaces: Option<u32>,
    ) -> Result<bool, StoreError> {
        let key = keys::feedback(&record.merchant_id, &record.order_id);
        let mut item = to_item(FEEDBACK, &key, record)?;
        item.insert(
            keys::GSI1PK.into(),
            s(keys::feedback_index(&record.merchant_id, &record.order_id)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(keys::time_sort_key(
                record.answered_at,
                record.order_id.as_str(),
            )),
        );
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::None);
        req = match replaces {
            None => req.condition_expression("attribute_not_exists(PK)"),
            Some(count) => req
                .condition_expression("answers = :replaces")
                .expression_attribute_values(":replaces", n(count)),
        };
        let result = req.send().await;
        super::condition_held(result.map_err(|e| classify("PutItem feedback", e)))
    }

    async fn feedback_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<FeedbackRecord>, StoreError> {
        let (items, _) = self
            .time_range(
                "Query feedback",
                keys::feedback_partitions(m),
                from,
                to,
                false,
            )
            .await?;
        from_items(FEEDBACK, items)
    }

    async fn surveys_sent_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<u64, StoreError> {
        let (_, count) = self
            .time_range(
                "Query surveys sent",
                keys::surveys_sent_partitions(m),
                from,
                to,
                true,
            )
            .await?;
        Ok(count)
    }
}

/// The follow-ups' moves: each conditioned on the follow-up still sitting where the sweep found it
/// (`DUESK = :seen`).
impl FollowUpBook for Store {
    /// The order, the customer's contact state, whether the recipient is suppressed and the
    /// follow-up's send record (`send`), in one round trip.
    async fn follow_up_context(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
        customer: &CustomerId,
        recipient: Option<&EmailAddress>,
        send: &SendIdentity,
        products: &[Sku],
    ) -> Result<FollowUpContext, StoreError> {
        let order_key = keys::order(m, order_id);
        let contact_key = keys::contact(m, customer);
        let send_key = &keys::send(send);
        let returns_key = keys::order_returns(m, order_id);
        let mut wanted = vec![
            order_key.to_map(),
            contact_key.to_map(),
            send_key.to_map(),
            returns_key.to_map(),
        ];
        if let Some(email) = recipient {
            wanted.push(keys::suppression(m, email).to_map());
        }
        // The order's products ride along: at most 90 of them, so the batch stays within 100 keys.
        let skus: Vec<&Sku> = read_set(products)
            .into_iter()
            .take(MAX_FOLLOW_UP_SKUS)
            .collect();
        wanted.extend(skus.iter().map(|sku| keys::product(m, sku).to_map()));
        let mut found = self
            .batch_get("BatchGetItem follow-up context", wanted)
            .await?;
        let mut take = |k: &keys::Key| found.remove(&(k.pk.clone(), k.sk.clone()));
        let order: Option<OrderRecord> = take(&order_key)
            .map(|i| from_item("order", i))
            .transpose()?;
        let contact = take(&contact_key)
            .map(|i| from_item::<ContactItem>(CONTACT, i))
            .transpose()?
            .unwrap_or_default()
            .into();
        let send: Option<SendRecord> = take(send_key).map(|i| from_item("send", i)).transpose()?;
        let return_open = take(&returns_key)
            .map(|i| from_item::<crate::domain::returns::ReturnTally>("return_tally", i))
            .transpose()?
            .is_some_and(|t| t.any_open());
        let suppression = recipient.and_then(|email| take(&keys::suppression(m, email)));
        let products = found_products(m, &skus, found);
        let suppressed = match (recipient, &order) {
            (Some(_), _) => suppression.is_some(),
            // Records written before the recipient was kept on the follow-up: one more read.
            (None, Some(o)) => match &o.order.customer.email {
                Some(email) => self.is_suppressed(m, email).await?,
                None => false,
            },
            (None, None) => false,
        };
        Ok(FollowUpContext {
            order,
            contact,
            suppressed,
            send,
            products,
            return_open,
        })
    }

    /// Claims a follow-up's send: in one transaction, marks the follow-up `sending` (if it is still
    /// where the sweep saw it), stamps the contact state (if the cap and throttle still allow it and
    /// the customer is still subscribed) and creates the send claim.
    async fn claim_follow_up(
        &self,
        due: &DueToken,
        contact: (&MerchantId, &CustomerId),
        guard: ContactGuard,
        claim: (&SendIdentity, &SendRecord),
        send_expires_at: i64,
        now: Timestamp,
    ) -> Result<FollowUpClaim, StoreError> {
        let follow_up = &due.key();
        let seen_due_sk: &str = &due.seen;
        let contact = &keys::contact(contact.0, contact.1);
        let claim_key = keys::send(claim.0);
        let claim = (&claim_key, claim.1);
        let mark = self
            .tx_update(follow_up)
            .update_expression("SET #status = :sending, claimed_at = :now")
            .condition_expression("DUESK = :seen")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s(FollowUpStatus::Sending.as_str()))
            .expression_attribute_values(":seen", s(seen_due_sk))
            .expression_attribute_values(":now", s(now.to_string()));

        let mut set = "SET last_marketing_ms = :now_ms, updated_at = :now, #type = :t".to_owned();
        let mut condition =
            "(attribute_not_exists(unsubscribed) OR unsubscribed = :false)".to_owned();
        let mut stamp = self
            .tx_update(contact)
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":now_ms", n(now.as_millisecond()))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":t", s(CONTACT))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        if let Some(since) = guard.cap_since {
            condition.push_str(
                " AND (attribute_not_exists(last_marketing_ms) OR last_marketing_ms <= :cap)",
            );
            stamp = stamp.expression_attribute_values(":cap", n(since.as_millisecond()));
        }
        if guard.is_survey {
            set.push_str(", last_survey_ms = :now_ms");
            if let Some(since) = guard.survey_since {
                condition.push_str(
                    " AND (attribute_not_exists(last_survey_ms) OR last_survey_ms <= :throttle)",
                );
                stamp = stamp.expression_attribute_values(":throttle", n(since.as_millisecond()));
            }
        }
        let stamp = stamp.update_expression(set).condition_expression(condition);
        let (claim_key, record) = claim;
        let items = vec![
            write::update(mark)?,
            write::update(stamp)?,
            claim_put(&self.table, claim_key, record, send_expires_at)?,
            // The recipient is not suppressed (a failure here means: decide again, reading it).
            suppression_check(&self.table, claim_key, record)?,
        ];
        match self
            .transact("TransactWriteItems claim follow-up", items)
            .await?
        {
            Attempt::Done => Ok(FollowUpClaim::Claimed),
            Attempt::Cancelled(codes) => {
                let failed = |i: usize| codes_failed(&codes, i);
                Ok(if failed(2) {
                    FollowUpClaim::ClaimExists
                } else if failed(0) {
                    FollowUpClaim::Moved
                } else {
                    FollowUpClaim::ContactChanged
                })
            }
        }
    }

    /// Moves a follow-up to `until` in the due index, recording why. False if another sweep moved
    /// it first.
    async fn defer_follow_up(
        &self,
        due: &DueToken,
        until: Timestamp,
        decision: &DecisionEntry,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = keys::due(FOLLOW_UP_GROUP, until, &due.key());
        let update = self
            .update_seen(due, None)
            .update_expression(
                "SET DUEPK = :pk, DUESK = :sk, due_at = :until, #status = :scheduled, \
                 decisions = list_append(if_not_exists(decisions, :empty), :d)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":sk", s(sk))
            .expression_attribute_values(":until", s(until.to_string()))
            .expression_attribute_values(":scheduled", s(FollowUpStatus::Scheduled.as_str()))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":d", decision_list(decision)?);
        update_held("UpdateItem defer follow-up", update).await
    }

    /// Takes a follow-up out of the due index for good with `status` and `outcome`, only if it is
    /// still where the sweep saw it. `survey_sent` adds it to the merchant's sent-surveys index.
    /// False if it had moved.
    async fn settle_follow_up(
        &self,
        due: &DueToken,
        status: FollowUpStatus,
        decision: &DecisionEntry,
        message_id: Option<&str>,
        survey_sent: Option<(&MerchantId, &OrderId)>,
    ) -> Result<bool, StoreError> {
        let mut set = "SET #status = :status, outcome = :outcome, done_at = :now, \
                       decisions = list_append(if_not_exists(decisions, :empty), :d)"
            .to_owned();
        let mut req = self
            .update_seen(due, None)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(
                ":outcome",
                s(decision
                    .reason
                    .clone()
                    .unwrap_or_else(|| status.as_str().to_owned())),
            )
            .expression_attribute_values(":now", s(decision.at.to_string()))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":d", decision_list(decision)?);
        if let Some(id) = message_id {
            set.push_str(", message_id = :mid");
            req = req.expression_attribute_values(":mid", s(id));
        }
        if let Some((m, order_id)) = survey_sent {
            set.push_str(", GSI1PK = :gpk, GSI1SK = :gsk");
            req = req
                .expression_attribute_values(":gpk", s(keys::surveys_sent_index(m, order_id)))
                .expression_attribute_values(
                    ":gsk",
                    s(keys::time_sort_key(decision.at, order_id.as_str())),
                );
        }
        update_held(
            "UpdateItem settle follow-up",
            req.update_expression(format!("{set} REMOVE DUEPK, DUESK")),
        )
        .await
    }

    async fn points_ledger(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<crate::domain::loyalty::LoyaltyState, StoreError> {
        Store::loyalty(self, m, c).await
    }

    async fn note_available(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        Store::note_available(self, m, c, now).await
    }
}

/// How often a drop of refunded lines writes a follow-up before it gives up for now (a refund of
/// each line at once: every round, one of them wins).
const DROP_ATTEMPTS: usize = 32;

/// SKUs as the list attribute a follow-up keeps them in.
fn sku_list(skus: &[Sku]) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(skus).map_err(|source| StoreError::Corrupt {
        entity: "follow_up",
        source,
    })
}

fn decision_list(d: &DecisionEntry) -> Result<AttributeValue, StoreError> {
    let value: AttributeValue =
        serde_dynamo::to_attribute_value(d).map_err(|source| StoreError::Corrupt {
            entity: "decision",
            source,
        })?;
    Ok(AttributeValue::L(vec![value]))
}

/// The contact item, as every use-case that personalises an email or honours a choice reads it.
impl crate::ports::ContactLookup for Store {
    async fn contact(&self, m: &MerchantId, c: &CustomerId) -> Result<ContactState, StoreError> {
        let contact: Option<ContactItem> = self
            .get_as("GetItem contact", CONTACT, &keys::contact(m, c))
            .await?;
        Ok(contact.unwrap_or_default().into())
    }
}
