//! Template data shared by the subscription and billing emails (renewal-checker and
//! billing-alert), so both describe a subscription, a card and a customer the same way.

use super::format::long_date;
use super::{EmailKind, Mailbox, OutgoingEmail, Renderer};
use crate::domain::customer::CustomerRef;
use crate::domain::subscription::{Card, Subscription};
use crate::domain::{Locale, Merchant};
use serde_json::{Value, json};

/// The customer's zone for dates, else the merchant's.
pub fn zone<'a>(customer: &'a CustomerRef, merchant: &'a Merchant) -> &'a str {
    customer.time_zone.as_deref().unwrap_or(&merchant.time_zone)
}

pub fn customer_value(customer: &CustomerRef) -> Value {
    json!({
        "greeting_name": customer.first_name,
        "name": customer.display_name().or_else(|| customer.email.as_ref().map(ToString::to_string)),
        "email": customer.email,
    })
}

pub fn card_value(card: &Card) -> Value {
    let mut brand = card.brand.clone();
    if let Some(first) = brand.get(..1) {
        brand = format!(
            "{}{}",
            first.to_uppercase(),
            brand.get(1..).unwrap_or_default()
        );
    }
    json!({"brand": brand, "last4": card.last4, "expires": card.expiry_short()})
}

pub fn subscription_value(
    sub: &Subscription,
    merchant: &Merchant,
    locale: Locale,
    auto_renewal_notice: bool,
) -> Value {
    json!({
        "id": sub.id,
        "plan_name": sub.plan_name,
        "interval": sub.interval.as_str(),
        "price": sub.price.format(locale),
        "renews_on": long_date(sub.next_renewal_at, zone(&sub.customer, merchant), locale),
        "status": sub.status.as_str(),
        "offers_renewal": sub.status.offers_renewal(),
        "auto_renewal_notice": auto_renewal_notice,
    })
}

/// Renders `kind` for `customer` (or, for internal kinds, the merchant's ops address `to`) and
/// composes the message; `None` (logged) if it cannot be rendered.
pub fn compose(
    renderer: &Renderer,
    merchant: &Merchant,
    kind: EmailKind,
    to: Mailbox,
    locale: Locale,
    data: &Value,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let rendered = renderer
        .render(kind, locale, merchant, data)
        .inspect_err(
            |e| tracing::error!(error = ?e, kind = kind.as_str(), "billing email failed to render"),
        )
        .ok()?;
    Some(OutgoingEmail::compose(
        merchant, to, kind, rendered, send_ref, None,
    ))
}
