//! Marketing-class mail rules: whether a follow-up may go now, must wait, or must not go at all.
//!
//! Decided from what the sweep read (the customer's contact state) and enforced again by the
//! conditional write that claims the send (see `store::followups`), so two sweeps racing for the
//! same customer cannot both pass the frequency cap.
//!
//! Order of the rules, first match wins:
//! 1. suppressed address → skip (`suppressed`);
//! 2. unsubscribed from marketing mail, or from this kind → skip (`unsubscribed`, `opted_out`);
//! 3. a survey within the survey throttle → skip (`survey_throttled`);
//! 4. quiet hours in the recipient's time zone → defer to the end of the quiet hours;
//! 5. another marketing email within the frequency cap → defer to the end of the cap (and past
//!    quiet hours, if the cap ends inside them).
//!
//! Deferring never drops a message; skipping records its reason.

use super::followup::FollowUpKind;
use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Hours (local, 0–23) during which no marketing-class mail goes out. `start > end` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuietHours {
    pub enabled: bool,
    pub start_hour: u8,
    pub end_hour: u8,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            enabled: true,
            start_hour: 21,
            end_hour: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketingSettings {
    pub quiet_hours: QuietHours,
    /// At most one marketing-class email per customer within this many hours (0: no cap).
    pub frequency_cap_hours: u32,
    /// At most one survey per customer within this many days (0: no throttle).
    pub survey_throttle_days: u32,
}

impl Default for MarketingSettings {
    fn default() -> Self {
        Self {
            quiet_hours: QuietHours::default(),
            frequency_cap_hours: 16,
            survey_throttle_days: 30,
        }
    }
}

impl MarketingSettings {
    pub fn cap(&self) -> SignedDuration {
        SignedDuration::from_hours(i64::from(self.frequency_cap_hours))
    }

    pub fn survey_throttle(&self) -> SignedDuration {
        SignedDuration::from_hours(24 * i64::from(self.survey_throttle_days))
    }

    /// Checks ranges; returns the offending field and message.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.quiet_hours.start_hour > 23 {
            return Err((
                "settings.marketing.quiet_hours.start_hour",
                "must be 0 to 23",
            ));
        }
        if self.quiet_hours.end_hour > 23 {
            return Err(("settings.marketing.quiet_hours.end_hour", "must be 0 to 23"));
        }
        if self.frequency_cap_hours > 24 * 30 {
            return Err((
                "settings.marketing.frequency_cap_hours",
                "must be at most 720",
            ));
        }
        if self.survey_throttle_days > 365 {
            return Err((
                "settings.marketing.survey_throttle_days",
                "must be at most 365",
            ));
        }
        Ok(())
    }
}

/// What the customer told us about marketing mail, and when they last got some.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    #[serde(default)]
    pub unsubscribed: bool,
    #[serde(default)]
    pub unsubscribed_at: Option<Timestamp>,
    /// Kinds the customer opted out of individually.
    #[serde(default)]
    pub opted_out: BTreeSet<FollowUpKind>,
    #[serde(default)]
    pub last_marketing_at: Option<Timestamp>,
    #[serde(default)]
    pub last_survey_at: Option<Timestamp>,
    /// The language the customer chose for email (over the one their orders carry).
    #[serde(default)]
    pub locale: Option<crate::domain::Locale>,
    /// The time zone the customer chose (over the one their orders carry): quiet hours and dates.
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl ContactState {
    /// What the customer chose, as the preference page and API show it.
    pub fn preferences(&self) -> Preferences {
        Preferences {
            subscribed: !self.unsubscribed,
            opted_out: self.opted_out.clone(),
            locale: self.locale,
            time_zone: self.time_zone.clone(),
        }
    }

    /// Lays the customer's chosen language and time zone over the ones an order or the payment
    /// provider gave: a choice wins, no choice keeps what is there. The one place that decides it.
    pub fn choose(&self, locale: &mut Option<String>, time_zone: &mut Option<String>) {
        if let Some(l) = self.locale {
            *locale = Some(l.as_str().to_owned());
        }
        if let Some(z) = &self.time_zone {
            *time_zone = Some(z.clone());
        }
    }

    /// `customer` as the customer asked to be written to (see [`Self::choose`]).
    pub fn personalise(
        &self,
        customer: &super::customer::CustomerRef,
    ) -> super::customer::CustomerRef {
        let mut chosen = customer.clone();
        self.choose(&mut chosen.locale, &mut chosen.time_zone);
        chosen
    }
}

/// A customer's own choices about email from one merchant: marketing mail at all, each marketing
/// kind, and the language and time zone to use over what their orders say. Every sender of
/// marketing mail honours them; transactional mail (orders, shipping, billing) is not opt-out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub subscribed: bool,
    pub opted_out: BTreeSet<FollowUpKind>,
    pub locale: Option<crate::domain::Locale>,
    pub time_zone: Option<String>,
}

/// A change of preferences (merchant API `PUT`): absent fields keep their value; an empty
/// `locale` or `time_zone` clears the override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    pub subscribed: Option<bool>,
    pub opted_out: Option<Vec<String>>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

impl PreferencesInput {
    /// Applies the change to `current`, naming the field it refuses.
    pub fn apply(self, current: Preferences) -> Result<Preferences, crate::domain::FieldError> {
        use crate::domain::FieldError;
        let mut next = current;
        if let Some(s) = self.subscribed {
            next.subscribed = s;
        }
        if let Some(kinds) = self.opted_out {
            next.opted_out = BTreeSet::new();
            for (i, k) in kinds.iter().enumerate() {
                let kind = FollowUpKind::parse(k).ok_or_else(|| {
                    FieldError::new(
                        format!("opted_out[{i}]"),
                        "invalid_value",
                        "one of usage_tips, feedback_survey, review_request, cross_sell",
                    )
                })?;
                next.opted_out.insert(kind);
            }
        }
        if let Some(l) = self.locale {
            next.locale = match l.trim() {
                "" => None,
                tag => Some(crate::domain::Locale::from_tag(tag).ok_or_else(|| {
                    FieldError::new(
                        "locale",
                        "unsupported_locale",
                        "one of en, de, fr (or empty)",
                    )
                })?),
            };
        }
        if let Some(z) = self.time_zone {
            next.time_zone = match z.trim() {
                "" => None,
                zone => Some(crate::domain::text::time_zone("time_zone", zone)?),
            };
        }
        Ok(next)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Suppressed,
    Unsubscribed,
    OptedOut,
    SurveyThrottled,
    /// Nothing to say (no review link configured, nothing to recommend).
    NothingToSend,
    /// Cancelled by a detractor answer.
    CancelledByFeedback,
    /// The order or merchant is gone.
    NotFound,
    /// The order came without an email address (a shop platform's point-of-sale order).
    NoAddress,
}

impl SkipReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Suppressed => "suppressed",
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::OptedOut => "opted_out",
            SkipReason::SurveyThrottled => "survey_throttled",
            SkipReason::NothingToSend => "nothing_to_send",
            SkipReason::CancelledByFeedback => "cancelled_by_feedback",
            SkipReason::NotFound => "not_found",
            SkipReason::NoAddress => "no_address",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferReason {
    QuietHours,
    FrequencyCap,
    /// A return of the order is under way: the feedback survey waits for its resolution.
    ReturnInProgress,
}

impl DeferReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeferReason::QuietHours => "quiet_hours",
            DeferReason::FrequencyCap => "frequency_cap",
            DeferReason::ReturnInProgress => "return_in_progress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    Defer {
        until: Timestamp,
        reason: DeferReason,
    },
    Skip(SkipReason),
}

/// Whether `at` falls inside the quiet hours in `tz`.
pub fn in_quiet_hours(quiet: &QuietHours, at: Timestamp, tz: &TimeZone) -> bool {
    if !quiet.enabled || quiet.start_hour == quiet.end_hour {
        return false;
    }
    let hour = at.to_zoned(tz.clone()).hour();
    let hour = u8::try_from(hour).unwrap_or(0);
    if quiet.start_hour < quiet.end_hour {
        (quiet.start_hour..quiet.end_hour).contains(&hour)
    } else {
        hour >= quiet.start_hour || hour < quiet.end_hour
    }
}

/// The first instant at or after `at` outside the quiet hours in `tz`: `at` itself, or the next
/// local `end_hour:00` (on a day whose `end_hour:00` falls in a DST gap, the first instant after
/// the gap).
pub fn after_quiet_hours(quiet: &QuietHours, at: Timestamp, tz: &TimeZone) -> Timestamp {
    if !in_quiet_hours(quiet, at, tz) {
        return at;
    }
    let local = at.to_zoned(tz.clone());
    let end = Time::new(i8::try_from(quiet.end_hour).unwrap_or(8), 0, 0, 0).unwrap_or(Time::MIN);
    let today_end = local.date().to_datetime(end);
    let candidate = if local.datetime() < today_end {
        today_end
    } else {
        local
            .date()
            .tomorrow()
            .map(|d| d.to_datetime(end))
            .unwrap_or(today_end)
    };
    tz.to_ambiguous_timestamp(candidate)
        .compatible()
        .map(|t| t.max(at))
        .unwrap_or(at)
}

/// The recipient's time zone: the customer's, else the merchant's, else UTC.
pub fn recipient_zone(customer_tz: Option<&str>, merchant_tz: &str) -> TimeZone {
    customer_tz
        .and_then(|tz| TimeZone::get(tz).ok())
        .or_else(|| TimeZone::get(merchant_tz).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The rules above, for a follow-up of `kind` at `now`.
pub fn decide(
    kind: FollowUpKind,
    now: Timestamp,
    tz: &TimeZone,
    contact: &ContactState,
    suppressed: bool,
    settings: &MarketingSettings,
) -> Decision {
    if suppressed {
        return Decision::Skip(SkipReason::Suppressed);
    }
    if contact.unsubscribed {
        return Decision::Skip(SkipReason::Unsubscribed);
    }
    if contact.opted_out.contains(&kind) {
        return Decision::Skip(SkipReason::OptedOut);
    }
    if kind == FollowUpKind::FeedbackSurvey
        && settings.survey_throttle_days > 0
        && let Some(last) = contact.last_survey_at
        && now.duration_since(last) < settings.survey_throttle()
    {
        return Decision::Skip(SkipReason::SurveyThrottled);
    }
    if in_quiet_hours(&settings.quiet_hours, now, tz) {
        return Decision::Defer {
            until: after_quiet_hours(&settings.quiet_hours, now, tz),
            reason: DeferReason::QuietHours,
        };
    }
    if settings.frequency_cap_hours > 0
        && let Some(last) = contact.last_marketing_at
    {
        let cap_end = last.saturating_add(settings.cap()).unwrap_or(last);
        if now < cap_end {
            return Decision::Defer {
                until: after_quiet_hours(&settings.quiet_hours, cap_end, tz),
                reason: DeferReason::FrequencyCap,
            };
        }
    }
    Decision::Send
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn decide_at(now: &str, tz: &str, contact: &ContactState) -> Decision {
        decide(
            FollowUpKind::FeedbackSurvey,
            t(now),
            &zone(tz),
            contact,
            false,
            &MarketingSettings::default(),
        )
    }

    #[test]
    fn quiet_hours_defer_to_eight_in_the_recipients_zone() {
        // 22:30 in Berlin (UTC+1 in November) → 08:00 Berlin next morning.
        assert_eq!(
            decide_at(
                "2026-11-27T21:30:00Z",
                "Europe/Berlin",
                &ContactState::default()
            ),
            Decision::Defer {
                until: t("2026-11-28T07:00:00Z"),
                reason: DeferReason::QuietHours
            }
        );
        // The same instant is 16:30 in New York: goes now.
        assert_eq!(
            decide_at(
                "2026-11-27T21:30:00Z",
                "America/New_York",
                &ContactState::default()
            ),
            Decision::Send
        );
        // 03:00 in Tokyo → 08:00 the same local day.
        assert_eq!(
            decide_at(
                "2026-11-27T18:00:00Z",
                "Asia/Tokyo",
                &ContactState::default()
            ),
            Decision::Defer {
                until: t("2026-11-27T23:00:00Z"),
                reason: DeferReason::QuietHours
            }
        );
    }

    #[test]
    fn quiet_hours_across_a_dst_change() {
        // Night of 28→29 March 2026 in Berlin: clocks go from UTC+1 to UTC+2 at 02:00.
        // 23:00 local on the 28th (22:00Z) → 08:00 local on the 29th, which is 06:00Z.
        assert_eq!(
            decide_at(
                "2026-03-28T22:00:00Z",
                "Europe/Berlin",
                &ContactState::default()
            ),
            Decision::Defer {
                until: t("2026-03-29T06:00:00Z"),
                reason: DeferReason::QuietHours
            }
        );
        // Autumn: 25 October 2026, clocks go back at 03:00 (UTC+2 → UTC+1): 08:00 local is 07:00Z.
        assert_eq!(
            decide_at(
                "2026-10-24T20:00:00Z",
                "Europe/Berlin",
                &ContactState::default()
            ),
            Decision::Defer {
                until: t("2026-10-25T07:00:00Z"),
                reason: DeferReason::QuietHours
            }
        );
    }

    #[test]
    fn a_quiet_hours_end_inside_a_dst_gap_lands_just_after_it() {
        let quiet = QuietHours {
            enabled: true,
            start_hour: 21,
            end_hour: 2,
        };
        // 02:00 on 29 March 2026 does not exist in Berlin; the end is 03:00 local (01:00Z).
        let at = after_quiet_hours(&quiet, t("2026-03-28T23:30:00Z"), &zone("Europe/Berlin"));
        assert_eq!(at, t("2026-03-29T01:00:00Z"));
        assert!(!in_quiet_hours(&quiet, at, &zone("Europe/Berlin")));
    }

    #[test]
    fn frequency_cap_defers_until_the_cap_ends_and_past_quiet_hours() {
        let contact = ContactState {
            last_marketing_at: Some(t("2026-11-27T09:00:00Z")),
            ..ContactState::default()
        };
        // Cap ends 01:00Z (02:00 Berlin, inside quiet hours) → 08:00 Berlin.
        assert_eq!(
            decide(
                FollowUpKind::ReviewRequest,
                t("2026-11-27T12:00:00Z"),
                &zone("Europe/Berlin"),
                &contact,
                false,
                &MarketingSettings::default()
            ),
            Decision::Defer {
                until: t("2026-11-28T07:00:00Z"),
                reason: DeferReason::FrequencyCap
            }
        );
        // In New York (11:00 local now) the cap ends at 20:00 local: that instant exactly.
        assert_eq!(
            decide(
                FollowUpKind::ReviewRequest,
                t("2026-11-27T16:00:00Z"),
                &zone("America/New_York"),
                &contact,
                false,
                &MarketingSettings::default()
            ),
            Decision::Defer {
                until: t("2026-11-28T01:00:00Z"),
                reason: DeferReason::FrequencyCap
            }
        );
        // Once the cap has passed: send.
        assert_eq!(
            decide(
                FollowUpKind::ReviewRequest,
                t("2026-11-28T01:00:00Z"),
                &zone("America/New_York"),
                &contact,
                false,
                &MarketingSettings::default()
            ),
            Decision::Send
        );
    }

    #[test]
    fn skips_have_reasons_and_come_before_deferrals() {
        let night = "2026-11-27T23:00:00Z";
        let unsub = ContactState {
            unsubscribed: true,
            ..ContactState::default()
        };
        assert_eq!(
            decide_at(night, "Europe/Berlin", &unsub),
            Decision::Skip(SkipReason::Unsubscribed)
        );
        let surveyed = ContactState {
            last_survey_at: Some(t("2026-11-01T10:00:00Z")),
            ..ContactState::default()
        };
        assert_eq!(
            decide_at(night, "Europe/Berlin", &surveyed),
            Decision::Skip(SkipReason::SurveyThrottled)
        );
        // 31 days later the throttle has passed (and it is daytime).
        assert_eq!(
            decide_at("2026-12-02T10:00:00Z", "Europe/Berlin", &surveyed),
            Decision::Send
        );
        let mut opted = ContactState::default();
        opted.opted_out.insert(FollowUpKind::FeedbackSurvey);
        assert_eq!(
            decide_at(night, "Europe/Berlin", &opted),
            Decision::Skip(SkipReason::OptedOut)
        );
        assert_eq!(
            decide(
                FollowUpKind::UsageTips,
                t(night),
                &zone("UTC"),
                &ContactState::default(),
                true,
                &MarketingSettings::default()
            ),
            Decision::Skip(SkipReason::Suppressed)
        );
    }

    #[test]
    fn the_survey_throttle_only_applies_to_surveys() {
        let surveyed = ContactState {
            last_survey_at: Some(t("2026-11-20T10:00:00Z")),
            ..ContactState::default()
        };
        assert_eq!(
            decide(
                FollowUpKind::CrossSell,
                t("2026-11-27T10:00:00Z"),
                &zone("UTC"),
                &surveyed,
                false,
                &MarketingSettings::default()
            ),
            Decision::Send
        );
    }

    #[test]
    fn recipient_zone_falls_back_to_the_merchants() {
        assert_eq!(
            recipient_zone(None, "Europe/Paris").iana_name(),
            Some("Europe/Paris")
        );
        assert_eq!(
            recipient_zone(Some("Asia/Tokyo"), "Europe/Paris").iana_name(),
            Some("Asia/Tokyo")
        );
        assert_eq!(
            recipient_zone(Some("Not/AZone"), "Europe/Paris").iana_name(),
            Some("Europe/Paris")
        );
    }

    const ZONES: [&str; 6] = [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Tokyo",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "UTC",
    ];

    proptest! {
        /// A deferral always lands outside quiet hours, never in the past, and within a day.
        #[test]
        fn deferral_lands_outside_quiet_hours(
            secs in 1_767_225_600i64..1_830_297_600i64,
            zone_ix in 0usize..6,
            start in 0u8..24,
            end in 0u8..24,
        ) {
            let quiet = QuietHours { enabled: true, start_hour: start, end_hour: end };
            let tz = zone(ZONES[zone_ix]);
            let at = Timestamp::from_second(secs).unwrap();
            let out = after_quiet_hours(&quiet, at, &tz);
            prop_assert!(out >= at);
            prop_assert!(!in_quiet_hours(&quiet, out, &tz), "{out} still quiet in {}", ZONES[zone_ix]);
            prop_assert!(out.duration_since(at) <= SignedDuration::from_hours(26));
        }
    }
}
