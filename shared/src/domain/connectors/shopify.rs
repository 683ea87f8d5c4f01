//! A Shopify order (the body of the `orders/create` webhook, the same shape as the REST Admin API's
//! Order resource) mapped to an [`OrderInput`].
//!
//! The mapping is exact and total: every amount is read from Shopify's decimal strings in the shop
//! currency's minor units (never through `f64`), every id from its JSON integer, and an order whose
//! totals Shopify computes differently from Aftercare is reconciled, not refused. Errors name the
//! field by its path in Shopify's payload (`line_items[1].price`).
//!
//! | Shopify field | Aftercare | Rule |
//! |---|---|---|
//! | `id` | `id` | The order id as a decimal string (read as a 64-bit integer: ids exceed 2^53). Later topics (fulfillments, refunds) name the order by it. |
//! | `name` | `ShopifyOrder.name` | What the customer sees (`#1001`); kept beside the order, not used as its id. |
//! | `created_at` | `placed_at` | ISO 8601 with an offset (`2026-11-20T10:30:00-05:00`), written as RFC 3339 in UTC; the instant is kept. |
//! | `currency` | `currency` | The shop currency. Every amount below is read from the shop-currency fields, never the presentment ones. |
//! | `email`, else `contact_email`, else `customer.email` | `customer.email` | None of them → error `email` / `no_email`; the caller decides what to do with such an order. |
//! | `customer.id` | `customer.id` | `shopify-<id>`; without a `customer` object none, and the order path derives the id from the email. |
//! | `customer.first_name` / `last_name`, else `billing_address.first_name` / `last_name` | `customer.first_name` / `last_name` | The pair is taken from the customer when it has either name, else from the billing address, so two people's names are never mixed. |
//! | `customer_locale` | `customer.locale` | The tag as given (`de`, `fr-CA`, `pt-BR`): sending picks the nearest supported language and falls back to the merchant's default. A value that is not a language tag → none. |
//! | `line_items[i].sku`, else `variant_id`, else `id` | `items[i].sku` | An empty SKU counts as none: `variant-<variant_id>`, else `line-<id>`. |
//! | `line_items[i].name`, else `title` | `items[i].name` | |
//! | `line_items[i].quantity` | `items[i].quantity` | |
//! | `line_items[i].price` | `items[i].unit_price` | The undiscounted unit price. Line discounts (`discount_allocations`) are part of `total_discounts`, so they count into the order's discount, never into the unit price. |
//! | Σ `shipping_lines[].price` | `shipping` | The undiscounted price: Shopify counts shipping discounts into `total_discounts`, so they count into the order's discount (see the reconciliation for a discount above the items' subtotal). `discounted_price` is not read: its meaning changed in API version 2024-07. |
//! | `total_tax` | `tax` | 0 when `taxes_included` is true: line prices and shipping then already contain the tax. |
//! | `total_discounts` | `discount` | Every line, order and shipping discount. Absent → the sum of the lines' and shipping lines' `discount_allocations[].amount`. |
//! | `total_price` | `total` | As given. Gift cards are a payment method: they do not lower `total_price`, and nothing here changes for them. |
//! | `test` | `ShopifyOrder.test` | Absent → false. |
//! | `financial_status` | `ShopifyOrder.financial_status` | As given (`paid`, `pending`, ...). |
//!
//! Amounts: a decimal string in the currency's exponent (JPY 0, EUR 2, KWD 3); further decimals
//! only if they are zeros. Negative values, JSON numbers and anything else are refused.
//!
//! **Reconciliation.** Aftercare requires `total = items + shipping + tax − discount` and
//! `discount ≤ items`. With the values above, the difference `total_price − (items + shipping + tax
//! − discount)` is spread so that both always hold for any order with a non-negative total:
//! 1. a positive difference is charges Shopify adds on top: duties (`current_total_duties_set`,
//!    else `original_total_duties_set`, shop money) go to `tax` up to their amount, and the rest
//!    (tips in `total_tip_received`, additional fees, anything else) to `shipping` as charges;
//! 2. a negative difference (rounding, a discount Shopify left out of `total_discounts`) is added to
//!    `discount`;
//! 3. a discount above the items' subtotal (free shipping on a small order) is capped at the
//!    subtotal and the excess taken off `shipping`, then off `tax`.
//!
//! Fields not read: `line_items[].current_quantity`, refunds and fulfillments (other topics carry
//! them), `presentment_currency` and every `*_set.presentment_money`.

use super::{decimal_id, member, minor_units};
use crate::domain::customer::CustomerInput;
use crate::domain::order::LineItemInput;
use crate::domain::{Currency, FieldError, Locale, OrderInput};
use jiff::Timestamp;
use serde_json::Value;

/// A Shopify order mapped to Aftercare's order input, with what Shopify says about it besides.
#[derive(Debug, Clone)]
pub struct ShopifyOrder {
    pub input: OrderInput,
    /// Shopify's order id as a decimal string (also `input.id`).
    pub shopify_id: String,
    /// The name the customer sees, e.g. `#1001`.
    pub name: String,
    /// Shopify's test flag: a test order placed with a test gateway.
    pub test: bool,
    /// `paid`, `pending`, `authorized`, `refunded`, `voided`, ...
    pub financial_status: Option<String>,
}

/// Maps an `orders/create` (or `orders/updated`) payload. See the module documentation for every
/// rule; an order without any email address is refused as `email` / `no_email`.
pub fn order_input(payload: &Value) -> Result<ShopifyOrder, FieldError> {
    if !payload.is_object() {
        return Err(FieldError::new(
            "",
            "invalid_type",
            "a Shopify order must be a JSON object",
        ));
    }
    let shopify_id =
        decimal_id("id", member(payload, "id"))?.ok_or_else(|| FieldError::required("id"))?;
    let name = text(payload, "name", "name")?.unwrap_or_else(|| shopify_id.clone());
    let test = match member(payload, "test") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(FieldError::new(
                "test",
                "invalid_type",
                "test must be true or false",
            ));
        }
    };
    let financial_status = text(payload, "financial_status", "financial_status")?;
    let placed_at = placed_at(payload)?;
    let currency_code =
        text(payload, "currency", "currency")?.ok_or_else(|| FieldError::required("currency"))?;
    let currency = Currency::parse("currency", &currency_code)?;
    let customer = customer(payload)?;

    let (items, items_total, line_discounts) = line_items(payload, currency)?;
    let (shipping, shipping_discounts) = shipping_lines(payload, currency)?;
    let taxes_included = matches!(member(payload, "taxes_included"), Some(Value::Bool(true)));
    let tax = if taxes_included {
        0
    } else {
        i128::from(amount(payload, "total_tax", "total_tax", currency)?.unwrap_or(0))
    };
    let discount = match amount(payload, "total_discounts", "total_discounts", currency)? {
        Some(d) => i128::from(d),
        None => line_discounts.saturating_add(shipping_discounts),
    };
    let total = amount(payload, "total_price", "total_price", currency)?
        .ok_or_else(|| FieldError::required("total_price"))?;
    let duties = duties(payload, currency)?;

    let sums = reconcile(
        Sums {
            items: items_total,
            shipping,
            tax,
            discount,
        },
        total,
        duties,
    )
    .ok_or_else(|| {
        FieldError::new(
            "total_price",
            "out_of_range",
            "the order's amounts are larger than any accepted amount",
        )
    })?;

    Ok(ShopifyOrder {
        input: OrderInput {
            id: shopify_id.clone(),
            placed_at,
            currency: currency.code().to_owned(),
            customer,
            items,
            shipping: Some(sums.shipping),
            tax: Some(sums.tax),
            discount: Some(sums.discount),
            total,
            referral_code: None,
        },
        shopify_id,
        name,
        test,
        financial_status,
    })
}

/// The order's parts in minor units, wide enough that no sum of parsed amounts overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sums {
    items: i128,
    shipping: i128,
    tax: i128,
    discount: i128,
}

/// Spreads `total − (items + shipping + tax − discount)` as the module documentation describes;
/// `None` if a part would not fit in an `i64` (or, impossible for `total ≥ 0`, the excess
/// discount did not fit in shipping and tax).
fn reconcile(mut s: Sums, total: i64, duties: i64) -> Option<Reconciled> {
    // Bounded to i64 first, so that none of the i128 arithmetic below can overflow.
    let bound = i128::from(i64::MAX);
    if [s.items, s.shipping, s.tax, s.discount]
        .iter()
        .any(|v| !(-bound..=bound).contains(v))
    {
        return None;
    }
    let total = i128::from(total);
    let difference = total - (s.items + s.shipping + s.tax - s.discount);
    if difference > 0 {
        let to_tax = difference.min(i128::from(duties));
        s.tax += to_tax;
        s.shipping += difference - to_tax;
    } else {
        s.discount -= difference;
    }
    if s.discount > s.items {
        let mut excess = s.discount - s.items;
        s.discount = s.items;
        let from_shipping = excess.min(s.shipping);
        s.shipping -= from_shipping;
        excess -= from_shipping;
        let from_tax = excess.min(s.tax);
        s.tax -= from_tax;
        excess -= from_tax;
        if excess > 0 {
            return None;
        }
    }
    Some(Reconciled {
        shipping: i64::try_from(s.shipping).ok()?,
        tax: i64::try_from(s.tax).ok()?,
        discount: i64::try_from(s.discount).ok()?,
    })
}

struct Reconciled {
    shipping: i64,
    tax: i64,
    discount: i64,
}

/// A string member, trimmed; absent, `null` or empty is `None`, any other type an error on `path`.
fn text(obj: &Value, key: &str, path: &str) -> Result<Option<String>, FieldError> {
    match member(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(_) => Err(FieldError::new(
            path,
            "invalid_type",
            format!("{path} must be a string"),
        )),
    }
}

/// An amount member in minor units; absent or `null` is `None`.
fn amount(
    obj: &Value,
    key: &str,
    path: &str,
    currency: Currency,
) -> Result<Option<i64>, FieldError> {
    member(obj, key)
        .map(|v| minor_units(path, v, currency))
        .transpose()
}

/// An array member; absent or `null` is empty.
fn array<'a>(obj: &'a Value, key: &str, path: &str) -> Result<&'a [Value], FieldError> {
    match member(obj, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(FieldError::new(
            path,
            "invalid_type",
            format!("{path} must be an array"),
        )),
    }
}

/// An object member; absent or `null` is `None`.
fn object<'a>(obj: &'a Value, key: &str) -> Result<Option<&'a Value>, FieldError> {
    match member(obj, key) {
        None => Ok(None),
        Some(v) if v.is_object() => Ok(Some(v)),
        Some(_) => Err(FieldError::new(
            key,
            "invalid_type",
            format!("{key} must be an object"),
        )),
    }
}

fn placed_at(payload: &Value) -> Result<String, FieldError> {
    let created = text(payload, "created_at", "created_at")?
        .ok_or_else(|| FieldError::required("created_at"))?;
    let at: Timestamp = created.parse().map_err(|_| {
        FieldError::new(
            "created_at",
            "invalid_format",
            "created_at must be an ISO 8601 time with an offset such as 2026-11-20T10:30:00-05:00",
        )
    })?;
    Ok(at.to_string())
}

fn customer(payload: &Value) -> Result<CustomerInput, FieldError> {
    let customer = object(payload, "customer")?;
    let billing = object(payload, "billing_address")?;
    let mut email = text(payload, "email", "email")?;
    if email.is_none() {
        email = text(payload, "contact_email", "contact_email")?;
    }
    if email.is_none() {
        if let Some(c) = customer {
            email = text(c, "email", "customer.email")?;
        }
    }
    let email = email.ok_or_else(|| {
        FieldError::new(
            "email",
            "no_email",
            "the order has no email address (email, contact_email or customer.email)",
        )
    })?;
    let id = match customer {
        Some(c) => decimal_id("customer.id", member(c, "id"))?.map(|id| format!("shopify-{id}")),
        None => None,
    };
    let names = |obj: &Value, path: &str| -> Result<(Option<String>, Option<String>), FieldError> {
        Ok((
            text(obj, "first_name", &format!("{path}.first_name"))?,
            text(obj, "last_name", &format!("{path}.last_name"))?,
        ))
    };
    let mut name = match customer {
        Some(c) => names(c, "customer")?,
        None => (None, None),
    };
    if name == (None, None) {
        if let Some(b) = billing {
            name = names(b, "billing_address")?;
        }
    }
    let locale = text(payload, "customer_locale", "customer_locale")?
        .filter(|tag| Locale::is_well_formed_tag(tag));
    Ok(CustomerInput {
        id,
        email,
        first_name: name.0,
        last_name: name.1,
        locale,
        time_zone: None,
    })
}

/// The lines, their undiscounted total and the sum of their discount allocations.
fn line_items(
    payload: &Value,
    currency: Currency,
) -> Result<(Vec<LineItemInput>, i128, i128), FieldError> {
    let lines = array(payload, "line_items", "line_items")?;
    if lines.is_empty() {
        return Err(FieldError::new(
            "line_items",
            "required",
            "an order needs at least one line item",
        ));
    }
    let mut items = Vec::with_capacity(lines.len());
    let (mut total, mut discounts) = (0_i128, 0_i128);
    for (i, line) in lines.iter().enumerate() {
        let path = format!("line_items[{i}]");
        if !line.is_object() {
            return Err(FieldError::new(
                path.clone(),
                "invalid_type",
                format!("{path} must be an object"),
            ));
        }
        let sku = match text(line, "sku", &format!("{path}.sku"))? {
            Some(sku) => sku,
            None => match decimal_id(&format!("{path}.variant_id"), member(line, "variant_id"))? {
                Some(variant) => format!("variant-{variant}"),
                None => decimal_id(&format!("{path}.id"), member(line, "id"))?
                    .map(|id| format!("line-{id}"))
                    .ok_or_else(|| FieldError::required(format!("{path}.id")))?,
            },
        };
        let name = match text(line, "name", &format!("{path}.name"))? {
            Some(name) => name,
            None => text(line, "title", &format!("{path}.title"))?
                .ok_or_else(|| FieldError::required(format!("{path}.name")))?,
        };
        let quantity = match member(line, "quantity") {
            Some(Value::Number(n)) => n.as_i64(),
            None => return Err(FieldError::required(format!("{path}.quantity"))),
            Some(_) => None,
        }
        .ok_or_else(|| {
            FieldError::new(
                format!("{path}.quantity"),
                "invalid_type",
                format!("{path}.quantity must be an integer"),
            )
        })?;
        let unit_price = amount(line, "price", &format!("{path}.price"), currency)?
            .ok_or_else(|| FieldError::required(format!("{path}.price")))?;
        total = total.saturating_add(i128::from(unit_price) * i128::from(quantity));
        discounts = discounts.saturating_add(allocations(line, &path, currency)?);
        items.push(LineItemInput {
            sku,
            name,
            quantity,
            unit_price,
            url: None,
            image_url: None,
        });
    }
    Ok((items, total, discounts))
}

/// The undiscounted shipping price and the sum of the shipping lines' discount allocations.
fn shipping_lines(payload: &Value, currency: Currency) -> Result<(i128, i128), FieldError> {
    let (mut price, mut discounts) = (0_i128, 0_i128);
    for (i, line) in array(payload, "shipping_lines", "shipping_lines")?
        .iter()
        .enumerate()
    {
        let path = format!("shipping_lines[{i}]");
        let line_price = amount(line, "price", &format!("{path}.price"), currency)?;
        price = price.saturating_add(i128::from(line_price.unwrap_or(0)));
        discounts = discounts.saturating_add(allocations(line, &path, currency)?);
    }
    Ok((price, discounts))
}

/// Σ `discount_allocations[].amount` of one line.
fn allocations(line: &Value, path: &str, currency: Currency) -> Result<i128, FieldError> {
    let mut sum = 0_i128;
    let list = array(
        line,
        "discount_allocations",
        &format!("{path}.discount_allocations"),
    )?;
    for (j, allocation) in list.iter().enumerate() {
        let field = format!("{path}.discount_allocations[{j}].amount");
        sum = sum.saturating_add(i128::from(
            amount(allocation, "amount", &field, currency)?.unwrap_or(0),
        ));
    }
    Ok(sum)
}

/// The order's duties in shop money: `current_total_duties_set`, else `original_total_duties_set`.
fn duties(payload: &Value, currency: Currency) -> Result<i64, FieldError> {
    for key in ["current_total_duties_set", "original_total_duties_set"] {
        let Some(set) = object(payload, key)? else {
            continue;
        };
        let Some(shop) = object(set, "shop_money").map_err(|e| e.within(key))? else {
            continue;
        };
        let path = format!("{key}.shop_money.amount");
        if let Some(duties) = amount(shop, "amount", &path, currency)? {
            return Ok(duties);
        }
    }
    Ok(0)
}
