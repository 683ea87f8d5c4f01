//! Orders: the inbound document a merchant sends, its validation, and the stored order.

use super::customer::{CustomerInput, CustomerRef};
use super::money::MAX_AMOUNT;
use super::send::SendRecord;
use super::text::{optional_line, single_line, web_url};
use super::validation::FieldError;
use super::{Currency, MerchantId, Money, OrderId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most line items accepted in one order.
pub const MAX_ITEMS: usize = 500;
/// Largest quantity of one line item.
pub const MAX_QUANTITY: i64 = 100_000;

/// The order document as a merchant sends it (API body or the `order` of an EventBridge detail).
/// All amounts are integers in the currency's minor units (cents for EUR, yen for JPY).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderInput {
    /// The merchant's order id / number.
    pub id: String,
    /// When the customer placed it (RFC 3339).
    pub placed_at: String,
    pub currency: String,
    pub customer: CustomerInput,
    pub items: Vec<LineItemInput>,
    #[serde(default)]
    pub shipping: Option<i64>,
    #[serde(default)]
    pub tax: Option<i64>,
    #[serde(default)]
    pub discount: Option<i64>,
    pub total: i64,
    /// A referral code the customer used, if any.
    #[serde(default)]
    pub referral_code: Option<String>,
    /// A test order (a shop platform's test checkout): stored and emailed like any other, and
    /// marked as such.
    #[serde(default)]
    pub test: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItemInput {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub placed_at: Timestamp,
    pub currency: Currency,
    pub customer: CustomerRef,
    pub items: Vec<LineItem>,
    pub subtotal: i64,
    pub shipping: i64,
    pub tax: i64,
    pub discount: i64,
    pub total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_code: Option<String>,
    /// A test order (left out when false, so an order's content hash is as it always was).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

fn amount(field: &str, value: Option<i64>) -> Result<i64, FieldError> {
    let v = value.unwrap_or(0);
    if v < 0 {
        return Err(FieldError::new(
            field,
            "negative_amount",
            format!("{field} must not be negative"),
        ));
    }
    if v > MAX_AMOUNT {
        return Err(FieldError::new(
            field,
            "out_of_range",
            format!("{field} is larger than any accepted amount"),
        ));
    }
    Ok(v)
}

impl LineItemInput {
    fn validate(self, field: &str) -> Result<LineItem, FieldError> {
        let sku = single_line(&format!("{field}.sku"), &self.sku, 100)?;
        let name = single_line(&format!("{field}.name"), &self.name, 200)?;
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(FieldError::new(
                format!("{field}.quantity"),
                "out_of_range",
                format!("quantity must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        let unit_price = amount(&format!("{field}.unit_price"), Some(self.unit_price))?;
        let line_total = unit_price
            .checked_mul(self.quantity)
            .filter(|t| *t <= MAX_AMOUNT)
            .ok_or_else(|| {
                FieldError::new(
                    format!("{field}.quantity"),
                    "out_of_range",
                    "quantity × unit_price is too large",
                )
            })?;
        Ok(LineItem {
            sku,
            name,
            quantity: self.quantity,
            unit_price,
            line_total,
            url: web_url(&format!("{field}.url"), self.url.as_deref())?,
            image_url: web_url(&format!("{field}.image_url"), self.image_url.as_deref())?,
        })
    }
}

impl OrderInput {
    /// Validates every field; the first problem found is returned, naming its field.
    pub fn validate(self) -> Result<Order, FieldError> {
        let id = OrderId::parse("id", self.id.trim())?;
        let placed_at: Timestamp = self.placed_at.trim().parse().map_err(|_| {
            FieldError::new(
                "placed_at",
                "invalid_format",
                "placed_at must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z",
            )
        })?;
        let placed_at = super::validation::plausible_time("placed_at", placed_at)?;
        let currency = Currency::parse("currency", &self.currency)?;
        let customer = self.customer.validate().map_err(|e| e.within("customer"))?;
        if self.items.is_empty() {
            return Err(FieldError::new(
                "items",
                "required",
                "an order needs at least one line item",
            ));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(FieldError::new(
                "items",
                "too_many",
                format!("an order may have at most {MAX_ITEMS} line items"),
            ));
        }
        let items = self
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| item.validate(&format!("items[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let subtotal = items
            .iter()
            .try_fold(0_i64, |acc, i| {
                acc.checked_add(i.line_total).filter(|t| *t <= MAX_AMOUNT)
            })
            .ok_or_else(|| {
                FieldError::new("items", "out_of_range", "the order's subtotal is too large")
            })?;
        let shipping = amount("shipping", self.shipping)?;
        let tax = amount("tax", self.tax)?;
        let discount = amount("discount", self.discount)?;
        let total = amount("total", Some(self.total))?;
        if discount > subtotal {
            return Err(FieldError::new(
                "discount",
                "out_of_range",
                "discount must not exceed the items' subtotal",
            ));
        }
        let expected = subtotal + shipping + tax - discount;
        if total != expected {
            return Err(FieldError::new(
                "total",
                "total_mismatch",
                format!(
                    "total must equal items + shipping + tax − discount ({expected} minor units)"
                ),
            ));
        }
        let referral_code = optional_line("referral_code", self.referral_code.as_deref(), 40)?;
        Ok(Order {
            id,
            placed_at,
            currency,
            customer,
            items,
            subtotal,
            shipping,
            tax,
            discount,
            total,
            referral_code,
            test: self.test,
        })
    }
}

impl Order {
    pub fn money(&self, amount: i64) -> Money {
        Money::new(amount, self.currency)
    }

    /// Merchandise value that earns loyalty points: items less discount (no shipping, no tax).
    pub fn merchandise_value(&self) -> i64 {
        self.subtotal - self.discount
    }

    /// What the order adds to the merchant's count of units sold per SKU (what a SKU's return
    /// rate is measured against): its units per SKU on the UTC day it was placed. A test order
    /// adds nothing.
    pub fn units_sold(&self) -> Option<UnitsSold> {
        if self.test || self.items.is_empty() {
            return None;
        }
        let mut units = std::collections::BTreeMap::<String, u64>::new();
        for item in &self.items {
            *units.entry(item.sku.clone()).or_default() +=
                u64::try_from(item.quantity).unwrap_or(0);
        }
        Some(UnitsSold {
            day: self.placed_at.to_zoned(jiff::tz::TimeZone::UTC).date(),
            units: units.into_iter().collect(),
        })
    }

    /// A digest of the validated order, to tell a replay from a different order under the same id.
    /// Computed from the normalised form, so formatting and field order do not matter.
    pub fn content_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// An order's units per SKU (sorted by SKU, each SKU once) and the UTC day they count on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitsSold {
    pub day: jiff::civil::Date,
    pub units: Vec<(String, u64)>,
}

impl UnitsSold {
    /// The SKUs of one write of the count (DynamoDB's 100 items a transaction, less the
    /// order's own mark): the count is written chunk after chunk, each once.
    pub const CHUNK: usize = 99;

    /// How many writes the count takes.
    pub fn chunks(&self) -> usize {
        self.units.len().div_ceil(Self::CHUNK)
    }

    /// The `i`th chunk of the count.
    pub fn chunk(&self, i: usize) -> &[(String, u64)] {
        self.units.chunks(Self::CHUNK).nth(i).unwrap_or(&[])
    }
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub merchant_id: MerchantId,
    pub order: Order,
    pub content_hash: String,
    pub received_at: Timestamp,
    pub points_earned: u64,
    /// The loyalty tier the order was placed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The customer whose referral code the order carried (recorded with the referral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referred_by: Option<super::CustomerId>,
}

/// The idempotency record of an inbound event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub key: String,
    pub content_hash: String,
    pub created_at: Timestamp,
    /// An order's: how many chunks of its [`UnitsSold`] are counted (written `0` with the order;
    /// `None` where nothing is to be counted: another scope, a test order, an order placed before
    /// units sold were counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sold_chunks: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceOutcome {
    /// Stored; `suppressed` when the thank-you email's recipient is suppressed (its record says so
    /// and it must not be sent).
    Created { suppressed: bool },
    /// The idempotency record or the order already exists: this is a replay or a race we lost.
    AlreadyExists,
}

/// What a replay needs to answer: the idempotency record, the order and the email's record.
#[derive(Debug, Clone, Default)]
pub struct OrderReplay {
    pub idempotency: Option<IdempotencyRecord>,
    pub order: Option<OrderRecord>,
    pub send: Option<SendRecord>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::validation::from_value;

    pub(crate) fn sample() -> serde_json::Value {
        serde_json::json!({
            "id": "SO-1001",
            "placed_at": "2026-11-20T09:30:00Z",
            "currency": "EUR",
            "customer": {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "locale": "en-GB"},
            "items": [
                {"sku": "TENT-2", "name": "Trail tent", "quantity": 1, "unit_price": 19900},
                {"sku": "PEG-10", "name": "Pegs (10)", "quantity": 2, "unit_price": 750}
            ],
            "shipping": 495,
            "tax": 0,
            "discount": 1000,
            "total": 20895
        })
    }

    fn validate(v: serde_json::Value) -> Result<Order, FieldError> {
        from_value::<OrderInput>(v)?.validate()
    }

    #[test]
    fn units_sold_sum_each_sku_once_on_the_utc_day_and_a_test_order_sells_nothing() {
        let mut input = sample();
        // 00:30 in Berlin is still the 19th in UTC.
        input["placed_at"] = "2026-11-20T00:30:00+01:00".into();
        input["items"] = serde_json::json!([
            {"sku": "TENT-2", "name": "Trail tent", "quantity": 1, "unit_price": 19900},
            {"sku": "PEG-10", "name": "Pegs (10)", "quantity": 2, "unit_price": 750},
            {"sku": "TENT-2", "name": "Trail tent", "quantity": 3, "unit_price": 0}
        ]);
        input["total"] = 20895.into();
        let sold = validate(input.clone()).unwrap().units_sold().unwrap();
        assert_eq!(sold.day, jiff::civil::date(2026, 11, 19));
        assert_eq!(
            sold.units,
            [("PEG-10".to_owned(), 2), ("TENT-2".to_owned(), 4)]
        );
        assert_eq!(
            (sold.chunks(), sold.chunk(0).len(), sold.chunk(1)),
            (1, 2, &[][..])
        );
        input["test"] = true.into();
        assert_eq!(validate(input).unwrap().units_sold(), None);
    }

    #[test]
    fn units_sold_of_many_skus_come_in_chunks_of_ninety_nine_each_sku_in_one() {
        let sold = UnitsSold {
            day: jiff::civil::date(2026, 11, 20),
            units: (0..250).map(|i| (format!("SKU-{i:03}"), 1)).collect(),
        };
        assert_eq!(sold.chunks(), 3);
        let sizes: Vec<usize> = (0..4).map(|i| sold.chunk(i).len()).collect();
        assert_eq!(sizes, [99, 99, 52, 0]);
        let all: Vec<_> = (0..3).flat_map(|i| sold.chunk(i).to_vec()).collect();
        assert_eq!(all, sold.units);
    }

    #[test]
    fn placed_at_outside_1970_to_9999_is_refused_naming_it() {
        for (at, ok) in [
            ("0000-01-01T00:00:00+01:00", false),
            ("1969-12-31T23:59:59Z", false),
            ("1970-01-01T00:00:00Z", true),
            // jiff's timestamps end on 9999-12-30 (offsets reach ±26 h).
            ("9999-12-30T21:00:00Z", true),
        ] {
            let mut input = sample();
            input["placed_at"] = at.into();
            let order: OrderInput = serde_json::from_value(input).unwrap();
            match order.validate() {
                Ok(_) => assert!(ok, "{at} accepted"),
                Err(e) => {
                    assert!(!ok, "{at} refused: {e:?}");
                    assert_eq!(
                        (e.field.as_str(), e.code),
                        ("placed_at", "out_of_range"),
                        "{at}"
                    );
                }
            }
        }
    }

    #[test]
    fn accepts_the_sample() {
        let o = validate(sample()).unwrap();
        assert_eq!(o.subtotal, 21400);
        assert_eq!(o.merchandise_value(), 20400);
        assert_eq!(o.items[1].line_total, 1500);
    }

    #[test]
    fn hash_ignores_formatting_but_not_content() {
        let a = validate(sample()).unwrap();
        let b = validate(
            serde_json::from_str(&serde_json::to_string_pretty(&sample()).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
        let mut changed = sample();
        changed["items"][0]["quantity"] = 2.into();
        changed["total"] = 40795.into();
        assert_ne!(a.content_hash(), validate(changed).unwrap().content_hash());
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/currency", "EURO".into(), "currency"),
            ("/placed_at", "yesterday".into(), "placed_at"),
            ("/items/0/quantity", 0.into(), "items[0].quantity"),
            ("/items/1/unit_price", (-5).into(), "items[1].unit_price"),
            ("/items/0/url", "javascript:alert(1)".into(), "items[0].url"),
            ("/shipping", (-1).into(), "shipping"),
            ("/total", 1.into(), "total"),
            ("/discount", 9_999_999.into(), "discount"),
            ("/customer/email", "not-an-email".into(), "customer.email"),
            ("/id", "a/b".into(), "id"),
            ("/items", serde_json::json!([]), "items"),
        ];
        for (ptr, value, field) in cases {
            let mut v = sample();
            let (parent, leaf) = ptr.rsplit_once('/').unwrap();
            let target = v.pointer_mut(parent).unwrap();
            match target {
                serde_json::Value::Array(a) => a[leaf.parse::<usize>().unwrap()] = value,
                other => {
                    other[leaf] = value;
                }
            }
            assert_eq!(validate(v).unwrap_err().field, field, "{ptr}");
        }
    }

    #[test]
    fn too_many_items() {
        let mut v = sample();
        let item = v["items"][0].clone();
        v["items"] = serde_json::Value::Array(vec![item; MAX_ITEMS + 1]);
        assert_eq!(validate(v).unwrap_err().code, "too_many");
    }
}
