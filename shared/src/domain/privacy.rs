//! Privacy requests: a customer's data export (GDPR Art. 15 and 20, CCPA "right to know") and
//! erasure (Art. 17, "right to delete"), and the minimal audit record each leaves.
//!
//! A request names its data subject by customer id or by email address (a request often names
//! only the address). An erasure is idempotent: it is identified by a digest of its subject, so a
//! repeated request while one runs is the same request, and a request after one completed runs
//! again (erasing whatever arrived since) under the same id. The record holds the subject in
//! clear only while the erasure runs (it must be able to resume); once complete only the digest
//! and the counts remain.

use super::{CustomerId, EmailAddress, MerchantId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose data a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Customer(CustomerId),
    Address(EmailAddress),
}

impl Subject {
    /// What names the subject (`customer` or `email`).
    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::Customer(_) => SubjectKind::Customer,
            Subject::Address(_) => SubjectKind::Email,
        }
    }

    /// The subject as stored while an erasure runs (the customer id, or the normalised address).
    pub fn value(&self) -> String {
        match self {
            Subject::Customer(c) => c.as_str().to_owned(),
            Subject::Address(e) => e.normalized(),
        }
    }

    /// The subject back from a running request's record.
    pub fn from_parts(kind: SubjectKind, value: &str) -> Option<Self> {
        match kind {
            SubjectKind::Customer => CustomerId::parse("customer", value)
                .ok()
                .map(Subject::Customer),
            SubjectKind::Email => EmailAddress::parse("email", value)
                .ok()
                .map(Subject::Address),
        }
    }
}

/// The id of the erasure request about `subject`: a digest of the merchant and the subject, so a
/// repeated request is the same one and the id does not name the person.
pub fn erasure_id(m: &MerchantId, subject: &Subject) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"aftercare-erasure\0");
    hash.update(m.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(subject.kind().as_str().as_bytes());
    hash.update(b"\0");
    hash.update(subject.value().as_bytes());
    let digest: String = hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("er_{digest}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Customer,
    Email,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Customer => "customer",
            SubjectKind::Email => "email",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Export,
    Erasure,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Export => "export",
            RequestKind::Erasure => "erasure",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Under way: an erasure not yet finished (it resumes from the due index if its invocation
    /// ends first).
    Running,
    Completed,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Running => "running",
            RequestStatus::Completed => "completed",
        }
    }
}

/// A privacy request and its audit record: who asked, when, what, the outcome and counts, and
/// nothing that names the person once it is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyRequest {
    pub id: String,
    pub merchant_id: MerchantId,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub subject_kind: SubjectKind,
    /// The subject in clear, only while an erasure runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Who asked: the API key's id, or `retention` for the retention sweep.
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// Items by kind: exported, or erased (`erased.<kind>`) and kept in a form that cannot be read
    /// back (`kept.<kind>`), summed over every run of the request.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// How many times the request was made (a repeated erasure runs again under the same id).
    #[serde(default)]
    pub runs: u32,
}

impl PrivacyRequest {
    /// The subject of a running erasure.
    pub fn running_subject(&self) -> Option<Subject> {
        let value = self.subject.as_deref()?;
        Subject::from_parts(self.subject_kind, value)
    }
}

/// What one erasure step did, by item kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, what: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(what.into()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.0 {
            self.add(k, v);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Where an export continues: the stage of the walk over the subject's data, the customer (of an
/// export by address) and the last sort key done. Opaque to the merchant (a URL-safe string),
/// and harmless if forged: every read it drives is of the subject's own partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportCursor {
    pub customer: usize,
    pub stage: usize,
    pub after: Option<String>,
}

impl ExportCursor {
    /// The longest cursor accepted (a sort key is at most 1 KB).
    const MAX_LEN: usize = 1_200;

    pub fn encode(&self) -> String {
        let after = self.after.as_deref().map(hex).unwrap_or_default();
        format!("{}.{}.{}", self.customer, self.stage, after)
    }

    pub fn decode(s: &str) -> Option<Self> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let mut parts = s.splitn(3, '.');
        let customer = parts.next()?.parse().ok()?;
        let stage = parts.next()?.parse().ok()?;
        let after = match parts.next()? {
            "" => None,
            h => Some(unhex(h)?),
        };
        Some(Self {
            customer,
            stage,
            after,
        })
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_garbage_is_refused() {
        let c = ExportCursor {
            customer: 2,
            stage: 3,
            after: Some("ORDER#20260101T000000Z#SO-1.ü".into()),
        };
        assert_eq!(ExportCursor::decode(&c.encode()), Some(c));
        let none = ExportCursor::default();
        assert_eq!(ExportCursor::decode(&none.encode()), Some(none));
        for bad in ["", "1", "1.x.", "1.2.zz", "1.2.abc", &"0".repeat(2000)] {
            assert_eq!(ExportCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_running_request_names_its_subject_and_a_completed_one_does_not() {
        let mut r = PrivacyRequest {
            id: "r".into(),
            merchant_id: MerchantId::parse("m", "acme").unwrap(),
            kind: RequestKind::Erasure,
            status: RequestStatus::Running,
            subject_kind: SubjectKind::Email,
            subject: Some("ann@example.com".into()),
            requested_by: "key".into(),
            requested_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            completed_at: None,
            counts: BTreeMap::new(),
            runs: 1,
        };
        assert_eq!(
            r.running_subject(),
            Some(Subject::Address(
                EmailAddress::parse("e", "ann@example.com").unwrap()
            ))
        );
        r.subject = None;
        assert_eq!(r.running_subject(), None);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("subject").is_none());
    }

    #[test]
    fn a_tally_sums_and_skips_zeroes() {
        let mut a = Tally::default();
        a.add("order", 2);
        a.add("nothing", 0);
        let mut b = Tally::default();
        b.add("order", 1);
        b.add("shipment", 3);
        a.merge(b);
        assert_eq!(a.0.get("order"), Some(&3));
        assert_eq!(a.0.get("nothing"), None);
        assert_eq!(a.total(), 6);
    }
}
