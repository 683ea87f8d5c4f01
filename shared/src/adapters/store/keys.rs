//! The key schema: the only place key strings are built.
//!
//! One table, `PK` (partition) + `SK` (sort), both strings. Every partition key of tenant data
//! starts with `M#<merchant>#<entity>`, so no query can cross tenants by accident; ids are parsed
//! newtypes that cannot contain the `#` separator, so keys cannot be forged by crafted ids (the
//! few free-text parts, an idempotency key, a replay key, an address, a SKU, always come last in
//! their partition key, behind an entity tag no other item kind uses).
//!
//! **No partition is shared by a merchant's customers or orders.** DynamoDB serves one partition
//! key at most 1,000 write and 3,000 read units per second, so each aggregate has its own: a
//! customer, an order, a shipment, a subscription, an invoice, an address. What must be listed
//! merchant-wide (survey answers, surveys sent, invoices in dunning, email counters) is written
//! over [`LIST_SHARDS`] or [`STATS_SHARDS`] partitions picked by a hash of the item's id and read
//! back by querying each of them; due work goes to the global `due` index over [`DUE_SHARDS`]
//! partitions per group.
//!
//! | item                       | PK                          | SK                          | index keys |
//! |----------------------------|-----------------------------|-----------------------------|------------|
//! | merchant profile           | `M#<m>`                     | `MERCHANT`                  | gsi1 `SHOP#<shop domain>` / `MERCHANT` with a Shopify store |
//! | API key (hash only)        | `M#<m>#KEYS`                | `APIKEY#<keyId>`            | gsi1 `APIKEY#<sha256>` / `APIKEY` |
//! | customer profile           | `M#<m>#C#<c>`               | `PROFILE`                   | |
//! | customer spend/currency    | `M#<m>#C#<c>`               | `SPEND#<ISO>`               | |
//! | customer's order index     | `M#<m>#C#<c>`               | `ORDER#<placedAt>#<o>`      | |
//! | loyalty balance + version  | `M#<m>#C#<c>`               | `LEDGER`                    | |
//! | loyalty ledger entry       | `M#<m>#C#<c>`               | `LEDGER#<source>`           | |
//! | loyalty notice             | `M#<m>#C#<c>`               | `NOTICE#<referral source or expiry>` | due (sparse) |
//! | store credit summary + version, per currency | `M#<m>#C#<c>` | `CREDIT#<ISO>`            | |
//! | store credit entry         | `M#<m>#C#<c>`               | `CREDITLOG#<source>`        | |
//! | customer contact state     | `M#<m>#C#<c>`               | `CONTACT`                   | |
//! | customer's subscription    | `M#<m>#C#<c>`               | `SUB#<s>`                   | |
//! | customer's invoice pointer | `M#<m>#C#<c>`               | `INV#<i>`                   | |
//! | customer's address note    | `M#<m>#C#<c>`               | `ADDR#<address digest>`     | |
//! | email send record/claim    | `M#<m>#C#<c>#SEND`          | `SEND#<c>#<kind>#<subject>#<step>` | due (sparse) while parked `ambiguous` |
//! | merchant alert send record | `M#<m>#ALERTS`              | `ALERT#<topic>#<period>`    | due (sparse) while parked `ambiguous` |
//! | order (+ line items)       | `M#<m>#O#<o>`               | `ORDER`                     | |
//! | order's shipment index     | `M#<m>#O#<o>`               | `SHIP#<s>`                  | |
//! | follow-up (journey)        | `M#<m>#O#<o>`               | `FOLLOWUP#<kind>`           | due (sparse); gsi1 `M#<m>#SURVEYSENT#<shard>` / `<sent ms>#<o>` once a survey went |
//! | survey answer              | `M#<m>#O#<o>`               | `FEEDBACK`                  | gsi1 `M#<m>#FEEDBACK#<shard>` / `<answered ms>#<o>` |
//! | order's return tally (units per SKU coming back, the returns, those under way, refunds reported before a return was resolved and those adopted, version) | `M#<m>#O#<o>` | `RETURNS` | |
//! | return (+ lines, amounts, history, parcel, credit given) | `M#<m>#RET#<r>` | `RETURN` | gsi1 `M#<m>#RETURNS#<shard>` / `<created ms>#<r>`; due (sparse) while its reminder is pending |
//! | return parcel's tracking pointer | `M#<m>#RTRK#<number>`  | `RETURN#<r>`                | |
//! | idempotency record         | `M#<m>#IDEM#<scope>#<key>`  | `IDEMP`                     | |
//! | shipment (+ state, tracking-page `views`) | `M#<m>#S#<s>` | `SHIPMENT`                 | |
//! | tracking checkpoint        | `M#<m>#S#<s>`               | `CP#<time>#<checkpointId>`  | |
//! | shipment due check         | `M#<m>#S#<s>`               | `DUE#<late or fallback>`    | due (sparse) |
//! | parcel's tracking pointer  | `M#<m>#TRK#<number>`        | `<carrier family>#<s>`      | |
//! | subscription               | `M#<m>#SUB#<s>`             | `SUB`                       | due (sparse) |
//! | subscription link click    | `M#<m>#SUB#<s>`             | `CLICK#<ulid>`              | |
//! | invoice in dunning         | `M#<m>#INV#<i>`             | `INVOICE`                   | due (sparse); gsi1 `M#<m>#DUNNING#<shard>` / `<first failure ms>#<i>` |
//! | billing event seen         | `M#<m>#BEVT#<provider>#<id>`| `BEVT`                      | |
//! | webhook signature seen     | `M#<m>#WH#<replayKey>`      | `WEBHOOK`                   | |
//! | platform delivery handled  | `M#<m>#DLV#<source>#<id>`   | `DELIVERY`                  | |
//! | suppressed address         | `M#<m>#E#<address digest>`  | `SUPPRESS`                  | |
//! | soft-bounce streak         | `M#<m>#E#<address digest>`  | `BOUNCE`                    | |
//! | referee (by email)         | `M#<m>#E#<address digest>`  | `REFEREE`                   | |
//! | customer of an address     | `M#<m>#E#<address digest>`  | `CUST#<c>`                  | |
//! | referral code              | `M#<m>#REF#<code>`          | `REFCODE`                   | |
//! | email counters             | `M#<m>#STATS#<shard>`       | `<day>#<kind>`              | |
//! | units sold of a SKU        | `M#<m>#SOLD#<sku>`          | `<day>#<shard>`             | |
//! | product (catalogue)        | `M#<m>#P#<sku>`             | `PRODUCT`                   | |
//! | privacy request (audit)    | `M#<m>#PRIVACY#<id>`        | `REQUEST`                   | due (sparse) while an erasure runs |
//! | housekeeping sweep mark    | `SWEEP#<what>`              | `LAST`                      | |
//! | offboarding audit record   | `OFFBOARD#<m>`              | `AUDIT#<started at>`        | |
//!
//! The offboarding audit record is the one item about a merchant outside its tenant prefix, on
//! purpose: it records that the merchant's data was counted or deleted (who asked, when, the
//! outcome, counts per item kind) and must outlive that data. It holds no personal data (the
//! merchant id, the operator name given as `--requested-by`, times and counts), so a customer's
//! export or erasure never has anything to read or delete in it; it is kept for the operator's
//! records, with no TTL (an operator deletes it by key when their own retention period ends).
//!
//! Due work lives in the sparse, write-sharded `due` index: `DUEPK = DUE#<group>#<shard>` (the
//! shard is a hash of the item's key, so one group's writes spread over [`DUE_SHARDS`]
//! partitions whatever day they fall due) and `DUESK = <due epoch ms, 13 digits>#<PK>#<SK>`. A
//! sweep queries each shard of its group with `DUESK` between the start of its look-back and now:
//! it reads only what is due, never scans, and an item leaves the index when its due attributes
//! are removed.
//!
//! Transactions (all well under DynamoDB's 100 items):
//! * place an order: the idempotency record, the order, the customer's profile, spend and order
//!   index entry, the pending loyalty earn (summary and ledger entry), the customer's referral
//!   code when they get one, the thank-you email's claim and the check on the recipient's
//!   suppression: at most 10 items over the order's, the idempotency record's, the customer's,
//!   the send record's, the code's and the address's partitions.
//! * claim an email: the send record plus a condition check on the recipient's suppression item;
//!   every transaction below that sends adds these two.
//! * record a shipment: the shipment, the order's shipment index entry, its due checks and the
//!   "shipped" email's claim; a checkpoint: the checkpoint, the shipment's state, the webhook's
//!   replay record when it came by webhook, the order's shipment index entry and the email's
//!   claim; anchoring the journey: the order's journey mark and one follow-up per kind (the
//!   order's partition): at most 8 items.
//! * a follow-up's, a renewal's or a dunning step's move: its own item plus the send record.
//! * a billing event: the event-seen record and the invoice (plus the email's claim); a refund
//!   no return pays yet: a check that the order is held and the order's return tally (the refund
//!   appended if not there), 2 items.
//! * loyalty postings: the customer's summary and its ledger entries (one partition).
//! * counting a placed order's units sold: the order's idempotency record (its count of chunks
//!   done, from the value read) and one counter per SKU of the chunk: at most 100 items, one
//!   transaction per 99 SKUs of the order, after the order's own write.
//! * a return asked for: the return (new), the order's tally (new, or from the version read) and
//!   the email's claim; a move: the return (from the version read), the tally when a rejection or
//!   a resolution changes it, the email's claim, and the parcel's pointer when it is recorded.
//! * store credit postings (issue, redemption, adjustment): the entry (if its source is new) and
//!   its currency's summary (if still at the version read): 2 items, the customer's partition.
//!
//! Access patterns (every one a GetItem, a BatchGetItem or a Query of one partition, or a Query
//! per shard of a sharded listing):
//! * get a merchant: GetItem `M#<m>` / `MERCHANT`.
//! * authenticate a request: Query `gsi1` on `APIKEY#<sha256(key)>` (one item or none).
//! * list a merchant's keys: Query `M#<m>#KEYS`.
//! * get an order: GetItem `M#<m>#O#<o>` / `ORDER`; its shipments and follow-ups: Query the
//!   order's partition, SK begins_with `SHIP#` / `FOLLOWUP#`.
//! * a tracking page: GetItem the shipment, Query its `CP#` history and its order's `SHIP#`
//!   pointers, GetItem each other shipment, once delivered one BatchGetItem of the items'
//!   products and one of their related products; then its one write, `ADD views :one` on the
//!   shipment item (no item kind of its own).
//! * a customer's whole aggregate (profile, spend, orders, ledger, contact, subscriptions): Query
//!   `M#<m>#C#<c>`; their orders newest first: SK begins_with `ORDER#`, descending.
//! * a store credit decision: GetItem the currency's summary `CREDIT#<ISO>` and the request's
//!   entry `CREDITLOG#<source>` (consistent); a customer's credit statement: Query the customer's
//!   partition, SK begins_with `CREDIT` (summaries and entries, sorted newest first in memory).
//! * the send record of one touchpoint: GetItem; a customer's message log: Query
//!   `M#<m>#C#<c>#SEND`.
//! * what a follow-up needs (order, contact state, suppression): one BatchGetItem.
//! * subscriptions due for a notice, invoices due for a dunning step: the due index (groups
//!   `renewal` and `dunning`), exactly like follow-ups.
//! * sends parked `ambiguous` whose silence window ended: the due index (group `parked`, 4
//!   shards: parked sends are rare), the send record itself being the due item.
//! * survey answers, surveys sent, invoices in dunning in a period: Query `gsi1` on each shard of
//!   `M#<m>#FEEDBACK#`, `M#<m>#SURVEYSENT#`, `M#<m>#DUNNING#` with GSI1SK between two times.
//! * email counters of a period: Query each `M#<m>#STATS#<shard>` with SK between two days.
//! * units sold of a SKU in a period (a return rate's denominator): Query `M#<m>#SOLD#<sku>`
//!   with SK between two days, one Query per SKU the period's returns name.
//! * an order's return page: Query the order's partition (order, shipment pointers, return tally),
//!   one BatchGetItem of its returns (and of the products, for excluded categories and exchange
//!   variants); a return: GetItem `M#<m>#RET#<r>` / `RETURN`; the returns of a period: Query `gsi1`
//!   on each shard of `M#<m>#RETURNS#`; a return parcel's tracking update: Query `M#<m>#RTRK#<n>`;
//!   approved returns due for their reminder: the due index (group `return`, 4 shards).
//! * a follow-up's products: in its BatchGetItem (the SKUs the follow-up keeps); a cross-sell's
//!   related products: one more BatchGetItem. Never the whole catalogue.
//! * the one exception, offboarding a merchant (an operator's command, never a request or a
//!   sweep): every item of the merchant by a parallel Scan filtered on [`merchant_profile_pk`] and
//!   [`merchant_items_prefix`] (see `offboarding`).
//!
//! **Privacy: how each item kind is exported and erased** (`adapters/store/privacy.rs` walks a
//! customer's data from their aggregate; `adapters/store/offboarding.rs` removes a merchant's):
//!
//! | item | export (kind) | customer erasure |
//! |------|---------------|------------------|
//! | customer profile, spend, order index, ledger summary and entries, loyalty notices, store credit summaries and entries, contact state, subscription and invoice pointers, address notes | the aggregate's Query (`customer`, `customer_spend`, `customer_order`, `ledger_summary`, `ledger`, `loyalty_notice`, `credit_summary`, `credit_entry`, `contact`, `customer_subscription`, `customer_invoice`, `customer_address`) | deleted (pointers last) |
//! | send records (with SES events, and while parked `ambiguous` the composed message `parked_message`, dropped once decided) | the send partition's Query (`send`) | deleted |
//! | order, its shipment pointers, follow-ups, survey answer, return tally | each `ORDER#` entry's partition (`order`, `order_shipment`, `follow_up`, `feedback`, `return_tally`) | deleted after the order id's tombstone is written |
//! | return (lines, reasons, comment, history, parcel, credit given) | each return the order's tally lists (`return`) | deleted before the order's partition |
//! | return parcel's tracking pointer | within the return (its parcel's number; the pointer holds the return and order ids only) | deleted with the return (its key comes from the return's parcel) |
//! | order idempotency record | not exported (a content hash) | replaced by the tombstone: emptied, no expiry |
//! | shipment (with its tracking-page view count `views`), checkpoints, due checks | each `SHIP#` pointer's partition (`shipment`, `checkpoint`, `shipment_due`) | deleted |
//! | parcels' tracking pointers | within the shipment (its tracking numbers; the pointers hold nothing more) | deleted with the shipment (their keys come from its parcels) |
//! | subscription, link clicks; invoice | each `SUB#` / `INV#` pointer's partition | deleted |
//! | suppression | each `ADDR#` note's partition (`suppression`) | kept: no address in it, keyed by digest |
//! | bounce streak, referee, the address's note of the customer | each `ADDR#` note's partition (`bounce_streak`, `referee`, `address_customer`) | deleted (other customers' notes stay) |
//! | referral code | the profile's `referral_code` (`referral_code`) | deleted |
//! | another customer's order or referee record naming them as referrer | not theirs | `referred_by` / `referrer` removed |
//! | privacy request | `GET /v1/privacy/requests/{id}` | holds no subject once complete; deleted with the merchant |
//! | merchant, API keys, alerts, billing events seen, webhooks seen, platform deliveries handled, email counters, units sold, products | merchant data, no customer in them | deleted with the merchant |
//! | offboarding audit | `aftercare-admin` output | kept (no personal data) |
//!
//! `expires_at` (epoch seconds) is the TTL attribute. Decisions never rely on TTL having deleted
//! anything: it deletes late, and local emulators never delete.

use crate::domain::ids::{InvoiceId, KeyId, ReturnId, ShipmentId, SubscriptionId};
use crate::domain::{Currency, CustomerId, MerchantId, OrderId};
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use std::collections::HashMap;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "gsi1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// TTL attribute (epoch seconds).
pub const TTL: &str = "expires_at";
/// Entity type tag on every item, for operators reading the table.
pub const TYPE: &str = "_type";
/// The tracking page's view counter on the shipment item (`page_views.rs`).
pub const VIEWS: &str = "views";

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: impl Into<String>) -> Self {
        Self { pk, sk: sk.into() }
    }

    /// The key as a DynamoDB key map.
    pub fn to_map(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The items of one partition whose sort key starts with `prefix` (every item of it when the
/// prefix is empty): what one Query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Within {
    pub pk: String,
    pub prefix: String,
}

impl Within {
    fn new(pk: String, prefix: impl Into<String>) -> Self {
        Self {
            pk,
            prefix: prefix.into(),
        }
    }
}

/// The merchant's own partition (its profile); every other partition of the merchant extends it.
fn tenant(m: &MerchantId) -> String {
    format!("M#{m}")
}

/// A partition of one entity of the merchant: `M#<m>#<tag>#<id>`.
fn entity(m: &MerchantId, tag: &str, id: impl std::fmt::Display) -> String {
    format!("M#{m}#{tag}#{id}")
}

/// A key no item is ever written under (no merchant partition starts with `WARMUP`): read at
/// init to open the connection.
pub fn warm_up() -> Key {
    Key::new("WARMUP".into(), "WARMUP")
}

/// The merchant whose partition `pk` is, if it is one of a merchant's.
pub fn merchant_of(pk: &str) -> Option<MerchantId> {
    let rest = pk.strip_prefix("M#")?;
    let id = rest.split('#').next()?;
    MerchantId::parse("merchant", id).ok()
}

/// The shard (of `shards`) an id's writes go to: a stable hash, the same in every process.
fn shard(id: &str, shards: u32) -> u32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % shards
}

pub fn merchant(m: &MerchantId) -> Key {
    Key::new(tenant(m), "MERCHANT")
}

/// The partition of the merchant's API keys (a handful, written when one is issued or revoked).
fn api_keys_pk(m: &MerchantId) -> String {
    format!("{}#KEYS", tenant(m))
}

pub fn api_key(m: &MerchantId, key_id: &KeyId) -> Key {
    Key::new(api_keys_pk(m), format!("APIKEY#{key_id}"))
}

/// Every API key of the merchant.
pub fn api_keys(m: &MerchantId) -> Within {
    Within::new(api_keys_pk(m), "APIKEY#")
}

/// GSI1 key of a merchant profile with a connected Shopify store, by the store's domain: how a
/// Shopify delivery through Amazon EventBridge (which names the shop, not the merchant) finds its
/// merchant.
pub fn shop_lookup(shop_domain: &str) -> (String, String) {
    (
        format!("SHOP#{}", shop_domain.to_ascii_lowercase()),
        "MERCHANT".into(),
    )
}

/// GSI1 key of an API key item, by the key's SHA-256 digest (hex).
pub fn api_key_lookup(hash_hex: &str) -> (String, String) {
    (format!("APIKEY#{hash_hex}"), "APIKEY".into())
}

// --- the customer aggregate -------------------------------------------------------------------

fn customer_pk(m: &MerchantId, c: &CustomerId) -> String {
    entity(m, "C", c)
}

pub fn customer(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(customer_pk(m, c), "PROFILE")
}

/// Every item of one customer's aggregate (profile, spend, order index, ledger, notices, contact
/// state, subscription index).
pub fn customer_aggregate(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "")
}

pub fn customer_spend(m: &MerchantId, c: &CustomerId, currency: Currency) -> Key {
    Key::new(customer_pk(m, c), format!("SPEND#{currency}"))
}

pub fn customer_order(m: &MerchantId, c: &CustomerId, placed_at: Timestamp, o: &OrderId) -> Key {
    // Fixed-width UTC seconds so the sort key orders by time.
    let at = placed_at.strftime("%Y%m%dT%H%M%SZ");
    Key::new(customer_pk(m, c), format!("ORDER#{at}#{o}"))
}

/// The customer's order index entries, oldest first.
pub fn customer_orders(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "ORDER#")
}

pub fn ledger(m: &MerchantId, c: &CustomerId, source: &str) -> Key {
    Key::new(customer_pk(m, c), format!("LEDGER#{source}"))
}

/// The customer's loyalty summary: the version every debit is conditioned on, and the balance as
/// of the last write. Its SK is the ledger entries' prefix without the `#`, so one Query of
/// [`ledger_all`] reads the summary and every entry.
pub fn ledger_summary(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(customer_pk(m, c), "LEDGER")
}

/// The customer's loyalty summary and every ledger entry.
pub fn ledger_all(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "LEDGER")
}

/// A loyalty notice of one customer: a referral reward's (by its ledger source) or `expiry`.
pub fn loyalty_notice(m: &MerchantId, c: &CustomerId, what: &str) -> Key {
    Key::new(customer_pk(m, c), format!("NOTICE#{what}"))
}

// --- store credit (one customer's partition; see `credit.rs`) ----------------------------------

/// The customer's store credit summary in `currency`: balance, issued, redeemed and the version
/// every posting of that currency is conditioned on.
pub fn credit_summary(m: &MerchantId, c: &CustomerId, currency: Currency) -> Key {
    Key::new(customer_pk(m, c), format!("CREDIT#{currency}"))
}

/// One store credit entry, by its source (`issue:<return>`, `redeem:<key>`, `adjust:<key>`): the
/// source alone, not the currency, so one idempotency key is one entry whatever the currency.
pub fn credit_entry(m: &MerchantId, c: &CustomerId, source: &str) -> Key {
    Key::new(customer_pk(m, c), format!("CREDITLOG#{source}"))
}

/// Every store credit item of the customer: each currency's summary (`CREDIT#`) and every entry
/// (`CREDITLOG#`), in one Query (no other sort key of the aggregate begins with `CREDIT`).
pub fn credit_all(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "CREDIT")
}

/// Whether a sort key of [`credit_all`] is a summary's (else an entry's).
pub fn is_credit_summary(sk: &str) -> bool {
    sk.starts_with("CREDIT#")
}

/// Which item of a customer's aggregate a sort key names (for reading the aggregate's Query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerPart {
    Profile,
    Spend,
    Order,
    LedgerEntry,
    /// The loyalty summary, a notice, the contact state, a subscription pointer.
    Other,
}

pub fn customer_part(sk: &str) -> CustomerPart {
    if sk == "PROFILE" {
        CustomerPart::Profile
    } else if sk.starts_with("SPEND#") {
        CustomerPart::Spend
    } else if sk.starts_with("ORDER#") {
        CustomerPart::Order
    } else if sk.starts_with("LEDGER#") {
        CustomerPart::LedgerEntry
    } else {
        CustomerPart::Other
    }
}

/// What a customer told us about marketing mail and when they last got some.
pub fn contact(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(customer_pk(m, c), "CONTACT")
}

pub fn customer_subscription(m: &MerchantId, c: &CustomerId, s: &SubscriptionId) -> Key {
    Key::new(customer_pk(m, c), format!("SUB#{s}"))
}

pub fn customer_subscriptions(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "SUB#")
}

/// The customer's pointer to an invoice of theirs (written with the invoice).
pub fn customer_invoice(m: &MerchantId, c: &CustomerId, i: &InvoiceId) -> Key {
    Key::new(customer_pk(m, c), format!("INV#{i}"))
}

/// The customer's invoice pointers.
pub fn customer_invoices(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "INV#")
}

/// The customer's pointers to the orders whose referral rewarded them (their referral ledger
/// entries: `LEDGER#referral:<order>`).
pub fn customer_referrals(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "LEDGER#referral:")
}

// --- walking a customer's data (exports and erasures) ------------------------------------------

/// The customer's profile alone.
pub fn customer_profile(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "PROFILE")
}

/// Every item of an order's partition (the order, its shipment pointers, follow-ups, answer).
pub fn order_items(m: &MerchantId, o: &OrderId) -> Within {
    Within::new(order_pk(m, o), "")
}

/// Every item of a shipment's partition (its state, checkpoints and due checks).
pub fn shipment_items(m: &MerchantId, s: &ShipmentId) -> Within {
    Within::new(shipment_pk(m, s), "")
}

/// The shipment an order's `SHIP#<s>` pointer names.
pub fn shipment_of_pointer(sk: &str) -> Option<ShipmentId> {
    ShipmentId::parse("shipment", sk.strip_prefix("SHIP#")?).ok()
}

/// An order's return tally: units per SKU its returns hold, their ids, a version.
pub fn order_returns(m: &MerchantId, o: &OrderId) -> Key {
    Key::new(order_pk(m, o), "RETURNS")
}

fn return_pk(m: &MerchantId, r: &ReturnId) -> String {
    entity(m, "RET", r)
}

/// A return (in its own partition: the merchant API reads it by id).
pub fn return_item(m: &MerchantId, r: &ReturnId) -> Key {
    Key::new(return_pk(m, r), "RETURN")
}

/// Every item of a return's partition (the return; nothing else lives there yet).
pub fn return_items(m: &MerchantId, r: &ReturnId) -> Within {
    Within::new(return_pk(m, r), "")
}

/// A return parcel's pointer: `number` normalised (letters and digits only), in a partition of
/// its own so a tracking provider's update for it is told from an outbound parcel's.
pub fn return_tracking(m: &MerchantId, number: &str, r: &ReturnId) -> Key {
    Key::new(entity(m, "RTRK", number), format!("RETURN#{r}"))
}

/// Every return pointer of a parcel's normalised tracking number.
pub fn return_trackings(m: &MerchantId, number: &str) -> Within {
    Within::new(entity(m, "RTRK", number), "RETURN#")
}

/// GSI1 partition of return `r` (listed by creation time).
pub fn returns_index(m: &MerchantId, r: &ReturnId) -> String {
    listing(m, "RETURNS", r.as_str())
}

/// Every GSI1 partition of the merchant's returns.
pub fn returns_partitions(m: &MerchantId) -> Vec<String> {
    listing_partitions(m, "RETURNS")
}

/// Every item of the subscription a customer's `SUB#<s>` pointer names.
pub fn subscription_of_pointer(m: &MerchantId, sk: &str) -> Option<Within> {
    let s = SubscriptionId::parse("subscription", sk.strip_prefix("SUB#")?).ok()?;
    Some(Within::new(subscription_pk(m, &s), ""))
}

/// Every item of the invoice a customer's `INV#<i>` pointer names.
pub fn invoice_of_pointer(m: &MerchantId, sk: &str) -> Option<Within> {
    let i = InvoiceId::parse("invoice", sk.strip_prefix("INV#")?).ok()?;
    Some(Within::new(entity(m, "INV", i), ""))
}

/// The referee's order a customer's `LEDGER#referral:<o>` entry names.
pub fn referred_order(sk: &str) -> Option<OrderId> {
    OrderId::parse("order", sk.strip_prefix("LEDGER#referral:")?).ok()
}

/// The referral code's item.
pub fn referral_codes(m: &MerchantId, code: &str) -> Within {
    Within::new(entity(m, "REF", code), "")
}

/// The deployment's mark of the last run of a periodic housekeeping sweep (`what`): not tenant data,
/// no merchant or customer in it.
pub fn sweep_mark(what: &str) -> Key {
    Key::new(format!("SWEEP#{what}"), "LAST")
}

// --- privacy requests ---------------------------------------------------------------------------

/// A privacy request (an export, an erasure) and its audit record: `M#<m>#PRIVACY#<id>`.
pub fn privacy_request(m: &MerchantId, id: &str) -> Key {
    Key::new(entity(m, "PRIVACY", id), "REQUEST")
}

// --- emails -------------------------------------------------------------------------------------

/// The partition of one customer's send records (their message log), beside the aggregate so
/// reading the aggregate never pages through the log.
fn sends_pk(m: &MerchantId, c: &str) -> String {
    format!("{}#SEND", entity(m, "C", c))
}

fn alerts_pk(m: &MerchantId) -> String {
    format!("{}#ALERTS", tenant(m))
}

/// An email's send record (the exactly-once claim). Its sort key is the email's reference (see
/// [`SendIdentity::reference`](crate::domain::send::SendIdentity::reference), the one place that
/// spells it): `SEND#<customer>#<kind>#<subject>#<step>` in the customer's send partition, or
/// `ALERT#<topic>#<period>` for a periodic alert to the merchant.
pub fn send(id: &crate::domain::send::SendIdentity) -> Key {
    let pk = match &id.customer {
        Some(c) => sends_pk(&id.merchant, c.as_str()),
        None => alerts_pk(&id.merchant),
    };
    Key::new(pk, id.reference())
}

/// Every send record of one customer.
pub fn customer_sends(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(sends_pk(m, c.as_str()), format!("SEND#{c}#"))
}

/// The send records of one touchpoint: `kind` about `subject`, every step.
pub fn touchpoint_sends(m: &MerchantId, c: &CustomerId, kind: &str, subject: &str) -> Within {
    Within::new(
        sends_pk(m, c.as_str()),
        format!("SEND#{c}#{kind}#{subject}#"),
    )
}

/// The send record an SES event names (its `X-Aftercare-Ref` header: the record's sort key), or
/// `None` if the reference is not one Aftercare writes.
pub fn send_ref(m: &MerchantId, reference: &str) -> Option<Key> {
    if let Some(rest) = reference.strip_prefix("SEND#") {
        let customer = rest.split('#').next()?;
        let customer = CustomerId::parse("customer", customer).ok()?;
        let has_rest = rest.len() > customer.as_str().len() + 1;
        return has_rest.then(|| Key::new(sends_pk(m, customer.as_str()), reference));
    }
    reference
        .starts_with("ALERT#")
        .then(|| Key::new(alerts_pk(m), reference))
}

/// Partitions one merchant's email counters are written over.
pub const STATS_SHARDS: u32 = 32;

/// One day's email counters of one kind (`day` as `YYYY-MM-DD`), in the shard `spread` (the
/// message's id) hashes to: the day's counts are the sum over [`email_stats_partitions`].
pub fn email_stats(m: &MerchantId, day: &str, kind: &str, spread: &str) -> Key {
    let pk = entity(m, "STATS", shard(spread, STATS_SHARDS));
    Key::new(pk, format!("{day}#{kind}"))
}

/// Every partition of the merchant's email counters.
pub fn email_stats_partitions(m: &MerchantId) -> Vec<String> {
    (0..STATS_SHARDS)
        .map(|shard| entity(m, "STATS", shard))
        .collect()
}

/// Items one SKU's units sold of one day are spread over (see [`sold`]).
pub const SOLD_SHARDS: u32 = 8;

/// The units of `sku` sold on `day` (`YYYY-MM-DD`, UTC) in the shard the order hashes to: one
/// partition per SKU (a best seller's counting is no hot partition of the merchant), and a
/// day's count spread over [`SOLD_SHARDS`] items so concurrent orders of one SKU seldom meet on
/// one item. A day's units are the sum over its shards.
pub fn sold(m: &MerchantId, sku: &str, day: &str, order: &OrderId) -> Key {
    Key::new(
        sold_pk(m, sku),
        format!("{day}#{}", shard(order.as_str(), SOLD_SHARDS)),
    )
}

/// The partition of `sku`'s units sold.
pub fn sold_pk(m: &MerchantId, sku: &str) -> String {
    entity(m, "SOLD", sku)
}

/// The lowest sort key of the daily counters (email counters, units sold, `<day>#…`) of `day`
/// (inclusive bound of a range).
pub fn day_counters_from(day: &str) -> String {
    format!("{day}#")
}

/// The highest sort key of the daily counters of `day` (inclusive bound of a range).
pub fn day_counters_to(day: &str) -> String {
    format!("{day}#~")
}

// --- addresses ----------------------------------------------------------------------------------

/// The partition of one address of the merchant. The address is never in the key in clear: the
/// key holds a digest of the tenant and the normalised address ([`address_digest`]), so an item
/// kept for safety after its person is erased (a suppression) can still be found by whoever
/// holds the address (a send about to go to it) but never read back to the address.
fn address_pk(m: &MerchantId, normalised: &str) -> String {
    address_partition(&tenant(m), normalised)
}

fn address_partition(tenant: &str, normalised: &str) -> String {
    format!("{tenant}#E#{}", address_digest(tenant, normalised))
}

/// SHA-256 over a domain tag, the tenant and the lowercased address, the first 128 bits in hex:
/// the same address of another merchant gets another digest, so no digest links two merchants'
/// customers.
fn address_digest(tenant: &str, normalised: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"aftercare-address\0");
    hash.update(tenant.as_bytes());
    hash.update(b"\0");
    hash.update(normalised.to_lowercase().as_bytes());
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The run of soft bounces of one address.
pub fn bounce_streak(m: &MerchantId, email: &crate::domain::EmailAddress) -> Key {
    Key::new(address_pk(m, &email.normalized()), "BOUNCE")
}

/// A suppressed address (bounced, complained, or suppressed by the merchant).
pub fn suppression(m: &MerchantId, email: &crate::domain::EmailAddress) -> Key {
    suppression_of(m, &email.normalized())
}

/// The suppression item of an address already normalised (a send record's recipient).
pub fn suppression_of(m: &MerchantId, normalised: &str) -> Key {
    Key::new(address_pk(m, normalised), "SUPPRESS")
}

/// The suppression item of `recipient` (normalised) for the merchant whose item `beside` is (a
/// send record, inside the claim's transaction).
pub fn suppression_beside(beside: &Key, recipient: &str) -> Key {
    let mut parts = beside.pk.splitn(3, '#');
    let tenant = match (parts.next(), parts.next()) {
        (Some(tag), Some(m)) => format!("{tag}#{m}"),
        _ => beside.pk.clone(),
    };
    Key::new(address_partition(&tenant, recipient), "SUPPRESS")
}

/// One referral per referee, by normalised email address.
pub fn referee(m: &MerchantId, email: &str) -> Key {
    Key::new(address_pk(m, email), "REFEREE")
}

pub fn referral_code(m: &MerchantId, code: &str) -> Key {
    Key::new(entity(m, "REF", code), "REFCODE")
}

/// The note, in an address's partition, that `c` used it: how a data request that names only an
/// address finds its customers.
pub fn address_customer(m: &MerchantId, normalised: &str, c: &CustomerId) -> Key {
    Key::new(address_pk(m, normalised), format!("CUST#{c}"))
}

/// The customers who used an address.
pub fn address_customers(m: &MerchantId, normalised: &str) -> Within {
    Within::new(address_pk(m, normalised), "CUST#")
}

/// Every item of an address's partition (suppression, bounce streak, referee, customers).
pub fn address_items(m: &MerchantId, normalised: &str) -> Within {
    Within::new(address_pk(m, normalised), "")
}

/// The customer whose note a `CUST#` sort key is.
pub fn customer_of_note(sk: &str) -> Option<CustomerId> {
    CustomerId::parse("customer", sk.strip_prefix("CUST#")?).ok()
}

/// The note, in the customer's aggregate, of an address they used: only its digest, which names
/// the address's partition ([`addressed`]).
pub fn customer_address(m: &MerchantId, c: &CustomerId, normalised: &str) -> Key {
    Key::new(
        customer_pk(m, c),
        format!("ADDR#{}", address_digest(&tenant(m), normalised)),
    )
}

/// The customer's address notes.
pub fn customer_addresses(m: &MerchantId, c: &CustomerId) -> Within {
    Within::new(customer_pk(m, c), "ADDR#")
}

/// Every item of the address partition an `ADDR#<digest>` note names, if `sk` is one.
pub fn addressed(m: &MerchantId, sk: &str) -> Option<Within> {
    let digest = sk.strip_prefix("ADDR#")?;
    let valid = digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| Within::new(format!("{}#E#{digest}", tenant(m)), ""))
}

/// The sort key of a suppression item (kept when its address's other items are erased).
pub const SUPPRESSION_SK: &str = "SUPPRESS";

// --- orders, shipments, follow-ups ----------------------------------------------------------

fn order_pk(m: &MerchantId, o: &OrderId) -> String {
    entity(m, "O", o)
}

pub fn order(m: &MerchantId, o: &OrderId) -> Key {
    Key::new(order_pk(m, o), "ORDER")
}

/// Idempotency record for `key` within `scope` (e.g. `order` for orders placed).
pub fn idempotency(m: &MerchantId, scope: &str, key: &str) -> Key {
    Key::new(entity(m, "IDEM", format!("{scope}#{key}")), "IDEMP")
}

pub fn order_shipment(m: &MerchantId, o: &OrderId, s: &ShipmentId) -> Key {
    Key::new(order_pk(m, o), format!("SHIP#{s}"))
}

pub fn order_shipments(m: &MerchantId, o: &OrderId) -> Within {
    Within::new(order_pk(m, o), "SHIP#")
}

pub fn follow_up(m: &MerchantId, o: &OrderId, kind: &str) -> Key {
    Key::new(order_pk(m, o), format!("FOLLOWUP#{kind}"))
}

pub fn follow_ups(m: &MerchantId, o: &OrderId) -> Within {
    Within::new(order_pk(m, o), "FOLLOWUP#")
}

pub fn feedback(m: &MerchantId, o: &OrderId) -> Key {
    Key::new(order_pk(m, o), "FEEDBACK")
}

fn shipment_pk(m: &MerchantId, s: &ShipmentId) -> String {
    entity(m, "S", s)
}

pub fn shipment(m: &MerchantId, s: &ShipmentId) -> Key {
    Key::new(shipment_pk(m, s), "SHIPMENT")
}

/// A parcel's tracking pointer: `number` normalised (letters and digits only), `family` a carrier
/// family (lower-case letters and digits). Both are free of `#` by construction.
pub fn tracking(m: &MerchantId, number: &str, family: &str, s: &ShipmentId) -> Key {
    Key::new(entity(m, "TRK", number), format!("{family}#{s}"))
}

/// Every shipment a tracking number points to (normally one).
pub fn trackings(m: &MerchantId, number: &str) -> Within {
    Within::new(entity(m, "TRK", number), "")
}

pub fn checkpoint(m: &MerchantId, s: &ShipmentId, at: Timestamp, checkpoint_id: &str) -> Key {
    let t = at.strftime("%Y%m%dT%H%M%SZ");
    Key::new(shipment_pk(m, s), format!("CP#{t}#{checkpoint_id}"))
}

pub fn checkpoints(m: &MerchantId, s: &ShipmentId) -> Within {
    Within::new(shipment_pk(m, s), "CP#")
}

pub fn shipment_due(m: &MerchantId, s: &ShipmentId, what: &str) -> Key {
    Key::new(shipment_pk(m, s), format!("DUE#{what}"))
}

// --- subscriptions and billing --------------------------------------------------------------

fn subscription_pk(m: &MerchantId, s: &SubscriptionId) -> String {
    entity(m, "SUB", s)
}

pub fn subscription(m: &MerchantId, s: &SubscriptionId) -> Key {
    Key::new(subscription_pk(m, s), "SUB")
}

pub fn subscription_click(m: &MerchantId, s: &SubscriptionId, id: &str) -> Key {
    Key::new(subscription_pk(m, s), format!("CLICK#{id}"))
}

pub fn invoice(m: &MerchantId, i: &InvoiceId) -> Key {
    Key::new(entity(m, "INV", i), "INVOICE")
}

/// A billing event already processed (the provider's event id).
pub fn billing_event(m: &MerchantId, provider: &str, event_id: &str) -> Key {
    Key::new(entity(m, "BEVT", format!("{provider}#{event_id}")), "BEVT")
}

pub fn webhook_seen(m: &MerchantId, replay_key: &str) -> Key {
    Key::new(entity(m, "WH", replay_key), "WEBHOOK")
}

/// A shop platform's delivery already handled: `source` (`shopify`) and the platform's own
/// delivery id (`X-Shopify-Event-Id`), which comes last.
pub fn delivery(m: &MerchantId, source: &str, id: &str) -> Key {
    Key::new(entity(m, "DLV", format!("{source}#{id}")), "DELIVERY")
}

// --- the catalogue ------------------------------------------------------------------------------

/// A product of merchant `m`: every product its own partition, so a catalogue of any size has no
/// hot partition and a follow-up reads exactly the products of its order. The SKU is the last
/// component of the partition key, behind its own tag, so a `#` in it cannot reach another key.
pub fn product(m: &MerchantId, sku: &crate::domain::catalogue::Sku) -> Key {
    Key::new(entity(m, "P", sku), "PRODUCT")
}

// --- merchant-wide listings (gsi1, sharded) ---------------------------------------------------

/// Partitions each merchant-wide gsi1 listing is written over.
pub const LIST_SHARDS: u32 = 16;

fn listing(m: &MerchantId, what: &str, id: &str) -> String {
    format!("{}#{what}#{}", tenant(m), shard(id, LIST_SHARDS))
}

fn listing_partitions(m: &MerchantId, what: &str) -> Vec<String> {
    (0..LIST_SHARDS)
        .map(|shard| format!("{}#{what}#{shard}", tenant(m)))
        .collect()
}

/// GSI1 partition of the answer to order `o`'s survey (listed by answer time).
pub fn feedback_index(m: &MerchantId, o: &OrderId) -> String {
    listing(m, "FEEDBACK", o.as_str())
}

/// Every GSI1 partition of the merchant's survey answers.
pub fn feedback_partitions(m: &MerchantId) -> Vec<String> {
    listing_partitions(m, "FEEDBACK")
}

/// GSI1 partition of order `o`'s sent survey (listed by send time).
pub fn surveys_sent_index(m: &MerchantId, o: &OrderId) -> String {
    listing(m, "SURVEYSENT", o.as_str())
}

/// Every GSI1 partition of the merchant's sent surveys.
pub fn surveys_sent_partitions(m: &MerchantId) -> Vec<String> {
    listing_partitions(m, "SURVEYSENT")
}

/// GSI1 partition of invoice `i` once it failed (listed by first failure).
pub fn dunning_index(m: &MerchantId, i: &InvoiceId) -> String {
    listing(m, "DUNNING", i.as_str())
}

/// Every GSI1 partition of the merchant's failed invoices.
pub fn dunning_partitions(m: &MerchantId) -> Vec<String> {
    listing_partitions(m, "DUNNING")
}

/// A GSI1 sort key ordered by time: `<epoch ms, 13 digits>#<id>`.
pub fn time_sort_key(at: Timestamp, id: &str) -> String {
    format!("{:013}#{id}", at.as_millisecond().max(0))
}

// --- due work ------------------------------------------------------------------------------------

pub const DUE: &str = "due";
pub const DUEPK: &str = "DUEPK";
pub const DUESK: &str = "DUESK";
/// Partitions per group in the due index.
pub const DUE_SHARDS: u32 = 64;

/// The due-index key of an item due at `at`: (DUEPK, DUESK).
pub fn due(group: &str, at: Timestamp, item: &Key) -> (String, String) {
    let shard = shard(&format!("{}|{}", item.pk, item.sk), due_shards(group));
    let ms = at.as_millisecond().max(0);
    (
        format!("DUE#{group}#{shard}"),
        format!("{ms:013}#{}#{}", item.pk, item.sk),
    )
}

/// The partitions a group's due entries are written over: [`DUE_SHARDS`], but for running
/// erasures (a handful at any time, written a few times each), which need no spreading and so cost
/// every sweep 4 Queries instead of 64.
fn due_shards(group: &str) -> u32 {
    match group {
        "privacy" | "parked" | "return" => 4,
        _ => DUE_SHARDS,
    }
}

/// Every due-index partition of `group`.
pub fn due_partitions(group: &str) -> Vec<String> {
    (0..due_shards(group))
        .map(|shard| format!("DUE#{group}#{shard}"))
        .collect()
}

/// The start of a sweep's look-back: midnight UTC of the first of the last `lookback_days` UTC
/// days, today included (at least today).
pub fn due_since(now: Timestamp, lookback_days: u32) -> Timestamp {
    let back = jiff::SignedDuration::from_hours(24 * i64::from(lookback_days.saturating_sub(1)));
    let first = now.checked_sub(back).unwrap_or(now);
    let into_day = first.as_millisecond().rem_euclid(86_400_000);
    first
        .checked_sub(jiff::SignedDuration::from_millis(into_day))
        .unwrap_or(first)
}

/// The DUESK range a sweep at `now` reads: items due from the start of its look-back to `now`.
pub fn due_window(now: Timestamp, lookback_days: u32) -> (String, String) {
    (due_from(due_since(now, lookback_days)), due_until(now))
}

/// Lower bound of DUESK for items due at or after `from`.
pub fn due_from(from: Timestamp) -> String {
    format!("{:013}#", from.as_millisecond().max(0))
}

/// Upper bound of DUESK for items due at or before `now`.
pub fn due_until(now: Timestamp) -> String {
    format!("{:013}~", now.as_millisecond().max(0))
}

/// The TTL value for an item that should disappear `after` from `now`.
pub fn expires_at(now: Timestamp, after: std::time::Duration) -> i64 {
    now.as_second()
        .saturating_add(i64::try_from(after.as_secs()).unwrap_or(i64::MAX))
}

// --- Merchant offboarding ------------------------------------------------------------------------

/// The merchant's profile partition, `M#<m>`: with [`merchant_items_prefix`], what an offboarding
/// scan filters on (`PK = :profile OR begins_with(PK, :prefix)`).
pub fn merchant_profile_pk(m: &MerchantId) -> String {
    tenant(m)
}

/// The prefix every other partition of the merchant starts with, `M#<m>#`. The trailing `#` is what
/// keeps merchant `acme` from matching `acme-eu`'s partitions: ids cannot contain `#`.
pub fn merchant_items_prefix(m: &MerchantId) -> String {
    format!("{}#", tenant(m))
}

fn offboard_pk(m: &MerchantId) -> String {
    format!("OFFBOARD#{m}")
}

/// The audit record of one offboarding run (dry run or delete) of merchant `m`, started at
/// `started_at`. Outside the tenant prefix, so deleting the merchant's items never deletes it.
pub fn offboard_audit(m: &MerchantId, started_at: Timestamp) -> Key {
    // Fixed-width UTC milliseconds so the sort key orders by time.
    let at = started_at.strftime("%Y%m%dT%H%M%S%.3fZ");
    Key::new(offboard_pk(m), format!("AUDIT#{at}"))
}

/// Every offboarding audit record of merchant `m`, oldest first.
pub fn offboard_audits(m: &MerchantId) -> Within {
    Within::new(offboard_pk(m), "AUDIT#")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::send::{EmailKind, SendIdentity};

    fn m() -> MerchantId {
        MerchantId::parse("m", "acme").unwrap()
    }

    fn c(id: &str) -> CustomerId {
        CustomerId::parse("c", id).unwrap()
    }

    fn o(id: &str) -> OrderId {
        OrderId::parse("o", id).unwrap()
    }

    fn email(a: &str) -> crate::domain::EmailAddress {
        crate::domain::EmailAddress::parse("email", a).unwrap()
    }

    /// One key of every kind that belongs to customer `cust`, order `ord` and so on.
    fn every_key(cust: &str, ord: &str, n: &str) -> Vec<Key> {
        let eur = Currency::parse("c", "EUR").unwrap();
        let ship = ShipmentId::parse("s", &format!("sh{n}")).unwrap();
        let sub = SubscriptionId::parse("s", &format!("sub{n}")).unwrap();
        let inv = InvoiceId::parse("i", &format!("in{n}")).unwrap();
        let key = KeyId::parse("k", &format!("k{n}")).unwrap();
        let at = Timestamp::UNIX_EPOCH;
        vec![
            api_key(&m(), &key),
            customer(&m(), &c(cust)),
            customer_spend(&m(), &c(cust), eur),
            customer_order(&m(), &c(cust), at, &o(ord)),
            ledger(&m(), &c(cust), &format!("order:{ord}")),
            ledger_summary(&m(), &c(cust)),
            loyalty_notice(&m(), &c(cust), "expiry"),
            credit_summary(&m(), &c(cust), eur),
            credit_entry(&m(), &c(cust), &format!("issue:return-{ord}")),
            contact(&m(), &c(cust)),
            customer_subscription(&m(), &c(cust), &sub),
            send(&SendIdentity::new(
                &m(),
                &c(cust),
                EmailKind::OrderThanks,
                ord,
                0,
            )),
            bounce_streak(&m(), &email(&format!("{cust}@example.com"))),
            suppression(&m(), &email(&format!("{cust}@example.com"))),
            referee(&m(), &format!("{cust}@example.com")),
            referral_code(&m(), &format!("CODE{n}")),
            order(&m(), &o(ord)),
            idempotency(&m(), "order", ord),
            order_shipment(&m(), &o(ord), &ship),
            follow_up(&m(), &o(ord), "feedback_survey"),
            feedback(&m(), &o(ord)),
            shipment(&m(), &ship),
            checkpoint(&m(), &ship, at, "cp1"),
            shipment_due(&m(), &ship, "late"),
            subscription(&m(), &sub),
            subscription_click(&m(), &sub, "01J"),
            invoice(&m(), &inv),
            billing_event(&m(), "stripe", &format!("evt_{n}")),
            webhook_seen(&m(), &format!("replay{n}")),
        ]
    }

    #[test]
    fn every_partition_starts_with_the_tenant_and_names_its_merchant() {
        for k in every_key("c1", "o1", "1")
            .into_iter()
            .chain([merchant(&m())])
        {
            assert!(k.pk == "M#acme" || k.pk.starts_with("M#acme#"), "{k:?}");
            assert_eq!(merchant_of(&k.pk), Some(m()), "{k:?}");
        }
        let other = MerchantId::parse("m", "acme2").unwrap();
        assert_eq!(merchant_of(&merchant(&other).pk), Some(other));
        assert_eq!(merchant_of("DUE#followup#3"), None);
        assert_eq!(merchant_of(&warm_up().pk), None);
    }

    #[test]
    fn no_partition_is_shared_by_two_customers_or_two_orders() {
        // Keys of one customer (order, shipment, ...) against another's: no partition in common,
        // except the merchant's API-key partition (a handful of items written by operators).
        let one: std::collections::HashSet<String> = every_key("c1", "o1", "1")
            .into_iter()
            .map(|k| k.pk)
            .collect();
        for k in every_key("c2", "o2", "2") {
            if k.pk == api_keys(&m()).pk {
                continue;
            }
            assert!(!one.contains(&k.pk), "{k:?} shares a partition");
        }
        // The merchant's profile partition holds the profile alone.
        for k in every_key("c1", "o1", "1") {
            assert_ne!(k.pk, merchant(&m()).pk, "{k:?}");
        }
    }

    #[test]
    fn crafted_free_text_never_reaches_another_partition() {
        // The free-text parts (an idempotency key, a replay key, an event id, a referral code, an
        // address) come last, behind their own tag: whatever they spell, the key stays the
        // merchant's and of its own kind.
        let other = MerchantId::parse("m", "other").unwrap();
        let victims: std::collections::HashSet<String> = every_key("c1", "o1", "1")
            .into_iter()
            .chain(every_key("c1", "o1", "1").into_iter().map(|k| Key {
                pk: k.pk.replace("M#acme", "M#other"),
                sk: k.sk,
            }))
            .map(|k| format!("{}|{}", k.pk, k.sk))
            .collect();
        for crafted in [
            "x#C#c1",
            "#O#o1",
            "M#other#C#c1",
            "o1|ORDER",
            "../O#o1",
            "",
            "#",
        ] {
            let keys = [
                idempotency(&m(), "order", crafted),
                webhook_seen(&m(), crafted),
                billing_event(&m(), "stripe", crafted),
                referral_code(&m(), crafted),
                referee(&m(), crafted),
                suppression_of(&m(), crafted),
            ]
            .into_iter()
            .chain(
                crate::domain::catalogue::Sku::parse("sku", crafted)
                    .ok()
                    .map(|sku| product(&m(), &sku)),
            );
            for k in keys {
                assert_eq!(merchant_of(&k.pk), Some(m()), "{k:?}");
                assert_ne!(merchant_of(&k.pk), Some(other.clone()));
                assert!(!victims.contains(&format!("{}|{}", k.pk, k.sk)), "{k:?}");
            }
        }
    }

    #[test]
    fn a_customer_id_that_prefixes_another_reads_only_its_own_aggregate() {
        let short = customer_aggregate(&m(), &c("c1"));
        let long = customer(&m(), &c("c10"));
        assert_ne!(short.pk, long.pk);
        let sends = customer_sends(&m(), &c("c1"));
        assert_ne!(
            sends.pk, short.pk,
            "the message log is not in the aggregate"
        );
    }

    #[test]
    fn a_send_reference_finds_its_record() {
        for id in [
            SendIdentity::new(&m(), &c("c1"), EmailKind::OrderThanks, "SO-1", 0),
            SendIdentity::new(&m(), &c("c1"), EmailKind::OrderThanks, "SO#odd", 2),
        ] {
            let key = send(&id);
            assert_eq!(send_ref(&m(), &id.reference()), Some(key.clone()));
            assert!(key.pk.starts_with("M#acme#C#c1#"));
        }
        assert_eq!(send_ref(&m(), "SEND#c1"), None);
        assert_eq!(send_ref(&m(), "SEND##x#y"), None);
        assert_eq!(send_ref(&m(), "ORDER#SO-1"), None);
        let alert = send_ref(&m(), "ALERT#dunning#2026-11-27").unwrap();
        assert_eq!(alert.pk, "M#acme#ALERTS");
    }

    #[test]
    fn a_claim_checks_the_suppression_of_its_own_merchant() {
        let id = SendIdentity::new(&m(), &c("c1"), EmailKind::OrderThanks, "SO-1", 0);
        assert_eq!(
            suppression_beside(&send(&id), "Ann@Example.com"),
            suppression(&m(), &email("ann@example.com"))
        );
        assert_eq!(
            suppression_beside(&merchant(&m()), "ann@example.com"),
            suppression_of(&m(), "ann@example.com")
        );
    }

    #[test]
    fn due_keys_sort_by_time_and_spread_over_shards() {
        let at: Timestamp = "2026-11-27T09:00:00Z".parse().unwrap();
        let mut shards = std::collections::BTreeSet::new();
        for i in 0..2_000 {
            let item = follow_up(&m(), &o(&format!("o{i}")), "feedback_survey");
            let (pk, sk) = due("followup", at, &item);
            assert!(pk.starts_with("DUE#followup#"));
            assert!(sk < due_until(at), "due at `at` counts as due at `at`");
            assert!(sk >= due_from(at));
            let before = at
                .checked_sub(jiff::SignedDuration::from_millis(1))
                .unwrap();
            assert!(sk > due_until(before));
            let after = at
                .checked_add(jiff::SignedDuration::from_millis(1))
                .unwrap();
            assert!(sk < due_from(after));
            shards.insert(pk);
        }
        assert_eq!(shards.len() as u32, DUE_SHARDS);
        let all: std::collections::BTreeSet<String> =
            due_partitions("followup").into_iter().collect();
        assert_eq!(shards, all);
    }

    #[test]
    fn the_look_back_starts_at_midnight_utc() {
        let now: Timestamp = "2026-11-27T09:30:00Z".parse().unwrap();
        assert_eq!(due_since(now, 1), "2026-11-27T00:00:00Z".parse().unwrap());
        assert_eq!(due_since(now, 0), "2026-11-27T00:00:00Z".parse().unwrap());
        assert_eq!(due_since(now, 14), "2026-11-14T00:00:00Z".parse().unwrap());
        let (from, until) = due_window(now, 2);
        let item = order(&m(), &o("o1"));
        let inside = due("followup", "2026-11-26T00:00:00Z".parse().unwrap(), &item).1;
        let outside = due(
            "followup",
            "2026-11-25T23:59:59.999Z".parse().unwrap(),
            &item,
        )
        .1;
        assert!(from <= inside && inside <= until);
        assert!(outside < from);
    }

    #[test]
    fn listings_and_counters_spread_over_every_shard_they_read() {
        let mut feedback = std::collections::BTreeSet::new();
        let mut stats = std::collections::BTreeSet::new();
        for i in 0..2_000 {
            feedback.insert(feedback_index(&m(), &o(&format!("o{i}"))));
            stats.insert(email_stats(&m(), "2026-11-27", "delivery", &format!("msg-{i}")).pk);
        }
        let read: std::collections::BTreeSet<String> =
            feedback_partitions(&m()).into_iter().collect();
        assert_eq!(feedback, read);
        assert_eq!(feedback.len() as u32, LIST_SHARDS);
        let read: std::collections::BTreeSet<String> =
            email_stats_partitions(&m()).into_iter().collect();
        assert_eq!(stats, read);
        assert_eq!(stats.len() as u32, STATS_SHARDS);
        assert_ne!(
            surveys_sent_partitions(&m()),
            feedback_partitions(&m()),
            "each listing has its own partitions"
        );
        assert!(
            dunning_partitions(&m())
                .iter()
                .all(|p| p.starts_with("M#acme#DUNNING#"))
        );
    }

    #[test]
    fn the_aggregate_tells_its_items_apart() {
        let eur = Currency::parse("c", "EUR").unwrap();
        let at = Timestamp::UNIX_EPOCH;
        let parts = [
            (customer(&m(), &c("c1")), CustomerPart::Profile),
            (customer_spend(&m(), &c("c1"), eur), CustomerPart::Spend),
            (
                customer_order(&m(), &c("c1"), at, &o("o1")),
                CustomerPart::Order,
            ),
            (
                ledger(&m(), &c("c1"), "order:o1"),
                CustomerPart::LedgerEntry,
            ),
            (ledger_summary(&m(), &c("c1")), CustomerPart::Other),
            (contact(&m(), &c("c1")), CustomerPart::Other),
            (
                loyalty_notice(&m(), &c("c1"), "expiry"),
                CustomerPart::Other,
            ),
            (credit_summary(&m(), &c("c1"), eur), CustomerPart::Other),
            (
                credit_entry(&m(), &c("c1"), "redeem:k1"),
                CustomerPart::Other,
            ),
        ];
        for (key, part) in parts {
            assert_eq!(key.pk, customer_aggregate(&m(), &c("c1")).pk);
            assert_eq!(customer_part(&key.sk), part, "{key:?}");
        }
    }

    #[test]
    fn store_credit_keys_share_one_prefix_no_other_customer_item_has() {
        let eur = Currency::parse("c", "EUR").unwrap();
        let all = credit_all(&m(), &c("c1"));
        let summary = credit_summary(&m(), &c("c1"), eur);
        let entry = credit_entry(&m(), &c("c1"), "issue:return-1");
        assert_eq!(
            (summary.sk.as_str(), entry.sk.as_str()),
            ("CREDIT#EUR", "CREDITLOG#issue:return-1")
        );
        assert!(summary.sk.starts_with(&all.prefix) && entry.sk.starts_with(&all.prefix));
        assert!(is_credit_summary(&summary.sk) && !is_credit_summary(&entry.sk));
        let at = Timestamp::UNIX_EPOCH;
        for other in [
            customer(&m(), &c("c1")),
            customer_spend(&m(), &c("c1"), eur),
            customer_order(&m(), &c("c1"), at, &o("o1")),
            ledger(&m(), &c("c1"), "order:o1"),
            ledger_summary(&m(), &c("c1")),
            loyalty_notice(&m(), &c("c1"), "expiry"),
            contact(&m(), &c("c1")),
        ] {
            assert!(!other.sk.starts_with(&all.prefix), "{other:?}");
            assert!(
                !summary.sk.starts_with(&other.sk) && !entry.sk.starts_with(&other.sk),
                "{other:?}"
            );
        }
    }

    #[test]
    fn customer_orders_sort_by_time() {
        let a = customer_order(
            &m(),
            &c("c1"),
            "2026-01-02T03:04:05Z".parse().unwrap(),
            &o("o1"),
        );
        let b = customer_order(
            &m(),
            &c("c1"),
            "2026-11-02T03:04:05.5Z".parse().unwrap(),
            &o("o1"),
        );
        assert_eq!(a.sk, "ORDER#20260102T030405Z#o1");
        assert!(a.sk < b.sk);
        assert!(a.sk.starts_with(&customer_orders(&m(), &c("c1")).prefix));
    }
}
