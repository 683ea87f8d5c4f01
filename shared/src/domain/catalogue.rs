//! The merchant's catalogue: products the follow-ups talk about (usage tips, related products),
//! each its own item, so a catalogue has no size limit that matters and a follow-up reads only the
//! products of its order.

use super::text::{is_forbidden, single_line, web_url};
use super::{Currency, FieldError, Locale};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Most tips per product and locale.
pub const MAX_TIPS: usize = 10;
/// Longest tip, in characters.
pub const MAX_TIP_CHARS: usize = 500;
/// Most related products per product.
pub const MAX_RELATED: usize = 20;
/// Most SKUs a follow-up keeps of its order (the products read with its other items, in one
/// BatchGetItem of at most 100 keys).
pub const MAX_FOLLOW_UP_SKUS: usize = 90;

/// A product's stock-keeping unit, as the merchant's shop names it: 1 to 255 characters after
/// trimming, no control characters. `#` is allowed: the SKU is the last component of its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub const MAX_LEN: usize = 255;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(FieldError::required(field));
        }
        if value.chars().count() > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("{field} must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if value.chars().any(is_forbidden) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                format!("{field} must not contain control characters"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = FieldError;
    fn try_from(value: String) -> Result<Self, FieldError> {
        Self::parse("sku", &value)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> String {
        sku.0
    }
}

impl std::borrow::Borrow<str> for Sku {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The distinct SKUs of `skus` in their order, the first [`MAX_FOLLOW_UP_SKUS`] of them (those
/// that are not SKUs are left out).
pub fn distinct_skus<'a>(skus: impl IntoIterator<Item = &'a str>) -> Vec<Sku> {
    let mut seen = BTreeSet::new();
    skus.into_iter()
        .filter_map(|s| Sku::parse("sku", s).ok())
        .filter(|s| seen.insert(s.clone()))
        .take(MAX_FOLLOW_UP_SKUS)
        .collect()
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Price in minor units of `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Usage tips per locale (`en`, `de`, `fr`), shown in the usage-tips email.
    #[serde(default)]
    pub tips: BTreeMap<String, Vec<String>>,
    /// Products to recommend to customers who bought this one (never ones they bought).
    #[serde(default)]
    pub related: Vec<Sku>,
    /// The merchant's category (a return policy may exclude whole categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub updated_at: Timestamp,
}

impl Product {
    /// The tips in `locale`, else in the merchant's `default` locale, else none.
    pub fn tips_for(&self, locale: Locale, default: Locale) -> &[String] {
        [locale, default]
            .into_iter()
            .find_map(|l| self.tips.get(l.as_str()).filter(|t| !t.is_empty()))
            .map_or(&[], Vec::as_slice)
    }
}

/// What a merchant sends for one product. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Required in a bulk upsert and an import; on `PUT /v1/products/{sku}` the path names it
    /// (and a `sku` in the body must be the same).
    #[serde(default)]
    pub sku: Option<String>,
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub tips: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub category: Option<String>,
}

impl ProductInput {
    /// The SKU the input names (`sku`), required.
    pub fn sku(&self) -> Result<Sku, FieldError> {
        match self.sku.as_deref() {
            Some(raw) => Sku::parse("sku", raw),
            None => Err(FieldError::required("sku")),
        }
    }

    /// The product of SKU `sku`, updated `now`. Fields are named relative to the product
    /// (`tips.de[0]`); a bulk request prefixes them with `products[i]`.
    pub fn validate(self, sku: Sku, now: Timestamp) -> Result<Product, FieldError> {
        if let Some(raw) = self.sku.as_deref()
            && Sku::parse("sku", raw)? != sku
        {
            return Err(FieldError::new(
                "sku",
                "sku_mismatch",
                "the sku in the body must be the one in the path",
            ));
        }
        let name = single_line("name", &self.name, 200)?;
        let url = web_url("url", self.url.as_deref())?;
        let image_url = web_url("image_url", self.image_url.as_deref())?;
        let currency = self
            .currency
            .as_deref()
            .map(|c| Currency::parse("currency", c))
            .transpose()?;
        if let Some(price) = self.price {
            if !(0..=super::money::MAX_AMOUNT).contains(&price) {
                return Err(FieldError::new(
                    "price",
                    "out_of_range",
                    "price must be zero or more minor units, and not absurdly large",
                ));
            }
            if currency.is_none() {
                return Err(FieldError::required("currency"));
            }
        }
        let mut tips = BTreeMap::new();
        for (tag, list) in self.tips {
            let field = format!("tips.{tag}");
            let Some(locale) = Locale::ALL.into_iter().find(|l| l.as_str() == tag) else {
                return Err(FieldError::new(
                    field,
                    "unsupported_locale",
                    "tips are keyed by a supported locale: en, de or fr",
                ));
            };
            if list.len() > MAX_TIPS {
                return Err(FieldError::new(
                    field,
                    "too_many",
                    format!("at most {MAX_TIPS} tips per locale"),
                ));
            }
            let list = list
                .iter()
                .enumerate()
                .map(|(i, tip)| single_line(&format!("{field}[{i}]"), tip, MAX_TIP_CHARS))
                .collect::<Result<Vec<_>, _>>()?;
            if !list.is_empty() {
                tips.insert(locale.as_str().to_owned(), list);
            }
        }
        if self.related.len() > MAX_RELATED {
            return Err(FieldError::new(
                "related",
                "too_many",
                format!("at most {MAX_RELATED} related products"),
            ));
        }
        let related = self
            .related
            .iter()
            .enumerate()
            .map(|(i, r)| Sku::parse(&format!("related[{i}]"), r))
            .collect::<Result<Vec<_>, _>>()?;
        let category = super::text::optional_line("category", self.category.as_deref(), 100)?;
        Ok(Product {
            category,
            sku,
            name,
            url,
            image_url,
            price: self.price,
            currency,
            tips,
            related,
            updated_at: now,
        })
    }
}

/// A merchant document that still carries `settings.catalogue`: refused, pointing to the products
/// API, rather than silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CatalogueMoved;

impl<'de> Deserialize<'de> for CatalogueMoved {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "the catalogue is no longer part of the merchant: store products with \
             PUT /v1/products/{sku}, POST /v1/products or `aftercare-admin products import`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    fn input(v: serde_json::Value) -> ProductInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn skus_are_trimmed_bounded_single_line_and_may_hold_a_hash() {
        assert_eq!(Sku::parse("sku", "  TENT#2P ").unwrap().as_str(), "TENT#2P");
        assert_eq!(Sku::parse("sku", "  ").unwrap_err().code, "required");
        assert_eq!(
            Sku::parse("sku", &"x".repeat(255)).unwrap().as_str().len(),
            255
        );
        assert_eq!(
            Sku::parse("sku", &"x".repeat(256)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            Sku::parse("sku", "A\nB").unwrap_err().code,
            "invalid_characters"
        );
        assert!(serde_json::from_value::<Sku>(json!("a\u{0}b")).is_err());
    }

    #[test]
    fn a_product_is_validated_field_by_field() {
        let sku = Sku::parse("sku", "TENT-2P").unwrap();
        let p = input(json!({
            "name": " Ridge tent ", "url": "https://shop.example/tent", "price": 24900,
            "currency": "eur", "tips": {"en": ["Dry it"], "de": ["Trocknen"], "fr": []},
            "related": ["PEG-10"]
        }))
        .validate(sku.clone(), now())
        .unwrap();
        assert_eq!(p.name, "Ridge tent");
        assert_eq!(p.currency.map(|c| c.to_string()).as_deref(), Some("EUR"));
        assert_eq!(p.tips.keys().collect::<Vec<_>>(), ["de", "en"]);
        assert_eq!(p.related, [Sku::parse("sku", "PEG-10").unwrap()]);

        let cases = [
            (json!({"name": ""}), "name"),
            (json!({"name": "x", "url": "javascript:alert(1)"}), "url"),
            (
                json!({"name": "x", "price": -1, "currency": "EUR"}),
                "price",
            ),
            (json!({"name": "x", "price": 100}), "currency"),
            (json!({"name": "x", "currency": "EURO"}), "currency"),
            (json!({"name": "x", "tips": {"es": ["hola"]}}), "tips.es"),
            (
                json!({"name": "x", "tips": {"de": ["gut", "a\nb"]}}),
                "tips.de[1]",
            ),
            (
                json!({"name": "x", "tips": {"en": vec!["t"; 11]}}),
                "tips.en",
            ),
            (json!({"name": "x", "related": ["ok", " "]}), "related[1]"),
            (json!({"name": "x", "related": vec!["r"; 21]}), "related"),
            (json!({"name": "x", "sku": "OTHER"}), "sku"),
        ];
        for (v, field) in cases {
            let e = input(v.clone()).validate(sku.clone(), now()).unwrap_err();
            assert_eq!(e.field, field, "{v}");
        }
        assert!(serde_json::from_value::<ProductInput>(json!({"name": "x", "colour": 1})).is_err());
    }

    #[test]
    fn tips_fall_back_to_the_merchants_default_locale() {
        let sku = Sku::parse("sku", "T").unwrap();
        let p = input(json!({"name": "x", "tips": {"en": ["Dry it"], "de": ["Trocknen"]}}))
            .validate(sku, now())
            .unwrap();
        assert_eq!(p.tips_for(Locale::De, Locale::En), ["Trocknen"]);
        assert_eq!(p.tips_for(Locale::Fr, Locale::En), ["Dry it"]);
        assert_eq!(p.tips_for(Locale::Fr, Locale::Fr), [] as [String; 0]);
    }

    #[test]
    fn a_follow_up_keeps_the_first_distinct_skus() {
        let many: Vec<String> = (0..200).map(|i| format!("S{}", i % 120)).collect();
        let skus = distinct_skus(many.iter().map(String::as_str));
        assert_eq!(skus.len(), MAX_FOLLOW_UP_SKUS);
        assert_eq!(skus[1].as_str(), "S1");
        assert_eq!(distinct_skus(["A", "A", " ", "B"]).len(), 2);
    }
}
