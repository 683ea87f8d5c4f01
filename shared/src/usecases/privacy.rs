//! Privacy requests: a customer's export, their erasure (on request or at the end of the
//! merchant's retention period), and the audit record each leaves.
//!
//! * **Export** reads page by page (each page about [`EXPORT_PAGE_BYTES`] of JSON, far below a
//!   Lambda response's 6 MB), every item held about the subject grouped by kind; its first page
//!   leaves an audit record.
//! * **Erasure** is identified by a digest of its subject ([`erasure_id`]): asking again while it
//!   runs is the same request; asking after it completed runs it again (erasing whatever arrived
//!   since). It runs in the request's invocation until the deadline; what is left is carried on by
//!   the next sweep, because a running erasure sits in the due index ([`RESUME_AFTER`] ahead,
//!   moved on with each step). The store's erasure is idempotent, so a resumed or concurrent run
//!   finishes what another began.
//! * **Retention**: every order moves the customer's retention entry to the merchant's retention
//!   period from then; when it falls due the customer is erased like on request (`retention`),
//!   unless a subscription of theirs is still running (looked at again a period later).

use crate::domain::privacy::{
    ExportCursor, PrivacyRequest, RequestKind, RequestStatus, Subject, Tally, erasure_id,
};
use crate::domain::{CustomerId, MerchantId};
use crate::ports::privacy::{ExportedItem, PrivacyBook};
use crate::ports::{Due, MerchantDirectory, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// About how much JSON one export page holds.
pub const EXPORT_PAGE_BYTES: usize = 1_500_000;
/// How far ahead of each step a running erasure's due entry is put: if its invocation ends, the
/// sweep after that carries it on.
pub const RESUME_AFTER: Duration = Duration::from_secs(120);
/// Who a retention erasure is recorded as requested by.
pub const RETENTION: &str = "retention";

#[derive(Debug, Error)]
pub enum PrivacyError {
    /// The export cursor is not one this API handed out.
    #[error("the cursor is not one this API returned")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One page of an export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    /// The audit record's id (the first page's request; later pages repeat none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The customers the page's data belongs to (an address may have several).
    pub customer_ids: Vec<CustomerId>,
    /// Items by kind.
    pub items: BTreeMap<String, Vec<serde_json::Value>>,
    /// Where the next page starts; none: this was the last.
    pub next_cursor: Option<String>,
}

/// The retention entry of a customer: their profile as the due index hands it over.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionDue {
    pub customer_id: CustomerId,
    #[serde(default)]
    pub last_order_at: Option<Timestamp>,
}

/// What the retention sweep did with one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionOutcome {
    /// Erased (or its erasure started and will be carried on).
    Erased,
    /// Still within the period, or a subscription still runs: looked at again later.
    Deferred,
    /// Another sweep moved it.
    Taken,
    /// The deadline came first.
    LeftDue,
}

pub struct Privacy<'a, B, D: ?Sized> {
    pub book: &'a B,
    pub merchants: &'a D,
}

impl<B: PrivacyBook, D: MerchantDirectory + ?Sized> Privacy<'_, B, D> {
    /// One page of everything held about `subject`, from `cursor` (none: the first page, which
    /// records the request).
    pub async fn export(
        &self,
        m: &MerchantId,
        subject: &Subject,
        cursor: Option<&str>,
        requested_by: &str,
        now: Timestamp,
    ) -> Result<Export, PrivacyError> {
        let at = match cursor {
            Some(c) => ExportCursor::decode(c).ok_or(PrivacyError::BadCursor)?,
            None => ExportCursor::default(),
        };
        let (customers, address) = match subject {
            Subject::Customer(c) => (vec![c.clone()], None),
            Subject::Address(e) => (self.book.customers_at(m, e).await?, Some(e)),
        };
        let page = self
            .book
            .export_page(m, &customers, address, &at, EXPORT_PAGE_BYTES)
            .await?;
        let mut items: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for ExportedItem { kind, data } in page.items {
            items.entry(kind).or_default().push(data);
        }
        let request_id = match cursor {
            Some(_) => None,
            None => {
                let mut counts = BTreeMap::new();
                counts.insert("customers".to_owned(), customers.len() as u64);
                let record = PrivacyRequest {
                    id: format!("ex_{}", crate::domain::ids::new_id()),
                    merchant_id: m.clone(),
                    kind: RequestKind::Export,
                    status: RequestStatus::Completed,
                    subject_kind: subject.kind(),
                    subject: None,
                    requested_by: requested_by.to_owned(),
                    requested_at: now,
                    updated_at: now,
                    completed_at: Some(now),
                    counts,
                    runs: 1,
                };
                Some(self.book.begin(&record, None).await?.id)
            }
        };
        Ok(Export {
            request_id,
            customer_ids: customers,
            items,
            next_cursor: page.next.map(|c| c.encode()),
        })
    }

    /// Erases `subject` (see the module doc): the request as it stands when this invocation's
    /// share of the work ends at `until`.
    pub async fn erase(
        &self,
        m: &MerchantId,
        subject: &Subject,
        requested_by: &str,
        now: Timestamp,
        until: Instant,
    ) -> Result<PrivacyRequest, StoreError> {
        let id = erasure_id(m, subject);
        let before = self.book.request(m, &id).await?;
        let running = match before {
            Some(r) if r.status == RequestStatus::Running => r,
            before => {
                let (counts, runs) = before.map(|b| (b.counts, b.runs)).unwrap_or_default();
                let request = PrivacyRequest {
                    id,
                    merchant_id: m.clone(),
                    kind: RequestKind::Erasure,
                    status: RequestStatus::Running,
                    subject_kind: subject.kind(),
                    subject: Some(subject.value()),
                    requested_by: requested_by.to_owned(),
                    requested_at: now,
                    updated_at: now,
                    completed_at: None,
                    counts,
                    runs: runs + 1,
                };
                self.book.begin(&request, Some(resume_at(now))).await?
            }
        };
        self.carry_on(running, now, until).await
    }

    /// Carries a running erasure on until `until`; a completed one is answered as it is.
    pub async fn carry_on(
        &self,
        request: PrivacyRequest,
        now: Timestamp,
        until: Instant,
    ) -> Result<PrivacyRequest, StoreError> {
        let Some(subject) = request.running_subject() else {
            return Ok(request);
        };
        let m = &request.merchant_id;
        let customers = match &subject {
            Subject::Customer(c) => vec![c.clone()],
            Subject::Address(e) => self.book.customers_at(m, e).await?,
        };
        let mut tally = Tally::default();
        let mut complete = true;
        for c in &customers {
            let erased = self.book.erase_customer(m, c, until, now).await?;
            tally.merge(erased.tally);
            if !erased.complete {
                complete = false;
                break;
            }
        }
        if complete && let Subject::Address(e) = &subject {
            tally.merge(self.book.erase_address(m, e).await?);
        }
        tally.add(
            "customers",
            if complete { customers.len() as u64 } else { 0 },
        );
        self.book
            .progress(m, &request.id, &tally, resume_at(now), now)
            .await?;
        if complete {
            tracing::info!(request = %request.id, items = tally.total(), "erasure complete");
            self.book.complete(m, &request.id, now).await
        } else {
            tracing::info!(request = %request.id, "erasure continues in the next sweep");
            Ok(self.book.request(m, &request.id).await?.unwrap_or(request))
        }
    }

    /// A privacy request's record (its status and counts).
    pub async fn request(
        &self,
        m: &MerchantId,
        id: &str,
    ) -> Result<Option<PrivacyRequest>, StoreError> {
        self.book.request(m, id).await
    }

    /// What the retention sweep does with a customer whose entry fell due.
    pub async fn retain_or_erase(
        &self,
        due: &Due<RetentionDue>,
        now: Timestamp,
        until: Instant,
    ) -> Result<RetentionOutcome, StoreError> {
        let entry = match &due.entry {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "retention entry unreadable; it stays due");
                return Ok(RetentionOutcome::LeftDue);
            }
        };
        let Some(merchant) = self.merchants.merchant(&due.merchant).await? else {
            // The merchant is gone (offboarded): its data goes with it, not customer by customer.
            return Ok(RetentionOutcome::Taken);
        };
        let lifetime = merchant.settings.retention.customer_lifetime();
        let after = |from: Timestamp| {
            from.checked_add(SignedDuration::try_from(lifetime).unwrap_or(SignedDuration::MAX))
                .unwrap_or(Timestamp::MAX)
        };
        let ends = after(entry.last_order_at.unwrap_or(now));
        let defer_to = if ends > now {
            // The merchant lengthened its period since the entry was written.
            Some(ends)
        } else if self
            .book
            .has_running_subscription(&due.merchant, &entry.customer_id)
            .await?
        {
            Some(after(now))
        } else {
            None
        };
        if let Some(at) = defer_to {
            return Ok(match self.book.defer_retention(&due.token, at).await? {
                true => RetentionOutcome::Deferred,
                false => RetentionOutcome::Taken,
            });
        }
        self.erase(
            &due.merchant,
            &Subject::Customer(entry.customer_id.clone()),
            RETENTION,
            now,
            until,
        )
        .await?;
        Ok(RetentionOutcome::Erased)
    }
}

fn resume_at(now: Timestamp) -> Timestamp {
    now.checked_add(SignedDuration::try_from(RESUME_AFTER).unwrap_or(SignedDuration::ZERO))
        .unwrap_or(now)
}
