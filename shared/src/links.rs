//! The signed links in Aftercare's emails and pages, one type for every function: a survey score,
//! unsubscribe, the preference page, a subscription's manage/renew/update-payment links, an
//! invoice's update-payment link, a shipment's tracking page and an order's return portal. Each is `<public base><path>/<token>` where the token names the
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
use crate::domain::returns::ReturnPolicy;
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
    /// An order's return portal.
    pub const RETURN: &str = "return";
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
/// How long a return-portal link works after the policy's return window has closed (the page
/// itself then says the window has closed).
pub const RETURN_LINK_GRACE_DAYS: i64 = 14;

/// When a return-portal link made at `from` (the delivery, or the order when it was never
/// delivered) stops working: the policy's window plus [`RETURN_LINK_GRACE_DAYS`].
pub fn return_link_expiry(policy: &ReturnPolicy, from: Timestamp) -> Timestamp {
    after_days(
        from,
        i64::from(policy.window_days).saturating_add(RETURN_LINK_GRACE_DAYS),
    )
}

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

    /// An order's return portal (`/v1/return/<token>`, subject: the order id), valid until
    /// `expires` (see [`return_link_expiry`]).
    pub fn return_page(&self, merchant: &str, order: &str, expires: Timestamp) -> String {
        self.0.url(
            "/v1/return",
            &Claims {
                merchant: merchant.to_owned(),
                purpose: purpose::RETURN.into(),
                subject: order.to_owned(),
                value: None,
                expires: expires.as_second(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links::new("https://api.test", SigningKey::new(&[7u8; 32]).unwrap())
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn token(url: &str) -> &str {
        url.strip_prefix("https://api.test/v1/return/").unwrap()
    }

    #[test]
    fn a_return_link_names_the_merchant_and_the_order_until_it_expires() {
        let l = links();
        let expires = ts("2026-12-30T00:00:00Z");
        let url = l.return_page("m1", "SO-1", expires);
        let claims = l
            .verify(token(&url), purpose::RETURN, ts("2026-12-29T23:59:59Z"))
            .unwrap();
        assert_eq!(claims.merchant, "m1");
        assert_eq!(claims.subject, "SO-1");
        assert_eq!(claims.expires, expires.as_second());
        assert!(matches!(
            l.verify(token(&url), purpose::RETURN, ts("2026-12-30T00:00:01Z")),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_tampered_or_other_purpose_return_link_is_refused() {
        let l = links();
        let now = ts("2026-12-01T00:00:00Z");
        let url = l.return_page("m1", "SO-1", ts("2026-12-30T00:00:00Z"));
        let t = token(&url);
        let mut chars: Vec<char> = t.chars().collect();
        let at = chars.len() / 2;
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(l.verify(&tampered, purpose::RETURN, now).is_err());
        assert!(l.verify(t, purpose::TRACK, now).is_err());
        let track = l.0.url(
            "/v1/track",
            &Claims {
                merchant: "m1".into(),
                purpose: purpose::TRACK.into(),
                subject: "SO-1".into(),
                value: None,
                expires: ts("2026-12-30T00:00:00Z").as_second(),
            },
        );
        let track = track.strip_prefix("https://api.test/v1/track/").unwrap();
        assert!(l.verify(track, purpose::RETURN, now).is_err());
        let other_key = Links::new("https://api.test", SigningKey::new(&[8u8; 32]).unwrap());
        assert!(other_key.verify(t, purpose::RETURN, now).is_err());
    }

    #[test]
    fn the_return_link_outlives_the_window_by_two_weeks() {
        let policy = ReturnPolicy {
            window_days: 30,
            ..ReturnPolicy::default()
        };
        assert_eq!(
            return_link_expiry(&policy, ts("2026-11-22T10:00:00Z")),
            ts("2027-01-05T10:00:00Z")
        );
    }
}
