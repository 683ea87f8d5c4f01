//! One tracing initialisation for every function and tool.
//!
//! On Lambda (detected by `AWS_LAMBDA_FUNCTION_NAME`) logs are JSON lines with the current span's
//! fields (merchant id, order id, request id) flattened in; elsewhere they are compact text.
//! The level comes from `RUST_LOG` as a single level (`error`, `warn`, `info`, `debug`, `trace`;
//! default `info`). Per-module directives are not supported on purpose: the `env-filter` feature
//! links a regex engine, about 1 MB of every bootstrap, for something Lambda log levels cover.

use std::str::FromStr;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt;

/// The level named by `RUST_LOG` (the last `=level` of a directive list is honoured too).
pub fn level_from(value: Option<&str>) -> LevelFilter {
    value
        .map(|v| v.rsplit(['=', ',']).next().unwrap_or(v).trim())
        .and_then(|v| LevelFilter::from_str(v).ok())
        .unwrap_or(LevelFilter::INFO)
}

pub fn init() {
    let level = level_from(std::env::var("RUST_LOG").ok().as_deref());
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let result = if on_lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    // A second init (tests, tools) keeps the first subscriber; that is not an error.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_from(None), LevelFilter::INFO);
        assert_eq!(level_from(Some("debug")), LevelFilter::DEBUG);
        assert_eq!(level_from(Some("aftercare=warn")), LevelFilter::WARN);
        assert_eq!(level_from(Some("nonsense")), LevelFilter::INFO);
    }
}
