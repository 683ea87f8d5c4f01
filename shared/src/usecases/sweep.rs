//! What every scheduled sweep over the due index shares: read the group's due items (never the
//! table), work on them with bounded concurrency, stop taking items near the deadline (they stay
//! due for the next run), count failures, and fail the invocation when any item failed, so the
//! alarm fires and the schedule's retry picks the items up. The work on one item is the caller's.
//!
//! Merchants take turns: each merchant's items in due order, one merchant's next item only after
//! every other merchant with items left has had its turn, so one merchant's backlog never delays
//! another's first email. `AFTERCARE_SWEEP_MERCHANT_QUOTA` caps what one merchant gets per run.

use crate::clock::Clock;
use crate::lambda::error::HandlerError;
use crate::ports::{Due, DueGroup, DueWork, StoreError};
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
pub struct Sweeper<'a, D = crate::adapters::store::Store> {
    pub store: &'a D,
    pub clock: &'a dyn Clock,
    /// Items one merchant gets per run (`AFTERCARE_SWEEP_MERCHANT_QUOTA`); `None` is no cap.
    pub merchant_quota: Option<usize>,
    /// Items worked on at once (`AFTERCARE_SWEEP_CONCURRENCY`).
    pub concurrency: usize,
}

impl<D> Clone for Sweeper<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for Sweeper<'_, D> {}

/// Runs `work` on every item of `group` due now (looking `lookback_days` UTC days back) and hands
/// each outcome to `tally`; items not started before the deadline margin count as `left_due`.
pub async fn run<T, D, O, F, Fut>(
    app: Sweeper<'_, D>,
    group: DueGroup,
    lookback_days: u32,
    deadline: Deadline,
    left_due: O,
    work: F,
    mut tally: impl FnMut(O),
) -> Result<Swept, HandlerError>
where
    T: serde::de::DeserializeOwned + Send,
    D: DueWork,
    O: Copy,
    F: Fn(Due<T>) -> Fut,
    Fut: Future<Output = Result<O, StoreError>>,
{
    let now = app.clock.now();
    let (items, items_read) = app.store.due(group, now, lookback_days).await?;
    let due = items.len();
    let (items, held) = take_turns(items, app.merchant_quota);
    let over_quota = held.len();
    for _ in &held {
        tally(left_due);
    }
    if over_quota > 0 {
        tracing::warn!(
            group = group.as_str(),
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
            let key = item.token.to_string();
            work(item).await.map_err(|e| {
                tracing::error!(key = %key, group = group.as_str(), error = %e, "due item failed; it stays due");
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
/// by due time, merchants in turn starting with the one waiting longest, at most `quota` items per
/// merchant.
pub fn take_turns<T>(items: Vec<Due<T>>, quota: Option<usize>) -> (Vec<Due<T>>, Vec<Due<T>>) {
    let mut by_merchant: BTreeMap<String, Vec<(String, Due<T>)>> = BTreeMap::new();
    for item in items {
        by_merchant
            .entry(item.merchant.to_string())
            .or_default()
            .push((item.token.due_order().to_owned(), item));
    }
    let mut queues: Vec<VecDeque<(String, Due<T>)>> = by_merchant
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
    use crate::domain::MerchantId;
    use crate::ports::DueToken;

    fn due(merchant: &str, n: u32, at: &str) -> Due<()> {
        Due {
            merchant: MerchantId::parse("m", merchant).unwrap(),
            token: DueToken {
                pk: format!("M#{merchant}"),
                sk: format!("FOLLOWUP#{n}"),
                seen: at.into(),
            },
            entry: Ok(()),
        }
    }

    fn clone(items: &[Due<()>]) -> Vec<Due<()>> {
        items
            .iter()
            .map(|d| Due {
                merchant: d.merchant.clone(),
                token: d.token.clone(),
                entry: Ok(()),
            })
            .collect()
    }

    fn names(items: &[Due<()>]) -> Vec<String> {
        items
            .iter()
            .map(|d| format!("{}{}", d.merchant, &d.token.sk[9..]))
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
        let mut items: Vec<Due<()>> = (0..50).map(|n| due("noisy", n, "20261130T08")).collect();
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
        assert!(held.iter().all(|d| d.merchant.as_str() == "noisy"));
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
            let (order, held) = take_turns(clone(&items), quota);
            let mut all = names(&order);
            all.extend(names(&held));
            let mut expected = names(&items);
            all.sort();
            expected.sort();
            assert_eq!(all, expected, "quota {quota:?}");
        }
    }
}

/// The driver on the in-memory due index: turns, quota, deadline margin and failures, no network.
#[cfg(test)]
mod driver_tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::MerchantId;
    use crate::testing::MemDue;
    use jiff::{SignedDuration, Timestamp};
    use std::sync::Mutex;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Done {
        Worked,
        LeftDue,
    }

    fn now() -> Timestamp {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    fn m(name: &str) -> MerchantId {
        MerchantId::parse("m", name).unwrap()
    }

    fn index() -> MemDue {
        let due = MemDue::new();
        for (merchant, n, minutes_ago) in [
            ("noisy", 1, 50),
            ("noisy", 2, 40),
            ("noisy", 3, 30),
            ("noisy", 4, 20),
            ("calm", 1, 10),
        ] {
            let at = now() - SignedDuration::from_mins(minutes_ago);
            due.add(
                DueGroup::FollowUps,
                &m(merchant),
                &format!("{merchant}-{n}"),
                at,
                &format!("{merchant}-{n}"),
            );
        }
        // Not due yet, and due in another group: neither is read.
        due.add(
            DueGroup::FollowUps,
            &m("calm"),
            "later",
            now() + SignedDuration::from_mins(5),
            &"later",
        );
        due.add(DueGroup::Renewals, &m("calm"), "renewal", now(), &"renewal");
        due
    }

    fn sweeper<'a>(
        due: &'a MemDue,
        clock: &'a ManualClock,
        quota: Option<usize>,
    ) -> Sweeper<'a, MemDue> {
        Sweeper {
            store: due,
            clock,
            merchant_quota: quota,
            concurrency: 1,
        }
    }

    /// Runs the driver over the follow-up group of [`index`], collecting what each item came to.
    async fn drive<F, Fut>(quota: Option<usize>, deadline: Deadline, work: F) -> (Swept, Vec<Done>)
    where
        F: Fn(Due<String>) -> Fut,
        Fut: Future<Output = Result<Done, StoreError>>,
    {
        let (due, clock) = (index(), ManualClock::new(now()));
        let mut tally = Vec::new();
        let sweeper = sweeper(&due, &clock, quota);
        let swept = run(
            sweeper,
            DueGroup::FollowUps,
            1,
            deadline,
            Done::LeftDue,
            work,
            |d| tally.push(d),
        )
        .await
        .unwrap();
        (swept, tally)
    }

    fn minute() -> Deadline {
        Deadline::after(Duration::from_secs(60))
    }

    #[tokio::test]
    async fn every_due_item_is_worked_once_merchants_in_turn_and_nothing_else_is_read() {
        let seen = Mutex::new(Vec::new());
        let (swept, tally) = drive(None, minute(), |item| {
            let seen = &seen;
            async move {
                seen.lock().unwrap().push(item.entry?);
                Ok(Done::Worked)
            }
        })
        .await;
        assert_eq!((swept.due, swept.items_read, swept.errors), (5, 5, 0));
        // The noisy merchant's backlog does not keep the calm one waiting behind all of it.
        assert_eq!(
            *seen.lock().unwrap(),
            ["noisy-1", "calm-1", "noisy-2", "noisy-3", "noisy-4"]
        );
        assert_eq!(tally, [Done::Worked; 5]);
    }

    #[tokio::test]
    async fn a_quota_leaves_a_merchants_excess_due_for_the_next_run() {
        let (swept, tally) = drive(Some(2), minute(), |_| async { Ok(Done::Worked) }).await;
        assert_eq!(swept.over_quota, 2);
        assert_eq!(tally.iter().filter(|d| **d == Done::LeftDue).count(), 2);
        assert_eq!(tally.iter().filter(|d| **d == Done::Worked).count(), 3);
    }

    #[tokio::test]
    async fn no_item_is_started_inside_the_deadline_margin() {
        let margin = Deadline::after(STOP_MARGIN / 2);
        let (swept, tally) = drive(None, margin, |_| async { Ok(Done::Worked) }).await;
        assert_eq!(swept.due, 5);
        assert_eq!(tally, [Done::LeftDue; 5]);
        assert!(swept.finish("follow-up", ()).is_ok());
    }

    #[tokio::test]
    async fn a_failed_item_stays_due_and_fails_the_invocation_after_the_rest_ran() {
        let (swept, tally) = drive(None, minute(), |item| async move {
            if item.entry? == "noisy-2" {
                return Err(StoreError::Transient {
                    operation: "UpdateItem",
                    source: "throttled".into(),
                });
            }
            Ok(Done::Worked)
        })
        .await;
        assert_eq!((swept.due, swept.errors), (5, 1));
        assert_eq!(tally.len(), 4, "the other items were worked");
        let err = swept.finish("follow-up", ()).unwrap_err();
        assert_eq!(err.error_type, "Transient");
    }

    #[tokio::test]
    async fn a_malformed_item_reaches_the_work_as_an_error_to_decide_on() {
        let (due, clock) = (MemDue::new(), ManualClock::new(now()));
        due.add(DueGroup::Dunning, &m("acme"), "inv-1", now(), &42);
        let mut entries = Vec::new();
        run(
            sweeper(&due, &clock, None),
            DueGroup::Dunning,
            1,
            Deadline::after(Duration::from_secs(60)),
            false,
            |item: Due<String>| async move { Ok(item.entry.is_err()) },
            |malformed| entries.push(malformed),
        )
        .await
        .unwrap();
        assert_eq!(entries, [true]);
    }

    #[tokio::test]
    async fn the_lookback_reaches_missed_days_and_no_further() {
        let due = MemDue::new();
        for days in [0, 1, 2, 5] {
            let at = now() - SignedDuration::from_hours(24 * days);
            due.add(
                DueGroup::Renewals,
                &m("acme"),
                &format!("d{days}"),
                at,
                &days,
            );
        }
        let (items, _) = due.due::<i64>(DueGroup::Renewals, now(), 3).await.unwrap();
        let mut days: Vec<i64> = items.into_iter().filter_map(|d| d.entry.ok()).collect();
        days.sort();
        assert_eq!(days, [0, 1, 2]);
    }
}
