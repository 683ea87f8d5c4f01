//! Subscriptions and the notices they are owed: renewal reminders at lead times before the renewal,
//! card-expiry notices before a card runs out ahead of the renewal, one combined email when both
//! fall close together, and the auto-renewal notice some US states require for annual plans.
//!
//! Everything here is pure: [`notices`] derives a subscription's whole notice schedule from its
//! current state, so a changed renewal date or a new card simply yields a different schedule, and
//! every notice has a stable identity ([`Notice::identity`]) that its send claim is keyed on.

use super::customer::{CustomerInput, CustomerRef};
use super::ids::SubscriptionId;
use super::send::EmailKind;
use super::text::{single_line, web_url};
use super::{Currency, FieldError, MerchantId, Money};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How often a subscription renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "every", content = "days")]
pub enum Interval {
    Monthly,
    Annual,
    /// Every `n` days.
    Days(u32),
}

impl Interval {
    pub fn as_str(&self) -> &'static str {
        match self {
            Interval::Monthly => "monthly",
            Interval::Annual => "annual",
            Interval::Days(_) => "custom",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Paused,
    /// Cancelled: access ends at `next_renewal_at`; reminders offer to renew.
    Cancelled,
    /// Ended without renewal; reminders offer to renew.
    Lapsed,
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Lapsed => "lapsed",
        }
    }

    /// Whether the subscription renews (and charges the card) by itself at `next_renewal_at`.
    pub fn auto_renews(&self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
        )
    }

    /// Whether reminders should offer to renew (the subscription will not renew by itself).
    pub fn offers_renewal(&self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Cancelled | SubscriptionStatus::Lapsed
        )
    }

    fn parse(field: &str, v: &str) -> Result<Self, FieldError> {
        Ok(match v {
            "active" => SubscriptionStatus::Active,
            "trialing" => SubscriptionStatus::Trialing,
            "past_due" | "unpaid" => SubscriptionStatus::PastDue,
            "paused" => SubscriptionStatus::Paused,
            "cancelled" | "canceled" => SubscriptionStatus::Cancelled,
            "lapsed" | "incomplete_expired" => SubscriptionStatus::Lapsed,
            _ => {
                return Err(FieldError::new(
                    field,
                    "invalid_value",
                    format!(
                        "{field} must be one of active, trialing, past_due, paused, cancelled, lapsed"
                    ),
                ));
            }
        })
    }
}

/// The payment card on file (never the number: brand, last four digits and expiry only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
    pub exp_month: i8,
    pub exp_year: i16,
}

impl Card {
    /// The first instant the card no longer works: the start of the month after its expiry month
    /// (cards are valid through the last day of the month printed on them), UTC.
    pub fn expires_at(&self) -> Option<Timestamp> {
        let first = Date::new(self.exp_year, self.exp_month, 1).ok()?;
        first
            .checked_add(jiff::Span::new().months(1))
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    }

    /// `2027-03`: the card's expiry, as in the notice identity.
    pub fn expiry_label(&self) -> String {
        format!("{:04}-{:02}", self.exp_year, self.exp_month)
    }

    /// `03/27`, as printed on the card.
    pub fn expiry_short(&self) -> String {
        format!("{:02}/{:02}", self.exp_month, self.exp_year.rem_euclid(100))
    }
}

/// A subscription as Aftercare knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub customer: CustomerRef,
    pub plan_name: String,
    pub interval: Interval,
    pub price: Money,
    pub status: SubscriptionStatus,
    /// The next renewal (or, for cancelled and lapsed subscriptions, when access ends / ended).
    pub next_renewal_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// The merchant's self-service page for this subscription; links to it carry a signed token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_url: Option<String>,
    /// The billing system's time of this state: older updates never overwrite newer ones.
    pub updated_at: Timestamp,
}

/// `PUT /v1/subscriptions/{id}` and the `Subscription Updated` event's `subscription`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    pub customer: CustomerInput,
    pub plan_name: String,
    /// `monthly`, `annual` or `custom` (with `interval_days`).
    pub interval: String,
    #[serde(default)]
    pub interval_days: Option<u32>,
    /// Minor units of `currency`.
    pub price: i64,
    pub currency: String,
    pub status: String,
    pub next_renewal_at: Timestamp,
    #[serde(default)]
    pub payment_method: Option<CardInput>,
    #[serde(default)]
    pub manage_url: Option<String>,
    /// When the billing system last changed it; defaults to when Aftercare received it.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
}

impl CardInput {
    pub fn validate(self, field: &str) -> Result<Card, FieldError> {
        let f = |n: &str| format!("{field}.{n}");
        let brand = single_line(&f("brand"), &self.brand, 32)?;
        if self.last4.len() != 4 || !self.last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                f("last4"),
                "invalid_format",
                "last4 must be the card's last four digits",
            ));
        }
        let exp_month = i8::try_from(self.exp_month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| {
                FieldError::new(f("exp_month"), "out_of_range", "exp_month must be 1 to 12")
            })?;
        let exp_year = i16::try_from(self.exp_year)
            .ok()
            .filter(|y| (2000..=2200).contains(y))
            .ok_or_else(|| {
                FieldError::new(
                    f("exp_year"),
                    "out_of_range",
                    "exp_year must be a four-digit year",
                )
            })?;
        Ok(Card {
            brand,
            last4: self.last4,
            exp_month,
            exp_year,
        })
    }
}

impl SubscriptionInput {
    pub fn validate(self, id: SubscriptionId, now: Timestamp) -> Result<Subscription, FieldError> {
        let customer = self.customer.validate().map_err(|e| e.within("customer"))?;
        let plan_name = single_line("plan_name", &self.plan_name, 200)?;
        super::validation::plausible_time("next_renewal_at", self.next_renewal_at)?;
        if let Some(at) = self.updated_at {
            super::validation::plausible_time("updated_at", at)?;
        }
        let interval = match (self.interval.as_str(), self.interval_days) {
            ("monthly", None) => Interval::Monthly,
            ("annual" | "yearly", None) => Interval::Annual,
            ("custom", Some(d)) if (1..=3660).contains(&d) => Interval::Days(d),
            ("custom", _) => {
                return Err(FieldError::new(
                    "interval_days",
                    "out_of_range",
                    "a custom interval needs interval_days from 1 to 3660",
                ));
            }
            ("monthly" | "annual" | "yearly", Some(_)) => {
                return Err(FieldError::new(
                    "interval_days",
                    "not_allowed",
                    "interval_days is only for interval custom",
                ));
            }
            _ => {
                return Err(FieldError::new(
                    "interval",
                    "invalid_value",
                    "interval must be monthly, annual or custom",
                ));
            }
        };
        if self.price < 0 {
            return Err(FieldError::new(
                "price",
                "out_of_range",
                "price must not be negative",
            ));
        }
        let currency = Currency::parse("currency", &self.currency)?;
        let status = SubscriptionStatus::parse("status", &self.status)?;
        let card = self
            .payment_method
            .map(|c| c.validate("payment_method"))
            .transpose()?;
        let manage_url = web_url("manage_url", self.manage_url.as_deref())?;
        let updated_at = self.updated_at.unwrap_or(now);
        if updated_at
            > now
                .saturating_add(SignedDuration::from_hours(1))
                .unwrap_or(now)
        {
            return Err(FieldError::new(
                "updated_at",
                "in_future",
                "updated_at must not be in the future",
            ));
        }
        Ok(Subscription {
            id,
            customer,
            plan_name,
            interval,
            price: Money::new(self.price, currency),
            status,
            next_renewal_at: self.next_renewal_at,
            card,
            manage_url,
            updated_at,
        })
    }
}

impl Subscription {
    /// A digest of everything but the update time: the same state sent twice is one update.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut copy = self.clone();
        copy.updated_at = Timestamp::UNIX_EPOCH;
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        hex::encode(&Sha256::digest(&bytes)[..16])
    }
}

/// The merchant's renewal-notice policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenewalSettings {
    pub enabled: bool,
    /// Days before a monthly renewal to remind.
    pub monthly_lead_days: Vec<u32>,
    /// Days before an annual renewal to remind.
    pub annual_lead_days: Vec<u32>,
    /// Days before a custom-interval renewal (leads not shorter than the interval).
    pub custom_lead_days: Vec<u32>,
    /// Days before a card expires (when it expires before the next renewal).
    pub card_expiry_lead_days: Vec<u32>,
    /// A renewal reminder and a card notice this close together are sent as one email.
    pub combine_within_days: u32,
    /// The auto-renewal notice for annual plans (several US state laws require a notice 15–45
    /// days before an annual plan renews): when set, annual plans also get a reminder this many
    /// days before, carrying the auto-renewal disclosure (price, date, how to cancel).
    pub auto_renewal_notice_days: Option<u32>,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            monthly_lead_days: vec![7],
            annual_lead_days: vec![30, 7],
            custom_lead_days: vec![7],
            card_expiry_lead_days: vec![30, 7],
            combine_within_days: 3,
            auto_renewal_notice_days: None,
        }
    }
}

impl RenewalSettings {
    /// Range checks; the error names the setting.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let lists = [
            (
                "settings.renewals.monthly_lead_days",
                &self.monthly_lead_days,
            ),
            ("settings.renewals.annual_lead_days", &self.annual_lead_days),
            ("settings.renewals.custom_lead_days", &self.custom_lead_days),
            (
                "settings.renewals.card_expiry_lead_days",
                &self.card_expiry_lead_days,
            ),
        ];
        for (field, days) in lists {
            if days.len() > 5 || days.iter().any(|d| !(1..=90).contains(d)) {
                return Err((field, "at most 5 lead times, each 1 to 90 days"));
            }
        }
        if self.combine_within_days > 14 {
            return Err((
                "settings.renewals.combine_within_days",
                "combine_within_days must be at most 14",
            ));
        }
        if let Some(d) = self.auto_renewal_notice_days
            && !(15..=45).contains(&d)
        {
            return Err((
                "settings.renewals.auto_renewal_notice_days",
                "the auto-renewal notice must be 15 to 45 days before renewal",
            ));
        }
        Ok(())
    }

    fn renewal_leads(&self, interval: Interval) -> Vec<(u32, bool)> {
        let mut leads: Vec<(u32, bool)> = match interval {
            Interval::Monthly => self.monthly_lead_days.iter().map(|d| (*d, false)).collect(),
            Interval::Annual => self.annual_lead_days.iter().map(|d| (*d, false)).collect(),
            Interval::Days(n) => self
                .custom_lead_days
                .iter()
                .filter(|d| **d < n)
                .map(|d| (*d, false))
                .collect(),
        };
        if interval == Interval::Annual
            && let Some(notice) = self.auto_renewal_notice_days
        {
            match leads.iter_mut().find(|(d, _)| *d == notice) {
                Some(l) => l.1 = true,
                None => leads.push((notice, true)),
            }
        }
        leads.sort_unstable();
        leads.dedup_by_key(|l| l.0);
        leads
    }
}

/// What one notice says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    RenewalReminder,
    CardExpiring,
    /// A renewal reminder that also asks for a new card.
    RenewalAndCard,
}

impl NoticeKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::RenewalReminder => "renewal_reminder",
            NoticeKind::CardExpiring => "card_expiring",
            NoticeKind::RenewalAndCard => "renewal_and_card",
        }
    }
}

/// One notice of a subscription's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: Timestamp,
    /// Days before the renewal, when it is (or includes) a renewal reminder.
    pub renewal_lead: Option<u32>,
    /// Days before the card expires, when it is (or includes) a card notice.
    pub card_lead: Option<u32>,
    /// Carries the auto-renewal disclosure.
    pub auto_renewal: bool,
    /// Until when it is still worth sending (the renewal or the card's expiry).
    pub relevant_until: Timestamp,
}

impl Notice {
    pub fn kind(&self) -> NoticeKind {
        match (self.renewal_lead, self.card_lead) {
            (Some(_), Some(_)) => NoticeKind::RenewalAndCard,
            (None, Some(_)) => NoticeKind::CardExpiring,
            _ => NoticeKind::RenewalReminder,
        }
    }

    /// The send claim's identity: `(kind, subject, step)`. A combined notice keeps its renewal
    /// reminder's identity, so the reminder can never go out a second time on its own.
    pub fn identity(&self, sub: &Subscription) -> (EmailKind, String, u32) {
        match (self.renewal_lead, &sub.card) {
            (Some(lead), _) => (
                EmailKind::RenewalReminder,
                format!("{}@{}", sub.id, sub.next_renewal_at.strftime("%Y%m%d")),
                lead,
            ),
            (None, Some(card)) => (
                EmailKind::CardExpiring,
                format!("{}@{}", sub.id, card.expiry_label()),
                self.card_lead.unwrap_or(0),
            ),
            (None, None) => (EmailKind::CardExpiring, sub.id.to_string(), 0),
        }
    }
}

fn days_before(t: Timestamp, days: u32) -> Timestamp {
    t.checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
        .unwrap_or(t)
}

/// The subscription's notice schedule, earliest first.
pub fn notices(sub: &Subscription, settings: &RenewalSettings) -> Vec<Notice> {
    if !settings.enabled {
        return Vec::new();
    }
    let reminds = sub.status.auto_renews() || sub.status.offers_renewal();
    let mut renewals: Vec<Notice> = if reminds {
        settings
            .renewal_leads(sub.interval)
            .into_iter()
            .map(|(lead, auto)| Notice {
                at: days_before(sub.next_renewal_at, lead),
                renewal_lead: Some(lead),
                card_lead: None,
                auto_renewal: auto && sub.status.auto_renews(),
                relevant_until: sub.next_renewal_at,
            })
            .collect()
    } else {
        Vec::new()
    };
    let card_expiry = sub
        .card
        .as_ref()
        .and_then(Card::expires_at)
        .filter(|exp| sub.status.auto_renews() && *exp <= sub.next_renewal_at);
    let mut cards: Vec<Notice> = match card_expiry {
        Some(exp) => {
            let mut leads = settings.card_expiry_lead_days.clone();
            leads.sort_unstable();
            leads.dedup();
            leads
                .into_iter()
                .map(|lead| Notice {
                    at: days_before(exp, lead),
                    renewal_lead: None,
                    card_lead: Some(lead),
                    auto_renewal: false,
                    relevant_until: exp,
                })
                .collect()
        }
        None => Vec::new(),
    };
    // Combine each card notice with the nearest renewal reminder within the window (each
    // reminder takes at most one card notice).
    let window = SignedDuration::from_hours(24 * i64::from(settings.combine_within_days));
    cards.retain(|card| {
        let nearest = renewals
            .iter_mut()
            .filter(|r| r.card_lead.is_none() && r.at.duration_until(card.at).abs() <= window)
            .min_by_key(|r| r.at.duration_until(card.at).abs());
        match nearest {
            Some(r) => {
                r.card_lead = card.card_lead;
                r.at = r.at.min(card.at);
                r.relevant_until = r.relevant_until.min(card.relevant_until);
                false
            }
            None => true,
        }
    });
    renewals.extend(cards);
    renewals.sort_by_key(|n| n.at);
    renewals
}

/// What a sweep should do with a subscription now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticePlan {
    /// The notice to send now: the latest one due and still relevant (earlier missed ones are
    /// superseded by it, so a customer never gets two reminders in one run).
    pub send: Option<Notice>,
    /// When the subscription next needs a look, if ever.
    pub next_due: Option<Timestamp>,
}

pub fn plan(sub: &Subscription, settings: &RenewalSettings, now: Timestamp) -> NoticePlan {
    let all = notices(sub, settings);
    let send = all
        .iter()
        .filter(|n| n.at <= now && now < n.relevant_until)
        .max_by_key(|n| n.at)
        .cloned();
    let next_due = all.iter().map(|n| n.at).find(|at| *at > now);
    NoticePlan { send, next_due }
}

/// When a freshly stored subscription should first be looked at: its first notice still worth
/// sending (now, if that notice's time has already passed), or never.
pub fn first_due(
    sub: &Subscription,
    settings: &RenewalSettings,
    now: Timestamp,
) -> Option<Timestamp> {
    notices(sub, settings)
        .iter()
        .filter(|n| now < n.relevant_until)
        .map(|n| n.at.max(now))
        .min()
}

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub merchant_id: MerchantId,
    pub subscription: Subscription,
    pub content_hash: String,
    /// `subscription.updated_at` in epoch milliseconds, flat so conditions can compare it.
    pub updated_at_ms: i64,
    pub received_at: Timestamp,
    /// The last notice sent (kind, lead) and when, for the merchant reading the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notice_at: Option<Timestamp>,
}

impl SubscriptionRecord {
    pub fn new(merchant_id: MerchantId, subscription: Subscription, now: Timestamp) -> Self {
        Self {
            merchant_id,
            content_hash: subscription.content_hash(),
            updated_at_ms: subscription.updated_at.as_millisecond(),
            subscription,
            received_at: now,
            last_notice: None,
            last_notice_at: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample_input() -> serde_json::Value {
        serde_json::json!({
            "customer": {"id": "cus_1", "email": "ann@example.com", "first_name": "Ann"},
            "plan_name": "Coffee club",
            "interval": "monthly",
            "price": 1990,
            "currency": "EUR",
            "status": "active",
            "next_renewal_at": "2026-12-20T09:00:00Z",
            "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2026},
            "manage_url": "https://acme.example/account/subscriptions",
            "updated_at": "2026-11-20T09:00:00Z"
        })
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sub(v: serde_json::Value) -> Subscription {
        let input: SubscriptionInput = serde_json::from_value(v).unwrap();
        input
            .validate(
                SubscriptionId::parse("id", "sub_1").unwrap(),
                t("2026-11-22T00:00:00Z"),
            )
            .unwrap()
    }

    #[test]
    fn validates_and_names_the_field() {
        let s = sub(sample_input());
        assert_eq!(s.interval, Interval::Monthly);
        assert_eq!(s.card.as_ref().unwrap().expiry_short(), "12/26");
        let cases = [
            ("interval", serde_json::json!("weekly"), "interval"),
            ("price", serde_json::json!(-1), "price"),
            ("currency", serde_json::json!("EURO"), "currency"),
            ("status", serde_json::json!("gone"), "status"),
            (
                "manage_url",
                serde_json::json!("javascript:x"),
                "manage_url",
            ),
            (
                "payment_method",
                serde_json::json!({"brand": "visa", "last4": "42", "exp_month": 1, "exp_year": 2027}),
                "payment_method.last4",
            ),
            (
                "payment_method",
                serde_json::json!({"brand": "visa", "last4": "4242", "exp_month": 13, "exp_year": 2027}),
                "payment_method.exp_month",
            ),
            (
                "updated_at",
                serde_json::json!("2030-01-01T00:00:00Z"),
                "updated_at",
            ),
        ];
        for (field, value, named) in cases {
            let mut v = sample_input();
            v[field] = value;
            let input: SubscriptionInput = serde_json::from_value(v).unwrap();
            let err = input
                .validate(
                    SubscriptionId::parse("id", "s").unwrap(),
                    t("2026-11-22T00:00:00Z"),
                )
                .unwrap_err();
            assert_eq!(err.field, named);
        }
    }

    #[test]
    fn card_expires_after_its_month() {
        let card = Card {
            brand: "visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2026,
        };
        assert_eq!(card.expires_at(), Some(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn monthly_plan_gets_a_reminder_a_week_before() {
        let mut v = sample_input();
        v["payment_method"]["exp_year"] = 2030.into();
        let s = sub(v);
        let n = notices(&s, &RenewalSettings::default());
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].at, t("2026-12-13T09:00:00Z"));
        assert_eq!(n[0].kind(), NoticeKind::RenewalReminder);
    }

    #[test]
    fn annual_plan_gets_30_and_7_days_and_the_auto_renewal_notice() {
        let mut v = sample_input();
        v["interval"] = "annual".into();
        v["payment_method"] = serde_json::Value::Null;
        let s = sub(v);
        let leads: Vec<_> = notices(&s, &RenewalSettings::default())
            .iter()
            .map(|n| n.renewal_lead.unwrap())
            .collect();
        assert_eq!(leads, vec![30, 7]);
        let settings = RenewalSettings {
            auto_renewal_notice_days: Some(45),
            ..RenewalSettings::default()
        };
        let n = notices(&s, &settings);
        assert_eq!(
            n.iter()
                .map(|n| (n.renewal_lead.unwrap(), n.auto_renewal))
                .collect::<Vec<_>>(),
            vec![(45, true), (30, false), (7, false)]
        );
        assert!(
            RenewalSettings {
                auto_renewal_notice_days: Some(10),
                ..settings
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn card_notice_within_three_days_of_a_reminder_is_combined() {
        // Renewal 2027-01-03 (reminder 12-27); the card dies 2027-01-01 (notices 12-02, 12-25).
        let mut v = sample_input();
        v["next_renewal_at"] = "2027-01-03T09:00:00Z".into();
        let s = sub(v);
        let n = notices(&s, &RenewalSettings::default());
        let kinds: Vec<_> = n.iter().map(|n| (n.kind(), n.at)).collect();
        assert_eq!(
            kinds,
            vec![
                (NoticeKind::CardExpiring, t("2026-12-02T00:00:00Z")),
                (NoticeKind::RenewalAndCard, t("2026-12-25T00:00:00Z")),
            ]
        );
        let (kind, subject, step) = n[1].identity(&s);
        assert_eq!(
            (kind.as_str(), subject.as_str(), step),
            ("renewal_reminder", "sub_1@20270103", 7)
        );
    }

    #[test]
    fn no_card_notice_when_the_card_outlives_the_renewal_or_the_plan_ends() {
        let mut v = sample_input();
        v["payment_method"]["exp_year"] = 2027.into();
        assert!(
            notices(&sub(v.clone()), &RenewalSettings::default())
                .iter()
                .all(|n| n.card_lead.is_none())
        );
        v["payment_method"]["exp_year"] = 2026.into();
        v["next_renewal_at"] = "2027-03-01T00:00:00Z".into();
        v["status"] = "cancelled".into();
        let n = notices(&sub(v), &RenewalSettings::default());
        assert_eq!(
            n.len(),
            1,
            "a cancelled plan gets the renew-now reminder, no card notice"
        );
        assert_eq!(n[0].kind(), NoticeKind::RenewalReminder);
    }

    #[test]
    fn plan_sends_the_latest_due_notice_and_points_at_the_next() {
        let mut v = sample_input();
        v["interval"] = "annual".into();
        v["payment_method"] = serde_json::Value::Null;
        let s = sub(v);
        let settings = RenewalSettings::default();
        // Both the 30- and the 7-day reminder are past (missed runs): only the 7-day one goes.
        let p = plan(&s, &settings, t("2026-12-15T00:00:00Z"));
        assert_eq!(p.send.unwrap().renewal_lead, Some(7));
        assert_eq!(p.next_due, None);
        let p = plan(&s, &settings, t("2026-11-21T00:00:00Z"));
        assert_eq!(p.send.unwrap().renewal_lead, Some(30));
        assert_eq!(p.next_due, Some(t("2026-12-13T09:00:00Z")));
        let p = plan(&s, &settings, t("2026-12-21T00:00:00Z"));
        assert_eq!(p.send, None, "after the renewal nothing is worth sending");
        assert_eq!(
            first_due(&s, &settings, t("2026-11-22T00:00:00Z")),
            Some(t("2026-11-22T00:00:00Z")),
            "a notice whose time has passed but is still relevant is due now"
        );
    }

    proptest! {
        /// Whatever the dates: no two notices of the schedule share a renewal lead or a card lead,
        /// every combined notice's parts lie within the window, and all are sorted.
        #[test]
        fn schedule_is_consistent(renew_day in 0i64..400, exp_month in 1i8..=12, exp_year in 2026i16..2028, annual: bool) {
            let mut v = sample_input();
            v["interval"] = if annual { "annual" } else { "monthly" }.into();
            let renew = t("2026-11-22T09:00:00Z").checked_add(SignedDuration::from_hours(24 * renew_day)).unwrap();
            v["next_renewal_at"] = renew.to_string().into();
            v["payment_method"]["exp_month"] = exp_month.into();
            v["payment_method"]["exp_year"] = exp_year.into();
            let s = sub(v);
            let settings = RenewalSettings::default();
            let n = notices(&s, &settings);
            prop_assert!(n.windows(2).all(|w| w[0].at <= w[1].at));
            let mut renewal: Vec<_> = n.iter().filter_map(|n| n.renewal_lead).collect();
            let mut card: Vec<_> = n.iter().filter_map(|n| n.card_lead).collect();
            let (rl, cl) = (renewal.len(), card.len());
            renewal.dedup(); card.sort(); card.dedup();
            prop_assert_eq!(renewal.len(), rl);
            prop_assert_eq!(card.len(), cl);
            for x in &n {
                if let (Some(r), Some(c)) = (x.renewal_lead, x.card_lead) {
                    let r_at = days_before(s.next_renewal_at, r);
                    let c_at = days_before(s.card.as_ref().unwrap().expires_at().unwrap(), c);
                    prop_assert!(r_at.duration_until(c_at).abs() <= SignedDuration::from_hours(72));
                    prop_assert_eq!(x.at, r_at.min(c_at));
                }
            }
        }
    }
}
