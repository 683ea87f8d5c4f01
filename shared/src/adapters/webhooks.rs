//! Signed outbound webhooks: the merchant's copy of an event Aftercare publishes, POSTed to the
//! URL in their `settings.webhook.url`.
//!
//! * Signed in the same scheme Aftercare verifies inbound (Stripe's): header
//!   `Aftercare-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<raw body>">`, keyed with
//!   the merchant's first webhook secret, so a receiver checks it with any Stripe-style verifier
//!   and refuses stale timestamps.
//! * Sent over the same HTTP/TLS stack as the AWS SDK (hyper + rustls/ring, one CA bundle), built
//!   on the first delivery, so functions that never send one pay nothing at init.
//! * Bounded: a customer may be waiting on the redirect that triggers it, so at most two attempts
//!   (the second only after a connection error, a 429 or a 5xx, and only early enough) with short
//!   timeouts. The EventBridge copy is the durable one; the body's `id` lets a receiver dedupe.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::domain::merchant::Merchant;
use crate::signature;

/// The signature header on every outbound webhook.
pub const SIGNATURE_HEADER: &str = "Aftercare-Signature";
const USER_AGENT: &str = concat!("Aftercare-Webhooks/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// No second attempt once this much time has gone by.
const RETRY_BEFORE: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the merchant has no webhook secret to sign with")]
    NoSecret,
    #[error("the webhook URL is not a valid request URI")]
    BadUrl,
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("the receiver could not be reached: {0}")]
    Unreachable(String),
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The merchant configured no webhook.
    NotConfigured,
    /// A 2xx after `attempts` attempts.
    Delivered { status: u16, attempts: u8 },
}

/// The outbound webhook sender (cheap to clone; the connector is shared and built lazily).
#[derive(Clone, Default)]
pub struct Webhooks {
    connector: Arc<OnceLock<Connector>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("connected", &self.connector.get().is_some())
            .finish()
    }
}

/// The body a receiver gets: the event's own id (for dedupe), its type, when it was signed and
/// the same `detail` as on EventBridge.
pub fn body(event_type: &str, detail: &Value, now: Timestamp) -> Vec<u8> {
    let id = detail.get("event_id").cloned().unwrap_or(Value::Null);
    let merchant = detail.get("merchant_id").cloned().unwrap_or(Value::Null);
    json!({
        "id": id, "type": event_type, "created": now.as_second(), "merchant_id": merchant,
        "data": detail,
    })
    .to_string()
    .into_bytes()
}

impl Webhooks {
    fn connector(&self) -> &Connector {
        self.connector.get_or_init(|| {
            let settings = HttpConnectorSettings::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build();
            let builder = Connector::builder()
                .connector_settings(settings)
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
            match crate::adapters::aws::tls_context() {
                Some(ctx) => builder.tls_context(ctx).build(),
                None => builder.build(),
            }
        })
    }

    /// Delivers `event_type` with `detail` to the merchant's webhook URL, if they configured one.
    pub async fn deliver(
        &self,
        merchant: &Merchant,
        event_type: &str,
        detail: &Value,
        now: Timestamp,
    ) -> Result<Delivery, WebhookError> {
        let Some(url) = merchant.settings.webhook.url.as_deref() else {
            return Ok(Delivery::NotConfigured);
        };
        let secret = merchant
            .webhook_secrets
            .first()
            .ok_or(WebhookError::NoSecret)?;
        let body = body(event_type, detail, now);
        let header = signature::sign(secret.0.as_bytes(), now.as_second(), &body);
        let started = Instant::now();
        let mut attempts = 0u8;
        loop {
            attempts += 1;
            let outcome = self.attempt(url, &header, &body).await;
            let retryable = match &outcome {
                Ok(status) if (200..300).contains(status) => {
                    return Ok(Delivery::Delivered {
                        status: *status,
                        attempts,
                    });
                }
                Ok(status) => *status == 429 || *status >= 500,
                Err(WebhookError::Unreachable(_)) => true,
                Err(_) => false,
            };
            if !retryable || attempts >= 2 || started.elapsed() > RETRY_BEFORE {
                return Err(match outcome {
                    Ok(status) => WebhookError::Status(status),
                    Err(e) => e,
                });
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }

    async fn attempt(&self, url: &str, header: &str, body: &[u8]) -> Result<u16, WebhookError> {
        let mut request = HttpRequest::new(SdkBody::from(body.to_vec()));
        request.set_uri(url).map_err(|_| WebhookError::BadUrl)?;
        request
            .set_method("POST")
            .map_err(|_| WebhookError::BadUrl)?;
        let headers = request.headers_mut();
        headers.insert("content-type", "application/json");
        headers.insert("user-agent", USER_AGENT);
        headers.insert(SIGNATURE_HEADER, header.to_owned());
        let response = self
            .connector()
            .call(request)
            .await
            .map_err(|e| WebhookError::Unreachable(e.to_string()))?;
        Ok(response.status().as_u16())
    }
}
