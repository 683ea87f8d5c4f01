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
//!
//! The same schedule then sweeps loyalty notices (see [`loyalty`]): referral rewards that became
//! available, points about to expire (a notice 14 days before) and the expiry itself.
//!
//! A detractor answer alerts the merchant once per order and cancels the order's pending review
//! request and cross-sell; a promoter answer brings the review request forward.

mod compose;
mod feedback;
pub mod loyalty;
mod pages;
mod prefs;
mod sweep;

use aftercare::config::ConfigError;
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::token::{self, Claims, LinkSigner, SigningKey};
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tracing::Instrument;

pub use aftercare::app::{App, InitError};
pub use sweep::{SweepReport, sweep};

pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";
pub const ROUTE_FEEDBACK: &str = "GET /v1/feedback";
pub const ROUTE_SURVEY_PAGE: &str = "GET /v1/survey/{token}";
pub const ROUTE_SURVEY_ANSWER: &str = "POST /v1/survey/{token}";
pub const ROUTE_UNSUBSCRIBE_PAGE: &str = "GET /v1/unsubscribe/{token}";
pub const ROUTE_UNSUBSCRIBE: &str = "POST /v1/unsubscribe/{token}";
pub const ROUTE_PREFERENCES_PAGE: &str = "GET /v1/preferences/{token}";
pub const ROUTE_PREFERENCES_SAVE: &str = "POST /v1/preferences/{token}";
pub use prefs::{ROUTE_GET_PREFERENCES, ROUTE_PUT_PREFERENCES};
pub const ROUTES: [&str; 9] = [
    ROUTE_FEEDBACK,
    ROUTE_SURVEY_PAGE,
    ROUTE_SURVEY_ANSWER,
    ROUTE_UNSUBSCRIBE_PAGE,
    ROUTE_UNSUBSCRIBE,
    ROUTE_PREFERENCES_PAGE,
    ROUTE_PREFERENCES_SAVE,
    ROUTE_GET_PREFERENCES,
    ROUTE_PUT_PREFERENCES,
];
/// Token purposes.
pub const SURVEY: &str = "survey";
pub const UNSUBSCRIBE: &str = "unsubscribe";
pub const PREFERENCES: &str = "preferences";
/// How long an unsubscribe link works.
pub const UNSUBSCRIBE_LINK_DAYS: i64 = 400;

/// Signs and builds the links in marketing mail.
pub struct Links(LinkSigner);

impl Links {
    pub fn new(base: &str, key: SigningKey) -> Self {
        Self(LinkSigner::new(base, key))
    }

    pub fn from_config(config: &aftercare::Config) -> Result<Self, ConfigError> {
        config.link_signer().map(Self)
    }

    pub fn verify(
        &self,
        token: &str,
        purpose: &str,
        now: Timestamp,
    ) -> Result<Claims, token::TokenError> {
        self.0.verify(token, purpose, now)
    }

    /// A one-click score link for an order's survey.
    pub fn survey(
        &self,
        merchant: &str,
        customer: &str,
        order: &str,
        score: u8,
        expires: Timestamp,
    ) -> String {
        self.0.url(
            "/v1/survey",
            &Claims {
                merchant: merchant.to_owned(),
                purpose: SURVEY.into(),
                subject: format!("{customer}/{order}"),
                value: Some(score.to_string()),
                expires: expires.as_second(),
            },
        )
    }

    /// The unsubscribe link (also the RFC 8058 one-click URL). `masked` is shown on its page.
    pub fn unsubscribe(
        &self,
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        self.customer_page(
            "/v1/unsubscribe",
            UNSUBSCRIBE,
            merchant,
            customer,
            masked,
            now,
        )
    }

    /// The signed preference page of a customer (as long-lived as the unsubscribe link).
    pub fn preferences(
        &self,
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        self.customer_page(
            "/v1/preferences",
            PREFERENCES,
            merchant,
            customer,
            masked,
            now,
        )
    }

    /// A signed link to one of a customer's own pages, valid [`UNSUBSCRIBE_LINK_DAYS`].
    fn customer_page(
        &self,
        path: &str,
        purpose: &str,
        merchant: &str,
        customer: &str,
        masked: &str,
        now: Timestamp,
    ) -> String {
        let expires = now
            .saturating_add(SignedDuration::from_hours(24 * UNSUBSCRIBE_LINK_DAYS))
            .unwrap_or(now);
        self.0.url(
            path,
            &Claims {
                merchant: merchant.to_owned(),
                purpose: purpose.into(),
                subject: customer.to_owned(),
                value: Some(masked.to_owned()),
                expires: expires.as_second(),
            },
        )
    }

    /// The path a page's form posts back to (same origin as the page).
    pub fn base(&self) -> &str {
        self.0.base()
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
    let trigger = aftercare::lambda::trigger::Trigger::parse(payload)
        .map_err(|e| HandlerError::new("InvalidEvent", e.to_string()))?;
    match trigger {
        aftercare::lambda::trigger::Trigger::Http(req) => {
            let rid = http::request_id(&req, request_id).to_owned();
            let span = tracing::info_span!("http", request_id = %rid, route = %http::route_key(&req), merchant_id = tracing::field::Empty);
            let resp = async { Box::pin(http_inner(app, links, &req, &rid, deadline)).await }
                .instrument(span)
                .await;
            Ok(serde_json::to_value(resp).unwrap_or_else(|_| json!({"statusCode": 500})))
        }
        aftercare::lambda::trigger::Trigger::Event(event) => {
            let span = tracing::info_span!("event", request_id, event_id = %event.id, detail_type = %event.detail_type);
            async {
                match event.detail_type.as_str() {
                    SCHEDULE_DETAIL_TYPE => {
                        let report = Box::pin(sweep(app, links, deadline)).await?;
                        Ok(serde_json::to_value(report).unwrap_or_default())
                    }
                    other => Err(HandlerError::new(
                        "InvalidEvent",
                        format!("unexpected detail-type {other:?}"),
                    )),
                }
            }
            .instrument(span)
            .await
        }
    }
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
    match route.as_str() {
        ROUTE_SURVEY_PAGE => pages::survey_page(app, links, token, rid).await,
        ROUTE_SURVEY_ANSWER => pages::survey_answer(app, links, req, token, rid, deadline).await,
        ROUTE_UNSUBSCRIBE_PAGE => pages::unsubscribe_page(app, links, token, rid).await,
        ROUTE_UNSUBSCRIBE => pages::unsubscribe(app, links, req, token, rid).await,
        ROUTE_PREFERENCES_PAGE => pages::preferences_page(app, links, token, rid).await,
        ROUTE_PREFERENCES_SAVE => pages::preferences_save(app, links, req, token, rid).await,
        ROUTE_GET_PREFERENCES | ROUTE_PUT_PREFERENCES => {
            http::respond(prefs::preferences(app, req).await, rid)
        }
        ROUTE_FEEDBACK => http::respond(feedback::feedback(app, req).await.map(|b| (200, b)), rid),
        _ => ApiError::not_found("the route").into_response(rid),
    }
}
