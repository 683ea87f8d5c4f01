//! AWS SDK clients, built once in `main` and borrowed by handlers.
//!
//! * One HTTP/TLS stack: hyper + rustls with the *ring* provider (no aws-lc, so no jitter-entropy
//!   cost on the first handshake and a smaller binary).
//! * Trust roots from one PEM bundle when one is found (the Lambda image has one); reading the
//!   bundle is one file open instead of one per certificate in the CA directory.
//! * Endpoints follow the SDK's standard `AWS_ENDPOINT_URL` (a local emulator in tests and the
//!   local demo); there is no "is local" switch in the code.
//! * The SES client has automatic retries **off**: `SendEmail` has no idempotency token, so only
//!   our own code retries it, under a claim (see [`crate::send`]).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Bundles tried in order when `AFTERCARE_CA_BUNDLE` is not set.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

fn trust_store() -> TrustStore {
    let configured = std::env::var(crate::config::CA_BUNDLE).ok();
    let candidates = configured
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    for path in candidates {
        if let Ok(pem) = std::fs::read(path) {
            return TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem);
        }
    }
    TrustStore::default()
}

/// TLS settings with the trust roots above (`None`: the provider's defaults).
pub fn tls_context() -> Option<TlsContext> {
    TlsContext::builder()
        .with_trust_store(trust_store())
        .build()
        .ok()
}

/// The one HTTP client: hyper + rustls (ring), roots from a single bundle when available.
pub fn http_client() -> SharedHttpClient {
    let mut builder = Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    if let Some(ctx) = tls_context() {
        builder = builder.tls_context(ctx);
    }
    builder.build_https()
}

/// The standard configuration loader (environment, profile, IMDS/container credentials) using our
/// HTTP client. Tests and tools add an explicit region, endpoint or credentials to it.
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// Loads the shared SDK configuration (region, credentials, endpoint) from the environment.
pub async fn load_config() -> SdkConfig {
    loader().load().await
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// The SES v2 client, with the SDK's automatic retries disabled.
pub fn ses_client(config: &SdkConfig) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::config::Builder::from(config)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}

pub fn eventbridge_client(config: &SdkConfig) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(config)
}
