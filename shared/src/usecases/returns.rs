//! Returns, from the customer's request to the resolution, each email once.
//!
//! * [`Returns::page`]: what of an order may still come back and why not (the portal's page and
//!   the API's answer before a request); it reads and records nothing.
//! * [`Returns::request`]: a return asked for under a key (the API's `Idempotency-Key`, the
//!   portal form's one-time key). The key names the return, so a re-submission or a concurrent
//!   duplicate finds the one return instead of making another; the same key with other content is
//!   refused. The return, the order's tally of what is coming back and the email's claim are one
//!   transaction: two requests for the last unit cannot both have it.
//! * [`Returns::move_to`]: approve, reject (with the reason), receive (the merchant, or the
//!   carrier's delivery scan of the return parcel), resolve (refund, store credit with its bonus,
//!   exchange). Each move is conditioned on the version read, and claims its email in the same
//!   transaction; a replay of a move that happened resumes its email instead.
//! * [`Returns::remind`]: an approved return whose parcel has not been sent after the policy's
//!   days gets one reminder (the return is in the due index until then).
//!
//! Emails: requested (or approved, when the policy approves at once), approved, rejected,
//! reminder, received, and on resolution "refund issued", "store credit issued" or "exchange on
//! its way". Each has the identity (customer, kind, return, 0): once, whatever is redelivered.

use crate::domain::ids::ReturnId;
use crate::domain::returns::{
    Actor, CreditFigures, Eligibility, Requester, Resolution, ReturnInput, ReturnRecord,
    ReturnSource, ReturnStatus, ReturnTally, StatusChange, decide, eligibility, request_hash,
    return_id,
};
use crate::domain::send::{EmailKind, SendIdentity, SendRecord};
use crate::domain::shipment::normalise_tracking_number;
use crate::domain::{FieldError, Merchant, OrderId};
use crate::ports::returns::{OrderForReturn, ReturnBook, ReturnWrite, Written};
use crate::ports::{Mailer, SendLedger, StoreError};
use crate::usecases::send::{Courier, Deadline, Retention, SendOutcome};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::future::Future;
use thiserror::Error;

/// Rounds of read → decide → write before a return that keeps changing under us is reported busy.
const ROUNDS: u32 = 4;

#[derive(Debug, Error)]
pub enum ReturnError {
    #[error("{0}")]
    Invalid(FieldError),
    #[error("no such order")]
    UnknownOrder,
    #[error("no such return")]
    UnknownReturn,
    /// The move is not possible from where the return stands.
    #[error("the return is {}", .current.as_str())]
    WrongStatus { current: ReturnStatus },
    /// The key was used for another request.
    #[error("the key was used for another return request")]
    KeyReused,
    #[error("the order has too many returns")]
    TooManyReturns,
    /// The return or its order kept changing under us: try again.
    #[error("the return is busy; try again")]
    Busy,
    /// An email wants another delivery of the request to go out.
    #[error("the email could not be sent now")]
    Unsent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for ReturnError {
    fn from(e: FieldError) -> Self {
        ReturnError::Invalid(e)
    }
}

/// Gives store credit for a return, once per `source` (a replay answers the same figures).
pub trait IssueCredit: Send + Sync {
    #[allow(clippy::too_many_arguments)]
    fn issue_credit(
        &self,
        merchant: &crate::domain::MerchantId,
        customer: &crate::domain::CustomerId,
        currency: crate::domain::Currency,
        amount: i64,
        bonus: i64,
        source: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<CreditFigures, ReturnError>> + Send;
}

/// Renders a return email of a kind; `None` if it cannot be.
pub trait ComposeReturnEmail<T>:
    Fn(&Merchant, &ReturnRecord, EmailKind) -> Option<T> + Sync
{
}

impl<T, F> ComposeReturnEmail<T> for F where
    F: Fn(&Merchant, &ReturnRecord, EmailKind) -> Option<T> + Sync
{
}

pub struct Returns<'a, B, L, M, C> {
    pub book: &'a B,
    pub courier: Courier<'a, L, M>,
    pub retention: Retention,
    pub compose: C,
}

/// An order's return page: what may come back, and the returns it already has.
#[derive(Debug, Clone)]
pub struct ReturnPage {
    pub order: OrderForReturn,
    pub eligibility: Eligibility,
    pub returns: Vec<ReturnRecord>,
}

/// A move of a return: where to, who moves it, and the note that goes with it (a rejection's
/// reason, told to the customer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub to: ReturnStatus,
    pub by: Actor,
    pub note: Option<String>,
}

impl Move {
    /// The merchant's move to `to`, without a note.
    pub fn by_merchant(to: ReturnStatus) -> Self {
        Self {
            to,
            by: Actor::Merchant,
            note: None,
        }
    }
}

/// What a request or a move did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub record: ReturnRecord,
    /// Whether this call made the change (false: a replay of one made before).
    pub changed: bool,
    /// The email of the change, if the customer has an address.
    pub email: Option<SendOutcome>,
}

/// The email a return's change sends.
pub fn email_of(record: &ReturnRecord) -> Option<EmailKind> {
    Some(kind_for(record.status, record.resolution))
}

/// The email of reaching `status` for a return resolved as `resolution`.
pub fn kind_for(status: ReturnStatus, resolution: Resolution) -> EmailKind {
    match status {
        ReturnStatus::Requested => EmailKind::ReturnRequested,
        ReturnStatus::Approved => EmailKind::ReturnApproved,
        ReturnStatus::Rejected => EmailKind::ReturnRejected,
        ReturnStatus::Received => EmailKind::ReturnReceived,
        ReturnStatus::Resolved => match resolution {
            Resolution::Refund => EmailKind::RefundIssued,
            Resolution::StoreCredit => EmailKind::StoreCreditIssued,
            Resolution::Exchange => EmailKind::ExchangeShipped,
        },
    }
}

/// The identity of a return's email of `kind`.
pub fn email_id(record: &ReturnRecord, kind: EmailKind) -> SendIdentity {
    // A refund reported before the return was resolved told the customer already: its email is
    // this return's "refund issued".
    let subject = match (&record.refund_reported, kind) {
        (Some(reported), EmailKind::RefundIssued) => reported.subject.clone(),
        _ => refund_subject(&record.id),
    };
    SendIdentity::new(&record.merchant_id, &record.customer.id, kind, &subject, 0)
}

/// The subject of a return's emails (a refund of the return from a shop platform or Stripe that
/// names it shares its "refund issued" email this way).
pub fn refund_subject(id: &ReturnId) -> String {
    format!("return-{id}")
}

/// When the reminder of an approved `record` is due (none: no reminder).
fn reminder_at(record: &ReturnRecord) -> Option<Timestamp> {
    (record.status == ReturnStatus::Approved
        && record.parcel.is_none()
        && record.reminded_at.is_none())
    .then_some(record.send_by)
    .flatten()
}

impl<B, L, M, C> Returns<'_, B, L, M, C>
where
    B: ReturnBook,
    L: SendLedger,
    M: Mailer,
    C: ComposeReturnEmail<M::Message>,
{
    fn now(&self) -> Timestamp {
        self.courier.clock.now()
    }

    /// What of `order_id` may still come back now, and its returns so far.
    pub async fn page(
        &self,
        merchant: &Merchant,
        order_id: &OrderId,
    ) -> Result<ReturnPage, ReturnError> {
        let order = self
            .book
            .order_for_return(&merchant.id, order_id)
            .await?
            .ok_or(ReturnError::UnknownOrder)?;
        let eligibility = self.eligibility(merchant, &order).await?;
        let returns = self
            .book
            .returns_of(&merchant.id, &order.tally.returns)
            .await?;
        Ok(ReturnPage {
            order,
            eligibility,
            returns,
        })
    }

    async fn eligibility(
        &self,
        merchant: &Merchant,
        order: &OrderForReturn,
    ) -> Result<Eligibility, ReturnError> {
        let policy = &merchant.settings.returns;
        let categories: BTreeMap<String, String> = if policy.excluded_categories.is_empty() {
            BTreeMap::new()
        } else {
            let skus: Vec<String> = order
                .order
                .order
                .items
                .iter()
                .map(|i| i.sku.clone())
                .collect();
            self.book
                .products_of(&merchant.id, &skus)
                .await?
                .into_iter()
                .filter_map(|p| Some((p.sku.as_str().to_owned(), p.category?)))
                .collect()
        };
        Ok(eligibility(
            policy,
            &order.order.order,
            order.delivered_at(),
            &order.tally.units,
            |sku| categories.get(sku).cloned(),
            self.now(),
        ))
    }

    /// Asks for a return of `order_id` under `key` (see the module docs).
    pub async fn request(
        &self,
        merchant: &Merchant,
        order_id: &OrderId,
        key: &str,
        input: &ReturnInput,
        who: Requester,
        deadline: Deadline,
    ) -> Result<Outcome, ReturnError> {
        let m = &merchant.id;
        let id = return_id(m, order_id, key)?;
        let hash = request_hash(order_id, input);
        for _ in 0..ROUNDS {
            if let Some(existing) = self.book.return_record(m, &id).await? {
                return self.replayed(merchant, existing, &hash, deadline).await;
            }
            let order = self
                .book
                .order_for_return(m, order_id)
                .await?
                .ok_or(ReturnError::UnknownOrder)?;
            if order.tally.returns.len() >= crate::domain::returns::MAX_RETURNS_PER_ORDER {
                return Err(ReturnError::TooManyReturns);
            }
            let eligibility = self.eligibility(merchant, &order).await?;
            let exchange_skus: Vec<String> = input
                .items
                .iter()
                .filter_map(|i| i.exchange_sku.clone())
                .collect();
            let variants: Vec<String> = if exchange_skus.is_empty() {
                Vec::new()
            } else {
                self.book
                    .products_of(m, &exchange_skus)
                    .await?
                    .into_iter()
                    .map(|p| p.sku.as_str().to_owned())
                    .collect()
            };
            let decided = match decide(&merchant.settings.returns, &eligibility, input, who, |s| {
                variants.iter().any(|v| v == s)
            }) {
                Ok(d) => d,
                Err(refused) => {
                    // A concurrent request under the same key may be what took the units: the
                    // return and the tally are written together, so it is there to answer now.
                    if let Some(existing) = self.book.return_record(m, &id).await? {
                        return self.replayed(merchant, existing, &hash, deadline).await;
                    }
                    return Err(refused.into());
                }
            };
            let now = self.now();
            let (by, source) = match who {
                Requester::Customer => (Actor::Customer, ReturnSource::Portal),
                Requester::Merchant => (Actor::Merchant, ReturnSource::Api),
            };
            let mut record = ReturnRecord {
                id: id.clone(),
                merchant_id: m.clone(),
                order_id: order_id.clone(),
                customer: order.order.order.customer.clone(),
                currency: order.order.order.currency,
                lines: decided.lines,
                comment: decided.comment,
                resolution: decided.resolution,
                status: ReturnStatus::Requested,
                amounts: decided.amounts,
                source,
                within_window: decided.within_window,
                created_at: now,
                updated_at: now,
                history: vec![StatusChange {
                    status: ReturnStatus::Requested,
                    at: now,
                    by,
                    note: None,
                }],
                rejection_reason: None,
                parcel: None,
                send_by: None,
                reminded_at: None,
                credit: None,
                refund_reported: None,
                content_hash: hash.clone(),
                version: 1,
            };
            if decided.auto_approved
                && let Some(approved) = record.moved(
                    ReturnStatus::Approved,
                    Actor::Policy,
                    None,
                    self.send_by(merchant, now),
                    now,
                )
            {
                record = ReturnRecord {
                    version: 1,
                    ..approved
                };
            }
            let tally = order.tally.with(&record);
            match self
                .write(merchant, &record, None, Some(&tally), deadline)
                .await?
            {
                Some(email) => {
                    tracing::info!(return_id = %record.id, status = record.status.as_str(), "return requested");
                    return Ok(Outcome {
                        record,
                        changed: true,
                        email,
                    });
                }
                // The key's return was written meanwhile, or the order's tally moved: read again.
                None => continue,
            }
        }
        Err(ReturnError::Busy)
    }

    /// A request whose return exists: the same content answers it (its email resumed if it did
    /// not go out), other content is refused.
    async fn replayed(
        &self,
        merchant: &Merchant,
        existing: ReturnRecord,
        hash: &str,
        deadline: Deadline,
    ) -> Result<Outcome, ReturnError> {
        if existing.content_hash != hash {
            return Err(ReturnError::KeyReused);
        }
        let first = existing
            .history
            .iter()
            .map(|c| c.status)
            .take_while(|s| matches!(s, ReturnStatus::Requested | ReturnStatus::Approved))
            .last()
            .unwrap_or(ReturnStatus::Requested);
        let kind = match first {
            ReturnStatus::Approved => EmailKind::ReturnApproved,
            _ => EmailKind::ReturnRequested,
        };
        let email = self.resume(merchant, &existing, kind, deadline).await?;
        Ok(Outcome {
            record: existing,
            changed: false,
            email,
        })
    }

    /// When an approved return's parcel should be on its way.
    fn send_by(&self, merchant: &Merchant, approved_at: Timestamp) -> Option<Timestamp> {
        let days = merchant.settings.returns.reminder_days;
        (days > 0)
            .then(|| {
                approved_at
                    .checked_add(SignedDuration::from_hours(i64::from(days) * 24))
                    .ok()
            })
            .flatten()
    }

    /// Makes move `mv` of return `id` (see the module docs). `credit` gives the store credit of a
    /// resolution as store credit (once per return).
    pub async fn move_to<I: IssueCredit>(
        &self,
        merchant: &Merchant,
        id: &ReturnId,
        mv: Move,
        credit: &I,
        deadline: Deadline,
    ) -> Result<Outcome, ReturnError> {
        let Move { to, by, note } = mv;
        let m = &merchant.id;
        for _ in 0..ROUNDS {
            let record = self
                .book
                .return_record(m, id)
                .await?
                .ok_or(ReturnError::UnknownReturn)?;
            if record.reached(to).is_some() {
                // Done before: carry its email through, if it did not go out.
                let kind = kind_for(to, record.resolution);
                let email = self.resume(merchant, &record, kind, deadline).await?;
                return Ok(Outcome {
                    record,
                    changed: false,
                    email,
                });
            }
            if !record.status.may_move_to(to) {
                return Err(ReturnError::WrongStatus {
                    current: record.status,
                });
            }
            let now = self.now();
            let Some(mut next) =
                record.moved(to, by, note.clone(), self.send_by(merchant, now), now)
            else {
                return Err(ReturnError::WrongStatus {
                    current: record.status,
                });
            };
            if to == ReturnStatus::Resolved && record.resolution == Resolution::StoreCredit {
                let figures = credit
                    .issue_credit(
                        m,
                        &record.customer.id,
                        record.currency,
                        record.amounts.credit,
                        record.amounts.credit_bonus,
                        &refund_subject(&record.id),
                        now,
                    )
                    .await?;
                next.credit = Some(figures);
            }
            // What the order's tally learns: a rejection gives the units back; a rejection or a
            // resolution ends the return's time under way.
            let tally = match to {
                ReturnStatus::Rejected | ReturnStatus::Resolved => {
                    let tally = self
                        .book
                        .return_tally(m, &record.order_id)
                        .await?
                        .ok_or(ReturnError::UnknownOrder)?;
                    Some(match to {
                        ReturnStatus::Rejected => tally.without_units_of(&record),
                        _ => {
                            let settled = tally.settled(&record);
                            // A refund of exactly this amount the shop or the payment provider
                            // reported already is this return's: adopted, not told again.
                            let reported = (record.resolution == Resolution::Refund)
                                .then(|| {
                                    settled.unadopted_refund(
                                        record.amounts.refund,
                                        record.currency.code(),
                                    )
                                })
                                .flatten()
                                .cloned();
                            match reported {
                                Some(reported) => {
                                    let adopted = settled.adopting(&reported);
                                    next.refund_reported = Some(reported);
                                    adopted
                                }
                                None => settled,
                            }
                        }
                    })
                }
                _ => None,
            };
            match self
                .write(
                    merchant,
                    &next,
                    Some(record.version),
                    tally.as_ref(),
                    deadline,
                )
                .await?
            {
                Some(email) => {
                    tracing::info!(return_id = %next.id, status = next.status.as_str(), "return moved");
                    return Ok(Outcome {
                        record: next,
                        changed: true,
                        email,
                    });
                }
                None => continue,
            }
        }
        Err(ReturnError::Busy)
    }

    /// Records the return parcel's tracking number (the customer's, or the merchant's label): the
    /// reminder is then no longer due.
    pub async fn set_parcel(
        &self,
        merchant: &Merchant,
        id: &ReturnId,
        parcel: crate::domain::returns::ReturnParcel,
    ) -> Result<Outcome, ReturnError> {
        let m = &merchant.id;
        for _ in 0..ROUNDS {
            let record = self
                .book
                .return_record(m, id)
                .await?
                .ok_or(ReturnError::UnknownReturn)?;
            if record.parcel.as_ref() == Some(&parcel) {
                return Ok(Outcome {
                    record,
                    changed: false,
                    email: None,
                });
            }
            if !matches!(
                record.status,
                ReturnStatus::Requested | ReturnStatus::Approved
            ) {
                return Err(ReturnError::WrongStatus {
                    current: record.status,
                });
            }
            let mut next = record.clone();
            next.parcel = Some(parcel.clone());
            next.updated_at = self.now();
            next.version = record.version.saturating_add(1);
            let written = self
                .book
                .write_return(&ReturnWrite {
                    record: &next,
                    before: Some(record.version),
                    tally: None,
                    reminder_at: reminder_at(&next),
                    claim: None,
                    send_expires_at: 0,
                    parcel_pointer: Some(&normalise_tracking_number(&parcel.tracking_number)),
                })
                .await?;
            if let Written::Done { .. } = written {
                return Ok(Outcome {
                    record: next,
                    changed: true,
                    email: None,
                });
            }
        }
        Err(ReturnError::Busy)
    }

    /// Sends the one reminder of approved return `id`, if it is still waiting for its parcel.
    /// Answers whether the return still needs its due entry (false: settle it).
    pub async fn remind(
        &self,
        merchant: &Merchant,
        id: &ReturnId,
        deadline: Deadline,
    ) -> Result<Option<SendOutcome>, ReturnError> {
        let m = &merchant.id;
        for _ in 0..ROUNDS {
            let Some(record) = self.book.return_record(m, id).await? else {
                return Ok(None);
            };
            if record.reminded_at.is_some() {
                return self
                    .resume(merchant, &record, EmailKind::ReturnReminder, deadline)
                    .await;
            }
            if reminder_at(&record).is_none() {
                return Ok(None);
            }
            let mut next = record.clone();
            let now = self.now();
            next.reminded_at = Some(now);
            next.updated_at = now;
            next.version = record.version.saturating_add(1);
            let kind = EmailKind::ReturnReminder;
            match self
                .write_with(merchant, &next, Some(record.version), None, kind, deadline)
                .await?
            {
                Some(email) => return Ok(email),
                None => continue,
            }
        }
        Err(ReturnError::Busy)
    }

    /// Writes `record` (new, or from version `before`) with `tally`, claiming the email its
    /// status sends, then sends it. `None`: a condition failed (read again).
    async fn write(
        &self,
        merchant: &Merchant,
        record: &ReturnRecord,
        before: Option<u32>,
        tally: Option<&ReturnTally>,
        deadline: Deadline,
    ) -> Result<Option<Option<SendOutcome>>, ReturnError> {
        let kind = email_of(record).unwrap_or(EmailKind::ReturnRequested);
        self.write_with(merchant, record, before, tally, kind, deadline)
            .await
    }

    async fn write_with(
        &self,
        merchant: &Merchant,
        record: &ReturnRecord,
        before: Option<u32>,
        tally: Option<&ReturnTally>,
        kind: EmailKind,
        deadline: Deadline,
    ) -> Result<Option<Option<SendOutcome>>, ReturnError> {
        let now = self.now();
        // An adopted refund's email is the reported refund's own: nothing to claim, only to
        // carry through once written.
        let adopted = kind == EmailKind::RefundIssued && record.refund_reported.is_some();
        let claim: Option<(SendIdentity, SendRecord)> = record
            .customer
            .email
            .as_ref()
            .filter(|_| !adopted)
            .map(|to| {
                let id = email_id(record, kind);
                let claim = id.claim(to.as_str(), now, deadline.lease_until(self.courier.clock));
                (id, claim)
            });
        let written = self
            .book
            .write_return(&ReturnWrite {
                record,
                before,
                tally,
                reminder_at: reminder_at(record),
                claim: claim.as_ref().map(|(i, c)| (i, c)),
                send_expires_at: self.retention.send_expiry(merchant, now),
                parcel_pointer: None,
            })
            .await?;
        let suppressed = match written {
            Written::Done { suppressed } => suppressed,
            Written::Exists | Written::Moved => return Ok(None),
        };
        if adopted {
            return Ok(Some(self.resume(merchant, record, kind, deadline).await?));
        }
        let Some((id, claim)) = claim else {
            return Ok(Some(None));
        };
        if suppressed {
            return Ok(Some(Some(SendOutcome::Suppressed)));
        }
        let outcome = self
            .courier
            .send_composed(
                &id,
                &claim.claim_token,
                (self.compose)(merchant, record, kind),
                deadline,
            )
            .await?;
        if outcome.wants_redelivery() {
            return Err(ReturnError::Unsent);
        }
        Ok(Some(Some(outcome)))
    }

    /// Carries a change's email on from its record (a replay of the change).
    async fn resume(
        &self,
        merchant: &Merchant,
        record: &ReturnRecord,
        kind: EmailKind,
        deadline: Deadline,
    ) -> Result<Option<SendOutcome>, ReturnError> {
        if record.customer.email.is_none() {
            return Ok(None);
        }
        let id = email_id(record, kind);
        let outcome = match self.courier.store.get_send(&id).await? {
            Some(sent) => {
                self.courier
                    .resume(&id, &sent, deadline, || {
                        (self.compose)(merchant, record, kind)
                    })
                    .await?
            }
            // The change was written with its claim: a record with none was suppressed or had no
            // email in this kind (a request approved at once sends "approved" only).
            None => return Ok(None),
        };
        if outcome.wants_redelivery() {
            return Err(ReturnError::Unsent);
        }
        Ok(Some(outcome))
    }
}

/// Returns on the in-memory adapters: every decision and error path, no network.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::ids::ShipmentId;
    use crate::domain::returns::{AutoApproval, ReturnLineInput, ReturnPolicy};
    use crate::domain::send::SendStatus;
    use crate::domain::shipment::ShipmentPointer;
    use crate::testing::fixtures::{self, deadline};
    use crate::testing::{MemCredit, MemReturns, ScriptedMailer};
    use std::time::Duration;

    type Use<'a> = Returns<
        'a,
        MemReturns,
        crate::testing::MemSendLedger,
        ScriptedMailer<String>,
        fn(&Merchant, &ReturnRecord, EmailKind) -> Option<String>,
    >;

    struct World {
        book: MemReturns,
        credit: MemCredit,
        mailer: ScriptedMailer<String>,
        clock: ManualClock,
        merchant: Merchant,
        order: OrderId,
    }

    fn compose(_: &Merchant, record: &ReturnRecord, kind: EmailKind) -> Option<String> {
        Some(format!(
            "{} {}",
            kind.as_str(),
            record.customer.email.as_ref()?
        ))
    }

    fn policy() -> ReturnPolicy {
        ReturnPolicy {
            enabled: true,
            resolutions: Resolution::ALL.to_vec(),
            credit_bonus_percent: 10,
            ..ReturnPolicy::default()
        }
    }

    impl World {
        fn new(policy: ReturnPolicy) -> Self {
            let mut merchant = fixtures::merchant();
            merchant.settings.returns = policy;
            let order = fixtures::order();
            let record = fixtures::order_record(&merchant.id, order);
            let book = MemReturns::new();
            book.add_order(&record);
            book.add_shipment(
                &merchant.id,
                &record.order.id,
                &ShipmentPointer {
                    shipment_id: ShipmentId::parse("s", "SH-1").unwrap(),
                    delivered_at: Some("2026-11-22T10:00:00Z".parse().unwrap()),
                },
            )
            .unwrap();
            Self {
                book,
                credit: MemCredit::new(),
                mailer: ScriptedMailer::new(),
                clock: ManualClock::new("2026-11-25T10:00:00Z".parse().unwrap()),
                merchant,
                order: record.order.id,
            }
        }

        fn use_case(&self) -> Use<'_> {
            Returns {
                book: &self.book,
                courier: fixtures::courier(self.book.ledger(), &self.mailer, &self.clock),
                retention: Retention {
                    default: Duration::from_secs(86_400),
                },
                compose,
            }
        }

        async fn request(
            &self,
            key: &str,
            items: &[(&str, i64)],
            resolution: &str,
        ) -> Result<Outcome, ReturnError> {
            let input = ReturnInput {
                items: items
                    .iter()
                    .map(|(sku, q)| ReturnLineInput {
                        sku: (*sku).into(),
                        quantity: *q,
                        reason: "damaged".into(),
                        exchange_sku: None,
                    })
                    .collect(),
                resolution: resolution.into(),
                comment: Some("The pole snapped".into()),
            };
            self.use_case()
                .request(
                    &self.merchant,
                    &self.order,
                    key,
                    &input,
                    Requester::Customer,
                    deadline(),
                )
                .await
        }

        async fn move_to(
            &self,
            id: &ReturnId,
            to: ReturnStatus,
            note: Option<&str>,
        ) -> Result<Outcome, ReturnError> {
            self.use_case()
                .move_to(
                    &self.merchant,
                    id,
                    Move {
                        to,
                        by: Actor::Merchant,
                        note: note.map(str::to_owned),
                    },
                    &self.credit,
                    deadline(),
                )
                .await
        }

        fn sent(&self) -> Vec<String> {
            self.mailer.accepted()
        }
    }

    #[tokio::test]
    async fn a_request_is_stored_once_and_its_email_sent_once() {
        let w = World::new(policy());
        let first = w.request("k1", &[("PEG-10", 1)], "refund").await.unwrap();
        assert!(first.changed);
        assert_eq!(first.record.status, ReturnStatus::Requested);
        assert_eq!(first.record.amounts.refund, 750);
        let again = w.request("k1", &[("PEG-10", 1)], "refund").await.unwrap();
        assert!(!again.changed);
        assert_eq!(again.record.id, first.record.id);
        assert_eq!(
            w.sent(),
            vec!["return_requested ann@example.com".to_owned()]
        );
        let other = w
            .request("k1", &[("PEG-10", 2)], "refund")
            .await
            .unwrap_err();
        assert!(matches!(other, ReturnError::KeyReused), "{other:?}");
        let page = w.use_case().page(&w.merchant, &w.order).await.unwrap();
        assert_eq!(page.eligibility.line("PEG-10").unwrap().returnable, 1);
        assert_eq!(page.returns.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_never_return_more_than_was_ordered() {
        let w = World::new(policy());
        let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
        let results = futures_util::future::join_all(
            keys.iter()
                .map(|k| w.request(k, &[("PEG-10", 1)], "refund")),
        )
        .await;
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 2, "two pegs were ordered: {results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(r, ReturnError::Invalid(e) if e.code == "already_returned"),
                "{r:?}"
            );
        }
        assert_eq!(w.sent().len(), 2);
    }

    #[tokio::test]
    async fn outside_the_window_a_customer_is_refused_naming_the_item() {
        let w = World::new(policy());
        w.clock.set("2026-12-23T10:00:01Z".parse().unwrap());
        let err = w
            .request("k", &[("TENT-2", 1)], "refund")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ReturnError::Invalid(e) if e.code == "window_closed" && e.field == "items[0].quantity"),
            "{err:?}"
        );
        assert!(w.sent().is_empty());
    }

    #[tokio::test]
    async fn auto_approval_sends_the_approval_only() {
        let w = World::new(ReturnPolicy {
            auto_approve: AutoApproval {
                enabled: true,
                max_value: Some(1_000),
            },
            ..policy()
        });
        let small = w.request("a", &[("PEG-10", 1)], "refund").await.unwrap();
        assert_eq!(small.record.status, ReturnStatus::Approved);
        assert!(small.record.send_by.is_some());
        let big = w.request("b", &[("TENT-2", 1)], "refund").await.unwrap();
        assert_eq!(big.record.status, ReturnStatus::Requested);
        assert_eq!(
            w.sent(),
            vec![
                "return_approved ann@example.com".to_owned(),
                "return_requested ann@example.com".to_owned()
            ]
        );
        // A replay of the approved request resumes nothing new.
        w.request("a", &[("PEG-10", 1)], "refund").await.unwrap();
        assert_eq!(w.sent().len(), 2);
    }

    #[tokio::test]
    async fn the_whole_life_of_a_store_credit_return_each_email_once() {
        let w = World::new(policy());
        let r = w
            .request("k", &[("TENT-2", 1)], "store_credit")
            .await
            .unwrap()
            .record;
        for _ in 0..2 {
            w.move_to(&r.id, ReturnStatus::Approved, None)
                .await
                .unwrap();
        }
        let err = w
            .move_to(&r.id, ReturnStatus::Rejected, Some("no"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ReturnError::WrongStatus {
                current: ReturnStatus::Approved
            }
        ));
        for _ in 0..2 {
            w.move_to(&r.id, ReturnStatus::Received, None)
                .await
                .unwrap();
        }
        let mut resolved = None;
        for _ in 0..3 {
            resolved = Some(
                w.move_to(&r.id, ReturnStatus::Resolved, None)
                    .await
                    .unwrap(),
            );
        }
        let resolved = resolved.unwrap().record;
        let credit = resolved.credit.unwrap();
        assert_eq!(
            (credit.amount, credit.bonus, credit.balance),
            (19_900, 1_990, 21_890)
        );
        assert_eq!(
            w.credit.balance(&resolved.customer.id, resolved.currency),
            21_890
        );
        assert_eq!(
            w.sent(),
            [
                "return_requested",
                "return_approved",
                "return_received",
                "store_credit_issued"
            ]
            .map(|k| format!("{k} ann@example.com"))
        );
        let page = w.use_case().page(&w.merchant, &w.order).await.unwrap();
        assert!(!page.order.tally.any_open());
        assert_eq!(page.eligibility.line("TENT-2").unwrap().returnable, 0);
    }

    #[tokio::test]
    async fn a_rejection_gives_the_items_back_and_tells_the_reason_once() {
        let w = World::new(policy());
        let r = w
            .request("k", &[("TENT-2", 1)], "refund")
            .await
            .unwrap()
            .record;
        let rejected = w
            .move_to(&r.id, ReturnStatus::Rejected, Some("Used outdoors"))
            .await
            .unwrap();
        assert_eq!(
            rejected.record.rejection_reason.as_deref(),
            Some("Used outdoors")
        );
        w.move_to(&r.id, ReturnStatus::Rejected, Some("Used outdoors"))
            .await
            .unwrap();
        assert_eq!(
            w.sent()
                .iter()
                .filter(|s| s.starts_with("return_rejected"))
                .count(),
            1
        );
        let page = w.use_case().page(&w.merchant, &w.order).await.unwrap();
        assert_eq!(page.eligibility.line("TENT-2").unwrap().returnable, 1);
        assert!(!page.order.tally.any_open());
    }

    #[tokio::test]
    async fn a_refund_reported_before_the_resolution_is_adopted_once_and_not_told_again() {
        use crate::adapters::store::keys;
        use crate::domain::returns::{ReportedRefund, ReturnTally};
        use crate::testing::table::{RowKey, Write, always};
        let w = World::new(policy());
        let tent = w
            .request("k1", &[("TENT-2", 1)], "refund")
            .await
            .unwrap()
            .record;
        let pegs = w
            .request("k2", &[("PEG-10", 1)], "refund")
            .await
            .unwrap()
            .record;
        // The shop refunded the tent's amount before the merchant resolved anything (billing
        // notes it on the order's tally).
        let reported = ReportedRefund {
            id: "shop-re-1".into(),
            subject: "shop-re-1".into(),
            amount: tent.amounts.refund,
            currency: tent.currency.code().into(),
        };
        let noted = reported.clone();
        let key = RowKey::from(&keys::order_returns(&w.merchant.id, &w.order));
        let written = w.book.table().write(Write::Update {
            key,
            condition: always(),
            apply: Box::new(move |row| {
                let mut tally: ReturnTally = serde_json::from_value(row.unwrap()).unwrap();
                tally.refunds.push(noted);
                tally.version += 1;
                serde_json::to_value(tally).unwrap()
            }),
        });
        assert!(written.unwrap());
        for id in [&tent.id, &pegs.id] {
            for to in [ReturnStatus::Approved, ReturnStatus::Received] {
                w.move_to(id, to, None).await.unwrap();
            }
        }
        let resolved = w
            .move_to(&tent.id, ReturnStatus::Resolved, None)
            .await
            .unwrap();
        assert_eq!(resolved.record.refund_reported.as_ref(), Some(&reported));
        // The pegs' refund is another amount: told as usual.
        let pegs = w
            .move_to(&pegs.id, ReturnStatus::Resolved, None)
            .await
            .unwrap();
        assert_eq!(pegs.record.refund_reported, None);
        let told: Vec<String> = w
            .sent()
            .into_iter()
            .filter(|s| s.starts_with("refund_issued"))
            .collect();
        assert_eq!(
            told.len(),
            1,
            "only the pegs' refund is told here: {told:?}"
        );
        let tally = w
            .book
            .return_tally(&w.merchant.id, &w.order)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tally.adopted, ["shop-re-1"]);
        assert_eq!(tally.unadopted_refund(reported.amount, "EUR"), None);
        // Resolving again changes nothing and adopts nothing twice.
        w.move_to(&tent.id, ReturnStatus::Resolved, None)
            .await
            .unwrap();
        assert_eq!(
            w.sent()
                .iter()
                .filter(|s| s.starts_with("refund_issued"))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn the_reminder_goes_once_and_not_after_the_parcel_is_sent() {
        let w = World::new(policy());
        let r = w
            .request("k", &[("TENT-2", 1)], "refund")
            .await
            .unwrap()
            .record;
        w.move_to(&r.id, ReturnStatus::Approved, None)
            .await
            .unwrap();
        for _ in 0..2 {
            w.use_case()
                .remind(&w.merchant, &r.id, deadline())
                .await
                .unwrap();
        }
        assert_eq!(
            w.sent()
                .iter()
                .filter(|s| s.starts_with("return_reminder"))
                .count(),
            1
        );
        let s = w
            .request("k2", &[("PEG-10", 1)], "refund")
            .await
            .unwrap()
            .record;
        w.move_to(&s.id, ReturnStatus::Approved, None)
            .await
            .unwrap();
        let parcel = crate::domain::returns::ReturnParcel {
            tracking_number: "1Z999AA10123456784".into(),
            carrier: Some("UPS".into()),
        };
        w.use_case()
            .set_parcel(&w.merchant, &s.id, parcel)
            .await
            .unwrap();
        let none = w
            .use_case()
            .remind(&w.merchant, &s.id, deadline())
            .await
            .unwrap();
        assert!(none.is_none());
        assert_eq!(
            w.sent()
                .iter()
                .filter(|s| s.starts_with("return_reminder"))
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn a_send_ses_refused_for_now_is_sent_by_the_redelivery() {
        let w = World {
            mailer: ScriptedMailer::new().then_fail(std::iter::repeat_n(
                crate::ports::SendFailure::NotSentRetryable {
                    code: "Throttling".into(),
                },
                crate::usecases::send::MAX_SEND_ATTEMPTS as usize,
            )),
            ..World::new(policy())
        };
        let err = w
            .request("k", &[("TENT-2", 1)], "refund")
            .await
            .unwrap_err();
        assert!(matches!(err, ReturnError::Unsent), "{err:?}");
        let again = w.request("k", &[("TENT-2", 1)], "refund").await.unwrap();
        assert!(!again.changed);
        assert_eq!(again.email.as_ref().map(SendOutcome::as_str), Some("sent"));
        assert_eq!(w.sent().len(), 1);
        let id = email_id(&again.record, EmailKind::ReturnRequested);
        let record = w.book.ledger().get_send(&id).await.unwrap().unwrap();
        assert_eq!(record.status, SendStatus::Sent);
    }
}
