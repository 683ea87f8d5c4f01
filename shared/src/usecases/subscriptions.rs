//! Storing a subscription update, whoever sends it (the merchant API, an EventBridge event, a
//! Stripe webhook): validate at the edge, then this one path computes its first notice and writes.

use crate::adapters::store::subscriptions::{SubscriptionRecord, UpsertOutcome};
use crate::adapters::store::{Store, StoreError};
use crate::domain::Merchant;
use crate::domain::subscription::{Subscription, first_due};
use jiff::Timestamp;

/// Stores `sub` for `merchant` unless newer state is stored, placing it in the renewal index at
/// its first notice still worth sending.
pub async fn apply(
    store: &Store,
    merchant: &Merchant,
    sub: Subscription,
    now: Timestamp,
) -> Result<(UpsertOutcome, SubscriptionRecord), StoreError> {
    let due = first_due(&sub, &merchant.settings.renewals, now);
    let record = SubscriptionRecord::new(merchant.id.clone(), sub, now);
    let outcome = store.upsert_subscription(&record, due).await?;
    tracing::info!(subscription_id = %record.subscription.id, outcome = ?outcome_name(&outcome), due = ?due, "subscription update");
    Ok((outcome, record))
}

pub fn outcome_name(o: &UpsertOutcome) -> &'static str {
    match o {
        UpsertOutcome::Created => "created",
        UpsertOutcome::Updated => "updated",
        UpsertOutcome::Unchanged(_) => "unchanged",
        UpsertOutcome::Stale(_) => "stale",
    }
}
