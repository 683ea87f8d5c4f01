//! Loyalty points: what an order earns and when the points become available, the ledger and the
//! balance derived from it, tiers, expiry and referral codes.

use super::{CustomerId, Order, OrderId};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

/// Days before expiry that the customer is told.
pub const EXPIRY_NOTICE_DAYS: i64 = 14;
const MAX_TIERS: usize = 10;

/// One tier of a merchant's programme: reached at `threshold` (points or whole currency units,
/// by the programme's [`TierBasis`]) over a calendar year; orders placed in it earn
/// `multiplier_percent` / 100 times the points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub threshold: u64,
    #[serde(default = "par")]
    pub multiplier_percent: u32,
}

fn par() -> u32 {
    100
}

/// What tier thresholds count over the calendar year (in the merchant's time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierBasis {
    /// Points earned (orders and referrals), net of reversals.
    #[default]
    Points,
    /// Merchandise value of orders in whole currency units, net of refunds (pro rata).
    Spend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoyaltySettings {
    pub enabled: bool,
    /// Points per whole currency unit of the order's merchandise value.
    pub points_per_unit: u32,
    /// Days after delivery (else after the order) before earned points become available.
    pub return_window_days: u32,
    /// Points a customer earns when someone they referred places an order (pending until that
    /// order's return window closes); 0 turns referrals off.
    pub referral_points: u32,
    /// Months after a customer's last order when their available points expire (a notice goes
    /// out 14 days before); 0: points never expire.
    pub expire_after_months: u32,
    /// Tiers by what a customer qualifies with over the calendar year, lowest threshold first;
    /// none: no tiers.
    pub tiers: Vec<Tier>,
    /// What tier thresholds count.
    pub tier_basis: TierBasis,
}

impl Default for LoyaltySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            points_per_unit: 1,
            return_window_days: 30,
            referral_points: 500,
            expire_after_months: 0,
            tiers: Vec::new(),
            tier_basis: TierBasis::Points,
        }
    }
}

impl LoyaltySettings {
    /// The settings' own rules: `Err((field, message))` on the first one broken.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let out = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
        if self.points_per_unit > 1000 {
            return out(
                "settings.loyalty.points_per_unit",
                "points_per_unit must be at most 1000",
            );
        }
        if self.return_window_days > 365 {
            return out(
                "settings.loyalty.return_window_days",
                "return_window_days must be at most 365",
            );
        }
        if self.expire_after_months > 120 {
            return out(
                "settings.loyalty.expire_after_months",
                "expire_after_months must be at most 120 (0: points never expire)",
            );
        }
        if self.tiers.len() > MAX_TIERS {
            return out("settings.loyalty.tiers", "at most 10 tiers");
        }
        let mut previous: Option<u64> = None;
        for (i, tier) in self.tiers.iter().enumerate() {
            let name = tier.name.trim();
            if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
                return out(
                    &format!("settings.loyalty.tiers[{i}].name"),
                    "a tier name is 1 to 40 printable characters",
                );
            }
            if previous.is_some_and(|p| tier.threshold <= p) {
                return out(
                    &format!("settings.loyalty.tiers[{i}].threshold"),
                    "tier thresholds must rise strictly, lowest first",
                );
            }
            if !(100..=1000).contains(&tier.multiplier_percent) {
                return out(
                    &format!("settings.loyalty.tiers[{i}].multiplier_percent"),
                    "multiplier_percent must be 100 (×1) to 1000 (×10)",
                );
            }
            previous = Some(tier.threshold);
        }
        Ok(())
    }
}

/// Points an order earns at ×1: `points_per_unit` per whole currency unit of merchandise value.
pub fn points_for(order: &Order, settings: &LoyaltySettings) -> u64 {
    if !settings.enabled {
        return 0;
    }
    u64::try_from(whole_units(order))
        .unwrap_or(0)
        .saturating_mul(u64::from(settings.points_per_unit))
}

/// The order's merchandise value in whole units of its currency.
fn whole_units(order: &Order) -> i64 {
    order.merchandise_value().max(0) / order.currency.minor_per_unit()
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
    /// For adjustments (the merchant's reason), tier bonuses and clamped postings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For order earns: the merchandise value in whole currency units (what spend tiers count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<i64>,
}

impl LedgerEntry {
    /// The order's earn, `tier` multiplying it (the tier the customer was in when they ordered).
    pub fn earn_for_order(
        order: &Order,
        settings: &LoyaltySettings,
        tier: Option<&Tier>,
        now: Timestamp,
    ) -> Option<Self> {
        let base = points_for(order, settings);
        let percent = tier.map_or(100, |t| t.multiplier_percent);
        let points = base.saturating_mul(u64::from(percent)) / 100;
        (points > 0).then(|| LedgerEntry {
            kind: LedgerKind::Earn,
            points: i64::try_from(points).unwrap_or(i64::MAX),
            source: order_source(order.id.as_str()),
            created_at: now,
            available_at: Some(available_at(order.placed_at, settings)),
            against: None,
            reason: tier
                .filter(|t| t.multiplier_percent != 100)
                .map(|t| format!("{} tier: {base} points ×{}", t.name, multiplier(t))),
            spend: Some(whole_units(order)),
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
    /// The order has no email address, so whether its customer was referred before cannot be
    /// told: no reward.
    NoAddress,
}

impl ReferralRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralRefusal::ProgrammeOff => "programme_off",
            ReferralRefusal::UnknownCode => "unknown_code",
            ReferralRefusal::SelfReferral => "self_referral",
            ReferralRefusal::AlreadyReferred => "already_referred",
            ReferralRefusal::NoAddress => "no_address",
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
        spend: None,
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
        spend: None,
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
        spend: None,
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
        spend: None,
    })
}

/// How much of each earn is left after the reversals against it, by earn source.
fn reversed(entries: &[LedgerEntry]) -> std::collections::HashMap<&str, i64> {
    let mut out: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for e in entries {
        if e.kind == LedgerKind::Reverse
            && let Some(target) = e.against.as_deref()
        {
            *out.entry(target).or_default() += -e.points;
        }
    }
    out
}

/// An earn's points net of the reversals against it.
pub fn net_points(entries: &[LedgerEntry], earn: &LedgerEntry) -> i64 {
    earn.points
        - reversed(entries)
            .get(earn.source.as_str())
            .copied()
            .unwrap_or(0)
}

/// A multiplier as people read it: `1.5`, `2`.
pub fn multiplier(tier: &Tier) -> String {
    let (whole, part) = (tier.multiplier_percent / 100, tier.multiplier_percent % 100);
    match part {
        0 => whole.to_string(),
        p if p % 10 == 0 => format!("{whole}.{}", p / 10),
        p => format!("{whole}.{p:02}"),
    }
}

/// Where a customer stands in the merchant's tiers this calendar year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierStatus {
    /// The tier reached (none: below the first threshold).
    pub current: Option<Tier>,
    pub basis: TierBasis,
    /// The calendar year counted.
    pub year: i16,
    /// What the customer has towards the thresholds this year.
    pub qualifying: i64,
    /// The next tier and how much more it takes.
    pub next: Option<(Tier, i64)>,
}

/// The customer's tier at `now` from the earns dated in the calendar year of `now` in `tz`;
/// `None` when the programme has no tiers.
pub fn tier_status(
    entries: &[LedgerEntry],
    settings: &LoyaltySettings,
    now: Timestamp,
    tz: &TimeZone,
) -> Option<TierStatus> {
    if !settings.enabled || settings.tiers.is_empty() {
        return None;
    }
    let year = now.to_zoned(tz.clone()).year();
    let taken = reversed(entries);
    let qualifying: i64 = entries
        .iter()
        .filter(|e| e.kind == LedgerKind::Earn && e.created_at.to_zoned(tz.clone()).year() == year)
        .map(|e| {
            let net = e.points - taken.get(e.source.as_str()).copied().unwrap_or(0);
            match settings.tier_basis {
                TierBasis::Points => net,
                // Refunds take back spend in the proportion they take back points.
                TierBasis::Spend => match e.spend {
                    Some(spend) if e.points > 0 => spend.saturating_mul(net.max(0)) / e.points,
                    _ => 0,
                },
            }
        })
        .sum();
    let reached = |t: &&Tier| i64::try_from(t.threshold).unwrap_or(i64::MAX) <= qualifying;
    let current = settings.tiers.iter().rev().find(reached).cloned();
    let next = settings.tiers.iter().find(|t| !reached(t)).map(|t| {
        let needed = i64::try_from(t.threshold).unwrap_or(i64::MAX) - qualifying;
        (t.clone(), needed)
    });
    Some(TierStatus {
        current,
        basis: settings.tier_basis,
        year,
        qualifying,
        next,
    })
}

/// When the points of a customer whose last order was at `last_order` expire; `None` if they
/// never do.
pub fn expires_at(last_order: Timestamp, settings: &LoyaltySettings) -> Option<Timestamp> {
    if !settings.enabled || settings.expire_after_months == 0 {
        return None;
    }
    let months = Span::new().months(i64::from(settings.expire_after_months));
    last_order
        .to_zoned(TimeZone::UTC)
        .checked_add(months)
        .ok()
        .map(|z| z.timestamp())
}

/// When the customer is told their points expire at `expires`.
pub fn expiry_notice_at(expires: Timestamp) -> Timestamp {
    expires
        .checked_sub(SignedDuration::from_hours(24 * EXPIRY_NOTICE_DAYS))
        .unwrap_or(expires)
}

/// The ledger source of the expiry that follows the last order at `last_order`: one per
/// inactivity period, so a replayed sweep cannot expire twice.
pub fn expiry_source(last_order: Timestamp) -> String {
    format!("expire:{}", last_order.as_second())
}

/// The expiry of everything available at `now`; `None` if nothing is.
pub fn expire(entries: &[LedgerEntry], now: Timestamp, source: String) -> Option<LedgerEntry> {
    let available = balance(entries, now).available;
    (available > 0).then(|| LedgerEntry {
        kind: LedgerKind::Expire,
        points: -available,
        source,
        created_at: now,
        available_at: None,
        against: None,
        reason: Some("no order within the expiry period".into()),
        spend: None,
    })
}

/// Points (net of reversals) that became available after `since` and by `now`: what the next
/// marketing email tells the customer about.
pub fn newly_available(entries: &[LedgerEntry], since: Option<Timestamp>, now: Timestamp) -> i64 {
    let taken = reversed(entries);
    entries
        .iter()
        .filter(|e| e.kind == LedgerKind::Earn)
        .filter(|e| {
            e.available_at
                .is_some_and(|at| at <= now && since.is_none_or(|s| at > s))
        })
        .map(|e| e.points - taken.get(e.source.as_str()).copied().unwrap_or(0))
        .filter(|net| *net > 0)
        .sum()
}

/// A customer's ledger as read in one consistent Query.
#[derive(Debug, Clone, Default)]
pub struct LoyaltyState {
    pub entries: Vec<LedgerEntry>,
    /// The summary's version (0: never written).
    pub version: u64,
    /// Points that became available by this instant were told of in a marketing email.
    pub noted_through: Option<Timestamp>,
}

impl LoyaltyState {
    pub fn entry(&self, source: &str) -> Option<&LedgerEntry> {
        self.entries.iter().find(|e| e.source == source)
    }
}

/// Who owns a referral code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralCodeOwner {
    pub code: String,
    pub customer_id: CustomerId,
    pub email: String,
}

/// What a loyalty notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The referral reward `source` on the customer's ledger becomes available: tell them.
    ReferralReward,
    /// Their points expire 14 days from now (if they have any): tell them.
    ExpiryNotice,
    /// Their points expire now: post the expiry.
    Expiry,
}

impl NoticeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::ReferralReward => "referral_reward",
            NoticeKind::ExpiryNotice => "expiry_notice",
            NoticeKind::Expiry => "expiry",
        }
    }
}

/// A scheduled loyalty notice, in the `loyalty` group of the due index. The sweep re-derives
/// everything from the ledger and profile when it comes due, so a notice scheduled on a state
/// that changed since (a later delivery, a newer order) is moved, not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyNotice {
    pub customer_id: CustomerId,
    pub kind: NoticeKind,
    /// For referral rewards: the reward's ledger source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub due_at: Timestamp,
}

/// What moving an earn's return window did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebased {
    /// The earn now becomes available at the new instant.
    Moved,
    /// It already did.
    Unchanged,
    /// The earn is available already (its window closed before the new anchor was known):
    /// points a customer could have spent are never taken back into pending.
    AlreadyAvailable,
    /// No such earn (nothing was earned, or it was erased).
    Missing,
    Busy,
}

/// How often a ledger write reads again and decides again after losing a race.
pub const LEDGER_ATTEMPTS: u32 = 10;

/// One referee (by email address), the order that referred them and who referred them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referee {
    pub email: String,
    pub order_id: String,
    pub referrer: CustomerId,
    pub created_at: Timestamp,
}

/// What a referral writes with the referrer's reward, all in one transaction: the referee (new,
/// or this same order's on a replay), the reward's notice (told when it becomes available) and
/// the order's note of its referrer (so delivery can move the reward's window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub referee: Referee,
    pub notice: LoyaltyNotice,
    pub order: OrderId,
}

/// What became of one posting on a ledger, conditioned on the ledger being still as it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posting {
    /// Posted; the balance right after it.
    Done(Balance),
    /// An entry with this source is on the ledger already (a replay); nothing was written.
    Duplicate,
    /// Someone else wrote the ledger since it was read; nothing was written: read again and
    /// decide again.
    Stale,
    /// The referee was referred before, by another order; nothing was written.
    AlreadyReferred,
    /// The referred order is not stored (erased meanwhile); nothing was written.
    OrderGone,
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
            LedgerEntry::earn_for_order(&order(99, "USD"), &s, None, Timestamp::UNIX_EPOCH)
                .is_none()
        );
    }

    #[test]
    fn earn_is_pending_through_the_return_window() {
        let s = LoyaltySettings::default();
        let o = order(5_000, "EUR");
        let e = LedgerEntry::earn_for_order(&o, &s, None, o.placed_at).unwrap();
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
            spend: None,
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

    fn tiers(basis: TierBasis) -> LoyaltySettings {
        LoyaltySettings {
            tiers: vec![
                Tier {
                    name: "Silver".into(),
                    threshold: 100,
                    multiplier_percent: 100,
                },
                Tier {
                    name: "Gold".into(),
                    threshold: 500,
                    multiplier_percent: 150,
                },
            ],
            tier_basis: basis,
            ..LoyaltySettings::default()
        }
    }

    #[test]
    fn tiers_count_the_calendar_year_net_of_refunds_and_multiply_the_next_earn() {
        let s = tiers(TierBasis::Points);
        let utc = TimeZone::UTC;
        // 1970-12-31T13:00 in UTC is 1971-01-01 in Auckland: the year follows the merchant's zone.
        let mut last_year = earn("order:old", 900, 0);
        last_year.created_at = at(364).checked_add(SignedDuration::from_hours(13)).unwrap();
        let mut l = vec![last_year, earn("order:A", 300, 400)];
        l[1].created_at = at(370);
        let st = tier_status(&l, &s, at(380), &utc).unwrap();
        assert_eq!((st.year, st.qualifying), (1971, 300));
        assert_eq!(st.current.as_ref().map(|t| t.name.as_str()), Some("Silver"));
        assert_eq!(
            st.next.as_ref().map(|(t, n)| (t.name.as_str(), *n)),
            Some(("Gold", 200))
        );
        let auckland = TimeZone::get("Pacific/Auckland").unwrap();
        assert_eq!(
            tier_status(&l, &s, at(380), &auckland).unwrap().qualifying,
            1200
        );
        // A refund takes its points out of the count.
        l.push(reverse(&l, at(381), "order:A", 250, "refund:r".into()).unwrap());
        let st = tier_status(&l, &s, at(381), &utc).unwrap();
        assert_eq!((st.qualifying, st.current), (50, None));

        let gold = &s.tiers[1];
        let o = order(20_000, "EUR");
        let e = LedgerEntry::earn_for_order(&o, &s, Some(gold), at(0)).unwrap();
        assert_eq!((e.points, e.spend), (300, Some(200)));
        assert_eq!(e.reason.as_deref(), Some("Gold tier: 200 points ×1.5"));
        assert_eq!(
            tier_status(&[], &LoyaltySettings::default(), at(0), &utc),
            None
        );
    }

    #[test]
    fn spend_tiers_count_whole_units_and_refunds_pro_rata() {
        let s = tiers(TierBasis::Spend);
        let o = order(60_000, "EUR");
        let mut l = vec![LedgerEntry::earn_for_order(&o, &s, None, at(1)).unwrap()];
        let st = tier_status(&l, &s, at(2), &TimeZone::UTC).unwrap();
        assert_eq!(st.qualifying, 600);
        assert_eq!(st.current.unwrap().name, "Gold");
        l.push(reverse(&l, at(3), "order:SO-1001", 150, "refund:r".into()).unwrap());
        assert_eq!(
            tier_status(&l, &s, at(3), &TimeZone::UTC)
                .unwrap()
                .qualifying,
            450
        );
    }

    #[test]
    fn settings_refuse_tiers_out_of_order_and_name_the_field() {
        let mut s = tiers(TierBasis::Points);
        assert_eq!(s.validate(), Ok(()));
        s.tiers[1].threshold = 100;
        assert_eq!(
            s.validate().unwrap_err().0,
            "settings.loyalty.tiers[1].threshold"
        );
        s.tiers[1].threshold = 500;
        s.tiers[0].multiplier_percent = 50;
        assert_eq!(
            s.validate().unwrap_err().0,
            "settings.loyalty.tiers[0].multiplier_percent"
        );
        s.tiers[0].multiplier_percent = 100;
        s.tiers[0].name = " ".into();
        assert_eq!(
            s.validate().unwrap_err().0,
            "settings.loyalty.tiers[0].name"
        );
        let s = LoyaltySettings {
            expire_after_months: 121,
            ..LoyaltySettings::default()
        };
        assert_eq!(
            s.validate().unwrap_err().0,
            "settings.loyalty.expire_after_months"
        );
        assert_eq!(
            multiplier(&Tier {
                name: "x".into(),
                threshold: 0,
                multiplier_percent: 125
            }),
            "1.25"
        );
        assert_eq!(
            multiplier(&Tier {
                name: "x".into(),
                threshold: 0,
                multiplier_percent: 200
            }),
            "2"
        );
    }

    #[test]
    fn expiry_counts_calendar_months_from_the_last_order_and_takes_only_what_is_available() {
        let s = LoyaltySettings {
            expire_after_months: 12,
            ..LoyaltySettings::default()
        };
        let last: Timestamp = "2026-02-28T10:00:00Z".parse().unwrap();
        let expires = expires_at(last, &s).unwrap();
        assert_eq!(expires.to_string(), "2027-02-28T10:00:00Z");
        assert_eq!(
            expiry_notice_at(expires).to_string(),
            "2027-02-14T10:00:00Z"
        );
        assert_eq!(expires_at(last, &LoyaltySettings::default()), None);
        let l = vec![earn("order:A", 100, 0), earn("order:B", 40, 500)];
        let e = expire(&l, at(10), expiry_source(last)).unwrap();
        assert_eq!((e.kind, e.points), (LedgerKind::Expire, -100));
        let mut after = l.clone();
        after.push(e);
        assert_eq!(
            balance(&after, at(10)),
            Balance {
                available: 0,
                pending: 40,
                earned: 140,
                redeemed: 0
            }
        );
        assert_eq!(expire(&after, at(10), "expire:again".into()), None);
    }

    #[test]
    fn newly_available_counts_what_crossed_since_the_last_note() {
        let mut l = vec![
            earn("order:A", 100, 10),
            earn("order:B", 40, 20),
            earn("order:C", 7, 40),
        ];
        assert_eq!(newly_available(&l, None, at(5)), 0);
        assert_eq!(newly_available(&l, None, at(25)), 140);
        assert_eq!(newly_available(&l, Some(at(15)), at(25)), 40);
        l.push(reverse(&l, at(1), "order:B", 40, "refund:r".into()).unwrap());
        assert_eq!(newly_available(&l, Some(at(15)), at(25)), 0);
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
