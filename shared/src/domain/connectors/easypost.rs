//! EasyPost tracker webhooks (`tracker.created`, `tracker.updated`): an Event whose `result` is the
//! Tracker. Its `tracking_details[]` become checkpoints, its `est_delivery_date` the expected date.
//!
//! | EasyPost `status` | Aftercare status |
//! |---|---|
//! | `pre_transit` | `info_received` |
//! | `in_transit` | `in_transit` |
//! | `out_for_delivery` | `out_for_delivery` |
//! | `available_for_pickup` | `available_for_pickup` |
//! | `delivered` | `delivered` |
//! | `return_to_sender` | `returned_to_sender` |
//! | `failure`, `cancelled`, `canceled` | `exception` |
//! | `error`, `unknown` | none (EasyPost could not track it; nothing is recorded) |
//!
//! A detail whose `status_detail` is a failed attempt's (`delivery_exception` while out for
//! delivery) is still the detail's `status`: EasyPost has no status of its own for a missed
//! delivery, and its message says what happened.

use super::tracking::{TrackingUpdate, calendar_date, checkpoint, instant, location, text};
use crate::domain::FieldError;
use crate::domain::shipment::TrackingStatus;
use serde_json::Value;

/// The Event `description`s that carry a Tracker.
pub const TRACKER_EVENTS: &[&str] = &["tracker.created", "tracker.updated"];

/// Our status of an EasyPost tracker or tracking-detail `status`.
pub fn status(status: &str) -> Option<TrackingStatus> {
    Some(match status {
        "pre_transit" => TrackingStatus::InfoReceived,
        "in_transit" => TrackingStatus::InTransit,
        "out_for_delivery" => TrackingStatus::OutForDelivery,
        "available_for_pickup" => TrackingStatus::AvailableForPickup,
        "delivered" => TrackingStatus::Delivered,
        "return_to_sender" => TrackingStatus::ReturnedToSender,
        "failure" | "cancelled" | "canceled" => TrackingStatus::Exception,
        _ => return None,
    })
}

/// Maps an Event. `Ok(None)`: an event that is not about a tracker (acknowledged, ignored).
pub fn update(
    event: &Value,
    zone: &jiff::tz::TimeZone,
) -> Result<Option<TrackingUpdate>, FieldError> {
    let description = text(event, "description").unwrap_or_default();
    if !TRACKER_EVENTS.contains(&description) {
        return Ok(None);
    }
    let event_id = text(event, "id").ok_or_else(|| FieldError::required("id"))?;
    let tracker = event
        .get("result")
        .filter(|r| r.is_object())
        .ok_or_else(|| FieldError::required("result"))?;
    let tracking_number =
        super::tracking::tracking_number(tracker, "tracking_code", "result.tracking_code")?;
    let mut checkpoints = Vec::new();
    let mut unmapped = Vec::new();
    let details = tracker
        .get("tracking_details")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, detail) in details.iter().enumerate() {
        let raw = text(detail, "status").unwrap_or("unknown");
        let Some(mapped) = status(raw) else {
            unmapped.push(raw.to_owned());
            continue;
        };
        let at = text(detail, "datetime")
            .and_then(|t| instant(t, zone))
            .ok_or_else(|| {
                FieldError::new(
                    format!("result.tracking_details[{i}].datetime"),
                    "invalid_format",
                    "datetime must be an ISO 8601 time",
                )
            })?;
        let place = detail.get("tracking_location").unwrap_or(&Value::Null);
        checkpoints.push(checkpoint(
            mapped,
            at,
            location(&[
                text(place, "city"),
                text(place, "state"),
                text(place, "zip"),
                text(place, "country"),
            ]),
            text(detail, "message").or_else(|| text(detail, "description")),
        ));
    }
    // A tracker whose status moved on without a detail for it yet (EasyPost sends the summary
    // first on some carriers): the tracker's own status at its `updated_at`.
    super::tracking::add_current(
        &mut checkpoints,
        text(tracker, "status").and_then(status),
        text(tracker, "updated_at"),
        text(tracker, "status_detail"),
        zone,
    );
    Ok(Some(TrackingUpdate {
        event_id: Some(event_id.to_owned()),
        tracking_number,
        carrier: text(tracker, "carrier").map(str::to_owned),
        checkpoints,
        expected_date: text(tracker, "est_delivery_date").and_then(calendar_date),
        unmapped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "description": "tracker.updated", "id": "evt_1", "object": "Event", "mode": "test",
            "previous_attributes": {"status": "in_transit"},
            "result": {
                "id": "trk_1", "object": "Tracker", "tracking_code": "EZ4000000004",
                "carrier": "FedEx", "status": "out_for_delivery", "status_detail": "out_for_delivery",
                "updated_at": "2026-11-22T08:00:00Z", "est_delivery_date": "2026-11-22T00:00:00Z",
                "tracking_details": [
                    {"object": "TrackingDetail", "message": "Label created", "status": "pre_transit",
                     "status_detail": "label_created", "datetime": "2026-11-20T15:00:00Z",
                     "tracking_location": {"object": "TrackingLocation", "city": null, "state": null, "country": "US", "zip": "32837"}},
                    {"object": "TrackingDetail", "message": "Picked up", "status": "in_transit",
                     "status_detail": "arrived_at_facility", "datetime": "2026-11-20T19:27:00Z",
                     "tracking_location": {"object": "TrackingLocation", "city": "ORLANDO", "state": "FL", "country": "US", "zip": "32809"}},
                    {"object": "TrackingDetail", "message": "?", "status": "unknown",
                     "datetime": "2026-11-21T10:00:00Z", "tracking_location": null}
                ]
            }
        })
    }

    #[test]
    fn details_become_checkpoints_and_the_summary_fills_the_latest() {
        let u = update(&event(), &jiff::tz::TimeZone::UTC).unwrap().unwrap();
        assert_eq!(u.event_id.as_deref(), Some("evt_1"));
        assert_eq!(u.tracking_number, "EZ4000000004");
        assert_eq!(u.carrier.as_deref(), Some("FedEx"));
        let statuses: Vec<_> = u.checkpoints.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(
            statuses,
            ["info_received", "in_transit", "out_for_delivery"]
        );
        assert_eq!(
            u.checkpoints[1].location.as_deref(),
            Some("ORLANDO, FL, 32809, US")
        );
        assert_eq!(u.unmapped, ["unknown"]);
        assert_eq!(u.expected_date, Some(jiff::civil::date(2026, 11, 22)));
    }

    #[test]
    fn every_status_of_the_vocabulary_has_its_mapping() {
        let table = [
            ("pre_transit", Some("info_received")),
            ("in_transit", Some("in_transit")),
            ("out_for_delivery", Some("out_for_delivery")),
            ("available_for_pickup", Some("available_for_pickup")),
            ("delivered", Some("delivered")),
            ("return_to_sender", Some("returned_to_sender")),
            ("failure", Some("exception")),
            ("cancelled", Some("exception")),
            ("canceled", Some("exception")),
            ("error", None),
            ("unknown", None),
        ];
        for (theirs, ours) in table {
            assert_eq!(status(theirs).map(|s| s.as_str()), ours, "{theirs}");
        }
    }

    #[test]
    fn other_events_are_ignored_and_broken_trackers_refused() {
        let mut e = event();
        e["description"] = json!("batch.updated");
        assert_eq!(update(&e, &jiff::tz::TimeZone::UTC).unwrap(), None);
        let mut e = event();
        e["result"]["tracking_code"] = json!("");
        assert_eq!(
            update(&e, &jiff::tz::TimeZone::UTC).unwrap_err().field,
            "result.tracking_code"
        );
        let mut e = event();
        e["result"]["tracking_details"][1]["datetime"] = json!("yesterday");
        assert_eq!(
            update(&e, &jiff::tz::TimeZone::UTC).unwrap_err().field,
            "result.tracking_details[1].datetime"
        );
    }
}
