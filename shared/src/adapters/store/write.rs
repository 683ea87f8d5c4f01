//! What every store write shares: building transaction items, the due-index attributes, one
//! `TransactWriteItems` with bounded retries that reports which condition cancelled it, and
//! BatchWriteItem calls that send again what DynamoDB leaves unprocessed.

use super::{Item, Store, StoreError, classify, keys, s};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use jiff::Timestamp;

pub(crate) fn build_err(
    operation: &'static str,
) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |e| StoreError::Unexpected {
        operation,
        source: Box::new(e),
    }
}

pub(crate) fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(build_err("build Put"))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A put of `item` conditioned on nothing being stored under its key yet.
pub(crate) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    put(table, item, Some("attribute_not_exists(PK)"))
}

/// The transaction item of a finished [`Store::tx_update`].
pub(crate) fn update(update: UpdateBuilder) -> Result<TransactWriteItem, StoreError> {
    let update = update.build().map_err(build_err("build Update"))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// DynamoDB's limit of requests per BatchWriteItem.
pub(crate) const BATCH_WRITE: usize = 25;

/// The delete request of `key`, for [`Store::batch_write`].
pub(crate) fn delete_request(
    key: &keys::Key,
) -> Result<aws_sdk_dynamodb::types::WriteRequest, StoreError> {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    DeleteRequest::builder()
        .set_key(Some(key.to_map()))
        .build()
        .map(|d| WriteRequest::builder().delete_request(d).build())
        .map_err(build_err("build DeleteRequest"))
}

impl Store {
    /// Sends `requests` (at most [`BATCH_WRITE`]) in one BatchWriteItem, then sends again what
    /// DynamoDB leaves unprocessed (throttling), with backoff, for up to `rounds` rounds. Answers
    /// what is still unprocessed after them (empty: all written); a failed call ends with its
    /// error, leaving unknown which of the requests were written.
    pub(crate) async fn batch_write(
        &self,
        operation: &'static str,
        requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
        rounds: u32,
    ) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, StoreError> {
        let mut pending = requests;
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let resp = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            if let Some(mut left) = resp.unprocessed_items
                && let Some(requests) = left.remove(&self.table)
            {
                pending = requests;
            }
            if !pending.is_empty() {
                if round >= rounds {
                    return Ok(pending);
                }
                tokio::time::sleep(crate::retry::backoff(round)).await;
            }
        }
        Ok(Vec::new())
    }
}

/// Adds the due-index attributes to `item`.
pub(crate) fn with_due(mut item: Item, group: &str, at: Timestamp, key: &keys::Key) -> Item {
    let (pk, sk) = keys::due(group, at, key);
    item.insert(keys::DUEPK.into(), s(pk));
    item.insert(keys::DUESK.into(), s(sk));
    item
}

/// Cancellation codes of a failed transaction, by item position.
fn cancellation_codes(
    err: &aws_sdk_dynamodb::error::SdkError<
        TransactWriteItemsError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(tce)) => Some(
            tce.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

/// Tries of a transaction that cannot wait (see [`Store::transact_within`]).
const TRANSACT_ATTEMPTS: u32 = 5;

pub(crate) enum Attempt {
    Done,
    Cancelled(Vec<String>),
}

/// The cancellation code of an item whose condition did not hold.
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Whether the `i`th item's condition is what cancelled a transaction.
pub(crate) fn codes_failed(codes: &[String], i: usize) -> bool {
    codes.get(i).is_some_and(|c| c == CONDITION_FAILED)
}

impl Store {
    /// A transaction's Update of the item at `key`, to be given its expressions (see [`update`]).
    pub(crate) fn tx_update(&self, key: &keys::Key) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.to_map()))
    }

    /// One transaction with bounded retries on conflicts and throttling.
    pub(crate) async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Attempt, StoreError> {
        self.transact_within(operation, items, TRANSACT_ATTEMPTS)
            .await
    }

    /// As [`Store::transact`], with at most `attempts` tries (each with the SDK's own retries):
    /// fewer for a write that can wait for a redelivery, so a struggling table is not pressed.
    pub(crate) async fn transact_within(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
        attempts: u32,
    ) -> Result<Attempt, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Attempt::Done),
                Err(err) => err,
            };
            let codes = cancellation_codes(&err);
            let retry = match &codes {
                Some(c) if c.iter().any(|c| c == CONDITION_FAILED) => {
                    return Ok(Attempt::Cancelled(c.clone()));
                }
                Some(c) => c.iter().any(|c| {
                    matches!(
                        c.as_str(),
                        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                    )
                }),
                None => match err.as_service_error() {
                    Some(
                        TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                        | TransactWriteItemsError::ThrottlingException(_)
                        | TransactWriteItemsError::RequestLimitExceeded(_)
                        | TransactWriteItemsError::InternalServerError(_)
                        | TransactWriteItemsError::TransactionInProgressException(_),
                    ) => true,
                    Some(other) => aws_sdk_dynamodb::error::ProvideErrorMetadata::code(other)
                        .is_some_and(super::is_transient_code),
                    None => false,
                },
            };
            if !retry || attempt >= attempts {
                return Err(match classify(operation, err) {
                    StoreError::Unexpected { operation, source } if retry => {
                        StoreError::Transient { operation, source }
                    }
                    other => other,
                });
            }
            tokio::time::sleep(crate::retry::backoff(attempt)).await;
        }
    }
}
