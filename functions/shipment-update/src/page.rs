//! `GET /v1/track/{token}`: a shipment's branded tracking page.
//!
//! The token (purpose `track`, subject the shipment id, the merchant in its claims) is the only
//! credential: the shipment is looked up under the token's merchant, so a token of one merchant
//! finds nothing of another. A tampered, wrong-purpose or malformed token shows the error page
//! with 400, an expired one 410, an unknown merchant or a shipment that is not (or no longer)
//! stored 404, in the merchant's look once the merchant is known. Opening the page records
//! nothing but one more view on the shipment ([`aftercare::usecases::tracking_page`]).

use super::*;
use aftercare::adapters::mail::format::date_time;
use aftercare::domain::catalogue::Sku;
use aftercare::domain::shipment::TrackingStatus;
use aftercare::domain::{Locale, Money};
use aftercare::links::purpose;
use aftercare::token::TokenError;
use aftercare::usecases::tracking_page::{PageError, TrackingFacts, TrackingPage};

/// The milestones of the progress bar, in order.
const STEPS: [TrackingStatus; 4] = [
    TrackingStatus::InfoReceived,
    TrackingStatus::InTransit,
    TrackingStatus::OutForDelivery,
    TrackingStatus::Delivered,
];

/// Why the page cannot be shown: its status and the error page's reason.
fn failure(status: u16) -> (u16, &'static str) {
    match status {
        410 => (410, "expired"),
        404 => (404, "not_found"),
        _ => (status, "invalid"),
    }
}

fn token_status(e: &TokenError) -> u16 {
    match e {
        TokenError::Expired => 410,
        _ => 400,
    }
}

/// The page for `token`, or the error page.
pub(crate) async fn track_page(app: &App, token: &str, rid: &str) -> ApiGatewayV2httpResponse {
    let error = |merchant: Option<&Merchant>, status: u16| {
        let (status, reason) = failure(status);
        http::error_page(&app.renderer, merchant, status, reason, rid)
    };
    let Some(links) = app.links.as_ref() else {
        tracing::error!("tracking page without a link signer: AFTERCARE_SIGNING_KEY missing");
        return error(None, 503);
    };
    let claims = match links.verify(token, purpose::TRACK, app.clock.now()) {
        Ok(c) => c,
        Err(e) => return error(None, token_status(&e)),
    };
    let Ok(merchant_id) = MerchantId::parse("merchant", &claims.merchant) else {
        return error(None, 400);
    };
    let merchant = match app.merchants.merchant(&merchant_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return error(None, 404),
        Err(_) => return error(None, 503),
    };
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let Ok(shipment_id) = ShipmentId::parse("shipment", &claims.subject) else {
        return error(Some(&merchant), 400);
    };
    let page = TrackingPage {
        book: &app.store,
        catalogue: &app.store,
    };
    let facts = match page.open(&merchant, &shipment_id, app.clock.now()).await {
        Ok(f) => f,
        Err(PageError::UnknownShipment) => return error(Some(&merchant), 404),
        Err(PageError::Store(e)) => {
            tracing::error!(error = %e, "store failure behind the tracking page");
            return error(Some(&merchant), 503);
        }
    };
    let locale = facts.record.customer.locale_or(merchant.default_locale);
    let origin = merchant
        .branding
        .logo_url
        .as_deref()
        .and_then(http::image_origin);
    let mut data = page_data(&merchant, &facts, locale, origin.is_some());
    data["return_url"] = return_url(
        &merchant,
        &facts.record,
        facts.record.state().delivered_at(),
        Some(links),
    )
    .into();
    match app
        .renderer
        .render_page("track", "page.track.title", locale, &merchant, &data)
    {
        Ok(html) => http::html_response_with_images(200, html, rid, origin.as_deref()),
        Err(e) => {
            tracing::error!(error = %e, "tracking page failed to render");
            error(Some(&merchant), 503)
        }
    }
}

/// The progress bar: each milestone done, current or still to come.
fn steps(record: &ShipmentRecord) -> Vec<Value> {
    let progress = record.state().progress.map(|(s, _)| s);
    let delivered = progress == Some(TrackingStatus::Delivered);
    let current = match progress {
        None | Some(TrackingStatus::InfoReceived) => 0,
        Some(TrackingStatus::InTransit | TrackingStatus::ReturnedToSender) => 1,
        Some(TrackingStatus::OutForDelivery | TrackingStatus::AvailableForPickup) => 2,
        Some(_) => 3,
    };
    STEPS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = match i.cmp(&current) {
                std::cmp::Ordering::Less => "done",
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Greater => "todo",
            };
            json!({"status": s.as_str(), "state": state, "done": i < current || (i == current && delivered)})
        })
        .collect()
}

fn status_of(record: &ShipmentRecord) -> &'static str {
    record.state().status().map_or("none", |s| s.as_str())
}

fn page_data(merchant: &Merchant, facts: &TrackingFacts, locale: Locale, show_logo: bool) -> Value {
    let record = &facts.record;
    let sh = &record.shipment;
    let tz = record.customer.time_zone_or(&merchant.time_zone);
    let status = record.state().status();
    let issue = status.filter(|s| {
        matches!(
            s,
            TrackingStatus::AvailableForPickup
                | TrackingStatus::AttemptFailed
                | TrackingStatus::Exception
                | TrackingStatus::ReturnedToSender
        )
    });
    let items = |r: &ShipmentRecord| -> Vec<Value> {
        r.shipment
            .items
            .iter()
            .map(|i| json!({"name": i.name.clone().unwrap_or_else(|| i.sku.clone()), "quantity": i.quantity}))
            .collect()
    };
    let mut seen = std::collections::BTreeSet::new();
    let tips: Vec<Value> = sh
        .items
        .iter()
        .filter(|i| seen.insert(i.sku.as_str()))
        .filter_map(|i| {
            let product = facts.products.get(&Sku::parse("sku", &i.sku).ok()?)?;
            let name = i.name.clone().unwrap_or_else(|| product.name.clone());
            Some((name, product.tips_for(locale, merchant.default_locale)))
        })
        .flat_map(|(name, tips)| tips.iter().map(move |t| json!({"name": name, "text": t})))
        .collect();
    let related: Vec<Value> = facts
        .related
        .iter()
        .map(|p| {
            let price = match (p.price, p.currency) {
                (Some(amount), Some(c)) => Some(Money::new(amount, c).format(locale)),
                _ => None,
            };
            json!({"name": p.name, "url": p.url, "price": price})
        })
        .collect();
    json!({
        "order": {"number": sh.order_id},
        "status": status_of(record),
        "issue": issue.map(|s| s.as_str()),
        "late": facts.late,
        "steps": steps(record),
        "show_logo": show_logo,
        "expected_on": promised_on(record, locale),
        "delivered_on": record.state().delivered_at().map(|at| long_date(at, tz, locale)),
        "shipped_on": long_date(sh.shipped_at, tz, locale),
        "carrier": sh.carrier,
        "parcels": sh.parcels(),
        "timeline": facts.history.iter().map(|cp| json!({
            "status": cp.status.as_str(),
            "at_iso": cp.occurred_at.to_string(),
            "at": date_time(cp.occurred_at, tz, locale),
            "location": cp.location,
            "message": cp.message,
        })).collect::<Vec<_>>(),
        "zone": tz,
        "items": items(record),
        "others": facts.others.iter().map(|o| json!({
            "carrier": o.shipment.carrier,
            "tracking_number": o.shipment.tracking_number,
            "status": status_of(o),
            "items": items(o),
        })).collect::<Vec<_>>(),
        "tips": tips,
        "related": related,
    })
}
