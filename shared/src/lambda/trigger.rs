//! One entry point for the event shapes a function receives: API Gateway HTTP API requests
//! (payload v2) and EventBridge events. Functions match on [`Trigger`] and share one code path
//! after parsing.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The EventBridge envelope (what a rule delivers to a Lambda target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    #[serde(default)]
    pub version: Option<String>,
    /// Unique per event; the same on redelivery.
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub detail: Value,
}

#[derive(Debug)]
pub enum Trigger {
    Http(Box<ApiGatewayV2httpRequest>),
    Event(Box<EventEnvelope>),
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("the event is neither an HTTP API v2 request nor an EventBridge event")]
    Unrecognised,
    #[error("the {kind} event is malformed: {source}")]
    Malformed {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Trigger {
    pub fn parse(event: Value) -> Result<Self, TriggerError> {
        let is_http = event
            .get("requestContext")
            .and_then(|c| c.get("http"))
            .is_some();
        let is_event = event.get("detail-type").is_some() && event.get("source").is_some();
        if is_http {
            serde_json::from_value(event)
                .map(|r| Trigger::Http(Box::new(r)))
                .map_err(|source| TriggerError::Malformed {
                    kind: "HTTP API",
                    source,
                })
        } else if is_event {
            serde_json::from_value(event)
                .map(|e| Trigger::Event(Box::new(e)))
                .map_err(|source| TriggerError::Malformed {
                    kind: "EventBridge",
                    source,
                })
        } else {
            Err(TriggerError::Unrecognised)
        }
    }
}
