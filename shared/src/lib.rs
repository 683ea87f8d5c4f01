//! Aftercare's common crate, in layers that import only downwards (see the README's architecture
//! section):
//!
//! * [`domain`]: plain types and decisions (orders, customers, merchants, money, loyalty, the
//!   persisted state machines). No AWS, Lambda or HTTP imports; time is an argument.
//! * [`usecases`]: what the functions do, over the domain and the adapters: the claim → send →
//!   record protocol ([`usecases::send`]), the sweep driver ([`usecases::sweep`]), storing a
//!   subscription.
//! * [`adapters`]: the outside world. [`adapters::store`] is the DynamoDB single-table adapter
//!   ([`adapters::store::keys`] is the only place the key schema lives); [`adapters::mail`] renders,
//!   builds MIME and sends through SES v2; [`adapters::events`] and [`adapters::webhooks`] publish
//!   to the merchant; [`adapters::aws`] builds the SDK clients.
//! * [`http`]: API Gateway HTTP API plumbing: JSON errors, bearer-key authentication, responses.
//! * [`lambda`]: the Lambda edge: the event shapes a function receives and the errors it returns.
//! * [`app`]: the composition root every function's `main` builds once.
//! * [`config`], [`telemetry`], [`clock`], [`token`], [`cache`], [`retry`]: read once at init or
//!   used by every layer.

pub mod adapters;
pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod lambda;
pub mod ports;
pub mod retry;
pub mod signature;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod usecases;

pub use clock::{Clock, SystemClock};
pub use config::Config;
