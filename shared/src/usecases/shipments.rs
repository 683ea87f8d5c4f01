//! Shipments and their tracking, whoever reports them (the merchant API, an EventBridge event, a
//! carrier's or aggregator's webhook), and the checks the due index holds for them.
//!
//! * [`Tracking::create`]: the shipment, the order's pointer to it, its due checks (late, fallback)
//!   and the "shipped" email's claim in one all-or-nothing write, then the email, once. A replay
//!   of the same shipment answers what is stored (and finishes an email left to retry); another
//!   shipment under the same id is a [`TrackingError::Conflict`].
//! * [`Tracking::checkpoint`]: one checkpoint recorded once; the state only ever advances; each
//!   milestone is emailed once; the delivery of the order's last shipment anchors its
//!   post-delivery journey and counts the points' return window from delivery.
//! * [`Tracking::check`]: a due check of the sweep: the "running late" notice and the merchant's
//!   alert, or the journey anchored at shipping + N days when delivery was never scanned.

use crate::domain::followup::{AnchorReason, FollowUp};
use crate::domain::ids::ShipmentId;
use crate::domain::loyalty::{available_at, order_source, referral_source};
use crate::domain::order::OrderRecord;
use crate::domain::send::{EmailKind, SendIdentity, SendRecord, SendStatus};
use crate::domain::shipment::{
    Checkpoint, CheckpointInput, CheckpointOutcome, CreateOutcome, ShipmentCheck, ShipmentDue,
    ShipmentInput, ShipmentRecord, TrackingStatus, late_after,
};
use crate::domain::{FieldError, Merchant, MerchantId, OrderId};
use crate::ports::shipments::{NewCheckpoint, NewShipment, ShipmentBook};
use crate::ports::{Due, DueWork, Mailer, MerchantDirectory, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Retention, SendOutcome};
use jiff::Timestamp;
use serde::Serialize;

/// Why a shipment or checkpoint was not (wholly) recorded.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("no such order")]
    UnknownOrder,
    #[error("no such shipment")]
    UnknownShipment,
    /// A shipment with this id exists with other contents (or for another order).
    #[error("a different shipment with this id exists")]
    Conflict,
    /// Stored; the email could not be sent yet. The sender should deliver again to finish it.
    #[error("stored, but the email could not be sent yet; retry this request to finish")]
    Unsent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A shipment stored now or found stored by a replay.
#[derive(Debug)]
pub struct ShipmentCreated {
    /// This delivery wrote it.
    pub created: bool,
    pub record: ShipmentRecord,
    pub history: Vec<Checkpoint>,
    /// Where the "shipped" email stands.
    pub email: SendOutcome,
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

/// What a tracking provider's update did.
#[derive(Debug, Serialize)]
pub struct TrackResult {
    /// `applied` (at least one checkpoint new), `unchanged` (every checkpoint known),
    /// `unknown_tracking_number` (no shipment of this merchant has it: nothing stored),
    /// `ambiguous_tracking_number` (several carriers' shipments have it and the provider's carrier
    /// is none of theirs: nothing stored).
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<String>,
    /// The shipment's status after the update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TrackingStatus>,
    /// The checkpoints recorded now (known ones are skipped), each with its outcome.
    pub checkpoints: Vec<CheckpointResult>,
    /// Checkpoints the shipment refused (an implausible time), by index in the update.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// What the provider's expected date did: `revised` (with the "new delivery date" email's
    /// state when the customer is told), `unchanged`, `stale` (a concurrent update revised it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<DateResult>,
}

/// What a provider's expected delivery date did to the shipment.
#[derive(Debug, Serialize)]
pub struct DateResult {
    pub result: &'static str,
    pub date: jiff::civil::Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'static str>,
}

impl TrackResult {
    fn nothing(result: &'static str) -> Self {
        Self {
            result,
            shipment_id: None,
            status: None,
            checkpoints: Vec::new(),
            refused: Vec::new(),
            expected_date: None,
        }
    }
}

/// The shipment a provider's tracking number (and carrier) names, among the pointers stored for
/// the number: the one of the same carrier family, else the only one.
pub fn pick_shipment<'a>(
    pointers: &'a [crate::domain::shipment::TrackingPointer],
    carrier: Option<&str>,
) -> Option<&'a crate::domain::shipment::TrackingPointer> {
    use crate::domain::connectors::tracking::carrier_family;
    let family = carrier.map(carrier_family);
    pointers
        .iter()
        .find(|p| family.as_deref() == Some(p.carrier_family.as_str()))
        .or(match pointers {
            [only] => Some(only),
            _ => None,
        })
}

/// What one due shipment check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The customer was told the parcel runs late (and the merchant alerted).
    LateNotice,
    /// The journey was anchored at shipping + N days.
    Anchored,
    /// Nothing to do (out for delivery already, delivered, anchored before, gone).
    NotNeeded,
    /// A check of a kind this version does not know; taken out of the index.
    Unknown,
    /// Another sweep took it.
    Taken,
    /// Not done now; it stays due for the next run.
    LeftDue,
}

impl CheckOutcome {
    /// How the check is recorded when it is taken out of the index.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckOutcome::LateNotice => "late_notice",
            CheckOutcome::Anchored => "anchored",
            CheckOutcome::Unknown => "unknown_check",
            CheckOutcome::NotNeeded | CheckOutcome::Taken | CheckOutcome::LeftDue => "not_needed",
        }
    }
}

/// An order with its shipments (each with its checkpoints) and its scheduled follow-ups.
#[derive(Debug)]
pub struct OrderTracking {
    pub order: OrderRecord,
    pub shipments: Vec<(ShipmentRecord, Vec<Checkpoint>)>,
    pub follow_ups: Vec<FollowUp>,
}

/// Renders a shipment email of a kind (set off by the checkpoint, if any); `None` if it cannot be.
/// [`EmailKind::MerchantLateAlert`] goes to the merchant's operations address.
pub trait ComposeShipmentEmail<T>:
    Fn(&Merchant, &ShipmentRecord, EmailKind, Option<&Checkpoint>) -> Option<T> + Sync
{
}

impl<T, F> ComposeShipmentEmail<T> for F where
    F: Fn(&Merchant, &ShipmentRecord, EmailKind, Option<&Checkpoint>) -> Option<T> + Sync
{
}

pub struct Tracking<'a, B, L, M, C> {
    pub book: &'a B,
    pub courier: Courier<'a, L, M>,
    pub retention: Retention,
    /// Renders the shipment emails.
    pub compose: C,
}

/// An email that wants another delivery of the request to finish.
/// The identity of a shipment email: one per (customer, kind, shipment, step); the step is 0 but
/// for "new delivery date" emails, one per revision.
fn shipment_email_id(
    merchant: &MerchantId,
    record: &ShipmentRecord,
    kind: EmailKind,
    step: u32,
) -> SendIdentity {
    SendIdentity::new(
        merchant,
        &record.customer.id,
        kind,
        record.shipment.id.as_str(),
        step,
    )
}

fn unsent(outcome: &SendOutcome) -> Result<(), TrackingError> {
    match outcome.wants_redelivery() {
        true => Err(TrackingError::Unsent),
        false => Ok(()),
    }
}

impl<B, L, M, C> Tracking<'_, B, L, M, C>
where
    B: ShipmentBook,
    L: SendLedger,
    M: Mailer,
    C: ComposeShipmentEmail<M::Message>,
{
    /// The claim of a shipment email to `to`: one per (customer, kind, shipment, step).
    fn claim(
        &self,
        merchant: &MerchantId,
        record: &ShipmentRecord,
        kind: EmailKind,
        step: u32,
        to: &str,
        deadline: Deadline,
    ) -> (SendIdentity, SendRecord) {
        let id = shipment_email_id(merchant, record, kind, step);
        let clock = self.courier.clock;
        let claim = id.claim(to, clock.now(), deadline.lease_until(clock));
        (id, claim)
    }

    /// Creates the shipment of `input` on `order_id` and sends its "shipped" email.
    pub async fn create(
        &self,
        merchant: &Merchant,
        order_id: &OrderId,
        input: ShipmentInput,
        deadline: Deadline,
    ) -> Result<ShipmentCreated, TrackingError> {
        let order = self
            .book
            .order(&merchant.id, order_id)
            .await?
            .ok_or(TrackingError::UnknownOrder)?;
        let now = self.courier.clock.now();
        let content_hash = input.content_hash();
        let shipment = input.validate_for(&order.order, now)?;
        let customer = order.order.customer;
        let record =
            ShipmentRecord::new(merchant.id.clone(), shipment, customer, content_hash, now);
        let sh = &record.shipment;
        let journey = &merchant.settings.journey;
        let mut due = vec![(
            ShipmentCheck::Fallback,
            journey.fallback_anchor(sh.shipped_at),
        )];
        if let Some(at) = sh
            .promised_date
            .and_then(|d| late_after(d, &merchant.time_zone))
        {
            due.push((ShipmentCheck::Late, at));
        }
        let kind = EmailKind::ShipmentShipped;
        // A customer without an address gets no email: nothing is claimed.
        let claimed = record
            .customer
            .email
            .as_ref()
            .map(|to| self.claim(&merchant.id, &record, kind, 0, to.as_str(), deadline));
        let new = NewShipment {
            record: &record,
            due: &due,
            claim: claimed.as_ref().map(|(id, claim)| (id, claim)),
            send_expires_at: self.retention.send_expiry(merchant, now),
        };
        match self.book.create_shipment(&new).await? {
            CreateOutcome::Created { suppressed } => {
                tracing::info!(shipment_id = %sh.id, order_id = %order_id, suppressed, "shipment created");
                let email = match (&claimed, suppressed) {
                    (None, _) => SendOutcome::Unaddressed,
                    (Some(_), true) => SendOutcome::Suppressed,
                    (Some((id, claim)), false) => {
                        let email = (self.compose)(merchant, &record, kind, None);
                        self.courier
                            .send_composed(id, &claim.claim_token, email, deadline)
                            .await?
                    }
                };
                unsent(&email)?;
                Ok(ShipmentCreated {
                    created: true,
                    record,
                    history: Vec::new(),
                    email,
                })
            }
            CreateOutcome::AlreadyExists => {
                let stored = match self.book.shipment(&merchant.id, &sh.id).await? {
                    Some(s)
                        if s.content_hash == record.content_hash
                            && s.shipment.order_id == *order_id =>
                    {
                        s
                    }
                    Some(_) => return Err(TrackingError::Conflict),
                    // Cancelled, yet no shipment is stored under the id: what cancelled the write
                    // is not there (a conflict reported as a failed condition). Decide again.
                    None => {
                        return Err(TrackingError::Store(StoreError::Transient {
                            operation: "TransactWriteItems shipment",
                            source: "cancelled, yet no shipment is stored under its id".into(),
                        }));
                    }
                };
                let email = match &claimed {
                    None => SendOutcome::Unaddressed,
                    Some((id, _)) => match self.courier.store.get_send(id).await? {
                        Some(send) => {
                            self.courier
                                .resume(id, &send, deadline, || {
                                    (self.compose)(merchant, &stored, kind, None)
                                })
                                .await?
                        }
                        None => SendOutcome::Settled(SendStatus::Sent),
                    },
                };
                unsent(&email)?;
                let history = self.book.shipment_history(&merchant.id, &sh.id).await?;
                Ok(ShipmentCreated {
                    created: false,
                    record: stored,
                    history,
                    email,
                })
            }
        }
    }

    /// Applies a tracking provider's update: finds the shipment by the parcel's tracking number
    /// (one Query), reads its history (one Query) and records each checkpoint it does not have yet,
    /// oldest first, exactly as [`Tracking::checkpoint`] does (milestone emails once each, the
    /// state only advancing). An unknown number stores nothing.
    pub async fn track(
        &self,
        merchant: &Merchant,
        update: &crate::domain::connectors::tracking::TrackingUpdate,
        deadline: Deadline,
    ) -> Result<TrackResult, TrackingError> {
        use crate::domain::connectors::tracking::normalise_tracking_number;
        let number = normalise_tracking_number(&update.tracking_number);
        let pointers = self
            .book
            .shipments_by_tracking(&merchant.id, &number)
            .await?;
        let Some(pointer) = pick_shipment(&pointers, update.carrier.as_deref()) else {
            return Ok(TrackResult::nothing(if pointers.is_empty() {
                "unknown_tracking_number"
            } else {
                "ambiguous_tracking_number"
            }));
        };
        let shipment_id = pointer.shipment_id.clone();
        // What the shipment has, and what this update already brought: each checkpoint once.
        let mut known: std::collections::HashSet<String> = self
            .book
            .shipment_history(&merchant.id, &shipment_id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        let mut new = Vec::new();
        let mut refused = Vec::new();
        for (i, input) in update.checkpoints.iter().enumerate() {
            match input.clone().validate() {
                Ok(cp) if !known.insert(cp.id.clone()) => {}
                Ok(cp) => new.push((input.clone(), cp)),
                Err(e) => refused.push(format!("checkpoints[{i}].{}: {}", e.field, e.message)),
            }
        }
        new.sort_by_key(|(_, cp)| cp.occurred_at);
        let mut result = TrackResult {
            result: if new.is_empty() {
                "unchanged"
            } else {
                "applied"
            },
            shipment_id: Some(shipment_id.to_string()),
            status: None,
            checkpoints: Vec::new(),
            refused,
            expected_date: None,
        };
        for (input, _) in new {
            let done = self
                .checkpoint(merchant, &shipment_id, input, None, deadline)
                .await?;
            result.status = done.status;
            result.checkpoints.push(done);
        }
        let record = self.book.shipment(&merchant.id, &shipment_id).await?;
        if result.status.is_none() {
            result.status = record.as_ref().and_then(|r| r.state().status());
        }
        if let (Some(date), Some(record)) = (update.expected_date, record) {
            let revised = self.revise_date(merchant, &record, date, deadline).await?;
            if revised.result == "revised" && result.result == "unchanged" {
                result.result = "applied";
            }
            result.expected_date = Some(revised);
        }
        Ok(result)
    }

    /// A provider's expected date `date` for `record`: stored as a revision when it moves the date
    /// the customer expects (the late check moves with it), and the customer told once per
    /// revision when they had been given a date before and the merchant keeps the email on. A
    /// delivery that finds the same date finishes a "new delivery date" email left to retry.
    async fn revise_date(
        &self,
        merchant: &Merchant,
        record: &ShipmentRecord,
        date: jiff::civil::Date,
        deadline: Deadline,
    ) -> Result<DateResult, TrackingError> {
        use crate::domain::shipment::{DateRevision, RevisionOutcome};
        use crate::ports::shipments::NewDateRevision;
        let kind = EmailKind::ShipmentNewDate;
        let to = record
            .customer
            .email
            .as_ref()
            .filter(|_| merchant.settings.orders.new_date_email);
        let Some(revision) = record.revise_expected(date) else {
            // The same date again: finish the latest revision's email if it was left to retry.
            let mut email = None;
            if record.date_revision > 0 && to.is_some() {
                let id = shipment_email_id(&merchant.id, record, kind, record.date_revision);
                if let Some(theirs) = self.courier.store.get_send(&id).await? {
                    let sent = self
                        .courier
                        .resume(&id, &theirs, deadline, || {
                            (self.compose)(merchant, record, kind, None)
                        })
                        .await?;
                    unsent(&sent)?;
                    email = Some(sent.as_str());
                }
            }
            return Ok(DateResult {
                result: "unchanged",
                date,
                email,
            });
        };
        let DateRevision { from, to: new, .. } = revision;
        let clock = self.courier.clock;
        let claimed = match (from, to) {
            (Some(_), Some(to)) => Some(self.claim(
                &merchant.id,
                record,
                kind,
                revision.revision,
                to.as_str(),
                deadline,
            )),
            _ => None,
        };
        let outcome = self
            .book
            .revise_expected_date(&NewDateRevision {
                merchant_id: &merchant.id,
                shipment_id: &record.shipment.id,
                order_id: &record.shipment.order_id,
                revision: &revision,
                late_at: late_after(new, &merchant.time_zone),
                claim: claimed.as_ref().map(|(id, claim)| (id, claim)),
                send_expires_at: self.retention.send_expiry(merchant, clock.now()),
            })
            .await?;
        let suppressed = match outcome {
            RevisionOutcome::Stale => {
                return Ok(DateResult {
                    result: "stale",
                    date,
                    email: None,
                });
            }
            RevisionOutcome::Revised { suppressed } => suppressed,
        };
        tracing::info!(shipment_id = %record.shipment.id, from = ?from, to = %new, revision = revision.revision, "expected delivery date revised");
        let email = match claimed {
            Some(_) if suppressed => Some(SendOutcome::Suppressed.as_str()),
            Some((id, claim)) => {
                let mut revised = record.clone();
                revised.expected_date = Some(new);
                revised.date_revision = revision.revision;
                let email = (self.compose)(merchant, &revised, kind, None);
                let sent = self
                    .courier
                    .send_composed(&id, &claim.claim_token, email, deadline)
                    .await?;
                unsent(&sent)?;
                Some(sent.as_str())
            }
            None => None,
        };
        Ok(DateResult {
            result: "revised",
            date,
            email,
        })
    }

    /// Records a checkpoint of `shipment_id` (`webhook_replay_key`: the signature of the webhook
    /// that carried it, remembered so a captured copy changes nothing).
    pub async fn checkpoint(
        &self,
        merchant: &Merchant,
        shipment_id: &ShipmentId,
        input: CheckpointInput,
        webhook_replay_key: Option<&str>,
        deadline: Deadline,
    ) -> Result<CheckpointResult, TrackingError> {
        let cp = input.validate()?;
        // The shipment names the customer (for the email's claim and content); consistent read.
        let record = self
            .book
            .shipment(&merchant.id, shipment_id)
            .await?
            .ok_or(TrackingError::UnknownShipment)?;
        let now = self.courier.clock.now();
        let milestone = cp.status.milestone().map(|m| m.email_kind());
        let to = record.customer.email.as_ref();
        let claimed = milestone
            .zip(to)
            .map(|(kind, to)| self.claim(&merchant.id, &record, kind, 0, to.as_str(), deadline));
        let delivered = cp.status == TrackingStatus::Delivered;
        let new = NewCheckpoint {
            merchant_id: &merchant.id,
            shipment_id,
            checkpoint: &cp,
            claim: claimed.as_ref().map(|(k, r)| (k, r)),
            send_expires_at: self.retention.send_expiry(merchant, now),
            delivered_order: delivered.then_some(&record.shipment.order_id),
            webhook_replay_key,
            now,
        };
        let outcome = self.book.record_checkpoint(&new).await?;
        let mut state = record.state();
        let mut result = CheckpointResult {
            shipment_id: shipment_id.to_string(),
            checkpoint_id: cp.id.clone(),
            result: "recorded",
            status: state.status(),
            email: None,
            order_delivered: None,
        };
        let (holds, suppressed) = match outcome {
            // A signed request seen before is the sender's redelivery (or a captured copy): it
            // changes nothing and answers like any duplicate, so a sender retrying after a lost
            // answer sees success instead of an authentication failure that would page someone.
            CheckpointOutcome::Duplicate | CheckpointOutcome::ReplayedSignature => {
                result.result = "duplicate";
                // The delivery that recorded it may have failed before anchoring the journey
                // (throttled, a conflict that outlasted the retries): anchoring is idempotent,
                // so the redelivery finishes it.
                if delivered {
                    result.order_delivered = Some(
                        self.order_delivered(merchant, &record.shipment.order_id)
                            .await?,
                    );
                }
                return Ok(result);
            }
            CheckpointOutcome::HistoryOnly => return Ok(result),
            CheckpointOutcome::UnknownShipment => return Err(TrackingError::UnknownShipment),
            CheckpointOutcome::Advanced {
                claimed,
                suppressed,
            } => (claimed, suppressed),
        };
        state.apply(cp.status, cp.occurred_at);
        result.result = "applied";
        result.status = state.status();
        tracing::info!(shipment_id = %shipment_id, status = cp.status.as_str(), suppressed, "checkpoint applied");
        if suppressed {
            result.email = Some(SendOutcome::Suppressed.as_str());
        }
        if milestone.is_some() && to.is_none() {
            result.email = Some(SendOutcome::Unaddressed.as_str());
        }
        if let (true, Some(kind), Some((id, claim))) = (holds, milestone, &claimed) {
            let email = (self.compose)(merchant, &record, kind, Some(&cp));
            let sent = self
                .courier
                .send_composed(id, &claim.claim_token, email, deadline)
                .await?;
            result.email = Some(sent.as_str());
            unsent(&sent)?;
        }
        if delivered {
            result.order_delivered = Some(
                self.order_delivered(merchant, &record.shipment.order_id)
                    .await?,
            );
        }
        Ok(result)
    }

    /// When every shipment of the order is delivered, anchors the journey at the last delivery
    /// and counts the points' return window from it. True if the whole order is delivered.
    async fn order_delivered(
        &self,
        merchant: &Merchant,
        order_id: &OrderId,
    ) -> Result<bool, StoreError> {
        let pointers = self.book.order_shipments(&merchant.id, order_id).await?;
        let deliveries: Option<Vec<Timestamp>> = pointers.iter().map(|p| p.delivered_at).collect();
        let Some(last) = deliveries.and_then(|d| d.into_iter().max()) else {
            return Ok(false);
        };
        let Some(order) = self.book.order(&merchant.id, order_id).await? else {
            return Ok(true);
        };
        // Follow-ups are emails: an order without an address schedules none.
        let schedule = match order.order.customer.email {
            Some(_) => merchant.settings.journey.schedule(last),
            None => Vec::new(),
        };
        let now = self.courier.clock.now();
        if self
            .book
            .anchor_journey(&order, last, AnchorReason::Delivered, &schedule, now)
            .await?
        {
            tracing::info!(order_id = %order_id, follow_ups = schedule.len(), "order delivered; journey scheduled");
        }
        self.rebase_points(merchant, &order, last).await?;
        Ok(true)
    }

    /// Counts the return window of the order's points (and of the reward of whoever referred it)
    /// from delivery rather than the order date. Idempotent: a redelivered update changes nothing.
    async fn rebase_points(
        &self,
        merchant: &Merchant,
        order: &OrderRecord,
        delivered: Timestamp,
    ) -> Result<(), StoreError> {
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
            let now = self.courier.clock.now();
            let rebased = self
                .book
                .rebase_earn(&merchant.id, customer, &source, until, now)
                .await?;
            tracing::info!(source, available_at = %until, outcome = ?rebased, "points' return window counted from delivery");
        }
        Ok(())
    }

    /// One due shipment check of the sweep, taken out of the index once done (`index`) unless it
    /// is to be tried again next run.
    pub async fn check<D: MerchantDirectory, W: DueWork>(
        &self,
        merchants: &D,
        index: &W,
        due: &Due<ShipmentDue>,
        deadline: Deadline,
    ) -> Result<CheckOutcome, StoreError> {
        let Ok(check) = &due.entry else {
            tracing::error!(key = %due.token, "malformed due item; left for an operator");
            return Ok(CheckOutcome::LeftDue);
        };
        let Some(merchant) = merchants.merchant(&due.merchant).await? else {
            return Ok(CheckOutcome::LeftDue);
        };
        let outcome = match &check.check {
            ShipmentCheck::Late => self.late(&merchant, &check.shipment_id, deadline).await?,
            ShipmentCheck::Fallback => {
                self.fallback(&merchant, &check.order_id, &check.shipment_id)
                    .await?
            }
            ShipmentCheck::Unknown(other) => {
                tracing::error!(key = %due.token, check = other, "unknown due check; taken out of the index");
                CheckOutcome::Unknown
            }
        };
        if outcome == CheckOutcome::LeftDue {
            return Ok(outcome);
        }
        let now = self.courier.clock.now();
        let completed = index
            .complete_due(&due.token, outcome.as_str(), now)
            .await?;
        Ok(if completed {
            outcome
        } else {
            CheckOutcome::Taken
        })
    }

    /// The promised date passed: unless the parcel is out for delivery (or further), tell the
    /// customer it is running late and alert the merchant, once each.
    async fn late(
        &self,
        merchant: &Merchant,
        shipment_id: &ShipmentId,
        deadline: Deadline,
    ) -> Result<CheckOutcome, StoreError> {
        let Some(record) = self.book.shipment(&merchant.id, shipment_id).await? else {
            return Ok(CheckOutcome::NotNeeded);
        };
        if record.state().reached_final_mile() {
            return Ok(CheckOutcome::NotNeeded);
        }
        // A provider moved the expected date later since this check was read: its entry in the
        // index already moved there, so it stays.
        if let Some(at) = record.late_from(&merchant.time_zone)
            && self.courier.clock.now() < at
        {
            return Ok(CheckOutcome::LeftDue);
        }
        let expires = self
            .retention
            .send_expiry(merchant, self.courier.clock.now());
        let customer = record.customer.email.as_ref().map(|e| e.as_str());
        let ops = merchant.ops_email.as_ref().map(|e| e.as_str());
        let emails = [
            (EmailKind::ShipmentLate, customer),
            (EmailKind::MerchantLateAlert, ops),
        ];
        for (kind, to) in emails {
            let Some(to) = to else { continue };
            let (id, claim) = self.claim(&merchant.id, &record, kind, 0, to, deadline);
            let sent = self
                .courier
                .claim_and_send(&id, &claim, expires, deadline, || {
                    (self.compose)(merchant, &record, kind, None)
                })
                .await?;
            if sent.wants_redelivery() {
                return Ok(CheckOutcome::LeftDue);
            }
        }
        Ok(CheckOutcome::LateNotice)
    }

    /// No delivery scan within the fallback window: anchor the journey to shipping + N days.
    async fn fallback(
        &self,
        merchant: &Merchant,
        order_id: &OrderId,
        shipment_id: &ShipmentId,
    ) -> Result<CheckOutcome, StoreError> {
        let Some(record) = self.book.shipment(&merchant.id, shipment_id).await? else {
            return Ok(CheckOutcome::NotNeeded);
        };
        if record.state().delivered_at().is_some() {
            return Ok(CheckOutcome::NotNeeded);
        }
        let Some(order) = self.book.order(&merchant.id, order_id).await? else {
            return Ok(CheckOutcome::NotNeeded);
        };
        let journey = &merchant.settings.journey;
        let anchor = journey.fallback_anchor(record.shipment.shipped_at);
        let schedule = journey.schedule(anchor);
        let now = self.courier.clock.now();
        let anchored = self
            .book
            .anchor_journey(&order, anchor, AnchorReason::NoDeliveryScan, &schedule, now)
            .await?;
        Ok(match anchored {
            true => CheckOutcome::Anchored,
            false => CheckOutcome::NotNeeded,
        })
    }

    /// The order with its shipments, their checkpoints and its follow-ups (due order).
    pub async fn order(
        &self,
        merchant: &MerchantId,
        order_id: &OrderId,
    ) -> Result<OrderTracking, TrackingError> {
        let order = self
            .book
            .order(merchant, order_id)
            .await?
            .ok_or(TrackingError::UnknownOrder)?;
        let mut shipments = Vec::new();
        for pointer in self.book.order_shipments(merchant, order_id).await? {
            let id = &pointer.shipment_id;
            if let Some(record) = self.book.shipment(merchant, id).await? {
                let history = self.book.shipment_history(merchant, id).await?;
                shipments.push((record, history));
            }
        }
        let mut follow_ups = self.book.order_follow_ups(merchant, order_id).await?;
        follow_ups.sort_by_key(|f| f.due_at);
        Ok(OrderTracking {
            order,
            shipments,
            follow_ups,
        })
    }
}

/// Shipments, checkpoints and due checks on the in-memory shipments, send ledger, due index and
/// mailer: every decision and error path, no network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::loyalty::LedgerEntry;
    use crate::domain::validation::from_value;
    use crate::ports::{DueGroup, SendFailure};
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemDue, MemMerchants, MemSendLedger, MemShipments, ScriptedMailer};
    use serde_json::{Value, json};
    use std::time::Duration;

    type Use<'a> = Tracking<
        'a,
        MemShipments,
        MemSendLedger,
        ScriptedMailer<String>,
        fn(&Merchant, &ShipmentRecord, EmailKind, Option<&Checkpoint>) -> Option<String>,
    >;

    struct World {
        book: MemShipments,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        merchant: Merchant,
        order: OrderRecord,
    }

    /// An email as "<kind> <to>", so tests see who got what.
    fn compose(
        merchant: &Merchant,
        record: &ShipmentRecord,
        kind: EmailKind,
        _: Option<&Checkpoint>,
    ) -> Option<String> {
        let to = match kind {
            EmailKind::MerchantLateAlert => merchant.ops_email.as_ref()?.to_string(),
            _ => record.customer.email.as_ref()?.to_string(),
        };
        Some(format!("{} {to}", kind.as_str()))
    }

    impl World {
        fn new() -> Self {
            Self::with_mailer(ScriptedMailer::new())
        }

        fn with_mailer(mailer: ScriptedMailer<String>) -> Self {
            let merchant = fixtures::merchant();
            let now: Timestamp = "2026-11-20T12:30:00Z".parse().unwrap();
            let order = fixtures::order();
            let earn =
                LedgerEntry::earn_for_order(&order, &merchant.settings.loyalty, None, now).unwrap();
            let record = OrderRecord {
                points_earned: u64::try_from(earn.points).unwrap(),
                received_at: now,
                ..fixtures::order_record(&merchant.id, order)
            };
            let book = MemShipments::new();
            book.add_order(&record);
            book.add_ledger_entry(&merchant.id, &record.order.customer.id, &earn);
            Self {
                book,
                mailer,
                clock: ManualClock::new(now),
                merchant,
                order: record,
            }
        }

        fn use_case(&self) -> Use<'_> {
            Tracking {
                book: &self.book,
                courier: fixtures::courier(&self.book.ledger, &self.mailer, &self.clock),
                retention: Retention {
                    default: Duration::from_secs(86_400),
                },
                compose,
            }
        }

        fn order_id(&self) -> &OrderId {
            &self.order.order.id
        }

        async fn create(&self, shipment: Value) -> Result<ShipmentCreated, TrackingError> {
            let input: ShipmentInput = from_value(shipment).unwrap();
            let order = self.order_id().clone();
            self.use_case()
                .create(&self.merchant, &order, input, deadline())
                .await
        }

        async fn checkpoint(
            &self,
            shipment: &str,
            cp: Value,
            replay_key: Option<&str>,
        ) -> Result<CheckpointResult, TrackingError> {
            let id = ShipmentId::parse("id", shipment).unwrap();
            self.use_case()
                .checkpoint(
                    &self.merchant,
                    &id,
                    from_value(cp).unwrap(),
                    replay_key,
                    deadline(),
                )
                .await
        }

        fn shipment_id(&self, id: &str) -> ShipmentId {
            ShipmentId::parse("id", id).unwrap()
        }

        fn sent(&self) -> Vec<String> {
            self.mailer.accepted()
        }
    }

    fn shipment(id: &str, items: Value) -> Value {
        json!({"id": id, "carrier": "DHL", "tracking_number": format!("JD{id}"),
               "items": items, "promised_date": "2026-11-24", "shipped_at": "2026-11-20T12:00:00Z"})
    }

    fn whole_order(id: &str) -> Value {
        shipment(
            id,
            json!([{"sku": "TENT-2", "quantity": 1}, {"sku": "PEG-10", "quantity": 2}]),
        )
    }

    fn cp(id: &str, status: &str, at: &str) -> Value {
        json!({"id": id, "status": status, "occurred_at": at})
    }

    #[tokio::test]
    async fn a_shipment_is_stored_with_its_checks_and_its_shipped_email_goes_once() {
        let w = World::new();
        let created = w.create(whole_order("SH-1")).await.unwrap();
        assert!(created.created);
        assert!(
            matches!(created.email, SendOutcome::Sent { .. }),
            "{:?}",
            created.email
        );
        let id = w.shipment_id("SH-1");
        let m = &w.merchant.id;
        assert_eq!(
            w.book.shipment(m, &id).await.unwrap(),
            Some(created.record.clone())
        );
        assert_eq!(
            w.book.due_check(m, &id, "late").map(|d| d.check),
            Some(ShipmentCheck::Late)
        );
        assert!(w.book.due_check(m, &id, "fallback").is_some());
        assert_eq!(
            w.book.order_shipments(m, w.order_id()).await.unwrap().len(),
            1
        );

        let before = w.book.table().rows();
        let again = w.create(whole_order("SH-1")).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.record, created.record);
        assert_eq!(again.email, SendOutcome::Settled(SendStatus::Sent));
        assert_eq!(w.book.table().rows(), before, "a replay writes nothing");
        assert_eq!(w.sent(), ["shipment_shipped ann@example.com"]);
    }

    #[tokio::test]
    async fn a_providers_update_finds_the_parcel_and_records_only_what_is_new() {
        use crate::domain::connectors::tracking::{TrackingUpdate, checkpoint};
        let w = World::new();
        let mut two = whole_order("SH-1");
        two["carrier"] = json!("DHL Express");
        two["additional_tracking"] = json!([{"tracking_number": "jd-0002 77"}]);
        w.create(two).await.unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let update =
            |number: &str, carrier: &str, statuses: &[(TrackingStatus, &str)]| TrackingUpdate {
                event_id: Some("e".into()),
                tracking_number: number.into(),
                carrier: Some(carrier.into()),
                checkpoints: statuses
                    .iter()
                    .map(|(s, t)| checkpoint(*s, at(t), None, Some("scan")))
                    .collect(),
                expected_date: None,
                unmapped: Vec::new(),
            };
        let w = &w;
        let track = |u: TrackingUpdate| async move {
            w.use_case()
                .track(&w.merchant, &u, deadline())
                .await
                .unwrap()
        };
        // Nobody's parcel: nothing is written.
        let before = w.book.table().rows();
        let unknown = track(update(
            "NOPE1",
            "dhl",
            &[(TrackingStatus::InTransit, "2026-11-21T08:00:00Z")],
        ))
        .await;
        assert_eq!(unknown.result, "unknown_tracking_number");
        assert_eq!(w.book.table().rows(), before);
        // The second parcel, as the aggregator writes its number and carrier.
        let steps = [
            (TrackingStatus::InTransit, "2026-11-21T08:00:00Z"),
            (TrackingStatus::OutForDelivery, "2026-11-22T07:00:00Z"),
        ];
        let done = track(update("JD000277", "dhl_express", &steps)).await;
        assert_eq!(
            (done.result, done.shipment_id.as_deref(), done.status),
            (
                "applied",
                Some("SH-1"),
                Some(TrackingStatus::OutForDelivery)
            )
        );
        assert_eq!(done.checkpoints.len(), 2);
        // The same update again, then the full history shuffled: only the new one is recorded.
        let rows = w.book.table().rows();
        let again = track(update("JD000277", "dhl_express", &steps)).await;
        assert_eq!((again.result, again.checkpoints.len()), ("unchanged", 0));
        assert_eq!(w.book.table().rows(), rows, "a repeat writes nothing");
        let shuffled = [
            (TrackingStatus::Delivered, "2026-11-22T12:00:00Z"),
            (TrackingStatus::InTransit, "2026-11-21T08:00:00Z"),
        ];
        let last = track(update("JD000277", "DHL", &shuffled)).await;
        assert_eq!(
            (last.result, last.checkpoints.len(), last.status),
            ("applied", 1, Some(TrackingStatus::Delivered))
        );
        assert_eq!(
            w.sent(),
            [
                "shipment_shipped ann@example.com",
                "shipment_out_for_delivery ann@example.com",
                "shipment_delivered ann@example.com"
            ]
        );
    }

    #[tokio::test]
    async fn a_revised_expected_date_is_told_once_per_revision_and_moves_the_late_check() {
        use crate::domain::connectors::tracking::TrackingUpdate;
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap(); // promised 2026-11-24
        let w = &w;
        let track = |date: &str| {
            let update = TrackingUpdate {
                event_id: None,
                tracking_number: "JDSH-1".into(),
                carrier: Some("dhl".into()),
                checkpoints: Vec::new(),
                expected_date: Some(date.parse().unwrap()),
                unmapped: Vec::new(),
            };
            async move {
                w.use_case()
                    .track(&w.merchant, &update, deadline())
                    .await
                    .unwrap()
                    .expected_date
                    .unwrap()
            }
        };
        let late_due = || {
            w.book
                .due_check(&w.merchant.id, &w.shipment_id("SH-1"), "late")
                .map(|d| d.due_at.to_string())
        };
        assert_eq!(late_due().as_deref(), Some("2026-11-24T23:00:00Z"));
        // The promised date itself: nothing changes.
        let same = track("2026-11-24").await;
        assert_eq!((same.result, same.email), ("unchanged", None));
        let first = track("2026-11-26").await;
        assert_eq!((first.result, first.email), ("revised", Some("sent")));
        assert_eq!(late_due().as_deref(), Some("2026-11-26T23:00:00Z"));
        // The same estimate again reports the revision's email as it stands; nothing more goes.
        let again = track("2026-11-26").await;
        assert_eq!((again.result, again.email), ("unchanged", Some("sent")));
        let second = track("2026-11-27").await;
        assert_eq!((second.result, second.email), ("revised", Some("sent")));
        assert_eq!(
            w.sent(),
            [
                "shipment_shipped ann@example.com",
                "shipment_new_date ann@example.com",
                "shipment_new_date ann@example.com"
            ]
        );
        let stored = w
            .book
            .shipment(&w.merchant.id, &w.shipment_id("SH-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.expected_date, stored.date_revision),
            (Some(jiff::civil::date(2026, 11, 27)), 2)
        );
        // The late check read before the date moved does nothing yet.
        w.clock.set("2026-11-25T08:00:00Z".parse().unwrap());
        assert_eq!(
            w.use_case()
                .late(&w.merchant, &w.shipment_id("SH-1"), deadline())
                .await
                .unwrap(),
            CheckOutcome::LeftDue
        );
    }

    #[tokio::test]
    async fn a_first_estimate_or_a_merchant_who_turned_it_off_gets_no_new_date_email() {
        use crate::domain::connectors::tracking::TrackingUpdate;
        let mut w = World::new();
        let mut unpromised = whole_order("SH-1");
        unpromised.as_object_mut().unwrap().remove("promised_date");
        w.create(unpromised).await.unwrap();
        let update = |date: &str| TrackingUpdate {
            event_id: None,
            tracking_number: "JDSH-1".into(),
            carrier: None,
            checkpoints: Vec::new(),
            expected_date: Some(date.parse().unwrap()),
            unmapped: Vec::new(),
        };
        let first = w
            .use_case()
            .track(&w.merchant, &update("2026-11-26"), deadline())
            .await
            .unwrap();
        let date = first.expected_date.unwrap();
        assert_eq!((date.result, date.email), ("revised", None));
        w.merchant.settings.orders.new_date_email = false;
        let moved = w
            .use_case()
            .track(&w.merchant, &update("2026-11-28"), deadline())
            .await
            .unwrap();
        let date = moved.expected_date.unwrap();
        assert_eq!((date.result, date.email), ("revised", None));
        assert_eq!(w.sent(), ["shipment_shipped ann@example.com"]);
        assert!(
            w.book
                .due_check(&w.merchant.id, &w.shipment_id("SH-1"), "late")
                .is_some(),
            "late detection follows the provider's date"
        );
    }

    #[test]
    fn the_parcel_is_the_one_of_the_providers_carrier_else_the_only_one() {
        use crate::domain::shipment::TrackingPointer;
        let pointer = |s: &str, carrier: &str| TrackingPointer {
            shipment_id: ShipmentId::parse("id", s).unwrap(),
            order_id: OrderId::parse("id", "o").unwrap(),
            carrier: carrier.into(),
            carrier_family: crate::domain::connectors::tracking::carrier_family(carrier),
            tracking_number: "123".into(),
        };
        let one = [pointer("a", "Acme Couriers")];
        assert_eq!(
            pick_shipment(&one, Some("usps")).map(|p| p.shipment_id.as_str()),
            Some("a")
        );
        let two = [pointer("a", "UPS"), pointer("b", "USPS")];
        assert_eq!(
            pick_shipment(&two, Some("usps")).map(|p| p.shipment_id.as_str()),
            Some("b")
        );
        assert_eq!(pick_shipment(&two, Some("fedex")), None);
        assert_eq!(pick_shipment(&[], Some("ups")), None);
    }

    #[tokio::test]
    async fn another_shipment_under_the_same_id_is_a_conflict_and_changes_nothing() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let before = w.book.table().rows();
        let other = shipment("SH-1", json!([{"sku": "TENT-2", "quantity": 1}]));
        let err = w.create(other).await.unwrap_err();
        assert!(matches!(err, TrackingError::Conflict), "{err:?}");
        assert_eq!(w.book.table().rows(), before);
        assert_eq!(w.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_shipment_of_an_unknown_order_or_with_bad_items_writes_nothing() {
        let w = World::new();
        w.book.table().remove(&crate::testing::RowKey::from(
            &crate::adapters::store::keys::order(&w.merchant.id, w.order_id()),
        ));
        let err = w.create(whole_order("SH-1")).await.unwrap_err();
        assert!(matches!(err, TrackingError::UnknownOrder), "{err:?}");

        let w = World::new();
        let before = w.book.table().rows();
        let too_many = shipment("SH-1", json!([{"sku": "TENT-2", "quantity": 5}]));
        match w.create(too_many).await.unwrap_err() {
            TrackingError::Invalid(e) => assert_eq!(e.field, "items[0].quantity"),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.book.table().rows(), before);
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_suppressed_customers_shipment_is_stored_and_not_emailed() {
        let w = World::new();
        w.book.ledger.suppress(&w.merchant.id, "ann@example.com");
        let created = w.create(whole_order("SH-1")).await.unwrap();
        assert!(created.created);
        assert_eq!(created.email, SendOutcome::Suppressed);
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_the_redelivery_creates_it_once() {
        let w = World::new();
        w.book
            .table()
            .fail_next_writes(1, "TransactWriteItems create shipment");
        let before = w.book.table().rows();
        let err = w.create(whole_order("SH-1")).await.unwrap_err();
        assert!(
            matches!(err, TrackingError::Store(ref e) if e.is_transient()),
            "{err:?}"
        );
        assert_eq!(w.book.table().rows(), before);
        assert!(w.create(whole_order("SH-1")).await.unwrap().created);
        assert_eq!(w.sent().len(), 1);
    }

    #[tokio::test]
    async fn an_email_ses_throttled_is_finished_by_the_redelivery_once() {
        let throttled = || SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        };
        let w = World::with_mailer(ScriptedMailer::new().then_fail([
            throttled(),
            throttled(),
            throttled(),
        ]));
        let err = w.create(whole_order("SH-1")).await.unwrap_err();
        assert!(matches!(err, TrackingError::Unsent), "{err:?}");
        let again = w.create(whole_order("SH-1")).await.unwrap();
        assert!(!again.created);
        assert!(
            matches!(again.email, SendOutcome::Sent { .. }),
            "{:?}",
            again.email
        );
        assert_eq!(w.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_milestone_is_applied_and_emailed_once_and_a_replay_is_a_duplicate() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let out = cp("c1", "out_for_delivery", "2026-11-21T08:00:00Z");
        let applied = w.checkpoint("SH-1", out.clone(), None).await.unwrap();
        assert_eq!(applied.result, "applied");
        assert_eq!(applied.status, Some(TrackingStatus::OutForDelivery));
        assert_eq!(applied.email, Some("sent"));
        let replay = w.checkpoint("SH-1", out, None).await.unwrap();
        assert_eq!(replay.result, "duplicate");
        assert_eq!(
            w.sent(),
            [
                "shipment_shipped ann@example.com",
                "shipment_out_for_delivery ann@example.com"
            ]
        );
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_checkpoint_email_once() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let out = cp("c1", "out_for_delivery", "2026-11-21T08:00:00Z");
        let (a, b) = tokio::join!(
            w.checkpoint("SH-1", out.clone(), None),
            w.checkpoint("SH-1", out, None)
        );
        let mut results = [a.unwrap().result, b.unwrap().result];
        results.sort();
        assert_eq!(results, ["applied", "duplicate"]);
        assert_eq!(w.sent().len(), 2, "shipped, then out for delivery once");
    }

    #[tokio::test]
    async fn an_older_checkpoint_is_history_only_and_the_state_never_moves_back() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let out = cp("c2", "out_for_delivery", "2026-11-21T08:00:00Z");
        w.checkpoint("SH-1", out, None).await.unwrap();
        let late = cp("c1", "in_transit", "2026-11-20T20:00:00Z");
        let recorded = w.checkpoint("SH-1", late, None).await.unwrap();
        assert_eq!(recorded.result, "recorded");
        assert_eq!(recorded.status, Some(TrackingStatus::OutForDelivery));
        let id = w.shipment_id("SH-1");
        let stored = w.book.shipment(&w.merchant.id, &id).await.unwrap().unwrap();
        assert_eq!(
            stored.state().status(),
            Some(TrackingStatus::OutForDelivery)
        );
        let history = w.book.shipment_history(&w.merchant.id, &id).await.unwrap();
        let ids: Vec<&str> = history.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c1", "c2"], "both kept, oldest first");
    }

    #[tokio::test]
    async fn a_replayed_webhook_signature_changes_nothing() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let first = cp("c1", "in_transit", "2026-11-20T20:00:00Z");
        let applied = w.checkpoint("SH-1", first, Some("sig-1")).await.unwrap();
        assert_eq!(applied.result, "applied");
        let before = w.book.table().rows();
        let other = cp("c2", "out_for_delivery", "2026-11-21T08:00:00Z");
        let replayed = w.checkpoint("SH-1", other, Some("sig-1")).await.unwrap();
        assert_eq!(replayed.result, "duplicate");
        assert_eq!(w.book.table().rows(), before);
    }

    #[tokio::test]
    async fn a_checkpoint_of_an_unknown_shipment_or_invalid_is_refused() {
        let w = World::new();
        let err = w
            .checkpoint("SH-9", cp("c1", "in_transit", "2026-11-20T20:00:00Z"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, TrackingError::UnknownShipment), "{err:?}");
        w.create(whole_order("SH-1")).await.unwrap();
        let err = w
            .checkpoint("SH-1", cp("c1", "teleported", "2026-11-20T20:00:00Z"), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, TrackingError::Invalid(ref e) if e.field == "status"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_orders_last_delivery_anchors_the_journey_once_and_rebases_the_points() {
        let w = World::new();
        let tent = shipment("SH-1", json!([{"sku": "TENT-2", "quantity": 1}]));
        let pegs = shipment("SH-2", json!([{"sku": "PEG-10", "quantity": 2}]));
        w.create(tent).await.unwrap();
        w.create(pegs).await.unwrap();
        let m = &w.merchant.id;
        let first = cp("d1", "delivered", "2026-11-22T10:00:00Z");
        let one = w.checkpoint("SH-1", first, None).await.unwrap();
        assert_eq!(one.order_delivered, Some(false));
        assert!(
            w.book
                .order_follow_ups(m, w.order_id())
                .await
                .unwrap()
                .is_empty()
        );

        let last = cp("d2", "delivered", "2026-11-23T10:00:00Z");
        let two = w.checkpoint("SH-2", last, None).await.unwrap();
        assert_eq!(two.order_delivered, Some(true));
        let follow_ups = w.book.order_follow_ups(m, w.order_id()).await.unwrap();
        assert!(!follow_ups.is_empty());
        let anchor: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert!(
            follow_ups
                .iter()
                .all(|f| f.anchor == anchor && f.anchor_reason == AnchorReason::Delivered)
        );
        let earn = w
            .book
            .ledger_entry(m, &w.order.order.customer.id, &order_source("SO-1001"))
            .unwrap();
        assert_eq!(
            earn.available_at,
            Some(available_at(anchor, &w.merchant.settings.loyalty))
        );

        // A later delivery scan of the same parcel reschedules nothing.
        let before = w.book.order_follow_ups(m, w.order_id()).await.unwrap();
        let again = cp("d3", "delivered", "2026-11-23T11:00:00Z");
        w.checkpoint("SH-2", again, None).await.unwrap();
        assert_eq!(
            w.book.order_follow_ups(m, w.order_id()).await.unwrap(),
            before
        );
    }

    /// A sweep that found the shipment's due check `check` due.
    struct Sweep {
        index: MemDue,
        merchants: MemMerchants,
        due: Due<ShipmentDue>,
    }

    impl Sweep {
        async fn of(w: &World, check: &str) -> Self {
            let index = MemDue::new();
            let id = w.shipment_id("SH-1");
            let body = w.book.due_check(&w.merchant.id, &id, check).unwrap();
            index.add(
                DueGroup::ShipmentChecks,
                &w.merchant.id,
                check,
                body.due_at,
                &body,
            );
            let now = body.due_at + jiff::SignedDuration::from_hours(1);
            w.clock.set(now);
            let (mut due, _) = index
                .due::<ShipmentDue>(DueGroup::ShipmentChecks, now, 30)
                .await
                .unwrap();
            Self {
                index,
                merchants: MemMerchants::with(w.merchant.clone()),
                due: due.pop().unwrap(),
            }
        }

        async fn run(&self, w: &World) -> CheckOutcome {
            w.use_case()
                .check(&self.merchants, &self.index, &self.due, deadline())
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_late_parcel_is_told_to_the_customer_and_the_merchant_once() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let sweep = Sweep::of(&w, "late").await;
        assert_eq!(sweep.run(&w).await, CheckOutcome::LateNotice);
        assert_eq!(
            w.sent()[1..],
            [
                "shipment_late ann@example.com",
                "merchant_late_alert ops@acme.example"
            ]
        );
        // The check left the index: a second sweep of the same item finds it taken.
        assert_eq!(sweep.run(&w).await, CheckOutcome::Taken);
        assert_eq!(w.sent().len(), 3);
    }

    #[tokio::test]
    async fn a_parcel_out_for_delivery_is_not_late() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let out = cp("c1", "out_for_delivery", "2026-11-21T08:00:00Z");
        w.checkpoint("SH-1", out, None).await.unwrap();
        let sweep = Sweep::of(&w, "late").await;
        assert_eq!(sweep.run(&w).await, CheckOutcome::NotNeeded);
        assert_eq!(w.sent().len(), 2, "shipped and out for delivery only");
    }

    #[tokio::test]
    async fn no_delivery_scan_anchors_the_journey_at_the_fallback() {
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let sweep = Sweep::of(&w, "fallback").await;
        assert_eq!(sweep.run(&w).await, CheckOutcome::Anchored);
        let m = &w.merchant.id;
        let follow_ups = w.book.order_follow_ups(m, w.order_id()).await.unwrap();
        assert!(!follow_ups.is_empty());
        assert!(
            follow_ups
                .iter()
                .all(|f| f.anchor_reason == AnchorReason::NoDeliveryScan)
        );
    }

    #[tokio::test]
    async fn a_late_notice_ses_throttled_stays_due() {
        let throttled = || SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        };
        let w = World::new();
        w.create(whole_order("SH-1")).await.unwrap();
        let w = World {
            mailer: ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
            ..w
        };
        let sweep = Sweep::of(&w, "late").await;
        assert_eq!(sweep.run(&w).await, CheckOutcome::LeftDue);
        assert!(w.mailer.accepted().is_empty());
        let (still, _) = sweep
            .index
            .due::<ShipmentDue>(DueGroup::ShipmentChecks, w.clock.now(), 30)
            .await
            .unwrap();
        assert_eq!(still.len(), 1, "still in the index for the next run");
    }
}
