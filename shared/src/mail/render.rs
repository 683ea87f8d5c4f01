//! Email rendering: built-in templates (HTML + plain text) per kind, string catalogues per locale,
//! and merchant overrides.
//!
//! * Templates are minijinja; `.html` templates auto-escape every value, so customer and merchant
//!   text can never inject markup. Data is passed as values and never evaluated as a template.
//! * Strings come from `locales/<locale>.json` through `t("key", name=value)`; `{name}`
//!   placeholders are filled with the (escaped) values.
//! * A merchant may override a kind's subject, HTML or text template and any string per locale.
//!   Override templates run with a fuel limit and no file access; a part that fails to render
//!   falls back to the built-in one, so a broken override never loses an email.

use crate::domain::{Locale, Merchant};
use crate::mail::MailClass;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error as ThisError;

/// Every kind of email Aftercare sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
        }
    }

    /// The built-in template family the kind renders with.
    pub fn template(&self) -> &'static str {
        match self {
            EmailKind::OrderThanks => "order_thanks",
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

    /// Whether the email goes to the merchant's own people rather than a customer.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            EmailKind::MerchantLateAlert
                | EmailKind::MerchantDetractorAlert
                | EmailKind::MerchantDunningAlert
        )
    }
}

impl From<crate::domain::followup::FollowUpKind> for EmailKind {
    fn from(k: crate::domain::followup::FollowUpKind) -> Self {
        use crate::domain::followup::FollowUpKind as F;
        match k {
            F::UsageTips => EmailKind::UsageTips,
            F::FeedbackSurvey => EmailKind::FeedbackSurvey,
            F::ReviewRequest => EmailKind::ReviewRequest,
            F::CrossSell => EmailKind::CrossSell,
        }
    }
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => { &[$(($name, include_str!(concat!("templates/", $name)))),*] };
}

const BUILTIN: &[(&str, &str)] = templates![
    "layout.html",
    "card.txt",
    "order_thanks.html",
    "order_thanks.txt",
    "order_thanks.subject.txt",
    "order_thanks.preheader.txt",
    "shipment.html",
    "shipment.txt",
    "shipment.subject.txt",
    "shipment.preheader.txt",
    "merchant_alert.html",
    "merchant_alert.txt",
    "merchant_alert.subject.txt",
    "merchant_alert.preheader.txt",
    "followup.html",
    "followup.txt",
    "followup.subject.txt",
    "followup.preheader.txt",
    "detractor_alert.html",
    "detractor_alert.txt",
    "detractor_alert.subject.txt",
    "detractor_alert.preheader.txt",
    "billing.html",
    "billing.txt",
    "billing.subject.txt",
    "billing.preheader.txt",
    "billing_alert.html",
    "billing_alert.txt",
    "billing_alert.subject.txt",
    "billing_alert.preheader.txt",
    "pages/layout.html",
    "pages/subscription.html",
    "pages/subscription_done.html",
    "pages/survey.html",
    "pages/survey_thanks.html",
    "pages/unsubscribe.html",
    "pages/error.html",
];

const CATALOGUES: &[(Locale, &str)] = &[
    (Locale::En, include_str!("locales/en.json")),
    (Locale::De, include_str!("locales/de.json")),
    (Locale::Fr, include_str!("locales/fr.json")),
];

/// Instructions an override template may execute before it is stopped.
const OVERRIDE_FUEL: u64 = 100_000;
const MAX_SUBJECT_CHARS: usize = 200;

#[derive(Debug, ThisError)]
pub enum RenderError {
    #[error("template {name} failed to render")]
    Template {
        name: String,
        #[source]
        source: Error,
    },
    #[error("the {0} string catalogue is not valid JSON")]
    Catalogue(&'static str),
}

/// A rendered email's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Built-in templates and catalogues, loaded once at init.
pub struct Renderer {
    env: Environment<'static>,
    catalogues: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

/// `t("key", name=value, ...)`: the current locale's string with `{name}` placeholders filled.
fn translate(state: &State, key: &str, kwargs: Kwargs) -> Result<String, Error> {
    let strings = state.lookup("strings").unwrap_or_default();
    let template = strings
        .get_attr(key)
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_none())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!("no string {key:?} in the catalogue"),
            )
        })?;
    // One pass over the string: a value that itself contains `{name}` is never expanded again.
    let source = template.as_str().unwrap_or_default();
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if kwargs.args().any(|a| a == &after[..close]) => {
                let value: Value = kwargs.get(&after[..close])?;
                out.push_str(&value.to_string());
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn new_env<'a>() -> Environment<'a> {
    let mut env = Environment::new();
    env.add_function("t", translate);
    env.set_keep_trailing_newline(true);
    env
}

fn one_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if crate::domain::text::is_forbidden(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(MAX_SUBJECT_CHARS).collect()
}

impl Renderer {
    pub fn new() -> Result<Self, RenderError> {
        let mut env = new_env();
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .map_err(|source| RenderError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        let mut catalogues = BTreeMap::new();
        for (locale, json) in CATALOGUES {
            let strings: BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|_| RenderError::Catalogue(locale.as_str()))?;
            catalogues.insert(locale.as_str(), strings);
        }
        Ok(Self { env, catalogues })
    }

    /// The built-in strings for `locale`, English for any key a locale lacks.
    fn catalogue(&self, locale: Locale) -> BTreeMap<String, String> {
        let mut strings = self
            .catalogues
            .get(Locale::En.as_str())
            .cloned()
            .unwrap_or_default();
        if let Some(own) = self.catalogues.get(locale.as_str()) {
            strings.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        strings
    }

    /// The strings for `locale` (English for any key a locale lacks), with the merchant's overrides.
    fn strings(
        &self,
        kind: EmailKind,
        locale: Locale,
        merchant: &Merchant,
    ) -> BTreeMap<String, String> {
        let mut strings = self.catalogue(locale);
        if let Some(o) = merchant.templates.get(kind.as_str())
            && let Some(overrides) = o.strings.get(locale.as_str())
        {
            strings.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        strings
    }

    /// Renders `kind` in `locale` for `merchant` with `data` (the kind's own context).
    pub fn render<T: Serialize>(
        &self,
        kind: EmailKind,
        locale: Locale,
        merchant: &Merchant,
        data: &T,
    ) -> Result<Rendered, RenderError> {
        let mut ctx = match serde_json::to_value(data) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        ctx.insert("merchant".into(), merchant_context(merchant));
        ctx.insert("locale".into(), locale.as_str().into());
        ctx.insert(
            "strings".into(),
            serde_json::to_value(self.strings(kind, locale, merchant)).unwrap_or_default(),
        );

        ctx.insert("kind".into(), kind.as_str().into());
        ctx.insert("internal".into(), kind.is_internal().into());
        let name = kind.template();
        let overrides = merchant.templates.get(kind.as_str());
        // Each part renders from one converted context (converted twice per email: before and
        // after the subject and preheader are known).
        let part = |suffix: &str, ctx: &Value, custom: Option<&String>| {
            let template = format!("{name}.{suffix}");
            if let Some(source) = custom {
                match self.render_override(&template, source, ctx) {
                    Ok(out) => return Ok(out),
                    Err(e) => {
                        tracing::warn!(error = %e, template, merchant = %merchant.id, "merchant template failed; using the built-in one")
                    }
                }
            }
            self.env
                .get_template(&template)
                .and_then(|t| t.render(ctx))
                .map_err(|source| RenderError::Template {
                    name: template,
                    source,
                })
        };
        let head = Value::from_serialize(&ctx);
        let subject = one_line(&part(
            "subject.txt",
            &head,
            overrides.and_then(|o| o.subject.as_ref()),
        )?);
        let preheader = one_line(&part("preheader.txt", &head, None)?);
        ctx.insert("subject".into(), subject.clone().into());
        ctx.insert("preheader".into(), preheader.into());
        let body = Value::from_serialize(&ctx);
        let html = part("html", &body, overrides.and_then(|o| o.html.as_ref()))?;
        let text = part("txt", &body, overrides.and_then(|o| o.text.as_ref()))?;
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }

    /// Renders a page (`pages/<page>.html`) in `locale` for `merchant` with `data`; `title_key`
    /// names the catalogue string used as the page title.
    pub fn render_page<T: Serialize>(
        &self,
        page: &str,
        title_key: &str,
        locale: Locale,
        merchant: &Merchant,
        data: &T,
    ) -> Result<String, RenderError> {
        let mut ctx = match serde_json::to_value(data) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let strings = self.catalogue(locale);
        let title = strings
            .get(title_key)
            .map(|t| t.replace("{merchant}", &merchant.name))
            .unwrap_or_else(|| merchant.name.clone());
        ctx.insert("merchant".into(), merchant_context(merchant));
        ctx.insert("locale".into(), locale.as_str().into());
        ctx.insert("title".into(), one_line(&title).into());
        ctx.insert(
            "strings".into(),
            serde_json::to_value(strings).unwrap_or_default(),
        );
        let name = format!("pages/{page}.html");
        self.env
            .get_template(&name)
            .and_then(|t| t.render(Value::from_serialize(&ctx)))
            .map_err(|source| RenderError::Template { name, source })
    }

    fn render_override(&self, name: &str, source: &str, ctx: &Value) -> Result<String, Error> {
        let mut env = new_env();
        env.set_fuel(Some(OVERRIDE_FUEL));
        for (builtin, src) in BUILTIN {
            env.add_template(builtin, src)?;
        }
        // Named like the built-in so auto-escaping follows the same extension rules.
        let override_name = format!("override.{name}");
        env.add_template(&override_name, source)?;
        env.get_template(&override_name)?.render(ctx)
    }
}

/// The merchant's brand and contact card as templates see it.
fn merchant_context(m: &Merchant) -> serde_json::Value {
    serde_json::json!({
        "id": m.id,
        "name": m.name,
        "logo_url": m.branding.logo_url,
        "primary_color": m.branding.primary_color,
        "accent_color": m.branding.accent_color,
        "support": {
            "email": m.support.email,
            "phone": m.support.phone,
            "url": m.support.url,
            "address": m.support.address,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::merchant::{MerchantInput, TemplateOverride};

    fn merchant() -> Merchant {
        let input: MerchantInput =
            serde_json::from_value(crate::domain::merchant::tests::sample_input()).unwrap();
        input.validate().unwrap()
    }

    fn data(name: &str) -> serde_json::Value {
        serde_json::json!({
            "customer": {"greeting_name": name},
            "order": {
                "number": "SO-1001", "placed_on": "20 November 2026",
                "items": [{"name": "Trail <b>tent</b>", "sku": "TENT-2", "quantity": 1, "line_total": "€199.00", "url": null}],
                "subtotal": "€199.00", "discount": null, "shipping": "€4.95", "tax": null, "total": "€203.95"
            },
            "loyalty": {"points": 199, "available_on": "20 December 2026"},
            "shipment": {
                "carrier": "DHL", "tracking_number": "JD0123", "tracking_url": "https://track.example/JD0123",
                "promised_on": "24 November 2026", "status": "in_transit",
                "items": [{"name": "Trail tent", "quantity": 1}]
            },
            "checkpoint": {"location": "Berlin", "message": null},
            "unsubscribe_url": "https://api.example/v1/unsubscribe/tok",
            "survey": {"scale": "nps", "scores": (0..=10).map(|v| serde_json::json!({"value": v, "url": format!("https://api.example/v1/survey/t{v}")})).collect::<Vec<_>>()},
            "reviews": [{"name": "Trail tent", "url": "https://acme.example/p/TENT-2/review"}],
            "tips": [{"name": "Trail tent", "text": "Dry it before packing."}],
            "recommendations": [{"name": "Ground sheet", "url": "https://acme.example/p/GS", "image_url": null, "price": "€29.00"}],
            "feedback": {"score": 3, "max": 10, "scale": "nps", "comment": "Late <i>and</i> damp", "answered_at": "27 November 2026"},
            "reply_url": "mailto:ann@example.com"
        })
    }

    #[test]
    fn every_kind_renders_in_every_locale_without_missing_strings() {
        let r = Renderer::new().unwrap();
        let en = r.catalogues.get("en").unwrap();
        for locale in Locale::ALL {
            let own = r.catalogues.get(locale.as_str()).unwrap();
            let missing: Vec<_> = en.keys().filter(|k| !own.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{locale:?} lacks {missing:?}");
            for kind in EmailKind::ALL {
                let out = r.render(*kind, locale, &merchant(), &data("Ann")).unwrap();
                assert!(!out.subject.is_empty());
                assert!(
                    out.html.contains("SO-1001") && out.text.contains("SO-1001"),
                    "{kind:?} {locale:?}"
                );
                let all = format!("{}{}{}", out.subject, out.html, out.text);
                for placeholder in [
                    "{order}",
                    "{carrier}",
                    "{date}",
                    "{name}",
                    "{merchant}",
                    "{points}",
                    "{location}",
                ] {
                    assert!(
                        !all.contains(placeholder),
                        "{kind:?} {locale:?} left {placeholder}"
                    );
                }
                if kind.is_internal() {
                    assert!(
                        !out.html.contains("care@acme.example"),
                        "no customer contact card on internal mail"
                    );
                } else {
                    assert!(
                        out.html.contains("care@acme.example"),
                        "contact card {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_data_and_never_evaluates_it() {
        let r = Renderer::new().unwrap();
        let out = r
            .render(
                EmailKind::OrderThanks,
                Locale::En,
                &merchant(),
                &data("<script>alert(1)</script>{{ 7*7 }}"),
            )
            .unwrap();
        assert!(!out.html.contains("<script>"));
        assert!(out.html.contains("&lt;script&gt;"));
        assert!(
            out.html.contains("Trail &lt;b&gt;tent&lt;&#x2f;b&gt;")
                || out.html.contains("Trail &lt;b&gt;tent&lt;/b&gt;")
        );
        assert!(
            out.html.contains("{{ 7*7 }}"),
            "template syntax in data must not be evaluated"
        );
        assert!(out.text.contains("{{ 7*7 }}"));
    }

    #[test]
    fn localises() {
        let r = Renderer::new().unwrap();
        let de = r
            .render(
                EmailKind::OrderThanks,
                Locale::De,
                &merchant(),
                &data("Jörg"),
            )
            .unwrap();
        assert_eq!(de.subject, "Vielen Dank für Ihre Bestellung SO-1001");
        assert!(de.html.contains("Vielen Dank, Jörg!"));
        assert!(de.html.contains("lang=\"de\""));
    }

    #[test]
    fn merchant_overrides_apply_and_broken_ones_fall_back() {
        let r = Renderer::new().unwrap();
        let mut m = merchant();
        let mut o = TemplateOverride {
            subject: Some("Your {{ merchant.name }} order {{ order.number }} 🎉\r\nBcc: x".into()),
            ..Default::default()
        };
        o.strings.insert(
            "en".into(),
            BTreeMap::from([(
                "order_thanks.heading".to_owned(),
                "Cheers, {name}!".to_owned(),
            )]),
        );
        o.html = Some(
            "{% for x in range(1000000) %}{% for y in range(1000000) %}{% endfor %}{% endfor %}"
                .into(),
        );
        m.templates.insert("order_thanks".into(), o);
        let out = r
            .render(EmailKind::OrderThanks, Locale::En, &m, &data("Ann"))
            .unwrap();
        assert_eq!(
            out.subject, "Your Acme Outdoor order SO-1001 🎉 Bcc: x",
            "subject is one line"
        );
        assert!(
            out.html.contains("Cheers, Ann!"),
            "runaway override falls back to the built-in"
        );
        assert!(out.text.contains("Cheers, Ann!"));
    }
}
