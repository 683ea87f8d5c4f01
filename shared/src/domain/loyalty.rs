//! Loyalty points: what an order earns and when the points become available.

use super::Order;
use super::merchant::LoyaltySettings;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Points an order earns: `points_per_unit` per whole currency unit of merchandise value.
pub fn points_for(order: &Order, settings: &LoyaltySettings) -> u64 {
    if !settings.enabled {
        return 0;
    }
    let whole_units = order.merchandise_value().max(0) / order.currency.minor_per_unit();
    u64::try_from(whole_units)
        .unwrap_or(0)
        .saturating_mul(u64::from(settings.points_per_unit))
}

/// When earned points stop being pending: the return window after `anchor` (delivery when known,
/// else the order date).
pub fn available_at(anchor: Timestamp, settings: &LoyaltySettings) -> Timestamp {
    let window = SignedDuration::from_hours(24 * i64::from(settings.return_window_days));
    anchor.checked_add(window).unwrap_or(anchor)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Earn,
    Redeem,
    Reverse,
    Adjust,
    Expire,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Earn => "earn",
            LedgerKind::Redeem => "redeem",
            LedgerKind::Reverse => "reverse",
            LedgerKind::Adjust => "adjust",
            LedgerKind::Expire => "expire",
        }
    }
}

/// One append-only ledger entry. Balances are derived from entries, never stored mutably alone.
/// An entry's `source` is its identity (one entry per source, written with a condition), so a
/// replayed order, refund or redemption can never post twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: LedgerKind,
    /// Signed: earns positive, redemptions, reversals and expiries negative; adjustments either.
    pub points: i64,
    /// What caused it, e.g. `order:SO-1001`, `referral:<referee>`, `refund:re_1`, `redeem:<key>`.
    pub source: String,
    pub created_at: Timestamp,
    /// For earns: when the points stop being pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
    /// For reversals: the earn (its `source`) they take back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    /// For adjustments (the merchant's reason) and refused or clamped postings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LedgerEntry {
    pub fn earn_for_order(
        order: &Order,
        settings: &LoyaltySettings,
        now: Timestamp,
    ) -> Option<Self> {
        let points = points_for(order, settings);
        (points > 0).then(|| LedgerEntry {
            kind: LedgerKind::Earn,
            points: i64::try_from(points).unwrap_or(i64::MAX),
            source: order_source(order.id.as_str()),
            created_at: now,
            available_at: Some(available_at(order.placed_at, settings)),
            against: None,
            reason: None,
        })
    }

    pub fn is_pending(&self, now: Timestamp) -> bool {
        self.available_at.is_some_and(|at| now < at)
    }
}

/// The ledger source of an order's earn.
pub fn order_source(order_id: &str) -> String {
    format!("order:{order_id}")
}

/// Crockford's base 32: no I, L, O or U, so a code read aloud or typed is unambiguous.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARS: usize = 12;

/// A customer's referral code from a keyed digest of (merchant, customer): 12 characters (60
/// bits) shown as `XXXX-XXXX-XXXX`. Deterministic, so no read is needed to know it, and
/// unguessable without the key.
pub fn referral_code(digest: &[u8]) -> String {
    let mut bits: u64 = 0;
    for b in digest.iter().take(8) {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut out = String::with_capacity(CODE_CHARS + 2);
    for i in 0..CODE_CHARS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let index = (bits >> (59 - 5 * i)) & 31;
        out.push(char::from(
            CODE_ALPHABET[usize::try_from(index).unwrap_or(0)],
        ));
    }
    out
}

/// A code as typed by a person (any case, with or without dashes or spaces, O for 0, I or L for
/// 1) in its canonical form; `None` if it cannot be one.
pub fn normalize_referral_code(input: &str) -> Option<String> {
    let mut chars = String::with_capacity(CODE_CHARS);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) || chars.len() >= CODE_CHARS {
            return None;
        }
        chars.push(c);
    }
    if chars.len() != CODE_CHARS {
        return None;
    }
    let (a, rest) = chars.split_at(4);
    let (b, c) = rest.split_at(4);
    Some(format!("{a}-{b}-{c}"))
}

/// Why an order's referral code earned nobody anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralRefusal {
    /// The merchant has no referral programme (or no loyalty programme).
    ProgrammeOff,
    /// Not a code of this merchant's.
    UnknownCode,
    /// The code's owner placed the order (same customer or same email address).
    SelfReferral,
    /// This customer (by email address) was referred before, by another order.
    AlreadyReferred,
}

impl ReferralRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralRefusal::ProgrammeOff => "programme_off",
            ReferralRefusal::UnknownCode => "unknown_code",
            ReferralRefusal::SelfReferral => "self_referral",
            ReferralRefusal::AlreadyReferred => "already_referred",
        }
    }
}

/// The referrer's reward for `order` (placed by someone they referred): pending until the
/// order's return window closes, like the order's own points.
pub fn referral_reward(
    order: &Order,
    settings: &LoyaltySettings,
    now: Timestamp,
) -> Option<LedgerEntry> {
    (settings.enabled && settings.referral_points > 0).then(|| LedgerEntry {
        kind: LedgerKind::Earn,
        points: i64::from(settings.referral_points),
        source: referral_source(order.id.as_str()),
        created_at: now,
        available_at: Some(available_at(order.placed_at, settings)),
        against: None,
        reason: None,
    })
}

/// The ledger source of a referral reward for the referee's order.
pub fn referral_source(order_id: &str) -> String {
    format!("referral:{order_id}")
}

/// A customer's points, derived from their ledger at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Spendable now: approved earns (net of their reversals) + adjustments − redemptions −
    /// expiries − reversals of nothing in particular.
    pub available: i64,
    /// Earned but inside the return window (net of their reversals).
    pub pending: i64,
    /// Every point ever earned (before reversals).
    pub earned: i64,
    /// Every point redeemed.
    pub redeemed: i64,
}

/// Derives the balance from `entries` at `now`. No sweep "approves" points: an earn counts as
/// pending until its `available_at`, then as available.
pub fn balance(entries: &[LedgerEntry], now: Timestamp) -> Balance {
    let mut b = Balance::default();
    let mut reversed: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for e in entries {
        if e.kind == LedgerKind::Reverse
            && let Some(target) = e.against.as_deref()
            && entries
                .iter()
                .any(|x| x.kind == LedgerKind::Earn && x.source == target)
        {
            *reversed.entry(target).or_default() += -e.points;
        }
    }
    for e in entries {
        match e.kind {
            LedgerKind::Earn => {
                b.earned += e.points;
                let taken = reversed.get(e.source.as_str()).copied().unwrap_or(0);
                let net = e.points - taken;
                if e.is_pending(now) {
                    b.pending += net;
                } else {
                    b.available += net;
                }
            }
            LedgerKind::Reverse => {
                let attached = e
                    .against
                    .as_deref()
                    .is_some_and(|t| reversed.contains_key(t));
                if !attached {
                    b.available += e.points;
                }
            }
            LedgerKind::Redeem => {
                b.redeemed -= e.points;
                b.available += e.points;
            }
            LedgerKind::Adjust | LedgerKind::Expire => b.available += e.points,
        }
    }
    b
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("points must be a positive whole number")]
    NotPositive,
    #[error("only {available} points are available")]
    Insufficient { available: i64 },
}

/// A redemption of `points` keyed by the caller's idempotency key, if the balance allows it now.
pub fn redeem(
    entries: &[LedgerEntry],
    now: Timestamp,
    points: i64,
    key: &str,
) -> Result<LedgerEntry, LedgerError> {
    debit(entries, now, points)?;
    Ok(LedgerEntry {
        kind: LedgerKind::Redeem,
        points: -points,
        source: format!("redeem:{key}"),
        created_at: now,
        available_at: None,
        against: None,
        reason: None,
    })
}

/// A merchant's adjustment: credits always; debits only what is available.
pub fn adjust(
    entries: &[LedgerEntry],
    now: Timestamp,
    points: i64,
    reason: &str,
    key: &str,
) -> Result<LedgerEntry, LedgerError> {
    if points == 0 {
        return Err(LedgerError::NotPositive);
    }
    if points < 0 {
        debit(entries, now, -points)?;
    }
    Ok(LedgerEntry {
        kind: LedgerKind::Adjust,
        points,
        source: format!("adjust:{key}"),
        created_at: now,
        available_at: None,
        against: None,
        reason: Some(reason.to_owned()),
    })
}

fn debit(entries: &[LedgerEntry], now: Timestamp, points: i64) -> Result<(), LedgerError> {
    if points <= 0 {
        return Err(LedgerError::NotPositive);
    }
    let available = balance(entries, now).available;
    if points > available {
        return Err(LedgerError::Insufficient { available });
    }
    Ok(())
}

/// A reversal of up to `requested` points of the earn `against` (a refund or return). It takes
/// back what is left of that earn: while the earn is pending, from pending; once available, never
/// more than is still available (points already spent stay spent), so the balance never goes
/// below zero. `None` when there is nothing to take back.
pub fn reverse(
    entries: &[LedgerEntry],
    now: Timestamp,
    against: &str,
    requested: i64,
    source: String,
) -> Option<LedgerEntry> {
    let earn = entries
        .iter()
        .find(|e| e.kind == LedgerKind::Earn && e.source == against)?;
    let taken: i64 = entries
        .iter()
        .filter(|e| e.kind == LedgerKind::Reverse && e.against.as_deref() == Some(against))
        .map(|e| -e.points)
        .sum();
    let mut points = requested.min(earn.points - taken);
    if !earn.is_pending(now) {
        points = points.min(balance(entries, now).available);
    }
    let clamped = points < requested;
    (points > 0).then(|| LedgerEntry {
        kind: LedgerKind::Reverse,
        points: -points,
        source,
        created_at: now,
        available_at: None,
        against: Some(against.to_owned()),
        reason: clamped.then(|| format!("{requested} requested, {points} left to take back")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::tests::sample;
    use crate::domain::validation::from_value;
    use proptest::prelude::*;

    fn order(total_items: i64, currency: &str) -> Order {
        let mut v = sample();
        v["currency"] = currency.into();
        v["items"] = serde_json::json!([{"sku": "A", "name": "A", "quantity": 1, "unit_price": total_items}]);
        v["discount"] = 0.into();
        v["shipping"] = 0.into();
        v["total"] = total_items.into();
        from_value::<crate::domain::OrderInput>(v)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn one_point_per_whole_unit_by_default() {
        let s = LoyaltySettings::default();
        assert_eq!(points_for(&order(20_899, "EUR"), &s), 208);
        assert_eq!(points_for(&order(1_500, "JPY"), &s), 1500);
        assert_eq!(points_for(&order(99, "USD"), &s), 0);
        let off = LoyaltySettings {
            enabled: false,
            ..s.clone()
        };
        assert_eq!(points_for(&order(20_899, "EUR"), &off), 0);
        assert!(
            LedgerEntry::earn_for_order(&order(99, "USD"), &s, Timestamp::UNIX_EPOCH).is_none()
        );
    }

    #[test]
    fn earn_is_pending_through_the_return_window() {
        let s = LoyaltySettings::default();
        let o = order(5_000, "EUR");
        let e = LedgerEntry::earn_for_order(&o, &s, o.placed_at).unwrap();
        let day = SignedDuration::from_hours(24);
        assert!(e.is_pending(o.placed_at.checked_add(day * 29).unwrap()));
        assert!(!e.is_pending(o.placed_at.checked_add(day * 30).unwrap()));
    }

    fn at(days: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH
            .checked_add(SignedDuration::from_hours(24 * days))
            .unwrap()
    }

    fn earn(source: &str, points: i64, available_day: i64) -> LedgerEntry {
        LedgerEntry {
            kind: LedgerKind::Earn,
            points,
            source: source.into(),
            created_at: at(0),
            available_at: Some(at(available_day)),
            against: None,
            reason: None,
        }
    }

    #[test]
    fn pending_becomes_available_without_a_sweep_and_reversals_follow_their_earn() {
        let mut l = vec![earn("order:A", 100, 30), earn("order:B", 50, 10)];
        assert_eq!(
            balance(&l, at(5)),
            Balance {
                available: 0,
                pending: 150,
                earned: 150,
                redeemed: 0
            }
        );
        assert_eq!(balance(&l, at(10)).available, 50);
        // A refund of A while it is pending takes from pending only.
        l.push(reverse(&l, at(11), "order:A", 40, "refund:r1".into()).unwrap());
        assert_eq!(
            (balance(&l, at(11)).available, balance(&l, at(11)).pending),
            (50, 60)
        );
        // Spend B's points, then refund B: what was spent stays spent, nothing goes negative.
        l.push(redeem(&l, at(12), 30, "k1").unwrap());
        let r = reverse(&l, at(13), "order:B", 50, "refund:r2".into()).unwrap();
        assert_eq!(r.points, -20);
        assert!(r.reason.is_some());
        l.push(r);
        assert_eq!(balance(&l, at(13)).available, 0);
        assert_eq!(reverse(&l, at(13), "order:B", 1, "refund:r3".into()), None);
        assert_eq!(
            redeem(&l, at(13), 1, "k2"),
            Err(LedgerError::Insufficient { available: 0 })
        );
        assert_eq!(balance(&l, at(30)).available, 60);
        assert_eq!(redeem(&l, at(30), 0, "k3"), Err(LedgerError::NotPositive));
        assert!(adjust(&l, at(30), -61, "typo", "a1").is_err());
        let credit = adjust(&l, at(30), 15, "goodwill", "a2").unwrap();
        l.push(credit);
        assert_eq!(balance(&l, at(30)).available, 75);
    }

    #[test]
    fn referral_codes_are_short_canonical_and_forgiving_to_type() {
        let code = referral_code(&[0xAB; 32]);
        assert_eq!(code.len(), 14);
        assert_eq!(
            normalize_referral_code(&code).as_deref(),
            Some(code.as_str())
        );
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(
            normalize_referral_code(&typed).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalize_referral_code("oooo-iiii-llll").as_deref(),
            Some("0000-1111-1111")
        );
        for bad in [
            "",
            "ABCD-EFGH",
            "ABCD-EFGH-JKMN-P",
            "ABCD-EFGH-JKMU",
            "ÄBCD-EFGH-JKMN",
        ] {
            assert_eq!(normalize_referral_code(bad), None, "{bad}");
        }
        assert_ne!(referral_code(&[1; 32]), referral_code(&[2; 32]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Earn(i64, i64),
        Redeem(i64),
        Reverse(usize, i64),
        Adjust(i64),
        Wait(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..500, 0i64..40).prop_map(|(p, d)| Op::Earn(p, d)),
            (1i64..400).prop_map(Op::Redeem),
            (0usize..8, 1i64..600).prop_map(|(i, p)| Op::Reverse(i, p)),
            (-300i64..300).prop_map(Op::Adjust),
            (0i64..20).prop_map(Op::Wait),
        ]
    }

    proptest! {
        #[test]
        fn any_interleaving_keeps_available_non_negative_and_equal_to_the_ledger(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            let mut l: Vec<LedgerEntry> = Vec::new();
            let mut day = 0i64;
            let mut earns = 0usize;
            for (n, op) in ops.into_iter().enumerate() {
                let now = at(day);
                let posted = match op {
                    Op::Earn(p, d) => {
                        earns += 1;
                        Some(earn(&format!("order:{earns}"), p, day + d))
                    }
                    Op::Redeem(p) => redeem(&l, now, p, &n.to_string()).ok(),
                    Op::Reverse(i, p) => reverse(&l, now, &format!("order:{}", i % (earns + 1)), p, format!("refund:{n}")),
                    Op::Adjust(p) => adjust(&l, now, p, "test", &n.to_string()).ok(),
                    Op::Wait(d) => { day += d; None }
                };
                l.extend(posted);
                for probe in [at(day), at(day + 100)] {
                    let b = balance(&l, probe);
                    prop_assert!(b.available >= 0, "{b:?} {l:?}");
                    prop_assert!(b.pending >= 0, "{b:?}");
                    prop_assert_eq!(b.available + b.pending, l.iter().map(|e| e.points).sum::<i64>());
                }
            }
        }

        #[test]
        fn points_scale_linearly(cents in 0i64..1_000_000_000, per in 0u32..100) {
            let s = LoyaltySettings { points_per_unit: per, ..LoyaltySettings::default() };
            prop_assert_eq!(points_for(&order(cents, "EUR"), &s), (cents / 100) as u64 * per as u64);
        }
    }
}
