//! Customers' loyalty ledgers in memory, under the DynamoDB store's keys and with its conditions:
//! an entry is put only if its source is new, the summary moves on only from the version the
//! posting was decided on, a referee is written only once per email address (or again by the same
//! order), the order's referrer only on a stored order; all in one all-or-nothing transaction, with
//! the store's per-item cancellation reasons deciding what the posting answers.
//!
//! A read yields to the runtime before it returns, as a network round trip would, so two
//! use-cases joined in one test both read before either writes: the race the conditions are for.

use super::table::{MemTable, RowKey, Write, absent, always, decode, parse, present, row};
use crate::adapters::store::keys;
use crate::domain::loyalty::{
    LedgerEntry, LoyaltyState, Posting, Referee, Referral, ReferralCodeOwner, balance,
};
use crate::domain::{CustomerId, MerchantId, OrderId};
use crate::ports::StoreError;
use crate::ports::loyalty::LoyaltyLedger;
use jiff::Timestamp;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct MemLoyalty {
    pub table: MemTable,
}

fn key(k: keys::Key) -> RowKey {
    RowKey::from(&k)
}

/// The customer's ledger as the store's one Query on `begins_with(SK, <summary SK>)` reads it: the
/// summary's version and every entry, oldest first.
pub(crate) fn ledger_state(
    table: &MemTable,
    m: &MerchantId,
    c: &CustomerId,
) -> Result<LoyaltyState, StoreError> {
    let summary = keys::ledger_summary(m, c);
    let mut state = LoyaltyState::default();
    for (k, value) in table.query(&summary.pk, &summary.sk) {
        if k.sk == summary.sk {
            state.version = value["version"].as_u64().unwrap_or(0);
            state.noted_through = value["available_noted_at"]
                .as_str()
                .and_then(|t| t.parse().ok());
        } else {
            state.entries.push(decode(value)?);
        }
    }
    state
        .entries
        .sort_by(|a, b| (a.created_at, &a.source).cmp(&(b.created_at, &b.source)));
    Ok(state)
}

/// The put of a new entry on the customer's ledger (only if its source is new).
pub(crate) fn entry_put(
    m: &MerchantId,
    c: &CustomerId,
    entry: &LedgerEntry,
) -> Result<Write, StoreError> {
    Ok(Write::Put {
        key: key(keys::ledger(m, c, &entry.source)),
        row: row(entry)?,
        condition: absent(),
    })
}

impl MemLoyalty {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ledgers over an existing table (shared with other in-memory adapters).
    pub fn on(table: MemTable) -> Self {
        Self { table }
    }

    /// The customer's profile, as placing their first order writes it.
    pub fn add_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<(), StoreError> {
        self.table.write(Write::Update {
            key: key(keys::customer(m, c)),
            condition: always(),
            apply: Box::new(|current| current.unwrap_or_else(|| json!({ "orders": 1 }))),
        })?;
        Ok(())
    }

    /// A stored order (the item a referral notes its referrer on).
    pub fn add_order(&self, m: &MerchantId, o: &OrderId) -> Result<(), StoreError> {
        let order = json!({ "order_id": o.as_str() });
        self.table.write(Write::Put {
            key: key(keys::order(m, o)),
            row: order,
            condition: always(),
        })?;
        Ok(())
    }

    /// A customer's referral code, as their orders write it.
    pub fn add_referral_code(
        &self,
        m: &MerchantId,
        owner: &ReferralCodeOwner,
    ) -> Result<(), StoreError> {
        self.table.write(Write::Put {
            key: key(keys::referral_code(m, &owner.code)),
            row: row(owner)?,
            condition: always(),
        })?;
        Ok(())
    }

    /// An order's earn, written as the order's transaction writes it: the entry if new, and the
    /// summary's version moved on (a credit needs no condition).
    pub fn credit(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError> {
        let pending = entry.points;
        Ok(self
            .table
            .transact(vec![
                entry_put(m, c, entry)?,
                Write::Update {
                    key: key(keys::ledger_summary(m, c)),
                    condition: always(),
                    apply: Box::new(move |current| {
                        let mut summary = current.unwrap_or_else(|| json!({}));
                        summary["version"] = json!(summary["version"].as_u64().unwrap_or(0) + 1);
                        summary["pending"] =
                            json!(summary["pending"].as_i64().unwrap_or(0) + pending);
                        summary
                    }),
                },
            ])?
            .is_ok())
    }

    /// The referee's record, if any.
    pub fn referee(&self, m: &MerchantId, email: &str) -> Option<Referee> {
        parse(self.table.get(&key(keys::referee(m, email))))
            .ok()
            .flatten()
    }

    /// Who the stored order notes as its referrer.
    pub fn referred_by(&self, m: &MerchantId, o: &OrderId) -> Option<String> {
        self.table.get(&key(keys::order(m, o)))?["referred_by"]
            .as_str()
            .map(str::to_owned)
    }

    /// The ledger summary's cached balance (`available`, `pending`) and version.
    pub fn summary(&self, m: &MerchantId, c: &CustomerId) -> Option<Value> {
        self.table.get(&key(keys::ledger_summary(m, c)))
    }
}

impl LoyaltyLedger for MemLoyalty {
    async fn ledger(&self, m: &MerchantId, c: &CustomerId) -> Result<LoyaltyState, StoreError> {
        let state = ledger_state(&self.table, m, c)?;
        tokio::task::yield_now().await;
        Ok(state)
    }

    async fn has_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        let found = self.table.get(&key(keys::customer(m, c))).is_some();
        tokio::task::yield_now().await;
        Ok(found)
    }

    async fn referral_code_owner(
        &self,
        m: &MerchantId,
        code: &str,
    ) -> Result<Option<ReferralCodeOwner>, StoreError> {
        let owner = parse(self.table.get(&key(keys::referral_code(m, code))))?;
        tokio::task::yield_now().await;
        Ok(owner)
    }

    async fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &LoyaltyState,
        entry: &LedgerEntry,
        now: Timestamp,
        referral: Option<&Referral>,
    ) -> Result<Posting, StoreError> {
        let mut after = read.entries.clone();
        after.push(entry.clone());
        let after = balance(&after, now);
        let version = read.version;
        let mut writes = vec![
            entry_put(m, c, entry)?,
            // `attribute_not_exists(version) OR version = :v`, then `ADD version :one`.
            Write::Update {
                key: key(keys::ledger_summary(m, c)),
                condition: Box::new(move |summary| {
                    summary
                        .and_then(|s| s.get("version"))
                        .is_none_or(|v| v.as_u64() == Some(version))
                }),
                apply: Box::new(move |current| {
                    let mut summary = current.unwrap_or_else(|| json!({}));
                    summary["version"] = json!(summary["version"].as_u64().unwrap_or(0) + 1);
                    summary["available"] = json!(after.available);
                    summary["pending"] = json!(after.pending);
                    summary["as_of"] = json!(now.to_string());
                    summary
                }),
            },
        ];
        if let Some(r) = referral {
            let order_id = r.referee.order_id.clone();
            let referrer = r.referee.referrer.to_string();
            writes.extend([
                // `attribute_not_exists(PK) OR order_id = :o`.
                Write::Put {
                    key: key(keys::referee(m, &r.referee.email)),
                    row: row(&r.referee)?,
                    condition: Box::new(move |referee| {
                        referee.is_none_or(|v| v["order_id"].as_str() == Some(order_id.as_str()))
                    }),
                },
                Write::Put {
                    key: key(r.notice.key(m)),
                    row: row(&r.notice)?,
                    condition: always(),
                },
                Write::Update {
                    key: key(keys::order(m, &r.order)),
                    condition: present(),
                    apply: Box::new(move |current| {
                        let mut order = current.unwrap_or_else(|| json!({}));
                        order["referred_by"] = json!(referrer);
                        order
                    }),
                },
            ]);
        }
        Ok(match self.table.transact(writes)? {
            Ok(()) => Posting::Done(after),
            Err(c) if c.failed(0) => Posting::Duplicate,
            Err(c) if c.failed(1) => Posting::Stale,
            Err(c) if c.failed(2) => Posting::AlreadyReferred,
            Err(c) if c.failed(4) => Posting::OrderGone,
            Err(_) => Posting::Stale,
        })
    }
}
