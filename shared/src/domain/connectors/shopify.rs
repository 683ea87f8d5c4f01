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
//! | `email`, else `contact_email`, else `customer.email` | `customer.email` | None of them (a point-of-sale or phone order) → none: the order is stored and never mailed. |
//! | `customer.id` | `customer.id` | `shopify-<id>`; without a `customer` object none, and the order path derives the id from the email; with no email either, `shopify-guest-<order id>`. |
//! | `customer.first_name` / `last_name`, else `billing_address.first_name` / `last_name` | `customer.first_name` / `last_name` | The pair is taken from the customer when it has either name, else from the billing address, so two people's names are never mixed. |
//! | `customer_locale` | `customer.locale` | The tag as given (`de`, `fr-CA`, `pt-BR`): sending picks the nearest supported language and falls back to the merchant's default. A value that is not a language tag → none. |
//! | `line_items[i].sku`, else `variant_id`, else `id` | `items[i].sku` | An empty SKU counts as none: `variant-<variant_id>`, else `line-<id>`. |
//! | `line_items[i].name`, else `title` | `items[i].name` | |
//! | `line_items[i].quantity` | `items[i].quantity` | |
//! | `line_items[i].price` | `items[i].unit_price` | The undiscounted unit price. Line discounts (`discount_allocations`) are part of `total_discounts`, so they count into the order's discount, never into the unit price. |
//! | Σ `shipping_lines[].price` − Σ `shipping_lines[].discount_allocations[].amount` | `shipping` | What the customer pays for shipping: a shipping discount (free shipping) lowers shipping, not the items' value (which earns loyalty points). `discounted_price` is not read: its meaning changed in API version 2024-07. |
//! | `total_tax` | `tax` | 0 when `taxes_included` is true: line prices and shipping then already contain the tax. |
//! | `total_discounts` − the shipping lines' allocations | `discount` | Every line and order discount (Shopify's total also holds the shipping discounts, netted from shipping above). Absent → Σ `line_items[].discount_allocations[].amount`. |
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
//! 3. a discount above the items' subtotal (a shipping discount Shopify did not allocate to a
//!    shipping line) is capped at the subtotal and the excess taken off `shipping`, then off `tax`.
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
/// rule; an order without any email address maps to a customer without one (stored, not mailed).
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
    // Shipping discounts are netted from shipping, not counted as a discount on the items.
    let shipping = (shipping - shipping_discounts).max(0);
    let discount = match amount(payload, "total_discounts", "total_discounts", currency)? {
        Some(d) => (i128::from(d) - shipping_discounts).max(0),
        None => line_discounts,
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
            test,
        },
        shopify_id,
        name,
        test,
        financial_status,
    })
}

/// The order's parts in minor units, wide enough that no sum of parsed amounts overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sums {
    pub(super) items: i128,
    pub(super) shipping: i128,
    pub(super) tax: i128,
    pub(super) discount: i128,
}

/// Spreads `total − (items + shipping + tax − discount)` as the module documentation describes;
/// `None` if a part would not fit in an `i64` (or, impossible for `total ≥ 0`, the excess
/// discount did not fit in shipping and tax).
pub(super) fn reconcile(mut s: Sums, total: i64, duties: i64) -> Option<Reconciled> {
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

pub(super) struct Reconciled {
    pub(super) shipping: i64,
    pub(super) tax: i64,
    pub(super) discount: i64,
}

/// A string member, trimmed; absent, `null` or empty is `None`, any other type an error on `path`.
pub(super) fn text(obj: &Value, key: &str, path: &str) -> Result<Option<String>, FieldError> {
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
pub(super) fn amount(
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
pub(super) fn array<'a>(obj: &'a Value, key: &str, path: &str) -> Result<&'a [Value], FieldError> {
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

/// The order's `line_items`, each with its JSON path: at least one, each an object.
pub(super) fn line_objects(payload: &Value) -> Result<Vec<(String, &Value)>, FieldError> {
    let lines = array(payload, "line_items", "line_items")?;
    if lines.is_empty() {
        return Err(FieldError::new(
            "line_items",
            "required",
            "an order needs at least one line item",
        ));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let path = format!("line_items[{i}]");
            if line.is_object() {
                Ok((path, line))
            } else {
                Err(FieldError::new(
                    path.clone(),
                    "invalid_type",
                    format!("{path} must be an object"),
                ))
            }
        })
        .collect()
}

/// An object member; absent or `null` is `None`.
pub(super) fn object<'a>(obj: &'a Value, key: &str) -> Result<Option<&'a Value>, FieldError> {
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
    if email.is_none()
        && let Some(c) = customer
    {
        email = text(c, "email", "customer.email")?;
    }
    let mut id = match customer {
        Some(c) => decimal_id("customer.id", member(c, "id"))?.map(|id| format!("shopify-{id}")),
        None => None,
    };
    // An order with no email address (a point-of-sale or phone order) is stored, never mailed;
    // with no customer either, it is its own guest.
    if email.is_none() && id.is_none() {
        id = decimal_id("id", member(payload, "id"))?.map(|order| format!("shopify-guest-{order}"));
    }
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
    if name == (None, None)
        && let Some(b) = billing
    {
        name = names(b, "billing_address")?;
    }
    let locale = text(payload, "customer_locale", "customer_locale")?
        .filter(|tag| Locale::is_well_formed_tag(tag));
    Ok(CustomerInput {
        id,
        email: email.unwrap_or_default(),
        address_optional: true,
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
    let lines = line_objects(payload)?;
    let mut items = Vec::with_capacity(lines.len());
    let (mut total, mut discounts) = (0_i128, 0_i128);
    for (path, line) in lines {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::Order;
    use proptest::prelude::*;
    use serde_json::json;

    fn money_set(amount: &str, currency: &str) -> Value {
        json!({
            "shop_money": {"amount": amount, "currency_code": currency},
            "presentment_money": {"amount": amount, "currency_code": currency}
        })
    }

    fn allocation(amount: &str, currency: &str) -> Value {
        json!({
            "amount": amount,
            "amount_set": money_set(amount, currency),
            "discount_application_index": 0
        })
    }

    /// An `orders/create` body in the shape of Shopify's published sample: a EUR order with a 10 %
    /// code allocated to two of three lines, one shipping line and tax on top.
    fn sample() -> Value {
        let mut order = json!({
            "id": 820982911946154508_u64,
            "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
            "email": "jon@example.com",
            "contact_email": "jon@example.com",
            "closed_at": null,
            "created_at": "2026-11-20T10:30:00-05:00",
            "updated_at": "2026-11-20T10:30:01-05:00",
            "number": 1,
            "note": null,
            "token": "123456abcd",
            "gateway": null,
            "test": false,
            "total_price": "247.86",
            "subtotal_price": "204.60",
            "total_weight": 0,
            "total_tax": "38.31",
            "taxes_included": false,
            "currency": "EUR",
            "presentment_currency": "EUR",
            "financial_status": "paid",
            "confirmed": true,
            "total_discounts": "21.40",
            "total_line_items_price": "226.00",
            "buyer_accepts_marketing": false,
            "name": "#1001",
            "cancelled_at": null,
            "cancel_reason": null,
            "phone": null,
            "customer_locale": "en"
        });
        let totals = json!({
            "order_number": 1001,
            "discount_applications": [{
                "type": "discount_code",
                "value": "10.0",
                "value_type": "percentage",
                "allocation_method": "across",
                "target_selection": "entitled",
                "target_type": "line_item",
                "code": "TENT10"
            }],
            "discount_codes": [{"code": "TENT10", "amount": "21.40", "type": "percentage"}],
            "tax_lines": [{"price": "38.31", "rate": 0.19, "title": "MwSt"}],
            "total_line_items_price_set": money_set("226.00", "EUR"),
            "total_discounts_set": money_set("21.40", "EUR"),
            "total_shipping_price_set": money_set("4.95", "EUR"),
            "subtotal_price_set": money_set("204.60", "EUR"),
            "total_price_set": money_set("247.86", "EUR"),
            "total_tax_set": money_set("38.31", "EUR"),
            "fulfillments": [],
            "refunds": [],
            "total_tip_received": "0.00",
            "original_total_duties_set": null,
            "current_total_duties_set": null
        });
        if let (Some(order), Value::Object(totals)) = (order.as_object_mut(), totals) {
            order.extend(totals);
        }
        order["line_items"] = json!([
            {
                "id": 866550311766439020_u64,
                "variant_id": 808950810,
                "title": "Trail tent",
                "quantity": 1,
                "sku": "TENT-2",
                "variant_title": "Green",
                "vendor": null,
                "product_id": 632910392,
                "requires_shipping": true,
                "taxable": true,
                "gift_card": false,
                "name": "Trail tent - Green",
                "price": "199.00",
                "price_set": money_set("199.00", "EUR"),
                "total_discount": "0.00",
                "discount_allocations": [allocation("19.90", "EUR")],
                "duties": [],
                "tax_lines": [{"price": "34.03", "rate": 0.19, "title": "MwSt"}]
            },
            {
                "id": 141249953214522974_u64,
                "variant_id": 808950811,
                "title": "Tent pegs (10)",
                "quantity": 2,
                "sku": "",
                "variant_title": null,
                "name": "Tent pegs (10)",
                "price": "7.50",
                "price_set": money_set("7.50", "EUR"),
                "total_discount": "0.00",
                "discount_allocations": [allocation("1.50", "EUR")],
                "duties": [],
                "tax_lines": [{"price": "2.57", "rate": 0.19, "title": "MwSt"}]
            },
            {
                "id": 141249953214522975_u64,
                "variant_id": null,
                "title": "Enamel mug",
                "quantity": 1,
                "sku": null,
                "name": null,
                "price": "12.00",
                "price_set": money_set("12.00", "EUR"),
                "total_discount": "0.00",
                "discount_allocations": [],
                "duties": [],
                "tax_lines": [{"price": "1.71", "rate": 0.19, "title": "MwSt"}]
            }
        ]);
        order["shipping_lines"] = json!([{
            "id": 271878346596884015_u64,
            "title": "Standard",
            "price": "4.95",
            "code": "Standard",
            "source": "shopify",
            "discounted_price": "4.95",
            "price_set": money_set("4.95", "EUR"),
            "discounted_price_set": money_set("4.95", "EUR"),
            "discount_allocations": [],
            "tax_lines": []
        }]);
        order["billing_address"] = json!({
            "first_name": "Bob",
            "last_name": "Biller",
            "address1": "123 Billing Street",
            "city": "Billtown",
            "zip": "K2P0B0",
            "country_code": "US",
            "name": "Bob Biller"
        });
        order["customer"] = json!({
            "id": 207119551,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
            "state": "disabled",
            "verified_email": true,
            "currency": "EUR",
            "admin_graphql_api_id": "gid://shopify/Customer/207119551"
        });
        order
    }

    fn validated(payload: &Value) -> Order {
        order_input(payload)
            .unwrap()
            .input
            .validate()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(payload: &Value) -> (String, &'static str) {
        let e = order_input(payload).unwrap_err();
        (e.field, e.code)
    }

    /// `(items, shipping, tax, discount, total)` of a validated order.
    fn sums(order: &Order) -> (i64, i64, i64, i64, i64) {
        (
            order.subtotal,
            order.shipping,
            order.tax,
            order.discount,
            order.total,
        )
    }

    #[test]
    fn maps_the_published_sample_shape() {
        let mapped = order_input(&sample()).unwrap();
        assert_eq!(mapped.shopify_id, "820982911946154508");
        assert_eq!(mapped.name, "#1001");
        assert!(!mapped.test);
        assert_eq!(mapped.financial_status.as_deref(), Some("paid"));
        let order = mapped.input.validate().unwrap();
        assert_eq!(order.id.as_str(), "820982911946154508");
        assert_eq!(order.placed_at.to_string(), "2026-11-20T15:30:00Z");
        assert_eq!(order.currency.code(), "EUR");
        assert_eq!(order.customer.id.as_str(), "shopify-207119551");
        assert_eq!(
            order.customer.email.clone().unwrap().as_str(),
            "jon@example.com"
        );
        assert_eq!(order.customer.first_name.as_deref(), Some("John"));
        assert_eq!(order.customer.last_name.as_deref(), Some("Smith"));
        assert_eq!(order.customer.locale.as_deref(), Some("en"));
        let lines: Vec<_> = order
            .items
            .iter()
            .map(|i| (i.sku.as_str(), i.name.as_str(), i.quantity, i.unit_price))
            .collect();
        assert_eq!(
            lines,
            [
                ("TENT-2", "Trail tent - Green", 1, 19900),
                ("variant-808950811", "Tent pegs (10)", 2, 750),
                ("line-141249953214522975", "Enamel mug", 1, 1200),
            ]
        );
        // Line discounts stay out of the unit prices and count into the order's discount.
        assert_eq!(sums(&order), (22600, 495, 3831, 2140, 24786));
    }

    #[test]
    fn shopify_test_orders_and_their_status_are_kept_beside_the_input() {
        let mut p = sample();
        p["test"] = json!(true);
        p["financial_status"] = json!("voided");
        let mapped = order_input(&p).unwrap();
        assert!(mapped.test);
        assert_eq!(mapped.financial_status.as_deref(), Some("voided"));
        p["test"] = json!("yes");
        assert_eq!(error(&p), ("test".to_owned(), "invalid_type"));
    }

    #[test]
    fn jpy_amounts_have_no_decimals() {
        let mut p = sample();
        p["currency"] = json!("JPY");
        p["line_items"][0]["price"] = json!("1500");
        p["line_items"][0]["discount_allocations"] = json!([allocation("500", "JPY")]);
        p["line_items"][1]["price"] = json!("3000");
        p["line_items"][1]["discount_allocations"] = json!([]);
        p["line_items"][2]["price"] = json!("1000.00");
        p["shipping_lines"][0]["price"] = json!("800");
        p["total_tax"] = json!("750");
        p["total_discounts"] = json!("500");
        p["total_price"] = json!("9550");
        let order = validated(&p);
        assert_eq!(order.currency.exponent(), 0);
        assert_eq!(
            order.items.iter().map(|i| i.unit_price).collect::<Vec<_>>(),
            [1500, 3000, 1000]
        );
        assert_eq!(sums(&order), (8500, 800, 750, 500, 9550));

        p["line_items"][0]["price"] = json!("1500.5");
        assert_eq!(error(&p), ("line_items[0].price".to_owned(), "too_precise"));
    }

    #[test]
    fn kwd_amounts_have_three_decimals() {
        let mut p = sample();
        p["currency"] = json!("KWD");
        p["line_items"][0]["price"] = json!("12.250");
        p["line_items"][0]["discount_allocations"] = json!([allocation("1.225", "KWD")]);
        p["line_items"][1]["price"] = json!("1.125");
        p["line_items"][1]["discount_allocations"] = json!([]);
        p["line_items"][2]["price"] = json!("0.500");
        p["shipping_lines"][0]["price"] = json!("2.000");
        p["total_tax"] = json!("0.000");
        p["total_discounts"] = json!("1.225");
        p["total_price"] = json!("15.775");
        let order = validated(&p);
        assert_eq!(
            order.items.iter().map(|i| i.unit_price).collect::<Vec<_>>(),
            [12250, 1125, 500]
        );
        assert_eq!(sums(&order), (15000, 2000, 0, 1225, 15775));
    }

    #[test]
    fn customer_locale_is_passed_as_a_language_tag() {
        let mut p = sample();
        p["customer_locale"] = json!("de");
        let order = validated(&p);
        assert_eq!(order.customer.locale.as_deref(), Some("de"));
        assert_eq!(order.customer.locale_or(Locale::En), Locale::De);
        for (tag, expected) in [
            (json!("fr-CA"), Some("fr-CA")),
            (json!("pt-BR"), Some("pt-BR")),
            (json!("not a tag!"), None),
            (json!(""), None),
            (json!(null), None),
        ] {
            p["customer_locale"] = tag.clone();
            let order = validated(&p);
            assert_eq!(order.customer.locale.as_deref(), expected, "{tag}");
        }
        // Unsupported languages fall back to the merchant's default when writing.
        p["customer_locale"] = json!("pt-BR");
        assert_eq!(validated(&p).customer.locale_or(Locale::Fr), Locale::Fr);
    }

    #[test]
    fn ids_beyond_two_to_the_53_are_kept_exactly() {
        let mut p = sample();
        p["line_items"][2]["id"] = json!(1);
        let text = serde_json::to_string(&p)
            .unwrap()
            .replace("820982911946154508", "5940139491234567890")
            .replace("207119551", "5940139491234567891")
            .replace("\"id\":1,", "\"id\":5940139491234567893,");
        let p: Value = serde_json::from_str(&text).unwrap();
        let mapped = order_input(&p).unwrap();
        assert_eq!(mapped.shopify_id, "5940139491234567890");
        // 5940139491234567890 as an f64 would be 5940139491234567168.
        assert_eq!(mapped.input.id, "5940139491234567890");
        let order = mapped.input.validate().unwrap();
        assert_eq!(order.customer.id.as_str(), "shopify-5940139491234567891");
        assert_eq!(order.items[2].sku, "line-5940139491234567893");

        let mut p = sample();
        p["id"] = json!(8.209829119461545e17);
        assert_eq!(error(&p), ("id".to_owned(), "invalid_type"));
        p["id"] = json!(null);
        assert_eq!(error(&p), ("id".to_owned(), "required"));
        let mut p = sample();
        p["customer"]["id"] = json!("abc");
        assert_eq!(error(&p), ("customer.id".to_owned(), "invalid_format"));
    }

    #[test]
    fn taxes_included_counts_no_tax_on_top() {
        let mut p = sample();
        p["taxes_included"] = json!(true);
        // The VAT is inside the prices: total = items + shipping − discount.
        p["total_tax"] = json!("33.38");
        p["total_price"] = json!("209.55");
        let order = validated(&p);
        assert_eq!(sums(&order), (22600, 495, 0, 2140, 20955));
    }

    #[test]
    fn duties_count_as_tax_and_tips_as_charges() {
        let mut p = sample();
        p["current_total_duties_set"] = money_set("12.34", "EUR");
        p["original_total_duties_set"] = money_set("12.34", "EUR");
        p["total_tip_received"] = json!("5.00");
        // 247.86 + 12.34 duties + 5.00 tip
        p["total_price"] = json!("265.20");
        let order = validated(&p);
        assert_eq!(sums(&order), (22600, 495 + 500, 3831 + 1234, 2140, 26520));

        // Only the original duties given: they count the same way.
        p["current_total_duties_set"] = json!(null);
        assert_eq!(sums(&validated(&p)), (22600, 995, 5065, 2140, 26520));

        // A difference smaller than the duties all goes to tax.
        p["total_price"] = json!("250.00");
        assert_eq!(sums(&validated(&p)), (22600, 495, 3831 + 214, 2140, 25000));

        p["current_total_duties_set"] = money_set("12,34", "EUR");
        assert_eq!(
            error(&p),
            (
                "current_total_duties_set.shop_money.amount".to_owned(),
                "invalid_format"
            )
        );
    }

    #[test]
    fn shipping_discounts_lower_shipping() {
        // Free shipping on a small order: total_discounts holds the shipping discount.
        let mut p = sample();
        let line = p["line_items"][2].clone();
        p["line_items"] = json!([line]);
        p["line_items"][0]["price"] = json!("5.00");
        p["shipping_lines"][0]["price"] = json!("10.00");
        p["shipping_lines"][0]["discounted_price"] = json!("0.00");
        p["shipping_lines"][0]["discount_allocations"] = json!([allocation("10.00", "EUR")]);
        p["total_tax"] = json!("0.00");
        p["total_discounts"] = json!("10.00");
        p["total_price"] = json!("5.00");
        // The shipping discount nets shipping; the items keep their full value.
        assert_eq!(sums(&validated(&p)), (500, 0, 0, 0, 500));

        // Without total_discounts, the lines' allocations are the discount.
        p["total_discounts"] = json!(null);
        assert_eq!(sums(&validated(&p)), (500, 0, 0, 0, 500));
        // Were total_discounts to leave the shipping discount out, the total still reconciles.
        p["total_discounts"] = json!("0.00");
        assert_eq!(sums(&validated(&p)), (500, 0, 0, 0, 500));

        // Not allocated to the shipping line: the discount above the items comes off shipping.
        p["total_discounts"] = json!("10.00");
        p["shipping_lines"][0]["discount_allocations"] = json!([]);
        assert_eq!(sums(&validated(&p)), (500, 500, 0, 500, 500));
    }

    #[test]
    fn a_total_below_our_sum_counts_into_the_discount() {
        let mut p = sample();
        p["total_price"] = json!("247.85");
        assert_eq!(sums(&validated(&p)), (22600, 495, 3831, 2141, 24785));
        // Gift cards pay for an order without changing total_price: nothing to reconcile.
        let mut p = sample();
        p["payment_gateway_names"] = json!(["gift_card", "shopify_payments"]);
        assert_eq!(sums(&validated(&p)).4, 24786);
    }

    #[test]
    fn email_falls_back_to_contact_email_then_the_customer() {
        let mut p = sample();
        p["email"] = json!(null);
        p["contact_email"] = json!("contact@example.com");
        assert_eq!(
            validated(&p).customer.email.unwrap().as_str(),
            "contact@example.com"
        );
        p["contact_email"] = json!("");
        assert_eq!(
            validated(&p).customer.email.unwrap().as_str(),
            "john@example.com"
        );
        // No address anywhere: the customer is Shopify's, unaddressed; with no customer either,
        // the order is its own guest.
        p["customer"]["email"] = json!(null);
        let unaddressed = validated(&p);
        assert_eq!(unaddressed.customer.email, None);
        assert_eq!(unaddressed.customer.id.as_str(), "shopify-207119551");
        p["customer"] = json!(null);
        let guest = validated(&p);
        assert_eq!(guest.customer.email, None);
        assert_eq!(
            guest.customer.id.as_str(),
            format!("shopify-guest-{}", guest.id)
        );
    }

    #[test]
    fn names_come_from_the_customer_else_the_billing_address() {
        let mut p = sample();
        p["customer"]["first_name"] = json!(null);
        p["customer"]["last_name"] = json!("");
        let order = validated(&p);
        assert_eq!(order.customer.first_name.as_deref(), Some("Bob"));
        assert_eq!(order.customer.last_name.as_deref(), Some("Biller"));
        // One name on the customer: the billing address's other name is not mixed in.
        p["customer"]["first_name"] = json!("John");
        let order = validated(&p);
        assert_eq!(order.customer.display_name().as_deref(), Some("John"));
    }

    #[test]
    fn without_a_customer_the_id_comes_from_the_email() {
        let mut p = sample();
        p["customer"] = json!(null);
        let mapped = order_input(&p).unwrap();
        assert_eq!(mapped.input.customer.id, None);
        let order = mapped.input.validate().unwrap();
        assert!(order.customer.id.as_str().starts_with("e-"));
        assert_eq!(order.customer.display_name().as_deref(), Some("Bob Biller"));
    }

    #[test]
    fn bad_amounts_name_their_path() {
        for (value, code) in [
            (json!("7.5x"), "invalid_format"),
            (json!("-7.50"), "negative_amount"),
            (json!("7.505"), "too_precise"),
            (json!(7.5), "invalid_type"),
        ] {
            let mut p = sample();
            p["line_items"][1]["price"] = value.clone();
            assert_eq!(
                error(&p),
                ("line_items[1].price".to_owned(), code),
                "{value}"
            );
        }
        let mut p = sample();
        p["shipping_lines"][0]["price"] = json!("free");
        assert_eq!(
            error(&p),
            ("shipping_lines[0].price".to_owned(), "invalid_format")
        );
        let mut p = sample();
        p["line_items"][0]["discount_allocations"][0]["amount"] = json!("1.2.3");
        assert_eq!(
            error(&p),
            (
                "line_items[0].discount_allocations[0].amount".to_owned(),
                "invalid_format"
            )
        );
        for field in ["total_price", "total_tax", "total_discounts"] {
            let mut p = sample();
            p[field] = json!("NaN");
            assert_eq!(error(&p), (field.to_owned(), "invalid_format"));
        }
        let mut p = sample();
        p["total_price"] = json!(null);
        assert_eq!(error(&p), ("total_price".to_owned(), "required"));
    }

    #[test]
    fn other_malformed_fields_name_their_path() {
        let cases: [(&str, Value, &str, &str); 8] = [
            ("currency", json!("EURO"), "currency", "invalid_currency"),
            ("currency", json!(null), "currency", "required"),
            (
                "created_at",
                json!("yesterday"),
                "created_at",
                "invalid_format",
            ),
            ("created_at", json!(null), "created_at", "required"),
            ("line_items", json!([]), "line_items", "required"),
            ("line_items", json!({}), "line_items", "invalid_type"),
            ("email", json!(42), "email", "invalid_type"),
            ("customer", json!("john"), "customer", "invalid_type"),
        ];
        for (key, value, field, code) in cases {
            let mut p = sample();
            p[key] = value;
            assert_eq!(error(&p), (field.to_owned(), code), "{key}");
        }
        let mut p = sample();
        p["line_items"][1]["quantity"] = json!(1.5);
        assert_eq!(
            error(&p),
            ("line_items[1].quantity".to_owned(), "invalid_type")
        );
        let mut p = sample();
        p["line_items"][2]["title"] = json!(null);
        assert_eq!(error(&p), ("line_items[2].name".to_owned(), "required"));
        let mut p = sample();
        p["line_items"][2]["id"] = json!(null);
        assert_eq!(error(&p), ("line_items[2].id".to_owned(), "required"));
        assert_eq!(error(&json!([])), (String::new(), "invalid_type"));
    }

    fn decimal(minor: i64) -> String {
        format!("{}.{:02}", minor / 100, minor % 100)
    }

    proptest! {
        /// Whatever Shopify's totals say, a non-negative total yields an order that validates, with
        /// the lines and total exactly as sent.
        #[test]
        fn every_non_negative_total_reconciles(
            prices in proptest::collection::vec((0i64..1_000_000, 1i64..20), 1..5),
            shipping in 0i64..100_000,
            tax in 0i64..100_000,
            discount in 0i64..2_000_000,
            duties in 0i64..50_000,
            total in 0i64..30_000_000,
            taxes_included in any::<bool>(),
        ) {
            let mut p = sample();
            let line = p["line_items"][0].clone();
            p["line_items"] = Value::Array(prices.iter().map(|(price, qty)| {
                let mut l = line.clone();
                l["price"] = json!(decimal(*price));
                l["quantity"] = json!(qty);
                l
            }).collect());
            p["shipping_lines"][0]["price"] = json!(decimal(shipping));
            p["total_tax"] = json!(decimal(tax));
            p["total_discounts"] = json!(decimal(discount));
            p["current_total_duties_set"] = money_set(&decimal(duties), "EUR");
            p["total_price"] = json!(decimal(total));
            p["taxes_included"] = json!(taxes_included);
            let order = validated(&p);
            prop_assert_eq!(order.total, total);
            let items: i64 = prices.iter().map(|(price, qty)| price * qty).sum();
            prop_assert_eq!(order.subtotal, items);
        }
    }
}
