//! The merchant's catalogue: a product stored, read or deleted by SKU, and bulk upserts (the
//! products API's `POST /v1/products` and the operator's import) validated item by item, so one
//! bad product is reported by position and field while the others are stored.

use crate::domain::catalogue::{Product, ProductInput, Sku};
use crate::domain::validation::from_value;
use crate::domain::{FieldError, MerchantId};
use crate::ports::StoreError;
use crate::ports::catalogue::{BulkWrite, Catalogue};
use jiff::Timestamp;
use serde_json::Value;
use std::collections::BTreeSet;

/// Most products one bulk request carries.
pub const MAX_BULK: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of one product of a bulk upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// Refused; the error names the field.
    Invalid(FieldError),
    /// Valid but not written (storage kept refusing); sending it again is safe.
    NotStored,
}

/// One product's result, with the SKU it named (as sent, when it was not a valid SKU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkResult {
    pub sku: Option<String>,
    pub outcome: Outcome,
}

/// The catalogue of one merchant.
pub struct Products<'a, C> {
    pub catalogue: &'a C,
    pub merchant: &'a MerchantId,
}

impl<C: Catalogue> Products<'_, C> {
    /// Stores the product the path's `sku` names (created or replaced).
    pub async fn put(
        &self,
        sku: &str,
        input: ProductInput,
        now: Timestamp,
    ) -> Result<Product, CatalogueError> {
        let sku = Sku::parse("sku", sku)?;
        let product = input.validate(sku, now)?;
        self.catalogue.put_product(self.merchant, &product).await?;
        Ok(product)
    }

    pub async fn get(&self, sku: &str) -> Result<Option<Product>, CatalogueError> {
        let sku = Sku::parse("sku", sku)?;
        Ok(self.catalogue.product(self.merchant, &sku).await?)
    }

    /// Deletes the product; false if there was none.
    pub async fn delete(&self, sku: &str) -> Result<bool, CatalogueError> {
        let sku = Sku::parse("sku", sku)?;
        Ok(self.catalogue.delete_product(self.merchant, &sku).await?)
    }

    /// Validates and stores up to [`MAX_BULK`] products, each given with the path its errors are
    /// named under (`products[3]`; empty: the product's own fields). A SKU already in `seen` (an
    /// earlier product of the request or the import) is refused. One result per product, in order.
    pub async fn upsert_many(
        &self,
        items: Vec<(String, Value)>,
        seen: &mut BTreeSet<Sku>,
        now: Timestamp,
    ) -> Result<Vec<BulkResult>, CatalogueError> {
        if items.len() > MAX_BULK {
            return Err(FieldError::new(
                "products",
                "too_many",
                format!("at most {MAX_BULK} products per request"),
            )
            .into());
        }
        let mut results = Vec::with_capacity(items.len());
        let mut valid: Vec<(usize, Product)> = Vec::new();
        for (i, (path, value)) in items.into_iter().enumerate() {
            let raw_sku = value.get("sku").and_then(Value::as_str).map(str::to_owned);
            let within = |e: FieldError| match path.as_str() {
                "" => e,
                p => e.within(p),
            };
            let checked = validate(value, seen, now).map_err(within);
            let sku = match &checked {
                Ok(p) => Some(p.sku.to_string()),
                Err(_) => raw_sku,
            };
            let outcome = match checked {
                Ok(p) => {
                    valid.push((i, p));
                    Outcome::NotStored
                }
                Err(e) => Outcome::Invalid(e),
            };
            results.push(BulkResult { sku, outcome });
        }
        let products: Vec<Product> = valid.iter().map(|(_, p)| p.clone()).collect();
        if !products.is_empty() {
            let written = self
                .catalogue
                .put_products(self.merchant, &products)
                .await?;
            for ((i, _), w) in valid.iter().zip(written) {
                if let (Some(r), BulkWrite::Stored) = (results.get_mut(*i), w) {
                    r.outcome = Outcome::Stored;
                }
            }
        }
        Ok(results)
    }
}

/// One product of a bulk request: its fields (unknown ones refused), its SKU not seen before.
fn validate(value: Value, seen: &mut BTreeSet<Sku>, now: Timestamp) -> Result<Product, FieldError> {
    let input: ProductInput = from_value(value)?;
    let sku = input.sku()?;
    if seen.contains(&sku) {
        return Err(FieldError::new(
            "sku",
            "duplicate_sku",
            "this SKU is already in the request; each product once",
        ));
    }
    let product = input.validate(sku, now)?;
    seen.insert(product.sku.clone());
    Ok(product)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::products::MemCatalogue;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-20T12:00:00Z".parse().unwrap()
    }

    fn acme() -> MerchantId {
        MerchantId::parse("m", "acme").unwrap()
    }

    fn numbered(values: Vec<Value>) -> Vec<(String, Value)> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("products[{i}]"), v))
            .collect()
    }

    #[tokio::test]
    async fn a_product_is_put_read_and_deleted_by_sku_under_its_merchant_only() {
        let c = MemCatalogue::new();
        let (m, other) = (acme(), MerchantId::parse("m", "globex").unwrap());
        let products = Products {
            catalogue: &c,
            merchant: &m,
        };
        let input: ProductInput =
            serde_json::from_value(json!({"name": "Tent", "tips": {"en": ["Dry it"]}})).unwrap();
        products.put("TENT#2P", input, now()).await.unwrap();
        let stored = products.get("TENT#2P").await.unwrap().unwrap();
        assert_eq!(stored.tips["en"], ["Dry it"]);
        assert_eq!(stored.updated_at, now());

        let theirs = Products {
            catalogue: &c,
            merchant: &other,
        };
        assert_eq!(theirs.get("TENT#2P").await.unwrap(), None);
        assert!(!theirs.delete("TENT#2P").await.unwrap());

        assert!(products.delete("TENT#2P").await.unwrap());
        assert_eq!(products.get("TENT#2P").await.unwrap(), None);
        let e = products.get(" ").await.unwrap_err();
        assert!(matches!(e, CatalogueError::Invalid(f) if f.field == "sku"));
    }

    #[tokio::test]
    async fn a_bulk_upsert_stores_the_valid_products_and_names_each_refusal() {
        let c = MemCatalogue::new();
        let m = acme();
        let products = Products {
            catalogue: &c,
            merchant: &m,
        };
        let items = numbered(vec![
            json!({"sku": "A", "name": "Alpha"}),
            json!({"sku": "B", "name": "Beta", "tips": {"de": ["gut", "a\nb"]}}),
            json!({"sku": "A", "name": "Alpha again"}),
            json!({"sku": "C", "name": "Gamma", "colour": "red"}),
            json!({"name": "No SKU"}),
            json!({"sku": "D", "name": "Delta", "related": ["A"]}),
        ]);
        let results = products
            .upsert_many(items, &mut BTreeSet::new(), now())
            .await
            .unwrap();
        let fields: Vec<_> = results
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Invalid(e) => (r.sku.as_deref(), e.field.as_str(), e.code),
                Outcome::Stored => (r.sku.as_deref(), "", "stored"),
                Outcome::NotStored => (r.sku.as_deref(), "", "not_stored"),
            })
            .collect();
        assert_eq!(
            fields,
            [
                (Some("A"), "", "stored"),
                (Some("B"), "products[1].tips.de[1]", "invalid_characters"),
                (Some("A"), "products[2].sku", "duplicate_sku"),
                (Some("C"), "products[3].colour", "invalid_value"),
                (None, "products[4].sku", "required"),
                (Some("D"), "", "stored"),
            ]
        );
        let a = products.get("A").await.unwrap().unwrap();
        assert_eq!(a.name, "Alpha", "the duplicate did not replace the first");
        assert_eq!(products.get("B").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bulk_upsert_takes_at_most_five_thousand_products() {
        let c = MemCatalogue::new();
        let m = acme();
        let products = Products {
            catalogue: &c,
            merchant: &m,
        };
        let items = |n: usize| {
            numbered(
                (0..n)
                    .map(|i| json!({"sku": format!("S{i}"), "name": "P"}))
                    .collect(),
            )
        };
        let e = products
            .upsert_many(items(MAX_BULK + 1), &mut BTreeSet::new(), now())
            .await
            .unwrap_err();
        assert!(
            matches!(e, CatalogueError::Invalid(f) if f.field == "products" && f.code == "too_many")
        );
        assert!(c.table.rows().is_empty());
        let results = products
            .upsert_many(items(MAX_BULK), &mut BTreeSet::new(), now())
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.outcome == Outcome::Stored));
        assert_eq!(c.table.rows().len(), MAX_BULK);
    }

    #[tokio::test]
    async fn a_storage_failure_before_anything_is_written_fails_the_request() {
        let c = MemCatalogue::new();
        let m = acme();
        let products = Products {
            catalogue: &c,
            merchant: &m,
        };
        let items = numbered(
            (0..3)
                .map(|i| json!({"sku": format!("S{i}"), "name": "P"}))
                .collect(),
        );
        c.table.fail_next_writes(1, "BatchWriteItem");
        let e = products
            .upsert_many(items.clone(), &mut BTreeSet::new(), now())
            .await
            .unwrap_err();
        assert!(matches!(e, CatalogueError::Store(s) if s.is_transient()));
        assert!(c.table.rows().is_empty());
        // Sent again, it is stored.
        let results = products
            .upsert_many(items, &mut BTreeSet::new(), now())
            .await
            .unwrap();
        assert!(results.iter().all(|r| r.outcome == Outcome::Stored));
    }
}
