//! What every scheduled sweep over the due index shares: read the group's due items (never the
//! table), work on them with bounded concurrency, stop taking items near the deadline (they stay
//! due for the next run), count failures, and fail the invocation when any item failed, so the
//! alarm fires and the schedule's retry picks the items up. The work on one item is the caller's.
//!
//! Merchants take turns: each merchant's items in due order, one merchant's next item only after
//! every other merchant with items left has had its turn, so one merchant's backlog never delays
//! another's first email. `AFTERCARE_SWEEP_MERCHANT_QUOTA` caps what one merchant gets per run.

use crate::adapters::store::StoreError;
use crate::adapters::store::keys;
use crate::adapters::store::write::DueItem;
use crate::clock::Clock;
use crate::lambda::error::HandlerError;
use crate::usecases::send::Deadline;
use futures_util::StreamExt;
use std::collections::{BTreeMap, VecDeque};
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
    /// Items over their merchant's quota for this run; they stay due (also tallied as left due).
    pub over_quota: usize,
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

/// What a sweep runs with: where due work is read and the deployment's sweep settings.
#[derive(Clone, Copy)]
pub struct Sweeper<'a> {
    pub store: &'a crate::adapters::store::Store,
    pub clock: &'a dyn Clock,
    /// Items one merchant gets per run (`AFTERCARE_SWEEP_MERCHANT_QUOTA`); `None` is no cap.
    pub merchant_quota: Option<usize>,
    /// Items worked on at once (`AFTERCARE_SWEEP_CONCURRENCY`).
    pub concurrency: usize,
}

/// Runs `work` on every item of `group` due now (looking `lookback_days` UTC days back) and hands
/// each outcome to `tally`; items not started before the deadline margin count as `left_due`.
pub async fn run<O, F, Fut>(
    app: Sweeper<'_>,
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
    let (items, held) = take_turns(items, app.merchant_quota);
    let over_quota = held.len();
    for _ in &held {
        tally(left_due);
    }
    if over_quota > 0 {
        tracing::warn!(
            group,
            over_quota,
            quota = app.merchant_quota,
            "merchants over their sweep quota: the rest stay due for the next run"
        );
    }
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
        .buffer_unordered(app.concurrency);
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
        over_quota,
    })
}

/// The order a sweep works in, and the items held back for the next run: each merchant's items
/// by due time (`DUESK`), merchants in turn starting with the one waiting longest, at most `quota`
/// items per merchant.
pub fn take_turns(items: Vec<DueItem>, quota: Option<usize>) -> (Vec<DueItem>, Vec<DueItem>) {
    let due_at = |d: &DueItem| {
        d.item
            .get(keys::DUESK)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut by_merchant: BTreeMap<String, Vec<(String, DueItem)>> = BTreeMap::new();
    for item in items {
        by_merchant
            .entry(item.key.pk.clone())
            .or_default()
            .push((due_at(&item), item));
    }
    let mut queues: Vec<VecDeque<(String, DueItem)>> = by_merchant
        .into_values()
        .map(|mut q| {
            q.sort_by(|a, b| a.0.cmp(&b.0));
            VecDeque::from(q)
        })
        .collect();
    queues.sort_by(|a, b| a.front().map(|f| &f.0).cmp(&b.front().map(|f| &f.0)));
    let quota = quota.unwrap_or(usize::MAX);
    let mut order = Vec::new();
    let mut turn = 0;
    while turn < quota && queues.iter().any(|q| !q.is_empty()) {
        order.extend(
            queues
                .iter_mut()
                .filter_map(|q| q.pop_front().map(|(_, d)| d)),
        );
        turn += 1;
    }
    let held = queues.into_iter().flatten().map(|(_, d)| d).collect();
    (order, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn due(merchant: &str, n: u32, at: &str) -> DueItem {
        let mut item = crate::adapters::store::Item::new();
        item.insert(keys::DUESK.into(), AttributeValue::S(at.into()));
        DueItem {
            key: keys::Key {
                pk: format!("M#{merchant}"),
                sk: format!("FOLLOWUP#{n}"),
            },
            item,
        }
    }

    fn names(items: &[DueItem]) -> Vec<String> {
        items
            .iter()
            .map(|d| format!("{}{}", &d.key.pk[2..], &d.key.sk[9..]))
            .collect()
    }

    #[test]
    fn merchants_take_turns_in_due_order_starting_with_the_longest_waiting() {
        let items = vec![
            due("a", 1, "20261130T100000"),
            due("a", 2, "20261130T090000"),
            due("a", 3, "20261130T110000"),
            due("b", 1, "20261130T095000"),
            due("c", 1, "20261130T080000"),
            due("c", 2, "20261130T120000"),
        ];
        let (order, held) = take_turns(items, None);
        assert_eq!(names(&order), ["c1", "a2", "b1", "c2", "a1", "a3"]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_quota_holds_back_only_the_noisy_merchants_excess() {
        let mut items: Vec<DueItem> = (0..50).map(|n| due("noisy", n, "20261130T08")).collect();
        items.push(due("quiet", 0, "20261130T09"));
        items.push(due("calm", 0, "20261130T10"));
        let (order, held) = take_turns(items, Some(3));
        assert_eq!(order.len(), 5);
        assert_eq!(held.len(), 47);
        // Every merchant's first item comes before any merchant's second.
        let firsts: Vec<_> = names(&order[..3])
            .into_iter()
            .map(|n| n[..4].to_owned())
            .collect();
        assert_eq!(firsts, ["nois", "quie", "calm"]);
        assert!(held.iter().all(|d| d.key.pk == "M#noisy"));
    }

    #[test]
    fn nothing_is_lost_or_repeated_whatever_the_mix() {
        let mut items = Vec::new();
        for (m, count) in [("a", 7), ("b", 0), ("c", 13), ("d", 1)] {
            for n in 0..count {
                items.push(due(m, n, &format!("2026113{}T{n:02}", n % 3)));
            }
        }
        for quota in [None, Some(1), Some(2), Some(5), Some(100)] {
            let (order, held) = take_turns(items.clone(), quota);
            let mut all = names(&order);
            all.extend(names(&held));
            let mut expected = names(&items);
            all.sort();
            expected.sort();
            assert_eq!(all, expected, "quota {quota:?}");
        }
    }
}
