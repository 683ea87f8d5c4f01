//! Customers' store credit in memory, under the DynamoDB store's keys and with its conditions: an
//! entry is put only if its source is new, a currency's summary moves on only from the version
//! the posting was decided on (`attribute_not_exists(PK)` for a first posting, `version = :v`
//! after), both in one all-or-nothing transaction whose per-item cancellation reasons decide what
//! the posting answers.
//!
//! A read yields to the runtime before it returns, as a network round trip would, so use-cases
//! joined in one test all read before any writes: the race the conditions are for.

use super::table::{MemTable, RowKey, Write, absent, always, decode, parse, row};
use crate::adapters::store::keys;
use crate::domain::credit::{
    CreditEntry, CreditPosting, CreditRead, CreditStatement, CreditSummary,
};
use crate::domain::{Currency, CustomerId, MerchantId};
use crate::ports::StoreError;
use crate::ports::credit::CreditBook;
use serde_json::json;

#[derive(Clone, Default)]
pub struct MemCredit {
    pub table: MemTable,
}

fn key(k: keys::Key) -> RowKey {
    RowKey::from(&k)
}

impl MemCredit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Store credit over an existing table (shared with other in-memory adapters).
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

    /// The customer's summary in `currency` as stored, if any.
    pub fn summary(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
    ) -> Option<CreditSummary> {
        parse(self.table.get(&key(keys::credit_summary(m, c, currency))))
            .ok()
            .flatten()
    }
}

impl CreditBook for MemCredit {
    async fn has_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        let found = self.table.get(&key(keys::customer(m, c))).is_some();
        tokio::task::yield_now().await;
        Ok(found)
    }

    async fn read(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
        source: &str,
    ) -> Result<CreditRead, StoreError> {
        let summary: Option<CreditSummary> =
            parse(self.table.get(&key(keys::credit_summary(m, c, currency))))?;
        let existing = parse(self.table.get(&key(keys::credit_entry(m, c, source))))?;
        tokio::task::yield_now().await;
        Ok(CreditRead {
            summary: summary.unwrap_or_else(|| CreditSummary::empty(currency)),
            existing,
        })
    }

    async fn statement(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<CreditStatement, StoreError> {
        let all = keys::credit_all(m, c);
        let mut statement = CreditStatement::default();
        for (k, value) in self.table.within(&all) {
            if keys::is_credit_summary(&k.sk) {
                statement.summaries.push(decode(value)?);
            } else {
                statement.entries.push(decode(value)?);
            }
        }
        statement
            .entries
            .sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
        tokio::task::yield_now().await;
        Ok(statement)
    }

    async fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &CreditSummary,
        entry: &CreditEntry,
    ) -> Result<CreditPosting, StoreError> {
        let after = read.after(entry);
        let version = read.version;
        let stored = row(&after)?;
        let writes = vec![
            Write::Put {
                key: key(keys::credit_entry(m, c, &entry.source)),
                row: row(entry)?,
                condition: absent(),
            },
            // `attribute_not_exists(PK)` on a first posting, else `version = :v`.
            Write::Update {
                key: key(keys::credit_summary(m, c, read.currency)),
                condition: Box::new(move |summary| match summary {
                    None => version == 0,
                    Some(s) => version != 0 && s["version"].as_u64() == Some(version),
                }),
                apply: Box::new(move |_| stored),
            },
        ];
        Ok(match self.table.transact(writes)? {
            Ok(()) => CreditPosting::Done(after),
            Err(c) if c.failed(0) => CreditPosting::Duplicate,
            Err(_) => CreditPosting::Stale,
        })
    }
}
