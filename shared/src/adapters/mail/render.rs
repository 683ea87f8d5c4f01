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

use crate::domain::send::EmailKind;
use crate::domain::{Locale, Merchant};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde::Serialize;
use std::collections::BTreeMap;
use thiserror::Error as ThisError;

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
    "order_cancelled.html",
    "order_cancelled.txt",
    "order_cancelled.subject.txt",
    "order_cancelled.preheader.txt",
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
    "complaint_alert.html",
    "complaint_alert.txt",
    "complaint_alert.subject.txt",
    "complaint_alert.preheader.txt",
    "loyalty.html",
    "loyalty.txt",
    "loyalty.subject.txt",
    "loyalty.preheader.txt",
    "returns.html",
    "returns.txt",
    "returns.subject.txt",
    "returns.preheader.txt",
    "pages/layout.html",
    "pages/subscription.html",
    "pages/subscription_done.html",
    "pages/survey.html",
    "pages/survey_thanks.html",
    "pages/unsubscribe.html",
    "pages/preferences.html",
    "pages/error.html",
    "pages/track.html",
    "pages/returns.html",
    "pages/return_done.html",
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
            "customer": {"greeting_name": name, "name": "Ann Example", "email": "ann@example.com"},
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
            "reply_url": "mailto:ann@example.com",
            "subscription": {
                "id": "sub_1001", "plan_name": "Coffee club", "interval": "monthly", "price": "€19.90",
                "renews_on": "1 December 2026", "status": "active", "offers_renewal": false,
                "auto_renewal_notice": true
            },
            "card": {"brand": "Visa", "last4": "4242", "expires": "11/26"},
            "links": {
                "manage_url": "https://api.example/v1/subscription/tok",
                "renew_url": "https://acme.example/renew/sub_1001",
                "update_payment_url": "https://api.example/v1/billing/tok/payment"
            },
            "invoice": {
                "id": "in_1001", "amount": "€19.90", "plan_name": "Coffee club",
                "failed_on": "2 December 2026", "cancel_on": "30 December 2026", "reminder": 0,
                "attempt_note": null
            },
            "dunning": {"emails_sent": 4},
            "complaints": {
                "rate": "0.25%", "threshold": "0.1%", "sent": 1200, "complained": 3,
                "from": "14 November 2026", "to": "20 November 2026",
                "kinds": [{"kind": "feedback_survey", "complained": 2, "sent": 400, "rate": "0.5%"}]
            },
            "reward": {"points": 500},
            "expiry": {"points": 340, "expires_on": "14 December 2027"},
            "balance": {"available": 840, "tier": "Gold"}
        })
    }

    /// The fact every email of `kind` must show (in both its HTML and its text).
    fn key_fact(kind: EmailKind) -> &'static str {
        match kind {
            EmailKind::RenewalReminder | EmailKind::CardExpiring | EmailKind::RenewalAndCard => {
                "Coffee club"
            }
            EmailKind::PaymentFailed
            | EmailKind::PaymentFinalNotice
            | EmailKind::PaymentRecovered
            | EmailKind::MerchantDunningAlert => "in_1001",
            EmailKind::LoyaltyReferralReward => "500",
            EmailKind::LoyaltyPointsExpiring => "14 December 2027",
            EmailKind::MerchantComplaintAlert => "0.25%",
            _ => "SO-1001",
        }
    }

    const PLACEHOLDERS: &[&str] = &[
        "{order}",
        "{carrier}",
        "{date}",
        "{name}",
        "{merchant}",
        "{points}",
        "{location}",
        "{plan}",
        "{price}",
        "{amount}",
        "{card}",
        "{last4}",
        "{expires}",
        "{invoice}",
        "{score}",
        "{max}",
        "{email}",
        "{rate}",
        "{threshold}",
        "{complained}",
        "{sent}",
        "{from}",
        "{to}",
    ];

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
                let fact = key_fact(*kind);
                assert!(
                    out.html.contains(fact) && out.text.contains(fact),
                    "{kind:?} {locale:?} must show {fact}"
                );
                let all = format!("{}{}{}", out.subject, out.html, out.text);
                for placeholder in PLACEHOLDERS {
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

    fn billing_kinds() -> impl Iterator<Item = EmailKind> {
        EmailKind::ALL
            .iter()
            .copied()
            .filter(|k| matches!(k.template(), "billing" | "billing_alert"))
    }

    fn assert_no_placeholders(what: &str, out: &str) {
        for placeholder in PLACEHOLDERS {
            assert!(!out.contains(placeholder), "{what} left {placeholder}");
        }
    }

    #[test]
    fn renewal_and_card_names_the_renewal_date_and_the_card() {
        let r = Renderer::new().unwrap();
        for locale in Locale::ALL {
            let out = r
                .render(EmailKind::RenewalAndCard, locale, &merchant(), &data("Ann"))
                .unwrap();
            for part in [&out.html, &out.text] {
                assert!(part.contains("1 December 2026"), "{locale:?} renewal date");
                assert!(part.contains("4242"), "{locale:?} last4");
                assert!(part.contains("https://api.example/v1/billing/tok/payment") || part.contains("https:&#x2f;&#x2f;api.example&#x2f;v1&#x2f;billing&#x2f;tok&#x2f;payment"), "{locale:?} update link");
            }
            assert!(out.subject.contains("1 December 2026"), "{locale:?}");
        }
    }

    #[test]
    fn payment_recovered_asks_for_nothing() {
        let r = Renderer::new().unwrap();
        for locale in Locale::ALL {
            let failed = r
                .render(EmailKind::PaymentFailed, locale, &merchant(), &data("Ann"))
                .unwrap();
            assert!(
                failed
                    .text
                    .contains("https://api.example/v1/billing/tok/payment")
            );
            let out = r
                .render(
                    EmailKind::PaymentRecovered,
                    locale,
                    &merchant(),
                    &data("Ann"),
                )
                .unwrap();
            for part in [&out.html, &out.text] {
                assert!(
                    !part.contains("/v1/billing/tok")
                        && !part.contains("&#x2f;v1&#x2f;billing&#x2f;tok"),
                    "{locale:?} no update-payment link"
                );
                assert!(part.contains("€19.90"), "{locale:?} amount");
            }
        }
    }

    #[test]
    fn billing_copy_follows_the_data() {
        let r = Renderer::new().unwrap();
        let m = merchant();
        // The renewal reminder names the card it will charge and carries the auto-renewal
        // disclosure with the manage link.
        let out = r
            .render(EmailKind::RenewalReminder, Locale::En, &m, &data("Ann"))
            .unwrap();
        assert_eq!(
            out.subject,
            "Your Coffee club subscription renews on 1 December 2026"
        );
        assert!(out.text.contains("Visa •••• 4242"));
        assert!(
            out.text
                .contains("renews automatically on 1 December 2026 for €19.90 per month")
        );
        assert!(out.text.contains("https://api.example/v1/subscription/tok"));
        assert!(!out.text.contains("acme.example/renew"));

        // Cancelled: "ends on", a renew button, no manage button and no auto-renewal disclosure.
        let mut d = data("Ann");
        d["subscription"]["offers_renewal"] = true.into();
        d["subscription"]["status"] = "cancelled".into();
        let out = r
            .render(EmailKind::RenewalReminder, Locale::En, &m, &d)
            .unwrap();
        assert_eq!(
            out.subject,
            "Your Coffee club subscription ends on 1 December 2026"
        );
        assert!(
            out.text
                .contains("Renew now: https://acme.example/renew/sub_1001")
        );
        assert!(!out.text.contains("v1/subscription/tok"));
        assert!(!out.text.contains("renews automatically"));

        // A dunning reminder reads as a reminder; the final notice names the cancellation date.
        let mut d = data("Ann");
        d["invoice"]["reminder"] = 2.into();
        let out = r
            .render(EmailKind::PaymentFailed, Locale::En, &m, &d)
            .unwrap();
        assert!(out.subject.starts_with("Reminder:"), "{}", out.subject);
        let first = r
            .render(EmailKind::PaymentFailed, Locale::En, &m, &data("Ann"))
            .unwrap();
        assert!(!first.subject.starts_with("Reminder:"));
        assert!(first.text.contains("cards expire"));
        let out = r
            .render(EmailKind::PaymentFinalNotice, Locale::En, &m, &data("Ann"))
            .unwrap();
        assert!(out.subject.contains("30 December 2026"));
        assert!(out.html.contains("30 December 2026"));

        // No unsubscribe link on these transactional emails.
        for kind in billing_kinds() {
            let out = r.render(kind, Locale::En, &m, &data("Ann")).unwrap();
            assert!(!out.html.contains("unsubscribe"), "{kind:?}");
            assert!(!out.text.contains("unsubscribe"), "{kind:?}");
        }
    }

    #[test]
    fn billing_emails_cope_with_missing_data() {
        let r = Renderer::new().unwrap();
        let sparse = [
            serde_json::json!({}),
            serde_json::json!({
                "customer": {"greeting_name": null, "name": null, "email": null},
                "subscription": {"plan_name": "Coffee club", "interval": null, "price": null,
                    "renews_on": null, "offers_renewal": null, "auto_renewal_notice": true},
                "card": null, "links": null,
                "invoice": {"id": "in_1001", "amount": null, "plan_name": null, "failed_on": null,
                    "cancel_on": null, "reminder": null, "attempt_note": null},
                "dunning": null
            }),
        ];
        for locale in Locale::ALL {
            for d in &sparse {
                for kind in billing_kinds() {
                    let out = r.render(kind, locale, &merchant(), d).unwrap();
                    assert!(!out.subject.is_empty(), "{kind:?} {locale:?}");
                    let all = format!("{}{}{}", out.subject, out.html, out.text);
                    assert_no_placeholders(&format!("{kind:?} {locale:?}"), &all);
                    // No `none` printed for a null (the HTML head's CSS says `display: none`).
                    let body = &out.html[out.html.find("<body").unwrap_or(0)..];
                    let shown = format!("{}{}{}", out.subject, body, out.text);
                    assert!(
                        !shown.replace("display:none", "").contains("none"),
                        "{kind:?} {locale:?} printed a null: {shown}"
                    );
                    assert!(!all.contains("undefined"), "{kind:?} {locale:?}");
                }
            }
        }
    }

    fn return_kinds() -> impl Iterator<Item = EmailKind> {
        EmailKind::ALL
            .iter()
            .copied()
            .filter(|k| k.template() == "returns")
    }

    #[test]
    fn return_emails_cope_with_missing_data() {
        let r = Renderer::new().unwrap();
        let sparse = [
            serde_json::json!({}),
            serde_json::json!({
                "customer": {"greeting_name": null},
                "order": null,
                "return": {"number": null, "items": null, "resolution": "something_else",
                    "shipping": {"label_url": null, "instructions": null, "address": null},
                    "send_by": null, "exchange_items": null, "portal_url": null},
                "refund": {"amount": null, "order_number": null, "method": null},
                "credit": {"amount": null, "bonus": null, "total": null, "balance": null, "how_to_use": null}
            }),
            serde_json::json!({
                "return": {"number": "R-1", "resolution": "store_credit",
                    "items": [{"name": "Trail shoe", "sku": null, "quantity": 1, "reason": null, "amount": null}]},
                "refund": {"amount": "€87.00"},
                "credit": {"amount": "€87.00", "total": "€87.00", "balance": "€120.70"}
            }),
        ];
        for locale in Locale::ALL {
            for d in &sparse {
                for kind in return_kinds() {
                    let what = format!("{kind:?} {locale:?} {d}");
                    let out = r.render(kind, locale, &merchant(), d).unwrap();
                    assert!(!out.subject.is_empty(), "{what}");
                    let all = format!("{}{}{}", out.subject, out.html, out.text);
                    assert_no_placeholders(&what, &all);
                    let body = &out.html[out.html.find("<body").unwrap_or(0)..];
                    let shown = format!("{}{}{}", out.subject, body, out.text);
                    assert!(
                        !shown.replace("display:none", "").contains("none"),
                        "{what} printed a null: {shown}"
                    );
                    assert!(!all.contains("undefined"), "{what}");
                    assert!(!out.html.contains("unsubscribe"), "{what}: transactional");
                }
            }
        }
    }

    #[test]
    fn return_emails_say_what_the_customer_gets() {
        let r = Renderer::new().unwrap();
        let m = merchant();
        let ret = |resolution: &str| {
            serde_json::json!({
                "customer": {"greeting_name": "Ada"},
                "order": {"number": "1042", "placed_on": "3 December 2026"},
                "return": {
                    "number": "R-7K2Q9", "resolution": resolution, "refund_total": "€87.00",
                    "items": [{"name": "Trail shoe", "sku": "SHOE-42", "quantity": 1, "reason": "Too small"}],
                    "send_by": "10 December 2026",
                    "shipping": {"label_url": "https://labels.example/R-7K2Q9.pdf"},
                    "exchange_items": [{"name": "Trail shoe", "sku": "SHOE-43"}],
                    "rejection_reason": "Worn outdoors"
                }
            })
        };
        let approved = r
            .render(EmailKind::ReturnApproved, Locale::En, &m, &ret("refund"))
            .unwrap();
        assert_eq!(approved.subject, "Your return R-7K2Q9 has been approved");
        assert!(
            approved
                .text
                .contains("Please send the items back by 10 December 2026.")
        );
        assert!(
            approved
                .text
                .contains("we will refund €87.00 to your original payment method")
        );
        assert!(approved.text.contains("https://labels.example/R-7K2Q9.pdf"));
        let credit = r
            .render(
                EmailKind::ReturnReceived,
                Locale::De,
                &m,
                &ret("store_credit"),
            )
            .unwrap();
        assert!(
            credit.text.contains("87.00 als Guthaben gut"),
            "{}",
            credit.text
        );
        assert!(
            !credit.text.contains("Rücksendeetikett"),
            "no label once received"
        );
        let exchange = r
            .render(EmailKind::ReturnReceived, Locale::Fr, &m, &ret("exchange"))
            .unwrap();
        assert!(exchange.text.contains("SHOE-43"), "{}", exchange.text);
        let rejected = r
            .render(EmailKind::ReturnRejected, Locale::En, &m, &ret("refund"))
            .unwrap();
        assert!(rejected.text.contains("Worn outdoors"));
        assert!(!rejected.text.contains("€87.00"), "nothing is refunded");
        // A refund without a return or an order (a refund made in the shop's back office).
        let refund = r
            .render(
                EmailKind::RefundIssued,
                Locale::En,
                &m,
                &serde_json::json!({"refund": {"amount": "€12.00", "method": "original_payment"}}),
            )
            .unwrap();
        assert_eq!(refund.subject, "Your refund of €12.00 is on its way");
        assert!(
            refund
                .text
                .contains("We have refunded €12.00 to your original payment method.")
        );
        let with_order = r
            .render(
                EmailKind::RefundIssued,
                Locale::De,
                &m,
                &serde_json::json!({"refund": {"amount": "12,00 €", "order_number": "1042"}}),
            )
            .unwrap();
        assert_eq!(
            with_order.subject,
            "Ihre Erstattung über 12,00 € zur Bestellung 1042"
        );
    }

    #[test]
    fn subscription_pages_render_in_every_locale() {
        let r = Renderer::new().unwrap();
        let m = merchant();
        let manage = serde_json::json!({
            "subscription": data("Ann")["subscription"].clone(),
            "card": data("Ann")["card"].clone(),
            "links": {"update_payment_url": "https://api.example/v1/billing/tok/payment"},
            "action_url": "https://api.example/v1/subscription/tok",
            "actions": [
                {"value": "keep", "label_key": "subscription_page.keep", "primary": true},
                {"value": "cancel", "label_key": "subscription_page.cancel", "primary": false}
            ]
        });
        for locale in Locale::ALL {
            let html = r
                .render_page(
                    "subscription",
                    "subscription_page.title",
                    locale,
                    &m,
                    &manage,
                )
                .unwrap();
            assert!(html.contains(&format!("lang=\"{}\"", locale.as_str())));
            assert!(html.contains("Coffee club") && html.contains("4242"));
            assert_eq!(html.matches("<form").count(), 1, "one form");
            assert!(html.contains("method=\"post\""));
            assert!(html.contains("name=\"action\" value=\"keep\""));
            assert!(html.contains("name=\"action\" value=\"cancel\""));
            assert!(!html.contains("value=\"renew\""));
            assert!(html.contains("Acme Outdoor"), "title names the merchant");
            for external in ["<script", "<link", "<img", "src="] {
                assert!(!html.contains(external), "{locale:?} {external}");
            }
            assert_no_placeholders(&format!("subscription {locale:?}"), &html);

            // Without data, and with an action it has no label for.
            let bare = r
                .render_page(
                    "subscription",
                    "subscription_page.title",
                    locale,
                    &m,
                    &serde_json::json!({"actions": [{"value": "pause", "label_key": "nope", "primary": true}]}),
                )
                .unwrap();
            assert!(!bare.contains("<form"));
            assert_no_placeholders(&format!("bare subscription {locale:?}"), &bare);

            for done in ["cancel", "renew", "keep", "other"] {
                let html = r
                    .render_page(
                        "subscription_done",
                        "subscription_done.title",
                        locale,
                        &m,
                        &serde_json::json!({
                            "done": done,
                            "subscription": {"plan_name": "Coffee club", "renews_on": "1 December 2026"}
                        }),
                    )
                    .unwrap();
                assert!(html.contains("Acme Outdoor") && html.contains("Coffee club"));
                assert!(html.contains("role=\"status\""));
                assert_no_placeholders(&format!("done {done} {locale:?}"), &html);
            }
            r.render_page(
                "subscription_done",
                "subscription_done.title",
                locale,
                &m,
                &serde_json::json!({}),
            )
            .unwrap();
        }
        let en = r
            .render_page(
                "subscription_done",
                "subscription_done.title",
                Locale::En,
                &m,
                &serde_json::json!({"done": "cancel", "subscription": {"plan_name": "Coffee club"}}),
            )
            .unwrap();
        assert!(
            en.contains("let Acme Outdoor know"),
            "honest: the merchant completes it"
        );
        assert!(en.contains("They will confirm by email."));
        // "keep" is not passed on to the merchant, so the page must not say it was.
        let keep = r
            .render_page(
                "subscription_done",
                "subscription_done.title",
                Locale::En,
                &m,
                &serde_json::json!({"done": "keep", "subscription": {"plan_name": "Coffee club"}}),
            )
            .unwrap();
        assert!(!keep.contains("know") && !keep.contains("confirm"));
        // A cancelled subscription: "ends on" and a single renew action.
        let mut cancelled = manage.clone();
        cancelled["subscription"]["offers_renewal"] = true.into();
        cancelled["subscription"]["status"] = "cancelled".into();
        cancelled["actions"] = serde_json::json!([
            {"value": "renew", "label_key": "subscription_page.renew", "primary": true}
        ]);
        let html = r
            .render_page(
                "subscription",
                "subscription_page.title",
                Locale::En,
                &m,
                &cancelled,
            )
            .unwrap();
        assert!(html.contains("ends on 1 December 2026"));
        assert!(html.contains("name=\"action\" value=\"renew\" class=\"btn\">Renew subscription<"));
        assert!(!html.contains("value=\"cancel\""));
    }
}
