//! Returns: each in its own partition (`M#<m>#RET#<r>` / `RETURN`, listed in gsi1 over
//! [`keys::LIST_SHARDS`] partitions by creation time, in the due index while its reminder is
//! pending), and the order's return tally (`M#<m>#O#<o>` / `RETURNS`).
//!
//! A write is one `TransactWriteItems`: the return (new: `attribute_not_exists(PK)`; a move:
//! `version = :before`), the tally when it changes (`version = :before`, or new), and the email's
//! claim with its suppression check. Two customers submitting at once for the same order cannot
//! both take the last unit: the loser's tally condition fails and it decides again.

use super::claims::Guarded;
use super::write::{Attempt, build_err, codes_failed, put, put_new, with_due};
use super::{Item, Store, StoreError, from_item, keys, n, s, to_item};
use crate::domain::catalogue::{Product, Sku};
use crate::domain::ids::ReturnId;
use crate::domain::order::OrderRecord;
use crate::domain::returns::{ReturnRecord, ReturnTally};
use crate::domain::shipment::ShipmentPointer;
use crate::domain::{MerchantId, OrderId};
use crate::ports::returns::{
    OrderForReturn, ReturnBook, ReturnParcelPointer, ReturnWrite, Written,
};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use jiff::Timestamp;

const RETURN: &str = "return";
const TALLY: &str = "return_tally";
const PARCEL: &str = "return_parcel_pointer";
const ORDER: &str = "order";
const POINTER: &str = "order_shipment";
/// Due-index group of return reminders.
pub const RETURN_GROUP: &str = crate::ports::DueGroup::ReturnReminders.as_str();

/// A put of `item` conditioned on `condition` over the number `value` named `name`.
fn put_versioned(
    table: &str,
    item: Item,
    condition: &str,
    name: &str,
    value: u32,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .expression_attribute_values(name, n(value))
        .build()
        .map_err(build_err("build Put"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn sk(item: &Item) -> &str {
    match item.get(keys::SK) {
        Some(AttributeValue::S(v)) => v,
        _ => "",
    }
}

impl Store {
    /// The return's item: the record, its listing keys and, while its reminder is pending, its
    /// due-index keys.
    fn return_put_item(
        &self,
        record: &ReturnRecord,
        reminder_at: Option<Timestamp>,
    ) -> Result<Item, StoreError> {
        let key = keys::return_item(&record.merchant_id, &record.id);
        let mut item = to_item(RETURN, &key, record)?;
        item.insert(
            keys::GSI1PK.into(),
            s(keys::returns_index(&record.merchant_id, &record.id)),
        );
        item.insert(
            keys::GSI1SK.into(),
            s(keys::time_sort_key(record.created_at, record.id.as_str())),
        );
        Ok(match reminder_at {
            Some(at) => with_due(item, RETURN_GROUP, at, &key),
            None => item,
        })
    }
}

impl ReturnBook for Store {
    async fn order_for_return(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<OrderForReturn>, StoreError> {
        let items = self
            .query_prefix("Query order for return", &keys::order_items(m, o))
            .await?;
        let mut order: Option<OrderRecord> = None;
        let mut shipments = Vec::new();
        let mut tally = ReturnTally::default();
        let order_sk = keys::order(m, o).sk;
        let tally_sk = keys::order_returns(m, o).sk;
        for item in items {
            let at = sk(&item).to_owned();
            if at == order_sk {
                order = Some(from_item(ORDER, item)?);
            } else if at == tally_sk {
                tally = from_item(TALLY, item)?;
            } else if keys::shipment_of_pointer(&at).is_some() {
                shipments.push(from_item::<ShipmentPointer>(POINTER, item)?);
            }
        }
        Ok(order.map(|order| OrderForReturn {
            order,
            shipments,
            tally,
        }))
    }

    async fn return_tally(
        &self,
        m: &MerchantId,
        o: &OrderId,
    ) -> Result<Option<ReturnTally>, StoreError> {
        self.get_as("GetItem return tally", TALLY, &keys::order_returns(m, o))
            .await
    }

    async fn return_record(
        &self,
        m: &MerchantId,
        r: &ReturnId,
    ) -> Result<Option<ReturnRecord>, StoreError> {
        self.get_as("GetItem return", RETURN, &keys::return_item(m, r))
            .await
    }

    async fn returns_of(
        &self,
        m: &MerchantId,
        ids: &[ReturnId],
    ) -> Result<Vec<ReturnRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let found = self
                .batch_get(
                    "BatchGetItem returns",
                    chunk
                        .iter()
                        .map(|r| keys::return_item(m, r).to_map())
                        .collect(),
                )
                .await?;
            for item in found.into_values() {
                out.push(from_item(RETURN, item)?);
            }
        }
        Ok(out)
    }

    async fn write_return(&self, w: &ReturnWrite<'_>) -> Result<Written, StoreError> {
        let record = w.record;
        let m = &record.merchant_id;
        let item = self.return_put_item(record, w.reminder_at)?;
        let mut items = vec![match w.before {
            None => put_new(&self.table, item)?,
            Some(v) => put_versioned(&self.table, item, "version = :before", ":before", v)?,
        }];
        if let Some(number) = w.parcel_pointer {
            let pointer = ReturnParcelPointer {
                return_id: record.id.clone(),
                order_id: record.order_id.clone(),
            };
            let key = keys::return_tracking(m, number, &record.id);
            items.push(put(&self.table, to_item(PARCEL, &key, &pointer)?, None)?);
        }
        if let Some(tally) = w.tally {
            let item = to_item(TALLY, &keys::order_returns(m, &record.order_id), tally)?;
            items.push(match tally.version.saturating_sub(1) {
                0 => put_new(&self.table, item)?,
                before => put_versioned(&self.table, item, "version = :tally", ":tally", before)?,
            });
        }
        const OPERATION: &str = "TransactWriteItems return";
        let is_new = w.before.is_none();
        let cancelled = |codes: Vec<String>| {
            if is_new && codes_failed(&codes, 0) {
                Written::Exists
            } else {
                Written::Moved
            }
        };
        let Some((claim_id, claim)) = w.claim else {
            return Ok(match self.transact(OPERATION, items).await? {
                Attempt::Done => Written::Done { suppressed: false },
                Attempt::Cancelled(codes) => cancelled(codes),
            });
        };
        let (claim, guard) = self.guarded_claim(items.len(), claim_id, claim, w.send_expires_at)?;
        items.push(claim);
        Ok(
            match self.transact_guarded(OPERATION, items, guard).await? {
                Guarded::Done => Written::Done { suppressed: false },
                Guarded::Suppressed => Written::Done { suppressed: true },
                Guarded::Cancelled(codes) => cancelled(codes),
            },
        )
    }

    async fn returns_between(
        &self,
        m: &MerchantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ReturnRecord>, StoreError> {
        let (items, _) = self
            .time_range(
                "Query returns",
                keys::returns_partitions(m),
                from,
                to,
                false,
            )
            .await?;
        super::from_items(RETURN, items)
    }

    async fn returns_by_tracking(
        &self,
        m: &MerchantId,
        number: &str,
    ) -> Result<Vec<ReturnParcelPointer>, StoreError> {
        let items = self
            .query_prefix(
                "Query return tracking number",
                &keys::return_trackings(m, number),
            )
            .await?;
        super::from_items(PARCEL, items)
    }

    async fn products_of(
        &self,
        m: &MerchantId,
        skus: &[String],
    ) -> Result<Vec<Product>, StoreError> {
        use crate::ports::catalogue::Catalogue as _;
        let skus: Vec<Sku> = skus
            .iter()
            .filter_map(|s| Sku::parse("sku", s).ok())
            .collect();
        Ok(self.products(m, &skus).await?.into_values().collect())
    }
}
