//! AWS SDK clients, built once in `main` and borrowed by handlers.
//!
//! * One HTTP/TLS stack: hyper + rustls with the *ring* provider (no aws-lc, so no jitter-entropy
//!   cost on the first handshake and a smaller binary).
//! * Trust roots: the five Amazon Trust Services roots every AWS endpoint chains to, compiled in.
//!   Parsing the system bundle (~140 roots) was 6.4 ms of a 16 ms init and opened a file; five
//!   roots parse in a fraction of a millisecond. `AFTERCARE_CA_BUNDLE` replaces them with a PEM
//!   bundle for an endpoint behind another CA (an HTTPS emulator, a TLS-inspecting proxy).
//! * Endpoints follow the SDK's standard `AWS_ENDPOINT_URL` (a local emulator in tests and the
//!   local demo); there is no "is local" switch in the code.
//! * The SES client has automatic retries **off**: `SendEmail` has no idempotency token, so only
//!   our own code retries it, under a claim (see [`crate::usecases::send`]).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Root CA 1–4 and Starfield Services Root CA G2 (see the file for fingerprints).
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

/// Why an operator-supplied bundle was not used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM bundle of root certificates: {reason}")]
    Invalid { path: String, reason: String },
}

/// Reads a PEM bundle and checks every certificate in it is a usable trust anchor, returning the
/// bytes and how many roots it holds. The SDK panics on a bundle it cannot parse (and release
/// builds abort on panic), so nothing reaches it unchecked.
pub fn read_bundle(path: &str) -> Result<(Vec<u8>, usize), BundleError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pem = std::fs::read(path).map_err(|source| BundleError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| BundleError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| invalid(e.to_string()))?;
        roots.add(der).map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate in it".to_owned()));
    }
    Ok((pem, roots.len()))
}

fn trust_store() -> TrustStore {
    let store = TrustStore::empty().with_native_roots(false);
    let Ok(path) = std::env::var(crate::config::CA_BUNDLE) else {
        return store.with_pem_certificate(AMAZON_TRUST_SERVICES);
    };
    match read_bundle(&path) {
        Ok((pem, _)) => store.with_pem_certificate(pem),
        Err(error) => {
            tracing::error!(%error, "{} not used; trusting the Amazon Trust Services roots", crate::config::CA_BUNDLE);
            store.with_pem_certificate(AMAZON_TRUST_SERVICES)
        }
    }
}

/// TLS settings with the trust roots above (`None`: the provider's defaults).
pub fn tls_context() -> Option<TlsContext> {
    TlsContext::builder()
        .with_trust_store(trust_store())
        .build()
        .ok()
}

/// The one HTTP client: hyper + rustls (ring), trusting the roots above.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &[u8]) -> String {
        let path = std::env::temp_dir().join(format!("aftercare-ca-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn the_built_in_roots_are_the_five_amazon_trust_services_anchors() {
        let path = temp("ats.pem", AMAZON_TRUST_SERVICES);
        let (_, roots) = read_bundle(&path).unwrap();
        assert_eq!(roots, 5);
    }

    #[test]
    fn a_bundle_the_sdk_would_panic_on_is_refused_with_the_reason() {
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
        let err = read_bundle(&temp("broken.pem", broken.as_bytes())).unwrap_err();
        assert!(matches!(err, BundleError::Invalid { .. }), "{err}");
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = read_bundle(&temp("junk.pem", junk.as_bytes())).unwrap_err();
        assert!(matches!(err, BundleError::Invalid { .. }), "{err}");
        let err = read_bundle(&temp("empty.pem", b"# nothing here\n")).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let err = read_bundle("/nonexistent/aftercare/bundle.pem").unwrap_err();
        assert!(matches!(err, BundleError::Read { .. }), "{err}");
    }

    #[test]
    fn an_https_client_builds_with_the_built_in_roots() {
        assert!(tls_context().is_some());
        let _client = http_client();
    }
}
