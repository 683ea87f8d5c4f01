//! SES email events against the send records they belong to, and the suppressions they cause.
//!
//! * An event is recorded on its send record once: the update is conditioned on the record
//!   holding the event's SES message id (an event can never land on another email's record) and
//!   on the event's id not being there yet (EventBridge redelivers). Events may arrive in any
//!   order; each keeps its own timestamp, and the message's state is their highest rank. The
//!   list keeps the first [`MAX_EVENTS_PER_SEND`]; later events still count (state, suppression).
//! * An event for a send whose outcome was never recorded (SES accepted it but the answer was lost,
//!   or recording it failed: the record is still `in_progress`, or parked `ambiguous`, without a
//!   message id) proves SES took the email: the record adopts the event's message id and becomes
//!   `sent` (once, addressed to one of the event's recipients), then records the event as usual.
//! * A soft bounce extends the address's streak; a delivery that happened after the streak's last
//!   bounce ends it (a delivery reported late does not). A hard bounce, a complaint, or a soft
//!   bounce after [`crate::domain::email_event::SOFT_BOUNCE_LIMIT`] in a row suppress the address for the merchant at once.

use super::claims::SendStatus;
use super::{Item, Store, StoreError, classify, keys, n, s, update_held};
use crate::domain::email_event::{Applied, EmailEvent, EmailEventKind, metric_of, suppression};
use crate::domain::{EmailAddress, MerchantId};
use crate::ports::email_events::EmailEventLog;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use jiff::Timestamp;
use std::collections::HashMap;

/// Most events kept on one send record (opens and clicks can repeat without end).
pub const MAX_EVENTS_PER_SEND: usize = 100;

fn event_value(event_id: &str, event: &EmailEvent) -> AttributeValue {
    let mut m = HashMap::from([
        ("id".to_owned(), s(event_id)),
        ("type".to_owned(), s(event.kind.as_str())),
        ("at".to_owned(), s(event.at.to_string())),
        ("rank".to_owned(), n(event.kind.rank())),
    ]);
    let detail = match &event.kind {
        EmailEventKind::Bounce { sub_type, .. } => Some(sub_type.clone()),
        EmailEventKind::Complaint { feedback_type } => feedback_type.clone(),
        EmailEventKind::Reject { reason } => Some(reason.clone()),
        EmailEventKind::Click { link } => Some(link.clone()),
        EmailEventKind::DeliveryDelay { delay_type } => Some(delay_type.clone()),
        _ => None,
    };
    if let Some(d) = detail {
        m.insert("detail".into(), s(d));
    }
    AttributeValue::M(m)
}

impl EmailEventLog for Store {
    async fn apply_email_event(
        &self,
        m: &MerchantId,
        send_ref: &str,
        event_id: &str,
        event: &EmailEvent,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        // Only a customer's email is followed; a merchant alert's events are not.
        let Some(key) = keys::send_ref(m, send_ref).filter(|_| send_ref.starts_with("SEND#"))
        else {
            return Ok(Applied::Unmatched);
        };
        let mut before = self.record_event(&key, event_id, event, true).await?;
        if before.is_none() {
            let Some(item) = self.get("GetItem send", &key).await? else {
                return Ok(Applied::Unmatched);
            };
            let held = item.get("message_id").and_then(|v| v.as_s().ok());
            if held.is_none() {
                let adopted = self.adopt_message(&key, event, now).await?;
                if adopted {
                    tracing::warn!(send = %key.sk, message_id = %event.message_id,
                        "reconciled: SES reports an email whose send was never recorded");
                }
                // Adopted now, or by a concurrent event of the same message: record as usual.
                before = self.record_event(&key, event_id, event, true).await?;
                return match before {
                    Some(_) => self.apply_recorded(m, &key, event, before, now).await,
                    None if adopted => Ok(Applied::Duplicate),
                    None => Ok(Applied::Unmatched),
                };
            }
            if held != Some(&event.message_id) {
                return Ok(Applied::Unmatched);
            }
            let seen = item
                .get("event_ids")
                .and_then(|v| v.as_ss().ok())
                .is_some_and(|ids| ids.iter().any(|i| i == event_id));
            // Not seen: the record's event list is full. The event still counts (its id, the
            // state, a suppression); only its entry in the list is left out.
            if seen {
                return Ok(Applied::Duplicate);
            }
            before = self.record_event(&key, event_id, event, false).await?;
            if before.is_none() {
                return Ok(Applied::Duplicate);
            }
        }
        self.apply_recorded(m, &key, event, before, now).await
    }
}

impl Store {
    /// What follows recording an event on its send record (`before`: the record as it was): the
    /// analytics count, the message's state, bounce streaks and suppressions.
    async fn apply_recorded(
        &self,
        m: &MerchantId,
        key: &keys::Key,
        event: &EmailEvent,
        before: Option<Item>,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        // Analytics: the first event of each metric on a message counts it, on the event's day.
        if let (Some(before), Some(metric)) = (&before, metric_of(event.kind.as_str())) {
            let counted_before = before
                .get("counted")
                .and_then(|v| v.as_ss().ok())
                .is_some_and(|c| c.iter().any(|x| x == metric));
            let kind = before.get("kind").and_then(|v| v.as_s().ok());
            if let (false, Some(kind)) = (counted_before, kind) {
                let day = event.at.to_zoned(jiff::tz::TimeZone::UTC).date();
                self.count_email_metric(m, day, kind, metric, &event.message_id, now)
                    .await?;
            }
        }
        // The state moves up only (events arrive in any order).
        let raised = self
            .update_item(key)
            .update_expression("SET event_rank = :r, delivery_state = :t")
            .condition_expression("event_rank < :r")
            .expression_attribute_values(":r", n(event.kind.rank()))
            .expression_attribute_values(":t", s(event.kind.as_str()));
        update_held("UpdateItem email state", raised).await?;

        let mut suppressed = Vec::new();
        for address in &event.recipients {
            let Ok(email) = EmailAddress::parse("recipient", address) else {
                continue;
            };
            let before = match &event.kind {
                EmailEventKind::Bounce { hard: false, .. } => {
                    self.extend_bounce_streak(m, &email, event.at).await?
                }
                EmailEventKind::Delivery => {
                    self.end_bounce_streak(m, &email, event.at).await?;
                    0
                }
                _ => 0,
            };
            if let Some(reason) = suppression(&event.kind, before) {
                self.put_suppression(m, &email, reason.as_str(), now)
                    .await?;
                tracing::warn!(reason = reason.as_str(), "address suppressed");
                suppressed.push((email.normalized(), reason));
            }
        }
        Ok(Applied::Recorded { suppressed })
    }

    /// Makes a send record without a message id (`in_progress` or `ambiguous`) `sent` with the
    /// event's message id, if the event was addressed to the record's recipient. Returns whether it
    /// did (false: the record moved on, or the event is about someone else).
    async fn adopt_message(
        &self,
        key: &keys::Key,
        event: &EmailEvent,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut recipients: Vec<String> = event
            .recipients
            .iter()
            .flat_map(|r| [r.clone(), r.to_lowercase()])
            .collect();
        recipients.sort();
        recipients.dedup();
        recipients.truncate(90);
        if recipients.is_empty() {
            return Ok(false);
        }
        let names: Vec<String> = (0..recipients.len()).map(|i| format!(":r{i}")).collect();
        let mut update = self
            .update_item(key)
            .update_expression(
                "SET #status = :sent, message_id = :mid, sent_at = :at, updated_at = :now, \
                 reconciled_at = :now REMOVE parked_message",
            )
            .condition_expression(format!(
                "(attribute_not_exists(message_id) OR attribute_type(message_id, :null)) \
                 AND #status IN (:ip, :amb) AND recipient IN ({})",
                names.join(", ")
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", s(SendStatus::Sent.as_str()))
            // A claim stores "no message id yet" as a NULL attribute.
            .expression_attribute_values(":null", s("NULL"))
            .expression_attribute_values(":ip", s(SendStatus::InProgress.as_str()))
            .expression_attribute_values(":amb", s(SendStatus::Ambiguous.as_str()))
            .expression_attribute_values(":mid", s(event.message_id.clone()))
            .expression_attribute_values(":at", s(event.at.to_string()))
            .expression_attribute_values(":now", s(now.to_string()));
        for (name, value) in names.iter().zip(recipients) {
            update = update.expression_attribute_values(name, s(value));
        }
        update_held("UpdateItem adopt message", update).await
    }

    /// Marks `event_id` seen on the send record (and its metric counted) and, with `listed` (while
    /// the list has room), appends the event to its list. Answers the record as it was before, or
    /// none if the record does not hold the event's message id, has seen the event, or (listed)
    /// has a full list.
    async fn record_event(
        &self,
        key: &keys::Key,
        event_id: &str,
        event: &EmailEvent,
        listed: bool,
    ) -> Result<Option<Item>, StoreError> {
        let counted = match metric_of(event.kind.as_str()) {
            Some(metric) => format!(", counted :m_{metric}"),
            None => String::new(),
        };
        let mut update = self
            .update_item(key)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![event_id.to_owned()]))
            .expression_attribute_values(":id", s(event_id))
            .expression_attribute_values(":mid", s(event.message_id.clone()));
        let seen_once = "message_id = :mid AND NOT contains(event_ids, :id)";
        update = if listed {
            update
                .update_expression(format!(
                    "SET events = list_append(if_not_exists(events, :empty), :ev), \
                     event_rank = if_not_exists(event_rank, :zero) ADD event_ids :ids{counted}"
                ))
                .condition_expression(format!(
                    "{seen_once} AND (attribute_not_exists(events) OR size(events) < :cap)"
                ))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(
                    ":ev",
                    AttributeValue::L(vec![event_value(event_id, event)]),
                )
                .expression_attribute_values(":cap", n(MAX_EVENTS_PER_SEND))
        } else {
            update
                .update_expression(format!(
                    "SET event_rank = if_not_exists(event_rank, :zero) ADD event_ids :ids{counted}"
                ))
                .condition_expression(seen_once)
        };
        if let Some(metric) = metric_of(event.kind.as_str()) {
            update = update.expression_attribute_values(
                format!(":m_{metric}"),
                AttributeValue::Ss(vec![metric.to_owned()]),
            );
        }
        let result = update
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("UpdateItem email event", e));
        match result {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds a soft bounce to the address's streak; returns the streak before it.
    async fn extend_bounce_streak(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
        at: Timestamp,
    ) -> Result<u32, StoreError> {
        let out = self
            .update_item(&keys::bounce_streak(m, email))
            .update_expression("SET #type = :t, last_soft_ms = :at ADD soft_bounces :one")
            .expression_attribute_names("#type", keys::TYPE)
            .expression_attribute_values(":t", s("bounce_streak"))
            .expression_attribute_values(":at", n(at.as_millisecond()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem bounce streak", e))?;
        let after = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("soft_bounces"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        Ok(after.saturating_sub(1))
    }

    /// Ends the streak if the delivery happened after its last bounce.
    async fn end_bounce_streak(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let update = self
            .update_item(&keys::bounce_streak(m, email))
            .update_expression("SET soft_bounces = :zero, last_delivery_ms = :at")
            .condition_expression("attribute_exists(PK) AND last_soft_ms < :at")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", n(at.as_millisecond()));
        update_held("UpdateItem bounce streak", update)
            .await
            .map(|_| ())
    }
}

impl Store {
    /// The merchant's suppression of `email`, if any.
    pub async fn get_suppression(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> Result<Option<super::followups::Suppression>, StoreError> {
        self.get_as(
            "GetItem suppression",
            "suppression",
            &keys::suppression(m, email),
        )
        .await
    }

    /// Lifts the merchant's suppression of `email` (and forgets its soft-bounce streak); the
    /// suppression that was lifted, or `None` if there was none.
    pub async fn lift_suppression(
        &self,
        m: &MerchantId,
        email: &EmailAddress,
    ) -> Result<Option<super::followups::Suppression>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(keys::suppression(m, email).to_map()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| classify("DeleteItem suppression", e))?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(keys::bounce_streak(m, email).to_map()))
            .send()
            .await
            .map_err(|e| classify("DeleteItem bounce streak", e))?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(|i| super::from_item("suppression", i))
            .transpose()
    }
}
