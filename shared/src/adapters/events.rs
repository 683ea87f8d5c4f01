//! Events Aftercare publishes for the merchant's own systems on EventBridge: a customer clicked a
//! subscription link, asked to cancel or renew on a hosted page. The merchant routes them with
//! rules (to their billing system, a queue, an API destination).
//!
//! Publishing is at least once: every event carries an `event_id` receivers dedupe on. A merchant
//! with `settings.webhook.url` also gets a signed copy by webhook ([`crate::adapters::webhooks`]).

use jiff::Timestamp;
use serde_json::Value;

use crate::adapters::webhooks::{Delivery, Webhooks};
use crate::domain::merchant::Merchant;

/// The `source` of every event Aftercare publishes.
pub const SOURCE: &str = "aftercare";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge refused the event: {0}")]
    Refused(String),
    #[error("EventBridge is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Publishes to the configured bus (a no-op without one) and the merchant's webhook.
#[derive(Clone, Debug)]
pub struct Events {
    client: aws_sdk_eventbridge::Client,
    bus: Option<String>,
    webhooks: Webhooks,
}

impl Events {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: Option<String>) -> Self {
        Self {
            client,
            bus,
            webhooks: Webhooks::default(),
        }
    }

    /// Publishes one event of `merchant`'s on the bus and to their webhook; `detail` carries
    /// `merchant_id` and an `event_id`. The caller has already stored what happened, so a failure
    /// here is logged (with the detail, for replay) rather than failing the customer's request.
    pub async fn publish(
        &self,
        merchant: &Merchant,
        detail_type: &str,
        detail: &Value,
        now: Timestamp,
    ) {
        let (bus, webhook) = tokio::join!(
            self.put_event(detail_type, detail),
            self.webhooks.deliver(merchant, detail_type, detail, now),
        );
        if let Err(e) = bus {
            tracing::error!(error = %e, %detail_type, %detail, "could not publish the event");
        }
        match webhook {
            Ok(Delivery::Delivered { status, attempts }) => {
                tracing::info!(%detail_type, status, attempts, "webhook delivered");
            }
            Ok(Delivery::NotConfigured) => {}
            Err(e) => {
                tracing::warn!(error = %e, %detail_type, %detail, "webhook not delivered");
            }
        }
    }

    /// Puts one event on the bus.
    pub async fn put_event(&self, detail_type: &str, detail: &Value) -> Result<(), PublishError> {
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError::Unavailable(Box::new(e)))?;
        if out.failed_entry_count > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code())
                .unwrap_or("unknown")
                .to_owned();
            return Err(PublishError::Refused(code));
        }
        Ok(())
    }
}
