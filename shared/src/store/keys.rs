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
//! | email send record/claim | `M#<m>`       | `SEND#<c>#<kind>#<subject>#<step>`      |                          |
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
//!
//! `expires_at` (epoch seconds) is the TTL attribute. Decisions never rely on TTL having deleted
//! anything: it deletes late, and local emulators never delete.

use crate::domain::ids::KeyId;
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

/// Business identity of one email: who, what kind, about what, which step.
pub fn send(m: &MerchantId, c: &CustomerId, kind: &str, subject: &str, step: u32) -> Key {
    Key::new(tenant(m), format!("SEND#{c}#{kind}#{subject}#{step}"))
}

/// The TTL value for an item that should disappear `after` from `now`.
pub fn expires_at(now: Timestamp, after: std::time::Duration) -> i64 {
    now.as_second()
        .saturating_add(i64::try_from(after.as_secs()).unwrap_or(i64::MAX))
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
            send(&m(), &c, "order_thanks", "o1", 0),
            idempotency(&m(), "order", "o1"),
        ];
        for k in keys {
            assert!(k.pk.starts_with("M#acme"), "{k:?}");
        }
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
