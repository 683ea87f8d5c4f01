//! The catalogue in memory, under the DynamoDB store's keys: one row per product, bulk writes
//! item by item as BatchWriteItem applies them (no transaction: a failure part way leaves the
//! earlier products stored), reads by SKU deduplicated and capped like one BatchGetItem. Every
//! in-memory adapter whose table holds products ([`CatalogueRows`]: [`MemCatalogue`], the
//! follow-ups') has the catalogue.

use super::table::{MemTable, RowKey, Write, always, parse, row};
use crate::adapters::store::keys;
use crate::domain::MerchantId;
use crate::domain::catalogue::{Product, Sku};
use crate::ports::StoreError;
use crate::ports::catalogue::{BulkWrite, Catalogue, read_set};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many batch reads of products were made (each one BatchGetItem in the store).
#[derive(Clone, Default, Debug)]
pub struct BatchReads(Arc<AtomicUsize>);

impl BatchReads {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
pub struct MemCatalogue {
    pub table: MemTable,
    pub reads: BatchReads,
}

impl MemCatalogue {
    pub fn new() -> Self {
        Self::default()
    }
}

fn key(m: &MerchantId, sku: &Sku) -> RowKey {
    RowKey::from(&keys::product(m, sku))
}

pub(crate) fn get(
    table: &MemTable,
    m: &MerchantId,
    sku: &Sku,
) -> Result<Option<Product>, StoreError> {
    parse(table.get(&key(m, sku)))
}

fn put(table: &MemTable, m: &MerchantId, product: &Product) -> Result<(), StoreError> {
    table.write(Write::Put {
        key: key(m, &product.sku),
        row: row(product)?,
        condition: always(),
    })?;
    Ok(())
}

fn delete(table: &MemTable, m: &MerchantId, sku: &Sku) -> bool {
    let existed = table.get(&key(m, sku)).is_some();
    table.remove(&key(m, sku));
    existed
}

fn put_many(
    table: &MemTable,
    m: &MerchantId,
    products: &[Product],
) -> Result<Vec<BulkWrite>, StoreError> {
    let mut results = vec![BulkWrite::NotStored; products.len()];
    for (i, p) in products.iter().enumerate() {
        match put(table, m, p) {
            Ok(()) => results[i] = BulkWrite::Stored,
            Err(e) if i == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(results)
}

pub(crate) fn read(
    table: &MemTable,
    reads: &BatchReads,
    m: &MerchantId,
    skus: &[Sku],
) -> Result<BTreeMap<Sku, Product>, StoreError> {
    let wanted = read_set(skus);
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    reads.add();
    let mut out = BTreeMap::new();
    for sku in wanted {
        if let Some(p) = get(table, m, sku)? {
            out.insert(sku.clone(), p);
        }
    }
    Ok(out)
}

/// An in-memory adapter whose table holds products (and which counts its batch reads): it has
/// the catalogue.
pub trait CatalogueRows: Send + Sync {
    fn rows(&self) -> (&MemTable, &BatchReads);
}

impl CatalogueRows for MemCatalogue {
    fn rows(&self) -> (&MemTable, &BatchReads) {
        (&self.table, &self.reads)
    }
}

impl<T: CatalogueRows> Catalogue for T {
    async fn product(&self, m: &MerchantId, sku: &Sku) -> Result<Option<Product>, StoreError> {
        get(self.rows().0, m, sku)
    }

    async fn put_product(&self, m: &MerchantId, product: &Product) -> Result<(), StoreError> {
        put(self.rows().0, m, product)
    }

    async fn delete_product(&self, m: &MerchantId, sku: &Sku) -> Result<bool, StoreError> {
        Ok(delete(self.rows().0, m, sku))
    }

    async fn put_products(
        &self,
        m: &MerchantId,
        products: &[Product],
    ) -> Result<Vec<BulkWrite>, StoreError> {
        put_many(self.rows().0, m, products)
    }

    async fn products(
        &self,
        m: &MerchantId,
        skus: &[Sku],
    ) -> Result<BTreeMap<Sku, Product>, StoreError> {
        let (table, reads) = self.rows();
        read(table, reads, m, skus)
    }
}
