//! A WooCommerce order (the body of the `order.created` / `order.updated` webhooks: the REST API v3
//! Order resource) mapped to an [`OrderInput`], and its Shipment Tracking items (the WooCommerce
//! Shipment Tracking extension's `_wc_shipment_tracking_items` order meta) mapped to shipments.
//!
//! Amounts are read from WooCommerce's decimal strings in the order currency's minor units, never
//! through `f64` (`line_items[].price` is a JSON number and is not read). Errors name the field by
//! its path in WooCommerce's payload (`line_items[1].subtotal`).
//!
//! | WooCommerce field | Aftercare | Rule |
//! |---|---|---|
//! | `id` | `id` | The order id as a decimal string; `order.updated` names the order by it. |
//! | `number` | `WooOrder.number` | What the customer sees (a sequential-number plugin may change it); kept beside the order. |
//! | `status` | `WooOrder.status` | The connector places an order only in one of its `place_on` statuses. |
//! | `date_created_gmt` | `placed_at` | `2026-11-20T15:30:00`, no offset: UTC. |
//! | `currency` | `currency` | |
//! | `billing.email` | `customer.email` | Empty (an order staff entered without one) → none: the order is stored and never mailed. |
//! | `customer_id` | `customer.id` | `woo-<customer_id>`; 0 (a guest) → none, and the order path derives the id from the email; with no email either, `woo-guest-<order id>`. |
//! | `billing.first_name` / `last_name` | `customer.first_name` / `last_name` | |
//! | `line_items[i].sku`, else `variation_id`, else `product_id`, else `id` | `items[i].sku` | An empty SKU counts as none: `variation-<id>` (non-zero), else `product-<id>`, else `line-<id>`. |
//! | `line_items[i].name` | `items[i].name` | |
//! | `line_items[i].quantity` | `items[i].quantity` | |
//! | `line_items[i].subtotal` ÷ `quantity` | `items[i].unit_price` | `subtotal` is the line before coupons, without tax. With `prices_include_tax`, `subtotal_tax` is added (the price the customer saw). A subtotal that does not divide by the quantity is rounded down; reconciliation carries the rest. |
//! | `shipping_total` | `shipping` | Plus `shipping_tax` with `prices_include_tax`. |
//! | `total_tax` | `tax` | 0 with `prices_include_tax`: prices and shipping then contain it. |
//! | `discount_total` | `discount` | Plus `discount_tax` with `prices_include_tax`. |
//! | `total` | `total` | As given. |
//!
//! **Reconciliation** is Shopify's (see [`super::shopify`]) with no duties: whatever `total` holds
//! beyond items + shipping + tax − discount (fees in `fee_lines`, rounding) counts as shipping
//! charges; a shortfall counts as discount; a discount above the items moves to shipping, then tax.
//!
//! Fields not read: `fee_lines` (through reconciliation only), `coupon_lines`, `refunds`,
//! `tax_lines`, `shipping` (the address), `payment_method`, `date_paid_gmt`.

use super::shopify::{Sums, amount, line_objects, object, reconcile, text};
use super::{decimal_id, member};
use crate::domain::customer::CustomerInput;
use crate::domain::order::LineItemInput;
use crate::domain::{Currency, FieldError, OrderInput};
use serde_json::Value;

/// The order meta key the Shipment Tracking extension stores its items under.
pub const TRACKING_META_KEY: &str = "_wc_shipment_tracking_items";

/// A WooCommerce order mapped to Aftercare's order input, with what WooCommerce says besides.
#[derive(Debug, Clone)]
pub struct WooOrder {
    pub input: OrderInput,
    /// WooCommerce's order id as a decimal string (also `input.id`).
    pub woo_id: String,
    /// The number the customer sees.
    pub number: String,
    /// `pending`, `processing`, `on-hold`, `completed`, ...
    pub status: String,
}

/// One Shipment Tracking item of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingItem {
    /// The extension's id of the item (`tracking_id`, an md5 hex string).
    pub tracking_id: String,
    /// `custom_tracking_provider`, else `tracking_provider` (a slug such as `usps`).
    pub carrier: Option<String>,
    pub tracking_number: String,
    /// `custom_tracking_link` (the extension builds predefined providers' links itself).
    pub tracking_url: Option<String>,
    /// `date_shipped` (a Unix time) as RFC 3339.
    pub shipped_at: Option<String>,
}

/// The order's status (`status`), without mapping the rest.
pub fn status(payload: &Value) -> Option<&str> {
    payload.get("status").and_then(Value::as_str).map(str::trim)
}

/// Maps an order payload. See the module documentation for every rule; an order without a billing
/// email maps to a customer without one (stored, not mailed).
pub fn order_input(payload: &Value) -> Result<WooOrder, FieldError> {
    if !payload.is_object() {
        return Err(FieldError::new(
            "",
            "invalid_type",
            "a WooCommerce order must be a JSON object",
        ));
    }
    let woo_id =
        decimal_id("id", member(payload, "id"))?.ok_or_else(|| FieldError::required("id"))?;
    let number = match member(payload, "number") {
        Some(Value::Number(n)) => n.to_string(),
        _ => text(payload, "number", "number")?.unwrap_or_else(|| woo_id.clone()),
    };
    let status =
        text(payload, "status", "status")?.ok_or_else(|| FieldError::required("status"))?;
    let placed_at = placed_at(payload)?;
    let currency_code =
        text(payload, "currency", "currency")?.ok_or_else(|| FieldError::required("currency"))?;
    let currency = Currency::parse("currency", &currency_code)?;
    let customer = customer(payload)?;
    let inclusive = matches!(
        member(payload, "prices_include_tax"),
        Some(Value::Bool(true))
    );
    let (items, items_total) = line_items(payload, currency, inclusive)?;
    let part = |key: &str| -> Result<i128, FieldError> {
        Ok(i128::from(
            amount(payload, key, key, currency)?.unwrap_or(0),
        ))
    };
    let (shipping, tax, discount) = if inclusive {
        (
            part("shipping_total")? + part("shipping_tax")?,
            0,
            part("discount_total")? + part("discount_tax")?,
        )
    } else {
        (
            part("shipping_total")?,
            part("total_tax")?,
            part("discount_total")?,
        )
    };
    let total = amount(payload, "total", "total", currency)?
        .ok_or_else(|| FieldError::required("total"))?;
    let sums = reconcile(
        Sums {
            items: items_total,
            shipping,
            tax,
            discount,
        },
        total,
        0,
    )
    .ok_or_else(|| {
        FieldError::new(
            "total",
            "out_of_range",
            "the order's amounts are larger than any accepted amount",
        )
    })?;
    Ok(WooOrder {
        input: OrderInput {
            id: woo_id.clone(),
            placed_at,
            currency: currency.code().to_owned(),
            customer,
            items,
            shipping: Some(sums.shipping),
            tax: Some(sums.tax),
            discount: Some(sums.discount),
            total,
            referral_code: None,
            // WooCommerce marks no order as a test one.
            test: false,
        },
        woo_id,
        number,
        status,
    })
}

fn placed_at(payload: &Value) -> Result<String, FieldError> {
    const FIELD: &str = "date_created_gmt";
    let created = text(payload, FIELD, FIELD)?.ok_or_else(|| FieldError::required(FIELD))?;
    utc(&created).ok_or_else(|| {
        FieldError::new(
            FIELD,
            "invalid_format",
            "date_created_gmt must be a UTC time such as 2026-11-20T15:30:00",
        )
    })
}

/// A WooCommerce `*_gmt` time (no offset) as RFC 3339 in UTC; one with an offset is taken as is.
fn utc(text: &str) -> Option<String> {
    if let Ok(at) = text.parse::<jiff::Timestamp>() {
        return Some(at.to_string());
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().to_string())
}

fn customer(payload: &Value) -> Result<CustomerInput, FieldError> {
    let billing = object(payload, "billing")?;
    let email = match billing {
        Some(b) => text(b, "email", "billing.email")?,
        None => None,
    };
    let mut id = decimal_id("customer_id", member(payload, "customer_id"))?
        .filter(|id| id.bytes().any(|b| b != b'0'))
        .map(|id| format!("woo-{id}"));
    // An order with no email address (entered by the shop's staff) is stored, never mailed; a
    // guest's is its own customer.
    if email.is_none() && id.is_none() {
        id = nonzero_id(payload, "id", "id")?.map(|order| format!("woo-guest-{order}"));
    }
    let (first_name, last_name) = match billing {
        Some(b) => (
            text(b, "first_name", "billing.first_name")?,
            text(b, "last_name", "billing.last_name")?,
        ),
        None => (None, None),
    };
    Ok(CustomerInput {
        id,
        email: email.unwrap_or_default(),
        address_optional: true,
        first_name,
        last_name,
        locale: None,
        time_zone: None,
    })
}

/// A non-zero id member as a decimal string.
fn nonzero_id(obj: &Value, key: &str, path: &str) -> Result<Option<String>, FieldError> {
    Ok(decimal_id(path, member(obj, key))?.filter(|id| id.bytes().any(|b| b != b'0')))
}

/// The lines and their total (before coupons).
fn line_items(
    payload: &Value,
    currency: Currency,
    inclusive: bool,
) -> Result<(Vec<LineItemInput>, i128), FieldError> {
    let lines = line_objects(payload)?;
    let mut items = Vec::with_capacity(lines.len());
    let mut total = 0_i128;
    for (path, line) in lines {
        let sku = match text(line, "sku", &format!("{path}.sku"))? {
            Some(sku) => sku,
            None => {
                if let Some(v) = nonzero_id(line, "variation_id", &format!("{path}.variation_id"))?
                {
                    format!("variation-{v}")
                } else if let Some(p) =
                    nonzero_id(line, "product_id", &format!("{path}.product_id"))?
                {
                    format!("product-{p}")
                } else {
                    decimal_id(&format!("{path}.id"), member(line, "id"))?
                        .map(|id| format!("line-{id}"))
                        .ok_or_else(|| FieldError::required(format!("{path}.id")))?
                }
            }
        };
        let name = text(line, "name", &format!("{path}.name"))?
            .ok_or_else(|| FieldError::required(format!("{path}.name")))?;
        let quantity = match member(line, "quantity") {
            Some(Value::Number(n)) => n.as_i64(),
            None => return Err(FieldError::required(format!("{path}.quantity"))),
            Some(_) => None,
        }
        .filter(|q| *q > 0)
        .ok_or_else(|| {
            FieldError::new(
                format!("{path}.quantity"),
                "invalid_type",
                format!("{path}.quantity must be a positive integer"),
            )
        })?;
        let mut subtotal = amount(line, "subtotal", &format!("{path}.subtotal"), currency)?
            .ok_or_else(|| FieldError::required(format!("{path}.subtotal")))?;
        if inclusive {
            let field = format!("{path}.subtotal_tax");
            subtotal = subtotal
                .checked_add(amount(line, "subtotal_tax", &field, currency)?.unwrap_or(0))
                .ok_or_else(|| {
                    FieldError::new(field, "out_of_range", "the line is larger than any amount")
                })?;
        }
        let unit_price = subtotal / quantity;
        total = total.saturating_add(i128::from(unit_price) * i128::from(quantity));
        items.push(LineItemInput {
            sku,
            name,
            quantity,
            unit_price,
            url: None,
            image_url: None,
        });
    }
    Ok((items, total))
}

/// The Shipment Tracking items in the order's `meta_data` (none when the extension is not
/// installed). Items without a tracking number or id are skipped.
pub fn tracking_items(payload: &Value) -> Vec<TrackingItem> {
    let Some(meta) = payload.get("meta_data").and_then(Value::as_array) else {
        return Vec::new();
    };
    let text_of = |v: &Value, key: &str| -> Option<String> {
        match v.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    meta.iter()
        .filter(|m| m.get("key").and_then(Value::as_str) == Some(TRACKING_META_KEY))
        .filter_map(|m| m.get("value").and_then(Value::as_array))
        .flatten()
        .filter_map(|item| {
            let tracking_id = text_of(item, "tracking_id")
                .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))?;
            Some(TrackingItem {
                tracking_id,
                carrier: text_of(item, "custom_tracking_provider")
                    .or_else(|| text_of(item, "tracking_provider")),
                tracking_number: text_of(item, "tracking_number")?,
                tracking_url: text_of(item, "custom_tracking_link"),
                shipped_at: text_of(item, "date_shipped").and_then(|d| shipped_at(&d)),
            })
        })
        .collect()
}

/// `date_shipped`: a Unix time in seconds (what the extension stores), else a date or a time.
fn shipped_at(text: &str) -> Option<String> {
    if let Ok(secs) = text.parse::<i64>() {
        return jiff::Timestamp::from_second(secs)
            .ok()
            .map(|t| t.to_string());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().to_string());
    }
    utc(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::Order;
    use serde_json::json;

    /// An `order.created` body in the shape of WooCommerce's published order sample (REST API v3),
    /// shared with the scenario tests.
    pub(crate) fn sample() -> Value {
        serde_json::from_str(include_str!(
            "../../../../tests/fixtures/woocommerce/order-created.json"
        ))
        .unwrap()
    }

    fn validated(p: &Value) -> Order {
        order_input(p).unwrap().input.validate().unwrap()
    }

    fn sums(o: &Order) -> (i64, i64, i64, i64, i64) {
        (o.subtotal, o.shipping, o.tax, o.discount, o.total)
    }

    #[test]
    fn maps_the_published_sample_shape() {
        let mapped = order_input(&sample()).unwrap();
        assert_eq!(
            (
                mapped.woo_id.as_str(),
                mapped.number.as_str(),
                mapped.status.as_str()
            ),
            ("727", "727", "processing")
        );
        let order = mapped.input.validate().unwrap();
        assert_eq!(order.id.as_str(), "727");
        assert_eq!(order.placed_at.to_string(), "2026-11-20T15:30:00Z");
        assert_eq!(order.customer.id.as_str(), "woo-26");
        assert_eq!(
            order.customer.email.clone().unwrap().as_str(),
            "john.doe@example.com"
        );
        assert_eq!(order.customer.first_name.as_deref(), Some("John"));
        let lines: Vec<_> = order
            .items
            .iter()
            .map(|i| (i.sku.as_str(), i.quantity, i.unit_price))
            .collect();
        // Unit prices come from the exact subtotal strings, never from the float `price`.
        assert_eq!(lines, [("product-93", 2, 300), ("SHIP-BLACK", 1, 2190)]);
        assert_eq!(sums(&order), (2790, 1000, 135, 200, 3725));
    }

    #[test]
    fn guests_have_no_customer_id_and_variations_name_the_sku() {
        let mut p = sample();
        p["customer_id"] = json!(0);
        p["line_items"][1]["sku"] = json!("");
        let order = validated(&p);
        assert!(!order.customer.id.as_str().starts_with("woo-"));
        assert_eq!(order.items[1].sku.as_str(), "variation-23");
        // A guest order staff entered with no address: stored under its own guest, never mailed.
        p["billing"]["email"] = json!("");
        let order = validated(&p);
        assert_eq!(order.customer.email, None);
        assert_eq!(
            order.customer.id.as_str(),
            format!("woo-guest-{}", order.id)
        );
    }

    #[test]
    fn prices_including_tax_carry_it_and_tax_is_zero() {
        let mut p = sample();
        p["prices_include_tax"] = json!(true);
        // Line subtotals stay net in WooCommerce; the customer saw net + subtotal_tax.
        let order = validated(&p);
        assert_eq!(
            order.items.iter().map(|i| i.unit_price).collect::<Vec<_>>(),
            [322, 2280]
        );
        assert_eq!(order.tax, 0);
        assert_eq!(order.total, 3725);
        assert_eq!(
            order.subtotal + order.shipping + order.tax - order.discount,
            order.total
        );
    }

    #[test]
    fn fees_and_uneven_subtotals_reconcile_into_the_total() {
        let mut p = sample();
        p["line_items"][0]["quantity"] = json!(3);
        p["line_items"][0]["subtotal"] = json!("10.00");
        // A 2.50 fee line is in the total only.
        p["total"] = json!("43.75");
        let order = validated(&p);
        assert_eq!(order.items[0].unit_price, 333);
        assert_eq!(
            order.subtotal + order.shipping + order.tax - order.discount,
            4375
        );
        assert_eq!(order.shipping, 1000 + 250 + 1);
    }

    #[test]
    fn jpy_orders_have_no_decimals() {
        let mut p = sample();
        p["currency"] = json!("JPY");
        p["line_items"][0]["subtotal"] = json!("3000");
        p["line_items"][1]["subtotal"] = json!("2500");
        p["shipping_total"] = json!("800");
        p["total_tax"] = json!("0");
        p["discount_total"] = json!("500");
        p["total"] = json!("5800");
        let order = validated(&p);
        assert_eq!(
            order.items.iter().map(|i| i.unit_price).collect::<Vec<_>>(),
            [1500, 2500]
        );
        assert_eq!(sums(&order), (5500, 800, 0, 500, 5800));
        p["total"] = json!("5800.50");
        assert_eq!(order_input(&p).unwrap_err().code, "too_precise");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: [(&str, Value, &str, &str); 4] = [
            (
                "date_created_gmt",
                json!("yesterday"),
                "date_created_gmt",
                "invalid_format",
            ),
            ("total", json!(37.25), "total", "invalid_type"),
            ("line_items", json!([]), "line_items", "required"),
            ("id", json!("abc"), "id", "invalid_format"),
        ];
        for (key, value, field, code) in cases {
            let mut p = sample();
            p[key] = value;
            let e = order_input(&p).unwrap_err();
            assert_eq!((e.field.as_str(), e.code), (field, code), "{key}");
        }
        let mut p = sample();
        p["line_items"][1]["subtotal"] = json!(21.9);
        let e = order_input(&p).unwrap_err();
        assert_eq!(e.field, "line_items[1].subtotal");
    }

    #[test]
    fn shipment_tracking_items_are_read_from_the_meta() {
        let mut p = sample();
        p["meta_data"] = json!([
            {"id": 1, "key": "_billing_vat", "value": ""},
            {"id": 2, "key": TRACKING_META_KEY, "value": [
                {"tracking_provider": "usps", "custom_tracking_provider": "",
                 "custom_tracking_link": "", "tracking_number": "9400111899223197428490",
                 "date_shipped": "1795132800", "tracking_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
                {"tracking_provider": "", "custom_tracking_provider": "Local courier",
                 "custom_tracking_link": "https://courier.example/t/LC-1", "tracking_number": "LC-1",
                 "date_shipped": "2026-11-21", "tracking_id": "0f9e8d7c6b5a49382716f5e4d3c2b1a0"},
                {"tracking_provider": "usps", "tracking_number": "", "tracking_id": "ffff"}
            ]}
        ]);
        let items = tracking_items(&p);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].carrier.as_deref(), Some("usps"));
        assert_eq!(items[0].tracking_url, None);
        assert_eq!(items[0].shipped_at.as_deref(), Some("2026-11-20T00:00:00Z"));
        assert_eq!(items[1].carrier.as_deref(), Some("Local courier"));
        assert_eq!(
            items[1].tracking_url.as_deref(),
            Some("https://courier.example/t/LC-1")
        );
        assert_eq!(items[1].shipped_at.as_deref(), Some("2026-11-21T00:00:00Z"));
        assert!(tracking_items(&sample()).is_empty());
    }
}
