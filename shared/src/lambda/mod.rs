//! The Lambda edge: the event shapes a function receives ([`trigger`]) and the errors it returns
//! to the runtime ([`error`]).

pub mod error;
pub mod trigger;
