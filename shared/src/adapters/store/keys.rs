//! The key schema: the only place key strings are built.
//!
//! One table, `PK` (partition) + `SK` (sort), both strings. Every partition key of tenant data
//! starts with `M#<merchant>`, so no query can cross tenants by accident; ids are parsed newtypes
//! that cannot contain the `#` separator, so keys cannot be forged by crafted ids.
//!
//! | item                    | PK            | SK                                      | GSI1PK / GSI1SK          |
//! |-------------------------|---------------|-----------------------------------------|--------------------------|
//! | merchant profile        | `M#<m>`       | `MERCHANT`                              |                          |
//! | API key (hash only)     | `M#<m>`       | `APIKEY#<keyId>`                        | `APIKEY#<sha256>` / `APIKEY` |
//! | order (+ line items)    | `M#<m>`       | `ORDER#<orderId>`                       |                          |
//! | idempotency record      | `M#<m>`       | `IDEMP#<scope>#<key>`                   |                          |
//! | customer profile        | `M#<m>`       | `CUST#<c>#PROFILE`                      |                          |
//! | customer spend/currency | `M#<m>`       | `CUST#<c>#SPEND#<ISO>`                  |                          |
//! | customer's order index  | `M#<m>`       | `CUST#<c>#ORDER#<placedAt>#<orderId>`   |                          |
//! | loyalty ledger entry    | `M#<m>`       | `CUST#<c>#LEDGER#<source>`              |                          |
//! | loyalty balance + version | `M#<m>`     | `CUST#<c>#LEDGER`                       |                          |
//! | loyalty notice          | `M#<m>`       | `CUST#<c>#NOTICE#<referral source|expiry>` | DUEPK / DUESK (sparse) |
//! | referral code           | `M#<m>`       | `REFCODE#<code>`                        |                          |
//! | referee (by email)      | `M#<m>`       | `REFEREE#<normalised email>`            |                          |
//! | email send record/claim | `M#<m>`       | `SEND#<c>#<kind>#<subject>#<step>`      |                          |
//! | shipment (+ state)      | `M#<m>`       | `SHIP#<s>`                              |                          |
//! | tracking checkpoint     | `M#<m>`       | `SHIP#<s>#CP#<time>#<checkpointId>`     |                          |
//! | shipment due check      | `M#<m>`       | `SHIP#<s>#DUE#<late|fallback>`          | DUEPK / DUESK (sparse)   |
//! | order's shipment index  | `M#<m>`       | `ORDER#<o>#SHIP#<s>`                    |                          |
//! | follow-up (journey)     | `M#<m>`       | `FOLLOWUP#<o>#<kind>`                   | DUEPK / DUESK (sparse)   |
//! | webhook signature seen  | `M#<m>`       | `WEBHOOK#<replayKey>`                   |                          |
//! | subscription            | `M#<m>`       | `SUB#<s>`                               | DUEPK / DUESK (sparse)   |
//! | customer's subscription | `M#<m>`       | `CUST#<c>#SUB#<s>`                      |                          |
//! | subscription link click | `M#<m>`       | `SUB#<s>#CLICK#<ulid>`                  |                          |
//! | invoice in dunning      | `M#<m>`       | `INV#<i>`                               | DUEPK / DUESK (sparse); `M#<m>#DUNNING` / `<first failure ms>#<i>` |
//! | billing event seen      | `M#<m>`       | `BEVT#<provider>#<eventId>`             |                          |
//! | customer contact state  | `M#<m>`       | `CUST#<c>#CONTACT`                      |                          |
//! | suppressed address      | `M#<m>`       | `SUPPRESS#<normalised email>`           |                          |
//! | soft-bounce streak      | `M#<m>`       | `BOUNCE#<normalised email>`             |                          |
//! | survey answer           | `M#<m>`       | `FEEDBACK#<orderId>`                    | `M#<m>#FEEDBACK` / `<answered ms>#<o>` |
//! | (follow-up, survey sent)|               |                                         | `M#<m>#SURVEYSENT` / `<sent ms>#<o>`   |
//!
//! Due work lives in the sparse, write-sharded `due` index: `DUEPK = DUE#<group>#<yyyymmdd>#<shard>`
//! (one partition per group, UTC day and shard; the shard is a hash of the item's key, so one day's
//! writes spread over [`DUE_SHARDS`] partitions) and `DUESK = <due epoch ms, 13 digits>#<PK>#<SK>`.
//! A sweep queries each (day, shard) of its group with `DUESK <= now`: it reads only what is due,
//! never scans, and an item leaves the index when its due attributes are removed.
//!
//! Access patterns:
//! * get a merchant: GetItem `M#<m>` / `MERCHANT`.
//! * authenticate a request: Query `gsi1` on `APIKEY#<sha256(key)>` (one item or none).
//! * list a merchant's keys: Query `M#<m>`, SK begins_with `APIKEY#`.
//! * get an order: GetItem `M#<m>` / `ORDER#<o>`.
//! * a customer's whole aggregate (profile, spend, orders, ledger): Query `M#<m>`, SK begins_with
//!   `CUST#<c>#` (one page for typical customers; the trailing `#` keeps `c1` from matching `c10`).
//! * list a customer's orders newest first: Query SK begins_with `CUST#<c>#ORDER#`, descending.
//! * the send record of one touchpoint: GetItem `M#<m>` / `SEND#...`.
//! * what a follow-up needs (order, contact state, suppression): one BatchGetItem.
//! * subscriptions due for a notice, invoices due for a dunning step: the due index (groups
//!   `renewal` and `dunning`), exactly like follow-ups.
//! * a customer's subscriptions (card updates): Query SK begins_with `CUST#<c>#SUB#`.
//! * dunning in a period (recovery report): Query `gsi1` on `M#<m>#DUNNING`, GSI1SK between.
//! * survey answers in a period: Query `gsi1` on `M#<m>#FEEDBACK`, GSI1SK between two times;
//!   surveys sent in a period: the same on `M#<m>#SURVEYSENT` (Select COUNT).
//!
//! `expires_at` (epoch seconds) is the TTL attribute. Decisions never rely on TTL having deleted
//! anything: it deletes late, and local emulators never delete.

use crate::domain::ids::{InvoiceId, KeyId, ShipmentId, SubscriptionId};
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

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: String) -> Self {
        Self { pk, sk }
    }

    /// The key as a DynamoDB key map.
    pub fn to_map(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The partition of one merchant.
pub fn tenant(m: &MerchantId) -> String {
    format!("M#{m}")
}

/// A key no item is ever written under (no merchant partition starts with `WARMUP`): read at
/// init to open the connection.
pub fn warm_up() -> Key {
    Key::new("WARMUP".into(), "WARMUP".into())
}

/// The merchant whose partition `pk` is, if it is one.
pub fn merchant_of(pk: &str) -> Option<MerchantId> {
    pk.strip_prefix("M#")
        .and_then(|m| MerchantId::parse("merchant", m).ok())
}

pub fn merchant(m: &MerchantId) -> Key {
    Key::new(tenant(m), "MERCHANT".into())
}

pub fn api_key(m: &MerchantId, key_id: &KeyId) -> Key {
    Key::new(tenant(m), format!("APIKEY#{key_id}"))
}

pub const API_KEY_PREFIX: &str = "APIKEY#";

/// GSI1 key of an API key item, by the key's SHA-256 digest (hex).
pub fn api_key_lookup(hash_hex: &str) -> (String, String) {
    (format!("APIKEY#{hash_hex}"), "APIKEY".into())
}

pub fn order(m: &MerchantId, o: &OrderId) -> Key {
    Key::new(tenant(m), format!("ORDER#{o}"))
}

/// Idempotency record for `key` within `scope` (e.g. `order` for orders placed).
pub fn idempotency(m: &MerchantId, scope: &str, key: &str) -> Key {
    Key::new(tenant(m), format!("IDEMP#{scope}#{key}"))
}

pub fn customer(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#PROFILE"))
}

/// Prefix of every item of one customer's aggregate.
pub fn customer_prefix(c: &CustomerId) -> String {
    format!("CUST#{c}#")
}

pub fn customer_spend(m: &MerchantId, c: &CustomerId, currency: Currency) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#SPEND#{currency}"))
}

pub fn customer_order(m: &MerchantId, c: &CustomerId, placed_at: Timestamp, o: &OrderId) -> Key {
    // Fixed-width UTC seconds so the sort key orders by time.
    let at = placed_at.strftime("%Y%m%dT%H%M%SZ");
    Key::new(tenant(m), format!("CUST#{c}#ORDER#{at}#{o}"))
}

pub fn ledger(m: &MerchantId, c: &CustomerId, source: &str) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#LEDGER#{source}"))
}

/// The customer's loyalty summary: the version every debit is conditioned on, and the balance as
/// of the last write. Its SK is the ledger entries' prefix without the `#`, so one Query with
/// `begins_with(SK, "CUST#<c>#LEDGER")` reads the summary and every entry.
pub fn ledger_summary(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#LEDGER"))
}

/// A loyalty notice of one customer: a referral reward's (by its ledger source) or `expiry`.
pub fn loyalty_notice(m: &MerchantId, c: &CustomerId, what: &str) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#NOTICE#{what}"))
}

pub fn referral_code(m: &MerchantId, code: &str) -> Key {
    Key::new(tenant(m), format!("REFCODE#{code}"))
}

/// One referral per referee, by normalised email address.
pub fn referee(m: &MerchantId, email: &str) -> Key {
    Key::new(tenant(m), format!("REFEREE#{email}"))
}

/// An email's send record (the exactly-once claim): `SEND#<customer>#<kind>#<subject>#<step>`, or
/// `ALERT#<topic>#<period>` for a periodic alert to the merchant; see
/// [`SendIdentity::reference`](crate::domain::send::SendIdentity::reference), the one place that
/// spells it.
pub fn send(id: &crate::domain::send::SendIdentity) -> Key {
    Key::new(tenant(&id.merchant), id.reference())
}

pub const DUE: &str = "due";
pub const DUEPK: &str = "DUEPK";
pub const DUESK: &str = "DUESK";
/// Partitions per (group, day) in the due index.
pub const DUE_SHARDS: u32 = 8;

pub fn shipment(m: &MerchantId, s: &ShipmentId) -> Key {
    Key::new(tenant(m), format!("SHIP#{s}"))
}

pub fn checkpoint(m: &MerchantId, s: &ShipmentId, at: Timestamp, checkpoint_id: &str) -> Key {
    let t = at.strftime("%Y%m%dT%H%M%SZ");
    Key::new(tenant(m), format!("SHIP#{s}#CP#{t}#{checkpoint_id}"))
}

pub fn checkpoint_prefix(s: &ShipmentId) -> String {
    format!("SHIP#{s}#CP#")
}

pub fn shipment_due(m: &MerchantId, s: &ShipmentId, what: &str) -> Key {
    Key::new(tenant(m), format!("SHIP#{s}#DUE#{what}"))
}

pub fn order_shipment(m: &MerchantId, o: &OrderId, s: &ShipmentId) -> Key {
    Key::new(tenant(m), format!("ORDER#{o}#SHIP#{s}"))
}

pub fn order_shipments_prefix(o: &OrderId) -> String {
    format!("ORDER#{o}#SHIP#")
}

pub fn follow_ups_prefix(o: &OrderId) -> String {
    format!("FOLLOWUP#{o}#")
}

pub fn follow_up(m: &MerchantId, o: &OrderId, kind: &str) -> Key {
    Key::new(tenant(m), format!("FOLLOWUP#{o}#{kind}"))
}

/// What a customer told us about marketing mail and when they last got some.
pub fn contact(m: &MerchantId, c: &CustomerId) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#CONTACT"))
}

/// The send record an SES event names (its `X-Aftercare-Ref` header: the record's sort key).
pub fn send_ref(m: &MerchantId, sk: &str) -> Key {
    Key::new(tenant(m), sk.to_owned())
}

/// One day's email counters of one kind (`day` as `YYYY-MM-DD`).
pub fn email_stats(m: &MerchantId, day: &str, kind: &str) -> Key {
    Key::new(tenant(m), format!("STATS#{day}#{kind}"))
}

/// The lowest sort key of the counters of `day` (inclusive bound of a range).
pub fn email_stats_from(day: &str) -> String {
    format!("STATS#{day}#")
}

/// The highest sort key of the counters of `day` (inclusive bound of a range).
pub fn email_stats_to(day: &str) -> String {
    format!("STATS#{day}#~")
}

/// The run of soft bounces of one address.
pub fn bounce_streak(m: &MerchantId, email: &crate::domain::EmailAddress) -> Key {
    Key::new(tenant(m), format!("BOUNCE#{}", email.normalized()))
}

/// A suppressed address (bounced, complained, or suppressed by the merchant).
pub fn suppression(m: &MerchantId, email: &crate::domain::EmailAddress) -> Key {
    suppression_beside(&merchant(m), &email.normalized())
}

/// The suppression item of `email` (normalised) in the merchant partition `beside` belongs to.
pub fn suppression_beside(beside: &Key, email: &str) -> Key {
    Key::new(
        beside.pk.clone(),
        format!("SUPPRESS#{}", email.to_lowercase()),
    )
}

pub fn feedback(m: &MerchantId, o: &OrderId) -> Key {
    Key::new(tenant(m), format!("FEEDBACK#{o}"))
}

/// GSI1 partition of a merchant's survey answers (by answer time).
pub fn feedback_index(m: &MerchantId) -> String {
    format!("{}#FEEDBACK", tenant(m))
}

/// GSI1 partition of a merchant's sent surveys (by send time).
pub fn surveys_sent_index(m: &MerchantId) -> String {
    format!("{}#SURVEYSENT", tenant(m))
}

/// A GSI1 sort key ordered by time: `<epoch ms, 13 digits>#<id>`.
pub fn time_sort_key(at: Timestamp, id: &str) -> String {
    format!("{:013}#{id}", at.as_millisecond().max(0))
}

pub fn subscription(m: &MerchantId, s: &SubscriptionId) -> Key {
    Key::new(tenant(m), format!("SUB#{s}"))
}

pub fn customer_subscription(m: &MerchantId, c: &CustomerId, s: &SubscriptionId) -> Key {
    Key::new(tenant(m), format!("CUST#{c}#SUB#{s}"))
}

pub fn customer_subscriptions_prefix(c: &CustomerId) -> String {
    format!("CUST#{c}#SUB#")
}

pub fn subscription_click(m: &MerchantId, s: &SubscriptionId, id: &str) -> Key {
    Key::new(tenant(m), format!("SUB#{s}#CLICK#{id}"))
}

pub fn invoice(m: &MerchantId, i: &InvoiceId) -> Key {
    Key::new(tenant(m), format!("INV#{i}"))
}

/// GSI1 partition of a merchant's failed invoices (by first failure).
pub fn dunning_index(m: &MerchantId) -> String {
    format!("{}#DUNNING", tenant(m))
}

/// A billing event already processed (the provider's event id).
pub fn billing_event(m: &MerchantId, provider: &str, event_id: &str) -> Key {
    Key::new(tenant(m), format!("BEVT#{provider}#{event_id}"))
}

pub fn webhook_seen(m: &MerchantId, replay_key: &str) -> Key {
    Key::new(tenant(m), format!("WEBHOOK#{replay_key}"))
}

/// The due-index key of an item due at `at`: (DUEPK, DUESK).
pub fn due(group: &str, at: Timestamp, item: &Key) -> (String, String) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}|{}", item.pk, item.sk).as_bytes());
    let shard = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % DUE_SHARDS;
    let day = at.strftime("%Y%m%d");
    let ms = at.as_millisecond().max(0);
    (
        format!("DUE#{group}#{day}#{shard}"),
        format!("{ms:013}#{}#{}", item.pk, item.sk),
    )
}

/// Every due-index partition of `group` for the UTC day of `day`.
pub fn due_partitions(group: &str, day: Timestamp) -> Vec<String> {
    let d = day.strftime("%Y%m%d");
    (0..DUE_SHARDS)
        .map(|shard| format!("DUE#{group}#{d}#{shard}"))
        .collect()
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

// The catalogue: every product its own partition, so a catalogue of any size has no hot partition
// and a follow-up reads exactly the products of its order. The SKU is the last component of the
// partition key, so a `#` in it cannot reach another key.

/// A product of merchant `m`: `M#<m>#P#<sku>` / `PRODUCT`.
pub fn product(m: &MerchantId, sku: &crate::domain::catalogue::Sku) -> Key {
    Key::new(format!("{}#P#{sku}", tenant(m)), "PRODUCT".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> MerchantId {
        MerchantId::parse("m", "acme").unwrap()
    }

    #[test]
    fn tenant_prefix_on_every_key() {
        let c = CustomerId::parse("c", "c1").unwrap();
        let o = OrderId::parse("o", "o1").unwrap();
        let eur = Currency::parse("c", "EUR").unwrap();
        let keys = [
            merchant(&m()),
            order(&m(), &o),
            customer(&m(), &c),
            customer_spend(&m(), &c, eur),
            customer_order(&m(), &c, Timestamp::UNIX_EPOCH, &o),
            ledger(&m(), &c, "order:o1"),
            send(&crate::domain::send::SendIdentity::new(
                &m(),
                &c,
                crate::domain::send::EmailKind::OrderThanks,
                "o1",
                0,
            )),
            idempotency(&m(), "order", "o1"),
        ];
        for k in keys {
            assert!(k.pk.starts_with("M#acme"), "{k:?}");
        }
    }

    #[test]
    fn due_keys_sort_by_time_and_spread_over_shards() {
        let at: Timestamp = "2026-11-27T09:00:00Z".parse().unwrap();
        let mut shards = std::collections::BTreeSet::new();
        for i in 0..200 {
            let item = follow_up(
                &m(),
                &OrderId::parse("o", &format!("o{i}")).unwrap(),
                "feedback_survey",
            );
            let (pk, sk) = due("followup", at, &item);
            assert!(pk.starts_with("DUE#followup#20261127#"));
            assert!(sk < due_until(at), "due at `at` counts as due at `at`");
            assert!(
                sk > due_until(
                    at.checked_sub(jiff::SignedDuration::from_millis(1))
                        .unwrap()
                )
            );
            shards.insert(pk);
        }
        assert_eq!(shards.len() as u32, DUE_SHARDS);
        assert_eq!(due_partitions("followup", at).len() as u32, DUE_SHARDS);
    }

    #[test]
    fn customer_orders_sort_by_time() {
        let c = CustomerId::parse("c", "c1").unwrap();
        let o = OrderId::parse("o", "o1").unwrap();
        let a = customer_order(&m(), &c, "2026-01-02T03:04:05Z".parse().unwrap(), &o);
        let b = customer_order(&m(), &c, "2026-11-02T03:04:05.5Z".parse().unwrap(), &o);
        assert_eq!(a.sk, "CUST#c1#ORDER#20260102T030405Z#o1");
        assert!(a.sk < b.sk);
    }
}
