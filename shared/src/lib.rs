//! Aftercare's common crate.
//!
//! * [`domain`]: plain types and decisions (orders, customers, merchants, money, loyalty). No AWS or
//!   Lambda imports; time is an argument, so every decision is testable.
//! * [`store`]: the DynamoDB single-table adapter. [`store::keys`] is the only place the key schema
//!   lives.
//! * [`mail`]: rendering (templates → HTML + text), MIME building and the SES v2 sender.
//! * [`send`]: the claim → send → record protocol that makes every email exactly-once where a person
//!   would notice.
//! * [`http`]: API Gateway HTTP API plumbing: JSON errors, bearer-key authentication, responses.
//! * [`trigger`]: one entry point for the event shapes a function receives.
//! * [`config`], [`telemetry`], [`aws`]: read once at init in every function's `main`.

pub mod app;
pub mod aws;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod mail;
pub mod retry;
pub mod send;
pub mod store;
pub mod subscriptions;
pub mod sweep;
pub mod telemetry;
pub mod token;
pub mod trigger;
pub mod webhooks;

pub use clock::{Clock, SystemClock};
pub use config::Config;
