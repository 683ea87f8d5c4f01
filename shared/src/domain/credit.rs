//! Store credit: money (in minor units of one currency) the merchant owes a customer, given when
//! a return is resolved as store credit (with an optional bonus) and spent at the merchant's
//! checkout. A ledger beside the loyalty points ledger, with the same rules:
//!
//! * entries are append-only, one per **source** (an issue's return, a redemption's or an
//!   adjustment's idempotency key), so a replay can never post twice;
//! * each currency has a **summary** (balance, issued, redeemed, version) written in the same
//!   transaction as every entry of that currency, conditioned on the version the decision was made
//!   on, so concurrent debits serialise and the balance is never overdrawn;
//! * every decision here is a pure function of the summary as read.
//!
//! An issue with a bonus is **one** entry (kind `issued`) whose `amount` is the whole credit given
//! (base + bonus) and whose `bonus` says how much of it was the bonus: one write, one source, one
//! line on the customer's statement, and the balance is always the sum of the entries' `amount`.

use super::money::MAX_AMOUNT;
use super::{Currency, FieldError, Money};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How often a posting reads again and decides again after losing a race, before it answers
/// that the ledger is busy.
pub const CREDIT_ATTEMPTS: u32 = 10;
/// The longest source, idempotency key, note or reason accepted.
pub const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditKind {
    /// Credit given (a return resolved as store credit), bonus included.
    Issued,
    /// Credit spent at checkout.
    Redeemed,
    /// The merchant's correction, either way.
    Adjusted,
}

impl CreditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditKind::Issued => "issued",
            CreditKind::Redeemed => "redeemed",
            CreditKind::Adjusted => "adjusted",
        }
    }
}

/// One append-only entry of a customer's store credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditEntry {
    pub kind: CreditKind,
    /// Its identity on the ledger: `issue:<source>`, `redeem:<key>` or `adjust:<key>`.
    pub source: String,
    pub currency: Currency,
    /// Signed, in minor units: what the entry did to the balance (an issue's bonus included).
    pub amount: i64,
    /// For an issue: the part of `amount` that is the bonus (0 otherwise).
    #[serde(default)]
    pub bonus: i64,
    /// The currency's balance right after this entry.
    pub balance_after: i64,
    pub at: Timestamp,
    /// What it refers to: the return (an issue's source) or the request's idempotency key.
    pub reference: String,
    /// An issue's note, an adjustment's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a redemption: the order it paid for, if the shop said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// For a redemption or an adjustment: the digest of the request, so a replay with another
    /// payload under the same key is told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
}

impl CreditEntry {
    pub fn money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
}

/// A customer's credit in one currency as of its last entry; `version` 0 means no entry yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditSummary {
    pub currency: Currency,
    /// What can be spent now (never negative).
    pub balance: i64,
    /// Every credit issued (bonuses included).
    pub issued: i64,
    /// Every credit redeemed.
    pub redeemed: i64,
    /// Moves on by one with every entry: what a posting is conditioned on.
    pub version: u64,
}

impl CreditSummary {
    /// The summary of a currency with no entry yet.
    pub fn empty(currency: Currency) -> Self {
        Self {
            currency,
            balance: 0,
            issued: 0,
            redeemed: 0,
            version: 0,
        }
    }

    /// The summary after `entry` (its version moved on by one).
    pub fn after(&self, entry: &CreditEntry) -> Self {
        let mut next = *self;
        next.balance += entry.amount;
        match entry.kind {
            CreditKind::Issued => next.issued += entry.amount,
            CreditKind::Redeemed => next.redeemed -= entry.amount,
            CreditKind::Adjusted => {}
        }
        next.version += 1;
        next
    }
}

/// Why a posting was refused on the balance as read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditRefusal {
    /// The request's amount, bonus, key or text is out of bounds (the field is named).
    #[error(transparent)]
    Invalid(FieldError),
    /// A debit larger than the balance.
    #[error("only {available} (minor units) of store credit is available")]
    Insufficient { available: i64 },
}

/// The ledger source of an issue for `source` (e.g. `return-<id>`).
pub fn issue_source(source: &str) -> String {
    format!("issue:{source}")
}

/// The ledger source of a redemption keyed by `key`.
pub fn redeem_source(key: &str) -> String {
    format!("redeem:{key}")
}

/// The ledger source of an adjustment keyed by `key`.
pub fn adjust_source(key: &str) -> String {
    format!("adjust:{key}")
}

/// A source or key: 1 to 200 printable ASCII characters without `#` (it ends a sort key).
pub fn valid_key(field: &str, key: &str) -> Result<(), FieldError> {
    if !key.is_empty()
        && key.len() <= MAX_TEXT
        && key.chars().all(|c| c.is_ascii_graphic() && c != '#')
    {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be 1 to 200 printable characters, no '#' or spaces"),
        ))
    }
}

/// A note or reason: trimmed, 1 to 200 characters, one line.
fn one_line(field: &str, text: &str) -> Result<String, FieldError> {
    let t = text.trim();
    if !t.is_empty() && t.chars().count() <= MAX_TEXT && !t.chars().any(char::is_control) {
        Ok(t.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be 1 to 200 characters on one line"),
        ))
    }
}

fn out_of_range(field: &str, message: &str) -> CreditRefusal {
    CreditRefusal::Invalid(FieldError::new(field, "out_of_range", message))
}

/// Credit `amount` + `bonus` issued for `source` (a return), on the summary as read.
pub fn issue(
    read: &CreditSummary,
    source: &str,
    amount: Money,
    bonus: i64,
    note: Option<&str>,
    now: Timestamp,
) -> Result<CreditEntry, CreditRefusal> {
    valid_key("source", source).map_err(CreditRefusal::Invalid)?;
    if amount.amount <= 0 || amount.amount > MAX_AMOUNT {
        return Err(out_of_range(
            "amount",
            "amount must be 1 to 10^13 minor units",
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&bonus) {
        return Err(out_of_range(
            "bonus",
            "bonus must be 0 to 10^13 minor units",
        ));
    }
    let note = note
        .map(|n| one_line("note", n))
        .transpose()
        .map_err(CreditRefusal::Invalid)?;
    let total = amount.amount + bonus;
    Ok(CreditEntry {
        kind: CreditKind::Issued,
        source: issue_source(source),
        currency: amount.currency,
        amount: total,
        bonus,
        balance_after: read.balance.saturating_add(total),
        at: now,
        reference: source.to_owned(),
        note,
        order_id: None,
        request_hash: None,
    })
}

/// A redemption of `amount` keyed by `key`, if the balance as read covers it.
pub fn redeem(
    read: &CreditSummary,
    key: &str,
    amount: i64,
    order_id: Option<&str>,
    request_hash: &str,
    now: Timestamp,
) -> Result<CreditEntry, CreditRefusal> {
    valid_key("Idempotency-Key", key).map_err(CreditRefusal::Invalid)?;
    if amount <= 0 || amount > MAX_AMOUNT {
        return Err(out_of_range(
            "amount",
            "amount must be 1 to 10^13 minor units",
        ));
    }
    let order_id = order_id
        .map(|o| valid_key("order_id", o).map(|()| o.to_owned()))
        .transpose()
        .map_err(CreditRefusal::Invalid)?;
    debit(read, amount)?;
    Ok(CreditEntry {
        kind: CreditKind::Redeemed,
        source: redeem_source(key),
        currency: read.currency,
        amount: -amount,
        bonus: 0,
        balance_after: read.balance - amount,
        at: now,
        reference: key.to_owned(),
        note: None,
        order_id,
        request_hash: Some(request_hash.to_owned()),
    })
}

/// The merchant's correction of `amount` (either way, never below zero) keyed by `key`.
pub fn adjust(
    read: &CreditSummary,
    key: &str,
    amount: i64,
    reason: &str,
    request_hash: &str,
    now: Timestamp,
) -> Result<CreditEntry, CreditRefusal> {
    valid_key("Idempotency-Key", key).map_err(CreditRefusal::Invalid)?;
    if amount == 0 || amount.unsigned_abs() > MAX_AMOUNT.unsigned_abs() {
        return Err(out_of_range(
            "amount",
            "amount must be non-zero and at most 10^13 minor units either way",
        ));
    }
    let reason = one_line("reason", reason).map_err(CreditRefusal::Invalid)?;
    if amount < 0 {
        debit(read, -amount)?;
    }
    Ok(CreditEntry {
        kind: CreditKind::Adjusted,
        source: adjust_source(key),
        currency: read.currency,
        amount,
        bonus: 0,
        balance_after: read.balance + amount,
        at: now,
        reference: key.to_owned(),
        note: Some(reason),
        order_id: None,
        request_hash: Some(request_hash.to_owned()),
    })
}

fn debit(read: &CreditSummary, amount: i64) -> Result<(), CreditRefusal> {
    if amount > read.balance {
        return Err(CreditRefusal::Insufficient {
            available: read.balance,
        });
    }
    Ok(())
}

/// The digest of a request's payload (its fields in a fixed order): what tells a replay from
/// another request under the same idempotency key.
pub fn request_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// What a posting of one entry became, conditioned on the summary's version as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditPosting {
    /// Posted; the summary right after it.
    Done(CreditSummary),
    /// An entry with this source is on the ledger already (a replay); nothing was written.
    Duplicate,
    /// The currency's summary moved on since it was read; nothing was written.
    Stale,
}

/// What one decision reads: the currency's summary and the entry of the request's source, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRead {
    pub summary: CreditSummary,
    pub existing: Option<CreditEntry>,
}

/// A customer's whole store credit: every currency's summary and every entry (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditStatement {
    pub summaries: Vec<CreditSummary>,
    pub entries: Vec<CreditEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur() -> Currency {
        Currency::parse("c", "EUR").unwrap()
    }

    fn now() -> Timestamp {
        "2026-12-04T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_issue_is_one_entry_with_its_bonus_and_the_balance_after() {
        let s = CreditSummary::empty(eur());
        let e = issue(
            &s,
            "return-r1",
            Money::new(5_000, eur()),
            500,
            Some(" 10% bonus "),
            now(),
        )
        .unwrap();
        assert_eq!(
            (e.kind, e.amount, e.bonus, e.balance_after),
            (CreditKind::Issued, 5_500, 500, 5_500)
        );
        assert_eq!(
            (e.source.as_str(), e.reference.as_str()),
            ("issue:return-r1", "return-r1")
        );
        assert_eq!(e.note.as_deref(), Some("10% bonus"));
        let after = s.after(&e);
        assert_eq!(
            (after.balance, after.issued, after.redeemed, after.version),
            (5_500, 5_500, 0, 1)
        );
    }

    #[test]
    fn an_issue_out_of_bounds_is_refused_naming_the_field() {
        let s = CreditSummary::empty(eur());
        let field = |r: Result<CreditEntry, CreditRefusal>| match r {
            Err(CreditRefusal::Invalid(f)) => f.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(issue(&s, "r", Money::new(0, eur()), 0, None, now())),
            "amount"
        );
        assert_eq!(
            field(issue(&s, "r", Money::new(-1, eur()), 0, None, now())),
            "amount"
        );
        assert_eq!(
            field(issue(&s, "r", Money::new(1, eur()), -1, None, now())),
            "bonus"
        );
        assert_eq!(
            field(issue(&s, "a#b", Money::new(1, eur()), 0, None, now())),
            "source"
        );
        assert_eq!(
            field(issue(&s, "", Money::new(1, eur()), 0, None, now())),
            "source"
        );
        assert_eq!(
            field(issue(&s, "r", Money::new(1, eur()), 0, Some("a\nb"), now())),
            "note"
        );
    }

    #[test]
    fn a_redemption_never_overdraws_and_names_what_is_available() {
        let s = CreditSummary {
            balance: 1_000,
            issued: 1_000,
            version: 1,
            ..CreditSummary::empty(eur())
        };
        let e = redeem(&s, "k1", 400, Some("SO-1"), "h", now()).unwrap();
        assert_eq!(
            (e.amount, e.balance_after, e.source.as_str()),
            (-400, 600, "redeem:k1")
        );
        let after = s.after(&e);
        assert_eq!(
            (after.balance, after.redeemed, after.version),
            (600, 400, 2)
        );
        assert_eq!(
            redeem(&after, "k2", 601, None, "h", now()),
            Err(CreditRefusal::Insufficient { available: 600 })
        );
        assert!(
            redeem(&after, "k2", 600, None, "h", now()).is_ok(),
            "the whole balance"
        );
        assert!(
            matches!(redeem(&after, "k2", 0, None, "h", now()), Err(CreditRefusal::Invalid(f)) if f.field == "amount")
        );
        assert!(
            matches!(redeem(&after, "k 2", 1, None, "h", now()), Err(CreditRefusal::Invalid(f)) if f.field == "Idempotency-Key")
        );
    }

    #[test]
    fn an_adjustment_goes_either_way_never_below_zero_and_needs_a_reason() {
        let s = CreditSummary {
            balance: 300,
            issued: 300,
            version: 1,
            ..CreditSummary::empty(eur())
        };
        let up = adjust(&s, "a1", 200, " goodwill ", "h", now()).unwrap();
        assert_eq!(
            (up.amount, up.balance_after, up.note.as_deref()),
            (200, 500, Some("goodwill"))
        );
        let s = s.after(&up);
        assert_eq!(
            (s.balance, s.issued),
            (500, 300),
            "an adjustment is not an issue"
        );
        assert_eq!(
            adjust(&s, "a2", -500, "typo", "h", now())
                .unwrap()
                .balance_after,
            0
        );
        assert_eq!(
            adjust(&s, "a2", -501, "typo", "h", now()),
            Err(CreditRefusal::Insufficient { available: 500 })
        );
        assert!(
            matches!(adjust(&s, "a2", 5, "  ", "h", now()), Err(CreditRefusal::Invalid(f)) if f.field == "reason")
        );
        assert!(
            matches!(adjust(&s, "a2", 0, "x", "h", now()), Err(CreditRefusal::Invalid(f)) if f.field == "amount")
        );
    }

    #[test]
    fn request_hashes_tell_payloads_apart() {
        assert_eq!(request_hash(&["EUR", "5"]), request_hash(&["EUR", "5"]));
        assert_ne!(request_hash(&["EUR", "5"]), request_hash(&["EUR", "50"]));
        assert_ne!(request_hash(&["EU", "R5"]), request_hash(&["EUR", "5"]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Issue(i64, i64),
        Redeem(i64),
        Adjust(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..5_000, 0i64..500).prop_map(|(a, b)| Op::Issue(a, b)),
            (1i64..4_000).prop_map(Op::Redeem),
            (-3_000i64..3_000).prop_map(Op::Adjust),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_the_balance_non_negative_and_equal_to_the_entries(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let mut s = CreditSummary::empty(eur());
            let mut entries: Vec<CreditEntry> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                let key = n.to_string();
                let posted = match op {
                    Op::Issue(a, b) => issue(&s, &key, Money::new(a, eur()), b, None, now()).ok(),
                    Op::Redeem(a) => redeem(&s, &key, a, None, "h", now()).ok(),
                    Op::Adjust(a) => adjust(&s, &key, a, "r", "h", now()).ok(),
                };
                if let Some(e) = posted {
                    s = s.after(&e);
                    prop_assert_eq!(e.balance_after, s.balance);
                    entries.push(e);
                }
                prop_assert!(s.balance >= 0);
                prop_assert_eq!(s.balance, entries.iter().map(|e| e.amount).sum::<i64>());
                prop_assert_eq!(s.version, entries.len() as u64);
            }
        }
    }
}
