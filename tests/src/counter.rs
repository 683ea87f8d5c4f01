//! An SDK interceptor that counts calls and attempts per operation, to assert how many AWS calls an
//! event costs (and that the happy path retries nothing).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<Mutex<BTreeMap<String, u32>>>,
    attempts: Arc<Mutex<BTreeMap<String, u32>>>,
}

fn op(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}.{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl CallCounter {
    /// Calls per `Service.Operation` since the last reset.
    pub fn calls(&self) -> BTreeMap<String, u32> {
        self.calls.lock().unwrap().clone()
    }

    pub fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    /// Attempts beyond the first, across all operations.
    pub fn retries(&self) -> u32 {
        let calls = self.calls.lock().unwrap();
        let attempts = self.attempts.lock().unwrap();
        attempts
            .iter()
            .map(|(k, a)| a.saturating_sub(*calls.get(k).unwrap_or(&0)))
            .sum()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
        self.attempts.lock().unwrap().clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.calls.lock().unwrap().entry(op(cfg)).or_default() += 1;
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.attempts.lock().unwrap().entry(op(cfg)).or_default() += 1;
        Ok(())
    }
}

/// A DynamoDB client and an SES client (retries off, as in production) that report to `counter`.
pub fn counted_clients(
    sdk: &aws_config::SdkConfig,
    counter: &CallCounter,
) -> (aws_sdk_dynamodb::Client, aws_sdk_sesv2::Client) {
    let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(counter.clone())
        .build();
    let ses = aws_sdk_sesv2::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .interceptor(counter.clone())
        .build();
    (
        aws_sdk_dynamodb::Client::from_conf(ddb),
        aws_sdk_sesv2::Client::from_conf(ses),
    )
}
