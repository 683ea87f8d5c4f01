//! Shipments, tracking checkpoints, the order's shipment index, the post-delivery journey and the
//! due index.
//!
//! A checkpoint costs one `TransactWriteItems` on the happy path: the checkpoint's history item
//! (conditioned on not existing, which dedupes replays), the shipment's state advance (conditioned
//! on actually advancing, which keeps the state monotonic without reading it first), the milestone
//! email's claim and, for webhooks, the signature's replay marker. Only a late checkpoint (history
//! but no advance) or a milestone already emailed takes a second, smaller write.

use super::claims::Guarded;
use super::orders::OrderRecord;
use super::write::{self, Attempt, build_err, codes_failed, put, put_new, with_due};
use super::{Item, Store, StoreError, from_item, from_items, keys, n, s, to_item};
use crate::domain::catalogue::distinct_skus;
use crate::domain::followup::{AnchorReason, FollowUp, FollowUpKind, FollowUpStatus};
use crate::domain::loyalty::Rebased;
use crate::domain::shipment::{
    Checkpoint, CheckpointOutcome, CreateOutcome, RevisionOutcome, ShipmentCheck, ShipmentDue,
    ShipmentPointer, ShipmentRecord, TrackingPointer,
};
use crate::domain::{CustomerId, MerchantId, OrderId, ids::ShipmentId};
use crate::ports::shipments::{NewCheckpoint, NewDateRevision, NewShipment, ShipmentBook};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use jiff::Timestamp;

const SHIPMENT: &str = "shipment";
const CHECKPOINT: &str = "checkpoint";
const POINTER: &str = "order_shipment";
const FOLLOW_UP: &str = "follow_up";
const SHIPMENT_DUE: &str = "shipment_due";
const TRACKING: &str = "tracking_pointer";
/// Due-index group of shipment checks (late detection, journey fallback).
pub const SHIPMENT_GROUP: &str = "shipment";
/// Due-index group of follow-up emails.
pub const FOLLOW_UP_GROUP: &str = "followup";
/// How long a webhook signature is remembered (longer than the signature tolerance).
const WEBHOOK_MEMORY: std::time::Duration = std::time::Duration::from_secs(3600);

impl ShipmentBook for Store {
    async fn order(&self, m: &MerchantId, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.get_order(m, id).await
    }

    async fn create_shipment(&self, new: &NewShipment<'_>) -> Result<CreateOutcome, StoreError> {
        let NewShipment {
            record,
            due,
            claim,
            send_expires_at,
        } = *new;
        let m = &record.merchant_id;
        let sh = &record.shipment;
        let mut items = vec![put_new(
            &self.table,
            to_item(SHIPMENT, &keys::shipment(m, &sh.id), record)?,
        )?];
        let pointer = ShipmentPointer {
            shipment_id: sh.id.clone(),
            delivered_at: None,
        };
        items.push(put(
            &self.table,
            to_item(
                POINTER,
                &keys::order_shipment(m, &sh.order_id, &sh.id),
                &pointer,
            )?,
            None,
        )?);
        for (number, pointer) in record.tracking_pointers() {
            let key = keys::tracking(m, &number, &pointer.carrier_family, &sh.id);
            items.push(put(&self.table, to_item(TRACKING, &key, &pointer)?, None)?);
        }
        for (check, at) in due {
            let key = keys::shipment_due(m, &sh.id, check.as_str());
            let body = ShipmentDue {
                shipment_id: sh.id.clone(),
                order_id: sh.order_id.clone(),
                check: check.clone(),
                due_at: *at,
            };
            items.push(put(
                &self.table,
                with_due(
                    to_item(SHIPMENT_DUE, &key, &body)?,
                    SHIPMENT_GROUP,
                    *at,
                    &key,
                ),
                None,
            )?);
        }
        const OPERATION: &str = "TransactWriteItems create shipment";
        let Some((claim_id, claim)) = claim else {
            return Ok(match self.transact(OPERATION, items).await? {
                super::write::Attempt::Done => CreateOutcome::Created { suppressed: false },
                super::write::Attempt::Cancelled(_) => CreateOutcome::AlreadyExists,
            });
        };
        let (claim, guard) = self.guarded_claim(items.len(), claim_id, claim, send_expires_at)?;
        items.push(claim);
        Ok(
            match self.transact_guarded(OPERATION, items, guard).await? {
                Guarded::Done => CreateOutcome::Created { suppressed: false },
                Guarded::Suppressed => CreateOutcome::Created { suppressed: true },
                Guarded::Cancelled(_) => CreateOutcome::AlreadyExists,
            },
        )
    }

    async fn shipment(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> Result<Option<ShipmentRecord>, StoreError> {
        self.get_as("GetItem shipment", SHIPMENT, &keys::shipment(m, id))
            .await
    }

    /// Records a checkpoint: see the module docs for what one transaction holds.
    async fn record_checkpoint(
        &self,
        new: &NewCheckpoint<'_>,
    ) -> Result<CheckpointOutcome, StoreError> {
        let m = new.merchant_id;
        let cp = new.checkpoint;
        let ship_key = keys::shipment(m, new.shipment_id);
        let history = put_new(
            &self.table,
            to_item(
                CHECKPOINT,
                &keys::checkpoint(m, new.shipment_id, cp.occurred_at, &cp.id),
                cp,
            )?,
        )?;
        let seen = match new.webhook_replay_key {
            Some(rk) => {
                let mut item = to_item(
                    "webhook_seen",
                    &keys::webhook_seen(m, rk),
                    &serde_json::json!({ "seen_at": new.now }),
                )?;
                item.insert(
                    keys::TTL.into(),
                    n(keys::expires_at(new.now, WEBHOOK_MEMORY)),
                );
                Some(put_new(&self.table, item)?)
            }
            None => None,
        };
        let advance = match cp.status.rank() {
            Some(rank) => progress_advance(self.tx_update(&ship_key), rank),
            // An issue applies only while it is newer than progress and the shipment is not done.
            None => self
                .tx_update(&ship_key)
                .update_expression("SET issue_status = :s, issue_at_ms = :t, updated_at = :now")
                .condition_expression(
                    "attribute_exists(PK) AND progress_rank < :terminal AND progress_at_ms < :t \
                     AND (issue_at_ms < :t OR (issue_at_ms = :t AND issue_status < :s))",
                )
                .expression_attribute_values(":terminal", n(5)),
        };
        let advance = write::update(checkpoint_values(advance, cp, new.now))?;
        let pointer = match new.delivered_order {
            Some(order_id) => Some(write::update(
                self.tx_update(&keys::order_shipment(m, order_id, new.shipment_id))
                    .update_expression("SET delivered_at = :at")
                    .expression_attribute_values(":at", s(cp.occurred_at.to_string())),
            )?),
            None => None,
        };

        // Positions: 0 history, 1 advance, then optional seen, claim, pointer.
        let mut items = vec![history.clone(), advance];
        let seen_at = seen.as_ref().map(|_| items.len());
        items.extend(seen.clone());
        let (claim_at, guard) = match new.claim {
            Some((id, record)) => {
                let at = items.len();
                let (claim, guard) = self.guarded_claim(at, id, record, new.send_expires_at)?;
                items.push(claim);
                (Some(at), Some(guard))
            }
            None => (None, None),
        };
        items.extend(pointer.clone());
        let attempt = match guard {
            Some(guard) => {
                self.transact_guarded("TransactWriteItems checkpoint", items, guard)
                    .await?
            }
            None => match self
                .transact("TransactWriteItems checkpoint", items)
                .await?
            {
                Attempt::Done => Guarded::Done,
                Attempt::Cancelled(codes) => Guarded::Cancelled(codes),
            },
        };
        let codes = match attempt {
            Guarded::Done => {
                return Ok(CheckpointOutcome::Advanced {
                    claimed: new.claim.is_some(),
                    suppressed: false,
                });
            }
            Guarded::Suppressed => {
                return Ok(CheckpointOutcome::Advanced {
                    claimed: false,
                    suppressed: true,
                });
            }
            Guarded::Cancelled(codes) => codes,
        };
        let failed = |i: Option<usize>| i.is_some_and(|i| codes_failed(&codes, i));
        if failed(seen_at) {
            return Ok(CheckpointOutcome::ReplayedSignature);
        }
        if failed(Some(0)) {
            return Ok(CheckpointOutcome::Duplicate);
        }
        if !failed(Some(1)) && failed(claim_at) {
            // The state advances, but this milestone was emailed before (a second delivery attempt).
            let advance_again =
                progress_advance(self.tx_update(&ship_key), cp.status.rank().unwrap_or(0));
            let mut retry = vec![
                history.clone(),
                write::update(checkpoint_values(advance_again, cp, new.now))?,
            ];
            retry.extend(seen);
            retry.extend(pointer);
            return match self
                .transact("TransactWriteItems checkpoint", retry)
                .await?
            {
                Attempt::Done => Ok(CheckpointOutcome::Advanced {
                    claimed: false,
                    suppressed: false,
                }),
                Attempt::Cancelled(_) => self.history_only(&history, &ship_key, None).await,
            };
        }
        self.history_only(&history, &ship_key, seen).await
    }

    /// The shipment's new expected date (conditional on its revision), its late check moved, the
    /// email's claim: one transaction.
    async fn revise_expected_date(
        &self,
        new: &NewDateRevision<'_>,
    ) -> Result<RevisionOutcome, StoreError> {
        const OPERATION: &str = "TransactWriteItems revise expected date";
        let (m, s_id, r) = (new.merchant_id, new.shipment_id, new.revision);
        let update = self
            .tx_update(&keys::shipment(m, s_id))
            .update_expression("SET expected_date = :d, date_revision = :r")
            .condition_expression(
                "attribute_exists(PK) AND (date_revision = :prev OR (attribute_not_exists(date_revision) AND :prev = :zero))",
            )
            .expression_attribute_values(":d", s(r.to.to_string()))
            .expression_attribute_values(":r", n(r.revision))
            .expression_attribute_values(":prev", n(r.revision.saturating_sub(1)))
            .expression_attribute_values(":zero", n(0));
        let mut items = vec![write::update(update)?];
        if let Some(at) = new.late_at {
            let key = keys::shipment_due(m, s_id, ShipmentCheck::Late.as_str());
            let body = ShipmentDue {
                shipment_id: s_id.clone(),
                order_id: new.order_id.clone(),
                check: ShipmentCheck::Late,
                due_at: at,
            };
            items.push(put(
                &self.table,
                with_due(
                    to_item(SHIPMENT_DUE, &key, &body)?,
                    SHIPMENT_GROUP,
                    at,
                    &key,
                ),
                None,
            )?);
        }
        let Some((claim_id, claim)) = new.claim else {
            return Ok(match self.transact(OPERATION, items).await? {
                Attempt::Done => RevisionOutcome::Revised { suppressed: false },
                Attempt::Cancelled(_) => RevisionOutcome::Stale,
            });
        };
        let (claim, guard) =
            self.guarded_claim(items.len(), claim_id, claim, new.send_expires_at)?;
        items.push(claim);
        Ok(
            match self.transact_guarded(OPERATION, items, guard).await? {
                Guarded::Done => RevisionOutcome::Revised { suppressed: false },
                Guarded::Suppressed => RevisionOutcome::Revised { suppressed: true },
                Guarded::Cancelled(_) => RevisionOutcome::Stale,
            },
        )
    }

    /// The shipments a tracking number points to: one Query of the number's partition.
    async fn shipments_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> Result<Vec<TrackingPointer>, StoreError> {
        let items = self
            .query_prefix("Query tracking number", &keys::trackings(m, number))
            .await?;
        from_items(TRACKING, items)
    }

    /// The order's shipment pointers (consistent read).
    async fn order_shipments(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
    ) -> Result<Vec<ShipmentPointer>, StoreError> {
        let items = self
            .query_prefix("Query order shipments", &keys::order_shipments(m, order_id))
            .await?;
        from_items(POINTER, items)
    }

    /// A shipment's checkpoints, oldest first.
    async fn shipment_history(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let items = self
            .query_prefix("Query shipment history", &keys::checkpoints(m, id))
            .await?;
        from_items(CHECKPOINT, items)
    }

    /// The order's scheduled follow-ups.
    async fn order_follow_ups(
        &self,
        m: &MerchantId,
        order_id: &OrderId,
    ) -> Result<Vec<FollowUp>, StoreError> {
        let items = self
            .query_prefix("Query order follow-ups", &keys::follow_ups(m, order_id))
            .await?;
        from_items(FOLLOW_UP, items)
    }

    /// Anchors the order's post-delivery journey once: marks the order and schedules the
    /// follow-ups. Returns false if the journey was anchored before.
    async fn anchor_journey(
        &self,
        order: &OrderRecord,
        anchor: Timestamp,
        reason: AnchorReason,
        follow_ups: &[(FollowUpKind, Timestamp)],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let m = &order.merchant_id;
        let o = &order.order;
        let mark = self
            .tx_update(&keys::order(m, &o.id))
            .update_expression("SET journey_anchor = :a, journey_reason = :why, updated_at = :now")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(journey_anchor)")
            .expression_attribute_values(":a", s(anchor.to_string()))
            .expression_attribute_values(":why", s(reason.as_str()))
            .expression_attribute_values(":now", s(now.to_string()));
        let mut items = vec![write::update(mark)?];
        let skus = distinct_skus(o.items.iter().map(|i| i.sku.as_str()));
        for (kind, due_at) in follow_ups {
            let key = keys::follow_up(m, &o.id, kind.as_str());
            let body = FollowUp {
                order_id: o.id.clone(),
                customer_id: o.customer.id.to_string(),
                recipient: o.customer.email.as_ref().map(|e| e.as_str().to_owned()),
                kind: *kind,
                due_at: *due_at,
                anchor,
                anchor_reason: reason,
                status: FollowUpStatus::Scheduled,
                decisions: Vec::new(),
                outcome: None,
                message_id: None,
                skus: skus.clone(),
                refunded_skus: Vec::new(),
            };
            items.push(put_new(
                &self.table,
                with_due(
                    to_item(FOLLOW_UP, &key, &body)?,
                    FOLLOW_UP_GROUP,
                    *due_at,
                    &key,
                ),
            )?);
        }
        match self
            .transact("TransactWriteItems anchor journey", items)
            .await?
        {
            Attempt::Done => Ok(true),
            Attempt::Cancelled(_) => Ok(false),
        }
    }

    async fn rebase_earn(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        source: &str,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rebased, StoreError> {
        Store::rebase_earn(self, m, c, source, available_at, now).await
    }
}

impl Store {
    /// Records the checkpoint in history only, provided the shipment exists.
    async fn history_only(
        &self,
        history: &TransactWriteItem,
        ship_key: &keys::Key,
        seen: Option<TransactWriteItem>,
    ) -> Result<CheckpointOutcome, StoreError> {
        let exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(ship_key.to_map()))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(build_err("build ConditionCheck"))?;
        let mut items = vec![
            TransactWriteItem::builder().condition_check(exists).build(),
            history.clone(),
        ];
        items.extend(seen);
        match self
            .transact("TransactWriteItems checkpoint history", items)
            .await?
        {
            Attempt::Done => Ok(CheckpointOutcome::HistoryOnly),
            Attempt::Cancelled(codes) if codes_failed(&codes, 0) => {
                Ok(CheckpointOutcome::UnknownShipment)
            }
            Attempt::Cancelled(codes) if codes_failed(&codes, 2) => {
                Ok(CheckpointOutcome::ReplayedSignature)
            }
            Attempt::Cancelled(_) => Ok(CheckpointOutcome::Duplicate),
        }
    }
}

/// The shipment's progress moved to `rank`, conditioned on actually advancing (a higher rank, or
/// the same rank later, or the same rank at the same time with a higher status); the checkpoint's
/// own values come from [`checkpoint_values`].
fn progress_advance(update: UpdateBuilder, rank: u8) -> UpdateBuilder {
    update
        .update_expression("SET progress_rank = :r, progress_status = :s, progress_at_ms = :t, updated_at = :now")
        .condition_expression(
            "attribute_exists(PK) AND (progress_rank < :r OR (progress_rank = :r AND progress_at_ms < :t) \
             OR (progress_rank = :r AND progress_at_ms = :t AND progress_status < :s))",
        )
        .expression_attribute_values(":r", n(rank))
}

/// The checkpoint's status (`:s`) and time (`:t`) a state advance compares with, and `:now`.
fn checkpoint_values(update: UpdateBuilder, cp: &Checkpoint, now: Timestamp) -> UpdateBuilder {
    update
        .expression_attribute_values(":s", s(cp.status.as_str()))
        .expression_attribute_values(":t", n(cp.occurred_at.as_millisecond()))
        .expression_attribute_values(":now", s(now.to_string()))
}

/// Parses a due item of the shipment group.
pub fn shipment_due(item: Item) -> Result<ShipmentDue, StoreError> {
    from_item(SHIPMENT_DUE, item)
}

/// Parses a follow-up due item.
pub fn follow_up(item: Item) -> Result<FollowUp, StoreError> {
    from_item(FOLLOW_UP, item)
}
