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

use aftercare::adapters::store::loyalty::{Decided, LoyaltyNotice, NoticeKind, Referee};
use aftercare::domain::loyalty::{
    Balance, LedgerEntry, LedgerError, ReferralRefusal, adjust, balance, normalize_referral_code,
    redeem, referral_reward, tier_status,
};
use aftercare::domain::validation::parse_json;
use aftercare::domain::{CustomerId, Merchant, Order};
use aftercare::http::{self, ApiError};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;

pub const ROUTE_GET: &str = "GET /v1/customers/{customerId}/loyalty";
pub const ROUTE_REDEEM: &str = "POST /v1/customers/{customerId}/loyalty/redemptions";
pub const ROUTE_ADJUST: &str = "POST /v1/customers/{customerId}/loyalty/adjustments";
const MAX_PAGE: usize = 100;
const MAX_POINTS: i64 = 10_000_000;

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

impl ReferralOutcome {
    fn refused(code: &str, why: ReferralRefusal) -> Self {
        Self {
            code: code.to_owned(),
            status: "refused",
            reason: Some(why.as_str()),
            reward_points: None,
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
    let Some(code) = normalize_referral_code(typed) else {
        return Ok(ReferralOutcome::refused(
            typed,
            ReferralRefusal::UnknownCode,
        ));
    };
    let Some(reward) = referral_reward(order, &merchant.settings.loyalty, now) else {
        return Ok(ReferralOutcome::refused(
            &code,
            ReferralRefusal::ProgrammeOff,
        ));
    };
    let Some(owner) = app.store.referral_code_owner(&merchant.id, &code).await? else {
        return Ok(ReferralOutcome::refused(
            &code,
            ReferralRefusal::UnknownCode,
        ));
    };
    let email = order.customer.email.as_str().to_ascii_lowercase();
    if owner.customer_id == order.customer.id || owner.email == email {
        return Ok(ReferralOutcome::refused(
            &code,
            ReferralRefusal::SelfReferral,
        ));
    }
    let referee = Referee {
        email,
        order_id: order.id.to_string(),
        referrer: owner.customer_id.clone(),
        created_at: now,
    };
    // The reward's notice (told when it becomes available) and the order's note of its
    // referrer (so delivery can move the reward's window) go in the same transaction.
    let notice = LoyaltyNotice {
        customer_id: owner.customer_id.clone(),
        kind: NoticeKind::ReferralReward,
        source: Some(reward.source.clone()),
        due_at: reward.available_at.unwrap_or(now),
    };
    let extra = [
        app.store.referee_put(&merchant.id, &referee)?,
        app.store.loyalty_notice_put(&merchant.id, &notice)?,
        app.store
            .order_referred_by(&merchant.id, &order.id, &owner.customer_id)?,
    ];
    let decided = app
        .store
        .decide_and_post(&merchant.id, &owner.customer_id, now, &extra, |_| {
            Some(reward.clone())
        })
        .await?;
    let recorded = ReferralOutcome {
        code: code.clone(),
        status: "recorded",
        reason: None,
        reward_points: Some(reward.points),
    };
    match decided {
        Decided::Posted { .. } => {
            tracing::info!(referrer = %owner.customer_id, points = reward.points, "referral recorded");
            Ok(recorded)
        }
        Decided::Duplicate(_) => Ok(recorded),
        Decided::ExtraRefused(0) => Ok(ReferralOutcome::refused(
            &code,
            ReferralRefusal::AlreadyReferred,
        )),
        Decided::ExtraRefused(_) => Err(ApiError::unavailable(
            "the order changed while its referral was recorded; retry the order to finish",
        )),
        Decided::Declined(_) | Decided::Busy => Err(ApiError::unavailable(
            "the referrer's loyalty ledger is busy; retry the order to finish",
        )),
    }
}

/// Serves the loyalty routes for an authenticated merchant.
pub async fn serve(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    route: &str,
) -> Result<(u16, Value), ApiError> {
    let customer = req
        .path_parameters
        .get("customerId")
        .map(String::as_str)
        .unwrap_or_default();
    let customer = CustomerId::parse("customerId", customer)?;
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
    let limit = match http::query_param(req, "limit") {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::new(400, "out_of_range", "limit must be 1 to 100").field("limit")
            })?,
    };
    // The cursor is the position after the last entry shown (newest first), opaque to callers.
    let start = match http::query_param(req, "cursor") {
        None => 0,
        Some(c) => URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("ledger:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| {
                ApiError::new(400, "invalid_format", "cursor is not one this API gave")
                    .field("cursor")
            })?,
    };
    let now = app.clock.now();
    let state = app.store.loyalty(&merchant.id, customer).await?;
    if state.entries.is_empty()
        && app
            .store
            .get_customer_profile(&merchant.id, customer)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found("the customer"));
    }
    let newest_first: Vec<&LedgerEntry> = state.entries.iter().rev().collect();
    let page: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| entry_view(e, now))
        .collect();
    let next = start + page.len();
    let next_cursor =
        (next < newest_first.len()).then(|| URL_SAFE_NO_PAD.encode(format!("ledger:{next}")));
    Ok((
        200,
        json!({
            "customer_id": customer, "as_of": now,
            "balance": BalanceView::from(balance(&state.entries, now)),
            "tier": tier_view(&state.entries, merchant, now),
            "history": page, "next_cursor": next_cursor,
        }),
    ))
}

/// Where the customer stands in the merchant's tiers (null without tiers).
fn tier_view(entries: &[LedgerEntry], merchant: &Merchant, now: Timestamp) -> Value {
    match tier_status(entries, &merchant.settings.loyalty, now, &merchant.zone()) {
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
    let key = http::header(req, "idempotency-key")
        .map(str::trim)
        .filter(|k| {
            !k.is_empty() && k.len() <= 100 && k.chars().all(|c| c.is_ascii_graphic() && c != '#')
        })
        .ok_or_else(|| {
            ApiError::new(
                400,
                "required",
                "send an Idempotency-Key header (1 to 100 printable characters, no '#')",
            )
            .field("Idempotency-Key")
        })?
        .to_owned();
    http::require_json(req)?;
    let body: PointsBody = parse_json(&http::body_bytes(req)?)?;
    let redeeming = route == ROUTE_REDEEM;
    if body.points == 0 || body.points.abs() > MAX_POINTS || (redeeming && body.points < 0) {
        return Err(ApiError::new(
            422,
            "out_of_range",
            if redeeming {
                "points must be 1 to 10,000,000"
            } else {
                "points must be non-zero and at most 10,000,000 either way"
            },
        )
        .field("points"));
    }
    let reason = match (redeeming, body.reason.as_deref().map(str::trim)) {
        (true, _) => None,
        (false, Some(r)) if !r.is_empty() && r.len() <= 200 && !r.chars().any(char::is_control) => {
            Some(r.to_owned())
        }
        (false, _) => {
            return Err(ApiError::new(
                422,
                "required",
                "an adjustment needs a reason (1 to 200 characters, one line)",
            )
            .field("reason"));
        }
    };
    if app
        .store
        .get_customer_profile(&merchant.id, customer)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("the customer"));
    }
    let now = app.clock.now();
    let decide = |entries: &[LedgerEntry]| match &reason {
        None => redeem(entries, now, body.points, &key),
        Some(r) => adjust(entries, now, body.points, r, &key),
    };
    let decided = app
        .store
        .decide_and_post(&merchant.id, customer, now, &[], |state| {
            decide(&state.entries).ok()
        })
        .await?;
    let source = if redeeming {
        format!("redeem:{key}")
    } else {
        format!("adjust:{key}")
    };
    let answer = |entry: &LedgerEntry, b: Balance| {
        json!({
            "entry": entry_view(entry, now), "balance": BalanceView::from(b),
        })
    };
    match decided {
        Decided::Posted { entry, balance: b } => {
            tracing::info!(
                kind = entry.kind.as_str(),
                points = entry.points,
                "ledger entry posted"
            );
            Ok((201, answer(&entry, b)))
        }
        Decided::Duplicate(state) | Decided::Declined(state) => {
            let now_balance = balance(&state.entries, now);
            if let Some(stored) = state.entry(&source) {
                // A replay of this key: the same answer, or a conflict if the points differ.
                let wanted = if redeeming { -body.points } else { body.points };
                if stored.points != wanted {
                    return Err(ApiError::new(
                        409,
                        "idempotency_conflict",
                        "this Idempotency-Key was used with different points",
                    )
                    .field("Idempotency-Key"));
                }
                return Ok((200, answer(stored, now_balance)));
            }
            Err(match decide(&state.entries).err() {
                Some(LedgerError::NotPositive) => ApiError::new(
                    422,
                    "out_of_range",
                    "points must be a positive whole number",
                ),
                _ => ApiError::new(
                    422,
                    "insufficient_points",
                    format!("only {} points are available", now_balance.available),
                ),
            }
            .field("points"))
        }
        Decided::ExtraRefused(_) | Decided::Busy => Err(ApiError::unavailable(
            "the customer's ledger is busy; retry with the same Idempotency-Key",
        )),
    }
}
