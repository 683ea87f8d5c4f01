//! Store credit: append-only entries (one per source, conditional put) and one summary item per
//! currency with a version. Every posting is one transaction of "put the entry if its source is
//! new" + "move the currency's summary on if it is still at the version the decision was made
//! on", so concurrent debits serialise and the balance can never be overdrawn; credits move the
//! version too, so a debit never commits on a balance it did not see.
//!
//! The summary's condition is `attribute_not_exists(PK)` when the decision read no summary
//! (version 0), else `version = :v`: an erased summary is never silently recreated from a stale
//! read, and two first postings of a currency cannot both write it.

use super::write::{Attempt, codes_failed, put_new};
use super::{Item, Store, StoreError, from_item, keys, n, s, to_item};
use crate::domain::credit::{
    CreditEntry, CreditPosting, CreditRead, CreditStatement, CreditSummary,
};
use crate::domain::{Currency, CustomerId, MerchantId};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

const ENTRY: &str = "credit_entry";
const SUMMARY: &str = "credit_summary";

/// A summary item as stored (its `as_of` is the last entry's time).
#[derive(serde::Deserialize)]
struct StoredSummary {
    currency: Currency,
    #[serde(default)]
    balance: i64,
    #[serde(default)]
    issued: i64,
    #[serde(default)]
    redeemed: i64,
    #[serde(default)]
    version: u64,
}

impl From<StoredSummary> for CreditSummary {
    fn from(s: StoredSummary) -> Self {
        CreditSummary {
            currency: s.currency,
            balance: s.balance,
            issued: s.issued,
            redeemed: s.redeemed,
            version: s.version,
        }
    }
}

fn summary_of(item: Item) -> Result<CreditSummary, StoreError> {
    Ok(from_item::<StoredSummary>(SUMMARY, item)?.into())
}

impl Store {
    /// The transaction item that moves `read`'s summary on to `after`, if it is still as read.
    pub fn credit_summary_update(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &CreditSummary,
        after: &CreditSummary,
        entry: &CreditEntry,
    ) -> Result<TransactWriteItem, StoreError> {
        let condition = if read.version == 0 {
            "attribute_not_exists(PK)"
        } else {
            "version = :v"
        };
        let mut update = self
            .tx_update(&keys::credit_summary(m, c, read.currency))
            .update_expression(
                "SET #type = :t, currency = :c, balance = :b, issued = :i, redeemed = :r, \
                 as_of = :now, version = :next",
            )
            .condition_expression(condition)
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s(SUMMARY))
            .expression_attribute_values(":c", s(read.currency.code()))
            .expression_attribute_values(":b", n(after.balance))
            .expression_attribute_values(":i", n(after.issued))
            .expression_attribute_values(":r", n(after.redeemed))
            .expression_attribute_values(":now", s(entry.at.to_string()))
            .expression_attribute_values(":next", n(after.version));
        if read.version != 0 {
            update = update.expression_attribute_values(":v", n(read.version));
        }
        super::write::update(update)
    }

    /// The conditional put of one credit entry (only if its source is new).
    pub fn credit_entry_put(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        entry: &CreditEntry,
    ) -> Result<TransactWriteItem, StoreError> {
        put_new(
            &self.table,
            to_item(ENTRY, &keys::credit_entry(m, c, &entry.source), entry)?,
        )
    }
}

impl crate::ports::credit::CreditBook for Store {
    async fn has_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        Ok(self.get_customer_profile(m, c).await?.is_some())
    }

    async fn read(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        currency: Currency,
        source: &str,
    ) -> Result<CreditRead, StoreError> {
        let summary_key = keys::credit_summary(m, c, currency);
        let entry_key = keys::credit_entry(m, c, source);
        let (summary, existing) = tokio::try_join!(
            self.get_as::<StoredSummary>("GetItem credit summary", SUMMARY, &summary_key),
            self.get_as::<CreditEntry>("GetItem credit entry", ENTRY, &entry_key),
        )?;
        Ok(CreditRead {
            summary: summary.map_or_else(|| CreditSummary::empty(currency), Into::into),
            existing,
        })
    }

    async fn statement(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<CreditStatement, StoreError> {
        let mut statement = CreditStatement::default();
        for item in self
            .query_prefix("Query credit", &keys::credit_all(m, c))
            .await?
        {
            let summary = matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if keys::is_credit_summary(sk));
            if summary {
                statement.summaries.push(summary_of(item)?);
            } else {
                statement.entries.push(from_item(ENTRY, item)?);
            }
        }
        statement
            .entries
            .sort_by(|a, b| (a.at, &a.source).cmp(&(b.at, &b.source)));
        Ok(statement)
    }

    /// One `TransactWriteItems`: the entry (if its source is new) and the summary (if still at
    /// the version read).
    async fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &CreditSummary,
        entry: &CreditEntry,
    ) -> Result<CreditPosting, StoreError> {
        let after = read.after(entry);
        let items = vec![
            self.credit_entry_put(m, c, entry)?,
            self.credit_summary_update(m, c, read, &after, entry)?,
        ];
        Ok(
            match self.transact("TransactWriteItems credit", items).await? {
                Attempt::Done => CreditPosting::Done(after),
                Attempt::Cancelled(codes) if codes_failed(&codes, 0) => CreditPosting::Duplicate,
                Attempt::Cancelled(_) => CreditPosting::Stale,
            },
        )
    }
}
