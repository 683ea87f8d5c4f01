//! Subscriptions: idempotent, order-safe upserts and the renewal group of the due index.
//!
//! An upsert is one `TransactWriteItems`: the subscription (conditioned on being new or strictly
//! newer by the billing system's `updated_at`, so a stale or replayed update never overwrites
//! newer state) and the customer's pointer to it. The subscription carries its own place in the
//! due index (its next notice), so the renewal sweep reads exactly the subscriptions due.

use super::write::with_due;
use super::{Item, Store, StoreError, classify, from_item, keys, n, s, to_item, update_held};
use crate::domain::ids::SubscriptionId;
pub use crate::domain::subscription::SubscriptionRecord;
use crate::domain::{CustomerId, MerchantId};
use crate::ports::DueToken;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

const SUBSCRIPTION: &str = "subscription";
const POINTER: &str = "customer_subscription";
const CLICK: &str = "subscription_click";
/// Due-index group of subscriptions waiting for their next notice.
pub const RENEWAL_GROUP: &str = "renewal";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    /// The same state was stored already (a replay).
    Unchanged(Box<SubscriptionRecord>),
    /// Newer (or conflicting same-time) state is stored; nothing was written.
    Stale(Box<SubscriptionRecord>),
}

/// A click on a subscription link, or a request made on the hosted page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionClick {
    pub subscription_id: SubscriptionId,
    pub customer_id: String,
    /// `manage`, `renew`, `update_payment`, or a request: `cancel_requested`, `renew_requested`.
    pub action: String,
    pub at: Timestamp,
}

impl Store {
    /// Stores `record` unless newer state is stored; `due` is its next notice (none: out of the
    /// index). A replay of the stored state is `Unchanged`. Two writes: the customer's pointer
    /// (idempotent) and the conditional put, which returns the state it replaced or lost to.
    pub async fn upsert_subscription(
        &self,
        record: &SubscriptionRecord,
        due: Option<Timestamp>,
    ) -> Result<UpsertOutcome, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
        let m = &record.merchant_id;
        let sub = &record.subscription;
        #[derive(Serialize)]
        struct Pointer<'a> {
            subscription_id: &'a SubscriptionId,
        }
        let pointer = to_item(
            POINTER,
            &keys::customer_subscription(m, &sub.customer.id, &sub.id),
            &Pointer {
                subscription_id: &sub.id,
            },
        )?;
        self.put_item("PutItem subscription pointer", pointer)
            .await?;
        if let Some(email) = &sub.customer.email {
            self.put_address_notes(m, &sub.customer.id, &email.normalized())
                .await?;
        }
        let key = keys::subscription(m, &sub.id);
        let mut item = to_item(SUBSCRIPTION, &key, record)?;
        if let Some(at) = due {
            item = with_due(item, RENEWAL_GROUP, at, &key);
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR updated_at_ms < :u")
            .expression_attribute_values(":u", n(record.updated_at_ms))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(match out.attributes {
                Some(old) if !old.is_empty() => UpsertOutcome::Updated,
                _ => UpsertOutcome::Created,
            }),
            Err(err) => {
                let stored = match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => e.item.clone(),
                    _ => return Err(classify("PutItem subscription", err)),
                };
                let stored: SubscriptionRecord = match stored {
                    Some(item) if !item.is_empty() => from_item(SUBSCRIPTION, item)?,
                    // Some emulators omit the item: read it.
                    _ => self
                        .get_subscription(m, &sub.id)
                        .await?
                        .ok_or(StoreError::ConditionFailed)?,
                };
                Ok(if stored.content_hash == record.content_hash {
                    UpsertOutcome::Unchanged(Box::new(stored))
                } else {
                    UpsertOutcome::Stale(Box::new(stored))
                })
            }
        }
    }

    pub async fn get_subscription(
        &self,
        m: &MerchantId,
        id: &SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.get_as(
            "GetItem subscription",
            SUBSCRIPTION,
            &keys::subscription(m, id),
        )
        .await
    }

    /// The ids of a customer's subscriptions.
    pub async fn customer_subscriptions(
        &self,
        m: &MerchantId,
        c: &CustomerId,
    ) -> Result<Vec<SubscriptionId>, StoreError> {
        #[derive(Deserialize)]
        struct Pointer {
            subscription_id: SubscriptionId,
        }
        let query = self.prefix_query(&keys::customer_subscriptions(m, c));
        let pointers: Vec<Pointer> = self
            .query_all_as("Query customer subscriptions", POINTER, query)
            .await?;
        Ok(pointers.into_iter().map(|p| p.subscription_id).collect())
    }

    /// Records a link click or a request from the hosted page (kept for the email retention).
    pub async fn record_subscription_click(
        &self,
        m: &MerchantId,
        click: &SubscriptionClick,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let key =
            keys::subscription_click(m, &click.subscription_id, &crate::domain::ids::new_id());
        let mut item: Item = to_item(CLICK, &key, click)?;
        item.insert(keys::TTL.into(), n(expires_at));
        self.put_item("PutItem subscription click", item).await
    }
}

/// Parses a renewal-group due item.
pub fn subscription_record(item: Item) -> Result<SubscriptionRecord, StoreError> {
    from_item(SUBSCRIPTION, item)
}

impl crate::ports::RenewalBook for Store {
    /// Moves a subscription to its next notice (or out of the index), recording the notice just
    /// handled; only if it is still where the sweep saw it. False if it moved meanwhile.
    async fn move_subscription_due(
        &self,
        due: &DueToken,
        next: Option<Timestamp>,
        handled: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = &due.key();
        let mut req = self.update_seen(due, None);
        let mut set = Vec::new();
        if let Some(h) = handled {
            set.push("last_notice = :h, last_notice_at = :now");
            req = req
                .expression_attribute_values(":h", s(h))
                .expression_attribute_values(":now", s(now.to_string()));
        }
        let expression = match next {
            Some(at) => {
                let (pk, sk) = keys::due(RENEWAL_GROUP, at, key);
                req = req
                    .expression_attribute_values(":dpk", s(pk))
                    .expression_attribute_values(":dsk", s(sk));
                set.push("DUEPK = :dpk, DUESK = :dsk");
                format!("SET {}", set.join(", "))
            }
            None if set.is_empty() => "REMOVE DUEPK, DUESK".to_owned(),
            None => format!("SET {} REMOVE DUEPK, DUESK", set.join(", ")),
        };
        update_held(
            "UpdateItem subscription due",
            req.update_expression(expression),
        )
        .await
    }
}
