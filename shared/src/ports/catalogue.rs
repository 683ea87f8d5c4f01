//! The port of the merchant's catalogue: products as their own items, written one at a time or in
//! bulk, and read by SKU (a follow-up reads only the products of its order).

use super::StoreError;
use crate::domain::MerchantId;
use crate::domain::catalogue::{Product, Sku};
use std::collections::BTreeMap;
use std::future::Future;

/// Most keys one [`Catalogue::products`] read takes (DynamoDB's BatchGetItem limit).
pub const MAX_READ: usize = 100;

/// What became of one product of a bulk write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkWrite {
    Stored,
    /// Not written (DynamoDB kept refusing it, or failed before reaching it); sending it again is
    /// safe, a product write being an upsert.
    NotStored,
}

pub trait Catalogue: Send + Sync {
    /// The product `sku` of `m`, if stored.
    fn product(
        &self,
        m: &MerchantId,
        sku: &Sku,
    ) -> impl Future<Output = Result<Option<Product>, StoreError>> + Send;

    /// Stores `product` (creates or replaces it).
    fn put_product(
        &self,
        m: &MerchantId,
        product: &Product,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the product `sku`; false if there was none.
    fn delete_product(
        &self,
        m: &MerchantId,
        sku: &Sku,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores every product of `products` (distinct SKUs), in batches; one result per product,
    /// in order. An error only when nothing could be written.
    fn put_products(
        &self,
        m: &MerchantId,
        products: &[Product],
    ) -> impl Future<Output = Result<Vec<BulkWrite>, StoreError>> + Send;

    /// The stored products among `skus`, by SKU, read in one batch: duplicates count once and
    /// only the first [`MAX_READ`] distinct SKUs are read.
    fn products(
        &self,
        m: &MerchantId,
        skus: &[Sku],
    ) -> impl Future<Output = Result<BTreeMap<Sku, Product>, StoreError>> + Send;
}

/// The first [`MAX_READ`] distinct SKUs of `skus`, in order.
pub fn read_set(skus: &[Sku]) -> Vec<&Sku> {
    let mut seen = std::collections::BTreeSet::new();
    skus.iter()
        .filter(|s| seen.insert(*s))
        .take(MAX_READ)
        .collect()
}
