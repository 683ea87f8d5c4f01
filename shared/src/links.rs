//! The signed links in Aftercare's emails and pages, one type for every function: a survey score,
//! unsubscribe, the preference page, a subscription's manage/renew/update-payment links, an
//! invoice's update-payment link and a shipment's tracking page. Each is `<public base><path>/<token>` where the token names the
//! merchant, the purpose and the subject ([`crate::token`]), so a link for one purpose or merchant
//! is useless for another, and every link expires.
//!
//! Built once at init from `AFTERCARE_PUBLIC_BASE_URL` and `AFTERCARE_SIGNING_KEY`
//! ([`Links::from_config`]): a function that sends links fails at init without them, not on its
//! first email.

use crate::config::{Config, ConfigError};
use crate::domain::MerchantId;
use crate::domain::billing::InvoiceFacts;
use crate::domain::ids::SubscriptionId;
use crate::domain::shipment::ShipmentRecord;
use crate::token::{Claims, LinkSigner, SigningKey, TokenError};
use jiff::{SignedDuration, Timestamp};

/// Token purposes.
pub mod purpose {
    /// A survey score link.
    pub const SURVEY: &str = "survey";
    /// The unsubscribe link (also the RFC 8058 one-click URL).
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// The customer's preference page.
    pub const PREFERENCES: &str = "preferences";
    /// A subscription's manage, renew or update-payment link.
    pub const SUBSCRIPTION: &str = "subscription";
    /// An invoice's update-payment link.
    pub const INVOICE: &str = "invoice";
    /// A shipment's branded tracking page.
    pub const TRACK: &str = "track";
}

/// How long an unsubscribe or preference link works.
pub const UNSUBSCRIBE_LINK_DAYS: i64 = 400;
/// How long links in a subscription notice work after the renewal (or card expiry) they are about.
pub const SUBSCRIPTION_LINK_GRACE_DAYS: i64 = 60;
/// How long an update-payment link works after the invoice's cancellation date.
pub const INVOICE_LINK_GRACE_DAYS: i64 = 7;
/// How long a tracking-page link works after the shipment was created, or delivered if it was
/// delivered later (see [`Links::tracking_page`]).
pub const TRACK_LINK_DAYS: i64 = 90;

#[derive(Clone)]
pub struct Links(LinkSigner);

fn after_days(t: Timestamp, days: i64) -> Timestamp {
    t.saturating_add(SignedDuration::from_hours(24 * days))
        .unwrap_or(t)
}

impl Links {
    pub fn new(base: &str, key: SigningKey) -> Self {
        Self(LinkSigner::new(base, key))
    }

    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        config.link_signer().map(Self)
    }

    /// The claims of `token` if it was signed by us for `purpose` and has not expired at `now`.
    pub fn verify(&self, token: &str, purpose: &str, now: Timestamp) -> Result<Claims, TokenError> {
        self.0.verify(token, purpose, now)
    }

    /// The public base URL (pages post their forms back to the same origin).
    pub fn base(&self) -> &str {
        self.0.base()
    }

    /// A one-click score link for an order's survey.
    pub fn survey(
        &self,
        merchant: &str,
        customer: &str,
        order: &str,
        score: u8,
        expires: Timestamp,
    ) -> String {
        self.0.url(
            "/v1/survey",
            &Claims {
                merchant: merchant.to_owned(),
                purpose: purpose::SURVEY.into(),
                subject: format!("{customer}/{order}"),
                value: Some(score.to_string()),
                expires: expires.as_second(),
            },
        )
    }

    /// The unsubscribe link (also the RFC 8058 one-click URL). `masked` is shown on its page.
    pub fn unsubscribe(
        &self,
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        let page = ("/v1/unsubscribe", purpose::UNSUBSCRIBE);
        self.customer_page(page, merchant, customer, masked, now)
    }

    /// The signed preference page of a customer (as long-lived as the unsubscribe link).
    pub fn preferences(
        &self,
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        let page = ("/v1/preferences", purpose::PREFERENCES);
        self.customer_page(page, merchant, customer, masked, now)
    }

    /// A signed link to one of a customer's own pages, valid [`UNSUBSCRIBE_LINK_DAYS`].
    fn customer_page(
        &self,
        (path, purpose): (&str, &str),
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        self.0.url(
            path,
            &Claims {
                merchant: merchant.to_owned(),
                purpose: purpose.into(),
                subject: customer.to_owned(),
                value: Some(masked.to_owned()),
                expires: after_days(now, UNSUBSCRIBE_LINK_DAYS).as_second(),
            },
        )
    }

    /// A subscription's one-click link: `manage`, `renew` or `update_payment`. The hosted page
    /// takes the same token (`/v1/subscription-page/{token}`).
    pub fn subscription(
        &self,
        merchant: &MerchantId,
        sub: &SubscriptionId,
        action: &str,
        until: Timestamp,
    ) -> String {
        self.0.url(
            "/v1/subscription-links",
            &Claims {
                merchant: merchant.to_string(),
                purpose: purpose::SUBSCRIPTION.into(),
                subject: sub.to_string(),
                value: Some(action.to_owned()),
                expires: after_days(until, SUBSCRIPTION_LINK_GRACE_DAYS).as_second(),
            },
        )
    }

    /// The update-payment link for an invoice, valid until a week after the cancellation date.
    pub fn update_payment(&self, m: &MerchantId, inv: &InvoiceFacts, until: Timestamp) -> String {
        self.0.url(
            "/v1/billing-links",
            &Claims {
                merchant: m.to_string(),
                purpose: purpose::INVOICE.into(),
                subject: inv.id.to_string(),
                value: inv.payment_url.clone(),
                expires: after_days(until, INVOICE_LINK_GRACE_DAYS).as_second(),
            },
        )
    }

    /// The branded tracking page of a shipment (`/v1/track/<token>`, subject: the shipment id).
    ///
    /// The link works until [`TRACK_LINK_DAYS`] after the later of the shipment's creation and
    /// its delivery, as known when the link is made: the link of the "shipped" email runs 90 days
    /// from shipping, the "delivered" email's and the order API's after delivery 90 days from
    /// delivery. The same shipment state always gives the same expiry.
    pub fn tracking_page(&self, record: &ShipmentRecord) -> String {
        let delivered = record.state().delivered_at();
        let since = delivered.map_or(record.created_at, |d| d.max(record.created_at));
        self.0.url(
            "/v1/track",
            &Claims {
                merchant: record.merchant_id.to_string(),
                purpose: purpose::TRACK.into(),
                subject: record.shipment.id.to_string(),
                value: None,
                expires: after_days(since, TRACK_LINK_DAYS).as_second(),
            },
        )
    }
}
