//! Realistic sample data for every [`EmailKind`] in every [`Locale`]: the email gallery
//! (`aftercare-admin gallery`) renders each kind with it, and the tests below check that every
//! kind shows its key facts and leaves no placeholder behind.
//!
//! Each sample has the shape the function that sends the kind builds (order-placed's thank-you,
//! shipment-update's `email_data`, survey-sender's follow-ups, loyalty notices and detractor alert,
//! `mail::billing` for renewal-checker and billing-alert, email-events' complaint alert), with
//! money and dates formatted by the same helpers ([`Money::format`], [`long_date`]) and links
//! signed like real ones (a fixed, public sample key), so sizes and line lengths are true to life.
//! Customers are localised: Ann in English, Jörg in German, Élodie in French.

use super::EmailKind;
use super::format::{long_date, percent};
use crate::domain::merchant::MerchantInput;
use crate::domain::{Currency, FieldError, Locale, Merchant, Money};
use crate::token::{Claims, LinkSigner, SigningKey};
use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

/// The public API base URL the sample links point at.
const API_BASE: &str = "https://api.acme-outdoor.example";
/// Not a secret: it only makes the sample links as long as real ones.
const SAMPLE_KEY: &[u8] = b"aftercare-gallery-sample-key-not-a-secret-000";
/// Dates are shown in the sample merchant's zone.
const ZONE: &str = "Europe/Berlin";
const ORDER: &str = "SO-1001";
const MERCHANT_ID: &str = "acme-outdoor";

/// The sample merchant (the same brand and contact card as `examples/merchant.json`), for a
/// gallery run without `--merchant`.
pub fn sample_merchant() -> Result<Merchant, FieldError> {
    let input: MerchantInput = serde_json::from_value(json!({
        "id": MERCHANT_ID,
        "name": "Acme Outdoor",
        "branding": {"logo_url": null, "primary_color": "#0f766e", "accent_color": "#f59e0b"},
        "sender": {"from_email": "hello@acme-outdoor.example", "from_name": "Acme Outdoor",
            "reply_to": "care@acme-outdoor.example"},
        "support": {"email": "care@acme-outdoor.example", "phone": "+49 30 1234 5678",
            "url": "https://acme-outdoor.example/help",
            "address": "Acme Outdoor GmbH, Torstraße 1, 10119 Berlin"},
        "default_locale": "en",
        "time_zone": ZONE,
        "ops_email": "ops@acme-outdoor.example"
    }))
    .map_err(|e| FieldError::new("merchant", "invalid_type", e.to_string()))?;
    input.validate()
}

/// The customer a sample is addressed to, per locale.
struct Persona {
    first: &'static str,
    last: &'static str,
    email: &'static str,
    id: &'static str,
}

fn persona(locale: Locale) -> Persona {
    match locale {
        Locale::En => Persona {
            first: "Ann",
            last: "Lee",
            email: "ann.lee@example.com",
            id: "cus_ann",
        },
        Locale::De => Persona {
            first: "Jörg",
            last: "Müller",
            // Long and without a break opportunity, as business addresses often are: the gallery
            // shows that such an address wraps instead of widening the email on a phone.
            email: "joerg.mueller@steuerberatungsgesellschaft.de",
            id: "cus_joerg",
        },
        Locale::Fr => Persona {
            first: "Élodie",
            last: "Martin",
            email: "elodie.martin@example.fr",
            id: "cus_elodie",
        },
    }
}

/// `minor` euro cents as the customer's locale writes them (`€24.90`, `24,90 €`).
fn eur(minor: i64, locale: Locale) -> String {
    Currency::parse("currency", "EUR")
        .map(|c| Money::new(minor, c).format(locale))
        .unwrap_or_else(|_| format!("EUR {}.{:02}", minor / 100, minor % 100))
}

/// A calendar day at 10:00 UTC.
fn instant(year: i16, month: i8, day: i8) -> Timestamp {
    date(year, month, day)
        .at(10, 0, 0, 0)
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A calendar day as a long date in `locale` ("20 November 2026", "20. November 2026").
fn day(year: i16, month: i8, day: i8, locale: Locale) -> String {
    long_date(instant(year, month, day), ZONE, locale)
}

/// A signed link like the functions' (`<base><path>/<token>`).
fn link(path: &str, purpose: &str, subject: &str, value: Option<String>) -> String {
    let claims = Claims {
        merchant: MERCHANT_ID.into(),
        purpose: purpose.into(),
        subject: subject.into(),
        value,
        expires: instant(2027, 3, 1).as_second(),
    };
    match SigningKey::new(SAMPLE_KEY) {
        Ok(key) => LinkSigner::new(API_BASE, key).url(path, &claims),
        Err(_) => format!("{API_BASE}{path}/sample"),
    }
}

/// Sample template data for `kind` in `locale`, shaped like the data the sending function builds.
pub fn sample_data(kind: EmailKind, locale: Locale) -> Value {
    let p = persona(locale);
    match kind {
        EmailKind::OrderThanks => order_thanks(&p, locale),
        EmailKind::OrderCancelled => order_cancelled(&p, locale),
        EmailKind::ShipmentShipped
        | EmailKind::ShipmentOutForDelivery
        | EmailKind::ShipmentAvailableForPickup
        | EmailKind::ShipmentDelivered
        | EmailKind::ShipmentAttemptFailed
        | EmailKind::ShipmentException
        | EmailKind::ShipmentLate
        | EmailKind::ShipmentNewDate
        | EmailKind::MerchantLateAlert => shipment(kind, &p, locale),
        EmailKind::UsageTips
        | EmailKind::FeedbackSurvey
        | EmailKind::ReviewRequest
        | EmailKind::CrossSell => follow_up(kind, &p, locale),
        EmailKind::MerchantDetractorAlert => detractor_alert(&p, locale),
        EmailKind::RenewalReminder | EmailKind::CardExpiring | EmailKind::RenewalAndCard => {
            subscription_notice(kind, &p, locale)
        }
        EmailKind::PaymentFailed
        | EmailKind::PaymentFinalNotice
        | EmailKind::PaymentRecovered
        | EmailKind::MerchantDunningAlert => invoice(kind, &p, locale),
        EmailKind::LoyaltyReferralReward | EmailKind::LoyaltyPointsExpiring => {
            loyalty(kind, &p, locale)
        }
        EmailKind::MerchantComplaintAlert => complaint_alert(locale),
        EmailKind::ReturnRequested
        | EmailKind::ReturnApproved
        | EmailKind::ReturnRejected
        | EmailKind::ReturnReminder
        | EmailKind::ReturnReceived
        | EmailKind::RefundIssued
        | EmailKind::StoreCreditIssued
        | EmailKind::ExchangeShipped => returns(kind, &p, locale),
    }
}

/// order-placed's cancellation notice: the thank-you's order, its points taken back.
fn order_cancelled(p: &Persona, locale: Locale) -> Value {
    let mut data = order_thanks(p, locale);
    data["loyalty"] = json!({"points": 303});
    data
}

/// order-placed's thank-you.
fn order_thanks(p: &Persona, locale: Locale) -> Value {
    let item = |name: &str, sku: &str, url: &str, quantity: i64, unit: i64| {
        json!({
            "name": name, "sku": sku, "quantity": quantity, "url": url, "image_url": null,
            "unit_price": eur(unit, locale), "line_total": eur(unit * quantity, locale),
        })
    };
    json!({
        "customer": {"greeting_name": p.first, "first_name": p.first, "last_name": p.last},
        "order": {
            "number": ORDER,
            "placed_on": day(2026, 11, 20, locale),
            "items": [
                item("Ridge 2-person tent", "TENT-2P", "https://acme-outdoor.example/p/ridge-2p", 1, 24_900),
                item("Aluminium pegs (10)", "PEG-AL-10", "https://acme-outdoor.example/p/pegs-al-10", 2, 1_250),
                item("Ridge 2P footprint", "FOOTPRINT-2P", "https://acme-outdoor.example/p/ridge-2p-footprint", 1, 3_900),
            ],
            "subtotal": eur(31_300, locale),
            "discount": eur(1_500, locale),
            "shipping": eur(495, locale),
            "tax": eur(4_837, locale),
            "total": eur(30_295, locale),
        },
        "loyalty": {
            "points": 298,
            "available_on": day(2026, 12, 20, locale),
            "referral_code": "ANN-7K2Q",
            "referral_points": 500,
            "tier": "Gold",
        },
    })
}

/// shipment-update's `email_data` (the late alert to the merchant uses the same data).
fn shipment(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let (status, location, message) = match kind {
        EmailKind::ShipmentOutForDelivery => ("out_for_delivery", Some("Berlin"), None),
        EmailKind::ShipmentAvailableForPickup => (
            "available_for_pickup",
            Some("Packstation 112, Torstraße 5, 10119 Berlin"),
            None,
        ),
        EmailKind::ShipmentDelivered => ("delivered", Some("Berlin"), None),
        EmailKind::ShipmentAttemptFailed => (
            "attempt_failed",
            Some("Berlin"),
            Some(
                "Recipient not at home. A notification card was left; the next attempt is on the next working day.",
            ),
        ),
        EmailKind::ShipmentException => (
            "exception",
            Some("Leipzig hub"),
            Some("The parcel was damaged in transit and is being repackaged."),
        ),
        _ => ("in_transit", None, None),
    };
    let mut data = json!({
        "customer": {
            "greeting_name": p.first,
            "name": format!("{} {}", p.first, p.last),
            "email": p.email,
        },
        "order": {"number": ORDER},
        "shipment": {
            "carrier": "DHL",
            "tracking_number": "JJD000390007412345",
            "tracking_url": "https://www.dhl.de/en/privatkunden/pakete-empfangen/verfolgen.html?piececode=JJD000390007412345",
            "tracking_page_url": link("/v1/track", "track", "sh-1001", None),
            "promised_on": day(2026, 11, 24, locale),
            "status": status,
            "items": [
                {"name": "Ridge 2-person tent", "quantity": 1},
                {"name": "Aluminium pegs (10)", "quantity": 2},
                {"name": "Ridge 2P footprint", "quantity": 1},
            ],
            "shipped_on": day(2026, 11, 21, locale),
        },
        "checkpoint": {"location": location, "message": message},
    });
    // The delivered email starts a return when the merchant's return policy is on.
    if kind == EmailKind::ShipmentDelivered {
        data["return_url"] = link("/v1/return", "return", ORDER, None).into();
    }
    data
}

/// survey-sender's follow-ups: the common part plus the kind's own.
fn follow_up(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let subject = format!("{}/{ORDER}", p.id);
    let mut data = json!({
        "customer": {"greeting_name": p.first, "email": p.email},
        "order": {
            "number": ORDER,
            "placed_on": day(2026, 11, 20, locale),
            "items": [
                {"sku": "TENT-2P", "name": "Ridge 2-person tent", "quantity": 1},
                {"sku": "PEG-AL-10", "name": "Aluminium pegs (10)", "quantity": 2},
            ],
        },
        "unsubscribe_url": link("/v1/unsubscribe", "unsubscribe", p.id, None),
        "preferences_url": link("/v1/preferences", "preferences", p.id, None),
        "points": null,
    });
    match kind {
        EmailKind::FeedbackSurvey => {
            let scores: Vec<Value> = (0..=10)
                .map(|score| {
                    json!({"value": score, "url": link("/v1/survey", "survey", &subject, Some(score.to_string()))})
                })
                .collect();
            data["survey"] = json!({"scale": "nps", "scores": scores});
        }
        EmailKind::ReviewRequest => {
            data["reviews"] = json!([
                {"name": "Ridge 2-person tent",
                 "url": "https://acme-outdoor.example/products/TENT-2P/reviews/new?order=SO-1001"},
                {"name": "Aluminium pegs (10)",
                 "url": "https://acme-outdoor.example/products/PEG-AL-10/reviews/new?order=SO-1001"},
            ]);
        }
        EmailKind::CrossSell => {
            data["recommendations"] = json!([
                {"name": "Ridge 2P footprint", "url": "https://acme-outdoor.example/p/ridge-2p-footprint",
                 "image_url": null, "price": eur(3_900, locale)},
                {"name": "Lightweight peg mallet", "url": "https://acme-outdoor.example/p/mallet-lt",
                 "image_url": null, "price": eur(1_900, locale)},
            ]);
            data["points"] = json!({"newly": 298, "available": 798, "tier": "Gold"});
        }
        _ => {
            data["tips"] = json!([
                {"name": "Ridge 2-person tent",
                 "text": "Pitch it once in the garden before your first trip, so you know every pole and clip."},
                {"name": "Ridge 2-person tent",
                 "text": "Dry it fully before packing it away for more than a day: damp fabric grows mildew."},
                {"name": "Aluminium pegs (10)",
                 "text": "Drive pegs in at 45°, leaning away from the tent; in hard ground use a mallet, never your boot."},
            ]);
            // The usage tips start a return too when the merchant's return policy is on.
            if kind == EmailKind::UsageTips {
                data["return_url"] = link("/v1/return", "return", ORDER, None).into();
            }
        }
    }
    data
}

/// survey-sender's alert to the merchant about a detractor.
fn detractor_alert(p: &Persona, locale: Locale) -> Value {
    json!({
        "customer": {"name": format!("{} {}", p.first, p.last), "email": p.email},
        "order": {"number": ORDER},
        "feedback": {
            "score": 3,
            "max": 10,
            "scale": "nps",
            "comment": "The tent arrived two days late and the bag was damp.\nThe pegs are great, though.",
            "answered_at": day(2026, 11, 30, locale),
        },
        "reply_url": format!("mailto:{}?subject=Re%3A%20Acme%20Outdoor%20{ORDER}", p.email),
    })
}

fn customer(p: &Persona) -> Value {
    json!({
        "greeting_name": p.first,
        "name": format!("{} {}", p.first, p.last),
        "email": p.email,
    })
}

/// renewal-checker's notices (`mail::billing` values).
fn subscription_notice(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let sub = "sub_1001";
    let (renews_on, expires, update) = match kind {
        EmailKind::RenewalReminder => (day(2026, 12, 1, locale), "08/28", false),
        EmailKind::CardExpiring => (day(2027, 1, 5, locale), "12/26", true),
        _ => (day(2026, 12, 1, locale), "11/26", true),
    };
    json!({
        "customer": customer(p),
        "subscription": {
            "id": sub,
            "plan_name": "Trail box",
            "interval": "monthly",
            "price": eur(2_490, locale),
            "renews_on": renews_on,
            "status": "active",
            "offers_renewal": false,
            "auto_renewal_notice": kind != EmailKind::CardExpiring,
        },
        "card": {"brand": "Visa", "last4": "4242", "expires": expires},
        "links": {
            "manage_url": link("/v1/subscription-links", "subscription", sub, Some("manage".into())),
            "renew_url": null,
            "update_payment_url": update
                .then(|| link("/v1/subscription-links", "subscription", sub, Some("update_payment".into()))),
        },
    })
}

/// billing-alert's dunning emails and the merchant's alert when dunning runs out.
fn invoice(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let id = "in_1QxA2bL8mN4pR7sTuVwXyZ0a";
    let mut data = json!({
        "customer": customer(p),
        "invoice": {
            "id": id,
            "amount": eur(2_490, locale),
            "plan_name": "Trail box",
            "failed_on": day(2026, 12, 1, locale),
            "cancel_on": day(2026, 12, 29, locale),
            "reminder": 0,
        },
        "links": {"update_payment_url": link("/v1/billing-links", "billing", id, None)},
    });
    match kind {
        EmailKind::PaymentRecovered => data["links"]["update_payment_url"] = Value::Null,
        EmailKind::MerchantDunningAlert => {
            data["dunning"] = json!({"emails_sent": 5});
            if let Some(o) = data.as_object_mut() {
                o.remove("links");
            }
            if let Some(inv) = data["invoice"].as_object_mut() {
                inv.remove("reminder");
            }
        }
        _ => {}
    }
    data
}

/// survey-sender's loyalty notices (after `tell` added the customer and balance).
fn loyalty(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let mut data = json!({
        "customer": {"greeting_name": p.first},
        "balance": {"available": 798, "tier": "Gold"},
    });
    if kind == EmailKind::LoyaltyReferralReward {
        data["reward"] = json!({"points": 500});
    } else {
        let expires = instant(2027, 12, 14);
        data["expiry"] = json!({
            "points": 340,
            "expires_at": expires,
            "expires_on": long_date(expires, ZONE, locale),
        });
        data["balance"] = json!({"available": 340, "tier": null});
    }
    data
}

/// A return's emails (and the refund and store-credit notices): the `customer`, the thank-you's
/// `order`, and the kind's `return`, `refund` or `credit`, with the merchant's free texts (a
/// rejection reason, return instructions, how to use credit) and the item reasons already in the
/// customer's language.
fn returns(kind: EmailKind, p: &Persona, locale: Locale) -> Value {
    let (too_big, not_needed, rejected, instructions, how_to_use) = match locale {
        Locale::En => (
            "Too big",
            "No longer needed",
            "The footprint has been used outdoors and can no longer be sold as new. As a goodwill gesture, we would be glad to clean and check it for you free of charge.",
            "Drop the parcel off at any DHL branch or Packstation. You do not need to pay: the label is prepaid.",
            "Your credit is taken off automatically at checkout when you sign in with this email address.",
        ),
        Locale::De => (
            "Zu groß",
            "Wird nicht mehr benötigt",
            "Die Unterlage wurde bereits draußen benutzt und kann nicht mehr als neu verkauft werden. Gern reinigen und prüfen wir sie für Sie kostenlos.",
            "Geben Sie das Paket in einer DHL-Filiale oder an einer Packstation ab. Sie zahlen nichts: Das Etikett ist bereits frankiert.",
            "Ihr Guthaben wird an der Kasse automatisch abgezogen, wenn Sie sich mit dieser E-Mail-Adresse anmelden.",
        ),
        Locale::Fr => (
            "Trop grand",
            "Plus nécessaire",
            "Le tapis de sol a déjà été utilisé en extérieur et ne peut plus être revendu comme neuf. Nous vous proposons volontiers de le nettoyer et de le vérifier gratuitement.",
            "Déposez le colis dans un point de dépôt DHL ou une Packstation. Vous n’avez rien à payer : l’étiquette est prépayée.",
            "Votre avoir est déduit automatiquement lors du paiement lorsque vous vous connectez avec cette adresse e-mail.",
        ),
    };
    let number = "R-7K2Q9";
    let resolution = match kind {
        EmailKind::ReturnReceived | EmailKind::ExchangeShipped => "exchange",
        EmailKind::StoreCreditIssued => "store_credit",
        _ => "refund",
    };
    let mut ret = json!({
        "number": number,
        "items": [
            {"name": "Ridge 2P footprint", "sku": "FOOTPRINT-2P", "quantity": 1, "reason": too_big,
             "amount": eur(3_900, locale)},
            {"name": "Aluminium pegs (10)", "sku": "PEG-AL-10", "quantity": 1, "reason": not_needed,
             "amount": eur(1_250, locale)},
        ],
        "resolution": resolution,
        "portal_url": format!("https://acme-outdoor.example/returns/{number}"),
    });
    let shipping = json!({
        "label_url": format!("https://acme-outdoor.example/returns/{number}/label.pdf"),
        "instructions": instructions,
        "address": "Acme Outdoor Returns\nLagerstraße 12\n14979 Großbeeren\nGermany",
    });
    let refund_total = eur(4_950, locale);
    match kind {
        EmailKind::ReturnRequested => {
            ret["refund_total"] = refund_total.clone().into();
            ret["restocking_fee"] = eur(200, locale).into();
        }
        EmailKind::ReturnApproved | EmailKind::ReturnReminder => {
            ret["refund_total"] = refund_total.clone().into();
            ret["restocking_fee"] = eur(200, locale).into();
            ret["send_by"] = day(2026, 12, 10, locale).into();
            ret["shipping"] = shipping;
        }
        EmailKind::ReturnRejected => {
            ret["items"] = json!([ret["items"][0].clone()]);
            ret["rejection_reason"] = rejected.into();
        }
        EmailKind::ReturnReceived => {
            ret["items"] = json!([ret["items"][0].clone()]);
            ret["tracking_number"] = "JJD000390007498765".into();
            ret["carrier"] = "DHL".into();
            ret["exchange_items"] = json!([{"name": "Ridge 3P footprint", "sku": "FOOTPRINT-3P"}]);
        }
        EmailKind::ExchangeShipped => {
            ret["items"] = json!([ret["items"][0].clone()]);
            ret["tracking_number"] = "JJD000390007412399".into();
            ret["carrier"] = "DHL".into();
            ret["exchange_items"] = json!([{"name": "Ridge 3P footprint", "sku": "FOOTPRINT-3P"}]);
        }
        EmailKind::RefundIssued => {
            ret["refund_total"] = refund_total.clone().into();
            ret["restocking_fee"] = eur(200, locale).into();
        }
        _ => {}
    }
    let mut data = json!({
        "customer": {"greeting_name": p.first, "first_name": p.first, "last_name": p.last},
        "order": order_thanks(p, locale)["order"].clone(),
        "return": ret,
    });
    match kind {
        EmailKind::RefundIssued => {
            data["refund"] = json!({"amount": refund_total, "order_number": ORDER, "method": "original_payment"});
        }
        EmailKind::StoreCreditIssued => {
            data["credit"] = json!({
                "amount": eur(5_150, locale),
                "bonus": eur(515, locale),
                "total": eur(5_665, locale),
                "balance": eur(8_165, locale),
                "how_to_use": how_to_use,
            });
        }
        _ => {}
    }
    data
}

/// email-events' complaint-rate alert.
fn complaint_alert(locale: Locale) -> Value {
    json!({"complaints": {
        "rate": percent(0.0025, locale), "threshold": percent(0.001, locale),
        "sent": 1200, "complained": 3,
        "from": day(2026, 11, 14, locale), "to": day(2026, 11, 20, locale),
        "kinds": [
            {"kind": "feedback_survey", "complained": 2, "sent": 400, "rate": percent(0.005, locale)},
            {"kind": "cross_sell", "complained": 1, "sent": 250, "rate": percent(0.004, locale)},
        ],
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::mail::Renderer;

    /// Fails to compile when a variant is added: give it the next ordinal, bump `COUNT` and add it
    /// to `EmailKind::ALL` (the gallery and these tests iterate that list).
    fn ordinal(kind: EmailKind) -> usize {
        match kind {
            EmailKind::OrderThanks => 0,
            EmailKind::ShipmentShipped => 1,
            EmailKind::ShipmentOutForDelivery => 2,
            EmailKind::ShipmentAvailableForPickup => 3,
            EmailKind::ShipmentDelivered => 4,
            EmailKind::ShipmentAttemptFailed => 5,
            EmailKind::ShipmentException => 6,
            EmailKind::ShipmentLate => 7,
            EmailKind::MerchantLateAlert => 8,
            EmailKind::UsageTips => 9,
            EmailKind::FeedbackSurvey => 10,
            EmailKind::ReviewRequest => 11,
            EmailKind::CrossSell => 12,
            EmailKind::MerchantDetractorAlert => 13,
            EmailKind::RenewalReminder => 14,
            EmailKind::CardExpiring => 15,
            EmailKind::RenewalAndCard => 16,
            EmailKind::PaymentFailed => 17,
            EmailKind::PaymentFinalNotice => 18,
            EmailKind::PaymentRecovered => 19,
            EmailKind::MerchantDunningAlert => 20,
            EmailKind::LoyaltyReferralReward => 21,
            EmailKind::LoyaltyPointsExpiring => 22,
            EmailKind::MerchantComplaintAlert => 23,
            EmailKind::OrderCancelled => 24,
            EmailKind::ShipmentNewDate => 25,
            EmailKind::ReturnRequested => 26,
            EmailKind::ReturnApproved => 27,
            EmailKind::ReturnRejected => 28,
            EmailKind::ReturnReminder => 29,
            EmailKind::ReturnReceived => 30,
            EmailKind::RefundIssued => 31,
            EmailKind::StoreCreditIssued => 32,
            EmailKind::ExchangeShipped => 33,
        }
    }
    const COUNT: usize = 34;

    #[test]
    fn all_lists_every_kind_once() {
        assert_eq!(EmailKind::ALL.len(), COUNT, "EmailKind::ALL is incomplete");
        let mut seen = [false; COUNT];
        for kind in EmailKind::ALL {
            let i = ordinal(*kind);
            assert!(!seen[i], "{kind:?} is listed twice");
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    /// minijinja's HTML escaping of a value.
    fn escaped(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
            .replace('/', "&#x2f;")
    }

    fn text_at(data: &Value, pointer: &str) -> String {
        match data.pointer(pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            other => panic!("no sample value at {pointer}: {other:?}"),
        }
    }

    /// The facts (JSON pointers into the sample) an email of `kind` must show in HTML and text.
    fn key_facts(kind: EmailKind) -> &'static [&'static str] {
        match kind {
            EmailKind::OrderThanks => &[
                "/customer/greeting_name",
                "/order/number",
                "/order/placed_on",
                "/order/items/0/name",
                "/order/items/2/line_total",
                "/order/total",
                "/loyalty/points",
                "/loyalty/referral_code",
            ],
            EmailKind::OrderCancelled => &[
                "/customer/greeting_name",
                "/order/number",
                "/order/placed_on",
                "/order/items/0/name",
                "/order/total",
                "/loyalty/points",
            ],
            EmailKind::ShipmentAvailableForPickup => &[
                "/customer/greeting_name",
                "/order/number",
                "/shipment/tracking_number",
                "/checkpoint/location",
            ],
            EmailKind::ShipmentAttemptFailed | EmailKind::ShipmentException => &[
                "/customer/greeting_name",
                "/order/number",
                "/shipment/tracking_number",
                "/checkpoint/message",
            ],
            EmailKind::ShipmentLate | EmailKind::ShipmentNewDate => &[
                "/customer/greeting_name",
                "/order/number",
                "/shipment/promised_on",
            ],
            EmailKind::ShipmentDelivered => &[
                "/customer/greeting_name",
                "/order/number",
                "/shipment/carrier",
                "/shipment/tracking_number",
                "/shipment/tracking_page_url",
                "/return_url",
            ],
            EmailKind::ShipmentShipped | EmailKind::ShipmentOutForDelivery => &[
                "/customer/greeting_name",
                "/order/number",
                "/shipment/carrier",
                "/shipment/tracking_number",
                "/shipment/tracking_page_url",
            ],
            EmailKind::MerchantLateAlert => &[
                "/customer/email",
                "/order/number",
                "/shipment/promised_on",
                "/shipment/tracking_number",
            ],
            EmailKind::UsageTips => &["/customer/greeting_name", "/tips/2/text", "/return_url"],
            EmailKind::FeedbackSurvey => &[
                "/customer/greeting_name",
                "/order/number",
                "/survey/scores/10/url",
            ],
            EmailKind::ReviewRequest => &["/customer/greeting_name", "/reviews/1/name"],
            EmailKind::CrossSell => &[
                "/customer/greeting_name",
                "/recommendations/1/name",
                "/recommendations/1/price",
                "/points/newly",
            ],
            EmailKind::MerchantDetractorAlert => {
                &["/customer/email", "/order/number", "/feedback/answered_at"]
            }
            EmailKind::RenewalReminder | EmailKind::RenewalAndCard => &[
                "/customer/greeting_name",
                "/subscription/plan_name",
                "/subscription/renews_on",
                "/card/last4",
            ],
            EmailKind::CardExpiring => &[
                "/customer/greeting_name",
                "/subscription/plan_name",
                "/card/expires",
                "/links/update_payment_url",
            ],
            EmailKind::PaymentFailed | EmailKind::PaymentFinalNotice => &[
                "/customer/greeting_name",
                "/invoice/id",
                "/invoice/amount",
                "/invoice/cancel_on",
                "/links/update_payment_url",
            ],
            EmailKind::PaymentRecovered => {
                &["/customer/greeting_name", "/invoice/id", "/invoice/amount"]
            }
            EmailKind::MerchantDunningAlert => &[
                "/customer/email",
                "/invoice/id",
                "/invoice/amount",
                "/invoice/cancel_on",
                "/dunning/emails_sent",
            ],
            EmailKind::LoyaltyReferralReward => &[
                "/customer/greeting_name",
                "/reward/points",
                "/balance/available",
            ],
            EmailKind::LoyaltyPointsExpiring => &[
                "/customer/greeting_name",
                "/expiry/points",
                "/expiry/expires_on",
            ],
            EmailKind::MerchantComplaintAlert => &[
                "/complaints/rate",
                "/complaints/from",
                "/complaints/kinds/1/kind",
            ],
            EmailKind::ReturnRequested => &[
                "/customer/greeting_name",
                "/order/number",
                "/return/number",
                "/return/items/0/name",
                "/return/items/0/reason",
                "/return/items/1/amount",
                "/return/refund_total",
                "/return/portal_url",
            ],
            EmailKind::ReturnApproved | EmailKind::ReturnReminder => &[
                "/customer/greeting_name",
                "/return/number",
                "/return/send_by",
                "/return/items/1/name",
                "/return/shipping/label_url",
                "/return/shipping/instructions",
                "/return/refund_total",
            ],
            EmailKind::ReturnRejected => &[
                "/customer/greeting_name",
                "/order/number",
                "/return/number",
                "/return/items/0/name",
                "/return/rejection_reason",
            ],
            EmailKind::ReturnReceived => &[
                "/customer/greeting_name",
                "/return/number",
                "/return/items/0/name",
                "/return/exchange_items/0/name",
            ],
            EmailKind::RefundIssued => &[
                "/customer/greeting_name",
                "/refund/amount",
                "/refund/order_number",
                "/return/items/0/name",
            ],
            EmailKind::StoreCreditIssued => &[
                "/customer/greeting_name",
                "/credit/amount",
                "/credit/bonus",
                "/credit/total",
                "/credit/balance",
                "/credit/how_to_use",
            ],
            EmailKind::ExchangeShipped => &[
                "/customer/greeting_name",
                "/return/number",
                "/return/exchange_items/0/name",
                "/return/exchange_items/0/sku",
                "/return/tracking_number",
            ],
        }
    }

    /// A `{name}` catalogue placeholder or template syntax left in `out`.
    fn leftover(out: &str) -> Option<String> {
        for syntax in ["{{", "}}", "{%", "%}", "{#"] {
            if out.contains(syntax) {
                return Some(syntax.into());
            }
        }
        let mut rest = out;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            if let Some(close) = after.find('}') {
                let inner = &after[..close];
                if !inner.is_empty()
                    && inner
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    return Some(format!("{{{inner}}}"));
                }
            }
            rest = after;
        }
        // A null or a missing value printed as a word.
        out.split(|c: char| !c.is_alphanumeric())
            .find(|w| matches!(*w, "none" | "None" | "null" | "undefined"))
            .map(str::to_owned)
    }

    /// The HTML without its tags (and so without attributes such as `text-decoration:none`).
    fn outside_tags(html: &str) -> String {
        let mut out = String::with_capacity(html.len());
        let mut inside = false;
        for c in html.chars() {
            match c {
                '<' => inside = true,
                '>' => {
                    inside = false;
                    out.push(' ');
                }
                _ if !inside => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn every_kind_renders_its_sample_in_every_locale() {
        let renderer = Renderer::new().unwrap();
        let merchant = sample_merchant().unwrap();
        for locale in Locale::ALL {
            for kind in EmailKind::ALL {
                let what = format!("{} {}", kind.as_str(), locale.as_str());
                let data = sample_data(*kind, locale);
                let out = renderer.render(*kind, locale, &merchant, &data).unwrap();
                assert!(!out.subject.is_empty(), "{what}: subject");
                for pointer in key_facts(*kind) {
                    let fact = text_at(&data, pointer);
                    assert!(
                        out.html.contains(&escaped(&fact)),
                        "{what}: the HTML lacks {pointer} = {fact:?}"
                    );
                    assert!(
                        out.text.contains(&fact),
                        "{what}: the text lacks {pointer} = {fact:?}"
                    );
                }
                assert!(
                    out.html.contains(&format!("lang=\"{}\"", locale.as_str())),
                    "{what}"
                );
                let shown = outside_tags(&out.html[out.html.find("<body").unwrap_or(0)..]);
                for (part, s) in [
                    ("subject", out.subject.as_str()),
                    ("html", shown.as_str()),
                    ("text", out.text.as_str()),
                ] {
                    assert_eq!(leftover(s), None, "{what}: the {part} left a placeholder");
                }
            }
        }
    }

    #[test]
    fn samples_are_localised() {
        let de = sample_data(EmailKind::OrderThanks, Locale::De);
        assert_eq!(de["customer"]["greeting_name"], "Jörg");
        assert_eq!(de["order"]["placed_on"], "20. November 2026");
        assert_eq!(de["order"]["total"], "302,95\u{a0}€");
        let fr = sample_data(EmailKind::PaymentFailed, Locale::Fr);
        assert_eq!(fr["invoice"]["failed_on"], "1 décembre 2026");
        let link = fr["links"]["update_payment_url"].as_str().unwrap();
        assert!(link.starts_with("https://api.acme-outdoor.example/v1/billing-links/"));
        assert!(link.len() > 120, "signed like a real link: {link}");
    }

    #[test]
    fn the_leftover_check_finds_what_it_should() {
        assert_eq!(leftover("Hi {name}!"), Some("{name}".into()));
        assert_eq!(leftover("{{ order.number }}"), Some("{{".into()));
        assert_eq!(leftover("Plan: none"), Some("none".into()));
        assert_eq!(leftover("body { margin: 0; } Nonetheless"), None);
    }
}
