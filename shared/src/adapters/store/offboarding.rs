//! Merchant offboarding: every item of one merchant counted (a dry run) or deleted, in steps, with
//! an audit record that outlives the merchant.
//!
//! **This module scans, and it is the only one that may.** Every other read of the project is a
//! GetItem, a BatchGetItem or a Query (see [`keys`]). Finding every item of one merchant has no
//! such read: its items are spread over one partition per customer, order, shipment and so on, by
//! design. Offboarding is an operator's command, run once for a departing merchant, never on a
//! request or sweep path, so here a parallel Scan ([`SEGMENTS`] segments, consistent reads,
//! projecting keys and `_type` only) filtered on `PK = M#<m> OR begins_with(PK, M#<m>#)` is
//! acceptable. The filter strings come from [`keys::merchant_profile_pk`] and
//! [`keys::merchant_items_prefix`]; the trailing `#` of the prefix keeps merchant `acme` from
//! matching `acme-eu` (ids cannot contain `#`). A Scan reads the whole table whatever it keeps, so
//! a step costs read units for the table's size, not the merchant's.
//!
//! A delete goes in steps, each deleting at most its budget of items:
//! 1. first the merchant's profile and every API key (one Query of [`keys::api_keys`] and the
//!    profile's key), all of them in the first step whatever the budget: from then on no key
//!    authenticates (the digest is not found) and no function finds the merchant. A warm instance
//!    remembers a verified key for `AFTERCARE_KEY_CACHE_TTL_SECONDS` (default 30 s) and a
//!    merchant's profile for `AFTERCARE_MERCHANT_CACHE_TTL_SECONDS` (default 60 s), so for up to
//!    the longer of the two after the first step a warm instance may still serve the merchant and
//!    write an item; a delete run again after that bound finds and deletes it;
//! 2. then everything else the Scan finds, in BatchWriteItem requests of 25, what DynamoDB leaves
//!    unprocessed retried with backoff.
//!
//! Each step scans afresh, so a delete that was interrupted (or stopped at its step limit) is
//! continued by running it again, and a delete of a merchant with nothing left finds nothing,
//! deletes nothing and succeeds. The due index and `gsi1` hold projections of base items only:
//! deleting an item removes its index entries.
//!
//! Every run (dry run or delete) writes an audit record under [`keys::offboard_audit`], outside the
//! tenant prefix: written when the run starts (`running`) and rewritten when it ends, so a run that
//! died shows as `running`. It holds the merchant id, who asked, when, the mode, the outcome and
//! the counts per item kind: no personal data.

use super::write::delete_request;
use super::{Item, Store, StoreError, classify, from_items, keys, s, to_item};
use crate::clock::Clock;
use crate::domain::MerchantId;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

const AUDIT: &str = "offboard_audit";
/// Segments of the parallel Scan.
pub const SEGMENTS: i32 = 4;
/// DynamoDB's limit of items per BatchWriteItem.
const BATCH_WRITE: usize = 25;
/// Rounds of one batch before what is still unprocessed fails the step.
const ROUNDS: u32 = 8;
/// The kind of an item with no `_type` attribute.
pub const UNKNOWN_KIND: &str = "unknown";

/// Items per kind (the `_type` attribute, [`UNKNOWN_KIND`] when missing), in name order.
pub type Counts = BTreeMap<String, u64>;

/// The sum of `counts`.
pub fn total(counts: &Counts) -> u64 {
    counts.values().sum()
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Counts, deletes nothing.
    DryRun,
    Delete,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Started and not (yet) finished: a run that died stays so.
    Running,
    /// A dry run counted the merchant's items.
    Counted,
    /// A delete left no item of the merchant.
    Completed,
    /// A delete stopped at its step limit with items left: run it again to continue.
    Incomplete,
    /// A delete stopped on an error (see `error`): run it again to continue.
    Failed,
}

/// The audit record of one run, kept after the merchant is gone. No personal data: the merchant
/// id, the operator's name as given, times, counts, and an error's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardAudit {
    pub merchant_id: MerchantId,
    /// Who asked (`--requested-by`); a dry run may leave it out.
    #[serde(default)]
    pub requested_by: Option<String>,
    pub mode: Mode,
    pub started_at: Timestamp,
    pub outcome: Outcome,
    /// Items counted (dry run) or deleted (delete), per kind.
    pub counts: Counts,
    pub total: u64,
    /// Whether items of the merchant were left when the run ended.
    pub remaining: bool,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// What stopped a failed run (the error's summary, which names an operation, never an item).
    #[serde(default)]
    pub error: Option<String>,
}

/// One item found: its key and kind.
#[derive(Debug, Clone)]
struct Found {
    key: keys::Key,
    kind: String,
}

impl Found {
    fn from_item(item: &Item) -> Option<Self> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Some(Self {
            key: keys::Key {
                pk: text(keys::PK)?,
                sk: text(keys::SK)?,
            },
            kind: text(keys::TYPE).unwrap_or_else(|| UNKNOWN_KIND.to_owned()),
        })
    }
}

/// What one scan for a merchant's items found.
struct Scanned {
    found: Vec<Found>,
    /// Every segment was read to its end (nothing of the merchant outside `found`).
    complete: bool,
}

impl Store {
    /// One segment of the merchant's Scan, page after page, until its end or until `max` items
    /// are in hand.
    async fn scan_segment(
        &self,
        m: &MerchantId,
        segment: i32,
        max: usize,
    ) -> Result<(Vec<Found>, bool), StoreError> {
        const OPERATION: &str = "Scan merchant items";
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment)
            .total_segments(SEGMENTS)
            .consistent_read(true)
            .filter_expression("#pk = :profile OR begins_with(#pk, :prefix)")
            .projection_expression("#pk, #sk, #type")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":profile", s(keys::merchant_profile_pk(m)))
            .expression_attribute_values(":prefix", s(keys::merchant_items_prefix(m)));
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = scan
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(OPERATION, e))?;
            found.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Found::from_item),
            );
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    if found.len() >= max {
                        return Ok((found, false));
                    }
                    start = Some(k);
                }
                _ => return Ok((found, true)),
            }
        }
    }

    /// The merchant's items (keys and kind), every segment at once; each segment stops once it
    /// holds `max` items.
    async fn scan_merchant(&self, m: &MerchantId, max: usize) -> Result<Scanned, StoreError> {
        let segments = futures_util::future::try_join_all(
            (0..SEGMENTS).map(|segment| self.scan_segment(m, segment, max)),
        )
        .await?;
        let mut scanned = Scanned {
            found: Vec::new(),
            complete: true,
        };
        for (found, complete) in segments {
            scanned.found.extend(found);
            scanned.complete &= complete;
        }
        Ok(scanned)
    }

    /// A dry run: the merchant's items per kind (the profile and API keys included).
    pub async fn count_merchant_items(&self, m: &MerchantId) -> Result<Counts, StoreError> {
        let mut counts = Counts::new();
        for found in self.scan_merchant(m, usize::MAX).await?.found {
            *counts.entry(found.kind).or_default() += 1;
        }
        Ok(counts)
    }

    /// What lets anyone act as the merchant: its profile and every API key it has.
    async fn access_items(&self, m: &MerchantId) -> Result<Vec<Found>, StoreError> {
        let profile = keys::merchant(m);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(profile.to_map()))
            .consistent_read(true)
            .projection_expression("#pk, #sk, #type")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#type", keys::TYPE)
            .send()
            .await
            .map_err(|e| classify("GetItem merchant profile", e))?;
        let mut found: Vec<Found> = out
            .item
            .as_ref()
            .and_then(Found::from_item)
            .into_iter()
            .collect();
        let query = self
            .prefix_query(&keys::api_keys(m))
            .consistent_read(true)
            .projection_expression("#pk, #sk, #type")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_names("#type", keys::TYPE);
        let pages = self
            .query_pages("Query merchant api keys", query, usize::MAX)
            .await?;
        found.extend(pages.items.iter().filter_map(Found::from_item));
        Ok(found)
    }

    /// One step of a delete: the merchant's profile and API keys if any are left (all of them,
    /// whatever `budget` says), then at most `budget` items in all. Adds what it deleted to
    /// `deleted` as it goes (so a step that fails midway still reports what it did) and returns
    /// whether items of the merchant are left.
    pub async fn delete_merchant_step(
        &self,
        m: &MerchantId,
        budget: usize,
        deleted: &mut Counts,
    ) -> Result<bool, StoreError> {
        let access = self.access_items(m).await?;
        let done = access.len();
        self.delete_found(access, deleted).await?;
        let left = budget.saturating_sub(done);
        let scanned = self.scan_merchant(m, left.max(1)).await?;
        let found_all = scanned.found.len();
        let batch: Vec<Found> = scanned.found.into_iter().take(left).collect();
        let took = batch.len();
        self.delete_found(batch, deleted).await?;
        Ok(!scanned.complete || found_all > took)
    }

    /// Deletes `found`, 25 at a time.
    async fn delete_found(
        &self,
        found: Vec<Found>,
        deleted: &mut Counts,
    ) -> Result<(), StoreError> {
        for chunk in found.chunks(BATCH_WRITE) {
            self.delete_batch(chunk, deleted).await?;
        }
        Ok(())
    }

    /// One BatchWriteItem of at most 25 deletes, retrying what DynamoDB leaves unprocessed.
    async fn delete_batch(&self, chunk: &[Found], deleted: &mut Counts) -> Result<(), StoreError> {
        const OPERATION: &str = "BatchWriteItem offboarding";
        let requests = chunk
            .iter()
            .map(|f| delete_request(&f.key))
            .collect::<Result<Vec<_>, _>>()?;
        // What is still unprocessed was not deleted; after a failed call, none is counted.
        let (outcome, not_deleted): (Result<(), StoreError>, HashSet<(String, String)>) =
            match self.batch_write(OPERATION, requests, ROUNDS).await {
                Ok(left) if left.is_empty() => (Ok(()), HashSet::new()),
                Ok(left) => (
                    Err(StoreError::Transient {
                        operation: OPERATION,
                        source: format!("{} deletes unprocessed after {ROUNDS} rounds", left.len())
                            .into(),
                    }),
                    left.iter()
                        .filter_map(|w| w.delete_request.as_ref())
                        .filter_map(|d| {
                            let pk = d.key.get(keys::PK)?.as_s().ok()?;
                            let sk = d.key.get(keys::SK)?.as_s().ok()?;
                            Some((pk.clone(), sk.clone()))
                        })
                        .collect(),
                ),
                Err(e) => (
                    Err(e),
                    chunk
                        .iter()
                        .map(|f| (f.key.pk.clone(), f.key.sk.clone()))
                        .collect(),
                ),
            };
        for f in chunk {
            if !not_deleted.contains(&(f.key.pk.clone(), f.key.sk.clone())) {
                *deleted.entry(f.kind.clone()).or_default() += 1;
            }
        }
        outcome
    }

    /// Writes (or rewrites) a run's audit record.
    pub async fn put_offboard_audit(&self, audit: &OffboardAudit) -> Result<(), StoreError> {
        let key = keys::offboard_audit(&audit.merchant_id, audit.started_at);
        let item = to_item(AUDIT, &key, audit)?;
        self.put_item("PutItem offboarding audit", item).await
    }

    /// Every offboarding audit record of merchant `m`, oldest first.
    pub async fn offboard_audits(&self, m: &MerchantId) -> Result<Vec<OffboardAudit>, StoreError> {
        let items = self
            .query_prefix("Query offboarding audits", &keys::offboard_audits(m))
            .await?;
        from_items(AUDIT, items)
    }
}

/// What an operator asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub merchant: MerchantId,
    pub requested_by: Option<String>,
    pub mode: Mode,
    /// Items one step deletes at most (the profile and API keys all go in the first step).
    pub step_budget: usize,
    /// Steps this run takes at most; `None` runs until nothing is left.
    pub max_steps: Option<u32>,
}

/// Where a delete stands after a step.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub step: u32,
    /// Deleted so far in this run, per kind.
    pub deleted: &'a Counts,
    pub remaining: bool,
}

/// Runs `request`: counts (dry run) or deletes step by step, calling `progress` after each step,
/// with its audit record written at the start and rewritten at the end. A delete that fails
/// records `failed` (with what it deleted) before the error is returned.
pub async fn offboard(
    store: &Store,
    request: &Request,
    clock: &dyn Clock,
    mut progress: impl FnMut(&Progress<'_>),
) -> Result<OffboardAudit, StoreError> {
    let mut audit = OffboardAudit {
        merchant_id: request.merchant.clone(),
        requested_by: request.requested_by.clone(),
        mode: request.mode,
        started_at: clock.now(),
        outcome: Outcome::Running,
        counts: Counts::new(),
        total: 0,
        remaining: true,
        finished_at: None,
        error: None,
    };
    store.put_offboard_audit(&audit).await?;
    let result = match request.mode {
        Mode::DryRun => store
            .count_merchant_items(&request.merchant)
            .await
            .map(|counts| {
                audit.remaining = !counts.is_empty();
                audit.counts = counts;
                Outcome::Counted
            }),
        Mode::Delete => {
            let mut step = 0u32;
            loop {
                step += 1;
                let remaining = store
                    .delete_merchant_step(&request.merchant, request.step_budget, &mut audit.counts)
                    .await;
                match remaining {
                    Err(e) => break Err(e),
                    Ok(remaining) => {
                        audit.remaining = remaining;
                        progress(&Progress {
                            step,
                            deleted: &audit.counts,
                            remaining,
                        });
                        if !remaining {
                            break Ok(Outcome::Completed);
                        }
                        if request.max_steps.is_some_and(|max| step >= max) {
                            break Ok(Outcome::Incomplete);
                        }
                    }
                }
            }
        }
    };
    audit.total = total(&audit.counts);
    audit.finished_at = Some(clock.now());
    match result {
        Ok(outcome) => {
            audit.outcome = outcome;
            store.put_offboard_audit(&audit).await?;
            Ok(audit)
        }
        Err(e) => {
            audit.outcome = Outcome::Failed;
            audit.error = Some(e.to_string());
            // The run's own error is what the operator needs; a failure to record it is secondary.
            let _ = store.put_offboard_audit(&audit).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str) -> MerchantId {
        MerchantId::parse("m", id).unwrap()
    }

    #[test]
    fn the_filter_strings_name_one_merchant_and_no_other() {
        assert_eq!(keys::merchant_profile_pk(&m("acme")), "M#acme");
        assert_eq!(keys::merchant_items_prefix(&m("acme")), "M#acme#");
        assert_eq!(
            keys::merchant_profile_pk(&m("acme")),
            keys::merchant(&m("acme")).pk
        );
        let prefix = keys::merchant_items_prefix(&m("acme"));
        assert!(keys::api_keys(&m("acme")).pk.starts_with(&prefix));
        assert!(!keys::merchant(&m("acme-eu")).pk.starts_with(&prefix));
        assert!(!keys::api_keys(&m("acme-eu")).pk.starts_with(&prefix));
        assert_ne!(keys::merchant_profile_pk(&m("acme-eu")), "M#acme");
    }

    #[test]
    fn the_audit_record_is_outside_every_tenant_prefix_and_sorts_by_time() {
        let a = keys::offboard_audit(&m("acme"), "2026-12-01T10:00:00.5Z".parse().unwrap());
        let b = keys::offboard_audit(&m("acme"), "2026-12-01T10:00:01Z".parse().unwrap());
        assert_eq!(a.pk, "OFFBOARD#acme");
        assert_eq!(a.sk, "AUDIT#20261201T100000.500Z");
        assert!(a.sk < b.sk);
        assert!(a.sk.starts_with(&keys::offboard_audits(&m("acme")).prefix));
        assert_eq!(keys::merchant_of(&a.pk), None);
        assert!(!a.pk.starts_with(&keys::merchant_items_prefix(&m("acme"))));
        assert_ne!(a.pk, keys::merchant_profile_pk(&m("acme")));
    }

    #[test]
    fn an_item_without_a_type_is_of_unknown_kind() {
        let item = Item::from([
            (keys::PK.to_owned(), s("M#acme#C#c1")),
            (keys::SK.to_owned(), s("PROFILE")),
        ]);
        let found = Found::from_item(&item).unwrap();
        assert_eq!(found.kind, UNKNOWN_KIND);
        let typed = Item::from([
            (keys::PK.to_owned(), s("M#acme#C#c1")),
            (keys::SK.to_owned(), s("PROFILE")),
            (keys::TYPE.to_owned(), s("customer")),
        ]);
        assert_eq!(Found::from_item(&typed).unwrap().kind, "customer");
        assert!(Found::from_item(&Item::new()).is_none());
    }

    #[test]
    fn counts_add_up() {
        let counts = Counts::from([("a".to_owned(), 2), ("b".to_owned(), 3)]);
        assert_eq!(total(&counts), 5);
        assert_eq!(total(&Counts::new()), 0);
    }
}
