//! The catalogue: one item per product (`M#<m>#P#<sku>` / `PRODUCT`, see [`keys::product`]).
//! Bulk writes go in BatchWriteItem requests of 25, retrying what DynamoDB leaves unprocessed;
//! reads by SKU are one BatchGetItem of at most 100 keys.

use super::write::{BATCH_WRITE, build_err};
use super::{Item, Store, StoreError, classify, from_item, keys, to_item};
use crate::domain::MerchantId;
use crate::domain::catalogue::{Product, Sku};
use crate::ports::catalogue::{BulkWrite, Catalogue, read_set};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use std::collections::{BTreeMap, HashMap};

const PRODUCT: &str = "product";
/// Rounds of a batch before what is still unprocessed is reported as not stored.
const ROUNDS: u32 = 5;

impl Store {
    /// Writes one batch of at most 25 items, retrying unprocessed ones. The partition keys of the
    /// items still unprocessed after [`ROUNDS`] rounds.
    async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<String>, StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(build_err("build PutRequest"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let left = self
            .batch_write("BatchWriteItem products", requests, ROUNDS)
            .await?;
        Ok(left
            .iter()
            .filter_map(|w| w.put_request.as_ref())
            .filter_map(|p| match p.item.get(keys::PK) {
                Some(AttributeValue::S(pk)) => Some(pk.clone()),
                _ => None,
            })
            .collect())
    }
}

impl Catalogue for Store {
    async fn product(&self, m: &MerchantId, sku: &Sku) -> Result<Option<Product>, StoreError> {
        self.get_as("GetItem product", PRODUCT, &keys::product(m, sku))
            .await
    }

    async fn put_product(&self, m: &MerchantId, product: &Product) -> Result<(), StoreError> {
        let item = to_item(PRODUCT, &keys::product(m, &product.sku), product)?;
        self.put_item("PutItem product", item).await
    }

    async fn delete_product(&self, m: &MerchantId, sku: &Sku) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(keys::product(m, sku).to_map()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("DeleteItem product", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn put_products(
        &self,
        m: &MerchantId,
        products: &[Product],
    ) -> Result<Vec<BulkWrite>, StoreError> {
        let mut results = vec![BulkWrite::NotStored; products.len()];
        for (chunk_no, chunk) in products.chunks(BATCH_WRITE).enumerate() {
            let first = chunk_no * BATCH_WRITE;
            let items = chunk
                .iter()
                .map(|p| to_item(PRODUCT, &keys::product(m, &p.sku), p))
                .collect::<Result<Vec<_>, _>>()?;
            let left = match self.put_batch(items).await {
                Ok(left) => left,
                // Nothing written yet: the caller learns why.
                Err(e) if chunk_no == 0 => return Err(e),
                // Some batches are stored: report the rest as not stored.
                Err(e) => {
                    tracing::warn!(error = %e, stored = first, "bulk product write stopped");
                    break;
                }
            };
            for (i, p) in chunk.iter().enumerate() {
                let pk = keys::product(m, &p.sku).pk;
                if let Some(slot) = results.get_mut(first + i)
                    && !left.contains(&pk)
                {
                    *slot = BulkWrite::Stored;
                }
            }
        }
        Ok(results)
    }

    async fn products(
        &self,
        m: &MerchantId,
        skus: &[Sku],
    ) -> Result<BTreeMap<Sku, Product>, StoreError> {
        let wanted = read_set(skus);
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let found = self
            .batch_get(
                "BatchGetItem products",
                wanted
                    .iter()
                    .map(|s| keys::product(m, s).to_map())
                    .collect(),
            )
            .await?;
        Ok(found_products(m, &wanted, found))
    }
}

/// The products among `found` (a BatchGetItem's items by key) of the SKUs `wanted`. A product
/// item that does not decode is left out (and logged): one bad product must not hold up every
/// follow-up about its orders.
pub(crate) fn found_products(
    m: &MerchantId,
    wanted: &[&Sku],
    mut found: HashMap<(String, String), Item>,
) -> BTreeMap<Sku, Product> {
    let mut out = BTreeMap::new();
    for sku in wanted {
        let key = keys::product(m, sku);
        let Some(item) = found.remove(&(key.pk, key.sk)) else {
            continue;
        };
        match from_item::<Product>(PRODUCT, item) {
            Ok(p) => {
                out.insert((*sku).clone(), p);
            }
            Err(e) => tracing::error!(error = %e, sku = %sku, "malformed product item; left out"),
        }
    }
    out
}
