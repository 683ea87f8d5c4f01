//! The loyalty API and referrals.
//!
//! * `GET /v1/customers/{customerId}/loyalty?limit=&cursor=`: balance (available, pending,
//!   earned, redeemed), the customer's referral code and their ledger, newest first, paged.
//! * `POST /v1/customers/{customerId}/loyalty/redemptions` (`Idempotency-Key` header,
//!   `{"points": n}`): atomic against concurrent redemptions; 201 with the new balance, 200 with
//!   the same answer on a replay, 409 `idempotency_conflict` for the same key with other points,
//!   422 `insufficient_points` naming `points`.
//! * `POST /v1/customers/{customerId}/loyalty/adjustments` (`Idempotency-Key`,
//!   `{"points": ±n, "reason": "..."}`): the merchant's credit or debit, with a reason.
//!
//! Referrals: an order with a `referral_code` of another customer's earns that customer
//! `settings.loyalty.referral_points`, pending until the order's return window closes, once per
//! referred email address; self-referral and repeat referral are refused with a reason.

use aftercare::domain::loyalty::{Balance, LedgerEntry, TierStatus};
use aftercare::domain::validation::parse_json;
use aftercare::domain::{CustomerId, Merchant, Order};
use aftercare::http::{self, ApiError};
use aftercare::usecases::loyalty::{Loyalty, PointsKind, PointsRequest, Referred};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;

pub const ROUTE_GET: &str = "GET /v1/customers/{customerId}/loyalty";
pub const ROUTE_REDEEM: &str = "POST /v1/customers/{customerId}/loyalty/redemptions";
pub const ROUTE_ADJUST: &str = "POST /v1/customers/{customerId}/loyalty/adjustments";

/// What an order's referral code did.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralOutcome {
    pub code: String,
    /// `recorded` or `refused`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The referrer's pending reward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_points: Option<i64>,
}

impl From<Referred> for ReferralOutcome {
    fn from(r: Referred) -> Self {
        match r {
            Referred::Recorded {
                code,
                reward_points,
            } => Self {
                code,
                status: "recorded",
                reason: None,
                reward_points: Some(reward_points),
            },
            Referred::Refused { code, why } => Self {
                code,
                status: "refused",
                reason: Some(why.as_str()),
                reward_points: None,
            },
        }
    }
}

/// Records the referral an order's code makes (idempotent: a replay of the order answers the same).
pub async fn record_referral(
    app: &App,
    merchant: &Merchant,
    order: &Order,
    typed: &str,
    now: Timestamp,
) -> Result<ReferralOutcome, ApiError> {
    let loyalty = Loyalty { ledger: &app.store };
    Ok(loyalty
        .record_referral(merchant, order, typed, now)
        .await?
        .into())
}

/// Serves the loyalty routes for an authenticated merchant.
pub async fn serve(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    route: &str,
) -> Result<(u16, Value), ApiError> {
    let customer = crate::customer_in_path(req)?;
    match route {
        ROUTE_GET => get(app, merchant, req, &customer).await,
        ROUTE_REDEEM | ROUTE_ADJUST => post(app, merchant, req, &customer, route).await,
        _ => Err(ApiError::not_found("the route")),
    }
}

#[derive(Debug, Serialize)]
struct BalanceView {
    available: i64,
    pending: i64,
    earned: i64,
    redeemed: i64,
}

impl From<Balance> for BalanceView {
    fn from(b: Balance) -> Self {
        Self {
            available: b.available,
            pending: b.pending,
            earned: b.earned,
            redeemed: b.redeemed,
        }
    }
}

fn entry_view(e: &LedgerEntry, now: Timestamp) -> Value {
    json!({
        "kind": e.kind.as_str(), "points": e.points, "source": e.source, "created_at": e.created_at,
        "available_at": e.available_at, "pending": e.is_pending(now), "against": e.against,
        "reason": e.reason,
    })
}

async fn get(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    customer: &CustomerId,
) -> Result<(u16, Value), ApiError> {
    let page = http::paging::Page::of(req, "ledger", crate::MAX_PAGE)?;
    let now = app.clock.now();
    let standing = Loyalty { ledger: &app.store }
        .standing(merchant, customer, now)
        .await?;
    let newest_first: Vec<&LedgerEntry> = standing.entries.iter().rev().collect();
    let shown: Vec<Value> = newest_first
        .iter()
        .skip(page.start)
        .take(page.limit)
        .map(|e| entry_view(e, now))
        .collect();
    let next_cursor = page.next_cursor(shown.len(), newest_first.len());
    Ok((
        200,
        json!({
            "customer_id": customer, "as_of": now,
            "balance": BalanceView::from(standing.balance),
            "tier": tier_view(standing.tier),
            "history": shown, "next_cursor": next_cursor,
        }),
    ))
}

/// Where the customer stands in the merchant's tiers (null without tiers).
fn tier_view(tier: Option<TierStatus>) -> Value {
    match tier {
        None => Value::Null,
        Some(t) => json!({
            "name": t.current.as_ref().map(|c| &c.name),
            "multiplier_percent": t.current.as_ref().map_or(100, |c| c.multiplier_percent),
            "basis": t.basis, "year": t.year, "qualifying": t.qualifying,
            "next": t.next.map(|(n, needed)| json!({"name": n.name, "needed": needed})),
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointsBody {
    points: i64,
    #[serde(default)]
    reason: Option<String>,
}

async fn post(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    customer: &CustomerId,
    route: &str,
) -> Result<(u16, Value), ApiError> {
    let key = http::idempotency_key(req)?;
    http::require_json(req)?;
    let body: PointsBody = parse_json(&http::body_bytes(req)?)?;
    let request = PointsRequest {
        kind: if route == ROUTE_REDEEM {
            PointsKind::Redemption
        } else {
            PointsKind::Adjustment
        },
        key,
        points: body.points,
        reason: body.reason,
    };
    let now = app.clock.now();
    let moved = Loyalty { ledger: &app.store }
        .post(&merchant.id, customer, &request, now)
        .await?;
    let status = if moved.replayed { 200 } else { 201 };
    Ok((
        status,
        json!({
            "entry": entry_view(&moved.entry, now), "balance": BalanceView::from(moved.balance),
        }),
    ))
}
