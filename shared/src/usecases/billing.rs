//! A dunning step, whoever asks for it: a billing event (a provider's webhook or the generic API)
//! or the scheduled sweep over invoices due for their next step.
//!
//! * [`BillingEvents::process`]: a payment failed (dunning starts: the invoice, the event's marker
//!   and the first email's claim in one write, then the email), a payment succeeded (dunning
//!   stops: the invoice paid and out of the due index, the "all set" email's claim, then the
//!   email) or a refund (the order's points reversed on the loyalty ledger, once, with the
//!   referrer's reward taken back when the order came back in full; then the customer's "refund
//!   issued" email, once per refund: [`tell_refund_issued`]). A redelivered event is a
//!   duplicate on its marker and carries on from the earlier delivery's email record; out-of-order
//!   delivery is settled by the invoice's state.
//! * [`DunningSweep::step`]: one due invoice: wait, the reminder or final notice (the invoice's
//!   advance and the email's claim in one write, conditioned on the invoice being where the sweep
//!   saw it), or the merchant's alert when the cadence runs out.
//!
//! Every email goes through the [`Courier`]; the caller composes it (`compose`).

use crate::domain::billing::{
    BillingEvent, DunningAction, DunningStep, EventKey, FailureOutcome, InvoiceRecord,
    PaymentOutcome, RefundFacts, Reversal, StepClaim, StepKind, dunning_action, dunning_schedule,
    refund_reversal,
};
use crate::domain::customer::CustomerRef;
use crate::domain::ids::InvoiceId;
use crate::domain::loyalty::{LedgerEntry, LedgerKind, net_points, order_source, referral_source};
use crate::domain::order::Order;
use crate::domain::send::{EmailKind, SendIdentity, SendRecord, SendStatus};
use crate::domain::{EmailAddress, Merchant, Money};
use crate::ports::billing::{BillingBook, ClaimWrite};
use crate::ports::{Due, Mailer, MerchantDirectory, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Pacer, Retention, SendOutcome};
use jiff::Timestamp;
use std::borrow::Cow;

/// Why a billing event was not (wholly) handled.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The event is recorded but its email could not be sent yet: the provider should redeliver.
    #[error("recorded, but the email could not be sent yet; redeliver this event to finish")]
    Redeliver,
    /// The customer's loyalty ledger kept changing under the reversal.
    #[error("the customer's loyalty ledger is busy; the event will be retried")]
    LedgerBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An email of the cadence, as the caller composes it.
#[derive(Debug, Clone, Copy)]
pub enum DunningEmail<'r> {
    /// To the customer about their invoice (`record` with the customer's own language and time
    /// zone applied); `reminder` is the reminder's number (0 for the others).
    Invoice {
        record: &'r InvoiceRecord,
        kind: EmailKind,
        reminder: u32,
    },
    /// To the merchant's people: the cadence ran out without a recovery.
    Exhausted {
        record: &'r InvoiceRecord,
        to: &'r EmailAddress,
        failed_on: Timestamp,
        cancel_on: Timestamp,
        /// Failed-payment emails the customer got.
        emails_sent: u32,
    },
    /// To the customer: money went back to them ([`tell_refund_issued`]).
    Refund(&'r RefundNotice<'r>),
}

/// What a billing event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    PaymentFailed {
        invoice: InvoiceId,
        outcome: FailureOutcome,
        email: Option<SendOutcome>,
    },
    PaymentSucceeded {
        invoice: InvoiceId,
        outcome: PaymentOutcome,
        email: Option<SendOutcome>,
    },
    Refund {
        outcome: RefundOutcome,
        /// The "refund issued" email: `None` when there was nothing to tell (no amount).
        email: Option<SendOutcome>,
    },
}

/// What a refund did to the loyalty ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// `points` were taken back.
    Reversed { points: i64 },
    /// Nothing was earned, or nothing of it is left to take back.
    NothingToReverse,
    /// The event was handled before.
    Duplicate,
}

/// What became of one due invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Reminder,
    Final,
    /// The cadence ran out; the merchant was told.
    Exhausted,
    /// Nothing to send now: moved to its next step (or out of the index).
    Waiting,
    /// The step was taken without an email: the customer's address is suppressed.
    Suppressed,
    Failed,
    /// Another sweep (or a payment) moved it first.
    Taken,
    /// Not sent now; it stays due for the next run.
    LeftDue,
}

/// The email kind of a cadence step.
pub fn email_kind(step: StepKind) -> EmailKind {
    match step {
        StepKind::Final => EmailKind::PaymentFinalNotice,
        _ => EmailKind::PaymentFailed,
    }
}

/// Where a billing event left its email's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// This event took it: send now.
    Ours,
    /// This event took it, recorded as suppressed: nothing to send.
    Suppressed,
    /// An earlier delivery of the event took it: carry on from its record.
    Earlier,
}

impl Claim {
    /// This event took the claim, or recorded it as `suppressed`.
    fn taken(suppressed: bool) -> Self {
        match suppressed {
            true => Claim::Suppressed,
            false => Claim::Ours,
        }
    }
}

/// `record` with the customer's chosen language and time zone over the payment provider's.
async fn personalised<B: BillingBook>(
    book: &B,
    merchant: &Merchant,
    record: &InvoiceRecord,
) -> Result<InvoiceRecord, StoreError> {
    let customer = &record.invoice.customer;
    let contact = book.contact(&merchant.id, &customer.id).await?;
    let mut personal = record.clone();
    personal.invoice.customer = contact.personalise(customer);
    Ok(personal)
}

/// Billing events as they arrive.
pub struct BillingEvents<'a, B, L, M> {
    pub book: &'a B,
    pub courier: Courier<'a, L, M>,
    /// How long the send records written are kept.
    pub retention: Retention,
}

impl<B, L, M> BillingEvents<'_, B, L, M>
where
    B: BillingBook,
    L: SendLedger,
    M: Mailer,
{
    /// Handles one billing event of `merchant` (authenticated and parsed), marked `ev`. `compose`
    /// builds the customer's email when one is to go now.
    pub async fn process<F>(
        &self,
        merchant: &Merchant,
        ev: &EventKey<'_>,
        event: BillingEvent,
        deadline: Deadline,
        compose: F,
    ) -> Result<Handled, BillingError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        let now = self.courier.clock.now();
        let expires_at = self.retention.send_expiry(merchant, now);
        match event {
            BillingEvent::PaymentFailed(inv) => {
                let schedule = dunning_schedule(now, &merchant.settings.dunning);
                let record = InvoiceRecord::failed(merchant.id.clone(), inv, now);
                let (id, claim) = self.claim(merchant, &record, EmailKind::PaymentFailed, deadline);
                let next = schedule.get(1).map(|s| s.at);
                let write = ClaimWrite {
                    id: &id,
                    record: &claim,
                    expires_at,
                };
                let outcome = self
                    .book
                    .record_payment_failed(&record, ev, write, next, now)
                    .await?;
                let claimed = match outcome {
                    FailureOutcome::Started { suppressed } => Some(Claim::taken(suppressed)),
                    FailureOutcome::Duplicate => Some(Claim::Earlier),
                    FailureOutcome::AlreadyDunning | FailureOutcome::AlreadyPaid => None,
                };
                tracing::info!(invoice_id = %record.invoice.id, ?outcome, "payment failed");
                let email = self
                    .send_or_resume(merchant, &record, claimed, (&id, &claim), deadline, compose)
                    .await?;
                Ok(Handled::PaymentFailed {
                    invoice: record.invoice.id,
                    outcome,
                    email,
                })
            }
            BillingEvent::PaymentSucceeded(inv) => {
                let record = InvoiceRecord::paid(merchant.id.clone(), inv, now);
                let kind = EmailKind::PaymentRecovered;
                let (id, claim) = self.claim(merchant, &record, kind, deadline);
                let write = ClaimWrite {
                    id: &id,
                    record: &claim,
                    expires_at,
                };
                let outcome = self
                    .book
                    .record_payment_succeeded(&record, ev, write, now)
                    .await?;
                let claimed = match outcome {
                    PaymentOutcome::Recovered { suppressed } => Some(Claim::taken(suppressed)),
                    PaymentOutcome::Duplicate => Some(Claim::Earlier),
                    PaymentOutcome::PaidFirst | PaymentOutcome::AlreadyPaid => None,
                };
                tracing::info!(invoice_id = %record.invoice.id, ?outcome, "payment succeeded");
                let email = self
                    .send_or_resume(merchant, &record, claimed, (&id, &claim), deadline, compose)
                    .await?;
                Ok(Handled::PaymentSucceeded {
                    invoice: record.invoice.id,
                    outcome,
                    email,
                })
            }
            BillingEvent::Refund(mut refund) => {
                // A refund of a return resolved (or being resolved) as a refund is that return's:
                // its points are taken back once under the return's source and the customer gets
                // one email under the return's identity, whichever of the two reports it first.
                let paid = match &refund.order_id {
                    Some(o) => {
                        self.book
                            .refunded_return(&merchant.id, o, refund.amount.amount)
                            .await?
                    }
                    None => None,
                };
                if let Some(r) = &paid {
                    refund.id = crate::usecases::returns::refund_subject(r);
                } else if let Some(o) = refund
                    .order_id
                    .as_ref()
                    .filter(|_| refund.amount.amount > 0)
                {
                    // Reported before a return it pays is resolved: that return adopts it.
                    let reported = crate::domain::returns::ReportedRefund {
                        id: refund.id.clone(),
                        subject: refund_subject(ev.provider, &refund.id),
                        amount: refund.amount.amount,
                        currency: refund.amount.currency.code().to_owned(),
                    };
                    self.book.note_refund(&merchant.id, o, &reported).await?;
                }
                let outcome = self.reverse_refund(merchant, ev, &refund, now).await?;
                let email = self
                    .tell_refund(merchant, ev, &refund, paid.as_ref(), deadline, compose)
                    .await?;
                Ok(Handled::Refund { outcome, email })
            }
        }
    }

    /// The customer's "refund issued" email about `refund` (once per refund: its identity is the
    /// provider-scoped refund id, see [`refund_subject`]), in the language and time zone they
    /// chose, with the order it refunds when Aftercare holds it.
    async fn tell_refund<F>(
        &self,
        merchant: &Merchant,
        ev: &EventKey<'_>,
        refund: &RefundFacts,
        paid: Option<&crate::domain::ids::ReturnId>,
        deadline: Deadline,
        compose: F,
    ) -> Result<Option<SendOutcome>, BillingError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        // Nothing to tell, or the merchant's shop tells it (a return's refund is told anyway).
        if refund.amount.amount <= 0 || (paid.is_none() && !merchant.settings.orders.refund_email) {
            return Ok(None);
        }
        if refund.customer.email.is_none() {
            return Ok(Some(SendOutcome::Unaddressed));
        }
        let m = &merchant.id;
        let order = match &refund.order_id {
            Some(o) => self.book.refunded_order(m, o).await?,
            None => None,
        };
        let contact = self.book.contact(m, &refund.customer.id).await?;
        let customer = contact.personalise(&refund.customer);
        let subject = match paid {
            Some(r) => crate::usecases::returns::refund_subject(r),
            None => refund_subject(ev.provider, &refund.id),
        };
        let notice = RefundNotice {
            subject: &subject,
            customer: &customer,
            amount: refund.amount,
            order: order.as_ref().map(|o| &o.order),
        };
        let expires_at = self
            .retention
            .send_expiry(merchant, self.courier.clock.now());
        tell_refund_issued(
            &self.courier,
            merchant,
            &notice,
            expires_at,
            deadline,
            |r| compose(merchant, DunningEmail::Refund(&notice), r),
        )
        .await
    }

    /// The claim of the customer's email of `kind` about `record`'s invoice (one per invoice).
    fn claim(
        &self,
        merchant: &Merchant,
        record: &InvoiceRecord,
        kind: EmailKind,
        deadline: Deadline,
    ) -> (SendIdentity, SendRecord) {
        let inv = &record.invoice;
        let id = SendIdentity::new(&merchant.id, &inv.customer.id, kind, inv.id.as_str(), 0);
        let clock = self.courier.clock;
        let claim = id.claim(
            inv.customer.recipient(),
            clock.now(),
            deadline.lease_until(clock),
        );
        (id, claim)
    }

    /// Sends the email whose claim the event just took, or carries on from an earlier delivery's
    /// claim (a redelivery after a crash or an SES refusal to send now).
    async fn send_or_resume<F>(
        &self,
        merchant: &Merchant,
        record: &InvoiceRecord,
        claimed: Option<Claim>,
        (id, claim): (&SendIdentity, &SendRecord),
        deadline: Deadline,
        compose: F,
    ) -> Result<Option<SendOutcome>, BillingError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        let kind = id.kind;
        let courier = &self.courier;
        // Only an email about to be built needs the customer's choices (one read of their contact).
        let personal: Cow<'_, InvoiceRecord> = match claimed {
            Claim::Suppressed => Cow::Borrowed(record),
            Claim::Ours | Claim::Earlier => {
                Cow::Owned(personalised(self.book, merchant, record).await?)
            }
        };
        let reference = id.reference();
        let build = || {
            let email = DunningEmail::Invoice {
                record: &personal,
                kind,
                reminder: 0,
            };
            compose(merchant, email, &reference)
        };
        let outcome = match claimed {
            Claim::Suppressed => SendOutcome::Suppressed,
            Claim::Ours => {
                courier
                    .send_composed(id, &claim.claim_token, build(), deadline)
                    .await?
            }
            Claim::Earlier => match courier.store.get_send(id).await? {
                Some(theirs) => courier.resume(id, &theirs, deadline, build).await?,
                None => SendOutcome::Settled(SendStatus::Sent),
            },
        };
        if outcome.wants_redelivery() {
            return Err(BillingError::Redeliver);
        }
        Ok(Some(outcome))
    }

    /// Takes back the points of goods that came back without a billing event of their own (a
    /// return resolved as a refund or as store credit), once under `ev`, as a refund of `refund`
    /// would; the customer's email is the return's own.
    pub async fn reverse_returned_points(
        &self,
        merchant: &Merchant,
        ev: &EventKey<'_>,
        refund: &RefundFacts,
        now: Timestamp,
    ) -> Result<RefundOutcome, BillingError> {
        self.reverse_refund(merchant, ev, refund, now).await
    }

    /// A refund takes back the refunded share of the order's points, once (the event's marker is
    /// written with the reversal); a refund in full also takes back the referrer's reward.
    async fn reverse_refund(
        &self,
        merchant: &Merchant,
        ev: &EventKey<'_>,
        refund: &RefundFacts,
        now: Timestamp,
    ) -> Result<RefundOutcome, BillingError> {
        let m = &merchant.id;
        let order = match &refund.order_id {
            Some(o) => self.book.refunded_order(m, o).await?,
            None => None,
        };
        let points = order
            .as_ref()
            .filter(|o| o.order.currency == refund.amount.currency)
            .map(|o| {
                refund_reversal(
                    o.points_earned,
                    o.order.merchandise_value(),
                    refund.amount.amount,
                )
            })
            .unwrap_or(0);
        let nothing_or_duplicate = |fresh: bool| match fresh {
            true => RefundOutcome::NothingToReverse,
            false => RefundOutcome::Duplicate,
        };
        if points == 0 {
            return Ok(nothing_or_duplicate(
                self.book.mark_event(m, ev, now).await?,
            ));
        }
        let (Some(order), Some(order_id)) = (order.as_ref(), refund.order_id.as_ref()) else {
            return Ok(RefundOutcome::NothingToReverse);
        };
        let source = format!("refund:{}", refund.id);
        let against = order_source(order_id.as_str());
        let requested = i64::try_from(points).unwrap_or(i64::MAX);
        let mut returned = false;
        let decided = self
            .book
            .post_reversal(m, &order.order.customer.id, Some(ev), now, |state| {
                let entry = crate::domain::loyalty::reverse(
                    &state.entries,
                    now,
                    &against,
                    requested,
                    source.clone(),
                );
                returned = entry.as_ref().is_some_and(|e| {
                    let mut after = state.entries.clone();
                    after.push(e.clone());
                    fully_reversed(&after, &against)
                });
                entry
            })
            .await?;
        // A referee's order refunded in full takes the referrer's reward back too (from pending
        // while the window is open; never below zero). Also on a replay, in case the first run
        // stopped here.
        let referral_back = match &decided {
            Reversal::Posted { .. } => returned,
            Reversal::Duplicate(state) | Reversal::Declined(state) => {
                fully_reversed(&state.entries, &against)
            }
            Reversal::EventSeen | Reversal::Busy => false,
        };
        if referral_back && let Some(referrer) = &order.referred_by {
            let reward = referral_source(order_id.as_str());
            let source = format!("refund:{}:referral", refund.id);
            let taken = self
                .book
                .post_reversal(m, referrer, None, now, |state| {
                    let points = state.entry(&reward)?.points;
                    crate::domain::loyalty::reverse(
                        &state.entries,
                        now,
                        &reward,
                        points,
                        source.clone(),
                    )
                })
                .await?;
            if let Reversal::Posted { entry } = taken {
                tracing::info!(refund = %refund.id, referrer = %referrer, reversed = -entry.points, "referral reward taken back");
            }
        }
        Ok(match decided {
            Reversal::Posted { entry } => {
                tracing::info!(refund = %refund.id, requested, reversed = -entry.points, "refund reversal");
                RefundOutcome::Reversed {
                    points: -entry.points,
                }
            }
            Reversal::Declined(state) if state.entry(&source).is_none() => {
                // Nothing left of that earn to take back (refunded or spent before).
                nothing_or_duplicate(self.book.mark_event(m, ev, now).await?)
            }
            Reversal::Declined(_) | Reversal::Duplicate(_) | Reversal::EventSeen => {
                self.book.mark_event(m, ev, now).await?;
                RefundOutcome::Duplicate
            }
            Reversal::Busy => return Err(BillingError::LedgerBusy),
        })
    }
}

/// A refund the customer is told about: money went back to them.
#[derive(Debug, Clone, Copy)]
pub struct RefundNotice<'r> {
    /// The email's identity subject, the refund's provider-scoped id ([`refund_subject`];
    /// `return-<returnId>` for a return's refund): one email per subject, ever.
    pub subject: &'r str,
    /// To whom, with their language and time zone.
    pub customer: &'r CustomerRef,
    /// What was refunded.
    pub amount: Money,
    /// The order refunded, when Aftercare holds it.
    pub order: Option<&'r Order>,
}

/// The identity subject of the "refund issued" email of the refund `id` reported by `provider`:
/// Stripe's `<charge>:<amount refunded so far>` as `stripe-<charge>:<amount>`; the connectors'
/// ids are scoped already (`shopify-<refund id>`, `woo-<refund id>`); the merchant's own
/// (`POST /v1/billing-events`) `refund.id` as it is. A `#` (the send record key's separator) is
/// spelled `%23`.
pub fn refund_subject(provider: &str, id: &str) -> String {
    let id = id.replace('#', "%23");
    match provider {
        "stripe" => format!("stripe-{id}"),
        _ => id,
    }
}

/// Tells the customer that money went back to them, exactly once per `notice.subject`: the
/// claim of a [`EmailKind::RefundIssued`] send record, the email `compose` builds (given the
/// send record's reference), the outcome recorded ([`Courier::claim_and_send`]). A redelivery
/// or a concurrent duplicate finds the claim taken and sends nothing. `None` when there is
/// nothing to tell (no amount); [`SendOutcome::Unaddressed`] when the customer has no address.
/// An email that could not be sent now but may be later is [`BillingError::Redeliver`]: the
/// caller answers so that its event is delivered again (and then this carries on).
///
/// For any refund, whatever reports it: the billing events call it, and so can a return's
/// resolution (subject `return-<returnId>`, composing the email with the return's data).
pub async fn tell_refund_issued<L, M, F>(
    courier: &Courier<'_, L, M>,
    merchant: &Merchant,
    notice: &RefundNotice<'_>,
    expires_at: i64,
    deadline: Deadline,
    compose: F,
) -> Result<Option<SendOutcome>, BillingError>
where
    L: SendLedger,
    M: Mailer,
    F: FnOnce(&str) -> Option<M::Message>,
{
    let customer = notice.customer;
    if notice.amount.amount <= 0 {
        return Ok(None);
    }
    let Some(to) = &customer.email else {
        return Ok(Some(SendOutcome::Unaddressed));
    };
    let id = SendIdentity::new(
        &merchant.id,
        &customer.id,
        EmailKind::RefundIssued,
        notice.subject,
        0,
    );
    let now = courier.clock.now();
    let claim = id.claim(to.as_str(), now, deadline.lease_until(courier.clock));
    let reference = id.reference();
    let outcome = courier
        .claim_and_send(&id, &claim, expires_at, deadline, || compose(&reference))
        .await?;
    tracing::info!(
        subject = notice.subject,
        email = outcome.as_str(),
        "refund issued"
    );
    if outcome.wants_redelivery() {
        return Err(BillingError::Redeliver);
    }
    Ok(Some(outcome))
}

/// Whether nothing is left of the earn `source` on `entries` (the order came back in full).
fn fully_reversed(entries: &[LedgerEntry], source: &str) -> bool {
    entries
        .iter()
        .find(|e| e.kind == LedgerKind::Earn && e.source == source)
        .is_some_and(|earn| net_points(entries, earn) <= 0)
}

/// The invoice a sweep is working on: whose it is, where the sweep found it, and the invocation's
/// deadline.
#[derive(Clone, Copy)]
struct At<'a> {
    merchant: &'a Merchant,
    due: &'a Due<InvoiceRecord>,
    record: &'a InvoiceRecord,
    deadline: Deadline,
}

/// The scheduled sweep's work on one invoice due for its next dunning step.
pub struct DunningSweep<'a, B, D, L, M> {
    pub book: &'a B,
    pub merchants: &'a D,
    pub courier: Courier<'a, L, M>,
    pub pacer: &'a Pacer,
    /// How long the send records written are kept.
    pub retention: Retention,
}

impl<B, D, L, M> DunningSweep<'_, B, D, L, M>
where
    B: BillingBook,
    D: MerchantDirectory,
    L: SendLedger,
    M: Mailer,
{
    /// Works on one due invoice. `compose` builds the step's email (the customer's reminder or
    /// final notice, or the merchant's alert) when one is to go now.
    pub async fn step<F>(
        &self,
        due: &Due<InvoiceRecord>,
        deadline: Deadline,
        compose: F,
    ) -> Result<StepOutcome, StoreError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        let now = self.courier.clock.now();
        let held = |b: bool, o: StepOutcome| if b { o } else { StepOutcome::Taken };
        let Ok(record) = &due.entry else {
            tracing::error!(key = %due.token, "malformed invoice; taken out of the index");
            self.book
                .move_invoice_due(&due.token, None, None, now)
                .await?;
            return Ok(StepOutcome::Failed);
        };
        let Some(merchant) = self.merchants.merchant(&record.merchant_id).await? else {
            self.book
                .move_invoice_due(&due.token, None, None, now)
                .await?;
            return Ok(StepOutcome::Failed);
        };
        let first = record.first_failed_at.unwrap_or(record.updated_at);
        let action = dunning_action(
            first,
            record.next_step,
            record.last_email_at(),
            now,
            &merchant.settings.dunning,
        );
        match action {
            DunningAction::Done => {
                let moved = self
                    .book
                    .move_invoice_due(&due.token, None, None, now)
                    .await?;
                Ok(held(moved, StepOutcome::Waiting))
            }
            DunningAction::Wait { until } => {
                let moved = self
                    .book
                    .move_invoice_due(&due.token, Some(until), None, now)
                    .await?;
                Ok(held(moved, StepOutcome::Waiting))
            }
            DunningAction::Exhaust { step } => {
                let at = At {
                    merchant: &merchant,
                    due,
                    record,
                    deadline,
                };
                self.exhaust(at, step, first, compose).await
            }
            DunningAction::Send { step, next } => {
                let at = At {
                    merchant: &merchant,
                    due,
                    record,
                    deadline,
                };
                self.send_step(at, step, next, compose).await
            }
        }
    }

    /// The cadence ran out without a recovery: the invoice leaves the index and the merchant's
    /// people are told, once.
    async fn exhaust<F>(
        &self,
        at: At<'_>,
        step: DunningStep,
        first: Timestamp,
        compose: F,
    ) -> Result<StepOutcome, StoreError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        let At {
            merchant,
            due,
            record,
            deadline,
        } = at;
        let clock = self.courier.clock;
        let now = clock.now();
        let inv = &record.invoice;
        let moved = self
            .book
            .move_invoice_due(&due.token, None, Some(step.index), now)
            .await?;
        if !moved {
            return Ok(StepOutcome::Taken);
        }
        if let Some(ops) = &merchant.ops_email {
            let kind = EmailKind::MerchantDunningAlert;
            let id = SendIdentity::new(&merchant.id, &inv.customer.id, kind, inv.id.as_str(), 0);
            let claim = id.claim(ops.as_str(), now, deadline.lease_until(clock));
            let reference = id.reference();
            let alert = || {
                let email = DunningEmail::Exhausted {
                    record,
                    to: ops,
                    failed_on: first,
                    cancel_on: step.at,
                    emails_sent: record.emails_first + record.emails_reminder + record.emails_final,
                };
                compose(merchant, email, &reference)
            };
            let expires = self.retention.send_expiry(merchant, now);
            self.courier
                .claim_and_send(&id, &claim, expires, deadline, alert)
                .await?;
        }
        Ok(StepOutcome::Exhausted)
    }

    /// The next email of the cadence: claimed together with the invoice's advance, then sent (or
    /// resumed from an earlier attempt's record).
    async fn send_step<F>(
        &self,
        at: At<'_>,
        step: DunningStep,
        next: Option<Timestamp>,
        compose: F,
    ) -> Result<StepOutcome, StoreError>
    where
        F: FnOnce(&Merchant, DunningEmail<'_>, &str) -> Option<M::Message>,
    {
        let At {
            merchant,
            due,
            record,
            deadline,
        } = at;
        let clock = self.courier.clock;
        let now = clock.now();
        let inv = &record.invoice;
        let kind = email_kind(step.kind);
        if !self.pacer.slot(deadline).await {
            return Ok(StepOutcome::LeftDue);
        }
        let id = SendIdentity::new(
            &merchant.id,
            &inv.customer.id,
            kind,
            inv.id.as_str(),
            step.index,
        );
        let claim = id.claim(inv.customer.recipient(), now, deadline.lease_until(clock));
        let write = ClaimWrite {
            id: &id,
            record: &claim,
            expires_at: self.retention.send_expiry(merchant, now),
        };
        let claimed = self
            .book
            .claim_dunning_step(&due.token, &step, next, write, now)
            .await?;
        let reminder = if step.kind == StepKind::Reminder {
            step.index
        } else {
            0
        };
        let personal: Cow<'_, InvoiceRecord> = match claimed {
            StepClaim::Moved | StepClaim::Suppressed => Cow::Borrowed(record),
            StepClaim::ClaimExists | StepClaim::Claimed => {
                Cow::Owned(personalised(self.book, merchant, record).await?)
            }
        };
        let reference = id.reference();
        let build = || {
            let email = DunningEmail::Invoice {
                record: &personal,
                kind,
                reminder,
            };
            compose(merchant, email, &reference)
        };
        let courier = &self.courier;
        let outcome = match claimed {
            StepClaim::Moved => return Ok(StepOutcome::Taken),
            StepClaim::ClaimExists => match courier.store.get_send(&id).await? {
                Some(theirs) => courier.resume(&id, &theirs, deadline, build).await?,
                None => return Ok(StepOutcome::LeftDue),
            },
            StepClaim::Suppressed => SendOutcome::Suppressed,
            StepClaim::Claimed => {
                courier
                    .send_composed(&id, &claim.claim_token, build(), deadline)
                    .await?
            }
        };
        Ok(match outcome {
            SendOutcome::Sent { .. } if step.kind == StepKind::Final => StepOutcome::Final,
            SendOutcome::Sent { .. } => StepOutcome::Reminder,
            // The step stays claimed in `retry`; the next run resumes it (ClaimExists).
            SendOutcome::RetryLater { .. } => StepOutcome::LeftDue,
            SendOutcome::InProgress | SendOutcome::Settled(SendStatus::Sent) => StepOutcome::Taken,
            SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
                StepOutcome::Suppressed
            }
            _ => StepOutcome::Failed,
        })
    }
}

/// Billing events and dunning steps on the in-memory billing book (with its due index), merchants,
/// send ledger and mailer.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::billing::{InvoiceFacts, InvoiceStatus};
    use crate::domain::marketing::ContactState;
    use crate::domain::order::OrderRecord;
    use crate::domain::{CustomerId, Locale, MerchantId};
    use crate::ports::{DueGroup, DueWork, SendFailure};
    use crate::testing::billing::MemBilling;
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemMerchants, ScriptedMailer};
    use jiff::SignedDuration;
    use serde_json::json;

    /// When the sample invoice first fails.
    const FAILED_AT: &str = "2026-03-02T10:00:00Z";

    struct World {
        book: MemBilling,
        merchants: MemMerchants,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        pacer: Pacer,
        merchant: Merchant,
    }

    fn invoice() -> InvoiceFacts {
        serde_json::from_value(json!({
            "id": "in_1",
            "customer": {"id": "cus_1", "email": "ann@example.com", "locale": "en"},
            "amount": {"amount": 1999, "currency": "EUR"},
        }))
        .unwrap()
    }

    fn throttled() -> SendFailure {
        SendFailure::NotSentRetryable {
            code: "Throttling".into(),
        }
    }

    impl World {
        fn new() -> Self {
            Self::with(ScriptedMailer::new())
        }

        fn with(mailer: ScriptedMailer<String>) -> Self {
            let merchant = fixtures::merchant();
            Self {
                book: MemBilling::new(),
                merchants: MemMerchants::with(merchant.clone()),
                mailer,
                clock: ManualClock::new(FAILED_AT.parse().unwrap()),
                pacer: Pacer::new(1000),
                merchant,
            }
        }

        fn m(&self) -> &MerchantId {
            &self.merchant.id
        }

        fn courier(&self) -> Courier<'_, crate::testing::MemSendLedger, ScriptedMailer<String>> {
            fixtures::courier(&self.book.ledger, &self.mailer, &self.clock)
        }

        /// The composed email names its kind, the reminder's number and the customer's locale.
        fn compose(_: &Merchant, email: DunningEmail<'_>, _: &str) -> Option<String> {
            Some(match email {
                DunningEmail::Invoice {
                    record,
                    kind,
                    reminder,
                } => format!(
                    "{kind:?} #{reminder} {}",
                    record.invoice.customer.locale.as_deref().unwrap_or("-")
                ),
                DunningEmail::Exhausted {
                    to, emails_sent, ..
                } => format!("alert to {} after {emails_sent}", to.as_str()),
                DunningEmail::Refund(n) => format!(
                    "refund {} {} of {} {}",
                    n.subject,
                    n.amount.amount,
                    n.order.map(|o| o.id.as_str()).unwrap_or("-"),
                    n.customer.locale.as_deref().unwrap_or("-")
                ),
            })
        }

        /// Billing event `id` (the content hash is the id's).
        async fn event(&self, id: &str, event: BillingEvent) -> Result<Handled, BillingError> {
            let events = BillingEvents {
                book: &self.book,
                courier: self.courier(),
                retention: Retention {
                    default: std::time::Duration::ZERO,
                },
            };
            let ev = EventKey {
                provider: "api",
                event_id: id,
                kind: event.kind().as_str(),
                content_hash: id,
            };
            events
                .process(&self.merchant, &ev, event, deadline(), Self::compose)
                .await
        }

        async fn failed(&self, id: &str) -> Result<Handled, BillingError> {
            self.event(id, BillingEvent::PaymentFailed(invoice())).await
        }

        async fn paid(&self, id: &str) -> Result<Handled, BillingError> {
            self.event(id, BillingEvent::PaymentSucceeded(invoice()))
                .await
        }

        /// The clock `days` after the first failure.
        fn day(&self, days: i64) {
            let at: Timestamp = FAILED_AT.parse().unwrap();
            self.clock.set(
                at.checked_add(SignedDuration::from_hours(24 * days))
                    .unwrap(),
            );
        }

        async fn due(&self) -> Vec<Due<InvoiceRecord>> {
            let (due, _) = self
                .book
                .table()
                .due(DueGroup::Dunning, self.clock.now(), 14)
                .await
                .unwrap();
            due
        }

        async fn step(&self, due: &Due<InvoiceRecord>) -> Result<StepOutcome, StoreError> {
            let sweep = DunningSweep {
                book: &self.book,
                merchants: &self.merchants,
                courier: self.courier(),
                pacer: &self.pacer,
                retention: Retention {
                    default: std::time::Duration::ZERO,
                },
            };
            sweep.step(due, deadline(), Self::compose).await
        }

        /// One sweep `days` after the first failure: every due invoice's step.
        async fn sweep_on(&self, days: i64) -> Vec<StepOutcome> {
            self.day(days);
            let mut outcomes = Vec::new();
            for due in self.due().await {
                outcomes.push(self.step(&due).await.unwrap());
            }
            outcomes
        }

        fn stored(&self) -> InvoiceRecord {
            self.book.invoice(self.m(), &invoice().id).unwrap()
        }
    }

    /// What a payment-failed event found, and what became of its email (`None`: another event).
    fn failure(handled: &Handled) -> Option<(&FailureOutcome, Option<&'static str>)> {
        match handled {
            Handled::PaymentFailed { outcome, .. } => Some((outcome, email_of(handled))),
            _ => None,
        }
    }

    /// What a payment-succeeded event found, and what became of its email (`None`: another event).
    fn payment(handled: &Handled) -> Option<(&PaymentOutcome, Option<&'static str>)> {
        match handled {
            Handled::PaymentSucceeded { outcome, .. } => Some((outcome, email_of(handled))),
            _ => None,
        }
    }

    fn email_of(handled: &Handled) -> Option<&'static str> {
        match handled {
            Handled::PaymentFailed { email, .. } | Handled::PaymentSucceeded { email, .. } => {
                email.as_ref().map(SendOutcome::as_str)
            }
            Handled::Refund { email, .. } => email.as_ref().map(SendOutcome::as_str),
        }
    }

    /// What a refund did to the ledger (panics on another event).
    fn reversal(handled: Handled) -> RefundOutcome {
        match handled {
            Handled::Refund { outcome, .. } => outcome,
            other => panic!("not a refund: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_first_failure_starts_dunning_and_a_replay_never_sends_twice() {
        let w = World::new();
        let first = w.failed("ev_1").await.unwrap();
        assert_eq!(
            failure(&first),
            Some((&FailureOutcome::Started { suppressed: false }, Some("sent"))),
            "{first:?}"
        );
        assert_eq!(w.mailer.accepted(), ["PaymentFailed #0 en"]);
        let stored = w.stored();
        assert_eq!(
            (stored.status, stored.next_step),
            (InvoiceStatus::Failed, 1)
        );
        assert!(
            w.book.due_at(w.m(), &invoice().id).is_some(),
            "due for the first reminder"
        );
        // The provider redelivers the event: it settles on the first delivery's record.
        let replay = w.failed("ev_1").await.unwrap();
        assert_eq!(
            failure(&replay),
            Some((&FailureOutcome::Duplicate, Some("sent")))
        );
        // A provider retry that failed again (a new event) sends nothing either.
        let again = w.failed("ev_2").await.unwrap();
        assert_eq!(
            failure(&again),
            Some((&FailureOutcome::AlreadyDunning, None))
        );
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_failure_send_one_email() {
        let w = World::new();
        let (a, b) = tokio::join!(w.failed("ev_1"), w.failed("ev_1"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(w.mailer.accepted().len(), 1, "{a:?} {b:?}");
    }

    #[tokio::test]
    async fn the_cadence_sends_each_reminder_then_the_final_notice_then_alerts_the_merchant_once() {
        let w = World::new();
        w.failed("ev_1").await.unwrap();
        assert_eq!(
            w.sweep_on(1).await,
            [],
            "nothing due before the first reminder"
        );
        assert_eq!(w.sweep_on(3).await, [StepOutcome::Reminder]);
        assert_eq!(w.sweep_on(5).await, [StepOutcome::Reminder]);
        assert_eq!(w.sweep_on(7).await, [StepOutcome::Reminder]);
        assert_eq!(w.sweep_on(10).await, []);
        assert_eq!(w.sweep_on(12).await, [StepOutcome::Final]);
        assert_eq!(w.sweep_on(14).await, [StepOutcome::Exhausted]);
        assert_eq!(w.sweep_on(15).await, [], "out of the index");
        assert_eq!(
            w.mailer.accepted(),
            [
                "PaymentFailed #0 en",
                "PaymentFailed #1 en",
                "PaymentFailed #2 en",
                "PaymentFailed #3 en",
                "PaymentFinalNotice #0 en",
                "alert to ops@acme.example after 5",
            ]
        );
        let stored = w.stored();
        assert_eq!(stored.status, InvoiceStatus::Exhausted);
        assert_eq!(
            (
                stored.emails_first,
                stored.emails_reminder,
                stored.emails_final
            ),
            (1, 3, 1)
        );
    }

    #[tokio::test]
    async fn a_second_sweep_on_the_same_due_invoice_never_sends_twice() {
        let w = World::new();
        w.failed("ev_1").await.unwrap();
        w.day(3);
        let due = w.due().await.pop().unwrap();
        // Two sweeps that read the invoice before either moved it, at once, then one late.
        let (a, b) = tokio::join!(w.step(&due), w.step(&due));
        let mut outcomes = vec![a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| *o == StepOutcome::Taken);
        assert_eq!(outcomes, [StepOutcome::Reminder, StepOutcome::Taken]);
        assert_eq!(w.step(&due).await.unwrap(), StepOutcome::Taken);
        assert_eq!(
            w.mailer.accepted().len(),
            2,
            "the first email and one reminder"
        );
        assert_eq!(w.stored().next_step, 2);
    }

    #[tokio::test]
    async fn a_stale_due_token_means_another_sweep_moved_the_invoice() {
        let w = World::new();
        w.failed("ev_1").await.unwrap();
        w.day(3);
        let stale = w.due().await.pop().unwrap();
        assert_eq!(w.step(&stale).await.unwrap(), StepOutcome::Reminder);
        // Days later, a sweep still holding the old token would send the final notice: the
        // invoice is no longer where that token saw it.
        w.day(12);
        assert_eq!(w.step(&stale).await.unwrap(), StepOutcome::Taken);
        w.day(20);
        assert_eq!(
            w.step(&stale).await.unwrap(),
            StepOutcome::Taken,
            "nor exhausts it"
        );
        assert_eq!(w.stored().status, InvoiceStatus::Failed);
        assert_eq!(w.mailer.accepted().len(), 2);
    }

    #[tokio::test]
    async fn a_payment_stops_the_cadence_and_a_replayed_payment_sends_nothing_more() {
        let w = World::new();
        w.failed("ev_1").await.unwrap();
        w.day(2);
        let stale = {
            w.day(3);
            w.due().await.pop().unwrap()
        };
        w.day(2);
        let paid = w.paid("ev_2").await.unwrap();
        assert_eq!(
            payment(&paid),
            Some((
                &PaymentOutcome::Recovered { suppressed: false },
                Some("sent")
            ))
        );
        let stored = w.stored();
        assert!(stored.recovered && stored.status == InvoiceStatus::Paid);
        assert_eq!(
            w.book.due_at(w.m(), &invoice().id),
            None,
            "out of the index"
        );
        let replay = w.paid("ev_2").await.unwrap();
        assert_eq!(
            payment(&replay),
            Some((&PaymentOutcome::Duplicate, Some("sent")))
        );
        let other = w.paid("ev_3").await.unwrap();
        assert_eq!(payment(&other), Some((&PaymentOutcome::AlreadyPaid, None)));
        // No reminder follows, not even from a sweep that read the invoice before the payment.
        assert_eq!(w.sweep_on(3).await, []);
        assert_eq!(w.step(&stale).await.unwrap(), StepOutcome::Taken);
        assert_eq!(
            w.mailer.accepted(),
            ["PaymentFailed #0 en", "PaymentRecovered #0 en"]
        );
    }

    #[tokio::test]
    async fn a_failure_arriving_after_the_payment_sends_nothing() {
        let w = World::new();
        let paid = w.paid("ev_paid").await.unwrap();
        assert_eq!(payment(&paid), Some((&PaymentOutcome::PaidFirst, None)));
        let late = w.failed("ev_failed").await.unwrap();
        assert_eq!(failure(&late), Some((&FailureOutcome::AlreadyPaid, None)));
        assert_eq!(w.mailer.calls(), 0);
        assert_eq!(w.sweep_on(3).await, []);
    }

    #[tokio::test]
    async fn a_suppressed_customer_gets_nothing_while_the_cadence_still_moves_on() {
        let w = World::new();
        w.book.ledger.suppress(w.m(), "ann@example.com");
        let first = w.failed("ev_1").await.unwrap();
        assert_eq!(
            failure(&first),
            Some((
                &FailureOutcome::Started { suppressed: true },
                Some("suppressed")
            ))
        );
        assert_eq!(w.sweep_on(3).await, [StepOutcome::Suppressed]);
        assert_eq!(w.stored().next_step, 2, "the step counts as taken");
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn the_customers_own_language_wins() {
        let w = World::new();
        let customer = CustomerId::parse("id", "cus_1").unwrap();
        let chosen = ContactState {
            locale: Some(Locale::De),
            ..ContactState::default()
        };
        w.book.set_contact(w.m(), &customer, &chosen);
        w.failed("ev_1").await.unwrap();
        assert_eq!(w.sweep_on(3).await, [StepOutcome::Reminder]);
        assert_eq!(
            w.mailer.accepted(),
            ["PaymentFailed #0 de", "PaymentFailed #1 de"]
        );
    }

    #[tokio::test]
    async fn a_transient_store_failure_writes_nothing_and_the_redelivery_sends_once() {
        let w = World::new();
        w.book.table().fail_next_writes(1, "TransactWriteItems");
        let err = w.failed("ev_1").await.unwrap_err();
        assert!(
            matches!(&err, BillingError::Store(e) if e.is_transient()),
            "{err:?}"
        );
        assert!(w.book.table().rows().is_empty(), "nothing written");
        assert_eq!(w.mailer.calls(), 0);
        let again = w.failed("ev_1").await.unwrap();
        assert_eq!(email_of(&again), Some("sent"));
        // The sweep's write fails too: the invoice stays due where it was, the next run sends.
        w.day(3);
        let due = w.due().await.pop().unwrap();
        w.book.table().fail_next_writes(1, "TransactWriteItems");
        assert!(w.step(&due).await.unwrap_err().is_transient());
        assert_eq!(
            w.book.due_at(w.m(), &invoice().id).as_deref(),
            Some(due.token.due_order())
        );
        assert_eq!(w.sweep_on(3).await, [StepOutcome::Reminder]);
        assert_eq!(w.mailer.accepted().len(), 2);
    }

    #[tokio::test]
    async fn an_email_ses_could_not_take_yet_asks_for_a_redelivery_that_sends_it_once() {
        let w =
            World::with(ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]));
        let err = w.failed("ev_1").await.unwrap_err();
        assert!(matches!(err, BillingError::Redeliver), "{err:?}");
        assert_eq!(w.stored().status, InvoiceStatus::Failed, "recorded");
        let again = w.failed("ev_1").await.unwrap();
        assert_eq!(email_of(&again), Some("sent"));
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_reminder_ses_could_not_take_yet_stays_claimed_and_is_resumed_once() {
        let w = World::new();
        w.failed("ev_1").await.unwrap();
        let w = World {
            mailer: ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
            ..w
        };
        w.day(3);
        let due = w.due().await.pop().unwrap();
        assert_eq!(w.step(&due).await.unwrap(), StepOutcome::LeftDue);
        assert_eq!(w.mailer.accepted().len(), 0);
        // A sweep holding the item resumes the released claim and sends; then it is settled.
        assert_eq!(w.step(&due).await.unwrap(), StepOutcome::Reminder);
        assert_eq!(w.step(&due).await.unwrap(), StepOutcome::Taken);
        assert_eq!(w.mailer.accepted(), ["PaymentFailed #1 en"]);
    }

    #[tokio::test]
    async fn an_invoice_of_an_unknown_merchant_leaves_the_index() {
        let w = World {
            merchants: MemMerchants::default(),
            ..World::new()
        };
        w.failed("ev_1").await.unwrap();
        assert_eq!(w.sweep_on(3).await, [StepOutcome::Failed]);
        assert_eq!(w.book.due_at(w.m(), &invoice().id), None);
        assert_eq!(w.mailer.calls(), 1);
    }

    /// The sample order, placed by a referee of `referrer`, earning 100 points.
    fn refunded_world(referrer: Option<&CustomerId>) -> (World, OrderRecord) {
        let w = World::new();
        let record = OrderRecord {
            points_earned: 100,
            referred_by: referrer.cloned(),
            ..fixtures::order_record(w.m(), fixtures::order())
        };
        w.book.put_order(&record);
        let earn = LedgerEntry {
            kind: LedgerKind::Earn,
            points: 100,
            source: order_source(record.order.id.as_str()),
            created_at: record.order.placed_at,
            available_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            against: None,
            reason: None,
            spend: None,
        };
        w.book.post(w.m(), &record.order.customer.id, &earn);
        if let Some(referrer) = referrer {
            let reward = LedgerEntry {
                points: 50,
                source: referral_source(record.order.id.as_str()),
                ..earn
            };
            w.book.post(w.m(), referrer, &reward);
        }
        (w, record)
    }

    fn refund(id: &str, record: &OrderRecord, amount: i64) -> BillingEvent {
        BillingEvent::Refund(RefundFacts {
            refunded_in_all: None,
            id: id.into(),
            customer: record.order.customer.clone(),
            order_id: Some(record.order.id.clone()),
            amount: crate::domain::Money::new(amount, record.order.currency),
        })
    }

    fn points(state: &crate::domain::loyalty::LoyaltyState) -> i64 {
        state.entries.iter().map(|e| e.points).sum()
    }

    #[tokio::test]
    async fn a_refund_reverses_its_share_of_the_points_once() {
        let (w, record) = refunded_world(None);
        let customer = &record.order.customer.id;
        let half = record.order.merchandise_value() / 2;
        let first = w
            .event("re_ev_1", refund("re_1", &record, half))
            .await
            .unwrap();
        assert_eq!(reversal(first), RefundOutcome::Reversed { points: 50 });
        // The webhook again, concurrently twice: the ledger moves once.
        let (a, b) = tokio::join!(
            w.event("re_ev_1", refund("re_1", &record, half)),
            w.event("re_ev_1", refund("re_1", &record, half))
        );
        assert_eq!(reversal(a.unwrap()), RefundOutcome::Duplicate);
        assert_eq!(reversal(b.unwrap()), RefundOutcome::Duplicate);
        assert_eq!(points(&w.book.loyalty(w.m(), customer).unwrap()), 50);
        assert_eq!(
            w.mailer.accepted(),
            [format!("refund re_1 {half} of {} en-GB", record.order.id)],
            "the customer is told once"
        );
    }

    #[tokio::test]
    async fn a_refund_in_full_takes_the_referrers_reward_back_too() {
        let referrer = CustomerId::parse("id", "bob").unwrap();
        let (w, record) = refunded_world(Some(&referrer));
        let full = record.order.merchandise_value();
        let done = w
            .event("re_ev_1", refund("re_1", &record, full))
            .await
            .unwrap();
        assert_eq!(reversal(done), RefundOutcome::Reversed { points: 100 });
        assert_eq!(points(&w.book.loyalty(w.m(), &referrer).unwrap()), 0);
        // A second refund of the same order finds nothing left to take back.
        let more = w
            .event("re_ev_2", refund("re_2", &record, full))
            .await
            .unwrap();
        assert_eq!(reversal(more), RefundOutcome::NothingToReverse);
        assert_eq!(points(&w.book.loyalty(w.m(), &referrer).unwrap()), 0);
    }

    #[tokio::test]
    async fn a_refund_of_an_unknown_order_is_remembered_as_handled() {
        let (w, mut record) = refunded_world(None);
        record.order.id = crate::domain::OrderId::parse("id", "SO-404").unwrap();
        let first = w
            .event("re_ev_1", refund("re_1", &record, 100))
            .await
            .unwrap();
        assert_eq!(reversal(first), RefundOutcome::NothingToReverse);
        let replay = w
            .event("re_ev_1", refund("re_1", &record, 100))
            .await
            .unwrap();
        assert_eq!(reversal(replay), RefundOutcome::Duplicate);
    }

    #[tokio::test]
    async fn a_refund_is_told_once_however_often_and_however_concurrently_it_arrives() {
        let (w, record) = refunded_world(None);
        let first = w
            .event("re_ev_1", refund("re_1", &record, 1250))
            .await
            .unwrap();
        assert_eq!(email_of(&first), Some("sent"));
        for _ in 0..20 {
            let again = w
                .event("re_ev_1", refund("re_1", &record, 1250))
                .await
                .unwrap();
            assert_eq!(email_of(&again), Some("sent"), "settled: nothing sent now");
        }
        let all = futures_util::future::join_all(
            (0..16).map(|_| w.event("re_ev_1", refund("re_1", &record, 1250))),
        )
        .await;
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(w.mailer.calls(), 1);
        // Another refund of the same order is another email.
        w.event("re_ev_2", refund("re_2", &record, 500))
            .await
            .unwrap();
        assert_eq!(
            w.mailer.accepted(),
            [
                format!("refund re_1 1250 of {} en-GB", record.order.id),
                format!("refund re_2 500 of {} en-GB", record.order.id)
            ]
        );
    }

    #[tokio::test]
    async fn concurrent_first_deliveries_of_a_refund_send_one_email() {
        let (w, record) = refunded_world(None);
        let all = futures_util::future::join_all(
            (0..16).map(|_| w.event("re_ev_1", refund("re_1", &record, 1250))),
        )
        .await;
        let sent = all
            .iter()
            .filter(|r| matches!(r, Ok(h) if email_of(h) == Some("sent")))
            .count();
        assert!(sent >= 1, "{all:?}");
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn nothing_refunded_or_nowhere_to_write_tells_nothing() {
        let (w, record) = refunded_world(None);
        let none = w
            .event("re_ev_0", refund("re_0", &record, 0))
            .await
            .unwrap();
        assert_eq!(email_of(&none), None);
        let mut anonymous = record.clone();
        anonymous.order.customer.email = None;
        let out = w
            .event("re_ev_1", refund("re_1", &anonymous, 500))
            .await
            .unwrap();
        assert_eq!(email_of(&out), Some("no_address"));
        assert_eq!(w.mailer.calls(), 0);
    }

    #[tokio::test]
    async fn a_refund_no_return_pays_is_noted_on_the_orders_tally_once_and_never_for_an_unknown_order()
     {
        use crate::domain::returns::ReturnTally;
        let (w, record) = refunded_world(None);
        for _ in 0..3 {
            w.event("re_ev_1", refund("re_1", &record, 500))
                .await
                .unwrap();
        }
        let tally_of = |o: &crate::domain::OrderId| -> Option<ReturnTally> {
            crate::testing::table::parse(w.book.table().get(&crate::testing::table::RowKey::from(
                &crate::adapters::store::keys::order_returns(w.m(), o),
            )))
            .unwrap()
        };
        let tally = tally_of(&record.order.id).unwrap();
        assert_eq!(tally.refunds.len(), 1, "{tally:?}");
        assert_eq!(
            tally
                .unadopted_refund(500, record.order.currency.code())
                .map(|r| r.subject.as_str()),
            Some("re_1")
        );
        let mut unknown = record.clone();
        unknown.order.id = crate::domain::OrderId::parse("id", "SO-404").unwrap();
        w.event("re_ev_2", refund("re_2", &unknown, 500))
            .await
            .unwrap();
        assert_eq!(tally_of(&unknown.order.id), None);
    }

    #[tokio::test]
    async fn a_merchant_whose_shop_tells_refunds_gets_none_of_ours_and_the_points_still_move() {
        let (mut w, record) = refunded_world(None);
        w.merchant.settings.orders.refund_email = false;
        let half = record.order.merchandise_value() / 2;
        let done = w
            .event("re_ev_1", refund("re_1", &record, half))
            .await
            .unwrap();
        assert_eq!(email_of(&done), None);
        assert_eq!(reversal(done), RefundOutcome::Reversed { points: 50 });
        assert_eq!(w.mailer.calls(), 0);
        // A return resolved as a refund is the return's to tell: that email still goes.
        let notice = RefundNotice {
            subject: "return-r1",
            customer: &record.order.customer,
            amount: crate::domain::Money::new(half, record.order.currency),
            order: Some(&record.order),
        };
        let told = tell_refund_issued(&w.courier(), &w.merchant, &notice, 0, deadline(), |r| {
            Some(format!("return refund {r}"))
        })
        .await
        .unwrap();
        assert!(matches!(told, Some(SendOutcome::Sent { .. })), "{told:?}");
        assert_eq!(w.mailer.calls(), 1);
    }

    #[tokio::test]
    async fn a_refund_of_an_order_not_held_is_told_without_it_in_the_customers_language() {
        let w = World::new();
        let mut customer = fixtures::order().customer;
        w.book.set_contact(
            w.m(),
            &customer.id,
            &ContactState {
                locale: Some(Locale::De),
                ..Default::default()
            },
        );
        customer.locale = None;
        let event = BillingEvent::Refund(RefundFacts {
            refunded_in_all: None,
            id: "ch_1:1500".into(),
            customer,
            order_id: None,
            amount: crate::domain::Money::new(
                1500,
                crate::domain::Currency::parse("c", "EUR").unwrap(),
            ),
        });
        let out = w.event("evt_1", event).await.unwrap();
        assert_eq!(email_of(&out), Some("sent"));
        assert_eq!(w.mailer.accepted(), ["refund ch_1:1500 1500 of - de"]);
        assert_eq!(refund_subject("stripe", "ch_1:1500"), "stripe-ch_1:1500");
        assert_eq!(refund_subject("api", "rf_9"), "rf_9");
        assert_eq!(refund_subject("shopify", "shopify-929"), "shopify-929");
        assert_eq!(refund_subject("api", "rf#2"), "rf%232");
    }

    #[tokio::test]
    async fn a_refund_email_ses_refuses_for_now_asks_for_redelivery_then_goes_once() {
        let (w, record) = refunded_world(None);
        let w = World {
            mailer: ScriptedMailer::new().then_fail([throttled(), throttled(), throttled()]),
            ..w
        };
        let err = w
            .event("re_ev_1", refund("re_1", &record, 700))
            .await
            .unwrap_err();
        assert!(matches!(err, BillingError::Redeliver), "{err:?}");
        let again = w
            .event("re_ev_1", refund("re_1", &record, 700))
            .await
            .unwrap();
        assert_eq!(email_of(&again), Some("sent"));
        assert_eq!(
            reversal(again),
            RefundOutcome::Duplicate,
            "points moved once"
        );
        assert_eq!(w.mailer.accepted().len(), 1);
    }

    #[tokio::test]
    async fn a_returns_refund_is_told_once_under_its_own_subject() {
        let (w, record) = refunded_world(None);
        let notice = RefundNotice {
            subject: "return-R-7K2Q9",
            customer: &record.order.customer,
            amount: crate::domain::Money::new(8700, record.order.currency),
            order: Some(&record.order),
        };
        for _ in 0..3 {
            let out = tell_refund_issued(&w.courier(), &w.merchant, &notice, 0, deadline(), |r| {
                Some(format!("return refund {r}"))
            })
            .await
            .unwrap();
            assert!(matches!(
                out,
                Some(SendOutcome::Sent { .. } | SendOutcome::Settled(SendStatus::Sent))
            ));
        }
        assert_eq!(w.mailer.calls(), 1);
        let id = SendIdentity::new(
            w.m(),
            &record.order.customer.id,
            EmailKind::RefundIssued,
            "return-R-7K2Q9",
            0,
        );
        assert_eq!(
            w.book.ledger.get_send(&id).await.unwrap().map(|r| r.status),
            Some(SendStatus::Sent)
        );
    }
}
