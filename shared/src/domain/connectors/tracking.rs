//! What every tracking aggregator's webhook comes down to: a carrier's tracking number, the
//! checkpoints the carrier reported (in our statuses), and the expected delivery date.
//!
//! The providers' own vocabularies map onto [`TrackingStatus`] in their modules
//! ([`super::easypost`], [`super::aftership`], [`super::shippo`]); a provider status that says
//! nothing about where the parcel is (`unknown`, `Pending`, `UNKNOWN`, …) maps to none and records
//! nothing.

use crate::domain::FieldError;
use crate::domain::shipment::{CheckpointInput, TrackingStatus};
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

/// One provider delivery, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingUpdate {
    /// The provider's id of this delivery, to dedupe on (EasyPost `id`, AfterShip `event_id`;
    /// Shippo sends none and the caller derives one).
    pub event_id: Option<String>,
    /// The tracking number as the provider sent it.
    pub tracking_number: String,
    /// The carrier as the provider names it (`FedEx`, `usps`, `dhl-express`).
    pub carrier: Option<String>,
    /// The carrier's checkpoints, oldest first, each in our statuses.
    pub checkpoints: Vec<CheckpointInput>,
    /// The provider's current expected delivery date (a calendar date), if it gives one.
    pub expected_date: Option<Date>,
    /// Provider statuses that mapped to nothing (for the log).
    pub unmapped: Vec<String>,
}

pub use crate::domain::shipment::{carrier_family, normalise_tracking_number};

/// An RFC 3339 time with any offset; a time without one (AfterShip's `checkpoint_time` is in the
/// checkpoint's local time) is read in `zone`, the merchant's, the best guess at the carrier's.
pub fn instant(text: &str, zone: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    civil.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// A calendar date from `YYYY-MM-DD` or a time (its date part as written: providers send
/// expected dates as midnight UTC or in the recipient's zone, and the date is what they mean).
pub fn calendar_date(text: &str) -> Option<Date> {
    let text = text.trim();
    text.get(..10).and_then(|d| d.parse::<Date>().ok())
}

/// A location from its parts, as one line (`Brooklyn, NY, 11201, US`).
pub fn location(parts: &[Option<&str>]) -> Option<String> {
    let line = parts
        .iter()
        .flatten()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    (!line.is_empty()).then(|| line.chars().take(200).collect())
}

/// A checkpoint in our input form.
pub fn checkpoint(
    status: TrackingStatus,
    at: Timestamp,
    location: Option<String>,
    message: Option<&str>,
) -> CheckpointInput {
    CheckpointInput {
        id: None,
        status: status.as_str().to_owned(),
        occurred_at: at.to_string(),
        location,
        message: message
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| m.chars().take(500).collect()),
    }
}

/// Adds the tracking's own current status (at `updated_at`, an RFC 3339 time) when none of the
/// update's checkpoints says it yet: a provider may move its summary before the carrier's detail
/// for it arrives.
pub(crate) fn add_current(
    checkpoints: &mut Vec<CheckpointInput>,
    status: Option<TrackingStatus>,
    updated_at: Option<&str>,
    message: Option<&str>,
    zone: &jiff::tz::TimeZone,
) {
    if let Some(status) = status
        && !checkpoints.iter().any(|c| c.status == status.as_str())
        && let Some(at) = updated_at.and_then(|t| instant(t, zone))
    {
        checkpoints.push(checkpoint(status, at, None, message));
    }
}

/// The string at `key` of `obj`, trimmed, if not empty.
pub(crate) fn text<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The tracking number at `key` of `obj`, or a refusal naming `field`.
pub(crate) fn tracking_number(obj: &Value, key: &str, field: &str) -> Result<String, FieldError> {
    let number = text(obj, key).ok_or_else(|| FieldError::required(field))?;
    if number.len() > 100 || normalise_tracking_number(number).is_empty() {
        return Err(FieldError::new(
            field,
            "invalid_format",
            format!("{field} is not a tracking number"),
        ));
    }
    Ok(number.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_and_carriers_compare_across_systems() {
        assert_eq!(
            normalise_tracking_number(" 1Z 999 aa1-01 2345 6784 "),
            "1Z999AA10123456784"
        );
        for (a, b) in [
            ("DHL Express", "dhl"),
            ("DHLExpress", "dhl_express"),
            ("FedEx", "fedex"),
            ("Royal Mail", "royal-mail"),
            ("USPS", "usps"),
        ] {
            assert_eq!(carrier_family(a), carrier_family(b), "{a} / {b}");
        }
        assert_ne!(carrier_family("UPS"), carrier_family("USPS"));
        assert_eq!(carrier_family("Acme Couriers"), "acmecouriers");
    }

    #[test]
    fn times_without_an_offset_are_local_to_the_given_zone() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            instant("2026-11-20T10:00:00", &berlin).unwrap().to_string(),
            "2026-11-20T09:00:00Z"
        );
        assert_eq!(
            instant("2026-11-20T10:00:00-05:00", &berlin)
                .unwrap()
                .to_string(),
            "2026-11-20T15:00:00Z"
        );
        assert_eq!(instant("soon", &berlin), None);
        assert_eq!(
            calendar_date("2026-11-24T00:00:00Z"),
            Some(jiff::civil::date(2026, 11, 24))
        );
        assert_eq!(calendar_date("24.11.2026"), None);
    }
}
