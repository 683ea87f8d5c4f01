//! Merchant offboarding (`aftercare-admin merchant delete`) against moto: a dry run counts exactly
//! what a Scan of the test finds and deletes nothing; a delete in steps removes every item of the
//! merchant and nothing of anyone else's, refuses the merchant's key from its first step on, can be
//! stopped and continued, and leaves an audit record with the counts and no customer data.
//!
//! Merchant A (`m-<tag>-a`) has orders placed through the real order-placed handler (so every kind
//! an order writes is there) and 1,000 more customers seeded in bulk: copies of the real items of
//! an order's customer under keys.rs keys of new customers and orders. Two more merchants share
//! A's id prefix in both directions: `m-<tag>` (a prefix of A's id) and `m-<tag>-a-eu` (A's id is a
//! prefix of it), with customers of their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::adapters::store::keys;
use aftercare::adapters::store::offboarding::{
    self, Counts, Mode, OffboardAudit, Outcome, Request,
};
use aftercare::clock::SystemClock;
use aftercare::domain::{CustomerId, MerchantId, OrderId};
use aftercare::token::SigningKey;
use aftercare_tests::{Env, Item, Tenant, answer, deadline, s};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::Value;
use std::collections::BTreeMap;

const NOW: &str = "2026-11-20T10:00:00Z";
/// Customers of merchant A seeded in bulk (besides those of the orders placed for real).
const BULK_A: usize = 1_000;
/// Of those, every `ORDER_EVERY`th also gets a copy of the real order's partition and sends.
const ORDER_EVERY: usize = 10;

/// Every item of the table by (PK, SK).
type Table = BTreeMap<(String, String), Item>;

fn table(items: Vec<Item>) -> Table {
    items
        .into_iter()
        .map(|i| ((s(&i, "PK"), s(&i, "SK")), i))
        .collect()
}

fn is_of(m: &MerchantId, pk: &str) -> bool {
    pk == format!("M#{m}") || pk.starts_with(&format!("M#{m}#"))
}

/// The test's own count of merchant `m`'s items per kind, from a plain Scan.
fn count_of(m: &MerchantId, all: &Table) -> Counts {
    let mut counts = Counts::new();
    for ((pk, _), item) in all {
        if is_of(m, pk) {
            let kind = item
                .get("_type")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}

/// `value` with every `from` in its strings (and the strings inside maps and lists) replaced.
fn replaced(value: &AttributeValue, from: &str, to: &str) -> AttributeValue {
    match value {
        AttributeValue::S(text) => AttributeValue::S(text.replace(from, to)),
        AttributeValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), replaced(v, from, to)))
                .collect(),
        ),
        AttributeValue::L(list) => {
            AttributeValue::L(list.iter().map(|v| replaced(v, from, to)).collect())
        }
        other => other.clone(),
    }
}

fn item_replaced(item: &Item, swaps: &[(String, String)]) -> Item {
    item.iter()
        .map(|(k, v)| {
            let v = swaps
                .iter()
                .fold(v.clone(), |v, (from, to)| replaced(&v, from, to));
            (k.clone(), v)
        })
        .collect()
}

/// Stores `items` with BatchWriteItem, 25 at a time.
async fn put_all(env: &Env, items: Vec<Item>) {
    let client = env.dynamodb();
    for chunk in items.chunks(25) {
        let mut pending: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        while !pending.is_empty() {
            let out = client
                .batch_write_item()
                .request_items(&env.table, pending)
                .send()
                .await
                .unwrap();
            pending = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&env.table))
                .unwrap_or_default();
        }
    }
}

/// A merchant's world: the real orders placed with its key and the bulk customers copied from the
/// first one. Returns the customer emails used.
struct Seeded {
    emails: Vec<String>,
}

/// Places `orders` real orders for `tenant` (customers `<name>-c<i>`), then seeds `bulk` more
/// customers as copies of the first customer's items (aggregate; every `ORDER_EVERY`th also the
/// order's partition, idempotency record and sends) under keys.rs keys.
async fn seed(
    env: &Env,
    app: &aftercare::app::App,
    tenant: &Tenant,
    name: &str,
    orders: usize,
    bulk: usize,
) -> Seeded {
    let m = &tenant.merchant.id;
    let mut emails = Vec::new();
    for i in 0..orders {
        let mut order = env.order();
        let email = format!("{name}.{i}.{}@example.com", env.tag);
        order["id"] = format!("SO-{name}-{i}").into();
        order["customer"]["id"] = format!("{name}-c{i}").into();
        order["customer"]["email"] = email.clone().into();
        let resp = order_placed::handle(
            app,
            env.http_event(&order, Some(&tenant.api_key)),
            "t",
            deadline(),
        )
        .await
        .unwrap();
        assert_eq!(answer(&resp).0, 201, "{resp}");
        emails.push(email);
    }
    // The items of the first real order's customer and order, as templates.
    let real_c = CustomerId::parse("c", &format!("{name}-c0")).unwrap();
    let real_o = OrderId::parse("o", &format!("SO-{name}-0")).unwrap();
    let real_email = emails[0].clone();
    let all = env.items().await;
    let of_pk =
        |pk: &str| -> Vec<Item> { all.iter().filter(|i| s(i, "PK") == pk).cloned().collect() };
    let aggregate = of_pk(&keys::customer(m, &real_c).pk);
    let order_part = of_pk(&keys::order(m, &real_o).pk);
    let sends = of_pk(&keys::customer_sends(m, &real_c).pk);
    let idem = of_pk(&keys::idempotency(m, "order", real_o.as_str()).pk);
    assert!(aggregate.len() >= 4, "{aggregate:?}");
    assert!(!order_part.is_empty() && !sends.is_empty() && idem.len() == 1);

    let mut items = Vec::new();
    for i in 0..bulk {
        let c = CustomerId::parse("c", &format!("{name}-bulk{i}")).unwrap();
        let o = OrderId::parse("o", &format!("SO-{name}-bulk{i}")).unwrap();
        let email = format!("{name}.bulk{i}.{}@example.com", env.tag);
        let swaps = [
            (real_email.clone(), email.clone()),
            (real_o.to_string(), o.to_string()),
            (real_c.to_string(), c.to_string()),
        ];
        let mut rekey = |templates: &[Item], pk: String| {
            for t in templates {
                let mut item = item_replaced(t, &swaps);
                item.insert("PK".into(), AttributeValue::S(pk.clone()));
                items.push(item);
            }
        };
        rekey(&aggregate, keys::customer(m, &c).pk);
        if i % ORDER_EVERY == 0 {
            rekey(&order_part, keys::order(m, &o).pk);
            rekey(&sends, keys::customer_sends(m, &c).pk);
            rekey(&idem, keys::idempotency(m, "order", o.as_str()).pk);
        }
        emails.push(email);
    }
    put_all(env, items).await;
    Seeded { emails }
}

fn request(m: &MerchantId, mode: Mode, budget: usize, max_steps: Option<u32>) -> Request {
    Request {
        merchant: m.clone(),
        requested_by: Some("ops: ticket OFF-1".into()),
        mode,
        step_budget: budget,
        max_steps,
    }
}

fn sum(a: &Counts, b: &Counts) -> Counts {
    let mut out = a.clone();
    for (kind, n) in b {
        *out.entry(kind.clone()).or_default() += n;
    }
    out
}

/// The order-placed answer for an order sent with `key`, from an App built now (no cache of an
/// earlier key lookup or merchant profile).
async fn place_with_fresh_app(env: &Env, key: &str, id: &str) -> (i64, Value) {
    let (_clock, app) = env.app_at(NOW, &SigningKey::new(&[7u8; 32]).unwrap());
    let mut order = env.order();
    order["id"] = id.into();
    let resp = order_placed::handle(&app, env.http_event(&order, Some(key)), "t", deadline())
        .await
        .unwrap();
    answer(&resp)
}

#[tokio::test]
async fn offboarding_deletes_every_item_of_one_merchant_and_nothing_else() {
    let env = Env::new().await;
    let a = env.add_merchant("a").await;
    let eu = env.add_merchant("a-eu").await;
    let (a_id, p_id, eu_id) = (
        a.merchant.id.clone(),
        env.merchant.id.clone(),
        eu.merchant.id.clone(),
    );
    // The prefix-sharing merchants, both ways round.
    assert!(a_id.as_str().starts_with(p_id.as_str()));
    assert!(eu_id.as_str().starts_with(a_id.as_str()));
    let p = Tenant {
        merchant: env.merchant.clone(),
        api_key: env.api_key.clone(),
        webhook_secret: env.webhook_secret(),
    };
    let (_clock, app) = env.app_at(NOW, &SigningKey::new(&[21u8; 32]).unwrap());
    let seeded_a = seed(&env, &app, &a, "a", 4, BULK_A).await;
    seed(&env, &app, &p, "p", 2, 150).await;
    seed(&env, &app, &eu, "eu", 2, 150).await;

    let before = table(env.items().await);
    let expected = count_of(&a_id, &before);
    let customers = before
        .keys()
        .filter(|(pk, sk)| pk.starts_with(&format!("M#{a_id}#C#")) && sk == "PROFILE")
        .count();
    assert!(customers > BULK_A, "{customers} customers of A");
    for kind in [
        "merchant",
        "api_key",
        "customer",
        "order",
        "idempotency",
        "send",
    ] {
        assert!(expected.contains_key(kind), "no {kind} in {expected:?}");
    }
    let others = |t: &Table| -> Table {
        t.iter()
            .filter(|((pk, _), _)| !is_of(&a_id, pk) && !pk.starts_with("OFFBOARD#"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let others_before = others(&before);
    assert!(others_before.keys().any(|(pk, _)| is_of(&p_id, pk)));
    assert!(others_before.keys().any(|(pk, _)| is_of(&eu_id, pk)));

    // A dry run counts exactly what the Scan above found and deletes nothing.
    let dry = offboarding::offboard(
        &env.store,
        &request(&a_id, Mode::DryRun, 100, None),
        &SystemClock,
        |_| panic!("a dry run takes no delete step"),
    )
    .await
    .unwrap();
    assert_eq!(dry.outcome, Outcome::Counted);
    assert_eq!(dry.counts, expected);
    assert_eq!(dry.total, expected.values().sum::<u64>());
    assert!(dry.remaining);
    let after_dry = table(env.items().await);
    assert_eq!(
        after_dry
            .iter()
            .filter(|((pk, _), _)| !pk.starts_with("OFFBOARD#"))
            .count(),
        before.len()
    );
    assert!(
        before.iter().all(|(k, v)| after_dry.get(k) == Some(v)),
        "a dry run changed an item"
    );

    // A delete of one small step: the profile and API keys go first, and items are left.
    let mut steps = Vec::new();
    let first = offboarding::offboard(
        &env.store,
        &request(&a_id, Mode::Delete, 300, Some(1)),
        &SystemClock,
        |p| steps.push((p.step, offboarding::total(p.deleted), p.remaining)),
    )
    .await
    .unwrap();
    assert_eq!(first.outcome, Outcome::Incomplete);
    assert!(first.remaining);
    assert_eq!(first.total, 300);
    assert_eq!(steps, vec![(1, 300, true)]);
    assert_eq!(first.counts.get("merchant"), Some(&1));
    assert_eq!(first.counts.get("api_key"), expected.get("api_key"));
    assert_eq!(env.store.get_merchant(&a_id).await.unwrap(), None);
    assert!(env.store.list_api_keys(&a_id).await.unwrap().is_empty());
    // From the first step on, A's key is refused; the others' keys are not.
    let (status, body) = place_with_fresh_app(&env, &a.api_key, "SO-after-1").await;
    assert_eq!(status, 401, "{body}");

    // Run again: it continues, step after step, until nothing is left.
    let mut steps = Vec::new();
    let second = offboarding::offboard(
        &env.store,
        &request(&a_id, Mode::Delete, 2_000, None),
        &SystemClock,
        |p| steps.push((p.step, offboarding::total(p.deleted), p.remaining)),
    )
    .await
    .unwrap();
    assert_eq!(second.outcome, Outcome::Completed);
    assert!(!second.remaining);
    assert!(steps.len() >= 2, "{steps:?}");
    assert_eq!(steps.last().map(|s| s.2), Some(false));
    assert!(steps[..steps.len() - 1].iter().all(|s| s.2));
    assert_eq!(sum(&first.counts, &second.counts), expected);

    let after = table(env.items().await);
    let left: Vec<_> = after.keys().filter(|(pk, _)| is_of(&a_id, pk)).collect();
    assert!(left.is_empty(), "left of A: {left:?}");
    // Every item of the other merchants (and anything else) is exactly as it was.
    assert_eq!(others(&after), others_before);

    // Running it on a merchant with nothing left finds nothing and succeeds.
    let third = offboarding::offboard(
        &env.store,
        &request(&a_id, Mode::Delete, 2_000, None),
        &SystemClock,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(third.outcome, Outcome::Completed);
    assert_eq!(third.total, 0);
    assert!(third.counts.is_empty());

    // The audit records outlive the merchant, one per run, and carry no customer data.
    let audits = env.store.offboard_audits(&a_id).await.unwrap();
    let expect_audits: Vec<(Mode, Outcome, u64)> = vec![
        (Mode::DryRun, Outcome::Counted, dry.total),
        (Mode::Delete, Outcome::Incomplete, 300),
        (Mode::Delete, Outcome::Completed, second.total),
        (Mode::Delete, Outcome::Completed, 0),
    ];
    assert_eq!(
        audits
            .iter()
            .map(|a| (a.mode, a.outcome, a.total))
            .collect::<Vec<_>>(),
        expect_audits
    );
    assert_eq!(audits[2], second);
    for audit in &audits {
        assert_eq!(audit.merchant_id, a_id);
        assert_eq!(audit.requested_by.as_deref(), Some("ops: ticket OFF-1"));
        assert!(audit.finished_at.is_some_and(|f| f >= audit.started_at));
    }
    let last = table(env.items().await);
    let raw: Vec<&Item> = last
        .iter()
        .filter(|((pk, _), _)| pk.starts_with("OFFBOARD#"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(raw.len(), 4);
    assert!(raw.iter().all(|i| s(i, "PK") == format!("OFFBOARD#{a_id}")));
    let text = format!("{raw:?}");
    assert!(!text.contains('@'), "an audit record holds an address");
    for email in &seeded_a.emails {
        assert!(!text.contains(email.as_str()));
    }
    let audit: OffboardAudit = serde_dynamo::from_item(raw[2].clone()).unwrap();
    assert_eq!(audit.counts, second.counts);

    // The other merchants' keys still work.
    for (key, id) in [(&p.api_key, "SO-after-p"), (&eu.api_key, "SO-after-eu")] {
        let (status, body) = place_with_fresh_app(&env, key, id).await;
        assert_eq!(status, 201, "{body}");
    }
}
