//! The DynamoDB single-table adapter.
//!
//! Items are the domain structs serialised with `serde_dynamo`, plus the keys from [`keys`].
//! Errors are typed ([`StoreError`]): a lost race is an outcome the caller decides on, throttling
//! is transient, and nothing is stringified.

pub mod apikeys;
pub mod billing;
pub mod claims;
pub mod connectors;
pub mod credit;
pub mod customers;
pub mod due;
pub mod email_events;
pub mod followups;
pub mod keys;
pub mod loyalty;
pub mod merchants;
pub mod messages;
pub mod offboarding;
pub mod orders;
pub mod page_views;
pub mod privacy;
pub mod products;
pub mod returns;
pub mod schema;
pub mod shipments;
pub mod stats;
pub mod subscriptions;
pub mod write;

pub use crate::ports::StoreError;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use keys::Key;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;
/// Error codes DynamoDB uses for "slow down / try again".
pub(crate) fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException"
            | "LimitExceededException"
    )
}

/// Classifies an SDK error. `ConditionalCheckFailedException` becomes [`StoreError::ConditionFailed`].
pub(crate) fn classify<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient {
                operation,
                source: Box::new(err),
            }
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if code == "ConditionalCheckFailedException" {
                StoreError::ConditionFailed
            } else if is_transient_code(code) {
                StoreError::Transient {
                    operation,
                    source: Box::new(err),
                }
            } else if code == "ValidationException" {
                StoreError::Rejected {
                    operation,
                    source: Box::new(err),
                }
            } else {
                StoreError::Unexpected {
                    operation,
                    source: Box::new(err),
                }
            }
        }
        _ => StoreError::Unexpected {
            operation,
            source: Box::new(err),
        },
    }
}

/// For conditional writes whose failed condition is an answer, not an error: `Ok(true)` when the
/// write happened, `Ok(false)` when its condition did not hold.
pub(crate) fn condition_held<T>(result: Result<T, StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Queries of one sharded read in flight at once.
pub(crate) const PARALLEL_QUERIES: usize = 8;

/// The table adapter. Cheap to clone (the SDK client is reference-counted).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A Query of the table (or, with `index_name`, of one of its indexes).
    pub(crate) fn table_query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.table)
    }

    /// A Query of the items `within` names (eventually consistent, one page: callers add what
    /// their read needs).
    pub(crate) fn prefix_query(&self, within: &keys::Within) -> QueryFluentBuilder {
        let query = self
            .table_query()
            .expression_attribute_values(":pk", s(&within.pk));
        if within.prefix.is_empty() {
            query.key_condition_expression("PK = :pk")
        } else {
            query
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":prefix", s(&within.prefix))
        }
    }

    /// Every item `within` names (consistent read, all pages).
    pub(crate) async fn query_prefix(
        &self,
        operation: &'static str,
        within: &keys::Within,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_prefix_upto(operation, within, usize::MAX).await
    }

    /// As [`Store::query_prefix`], but reads no further page once `max` items are in hand.
    pub(crate) async fn query_prefix_upto(
        &self,
        operation: &'static str,
        within: &keys::Within,
        max: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self.prefix_query(within).consistent_read(true);
        Ok(self.query_pages(operation, query, max).await?.items)
    }

    /// Runs `queries` (one per partition of a sharded listing, at most [`PARALLEL_QUERIES`] at
    /// a time), every page of each, and gathers what they answer.
    pub(crate) async fn query_each(
        &self,
        operation: &'static str,
        queries: Vec<QueryFluentBuilder>,
    ) -> Result<Pages, StoreError> {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(queries)
            .map(|query| self.query_pages(operation, query, usize::MAX))
            .buffer_unordered(PARALLEL_QUERIES)
            .try_fold(Pages::default(), |mut all, pages| async move {
                all.items.extend(pages.items);
                all.count += pages.count;
                all.scanned += pages.scanned;
                Ok(all)
            })
            .await
    }

    /// Every item `query` answers (all pages), read as `entity`.
    pub(crate) async fn query_all_as<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        entity: &'static str,
        query: QueryFluentBuilder,
    ) -> Result<Vec<T>, StoreError> {
        let pages = self.query_pages(operation, query, usize::MAX).await?;
        from_items(entity, pages.items)
    }

    /// Runs `query` page after page until the last, or until `max` items are in hand.
    pub(crate) async fn query_pages(
        &self,
        operation: &'static str,
        query: QueryFluentBuilder,
        max: usize,
    ) -> Result<Pages, StoreError> {
        let mut pages = Pages::default();
        let mut start: Option<Item> = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            pages.count += u64::try_from(out.count).unwrap_or(0);
            pages.scanned += u64::try_from(out.scanned_count).unwrap_or(0);
            pages.items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && pages.items.len() < max => start = Some(k),
                _ => return Ok(pages),
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One eventually consistent read of a key that holds nothing ([`keys::warm_up`]): opens the
    /// connection (DNS, TCP, TLS, credentials) without touching any item. Returns whether the
    /// table answered.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::warm_up().to_map()))
            .projection_expression("PK")
            .send()
            .await
            .map_err(|e| classify("warm-up", e))?;
        Ok(())
    }

    async fn get(&self, operation: &'static str, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(out.item)
    }

    /// The item at `key` read as `entity` (consistent read), if there is one.
    pub(crate) async fn get_as<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        entity: &'static str,
        key: &Key,
    ) -> Result<Option<T>, StoreError> {
        self.get(operation, key)
            .await?
            .map(|item| from_item(entity, item))
            .transpose()
    }

    /// An unconditional PutItem of `item`.
    pub(crate) async fn put_item(
        &self,
        operation: &'static str,
        item: Item,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(())
    }

    /// An UpdateItem of the item at `key`, to be given its expressions.
    pub(crate) fn update_item(&self, key: &Key) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
    }
}

/// Sends a conditional UpdateItem whose failed condition is an answer (see [`condition_held`]).
pub(crate) async fn update_held(
    operation: &'static str,
    update: UpdateItemFluentBuilder,
) -> Result<bool, StoreError> {
    condition_held(update.send().await.map_err(|e| classify(operation, e)))
}

/// What [`Store::query_pages`] read: the items, and DynamoDB's `Count` and `ScannedCount` summed
/// over the pages.
#[derive(Debug, Default)]
pub(crate) struct Pages {
    pub items: Vec<Item>,
    pub count: u64,
    pub scanned: u64,
}

/// Serialises `value` into an item under `key`, tagged with `entity`.
pub(crate) fn to_item<T: Serialize>(
    entity: &'static str,
    key: &Key,
    value: &T,
) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(value).map_err(|source| StoreError::Corrupt { entity, source })?;
    item.insert(keys::PK.into(), AttributeValue::S(key.pk.clone()));
    item.insert(keys::SK.into(), AttributeValue::S(key.sk.clone()));
    item.insert(keys::TYPE.into(), AttributeValue::S(entity.into()));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(
    entity: &'static str,
    item: Item,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|source| StoreError::Corrupt { entity, source })
}

/// Every item of `items` read as `entity`.
pub(crate) fn from_items<T: DeserializeOwned>(
    entity: &'static str,
    items: Vec<Item>,
) -> Result<Vec<T>, StoreError> {
    items
        .into_iter()
        .map(|item| from_item(entity, item))
        .collect()
}

/// The first of a page's items (a Query with a limit), read as `entity`.
pub(crate) fn first_as<T: DeserializeOwned>(
    entity: &'static str,
    items: Option<Vec<Item>>,
) -> Result<Option<T>, StoreError> {
    items
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|item| from_item(entity, item))
        .transpose()
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
