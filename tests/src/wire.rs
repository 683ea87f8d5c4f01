//! Faults at the wire: an HTTP client in front of the real one (to moto) that numbers every request
//! the SDK clients send, and makes a chosen one fail as AWS would: throttled, a 5xx, a timeout, or
//! SES's account-level refusals. The fault comes either before the request leaves (it never
//! arrives) or after moto handled it (it arrived, the answer was lost), once or for every later
//! request to the same service. Unlike response mocks, this reaches every call of every operation
//! without naming them.
//!
//! It also shapes DynamoDB's answers the way the real service gives them and moto never does
//! ([`Shape`]): a `TransactionCanceledException` whose reasons mix `None` with
//! `TransactionConflict` or `ConditionalCheckFailed` (returned before the request reaches the
//! table: nothing is written), `ProvisionedThroughputExceeded` on a write that touches an index,
//! a BatchGetItem that leaves part of its keys in `UnprocessedKeys`, and an eventually consistent
//! due-index Query that still answers an item settled a moment ago and misses one just written.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use std::collections::HashMap;
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
    /// The DynamoDB answer being shaped, requests it matched so far, and how many it shaped.
    shape: Option<Shape>,
    matched: usize,
    shaped: usize,
    /// The actions of every TransactWriteItems since the last `arm`, in order.
    transactions: Vec<Vec<String>>,
    /// Writes since the last `arm` that set or remove an index key attribute.
    index_writes: usize,
    /// Every item a due-index Query answered since the last `arm`, by (PK, SK): what a stale
    /// replica may still answer after the item was settled.
    due_seen: HashMap<(String, String), Value>,
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

    /// Shapes DynamoDB's answers from now on as `shape` says (`None`: as moto gives them). Keeps
    /// the requests seen and the due-index items remembered; starts the shape's counts afresh.
    pub fn shape(&self, shape: Option<Shape>) {
        let mut s = self.state.lock().unwrap();
        s.shape = shape;
        s.matched = 0;
        s.shaped = 0;
    }

    /// How many answers the current shape changed.
    pub fn shaped(&self) -> usize {
        self.state.lock().unwrap().shaped
    }

    /// Each TransactWriteItems since the last `arm`: its actions in order, as `Put <SK prefix>`,
    /// `Update <SK prefix>`, `ConditionCheck <SK prefix>` or `Delete <SK prefix>`.
    pub fn transactions(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().transactions.clone()
    }

    /// How many writes since the last `arm` set or removed an index key attribute (what
    /// [`Shape::Throughput`] counts).
    pub fn index_writes(&self) -> usize {
        self.state.lock().unwrap().index_writes
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
        let body: Option<Value> = (service == Service::DynamoDb)
            .then(|| request.body().bytes())
            .flatten()
            .and_then(|b| serde_json::from_slice(b).ok());
        if let (Some(body), "DynamoDB.TransactWriteItems") = (&body, op.as_str()) {
            self.state.lock().unwrap().transactions.push(actions(body));
        }
        if body.as_ref().is_some_and(|b| writes_index(&op, b)) {
            self.state.lock().unwrap().index_writes += 1;
        }
        if let Some(shaped) = self.shaped_call(&op, body) {
            self.state.lock().unwrap().seen.push((service, op));
            return match shaped {
                Shaped::Answer(response) => HttpConnectorFuture::ready(Ok(response)),
                Shaped::After(rewrite) => {
                    let answered = self.inner.call(request);
                    HttpConnectorFuture::new(async move { reshape(answered.await?, rewrite).await })
                }
            };
        }
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

/// A DynamoDB answer as the real service gives it and moto never does. Counts (`nth`, 1-based)
/// start at [`WireFaults::shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The `nth` TransactWriteItems is cancelled before it reaches the table (nothing written):
    /// `TransactionCanceledException` with one reason per action, in order. With `persist`, every
    /// later TransactWriteItems is cancelled the same way until the shape changes.
    Cancel {
        nth: usize,
        reason: Reason,
        persist: bool,
    },
    /// The `nth` write that touches an index's key attributes (`DUEPK`/`GSI1PK` set or removed)
    /// is refused for throughput before it reaches the table: a PutItem/UpdateItem/DeleteItem with
    /// `ProvisionedThroughputExceededException`, a TransactWriteItems cancelled with
    /// `ProvisionedThroughputExceeded` on those actions. With `persist`, every later one as well.
    Throughput { nth: usize, persist: bool },
    /// The `nth` BatchGetItem is handled, then the second half of its keys is answered as
    /// `UnprocessedKeys` (their items taken out of `Responses`), as under a partial throttle or the
    /// 16 MB response limit.
    Unprocessed { nth: usize },
    /// Every Query of the `due` index is handled, then answered as a replica that lags: the items
    /// earlier due-index Queries answered and that are no longer in the index are answered again
    /// (`ghosts`), and the first `hide` items not answered before are left out.
    StaleDue { ghosts: bool, hide: usize },
}

/// Why a cancelled transaction's action failed (the other actions answer `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `TransactionConflict` on the last action: another transaction held one of its items.
    Conflict,
    /// `ConditionalCheckFailed` on the action at this 0-based position.
    ConditionFailed(usize),
}

/// What a shaped call answers.
enum Shaped {
    /// This answer, before the request reaches the server.
    Answer(HttpResponse),
    /// The server's answer, rewritten.
    After(Rewrite),
}

enum Rewrite {
    /// Move the second half of these keys (the request's `RequestItems`) to `UnprocessedKeys`.
    Unprocessed(Value),
    /// Answer again these items of earlier due-index answers, and leave out the first `hide` new
    /// ones; `ghosts` off: none answered again. The query's attribute values pick the partitions.
    Stale {
        state: Arc<Mutex<State>>,
        values: Vec<String>,
        ghosts: bool,
    },
}

/// The actions of a TransactWriteItems request body.
fn actions(body: &Value) -> Vec<String> {
    body["TransactItems"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let (kind, action) = item
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .map(|(k, v)| (k.as_str(), v))
                        .unwrap_or(("?", &Value::Null));
                    let key = if action["Item"].is_object() {
                        &action["Item"]
                    } else {
                        &action["Key"]
                    };
                    let sk = key["SK"]["S"].as_str().unwrap_or_default();
                    let prefix = sk.split('#').next().unwrap_or_default();
                    format!("{kind} {prefix}")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an action or a write request sets or removes an index key attribute.
fn touches_index(v: &Value) -> bool {
    let text = v.to_string();
    text.contains("DUEPK") || text.contains("GSI1PK")
}

/// Whether `body` of the DynamoDB operation `op` writes an index key attribute.
fn writes_index(op: &str, body: &Value) -> bool {
    match op {
        "DynamoDB.TransactWriteItems" => body["TransactItems"]
            .as_array()
            .is_some_and(|items| items.iter().any(touches_index)),
        "DynamoDB.PutItem" | "DynamoDB.UpdateItem" | "DynamoDB.DeleteItem" => touches_index(body),
        _ => false,
    }
}

fn dynamodb_error(code: &str, body: Value) -> HttpResponse {
    let mut body = body;
    body["__type"] = format!("com.amazonaws.dynamodb.v20120810#{code}").into();
    let mut response = HttpResponse::new(
        StatusCode::try_from(400).unwrap(),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

/// `TransactionCanceledException` with `reasons` (`Code`, `Message`), one per action, in order.
fn cancelled(reasons: &[(&str, Option<&str>)]) -> HttpResponse {
    let codes: Vec<&str> = reasons.iter().map(|(c, _)| *c).collect();
    let reasons: Vec<Value> = reasons
        .iter()
        .map(|(code, message)| match message {
            Some(m) => json!({"Code": code, "Message": m}),
            None => json!({"Code": code}),
        })
        .collect();
    dynamodb_error(
        "TransactionCanceledException",
        json!({
            "Message": format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ),
            "CancellationReasons": reasons,
        }),
    )
}

const GSI_THROUGHPUT: &str = "The level of configured provisioned throughput for one or more \
    global secondary indexes of the table was exceeded. Consider increasing your provisioning \
    level for the under-provisioned global secondary indexes with the UpdateTable API";

impl FaultyConnector {
    /// The shaped answer of this request, if the current shape takes it.
    fn shaped_call(&self, op: &str, body: Option<Value>) -> Option<Shaped> {
        let body = body?;
        let mut s = self.state.lock().unwrap();
        let shape = s.shape?;
        match (shape, op) {
            (
                Shape::Cancel {
                    nth,
                    reason,
                    persist,
                },
                "DynamoDB.TransactWriteItems",
            ) => {
                s.matched += 1;
                if s.matched != nth && !(persist && s.matched > nth) {
                    return None;
                }
                s.shaped += 1;
                let n = body["TransactItems"].as_array().map_or(0, Vec::len);
                let reasons: Vec<(&str, Option<&str>)> = (0..n)
                    .map(|i| match reason {
                        Reason::Conflict if i + 1 == n => (
                            "TransactionConflict",
                            Some("Transaction is ongoing for the item"),
                        ),
                        Reason::ConditionFailed(at) if at == i => (
                            "ConditionalCheckFailed",
                            Some("The conditional request failed"),
                        ),
                        _ => ("None", None),
                    })
                    .collect();
                Some(Shaped::Answer(cancelled(&reasons)))
            }
            (
                Shape::Throughput { nth, persist },
                "DynamoDB.TransactWriteItems"
                | "DynamoDB.PutItem"
                | "DynamoDB.UpdateItem"
                | "DynamoDB.DeleteItem",
            ) => {
                if !writes_index(op, &body) {
                    return None;
                }
                let transaction = op == "DynamoDB.TransactWriteItems";
                let items: Vec<Value> = if transaction {
                    body["TransactItems"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                } else {
                    vec![body]
                };
                s.matched += 1;
                if s.matched != nth && !(persist && s.matched > nth) {
                    return None;
                }
                s.shaped += 1;
                Some(Shaped::Answer(if transaction {
                    let reasons: Vec<(&str, Option<&str>)> = items
                        .iter()
                        .map(|i| {
                            if touches_index(i) {
                                ("ProvisionedThroughputExceeded", Some(GSI_THROUGHPUT))
                            } else {
                                ("None", None)
                            }
                        })
                        .collect();
                    cancelled(&reasons)
                } else {
                    dynamodb_error(
                        "ProvisionedThroughputExceededException",
                        json!({"message": GSI_THROUGHPUT}),
                    )
                }))
            }
            (Shape::Unprocessed { nth }, "DynamoDB.BatchGetItem") => {
                s.matched += 1;
                if s.matched != nth {
                    return None;
                }
                s.shaped += 1;
                Some(Shaped::After(Rewrite::Unprocessed(body)))
            }
            (Shape::StaleDue { ghosts, .. }, "DynamoDB.Query")
                if body["IndexName"].as_str() == Some("due") =>
            {
                let values = body["ExpressionAttributeValues"]
                    .as_object()
                    .map(|o| {
                        o.values()
                            .filter_map(|v| v["S"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                Some(Shaped::After(Rewrite::Stale {
                    state: self.state.clone(),
                    values,
                    ghosts,
                }))
            }
            _ => None,
        }
    }
}

/// The key of an item (its `PK` and `SK` strings).
fn item_key(item: &Value) -> (String, String) {
    let s = |name: &str| item[name]["S"].as_str().unwrap_or_default().to_owned();
    (s("PK"), s("SK"))
}

/// `response`'s body rewritten as `rewrite` says (headers kept, but the length and checksum of
/// the old body).
async fn reshape(response: HttpResponse, rewrite: Rewrite) -> Result<HttpResponse, ConnectorError> {
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let bytes = aws_smithy_types::byte_stream::ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|e| ConnectorError::io(e.into()))?
        .into_bytes();
    let mut answer: Value = match serde_json::from_slice(&bytes) {
        Ok(v) if status.is_success() => v,
        _ => {
            return Ok(rebuild(status, &headers, bytes.to_vec()));
        }
    };
    match rewrite {
        Rewrite::Unprocessed(request) => {
            let mut unprocessed = serde_json::Map::new();
            for (table, wanted) in request["RequestItems"].as_object().into_iter().flatten() {
                let keys = wanted["Keys"].as_array().cloned().unwrap_or_default();
                let moved: Vec<Value> = keys[keys.len() / 2..].to_vec();
                if moved.is_empty() {
                    continue;
                }
                let moved_keys: Vec<(String, String)> = moved.iter().map(item_key).collect();
                if let Some(items) = answer["Responses"][table].as_array_mut() {
                    items.retain(|i| !moved_keys.contains(&item_key(i)));
                }
                let mut left = wanted.clone();
                left["Keys"] = Value::Array(moved);
                unprocessed.insert(table.clone(), left);
            }
            answer["UnprocessedKeys"] = Value::Object(unprocessed);
        }
        Rewrite::Stale {
            state,
            values,
            ghosts,
        } => {
            let mut s = state.lock().unwrap();
            let Some(Shape::StaleDue { hide, .. }) = s.shape else {
                return Ok(rebuild(status, &headers, bytes.to_vec()));
            };
            let mut items = answer["Items"].as_array().cloned().unwrap_or_default();
            let answered: Vec<(String, String)> = items.iter().map(item_key).collect();
            let mut hidden = 0;
            items.retain(|i| {
                let fresh = !s.due_seen.contains_key(&item_key(i));
                let hide_it = fresh && hidden < hide;
                if hide_it {
                    hidden += 1;
                }
                !hide_it
            });
            let mut added = 0;
            if ghosts {
                for (key, item) in &s.due_seen {
                    let partition = item["DUEPK"]["S"].as_str().unwrap_or_default();
                    if !answered.contains(key) && values.iter().any(|v| v == partition) {
                        items.push(item.clone());
                        added += 1;
                    }
                }
            }
            for item in &items {
                s.due_seen.insert(item_key(item), item.clone());
            }
            if let Some(Shape::StaleDue { hide, ghosts }) = s.shape {
                s.shape = Some(Shape::StaleDue {
                    hide: hide - hidden,
                    ghosts,
                });
            }
            s.shaped += hidden + added;
            items.sort_by(|a, b| a["DUESK"]["S"].as_str().cmp(&b["DUESK"]["S"].as_str()));
            let count = items.len();
            answer["Items"] = Value::Array(items);
            answer["Count"] = count.into();
        }
    }
    Ok(rebuild(status, &headers, answer.to_string().into_bytes()))
}

fn rebuild(status: StatusCode, headers: &[(String, String)], body: Vec<u8>) -> HttpResponse {
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("x-amz-crc32") {
            response.headers_mut().insert(k.clone(), v.clone());
        }
    }
    response
}
