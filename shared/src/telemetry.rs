//! One tracing initialisation for every function and tool.
//!
//! On Lambda (detected by `AWS_LAMBDA_FUNCTION_NAME`) logs are JSON lines with the current span's
//! fields (merchant id, order id, request id) flattened in; elsewhere they are compact text.
//! The level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if on_lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    // A second init (tests, tools) keeps the first subscriber; that is not an error.
    drop(result);
}
