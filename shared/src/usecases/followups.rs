//! A due follow-up (usage tips, feedback survey, cross-sell, review request), whoever sweeps it:
//! what is read for it (the order, the customer's contact state, the suppression, any earlier send
//! record and, for usage tips and cross-sell, the order's products, all in one batch; a cross-sell
//! reads the products they relate to in one more), whether it still applies (the order gone, the customer unsubscribed, opted out,
//! throttled or suppressed: skipped; quiet hours in their zone or the frequency cap: deferred), the
//! email claimed under the contact-state guard and sent once through the [`Courier`] under the
//! pace, and the follow-up settled on the outcome with every decision kept on it. An earlier
//! attempt's record is carried on from, never decided twice; a follow-up another sweep moved is
//! left where it is; a send SES could not take yet leaves it due.

use crate::domain::catalogue::{Product, Sku, distinct_skus};
use crate::domain::followup::{
    DecisionAction, DecisionEntry, FollowUp, FollowUpKind, FollowUpStatus, LinesDropped,
};
use crate::domain::followup_sweep::{ContactGuard, FollowUpClaim, FollowUpContext, PointsNote};
use crate::domain::marketing::{self, ContactState, Decision, DeferReason, SkipReason};
use crate::domain::order::{Order, OrderRecord};
use crate::domain::send::{EmailKind, SendIdentity, SendRecord, SendStatus};
use crate::domain::{CustomerId, EmailAddress, Merchant, MerchantId, Money, OrderId};
use crate::ports::catalogue::MAX_READ;
use crate::ports::feedback::FeedbackBook;
use crate::ports::followups::FollowUpBook;
use crate::ports::{Due, Mailer, MerchantDirectory, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Pacer, Retention, SendOutcome};
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The follow-ups a refunded or returned line no longer belongs in: a review request would ask
/// about it, a cross-sell would build on it.
pub const REFUNDED_LINE_KINDS: [FollowUpKind; 2] =
    [FollowUpKind::ReviewRequest, FollowUpKind::CrossSell];

/// The lines of `order` a refund of `amount` gives back: the SKUs it names (a shop's refund
/// lists its lines), else, for a refund naming none (Stripe's, the merchant API's), every line
/// when it refunds at least the order's whole amount, else none.
pub fn refunded_lines(order: &Order, named: Option<&[Sku]>, amount: Money) -> Vec<Sku> {
    match named {
        Some(skus) if !skus.is_empty() => distinct_skus(skus.iter().map(Sku::as_str)),
        _ if amount.currency == order.currency && amount.amount >= order.total => {
            distinct_skus(order.items.iter().map(|i| i.sku.as_str()))
        }
        _ => Vec::new(),
    }
}

/// Takes the lines `skus` of `order` (refunded, or returned) out of its pending review request
/// and cross-sell: neither will name them, and one left with none of its lines is cancelled with
/// `reason` (`refunded`, `returned`). Idempotent (a redelivered refund changes nothing) and safe
/// under concurrent refunds of other lines (each write is conditioned on what it read). The
/// follow-ups changed, with what became of them.
pub async fn drop_returned_lines<B: FeedbackBook>(
    book: &B,
    merchant: &MerchantId,
    order: &OrderId,
    skus: &[Sku],
    reason: &str,
    now: Timestamp,
) -> Result<Vec<(FollowUpKind, LinesDropped)>, StoreError> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let changed = book
        .drop_follow_up_skus(merchant, order, &REFUNDED_LINE_KINDS, skus, reason, now)
        .await?;
    if !changed.is_empty() {
        tracing::info!(order_id = %order, ?changed, lines = skus.len(), reason, "refunded lines dropped from follow-ups");
    }
    Ok(changed)
}

/// What became of one due follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpOutcome {
    /// This run sent its email.
    Sent,
    /// Not now (quiet hours, frequency cap): due again later.
    Deferred,
    /// Decided against for good (or its recipient is suppressed).
    Skipped,
    Failed,
    /// SES may or may not have sent it; parked for reconciliation, never resent.
    Ambiguous,
    /// Another sweep held or moved it.
    Taken,
    /// Not finished now; it stays due for the next run.
    LeftDue,
}

/// What a follow-up's email is composed from.
pub struct Draft<'a> {
    pub merchant: &'a Merchant,
    pub order: &'a OrderRecord,
    /// The catalogue's products it may talk about, by SKU: for usage tips the order's, for a
    /// cross-sell also the ones they relate to; none for the other kinds.
    pub products: &'a BTreeMap<Sku, Product>,
    /// The customer's own choices (language, time zone) over their order's.
    pub contact: &'a ContactState,
    pub kind: FollowUpKind,
    /// The email's reference (its send record's).
    pub reference: &'a str,
    /// The "points now available" note, if there is news.
    pub points: Option<&'a PointsNote>,
    pub now: Timestamp,
    /// The order's lines refunded or returned since the follow-up was scheduled: already out of
    /// `order`'s items, and never recommended back.
    pub refunded: &'a [Sku],
    /// What the journey counts from: the order's delivery, or shipping plus the fallback window.
    pub anchor: Timestamp,
}

/// How long a feedback survey waits before it looks again at a return of its order under way.
pub const RETURN_RECHECK_HOURS: i64 = 24;

pub struct FollowUps<'a, B, D, L, M> {
    pub book: &'a B,
    pub merchants: &'a D,
    pub courier: Courier<'a, L, M>,
    pub pacer: &'a Pacer,
    /// How long the send records are kept.
    pub retention: Retention,
}

impl<B, D, L, M> FollowUps<'_, B, D, L, M>
where
    B: FollowUpBook,
    D: MerchantDirectory,
    L: SendLedger,
    M: Mailer,
{
    /// Works on one due follow-up. `compose` builds its email when one is to go (`None`: nothing
    /// worth sending, recorded as a skip).
    pub async fn process<F>(
        &self,
        due: &Due<FollowUp>,
        deadline: Deadline,
        compose: F,
    ) -> Result<FollowUpOutcome, StoreError>
    where
        F: FnOnce(&Draft<'_>) -> Option<M::Message>,
    {
        let job = Job {
            uc: self,
            due,
            now: self.courier.clock.now(),
            deadline,
        };
        let Some(target) = job.target().await? else {
            return job.skip(SkipReason::NotFound).await;
        };
        // An earlier attempt claimed the send: carry on from its record, never decide twice.
        if let Some(record) = &target.context.send {
            return job.resume(&target, record, compose).await;
        }
        // A return of the order under way: the survey asks about the order once it is settled.
        if target.kind == FollowUpKind::FeedbackSurvey && target.context.return_open {
            let until = job.now + SignedDuration::from_hours(RETURN_RECHECK_HOURS);
            return job.defer(until, DeferReason::ReturnInProgress).await;
        }
        match job.decide(&target, &target.context.contact) {
            Decision::Skip(reason) => job.skip(reason).await,
            Decision::Defer { until, reason } => job.defer(until, reason).await,
            Decision::Send => job.send(&target, compose).await,
        }
    }
}

/// One due follow-up being worked on.
struct Job<'a, 'u, B, D, L, M> {
    uc: &'a FollowUps<'u, B, D, L, M>,
    due: &'a Due<FollowUp>,
    now: Timestamp,
    deadline: Deadline,
}

/// What the sweep read for a follow-up it can decide on.
struct Target {
    merchant: Arc<Merchant>,
    customer_id: CustomerId,
    kind: FollowUpKind,
    order: OrderRecord,
    context: FollowUpContext,
    /// The email's identity.
    email: SendIdentity,
    /// Whether the order's products were read with the context (false only for a follow-up
    /// written before it kept its order's SKUs).
    products_read: bool,
    /// The order's lines refunded since it was scheduled (out of `order`'s items).
    refunded: Vec<Sku>,
    /// The journey's anchor.
    anchor: Timestamp,
}

impl<B, D, L, M> Job<'_, '_, B, D, L, M>
where
    B: FollowUpBook,
    D: MerchantDirectory,
    L: SendLedger,
    M: Mailer,
{
    /// Reads the merchant, the order, the contact state, the suppression and any earlier send
    /// record; `None` when the follow-up is about something that no longer exists.
    async fn target(&self) -> Result<Option<Target>, StoreError> {
        let Ok(follow_up) = &self.due.entry else {
            tracing::error!(key = %self.due.token, "malformed follow-up; skipped");
            return Ok(None);
        };
        let merchant_id = &self.due.merchant;
        let Ok(customer_id) = CustomerId::parse("customer_id", &follow_up.customer_id) else {
            return Ok(None);
        };
        let Some(merchant) = self.uc.merchants.merchant(merchant_id).await? else {
            return Ok(None);
        };
        let kind = follow_up.kind;
        let order_id = &follow_up.order_id;
        let email = SendIdentity::new(
            merchant_id,
            &customer_id,
            EmailKind::from(kind),
            order_id.as_str(),
            0,
        );
        let recipient = follow_up
            .recipient
            .as_deref()
            .and_then(|r| EmailAddress::parse("recipient", r).ok());
        let talks_of_products = matches!(kind, FollowUpKind::UsageTips | FollowUpKind::CrossSell);
        let skus: &[Sku] = match talks_of_products {
            true => &follow_up.skus,
            false => &[],
        };
        let mut context = self
            .uc
            .book
            .follow_up_context(
                merchant_id,
                order_id,
                &customer_id,
                recipient.as_ref(),
                &email,
                skus,
            )
            .await?;
        let Some(mut order) = context.order.take() else {
            return Ok(None);
        };
        // Lines refunded or returned since it was scheduled: its email never names them.
        if !follow_up.refunded_skus.is_empty() {
            order
                .order
                .items
                .retain(|i| !follow_up.refunded_skus.iter().any(|s| s.as_str() == i.sku));
        }

        Ok(Some(Target {
            merchant,
            customer_id,
            kind,
            order,
            context,
            email,
            products_read: !(talks_of_products && follow_up.skus.is_empty()),
            refunded: follow_up.refunded_skus.clone(),
            anchor: follow_up.anchor,
        }))
    }

    /// The marketing rules on `contact`, in the zone the customer chose, else their order's, else
    /// the merchant's.
    fn decide(&self, target: &Target, contact: &ContactState) -> Decision {
        let zone = marketing::recipient_zone(
            contact
                .time_zone
                .as_deref()
                .or(target.order.order.customer.time_zone.as_deref()),
            &target.merchant.time_zone,
        );
        marketing::decide(
            target.kind,
            self.now,
            &zone,
            contact,
            target.context.suppressed,
            &target.merchant.settings.marketing,
        )
    }

    /// The points note, when the merchant runs a loyalty programme (one read of the ledger).
    async fn points_note(&self, target: &Target) -> Result<Option<PointsNote>, StoreError> {
        if !target.merchant.settings.loyalty.enabled {
            return Ok(None);
        }
        let state = self
            .uc
            .book
            .points_ledger(&target.merchant.id, &target.customer_id)
            .await?;
        Ok(PointsNote::of(&state, &target.merchant, self.now))
    }

    /// The products the email may talk about: those read with the follow-up, and for a
    /// cross-sell the products they relate to that the customer did not buy (one more batch read
    /// of at most 100, none when there is nothing to look up).
    async fn products(&self, target: &Target) -> Result<BTreeMap<Sku, Product>, StoreError> {
        let mut products = target.context.products.clone();
        // A follow-up written before it kept its order's SKUs: read them from the order now (one
        // more batch read; for such a cross-sell, two).
        if !target.products_read {
            let skus = distinct_skus(target.order.order.items.iter().map(|i| i.sku.as_str()));
            products = self.uc.book.products(&target.merchant.id, &skus).await?;
        }
        if target.kind != FollowUpKind::CrossSell {
            return Ok(products);
        }
        let bought: BTreeSet<&str> = target
            .order
            .order
            .items
            .iter()
            .map(|i| i.sku.as_str())
            .chain(target.refunded.iter().map(Sku::as_str))
            .collect();
        let mut seen = BTreeSet::new();
        let related: Vec<Sku> = target
            .order
            .order
            .items
            .iter()
            .filter_map(|i| products.get(i.sku.as_str()))
            .flat_map(|p| p.related.iter())
            .filter(|r| !bought.contains(r.as_str()) && !products.contains_key(*r))
            .filter(|r| seen.insert(*r))
            .take(MAX_READ)
            .cloned()
            .collect();
        if !related.is_empty() {
            let found = self.uc.book.products(&target.merchant.id, &related).await?;
            products.extend(found);
        }
        Ok(products)
    }

    fn compose<F>(
        &self,
        target: &Target,
        (products, note): (&BTreeMap<Sku, Product>, Option<&PointsNote>),
        compose: F,
    ) -> Option<M::Message>
    where
        F: FnOnce(&Draft<'_>) -> Option<M::Message>,
    {
        compose(&Draft {
            merchant: &target.merchant,
            order: &target.order,
            products,
            contact: &target.context.contact,
            kind: target.kind,
            reference: &target.email.reference(),
            points: note,
            now: self.now,
            refunded: &target.refunded,
            anchor: target.anchor,
        })
    }

    async fn skip(&self, reason: SkipReason) -> Result<FollowUpOutcome, StoreError> {
        let decision = DecisionEntry::new(self.now, DecisionAction::Skipped, Some(reason.as_str()));
        let moved = self
            .uc
            .book
            .settle_follow_up(
                &self.due.token,
                FollowUpStatus::Skipped,
                &decision,
                None,
                None,
            )
            .await?;
        Ok(match moved {
            true => FollowUpOutcome::Skipped,
            false => FollowUpOutcome::Taken,
        })
    }

    async fn defer(
        &self,
        until: Timestamp,
        reason: DeferReason,
    ) -> Result<FollowUpOutcome, StoreError> {
        let mut decision =
            DecisionEntry::new(self.now, DecisionAction::Deferred, Some(reason.as_str()));
        decision.until = Some(until);
        let moved = self
            .uc
            .book
            .defer_follow_up(&self.due.token, until, &decision)
            .await?;
        Ok(match moved {
            true => FollowUpOutcome::Deferred,
            false => FollowUpOutcome::Taken,
        })
    }

    /// Carries on from the record an earlier attempt left.
    async fn resume<F>(
        &self,
        target: &Target,
        record: &SendRecord,
        compose: F,
    ) -> Result<FollowUpOutcome, StoreError>
    where
        F: FnOnce(&Draft<'_>) -> Option<M::Message>,
    {
        let note = self.points_note(target).await?;
        let products = self.products(target).await?;
        let outcome = self
            .uc
            .courier
            .resume(&target.email, record, self.deadline, || {
                self.compose(target, (&products, note.as_ref()), compose)
            })
            .await?;
        self.finish(target, outcome, record, note.is_some()).await
    }

    /// Claims the email with the contact-state guard (frequency cap, survey throttle,
    /// unsubscribe) and sends it.
    async fn send<F>(&self, target: &Target, compose: F) -> Result<FollowUpOutcome, StoreError>
    where
        F: FnOnce(&Draft<'_>) -> Option<M::Message>,
    {
        let (uc, now, kind) = (self.uc, self.now, target.kind);
        let Some(to) = target.order.order.customer.email.as_ref() else {
            return self.skip(SkipReason::NoAddress).await;
        };
        let note = self.points_note(target).await?;
        let products = self.products(target).await?;
        let Some(email) = self.compose(target, (&products, note.as_ref()), compose) else {
            return self.skip(SkipReason::NothingToSend).await;
        };
        if !uc.pacer.slot(self.deadline).await {
            return Ok(FollowUpOutcome::LeftDue);
        }
        let rules = &target.merchant.settings.marketing;
        let since = |span: SignedDuration| now.checked_sub(span).ok();
        let is_survey = kind == FollowUpKind::FeedbackSurvey;
        let guard = ContactGuard {
            cap_since: (rules.frequency_cap_hours > 0)
                .then(|| since(rules.cap()))
                .flatten(),
            survey_since: (is_survey && rules.survey_throttle_days > 0)
                .then(|| since(rules.survey_throttle()))
                .flatten(),
            is_survey,
        };
        let record = target.email.claim(
            to.as_str(),
            now,
            self.deadline.lease_until(uc.courier.clock),
        );
        let claimed = uc
            .book
            .claim_follow_up(
                &self.due.token,
                (&self.due.merchant, &target.customer_id),
                guard,
                (&target.email, &record),
                uc.retention.send_expiry(&target.merchant, now),
                now,
            )
            .await?;
        let courier = &uc.courier;
        let outcome = match claimed {
            FollowUpClaim::Claimed => {
                courier
                    .send_claimed(&target.email, &record.claim_token, &email, self.deadline)
                    .await?
            }
            FollowUpClaim::ClaimExists => match courier.store.get_send(&target.email).await? {
                Some(theirs) => {
                    courier
                        .resume(&target.email, &theirs, self.deadline, move || Some(email))
                        .await?
                }
                None => return Ok(FollowUpOutcome::LeftDue),
            },
            FollowUpClaim::Moved => return Ok(FollowUpOutcome::Taken),
            // Another follow-up of this customer went out (or they unsubscribed) since we read:
            // decide again on what is stored now.
            FollowUpClaim::ContactChanged => {
                let contact = uc
                    .book
                    .contact(&self.due.merchant, &target.customer_id)
                    .await?;
                return match self.decide(target, &contact) {
                    Decision::Skip(reason) => self.skip(reason).await,
                    Decision::Defer { until, reason } => self.defer(until, reason).await,
                    // The contention has passed already: the next run sends it.
                    Decision::Send => Ok(FollowUpOutcome::LeftDue),
                };
            }
        };
        self.finish(target, outcome, &record, note.is_some()).await
    }

    /// Settles the follow-up on the send's outcome and, if the email carried the points note,
    /// records that the customer was told.
    async fn finish(
        &self,
        target: &Target,
        outcome: SendOutcome,
        record: &SendRecord,
        noted: bool,
    ) -> Result<FollowUpOutcome, StoreError> {
        let noted = noted && matches!(outcome, SendOutcome::Sent { .. });
        let settled = self.settle(target, outcome, record).await?;
        if noted {
            self.uc
                .book
                .note_available(&self.due.merchant, &target.customer_id, self.now)
                .await?;
        }
        Ok(settled)
    }

    /// Records what became of the send on the follow-up and takes it out of the due index.
    async fn settle(
        &self,
        target: &Target,
        outcome: SendOutcome,
        record: &SendRecord,
    ) -> Result<FollowUpOutcome, StoreError> {
        let (action, message_id, result) = match &outcome {
            SendOutcome::Sent { message_id } => (
                DecisionAction::Sent,
                Some(message_id.clone()),
                FollowUpOutcome::Sent,
            ),
            // Sent by an earlier attempt (or another sweep): settle it, but it is not this sweep's
            // send.
            SendOutcome::Settled(SendStatus::Sent) => (
                DecisionAction::Sent,
                record.message_id.clone(),
                FollowUpOutcome::Taken,
            ),
            SendOutcome::Settled(SendStatus::Ambiguous) | SendOutcome::Ambiguous => {
                (DecisionAction::Ambiguous, None, FollowUpOutcome::Ambiguous)
            }
            // Suppressed since an earlier attempt was told to retry.
            SendOutcome::Suppressed
            | SendOutcome::Settled(SendStatus::Suppressed)
            | SendOutcome::Unaddressed => (DecisionAction::Skipped, None, FollowUpOutcome::Skipped),
            SendOutcome::Settled(_) | SendOutcome::Rejected { .. } => {
                (DecisionAction::Failed, None, FollowUpOutcome::Failed)
            }
            SendOutcome::InProgress => return Ok(FollowUpOutcome::Taken),
            SendOutcome::RetryLater { reason } => {
                tracing::warn!(key = %self.due.token, reason, "not sent now; stays due");
                return Ok(FollowUpOutcome::LeftDue);
            }
        };
        let reason = match &outcome {
            SendOutcome::Rejected { code } => Some(code.as_str()),
            SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
                Some(SkipReason::Suppressed.as_str())
            }
            SendOutcome::Unaddressed => Some(SkipReason::NoAddress.as_str()),
            _ => None,
        };
        let decision = DecisionEntry::new(self.now, action, reason);
        let status = match action {
            DecisionAction::Sent => FollowUpStatus::Sent,
            DecisionAction::Ambiguous => FollowUpStatus::Ambiguous,
            DecisionAction::Skipped => FollowUpStatus::Skipped,
            _ => FollowUpStatus::Failed,
        };
        let order_id = &target.order.order.id;
        let survey_sent = (status == FollowUpStatus::Sent
            && target.kind == FollowUpKind::FeedbackSurvey)
            .then_some((&self.due.merchant, order_id));
        let moved = self
            .uc
            .book
            .settle_follow_up(
                &self.due.token,
                status,
                &decision,
                message_id.as_deref(),
                survey_sent,
            )
            .await?;
        // An email this invocation sent counts as sent even if another sweep settled the
        // follow-up first; one found already sent counts for whoever settles it.
        let sent_now = matches!(outcome, SendOutcome::Sent { .. });
        Ok(if moved || sent_now {
            result
        } else {
            FollowUpOutcome::Taken
        })
    }
}

/// A due follow-up on the in-memory follow-ups (with their due index), merchants, send ledger and
/// mailer.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::followup::AnchorReason;
    use crate::domain::loyalty::{LedgerEntry, LedgerKind};
    use crate::domain::{MerchantId, OrderId};
    use crate::ports::{DueGroup, DueWork, SendFailure};
    use crate::testing::fixtures;
    use crate::testing::followups::MemFollowUps;
    use crate::testing::{MemMerchants, ScriptedMailer};
    use std::time::Duration;

    /// 11:00 in Berlin, the merchant's zone: outside quiet hours.
    const DAYTIME: &str = "2026-12-01T10:00:00Z";
    /// 23:00 in Berlin: quiet hours until 08:00.
    const NIGHT: &str = "2026-12-01T22:00:00Z";

    struct World {
        book: MemFollowUps,
        merchants: MemMerchants,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        pacer: Pacer,
        merchant: MerchantId,
        customer: CustomerId,
        order: OrderId,
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    impl World {
        fn at(now: &str) -> Self {
            Self::with(now, ScriptedMailer::new(), |_| {})
        }

        fn with(
            now: &str,
            mailer: ScriptedMailer<String>,
            merchant: impl FnOnce(&mut Merchant),
        ) -> Self {
            let mut m = fixtures::merchant();
            merchant(&mut m);
            let record = fixtures::order_record(&m.id, fixtures::order());
            let book = MemFollowUps::new();
            book.put_order(&record).unwrap();
            Self {
                book,
                merchant: m.id.clone(),
                merchants: MemMerchants::with(m),
                mailer,
                clock: ManualClock::new(t(now)),
                pacer: Pacer::new(1000),
                customer: record.order.customer.id.clone(),
                order: record.order.id.clone(),
            }
        }

        /// A follow-up of `kind` for the sample order, due an hour ago.
        fn follow_up(&self, kind: FollowUpKind) -> FollowUp {
            let now = self.clock.now();
            FollowUp {
                order_id: self.order.clone(),
                customer_id: self.customer.to_string(),
                recipient: Some("ann@example.com".into()),
                kind,
                due_at: now - SignedDuration::from_hours(1),
                anchor: now - SignedDuration::from_hours(24 * 7),
                anchor_reason: AnchorReason::Delivered,
                status: FollowUpStatus::Scheduled,
                decisions: Vec::new(),
                outcome: None,
                message_id: None,
                skus: Vec::new(),
                refunded_skus: Vec::new(),
            }
        }

        fn schedule(&self, kind: FollowUpKind) -> FollowUp {
            let f = self.follow_up(kind);
            self.book.schedule(&self.merchant, &f).unwrap();
            f
        }

        /// What a sweep reads from the due index now.
        async fn due(&self) -> Vec<Due<FollowUp>> {
            let (due, _) = self
                .book
                .table()
                .due(DueGroup::FollowUps, self.clock.now(), 14)
                .await
                .unwrap();
            due
        }

        /// Schedules a follow-up of `kind` and reads it due.
        async fn scheduled_due(&self, kind: FollowUpKind) -> (FollowUp, Due<FollowUp>) {
            let f = self.schedule(kind);
            (f, self.one_due().await)
        }

        /// Processes the one follow-up due now.
        async fn process_next(&self) -> FollowUpOutcome {
            let due = self.one_due().await;
            self.process(&due).await.unwrap()
        }

        async fn one_due(&self) -> Due<FollowUp> {
            let mut due = self.due().await;
            assert_eq!(due.len(), 1, "one follow-up due");
            due.pop().unwrap()
        }

        /// Processes `due`; the composed email names the kind and the points note.
        async fn process(&self, due: &Due<FollowUp>) -> Result<FollowUpOutcome, StoreError> {
            self.process_with(due, |d: &Draft<'_>| {
                Some(format!(
                    "{} {:?}",
                    d.kind.as_str(),
                    d.points.map(|p| p.newly)
                ))
            })
            .await
        }

        async fn process_with(
            &self,
            due: &Due<FollowUp>,
            compose: impl FnOnce(&Draft<'_>) -> Option<String>,
        ) -> Result<FollowUpOutcome, StoreError> {
            let follow_ups = FollowUps {
                book: &self.book,
                merchants: &self.merchants,
                courier: fixtures::courier(&self.book.ledger, &self.mailer, &self.clock),
                pacer: &self.pacer,
                retention: Retention {
                    default: Duration::ZERO,
                },
            };
            follow_ups.process(due, fixtures::deadline(), compose).await
        }

        /// `f` was closed for `outcome`, and nothing was sent.
        fn closed_unsent(&self, f: &FollowUp, outcome: &str) {
            assert_eq!(self.stored(f).0.outcome.as_deref(), Some(outcome));
            assert_eq!(self.mailer.calls(), 0);
        }

        /// The follow-up as stored and its due sort key (`None`: out of the index).
        fn stored(&self, f: &FollowUp) -> (FollowUp, Option<String>) {
            self.book.follow_up(&self.merchant, f).unwrap()
        }

        fn contact(&self) -> ContactState {
            self.book.contact(&self.merchant, &self.customer)
        }

        fn set_contact(&self, contact: ContactState) {
            self.book
                .set_contact(&self.merchant, &self.customer, &contact)
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_due_survey_is_sent_once_settled_and_stamped() {
        let w = World::at(DAYTIME);
        let (f, due) = w.scheduled_due(FollowUpKind::FeedbackSurvey).await;
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::Sent);

        let (stored, seen) = w.stored(&f);
        assert_eq!(stored.status, FollowUpStatus::Sent);
        assert_eq!(seen, None, "out of the due index");
        assert!(stored.message_id.is_some());
        assert_eq!(stored.outcome.as_deref(), Some("sent"));
        let actions: Vec<_> = stored.decisions.iter().map(|d| d.action).collect();
        assert_eq!(actions, vec![DecisionAction::Sent]);
        // In the merchant's sent-surveys index; the contact state carries the send.
        assert!(w.book.field(&w.merchant, &f, "GSI1PK").is_string());
        let contact = w.contact();
        assert_eq!(contact.last_marketing_at, Some(w.clock.now()));
        assert_eq!(contact.last_survey_at, Some(w.clock.now()));
        assert_eq!(w.mailer.accepted(), vec!["feedback_survey None".to_owned()]);

        // A second sweep that read the same item before the settle: nothing is sent again.
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::Taken);
        assert!(w.due().await.is_empty());
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn two_sweeps_at_once_send_one_email() {
        let w = World::at(DAYTIME);
        w.schedule(FollowUpKind::UsageTips);
        let (a, b) = (w.one_due().await, w.one_due().await);
        let (a, b) = tokio::join!(w.process(&a), w.process(&b));
        let mut outcomes = vec![a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            outcomes,
            vec![FollowUpOutcome::Sent, FollowUpOutcome::Taken]
        );
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn each_rule_that_no_longer_applies_skips_with_its_reason() {
        type Setup = fn(&World);
        let cases: [(&str, FollowUpKind, Setup); 5] = [
            ("suppressed", FollowUpKind::UsageTips, |w| {
                w.book.ledger.suppress(&w.merchant, "ann@example.com")
            }),
            ("unsubscribed", FollowUpKind::CrossSell, |w| {
                w.set_contact(ContactState {
                    unsubscribed: true,
                    ..ContactState::default()
                })
            }),
            ("opted_out", FollowUpKind::ReviewRequest, |w| {
                w.set_contact(ContactState {
                    opted_out: [FollowUpKind::ReviewRequest].into(),
                    ..ContactState::default()
                })
            }),
            ("survey_throttled", FollowUpKind::FeedbackSurvey, |w| {
                w.set_contact(ContactState {
                    last_survey_at: Some(w.clock.now() - SignedDuration::from_hours(24 * 10)),
                    ..ContactState::default()
                })
            }),
            // The order was erased on request (a returned order's follow-ups are cancelled).
            ("not_found", FollowUpKind::UsageTips, |w| {
                w.book.erase_order(&w.merchant, &w.order)
            }),
        ];
        for (reason, kind, setup) in cases {
            let w = World::at(DAYTIME);
            let f = w.schedule(kind);
            setup(&w);
            let due = w.one_due().await;
            assert_eq!(
                w.process(&due).await.unwrap(),
                FollowUpOutcome::Skipped,
                "{reason}"
            );
            let (stored, seen) = w.stored(&f);
            assert_eq!(
                (stored.status, seen),
                (FollowUpStatus::Skipped, None),
                "{reason}"
            );
            assert_eq!(stored.outcome.as_deref(), Some(reason));
            assert_eq!(stored.decisions[0].action, DecisionAction::Skipped);
            assert_eq!(w.mailer.calls(), 0, "{reason}");
            assert_eq!(
                w.book.ledger.record(&send_id(&w, kind)),
                None,
                "no claim: {reason}"
            );
        }
    }

    fn send_id(w: &World, kind: FollowUpKind) -> SendIdentity {
        SendIdentity::new(
            &w.merchant,
            &w.customer,
            EmailKind::from(kind),
            w.order.as_str(),
            0,
        )
    }

    #[tokio::test]
    async fn nothing_worth_sending_is_a_skip_and_claims_nothing() {
        let w = World::at(DAYTIME);
        let (f, due) = w.scheduled_due(FollowUpKind::ReviewRequest).await;
        let outcome = w.process_with(&due, |_| None).await.unwrap();
        assert_eq!(outcome, FollowUpOutcome::Skipped);
        assert_eq!(w.stored(&f).0.outcome.as_deref(), Some("nothing_to_send"));
        assert_eq!(w.contact(), ContactState::default(), "not stamped");
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn quiet_hours_in_the_merchants_zone_defer_it_to_the_morning() {
        let w = World::at(NIGHT);
        let (f, due) = w.scheduled_due(FollowUpKind::UsageTips).await;
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::Deferred);
        let (stored, seen) = w.stored(&f);
        let morning = t("2026-12-02T07:00:00Z");
        assert_eq!(stored.status, FollowUpStatus::Scheduled);
        assert_eq!(stored.due_at, morning, "08:00 in Berlin");
        assert_ne!(
            seen.as_deref(),
            Some(due.token.due_order()),
            "moved in the index"
        );
        let decision = &stored.decisions[0];
        assert_eq!(decision.action, DecisionAction::Deferred);
        assert_eq!(decision.reason.as_deref(), Some("quiet_hours"));
        assert_eq!(decision.until, Some(morning));
        assert!(w.due().await.is_empty(), "not due again tonight");
        assert_eq!(w.mailer.calls(), 0);

        // In the morning it goes.
        w.clock.set(morning);
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
    }

    #[tokio::test]
    async fn a_return_under_way_defers_the_survey_until_it_is_settled() {
        use crate::domain::returns::ReturnTally;
        let w = World::at(NIGHT);
        let noon = t("2026-12-02T11:00:00Z");
        w.clock.set(noon);
        let open = ReturnTally {
            open: vec![crate::domain::ids::ReturnId::parse("r", "r0123456789abcdef").unwrap()],
            version: 1,
            ..ReturnTally::default()
        };
        let key = crate::adapters::store::keys::order_returns(&w.merchant, &w.order);
        let put = |tally: &ReturnTally| {
            w.book
                .table()
                .write(crate::testing::Write::Put {
                    key: crate::testing::RowKey::from(&key),
                    row: serde_json::to_value(tally).unwrap(),
                    condition: Box::new(|_| true),
                })
                .unwrap();
        };
        put(&open);
        let (f, due) = w.scheduled_due(FollowUpKind::FeedbackSurvey).await;
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::Deferred);
        let (stored, _) = w.stored(&f);
        assert_eq!(
            stored.decisions[0].reason.as_deref(),
            Some("return_in_progress")
        );
        assert_eq!(
            stored.due_at,
            noon + SignedDuration::from_hours(RETURN_RECHECK_HOURS)
        );
        assert_eq!(w.mailer.calls(), 0);
        // Still under way a day later: deferred again; settled: the survey goes.
        w.clock.set(stored.due_at);
        assert_eq!(w.process_next().await, FollowUpOutcome::Deferred);
        put(&ReturnTally {
            open: Vec::new(),
            version: 2,
            ..open.clone()
        });
        w.clock
            .set(w.clock.now() + SignedDuration::from_hours(RETURN_RECHECK_HOURS));
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
    }

    #[tokio::test]
    async fn the_time_zone_the_customer_chose_decides_quiet_hours() {
        // 17:00 in New York while Berlin sleeps.
        let w = World::at(NIGHT);
        w.schedule(FollowUpKind::UsageTips);
        w.set_contact(ContactState {
            time_zone: Some("America/New_York".into()),
            ..ContactState::default()
        });
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
    }

    #[tokio::test]
    async fn the_frequency_cap_defers_until_it_ends() {
        let w = World::at(DAYTIME);
        let f = w.schedule(FollowUpKind::CrossSell);
        let last = w.clock.now() - SignedDuration::from_hours(2);
        w.set_contact(ContactState {
            last_marketing_at: Some(last),
            ..ContactState::default()
        });
        assert_eq!(w.process_next().await, FollowUpOutcome::Deferred);
        let (stored, _) = w.stored(&f);
        assert_eq!(stored.decisions[0].reason.as_deref(), Some("frequency_cap"));
        assert!(stored.due_at >= last + SignedDuration::from_hours(16));
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_send_ses_could_not_take_yet_stays_due_and_the_next_sweep_resumes_it() {
        let throttled = || SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        };
        let w = World::with(
            DAYTIME,
            ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
            |_| {},
        );
        let (f, due) = w.scheduled_due(FollowUpKind::UsageTips).await;
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::LeftDue);
        let (stored, seen) = w.stored(&f);
        assert_eq!(stored.status, FollowUpStatus::Sending);
        assert_eq!(seen.as_deref(), Some(due.token.due_order()), "still due");

        // The next run carries on from the released claim and sends, once.
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
        assert_eq!(w.stored(&f).0.status, FollowUpStatus::Sent);
        assert_eq!(w.mailer.accepted().len(), 1);
        assert!(w.due().await.is_empty());
    }

    #[tokio::test]
    async fn a_follow_up_another_sweep_moved_is_left_alone() {
        let w = World::at(DAYTIME);
        let f = w.schedule(FollowUpKind::UsageTips);
        let stale = w.one_due().await;
        // Another sweep defers it after this one read it.
        let later = w.clock.now() + SignedDuration::from_hours(5);
        let theirs =
            DecisionEntry::new(w.clock.now(), DecisionAction::Deferred, Some("quiet_hours"));
        assert!(
            w.book
                .defer_follow_up(&stale.token, later, &theirs)
                .await
                .unwrap()
        );
        let before = w.stored(&f);

        assert_eq!(w.process(&stale).await.unwrap(), FollowUpOutcome::Taken);
        assert_eq!(w.stored(&f), before, "unchanged");
        assert_eq!(w.contact(), ContactState::default(), "not stamped");
        assert_eq!(w.mailer.calls(), 0);

        // A skip decided on a stale read moves nothing either.
        w.book.ledger.suppress(&w.merchant, "ann@example.com");
        assert_eq!(w.process(&stale).await.unwrap(), FollowUpOutcome::Taken);
        assert_eq!(w.stored(&f), before);
    }

    #[tokio::test]
    async fn a_recipient_suppressed_after_the_read_gets_nothing_and_is_skipped_next() {
        let w = World::at(DAYTIME);
        let (f, due) = w.scheduled_due(FollowUpKind::UsageTips).await;
        // The bounce lands while the email is being composed: the claim's guard finds it.
        let outcome = w
            .process_with(&due, |_| {
                w.book.ledger.suppress(&w.merchant, "ann@example.com");
                Some("tips".into())
            })
            .await
            .unwrap();
        assert_eq!(outcome, FollowUpOutcome::LeftDue);
        assert_eq!(w.mailer.calls(), 0);
        assert_eq!(
            w.book.ledger.record(&send_id(&w, FollowUpKind::UsageTips)),
            None
        );
        assert_eq!(w.contact(), ContactState::default(), "nothing stamped");

        assert_eq!(w.process_next().await, FollowUpOutcome::Skipped);
        w.closed_unsent(&f, "suppressed");
    }

    #[tokio::test]
    async fn an_unsubscribe_after_the_read_is_decided_again() {
        let w = World::at(DAYTIME);
        let (f, due) = w.scheduled_due(FollowUpKind::CrossSell).await;
        let outcome = w
            .process_with(&due, |_| {
                w.set_contact(ContactState {
                    unsubscribed: true,
                    ..ContactState::default()
                });
                Some("cross-sell".into())
            })
            .await
            .unwrap();
        assert_eq!(outcome, FollowUpOutcome::Skipped);
        w.closed_unsent(&f, "unsubscribed");
    }

    #[tokio::test]
    async fn a_transient_store_failure_leaves_it_due_with_nothing_sent() {
        let w = World::at(DAYTIME);
        let (f, due) = w.scheduled_due(FollowUpKind::UsageTips).await;
        w.book
            .table()
            .fail_next_writes(1, "TransactWriteItems claim follow-up");
        let err = w.process(&due).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        let (stored, seen) = w.stored(&f);
        assert_eq!(stored.status, FollowUpStatus::Scheduled);
        assert_eq!(seen.as_deref(), Some(due.token.due_order()));
        assert_eq!(w.contact(), ContactState::default());
        assert_eq!(w.mailer.calls(), 0);

        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
    }

    #[tokio::test]
    async fn a_malformed_or_orphaned_follow_up_is_skipped() {
        let w = World::with(DAYTIME, ScriptedMailer::new(), |_| {});
        let f = w.schedule(FollowUpKind::UsageTips);
        let mut due = w.one_due().await;
        due.entry = Err(StoreError::ConditionFailed);
        assert_eq!(w.process(&due).await.unwrap(), FollowUpOutcome::Skipped);
        assert_eq!(w.stored(&f).0.outcome.as_deref(), Some("not_found"));

        let w = World {
            merchants: MemMerchants::default(),
            ..World::at(DAYTIME)
        };
        w.schedule(FollowUpKind::UsageTips);
        assert_eq!(w.process_next().await, FollowUpOutcome::Skipped);
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn newly_available_points_are_told_once() {
        let w = World::with(DAYTIME, ScriptedMailer::new(), |m| {
            m.settings.loyalty.enabled = true;
        });
        let earned = w.clock.now() - SignedDuration::from_hours(24 * 40);
        let earn = LedgerEntry {
            kind: LedgerKind::Earn,
            points: 200,
            source: "order:SO-1001".into(),
            created_at: earned,
            available_at: Some(earned + SignedDuration::from_hours(24 * 30)),
            against: None,
            reason: None,
            spend: None,
        };
        w.book.post_points(&w.merchant, &w.customer, &earn).unwrap();
        w.schedule(FollowUpKind::UsageTips);
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);

        // The next follow-up, past the cap, has no news to tell.
        w.clock.advance(SignedDuration::from_hours(24 * 3));
        w.schedule(FollowUpKind::CrossSell);
        assert_eq!(w.process_next().await, FollowUpOutcome::Sent);
        assert_eq!(
            w.mailer.accepted(),
            vec![
                "usage_tips Some(200)".to_owned(),
                "cross_sell None".to_owned()
            ]
        );
    }

    /// Stores a product of the sample merchant's catalogue.
    async fn product(w: &World, sku: &str, related: &[&str]) {
        use crate::ports::catalogue::Catalogue;
        let input: crate::domain::catalogue::ProductInput = serde_json::from_value(
            serde_json::json!({"name": sku, "tips": {"en": [format!("{sku} tip")]}, "related": related}),
        )
        .unwrap();
        let p = input
            .validate(Sku::parse("sku", sku).unwrap(), w.clock.now())
            .unwrap();
        w.book.put_product(&w.merchant, &p).await.unwrap();
    }

    /// Schedules `kind` for the sample order, keeping its SKUs as the journey's anchoring does
    /// (or not, as a follow-up written before they were kept), and sends it: the SKUs of the
    /// products its draft had, and the batch reads of products beyond the follow-up's own read.
    async fn products_drafted(kind: FollowUpKind, keeps_skus: bool) -> (Vec<String>, usize) {
        let w = World::at(DAYTIME);
        product(&w, "TENT-2", &["MAT-1", "PEG-10", "GHOST"]).await;
        product(&w, "MAT-1", &[]).await;
        product(&w, "UNRELATED", &[]).await;
        let mut f = w.follow_up(kind);
        if keeps_skus {
            f.skus = vec![
                Sku::parse("sku", "TENT-2").unwrap(),
                Sku::parse("sku", "PEG-10").unwrap(),
            ];
        }
        w.book.schedule(&w.merchant, &f).unwrap();
        let due = w.one_due().await;
        let mut drafted = Vec::new();
        let outcome = w
            .process_with(&due, |d: &Draft<'_>| {
                drafted = d.products.keys().map(|s| s.to_string()).collect();
                Some("email".into())
            })
            .await
            .unwrap();
        assert_eq!(outcome, FollowUpOutcome::Sent);
        (drafted, w.book.product_reads.count())
    }

    #[tokio::test]
    async fn usage_tips_read_the_orders_products_with_the_follow_up_and_nothing_more() {
        assert_eq!(
            products_drafted(FollowUpKind::UsageTips, true).await,
            (vec!["TENT-2".to_owned()], 0)
        );
    }

    #[tokio::test]
    async fn a_cross_sell_reads_the_related_products_in_one_more_batch() {
        assert_eq!(
            products_drafted(FollowUpKind::CrossSell, true).await,
            (vec!["MAT-1".to_owned(), "TENT-2".to_owned()], 1)
        );
    }

    #[tokio::test]
    async fn a_follow_up_without_its_skus_reads_them_from_the_order() {
        assert_eq!(
            products_drafted(FollowUpKind::UsageTips, false).await,
            (vec!["TENT-2".to_owned()], 1)
        );
    }

    #[tokio::test]
    async fn a_survey_reads_no_products() {
        assert_eq!(
            products_drafted(FollowUpKind::FeedbackSurvey, true).await,
            (vec![], 0)
        );
    }

    #[tokio::test]
    async fn a_review_request_never_names_a_refunded_line() {
        let w = World::at(DAYTIME);
        let mut f = w.follow_up(FollowUpKind::ReviewRequest);
        f.skus = vec![Sku::parse("sku", "TENT-2").unwrap()];
        f.refunded_skus = vec![Sku::parse("sku", "PEG-10").unwrap()];
        w.book.schedule(&w.merchant, &f).unwrap();
        let due = w.one_due().await;
        let mut named = Vec::new();
        let outcome = w
            .process_with(&due, |d: &Draft<'_>| {
                named = d.order.order.items.iter().map(|i| i.sku.clone()).collect();
                Some("email".into())
            })
            .await
            .unwrap();
        assert_eq!(outcome, FollowUpOutcome::Sent);
        assert_eq!(named, ["TENT-2"]);
    }
}

/// Refunded lines taken out of the follow-ups, on the in-memory store's conditions.
#[cfg(test)]
mod refunded_lines_tests {
    use super::*;
    use crate::testing::feedback::MemFeedback;
    use crate::testing::fixtures;

    fn sku(s: &str) -> Sku {
        Sku::parse("sku", s).unwrap()
    }

    struct Shop {
        book: MemFeedback,
        merchant: MerchantId,
        order: Order,
    }

    impl Shop {
        /// The sample order (TENT-2, PEG-10) with its review request and cross-sell scheduled.
        fn new() -> Self {
            let book = MemFeedback::default();
            let merchant = fixtures::merchant().id;
            let order = fixtures::order();
            let due: Timestamp = "2026-12-20T10:00:00Z".parse().unwrap();
            for kind in [
                FollowUpKind::ReviewRequest,
                FollowUpKind::CrossSell,
                FollowUpKind::FeedbackSurvey,
            ] {
                book.schedule_lines(
                    &merchant,
                    &order.id,
                    &order.customer.id,
                    kind,
                    due,
                    &[sku("TENT-2"), sku("PEG-10")],
                );
            }
            Self {
                book,
                merchant,
                order,
            }
        }

        async fn drop(&self, skus: &[&str]) -> Vec<(FollowUpKind, LinesDropped)> {
            let skus: Vec<Sku> = skus.iter().map(|s| sku(s)).collect();
            let now = "2026-12-01T10:00:00Z".parse().unwrap();
            drop_returned_lines(
                &self.book,
                &self.merchant,
                &self.order.id,
                &skus,
                "refunded",
                now,
            )
            .await
            .unwrap()
        }

        fn stored(&self, kind: FollowUpKind) -> (FollowUp, bool) {
            self.book
                .follow_up(&self.merchant, &self.order.id, kind)
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_refunded_line_leaves_the_review_request_and_cross_sell_once() {
        let shop = Shop::new();
        let both = vec![
            (FollowUpKind::ReviewRequest, LinesDropped::Trimmed),
            (FollowUpKind::CrossSell, LinesDropped::Trimmed),
        ];
        assert_eq!(shop.drop(&["PEG-10"]).await, both);
        for kind in REFUNDED_LINE_KINDS {
            let (f, due) = shop.stored(kind);
            assert_eq!(f.skus, [sku("TENT-2")], "{kind:?}");
            assert_eq!(f.refunded_skus, [sku("PEG-10")], "{kind:?}");
            assert!(due && f.status == FollowUpStatus::Scheduled, "{kind:?}");
        }
        // The survey asks about the order as a whole: untouched.
        let (survey, _) = shop.stored(FollowUpKind::FeedbackSurvey);
        assert!(survey.refunded_skus.is_empty());
        // The refund delivered again changes nothing.
        assert_eq!(shop.drop(&["PEG-10"]).await, []);
        // The last line refunded too: nothing left to ask about.
        assert_eq!(
            shop.drop(&["TENT-2"]).await,
            [
                (FollowUpKind::ReviewRequest, LinesDropped::Cancelled),
                (FollowUpKind::CrossSell, LinesDropped::Cancelled)
            ]
        );
        let (f, due) = shop.stored(FollowUpKind::ReviewRequest);
        assert_eq!(f.status, FollowUpStatus::Cancelled);
        assert_eq!(f.outcome.as_deref(), Some("refunded"));
        assert!(!due, "out of the due index");
        assert_eq!(f.refunded_skus, [sku("PEG-10"), sku("TENT-2")]);
        assert_eq!(shop.drop(&["TENT-2", "PEG-10"]).await, []);
    }

    #[tokio::test]
    async fn a_rival_refund_of_another_line_is_not_lost() {
        let shop = Shop::new();
        // Another refund takes TENT-2 out between this one's read and its write: this one reads
        // again, and with both lines gone the follow-ups are cancelled.
        shop.book.rival_drop(vec![sku("TENT-2")]);
        let changed = shop.drop(&["PEG-10"]).await;
        assert_eq!(
            changed[0],
            (FollowUpKind::ReviewRequest, LinesDropped::Cancelled)
        );
        let (f, _) = shop.stored(FollowUpKind::ReviewRequest);
        assert_eq!(f.refunded_skus, [sku("TENT-2"), sku("PEG-10")]);
        assert_eq!(f.status, FollowUpStatus::Cancelled);
    }

    #[test]
    fn a_refund_naming_no_lines_gives_back_every_line_only_when_it_is_whole() {
        let order = fixtures::order();
        let whole = order.money(order.total);
        assert_eq!(
            refunded_lines(&order, None, whole),
            [sku("TENT-2"), sku("PEG-10")]
        );
        assert_eq!(
            refunded_lines(&order, None, order.money(order.total - 1)),
            Vec::<Sku>::new()
        );
        assert_eq!(
            refunded_lines(&order, Some(&[sku("PEG-10")]), order.money(1)),
            [sku("PEG-10")]
        );
    }
}
