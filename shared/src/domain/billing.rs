//! Billing events and dunning: what a failed payment sets in motion and when it stops.
//!
//! Provider payloads (Stripe's webhook, the generic billing API) are parsed at the edge into one
//! [`BillingEvent`]; from there everything is provider-neutral. The dunning cadence is pure:
//! [`dunning_schedule`] lists the steps from the first failure, and [`dunning_action`] says what a
//! sweep should do now given what was already sent.

use super::customer::CustomerRef;
use super::ids::{InvoiceId, SubscriptionId};
use super::loyalty::{LedgerEntry, LoyaltyState};
use super::{MerchantId, Money, OrderId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The merchant's dunning policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DunningSettings {
    pub enabled: bool,
    /// Days after the first failure to remind (the first email goes at once).
    pub reminder_days: Vec<u32>,
    /// At most one failed-payment email per this many hours.
    pub min_gap_hours: u32,
    /// Days after the first failure when the merchant cancels the subscription.
    pub cancel_after_days: u32,
    /// The final notice goes this many days before the cancellation.
    pub final_notice_days_before: u32,
    /// Where customers update their payment method when the event carries no URL of its own
    /// (the emails link to it through a signed Aftercare link).
    pub update_payment_url: Option<String>,
}

impl Default for DunningSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            reminder_days: vec![3, 5, 7],
            min_gap_hours: 48,
            cancel_after_days: 14,
            final_notice_days_before: 2,
            update_payment_url: None,
        }
    }
}

impl DunningSettings {
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.cancel_after_days == 0 || self.cancel_after_days > 90 {
            return Err((
                "settings.dunning.cancel_after_days",
                "cancel_after_days must be 1 to 90",
            ));
        }
        if self.final_notice_days_before == 0
            || self.final_notice_days_before >= self.cancel_after_days
        {
            return Err((
                "settings.dunning.final_notice_days_before",
                "final_notice_days_before must be at least 1 and less than cancel_after_days",
            ));
        }
        let final_day = self.cancel_after_days - self.final_notice_days_before;
        let increasing = self.reminder_days.windows(2).all(|w| w[0] < w[1]);
        if self.reminder_days.len() > 8
            || !increasing
            || self
                .reminder_days
                .iter()
                .any(|d| *d == 0 || *d >= final_day)
        {
            return Err((
                "settings.dunning.reminder_days",
                "at most 8 reminder days, increasing, each after the failure and before the final notice",
            ));
        }
        if self.min_gap_hours > 24 * 7 {
            return Err((
                "settings.dunning.min_gap_hours",
                "min_gap_hours must be at most 168",
            ));
        }
        Ok(())
    }
}

/// A step of the dunning cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The first failed-payment email, at once.
    First,
    /// A reminder (1-based).
    Reminder,
    /// The last notice before the merchant cancels.
    Final,
    /// Dunning is over without recovery: alert the merchant.
    Exhausted,
}

impl StepKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::First => "first",
            StepKind::Reminder => "reminder",
            StepKind::Final => "final",
            StepKind::Exhausted => "exhausted",
        }
    }

    /// The [`InvoiceRecord`] field that counts the step's emails: `emails_first`, `emails_final`,
    /// and `emails_reminder` for the others.
    pub fn email_counter(&self) -> &'static str {
        match self {
            StepKind::First => "emails_first",
            StepKind::Final => "emails_final",
            StepKind::Reminder | StepKind::Exhausted => "emails_reminder",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DunningStep {
    /// Position in the cadence: 0 is the first email.
    pub index: u32,
    pub kind: StepKind,
    pub at: Timestamp,
}

fn plus_days(t: Timestamp, days: u32) -> Timestamp {
    t.checked_add(SignedDuration::from_hours(24 * i64::from(days)))
        .unwrap_or(t)
}

/// The whole cadence from the first failure: first email, reminders, final notice, exhaustion.
pub fn dunning_schedule(first_failed_at: Timestamp, s: &DunningSettings) -> Vec<DunningStep> {
    let mut steps = vec![DunningStep {
        index: 0,
        kind: StepKind::First,
        at: first_failed_at,
    }];
    for d in &s.reminder_days {
        steps.push(DunningStep {
            index: u32::try_from(steps.len()).unwrap_or(u32::MAX),
            kind: StepKind::Reminder,
            at: plus_days(first_failed_at, *d),
        });
    }
    let final_day = s
        .cancel_after_days
        .saturating_sub(s.final_notice_days_before);
    steps.push(DunningStep {
        index: u32::try_from(steps.len()).unwrap_or(u32::MAX),
        kind: StepKind::Final,
        at: plus_days(first_failed_at, final_day),
    });
    steps.push(DunningStep {
        index: u32::try_from(steps.len()).unwrap_or(u32::MAX),
        kind: StepKind::Exhausted,
        at: plus_days(first_failed_at, s.cancel_after_days),
    });
    steps
}

/// What the dunning sweep should do with a failed invoice now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DunningAction {
    /// Send this step now; afterwards look again at `next`.
    Send {
        step: DunningStep,
        next: Option<Timestamp>,
    },
    /// Nothing yet; look again then.
    Wait { until: Timestamp },
    /// The cadence ran out: mark it exhausted and alert the merchant.
    Exhaust { step: DunningStep },
    /// Nothing left to do.
    Done,
}

/// Decides the next dunning move. `next_index` is the first step not yet handled; `last_email_at`
/// the last failed-payment email sent. Missed steps are superseded by the latest one due (the
/// customer gets one email, not a burst); no two emails are closer than `min_gap_hours`.
pub fn dunning_action(
    first_failed_at: Timestamp,
    next_index: u32,
    last_email_at: Option<Timestamp>,
    now: Timestamp,
    s: &DunningSettings,
) -> DunningAction {
    let steps = dunning_schedule(first_failed_at, s);
    let pending: Vec<&DunningStep> = steps.iter().filter(|st| st.index >= next_index).collect();
    let Some(first_pending) = pending.first() else {
        return DunningAction::Done;
    };
    let Some(due) = pending.iter().rev().find(|st| st.at <= now) else {
        return DunningAction::Wait {
            until: first_pending.at,
        };
    };
    if due.kind == StepKind::Exhausted {
        return DunningAction::Exhaust { step: **due };
    }
    let gap = SignedDuration::from_hours(i64::from(s.min_gap_hours));
    if let Some(last) = last_email_at {
        let allowed = last.checked_add(gap).unwrap_or(last);
        if now < allowed {
            // Wait out the gap, but never past the exhaustion step.
            let exhaust = steps.last().map(|st| st.at).unwrap_or(allowed);
            return DunningAction::Wait {
                until: allowed.min(exhaust),
            };
        }
    }
    let next = steps
        .iter()
        .find(|st| st.index > due.index)
        .map(|st| st.at.max(now));
    DunningAction::Send { step: **due, next }
}

/// What happened, provider-neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingEventKind {
    PaymentFailed,
    PaymentSucceeded,
    Refund,
}

impl BillingEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BillingEventKind::PaymentFailed => "payment_failed",
            BillingEventKind::PaymentSucceeded => "payment_succeeded",
            BillingEventKind::Refund => "refund",
        }
    }
}

/// An invoice as a billing event describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFacts {
    pub id: InvoiceId,
    pub customer: CustomerRef,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    /// The provider's page where this invoice can be paid or the card updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
}

/// A refund: posted to the loyalty ledger as a reversal of the order's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundFacts {
    pub id: String,
    pub customer: CustomerRef,
    pub order_id: Option<OrderId>,
    pub amount: Money,
    /// What the payment has had refunded in all, this refund included, where the provider says
    /// (Stripe's charge `amount_refunded`): partial refunds that together reach the whole order
    /// give every line back, as one whole refund would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_in_all: Option<Money>,
}

/// One billing event, whatever system sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingEvent {
    PaymentFailed(InvoiceFacts),
    PaymentSucceeded(InvoiceFacts),
    Refund(RefundFacts),
}

impl BillingEvent {
    pub fn kind(&self) -> BillingEventKind {
        match self {
            BillingEvent::PaymentFailed(_) => BillingEventKind::PaymentFailed,
            BillingEvent::PaymentSucceeded(_) => BillingEventKind::PaymentSucceeded,
            BillingEvent::Refund(_) => BillingEventKind::Refund,
        }
    }
}

/// Loyalty points a refund reverses: the refunded share of what the order earned, never more
/// than it earned (`earned` points for `order_value` minor units).
pub fn refund_reversal(earned: u64, order_value: i64, refunded: i64) -> u64 {
    if earned == 0 || order_value <= 0 || refunded <= 0 {
        return 0;
    }
    let refunded = refunded.min(order_value);
    let share = u128::from(earned) * u128::try_from(refunded).unwrap_or(0)
        / u128::try_from(order_value).unwrap_or(1);
    u64::try_from(share).unwrap_or(earned).min(earned)
}

/// Where a failed invoice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// In dunning.
    Failed,
    Paid,
    /// Dunning ran out without payment.
    Exhausted,
}

/// An invoice as stored (only invoices that failed, or were paid before we saw them fail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub merchant_id: MerchantId,
    pub invoice: InvoiceFacts,
    pub status: InvoiceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<Timestamp>,
    /// Paid after failing.
    #[serde(default)]
    pub recovered: bool,
    /// The first dunning step not yet handled (0 = the first email).
    #[serde(default)]
    pub next_step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_email_ms: Option<i64>,
    /// Emails sent per step kind (`first`, `reminder`, `final`, `recovered`).
    #[serde(default)]
    pub emails_first: u32,
    #[serde(default)]
    pub emails_reminder: u32,
    #[serde(default)]
    pub emails_final: u32,
    #[serde(default)]
    pub emails_recovered: u32,
    pub updated_at: Timestamp,
}

impl InvoiceRecord {
    /// An invoice entering dunning now, its first email (step 0) counted as sent.
    pub fn failed(merchant_id: MerchantId, invoice: InvoiceFacts, now: Timestamp) -> Self {
        Self {
            status: InvoiceStatus::Failed,
            first_failed_at: Some(now),
            paid_at: None,
            next_step: 1,
            last_email_ms: Some(now.as_millisecond()),
            emails_first: 1,
            ..Self::paid(merchant_id, invoice, now)
        }
    }

    /// An invoice paid now (before any failure we know of).
    pub fn paid(merchant_id: MerchantId, invoice: InvoiceFacts, now: Timestamp) -> Self {
        Self {
            merchant_id,
            invoice,
            status: InvoiceStatus::Paid,
            first_failed_at: None,
            paid_at: Some(now),
            recovered: false,
            next_step: 0,
            last_email_ms: None,
            emails_first: 0,
            emails_reminder: 0,
            emails_final: 0,
            emails_recovered: 0,
            updated_at: now,
        }
    }

    pub fn last_email_at(&self) -> Option<Timestamp> {
        self.last_email_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    }
}

/// The marker of the billing event being processed: the provider's event id makes a redelivery a
/// duplicate; the content hash tells a different event under the same id apart.
#[derive(Debug, Clone, Copy)]
pub struct EventKey<'a> {
    pub provider: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub content_hash: &'a str,
}

/// What a payment failure found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureOutcome {
    /// First failure: dunning started and we hold the first email's claim (or, `suppressed`, the
    /// claim was recorded as suppressed: nothing to send).
    Started { suppressed: bool },
    /// The invoice was already in dunning (a provider retry failed again): nothing to send now.
    AlreadyDunning,
    /// Already paid (a late failure): nothing changes, nothing is sent.
    AlreadyPaid,
    /// This event was processed before.
    Duplicate,
}

/// What a payment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Paid after failing: dunning stopped and we hold the "all set" email's claim (unless the
    /// recipient is `suppressed`).
    Recovered {
        suppressed: bool,
    },
    /// Paid without a failure we knew of: recorded so a late failure is ignored.
    PaidFirst,
    AlreadyPaid,
    Duplicate,
}

/// What a dunning step claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepClaim {
    Claimed,
    /// The invoice advanced; the step's email was recorded as suppressed (nothing to send).
    Suppressed,
    /// The invoice moved (paid, or another sweep took the step).
    Moved,
    /// The step's email was claimed before.
    ClaimExists,
}

/// What became of a loyalty reversal posted for a refund.
#[derive(Debug, Clone)]
pub enum Reversal {
    /// `entry` is on the ledger.
    Posted { entry: LedgerEntry },
    /// The decision chose nothing on this state.
    Declined(LoyaltyState),
    /// The entry's source was on the ledger already.
    Duplicate(LoyaltyState),
    /// The billing event's marker written with it existed already: the event was handled before.
    EventSeen,
    /// The ledger kept changing under the decision.
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const FAILED: &str = "2026-11-02T10:00:00Z";

    #[test]
    fn every_step_counts_its_emails_in_a_field_of_the_invoice() {
        let invoice: InvoiceFacts = serde_json::from_value(serde_json::json!({
            "id": "in_1",
            "customer": {"id": "cus_1", "email": "ann@example.com"},
            "amount": {"amount": 1999, "currency": "EUR"},
        }))
        .unwrap();
        let merchant = MerchantId::parse("m", "acme").unwrap();
        let record =
            serde_json::to_value(InvoiceRecord::failed(merchant, invoice, t(FAILED))).unwrap();
        for kind in [
            StepKind::First,
            StepKind::Reminder,
            StepKind::Final,
            StepKind::Exhausted,
        ] {
            assert!(record.get(kind.email_counter()).is_some(), "{kind:?}");
        }
    }

    #[test]
    fn default_cadence() {
        let s = DunningSettings::default();
        s.validate().unwrap();
        let steps = dunning_schedule(t(FAILED), &s);
        let days: Vec<_> = steps
            .iter()
            .map(|st| (st.kind, st.at.duration_since(t(FAILED)).as_hours() / 24))
            .collect();
        assert_eq!(
            days,
            vec![
                (StepKind::First, 0),
                (StepKind::Reminder, 3),
                (StepKind::Reminder, 5),
                (StepKind::Reminder, 7),
                (StepKind::Final, 12),
                (StepKind::Exhausted, 14),
            ]
        );
    }

    #[test]
    fn walks_the_cadence_one_email_per_step() {
        let s = DunningSettings::default();
        let at = |d: i64| {
            t(FAILED)
                .checked_add(SignedDuration::from_hours(24 * d))
                .unwrap()
        };
        // Day 1: step 0 was sent at the failure; next is day 3.
        assert_eq!(
            dunning_action(t(FAILED), 1, Some(t(FAILED)), at(1), &s),
            DunningAction::Wait { until: at(3) }
        );
        match dunning_action(t(FAILED), 1, Some(t(FAILED)), at(3), &s) {
            DunningAction::Send { step, next } => {
                assert_eq!((step.index, step.kind), (1, StepKind::Reminder));
                assert_eq!(next, Some(at(5)));
            }
            other => panic!("{other:?}"),
        }
        // Missed days 5 and 7: only the day-7 reminder goes, once.
        match dunning_action(t(FAILED), 2, Some(at(3)), at(8), &s) {
            DunningAction::Send { step, .. } => assert_eq!(step.index, 3),
            other => panic!("{other:?}"),
        }
        match dunning_action(t(FAILED), 4, Some(at(7)), at(12), &s) {
            DunningAction::Send { step, next } => {
                assert_eq!(step.kind, StepKind::Final);
                assert_eq!(next, Some(at(14)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            dunning_action(t(FAILED), 5, Some(at(12)), at(14), &s),
            DunningAction::Exhaust { .. }
        ));
        assert_eq!(
            dunning_action(t(FAILED), 6, Some(at(12)), at(20), &s),
            DunningAction::Done
        );
    }

    #[test]
    fn never_two_emails_within_the_gap() {
        let s = DunningSettings {
            reminder_days: vec![1, 2],
            ..DunningSettings::default()
        };
        let at = |h: i64| {
            t(FAILED)
                .checked_add(SignedDuration::from_hours(h))
                .unwrap()
        };
        assert_eq!(
            dunning_action(t(FAILED), 1, Some(t(FAILED)), at(24), &s),
            DunningAction::Wait { until: at(48) }
        );
    }

    #[test]
    fn settings_are_checked() {
        for bad in [
            DunningSettings {
                reminder_days: vec![5, 3],
                ..DunningSettings::default()
            },
            DunningSettings {
                reminder_days: vec![3, 12],
                ..DunningSettings::default()
            },
            DunningSettings {
                final_notice_days_before: 14,
                ..DunningSettings::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refund_reverses_the_refunded_share() {
        assert_eq!(refund_reversal(199, 19_900, 19_900), 199);
        assert_eq!(refund_reversal(199, 19_900, 9_950), 99);
        assert_eq!(refund_reversal(199, 19_900, 50_000), 199);
        assert_eq!(refund_reversal(0, 19_900, 100), 0);
    }

    proptest! {
        /// Walking the cadence by the sweep's own answers sends each step at most once, never two
        /// emails within the gap, and always ends exhausted.
        #[test]
        fn cadence_walk(hours_between_runs in 1i64..72) {
            let s = DunningSettings::default();
            let failed = t(FAILED);
            let mut next_index = 1;
            let mut last = Some(failed);
            let mut now = failed;
            let mut sent = vec![0u32];
            let mut exhausted = false;
            for _ in 0..2000 {
                now = now.checked_add(SignedDuration::from_hours(hours_between_runs)).unwrap();
                match dunning_action(failed, next_index, last, now, &s) {
                    DunningAction::Send { step, .. } => {
                        prop_assert!(now.duration_since(last.unwrap()) >= SignedDuration::from_hours(48));
                        prop_assert!(!sent.contains(&step.index));
                        sent.push(step.index);
                        next_index = step.index + 1;
                        last = Some(now);
                    }
                    DunningAction::Exhaust { step } => { next_index = step.index + 1; exhausted = true; }
                    DunningAction::Wait { until } => prop_assert!(until > failed),
                    DunningAction::Done => break,
                }
            }
            prop_assert!(exhausted);
        }
    }
}
