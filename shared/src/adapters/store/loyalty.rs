//! The loyalty ledger: append-only entries (one per source, conditional put) and a summary item
//! with a version. Every debit (redemption, negative adjustment, reversal) is one transaction of
//! "put the entry if its source is new" + "bump the version if it is still the one the balance was
//! computed from", so concurrent debits serialise and the balance can never be overdrawn; credits
//! bump the version too, so a debit never commits on a balance it did not see.

use super::write::{self, Attempt, build_err, codes_failed, put, put_new, with_due};
use super::{Store, StoreError, from_item, keys, n, s, to_item, update_held};
use crate::domain::loyalty::{
    Balance, LEDGER_ATTEMPTS, LedgerEntry, LedgerKind, Posting, Rebased, Referee, Referral, balance,
};
pub use crate::domain::loyalty::{LoyaltyNotice, LoyaltyState, NoticeKind, ReferralCodeOwner};
use crate::domain::{CustomerId, MerchantId};
use crate::ports::DueToken;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use jiff::Timestamp;

const LEDGER: &str = "ledger";
const SUMMARY: &str = "ledger_summary";
const NOTICE: &str = "loyalty_notice";
/// The due-index group of loyalty notices (referral rewards, expiry).
pub const LOYALTY_GROUP: &str = "loyalty";

/// What became of one posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Posted; the balance right after it.
    Done(Balance),
    /// An entry with this source exists already (a replay).
    Duplicate,
    /// Someone else wrote the ledger since it was read: read again and decide again.
    Conflict,
    /// One of the caller's extra items' conditions failed (its index among the extras).
    ExtraRefused(usize),
}

impl Store {
    /// The ledger entries and summary version of one customer (one consistent Query, all pages).
    pub async fn loyalty(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<LoyaltyState, StoreError> {
        let summary = keys::ledger_summary(m, c);
        let mut state = LoyaltyState::default();
        for item in self
            .query_prefix("Query ledger", &keys::ledger_all(m, c))
            .await?
        {
            let is_summary =
                matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if *sk == summary.sk);
            if is_summary {
                state.version = item
                    .get("version")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                state.noted_through = item
                    .get("available_noted_at")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| v.parse().ok());
            } else {
                state.entries.push(from_item(LEDGER, item)?);
            }
        }
        state
            .entries
            .sort_by(|a, b| (a.created_at, &a.source).cmp(&(b.created_at, &b.source)));
        Ok(state)
    }

    /// The summary update that moves the version on from `read` (the condition every debit rests
    /// on) and caches `balance` as of `now`.
    pub fn ledger_summary_update(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: u64,
        balance: Balance,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self
            .tx_update(&keys::ledger_summary(m, c))
            .update_expression(
                "SET #type = :t, available = :a, pending = :p, as_of = :now ADD version :one",
            )
            // The summary only ever moves up from 1, so "absent" is version 0.
            .condition_expression("attribute_not_exists(version) OR version = :v")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s(SUMMARY))
            .expression_attribute_values(":a", n(balance.available))
            .expression_attribute_values(":p", n(balance.pending))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":v", n(read));
        write::update(update)
    }

    /// The summary update that goes with a new pending earn (an order, a referral): no condition
    /// (a credit cannot overdraw), but the version moves on so no debit commits on a balance
    /// computed without it.
    pub fn ledger_credit(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        pending: i64,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self
            .tx_update(&keys::ledger_summary(m, c))
            .update_expression("SET #type = :t, as_of = :now ADD version :one, pending :p")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s(SUMMARY))
            .expression_attribute_values(":p", n(pending))
            .expression_attribute_values(":now", s(now.to_string()))
            .expression_attribute_values(":one", n(1));
        write::update(update)
    }

    /// The conditional put of one ledger entry.
    pub fn ledger_put(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        entry: &LedgerEntry,
    ) -> Result<TransactWriteItem, StoreError> {
        put_new(
            &self.table,
            to_item(LEDGER, &keys::ledger(m, c, &entry.source), entry)?,
        )
    }

    /// Posts `entry` if the ledger is still at `state.version` (with `extra` items in the same
    /// transaction), caching the balance after it.
    async fn post_ledger(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        state: &LoyaltyState,
        entry: &LedgerEntry,
        now: Timestamp,
        extra: &[TransactWriteItem],
    ) -> Result<Posted, StoreError> {
        let mut after = state.entries.clone();
        after.push(entry.clone());
        let balance = balance(&after, now);
        let mut items = vec![
            self.ledger_put(m, c, entry)?,
            self.ledger_summary_update(m, c, state.version, balance, now)?,
        ];
        items.extend_from_slice(extra);
        Ok(
            match self.transact("TransactWriteItems ledger", items).await? {
                Attempt::Done => Posted::Done(balance),
                Attempt::Cancelled(codes) if codes_failed(&codes, 0) => Posted::Duplicate,
                Attempt::Cancelled(codes) if codes_failed(&codes, 1) => Posted::Conflict,
                Attempt::Cancelled(codes) => (2..codes.len())
                    .find(|&i| codes_failed(&codes, i))
                    .map_or(Posted::Conflict, |i| Posted::ExtraRefused(i - 2)),
            },
        )
    }
}

/// What [`Store::decide_and_post`] ended with.
#[derive(Debug, Clone)]
pub enum Decided {
    /// `entry` is on the ledger; `balance` is the balance right after it.
    Posted {
        entry: LedgerEntry,
        balance: Balance,
    },
    /// `decide` chose nothing on this state (the caller tells why from it).
    Declined(LoyaltyState),
    /// The entry's source was on the ledger already.
    Duplicate(LoyaltyState),
    /// One of the extra items' conditions failed (its index).
    ExtraRefused(usize),
    /// Lost the race [`LEDGER_ATTEMPTS`] times.
    Busy,
}

impl Store {
    /// Reads the ledger, lets `decide` choose the entry to post on what it read, and posts it
    /// conditioned on the version read (with `extra` items in the same transaction); after a lost
    /// race it reads and decides again, so every decision is made on the state it commits on.
    pub async fn decide_and_post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
        extra: &[TransactWriteItem],
        mut decide: impl FnMut(&LoyaltyState) -> Option<LedgerEntry>,
    ) -> Result<Decided, StoreError> {
        for attempt in 1..=LEDGER_ATTEMPTS {
            let state = self.loyalty(m, c).await?;
            let Some(entry) = decide(&state) else {
                return Ok(Decided::Declined(state));
            };
            if state.entry(&entry.source).is_some() {
                return Ok(Decided::Duplicate(state));
            }
            match self.post_ledger(m, c, &state, &entry, now, extra).await? {
                Posted::Done(balance) => return Ok(Decided::Posted { entry, balance }),
                Posted::Duplicate => return Ok(Decided::Duplicate(self.loyalty(m, c).await?)),
                Posted::ExtraRefused(i) => return Ok(Decided::ExtraRefused(i)),
                Posted::Conflict => {
                    tokio::time::sleep(crate::retry::backoff(attempt)).await;
                }
            }
        }
        Ok(Decided::Busy)
    }
}

impl Store {
    /// The code's owner item, written with every order of theirs (the code is deterministic).
    pub fn referral_code_put(
        &self,
        m: &MerchantId,
        owner: &ReferralCodeOwner,
    ) -> Result<TransactWriteItem, StoreError> {
        put(
            &self.table,
            to_item("referral_code", &keys::referral_code(m, &owner.code), owner)?,
            None,
        )
    }

    /// The referee's record, conditioned on being new or this same order's (a replay).
    fn referee_put(
        &self,
        m: &MerchantId,
        referee: &Referee,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = to_item("referee", &keys::referee(m, &referee.email), referee)?;
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR order_id = :o")
            .expression_attribute_values(":o", s(referee.order_id.clone()))
            .build()
            .map_err(build_err("build Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

impl crate::ports::loyalty::LoyaltyLedger for Store {
    async fn ledger(&self, m: &MerchantId, c: &CustomerId) -> Result<LoyaltyState, StoreError> {
        Store::loyalty(self, m, c).await
    }

    async fn has_customer(&self, m: &MerchantId, c: &CustomerId) -> Result<bool, StoreError> {
        Ok(self.get_customer_profile(m, c).await?.is_some())
    }

    async fn referral_code_owner(
        &self,
        m: &MerchantId,
        code: &str,
    ) -> Result<Option<ReferralCodeOwner>, StoreError> {
        self.get_as(
            "GetItem referral code",
            "referral_code",
            &keys::referral_code(m, code),
        )
        .await
    }

    /// One `TransactWriteItems`: the entry (if its source is new), the summary (if still at the
    /// version read) and, for a referral, the referee (new or this order's), the reward's notice
    /// and the order's referrer (if the order exists).
    async fn post(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        read: &LoyaltyState,
        entry: &LedgerEntry,
        now: Timestamp,
        referral: Option<&Referral>,
    ) -> Result<Posting, StoreError> {
        let extra = match referral {
            None => Vec::new(),
            Some(r) => vec![
                self.referee_put(m, &r.referee)?,
                self.loyalty_notice_put(m, &r.notice)?,
                self.order_referred_by(m, &r.order, &r.referee.referrer)?,
            ],
        };
        Ok(
            match self.post_ledger(m, c, read, entry, now, &extra).await? {
                Posted::Done(balance) => Posting::Done(balance),
                Posted::Duplicate => Posting::Duplicate,
                Posted::Conflict => Posting::Stale,
                Posted::ExtraRefused(0) => Posting::AlreadyReferred,
                Posted::ExtraRefused(_) => Posting::OrderGone,
            },
        )
    }
}

impl Store {
    /// Moves a still-pending earn's `available_at` (its return window counted from delivery
    /// instead of the order date), conditioned on the ledger version like every other write,
    /// with the cached balance brought up to date.
    pub async fn rebase_earn(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        source: &str,
        available_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rebased, StoreError> {
        for attempt in 1..=LEDGER_ATTEMPTS {
            let state = self.loyalty(m, c).await?;
            let Some(earn) = state
                .entries
                .iter()
                .find(|e| e.kind == LedgerKind::Earn && e.source == source)
            else {
                return Ok(Rebased::Missing);
            };
            if earn.available_at == Some(available_at) {
                return Ok(Rebased::Unchanged);
            }
            if !earn.is_pending(now) {
                return Ok(Rebased::AlreadyAvailable);
            }
            let after: Vec<LedgerEntry> = state
                .entries
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if e.source == source {
                        e.available_at = Some(available_at);
                    }
                    e
                })
                .collect();
            let update = self
                .tx_update(&keys::ledger(m, c, source))
                .update_expression("SET available_at = :at")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":at", s(available_at.to_string()));
            let items = vec![
                write::update(update)?,
                self.ledger_summary_update(m, c, state.version, balance(&after, now), now)?,
            ];
            match self
                .transact("TransactWriteItems rebase earn", items)
                .await?
            {
                Attempt::Done => return Ok(Rebased::Moved),
                Attempt::Cancelled(codes) if codes_failed(&codes, 0) => {
                    return Ok(Rebased::Missing);
                }
                Attempt::Cancelled(_) => {
                    tokio::time::sleep(crate::retry::backoff(attempt)).await;
                }
            }
        }
        Ok(Rebased::Busy)
    }

    /// Records that points available by `now` were told of (the next marketing email's note).
    /// Never moves backwards; does not touch the version (the balance is unchanged).
    pub async fn note_available(
        &self,
        m: &MerchantId,
        c: &CustomerId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let update = self
            .update_item(&keys::ledger_summary(m, c))
            .update_expression("SET available_noted_at = :now")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(available_noted_at) OR available_noted_at < :now)",
            )
            .expression_attribute_values(":now", s(now.to_string()));
        update_held("UpdateItem note available", update)
            .await
            .map(|_| ())
    }
}

impl LoyaltyNotice {
    /// The item's key: one per referral reward, one expiry item per customer.
    pub fn key(&self, m: &MerchantId) -> keys::Key {
        let what = match (&self.kind, &self.source) {
            (NoticeKind::ReferralReward, Some(source)) => source.as_str(),
            _ => "expiry",
        };
        keys::loyalty_notice(m, &self.customer_id, what)
    }
}

impl Store {
    /// The (unconditional) put that schedules `notice`: a newer schedule replaces an older one.
    pub fn loyalty_notice_put(
        &self,
        m: &MerchantId,
        notice: &LoyaltyNotice,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = notice.key(m);
        put(
            &self.table,
            with_due(
                to_item(NOTICE, &key, notice)?,
                LOYALTY_GROUP,
                notice.due_at,
                &key,
            ),
            None,
        )
    }

    /// Moves a notice to `at` as `kind`, if it is still where the sweep saw it (`seen` DUESK).
    /// False if something moved or replaced it first.
    pub async fn reschedule_notice(
        &self,
        due: &DueToken,
        kind: &NoticeKind,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = keys::due(LOYALTY_GROUP, at, &due.key());
        let update = self
            .update_seen(due, None)
            .update_expression("SET DUEPK = :pk, DUESK = :sk, due_at = :at, kind = :kind")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":sk", s(sk))
            .expression_attribute_values(":at", s(at.to_string()))
            .expression_attribute_values(":kind", s(kind.as_str()));
        update_held("UpdateItem reschedule notice", update).await
    }
}

/// Parses a loyalty notice due item.
pub fn loyalty_notice(item: super::Item) -> Result<LoyaltyNotice, StoreError> {
    from_item(NOTICE, item)
}
