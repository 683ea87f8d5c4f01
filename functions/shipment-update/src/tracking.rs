//! Shipments and their checkpoints: creating a shipment (and its "shipped" email), recording a
//! checkpoint (the state advances monotonically; each milestone is emailed once), and what the
//! delivery of the whole order sets off (the journey anchored, the points' return window rebased).

use super::*;

pub(crate) async fn create_shipment(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
    input: ShipmentInput,
    deadline: Deadline,
) -> Result<(bool, Value), ApiError> {
    let order = app
        .store
        .get_order(&merchant.id, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the order"))?;
    let now = app.clock.now();
    let content_hash = input.content_hash();
    let shipment = input.validate_for(&order.order, now)?;
    let customer = order.order.customer.clone();
    let record = ShipmentRecord::new(
        merchant.id.clone(),
        shipment,
        customer.clone(),
        content_hash,
        now,
    );
    let sh = &record.shipment;
    let mut due = vec![(
        "fallback",
        merchant.settings.journey.fallback_anchor(sh.shipped_at),
    )];
    if let Some(at) = sh
        .promised_date
        .and_then(|d| late_after(d, &merchant.time_zone))
    {
        due.push(("late", at));
    }
    let kind = EmailKind::ShipmentShipped;
    let (key, claim) = milestone_claim(
        app,
        &merchant.id,
        &customer,
        kind,
        &sh.id,
        customer.email.as_str(),
        deadline,
    );
    let expires = app.send_expiry(merchant, now);
    let courier = app.courier();
    match app
        .store
        .create_shipment(&record, &due, (&key, &claim), expires)
        .await?
    {
        CreateOutcome::Created { suppressed } => {
            tracing::info!(shipment_id = %sh.id, order_id = %order_id, suppressed, "shipment created");
            let email = match suppressed {
                true => None,
                false => Some(shipment_email(app, merchant, &record, kind, None)),
            };
            let outcome = match email {
                None => SendOutcome::Suppressed,
                Some(Some(email)) => {
                    courier
                        .send_claimed(&key, &claim.claim_token, &email, deadline)
                        .await?
                }
                Some(None) => {
                    courier
                        .abandon(&key, &claim.claim_token, "the email could not be rendered")
                        .await?
                }
            };
            redelivery(&outcome)?;
            Ok((true, shipment_view(&record, &[], Some(&outcome))))
        }
        CreateOutcome::AlreadyExists => {
            let stored = app.store.get_shipment(&merchant.id, &sh.id).await?;
            let Some(stored) = stored.filter(|s| {
                s.content_hash == record.content_hash && s.shipment.order_id == *order_id
            }) else {
                return Err(ApiError::new(
                    409,
                    "idempotency_conflict",
                    "a different shipment with this id exists",
                )
                .field("id"));
            };
            let outcome = match app.store.get_send(&key).await? {
                Some(send) => {
                    courier
                        .resume(&key, &send, deadline, || {
                            shipment_email(app, merchant, &stored, kind, None)
                        })
                        .await?
                }
                None => SendOutcome::Settled(SendStatus::Sent),
            };
            redelivery(&outcome)?;
            let history = app.store.shipment_history(&merchant.id, &sh.id).await?;
            Ok((false, shipment_view(&stored, &history, Some(&outcome))))
        }
    }
}

/// Not sent yet and worth another try: the caller's trigger should redeliver.
pub(crate) fn redelivery(outcome: &SendOutcome) -> Result<(), ApiError> {
    if outcome.wants_redelivery() {
        Err(ApiError::unavailable(
            "stored, but the email could not be sent yet; retry this request to finish",
        ))
    } else {
        Ok(())
    }
}

/// What a checkpoint did.
#[derive(Debug, Serialize)]
pub struct CheckpointResult {
    pub shipment_id: String,
    pub checkpoint_id: String,
    /// `applied` (state advanced), `recorded` (history only), `duplicate`.
    pub result: &'static str,
    pub status: Option<TrackingStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_delivered: Option<bool>,
}

pub(crate) async fn checkpoint(
    app: &App,
    merchant: &Merchant,
    shipment_id: &ShipmentId,
    input: CheckpointInput,
    webhook_replay_key: Option<&str>,
    deadline: Deadline,
) -> Result<CheckpointResult, ApiError> {
    let cp = input.validate()?;
    // The shipment names the customer (for the email's claim and content); consistent read.
    let record = app
        .store
        .get_shipment(&merchant.id, shipment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the shipment"))?;
    let now = app.clock.now();
    let milestone = cp.status.milestone().map(milestone_kind);
    let claimed = milestone.map(|kind| {
        milestone_claim(
            app,
            &merchant.id,
            &record.customer,
            kind,
            shipment_id,
            record.customer.email.as_str(),
            deadline,
        )
    });
    let delivered = cp.status == TrackingStatus::Delivered;
    let new = NewCheckpoint {
        merchant_id: &merchant.id,
        shipment_id,
        checkpoint: &cp,
        claim: claimed.as_ref().map(|(k, r)| (k, r)),
        send_expires_at: app.send_expiry(merchant, now),
        delivered_order: delivered.then_some(&record.shipment.order_id),
        webhook_replay_key,
        now,
    };
    let outcome = app.store.record_checkpoint(&new).await?;
    let mut state = record.state();
    let mut result = CheckpointResult {
        shipment_id: shipment_id.to_string(),
        checkpoint_id: cp.id.clone(),
        result: "recorded",
        status: state.status(),
        email: None,
        order_delivered: None,
    };
    match outcome {
        // A signed request seen before is the sender's redelivery (or a captured copy): it
        // changes nothing and answers like any duplicate, so a sender retrying after a lost
        // answer sees success instead of an authentication failure that would page someone.
        CheckpointOutcome::Duplicate | CheckpointOutcome::ReplayedSignature => {
            result.result = "duplicate"
        }
        CheckpointOutcome::HistoryOnly => {}
        CheckpointOutcome::UnknownShipment => return Err(ApiError::not_found("the shipment")),
        CheckpointOutcome::Advanced {
            claimed: holds,
            suppressed,
        } => {
            state.apply(cp.status, cp.occurred_at);
            result.result = "applied";
            result.status = state.status();
            tracing::info!(shipment_id = %shipment_id, status = cp.status.as_str(), suppressed, "checkpoint applied");
            if suppressed {
                result.email = Some(SendOutcome::Suppressed.as_str());
            }
            if let (true, Some(kind), Some((key, claim))) = (holds, milestone, &claimed) {
                let courier = app.courier();
                let sent = match shipment_email(app, merchant, &record, kind, Some(&cp)) {
                    Some(email) => {
                        courier
                            .send_claimed(key, &claim.claim_token, &email, deadline)
                            .await?
                    }
                    None => {
                        courier
                            .abandon(key, &claim.claim_token, "the email could not be rendered")
                            .await?
                    }
                };
                result.email = Some(sent.as_str());
                redelivery(&sent)?;
            }
            if delivered {
                result.order_delivered =
                    Some(order_delivered(app, merchant, &record.shipment.order_id).await?);
            }
        }
    }
    Ok(result)
}

/// When every shipment of the order is delivered, anchors the journey at the last delivery.
pub(crate) async fn order_delivered(
    app: &App,
    merchant: &Merchant,
    order_id: &OrderId,
) -> Result<bool, ApiError> {
    let pointers = app.store.order_shipments(&merchant.id, order_id).await?;
    let deliveries: Option<Vec<Timestamp>> = pointers.iter().map(|p| p.delivered_at).collect();
    let Some(last) = deliveries.and_then(|d| d.into_iter().max()) else {
        return Ok(false);
    };
    let Some(order) = app.store.get_order(&merchant.id, order_id).await? else {
        return Ok(true);
    };
    let schedule = merchant.settings.journey.schedule(last);
    if app
        .store
        .anchor_journey(
            &order,
            last,
            AnchorReason::Delivered,
            &schedule,
            app.clock.now(),
        )
        .await?
    {
        tracing::info!(order_id = %order_id, follow_ups = schedule.len(), "order delivered; journey scheduled");
    }
    rebase_points(app, merchant, &order, last).await?;
    Ok(true)
}

/// Counts the return window of the order's points (and of the reward of whoever referred it)
/// from delivery rather than the order date. Idempotent: a redelivered update changes nothing.
pub(crate) async fn rebase_points(
    app: &App,
    merchant: &Merchant,
    order: &aftercare::adapters::store::orders::OrderRecord,
    delivered: Timestamp,
) -> Result<(), ApiError> {
    use aftercare::domain::loyalty::{available_at, order_source, referral_source};
    let settings = &merchant.settings.loyalty;
    if !settings.enabled {
        return Ok(());
    }
    let until = available_at(delivered, settings);
    let id = order.order.id.as_str();
    let earns = [
        (order.points_earned > 0).then(|| (&order.order.customer.id, order_source(id))),
        order.referred_by.as_ref().map(|r| (r, referral_source(id))),
    ];
    for (customer, source) in earns.into_iter().flatten() {
        let now = app.clock.now();
        let rebased = app
            .store
            .rebase_earn(&merchant.id, customer, &source, until, now)
            .await?;
        tracing::info!(source, available_at = %until, outcome = ?rebased, "points' return window counted from delivery");
    }
    Ok(())
}
