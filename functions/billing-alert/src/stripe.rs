//! Stripe's webhook payloads, parsed into provider-neutral updates. Only the fields Aftercare uses
//! are read; every field that must be there is named in the error when it is not.

use aftercare::domain::billing::{BillingEvent, InvoiceFacts, RefundFacts};
use aftercare::domain::customer::{CustomerInput, CustomerRef};
use aftercare::domain::ids::{InvoiceId, SubscriptionId};
use aftercare::domain::subscription::{Card, CardInput, Interval, SubscriptionStatus};
use aftercare::domain::{Currency, FieldError, Money, OrderId};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// The envelope of every Stripe event.
#[derive(Debug, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: StripeData,
}

#[derive(Debug, Deserialize)]
pub struct StripeData {
    pub object: Value,
    #[serde(default)]
    pub previous_attributes: Option<Value>,
}

/// Changes to a stored subscription that Stripe reports without the customer's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPatch {
    pub id: SubscriptionId,
    pub status: Option<SubscriptionStatus>,
    pub next_renewal_at: Option<Timestamp>,
    pub price: Option<Money>,
    pub interval: Option<Interval>,
    pub plan_name: Option<String>,
}

/// What a Stripe event means for Aftercare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Billing(BillingEvent),
    Subscription(SubscriptionPatch),
    /// A customer's card changed (updated, or automatically updated by the card network).
    Card {
        customer: String,
        card: Card,
    },
    /// An event type Aftercare does not act on (acknowledged, not stored).
    Ignored,
}

fn field(path: &str) -> FieldError {
    FieldError::required(format!("data.object.{path}"))
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(&format!("/{}", path.replace('.', "/")))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int_at(v: &Value, path: &str) -> Option<i64> {
    v.pointer(&format!("/{}", path.replace('.', "/")))
        .and_then(Value::as_i64)
}

fn time(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

fn currency(o: &Value) -> Result<Currency, FieldError> {
    let raw = str_at(o, "currency").ok_or_else(|| field("currency"))?;
    Currency::parse("data.object.currency", &raw.to_ascii_uppercase())
}

fn customer(o: &Value, email_path: &str, name_path: &str) -> Result<CustomerRef, FieldError> {
    let email = str_at(o, email_path).ok_or_else(|| field(email_path))?;
    let (first, last) = match str_at(o, name_path) {
        Some(name) => match name.split_once(' ') {
            Some((f, l)) => (Some(f.to_owned()), Some(l.to_owned())),
            None => (Some(name.to_owned()), None),
        },
        None => (None, None),
    };
    CustomerInput {
        id: str_at(o, "customer").map(str::to_owned),
        email: email.to_owned(),
        address_optional: false,
        first_name: first,
        last_name: last,
        locale: str_at(o, "customer_preferred_locales.0").map(str::to_owned),
        time_zone: None,
    }
    .validate()
    .map_err(|e| e.within("data.object"))
}

fn invoice(o: &Value, amount_path: &str) -> Result<InvoiceFacts, FieldError> {
    let id = InvoiceId::parse(
        "data.object.id",
        str_at(o, "id").ok_or_else(|| field("id"))?,
    )?;
    let amount = int_at(o, amount_path).ok_or_else(|| field(amount_path))?;
    let plan_name = str_at(o, "lines.data.0.price.nickname")
        .or_else(|| str_at(o, "lines.data.0.description"))
        .map(|s| s.chars().take(200).collect());
    let subscription_id = str_at(o, "subscription")
        .or_else(|| str_at(o, "parent.subscription_details.subscription"))
        .map(|s| SubscriptionId::parse("data.object.subscription", s))
        .transpose()?;
    Ok(InvoiceFacts {
        id,
        customer: customer(o, "customer_email", "customer_name")?,
        amount: Money::new(amount, currency(o)?),
        subscription_id,
        plan_name,
        payment_url: aftercare::domain::text::web_url(
            "data.object.hosted_invoice_url",
            str_at(o, "hosted_invoice_url"),
        )?,
    })
}

fn status(raw: &str, cancel_at_period_end: bool) -> Option<SubscriptionStatus> {
    Some(match raw {
        "active" | "trialing" if cancel_at_period_end => SubscriptionStatus::Cancelled,
        "active" => SubscriptionStatus::Active,
        "trialing" => SubscriptionStatus::Trialing,
        "past_due" | "unpaid" => SubscriptionStatus::PastDue,
        "paused" => SubscriptionStatus::Paused,
        "canceled" => SubscriptionStatus::Lapsed,
        "incomplete_expired" => SubscriptionStatus::Lapsed,
        _ => return None,
    })
}

/// Parses one verified Stripe event.
pub fn parse(event: &StripeEvent) -> Result<Parsed, FieldError> {
    let o = &event.data.object;
    Ok(match event.kind.as_str() {
        "invoice.payment_failed" => {
            Parsed::Billing(BillingEvent::PaymentFailed(invoice(o, "amount_due")?))
        }
        "invoice.paid" | "invoice.payment_succeeded" => {
            Parsed::Billing(BillingEvent::PaymentSucceeded(invoice(o, "amount_paid")?))
        }
        "invoice.upcoming" => {
            let id = str_at(o, "subscription")
                .or_else(|| str_at(o, "parent.subscription_details.subscription"))
                .ok_or_else(|| field("subscription"))?;
            Parsed::Subscription(SubscriptionPatch {
                id: SubscriptionId::parse("data.object.subscription", id)?,
                status: None,
                next_renewal_at: int_at(o, "next_payment_attempt")
                    .or_else(|| int_at(o, "period_end"))
                    .and_then(time),
                price: int_at(o, "amount_due")
                    .zip(currency(o).ok())
                    .map(|(a, c)| Money::new(a, c)),
                interval: None,
                plan_name: None,
            })
        }
        "customer.subscription.updated" => {
            let id = str_at(o, "id").ok_or_else(|| field("id"))?;
            let cancel = o
                .get("cancel_at_period_end")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let price = o.pointer("/items/data/0/price");
            let interval = price.and_then(|p| {
                let every = str_at(p, "recurring.interval")?;
                let count = int_at(p, "recurring.interval_count").unwrap_or(1);
                Some(match (every, count) {
                    ("month", 1) => Interval::Monthly,
                    ("year", 1) => Interval::Annual,
                    ("day", n) => Interval::Days(u32::try_from(n).ok()?),
                    ("week", n) => Interval::Days(u32::try_from(n * 7).ok()?),
                    ("month", n) => Interval::Days(u32::try_from(n * 30).ok()?),
                    ("year", n) => Interval::Days(u32::try_from(n * 365).ok()?),
                    _ => return None,
                })
            });
            Parsed::Subscription(SubscriptionPatch {
                id: SubscriptionId::parse("data.object.id", id)?,
                status: str_at(o, "status").and_then(|s| status(s, cancel)),
                next_renewal_at: int_at(o, "current_period_end")
                    .or_else(|| int_at(o, "items.data.0.current_period_end"))
                    .and_then(time),
                price: price.and_then(|p| {
                    let amount = int_at(p, "unit_amount")?;
                    let c = Currency::parse("price", &str_at(p, "currency")?.to_ascii_uppercase())
                        .ok()?;
                    Some(Money::new(amount, c))
                }),
                interval,
                plan_name: price
                    .and_then(|p| str_at(p, "nickname"))
                    .map(|s| s.chars().take(200).collect()),
            })
        }
        "payment_method.updated" | "payment_method.card_automatically_updated" => {
            let customer = str_at(o, "customer").ok_or_else(|| field("customer"))?;
            let card = o.get("card").ok_or_else(|| field("card"))?;
            let card = CardInput {
                brand: str_at(card, "brand").unwrap_or("card").to_owned(),
                last4: str_at(card, "last4").unwrap_or_default().to_owned(),
                exp_month: int_at(card, "exp_month").unwrap_or_default(),
                exp_year: int_at(card, "exp_year").unwrap_or_default(),
            }
            .validate("data.object.card")?;
            Parsed::Card {
                customer: customer.to_owned(),
                card,
            }
        }
        "charge.refunded" => {
            let id = str_at(o, "id").ok_or_else(|| field("id"))?;
            let total = int_at(o, "amount_refunded").ok_or_else(|| field("amount_refunded"))?;
            let before = event
                .data
                .previous_attributes
                .as_ref()
                .and_then(|p| int_at(p, "amount_refunded"))
                .unwrap_or(0);
            let email_path = if str_at(o, "billing_details.email").is_some() {
                "billing_details.email"
            } else {
                "receipt_email"
            };
            Parsed::Billing(BillingEvent::Refund(RefundFacts {
                // Each partial refund of a charge is its own reversal.
                id: format!("{id}:{total}"),
                customer: customer(o, email_path, "billing_details.name")?,
                order_id: str_at(o, "metadata.order_id")
                    .map(|s| OrderId::parse("data.object.metadata.order_id", s))
                    .transpose()?,
                amount: Money::new((total - before).max(0), currency(o)?),
                refunded_in_all: Some(Money::new(total, currency(o)?)),
            }))
        }
        _ => Parsed::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, object: Value) -> StripeEvent {
        serde_json::from_value(serde_json::json!({
            "id": "evt_1", "type": kind, "created": 1_800_000_000, "data": {"object": object}
        }))
        .unwrap()
    }

    fn invoice_object() -> Value {
        serde_json::json!({
            "id": "in_1", "object": "invoice", "customer": "cus_1", "customer_email": "ann@example.com",
            "customer_name": "Ann Example", "amount_due": 1990, "amount_paid": 0, "currency": "eur",
            "subscription": "sub_1", "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
            "lines": {"data": [{"description": "Coffee club", "price": {"nickname": "Coffee club"}}]}
        })
    }

    #[test]
    fn payment_failed_becomes_a_neutral_event() {
        let Parsed::Billing(BillingEvent::PaymentFailed(inv)) =
            parse(&event("invoice.payment_failed", invoice_object())).unwrap()
        else {
            panic!("not a payment failure")
        };
        assert_eq!(inv.id.as_str(), "in_1");
        assert_eq!(inv.amount.amount, 1990);
        assert_eq!(inv.amount.currency.code(), "EUR");
        assert_eq!(inv.customer.first_name.as_deref(), Some("Ann"));
        assert_eq!(inv.plan_name.as_deref(), Some("Coffee club"));
    }

    #[test]
    fn missing_fields_are_named() {
        let mut o = invoice_object();
        o.as_object_mut().unwrap().remove("customer_email");
        let err = parse(&event("invoice.payment_failed", o)).unwrap_err();
        assert_eq!(err.field, "data.object.customer_email");
        assert_eq!(
            parse(&event("customer.created", serde_json::json!({}))).unwrap(),
            Parsed::Ignored
        );
    }

    #[test]
    fn subscription_update_and_card_update() {
        let o = serde_json::json!({"id": "sub_1", "status": "active", "cancel_at_period_end": true,
            "current_period_end": 1_800_000_000,
            "items": {"data": [{"price": {"unit_amount": 2490, "currency": "eur", "nickname": "Coffee club+",
                "recurring": {"interval": "year", "interval_count": 1}}}]}});
        let Parsed::Subscription(p) = parse(&event("customer.subscription.updated", o)).unwrap()
        else {
            panic!()
        };
        assert_eq!(p.status, Some(SubscriptionStatus::Cancelled));
        assert_eq!(p.interval, Some(Interval::Annual));
        assert_eq!(p.price.unwrap().amount, 2490);
        let o = serde_json::json!({"id": "pm_1", "customer": "cus_1",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2030}});
        let Parsed::Card { customer, card } =
            parse(&event("payment_method.card_automatically_updated", o)).unwrap()
        else {
            panic!()
        };
        assert_eq!((customer.as_str(), card.exp_year), ("cus_1", 2030));
    }

    #[test]
    fn partial_refunds_are_separate() {
        let mut e = event(
            "charge.refunded",
            serde_json::json!({"id": "ch_1", "amount_refunded": 1500, "currency": "eur", "customer": "cus_1",
                "billing_details": {"email": "ann@example.com", "name": "Ann"}, "metadata": {"order_id": "SO-1"}}),
        );
        e.data.previous_attributes = Some(serde_json::json!({"amount_refunded": 500}));
        let Parsed::Billing(BillingEvent::Refund(r)) = parse(&e).unwrap() else {
            panic!()
        };
        assert_eq!((r.id.as_str(), r.amount.amount), ("ch_1:1500", 1000));
        assert_eq!(r.refunded_in_all.map(|m| m.amount), Some(1500));
        assert_eq!(r.order_id.unwrap().as_str(), "SO-1");
    }
}
