//! What every function builds once at init and borrows in every invocation: the store, the mailer,
//! the renderer, the merchant directory and tenancy (both cached) and the clock.

use crate::adapters::mail::{Renderer, SesMailer};
use crate::adapters::store::Store;
use crate::adapters::store::merchants::Merchants;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::http::auth::Tenancy;
use crate::usecases::send::Courier;
use std::sync::Arc;

pub struct App {
    pub store: Store,
    pub mailer: SesMailer,
    pub renderer: Renderer,
    /// Merchants by id, for every trigger (cached).
    pub merchants: Arc<Merchants>,
    /// API keys and signed webhooks, for the HTTP routes.
    pub tenancy: Tenancy,
    pub clock: Arc<dyn Clock>,
    pub events: crate::adapters::events::Events,
    /// The signed links of emails and pages, built once from the config (none where the
    /// deployment configures no signing key and public base URL).
    pub links: Option<crate::links::Links>,
    pub config: Config,
}

pub use crate::config::WARM_UP_LIMIT;

/// What [`App::warm_up`] did per service: `None` not attempted, else whether it answered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WarmUp {
    pub dynamodb: Option<Result<(), String>>,
    pub ses: Option<Result<(), String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("built-in templates failed to load: {0}")]
    Templates(#[from] crate::adapters::mail::render::RenderError),
}

impl App {
    /// Builds the app from config and the shared SDK configuration.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let clock: Arc<dyn Clock> = match &config.virtual_clock_file {
            Some(path) => Arc::new(crate::clock::FileOffsetClock::new(path)),
            None => Arc::new(SystemClock),
        };
        let events = crate::adapters::events::Events::new(
            crate::adapters::aws::eventbridge_client(sdk),
            config.event_bus.clone(),
        );
        Self::with_parts(
            config,
            crate::adapters::aws::dynamodb_client(sdk),
            crate::adapters::aws::ses_client(sdk),
            clock,
        )
        .map(|app| app.with_events(events))
    }

    /// Builds the app from explicit clients and clock (tests inject faults and virtual time here).
    pub fn with_parts(
        config: Config,
        dynamodb: aws_sdk_dynamodb::Client,
        ses: aws_sdk_sesv2::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, InitError> {
        let store = Store::new(dynamodb, config.table_name.clone());
        // Without an SDK configuration of their own, tests get a publisher with no bus.
        let events = crate::adapters::events::Events::new(
            aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::Config::builder()
                    .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                    .build(),
            ),
            None,
        );
        let merchants = Arc::new(Merchants::new(store.clone(), config.merchant_cache_ttl));
        Ok(Self {
            events,
            tenancy: Tenancy::new(store.clone(), config.key_cache_ttl, Arc::clone(&merchants)),
            merchants,
            mailer: SesMailer::new(ses, config.ses_configuration_set.clone()),
            renderer: Renderer::new()?,
            store,
            clock,
            links: crate::links::Links::from_config(&config).ok(),
            config,
        })
    }

    /// Publishes merchant-facing events with `events` (tests pass one pointed at the emulator).
    pub fn with_events(mut self, events: crate::adapters::events::Events) -> Self {
        self.events = events;
        self
    }

    /// How long send records are kept.
    pub fn retention(&self) -> crate::usecases::send::Retention {
        crate::usecases::send::Retention {
            default: self.config.email_retention,
        }
    }

    /// When a send record written `now` for `merchant` expires (its TTL): the merchant's
    /// message-log retention, else the deployment's.
    pub fn send_expiry(&self, merchant: &crate::domain::Merchant, now: jiff::Timestamp) -> i64 {
        self.retention().send_expiry(merchant, now)
    }

    /// With `AFTERCARE_WARM_UP=on`, opens the DynamoDB and SES connections during init, both at
    /// once and each bounded by [`Config::warm_up_limit`], so the first event finds them in the
    /// pool. A failure is logged and changes nothing: the first event connects as it would have.
    pub async fn warm_up(&self) -> WarmUp {
        if !self.config.warm_up {
            return WarmUp::default();
        }
        let limit = self.config.warm_up_limit;
        let started = std::time::Instant::now();
        let (table, ses) = tokio::join!(
            tokio::time::timeout(limit, self.store.warm_up()),
            tokio::time::timeout(limit, self.mailer.warm_up())
        );
        let outcome = WarmUp {
            dynamodb: Some(match table {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {limit:?}")),
            }),
            ses: match ses {
                Ok(Ok(true)) => Some(Ok(())),
                Ok(Ok(false)) => None,
                Ok(Err(e)) => Some(Err(e)),
                Err(_) => Some(Err(format!("no answer within {limit:?}"))),
            },
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match (&outcome.dynamodb, &outcome.ses) {
            (Some(Ok(())), None | Some(Ok(()))) => {
                tracing::info!(ms, ses = outcome.ses.is_some(), "connections warmed");
            }
            (table, ses) => tracing::warn!(
                ms,
                dynamodb = ?table.as_ref().and_then(|r| r.as_ref().err()),
                ses = ?ses.as_ref().and_then(|r| r.as_ref().err()),
                "warm-up incomplete; the first event connects instead"
            ),
        }
        outcome
    }

    pub fn courier(&self) -> Courier<'_> {
        Courier {
            store: &self.store,
            mailer: &self.mailer,
            clock: self.clock.as_ref(),
            silence: self.config.silence_window,
        }
    }

    /// What the shared sweep driver runs with.
    pub fn sweeper(&self) -> crate::usecases::sweep::Sweeper<'_> {
        crate::usecases::sweep::Sweeper {
            store: &self.store,
            clock: self.clock.as_ref(),
            merchant_quota: self.config.sweep_merchant_quota,
            concurrency: self.config.sweep_concurrency,
        }
    }
}
