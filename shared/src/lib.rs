//! Aftercare's common crate, in layers that import only downwards (the README's architecture
//! section draws them; `scripts/layers.py` checks that no two modules import each other and that
//! the domain and the ports stay pure):
//!
//! * [`domain`]: plain types and decisions (orders, customers, merchants, money, loyalty) and the
//!   persisted state machines as enums: the send identity and record ([`domain::send`]), the
//!   follow-up's status and decisions. No AWS, Lambda or HTTP imports; time is an argument.
//! * [`ports`]: the small traits the use-cases need (send ledger, mailer, order book, due work,
//!   clock) and the errors they answer with.
//! * [`usecases`]: what the functions do, over the ports: placing an order ([`usecases::orders`]),
//!   the claim → send → record protocol ([`usecases::send`], the only caller of a mailer), the
//!   sweep driver ([`usecases::sweep`]), storing a subscription.
//! * [`adapters`]: the outside world, implementing the ports. [`adapters::store`] is the DynamoDB
//!   single-table adapter ([`adapters::store::keys`] is the only place the key schema lives);
//!   [`adapters::mail`] renders, builds MIME and sends through SES v2; [`adapters::events`] and
//!   [`adapters::webhooks`] publish to the merchant; [`adapters::aws`] builds the SDK clients.
//! * [`http`]: API Gateway HTTP API plumbing: JSON errors, bearer-key authentication, responses;
//!   each use-case error is mapped to a response once, here.
//! * [`lambda`]: the event shapes a function receives and the errors it returns to the runtime.
//! * [`app`]: the composition root; [`runtime`]: the one Lambda shell every function runs in;
//!   [`links`]: every signed link in emails and pages.
//! * `testing` (tests and the `testing` feature only): in-memory adapters of every port, faithful
//!   to conditional writes and all-or-nothing transactions, for the fast use-case tests.
//! * [`config`], [`telemetry`], [`clock`], [`token`], [`signature`], [`cache`], [`retry`]: read
//!   once at init or used by every layer.

pub mod adapters;
pub mod app;
pub mod cache;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod lambda;
pub mod links;
pub mod ports;
pub mod retry;
pub mod runtime;
pub mod signature;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod usecases;

pub use clock::{Clock, SystemClock};
pub use config::Config;
