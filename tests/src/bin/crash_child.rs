//! One invocation of a real function in a process of its own, for the crash-anywhere test
//! (`tests/tests/crash_anywhere.rs`): over the SDK clients of production, against the moto server
//! and table it is given, at the instant it is given, with every request numbered and the process
//! ended before or after the one named by `AFTERCARE_TEST_CRASH_AT` (see `aftercare_tests::crash`).
//!
//! `crash_child order <endpoint> <table> <at> <event.json>`: order-placed handles the event.
//! `crash_child follow-ups <endpoint> <table> <at>`: survey-sender sweeps the due follow-ups.
//!
//! When it is not crashed it prints `{"requests": <n>, "result": …}` and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test driver fails loudly

use aftercare::clock::ManualClock;
use aftercare::token::SigningKey;
use aftercare_tests::crash::{CRASH_AT, CrashPoint, Crashing};
use std::sync::Arc;
use std::time::Duration;

/// The key the children and the test sign links with.
pub const KEY: [u8; 32] = [9u8; 32];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, endpoint, table, at, rest @ ..] = args.as_slice() else {
        panic!("usage: crash_child order|follow-ups <endpoint> <table> <at> [event.json]");
    };
    let point = std::env::var(CRASH_AT)
        .ok()
        .map(|v| CrashPoint::parse(&v).unwrap_or_else(|| panic!("{CRASH_AT}={v}")));
    let wire = Crashing::new(aftercare::adapters::aws::http_client(), point);
    let sdk = aftercare_tests::sdk_config(endpoint).await;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .http_client(wire.clone())
            .build(),
    );
    let ses = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk)
            .http_client(wire.clone())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let key = SigningKey::new(&KEY).unwrap();
    let mut config = aftercare::Config::for_table(table).with_signing_key(key.clone());
    config.public_base_url = Some(aftercare_tests::BASE.into());
    config.ses_max_send_rate = 1000;
    let clock = Arc::new(ManualClock::new(at.parse().unwrap()));
    let app = aftercare::app::App::with_parts(config, ddb, ses, clock).unwrap();
    let deadline = aftercare::usecases::send::Deadline::after(Duration::from_secs(60));
    let result = match (mode.as_str(), rest) {
        ("order", [event]) => {
            let event: serde_json::Value =
                serde_json::from_slice(&std::fs::read(event).unwrap()).unwrap();
            match order_placed::handle(&app, event, "crash-child", deadline).await {
                Ok(out) => out,
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        }
        ("follow-ups", []) => {
            let links = survey_sender::Links::new(aftercare_tests::BASE, key);
            match survey_sender::sweep_follow_ups(&app, &links, deadline).await {
                Ok(report) => serde_json::to_value(report).unwrap(),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        }
        _ => panic!("unknown mode {mode} with {rest:?}"),
    };
    println!(
        "{}",
        serde_json::json!({"requests": wire.requests(), "result": result})
    );
}
