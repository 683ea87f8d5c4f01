//! The branded tracking page of one shipment: what it shows, read from the store, and the one thing
//! opening it records, a view count on the shipment.
//!
//! What is read: the shipment (its state, parcels, items, promised date), its checkpoints, its
//! order's other shipments (their status), and once it is delivered the products of its items
//! (their usage tips) and the products those relate to: GetItems, Queries of one partition and
//! at most two BatchGetItems, never a Scan. Nothing else is written: no send, no decision, no
//! change of state; a failed count is logged and the page still shows.

use crate::domain::catalogue::{Product, Sku, distinct_skus};
use crate::domain::ids::ShipmentId;
use crate::domain::shipment::{Checkpoint, ShipmentRecord};
use crate::domain::{Merchant, MerchantId};
use crate::ports::StoreError;
use crate::ports::catalogue::Catalogue;
use crate::ports::shipments::{ShipmentBook, ShipmentViews};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// Most related products the page recommends.
pub const MAX_RELATED: usize = 3;

/// Why a tracking page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No such shipment for this merchant (never stored, or erased).
    #[error("no such shipment")]
    UnknownShipment,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the page shows about a shipment.
#[derive(Debug)]
pub struct TrackingFacts {
    pub record: ShipmentRecord,
    /// The checkpoints, newest first.
    pub history: Vec<Checkpoint>,
    /// The order's other shipments, in the order's pointer order.
    pub others: Vec<ShipmentRecord>,
    /// Once delivered: the stored products of the shipment's items, by SKU (else empty).
    pub products: BTreeMap<Sku, Product>,
    /// Once delivered: up to [`MAX_RELATED`] products related to the items, none of them in the
    /// order's shipments, each with a URL.
    pub related: Vec<Product>,
    /// The promised date passed and the parcel is neither delivered nor returned.
    pub late: bool,
}

/// The page over the shipments and the catalogue.
pub struct TrackingPage<'a, B, C> {
    pub book: &'a B,
    pub catalogue: &'a C,
}

impl<B, C> TrackingPage<'_, B, C>
where
    B: ShipmentBook + ShipmentViews,
    C: Catalogue,
{
    /// Reads what the page of shipment `id` of `merchant` shows at `now`, and counts the view.
    pub async fn open(
        &self,
        merchant: &Merchant,
        id: &ShipmentId,
        now: Timestamp,
    ) -> Result<TrackingFacts, PageError> {
        let m = &merchant.id;
        let record = self
            .book
            .shipment(m, id)
            .await?
            .ok_or(PageError::UnknownShipment)?;
        let (history, pointers) = tokio::join!(
            self.book.shipment_history(m, id),
            self.book.order_shipments(m, &record.shipment.order_id)
        );
        let mut history = history?;
        history.sort_by(|a, b| (b.occurred_at, &b.id).cmp(&(a.occurred_at, &a.id)));
        let mut others = Vec::new();
        for pointer in pointers? {
            if pointer.shipment_id == *id {
                continue;
            }
            if let Some(other) = self.book.shipment(m, &pointer.shipment_id).await? {
                others.push(other);
            }
        }
        let delivered = record.state().delivered_at().is_some();
        let (products, related) = match delivered {
            true => self.products(m, &record, &others).await?,
            false => (BTreeMap::new(), Vec::new()),
        };
        let late = record.is_late(now, &merchant.time_zone);
        match self.book.count_view(m, id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(shipment = %id, "shipment gone before its view was counted")
            }
            Err(e) => tracing::warn!(error = %e, shipment = %id, "tracking page view not counted"),
        }
        Ok(TrackingFacts {
            record,
            history,
            others,
            products,
            related,
            late,
        })
    }

    /// The products of the shipment's items and up to [`MAX_RELATED`] related ones (with a URL,
    /// bought in none of the order's shipments): one batch read each.
    async fn products(
        &self,
        m: &MerchantId,
        record: &ShipmentRecord,
        others: &[ShipmentRecord],
    ) -> Result<(BTreeMap<Sku, Product>, Vec<Product>), StoreError> {
        let skus = distinct_skus(record.shipment.items.iter().map(|i| i.sku.as_str()));
        let products = self.catalogue.products(m, &skus).await?;
        let bought: BTreeSet<&str> = std::iter::once(record)
            .chain(others)
            .flat_map(|r| r.shipment.items.iter().map(|i| i.sku.as_str()))
            .collect();
        let mut seen = BTreeSet::new();
        let wanted: Vec<Sku> = skus
            .iter()
            .filter_map(|s| products.get(s))
            .flat_map(|p| p.related.iter())
            .filter(|s| !bought.contains(s.as_str()) && seen.insert(s.as_str()))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok((products, Vec::new()));
        }
        let found = self.catalogue.products(m, &wanted).await?;
        let related = wanted
            .iter()
            .filter_map(|s| found.get(s))
            .filter(|p| p.url.is_some())
            .take(MAX_RELATED)
            .cloned()
            .collect();
        Ok((products, related))
    }
}

/// The page on the in-memory shipments and catalogue: what it reads, what it counts.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::customer::CustomerRef;
    use crate::domain::shipment::{Shipment, ShipmentItem, TrackingStatus};
    use crate::testing::MemShipments;
    use crate::testing::fixtures;
    use crate::testing::products::MemCatalogue;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn record(merchant: &Merchant, id: &str, promised: &str) -> ShipmentRecord {
        let shipment = Shipment {
            id: ShipmentId::parse("id", id).unwrap(),
            order_id: crate::domain::OrderId::parse("o", "SO-1").unwrap(),
            carrier: "DHL".into(),
            tracking_number: format!("JD{id}"),
            tracking_url: None,
            additional_tracking: vec![],
            items: vec![ShipmentItem {
                sku: "TENT".into(),
                quantity: 1,
                name: Some("Tent".into()),
            }],
            promised_date: Some(promised.parse().unwrap()),
            shipped_at: t("2026-11-20T10:00:00Z"),
        };
        let customer: CustomerRef =
            serde_json::from_value(json!({"id": "c1", "email": "ann@example.com"})).unwrap();
        ShipmentRecord::new(
            merchant.id.clone(),
            shipment,
            customer,
            "h".into(),
            t("2026-11-20T10:00:00Z"),
        )
    }

    fn store(book: &MemShipments, r: &ShipmentRecord) {
        let key = crate::adapters::store::keys::shipment(&r.merchant_id, &r.shipment.id);
        book.table()
            .write(crate::testing::table::Write::Put {
                key: (&key).into(),
                row: crate::testing::table::row(r).unwrap(),
                condition: crate::testing::table::always(),
            })
            .unwrap();
    }

    fn views(book: &MemShipments, r: &ShipmentRecord) -> u64 {
        let key = crate::adapters::store::keys::shipment(&r.merchant_id, &r.shipment.id);
        crate::testing::table::number(book.table().get(&(&key).into()).as_ref(), "views")
    }

    #[tokio::test]
    async fn a_late_shipment_says_so_and_every_opening_counts_once() {
        let merchant = fixtures::merchant();
        let book = MemShipments::new();
        let catalogue = MemCatalogue::new();
        let r = record(&merchant, "sh1", "2026-11-22");
        store(&book, &r);
        let page = TrackingPage {
            book: &book,
            catalogue: &catalogue,
        };
        let id = r.shipment.id.clone();
        let on_time = page.open(&merchant, &id, t("2026-11-22T10:00:00Z")).await;
        assert!(!on_time.unwrap().late);
        let late = page.open(&merchant, &id, t("2026-11-24T10:00:00Z")).await;
        assert!(late.unwrap().late);
        assert_eq!(views(&book, &r), 2);
        let none = ShipmentId::parse("id", "nope").unwrap();
        let missing = page.open(&merchant, &none, t("2026-11-24T10:00:00Z")).await;
        assert!(matches!(missing, Err(PageError::UnknownShipment)));
        assert_eq!(
            book.table()
                .get(&(&crate::adapters::store::keys::shipment(&merchant.id, &none)).into()),
            None
        );
    }

    #[tokio::test]
    async fn a_delivered_shipment_is_never_late_and_shows_its_products_and_related_ones() {
        let merchant = fixtures::merchant();
        let book = MemShipments::new();
        let catalogue = MemCatalogue::new();
        let mut r = record(&merchant, "sh1", "2026-11-22");
        r.progress_rank = TrackingStatus::Delivered.rank().unwrap();
        r.progress_status = Some(TrackingStatus::Delivered);
        r.progress_at_ms = t("2026-11-25T10:00:00Z").as_millisecond();
        store(&book, &r);
        let product = |sku: &str, related: &[&str], url: Option<&str>| {
            serde_json::from_value::<Product>(json!({
                "sku": sku, "name": format!("{sku} name"), "url": url,
                "tips": {"en": [format!("{sku} tip")]}, "related": related,
                "updated_at": "2026-11-01T00:00:00Z",
            }))
            .unwrap()
        };
        for p in [
            product("TENT", &["TENT", "MAT", "NOURL", "PEGS"], None),
            product("MAT", &[], Some("https://shop.example/mat")),
            product("NOURL", &[], None),
        ] {
            catalogue.put_product(&merchant.id, &p).await.unwrap();
        }
        let page = TrackingPage {
            book: &book,
            catalogue: &catalogue,
        };
        let facts = page
            .open(&merchant, &r.shipment.id, t("2026-12-01T10:00:00Z"))
            .await
            .unwrap();
        assert!(!facts.late);
        assert_eq!(facts.products.len(), 1);
        let related: Vec<&str> = facts.related.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(related, ["MAT"], "not bought, stored, with a URL");
    }
}
