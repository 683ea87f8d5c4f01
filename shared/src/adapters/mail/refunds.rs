//! Template data of the "refund issued" email (the `returns` family): the `customer`, the `refund`
//! (its amount formatted in the customer's language) and, when the order is known, the same
//! `order` object the order emails get. A return's emails add their `return` object to it.

use super::billing::{compose, zone};
use super::format::long_date;
use super::{EmailKind, Mailbox, OutgoingEmail, Renderer};
use crate::domain::customer::CustomerRef;
use crate::domain::order::Order;
use crate::domain::{Locale, Merchant, Money};
use serde_json::{Value, json};

/// The `order` object of the order emails: number, date placed, lines and totals, money and dates
/// in `locale` and the zone `tz`.
pub fn order_value(order: &Order, locale: Locale, tz: &str) -> Value {
    let fmt = |amount: i64| order.money(amount).format(locale);
    let nonzero = |amount: i64| (amount != 0).then(|| fmt(amount));
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|i| {
            json!({
                "name": i.name, "sku": i.sku, "quantity": i.quantity, "url": i.url,
                "image_url": i.image_url, "unit_price": fmt(i.unit_price),
                "line_total": fmt(i.line_total),
            })
        })
        .collect();
    json!({
        "number": order.id, "placed_on": long_date(order.placed_at, tz, locale), "items": items,
        "subtotal": fmt(order.subtotal), "shipping": fmt(order.shipping), "tax": nonzero(order.tax),
        "discount": nonzero(order.discount), "total": fmt(order.total),
    })
}

/// The customer's language for their emails, else the merchant's.
pub fn locale_of(customer: &CustomerRef, merchant: &Merchant) -> Locale {
    customer.locale_or(merchant.default_locale)
}

/// The data of a "refund issued" email: `amount` went back to `customer` (to the original
/// payment method), for `order` when known.
pub fn refund_data(
    merchant: &Merchant,
    customer: &CustomerRef,
    amount: Money,
    order: Option<&Order>,
) -> Value {
    let locale = locale_of(customer, merchant);
    let tz = zone(customer, merchant);
    json!({
        "customer": {
            "greeting_name": customer.first_name, "first_name": customer.first_name,
            "last_name": customer.last_name,
        },
        "order": order.map(|o| order_value(o, locale, tz)),
        "refund": {
            "amount": amount.format(locale),
            "order_number": order.map(|o| o.id.as_str()),
            "method": "original_payment",
        },
    })
}

/// Renders `kind` (of the `returns` family) with `data` for `customer`, referenced `send_ref`;
/// `None` (logged) when the customer has no address or it cannot be rendered.
pub fn customer_email(
    renderer: &Renderer,
    merchant: &Merchant,
    kind: EmailKind,
    customer: &CustomerRef,
    data: &Value,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let to = Mailbox::new(customer.display_name().as_deref(), customer.email.clone()?);
    let locale = locale_of(customer, merchant);
    compose(renderer, merchant, kind, to, locale, data, send_ref)
}

/// The "refund issued" email of `amount` to `customer` (for `order` when known).
pub fn refund_email(
    renderer: &Renderer,
    merchant: &Merchant,
    customer: &CustomerRef,
    amount: Money,
    order: Option<&Order>,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let data = refund_data(merchant, customer, amount, order);
    customer_email(
        renderer,
        merchant,
        EmailKind::RefundIssued,
        customer,
        &data,
        send_ref,
    )
}
