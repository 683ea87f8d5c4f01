//! The one Lambda shell every function runs in. A function says what it does per trigger
//! ([`Function`]); the shell does the rest, the same way for all six:
//!
//! * init ([`serve`]): telemetry, typed config, the SDK clients, the [`App`], the optional
//!   connection warm-up, then the function's own init (its links, say), failing at init rather
//!   than on the first event;
//! * per invocation ([`dispatch`]): the event parsed into an HTTP API request or an EventBridge
//!   event, the request id, a tracing span with the ids the function records on it, the deadline
//!   from the Lambda context, the schedule's tick told apart from other events, and the HTTP
//!   response encoded.

use crate::app::{App, InitError};
use crate::config::{Config, ConfigError};
use crate::http;
use crate::lambda::error::HandlerError;
use crate::lambda::trigger::{EventEnvelope, Trigger};
use crate::usecases::send::Deadline;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::future::Future;
use tracing::Instrument;

/// The `detail-type` of the EventBridge schedule's tick (what runs a function's sweep).
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// An event this function does not take.
pub fn unexpected(detail_type: &str) -> HandlerError {
    HandlerError::new(
        "InvalidEvent",
        format!("unexpected detail-type {detail_type:?}"),
    )
}

/// What one function does with each kind of trigger. `Self` is what the function builds once at
/// init beside the [`App`] (its links, for instance).
pub trait Function: Sized + Send + Sync {
    /// Builds the function's own parts from the app's config.
    fn init(app: &App) -> Result<Self, ConfigError>;

    /// An API Gateway HTTP API request (payload v2) and its request id.
    fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        request_id: &str,
        deadline: Deadline,
    ) -> impl Future<Output = ApiGatewayV2httpResponse> + Send;

    /// An EventBridge event other than the schedule's tick.
    fn event(
        &self,
        app: &App,
        event: &EventEnvelope,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Value, HandlerError>> + Send {
        let _ = (app, deadline);
        let refused = unexpected(&event.detail_type);
        async move { Err(refused) }
    }

    /// The schedule's tick: the function's sweep.
    fn schedule(
        &self,
        app: &App,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Value, HandlerError>> + Send {
        let _ = (app, deadline);
        async { Err(unexpected(SCHEDULE_DETAIL_TYPE)) }
    }
}

/// Answers one invocation: `payload` is the raw event, `request_id` the Lambda request id.
pub async fn dispatch<F: Function>(
    function: &F,
    app: &App,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    let trigger = Trigger::parse(payload).map_err(|e| {
        tracing::error!(error = %e, "unrecognised event");
        HandlerError::new("InvalidEvent", e.to_string())
    })?;
    match trigger {
        Trigger::Http(req) => {
            let rid = http::request_id(&req, request_id).to_owned();
            let span = tracing::info_span!(
                "http",
                request_id = %rid,
                route = %http::route_key(&req),
                merchant_id = tracing::field::Empty,
                order_id = tracing::field::Empty,
            );
            // Boxed: keeps the invocation future shallow (the routes' futures are large).
            let resp = Box::pin(function.http(app, &req, &rid, deadline))
                .instrument(span)
                .await;
            Ok(serde_json::to_value(resp).unwrap_or_else(|_| json!({"statusCode": 500})))
        }
        Trigger::Event(event) => {
            let span = tracing::info_span!(
                "event",
                request_id,
                event_id = %event.id,
                detail_type = %event.detail_type,
                merchant_id = tracing::field::Empty,
                order_id = tracing::field::Empty,
            );
            async {
                if event.detail_type == SCHEDULE_DETAIL_TYPE {
                    Box::pin(function.schedule(app, deadline)).await
                } else {
                    Box::pin(function.event(app, &event, deadline)).await
                }
            }
            .instrument(span)
            .await
        }
    }
}

/// Runs function `F` until the Lambda runtime stops it.
pub async fn serve<F: Function>() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = Config::from_env()?;
    let sdk = crate::adapters::aws::load_config().await;
    let app = App::new(config, &sdk)?;
    app.warm_up().await;
    let function = F::init(&app).map_err(InitError::from)?;
    let (app, function) = (&app, &function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        dispatch(
            function,
            app,
            event.payload,
            &event.context.request_id,
            deadline,
        )
        .await
    }))
    .await
}
