//! The links in subscription emails and the hosted page.
//!
//! A link's token names the merchant, the subscription and the action (`manage`, `renew`,
//! `update_payment`); it is signed and expires some weeks after the date it is about. A click is
//! recorded and published for the merchant, then redirected: to the merchant's portal, with a
//! query they can verify (`aftercare_signature` = hex HMAC-SHA256 with their first webhook secret
//! over `<subscription>.<customer>.<action>.<expires>`), or, without a portal, to the hosted page.
//! The hosted page shows the subscription and lets the customer ask to cancel or renew; the
//! request is published (`Subscription Action Requested`) for the merchant's billing system, which
//! stays the system of record.

use crate::{EVENT_ACTION_REQUESTED, EVENT_LINK_CLICKED, Links};
use aftercare::adapters::mail::billing::{card_value, subscription_value};
use aftercare::adapters::store::subscriptions::{SubscriptionClick, SubscriptionRecord};
use aftercare::app::App;
use aftercare::domain::Merchant;
use aftercare::domain::ids::SubscriptionId;
use aftercare::domain::merchant::url_component;
use aftercare::http;
use aftercare::ports::MerchantDirectory as _;
use aftercare::token::{Claims, TokenError};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

enum PageError {
    Invalid,
    Expired,
    NotFound,
    Unavailable,
}

impl From<TokenError> for PageError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => PageError::Expired,
            _ => PageError::Invalid,
        }
    }
}

/// What a verified link resolves to.
struct Resolved {
    claims: Claims,
    merchant: Arc<Merchant>,
    record: SubscriptionRecord,
}

async fn resolve(app: &App, links: &Links, token: &str) -> Result<Resolved, PageError> {
    let claims = links.verify(token, crate::LINK_PURPOSE, app.clock.now())?;
    let merchant_id = aftercare::domain::MerchantId::parse("merchant", &claims.merchant)
        .map_err(|_| PageError::Invalid)?;
    let sub_id =
        SubscriptionId::parse("subscription", &claims.subject).map_err(|_| PageError::Invalid)?;
    let merchant = app
        .merchants
        .merchant(&merchant_id)
        .await
        .map_err(|_| PageError::Unavailable)?
        .ok_or(PageError::NotFound)?;
    let record = app
        .store
        .get_subscription(&merchant.id, &sub_id)
        .await
        .map_err(|_| PageError::Unavailable)?
        .ok_or(PageError::NotFound)?;
    Ok(Resolved {
        claims,
        merchant,
        record,
    })
}

fn error_page(app: &App, e: PageError, rid: &str) -> ApiGatewayV2httpResponse {
    let (status, reason) = match e {
        PageError::Invalid => (400, "invalid"),
        PageError::Expired => (410, "expired"),
        PageError::NotFound => (404, "not_found"),
        PageError::Unavailable => (503, "invalid"),
    };
    http::error_page(&app.renderer, None, status, reason, rid)
}

/// An event id receivers can dedupe on: the same click or request always gets the same id.
fn event_id(parts: &[&str]) -> String {
    hex::encode(&Sha256::digest(parts.join("|").as_bytes())[..16])
}

async fn record_and_publish(
    app: &App,
    r: &Resolved,
    action: &str,
    detail_type: &str,
    dedupe: &str,
) -> Result<(), PageError> {
    let now = app.clock.now();
    let sub = &r.record.subscription;
    let click = SubscriptionClick {
        subscription_id: sub.id.clone(),
        customer_id: sub.customer.id.to_string(),
        action: action.to_owned(),
        at: now,
    };
    app.store
        .record_subscription_click(&r.merchant.id, &click, app.send_expiry(&r.merchant, now))
        .await
        .map_err(|_| PageError::Unavailable)?;
    let detail = json!({
        "event_id": event_id(&[r.merchant.id.as_str(), sub.id.as_str(), action, dedupe]),
        "merchant_id": r.merchant.id, "subscription_id": sub.id, "customer_id": sub.customer.id,
        "action": action, "at": now,
    });
    app.events
        .publish(&r.merchant, detail_type, &detail, now)
        .await;
    Ok(())
}

/// The merchant's portal URL with a query they can verify.
fn portal_url(
    merchant: &Merchant,
    r: &SubscriptionRecord,
    action: &str,
    expires: i64,
) -> Option<String> {
    let base = r.subscription.manage_url.as_deref()?;
    let sub = &r.subscription;
    let mut query = format!(
        "aftercare_subscription={}&aftercare_customer={}&aftercare_action={}&aftercare_expires={expires}",
        url_component(sub.id.as_str()),
        url_component(sub.customer.id.as_str()),
        url_component(action),
    );
    if let Some(secret) = merchant.webhook_secrets.first()
        && let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.0.as_bytes())
    {
        mac.update(format!("{}.{}.{action}.{expires}", sub.id, sub.customer.id).as_bytes());
        query.push_str(&format!(
            "&aftercare_signature={}",
            hex::encode(mac.finalize().into_bytes())
        ));
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}{query}"))
}

/// `GET /v1/subscription-links/{token}`: record, publish, redirect.
pub async fn link(app: &App, links: &Links, token: &str, rid: &str) -> ApiGatewayV2httpResponse {
    let r = match resolve(app, links, token).await {
        Ok(r) => r,
        Err(e) => return error_page(app, e, rid),
    };
    let action = r.claims.value.clone().unwrap_or_else(|| "manage".into());
    if let Err(e) = record_and_publish(app, &r, &action, EVENT_LINK_CLICKED, rid).await {
        return error_page(app, e, rid);
    }
    let target = match action.as_str() {
        "update_payment" => r
            .merchant
            .settings
            .dunning
            .update_payment_url
            .clone()
            .or_else(|| portal_url(&r.merchant, &r.record, &action, r.claims.expires)),
        _ => portal_url(&r.merchant, &r.record, &action, r.claims.expires),
    };
    let target = target.unwrap_or_else(|| format!("{}/v1/subscription-page/{token}", links.base()));
    http::redirect_response(&target, rid)
}

fn actions(r: &SubscriptionRecord) -> Vec<Value> {
    let status = r.subscription.status;
    if status.offers_renewal() {
        vec![json!({"value": "renew", "label_key": "subscription_page.renew", "primary": true})]
    } else if status.auto_renews() {
        vec![
            json!({"value": "keep", "label_key": "subscription_page.keep", "primary": true}),
            json!({"value": "cancel", "label_key": "subscription_page.cancel", "primary": false}),
        ]
    } else {
        Vec::new()
    }
}

fn page_data(links: &Links, r: &Resolved, token: &str) -> Value {
    let sub = &r.record.subscription;
    let locale = sub.customer.locale_or(r.merchant.default_locale);
    json!({
        "subscription": subscription_value(sub, &r.merchant, locale, false),
        "card": sub.card.as_ref().map(card_value),
        "links": {"update_payment_url": r.merchant.settings.dunning.update_payment_url},
        "action_url": format!("{}/v1/subscription-page/{token}", links.base()),
        "actions": actions(&r.record),
    })
}

/// `GET /v1/subscription-page/{token}`: the hosted page. Shows; records nothing.
pub async fn page(app: &App, links: &Links, token: &str, rid: &str) -> ApiGatewayV2httpResponse {
    let r = match resolve(app, links, token).await {
        Ok(r) => r,
        Err(e) => return error_page(app, e, rid),
    };
    let locale = r
        .record
        .subscription
        .customer
        .locale_or(r.merchant.default_locale);
    match app.renderer.render_page(
        "subscription",
        "subscription_page.title",
        locale,
        &r.merchant,
        &page_data(links, &r, token),
    ) {
        Ok(html) => http::html_response(200, html, rid),
        Err(_) => error_page(app, PageError::Unavailable, rid),
    }
}

/// `POST /v1/subscription-page/{token}`: the customer's request, passed on to the merchant.
pub async fn request(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let r = match resolve(app, links, token).await {
        Ok(r) => r,
        Err(e) => return error_page(app, e, rid),
    };
    let body = http::body_bytes(req).unwrap_or_default();
    let fields = http::form_fields(&body);
    let action = fields.get("action").map(String::as_str).unwrap_or_default();
    let allowed = actions(&r.record)
        .iter()
        .any(|a| a["value"].as_str() == Some(action));
    if !allowed {
        return error_page(app, PageError::Invalid, rid);
    }
    if action != "keep"
        && let Err(e) = record_and_publish(
            app,
            &r,
            &format!("{action}_requested"),
            EVENT_ACTION_REQUESTED,
            token,
        )
        .await
    {
        return error_page(app, e, rid);
    }
    let sub = &r.record.subscription;
    let locale = sub.customer.locale_or(r.merchant.default_locale);
    let data = json!({
        "done": action,
        "subscription": subscription_value(sub, &r.merchant, locale, false),
    });
    match app.renderer.render_page(
        "subscription_done",
        "subscription_done.title",
        locale,
        &r.merchant,
        &data,
    ) {
        Ok(html) => http::html_response(200, html, rid),
        Err(_) => error_page(app, PageError::Unavailable, rid),
    }
}
