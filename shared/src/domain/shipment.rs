//! Shipments and their tracking state.
//!
//! Statuses follow AfterShip's vocabulary. Two kinds:
//! * **progress** statuses have a rank — `info_received` 1, `in_transit` 2, `out_for_delivery` 3,
//!   `available_for_pickup` 4, and the terminal `delivered` / `returned_to_sender` 5;
//! * **issues** — `attempt_failed`, `exception` — do not move progress; an issue is *active* while
//!   it is newer than the latest progress checkpoint.
//!
//! A shipment's state is a pure function of the *set* of checkpoints it has seen:
//! progress is the checkpoint with the greatest (rank, time), the issue the newest issue checkpoint.
//! So delivery order does not matter (a shuffled sequence ends in the same state), progress never
//! moves backwards (a late `in_transit` after `delivered` is history, nothing more), and a replay
//! changes nothing. [`ShipmentState::apply`] is the incremental form of that fold.

use super::customer::CustomerRef;
use super::ids::ShipmentId;
use super::send::EmailKind;
use super::text::{optional_line, single_line, web_url};
use super::validation::FieldError;
use super::{MerchantId, OrderId, ids};
use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    InfoReceived,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    AttemptFailed,
    Exception,
    Delivered,
    ReturnedToSender,
}

impl TrackingStatus {
    pub const ALL: [TrackingStatus; 8] = [
        TrackingStatus::InfoReceived,
        TrackingStatus::InTransit,
        TrackingStatus::OutForDelivery,
        TrackingStatus::AvailableForPickup,
        TrackingStatus::AttemptFailed,
        TrackingStatus::Exception,
        TrackingStatus::Delivered,
        TrackingStatus::ReturnedToSender,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TrackingStatus::InfoReceived => "info_received",
            TrackingStatus::InTransit => "in_transit",
            TrackingStatus::OutForDelivery => "out_for_delivery",
            TrackingStatus::AvailableForPickup => "available_for_pickup",
            TrackingStatus::AttemptFailed => "attempt_failed",
            TrackingStatus::Exception => "exception",
            TrackingStatus::Delivered => "delivered",
            TrackingStatus::ReturnedToSender => "returned_to_sender",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value.trim())
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_status",
                    format!(
                        "{field} must be one of {}",
                        Self::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// Progress rank, or `None` for issue statuses.
    pub fn rank(&self) -> Option<u8> {
        match self {
            TrackingStatus::InfoReceived => Some(1),
            TrackingStatus::InTransit => Some(2),
            TrackingStatus::OutForDelivery => Some(3),
            TrackingStatus::AvailableForPickup => Some(4),
            TrackingStatus::Delivered | TrackingStatus::ReturnedToSender => Some(5),
            TrackingStatus::AttemptFailed | TrackingStatus::Exception => None,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TrackingStatus::Delivered | TrackingStatus::ReturnedToSender
        )
    }

    /// The customer email this status triggers (once per shipment), if any.
    pub fn milestone(&self) -> Option<Milestone> {
        match self {
            TrackingStatus::OutForDelivery => Some(Milestone::OutForDelivery),
            TrackingStatus::AvailableForPickup => Some(Milestone::AvailableForPickup),
            TrackingStatus::Delivered => Some(Milestone::Delivered),
            TrackingStatus::AttemptFailed => Some(Milestone::AttemptFailed),
            TrackingStatus::Exception => Some(Milestone::Exception),
            TrackingStatus::ReturnedToSender => Some(Milestone::Exception),
            TrackingStatus::InfoReceived | TrackingStatus::InTransit => None,
        }
    }
}

/// The moments a customer hears about, each at most once per shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Shipped,
    OutForDelivery,
    AvailableForPickup,
    Delivered,
    AttemptFailed,
    Exception,
    Late,
}

impl Milestone {
    /// The email the milestone sends.
    pub fn email_kind(self) -> EmailKind {
        match self {
            Milestone::Shipped => EmailKind::ShipmentShipped,
            Milestone::OutForDelivery => EmailKind::ShipmentOutForDelivery,
            Milestone::AvailableForPickup => EmailKind::ShipmentAvailableForPickup,
            Milestone::Delivered => EmailKind::ShipmentDelivered,
            Milestone::AttemptFailed => EmailKind::ShipmentAttemptFailed,
            Milestone::Exception => EmailKind::ShipmentException,
            Milestone::Late => EmailKind::ShipmentLate,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Milestone::Shipped => "shipped",
            Milestone::OutForDelivery => "out_for_delivery",
            Milestone::AvailableForPickup => "available_for_pickup",
            Milestone::Delivered => "delivered",
            Milestone::AttemptFailed => "attempt_failed",
            Milestone::Exception => "exception",
            Milestone::Late => "late",
        }
    }
}

/// One tracking checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sender's id for the checkpoint, or a digest of its content: replays dedupe on it.
    pub id: String,
    pub status: TrackingStatus,
    pub occurred_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The derived tracking state of a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShipmentState {
    pub progress: Option<(TrackingStatus, Timestamp)>,
    pub issue: Option<(TrackingStatus, Timestamp)>,
}

impl ShipmentState {
    /// Folds in one checkpoint; returns whether the state changed.
    pub fn apply(&mut self, status: TrackingStatus, at: Timestamp) -> bool {
        match status.rank() {
            Some(rank) => {
                let newer = match self.progress {
                    None => true,
                    Some((cur, cur_at)) => {
                        (rank, at, status) > (cur.rank().unwrap_or(0), cur_at, cur)
                    }
                };
                if newer {
                    self.progress = Some((status, at));
                }
                newer
            }
            None => {
                let newer = self.issue.is_none_or(|(s, t)| (at, status) > (t, s));
                if newer {
                    self.issue = Some((status, at));
                }
                newer
            }
        }
    }

    /// What a customer or merchant sees: an issue newer than the latest progress, else progress.
    pub fn status(&self) -> Option<TrackingStatus> {
        match (self.progress, self.issue) {
            (Some((p, _)), _) if p.is_terminal() => Some(p),
            (Some((_, pt)), Some((i, it))) if it > pt => Some(i),
            (None, Some((i, _))) => Some(i),
            (Some((p, _)), _) => Some(p),
            (None, None) => None,
        }
    }

    pub fn delivered_at(&self) -> Option<Timestamp> {
        self.progress
            .filter(|(s, _)| *s == TrackingStatus::Delivered)
            .map(|(_, t)| t)
    }

    /// Reached out for delivery or beyond (so no "running late" notice is due).
    pub fn reached_final_mile(&self) -> bool {
        self.progress
            .is_some_and(|(s, _)| s.rank().unwrap_or(0) >= 3)
    }
}

/// A shipment as stored, with what its emails need (the customer) and its tracking state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    pub merchant_id: MerchantId,
    pub shipment: Shipment,
    pub customer: CustomerRef,
    pub content_hash: String,
    pub created_at: Timestamp,
    /// Tracking state, flat so conditions can compare it (0 / "" before any checkpoint).
    #[serde(default)]
    pub progress_rank: u8,
    #[serde(default)]
    pub progress_status: Option<TrackingStatus>,
    #[serde(default)]
    pub progress_at_ms: i64,
    #[serde(default)]
    pub issue_status: Option<TrackingStatus>,
    #[serde(default)]
    pub issue_at_ms: i64,
    /// The latest expected delivery date a tracking provider gave (the promise stays in
    /// `shipment.promised_date`), and how many times it was revised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<Date>,
    #[serde(default)]
    pub date_revision: u32,
}

impl ShipmentRecord {
    pub fn new(
        merchant_id: MerchantId,
        shipment: Shipment,
        customer: CustomerRef,
        content_hash: String,
        now: Timestamp,
    ) -> Self {
        Self {
            merchant_id,
            shipment,
            customer,
            content_hash,
            created_at: now,
            progress_rank: 0,
            progress_status: None,
            progress_at_ms: 0,
            issue_status: None,
            issue_at_ms: 0,
            expected_date: None,
            date_revision: 0,
        }
    }

    /// The date the customer expects the parcel: the provider's latest estimate, else the promise.
    pub fn expected(&self) -> Option<Date> {
        self.expected_date.or(self.shipment.promised_date)
    }

    /// What a provider's expected date `new` changes: nothing when it is the date the customer
    /// already expects (or the parcel reached its last mile); a revision otherwise, which tells
    /// the customer only when they were given a date before.
    pub fn revise_expected(&self, new: Date) -> Option<DateRevision> {
        if self.expected() == Some(new) || self.state().reached_final_mile() {
            return None;
        }
        Some(DateRevision {
            from: self.expected(),
            to: new,
            revision: self.date_revision + 1,
        })
    }

    pub fn state(&self) -> ShipmentState {
        let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        ShipmentState {
            progress: self.progress_status.map(|s| (s, at(self.progress_at_ms))),
            issue: self.issue_status.map(|s| (s, at(self.issue_at_ms))),
        }
    }

    /// Late at `now`: the date the customer expects ([`Self::expected`], a provider's latest
    /// estimate else the promise; in the merchant's zone `tz`) has passed ([`late_after`]) and it
    /// is neither delivered nor returned. (The "running late" email is narrower: it goes
    /// only while the parcel is not yet out for delivery.)
    pub fn is_late(&self, now: Timestamp, tz: &str) -> bool {
        let done = self.state().status().is_some_and(|s| s.is_terminal());
        !done && self.late_from(tz).is_some_and(|after| now >= after)
    }

    /// When the shipment is late by the date the customer expects, in the merchant's zone `tz`
    /// ([`late_after`] of [`Self::expected`]); none without a date.
    pub fn late_from(&self, tz: &str) -> Option<Timestamp> {
        self.expected().and_then(|d| late_after(d, tz))
    }
}

/// A tracking number as compared across systems: ASCII letters and digits only, upper case
/// (carriers print `1Z 999 AA1 01 2345 6784` and APIs send `1Z999AA10123456784`).
pub fn normalise_tracking_number(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Carrier families whose names differ between shops and aggregators (`DHL Express`, `DHLExpress`,
/// `dhl`, `dhl_express`): a name containing one of these is that family.
const FAMILIES: &[&str] = &[
    "dhl",
    "ups",
    "fedex",
    "usps",
    "dpd",
    "gls",
    "hermes",
    "evri",
    "royalmail",
    "parcelforce",
    "postnl",
    "colissimo",
    "chronopost",
    "laposte",
    "deutschepost",
    "canadapost",
    "purolator",
    "auspost",
    "australiapost",
    "amazon",
    "ontrac",
    "lasership",
    "correos",
    "bpost",
    "yodel",
    "poste",
    "japanpost",
    "yamato",
    "sagawa",
];

/// A carrier's family: its name in lower-case letters and digits, shortened to a known family
/// when it names one (`DHL Express` → `dhl`, `FedEx` → `fedex`, `royal-mail` → `royalmail`).
pub fn carrier_family(carrier: &str) -> String {
    let name: String = carrier
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    FAMILIES
        .iter()
        .find(|f| name.contains(*f))
        .map_or(name, |f| (*f).to_owned())
}

/// A change of a shipment's expected delivery date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRevision {
    /// The date the customer expected (none: they were given no date, so none is emailed).
    pub from: Option<Date>,
    pub to: Date,
    /// The revision this is (1 for the first), written only if the stored one is `revision - 1`.
    pub revision: u32,
}

/// What writing a [`DateRevision`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionOutcome {
    /// Written; `suppressed` when the email's recipient is suppressed (its record says so).
    Revised { suppressed: bool },
    /// The shipment's revision moved on (or the shipment is gone): nothing written.
    Stale,
}

/// A parcel's tracking number pointing to its shipment: how a tracking aggregator's update, which
/// knows the carrier and the number but not our shipment id, finds the shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingPointer {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    /// The carrier as the shipment names it, and its family (see
    /// [`carrier_family`]).
    pub carrier: String,
    pub carrier_family: String,
    /// The number as the shipment names it.
    pub tracking_number: String,
}

impl ShipmentRecord {
    /// The tracking pointers of every parcel of the shipment, keyed by normalised number.
    pub fn tracking_pointers(&self) -> Vec<(String, TrackingPointer)> {
        let sh = &self.shipment;
        sh.parcels()
            .into_iter()
            .filter_map(|p| {
                let number = normalise_tracking_number(&p.tracking_number);
                (!number.is_empty()).then(|| {
                    (
                        number,
                        TrackingPointer {
                            shipment_id: sh.id.clone(),
                            order_id: sh.order_id.clone(),
                            carrier: sh.carrier.clone(),
                            carrier_family: carrier_family(&sh.carrier),
                            tracking_number: p.tracking_number,
                        },
                    )
                })
            })
            .collect()
    }
}

/// An order's pointer to one of its shipments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentPointer {
    pub shipment_id: ShipmentId,
    #[serde(default)]
    pub delivered_at: Option<Timestamp>,
}

/// A due check on a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDue {
    pub shipment_id: ShipmentId,
    pub order_id: OrderId,
    pub check: ShipmentCheck,
    pub due_at: Timestamp,
}

/// What a shipment's due check looks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ShipmentCheck {
    /// The promised date passed: is the parcel running late?
    Late,
    /// The fallback window passed: was delivery never scanned?
    Fallback,
    /// A check this version does not know (written by a newer one).
    Unknown(String),
}

impl ShipmentCheck {
    pub fn as_str(&self) -> &str {
        match self {
            ShipmentCheck::Late => "late",
            ShipmentCheck::Fallback => "fallback",
            ShipmentCheck::Unknown(other) => other,
        }
    }
}

impl From<String> for ShipmentCheck {
    fn from(s: String) -> Self {
        match s.as_str() {
            "late" => ShipmentCheck::Late,
            "fallback" => ShipmentCheck::Fallback,
            _ => ShipmentCheck::Unknown(s),
        }
    }
}

impl From<ShipmentCheck> for String {
    fn from(c: ShipmentCheck) -> Self {
        c.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored; `suppressed` when the "shipped" email's recipient is suppressed (not to be sent).
    Created {
        suppressed: bool,
    },
    AlreadyExists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// The state advanced; `claimed` says whether this invocation holds the milestone email's
    /// claim, `suppressed` whether the claim was recorded as suppressed instead (nothing to send).
    Advanced { claimed: bool, suppressed: bool },
    /// Recorded in history; the state already reflects something newer.
    HistoryOnly,
    /// This checkpoint was seen before.
    Duplicate,
    /// No such shipment for this merchant.
    UnknownShipment,
    /// The webhook signature was used before.
    ReplayedSignature,
}

/// When a shipment promised for `promised` is late: the start of the next day in the merchant's
/// time zone `tz`.
pub fn late_after(promised: Date, tz: &str) -> Option<Timestamp> {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    promised
        .tomorrow()
        .ok()?
        .to_zoned(zone)
        .ok()
        .map(|z| z.timestamp())
}

/// What a merchant sends to create a shipment.
#[derive(Debug, Clone, Deserialize)]
pub struct ShipmentInput {
    pub id: String,
    pub carrier: String,
    pub tracking_number: String,
    #[serde(default)]
    pub tracking_url: Option<String>,
    /// The shipment's other parcels, when the carrier gave it several tracking numbers.
    #[serde(default)]
    pub additional_tracking: Vec<ParcelInput>,
    #[serde(default)]
    pub items: Vec<ShipmentItemInput>,
    /// The delivery date promised to the customer (`YYYY-MM-DD`, in the merchant's time zone).
    #[serde(default)]
    pub promised_date: Option<String>,
    #[serde(default)]
    pub shipped_at: Option<String>,
}

/// One more parcel of a shipment: its tracking number and, if the carrier has one, its link.
#[derive(Debug, Clone, Deserialize)]
pub struct ParcelInput {
    pub tracking_number: String,
    #[serde(default)]
    pub tracking_url: Option<String>,
}

/// How many parcels beyond the first one shipment may name.
pub const MAX_ADDITIONAL_PARCELS: usize = 20;

#[derive(Debug, Clone, Deserialize)]
pub struct ShipmentItemInput {
    pub sku: String,
    pub quantity: i64,
}

/// A validated shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ids::ShipmentId,
    pub order_id: OrderId,
    pub carrier: String,
    pub tracking_number: String,
    #[serde(default)]
    pub tracking_url: Option<String>,
    /// The other parcels' tracking numbers (left out when there are none, so a shipment's
    /// stored form is as it always was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_tracking: Vec<Parcel>,
    pub items: Vec<ShipmentItem>,
    #[serde(default)]
    pub promised_date: Option<Date>,
    pub shipped_at: Timestamp,
}

/// One more parcel of a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

impl Shipment {
    /// Every parcel's tracking number and link, the first parcel first.
    pub fn parcels(&self) -> Vec<Parcel> {
        std::iter::once(Parcel {
            tracking_number: self.tracking_number.clone(),
            tracking_url: self.tracking_url.clone(),
        })
        .chain(self.additional_tracking.iter().cloned())
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentItem {
    pub sku: String,
    pub quantity: i64,
    /// The item's name from the order, so tracking emails need not read the order.
    #[serde(default)]
    pub name: Option<String>,
}

impl ShipmentInput {
    /// Validates the shipment against its order: every item must be one the order has, in no
    /// greater quantity. Item names are copied from the order.
    pub fn validate_for(
        self,
        order: &super::Order,
        now: Timestamp,
    ) -> Result<Shipment, FieldError> {
        let mut shipment = self.validate(order.id.clone(), now)?;
        for (i, item) in shipment.items.iter_mut().enumerate() {
            let ordered = order
                .items
                .iter()
                .filter(|o| o.sku == item.sku)
                .map(|o| o.quantity)
                .sum::<i64>();
            if ordered == 0 {
                return Err(FieldError::new(
                    format!("items[{i}].sku"),
                    "unknown_item",
                    "the order has no item with this sku",
                ));
            }
            if item.quantity > ordered {
                return Err(FieldError::new(
                    format!("items[{i}].quantity"),
                    "out_of_range",
                    format!("the order has only {ordered} of this item"),
                ));
            }
            item.name = order
                .items
                .iter()
                .find(|o| o.sku == item.sku)
                .map(|o| o.name.clone());
        }
        Ok(shipment)
    }

    /// A digest of what the merchant sent, to tell a replay from a different shipment under the
    /// same id (a defaulted `shipped_at` is left out: it differs on every call).
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let items: Vec<(String, i64)> = self
            .items
            .iter()
            .map(|i| (i.sku.trim().to_owned(), i.quantity))
            .collect();
        let mut basis = serde_json::json!([
            self.id.trim(),
            self.carrier.trim(),
            self.tracking_number.trim(),
            self.tracking_url,
            items,
            self.promised_date,
            self.shipped_at
        ]);
        // Only when there are more parcels, so a one-parcel shipment's digest is as it was.
        if !self.additional_tracking.is_empty()
            && let Some(basis) = basis.as_array_mut()
        {
            basis.push(
                self.additional_tracking
                    .iter()
                    .map(|p| serde_json::json!([p.tracking_number.trim(), p.tracking_url]))
                    .collect(),
            );
        }
        hex::encode(Sha256::digest(basis.to_string().as_bytes()))
    }

    pub fn validate(self, order_id: OrderId, now: Timestamp) -> Result<Shipment, FieldError> {
        let id = ids::ShipmentId::parse("id", self.id.trim())?;
        let carrier = single_line("carrier", &self.carrier, 60)?;
        let tracking_number = single_line("tracking_number", &self.tracking_number, 100)?;
        let tracking_url = web_url("tracking_url", self.tracking_url.as_deref())?;
        if self.additional_tracking.len() > MAX_ADDITIONAL_PARCELS {
            return Err(FieldError::new(
                "additional_tracking",
                "too_many",
                format!("a shipment may name at most {MAX_ADDITIONAL_PARCELS} more parcels"),
            ));
        }
        let mut additional_tracking: Vec<Parcel> = Vec::new();
        for (i, p) in self.additional_tracking.iter().enumerate() {
            let field = format!("additional_tracking[{i}]");
            let parcel = Parcel {
                tracking_number: single_line(
                    &format!("{field}.tracking_number"),
                    &p.tracking_number,
                    100,
                )?,
                tracking_url: web_url(&format!("{field}.tracking_url"), p.tracking_url.as_deref())?,
            };
            // The same number twice is one parcel.
            if parcel.tracking_number != tracking_number
                && !additional_tracking
                    .iter()
                    .any(|q| q.tracking_number == parcel.tracking_number)
            {
                additional_tracking.push(parcel);
            }
        }
        if self.items.len() > super::order::MAX_ITEMS {
            return Err(FieldError::new(
                "items",
                "too_many",
                "a shipment may list at most 500 items",
            ));
        }
        let items = self
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let sku = single_line(&format!("items[{i}].sku"), &item.sku, 100)?;
                if !(1..=super::order::MAX_QUANTITY).contains(&item.quantity) {
                    return Err(FieldError::new(
                        format!("items[{i}].quantity"),
                        "out_of_range",
                        "quantity must be at least 1",
                    ));
                }
                Ok(ShipmentItem {
                    sku,
                    quantity: item.quantity,
                    name: None,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let promised_date = match optional_line("promised_date", self.promised_date.as_deref(), 10)?
        {
            Some(d) => Some(d.parse::<Date>().map_err(|_| {
                FieldError::new(
                    "promised_date",
                    "invalid_format",
                    "promised_date must be a date such as 2026-11-25",
                )
            })?),
            None => None,
        };
        let shipped_at = match optional_line("shipped_at", self.shipped_at.as_deref(), 40)? {
            Some(t) => t
                .parse::<Timestamp>()
                .map_err(|_| {
                    FieldError::new(
                        "shipped_at",
                        "invalid_format",
                        "shipped_at must be an RFC 3339 timestamp",
                    )
                })
                .and_then(|at| super::validation::plausible_time("shipped_at", at))?,
            None => now,
        };
        Ok(Shipment {
            id,
            order_id,
            carrier,
            tracking_number,
            tracking_url,
            additional_tracking,
            items,
            promised_date,
            shipped_at,
        })
    }
}

/// What a merchant or carrier sends for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckpointInput {
    #[serde(default)]
    pub id: Option<String>,
    pub status: String,
    pub occurred_at: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl CheckpointInput {
    pub fn validate(self) -> Result<Checkpoint, FieldError> {
        let status = TrackingStatus::parse("status", &self.status)?;
        let occurred_at: Timestamp = self.occurred_at.trim().parse().map_err(|_| {
            FieldError::new(
                "occurred_at",
                "invalid_format",
                "occurred_at must be an RFC 3339 timestamp",
            )
        })?;
        let occurred_at = super::validation::plausible_time("occurred_at", occurred_at)?;
        let location = optional_line("location", self.location.as_deref(), 200)?;
        let message = optional_line("message", self.message.as_deref(), 500)?;
        let id = match optional_line("id", self.id.as_deref(), 128)? {
            Some(id) => ids::ShipmentId::parse("id", &id)?.to_string(),
            None => {
                use sha2::{Digest, Sha256};
                let basis = format!(
                    "{}|{}|{}|{}",
                    status.as_str(),
                    occurred_at,
                    location.as_deref().unwrap_or(""),
                    message.as_deref().unwrap_or("")
                );
                format!("h-{}", hex::encode(&Sha256::digest(basis.as_bytes())[..12]))
            }
        };
        Ok(Checkpoint {
            id,
            status,
            occurred_at,
            location,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TrackingStatus::*;
    use proptest::prelude::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn fold(cps: &[(TrackingStatus, i64)]) -> ShipmentState {
        let mut st = ShipmentState::default();
        for (s, t) in cps {
            st.apply(*s, at(*t));
        }
        st
    }

    #[test]
    fn a_late_in_transit_after_delivery_changes_nothing() {
        let mut st = fold(&[
            (InfoReceived, 0),
            (InTransit, 10),
            (OutForDelivery, 20),
            (Delivered, 30),
        ]);
        assert!(!st.apply(InTransit, at(15)));
        assert!(
            !st.apply(InTransit, at(40)),
            "terminal: even a newer in_transit does not undo delivery"
        );
        assert_eq!(st.status(), Some(Delivered));
        assert_eq!(st.delivered_at(), Some(at(30)));
    }

    #[test]
    fn issues_show_until_newer_progress() {
        let mut st = fold(&[(InTransit, 0), (OutForDelivery, 10), (AttemptFailed, 20)]);
        assert_eq!(st.status(), Some(AttemptFailed));
        assert!(
            st.apply(OutForDelivery, at(30)),
            "a second delivery attempt is newer progress"
        );
        assert_eq!(st.status(), Some(OutForDelivery));
        assert!(st.reached_final_mile());
    }

    #[test]
    fn replays_change_nothing() {
        let mut st = fold(&[(InTransit, 0), (Exception, 5)]);
        let before = st;
        assert!(!st.apply(InTransit, at(0)));
        assert!(!st.apply(Exception, at(5)));
        assert_eq!(st, before);
    }

    #[test]
    fn validates_inputs() {
        let cp = CheckpointInput {
            id: None,
            status: "teleported".into(),
            occurred_at: "2026-11-20T10:00:00Z".into(),
            location: None,
            message: None,
        };
        assert_eq!(cp.validate().unwrap_err().field, "status");
        let cp = CheckpointInput {
            id: None,
            status: "delivered".into(),
            occurred_at: "soon".into(),
            location: None,
            message: None,
        };
        assert_eq!(cp.validate().unwrap_err().field, "occurred_at");
        let a = CheckpointInput {
            id: None,
            status: "delivered".into(),
            occurred_at: "2026-11-20T10:00:00Z".into(),
            location: Some("Berlin".into()),
            message: None,
        };
        assert_eq!(
            a.clone().validate().unwrap().id,
            a.validate().unwrap().id,
            "content-derived ids are stable"
        );
    }

    #[test]
    fn several_parcels_are_kept_once_each_and_a_one_parcel_digest_is_unchanged() {
        let input = |more: Vec<(&str, Option<&str>)>| ShipmentInput {
            id: "sh-1".into(),
            carrier: "DHL".into(),
            tracking_number: "A1".into(),
            tracking_url: None,
            additional_tracking: more
                .into_iter()
                .map(|(n, u)| ParcelInput {
                    tracking_number: n.into(),
                    tracking_url: u.map(str::to_owned),
                })
                .collect(),
            items: Vec::new(),
            promised_date: None,
            shipped_at: Some("2026-11-20T10:00:00Z".into()),
        };
        let order = OrderId::parse("id", "o-1").unwrap();
        let now: Timestamp = "2026-11-20T11:00:00Z".parse().unwrap();
        let one = input(Vec::new());
        // The digest a one-parcel shipment has always had (stored shipments replay as before).
        let before = {
            use sha2::{Digest, Sha256};
            let items: Vec<(String, i64)> = Vec::new();
            let basis = serde_json::json!([
                "sh-1",
                "DHL",
                "A1",
                None::<String>,
                items,
                None::<String>,
                Some("2026-11-20T10:00:00Z")
            ]);
            hex::encode(Sha256::digest(basis.to_string().as_bytes()))
        };
        assert_eq!(one.content_hash(), before);
        let two = input(vec![
            ("B2", Some("https://carrier.example/t/B2")),
            ("A1", None),
            ("B2", None),
        ]);
        assert_ne!(one.content_hash(), two.content_hash());
        let shipment = two.validate(order.clone(), now).unwrap();
        assert_eq!(
            shipment.additional_tracking,
            vec![Parcel {
                tracking_number: "B2".into(),
                tracking_url: Some("https://carrier.example/t/B2".into()),
            }],
            "the first parcel's number and a repeated number are one parcel each"
        );
        assert_eq!(
            shipment
                .parcels()
                .iter()
                .map(|p| p.tracking_number.as_str())
                .collect::<Vec<_>>(),
            ["A1", "B2"]
        );
        let stored = serde_json::to_value(one.validate(order.clone(), now).unwrap()).unwrap();
        assert!(
            stored.get("additional_tracking").is_none(),
            "a one-parcel shipment is stored as it always was"
        );
        let err = input(vec![("x y\nz", None)])
            .validate(order.clone(), now)
            .unwrap_err();
        assert_eq!(err.field, "additional_tracking[0].tracking_number");
        let err = input(vec![("B", Some("ftp://nope"))])
            .validate(order.clone(), now)
            .unwrap_err();
        assert_eq!(err.field, "additional_tracking[0].tracking_url");
        let many = (0..=MAX_ADDITIONAL_PARCELS)
            .map(|i| (Box::leak(format!("N{i}").into_boxed_str()) as &str, None))
            .collect();
        assert_eq!(
            input(many).validate(order, now).unwrap_err().field,
            "additional_tracking"
        );
    }

    fn arb_status() -> impl Strategy<Value = TrackingStatus> {
        prop::sample::select(TrackingStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_order_of_the_same_checkpoints_ends_in_the_same_state(
            cps in prop::collection::vec((arb_status(), 0i64..1000), 0..30),
            seed in any::<u64>(),
        ) {
            let mut shuffled = cps.clone();
            // Deterministic Fisher–Yates from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut twice = cps.clone();
            twice.extend(cps.iter().copied());
            prop_assert_eq!(fold(&cps), fold(&shuffled));
            prop_assert_eq!(fold(&cps), fold(&twice), "replaying everything changes nothing");
        }

        #[test]
        fn progress_rank_never_decreases(cps in prop::collection::vec((arb_status(), 0i64..1000), 1..30)) {
            let mut st = ShipmentState::default();
            let mut best = 0;
            for (s, t) in cps {
                st.apply(s, at(t));
                let rank = st.progress.map(|(p, _)| p.rank().unwrap_or(0)).unwrap_or(0);
                prop_assert!(rank >= best);
                best = rank;
            }
        }
    }
}
