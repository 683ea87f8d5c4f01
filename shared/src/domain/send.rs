//! What an email is and the record that makes sending it exactly-once.
//!
//! * [`EmailKind`]: every kind of email Aftercare sends, and its [`MailClass`].
//! * [`SendIdentity`]: the business identity of one email (merchant, customer, kind, subject,
//!   step). The store derives the send record's key from it and nothing else, so an email's
//!   identity is spelled once, where the decision to send it is taken.
//! * [`SendRecord`] and [`SendStatus`]: the claim's state machine (see
//!   [`crate::usecases::send`] for the protocol that moves it).

use super::{CustomerId, MerchantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every kind of email Aftercare sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    OrderThanks,
    ShipmentShipped,
    ShipmentOutForDelivery,
    ShipmentAvailableForPickup,
    ShipmentDelivered,
    ShipmentAttemptFailed,
    ShipmentException,
    ShipmentLate,
    /// To the merchant's operations address.
    MerchantLateAlert,
    UsageTips,
    FeedbackSurvey,
    ReviewRequest,
    CrossSell,
    /// To the merchant's operations address: a detractor answered the survey.
    MerchantDetractorAlert,
    /// A subscription renews (or, cancelled, ends) soon.
    RenewalReminder,
    /// The card on file expires before the next renewal.
    CardExpiring,
    /// A renewal reminder that also asks for a new card (the two fell within days of each other).
    RenewalAndCard,
    /// A payment failed: the first email and the reminders of the dunning cadence.
    PaymentFailed,
    /// The last notice before the merchant cancels.
    PaymentFinalNotice,
    /// The payment went through after failing: "you're all set".
    PaymentRecovered,
    /// To the merchant's operations address: dunning ran out without recovery.
    MerchantDunningAlert,
    /// A referral reward became available.
    LoyaltyReferralReward,
    /// The customer's points expire in 14 days.
    LoyaltyPointsExpiring,
    /// To the merchant's operations address: the 7-day spam complaint rate is above 0.1%.
    MerchantComplaintAlert,
    /// The shop cancelled the order (sent only where the merchant turned it on).
    OrderCancelled,
    /// The carrier now expects the parcel on another day (once per revision).
    ShipmentNewDate,
    /// The customer asked to return items: we have the request, here is what happens next.
    ReturnRequested,
    /// The return was approved: send the items back (by a date), with the label or instructions.
    ReturnApproved,
    /// The return was not accepted, and why.
    ReturnRejected,
    /// The approved return has not been sent back yet.
    ReturnReminder,
    /// The returned parcel arrived: what happens next for the chosen resolution.
    ReturnReceived,
    /// Money went back to the customer (a return's refund or any refund from the shop or payment provider).
    RefundIssued,
    /// Store credit was added to the customer's balance.
    StoreCreditIssued,
    /// The replacement items of an exchange are on their way.
    ExchangeShipped,
}

impl EmailKind {
    pub const ALL: &'static [EmailKind] = &[
        EmailKind::OrderThanks,
        EmailKind::ShipmentShipped,
        EmailKind::ShipmentOutForDelivery,
        EmailKind::ShipmentAvailableForPickup,
        EmailKind::ShipmentDelivered,
        EmailKind::ShipmentAttemptFailed,
        EmailKind::ShipmentException,
        EmailKind::ShipmentLate,
        EmailKind::MerchantLateAlert,
        EmailKind::UsageTips,
        EmailKind::FeedbackSurvey,
        EmailKind::ReviewRequest,
        EmailKind::CrossSell,
        EmailKind::MerchantDetractorAlert,
        EmailKind::RenewalReminder,
        EmailKind::CardExpiring,
        EmailKind::RenewalAndCard,
        EmailKind::PaymentFailed,
        EmailKind::PaymentFinalNotice,
        EmailKind::PaymentRecovered,
        EmailKind::MerchantDunningAlert,
        EmailKind::LoyaltyReferralReward,
        EmailKind::LoyaltyPointsExpiring,
        EmailKind::MerchantComplaintAlert,
        EmailKind::OrderCancelled,
        EmailKind::ShipmentNewDate,
        EmailKind::ReturnRequested,
        EmailKind::ReturnApproved,
        EmailKind::ReturnRejected,
        EmailKind::ReturnReminder,
        EmailKind::ReturnReceived,
        EmailKind::RefundIssued,
        EmailKind::StoreCreditIssued,
        EmailKind::ExchangeShipped,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EmailKind::OrderThanks => "order_thanks",
            EmailKind::ShipmentShipped => "shipment_shipped",
            EmailKind::ShipmentOutForDelivery => "shipment_out_for_delivery",
            EmailKind::ShipmentAvailableForPickup => "shipment_available_for_pickup",
            EmailKind::ShipmentDelivered => "shipment_delivered",
            EmailKind::ShipmentAttemptFailed => "shipment_attempt_failed",
            EmailKind::ShipmentException => "shipment_exception",
            EmailKind::ShipmentLate => "shipment_late",
            EmailKind::MerchantLateAlert => "merchant_late_alert",
            EmailKind::UsageTips => "usage_tips",
            EmailKind::FeedbackSurvey => "feedback_survey",
            EmailKind::ReviewRequest => "review_request",
            EmailKind::CrossSell => "cross_sell",
            EmailKind::MerchantDetractorAlert => "merchant_detractor_alert",
            EmailKind::RenewalReminder => "renewal_reminder",
            EmailKind::CardExpiring => "card_expiring",
            EmailKind::RenewalAndCard => "renewal_and_card",
            EmailKind::PaymentFailed => "payment_failed",
            EmailKind::PaymentFinalNotice => "payment_final_notice",
            EmailKind::PaymentRecovered => "payment_recovered",
            EmailKind::MerchantDunningAlert => "merchant_dunning_alert",
            EmailKind::LoyaltyReferralReward => "loyalty_referral_reward",
            EmailKind::LoyaltyPointsExpiring => "loyalty_points_expiring",
            EmailKind::MerchantComplaintAlert => "merchant_complaint_alert",
            EmailKind::OrderCancelled => "order_cancelled",
            EmailKind::ShipmentNewDate => "shipment_new_date",
            EmailKind::ReturnRequested => "return_requested",
            EmailKind::ReturnApproved => "return_approved",
            EmailKind::ReturnRejected => "return_rejected",
            EmailKind::ReturnReminder => "return_reminder",
            EmailKind::ReturnReceived => "return_received",
            EmailKind::RefundIssued => "refund_issued",
            EmailKind::StoreCreditIssued => "store_credit_issued",
            EmailKind::ExchangeShipped => "exchange_shipped",
        }
    }

    /// The built-in template family the kind renders with.
    pub fn template(&self) -> &'static str {
        match self {
            EmailKind::OrderThanks => "order_thanks",
            EmailKind::OrderCancelled => "order_cancelled",
            EmailKind::MerchantLateAlert => "merchant_alert",
            EmailKind::UsageTips
            | EmailKind::FeedbackSurvey
            | EmailKind::ReviewRequest
            | EmailKind::CrossSell => "followup",
            EmailKind::MerchantDetractorAlert => "detractor_alert",
            EmailKind::RenewalReminder
            | EmailKind::CardExpiring
            | EmailKind::RenewalAndCard
            | EmailKind::PaymentFailed
            | EmailKind::PaymentFinalNotice
            | EmailKind::PaymentRecovered => "billing",
            EmailKind::MerchantDunningAlert => "billing_alert",
            EmailKind::MerchantComplaintAlert => "complaint_alert",
            EmailKind::LoyaltyReferralReward | EmailKind::LoyaltyPointsExpiring => "loyalty",
            EmailKind::ReturnRequested
            | EmailKind::ReturnApproved
            | EmailKind::ReturnRejected
            | EmailKind::ReturnReminder
            | EmailKind::ReturnReceived
            | EmailKind::RefundIssued
            | EmailKind::StoreCreditIssued
            | EmailKind::ExchangeShipped => "returns",
            _ => "shipment",
        }
    }

    pub fn class(&self) -> MailClass {
        match self {
            EmailKind::UsageTips
            | EmailKind::FeedbackSurvey
            | EmailKind::ReviewRequest
            | EmailKind::CrossSell => MailClass::Marketing,
            _ => MailClass::Transactional,
        }
    }

    /// What becomes of an email of this kind parked `ambiguous` when SES stayed silent about it
    /// for the whole silence window: transactional mail (a receipt, a shipping notice, a payment
    /// failure) is sent once more, marketing is closed as never sent.
    pub fn after_silence(&self) -> AfterSilence {
        match self.class() {
            MailClass::Transactional => AfterSilence::Resend,
            MailClass::Marketing => AfterSilence::Close,
        }
    }

    /// The kind named `name` (its [`EmailKind::as_str`]).
    pub fn parse(name: &str) -> Option<EmailKind> {
        EmailKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// What a periodic merchant alert of this kind is about, in its reference.
    pub fn alert_topic(&self) -> &'static str {
        match self {
            EmailKind::MerchantComplaintAlert => "complaint_rate",
            other => other.as_str(),
        }
    }

    /// Whether the email goes to the merchant's own people rather than a customer.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            EmailKind::MerchantLateAlert
                | EmailKind::MerchantDetractorAlert
                | EmailKind::MerchantDunningAlert
                | EmailKind::MerchantComplaintAlert
        )
    }
}

impl From<super::followup::FollowUpKind> for EmailKind {
    fn from(k: super::followup::FollowUpKind) -> Self {
        use super::followup::FollowUpKind as F;
        match k {
            F::UsageTips => EmailKind::UsageTips,
            F::FeedbackSurvey => EmailKind::FeedbackSurvey,
            F::ReviewRequest => EmailKind::ReviewRequest,
            F::CrossSell => EmailKind::CrossSell,
        }
    }
}

/// The policy for a parked send that SES never spoke about (see [`EmailKind::after_silence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSilence {
    /// Sent once more, under a new claim that records why ([`Resolution::ResentAfterSilence`]).
    Resend,
    /// Closed as [`SendStatus::Unsent`] ([`Resolution::ClosedAfterSilence`]).
    Close,
}

/// How a parked (`ambiguous`) send was decided once the silence window passed, kept on its
/// record for the message log and the explain trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// No SES event came for it: the (transactional) email was sent once more.
    ResentAfterSilence,
    /// No SES event came for it: the (marketing) email was closed as never sent.
    ClosedAfterSilence,
}

impl Resolution {
    pub fn as_str(&self) -> &'static str {
        match self {
            Resolution::ResentAfterSilence => "resent_after_silence",
            Resolution::ClosedAfterSilence => "closed_after_silence",
        }
    }
}

/// Transactional mail (thank-you, shipping, billing) goes to everyone not suppressed;
/// marketing-class mail (surveys, reviews, tips, cross-sell) also honours unsubscribes, caps and
/// quiet hours, and carries one-click unsubscribe headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailClass {
    Transactional,
    Marketing,
}

/// The `customer_id` of a send record addressed to the merchant rather than a customer.
pub const MERCHANT_AUDIENCE: &str = "merchant";

/// The business identity of one email: at most one email is ever sent per identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SendIdentity {
    pub merchant: MerchantId,
    /// The customer the email is to or about; `None` for a periodic alert to the merchant's own
    /// people that concerns no one customer.
    pub customer: Option<CustomerId>,
    pub kind: EmailKind,
    /// What the email is about (an order, a shipment, an invoice, a subscription's renewal).
    pub subject: String,
    /// Which of a series (a dunning step, a reminder's lead days); 0 for one-off emails.
    pub step: u32,
}

impl SendIdentity {
    pub fn new(
        merchant: &MerchantId,
        customer: &CustomerId,
        kind: EmailKind,
        subject: &str,
        step: u32,
    ) -> Self {
        Self {
            merchant: merchant.clone(),
            customer: Some(customer.clone()),
            kind,
            subject: subject.to_owned(),
            step,
        }
    }

    /// The alert of `kind` to the merchant's own people for `period` (at most one per period).
    pub fn merchant_alert(merchant: &MerchantId, kind: EmailKind, period: &str) -> Self {
        Self {
            merchant: merchant.clone(),
            customer: None,
            kind,
            subject: period.to_owned(),
            step: 0,
        }
    }

    /// The reference an email carries (`X-Aftercare-Ref`) so its SES events find their send
    /// record: unique within the merchant.
    pub fn reference(&self) -> String {
        match &self.customer {
            Some(customer) => format!(
                "SEND#{customer}#{}#{}#{}",
                self.kind.as_str(),
                self.subject,
                self.step
            ),
            None => format!("ALERT#{}#{}", self.kind.alert_topic(), self.subject),
        }
    }

    /// A new claim on this email for `recipient`, held until `lease_until`.
    pub fn claim(&self, recipient: &str, now: Timestamp, lease_until: Timestamp) -> SendRecord {
        SendRecord {
            kind: self.kind.as_str().to_owned(),
            subject: self.subject.clone(),
            step: self.step,
            customer_id: self
                .customer
                .as_ref()
                .map_or_else(|| MERCHANT_AUDIENCE.to_owned(), ToString::to_string),
            recipient: recipient.to_owned(),
            status: SendStatus::InProgress,
            claim_token: super::ids::new_id(),
            lease_until_ms: lease_until.as_millisecond(),
            attempts: 1,
            message_id: None,
            sent_at: None,
            last_error: None,
            created_at: now,
            resolution: None,
            resolved_at: None,
            parked_message: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    InProgress,
    Sent,
    Retry,
    Failed,
    Ambiguous,
    /// Never sent: the recipient was suppressed when the claim was taken.
    Suppressed,
    /// Never sent, on the evidence: parked `ambiguous`, no SES event came within the silence
    /// window, and the kind is marketing (a survey or a tip is better missed than repeated).
    Unsent,
}

impl SendStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SendStatus::InProgress => "in_progress",
            SendStatus::Sent => "sent",
            SendStatus::Retry => "retry",
            SendStatus::Failed => "failed",
            SendStatus::Ambiguous => "ambiguous",
            SendStatus::Suppressed => "suppressed",
            SendStatus::Unsent => "unsent",
        }
    }
}

/// One email's send record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub kind: String,
    /// What the email is about (an order id, a subscription id).
    pub subject: String,
    pub step: u32,
    pub customer_id: String,
    pub recipient: String,
    pub status: SendStatus,
    /// Random token of the attempt that holds the claim.
    pub claim_token: String,
    /// Epoch milliseconds until which the holder may still be sending.
    pub lease_until_ms: i64,
    pub attempts: u32,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    /// How a parked send was decided after SES's silence, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The composed message, kept (as the transport's JSON) only while the send is parked and
    /// may yet be sent once more; removed when it is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked_message: Option<String>,
}

impl SendRecord {
    pub fn lease_expired(&self, now: Timestamp) -> bool {
        now.as_millisecond() >= self.lease_until_ms
    }

    /// The identity of this record in `merchant`'s partition (none if its kind is unknown to
    /// this version).
    pub fn identity(&self, merchant: &MerchantId) -> Option<SendIdentity> {
        let kind = EmailKind::parse(&self.kind)?;
        let customer = match self.customer_id.as_str() {
            MERCHANT_AUDIENCE => None,
            id => Some(CustomerId::parse("customer_id", id).ok()?),
        };
        Some(SendIdentity {
            merchant: merchant.clone(),
            customer,
            kind,
            subject: self.subject.clone(),
            step: self.step,
        })
    }
}

/// A send parked `ambiguous`: what is kept so the silence sweep can decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The composed message as JSON (none when it could not be kept: then a resend is not
    /// possible and the send is closed instead).
    pub message: Option<String>,
    /// When the silence window ends and the send is decided, unless SES spoke first.
    pub decide_at: Timestamp,
}

/// Largest composed message kept on a parked record (DynamoDB items hold at most 400 KB).
pub const MAX_PARKED_MESSAGE: usize = 300_000;

/// What happened when a claim was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// We hold the claim with this record.
    Claimed(SendRecord),
    /// Someone else holds or held it; this is their record.
    Taken(SendRecord),
    /// The recipient is suppressed: the record says so and nothing may be sent.
    Suppressed,
}

/// What re-claiming a record left in `retry` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclaim {
    Claimed,
    /// Another attempt moved the record first.
    Lost,
    /// The recipient was suppressed since: the record is now `suppressed`.
    Suppressed,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETURN_KINDS: [(EmailKind, &str); 8] = [
        (EmailKind::ReturnRequested, "return_requested"),
        (EmailKind::ReturnApproved, "return_approved"),
        (EmailKind::ReturnRejected, "return_rejected"),
        (EmailKind::ReturnReminder, "return_reminder"),
        (EmailKind::ReturnReceived, "return_received"),
        (EmailKind::RefundIssued, "refund_issued"),
        (EmailKind::StoreCreditIssued, "store_credit_issued"),
        (EmailKind::ExchangeShipped, "exchange_shipped"),
    ];

    #[test]
    fn return_and_refund_kinds_are_transactional_customer_mail() {
        for (kind, name) in RETURN_KINDS {
            assert_eq!(kind.as_str(), name);
            assert_eq!(EmailKind::parse(name), Some(kind));
            assert!(EmailKind::ALL.contains(&kind), "{kind:?} in ALL");
            assert_eq!(kind.class(), MailClass::Transactional, "{kind:?}");
            assert_eq!(kind.after_silence(), AfterSilence::Resend, "{kind:?}");
            assert!(!kind.is_internal(), "{kind:?} goes to the customer");
            assert_eq!(kind.template(), "returns", "{kind:?}");
        }
    }
}
