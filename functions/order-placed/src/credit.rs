//! The store credit API (beside the loyalty routes; the same Bearer API key authentication).
//!
//! * `GET /v1/customers/{customerId}/credit?limit=&cursor=`: the balance in each currency
//!   (balance, issued, redeemed) and the ledger, newest first, paged.
//! * `POST /v1/customers/{customerId}/credit/redemptions` (`Idempotency-Key` header,
//!   `{"amount": 1250, "currency": "EUR", "order_id"?: "…"}`): atomic against concurrent
//!   redemptions; 201 with the new balance, 200 with the same answer on a replay, 409
//!   `idempotency_conflict` for the same key with another payload, 422 `insufficient_credit`
//!   naming `amount`.
//! * `POST /v1/customers/{customerId}/credit/adjustments` (`Idempotency-Key`,
//!   `{"amount": ±n, "currency": "EUR", "reason": "…"}`): the merchant's correction, never below
//!   zero.
//!
//! Credit is issued by returns resolved as store credit (the returns use-case calls
//! [`aftercare::usecases::credit::StoreCredit::issue`]), not through this API.

use aftercare::domain::credit::{CreditEntry, CreditSummary, request_hash};
use aftercare::domain::validation::parse_json;
use aftercare::domain::{Currency, CustomerId, Merchant, Money};
use aftercare::http::{self, ApiError};
use aftercare::usecases::credit::{Posted, StoreCredit};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;

pub const ROUTE_GET: &str = "GET /v1/customers/{customerId}/credit";
pub const ROUTE_REDEEM: &str = "POST /v1/customers/{customerId}/credit/redemptions";
pub const ROUTE_ADJUST: &str = "POST /v1/customers/{customerId}/credit/adjustments";
/// Every route of this module.
pub const ROUTES: [&str; 3] = [ROUTE_GET, ROUTE_REDEEM, ROUTE_ADJUST];

/// Serves the store credit routes for an authenticated merchant.
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

fn balance_view(s: &CreditSummary) -> Value {
    json!({
        "currency": s.currency, "balance": s.balance, "issued": s.issued, "redeemed": s.redeemed,
    })
}

fn entry_view(e: &CreditEntry) -> Value {
    json!({
        "kind": e.kind.as_str(), "amount": e.amount, "bonus": e.bonus, "currency": e.currency,
        "balance_after": e.balance_after, "source": e.source, "reference": e.reference,
        "note": e.note, "order_id": e.order_id, "created_at": e.at,
    })
}

async fn get(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    customer: &CustomerId,
) -> Result<(u16, Value), ApiError> {
    let page = http::paging::Page::of(req, "credit", crate::MAX_PAGE)?;
    let statement = StoreCredit { book: &app.store }
        .statement(&merchant.id, customer)
        .await?;
    let shown: Vec<Value> = statement
        .entries
        .iter()
        .skip(page.start)
        .take(page.limit)
        .map(entry_view)
        .collect();
    let next_cursor = page.next_cursor(shown.len(), statement.entries.len());
    Ok((
        200,
        json!({
            "customer_id": customer, "as_of": app.clock.now(),
            "balances": statement.balances.iter().map(balance_view).collect::<Vec<_>>(),
            "history": shown, "next_cursor": next_cursor,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    amount: i64,
    currency: String,
    #[serde(default)]
    order_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    amount: i64,
    currency: String,
    reason: String,
}

/// The body's currency, or a refusal naming `currency`.
fn currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse("currency", code)
        .map_err(|e| ApiError::new(422, e.code, e.message).field(e.field))
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
    let bytes = http::body_bytes(req)?;
    let now = app.clock.now();
    let credit = StoreCredit { book: &app.store };
    let posted: Posted = if route == ROUTE_REDEEM {
        let body: RedeemBody = parse_json(&bytes)?;
        let currency = currency(&body.currency)?;
        let order_id = body.order_id.as_deref();
        let hash = request_hash(&[
            "redeem",
            currency.code(),
            &body.amount.to_string(),
            order_id.unwrap_or(""),
        ]);
        let amount = Money::new(body.amount, currency);
        credit
            .redeem(&merchant.id, customer, amount, order_id, &key, &hash, now)
            .await?
    } else {
        let body: AdjustBody = parse_json(&bytes)?;
        let currency = currency(&body.currency)?;
        let hash = request_hash(&[
            "adjust",
            currency.code(),
            &body.amount.to_string(),
            body.reason.trim(),
        ]);
        let amount = Money::new(body.amount, currency);
        credit
            .adjust(
                &merchant.id,
                customer,
                amount,
                &body.reason,
                &key,
                &hash,
                now,
            )
            .await?
    };
    let status = if posted.fresh { 201 } else { 200 };
    let balance = posted.balance_after();
    Ok((
        status,
        json!({
            "entry": entry_view(&posted.entry),
            "balance": {"currency": balance.currency, "balance": balance.amount},
        }),
    ))
}
