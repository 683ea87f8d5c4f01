//! Errors a handler returns to the Lambda runtime: stable `errorType`s, no internals.

use lambda_runtime::Diagnostic;

/// An invocation failure the runtime reports (and, for asynchronous triggers, retries and finally
/// sends to the dead-letter queue). `error_type` is stable for alarms; `message` is safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    pub error_type: &'static str,
    pub message: String,
}

impl HandlerError {
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<crate::adapters::store::StoreError> for HandlerError {
    /// A store failure ends the invocation: `Transient` (retry later) or `Internal`.
    fn from(e: crate::adapters::store::StoreError) -> Self {
        let error_type = if e.is_transient() {
            "Transient"
        } else {
            "Internal"
        };
        HandlerError::new(error_type, e.to_string())
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}
