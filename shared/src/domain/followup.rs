//! The post-delivery journey: which follow-ups are due when.
//!
//! Delivery of the whole order (every shipment delivered) anchors the journey. If no delivery scan
//! arrives within `fallback_after_days` of shipping, the journey is anchored to shipping + that many
//! days instead.

use super::OrderId;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    UsageTips,
    FeedbackSurvey,
    CrossSell,
    ReviewRequest,
}

impl FollowUpKind {
    pub const ALL: [FollowUpKind; 4] = [
        FollowUpKind::UsageTips,
        FollowUpKind::FeedbackSurvey,
        FollowUpKind::CrossSell,
        FollowUpKind::ReviewRequest,
    ];

    /// The kind named `name` (its `as_str`), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FollowUpKind::UsageTips => "usage_tips",
            FollowUpKind::FeedbackSurvey => "feedback_survey",
            FollowUpKind::CrossSell => "cross_sell",
            FollowUpKind::ReviewRequest => "review_request",
        }
    }
}

/// One step of the journey: days after the anchor, or `None` when the merchant turned it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub enabled: bool,
    pub after_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JourneySettings {
    pub usage_tips: Step,
    pub feedback_survey: Step,
    pub cross_sell: Step,
    pub review_request: Step,
    /// Anchor the journey to shipping + this many days when no delivery scan arrives.
    pub fallback_after_days: u32,
}

impl Default for JourneySettings {
    fn default() -> Self {
        Self {
            usage_tips: Step {
                enabled: true,
                after_days: 3,
            },
            feedback_survey: Step {
                enabled: true,
                after_days: 7,
            },
            cross_sell: Step {
                enabled: true,
                after_days: 10,
            },
            review_request: Step {
                enabled: true,
                after_days: 14,
            },
            fallback_after_days: 10,
        }
    }
}

impl JourneySettings {
    pub fn step(&self, kind: FollowUpKind) -> Step {
        match kind {
            FollowUpKind::UsageTips => self.usage_tips,
            FollowUpKind::FeedbackSurvey => self.feedback_survey,
            FollowUpKind::CrossSell => self.cross_sell,
            FollowUpKind::ReviewRequest => self.review_request,
        }
    }

    /// The follow-ups due after `anchor`, in time order.
    pub fn schedule(&self, anchor: Timestamp) -> Vec<(FollowUpKind, Timestamp)> {
        let mut due: Vec<_> = FollowUpKind::ALL
            .into_iter()
            .filter_map(|k| {
                let step = self.step(k);
                step.enabled.then(|| {
                    (
                        k,
                        anchor.saturating_add(SignedDuration::from_hours(
                            24 * i64::from(step.after_days),
                        )),
                    )
                })
            })
            .filter_map(|(k, t)| t.ok().map(|t| (k, t)))
            .collect();
        due.sort_by_key(|(k, t)| (*t, *k));
        due
    }

    /// When to anchor the journey without a delivery scan.
    pub fn fallback_anchor(&self, shipped_at: Timestamp) -> Timestamp {
        shipped_at
            .saturating_add(SignedDuration::from_hours(
                24 * i64::from(self.fallback_after_days),
            ))
            .unwrap_or(shipped_at)
    }
}

/// Where a follow-up stands. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// In the due index, waiting for its time.
    Scheduled,
    /// A sweep holds it and is sending.
    Sending,
    Sent,
    /// Decided against for good (unsubscribed, opted out, answered already, ...).
    Skipped,
    /// Withdrawn before it started (a return, a cancellation).
    Cancelled,
    Failed,
    /// SES may or may not have sent it; reconciled from SES events.
    Ambiguous,
}

impl FollowUpStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            FollowUpStatus::Scheduled => "scheduled",
            FollowUpStatus::Sending => "sending",
            FollowUpStatus::Sent => "sent",
            FollowUpStatus::Skipped => "skipped",
            FollowUpStatus::Cancelled => "cancelled",
            FollowUpStatus::Failed => "failed",
            FollowUpStatus::Ambiguous => "ambiguous",
        }
    }
}

impl std::fmt::Display for FollowUpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What anchored an order's journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorReason {
    /// Every shipment of the order was delivered.
    Delivered,
    /// No delivery scan arrived within the fallback window; anchored to shipping + the window.
    NoDeliveryScan,
}

impl AnchorReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            AnchorReason::Delivered => "delivered",
            AnchorReason::NoDeliveryScan => "no_delivery_scan",
        }
    }
}

/// What was decided about a follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionAction {
    /// Not now (quiet hours, frequency cap); due again at `until`.
    Deferred,
    Skipped,
    Sent,
    Cancelled,
    /// Moved to another time by an event (brought forward).
    Rescheduled,
    Failed,
    Ambiguous,
}

impl DecisionAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionAction::Deferred => "deferred",
            DecisionAction::Skipped => "skipped",
            DecisionAction::Sent => "sent",
            DecisionAction::Cancelled => "cancelled",
            DecisionAction::Rescheduled => "rescheduled",
            DecisionAction::Failed => "failed",
            DecisionAction::Ambiguous => "ambiguous",
        }
    }
}

/// The final status a follow-up settles in after `action` (`None` for actions that keep it due).
impl DecisionAction {
    pub fn settles_as(&self) -> Option<FollowUpStatus> {
        match self {
            DecisionAction::Deferred | DecisionAction::Rescheduled => None,
            DecisionAction::Skipped => Some(FollowUpStatus::Skipped),
            DecisionAction::Sent => Some(FollowUpStatus::Sent),
            DecisionAction::Cancelled => Some(FollowUpStatus::Cancelled),
            DecisionAction::Failed => Some(FollowUpStatus::Failed),
            DecisionAction::Ambiguous => Some(FollowUpStatus::Ambiguous),
        }
    }
}

/// One decision about a follow-up, kept on it for the merchant (why did it or did it not go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub at: Timestamp,
    pub action: DecisionAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl DecisionEntry {
    pub fn new(at: Timestamp, action: DecisionAction, reason: Option<&str>) -> Self {
        Self {
            at,
            action,
            reason: reason.map(str::to_owned),
            until: None,
        }
    }
}

/// A scheduled follow-up email and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub order_id: OrderId,
    pub customer_id: String,
    /// The customer's address when the journey was anchored (for the suppression look-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub kind: FollowUpKind,
    pub due_at: Timestamp,
    pub anchor: Timestamp,
    pub anchor_reason: AnchorReason,
    pub status: FollowUpStatus,
    /// Every decision taken about it (deferrals, skips, the send), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionEntry>,
    /// Why it settled as it did (the last decision's reason, else its status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The order's distinct SKUs (the first [`super::catalogue::MAX_FOLLOW_UP_SKUS`]): the
    /// products a usage-tips or cross-sell follow-up reads along with the order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<super::catalogue::Sku>,
    /// The order's lines refunded or returned since it was scheduled: its email never names them
    /// (no review asked for, no "you bought" about them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunded_skus: Vec<super::catalogue::Sku>,
}

/// What taking refunded lines out of a follow-up did to it
/// ([`crate::ports::feedback::FeedbackBook::drop_follow_up_skus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesDropped {
    /// It keeps other lines to talk about; the refunded ones are recorded on it.
    Trimmed,
    /// None of its lines is left: it is cancelled.
    Cancelled,
}

/// A follow-up's SKU lists once `dropped` are taken out: what is left to talk about, and every
/// line refunded so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithoutLines {
    pub skus: Vec<super::catalogue::Sku>,
    pub refunded_skus: Vec<super::catalogue::Sku>,
    /// Nothing is left of the lines it had: it is to be cancelled.
    pub cancel: bool,
}

impl FollowUp {
    /// The follow-up's SKU lists without `dropped`, or `None` when that changes nothing (they
    /// were taken out before: a redelivered refund). A follow-up that kept no SKUs (scheduled
    /// before it did) is never cancelled here: it only records them.
    pub fn without_lines(&self, dropped: &[super::catalogue::Sku]) -> Option<WithoutLines> {
        let skus: Vec<_> = self
            .skus
            .iter()
            .filter(|s| !dropped.contains(s))
            .cloned()
            .collect();
        let mut refunded_skus = self.refunded_skus.clone();
        for sku in dropped {
            if !refunded_skus.contains(sku) {
                refunded_skus.push(sku.clone());
            }
        }
        if skus == self.skus && refunded_skus == self.refunded_skus {
            return None;
        }
        Some(WithoutLines {
            cancel: !self.skus.is_empty() && skus.is_empty(),
            skus,
            refunded_skus,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_offsets() {
        let anchor: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
        let s = JourneySettings::default().schedule(anchor);
        let days: Vec<_> = s
            .iter()
            .map(|(k, t)| (k.as_str(), (t.as_second() - anchor.as_second()) / 86_400))
            .collect();
        assert_eq!(
            days,
            vec![
                ("usage_tips", 3),
                ("feedback_survey", 7),
                ("cross_sell", 10),
                ("review_request", 14)
            ]
        );
    }

    #[test]
    fn disabled_steps_are_left_out() {
        let mut j = JourneySettings::default();
        j.cross_sell.enabled = false;
        j.feedback_survey.after_days = 5;
        let anchor: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
        let kinds: Vec<_> = j.schedule(anchor).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            vec![
                FollowUpKind::UsageTips,
                FollowUpKind::FeedbackSurvey,
                FollowUpKind::ReviewRequest
            ]
        );
    }
}
