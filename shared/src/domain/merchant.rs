//! A merchant: the tenant, its brand and its "digital business card", and its settings.

use super::loyalty::LoyaltySettings;
pub use super::text::time_zone;
use super::text::{optional_line, single_line, web_url};
use super::{EmailAddress, FieldError, Locale, MerchantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A merchant as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub status: MerchantStatus,
    pub branding: Branding,
    pub sender: Sender,
    pub support: SupportCard,
    pub default_locale: Locale,
    /// IANA time zone used when a customer's is unknown.
    pub time_zone: String,
    /// Where merchant alerts go (late shipments, detractors, exhausted dunning).
    #[serde(default)]
    pub ops_email: Option<EmailAddress>,
    #[serde(default)]
    pub settings: MerchantSettings,
    /// Per email kind, templates that replace the built-in ones.
    #[serde(default)]
    pub templates: BTreeMap<String, TemplateOverride>,
    /// Secrets that sign this merchant's tracking webhooks (several during a rotation).
    #[serde(default)]
    pub webhook_secrets: Vec<WebhookSecret>,
    /// The shop platforms that feed this merchant's orders (their webhooks' secrets inside).
    #[serde(default)]
    pub connectors: Connectors,
}

/// The shop platforms connected to a merchant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Connectors {
    pub shopify: Option<ShopifyConnector>,
    pub woocommerce: Option<WooConnector>,
    /// EasyPost tracker webhooks to `POST /v1/connectors/easypost/{merchantId}`.
    pub easypost: Option<TrackingConnector>,
    /// AfterShip tracking webhooks to `POST /v1/connectors/aftership/{merchantId}`.
    pub aftership: Option<TrackingConnector>,
    /// Shippo tracking webhooks to `POST /v1/connectors/shippo/{merchantId}?token=…`.
    pub shippo: Option<ShippoConnector>,
}

/// A tracking aggregator (EasyPost, AfterShip) that signs its webhooks with a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingConnector {
    /// The webhook secrets, several during a rotation.
    pub secrets: Vec<WebhookSecret>,
}

/// Shippo: a token in the webhook URL (Shippo's documented way to authenticate its webhooks), and
/// the HMAC secret when Shippo has turned signed webhooks on for the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippoConnector {
    /// The `token` query parameter of the webhook URL the merchant registered with Shippo.
    pub token: WebhookSecret,
    /// When present, `Shippo-Auth-Signature` must verify with one of them too.
    #[serde(default)]
    pub secrets: Vec<WebhookSecret>,
}

/// 1 to 5 secrets of 8 to 256 characters, none a control character (EasyPost secrets may be any
/// Unicode text; the signature normalises them).
fn check_secrets(field: &str, secrets: &[WebhookSecret], optional: bool) -> Result<(), FieldError> {
    if (secrets.is_empty() && !optional) || secrets.len() > 5 {
        return Err(FieldError::new(
            field,
            "out_of_range",
            "one to five secrets (more than one only during a rotation)",
        ));
    }
    for (i, secret) in secrets.iter().enumerate() {
        let n = secret.0.chars().count();
        if !(8..=256).contains(&n) || secret.0.chars().any(char::is_control) {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                "invalid_format",
                "a secret is 8 to 256 characters, none of them control characters",
            ));
        }
    }
    Ok(())
}

impl TrackingConnector {
    /// Checks an operator's input for the provider `name` (`easypost`, `aftership`).
    pub fn validate(self, name: &str) -> Result<Self, FieldError> {
        check_secrets(&format!("connectors.{name}.secrets"), &self.secrets, false)?;
        Ok(self)
    }
}

impl ShippoConnector {
    /// A new URL token: 32 random bytes, base64url (43 characters).
    pub fn new_token() -> Result<WebhookSecret, super::apikey::RandomnessUnavailable> {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|_| super::apikey::RandomnessUnavailable)?;
        Ok(WebhookSecret(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// Checks an operator's input: a URL-safe token of 24 to 128 characters, 0 to 5 secrets.
    pub fn validate(self) -> Result<Self, FieldError> {
        let token = &self.token.0;
        if !(24..=128).contains(&token.len())
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(FieldError::new(
                "connectors.shippo.token",
                "invalid_format",
                "the URL token is 24 to 128 letters, digits, - or _",
            ));
        }
        check_secrets("connectors.shippo.secrets", &self.secrets, true)?;
        Ok(self)
    }
}

/// A WooCommerce store whose webhooks come to `POST /v1/connectors/woocommerce/{merchantId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WooConnector {
    /// The store's URL as WooCommerce sends it in `X-WC-Webhook-Source` (`https://shop.example/`,
    /// always with its trailing slash).
    pub store_url: String,
    /// The webhooks' secrets, several during a rotation: `X-WC-Webhook-Signature` must be the
    /// HMAC of the raw body with one.
    pub secrets: Vec<WebhookSecret>,
    /// The order statuses that place an order (and thank the customer).
    #[serde(default = "WooConnector::default_place_on")]
    pub place_on: Vec<String>,
}

/// WooCommerce's order statuses.
pub const WOO_STATUSES: &[&str] = &[
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "draft",
];

impl WooConnector {
    /// Paid orders: `processing` (paid, to ship) and `completed` (shipped or virtual).
    pub fn default_place_on() -> Vec<String> {
        vec!["processing".to_owned(), "completed".to_owned()]
    }

    /// Whether an order in `status` is placed.
    pub fn places(&self, status: &str) -> bool {
        self.place_on.iter().any(|s| s == status)
    }

    /// A store URL in the form compared with `X-WC-Webhook-Source`: https (http only for a loopback
    /// host), scheme and host lowercased, the path kept, one trailing slash; `None` if it is not one.
    pub fn normalise_url(url: &str) -> Option<String> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let scheme_len = if lower.starts_with("https://") {
            8
        } else if lower.starts_with("http://") {
            7
        } else {
            return None;
        };
        let host = lower[scheme_len..].split('/').next().unwrap_or_default();
        let hostname = host
            .rsplit_once(':')
            .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let loopback = matches!(hostname, "localhost" | "127.0.0.1" | "[::1]");
        let valid = !hostname.is_empty()
            && hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
            && (scheme_len == 8 || loopback)
            && !url.contains(['?', '#', ' '])
            && url.len() <= 512;
        if !valid {
            return None;
        }
        // Scheme and host are case-insensitive; the path is kept as given.
        let path = url.get(scheme_len + host.len()..).unwrap_or_default();
        Some(format!(
            "{}{}/",
            &lower[..scheme_len + host.len()],
            path.trim_end_matches('/')
        ))
    }

    /// Checks an operator's input: an https URL (http only for a loopback host), written with one
    /// trailing slash; 1 to 5 secrets; statuses from WooCommerce's set (an empty list is the
    /// default, processing and completed).
    pub fn validate(mut self) -> Result<Self, FieldError> {
        self.store_url = Self::normalise_url(&self.store_url).ok_or_else(|| {
            FieldError::new(
                "connectors.woocommerce.store_url",
                "invalid_format",
                "the store's URL as WordPress knows it, like https://shop.example/ (https; http only for localhost)",
            )
        })?;
        if self.secrets.is_empty() || self.secrets.len() > 5 {
            return Err(FieldError::new(
                "connectors.woocommerce.secrets",
                "out_of_range",
                "one to five secrets (more than one only during a rotation)",
            ));
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            if !(16..=256).contains(&secret.0.len())
                || !secret.0.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(FieldError::new(
                    format!("connectors.woocommerce.secrets[{i}]"),
                    "invalid_format",
                    "a secret is 16 to 256 printable ASCII characters",
                ));
            }
        }
        if self.place_on.is_empty() {
            self.place_on = Self::default_place_on();
        }
        for (i, status) in self.place_on.iter_mut().enumerate() {
            let s = status.trim().to_ascii_lowercase();
            let s = s.strip_prefix("wc-").unwrap_or(&s).to_owned();
            if !WOO_STATUSES.contains(&s.as_str()) {
                return Err(FieldError::new(
                    format!("connectors.woocommerce.place_on[{i}]"),
                    "invalid_value",
                    format!("a WooCommerce order status: {}", WOO_STATUSES.join(", ")),
                ));
            }
            *status = s;
        }
        self.place_on.dedup();
        Ok(self)
    }
}

/// A Shopify store whose webhooks come to `POST /v1/connectors/shopify/{merchantId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifyConnector {
    /// The store's permanent domain (`acme.myshopify.com`): `X-Shopify-Shop-Domain` must be it.
    pub shop_domain: String,
    /// The app's client secret (or the secret shown for webhooks created in the admin), several
    /// during a rotation: `X-Shopify-Hmac-Sha256` must be the HMAC of the raw body with one.
    pub secrets: Vec<WebhookSecret>,
    /// When the thank-you goes: on `orders/create` (the default) or only once `orders/paid`.
    #[serde(default)]
    pub thank_on: ThankOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThankOn {
    #[default]
    Created,
    Paid,
}

impl ShopifyConnector {
    /// Checks an operator's input: a `*.myshopify.com` domain (lowercased) and 1 to 5 secrets.
    pub fn validate(mut self) -> Result<Self, FieldError> {
        let domain = self.shop_domain.trim().to_ascii_lowercase();
        let name = domain.strip_suffix(".myshopify.com").unwrap_or_default();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(FieldError::new(
                "connectors.shopify.shop_domain",
                "invalid_format",
                "the store's permanent domain, like acme.myshopify.com",
            ));
        }
        self.shop_domain = domain;
        if self.secrets.is_empty() || self.secrets.len() > 5 {
            return Err(FieldError::new(
                "connectors.shopify.secrets",
                "out_of_range",
                "one to five secrets (more than one only during a rotation)",
            ));
        }
        for (i, secret) in self.secrets.iter().enumerate() {
            if !(16..=256).contains(&secret.0.len())
                || !secret.0.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(FieldError::new(
                    format!("connectors.shopify.secrets[{i}]"),
                    "invalid_format",
                    "a secret is 16 to 256 printable ASCII characters",
                ));
            }
        }
        Ok(self)
    }
}

impl Merchant {
    /// The merchant's time zone (validated on input; UTC if a stored name is no longer known).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }
}

/// A webhook signing secret; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    #[default]
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rrggbb`
    pub primary_color: String,
    /// `#rrggbb`
    pub accent_color: String,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            logo_url: None,
            primary_color: "#1f2937".into(),
            accent_color: "#2563eb".into(),
        }
    }
}

/// The identity mail is sent from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub from_email: EmailAddress,
    pub from_name: String,
    #[serde(default)]
    pub reply_to: Option<EmailAddress>,
    /// The merchant's own SES configuration set (its own event destination, dedicated IPs or
    /// reputation), used instead of the deployment's. Its events must reach the default event bus
    /// like the deployment's, and the functions' IAM grant covers names that start with the
    /// deployment's set and a dash (`aftercare-prod-acme`).
    #[serde(default)]
    pub configuration_set: Option<String>,
}

/// SES configuration set names: 1 to 64 ASCII letters, digits, `_` and `-`.
fn configuration_set_name(field: &str, name: &str) -> Result<String, FieldError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "invalid_format",
            "a configuration set name is 1 to 64 letters, digits, '_' or '-'",
        ))
    }
}

/// The merchant's contact card shown in every email.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SupportCard {
    #[serde(default)]
    pub email: Option<EmailAddress>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MerchantSettings {
    pub loyalty: LoyaltySettings,
    pub journey: super::followup::JourneySettings,
    /// Quiet hours, frequency cap and survey throttle for marketing-class mail.
    pub marketing: super::marketing::MarketingSettings,
    pub survey: super::survey::SurveySettings,
    pub reviews: ReviewSettings,
    /// Refuses a `catalogue` here: products are their own items now (the products API).
    #[serde(rename = "catalogue", skip_serializing)]
    pub catalogue_moved: super::catalogue::CatalogueMoved,
    /// Renewal reminders and card-expiry notices.
    pub renewals: super::subscription::RenewalSettings,
    /// The failed-payment cadence.
    pub dunning: super::billing::DunningSettings,
    /// Where the merchant's signed copy of published events goes.
    pub webhook: WebhookSettings,
    /// How long the message log is kept.
    pub retention: RetentionSettings,
    /// Order emails beyond the thank-you.
    pub orders: OrderSettings,
    /// The return policy (off until turned on).
    pub returns: super::returns::ReturnPolicy,
}

/// Order emails beyond the thank-you.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderSettings {
    /// Tell the customer when the shop cancels their order (Shopify `orders/cancelled`, a
    /// WooCommerce order set to cancelled). Off by default: both platforms can send their own
    /// cancellation email, and a customer should not get two.
    pub cancellation_email: bool,
    /// Tell the customer when the carrier's expected delivery date moves by a day or more (a
    /// tracking provider's estimate), once per revision. On by default.
    pub new_date_email: bool,
    /// Tell the customer when money goes back to them without a return in Aftercare (Stripe's
    /// `charge.refunded`, Shopify's `refunds/create`, a WooCommerce refund, a `refund` billing
    /// event). On by default; a merchant whose shop already sends its own refund email turns it
    /// off. A return resolved as a refund is told either way: that email is the return's.
    pub refund_email: bool,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            cancellation_email: false,
            new_date_email: true,
            refund_email: true,
        }
    }
}

/// How long what Aftercare keeps about emails lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Days the message log (each email's record, its SES events and the decisions about it)
    /// is kept before DynamoDB's TTL removes it; none: the deployment's default (400 days).
    /// It is also how long a replayed event is recognised, so at least 30.
    pub message_log_days: Option<u32>,
    /// Days a customer's data (profile, orders, shipments, follow-ups, loyalty, contact state,
    /// message log) is kept after their last order before it is erased as on request; none: the
    /// default of [`RetentionSettings::DEFAULT_CUSTOMER_DAYS`] (three years). A customer with an
    /// active subscription is kept while it lasts.
    pub customer_days: Option<u32>,
}

impl RetentionSettings {
    pub const MIN_DAYS: u32 = 30;
    pub const MAX_DAYS: u32 = 3_650;
    /// Three years: long enough for warranty claims and returning customers, short enough that
    /// nobody is kept for good by default.
    pub const DEFAULT_CUSTOMER_DAYS: u32 = 1_095;

    /// How long an inactive customer's data is kept.
    pub fn customer_lifetime(&self) -> std::time::Duration {
        let days = self.customer_days.unwrap_or(Self::DEFAULT_CUSTOMER_DAYS);
        std::time::Duration::from_secs(u64::from(days) * 86_400)
    }
}

/// The merchant's outbound webhook: events Aftercare publishes on EventBridge (link clicks, hosted
/// page requests) are also POSTed here, signed with the first of `webhook_secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// An `https://` URL (`http://` only for loopback hosts, for local development).
    pub url: Option<String>,
}

/// Where customers write reviews.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewSettings {
    /// A review page URL with optional `{sku}` and `{order}` placeholders, e.g.
    /// `https://shop.example/products/{sku}/reviews/new`. Without it no review request is sent.
    pub url_template: Option<String>,
}

impl ReviewSettings {
    /// The review URL for one product of one order (placeholders URL-encoded).
    pub fn url_for(&self, sku: &str, order: &str) -> Option<String> {
        let t = self.url_template.as_deref()?;
        Some(
            t.replace("{sku}", &url_component(sku))
                .replace("{order}", &url_component(order)),
        )
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A merchant's replacement for a built-in email: minijinja templates for subject, HTML and text.
/// Any part left out falls back to the built-in one. `strings` overrides catalogue entries per locale.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateOverride {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub strings: BTreeMap<String, BTreeMap<String, String>>,
}

/// What an operator supplies to create or update a merchant.
#[derive(Debug, Clone, Deserialize)]
pub struct MerchantInput {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub branding: Option<BrandingInput>,
    pub sender: SenderInput,
    #[serde(default)]
    pub support: Option<SupportInput>,
    #[serde(default)]
    pub default_locale: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub ops_email: Option<String>,
    #[serde(default)]
    pub settings: Option<MerchantSettings>,
    #[serde(default)]
    pub templates: BTreeMap<String, TemplateOverride>,
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
    #[serde(default)]
    pub connectors: Connectors,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BrandingInput {
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub accent_color: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SenderInput {
    pub from_email: String,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    #[serde(default)]
    pub configuration_set: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SupportInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub url: Option<String>,
    pub address: Option<String>,
}

fn color(field: &str, value: Option<&str>, default: &str) -> Result<String, FieldError> {
    let Some(v) = value else {
        return Ok(default.to_owned());
    };
    let ok = v.len() == 7 && v.starts_with('#') && v[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} must be a colour like #1a2b3c"),
        ))
    }
}

impl MerchantInput {
    pub fn validate(self) -> Result<Merchant, FieldError> {
        let id = MerchantId::parse("id", &self.id)?;
        let name = single_line("name", &self.name, 120)?;
        let defaults = Branding::default();
        let branding = match self.branding {
            None => defaults,
            Some(b) => Branding {
                logo_url: web_url("branding.logo_url", b.logo_url.as_deref())?,
                primary_color: color(
                    "branding.primary_color",
                    b.primary_color.as_deref(),
                    &defaults.primary_color,
                )?,
                accent_color: color(
                    "branding.accent_color",
                    b.accent_color.as_deref(),
                    &defaults.accent_color,
                )?,
            },
        };
        let sender = Sender {
            from_email: EmailAddress::parse("sender.from_email", &self.sender.from_email)?,
            from_name: optional_line("sender.from_name", self.sender.from_name.as_deref(), 120)?
                .unwrap_or_else(|| name.clone()),
            reply_to: self
                .sender
                .reply_to
                .as_deref()
                .map(|r| EmailAddress::parse("sender.reply_to", r))
                .transpose()?,
            configuration_set: self
                .sender
                .configuration_set
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|c| configuration_set_name("sender.configuration_set", c))
                .transpose()?,
        };
        let support = match self.support {
            None => SupportCard::default(),
            Some(s) => SupportCard {
                email: s
                    .email
                    .as_deref()
                    .map(|e| EmailAddress::parse("support.email", e))
                    .transpose()?,
                phone: optional_line("support.phone", s.phone.as_deref(), 40)?,
                url: web_url("support.url", s.url.as_deref())?,
                address: optional_line("support.address", s.address.as_deref(), 300)?,
            },
        };
        let default_locale = match self.default_locale.as_deref() {
            None => Locale::En,
            Some(tag) => Locale::from_tag(tag).ok_or_else(|| {
                FieldError::new(
                    "default_locale",
                    "unsupported_locale",
                    "default_locale must be one of en, de, fr",
                )
            })?,
        };
        let time_zone = time_zone("time_zone", self.time_zone.as_deref().unwrap_or("UTC"))?;
        let ops_email = self
            .ops_email
            .as_deref()
            .map(|e| EmailAddress::parse("ops_email", e))
            .transpose()?;
        let settings = self.settings.unwrap_or_default();
        settings
            .loyalty
            .validate()
            .map_err(|(field, message)| FieldError::new(field, "out_of_range", message))?;
        validate_settings(&settings)?;
        for (i, secret) in self.webhook_secrets.iter().enumerate() {
            if !(32..=256).contains(&secret.len()) || !secret.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(FieldError::new(
                    format!("webhook_secrets[{i}]"),
                    "invalid_format",
                    "a webhook secret is 32 to 256 printable ASCII characters",
                ));
            }
        }
        if settings.webhook.url.is_some() && self.webhook_secrets.is_empty() {
            return Err(FieldError::new(
                "settings.webhook.url",
                "missing_secret",
                "an outbound webhook is signed with the first of webhook_secrets; add one",
            ));
        }
        Ok(Merchant {
            id,
            name,
            status: MerchantStatus::Active,
            branding,
            sender,
            support,
            default_locale,
            time_zone,
            ops_email,
            settings,
            templates: self.templates,
            webhook_secrets: self
                .webhook_secrets
                .into_iter()
                .map(WebhookSecret)
                .collect(),
            connectors: Connectors {
                shopify: self
                    .connectors
                    .shopify
                    .map(ShopifyConnector::validate)
                    .transpose()?,
                woocommerce: self
                    .connectors
                    .woocommerce
                    .map(WooConnector::validate)
                    .transpose()?,
                easypost: self
                    .connectors
                    .easypost
                    .map(|c| c.validate("easypost"))
                    .transpose()?,
                aftership: self
                    .connectors
                    .aftership
                    .map(|c| c.validate("aftership"))
                    .transpose()?,
                shippo: self
                    .connectors
                    .shippo
                    .map(ShippoConnector::validate)
                    .transpose()?,
            },
        })
    }
}

/// An outbound webhook URL: https, or http to a loopback host (local development only).
fn webhook_url(url: Option<&str>) -> Result<(), FieldError> {
    const FIELD: &str = "settings.webhook.url";
    let Some(url) = web_url(FIELD, url)? else {
        return Ok(());
    };
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if matches!(host, "localhost" | "127.0.0.1" | "::1") {
        return Ok(());
    }
    Err(FieldError::new(
        FIELD,
        "invalid_format",
        "the webhook URL must be https:// (http:// only to localhost)",
    ))
}

/// Range and format checks of the settings a merchant can change.
fn validate_settings(settings: &MerchantSettings) -> Result<(), FieldError> {
    for (field, days) in [
        (
            "settings.retention.message_log_days",
            settings.retention.message_log_days,
        ),
        (
            "settings.retention.customer_days",
            settings.retention.customer_days,
        ),
    ] {
        if let Some(days) = days
            && !(RetentionSettings::MIN_DAYS..=RetentionSettings::MAX_DAYS).contains(&days)
        {
            return Err(FieldError::new(
                field,
                "out_of_range",
                format!(
                    "must be {} to {} days",
                    RetentionSettings::MIN_DAYS,
                    RetentionSettings::MAX_DAYS
                ),
            ));
        }
    }
    settings.returns.validate()?;
    settings
        .marketing
        .validate()
        .map_err(|(field, message)| FieldError::new(field, "out_of_range", message))?;
    if settings.survey.link_valid_days > 365 {
        return Err(FieldError::new(
            "settings.survey.link_valid_days",
            "out_of_range",
            "link_valid_days must be at most 365",
        ));
    }
    settings
        .renewals
        .validate()
        .map_err(|(field, message)| FieldError::new(field, "out_of_range", message))?;
    settings
        .dunning
        .validate()
        .map_err(|(field, message)| FieldError::new(field, "out_of_range", message))?;
    web_url(
        "settings.dunning.update_payment_url",
        settings.dunning.update_payment_url.as_deref(),
    )?;
    webhook_url(settings.webhook.url.as_deref())?;
    if let Some(t) = &settings.reviews.url_template {
        web_url("settings.reviews.url_template", Some(t))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_input() -> serde_json::Value {
        serde_json::json!({
            "id": "acme",
            "name": "Acme Outdoor",
            "branding": {"logo_url": "https://cdn.acme.example/logo.png", "primary_color": "#0F766E", "accent_color": "#f59e0b"},
            "sender": {"from_email": "hello@acme.example", "from_name": "Acme Outdoor", "reply_to": "care@acme.example"},
            "support": {"email": "care@acme.example", "phone": "+49 30 1234567", "url": "https://acme.example/help"},
            "default_locale": "en",
            "time_zone": "Europe/Berlin",
            "ops_email": "ops@acme.example"
        })
    }

    #[test]
    fn the_message_log_retention_is_bounded_and_named_on_refusal() {
        for (days, ok) in [
            (29, false),
            (30, true),
            (400, true),
            (3_650, true),
            (3_651, false),
        ] {
            let mut input = sample_input();
            input["settings"]["retention"] = serde_json::json!({"message_log_days": days});
            let m: MerchantInput = serde_json::from_value(input).unwrap();
            match m.validate() {
                Ok(m) => {
                    assert!(ok, "{days}");
                    assert_eq!(m.settings.retention.message_log_days, Some(days));
                }
                Err(e) => {
                    assert!(!ok, "{days}");
                    assert_eq!(e.field, "settings.retention.message_log_days");
                }
            }
        }
    }

    #[test]
    fn a_catalogue_in_the_settings_is_refused_naming_the_products_api() {
        let mut input = sample_input();
        input["settings"] = serde_json::json!({"catalogue": {"TENT": {"name": "Tent"}}});
        let bytes = serde_json::to_vec(&input).unwrap();
        let e = crate::domain::validation::parse_json::<MerchantInput>(&bytes).unwrap_err();
        assert_eq!(e.field, "settings.catalogue");
        assert!(e.message.contains("/v1/products"), "{}", e.message);
        let m: MerchantInput = serde_json::from_value(sample_input()).unwrap();
        let stored = serde_json::to_value(m.validate().unwrap()).unwrap();
        assert!(stored["settings"].get("catalogue").is_none());
    }

    #[test]
    fn validates_a_full_merchant() {
        let m: MerchantInput = serde_json::from_value(sample_input()).unwrap();
        let m = m.validate().unwrap();
        assert_eq!(m.branding.primary_color, "#0f766e");
        assert_eq!(m.settings.loyalty.points_per_unit, 1);
        assert_eq!(m.sender.reply_to.unwrap().as_str(), "care@acme.example");
    }

    #[test]
    fn names_bad_fields() {
        let cases = [
            (
                "/branding/primary_color",
                serde_json::json!("red; background:url(x)"),
                "branding.primary_color",
            ),
            (
                "/branding/logo_url",
                serde_json::json!("javascript:alert(1)"),
                "branding.logo_url",
            ),
            ("/time_zone", serde_json::json!("Mars/Olympus"), "time_zone"),
            (
                "/sender/from_email",
                serde_json::json!("nope"),
                "sender.from_email",
            ),
            ("/id", serde_json::json!("a#b"), "id"),
        ];
        for (ptr, value, field) in cases {
            let mut input = sample_input();
            *input.pointer_mut(ptr).unwrap() = value;
            let m: MerchantInput = serde_json::from_value(input).unwrap();
            assert_eq!(m.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn a_merchant_configuration_set_is_an_ses_name() {
        let with = |name: &str| {
            let mut input = sample_input();
            input["sender"]["configuration_set"] = name.into();
            serde_json::from_value::<MerchantInput>(input)
                .unwrap()
                .validate()
        };
        let m = with("aftercare-prod-acme_1").unwrap();
        assert_eq!(
            m.sender.configuration_set.as_deref(),
            Some("aftercare-prod-acme_1")
        );
        assert_eq!(with("  ").unwrap().sender.configuration_set, None);
        for bad in [
            "acme.events",
            "acme events",
            "a\r\nX-Injected: 1",
            &"x".repeat(65),
        ] {
            assert_eq!(
                with(bad).unwrap_err().field,
                "sender.configuration_set",
                "{bad}"
            );
        }
    }

    #[test]
    fn webhook_urls_are_https_or_loopback_and_need_a_secret() {
        let secret = "whsec_0123456789abcdef0123456789abcdef";
        let with = |url: &str, secrets: &[&str]| {
            let mut input = sample_input();
            input["settings"] = serde_json::json!({"webhook": {"url": url}});
            input["webhook_secrets"] = serde_json::json!(secrets);
            serde_json::from_value::<MerchantInput>(input)
                .unwrap()
                .validate()
        };
        for ok in [
            "https://hooks.acme.example/aftercare",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9000/",
        ] {
            assert_eq!(
                with(ok, &[secret]).unwrap().settings.webhook.url.as_deref(),
                Some(ok)
            );
        }
        for bad in [
            "http://hooks.acme.example/aftercare",
            "http://localhost.evil.example/",
            "http://127.0.0.1@evil.example/",
            "ftp://hooks.acme.example/",
        ] {
            let e = with(bad, &[secret]).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.code),
                ("settings.webhook.url", "invalid_format"),
                "{bad}"
            );
        }
        let e = with("https://hooks.acme.example/", &[]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("settings.webhook.url", "missing_secret")
        );
    }

    fn woo(url: &str, place_on: &[&str]) -> Result<WooConnector, FieldError> {
        WooConnector {
            store_url: url.to_owned(),
            secrets: vec![WebhookSecret("a-woo-secret-of-32-characters-xx".to_owned())],
            place_on: place_on.iter().map(|s| (*s).to_owned()).collect(),
        }
        .validate()
    }

    #[test]
    fn a_woo_store_url_is_https_with_one_trailing_slash() {
        for (url, expected) in [
            ("https://Shop.Example", "https://shop.example/"),
            ("https://shop.example/", "https://shop.example/"),
            (
                "https://shop.example/store//",
                "https://shop.example/store/",
            ),
            ("http://localhost:8080", "http://localhost:8080/"),
            ("http://127.0.0.1/wp/", "http://127.0.0.1/wp/"),
        ] {
            assert_eq!(woo(url, &[]).unwrap().store_url, expected, "{url}");
        }
        for url in [
            "http://shop.example/",
            "shop.example",
            "https://",
            "https://shop.example/?x=1",
            "ftp://shop.example/",
        ] {
            let e = woo(url, &[]).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.code),
                ("connectors.woocommerce.store_url", "invalid_format"),
                "{url}"
            );
        }
    }

    #[test]
    fn woo_statuses_default_to_paid_ones_and_come_from_woocommerces_set() {
        let c = woo("https://shop.example", &[]).unwrap();
        assert_eq!(c.place_on, ["processing", "completed"]);
        assert!(c.places("processing") && !c.places("pending"));
        let c = woo("https://shop.example", &["wc-on-hold", "Processing"]).unwrap();
        assert_eq!(c.place_on, ["on-hold", "processing"]);
        let e = woo("https://shop.example", &["processing", "paid"]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("connectors.woocommerce.place_on[1]", "invalid_value")
        );
        let mut input = sample_input();
        input["connectors"]["woocommerce"] = serde_json::json!({
            "store_url": "https://shop.example", "secrets": ["short"]
        });
        let e = serde_json::from_value::<MerchantInput>(input)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "connectors.woocommerce.secrets[0]");
    }
}
