//! The work on one due follow-up: what the sweep reads for it, skipping or deferring it, claiming
//! and sending its email under the contact-state guard, and settling it on the outcome.

use super::*;
use aftercare::ports::MerchantDirectory as _;

pub(super) async fn process(
    app: &App,
    links: &Links,
    pacer: &Pacer,
    due: &Due<FollowUp>,
    deadline: Deadline,
) -> Result<Outcome, StoreError> {
    let job = Job {
        app,
        links,
        due,
        now: app.clock.now(),
        deadline,
    };
    let Some(target) = job.target().await? else {
        return job.skip(SkipReason::NotFound).await;
    };
    // An earlier attempt claimed the send: carry on from its record, never decide twice.
    if let Some(record) = &target.context.send {
        return job.resume(&target, record).await;
    }
    let rules = &target.merchant.settings.marketing;
    let contact = &target.context.contact;
    match marketing::decide(
        target.kind,
        job.now,
        &job.zone(&target),
        contact,
        target.context.suppressed,
        rules,
    ) {
        Decision::Skip(reason) => return job.skip(reason).await,
        Decision::Defer { until, reason } => return job.defer(until, reason).await,
        Decision::Send => {}
    }
    job.send(&target, pacer).await
}

/// One due follow-up being worked on.
pub(crate) struct Job<'a> {
    app: &'a App,
    links: &'a Links,
    due: &'a Due<FollowUp>,
    now: Timestamp,
    deadline: Deadline,
}

/// What the sweep read for a follow-up it can decide on.
pub(crate) struct Target {
    merchant: Arc<Merchant>,
    customer_id: CustomerId,
    kind: FollowUpKind,
    order: OrderRecord,
    context: FollowUpContext,
    /// The email's identity.
    email: SendIdentity,
}

impl Job<'_> {
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
        let Some(merchant) = self.app.merchants.merchant(merchant_id).await? else {
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
        let mut context = self
            .app
            .store
            .follow_up_context(
                merchant_id,
                order_id,
                &customer_id,
                recipient.as_ref(),
                &email,
            )
            .await?;
        let Some(order) = context.order.take() else {
            return Ok(None);
        };
        Ok(Some(Target {
            merchant,
            customer_id,
            kind,
            order,
            context,
            email,
        }))
    }

    /// Quiet hours in the zone the customer chose, else their order's, else the merchant's.
    fn zone(&self, target: &Target) -> jiff::tz::TimeZone {
        marketing::recipient_zone(
            target.context.contact.time_zone.as_deref().or(target
                .order
                .order
                .customer
                .time_zone
                .as_deref()),
            &target.merchant.time_zone,
        )
    }

    /// The follow-up's email, with the "points now available" note if there is one.
    fn compose(&self, target: &Target, note: Option<&PointsNote>) -> Option<OutgoingEmail> {
        follow_up_email(
            self.app,
            self.links,
            &target.merchant,
            &target.order,
            &target.context.contact,
            target.kind,
            &target.email.reference(),
            note,
            self.now,
        )
    }

    async fn skip(&self, reason: SkipReason) -> Result<Outcome, StoreError> {
        let decision = DecisionEntry::new(self.now, DecisionAction::Skipped, Some(reason.as_str()));
        let moved = self
            .app
            .store
            .settle_follow_up(
                &self.due.token,
                FollowUpStatus::Skipped,
                &decision,
                None,
                None,
            )
            .await?;
        Ok(if moved {
            Outcome::Skipped
        } else {
            Outcome::Taken
        })
    }

    async fn defer(&self, until: Timestamp, reason: DeferReason) -> Result<Outcome, StoreError> {
        let mut decision =
            DecisionEntry::new(self.now, DecisionAction::Deferred, Some(reason.as_str()));
        decision.until = Some(until);
        let moved = self
            .app
            .store
            .defer_follow_up(&self.due.token, until, &decision)
            .await?;
        Ok(if moved {
            Outcome::Deferred
        } else {
            Outcome::Taken
        })
    }

    /// Carries on from the record an earlier attempt left.
    async fn resume(&self, target: &Target, record: &SendRecord) -> Result<Outcome, StoreError> {
        let note = points_note(self.app, &target.merchant, &target.customer_id, self.now).await?;
        let outcome = self
            .app
            .courier()
            .resume(&target.email, record, self.deadline, || {
                self.compose(target, note.as_ref())
            })
            .await?;
        self.finish(target, outcome, record, note.is_some()).await
    }

    /// Claims the email with the contact-state guard (frequency cap, survey throttle,
    /// unsubscribe) and sends it.
    async fn send(&self, target: &Target, pacer: &Pacer) -> Result<Outcome, StoreError> {
        let (app, now, kind) = (self.app, self.now, target.kind);
        let note = points_note(app, &target.merchant, &target.customer_id, now).await?;
        let Some(email) = self.compose(target, note.as_ref()) else {
            return self.skip(SkipReason::NothingToSend).await;
        };
        if !pacer.slot(self.deadline).await {
            return Ok(Outcome::LeftDue);
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
            target.order.order.customer.email.as_str(),
            now,
            self.deadline.lease_until(app.clock.as_ref()),
        );
        let claimed = app
            .store
            .claim_follow_up(
                &self.due.token,
                (&self.due.merchant, &target.customer_id),
                guard,
                (&target.email, &record),
                app.send_expiry(&target.merchant, now),
                now,
            )
            .await?;
        let courier = app.courier();
        let outcome = match claimed {
            FollowUpClaim::Claimed => {
                courier
                    .send_claimed(&target.email, &record.claim_token, &email, self.deadline)
                    .await?
            }
            FollowUpClaim::ClaimExists => match app.store.get_send(&target.email).await? {
                Some(theirs) => {
                    courier
                        .resume(&target.email, &theirs, self.deadline, move || Some(email))
                        .await?
                }
                None => return Ok(Outcome::LeftDue),
            },
            FollowUpClaim::Moved => return Ok(Outcome::Taken),
            // Another follow-up of this customer went out (or they unsubscribed) since we read:
            // decide again on what is stored now.
            FollowUpClaim::ContactChanged => {
                let contact = app
                    .store
                    .get_contact(&self.due.merchant, &target.customer_id)
                    .await?;
                let zone = self.zone(target);
                let suppressed = target.context.suppressed;
                return match marketing::decide(kind, now, &zone, &contact, suppressed, rules) {
                    Decision::Skip(reason) => self.skip(reason).await,
                    Decision::Defer { until, reason } => self.defer(until, reason).await,
                    // The contention has passed already: the next run sends it.
                    Decision::Send => Ok(Outcome::LeftDue),
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
    ) -> Result<Outcome, StoreError> {
        let noted = noted && matches!(outcome, SendOutcome::Sent { .. });
        let due = self.due;
        let order_id = &target.order.order.id;
        let settled = settle(
            self.app,
            due,
            target.kind,
            &due.merchant,
            order_id,
            outcome,
            record,
            self.now,
        )
        .await?;
        if noted {
            self.app
                .store
                .note_available(&due.merchant, &target.customer_id, self.now)
                .await?;
        }
        Ok(settled)
    }
}

/// Records what became of the send on the follow-up and takes it out of the due index.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    app: &App,
    due: &Due<FollowUp>,
    kind: FollowUpKind,
    merchant_id: &MerchantId,
    order_id: &OrderId,
    outcome: SendOutcome,
    record: &SendRecord,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let (action, message_id, result) = match &outcome {
        SendOutcome::Sent { message_id } => (
            DecisionAction::Sent,
            Some(message_id.clone()),
            Outcome::Sent,
        ),
        // Sent by an earlier attempt (or another sweep): settle it, but it is not this sweep's send.
        SendOutcome::Settled(SendStatus::Sent) => (
            DecisionAction::Sent,
            record.message_id.clone(),
            Outcome::Taken,
        ),
        SendOutcome::Settled(SendStatus::Ambiguous) | SendOutcome::Ambiguous => {
            (DecisionAction::Ambiguous, None, Outcome::Ambiguous)
        }
        // Suppressed since an earlier attempt was told to retry.
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            (DecisionAction::Skipped, None, Outcome::Skipped)
        }
        SendOutcome::Settled(_) | SendOutcome::Rejected { .. } => {
            (DecisionAction::Failed, None, Outcome::Failed)
        }
        SendOutcome::InProgress => return Ok(Outcome::Taken),
        SendOutcome::RetryLater { reason } => {
            tracing::warn!(key = %due.token, reason, "not sent now; stays due");
            return Ok(Outcome::LeftDue);
        }
    };
    let reason = match &outcome {
        SendOutcome::Rejected { code } => Some(code.as_str()),
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            Some(SkipReason::Suppressed.as_str())
        }
        _ => None,
    };
    let decision = DecisionEntry::new(now, action, reason);
    let status = match action {
        DecisionAction::Sent => FollowUpStatus::Sent,
        DecisionAction::Ambiguous => FollowUpStatus::Ambiguous,
        DecisionAction::Skipped => FollowUpStatus::Skipped,
        _ => FollowUpStatus::Failed,
    };
    let survey_sent = (status == FollowUpStatus::Sent && kind == FollowUpKind::FeedbackSurvey)
        .then_some((merchant_id, order_id));
    let moved = app
        .store
        .settle_follow_up(
            &due.token,
            status,
            &decision,
            message_id.as_deref(),
            survey_sent,
        )
        .await?;
    // An email this invocation sent counts as sent even if another sweep settled the follow-up
    // first; one found already sent counts for whoever settles it.
    let sent_now = matches!(outcome, SendOutcome::Sent { .. });
    Ok(if moved || sent_now {
        result
    } else {
        Outcome::Taken
    })
}
