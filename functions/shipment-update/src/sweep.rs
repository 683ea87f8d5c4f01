//! The scheduled sweep over the shipment group of the due index, through the shared sweep driver
//! (merchants in turn, the per-merchant quota, bounded concurrency, the deadline margin):
//!
//! * `late`: the promised date passed. Unless the parcel is out for delivery (or further), the
//!   customer is told it is running late and the merchant is alerted, once each.
//! * `fallback`: no delivery scan within the fallback window. The journey is anchored to
//!   shipping + N days, so the follow-ups still go.
//!
//! A check whose email could not be sent yet stays due for the next run; one that fails counts as
//! an error (the invocation fails when the run ends, so the alarm fires and the schedule retries).

use crate::{App, SWEEP_LOOKBACK_DAYS, email_data, milestone_claim, shipment_email};
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::shipments::ShipmentDue;
use aftercare::domain::followup::AnchorReason;
use aftercare::domain::ids::ShipmentId;
use aftercare::domain::{Merchant, OrderId};
use aftercare::lambda::error::HandlerError;
use aftercare::ports::MerchantDirectory as _;
use aftercare::ports::{Due, DueGroup, StoreError};
use aftercare::usecases::send::Deadline;
use serde::Serialize;
use serde_json::Value;

/// What a sweep did.
#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    pub due: usize,
    /// Due-index items read to find them (≈ `due`, never the table).
    pub items_read: u64,
    pub late_notices: usize,
    pub journeys_anchored: usize,
    pub not_needed: usize,
    pub skipped_by_other_sweep: usize,
    /// Not started before the deadline margin, over the merchant's quota, or an email that could
    /// not be sent yet: due again next run.
    pub left_for_next_run: usize,
    pub errors: usize,
}

/// What one due check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    LateNotice,
    Anchored,
    NotNeeded,
    /// A check of a kind this version does not know; taken out of the index.
    Unknown,
    Taken,
    LeftDue,
}

impl Outcome {
    /// How the check is recorded when it is taken out of the index.
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::LateNotice => "late_notice",
            Outcome::Anchored => "anchored",
            Outcome::Unknown => "unknown_check",
            Outcome::NotNeeded | Outcome::Taken | Outcome::LeftDue => "not_needed",
        }
    }
}

/// The scheduled sweep over the shipment group of the due index.
pub async fn sweep(app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
    let mut report = SweepReport::default();
    let swept = aftercare::usecases::sweep::run(
        app.sweeper(),
        DueGroup::ShipmentChecks,
        SWEEP_LOOKBACK_DAYS,
        deadline,
        Outcome::LeftDue,
        |due| async move { process(app, &due, deadline).await },
        |outcome| match outcome {
            Outcome::LateNotice => report.late_notices += 1,
            Outcome::Anchored => report.journeys_anchored += 1,
            Outcome::NotNeeded | Outcome::Unknown => report.not_needed += 1,
            Outcome::Taken => report.skipped_by_other_sweep += 1,
            Outcome::LeftDue => report.left_for_next_run += 1,
        },
    )
    .await?;
    report.due = swept.due;
    report.items_read = swept.items_read;
    report.errors = swept.errors;
    let report = swept.finish("shipment", report)?;
    Ok(serde_json::to_value(report).unwrap_or_default())
}

async fn process(
    app: &App,
    due: &Due<ShipmentDue>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let Ok(check) = &due.entry else {
        tracing::error!(key = %due.token, "malformed due item; left for an operator");
        return Ok(Outcome::LeftDue);
    };
    let Some(merchant) = app.merchants.merchant(&due.merchant).await? else {
        return Ok(Outcome::LeftDue);
    };
    let outcome = match check.check.as_str() {
        "late" => late_check(app, &merchant, &check.shipment_id, deadline).await?,
        "fallback" => fallback_anchor(app, &merchant, &check.order_id, &check.shipment_id).await?,
        other => {
            tracing::error!(key = %due.token, check = other, "unknown due check; taken out of the index");
            Outcome::Unknown
        }
    };
    if outcome == Outcome::LeftDue {
        return Ok(outcome);
    }
    let completed = app
        .store
        .complete_due(&due.token, outcome.as_str(), app.clock.now())
        .await?;
    Ok(if completed { outcome } else { Outcome::Taken })
}

/// The promised date passed: unless the parcel is out for delivery (or further), tell the customer
/// it is running late and alert the merchant, once each.
async fn late_check(
    app: &App,
    merchant: &Merchant,
    shipment_id: &ShipmentId,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let Some(record) = app.store.get_shipment(&merchant.id, shipment_id).await? else {
        return Ok(Outcome::NotNeeded);
    };
    if record.state().reached_final_mile() {
        return Ok(Outcome::NotNeeded);
    }
    let courier = app.courier();
    let expires = app.send_expiry(merchant, app.clock.now());
    let kind = EmailKind::ShipmentLate;
    let (key, claim) = milestone_claim(
        app,
        &merchant.id,
        &record.customer,
        kind,
        shipment_id,
        record.customer.email.as_str(),
        deadline,
    );
    let sent = courier
        .claim_and_send(&key, &claim, expires, deadline, || {
            shipment_email(app, merchant, &record, kind, None)
        })
        .await?;
    if sent.wants_redelivery() {
        return Ok(Outcome::LeftDue);
    }
    if let Some(ops) = &merchant.ops_email {
        let kind = EmailKind::MerchantLateAlert;
        let (key, claim) = milestone_claim(
            app,
            &merchant.id,
            &record.customer,
            kind,
            shipment_id,
            ops.as_str(),
            deadline,
        );
        let alert = || {
            let locale = merchant.default_locale;
            let data = email_data(merchant, &record, None, locale);
            let rendered = app.renderer.render(kind, locale, merchant, &data).ok()?;
            let to = Mailbox::new(Some(&merchant.name), ops.clone());
            Some(OutgoingEmail::compose(
                merchant,
                to,
                kind,
                rendered,
                &key.reference(),
                None,
            ))
        };
        let alerted = courier
            .claim_and_send(&key, &claim, expires, deadline, alert)
            .await?;
        if alerted.wants_redelivery() {
            return Ok(Outcome::LeftDue);
        }
    }
    Ok(Outcome::LateNotice)
}

/// No delivery scan within the fallback window: anchor the journey to shipping + N days.
async fn fallback_anchor(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    shipment_id: &ShipmentId,
) -> Result<Outcome, StoreError> {
    let Some(record) = app.store.get_shipment(&merchant.id, shipment_id).await? else {
        return Ok(Outcome::NotNeeded);
    };
    if record.state().delivered_at().is_some() {
        return Ok(Outcome::NotNeeded);
    }
    let Some(order) = app.store.get_order(&merchant.id, order_id).await? else {
        return Ok(Outcome::NotNeeded);
    };
    let anchor = merchant
        .settings
        .journey
        .fallback_anchor(record.shipment.shipped_at);
    let schedule = merchant.settings.journey.schedule(anchor);
    let anchored = app
        .store
        .anchor_journey(
            &order,
            anchor,
            AnchorReason::NoDeliveryScan,
            &schedule,
            app.clock.now(),
        )
        .await?;
    Ok(if anchored {
        Outcome::Anchored
    } else {
        Outcome::NotNeeded
    })
}
