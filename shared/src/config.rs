//! Typed configuration, read once at init from the environment.
//!
//! Every key a function reads is a `const` here, and [`ENV_KEYS`] lists them all: the infra contract
//! test checks that the template sets no key the code does not know.

use std::time::Duration;
use thiserror::Error;

/// Name of the DynamoDB table (required).
pub const TABLE: &str = "AFTERCARE_TABLE";
/// Base URL of the public HTTP API (links in emails), e.g. `https://api.example.com`.
pub const PUBLIC_BASE_URL: &str = "AFTERCARE_PUBLIC_BASE_URL";
/// SES configuration set attached to every send (optional).
pub const SES_CONFIGURATION_SET: &str = "AFTERCARE_SES_CONFIGURATION_SET";
/// HMAC key for signed one-click links (required by functions that sign or verify links).
pub const SIGNING_KEY: &str = "AFTERCARE_SIGNING_KEY";
/// How long a verified API key is trusted by a warm instance before it is looked up again.
pub const KEY_CACHE_TTL_SECONDS: &str = "AFTERCARE_KEY_CACHE_TTL_SECONDS";
/// How long a warm instance reuses a merchant's settings before reading them again.
pub const MERCHANT_CACHE_TTL_SECONDS: &str = "AFTERCARE_MERCHANT_CACHE_TTL_SECONDS";
/// How long send records (claims, message log) are kept before TTL removes them.
pub const EMAIL_RETENTION_DAYS: &str = "AFTERCARE_EMAIL_RETENTION_DAYS";
/// A PEM bundle of trusted roots used instead of the built-in Amazon Trust Services roots (an
/// endpoint behind a private CA, e.g. an HTTPS emulator or a TLS-inspecting proxy).
pub const CA_BUNDLE: &str = "AFTERCARE_CA_BUNDLE";

/// Most SES sends per second one sweep makes (stay under the account's sending rate).
pub const SES_MAX_SEND_RATE: &str = "AFTERCARE_SES_MAX_SEND_RATE";
/// How many due items one sweep works on at once.
pub const SWEEP_CONCURRENCY: &str = "AFTERCARE_SWEEP_CONCURRENCY";
/// Most due items of one merchant one sweep run works on; the rest stay due for the next run
/// (unset: no cap). Merchants are served in turn either way.
pub const SWEEP_MERCHANT_QUOTA: &str = "AFTERCARE_SWEEP_MERCHANT_QUOTA";
/// How long a parked send waits for SES's word (a Send, Delivery or Bounce event) before it is
/// decided without it, unless the deployment sets [`SILENCE_WINDOW_MINUTES`].
/// How long the init-time warm-up waits for each service before giving up on it (the deployed
/// [`Config::warm_up_limit`]).
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(2);

pub const DEFAULT_SILENCE_WINDOW: Duration = Duration::from_secs(3_600);
/// How many minutes a send whose outcome SES left unknown waits for SES's event before it is
/// decided without it (transactional: sent once more; marketing: closed as unsent). Default 60.
pub const SILENCE_WINDOW_MINUTES: &str = "AFTERCARE_SILENCE_WINDOW_MINUTES";
/// Local scenarios only: a file holding a number of seconds added to the system clock, re-read on
/// every reading, so a run of real binaries can be moved through days. Never set on Lambda.
pub const VIRTUAL_CLOCK_FILE: &str = "AFTERCARE_VIRTUAL_CLOCK_FILE";

/// The EventBridge bus Aftercare publishes merchant-facing events to (link clicks, requests made
/// on hosted pages). Unset: events are not published.
pub const EVENT_BUS: &str = "AFTERCARE_EVENT_BUS";

/// `on`: open the DynamoDB and SES connections during init (one GetItem of a reserved key, one
/// GetConfigurationSet), so the first event does not pay for DNS, TCP and TLS. `off` (default).
pub const WARM_UP: &str = "AFTERCARE_WARM_UP";

/// Every environment key the project reads (besides the AWS SDK's and Lambda's own).
pub const ENV_KEYS: &[&str] = &[
    TABLE,
    PUBLIC_BASE_URL,
    SES_CONFIGURATION_SET,
    SIGNING_KEY,
    KEY_CACHE_TTL_SECONDS,
    MERCHANT_CACHE_TTL_SECONDS,
    EMAIL_RETENTION_DAYS,
    CA_BUNDLE,
    SES_MAX_SEND_RATE,
    SWEEP_CONCURRENCY,
    SWEEP_MERCHANT_QUOTA,
    SILENCE_WINDOW_MINUTES,
    VIRTUAL_CLOCK_FILE,
    EVENT_BUS,
    WARM_UP,
];

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The project's settings, as read at init.
#[derive(Clone)]
pub struct Config {
    pub table_name: String,
    pub public_base_url: Option<String>,
    pub ses_configuration_set: Option<String>,
    signing_key: Option<crate::token::SigningKey>,
    pub key_cache_ttl: Duration,
    pub merchant_cache_ttl: Duration,
    pub email_retention: Duration,
    /// SES sends per second a sweep may make.
    pub ses_max_send_rate: u32,
    /// Due items a sweep works on at once.
    pub sweep_concurrency: usize,
    /// Due items of one merchant a sweep run works on (`None`: all).
    pub sweep_merchant_quota: Option<usize>,
    /// How long a parked send waits for SES's event before it is decided without it.
    pub silence_window: Duration,
    pub virtual_clock_file: Option<String>,
    pub event_bus: Option<String>,
    /// Open the AWS connections during init (see [`WARM_UP`]).
    pub warm_up: bool,
    /// How long the warm-up waits for each service ([`WARM_UP_LIMIT`] unless a test or tool
    /// sets another).
    pub warm_up_limit: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("public_base_url", &self.public_base_url)
            .field("ses_configuration_set", &self.ses_configuration_set)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "<set>"))
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("merchant_cache_ttl", &self.merchant_cache_ttl)
            .field("email_retention", &self.email_retention)
            .field("ses_max_send_rate", &self.ses_max_send_rate)
            .field("sweep_concurrency", &self.sweep_concurrency)
            .field("sweep_merchant_quota", &self.sweep_merchant_quota)
            .field("silence_window", &self.silence_window)
            .field("virtual_clock_file", &self.virtual_clock_file)
            .field("event_bus", &self.event_bus)
            .field("warm_up", &self.warm_up)
            .field("warm_up_limit", &self.warm_up_limit)
            .finish()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &'static str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let table_name = get(TABLE).ok_or(ConfigError::Missing(TABLE))?;
        let public_base_url = match get(PUBLIC_BASE_URL) {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: PUBLIC_BASE_URL,
                    reason: format!("expected an http(s) URL, got {other:?}"),
                });
            }
            None => None,
        };
        let signing_key =
            match get(SIGNING_KEY) {
                Some(raw) => Some(crate::token::SigningKey::new(raw.as_bytes()).map_err(
                    |reason| ConfigError::Invalid {
                        key: SIGNING_KEY,
                        reason: reason.to_owned(),
                    },
                )?),
                None => None,
            };
        let seconds =
            |key: &'static str, default: u64| -> Result<Duration, ConfigError> {
                match get(key) {
                    None => Ok(Duration::from_secs(default)),
                    Some(v) => v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
                        ConfigError::Invalid {
                            key,
                            reason: format!("expected whole seconds, got {v:?}"),
                        }
                    }),
                }
            };
        let retention_days =
            match get(EMAIL_RETENTION_DAYS) {
                None => 400,
                Some(v) => v.parse::<u64>().ok().filter(|d| *d > 0).ok_or_else(|| {
                    ConfigError::Invalid {
                        key: EMAIL_RETENTION_DAYS,
                        reason: format!("expected a positive number of days, got {v:?}"),
                    }
                })?,
            };
        let positive = |key: &'static str, default: u32, max: u32| -> Result<u32, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        key,
                        reason: format!("expected a whole number from 1 to {max}, got {v:?}"),
                    }),
            }
        };
        Ok(Self {
            table_name,
            public_base_url,
            ses_configuration_set: get(SES_CONFIGURATION_SET),
            signing_key,
            key_cache_ttl: seconds(KEY_CACHE_TTL_SECONDS, 30)?,
            merchant_cache_ttl: seconds(MERCHANT_CACHE_TTL_SECONDS, 60)?,
            email_retention: Duration::from_secs(retention_days * 86_400),
            ses_max_send_rate: positive(SES_MAX_SEND_RATE, 10, 10_000)?,
            sweep_concurrency: usize::try_from(positive(SWEEP_CONCURRENCY, 8, 64)?).unwrap_or(8),
            sweep_merchant_quota: match get(SWEEP_MERCHANT_QUOTA) {
                None => None,
                Some(_) => usize::try_from(positive(SWEEP_MERCHANT_QUOTA, 1, 1_000_000)?).ok(),
            },
            silence_window: Duration::from_secs(
                u64::from(positive(SILENCE_WINDOW_MINUTES, 60, 7 * 24 * 60)?) * 60,
            ),
            virtual_clock_file: get(VIRTUAL_CLOCK_FILE),
            event_bus: get(EVENT_BUS),
            warm_up: match get(WARM_UP).as_deref() {
                None | Some("off") => false,
                Some("on") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        key: WARM_UP,
                        reason: format!("expected on or off, got {other:?}"),
                    });
                }
            },
            warm_up_limit: WARM_UP_LIMIT,
        })
    }

    /// A config for tests and tools: the given table, defaults for the rest.
    pub fn for_table(table_name: impl Into<String>) -> Self {
        Self {
            table_name: table_name.into(),
            public_base_url: None,
            ses_configuration_set: None,
            signing_key: None,
            key_cache_ttl: Duration::from_secs(30),
            merchant_cache_ttl: Duration::from_secs(60),
            email_retention: Duration::from_secs(400 * 86_400),
            ses_max_send_rate: 10,
            sweep_concurrency: 8,
            sweep_merchant_quota: None,
            silence_window: DEFAULT_SILENCE_WINDOW,
            virtual_clock_file: None,
            event_bus: None,
            warm_up: false,
            warm_up_limit: WARM_UP_LIMIT,
        }
    }

    /// The link-signing key, for functions that need one.
    /// The signer of link tokens, from `AFTERCARE_PUBLIC_BASE_URL` and `AFTERCARE_SIGNING_KEY`;
    /// both required.
    pub fn link_signer(&self) -> Result<crate::token::LinkSigner, ConfigError> {
        let base = self
            .public_base_url
            .as_deref()
            .ok_or(ConfigError::Missing(PUBLIC_BASE_URL))?;
        Ok(crate::token::LinkSigner::new(
            base,
            self.signing_key()?.clone(),
        ))
    }

    pub fn signing_key(&self) -> Result<&crate::token::SigningKey, ConfigError> {
        self.signing_key
            .as_ref()
            .ok_or(ConfigError::Missing(SIGNING_KEY))
    }

    pub fn with_signing_key(mut self, key: crate::token::SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn table_is_required() {
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Missing(TABLE)));
    }

    #[test]
    fn the_silence_window_is_an_hour_unless_set_to_whole_minutes() {
        let default = Config::from_lookup(lookup(&[(TABLE, "t")])).unwrap();
        assert_eq!(default.silence_window, Duration::from_secs(3_600));
        assert_eq!(default.silence_window, DEFAULT_SILENCE_WINDOW);
        let set =
            Config::from_lookup(lookup(&[(TABLE, "t"), (SILENCE_WINDOW_MINUTES, "15")])).unwrap();
        assert_eq!(set.silence_window, Duration::from_secs(900));
        for bad in ["0", "-5", "1.5", "ten", "100000"] {
            assert!(
                Config::from_lookup(lookup(&[(TABLE, "t"), (SILENCE_WINDOW_MINUTES, bad)]))
                    .is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn the_sweep_merchant_quota_is_unset_or_a_positive_number() {
        let c = |v: &[(&str, &str)]| Config::from_lookup(lookup(v));
        assert_eq!(c(&[(TABLE, "t")]).unwrap().sweep_merchant_quota, None);
        let q = c(&[(TABLE, "t"), (SWEEP_MERCHANT_QUOTA, "50")]).unwrap();
        assert_eq!(q.sweep_merchant_quota, Some(50));
        for bad in ["0", "-1", "lots"] {
            let err = c(&[(TABLE, "t"), (SWEEP_MERCHANT_QUOTA, bad)]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: SWEEP_MERCHANT_QUOTA,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn warm_up_is_off_unless_asked_for_and_anything_else_is_refused() {
        let c = |v: &[(&str, &str)]| Config::from_lookup(lookup(v));
        assert!(!c(&[(TABLE, "t")]).unwrap().warm_up);
        assert!(!c(&[(TABLE, "t"), (WARM_UP, "off")]).unwrap().warm_up);
        assert!(c(&[(TABLE, "t"), (WARM_UP, " on ")]).unwrap().warm_up);
        let err = c(&[(TABLE, "t"), (WARM_UP, "yes")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { key: WARM_UP, .. }),
            "{err}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_lookup(lookup(&[
            (TABLE, "t"),
            (KEY_CACHE_TTL_SECONDS, "5"),
            (PUBLIC_BASE_URL, "https://api.example.com/"),
        ]))
        .unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.key_cache_ttl, Duration::from_secs(5));
        assert_eq!(c.merchant_cache_ttl, Duration::from_secs(60));
        assert_eq!(
            c.public_base_url.as_deref(),
            Some("https://api.example.com")
        );
        assert!(c.signing_key().is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_lookup(lookup(&[(TABLE, "t"), (KEY_CACHE_TTL_SECONDS, "soon")]))
            .unwrap_err();
        assert!(err.to_string().contains(KEY_CACHE_TTL_SECONDS));
        let err =
            Config::from_lookup(lookup(&[(TABLE, "t"), (PUBLIC_BASE_URL, "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains(PUBLIC_BASE_URL));
        let err = Config::from_lookup(lookup(&[(TABLE, "t"), (SIGNING_KEY, "short")])).unwrap_err();
        assert!(err.to_string().contains(SIGNING_KEY));
    }
}
