//! Faults at the wire: an HTTP client in front of the real one (to moto) that numbers every request
//! the SDK clients send, and makes a chosen one fail as AWS would: throttled, a 5xx, a timeout, or
//! SES's account-level refusals. The fault comes either before the request leaves (it never
//! arrives) or after moto handled it (it arrived, the answer was lost), once or for every later
//! request to the same service. Unlike response mocks, this reaches every call of every operation
//! without naming them.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use std::sync::{Arc, Mutex};

/// How a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB `ThrottlingException` / SES `TooManyRequestsException`.
    Throttled,
    /// HTTP 500 `InternalServerError` / `InternalFailure`.
    ServerError,
    /// The connector gives up waiting (a read timeout).
    Timeout,
    /// SES only: `SendingPausedException`.
    SendingPaused,
    /// SES only: `AccountSuspendedException`.
    AccountSuspended,
    /// SES only: `MessageRejected`.
    MessageRejected,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::Throttled,
        Fault::ServerError,
        Fault::Timeout,
        Fault::SendingPaused,
        Fault::AccountSuspended,
        Fault::MessageRejected,
    ];

    /// Whether `service`'s API has this error.
    pub fn applies_to(self, service: Service) -> bool {
        match self {
            Fault::Throttled | Fault::ServerError | Fault::Timeout => true,
            _ => service == Service::Ses,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Ses,
}

/// When the fault strikes relative to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The request never arrives.
    Before,
    /// The server handled it; the answer is lost.
    After,
}

/// Which request fails, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// 1-based number of the request (counting from the last `arm`).
    pub request: usize,
    pub fault: Fault,
    pub when: When,
    /// Also fail every later request to the same service.
    pub persist: bool,
}

#[derive(Debug, Default)]
struct State {
    plan: Option<Plan>,
    /// `Service.Operation` of every request since the last `arm`, in order.
    seen: Vec<(Service, String)>,
    /// Set once the planned request failed: the service that keeps failing if `persist`.
    struck: Option<Service>,
}

/// The faulty HTTP client; clone it into every SDK client of one test.
#[derive(Debug, Clone)]
pub struct WireFaults {
    inner: SharedHttpClient,
    state: Arc<Mutex<State>>,
}

impl WireFaults {
    pub fn new(inner: SharedHttpClient) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// Starts counting afresh with `plan` (`None`: pass everything through).
    pub fn arm(&self, plan: Option<Plan>) {
        let mut s = self.state.lock().unwrap();
        *s = State {
            plan,
            ..State::default()
        };
    }

    /// The requests since the last `arm`.
    pub fn seen(&self) -> Vec<(Service, String)> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Whether the planned fault was injected.
    pub fn struck(&self) -> bool {
        self.state.lock().unwrap().struck.is_some()
    }

    /// A DynamoDB and an SES client (SES retries off, as in production) over this client.
    pub fn clients(
        &self,
        sdk: &aws_config::SdkConfig,
    ) -> (aws_sdk_dynamodb::Client, aws_sdk_sesv2::Client) {
        let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .http_client(self.clone())
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(sdk)
            .http_client(self.clone())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        (
            aws_sdk_dynamodb::Client::from_conf(ddb),
            aws_sdk_sesv2::Client::from_conf(ses),
        )
    }
}

impl HttpClient for WireFaults {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            state: self.state.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    state: Arc<Mutex<State>>,
}

fn classify(request: &HttpRequest) -> (Service, String) {
    if let Some(target) = request.headers().get("x-amz-target") {
        let op = target.rsplit('.').next().unwrap_or(target);
        return (Service::DynamoDb, format!("DynamoDB.{op}"));
    }
    let path = request.uri().split("/v2/email/").nth(1).unwrap_or_default();
    let resource = path.split(['/', '?']).next().unwrap_or_default();
    (Service::Ses, format!("SES.{resource}"))
}

fn error_response(service: Service, fault: Fault) -> HttpResponse {
    let (status, code) = match (service, fault) {
        (Service::DynamoDb, Fault::Throttled) => (400, "ThrottlingException"),
        (Service::DynamoDb, _) => (500, "InternalServerError"),
        (Service::Ses, Fault::Throttled) => (429, "TooManyRequestsException"),
        (Service::Ses, Fault::SendingPaused) => (400, "SendingPausedException"),
        (Service::Ses, Fault::AccountSuspended) => (400, "AccountSuspendedException"),
        (Service::Ses, Fault::MessageRejected) => (400, "MessageRejected"),
        (Service::Ses, _) => (500, "InternalFailure"),
    };
    let body = match service {
        Service::DynamoDb => format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected {code}"}}"#
        ),
        Service::Ses => format!(r#"{{"message":"injected {code}"}}"#),
    };
    let mut response =
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    if service == Service::Ses {
        response.headers_mut().insert("x-amzn-ErrorType", code);
    }
    response
}

fn outcome(service: Service, fault: Fault) -> Result<HttpResponse, ConnectorError> {
    match fault {
        Fault::Timeout => Err(ConnectorError::timeout("injected read timeout".into())),
        f => Ok(error_response(service, f)),
    }
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (service, op) = classify(&request);
        let strike = {
            let mut s = self.state.lock().unwrap();
            s.seen.push((service, op));
            let n = s.seen.len();
            match s.plan {
                Some(p) if n == p.request && p.fault.applies_to(service) => {
                    s.struck = Some(service);
                    Some(p)
                }
                Some(p) if p.persist && s.struck == Some(service) => Some(p),
                _ => None,
            }
        };
        match strike {
            None => self.inner.call(request),
            Some(p) if p.when == When::Before => {
                HttpConnectorFuture::ready(outcome(service, p.fault))
            }
            Some(p) => {
                let answered = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _lost = answered.await;
                    outcome(service, p.fault)
                })
            }
        }
    }
}
