//! API Gateway HTTP API (payload v2) plumbing shared by every function: JSON errors that name the
//! field, request ids, body limits, and bearer-key authentication ([`auth`]).

pub mod auth;
pub mod paging;

use crate::domain::FieldError;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine;
use serde::Serialize;

/// Largest request body accepted (256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// An error answer: `{"error": {"code", "message", "field"}}` with the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer <key>",
        )
        .field("Authorization")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} was not found"))
    }

    /// A temporary failure; the request is safe to retry as is.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(2),
            ..Self::new(503, "temporarily_unavailable", message)
        }
    }

    /// An unexpected failure. The body says nothing about internals.
    pub fn internal() -> Self {
        Self::new(
            500,
            "internal_error",
            "something went wrong on our side; the request can be retried",
        )
    }

    pub fn into_response(self, request_id: &str) -> ApiGatewayV2httpResponse {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            request_id: &'a str,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        let body = Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                request_id,
            },
        };
        let mut resp = json_response(self.status, &body, request_id);
        if let Some(secs) = self.retry_after {
            resp.headers.insert("retry-after", HeaderValue::from(secs));
        }
        if self.status == 401 {
            resp.headers
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl ApiError {
    /// The same failure for an event trigger (EventBridge, schedules): a typed invocation error.
    /// Field paths are given relative to `detail_path` (e.g. `detail.order`).
    pub fn into_handler_error(self, detail_path: &str) -> crate::lambda::error::HandlerError {
        use crate::lambda::error::HandlerError;
        let where_ = match &self.field {
            Some(f) if !f.is_empty() => format!("{detail_path}.{f}: "),
            _ => String::new(),
        };
        match self.status {
            503 => HandlerError::new("Transient", self.message),
            404 => HandlerError::new("NotFound", self.message),
            409 => HandlerError::new("Conflict", format!("{where_}{}", self.message)),
            400..=499 => HandlerError::new("InvalidEvent", format!("{where_}{}", self.message)),
            _ => HandlerError::new("Internal", self.message),
        }
    }
}

/// A refusal of an authentic platform or provider delivery, answered 200 (`{"result": "refused",
/// "error": {code, message, field}}`) so the sender does not retry, or disable its webhook over,
/// what cannot succeed.
pub fn refused(e: ApiError) -> serde_json::Value {
    serde_json::json!({"result": "refused", "error": {"code": e.code, "message": e.message, "field": e.field}})
}

impl From<crate::adapters::store::StoreError> for ApiError {
    /// Transient store failures become 503 (retry the same request); anything else a bare 500.
    fn from(e: crate::adapters::store::StoreError) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "store temporarily unavailable");
            ApiError::unavailable("storage is busy; retry the request")
        } else {
            tracing::error!(error = ?e, "store failure");
            ApiError::internal()
        }
    }
}

impl From<crate::usecases::orders::PlaceError> for ApiError {
    fn from(e: crate::usecases::orders::PlaceError) -> Self {
        use crate::usecases::orders::PlaceError;
        match e {
            PlaceError::Invalid(e) => e.into(),
            PlaceError::Conflict => {
                ApiError::new(409, "idempotency_conflict", e.to_string()).field("id")
            }
            PlaceError::Erased => ApiError::new(409, "order_erased", e.to_string()).field("id"),
            PlaceError::Store(e) => e.into(),
        }
    }
}

impl From<crate::usecases::shipments::TrackingError> for ApiError {
    fn from(e: crate::usecases::shipments::TrackingError) -> Self {
        use crate::usecases::shipments::TrackingError;
        match e {
            TrackingError::Invalid(e) => e.into(),
            TrackingError::UnknownOrder => ApiError::not_found("the order"),
            TrackingError::UnknownShipment => ApiError::not_found("the shipment"),
            TrackingError::Conflict => {
                ApiError::new(409, "idempotency_conflict", e.to_string()).field("id")
            }
            TrackingError::Unsent => ApiError::unavailable(e.to_string()),
            TrackingError::Store(e) => e.into(),
        }
    }
}

impl From<crate::usecases::returns::ReturnError> for ApiError {
    fn from(e: crate::usecases::returns::ReturnError) -> Self {
        use crate::usecases::returns::ReturnError;
        match e {
            // The body parsed; its values are what is refused.
            ReturnError::Invalid(e) => ApiError::new(422, e.code, e.message).field(e.field),
            ReturnError::UnknownOrder => ApiError::not_found("the order"),
            ReturnError::UnknownReturn => ApiError::not_found("the return"),
            ReturnError::WrongStatus { current } => ApiError::new(
                409,
                "invalid_transition",
                format!("the return is {} and cannot move so", current.as_str()),
            )
            .field("status"),
            ReturnError::KeyReused => {
                ApiError::new(409, "idempotency_conflict", e.to_string()).field("Idempotency-Key")
            }
            ReturnError::TooManyReturns => {
                ApiError::new(422, "too_many_returns", e.to_string()).field("order_id")
            }
            ReturnError::Busy | ReturnError::Unsent => ApiError::unavailable(e.to_string()),
            ReturnError::Store(e) => e.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let field = e.field.clone();
        let mut err = ApiError::new(400, e.code, e.message);
        if !field.is_empty() {
            err.field = Some(field);
        }
        err
    }
}

impl From<crate::usecases::loyalty::LoyaltyError> for ApiError {
    fn from(e: crate::usecases::loyalty::LoyaltyError) -> Self {
        use crate::usecases::loyalty::LoyaltyError;
        match e {
            // The body parsed; its values are what is refused.
            LoyaltyError::Invalid(e) => ApiError::new(422, e.code, e.message).field(e.field),
            LoyaltyError::UnknownCustomer => ApiError::not_found("the customer"),
            LoyaltyError::KeyReused => {
                ApiError::new(409, "idempotency_conflict", e.to_string()).field("Idempotency-Key")
            }
            LoyaltyError::NotPositive => {
                ApiError::new(422, "out_of_range", e.to_string()).field("points")
            }
            LoyaltyError::Insufficient { .. } => {
                ApiError::new(422, "insufficient_points", e.to_string()).field("points")
            }
            LoyaltyError::Busy | LoyaltyError::ReferrerBusy | LoyaltyError::OrderChanged => {
                ApiError::unavailable(e.to_string())
            }
            LoyaltyError::Store(e) => e.into(),
        }
    }
}

impl From<crate::usecases::credit::CreditError> for ApiError {
    fn from(e: crate::usecases::credit::CreditError) -> Self {
        use crate::usecases::credit::CreditError;
        match e {
            // The body parsed; its values are what is refused.
            CreditError::Invalid(e) => ApiError::new(422, e.code, e.message).field(e.field),
            CreditError::UnknownCustomer => ApiError::not_found("the customer"),
            CreditError::KeyReused => {
                ApiError::new(409, "idempotency_conflict", e.to_string()).field("Idempotency-Key")
            }
            CreditError::SourceReused => {
                ApiError::new(409, "source_conflict", e.to_string()).field("source")
            }
            CreditError::Insufficient { .. } => {
                ApiError::new(422, "insufficient_credit", e.to_string()).field("amount")
            }
            CreditError::Busy => ApiError::unavailable(e.to_string()),
            CreditError::Store(e) => e.into(),
        }
    }
}

impl From<crate::usecases::billing::BillingError> for ApiError {
    /// An event recorded whose email or reversal is not finished asks for a redelivery (503).
    fn from(e: crate::usecases::billing::BillingError) -> Self {
        use crate::usecases::billing::BillingError;
        match e {
            BillingError::Redeliver | BillingError::LedgerBusy => {
                ApiError::unavailable(e.to_string())
            }
            BillingError::Store(e) => e.into(),
        }
    }
}

impl From<crate::usecases::preferences::ContactError> for ApiError {
    fn from(e: crate::usecases::preferences::ContactError) -> Self {
        use crate::usecases::preferences::ContactError;
        match e {
            ContactError::Invalid(e) | ContactError::Refused { error: e, .. } => e.into(),
            ContactError::Store(e) => e.into(),
        }
    }
}

/// The response to an API route's outcome: its JSON body, or its error (logged: refusals at
/// info with the field, failures at warn).
pub fn respond<T: Serialize>(
    outcome: Result<(u16, T), ApiError>,
    request_id: &str,
) -> ApiGatewayV2httpResponse {
    match outcome {
        Ok((status, body)) => json_response(status, &body, request_id),
        Err(err) => {
            if err.status >= 500 {
                tracing::warn!(status = err.status, code = err.code, "request failed");
            } else {
                tracing::info!(status = err.status, code = err.code, field = ?err.field, "request refused");
            }
            err.into_response(request_id)
        }
    }
}

/// A JSON response with the standard headers.
pub fn json_response<T: Serialize>(
    status: u16,
    body: &T,
    request_id: &str,
) -> ApiGatewayV2httpResponse {
    let json = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers = headers;
    resp.body = Some(Body::Text(json));
    resp
}

/// A server-rendered page: strict security headers, nothing cached, no framing, no scripts.
pub fn html_response(status: u16, html: String, request_id: &str) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(status);
    resp.headers = headers;
    resp.body = Some(Body::Text(html));
    resp
}

/// The first instant an RFC 3339 time can name (`0000-01-01T00:00:00Z`): jiff also reads and
/// writes signed six-digit years (`-000001-…`), which RFC 3339 has no room for, so a period never
/// reaches before it.
fn earliest_rfc3339() -> jiff::Timestamp {
    jiff::civil::date(0, 1, 1)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(jiff::Timestamp::MIN)
}

fn parse_time(field: &'static str, raw: &str) -> Result<jiff::Timestamp, ApiError> {
    let parsed = raw.parse::<jiff::Timestamp>().ok().or_else(|| {
        raw.parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    });
    parsed.filter(|t| *t >= earliest_rfc3339()).ok_or_else(|| {
        ApiError::new(
            400,
            "invalid_format",
            format!("{field} must be an RFC 3339 time or a YYYY-MM-DD date"),
        )
        .field(field)
    })
}

/// The report period `[from, to)` of a request's `from` and `to` query parameters (RFC 3339
/// times or `YYYY-MM-DD` dates, UTC): by default the last `default_days` up to `now`, at most
/// `max_days` long.
pub fn period(
    req: &ApiGatewayV2httpRequest,
    now: jiff::Timestamp,
    default_days: i64,
    max_days: i64,
) -> Result<(jiff::Timestamp, jiff::Timestamp), ApiError> {
    let days = |n: i64| jiff::SignedDuration::from_hours(24 * n);
    let to = match query_param(req, "to") {
        Some(raw) => parse_time("to", raw)?,
        None => now,
    };
    let from = match query_param(req, "from") {
        Some(raw) => parse_time("from", raw)?,
        None => to
            .saturating_sub(days(default_days))
            .unwrap_or(to)
            .max(earliest_rfc3339()),
    };
    if from >= to {
        // Without `from`, only `to` can have put the period's start at or after its end.
        let field = if query_param(req, "from").is_some() {
            "from"
        } else {
            "to"
        };
        return Err(ApiError::new(400, "invalid_range", "from must be before to").field(field));
    }
    if to.duration_since(from) > days(max_days) {
        return Err(ApiError::new(
            400,
            "invalid_range",
            format!("the period must be at most {max_days} days"),
        )
        .field("from"));
    }
    Ok((from, to))
}

/// A page a signed link could not show, in the merchant's look when the merchant is known; else a
/// bare page revealing nothing about which tokens or merchants exist. `reason`: `invalid`,
/// `expired`, `not_found`.
pub fn error_page(
    renderer: &crate::adapters::mail::Renderer,
    merchant: Option<&crate::domain::Merchant>,
    status: u16,
    reason: &str,
    request_id: &str,
) -> ApiGatewayV2httpResponse {
    let html = merchant.and_then(|m| {
        renderer
            .render_page(
                "error",
                "page.error.title",
                m.default_locale,
                m,
                &serde_json::json!({"reason": reason}),
            )
            .ok()
    });
    let html = html.unwrap_or_else(|| {
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width, initial-scale=1\"><title>Link not valid</title></head><body>\
             <main><h1 id=\"error\">This link is not valid</h1><p>It may have expired or been changed \
             ({reason}).</p></main></body></html>"
        )
    });
    html_response(status, html, request_id)
}

/// The origin (`https://host[:port]`) of an image URL a page may load, when it is a plain HTTPS
/// origin that can go into a Content-Security-Policy as it is; else `None` (the page then shows no
/// remote image).
pub fn image_origin(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    plain.then(|| format!("https://{host}"))
}

/// [`html_response`] for a page that shows images from one more origin (the merchant's logo,
/// from [`image_origin`]): the same headers, its CSP allowing `img-src 'self' <origin>`.
pub fn html_response_with_images(
    status: u16,
    html: String,
    request_id: &str,
    origin: Option<&str>,
) -> ApiGatewayV2httpResponse {
    let mut resp = html_response(status, html, request_id);
    if let Some(origin) = origin {
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' {origin}; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            resp.headers.insert("content-security-policy", v);
        }
    }
    resp
}

/// A `303 See Other` to `location` (after a link click is recorded), nothing cached or leaked.
pub fn redirect_response(location: &str, request_id: &str) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert("location", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = 303;
    resp.headers = headers;
    resp
}

/// `%XX` escapes decoded (a malformed escape is kept as it is).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request's `Idempotency-Key` header: 1 to 100 printable ASCII characters, no `#` (it goes
/// into keys); a 400 naming the header otherwise.
pub fn idempotency_key(req: &ApiGatewayV2httpRequest) -> Result<String, ApiError> {
    header(req, "idempotency-key")
        .map(str::trim)
        .filter(|k| {
            !k.is_empty() && k.len() <= 100 && k.chars().all(|c| c.is_ascii_graphic() && c != '#')
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "required",
                "send an Idempotency-Key header (1 to 100 printable characters, no '#')",
            )
            .field("Idempotency-Key")
        })
}

/// The fields of an `application/x-www-form-urlencoded` body (later duplicates win).
pub fn form_fields(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A query-string parameter (API Gateway passes them decoded).
pub fn query_param<'a>(req: &'a ApiGatewayV2httpRequest, name: &str) -> Option<&'a str> {
    req.query_string_parameters.first(name)
}

/// The request id API Gateway assigned (or the Lambda request id as a fallback).
pub fn request_id<'a>(req: &'a ApiGatewayV2httpRequest, fallback: &'a str) -> &'a str {
    req.request_context
        .request_id
        .as_deref()
        .unwrap_or(fallback)
}

/// A request header as text.
pub fn header<'a>(req: &'a ApiGatewayV2httpRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request body as bytes: decoded from base64 when API Gateway encoded it, bounded in size.
pub fn body_bytes(req: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiError> {
    body_bytes_upto(req, MAX_BODY_BYTES)
}

/// As [`body_bytes`], with a route's own bound of `max` bytes (a bulk upload's).
pub fn body_bytes_upto(req: &ApiGatewayV2httpRequest, max: usize) -> Result<Vec<u8>, ApiError> {
    let Some(body) = req.body.as_deref() else {
        return Err(
            ApiError::new(400, "required", "a JSON request body is required").field("body"),
        );
    };
    let bytes = if req.is_base64_encoded {
        if body.len() > max * 4 / 3 + 4 {
            return Err(too_large(max));
        }
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| {
                ApiError::new(400, "invalid_body", "the body could not be decoded").field("body")
            })?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.len() > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        413,
        "body_too_large",
        format!("the body must be at most {max} bytes"),
    )
    .field("body")
}

/// Requires `Content-Type: application/json` (parameters such as charset allowed) when a body is sent.
pub fn require_json(req: &ApiGatewayV2httpRequest) -> Result<(), ApiError> {
    match header(req, "content-type") {
        Some(ct)
            if ct
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        None => Ok(()),
        Some(_) => Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the body as application/json",
        )
        .field("Content-Type")),
    }
}

/// The HTTP method and route key, e.g. `POST /v1/orders`.
pub fn route_key(req: &ApiGatewayV2httpRequest) -> String {
    req.route_key.clone().unwrap_or_else(|| {
        format!(
            "{} {}",
            req.request_context.http.method,
            req.raw_path.as_deref().unwrap_or("/")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{form_fields, image_origin};

    #[test]
    fn only_plain_https_origins_may_serve_a_pages_images() {
        assert_eq!(
            image_origin("https://cdn.acme.example/logo.png?v=2").as_deref(),
            Some("https://cdn.acme.example")
        );
        assert_eq!(
            image_origin("https://cdn.example:8443").as_deref(),
            Some("https://cdn.example:8443")
        );
        assert_eq!(image_origin("http://cdn.example/logo.png"), None);
        assert_eq!(image_origin("https://cdn.example;script-src/x.png"), None);
        assert_eq!(image_origin("https://'self'/x.png"), None);
        assert_eq!(image_origin("https:///x.png"), None);
    }

    #[test]
    fn form_bodies_decode() {
        let f = form_fields(b"score=3&comment=Too+late%21%0Aand+broken&x=%zz&empty=");
        assert_eq!(f["score"], "3");
        assert_eq!(f["comment"], "Too late!\nand broken");
        assert_eq!(f["x"], "%zz");
        assert_eq!(f["empty"], "");
        assert!(form_fields(b"").is_empty());
    }
}
