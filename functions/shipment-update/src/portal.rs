//! `GET /v1/return/{token}` and `POST /v1/return/{token}`: an order's branded return portal.
//!
//! The token (purpose `return`, subject the order id, the merchant in its claims) is the only
//! credential: the order is looked up under the token's merchant, so a token of one merchant
//! finds nothing of another. A tampered, wrong-purpose or malformed token shows the error page
//! with 400, an expired one 410, an unknown merchant or order 404.
//!
//! The page shows what of the order may still come back (and why not), the policy applied and
//! the order's returns so far; opening it stores nothing. Its form carries a one-time key made
//! when the page is rendered: the POST asks for the return under that key
//! ([`aftercare::usecases::returns::Returns::request`]), so pressing the button twice or
//! reloading the answer finds the one return instead of making another. A request the policy
//! refuses shows the form again with the message next to the field it names (422).

use super::*;
use crate::returns::{publish, returns};
use aftercare::domain::Locale;
use aftercare::domain::Money;
use aftercare::domain::ids::new_id;
use aftercare::domain::returns::{
    NotReturnable, Requester, Resolution, ReturnInput, ReturnLineInput, ReturnPolicy, ReturnStatus,
};
use aftercare::links::purpose;
use aftercare::ports::returns::ReturnBook as _;
use aftercare::token::TokenError;
use aftercare::usecases::returns::{Outcome, ReturnError, ReturnPage};
use std::collections::BTreeMap;

/// Longest one-time form key accepted.
const MAX_KEY: usize = 64;

/// A verified portal link: its merchant and order.
struct Portal {
    merchant: std::sync::Arc<Merchant>,
    order_id: OrderId,
    action_url: String,
}

type PageResponse = ApiGatewayV2httpResponse;

fn error(app: &App, merchant: Option<&Merchant>, status: u16, rid: &str) -> PageResponse {
    let reason = match status {
        410 => "expired",
        404 => "not_found",
        _ => "invalid",
    };
    http::error_page(&app.renderer, merchant, status, reason, rid)
}

/// Verifies `token` (before anything is read), then finds its merchant.
async fn verify(app: &App, token: &str, rid: &str) -> Result<Portal, PageResponse> {
    let Some(links) = app.links.as_ref() else {
        tracing::error!("return portal without a link signer: AFTERCARE_SIGNING_KEY missing");
        return Err(error(app, None, 503, rid));
    };
    let claims = links
        .verify(token, purpose::RETURN, app.clock.now())
        .map_err(|e| {
            let status = if matches!(e, TokenError::Expired) {
                410
            } else {
                400
            };
            error(app, None, status, rid)
        })?;
    let merchant_id =
        MerchantId::parse("merchant", &claims.merchant).map_err(|_| error(app, None, 400, rid))?;
    let merchant = match app.merchants.merchant(&merchant_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return Err(error(app, None, 404, rid)),
        Err(_) => return Err(error(app, None, 503, rid)),
    };
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let Ok(order_id) = OrderId::parse("order", &claims.subject) else {
        return Err(error(app, Some(&merchant), 400, rid));
    };
    Ok(Portal {
        merchant,
        order_id,
        action_url: format!("{}/v1/return/{token}", links.base()),
    })
}

/// The page for `token`, or the error page. Reads only.
pub(crate) async fn return_page(app: &App, token: &str, rid: &str) -> PageResponse {
    let portal = match verify(app, token, rid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let page = match load(app, &portal, rid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let form = Form::default();
    render_form(app, &portal, &page, &form, &Problems::default(), 200, rid).await
}

/// The order's page, or the error page (404 for an order that is not stored).
async fn load(app: &App, portal: &Portal, rid: &str) -> Result<ReturnPage, PageResponse> {
    match returns(app).page(&portal.merchant, &portal.order_id).await {
        Ok(p) => Ok(p),
        Err(ReturnError::UnknownOrder) => Err(error(app, Some(&portal.merchant), 404, rid)),
        Err(e) => {
            tracing::error!(error = %e, "store failure behind the return portal");
            Err(error(app, Some(&portal.merchant), 503, rid))
        }
    }
}

/// What the customer chose, as posted (kept when the form is shown again).
#[derive(Debug, Default, Clone)]
struct Form {
    key: Option<String>,
    resolution: Option<String>,
    comment: Option<String>,
    /// Per order line index: quantity, reason, exchange SKU (as posted).
    lines: BTreeMap<usize, LineChoice>,
}

#[derive(Debug, Default, Clone)]
struct LineChoice {
    quantity: String,
    reason: String,
    exchange: String,
}

impl Form {
    fn parse(body: &[u8], lines: usize) -> Self {
        let fields = http::form_fields(body);
        let get = |k: &str| fields.get(k).map(|v| v.trim().to_owned());
        let lines = (0..lines)
            .map(|i| {
                let choice = LineChoice {
                    quantity: get(&format!("qty-{i}")).unwrap_or_default(),
                    reason: get(&format!("reason-{i}")).unwrap_or_default(),
                    exchange: get(&format!("exchange-{i}")).unwrap_or_default(),
                };
                (i, choice)
            })
            .collect();
        Form {
            key: get("key").filter(|k| !k.is_empty()),
            resolution: get("resolution").filter(|r| !r.is_empty()),
            comment: fields.get("comment").cloned(),
            lines,
        }
    }

    fn line(&self, i: usize) -> Option<&LineChoice> {
        self.lines.get(&i)
    }
}

/// Why a submitted form is shown again: a message per order line, and one for the whole form.
#[derive(Debug, Default)]
struct Problems {
    lines: BTreeMap<usize, &'static str>,
    /// A string key (`page.return.error.*`) for the form as a whole.
    form: Option<&'static str>,
    /// A string key for the resolution.
    resolution: Option<&'static str>,
    /// A string key for the comment.
    comment: Option<&'static str>,
}

impl Problems {
    fn any(&self) -> bool {
        !self.lines.is_empty()
            || self.form.is_some()
            || self.resolution.is_some()
            || self.comment.is_some()
    }
}

/// A one-time form key: 1 to 64 of `A-Z a-z 0-9 - _`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The request the form asks for (lines with quantity 0 left out) and the order line index of
/// each of its items; or the problems found before asking.
fn request_of(form: &Form, page: &ReturnPage) -> Result<(ReturnInput, Vec<usize>), Problems> {
    let mut problems = Problems::default();
    let mut items = Vec::new();
    let mut at = Vec::new();
    for (i, line) in page.eligibility.lines.iter().enumerate() {
        let Some(choice) = form.line(i) else { continue };
        let quantity = if choice.quantity.is_empty() {
            0
        } else {
            match choice.quantity.parse::<i64>() {
                Ok(q) if q >= 0 => q,
                _ => {
                    problems.lines.insert(i, "page.return.error.quantity");
                    continue;
                }
            }
        };
        if quantity == 0 {
            continue;
        }
        items.push(ReturnLineInput {
            sku: line.sku.clone(),
            quantity,
            reason: choice.reason.clone(),
            exchange_sku: (!choice.exchange.is_empty()).then(|| choice.exchange.clone()),
        });
        at.push(i);
    }
    if items.is_empty() && problems.lines.is_empty() {
        problems.form = Some("page.return.error.none");
    }
    if problems.any() {
        return Err(problems);
    }
    let input = ReturnInput {
        items,
        resolution: form.resolution.clone().unwrap_or_default(),
        comment: form.comment.clone().filter(|c| !c.trim().is_empty()),
    };
    Ok((input, at))
}

/// The problem a refused request names, placed next to its field (`items[2].quantity` is the
/// order line `at[2]`).
fn problems_of(e: &FieldError, at: &[usize]) -> Problems {
    let mut p = Problems::default();
    let line = e
        .field
        .strip_prefix("items[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(n, field)| Some((n.parse::<usize>().ok()?, field)))
        .and_then(|(n, field)| Some((*at.get(n)?, field)));
    match (line, e.field.as_str()) {
        (Some((i, field)), _) => {
            let key = match (field, e.code) {
                (".reason", _) => "page.return.error.reason",
                (".exchange_sku", _) => "page.return.error.exchange",
                (_, "too_many") => "page.return.error.quantity",
                (".quantity", _) => "page.return.error.blocked",
                _ => "page.return.error.line",
            };
            p.lines.insert(i, key);
        }
        (None, "resolution") => p.resolution = Some("page.return.error.resolution"),
        (None, "comment") => p.comment = Some("page.return.error.comment"),
        (None, _) if e.code == "returns_off" => p.form = Some("page.return.off_error"),
        (None, _) => p.form = Some("page.return.error.none"),
    }
    p
}

/// `POST`: asks for the return under the form's key; the confirmation, or the form again.
pub(crate) async fn return_submit(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    token: &str,
    rid: &str,
    deadline: Deadline,
) -> PageResponse {
    let portal = match verify(app, token, rid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let merchant = &portal.merchant;
    let Ok(body) = http::body_bytes(req) else {
        return error(app, Some(merchant), 400, rid);
    };
    let page = match load(app, &portal, rid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let form = Form::parse(&body, page.eligibility.lines.len());
    let Some(key) = form.key.clone().filter(|k| valid_key(k)) else {
        return error(app, Some(merchant), 400, rid);
    };
    let (input, at) = match request_of(&form, &page) {
        Ok(r) => r,
        Err(problems) => {
            return render_form(app, &portal, &page, &form, &problems, 422, rid).await;
        }
    };
    let outcome = returns(app)
        .request(
            merchant,
            &portal.order_id,
            &key,
            &input,
            Requester::Customer,
            deadline,
        )
        .await;
    match outcome {
        Ok(outcome) => {
            if outcome.changed {
                publish(app, merchant, &outcome.record).await;
            }
            // Approved at once: its lines leave the review request now (the merchant's later
            // moves do it again if this could not).
            if let Err(e) = crate::returns::follow_through(app, merchant, &outcome.record).await {
                tracing::warn!(error = %e, return_id = %outcome.record.id, "a return's follow-through is left to its next move");
            }
            render_done(app, &portal, &page, &outcome, rid)
        }
        Err(ReturnError::Invalid(e)) => {
            let problems = problems_of(&e, &at);
            render_form(app, &portal, &page, &form, &problems, 422, rid).await
        }
        Err(ReturnError::KeyReused) => {
            // The form was sent before with other choices: its return is listed now; a fresh
            // key lets the customer ask for another.
            let page = match load(app, &portal, rid).await {
                Ok(p) => p,
                Err(resp) => return resp,
            };
            let problems = Problems {
                form: Some("page.return.error.reused"),
                ..Problems::default()
            };
            let form = Form { key: None, ..form };
            render_form(app, &portal, &page, &form, &problems, 409, rid).await
        }
        Err(ReturnError::TooManyReturns) => {
            let problems = Problems {
                form: Some("page.return.error.too_many_returns"),
                ..Problems::default()
            };
            render_form(app, &portal, &page, &form, &problems, 422, rid).await
        }
        Err(ReturnError::UnknownOrder) => error(app, Some(merchant), 404, rid),
        Err(e) => {
            tracing::error!(error = %e, "return request failed behind the portal");
            error(app, Some(merchant), 503, rid)
        }
    }
}

/// The customer's locale and time zone for the order.
fn locale_and_zone<'a>(merchant: &'a Merchant, page: &'a ReturnPage) -> (Locale, &'a str) {
    let customer = &page.order.order.order.customer;
    let locale = customer.locale_or(merchant.default_locale);
    let tz = customer.time_zone_or(&merchant.time_zone);
    (locale, tz)
}

fn money(amount: i64, page: &ReturnPage, locale: Locale) -> String {
    Money::new(amount, page.order.order.order.currency).format(locale)
}

fn blocked_key(why: NotReturnable) -> &'static str {
    match why {
        NotReturnable::ReturnsOff => "page.return.blocked.returns_off",
        NotReturnable::WindowClosed => "page.return.blocked.window_closed",
        NotReturnable::Excluded => "page.return.blocked.excluded",
        NotReturnable::AlreadyReturned => "page.return.blocked.already_returned",
    }
}

/// The exchange choices per SKU of the order: the catalogue's `related` products with their
/// names (none when the policy offers no exchange).
async fn exchange_options(
    app: &App,
    merchant: &Merchant,
    page: &ReturnPage,
) -> Result<BTreeMap<String, Vec<(String, String)>>, aftercare::ports::StoreError> {
    let mut out = BTreeMap::new();
    if !merchant
        .settings
        .returns
        .resolutions
        .contains(&Resolution::Exchange)
    {
        return Ok(out);
    }
    let skus: Vec<String> = page
        .eligibility
        .lines
        .iter()
        .filter(|l| l.returnable > 0)
        .map(|l| l.sku.clone())
        .collect();
    if skus.is_empty() {
        return Ok(out);
    }
    let products = app.store.products_of(&merchant.id, &skus).await?;
    let mut related: Vec<String> = products
        .iter()
        .flat_map(|p| p.related.iter().map(|s| s.as_str().to_owned()))
        .collect();
    related.sort();
    related.dedup();
    let names: BTreeMap<String, String> = if related.is_empty() {
        BTreeMap::new()
    } else {
        app.store
            .products_of(&merchant.id, &related)
            .await?
            .into_iter()
            .map(|p| (p.sku.as_str().to_owned(), p.name))
            .collect()
    };
    for p in products {
        let options = p
            .related
            .iter()
            .filter_map(|s| {
                let sku = s.as_str().to_owned();
                let name = names.get(&sku)?.clone();
                Some((sku, name))
            })
            .collect();
        out.insert(p.sku.as_str().to_owned(), options);
    }
    Ok(out)
}

fn logo_origin(merchant: &Merchant) -> Option<String> {
    merchant
        .branding
        .logo_url
        .as_deref()
        .and_then(http::image_origin)
}

fn shipping_data(policy: &ReturnPolicy) -> Option<Value> {
    let s = &policy.shipping;
    (s.label_url.is_some() || s.instructions.is_some() || s.address.is_some()).then(|| {
        json!({
            "label_url": s.label_url,
            "instructions": s.instructions,
            "address": s.address,
        })
    })
}

/// The form page: the order's lines, the choices, the policy and the returns so far.
async fn render_form(
    app: &App,
    portal: &Portal,
    page: &ReturnPage,
    form: &Form,
    problems: &Problems,
    status: u16,
    rid: &str,
) -> PageResponse {
    let merchant = &portal.merchant;
    let policy = &merchant.settings.returns;
    let (locale, tz) = locale_and_zone(merchant, page);
    let exchanges = match exchange_options(app, merchant, page).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "store failure behind the return portal");
            return error(app, Some(merchant), 503, rid);
        }
    };
    let reasons: Vec<Value> = policy
        .reasons()
        .iter()
        .map(|r| json!({"code": r.code, "label": r.label(locale)}))
        .collect();
    let lines: Vec<Value> = page
        .eligibility
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let choice = form.line(i);
            let chosen = choice
                .and_then(|c| c.quantity.parse::<i64>().ok())
                .unwrap_or(0);
            json!({
                "index": i,
                "sku": l.sku,
                "name": l.name,
                "ordered": l.ordered,
                "returnable": l.returnable,
                "quantities": (0..=l.returnable.max(0)).collect::<Vec<_>>(),
                "quantity": chosen,
                "reason": choice.map(|c| c.reason.clone()),
                "exchange": choice.map(|c| c.exchange.clone()).filter(|e| !e.is_empty()),
                "exchanges": exchanges.get(&l.sku).map(|o| o.iter().map(|(sku, name)| json!({"sku": sku, "name": name})).collect::<Vec<_>>()).unwrap_or_default(),
                "price": money(l.unit_price, page, locale),
                "blocked": l.blocked.map(blocked_key),
                "error": problems.lines.get(&i),
            })
        })
        .collect();
    let chosen_resolution = form
        .resolution
        .clone()
        .or_else(|| policy.resolutions.first().map(|r| r.as_str().to_owned()));
    let resolutions: Vec<Value> = policy
        .resolutions
        .iter()
        .map(|r| json!({"value": r.as_str(), "checked": chosen_resolution.as_deref() == Some(r.as_str())}))
        .collect();
    let window_open = app.clock.now() <= page.eligibility.window_ends;
    let existing: Vec<Value> = page
        .returns
        .iter()
        .map(|r| {
            json!({
                "number": r.number(),
                "status": r.status.as_str(),
                "created_on": long_date(r.created_at, tz, locale),
                "items": r.lines.iter().map(|l| json!({"name": l.name, "quantity": l.quantity})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let origin = logo_origin(merchant);
    let data = json!({
        "show_logo": origin.is_some(),
        "action_url": portal.action_url,
        "form_key": form.key.clone().unwrap_or_else(new_id),
        "order": {
            "number": page.order.order.order.id,
            "placed_on": long_date(page.order.order.order.placed_at, tz, locale),
        },
        "enabled": policy.enabled,
        "any": page.eligibility.any(),
        "lines": lines,
        "reasons": reasons,
        "resolutions": resolutions,
        "exchange_offered": policy.resolutions.contains(&Resolution::Exchange),
        "comment": form.comment,
        "errors": problems.any(),
        "form_error": problems.form,
        "resolution_error": problems.resolution,
        "comment_error": problems.comment,
        "policy": {
            "window_ends": long_date(page.eligibility.window_ends, tz, locale),
            "window_days": policy.window_days,
            "from_delivery": page.eligibility.from_delivery,
            "open": window_open,
            "restocking_fee_percent": policy.restocking_fee_percent,
            "credit_bonus_percent": policy.credit_bonus_percent,
            "shipping": shipping_data(policy),
        },
        "returns": existing,
    });
    match app
        .renderer
        .render_page("returns", "page.return.title", locale, merchant, &data)
    {
        Ok(html) => http::html_response_with_images(status, html, rid, origin.as_deref()),
        Err(e) => {
            tracing::error!(error = %e, "return portal failed to render");
            error(app, Some(merchant), 503, rid)
        }
    }
}

/// The confirmation: the return's number and status, what happens next.
fn render_done(
    app: &App,
    portal: &Portal,
    page: &ReturnPage,
    outcome: &Outcome,
    rid: &str,
) -> PageResponse {
    let merchant = &portal.merchant;
    let policy = &merchant.settings.returns;
    let (locale, tz) = locale_and_zone(merchant, page);
    let r = &outcome.record;
    let approved = r.status == ReturnStatus::Approved;
    let amount = match r.resolution {
        Resolution::Refund => Some(money(r.amounts.refund, page, locale)),
        Resolution::StoreCredit => Some(money(
            r.amounts.credit.saturating_add(r.amounts.credit_bonus),
            page,
            locale,
        )),
        Resolution::Exchange => None,
    };
    let origin = logo_origin(merchant);
    let data = json!({
        "show_logo": origin.is_some(),
        "back_url": portal.action_url,
        "order": {"number": r.order_id},
        "return": {
            "number": r.number(),
            "status": r.status.as_str(),
            "resolution": r.resolution.as_str(),
            "amount": amount,
            "restocking_fee": (r.amounts.restocking_fee > 0).then(|| money(r.amounts.restocking_fee, page, locale)),
            "send_by": r.send_by.map(|t| long_date(t, tz, locale)),
            "items": r.lines.iter().map(|l| json!({
                "name": l.name,
                "quantity": l.quantity,
                "reason": policy.reason(&l.reason).map_or_else(|| l.reason.clone(), |x| x.label(locale).to_owned()),
            })).collect::<Vec<_>>(),
        },
        "shipping": if approved { shipping_data(policy) } else { None },
        "emailed": r.customer.email.is_some(),
    });
    match app.renderer.render_page(
        "return_done",
        "page.return.done.title",
        locale,
        merchant,
        &data,
    ) {
        Ok(html) => http::html_response_with_images(200, html, rid, origin.as_deref()),
        Err(e) => {
            tracing::error!(error = %e, "return confirmation failed to render");
            error(app, Some(merchant), 503, rid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_key_is_short_and_plain() {
        assert!(valid_key(&new_id()));
        assert!(valid_key("a-B_9"));
        assert!(!valid_key(""));
        assert!(!valid_key("a b"));
        assert!(!valid_key(&"k".repeat(65)));
    }

    #[test]
    fn a_refused_line_is_the_order_line_it_was_asked_for() {
        let e = FieldError::new("items[1].quantity", "too_many", "at most 1");
        let p = problems_of(&e, &[0, 3]);
        assert_eq!(p.lines.get(&3), Some(&"page.return.error.quantity"));
        let e = FieldError::new("items[0].reason", "invalid_value", "pick one");
        let p = problems_of(&e, &[2]);
        assert_eq!(p.lines.get(&2), Some(&"page.return.error.reason"));
        let e = FieldError::new("items[0].quantity", "excluded", "cannot");
        assert_eq!(
            problems_of(&e, &[1]).lines.get(&1),
            Some(&"page.return.error.blocked")
        );
        let e = FieldError::new("resolution", "not_offered", "no");
        assert!(problems_of(&e, &[]).resolution.is_some());
        let e = FieldError::new("comment", "too_long", "no");
        assert!(problems_of(&e, &[]).comment.is_some());
    }
}
