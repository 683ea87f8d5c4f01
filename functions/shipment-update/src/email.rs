//! The shipping emails' content: the customer's milestone and late notices, the merchant's alert.

use super::*;

/// Renders a shipment email: to the customer, or for [`EmailKind::MerchantLateAlert`] to the
/// merchant's operations address (in the merchant's language).
pub(crate) fn shipment_email(
    app: &App,
    merchant: &Merchant,
    record: &ShipmentRecord,
    kind: EmailKind,
    cp: Option<&Checkpoint>,
) -> Option<OutgoingEmail> {
    let customer = &record.customer;
    let (to, locale) = match kind {
        EmailKind::MerchantLateAlert => (
            Mailbox::new(Some(&merchant.name), merchant.ops_email.clone()?),
            merchant.default_locale,
        ),
        _ => (
            Mailbox::new(customer.display_name().as_deref(), customer.email.clone()?),
            customer.locale_or(merchant.default_locale),
        ),
    };
    // The App's links, so the same link is in the email whichever function records the shipment
    // (order-placed's shop connectors call `record_shipment` too).
    let mut data = email_data(merchant, record, cp, locale, app.links.as_ref());
    // The delivery being announced (the record may not carry it yet when the scan is new).
    let delivered = record.state().delivered_at().or_else(|| {
        cp.filter(|c| c.status == aftercare::domain::shipment::TrackingStatus::Delivered)
            .map(|c| c.occurred_at)
    });
    if kind == EmailKind::ShipmentDelivered
        && let Some(url) = return_url(merchant, record, delivered, app.links.as_ref())
    {
        data["return_url"] = url.into();
    }
    let rendered = app
        .renderer
        .render(kind, locale, merchant, &data)
        .inspect_err(|e| tracing::error!(error = ?e, kind = kind.as_str(), "shipment email failed to render"))
        .ok()?;
    let id = SendIdentity::new(
        &merchant.id,
        &customer.id,
        kind,
        record.shipment.id.as_str(),
        0,
    );
    Some(OutgoingEmail::compose(
        merchant,
        to,
        kind,
        rendered,
        &id.reference(),
        None,
    ))
}

/// The order's return portal, for a delivered shipment of a merchant whose return policy is on
/// (none otherwise, or where the deployment signs no links): valid until two weeks after the
/// return window counted from this delivery closes.
pub(crate) fn return_url(
    merchant: &Merchant,
    record: &ShipmentRecord,
    delivered: Option<jiff::Timestamp>,
    links: Option<&Links>,
) -> Option<String> {
    let policy = &merchant.settings.returns;
    let delivered = delivered?;
    if !policy.enabled {
        return None;
    }
    let expires = aftercare::links::return_link_expiry(policy, delivered);
    Some(links?.return_page(
        merchant.id.as_str(),
        record.shipment.order_id.as_str(),
        expires,
    ))
}

/// The date the customer expects, long and in `locale`: a provider's latest estimate, else the
/// promise.
pub(crate) fn promised_on(
    record: &ShipmentRecord,
    locale: aftercare::domain::Locale,
) -> Option<String> {
    record
        .expected()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| {
            // A calendar date: format it as that date, whatever the zone.
            long_date(z.timestamp(), "UTC", locale)
        })
}

fn email_data(
    merchant: &Merchant,
    record: &ShipmentRecord,
    cp: Option<&Checkpoint>,
    locale: aftercare::domain::Locale,
    links: Option<&Links>,
) -> Value {
    let sh = &record.shipment;
    let tz = record
        .customer
        .time_zone
        .as_deref()
        .unwrap_or(&merchant.time_zone);
    let promised_on = promised_on(record, locale);
    json!({
        "customer": {
            "greeting_name": record.customer.first_name,
            "name": record.customer.display_name().or_else(|| record.customer.email.as_ref().map(ToString::to_string)),
            "email": record.customer.email,
        },
        "order": {"number": sh.order_id},
        "shipment": {
            "carrier": sh.carrier, "tracking_number": sh.tracking_number, "tracking_url": sh.tracking_url,
            // The branded tracking page (absent where the deployment signs no links).
            "tracking_page_url": links.map(|l| l.tracking_page(record)),
            // Every parcel when the carrier gave the shipment several tracking numbers.
            "parcels": (!sh.additional_tracking.is_empty()).then(|| sh.parcels()),
            "promised_on": promised_on, "status": record.state().status().map(|s| s.as_str()).unwrap_or("info_received"),
            "items": sh.items.iter().map(|i| json!({"name": i.name.clone().unwrap_or_else(|| i.sku.clone()), "quantity": i.quantity})).collect::<Vec<_>>(),
            "shipped_on": long_date(sh.shipped_at, tz, locale),
        },
        "checkpoint": {
            "location": cp.and_then(|c| c.location.clone()),
            "message": cp.and_then(|c| c.message.clone()),
        },
    })
}
