//! survey-sender: sends the post-delivery journey that shipment-update schedules, and closes the
//! loop on what customers answer.
//!
//! Triggers (one code path after parsing):
//! * EventBridge schedule (`Scheduled Event`, every 15 minutes): sweeps the due index for
//!   follow-ups (usage tips, feedback survey, cross-sell, review request) and sends them with
//!   bounded concurrency under the configured SES rate. Marketing rules (suppression, unsubscribe,
//!   survey throttle, quiet hours in the recipient's zone, frequency cap) skip or defer; every
//!   decision is kept on the follow-up. Safe to run concurrently and to miss runs.
//! * HTTP API (signed links, no key): `GET /v1/survey/{token}` shows the score page (it records
//!   nothing, so link scanners that prefetch every score cannot vote); `POST` records the answer.
//!   `GET /v1/unsubscribe/{token}` shows the subscription state; `POST` unsubscribes (RFC 8058
//!   one-click) or resubscribes.
//! * HTTP API (Bearer key): `GET /v1/feedback?from=&to=` — score, response rate, bands, answers.
//! * HTTP API (Bearer key): the catalogue the follow-ups talk about, `PUT`, `GET`, `DELETE
//!   /v1/products/{sku}` and the bulk upsert `POST /v1/products` (see [`products`]).
//!
//! * HTTP API (Bearer key): a customer's data export and erasure, by customer id or email
//!   address, and the status of a privacy request (see [`privacy`]).
//!
//! The same schedule then decides sends parked `ambiguous` whose silence window ended without
//! SES's event (see [`silence`]): transactional ones are sent once more, marketing ones closed as
//! unsent.
//!
//! Then it sweeps loyalty notices (see [`loyalty`]): referral rewards that became
//! available, points about to expire (a notice 14 days before) and the expiry itself; then it
//! carries on erasures that outlived their request and erases customers whose retention period
//! ended (see [`privacy`]).
//!
//! A detractor answer alerts the merchant once per order and cancels the order's pending review
//! request and cross-sell; a promoter answer brings the review request forward.

mod compose;
mod feedback;
pub mod loyalty;
mod pages;
mod prefs;
pub mod privacy;
pub mod products;
pub mod silence;
mod sweep;

use aftercare::config::ConfigError;
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::runtime::Function;
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use serde_json::Value;
use std::borrow::Cow;

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep, sweep_follow_ups};

pub use aftercare::runtime::SCHEDULE_DETAIL_TYPE;
pub const ROUTE_FEEDBACK: &str = "GET /v1/feedback";
pub const ROUTE_SURVEY_PAGE: &str = "GET /v1/survey/{token}";
pub const ROUTE_SURVEY_ANSWER: &str = "POST /v1/survey/{token}";
pub const ROUTE_UNSUBSCRIBE_PAGE: &str = "GET /v1/unsubscribe/{token}";
pub const ROUTE_UNSUBSCRIBE: &str = "POST /v1/unsubscribe/{token}";
pub const ROUTE_PREFERENCES_PAGE: &str = "GET /v1/preferences/{token}";
pub const ROUTE_PREFERENCES_SAVE: &str = "POST /v1/preferences/{token}";
pub use prefs::{ROUTE_GET_PREFERENCES, ROUTE_PUT_PREFERENCES};
pub use privacy::{
    ROUTE_ERASE_CUSTOMER, ROUTE_ERASE_EMAIL, ROUTE_EXPORT_CUSTOMER, ROUTE_EXPORT_EMAIL,
    ROUTE_REQUEST,
};
pub use products::{
    ROUTE_DELETE_PRODUCT, ROUTE_GET_PRODUCT, ROUTE_PUT_PRODUCT, ROUTE_PUT_PRODUCTS,
};
pub const ROUTES: [&str; 18] = [
    ROUTE_FEEDBACK,
    ROUTE_SURVEY_PAGE,
    ROUTE_SURVEY_ANSWER,
    ROUTE_UNSUBSCRIBE_PAGE,
    ROUTE_UNSUBSCRIBE,
    ROUTE_PREFERENCES_PAGE,
    ROUTE_PREFERENCES_SAVE,
    ROUTE_GET_PREFERENCES,
    ROUTE_PUT_PREFERENCES,
    ROUTE_PUT_PRODUCT,
    ROUTE_GET_PRODUCT,
    ROUTE_DELETE_PRODUCT,
    ROUTE_PUT_PRODUCTS,
    ROUTE_EXPORT_CUSTOMER,
    ROUTE_EXPORT_EMAIL,
    ROUTE_ERASE_CUSTOMER,
    ROUTE_ERASE_EMAIL,
    ROUTE_REQUEST,
];
pub use aftercare::links::UNSUBSCRIBE_LINK_DAYS;
pub use aftercare::links::purpose::{PREFERENCES, SURVEY, UNSUBSCRIBE};

pub use aftercare::links::Links;

/// survey-sender in the shared Lambda shell ([`aftercare::runtime`]), with the links its emails
/// and pages sign.
pub struct SurveySender<'a> {
    pub links: Cow<'a, Links>,
}

impl Function for SurveySender<'_> {
    fn init(app: &App) -> Result<Self, ConfigError> {
        Links::from_config(&app.config).map(|links| Self {
            links: Cow::Owned(links),
        })
    }

    async fn http(
        &self,
        app: &App,
        req: &ApiGatewayV2httpRequest,
        rid: &str,
        deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        http_inner(app, &self.links, req, rid, deadline).await
    }

    async fn schedule(&self, app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
        let report = Box::pin(sweep(app, &self.links, deadline)).await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    }
}

/// Handles one invocation.
pub async fn handle(
    app: &App,
    links: &Links,
    payload: Value,
    request_id: &str,
    deadline: Deadline,
) -> Result<Value, HandlerError> {
    let function = SurveySender {
        links: Cow::Borrowed(links),
    };
    aftercare::runtime::dispatch(&function, app, payload, request_id, deadline).await
}

async fn http_inner(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    rid: &str,
    deadline: Deadline,
) -> aws_lambda_events::apigw::ApiGatewayV2httpResponse {
    let route = http::route_key(req);
    let token = req
        .path_parameters
        .get("token")
        .map(String::as_str)
        .unwrap_or_default();
    let visit = pages::Visit {
        app,
        links,
        token,
        rid,
    };
    match route.as_str() {
        ROUTE_SURVEY_PAGE => pages::survey_page(app, links, token, rid).await,
        ROUTE_SURVEY_ANSWER => pages::survey_answer(app, links, req, token, rid, deadline).await,
        ROUTE_UNSUBSCRIBE_PAGE => pages::unsubscribe_page(visit).await,
        ROUTE_UNSUBSCRIBE => pages::unsubscribe(visit, req).await,
        ROUTE_PREFERENCES_PAGE => pages::preferences_page(visit).await,
        ROUTE_PREFERENCES_SAVE => pages::preferences_save(visit, req).await,
        ROUTE_GET_PREFERENCES | ROUTE_PUT_PREFERENCES => {
            http::respond(prefs::preferences(app, req).await, rid)
        }
        ROUTE_FEEDBACK => http::respond(feedback::feedback(app, req).await.map(|b| (200, b)), rid),
        ROUTE_PUT_PRODUCT | ROUTE_GET_PRODUCT | ROUTE_DELETE_PRODUCT | ROUTE_PUT_PRODUCTS => {
            http::respond(products::products(app, req).await, rid)
        }
        ROUTE_EXPORT_CUSTOMER
        | ROUTE_EXPORT_EMAIL
        | ROUTE_ERASE_CUSTOMER
        | ROUTE_ERASE_EMAIL
        | ROUTE_REQUEST => http::respond(privacy::route(app, req, deadline).await, rid),
        _ => ApiError::not_found("the route").into_response(rid),
    }
}
