//! Crashes at the wire: an HTTP client in front of the real one that numbers every request the
//! SDK clients of a process send and, when told to, ends the whole process (`abort`, as a Lambda
//! sandbox is killed: no destructor, no flush, no answer) just before the chosen request leaves or
//! just after its answer came back. The crash-anywhere test runs each function in a child process
//! (`src/bin/crash_child.rs`) over this client, once per crash point.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable naming the crash point: `<request number>:<before|after>`.
pub const CRASH_AT: &str = "AFTERCARE_TEST_CRASH_AT";

/// When the process ends, relative to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The request never leaves.
    Before,
    /// The server handled it; its answer dies with the process.
    After,
}

impl Moment {
    pub fn as_str(&self) -> &'static str {
        match self {
            Moment::Before => "before",
            Moment::After => "after",
        }
    }
}

/// Where a process ends: before or after its `request`-th request (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    pub request: usize,
    pub moment: Moment,
}

impl CrashPoint {
    /// The value of [`CRASH_AT`] for this point.
    pub fn env_value(&self) -> String {
        format!("{}:{}", self.request, self.moment.as_str())
    }

    /// Reads [`CRASH_AT`]'s value.
    pub fn parse(value: &str) -> Option<Self> {
        let (n, moment) = value.split_once(':')?;
        let moment = match moment {
            "before" => Moment::Before,
            "after" => Moment::After,
            _ => return None,
        };
        Some(Self {
            request: n.parse().ok()?,
            moment,
        })
    }
}

/// The counting, crashing HTTP client; clone it into every SDK client of the process.
#[derive(Debug, Clone)]
pub struct Crashing {
    inner: SharedHttpClient,
    at: Option<CrashPoint>,
    count: Arc<AtomicUsize>,
}

impl Crashing {
    pub fn new(inner: SharedHttpClient, at: Option<CrashPoint>) -> Self {
        Self {
            inner,
            at,
            count: Arc::default(),
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl HttpClient for Crashing {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            inner: self.inner.http_connector(settings, components),
            at: self.at,
            count: self.count.clone(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    inner: SharedHttpConnector,
    at: Option<CrashPoint>,
    count: Arc<AtomicUsize>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        match self.at {
            Some(at) if at.request == n && at.moment == Moment::Before => std::process::abort(),
            Some(at) if at.request == n => {
                let answered = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = answered.await;
                    std::process::abort()
                })
            }
            _ => self.inner.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_read_back_what_they_write() {
        for moment in [Moment::Before, Moment::After] {
            let at = CrashPoint { request: 7, moment };
            assert_eq!(CrashPoint::parse(&at.env_value()), Some(at));
        }
        for bad in ["", "7", "x:before", "7:during", ":after"] {
            assert_eq!(CrashPoint::parse(bad), None, "{bad}");
        }
    }
}
