//! The store's conditions that no scenario reaches on its own: each test here writes what its
//! condition exists to refuse and asserts it was refused. Every one is the guarding test of a row
//! of `tests/conditions.tsv`, and fails under that row's mutation (`scripts/mutate-conditions`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare::domain::CustomerId;
use aftercare::domain::loyalty::{LedgerEntry, LedgerKind, Posting, balance};
use aftercare::ports::loyalty::LoyaltyLedger;
use aftercare_tests::Env;
use jiff::Timestamp;

fn adjustment(source: &str, points: i64, at: Timestamp) -> LedgerEntry {
    LedgerEntry {
        kind: LedgerKind::Adjust,
        points,
        source: source.to_owned(),
        created_at: at,
        available_at: None,
        against: None,
        reason: Some("goodwill".to_owned()),
        spend: None,
    }
}

/// `loyalty.entry_source_new`. The use-cases look for the source in what they read before they
/// post, but the ledger itself holds one entry per source: a caller that posts a source the
/// ledger already has, on its current version, gets `Duplicate` and the points are not awarded
/// again (neither on the ledger nor in the cached balance).
#[tokio::test]
async fn the_ledger_takes_one_entry_per_source_even_from_a_caller_that_did_not_look() {
    let env = Env::new().await;
    let m = &env.merchant.id;
    let c = CustomerId::parse("customer", "ledger-once").unwrap();
    let now = Timestamp::now();
    let entry = adjustment("adjust:k-1", 50, now);

    let empty = env.store.ledger(m, &c).await.unwrap();
    let first = env.store.post(m, &c, &empty, &entry, now, None).await;
    let Ok(Posting::Done(after_first)) = first else {
        panic!("the first posting: {first:?}");
    };
    assert_eq!(after_first.available, 50);

    let current = env.store.ledger(m, &c).await.unwrap();
    let again = env.store.post(m, &c, &current, &entry, now, None).await;
    assert_eq!(again.unwrap(), Posting::Duplicate);

    let end = env.store.ledger(m, &c).await.unwrap();
    assert_eq!(end.version, current.version, "the summary did not move");
    assert_eq!(end.entries, current.entries);
    assert_eq!(balance(&end.entries, now).available, 50);
}

/// `apikeys.key_new`. A key record is written once: another record under an existing key id (a
/// second digest) is refused, and the key keeps answering to its own secret only.
#[tokio::test]
async fn a_key_id_is_stored_once_and_keeps_its_own_digest() {
    use aftercare::adapters::store::StoreError;
    use aftercare::domain::apikey::{self, ApiKeyRecord, KeyStatus};

    let env = Env::new().await;
    let first = apikey::issue().unwrap();
    let record = ApiKeyRecord {
        key_id: first.key_id.clone(),
        merchant_id: env.merchant.id.clone(),
        status: KeyStatus::Active,
        created_at: Timestamp::now(),
        revoked_at: None,
        label: Some("first".into()),
    };
    env.store.put_api_key(&record, &first.hash).await.unwrap();

    let other = apikey::issue().unwrap();
    let again = env.store.put_api_key(&record, &other.hash).await;
    assert!(
        matches!(again, Err(StoreError::ConditionFailed)),
        "{again:?}"
    );
    let found = env.store.find_api_key(&first.hash).await.unwrap();
    assert_eq!(found.map(|r| r.key_id), Some(first.key_id));
    assert!(env.store.find_api_key(&other.hash).await.unwrap().is_none());
}
