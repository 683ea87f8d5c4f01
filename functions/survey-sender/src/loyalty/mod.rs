//! Loyalty notices: the second half of the scheduled sweep, over the `loyalty` group of the due
//! index.
//!
//! * A **referral reward** notice comes due when the reward should be available. The sweep reads
//!   the referrer's ledger: still pending (delivery moved the window) → moved to the new instant;
//!   reversed (the referee returned the order) → closed; otherwise the referrer gets the reward
//!   email, once (send claim keyed by the reward's source).
//! * An **expiry notice** comes due 14 days before the customer's points expire (N months after
//!   their last order). The sweep re-reads the profile: a newer order moves it; otherwise, with
//!   points available, the customer is told (once per inactivity period), and the item moves to
//!   the expiry instant, when the sweep posts the expiry through the versioned ledger write.
//!
//! Every step re-derives its decision from what is stored, so a replayed, concurrent or late
//! sweep never sends twice nor expires points a newer order kept.

use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::loyalty::{Decided, LoyaltyNotice, LoyaltyState, NoticeKind};
use aftercare::app::App;
use aftercare::domain::Merchant;
use aftercare::domain::customer::CustomerProfile;
use aftercare::domain::loyalty::{
    self, LedgerKind, balance, expire, expires_at, expiry_notice_at, expiry_source, tier_status,
};
use aftercare::domain::send::{SendIdentity, SendStatus};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::MerchantDirectory as _;
use aftercare::ports::{Due, DueGroup, DueWork as _, StoreError};
use aftercare::usecases::send::{Deadline, Pacer, SendOutcome};
use aftercare::usecases::sweep::Swept;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

mod mail;

use mail::*;

/// How many UTC days back the sweep looks for notices it has not finished.
pub const LOOKBACK_DAYS: u32 = 14;

/// What the loyalty half of a sweep did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct LoyaltyReport {
    pub due: usize,
    pub items_read: u64,
    /// Referral-reward and expiry-notice emails sent.
    pub sent: usize,
    /// Customers whose available points expired.
    pub expired: usize,
    /// Notices moved to a later instant (a later delivery or order; a notice sent, its expiry next).
    pub moved: usize,
    /// Notices closed with nothing to send (reversed reward, no points, suppressed address…).
    pub closed: usize,
    pub taken_by_other_sweep: usize,
    pub left_for_next_run: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Expired,
    Moved,
    Closed,
    Taken,
    LeftDue,
}

/// Sweeps the loyalty notices due now.
pub async fn sweep(
    app: &App,
    pacer: &Pacer,
    deadline: Deadline,
) -> Result<(LoyaltyReport, Swept), HandlerError> {
    let mut report = LoyaltyReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::Loyalty,
        LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move { process(app, pacer, &due, deadline).await },
        |outcome| match outcome {
            Outcome::Sent => report.sent += 1,
            Outcome::Expired => report.expired += 1,
            Outcome::Moved => report.moved += 1,
            Outcome::Closed => report.closed += 1,
            Outcome::Taken => report.taken_by_other_sweep += 1,
            Outcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    Ok((report, swept))
}

/// One due notice, with what the sweep saw of it.
struct Notice<'a> {
    item: &'a Due<LoyaltyNotice>,
    notice: &'a LoyaltyNotice,
    merchant: std::sync::Arc<Merchant>,
}

/// Takes `item` out of the due index with nothing (more) to do, saying why.
async fn close<T>(app: &App, item: &Due<T>, why: &str) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    Ok(match app.store.complete_due(&item.token, why, now).await? {
        true => Outcome::Closed,
        false => Outcome::Taken,
    })
}

impl Notice<'_> {
    async fn close(&self, app: &App, why: &str) -> Result<Outcome, StoreError> {
        close(app, self.item, why).await
    }

    async fn finish(&self, app: &App, why: &str, done: Outcome) -> Result<Outcome, StoreError> {
        let now = app.clock.now();
        app.store.complete_due(&self.item.token, why, now).await?;
        Ok(done)
    }

    async fn move_to(
        &self,
        app: &App,
        kind: NoticeKind,
        at: Timestamp,
    ) -> Result<Outcome, StoreError> {
        Ok(
            match app
                .store
                .reschedule_notice(&self.item.token, &kind, at)
                .await?
            {
                true => Outcome::Moved,
                false => Outcome::Taken,
            },
        )
    }
}

async fn process(
    app: &App,
    pacer: &Pacer,
    item: &Due<LoyaltyNotice>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let Ok(notice) = &item.entry else {
        tracing::error!(key = %item.token, "malformed loyalty notice; closed");
        return close(app, item, "malformed").await;
    };
    let Some(merchant) = app.merchants.merchant(&item.merchant).await? else {
        return close(app, item, "no_merchant").await;
    };
    let due = Notice {
        item,
        notice,
        merchant,
    };
    if !due.merchant.settings.loyalty.enabled {
        return due.close(app, "programme_off").await;
    }
    match due.notice.kind {
        NoticeKind::ReferralReward => referral_reward(app, pacer, &due, deadline).await,
        NoticeKind::ExpiryNotice | NoticeKind::Expiry => expiry(app, pacer, &due, deadline).await,
    }
}

async fn referral_reward(
    app: &App,
    pacer: &Pacer,
    due: &Notice<'_>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let m = &due.merchant.id;
    let c = &due.notice.customer_id;
    let Some(source) = due.notice.source.as_deref() else {
        return due.close(app, "malformed").await;
    };
    let state = app.store.loyalty(m, c).await?;
    let Some(reward) = state
        .entries
        .iter()
        .find(|e| e.kind == LedgerKind::Earn && e.source == source)
    else {
        return due.close(app, "no_reward").await;
    };
    if let Some(at) = reward.available_at.filter(|at| now < *at) {
        return due.move_to(app, NoticeKind::ReferralReward, at).await;
    }
    let points = loyalty::net_points(&state.entries, reward);
    if points <= 0 {
        return due.close(app, "reversed").await;
    }
    let data = json!({"reward": {"points": points}});
    let sent = tell(
        app,
        pacer,
        due,
        &state,
        EmailKind::LoyaltyReferralReward,
        source,
        data,
        deadline,
    )
    .await?;
    match sent {
        Told::Sent => due.finish(app, "sent", Outcome::Sent).await,
        Told::Settled => due.finish(app, "sent", Outcome::Taken).await,
        Told::Nobody(why) => due.close(app, why).await,
        Told::Later(o) => Ok(o),
    }
}

async fn expiry(
    app: &App,
    pacer: &Pacer,
    due: &Notice<'_>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let now = app.clock.now();
    let m = &due.merchant.id;
    let c = &due.notice.customer_id;
    let settings = &due.merchant.settings.loyalty;
    let Some(last_order) = app.store.last_order_at(m, c).await? else {
        return due.close(app, "no_orders").await;
    };
    let Some(expires) = expires_at(last_order, settings) else {
        return due.close(app, "expiry_off").await;
    };
    let notice_at = expiry_notice_at(expires);
    if now < notice_at {
        // A newer order (or a longer period) moved the expiry on.
        return due.move_to(app, NoticeKind::ExpiryNotice, notice_at).await;
    }
    if now < expires {
        if due.notice.kind == NoticeKind::Expiry {
            return due.move_to(app, NoticeKind::Expiry, expires).await;
        }
        let state = app.store.loyalty(m, c).await?;
        let points = balance(&state.entries, now).available;
        if points > 0 {
            let data = json!({"expiry": {"points": points, "expires_at": expires}});
            let subject = expiry_source(last_order);
            let told = tell(
                app,
                pacer,
                due,
                &state,
                EmailKind::LoyaltyPointsExpiring,
                &subject,
                data,
                deadline,
            )
            .await?;
            if let Told::Later(o) = told {
                return Ok(o);
            }
            let moved = due.move_to(app, NoticeKind::Expiry, expires).await?;
            return Ok(match (told, moved) {
                (Told::Sent, Outcome::Moved) => Outcome::Sent,
                (_, moved) => moved,
            });
        }
        return due.move_to(app, NoticeKind::Expiry, expires).await;
    }
    // Expiry: everything available now goes, unless an order earned after the expiry instant
    // shows up on the ledger (it was placed while this sweep read the profile).
    let source = expiry_source(last_order);
    let decided = app
        .store
        .decide_and_post(m, c, now, &[], |state| {
            let ordered_since = state.entries.iter().any(|e| {
                e.kind == LedgerKind::Earn
                    && e.source.starts_with("order:")
                    && e.created_at >= expires
            });
            (!ordered_since)
                .then(|| expire(&state.entries, now, source.clone()))
                .flatten()
        })
        .await?;
    match decided {
        Decided::Posted { entry, .. } => {
            tracing::info!(customer = %c, points = -entry.points, "points expired");
            due.finish(app, "expired", Outcome::Expired).await
        }
        Decided::Declined(_) | Decided::Duplicate(_) | Decided::ExtraRefused(_) => {
            due.close(app, "nothing_to_expire").await
        }
        Decided::Busy => Ok(Outcome::LeftDue),
    }
}

fn locale_of(profile: &CustomerProfile, merchant: &Merchant) -> aftercare::domain::Locale {
    profile
        .locale
        .as_deref()
        .and_then(aftercare::domain::Locale::from_tag)
        .unwrap_or(merchant.default_locale)
}
