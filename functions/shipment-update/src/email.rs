//! The shipping emails: which milestone sends which kind, the claim on each, and their content.

use super::*;

pub(crate) fn milestone_kind(m: Milestone) -> EmailKind {
    match m {
        Milestone::Shipped => EmailKind::ShipmentShipped,
        Milestone::OutForDelivery => EmailKind::ShipmentOutForDelivery,
        Milestone::AvailableForPickup => EmailKind::ShipmentAvailableForPickup,
        Milestone::Delivered => EmailKind::ShipmentDelivered,
        Milestone::AttemptFailed => EmailKind::ShipmentAttemptFailed,
        Milestone::Exception => EmailKind::ShipmentException,
        Milestone::Late => EmailKind::ShipmentLate,
    }
}

/// The claim of a milestone email: one per (customer, kind, shipment).
pub(crate) fn milestone_claim(
    app: &App,
    merchant: &MerchantId,
    customer: &CustomerRef,
    kind: EmailKind,
    shipment: &ShipmentId,
    to: &str,
    deadline: Deadline,
) -> (SendIdentity, SendRecord) {
    let id = SendIdentity::new(merchant, &customer.id, kind, shipment.as_str(), 0);
    let record = id.claim(
        to,
        app.clock.now(),
        deadline.lease_until(app.clock.as_ref()),
    );
    (id, record)
}

/// When the promised date has passed: the start of the next day in the merchant's time zone.
pub(crate) fn late_after(promised: jiff::civil::Date, tz: &str) -> Option<Timestamp> {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    promised
        .tomorrow()
        .ok()?
        .to_zoned(zone)
        .ok()
        .map(|z| z.timestamp())
}

/// Renders a shipment email for its customer.
pub(crate) fn shipment_email(
    app: &App,
    merchant: &Merchant,
    record: &ShipmentRecord,
    kind: EmailKind,
    cp: Option<&Checkpoint>,
) -> Option<OutgoingEmail> {
    let customer = &record.customer;
    let locale = customer.locale_or(merchant.default_locale);
    let data = email_data(merchant, record, cp, locale);
    let rendered = app
        .renderer
        .render(kind, locale, merchant, &data)
        .inspect_err(|e| tracing::error!(error = ?e, "shipment email failed to render"))
        .ok()?;
    let to = Mailbox::new(customer.display_name().as_deref(), customer.email.clone());
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

pub(crate) fn email_data(
    merchant: &Merchant,
    record: &ShipmentRecord,
    cp: Option<&Checkpoint>,
    locale: aftercare::domain::Locale,
) -> Value {
    let sh = &record.shipment;
    let tz = record
        .customer
        .time_zone
        .as_deref()
        .unwrap_or(&merchant.time_zone);
    let promised_on = sh
        .promised_date
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| {
            // A calendar date: format it as that date, whatever the zone.
            long_date(z.timestamp(), "UTC", locale)
        });
    json!({
        "customer": {
            "greeting_name": record.customer.first_name,
            "name": record.customer.display_name().unwrap_or_else(|| record.customer.email.to_string()),
            "email": record.customer.email,
        },
        "order": {"number": sh.order_id},
        "shipment": {
            "carrier": sh.carrier, "tracking_number": sh.tracking_number, "tracking_url": sh.tracking_url,
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
