//! Shippo `track_updated` webhooks: `{"event", "test", "data": <Track>}`. The track's
//! `tracking_history[]` (oldest first) and its current `tracking_status` become checkpoints, its
//! `eta` the expected date. Other events are acknowledged and ignored.
//!
//! | Shippo `status` | Aftercare status |
//! |---|---|
//! | `PRE_TRANSIT` | `info_received` |
//! | `TRANSIT` | `in_transit` |
//! | `DELIVERED` | `delivered` |
//! | `RETURNED` | `returned_to_sender` |
//! | `FAILURE` | `exception` |
//! | `UNKNOWN` | none |
//!
//! A status's `substatus` (`code`, `text`) is kept as the checkpoint's message when it has no
//! `status_details`; it does not change the status (Shippo's substatus codes are not part of its
//! published status contract). Shippo's payload has no event id: a delivery is identified by the
//! tracking number and the current status's `object_id`.

use super::tracking::{TrackingUpdate, calendar_date, checkpoint, instant, location, text};
use crate::domain::FieldError;
use crate::domain::shipment::TrackingStatus;
use serde_json::Value;

/// The event that carries a track.
pub const TRACK_EVENT: &str = "track_updated";

/// Our status of a Shippo tracking `status`.
pub fn status(status: &str) -> Option<TrackingStatus> {
    Some(match status {
        "PRE_TRANSIT" => TrackingStatus::InfoReceived,
        "TRANSIT" => TrackingStatus::InTransit,
        "DELIVERED" => TrackingStatus::Delivered,
        "RETURNED" => TrackingStatus::ReturnedToSender,
        "FAILURE" => TrackingStatus::Exception,
        _ => return None,
    })
}

/// Maps a webhook body. `Ok(None)`: an event that carries no track (acknowledged, ignored).
pub fn update(
    body: &Value,
    zone: &jiff::tz::TimeZone,
) -> Result<Option<TrackingUpdate>, FieldError> {
    if text(body, "event") != Some(TRACK_EVENT) {
        return Ok(None);
    }
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| FieldError::required("data"))?;
    let tracking_number =
        super::tracking::tracking_number(data, "tracking_number", "data.tracking_number")?;
    let history = data
        .get("tracking_history")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let current = data.get("tracking_status").filter(|s| s.is_object());
    let mut checkpoints = Vec::new();
    let mut unmapped = Vec::new();
    let entries = history
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("data.tracking_history[{i}]"), e))
        .chain(current.map(|c| ("data.tracking_status".to_owned(), c)));
    for (path, entry) in entries {
        let raw = text(entry, "status").unwrap_or("UNKNOWN");
        let Some(mapped) = status(raw) else {
            unmapped.push(raw.to_owned());
            continue;
        };
        let at = text(entry, "status_date")
            .and_then(|t| instant(t, zone))
            .ok_or_else(|| {
                FieldError::new(
                    format!("{path}.status_date"),
                    "invalid_format",
                    "status_date must be an ISO 8601 time",
                )
            })?;
        let place = entry.get("location").unwrap_or(&Value::Null);
        let substatus = entry.get("substatus").unwrap_or(&Value::Null);
        let cp = checkpoint(
            mapped,
            at,
            location(&[
                text(place, "city"),
                text(place, "state"),
                text(place, "zip"),
                text(place, "country"),
            ]),
            text(entry, "status_details").or_else(|| text(substatus, "text")),
        );
        // The current status repeats the newest history entry.
        if !checkpoints.contains(&cp) {
            checkpoints.push(cp);
        }
    }
    let event_id = current.and_then(|c| text(c, "object_id")).map(|id| {
        format!(
            "{}-{id}",
            super::tracking::normalise_tracking_number(&tracking_number)
        )
    });
    Ok(Some(TrackingUpdate {
        event_id,
        tracking_number,
        carrier: text(data, "carrier").map(str::to_owned),
        checkpoints,
        expected_date: text(data, "eta").and_then(calendar_date),
        unmapped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        let delivered = json!({
            "object_id": "8c1d", "status": "DELIVERED", "substatus": null,
            "status_date": "2026-11-22T18:21:00Z",
            "status_details": "Your shipment has been delivered at the destination mailbox.",
            "location": {"city": "Brooklyn", "state": "NY", "zip": "11201", "country": "US"}
        });
        json!({
            "event": "track_updated", "test": true,
            "data": {
                "carrier": "usps", "tracking_number": "9205590164917312751089",
                "eta": "2026-11-23T00:00:00Z", "original_eta": "2026-11-23T00:00:00Z",
                "tracking_history": [
                    {"object_id": "2f3a", "status": "PRE_TRANSIT",
                     "substatus": {"code": "information_received", "text": "Information about the package received.", "action_required": false},
                     "status_date": "2026-11-20T15:02:00Z", "status_details": null,
                     "location": {"city": "New York", "state": "NY", "zip": "10001", "country": "US"}},
                    {"object_id": "77aa", "status": "UNKNOWN", "status_date": "2026-11-21T15:02:00Z"},
                    delivered.clone()
                ],
                "tracking_status": delivered
            }
        })
    }

    #[test]
    fn history_and_current_status_become_checkpoints_once() {
        let u = update(&body(), &jiff::tz::TimeZone::UTC).unwrap().unwrap();
        let statuses: Vec<_> = u.checkpoints.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(statuses, ["info_received", "delivered"]);
        assert_eq!(
            u.checkpoints[0].message.as_deref(),
            Some("Information about the package received.")
        );
        assert_eq!(u.unmapped, ["UNKNOWN"]);
        assert_eq!(u.event_id.as_deref(), Some("9205590164917312751089-8c1d"));
        assert_eq!(u.expected_date, Some(jiff::civil::date(2026, 11, 23)));
        assert_eq!(u.carrier.as_deref(), Some("usps"));
    }

    #[test]
    fn every_status_of_the_vocabulary_has_its_mapping() {
        let table = [
            ("PRE_TRANSIT", Some("info_received")),
            ("TRANSIT", Some("in_transit")),
            ("DELIVERED", Some("delivered")),
            ("RETURNED", Some("returned_to_sender")),
            ("FAILURE", Some("exception")),
            ("UNKNOWN", None),
        ];
        for (theirs, ours) in table {
            assert_eq!(status(theirs).map(|s| s.as_str()), ours, "{theirs}");
        }
    }

    #[test]
    fn other_events_are_ignored_and_broken_tracks_refused() {
        let mut b = body();
        b["event"] = json!("transaction_created");
        assert_eq!(update(&b, &jiff::tz::TimeZone::UTC).unwrap(), None);
        let mut b = body();
        b["data"]["tracking_history"][0]["status_date"] = json!("later");
        assert_eq!(
            update(&b, &jiff::tz::TimeZone::UTC).unwrap_err().field,
            "data.tracking_history[0].status_date"
        );
    }
}
