//! Privacy: everything held about one customer, read page by page for an export and erased in
//! resumable steps; the privacy request records.
//!
//! **What a customer's data is.** Everything is reached from the customer's aggregate
//! (`M#<m>#C#<c>`), never by a Scan: the aggregate's own items (store credit included: its
//! summaries `CREDIT#<ISO>` and entries `CREDITLOG#<source>` are exported as `credit_summary` and
//! `credit_entry` and erased with the aggregate), the customer's send log, the
//! orders its `ORDER#` entries name (each order's partition: the order, its shipment pointers,
//! follow-ups and survey answer), the shipments those name (state, checkpoints, due checks),
//! the subscriptions (`SUB#`, with their link clicks) and invoices (`INV#`) it points to, the
//! address partitions its `ADDR#` notes name (suppression, bounce streak, referral record,
//! customer notes) and the customer's referral code.
//!
//! **How an erasure goes** (every step idempotent; an erasure interrupted anywhere is finished
//! by running it again from the start, because a pointer in the aggregate is deleted only after
//! everything it leads to):
//! 1. each order: its id's tombstone first (the idempotency record, emptied of its content hash
//!    and kept without expiry, so a replay of the order, however late, answers `order_erased`),
//!    then its shipments' partitions, then the order's partition, then its `ORDER#` entry;
//! 2. each subscription's and invoice's partition, then their pointers (their due entries go
//!    with them: no renewal notice, card notice or dunning step is ever sent);
//! 3. the referrals the customer made: the referee's order forgets its referrer, the referee's
//!    record forgets who referred them (the referee keeps their own data);
//! 4. the referral code, then each address partition's bounce streak, referral record and the
//!    customer's note (the suppression stays, under the address's digest and holding no
//!    address, so a suppressed address is still never mailed), then the `ADDR#` notes;
//! 5. the send log (records, SES events, decisions), then what is left of the aggregate
//!    (profile, spend, ledger, loyalty notices, store credit summaries and entries, contact
//!    state);
//! 6. a last read of the aggregate and the send log: anything written meanwhile (an order placed
//!    during the erasure) is erased by another pass, so nothing outlives the request.
//!
//! Writes that arrive after an item is gone never bring it back: SES events update a send record
//! only where it holds the event's message id, due-work moves are conditioned on the item being
//! where the sweep saw it, and a replayed order meets its tombstone.

use super::write::{BATCH_WRITE, delete_request};
use super::{Item, Store, StoreError, classify, from_item, keys, n, s, to_item, update_held};
use crate::domain::order::IdempotencyRecord;
use crate::domain::privacy::{ExportCursor, PrivacyRequest, RequestStatus, Tally};
use crate::domain::{CustomerId, EmailAddress, MerchantId, OrderId};
use crate::ports::DueToken;
use crate::ports::privacy::{Erased, ExportPage, ExportedItem, PrivacyBook};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use jiff::Timestamp;
use std::collections::HashMap;
use std::time::Instant;

const REQUEST: &str = "privacy_request";
/// Rounds of a batch before what is still unprocessed is reported as a transient failure.
const ROUNDS: u32 = 6;
/// Passes of an erasure over a customer before it reports itself incomplete (another pass
/// follows only when something was written during the previous one).
const PASSES: u32 = 3;
/// Entries (orders, subscriptions, ...) read per Query of an export's walk.
const ENTRIES_PER_QUERY: i32 = 25;
/// Items per Query of a partition an export reads page by page.
const ITEMS_PER_QUERY: i32 = 200;

/// The attributes that are the table's, not the customer's: left out of an export.
const INTERNAL: &[&str] = &[
    keys::PK,
    keys::SK,
    keys::GSI1PK,
    keys::GSI1SK,
    keys::DUEPK,
    keys::DUESK,
    keys::TYPE,
];

/// The item kind (its `_type`), `unknown` without one.
fn kind_of(item: &Item) -> String {
    match item.get(keys::TYPE) {
        Some(AttributeValue::S(t)) => t.clone(),
        _ => "unknown".into(),
    }
}

fn sk_of(item: &Item) -> Option<&str> {
    match item.get(keys::SK) {
        Some(AttributeValue::S(sk)) => Some(sk),
        _ => None,
    }
}

fn key_of(item: &Item) -> Option<keys::Key> {
    match (item.get(keys::PK), item.get(keys::SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some(keys::Key {
            pk: pk.clone(),
            sk: sk.clone(),
        }),
        _ => None,
    }
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// An item as export JSON (without the table's attributes).
fn exported(mut item: Item) -> Result<ExportedItem, StoreError> {
    let kind = kind_of(&item);
    for attr in INTERNAL {
        item.remove(*attr);
    }
    let data: serde_json::Value = from_item("export", item)?;
    Ok(ExportedItem {
        kind,
        data: sorted(data),
    })
}

/// `v` with every object's attributes in name order (an item's attributes come in any order; an
/// export reads the same every time).
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A note linking a customer and an address (in both partitions); it holds the customer id only
/// (the address is in neither item: its digest is in their keys).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddressNote {
    pub customer_id: CustomerId,
}

/// The two address notes of customer `c` and the address `normalised`: the address's note of
/// the customer (a request naming only the address finds them) and the customer's note of the
/// address (their erasure finds its partition). Written with every order, subscription and
/// invoice of the customer (idempotent puts).
pub(crate) fn address_notes(
    m: &MerchantId,
    c: &CustomerId,
    normalised: &str,
) -> Result<[Item; 2], StoreError> {
    let note = AddressNote {
        customer_id: c.clone(),
    };
    Ok([
        to_item(
            "address_customer",
            &keys::address_customer(m, normalised, c),
            &note,
        )?,
        to_item(
            "customer_address",
            &keys::customer_address(m, c, normalised),
            &note,
        )?,
    ])
}

/// The stages of one customer's export, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The aggregate's own items.
    Aggregate,
    /// The send log.
    Sends,
    /// Each order (with its shipments).
    Orders,
    Subscriptions,
    Invoices,
    /// Each address's partition (the customer's part of it).
    Addresses,
    /// The customer's referral code.
    ReferralCode,
}

const STAGES: [Stage; 7] = [
    Stage::Aggregate,
    Stage::Sends,
    Stage::Orders,
    Stage::Subscriptions,
    Stage::Invoices,
    Stage::Addresses,
    Stage::ReferralCode,
];

/// How much of a page is left.
struct Budget {
    left: usize,
}

impl Budget {
    fn spend(&mut self, items: &[ExportedItem]) {
        let size: usize = items
            .iter()
            .map(|i| serde_json::to_vec(&i.data).map(|v| v.len()).unwrap_or(0) + 32)
            .sum();
        self.left = self.left.saturating_sub(size);
    }

    fn spent(&self) -> bool {
        self.left == 0
    }
}

impl Store {
    /// Writes the address notes of `c` and `normalised` (see [`address_notes`]).
    pub(crate) async fn put_address_notes(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        normalised: &str,
    ) -> Result<(), StoreError> {
        for note in address_notes(m, c, normalised)? {
            self.put_item("PutItem address note", note).await?;
        }
        Ok(())
    }

    /// Deletes `keys` in BatchWriteItem calls of 25, retrying what DynamoDB leaves unprocessed.
    pub(crate) async fn delete_keys(
        &self,
        operation: &'static str,
        keys_to_delete: Vec<keys::Key>,
    ) -> Result<(), StoreError> {
        for chunk in keys_to_delete.chunks(BATCH_WRITE) {
            let requests = chunk
                .iter()
                .map(delete_request)
                .collect::<Result<Vec<_>, _>>()?;
            let left = self.batch_write(operation, requests, ROUNDS).await?;
            if !left.is_empty() {
                return Err(StoreError::Transient {
                    operation,
                    source: format!("{} deletes left unprocessed", left.len()).into(),
                });
            }
        }
        Ok(())
    }

    /// Deletes `items`, counting them by kind under `erased.<kind>`.
    async fn delete_items(
        &self,
        operation: &'static str,
        items: &[Item],
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        let keys_to_delete: Vec<keys::Key> = items.iter().filter_map(key_of).collect();
        self.delete_keys(operation, keys_to_delete).await?;
        for item in items {
            tally.add(format!("erased.{}", kind_of(item)), 1);
        }
        Ok(())
    }

    /// Deletes every item `within` names.
    async fn delete_within(
        &self,
        operation: &'static str,
        within: &keys::Within,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        let items = self.query_prefix(operation, within).await?;
        self.delete_items(operation, &items, tally).await
    }

    /// One page of the items `within` names after `after` (`limit` items at most), and the sort
    /// key to continue after if there may be more.
    async fn page_after(
        &self,
        within: &keys::Within,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let start = after.map(|sk| {
            HashMap::from([
                (keys::PK.to_owned(), s(&within.pk)),
                (keys::SK.to_owned(), s(sk)),
            ])
        });
        let out = self
            .prefix_query(within)
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| classify("Query privacy page", e))?;
        let items = out.items.unwrap_or_default();
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let last = items.last().and_then(sk_of).map(str::to_owned);
        Ok((items, if more { last } else { None }))
    }

    /// The partitions one entry of the aggregate leads to, for an export (`c` filters the
    /// address partitions to the customer's own part).
    async fn entry_items(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        stage: Stage,
        entry: &Item,
    ) -> Result<Vec<Item>, StoreError> {
        let Some(sk) = sk_of(entry) else {
            return Ok(Vec::new());
        };
        Ok(match stage {
            Stage::Orders => {
                let Some(o) =
                    string_attr(entry, "order_id").and_then(|o| OrderId::parse("order_id", o).ok())
                else {
                    return Ok(Vec::new());
                };
                let mut items = self
                    .query_prefix("Query order export", &keys::order_items(m, &o))
                    .await?;
                for s_id in shipment_ids(&items) {
                    items.extend(
                        self.query_prefix("Query shipment export", &keys::shipment_items(m, &s_id))
                            .await?,
                    );
                }
                for r in return_ids(&items) {
                    items.extend(
                        self.query_prefix("Query return export", &keys::return_items(m, &r))
                            .await?,
                    );
                }
                items
            }
            Stage::Subscriptions => match keys::subscription_of_pointer(m, sk) {
                Some(within) => {
                    self.query_prefix("Query subscription export", &within)
                        .await?
                }
                None => Vec::new(),
            },
            Stage::Invoices => match keys::invoice_of_pointer(m, sk) {
                Some(within) => self.query_prefix("Query invoice export", &within).await?,
                None => Vec::new(),
            },
            Stage::Addresses => match keys::addressed(m, sk) {
                Some(within) => self
                    .query_prefix("Query address export", &within)
                    .await?
                    .into_iter()
                    .filter(|i| address_item_of(i, Some(c)))
                    .collect(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    /// Runs one stage of customer `c`'s export from `after`, filling `out` until `budget` is
    /// spent: where to continue if the stage is not finished.
    async fn export_stage(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        stage: Stage,
        after: Option<String>,
        budget: &mut Budget,
        out: &mut Vec<ExportedItem>,
    ) -> Result<Option<String>, StoreError> {
        let mut after = after;
        match stage {
            Stage::Aggregate | Stage::Sends => {
                let within = match stage {
                    Stage::Aggregate => keys::customer_aggregate(m, c),
                    _ => keys::customer_sends(m, c),
                };
                loop {
                    let (items, next) = self
                        .page_after(&within, after.as_deref(), ITEMS_PER_QUERY)
                        .await?;
                    let page = items
                        .into_iter()
                        .map(exported)
                        .collect::<Result<Vec<_>, _>>()?;
                    budget.spend(&page);
                    out.extend(page);
                    match next {
                        Some(next) if budget.spent() => return Ok(Some(next)),
                        Some(next) => after = Some(next),
                        None => return Ok(None),
                    }
                }
            }
            Stage::ReferralCode => {
                let profile = self
                    .query_prefix("Query profile export", &keys::customer_profile(m, c))
                    .await?;
                let code = profile
                    .first()
                    .and_then(|p| string_attr(p, "referral_code"))
                    .map(str::to_owned);
                if let Some(code) = code {
                    let items = self
                        .query_prefix(
                            "Query referral code export",
                            &keys::referral_codes(m, &code),
                        )
                        .await?;
                    for item in items {
                        if string_attr(&item, "customer_id") == Some(c.as_str()) {
                            out.push(exported(item)?);
                        }
                    }
                }
                Ok(None)
            }
            Stage::Orders | Stage::Subscriptions | Stage::Invoices | Stage::Addresses => {
                let within = match stage {
                    Stage::Orders => keys::customer_orders(m, c),
                    Stage::Subscriptions => keys::customer_subscriptions(m, c),
                    Stage::Invoices => keys::customer_invoices(m, c),
                    _ => keys::customer_addresses(m, c),
                };
                loop {
                    let (entries, next) = self
                        .page_after(&within, after.as_deref(), ENTRIES_PER_QUERY)
                        .await?;
                    for entry in &entries {
                        let items = self.entry_items(m, c, stage, entry).await?;
                        let page = items
                            .into_iter()
                            .map(exported)
                            .collect::<Result<Vec<_>, _>>()?;
                        budget.spend(&page);
                        out.extend(page);
                        after = sk_of(entry).map(str::to_owned);
                        if budget.spent() {
                            return Ok(after);
                        }
                    }
                    match next {
                        Some(next) => after = Some(next),
                        None => return Ok(None),
                    }
                }
            }
        }
    }

    /// Erases order `o`: its tombstone first, then its shipments, then its partition.
    async fn erase_order(
        &self,
        m: &MerchantId,
        o: &OrderId,
        now: Timestamp,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        let items = self
            .query_prefix("Query order erasure", &keys::order_items(m, o))
            .await?;
        let tombstone = IdempotencyRecord {
            scope: "order".into(),
            key: o.as_str().to_owned(),
            content_hash: String::new(),
            created_at: now,
            sold_chunks: None,
        };
        let mut item = to_item(
            "idempotency",
            &keys::idempotency(m, "order", o.as_str()),
            &tombstone,
        )?;
        item.insert("erased_at".into(), s(now.to_string()));
        self.put_item("PutItem order tombstone", item).await?;
        tally.add("kept.order_tombstone", 1);
        for s_id in shipment_ids(&items) {
            let shipment = self
                .query_prefix("Query shipment erasure", &keys::shipment_items(m, &s_id))
                .await?;
            // The parcels' tracking pointers first: their keys come from the shipment item, so
            // an erasure cut short here finds them again next time.
            let pointers = tracking_pointer_keys(m, &shipment);
            let count = pointers.len();
            self.delete_keys("BatchWriteItem tracking pointer erasure", pointers)
                .await?;
            tally.add("erased.tracking_pointer", count as u64);
            self.delete_items("BatchWriteItem shipment erasure", &shipment, tally)
                .await?;
        }
        for r in return_ids(&items) {
            let ret = self
                .query_prefix("Query return erasure", &keys::return_items(m, &r))
                .await?;
            // The parcel's pointer first: its key comes from the return, so an erasure cut short
            // here finds it again next time.
            let pointers = return_pointer_keys(m, &ret);
            let count = pointers.len();
            self.delete_keys("BatchWriteItem return pointer erasure", pointers)
                .await?;
            tally.add("erased.return_parcel_pointer", count as u64);
            self.delete_items("BatchWriteItem return erasure", &ret, tally)
                .await?;
        }
        self.delete_items("BatchWriteItem order erasure", &items, tally)
            .await
    }

    /// The referee's order and record made by `order` forget that `c` referred them.
    async fn unlink_referral(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        order: &OrderId,
        tally: &mut Tally,
    ) -> Result<(), StoreError> {
        let Some(referee_order) = self.get_order(m, order).await? else {
            return Ok(());
        };
        let forget_on_order = self
            .update_item(&keys::order(m, order))
            .update_expression("REMOVE referred_by")
            .condition_expression("referred_by = :c")
            .expression_attribute_values(":c", s(c.as_str()));
        if update_held("UpdateItem forget referrer", forget_on_order).await? {
            tally.add("unlinked.referred_order", 1);
        }
        // A referral needs the referee's address: an order without one was never referred.
        let Some(email) = referee_order.order.customer.email.as_ref() else {
            return Ok(());
        };
        let email = email.normalized();
        let forget_on_referee = self
            .update_item(&keys::referee(m, &email))
            .update_expression("REMOVE referrer")
            .condition_expression("referrer = :c")
            .expression_attribute_values(":c", s(c.as_str()));
        if update_held("UpdateItem forget referrer", forget_on_referee).await? {
            tally.add("unlinked.referee", 1);
        }
        Ok(())
    }

    /// One pass over customer `c`'s data (see the module doc for the order of its steps); false
    /// if `until` came first.
    async fn erase_pass(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        until: Instant,
        now: Timestamp,
        tally: &mut Tally,
    ) -> Result<bool, StoreError> {
        let aggregate = self
            .query_prefix("Query customer erasure", &keys::customer_aggregate(m, c))
            .await?;
        let out_of_time = || Instant::now() >= until;
        for entry in &aggregate {
            let Some(sk) = sk_of(entry) else { continue };
            if out_of_time() {
                return Ok(false);
            }
            if sk.starts_with("ORDER#") {
                if let Some(o) =
                    string_attr(entry, "order_id").and_then(|o| OrderId::parse("order_id", o).ok())
                {
                    self.erase_order(m, &o, now, tally).await?;
                }
            } else if let Some(within) =
                keys::subscription_of_pointer(m, sk).or_else(|| keys::invoice_of_pointer(m, sk))
            {
                self.delete_within("BatchWriteItem erasure", &within, tally)
                    .await?;
            } else if let Some(o) = keys::referred_order(sk) {
                self.unlink_referral(m, c, &o, tally).await?;
                continue;
            } else {
                continue;
            }
            self.delete_items(
                "BatchWriteItem pointer erasure",
                std::slice::from_ref(entry),
                tally,
            )
            .await?;
        }
        let profile = aggregate.iter().find(|i| sk_of(i) == Some("PROFILE"));
        if let Some(code) = profile.and_then(|p| string_attr(p, "referral_code")) {
            let delete = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(keys::referral_code(m, code).to_map()))
                .condition_expression("customer_id = :c")
                .expression_attribute_values(":c", s(c.as_str()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| classify("DeleteItem referral code", e));
            match delete {
                Ok(out) if out.attributes.as_ref().is_some_and(|a| !a.is_empty()) => {
                    tally.add("erased.referral_code", 1);
                }
                Ok(_) | Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        for entry in &aggregate {
            let Some(within) = sk_of(entry).and_then(|sk| keys::addressed(m, sk)) else {
                continue;
            };
            let items = self.query_prefix("Query address erasure", &within).await?;
            let (keep, erase): (Vec<Item>, Vec<Item>) = items
                .into_iter()
                .filter(|i| address_item_of(i, Some(c)))
                .partition(|i| sk_of(i) == Some(keys::SUPPRESSION_SK));
            tally.add("kept.suppression", keep.len() as u64);
            self.delete_items("BatchWriteItem address erasure", &erase, tally)
                .await?;
            self.delete_items(
                "BatchWriteItem address note erasure",
                std::slice::from_ref(entry),
                tally,
            )
            .await?;
        }
        if out_of_time() {
            return Ok(false);
        }
        self.delete_within(
            "BatchWriteItem send log erasure",
            &keys::customer_sends(m, c),
            tally,
        )
        .await?;
        self.delete_within(
            "BatchWriteItem customer erasure",
            &keys::customer_aggregate(m, c),
            tally,
        )
        .await?;
        Ok(true)
    }

    /// Whether Aftercare holds anything of customer `c` (their aggregate has an item): false once
    /// they are erased (or were never known).
    pub async fn customer_known(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        let (items, _) = self
            .page_after(&keys::customer_aggregate(m, c), None, 1)
            .await?;
        Ok(!items.is_empty())
    }

    /// Whether nothing of `c` is left: neither their aggregate nor their send log.
    async fn customer_is_gone(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        if self.customer_known(m, c).await? {
            return Ok(false);
        }
        let (sends, _) = self
            .page_after(&keys::customer_sends(m, c), None, 1)
            .await?;
        Ok(sends.is_empty())
    }
}

/// Whether an address partition's item belongs to the export or erasure of customer `c` (every
/// item but other customers' notes; all of them for an address with no customer).
fn address_item_of(item: &Item, c: Option<&CustomerId>) -> bool {
    match sk_of(item).and_then(keys::customer_of_note) {
        Some(owner) => c.is_some_and(|c| &owner == c),
        None => true,
    }
}

/// The keys of the tracking pointers of the shipment among `items` (a shipment's partition).
fn tracking_pointer_keys(m: &MerchantId, items: &[Item]) -> Vec<keys::Key> {
    items
        .iter()
        .filter(|i| sk_of(i) == Some("SHIPMENT"))
        .filter_map(|i| {
            from_item::<crate::domain::shipment::ShipmentRecord>("shipment", i.clone()).ok()
        })
        .flat_map(|record| {
            let s = record.shipment.id.clone();
            record
                .tracking_pointers()
                .into_iter()
                .map(move |(number, p)| keys::tracking(m, &number, &p.carrier_family, &s))
        })
        .collect()
}

/// The returns an order's partition lists (its return tally).
fn return_ids(order_items: &[Item]) -> Vec<crate::domain::ids::ReturnId> {
    order_items
        .iter()
        .filter(|i| kind_of(i) == "return_tally")
        .filter_map(|i| {
            from_item::<crate::domain::returns::ReturnTally>("return_tally", i.clone()).ok()
        })
        .flat_map(|t| t.returns)
        .collect()
}

/// The keys of the parcel pointers of the returns among `items` (a return's partition).
fn return_pointer_keys(m: &MerchantId, items: &[Item]) -> Vec<keys::Key> {
    items
        .iter()
        .filter(|i| kind_of(i) == "return")
        .filter_map(|i| from_item::<crate::domain::returns::ReturnRecord>("return", i.clone()).ok())
        .filter_map(|r| {
            let number = crate::domain::shipment::normalise_tracking_number(
                &r.parcel.as_ref()?.tracking_number,
            );
            Some(keys::return_tracking(m, &number, &r.id))
        })
        .collect()
}

/// The shipments an order's partition points to.
fn shipment_ids(order_items: &[Item]) -> Vec<crate::domain::ids::ShipmentId> {
    order_items
        .iter()
        .filter_map(sk_of)
        .filter_map(keys::shipment_of_pointer)
        .collect()
}

impl PrivacyBook for Store {
    async fn customers_at(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let items = self
            .query_prefix(
                "Query address customers",
                &keys::address_customers(m, &email.normalized()),
            )
            .await?;
        let mut customers: Vec<CustomerId> = items
            .iter()
            .filter_map(sk_of)
            .filter_map(keys::customer_of_note)
            .collect();
        customers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        customers.dedup();
        Ok(customers)
    }

    async fn export_page(
        &self,
        m: &MerchantId,
        customers: &[CustomerId],
        address: Option<&EmailAddress>,
        cursor: &ExportCursor,
        max_bytes: usize,
    ) -> Result<ExportPage, StoreError> {
        let mut budget = Budget { left: max_bytes };
        let mut items = Vec::new();
        if customers.is_empty() {
            // Only the address's own items (a suppression, a bounce streak, a referral record).
            if let Some(email) = address
                && cursor.customer == 0
                && cursor.stage == 0
            {
                for item in self
                    .query_prefix(
                        "Query address export",
                        &keys::address_items(m, &email.normalized()),
                    )
                    .await?
                {
                    if address_item_of(&item, None) {
                        items.push(exported(item)?);
                    }
                }
            }
            return Ok(ExportPage { items, next: None });
        }
        let mut at = cursor.clone();
        while let Some(c) = customers.get(at.customer) {
            while let Some(stage) = STAGES.get(at.stage) {
                let after = at.after.take();
                match self
                    .export_stage(m, c, *stage, after, &mut budget, &mut items)
                    .await?
                {
                    Some(next) => {
                        at.after = Some(next);
                        return Ok(ExportPage {
                            items,
                            next: Some(at),
                        });
                    }
                    None => at.stage += 1,
                }
                if budget.spent() {
                    let done = at.stage >= STAGES.len() && at.customer + 1 >= customers.len();
                    if done {
                        return Ok(ExportPage { items, next: None });
                    }
                    if at.stage >= STAGES.len() {
                        at.customer += 1;
                        at.stage = 0;
                    }
                    return Ok(ExportPage {
                        items,
                        next: Some(at),
                    });
                }
            }
            at.customer += 1;
            at.stage = 0;
        }
        Ok(ExportPage { items, next: None })
    }

    async fn erase_customer(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        until: Instant,
        now: Timestamp,
    ) -> Result<Erased, StoreError> {
        let mut tally = Tally::default();
        for _ in 0..PASSES {
            if !self.erase_pass(m, c, until, now, &mut tally).await? {
                return Ok(Erased {
                    tally,
                    complete: false,
                });
            }
            if self.customer_is_gone(m, c).await? {
                return Ok(Erased {
                    tally,
                    complete: true,
                });
            }
            tracing::info!("customer data written during the erasure; erasing it too");
        }
        Ok(Erased {
            tally,
            complete: false,
        })
    }

    async fn erase_address(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> Result<Tally, StoreError> {
        let mut tally = Tally::default();
        let items = self
            .query_prefix(
                "Query address erasure",
                &keys::address_items(m, &email.normalized()),
            )
            .await?;
        let (keep, erase): (Vec<Item>, Vec<Item>) = items
            .into_iter()
            .partition(|i| sk_of(i) == Some(keys::SUPPRESSION_SK));
        tally.add("kept.suppression", keep.len() as u64);
        self.delete_items("BatchWriteItem address erasure", &erase, &mut tally)
            .await?;
        Ok(tally)
    }

    async fn request(
        &self,
        m: &MerchantId,
        id: &str,
    ) -> Result<Option<PrivacyRequest>, StoreError> {
        self.get_as(
            "GetItem privacy request",
            REQUEST,
            &keys::privacy_request(m, id),
        )
        .await
    }

    async fn begin(
        &self,
        request: &PrivacyRequest,
        resume_at: Option<Timestamp>,
    ) -> Result<PrivacyRequest, StoreError> {
        let key = keys::privacy_request(&request.merchant_id, &request.id);
        let mut item = to_item(REQUEST, &key, request)?;
        if let Some(at) = resume_at {
            item = super::write::with_due(item, PRIVACY_GROUP, at, &key);
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #status <> :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(RequestStatus::Running.as_str()))
            .send()
            .await
            .map_err(|e| classify("PutItem privacy request", e));
        match put {
            Ok(_) => Ok(request.clone()),
            Err(StoreError::ConditionFailed) => self
                .request(&request.merchant_id, &request.id)
                .await?
                .ok_or(StoreError::ConditionFailed),
            Err(e) => Err(e),
        }
    }

    async fn progress(
        &self,
        m: &MerchantId,
        id: &str,
        tally: &Tally,
        resume_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = keys::privacy_request(m, id);
        let (due_pk, due_sk) = keys::due(PRIVACY_GROUP, resume_at, &key);
        let mut adds = Vec::new();
        let mut update = self
            .update_item(&key)
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":dpk", s(due_pk))
            .expression_attribute_values(":dsk", s(due_sk))
            .condition_expression("attribute_exists(PK)");
        for (i, (what, count)) in tally.0.iter().enumerate() {
            adds.push(format!("#counts.#k{i} :v{i}"));
            update = update
                .expression_attribute_names(format!("#k{i}"), what)
                .expression_attribute_values(format!(":v{i}"), n(*count));
        }
        let add = if adds.is_empty() {
            String::new()
        } else {
            update = update.expression_attribute_names("#counts", "counts");
            format!(" ADD {}", adds.join(", "))
        };
        update = update.update_expression(format!(
            "SET updated_at = :now, DUEPK = :dpk, DUESK = :dsk{add}"
        ));
        update_held("UpdateItem privacy progress", update).await?;
        Ok(())
    }

    async fn defer_retention(&self, due: &DueToken, at: Timestamp) -> Result<bool, StoreError> {
        let (due_pk, due_sk) = keys::due(RETENTION_GROUP, at, &due.key());
        let update = self
            .update_seen(due, None)
            .update_expression("SET DUEPK = :dpk, DUESK = :dsk")
            .expression_attribute_values(":dpk", s(due_pk))
            .expression_attribute_values(":dsk", s(due_sk));
        update_held("UpdateItem defer retention", update).await
    }

    async fn retention_turn(
        &self,
        now: Timestamp,
        every: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = now.as_millisecond();
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let update = self
            .update_item(&keys::sweep_mark("retention"))
            .update_expression("SET at_ms = :now, #type = :t")
            .condition_expression("attribute_not_exists(at_ms) OR at_ms <= :cutoff")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s("sweep_mark"))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":cutoff", n(now_ms.saturating_sub(every_ms)));
        update_held("UpdateItem retention turn", update).await
    }

    async fn has_running_subscription(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<bool, StoreError> {
        use crate::domain::subscription::SubscriptionStatus;
        for id in self.customer_subscriptions(m, c).await? {
            if let Some(record) = self.get_subscription(m, &id).await?
                && !matches!(
                    record.subscription.status,
                    SubscriptionStatus::Cancelled | SubscriptionStatus::Lapsed
                )
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn complete(
        &self,
        m: &MerchantId,
        id: &str,
        now: Timestamp,
    ) -> Result<PrivacyRequest, StoreError> {
        let out = self
            .update_item(&keys::privacy_request(m, id))
            .update_expression(
                "SET #status = :done, completed_at = :now, updated_at = :now \
                 REMOVE subject, DUEPK, DUESK",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s(RequestStatus::Completed.as_str()))
            .expression_attribute_values(":now", s(now.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem privacy complete", e))?;
        from_item(REQUEST, out.attributes.unwrap_or_default())
    }
}

/// The due group of erasures to carry on.
pub const PRIVACY_GROUP: &str = "privacy";
/// The due group of customers' retention (see `usecases::privacy`).
pub const RETENTION_GROUP: &str = "retention";
