//! The merchant's own billing events (`POST /v1/billing-events`), for billing systems other than
//! Stripe: the generic JSON shape, validated and mapped onto the same billing events.

use super::*;

/// `POST /v1/billing-events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenericEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    customer: CustomerInput,
    #[serde(default)]
    invoice: Option<GenericInvoice>,
    #[serde(default)]
    refund: Option<GenericRefund>,
    #[serde(default)]
    #[allow(dead_code)]
    occurred_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenericInvoice {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    plan_name: Option<String>,
    #[serde(default)]
    payment_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenericRefund {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    order_id: Option<String>,
}

impl GenericEvent {
    pub(crate) fn validate(self) -> Result<(String, BillingEvent), FieldError> {
        let id = aftercare::domain::text::single_line("id", &self.id, 200)?;
        if id.contains('#') {
            return Err(FieldError::new(
                "id",
                "invalid_format",
                "id must not contain #",
            ));
        }
        let customer = self.customer.validate().map_err(|e| e.within("customer"))?;
        let amount = |field: &str, amount: i64, currency: &str| -> Result<Money, FieldError> {
            if amount < 0 {
                return Err(FieldError::new(
                    format!("{field}.amount"),
                    "out_of_range",
                    "amount must not be negative",
                ));
            }
            // As for orders: far above any invoice, far below what the recovery report's sums
            // could overflow on.
            if amount > MAX_AMOUNT {
                return Err(FieldError::new(
                    format!("{field}.amount"),
                    "out_of_range",
                    "amount is larger than any accepted amount",
                ));
            }
            Ok(Money::new(
                amount,
                Currency::parse(&format!("{field}.currency"), currency)?,
            ))
        };
        let invoice = |inv: Option<GenericInvoice>| -> Result<InvoiceFacts, FieldError> {
            let inv = inv.ok_or_else(|| FieldError::required("invoice"))?;
            Ok(InvoiceFacts {
                id: InvoiceId::parse("invoice.id", &inv.id)?,
                customer: customer.clone(),
                amount: amount("invoice", inv.amount, &inv.currency)?,
                subscription_id: inv
                    .subscription_id
                    .as_deref()
                    .map(|s| SubscriptionId::parse("invoice.subscription_id", s))
                    .transpose()?,
                plan_name: aftercare::domain::text::optional_line(
                    "invoice.plan_name",
                    inv.plan_name.as_deref(),
                    200,
                )?,
                payment_url: aftercare::domain::text::web_url(
                    "invoice.payment_url",
                    inv.payment_url.as_deref(),
                )?,
            })
        };
        let event = match self.kind.as_str() {
            "payment_failed" => BillingEvent::PaymentFailed(invoice(self.invoice)?),
            "payment_succeeded" => BillingEvent::PaymentSucceeded(invoice(self.invoice)?),
            "refund" => {
                let r = self.refund.ok_or_else(|| FieldError::required("refund"))?;
                BillingEvent::Refund(RefundFacts {
                    refunded_in_all: None,
                    id: aftercare::domain::text::single_line("refund.id", &r.id, 200)?,
                    customer: customer.clone(),
                    order_id: r
                        .order_id
                        .as_deref()
                        .map(|o| OrderId::parse("refund.order_id", o))
                        .transpose()?,
                    amount: amount("refund", r.amount, &r.currency)?,
                })
            }
            _ => {
                return Err(FieldError::new(
                    "type",
                    "invalid_value",
                    "type must be payment_failed, payment_succeeded or refund",
                ));
            }
        };
        Ok((id, event))
    }
}
