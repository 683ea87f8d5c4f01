//! Shipments in memory: the same items, keys and conditions as the DynamoDB store's
//! (`adapters::store::shipments`), over the send ledger's table. A checkpoint is one transaction
//! of its history (only if new), the state's advance (only if it advances), the signature's replay
//! marker (only if new), the milestone claim (guarded by the suppression check) and the order's
//! delivery pointer; when it is cancelled, the reasons decide what it was, as the store's do.

use super::ledger::MemSendLedger;
use super::table::{
    Condition, MemTable, RowKey, Write, absent, always, decode, parse, present, row,
};
use crate::adapters::store::keys;
use crate::domain::followup::{AnchorReason, FollowUp, FollowUpKind, FollowUpStatus};
use crate::domain::ids::ShipmentId;
use crate::domain::loyalty::{LedgerEntry, LedgerKind, Rebased};
use crate::domain::order::OrderRecord;
use crate::domain::send::{SendIdentity, SendRecord};
use crate::domain::shipment::{
    Checkpoint, CheckpointOutcome, CreateOutcome, RevisionOutcome, ShipmentCheck, ShipmentDue,
    ShipmentPointer, ShipmentRecord, TrackingPointer,
};
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::StoreError;
use crate::ports::shipments::{
    NewCheckpoint, NewDateRevision, NewShipment, ShipmentBook, ShipmentViews,
};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemShipments {
    /// The send ledger over the same table (its claims are the shipment emails').
    pub ledger: MemSendLedger,
}

fn put(key: &keys::Key, row: Value, condition: Condition) -> Write {
    Write::Put {
        key: RowKey::from(key),
        row,
        condition,
    }
}

/// The shipment's state advance, conditioned as the store's update is: a progress checkpoint
/// only if its (rank, time, status) is greater; an issue only if newer than both the progress and
/// the last issue, and the shipment is not done.
fn advance(key: &keys::Key, cp: &Checkpoint, now: Timestamp) -> Write {
    let (status, at) = (
        cp.status.as_str().to_owned(),
        cp.occurred_at.as_millisecond(),
    );
    let rank = cp.status.rank();
    let field = |row: &Value, name: &str| row[name].as_i64().unwrap_or(0);
    let text = |row: &Value, name: &str| row[name].as_str().map(str::to_owned);
    let condition: Condition = match rank {
        Some(rank) => {
            let status = status.clone();
            Box::new(move |row: Option<&Value>| {
                row.is_some_and(|r| {
                    let (cur_rank, cur_at) =
                        (field(r, "progress_rank"), field(r, "progress_at_ms"));
                    let cur = text(r, "progress_status");
                    cur_rank < i64::from(rank)
                        || (cur_rank == i64::from(rank) && cur_at < at)
                        || (cur_rank == i64::from(rank)
                            && cur_at == at
                            && cur.is_some_and(|c| c < status))
                })
            })
        }
        None => {
            let status = status.clone();
            Box::new(move |row: Option<&Value>| {
                row.is_some_and(|r| {
                    let (issue_at, cur) = (field(r, "issue_at_ms"), text(r, "issue_status"));
                    field(r, "progress_rank") < 5
                        && field(r, "progress_at_ms") < at
                        && (issue_at < at || (issue_at == at && cur.is_some_and(|c| c < status)))
                })
            })
        }
    };
    let now = now.to_string();
    Write::Update {
        key: RowKey::from(key),
        condition,
        apply: Box::new(move |current| {
            let mut row = current.unwrap_or_else(|| json!({}));
            let prefix = if rank.is_some() { "progress" } else { "issue" };
            if let Some(rank) = rank {
                row["progress_rank"] = json!(rank);
            }
            row[format!("{prefix}_status")] = json!(status);
            row[format!("{prefix}_at_ms")] = json!(at);
            row["updated_at"] = json!(now);
            row
        }),
    }
}

impl MemShipments {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn table(&self) -> &MemTable {
        &self.ledger.table
    }

    /// Stores a placed order (what order-placed writes).
    pub fn add_order(&self, record: &OrderRecord) {
        let key = keys::order(&record.merchant_id, &record.order.id);
        if let Ok(row) = row(record) {
            let _ = self.table().write(put(&key, row, always()));
        }
    }

    /// Stores a loyalty ledger entry of customer `c`.
    pub fn add_ledger_entry(&self, m: &MerchantId, c: &CustomerId, entry: &LedgerEntry) {
        if let Ok(row) = row(entry) {
            let key = keys::ledger(m, c, &entry.source);
            let _ = self.table().write(put(&key, row, always()));
        }
    }

    /// A loyalty ledger entry as stored.
    pub fn ledger_entry(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        source: &str,
    ) -> Option<LedgerEntry> {
        let row = self
            .table()
            .get(&RowKey::from(&keys::ledger(m, c, source)))?;
        decode(row).ok()
    }

    /// The shipment's due check `check` (`late`, `fallback`), if it is in the index.
    pub fn due_check(&self, m: &MerchantId, s: &ShipmentId, check: &str) -> Option<ShipmentDue> {
        let row = self
            .table()
            .get(&RowKey::from(&keys::shipment_due(m, s, check)))?;
        decode(row).ok()
    }

    /// The order as stored (with its journey's anchor, once anchored).
    pub fn order_row(&self, m: &MerchantId, o: &OrderId) -> Option<Value> {
        self.table().get(&RowKey::from(&keys::order(m, o)))
    }

    fn get<T: DeserializeOwned>(&self, key: &keys::Key) -> Result<Option<T>, StoreError> {
        parse(self.table().get(&RowKey::from(key)))
    }

    /// The rows `within` names, in key order (a Query).
    fn under<T: DeserializeOwned>(&self, within: &keys::Within) -> Result<Vec<T>, StoreError> {
        self.table()
            .within(within)
            .into_iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Runs `writes` with `claim` guarded by the suppression check of its recipient, as the
    /// store's `transact_guarded`: the suppressed form of the claim when only that check failed.
    /// `Err` carries, per write, whether its condition failed.
    fn guarded(
        &self,
        claim: Option<(&SendIdentity, &SendRecord)>,
        writes: impl Fn(Option<Write>) -> Vec<Write>,
    ) -> Result<Result<bool, Vec<bool>>, StoreError> {
        let Some((id, record)) = claim else {
            return Ok(self
                .table()
                .transact(writes(None))?
                .map(|()| false)
                .map_err(|c| c.0));
        };
        let build = |suppressed| {
            Ok(writes(Some(MemSendLedger::claim_write(
                id, record, suppressed,
            )?)))
        };
        let guarded = self.ledger.transact_guarded(id, &record.recipient, build)?;
        Ok(guarded.written().map_err(|c| c.0))
    }

    /// The checkpoint in history only, provided the shipment exists.
    fn history_only(
        &self,
        ship: &keys::Key,
        history: impl Fn() -> Write,
        seen: impl Fn() -> Option<Write>,
    ) -> Result<CheckpointOutcome, StoreError> {
        let mut writes = vec![
            Write::Check {
                key: RowKey::from(ship),
                condition: present(),
            },
            history(),
        ];
        writes.extend(seen());
        Ok(match self.table().transact(writes)? {
            Ok(()) => CheckpointOutcome::HistoryOnly,
            Err(c) if c.failed(0) => CheckpointOutcome::UnknownShipment,
            Err(c) if c.failed(2) => CheckpointOutcome::ReplayedSignature,
            Err(_) => CheckpointOutcome::Duplicate,
        })
    }
}

impl ShipmentBook for MemShipments {
    async fn order(&self, m: &MerchantId, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.get(&keys::order(m, id))
    }

    async fn create_shipment(&self, new: &NewShipment<'_>) -> Result<CreateOutcome, StoreError> {
        let record = new.record;
        let (m, sh) = (&record.merchant_id, &record.shipment);
        let shipment = row(record)?;
        let pointer = row(&ShipmentPointer {
            shipment_id: sh.id.clone(),
            delivered_at: None,
        })?;
        let mut checks = Vec::new();
        for (check, at) in new.due {
            let body = ShipmentDue {
                shipment_id: sh.id.clone(),
                order_id: sh.order_id.clone(),
                check: check.clone(),
                due_at: *at,
            };
            checks.push((keys::shipment_due(m, &sh.id, check.as_str()), row(&body)?));
        }
        for (number, pointer) in record.tracking_pointers() {
            let key = keys::tracking(m, &number, &pointer.carrier_family, &sh.id);
            checks.push((key, row(&pointer)?));
        }
        let writes = |claim: Option<Write>| {
            let mut writes = vec![
                put(&keys::shipment(m, &sh.id), shipment.clone(), absent()),
                put(
                    &keys::order_shipment(m, &sh.order_id, &sh.id),
                    pointer.clone(),
                    always(),
                ),
            ];
            for (key, body) in &checks {
                writes.push(put(key, body.clone(), always()));
            }
            writes.extend(claim);
            writes
        };
        Ok(match self.guarded(new.claim, writes)? {
            Ok(suppressed) => CreateOutcome::Created { suppressed },
            Err(_) => CreateOutcome::AlreadyExists,
        })
    }

    async fn shipment(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> Result<Option<ShipmentRecord>, StoreError> {
        self.get(&keys::shipment(m, id))
    }

    async fn shipment_history(
        &self,
        m: &MerchantId,
        id: &ShipmentId,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.under(&keys::checkpoints(m, id))
    }

    async fn record_checkpoint(
        &self,
        new: &NewCheckpoint<'_>,
    ) -> Result<CheckpointOutcome, StoreError> {
        let (m, cp) = (new.merchant_id, new.checkpoint);
        let ship = keys::shipment(m, new.shipment_id);
        let history_row = row(cp)?;
        let history_key = keys::checkpoint(m, new.shipment_id, cp.occurred_at, &cp.id);
        let history = || put(&history_key, history_row.clone(), absent());
        let seen = || {
            new.webhook_replay_key.map(|rk| {
                put(
                    &keys::webhook_seen(m, rk),
                    json!({"seen_at": new.now}),
                    absent(),
                )
            })
        };
        let delivered = cp.occurred_at.to_string();
        let pointer = || {
            new.delivered_order.map(|order| {
                let at = delivered.clone();
                Write::Update {
                    key: RowKey::from(&keys::order_shipment(m, order, new.shipment_id)),
                    condition: always(),
                    apply: Box::new(move |current| {
                        let mut row = current.unwrap_or_else(|| json!({}));
                        row["delivered_at"] = json!(at);
                        row
                    }),
                }
            })
        };
        // Positions: 0 history, 1 advance, then the marker, the claim, the pointer.
        let writes = |claim: Option<Write>| {
            let mut writes = vec![history(), advance(&ship, cp, new.now)];
            writes.extend(seen());
            writes.extend(claim);
            writes.extend(pointer());
            writes
        };
        let failed = match self.guarded(new.claim, writes)? {
            Ok(suppressed) => {
                return Ok(CheckpointOutcome::Advanced {
                    claimed: new.claim.is_some() && !suppressed,
                    suppressed,
                });
            }
            Err(failed) => failed,
        };
        let seen_at = new.webhook_replay_key.map(|_| 2);
        let claim_at = new.claim.map(|_| 2 + usize::from(seen_at.is_some()));
        let at = |i: Option<usize>| i.is_some_and(|i| failed.get(i).copied().unwrap_or(false));
        if at(seen_at) {
            return Ok(CheckpointOutcome::ReplayedSignature);
        }
        if at(Some(0)) {
            return Ok(CheckpointOutcome::Duplicate);
        }
        if !at(Some(1)) && at(claim_at) {
            // The state advances, but this milestone was emailed before.
            if self.table().transact(writes(None))?.is_ok() {
                return Ok(CheckpointOutcome::Advanced {
                    claimed: false,
                    suppressed: false,
                });
            }
            return self.history_only(&ship, history, || None);
        }
        self.history_only(&ship, history, seen)
    }

    async fn order_shipments(
        &self,
        m: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<ShipmentPointer>, StoreError> {
        self.under(&keys::order_shipments(m, order))
    }

    async fn revise_expected_date(
        &self,
        new: &NewDateRevision<'_>,
    ) -> Result<RevisionOutcome, StoreError> {
        let (m, s_id, r) = (new.merchant_id, new.shipment_id, *new.revision);
        let late = match new.late_at {
            Some(at) => Some((
                keys::shipment_due(m, s_id, ShipmentCheck::Late.as_str()),
                row(&ShipmentDue {
                    shipment_id: s_id.clone(),
                    order_id: new.order_id.clone(),
                    check: ShipmentCheck::Late,
                    due_at: at,
                })?,
            )),
            None => None,
        };
        let ship = keys::shipment(m, s_id);
        let writes = |claim: Option<Write>| {
            let prev = u64::from(r.revision.saturating_sub(1));
            let mut writes = vec![Write::Update {
                key: RowKey::from(&ship),
                condition: Box::new(move |row: Option<&Value>| {
                    row.is_some_and(|row| {
                        row.get("date_revision")
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            == prev
                    })
                }),
                apply: Box::new(move |current: Option<Value>| {
                    let mut row = current.unwrap_or_default();
                    row["expected_date"] = r.to.to_string().into();
                    row["date_revision"] = r.revision.into();
                    row
                }),
            }];
            if let Some((key, body)) = &late {
                writes.push(put(key, body.clone(), always()));
            }
            writes.extend(claim);
            writes
        };
        Ok(match self.guarded(new.claim, writes)? {
            Ok(suppressed) => RevisionOutcome::Revised { suppressed },
            Err(_) => RevisionOutcome::Stale,
        })
    }

    async fn shipments_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> Result<Vec<TrackingPointer>, StoreError> {
        self.under(&keys::trackings(m, number))
    }

    async fn order_follow_ups(
        &self,
        m: &MerchantId,
        order: &OrderId,
    ) -> Result<Vec<FollowUp>, StoreError> {
        self.under(&keys::follow_ups(m, order))
    }

    async fn anchor_journey(
        &self,
        order: &OrderRecord,
        anchor: Timestamp,
        reason: AnchorReason,
        follow_ups: &[(FollowUpKind, Timestamp)],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (m, o) = (&order.merchant_id, &order.order);
        let mut writes = vec![Write::Update {
            key: RowKey::from(&keys::order(m, &o.id)),
            condition: Box::new(|row| row.is_some_and(|r| r.get("journey_anchor").is_none())),
            apply: Box::new(move |current| {
                let mut row = current.unwrap_or_else(|| json!({}));
                row["journey_anchor"] = json!(anchor);
                row["journey_reason"] = json!(reason.as_str());
                row["updated_at"] = json!(now);
                row
            }),
        }];
        for (kind, due_at) in follow_ups {
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
                skus: crate::domain::catalogue::distinct_skus(
                    o.items.iter().map(|i| i.sku.as_str()),
                ),
                refunded_skus: Vec::new(),
            };
            let key = keys::follow_up(m, &o.id, kind.as_str());
            writes.push(put(&key, row(&body)?, absent()));
        }
        Ok(self.table().transact(writes)?.is_ok())
    }

    async fn rebase_earn(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        source: &str,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rebased, StoreError> {
        let Some(earn) = self
            .ledger_entry(m, c, source)
            .filter(|e| e.kind == LedgerKind::Earn)
        else {
            return Ok(Rebased::Missing);
        };
        if earn.available_at == Some(available_at) {
            return Ok(Rebased::Unchanged);
        }
        if !earn.is_pending(now) {
            return Ok(Rebased::AlreadyAvailable);
        }
        let moved = self.table().write(Write::Update {
            key: RowKey::from(&keys::ledger(m, c, source)),
            condition: present(),
            apply: Box::new(move |current| {
                let mut row = current.unwrap_or_else(|| json!({}));
                row["available_at"] = json!(available_at);
                row
            }),
        })?;
        Ok(if moved {
            Rebased::Moved
        } else {
            Rebased::Missing
        })
    }
}

impl ShipmentViews for MemShipments {
    async fn count_view(&self, m: &MerchantId, id: &ShipmentId) -> Result<bool, StoreError> {
        self.table().write(Write::Update {
            key: RowKey::from(&keys::shipment(m, id)),
            condition: present(),
            apply: Box::new(|row| {
                let mut row = row.unwrap_or_default();
                let views = row[keys::VIEWS].as_u64().unwrap_or(0) + 1;
                row[keys::VIEWS] = views.into();
                row
            }),
        })
    }
}
