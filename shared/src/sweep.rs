//! What every scheduled sweep over the due index shares: read the group's due items (never the
//! table), work on them with bounded concurrency, stop taking items near the deadline (they stay
//! due for the next run), count failures, and fail the invocation when any item failed, so the
//! alarm fires and the schedule's retry picks the items up. The work on one item is the caller's.

use crate::app::App;
use crate::error::HandlerError;
use crate::send::Deadline;
use crate::store::StoreError;
use crate::store::shipments::DueItem;
use futures_util::StreamExt;
use std::future::Future;
use std::time::Duration;

/// A sweep stops taking new items with less than this left before its deadline.
pub const STOP_MARGIN: Duration = Duration::from_secs(5);

/// What the driver saw; the caller's report carries the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub due: usize,
    /// Due-index items DynamoDB read to find them (ScannedCount): ≈ `due`, never the table.
    pub items_read: u64,
    /// Items whose work failed; they stay due.
    pub errors: usize,
}

impl Swept {
    /// Logs `report` and returns it, or fails the invocation if any of the `what` failed.
    pub fn finish<R: std::fmt::Debug>(&self, what: &str, report: R) -> Result<R, HandlerError> {
        tracing::info!(?report, "{what} sweep done");
        if self.errors > 0 {
            return Err(HandlerError::new(
                "Transient",
                format!("{} of {} {what} failed and stay due", self.errors, self.due),
            ));
        }
        Ok(report)
    }
}

/// Runs `work` on every item of `group` due now (looking `lookback_days` UTC days back) and hands
/// each outcome to `tally`; items not started before the deadline margin count as `left_due`.
pub async fn run<O, F, Fut>(
    app: &App,
    group: &str,
    lookback_days: u32,
    deadline: Deadline,
    left_due: O,
    work: F,
    mut tally: impl FnMut(O),
) -> Result<Swept, HandlerError>
where
    O: Copy,
    F: Fn(DueItem) -> Fut,
    Fut: Future<Output = Result<O, StoreError>>,
{
    let now = app.clock.now();
    let (items, items_read) = app
        .store
        .due_items_counted(group, now, lookback_days)
        .await?;
    let due = items.len();
    let work = &work;
    let mut outcomes = futures_util::stream::iter(items)
        .map(|item| async move {
            if deadline.remaining() < STOP_MARGIN {
                return Ok(left_due);
            }
            let key = item.key.sk.clone();
            work(item).await.map_err(|e| {
                tracing::error!(key = %key, group, error = %e, "due item failed; it stays due");
                e
            })
        })
        .buffer_unordered(app.config.sweep_concurrency);
    let mut errors = 0;
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Ok(o) => tally(o),
            Err(_) => errors += 1,
        }
    }
    Ok(Swept {
        due,
        items_read,
        errors,
    })
}
