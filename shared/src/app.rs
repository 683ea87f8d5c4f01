//! What every function builds once at init and borrows in every invocation: the store, the mailer,
//! the renderer, tenancy (API keys and merchants, cached) and the clock.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::http::auth::Tenancy;
use crate::mail::{Renderer, SesMailer};
use crate::send::Courier;
use crate::store::Store;
use std::sync::Arc;

pub struct App {
    pub store: Store,
    pub mailer: SesMailer,
    pub renderer: Renderer,
    pub tenancy: Tenancy,
    pub clock: Arc<dyn Clock>,
    pub events: crate::events::Events,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("built-in templates failed to load: {0}")]
    Templates(#[from] crate::mail::render::RenderError),
}

impl App {
    /// Builds the app from config and the shared SDK configuration.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let clock: Arc<dyn Clock> = match &config.virtual_clock_file {
            Some(path) => Arc::new(crate::clock::FileOffsetClock::new(path)),
            None => Arc::new(SystemClock),
        };
        let events = crate::events::Events::new(
            crate::aws::eventbridge_client(sdk),
            config.event_bus.clone(),
        );
        Self::with_parts(
            config,
            crate::aws::dynamodb_client(sdk),
            crate::aws::ses_client(sdk),
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
        let events = crate::events::Events::new(
            aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::Config::builder()
                    .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                    .build(),
            ),
            None,
        );
        Ok(Self {
            events,
            tenancy: Tenancy::new(
                store.clone(),
                config.key_cache_ttl,
                config.merchant_cache_ttl,
            ),
            mailer: SesMailer::new(ses, config.ses_configuration_set.clone()),
            renderer: Renderer::new()?,
            store,
            clock,
            config,
        })
    }

    /// Publishes merchant-facing events with `events` (tests pass one pointed at the emulator).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = events;
        self
    }

    /// When a send record written `now` for `merchant` expires (its TTL): the merchant's
    /// message-log retention, else the deployment's.
    pub fn send_expiry(&self, merchant: &crate::domain::Merchant, now: jiff::Timestamp) -> i64 {
        let retention = merchant
            .settings
            .retention
            .message_log_days
            .map(|days| std::time::Duration::from_secs(u64::from(days) * 86_400))
            .unwrap_or(self.config.email_retention);
        crate::store::keys::expires_at(now, retention)
    }

    pub fn courier(&self) -> Courier<'_> {
        Courier {
            store: &self.store,
            mailer: &self.mailer,
            clock: self.clock.as_ref(),
        }
    }
}
