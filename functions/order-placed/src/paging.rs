//! Paging of a customer's history (loyalty ledger, store credit), newest first: `limit` (1 to
//! 100, default 50) and an opaque `cursor`, the position after the last entry shown, tagged with the
//! history it belongs to so one history's cursor is refused by another.

use aftercare::http::{self, ApiError};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Most entries one page holds.
const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 50;

/// The page a request asks for.
pub(crate) struct Page {
    tag: &'static str,
    pub limit: usize,
    pub start: usize,
}

impl Page {
    /// The page of history `tag` that `req` asks for; a 400 naming `limit` or `cursor`.
    pub fn of(req: &ApiGatewayV2httpRequest, tag: &'static str) -> Result<Self, ApiError> {
        let limit = match http::query_param(req, "limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::new(400, "out_of_range", "limit must be 1 to 100").field("limit")
                })?,
        };
        let start = match http::query_param(req, "cursor") {
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
