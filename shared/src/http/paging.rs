//! Paging of a customer's history (the message log, the loyalty ledger, store credit), newest
//! first: `limit` (1 to the route's most, default 50) and an opaque `cursor`, the position after
//! the last entry shown, tagged with the history it belongs to so one history's cursor is refused
//! by another.

use super::ApiError;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Entries a page holds unless the request says.
const DEFAULT_PAGE: usize = 50;

/// The page a request asks for.
pub struct Page {
    tag: &'static str,
    pub limit: usize,
    pub start: usize,
}

impl Page {
    /// The page of history `tag` that `req` asks for, at most `max` entries; a 400 naming
    /// `limit` or `cursor`.
    pub fn of(
        req: &ApiGatewayV2httpRequest,
        tag: &'static str,
        max: usize,
    ) -> Result<Self, ApiError> {
        let limit = match super::query_param(req, "limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::new(400, "out_of_range", format!("limit must be 1 to {max}"))
                        .field("limit")
                })?,
        };
        let start = match super::query_param(req, "cursor") {
            None => 0,
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix(tag)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .ok_or_else(|| {
                    ApiError::new(400, "invalid_format", "cursor is not one this API gave")
                        .field("cursor")
                })?,
        };
        Ok(Self { tag, limit, start })
    }

    /// The cursor of the next page once `shown` entries of `total` were shown on this one.
    pub fn next_cursor(&self, shown: usize, total: usize) -> Option<String> {
        let next = self.start + shown;
        (next < total).then(|| URL_SAFE_NO_PAD.encode(format!("{}:{next}", self.tag)))
    }
}
