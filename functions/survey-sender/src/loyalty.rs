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
//!
//! Also here: the "points now available" note of the next marketing email.

use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::loyalty::{Decided, LoyaltyNotice, LoyaltyState, NoticeKind};
use aftercare::app::App;
use aftercare::domain::customer::CustomerProfile;
use aftercare::domain::loyalty::{
    self, LedgerKind, balance, expire, expires_at, expiry_notice_at, expiry_source,
    newly_available, tier_status,
};
use aftercare::domain::send::{SendIdentity, SendStatus};
use aftercare::domain::{CustomerId, Merchant};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::send::{Deadline, Pacer, SendOutcome};
use aftercare::usecases::sweep::Swept;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

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
    let Some(merchant) = app.tenancy.merchant(&item.merchant).await? else {
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

/// What became of telling the customer.
enum Told {
    /// This sweep sent it.
    Sent,
    /// An earlier attempt did (or gave up on it for good).
    Settled,
    /// Nobody to tell: why.
    Nobody(&'static str),
    /// Not now: the item stays (or is held) as this outcome says.
    Later(Outcome),
}

/// Sends `kind` to the notice's customer once (claim keyed by `subject`), with their balance and
/// tier beside `data`.
#[allow(clippy::too_many_arguments)]
async fn tell(
    app: &App,
    pacer: &Pacer,
    due: &Notice<'_>,
    state: &LoyaltyState,
    kind: EmailKind,
    subject: &str,
    mut data: Value,
    deadline: Deadline,
) -> Result<Told, StoreError> {
    let now = app.clock.now();
    let m = &due.merchant.id;
    let c = &due.notice.customer_id;
    let Some(mut profile) = app.store.get_customer_profile(m, c).await? else {
        return Ok(Told::Nobody("no_customer"));
    };
    app.store
        .get_contact(m, c)
        .await?
        .choose(&mut profile.locale, &mut profile.time_zone);
    if !pacer.slot(deadline).await {
        return Ok(Told::Later(Outcome::LeftDue));
    }
    let merchant = &due.merchant;
    let status = tier_status(
        &state.entries,
        &merchant.settings.loyalty,
        now,
        &merchant.zone(),
    );
    data["customer"] = json!({"greeting_name": profile.first_name});
    if let Some(at) = data["expiry"]["expires_at"]
        .as_str()
        .and_then(|a| a.parse::<Timestamp>().ok())
    {
        let zone = profile.time_zone.as_deref().unwrap_or(&merchant.time_zone);
        data["expiry"]["expires_on"] = long_date(at, zone, locale_of(&profile, merchant)).into();
    }
    data["balance"] = json!({
        "available": balance(&state.entries, now).available,
        "tier": status.and_then(|s| s.current).map(|t| t.name),
    });
    let key = SendIdentity::new(m, c, kind, subject, 0);
    let record = key.claim(
        profile.email.as_str(),
        now,
        deadline.lease_until(app.clock.as_ref()),
    );
    let expires = app.send_expiry(&due.merchant, now);
    let build = || compose(app, merchant, &profile, kind, &data, &key.reference());
    let outcome = app
        .courier()
        .claim_and_send(&key, &record, expires, deadline, build)
        .await?;
    Ok(match outcome {
        SendOutcome::Sent { .. } => Told::Sent,
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            Told::Nobody("suppressed")
        }
        SendOutcome::Settled(SendStatus::InProgress) | SendOutcome::InProgress => {
            Told::Later(Outcome::Taken)
        }
        SendOutcome::Settled(_) | SendOutcome::Ambiguous | SendOutcome::Rejected { .. } => {
            Told::Settled
        }
        SendOutcome::RetryLater { reason } => {
            tracing::warn!(
                reason,
                kind = kind.as_str(),
                "loyalty notice not sent now; stays due"
            );
            Told::Later(Outcome::LeftDue)
        }
    })
}

fn compose(
    app: &App,
    merchant: &Merchant,
    profile: &CustomerProfile,
    kind: EmailKind,
    data: &Value,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let locale = locale_of(profile, merchant);
    let rendered = app
        .renderer
        .render(kind, locale, merchant, data)
        .inspect_err(
            |e| tracing::error!(error = ?e, kind = kind.as_str(), "loyalty email failed to render"),
        )
        .ok()?;
    let name = match (&profile.first_name, &profile.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.clone().or_else(|| l.clone()),
    };
    let to = Mailbox::new(name.as_deref(), profile.email.clone());
    Some(OutgoingEmail::compose(
        merchant, to, kind, rendered, send_ref, None,
    ))
}

/// The "points now available" note of a marketing email: points that became available since
/// the customer was last told, their balance and tier. `None` when there is nothing new.
#[derive(Debug, Clone, Serialize)]
pub struct PointsNote {
    pub newly: i64,
    pub available: i64,
    pub tier: Option<String>,
}

/// Reads the customer's ledger (one Query) for the note; nothing when the programme is off.
pub async fn points_note(
    app: &App,
    merchant: &Merchant,
    customer: &CustomerId,
    now: Timestamp,
) -> Result<Option<PointsNote>, StoreError> {
    let settings = &merchant.settings.loyalty;
    if !settings.enabled {
        return Ok(None);
    }
    let state = app.store.loyalty(&merchant.id, customer).await?;
    let newly = newly_available(&state.entries, state.noted_through, now);
    let available = balance(&state.entries, now).available;
    if newly <= 0 || available <= 0 {
        return Ok(None);
    }
    let tier = tier_status(&state.entries, settings, now, &merchant.zone())
        .and_then(|s| s.current)
        .map(|t| t.name);
    Ok(Some(PointsNote {
        newly: newly.min(available),
        available,
        tier,
    }))
}
