//! AfterShip tracking webhooks: `{"event", "event_id", "is_tracking_first_tag", "msg": <Tracking>,
//! "ts"}`. `tracking_update` and `edd_revise` carry the tracking; its `checkpoints[]` become
//! checkpoints, its expected dates the expected date. `tracking_pending_time` is acknowledged and
//! ignored.
//!
//! | AfterShip `tag` (`subtag`) | Aftercare status |
//! |---|---|
//! | `InfoReceived` | `info_received` |
//! | `InTransit` | `in_transit` |
//! | `OutForDelivery` | `out_for_delivery` |
//! | `AttemptFail` | `attempt_failed` |
//! | `AvailableForPickup` | `available_for_pickup` |
//! | `Delivered` | `delivered` |
//! | `Exception` (`Exception_010` returning, `Exception_011` returned to sender) | `returned_to_sender` |
//! | `Exception` (any other subtag) | `exception` |
//! | `Pending`, `Expired` | none (no carrier information yet, or none for 30 days) |
//!
//! `checkpoint_time` is in the checkpoint's local time, with or without an offset; one without is
//! read in the merchant's time zone. Field names differ by webhook version (`country_iso3` up to
//! 2024-10, `country_region` from 2025-01; `expected_delivery` up to 2024-07,
//! `courier_estimated_delivery_date` from 2024-10): both are read.

use super::tracking::{TrackingUpdate, calendar_date, checkpoint, instant, location, text};
use crate::domain::FieldError;
use crate::domain::shipment::TrackingStatus;
use serde_json::Value;

/// The events that carry a tracking.
pub const TRACKING_EVENTS: &[&str] = &["tracking_update", "edd_revise"];

/// Our status of an AfterShip `tag` with its `subtag`.
pub fn status(tag: &str, subtag: Option<&str>) -> Option<TrackingStatus> {
    Some(match tag {
        "InfoReceived" => TrackingStatus::InfoReceived,
        "InTransit" => TrackingStatus::InTransit,
        "OutForDelivery" => TrackingStatus::OutForDelivery,
        "AttemptFail" => TrackingStatus::AttemptFailed,
        "AvailableForPickup" => TrackingStatus::AvailableForPickup,
        "Delivered" => TrackingStatus::Delivered,
        "Exception" => match subtag {
            Some("Exception_010" | "Exception_011") => TrackingStatus::ReturnedToSender,
            _ => TrackingStatus::Exception,
        },
        _ => return None,
    })
}

/// The expected delivery date, by AfterShip's order of precision: the latest estimate, the
/// carrier's, AfterShip's own, the merchant's custom one.
fn expected(msg: &Value) -> Option<jiff::civil::Date> {
    let at = |path: &[&str]| -> Option<jiff::civil::Date> {
        let mut v = msg;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().and_then(calendar_date)
    };
    at(&["latest_estimated_delivery", "datetime"])
        .or_else(|| at(&["courier_estimated_delivery_date", "estimated_delivery_date"]))
        .or_else(|| at(&["expected_delivery"]))
        .or_else(|| {
            at(&[
                "aftership_estimated_delivery_date",
                "estimated_delivery_date",
            ])
        })
        .or_else(|| at(&["custom_estimated_delivery_date", "datetime"]))
}

/// Maps a webhook body. `Ok(None)`: an event that carries no tracking (acknowledged, ignored).
pub fn update(
    body: &Value,
    zone: &jiff::tz::TimeZone,
) -> Result<Option<TrackingUpdate>, FieldError> {
    let event = text(body, "event").unwrap_or_default();
    if !TRACKING_EVENTS.contains(&event) {
        return Ok(None);
    }
    let event_id = text(body, "event_id").ok_or_else(|| FieldError::required("event_id"))?;
    let msg = body
        .get("msg")
        .filter(|m| m.is_object())
        .ok_or_else(|| FieldError::required("msg"))?;
    let tracking_number =
        super::tracking::tracking_number(msg, "tracking_number", "msg.tracking_number")?;
    let mut checkpoints = Vec::new();
    let mut unmapped = Vec::new();
    let list = msg
        .get("checkpoints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, cp) in list.iter().enumerate() {
        let tag = text(cp, "tag").unwrap_or("Pending");
        let Some(mapped) = status(tag, text(cp, "subtag")) else {
            unmapped.push(tag.to_owned());
            continue;
        };
        let at = text(cp, "checkpoint_time")
            .and_then(|t| instant(t, zone))
            .ok_or_else(|| {
                FieldError::new(
                    format!("msg.checkpoints[{i}].checkpoint_time"),
                    "invalid_format",
                    "checkpoint_time must be an ISO 8601 time",
                )
            })?;
        let place = text(cp, "location").map(str::to_owned).or_else(|| {
            location(&[
                text(cp, "city"),
                text(cp, "state"),
                text(cp, "zip"),
                text(cp, "country_region").or_else(|| text(cp, "country_iso3")),
            ])
        });
        checkpoints.push(checkpoint(
            mapped,
            at,
            place.map(|p| p.chars().take(200).collect()),
            text(cp, "message").or_else(|| text(cp, "subtag_message")),
        ));
    }
    // The tracking's own tag when no checkpoint says it yet.
    super::tracking::add_current(
        &mut checkpoints,
        text(msg, "tag").and_then(|t| status(t, text(msg, "subtag"))),
        text(msg, "updated_at"),
        text(msg, "subtag_message"),
        zone,
    );
    Ok(Some(TrackingUpdate {
        event_id: Some(event_id.to_owned()),
        tracking_number,
        carrier: text(msg, "slug").map(str::to_owned),
        checkpoints,
        expected_date: expected(msg),
        unmapped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "event": "tracking_update", "event_id": "7a3c1f0e-5b2d-4c8a-9e61-0f4b2d9c1a55",
            "is_tracking_first_tag": true, "ts": 1_795_000_000,
            "msg": {
                "tracking_number": "9405511202575421535949", "slug": "usps", "tag": "OutForDelivery",
                "subtag": "OutForDelivery_001", "updated_at": "2026-11-22T07:00:00Z",
                "latest_estimated_delivery": {"type": "specific", "source": "Carrier EDD", "datetime": "2026-11-22"},
                "courier_estimated_delivery_date": {"estimated_delivery_date": "2026-11-23"},
                "checkpoints": [
                    {"checkpoint_time": "2026-11-20T10:02:00", "tag": "InTransit", "subtag": "InTransit_002",
                     "message": "Acceptance scan", "city": "NEW YORK", "state": "NY", "zip": "10001", "country_region": "USA"},
                    {"checkpoint_time": "2026-11-21T09:00:00-05:00", "tag": "Pending", "message": "?"}
                ]
            }
        })
    }

    #[test]
    fn checkpoints_local_times_and_the_latest_estimate() {
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let u = update(&body(), &ny).unwrap().unwrap();
        assert_eq!(
            u.event_id.as_deref(),
            Some("7a3c1f0e-5b2d-4c8a-9e61-0f4b2d9c1a55")
        );
        assert_eq!(u.carrier.as_deref(), Some("usps"));
        let got: Vec<_> = u
            .checkpoints
            .iter()
            .map(|c| (c.status.as_str(), c.occurred_at.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("in_transit", "2026-11-20T15:02:00Z"),
                ("out_for_delivery", "2026-11-22T07:00:00Z")
            ]
        );
        assert_eq!(
            u.checkpoints[0].location.as_deref(),
            Some("NEW YORK, NY, 10001, USA")
        );
        assert_eq!(u.unmapped, ["Pending"]);
        assert_eq!(u.expected_date, Some(jiff::civil::date(2026, 11, 22)));
        // Older webhook versions: `expected_delivery`.
        let mut old = body();
        old["msg"]
            .as_object_mut()
            .unwrap()
            .remove("latest_estimated_delivery");
        old["msg"]
            .as_object_mut()
            .unwrap()
            .remove("courier_estimated_delivery_date");
        old["msg"]["expected_delivery"] = json!("2026-11-25T12:00:00");
        assert_eq!(
            update(&old, &ny).unwrap().unwrap().expected_date,
            Some(jiff::civil::date(2026, 11, 25))
        );
    }

    #[test]
    fn every_tag_of_the_vocabulary_has_its_mapping() {
        let table = [
            ("Pending", None, None),
            ("InfoReceived", None, Some("info_received")),
            ("InTransit", Some("InTransit_001"), Some("in_transit")),
            ("OutForDelivery", None, Some("out_for_delivery")),
            (
                "AttemptFail",
                Some("AttemptFail_001"),
                Some("attempt_failed"),
            ),
            ("Delivered", Some("Delivered_001"), Some("delivered")),
            ("AvailableForPickup", None, Some("available_for_pickup")),
            ("Exception", Some("Exception_001"), Some("exception")),
            (
                "Exception",
                Some("Exception_010"),
                Some("returned_to_sender"),
            ),
            (
                "Exception",
                Some("Exception_011"),
                Some("returned_to_sender"),
            ),
            ("Expired", Some("Expired_001"), None),
        ];
        for (tag, subtag, ours) in table {
            assert_eq!(status(tag, subtag).map(|s| s.as_str()), ours, "{tag}");
        }
    }

    #[test]
    fn pending_time_events_are_ignored_and_bad_checkpoints_refused() {
        let mut b = body();
        b["event"] = json!("tracking_pending_time");
        assert_eq!(update(&b, &jiff::tz::TimeZone::UTC).unwrap(), None);
        let mut b = body();
        b["msg"]["checkpoints"][0]["checkpoint_time"] = json!("noon");
        assert_eq!(
            update(&b, &jiff::tz::TimeZone::UTC).unwrap_err().field,
            "msg.checkpoints[0].checkpoint_time"
        );
        let mut b = body();
        b.as_object_mut().unwrap().remove("event_id");
        assert_eq!(
            update(&b, &jiff::tz::TimeZone::UTC).unwrap_err().field,
            "event_id"
        );
    }
}
