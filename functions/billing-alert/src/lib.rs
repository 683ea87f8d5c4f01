//! billing-alert: payment events from any billing system, dunning that recovers revenue, and the
//! merchant's view of it.
//!
//! Triggers (one code path after parsing):
//! * HTTP API (signed): `POST /v1/webhooks/stripe/{merchantId}` — Stripe's webhook, verified
//!   exactly as Stripe documents (`Stripe-Signature: t=…,v1=…`, HMAC-SHA256 over `"<t>.<raw
//!   body>"`, 300 s tolerance, any `v1` may match any of the merchant's webhook secrets) before
//!   anything is parsed or stored. Acts on `invoice.payment_failed`, `invoice.paid`,
//!   `invoice.upcoming`, `customer.subscription.updated`, `payment_method.updated`,
//!   `payment_method.card_automatically_updated` and `charge.refunded`; other types are
//!   acknowledged and ignored.
//! * HTTP API (Bearer key): `POST /v1/billing-events` — the same, for any other billing system
//!   (`payment_failed`, `payment_succeeded`, `refund`); `GET /v1/billing/recovery?from=&to=`.
//! * HTTP API (signed link): `GET /v1/billing-links/{token}` — the update-payment link in dunning
//!   emails: published as `Payment Link Clicked`, then redirected to the invoice's payment page or
//!   the merchant's update-payment URL.
//! * EventBridge schedule (`Scheduled Event`, hourly): the dunning sweep.
//!
//! Every event is idempotent on the provider's event id (scoped per merchant); out-of-order
//! delivery is settled by the invoice's state (a failure arriving after the payment sends nothing).

mod dunning;
mod generic;
mod stripe;
use aftercare::ports::MerchantDirectory as _;
use aftercare::ports::billing::BillingBook as _;
use generic::*;

use aftercare::config::ConfigError;
use aftercare::domain::billing::{BillingEvent, EventKey, InvoiceFacts, RefundFacts};
use aftercare::domain::customer::CustomerInput;
use aftercare::domain::ids::{InvoiceId, SubscriptionId};
use aftercare::domain::money::MAX_AMOUNT;
use aftercare::domain::validation::parse_json;
use aftercare::domain::{Currency, FieldError, Merchant, MerchantId, Money, OrderId};
use aftercare::http::{self, ApiError};
use aftercare::lambda::error::HandlerError;
use aftercare::runtime::Function;
use aftercare::token::{self};
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

pub use aftercare::app::{App, InitError};
pub use dunning::SweepReport;

pub use aftercare::runtime::SCHEDULE_DETAIL_TYPE;
pub const ROUTE_STRIPE: &str = "POST /v1/webhooks/stripe/{merchantId}";
pub const ROUTE_EVENTS: &str = "POST /v1/billing-events";
pub const ROUTE_RECOVERY: &str = "GET /v1/billing/recovery";
pub const ROUTE_LINK: &str = "GET /v1/billing-links/{token}";
pub const ROUTES: [&str; 4] = [ROUTE_STRIPE, ROUTE_EVENTS, ROUTE_RECOVERY, ROUTE_LINK];
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";
/// Token purpose of update-payment links.
pub use aftercare::links::purpose::INVOICE as LINK_PURPOSE;
pub const EVENT_LINK_CLICKED: &str = "Payment Link Clicked";
/// How long the recovery report may span.
const MAX_PERIOD_DAYS: i64 = 366;

pub use aftercare::links::Links;

/// billing-alert in the shared Lambda shell ([`aftercare::runtime`]), with the update-payment
/// links its emails sign.
pub struct BillingAlert<'a> {
    pub links: Cow<'a, Links>,
}

impl Function for BillingAlert<'_> {
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
        if http::route_key(req) == ROUTE_LINK {
            return Box::pin(link(app, &self.links, req, rid)).await;
        }
        http::respond(
            Box::pin(http_inner(app, &self.links, req, deadline)).await,
            rid,
        )
    }

    async fn schedule(&self, app: &App, deadline: Deadline) -> Result<Value, HandlerError> {
        let report = Box::pin(dunning::sweep(app, &self.links, deadline)).await?;
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
    let function = BillingAlert {
        links: Cow::Borrowed(links),
    };
    aftercare::runtime::dispatch(&function, app, payload, request_id, deadline).await
}

async fn http_inner(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let route = http::route_key(req);
    if route == ROUTE_STRIPE {
        return stripe_webhook(app, links, req, deadline).await;
    }
    if !ROUTES.contains(&route.as_str()) {
        return Err(ApiError::not_found("the route"));
    }
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    if route == ROUTE_RECOVERY {
        let (from, to) = http::period(req, app.clock.now(), 30, MAX_PERIOD_DAYS)?;
        return Ok((200, dunning::recovery(app, &merchant, from, to).await?));
    }
    http::require_json(req)?;
    let body = http::body_bytes(req)?;
    let input: GenericEvent = parse_json(&body)?;
    let (event_id, event) = input.validate()?;
    let hash = hex::encode(&Sha256::digest(&body)[..16]);
    // Same id, different content: refuse rather than silently pick one.
    if let Some(stored) = app.store.event_hash(&merchant.id, "api", &event_id).await?
        && stored != hash
    {
        return Err(ApiError::new(
            409,
            "idempotency_conflict",
            "a different event with this id was processed",
        )
        .field("id"));
    }
    let ev = EventKey {
        provider: "api",
        event_id: &event_id,
        kind: event.kind().as_str(),
        content_hash: &hash,
    };
    let result = dunning::process(app, links, &merchant, &ev, event, deadline).await?;
    Ok((200, result))
}

/// Stripe's webhook: the signature is verified before anything is parsed or stored.
async fn stripe_webhook(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let signed = app
        .tenancy
        .verify_webhook(
            req,
            STRIPE_SIGNATURE_HEADER,
            "Stripe-Signature",
            app.clock.now(),
        )
        .await?;
    let (merchant, body) = (signed.merchant, signed.body);
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let event: stripe::StripeEvent = parse_json(&body)?;
    let parsed = stripe::parse(&event)?;
    let hash = hex::encode(&Sha256::digest(&body)[..16]);
    let at = Timestamp::from_second(event.created).unwrap_or(app.clock.now());
    let result = match parsed {
        stripe::Parsed::Ignored => json!({"result": "ignored", "type": event.kind}),
        stripe::Parsed::Billing(billing) => {
            let ev = EventKey {
                provider: "stripe",
                event_id: &event.id,
                kind: billing.kind().as_str(),
                content_hash: &hash,
            };
            dunning::process(app, links, &merchant, &ev, billing, deadline).await?
        }
        stripe::Parsed::Subscription(patch) => {
            patch_subscription(app, &merchant, patch, at).await?
        }
        stripe::Parsed::Card { customer, card } => {
            update_cards(app, &merchant, &customer, card, at).await?
        }
    };
    Ok((200, result))
}

/// Applies Stripe's view of a subscription Aftercare knows (from the merchant API); an unknown
/// subscription is acknowledged (Stripe's object lacks the customer's email to create it).
async fn patch_subscription(
    app: &App,
    merchant: &Merchant,
    patch: stripe::SubscriptionPatch,
    at: Timestamp,
) -> Result<Value, ApiError> {
    let Some(stored) = app.store.get_subscription(&merchant.id, &patch.id).await? else {
        return Ok(json!({"result": "unknown_subscription", "subscription_id": patch.id}));
    };
    let mut sub = stored.subscription;
    if at <= sub.updated_at {
        return Ok(json!({"result": "stale", "subscription_id": sub.id}));
    }
    if let Some(s) = patch.status {
        sub.status = s;
    }
    if let Some(t) = patch.next_renewal_at {
        sub.next_renewal_at = t;
    }
    if let Some(p) = patch.price {
        sub.price = p;
    }
    if let Some(i) = patch.interval {
        sub.interval = i;
    }
    if let Some(n) = patch.plan_name {
        sub.plan_name = n;
    }
    sub.updated_at = at;
    let (outcome, _) =
        aftercare::usecases::subscriptions::apply(&app.store, merchant, sub, app.clock.now())
            .await?;
    Ok(
        json!({"result": aftercare::usecases::subscriptions::outcome_name(&outcome), "subscription_id": patch.id}),
    )
}

/// A customer's card changed: every subscription of theirs gets it (and its card notices follow).
async fn update_cards(
    app: &App,
    merchant: &Merchant,
    customer: &str,
    card: aftercare::domain::subscription::Card,
    at: Timestamp,
) -> Result<Value, ApiError> {
    let customer = aftercare::domain::CustomerId::parse("data.object.customer", customer)?;
    let mut updated = 0;
    for id in app
        .store
        .customer_subscriptions(&merchant.id, &customer)
        .await?
    {
        let Some(stored) = app.store.get_subscription(&merchant.id, &id).await? else {
            continue;
        };
        let mut sub = stored.subscription;
        if at <= sub.updated_at || sub.card.as_ref() == Some(&card) {
            continue;
        }
        sub.card = Some(card.clone());
        sub.updated_at = at;
        let (outcome, _) =
            aftercare::usecases::subscriptions::apply(&app.store, merchant, sub, app.clock.now())
                .await?;
        if matches!(
            outcome,
            aftercare::adapters::store::subscriptions::UpsertOutcome::Updated
        ) {
            updated += 1;
        }
    }
    Ok(json!({"result": "card_updated", "subscriptions_updated": updated}))
}

/// `GET /v1/billing-links/{token}`: publish the click, redirect to where the card is updated.
async fn link(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    rid: &str,
) -> aws_lambda_events::apigw::ApiGatewayV2httpResponse {
    let token = req
        .path_parameters
        .get("token")
        .map(String::as_str)
        .unwrap_or_default();
    let now = app.clock.now();
    let claims = match links.verify(token, LINK_PURPOSE, now) {
        Ok(c) => c,
        Err(token::TokenError::Expired) => {
            return http::error_page(&app.renderer, None, 410, "expired", rid);
        }
        Err(_) => return http::error_page(&app.renderer, None, 400, "invalid", rid),
    };
    let merchant = match MerchantId::parse("merchant", &claims.merchant) {
        Ok(id) => app.merchants.merchant(&id).await.ok().flatten(),
        Err(_) => None,
    };
    let Some(merchant) = merchant else {
        return http::error_page(&app.renderer, None, 404, "not_found", rid);
    };
    let target = claims
        .value
        .clone()
        .or_else(|| merchant.settings.dunning.update_payment_url.clone());
    let Some(target) = target else {
        return http::error_page(&app.renderer, Some(&merchant), 404, "not_found", rid);
    };
    let detail = json!({
        "event_id": hex::encode(&Sha256::digest(format!("{}|{}|{rid}", merchant.id, claims.subject).as_bytes())[..16]),
        "merchant_id": merchant.id, "invoice_id": claims.subject, "action": "update_payment",
        "at": now,
    });
    app.events
        .publish(&merchant, EVENT_LINK_CLICKED, &detail, now)
        .await;
    tracing::info!(invoice_id = %claims.subject, "update-payment link clicked");
    http::redirect_response(&target, rid)
}
