//! Email events as SES publishes them to EventBridge from a configuration set's event destination
//! (`source: aws.ses`, `detail-type: "Email Bounced"`, …, `detail` = the event record with
//! `eventType`, `mail` and one object per type), parsed into what Aftercare acts on, and the
//! suppression rules they drive: a hard bounce or a complaint suppresses the address at once; more
//! than [`SOFT_BOUNCE_LIMIT`] soft bounces in a row (no delivery between) suppress it too.

use super::FieldError;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Soft bounces in a row that an address may have before it is suppressed (the eighth suppresses).
pub const SOFT_BOUNCE_LIMIT: u32 = 7;

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EmailEventKind {
    Send,
    Delivery,
    /// `hard`: SES's `Permanent` bounce type; `Transient` and `Undetermined` are soft.
    Bounce {
        hard: bool,
        sub_type: String,
    },
    Complaint {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feedback_type: Option<String>,
    },
    Reject {
        reason: String,
    },
    Open,
    Click {
        link: String,
    },
    RenderingFailure,
    DeliveryDelay {
        delay_type: String,
    },
    Subscription,
}

impl EmailEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EmailEventKind::Send => "send",
            EmailEventKind::Delivery => "delivery",
            EmailEventKind::Bounce { hard: true, .. } => "hard_bounce",
            EmailEventKind::Bounce { hard: false, .. } => "soft_bounce",
            EmailEventKind::Complaint { .. } => "complaint",
            EmailEventKind::Reject { .. } => "reject",
            EmailEventKind::Open => "open",
            EmailEventKind::Click { .. } => "click",
            EmailEventKind::RenderingFailure => "rendering_failure",
            EmailEventKind::DeliveryDelay { .. } => "delivery_delay",
            EmailEventKind::Subscription => "subscription",
        }
    }

    /// How far along the message got, for a message state that never moves backwards whatever
    /// order events arrive in: a later open does not undo a complaint, a late `Send` does not undo
    /// a delivery.
    pub fn rank(&self) -> u8 {
        match self {
            EmailEventKind::Send | EmailEventKind::RenderingFailure => 1,
            EmailEventKind::DeliveryDelay { .. } => 2,
            EmailEventKind::Delivery => 3,
            EmailEventKind::Open | EmailEventKind::Subscription => 4,
            EmailEventKind::Click { .. } => 5,
            EmailEventKind::Bounce { hard: false, .. } => 6,
            EmailEventKind::Reject { .. } | EmailEventKind::Bounce { hard: true, .. } => 7,
            EmailEventKind::Complaint { .. } => 8,
        }
    }
}

/// One email event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailEvent {
    pub kind: EmailEventKind,
    /// SES's message id (what the send record holds).
    pub message_id: String,
    /// When the event happened (the type's own timestamp, else the mail's).
    pub at: Timestamp,
    /// When the message was sent.
    pub sent_at: Timestamp,
    /// The addresses the event is about (bounced or complaining recipients; else every
    /// destination), lower-cased.
    pub recipients: Vec<String>,
    /// The merchant the message was sent for (its `X-Aftercare-Merchant` header, else its
    /// `merchant` message tag).
    pub merchant: Option<String>,
    /// The send record's sort key (its `X-Aftercare-Ref` header).
    pub send_ref: Option<String>,
}

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    RepeatedSoftBounces,
    /// Added by the merchant.
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::RepeatedSoftBounces => "repeated_soft_bounces",
            SuppressionReason::Manual => "manual",
        }
    }
}

/// Whether `kind` suppresses its recipients, given how many soft bounces in a row each had before
/// it (`soft_before`).
pub fn suppression(kind: &EmailEventKind, soft_before: u32) -> Option<SuppressionReason> {
    match kind {
        EmailEventKind::Bounce { hard: true, .. } => Some(SuppressionReason::HardBounce),
        EmailEventKind::Complaint { .. } => Some(SuppressionReason::Complaint),
        EmailEventKind::Bounce { hard: false, .. } if soft_before >= SOFT_BOUNCE_LIMIT => {
            Some(SuppressionReason::RepeatedSoftBounces)
        }
        _ => None,
    }
}

/// What became of one event on its send record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded now, with the addresses it suppressed.
    Recorded {
        suppressed: Vec<(String, SuppressionReason)>,
    },
    /// Recorded before (a redelivery): nothing changed.
    Duplicate,
    /// No send record of ours holds this message id (another sender on the account, or a record
    /// erased since): nothing recorded.
    Unmatched,
}

/// The metric an event type ([`EmailEventKind::as_str`]) counts towards in the daily email
/// counters, if any. Each metric counts a message at most once.
pub fn metric_of(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "send" => "sent",
        "delivery" => "delivered",
        "hard_bounce" | "soft_bounce" => "bounced",
        "complaint" => "complained",
        "open" => "opened",
        "click" => "clicked",
        "reject" => "rejected",
        _ => return None,
    })
}

/// One day's email counters (UTC) for one kind of email.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DailyStats {
    pub day: String,
    pub kind: String,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub complained: u64,
    pub opened: u64,
    pub clicked: u64,
    pub rejected: u64,
}

impl DailyStats {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &DailyStats) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.bounced += other.bounced;
        self.complained += other.complained;
        self.opened += other.opened;
        self.clicked += other.clicked;
        self.rejected += other.rejected;
    }

    /// The counters of each (day, kind) in `parts` added up, oldest day first, then by kind.
    pub fn summed(parts: impl IntoIterator<Item = DailyStats>) -> Vec<DailyStats> {
        let mut by_day: std::collections::BTreeMap<(String, String), DailyStats> =
            std::collections::BTreeMap::new();
        for part in parts {
            match by_day.entry((part.day.clone(), part.kind.clone())) {
                std::collections::btree_map::Entry::Occupied(mut sum) => sum.get_mut().add(&part),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(part);
                }
            }
        }
        by_day.into_values().collect()
    }

    /// `part / whole`, or 0 with nothing to divide by.
    pub fn rate(part: u64, whole: u64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            // Counts of emails stay far below 2^52: exact as f64.
            #[allow(clippy::cast_precision_loss)]
            let r = part as f64 / whole as f64;
            r
        }
    }

    /// Complaints per email sent (how SES and mailbox providers count it).
    pub fn complaint_rate(&self) -> f64 {
        Self::rate(self.complained, self.sent)
    }
}

fn field(path: &str, what: &str) -> FieldError {
    FieldError::new(path, "invalid_event", what)
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, FieldError> {
    let mut at = v;
    for part in path.split('.') {
        at = &at[part];
    }
    at.as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FieldError::required(format!("detail.{path}")))
}

fn time(v: &Value, path: &str) -> Result<Timestamp, FieldError> {
    text(v, path)?
        .parse()
        .map_err(|_| field(&format!("detail.{path}"), "not an RFC 3339 timestamp"))
}

fn addresses(list: &Value, key: Option<&str>) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| match key {
                    Some(k) => i[k].as_str(),
                    None => i.as_str(),
                })
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the `detail` of an SES event (the event record itself, `eventType` first).
pub fn parse(detail: &Value) -> Result<EmailEvent, FieldError> {
    let event_type = text(detail, "eventType")?;
    let message_id = text(detail, "mail.messageId")?.to_owned();
    let sent_at = time(detail, "mail.timestamp")?;
    let destinations = addresses(&detail["mail"]["destination"], None);
    let own_time = |object: &str| -> Result<Timestamp, FieldError> {
        match detail[object]["timestamp"].as_str() {
            Some(_) => time(detail, &format!("{object}.timestamp")),
            None => Ok(sent_at),
        }
    };
    let (kind, at, recipients) = match event_type {
        "Send" => (EmailEventKind::Send, sent_at, destinations),
        "Delivery" => {
            let to = addresses(&detail["delivery"]["recipients"], None);
            (
                EmailEventKind::Delivery,
                own_time("delivery")?,
                or(to, destinations),
            )
        }
        "Bounce" => {
            let bounce_type = text(detail, "bounce.bounceType")?;
            let to = addresses(&detail["bounce"]["bouncedRecipients"], Some("emailAddress"));
            let kind = EmailEventKind::Bounce {
                hard: bounce_type == "Permanent",
                sub_type: detail["bounce"]["bounceSubType"]
                    .as_str()
                    .unwrap_or("General")
                    .to_owned(),
            };
            (kind, own_time("bounce")?, or(to, destinations))
        }
        "Complaint" => {
            let to = addresses(
                &detail["complaint"]["complainedRecipients"],
                Some("emailAddress"),
            );
            let kind = EmailEventKind::Complaint {
                feedback_type: detail["complaint"]["complaintFeedbackType"]
                    .as_str()
                    .map(str::to_owned),
            };
            (kind, own_time("complaint")?, or(to, destinations))
        }
        "Reject" => {
            let reason = detail["reject"]["reason"]
                .as_str()
                .unwrap_or("Bad content")
                .to_owned();
            (EmailEventKind::Reject { reason }, sent_at, destinations)
        }
        "Open" => (EmailEventKind::Open, own_time("open")?, destinations),
        "Click" => {
            let link = text(detail, "click.link")?.to_owned();
            (
                EmailEventKind::Click { link },
                own_time("click")?,
                destinations,
            )
        }
        "Rendering Failure" => (EmailEventKind::RenderingFailure, sent_at, destinations),
        "DeliveryDelay" => {
            let delay_type = detail["deliveryDelay"]["delayType"]
                .as_str()
                .unwrap_or("Undetermined")
                .to_owned();
            let to = addresses(
                &detail["deliveryDelay"]["delayedRecipients"],
                Some("emailAddress"),
            );
            let kind = EmailEventKind::DeliveryDelay { delay_type };
            (kind, own_time("deliveryDelay")?, or(to, destinations))
        }
        "Subscription" => (
            EmailEventKind::Subscription,
            own_time("subscription")?,
            destinations,
        ),
        other => {
            return Err(field(
                "detail.eventType",
                &format!("unknown SES event type {other:?}"),
            ));
        }
    };
    if recipients.is_empty() {
        return Err(FieldError::required("detail.mail.destination"));
    }
    let header = |name: &str| {
        detail["mail"]["headers"].as_array().and_then(|hs| {
            hs.iter()
                .find(|h| {
                    h["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .and_then(|h| h["value"].as_str())
                .map(str::to_owned)
        })
    };
    let merchant = header("X-Aftercare-Merchant").or_else(|| {
        detail["mail"]["tags"]["merchant"][0]
            .as_str()
            .map(str::to_owned)
    });
    Ok(EmailEvent {
        kind,
        message_id,
        at,
        sent_at,
        recipients,
        merchant,
        send_ref: header("X-Aftercare-Ref"),
    })
}

fn or(first: Vec<String>, fallback: Vec<String>) -> Vec<String> {
    if first.is_empty() { fallback } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mail() -> Value {
        json!({
            "timestamp": "2026-11-20T10:00:00.000Z", "source": "Acme <orders@acme.example>",
            "sendingAccountId": "123456789012", "messageId": "0100019a-abc-000000",
            "destination": ["Ann.Lee@example.com"], "headersTruncated": false,
            "headers": [{"name": "From", "value": "Acme <orders@acme.example>"},
                {"name": "X-Aftercare-Ref", "value": "SEND#cust-1#order_thanks#SO-1#0"}],
            "tags": {"ses:configuration-set": ["aftercare"], "merchant": ["acme"]}
        })
    }

    #[test]
    fn parses_each_type_with_its_own_time_and_recipients() {
        let bounce = json!({"eventType": "Bounce", "mail": mail(), "bounce": {
            "feedbackId": "f1", "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "ANN.LEE@example.com", "action": "failed",
                "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-11-20T10:00:02.000Z", "reportingMTA": "dsn; a1.example"}});
        let e = parse(&bounce).unwrap();
        assert_eq!(e.kind.as_str(), "hard_bounce");
        assert_eq!(e.recipients, vec!["ann.lee@example.com"]);
        assert_eq!(e.at.to_string(), "2026-11-20T10:00:02Z");
        assert_eq!(e.message_id, "0100019a-abc-000000");
        assert_eq!(e.merchant.as_deref(), Some("acme"));
        assert_eq!(
            e.send_ref.as_deref(),
            Some("SEND#cust-1#order_thanks#SO-1#0")
        );

        let soft = json!({"eventType": "Bounce", "mail": mail(), "bounce": {
            "bounceType": "Transient", "bounceSubType": "MailboxFull", "bouncedRecipients": []}});
        let e = parse(&soft).unwrap();
        assert_eq!(
            e.kind,
            EmailEventKind::Bounce {
                hard: false,
                sub_type: "MailboxFull".into()
            }
        );
        assert_eq!(
            e.recipients,
            vec!["ann.lee@example.com"],
            "falls back to the destination"
        );
        assert_eq!(e.at, e.sent_at);

        let click = json!({"eventType": "Click", "mail": mail(), "click": {
            "ipAddress": "192.0.2.1", "timestamp": "2026-11-21T08:00:00.000Z",
            "userAgent": "Mozilla/5.0", "link": "https://acme.example/p/1", "linkTags": {}}});
        assert_eq!(
            parse(&click).unwrap().kind,
            EmailEventKind::Click {
                link: "https://acme.example/p/1".into()
            }
        );
        let complaint = json!({"eventType": "Complaint", "mail": mail(), "complaint": {
            "complainedRecipients": [{"emailAddress": "ann.lee@example.com"}],
            "timestamp": "2026-11-22T08:00:00.000Z", "complaintFeedbackType": "abuse"}});
        assert_eq!(parse(&complaint).unwrap().kind.rank(), 8);
        for t in ["Send", "Open", "Rendering Failure", "Subscription"] {
            assert!(
                parse(&json!({"eventType": t, "mail": mail()})).is_ok(),
                "{t}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_an_ses_event_naming_the_field() {
        assert_eq!(parse(&json!({})).unwrap_err().field, "detail.eventType");
        let no_id = json!({"eventType": "Send", "mail": {"timestamp": "2026-11-20T10:00:00Z"}});
        assert_eq!(parse(&no_id).unwrap_err().field, "detail.mail.messageId");
        let unknown = json!({"eventType": "Teleport", "mail": mail()});
        assert_eq!(parse(&unknown).unwrap_err().field, "detail.eventType");
        let bad_time =
            json!({"eventType": "Open", "mail": mail(), "open": {"timestamp": "yesterday"}});
        assert_eq!(parse(&bad_time).unwrap_err().field, "detail.open.timestamp");
    }

    #[test]
    fn hard_bounces_and_complaints_suppress_at_once_soft_bounces_after_seven_in_a_row() {
        let soft = EmailEventKind::Bounce {
            hard: false,
            sub_type: "General".into(),
        };
        let hard = EmailEventKind::Bounce {
            hard: true,
            sub_type: "General".into(),
        };
        assert_eq!(suppression(&hard, 0), Some(SuppressionReason::HardBounce));
        assert_eq!(
            suppression(
                &EmailEventKind::Complaint {
                    feedback_type: None
                },
                0
            ),
            Some(SuppressionReason::Complaint)
        );
        assert_eq!(suppression(&soft, 6), None);
        assert_eq!(
            suppression(&soft, 7),
            Some(SuppressionReason::RepeatedSoftBounces)
        );
        assert_eq!(
            suppression(
                &EmailEventKind::Reject {
                    reason: "Bad content".into()
                },
                0
            ),
            None
        );
        assert_eq!(suppression(&EmailEventKind::Delivery, 9), None);
    }

    #[test]
    fn the_message_state_never_moves_backwards() {
        let order = [
            EmailEventKind::Send,
            EmailEventKind::Delivery,
            EmailEventKind::Open,
            EmailEventKind::Click { link: "x".into() },
            EmailEventKind::Complaint {
                feedback_type: None,
            },
        ];
        assert!(order.windows(2).all(|w| w[0].rank() < w[1].rank()));
    }
}
