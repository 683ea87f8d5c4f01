//! What each follow-up says: its template data, built from the order, the catalogue's products it
//! was given (the order's, and for a cross-sell the related ones) and the merchant's settings. `None` means there is nothing worth sending (no review page configured, nothing to
//! recommend), which the sweep records as a skip.

use crate::Links;
use aftercare::adapters::mail::format::long_date;
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::app::App;
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::survey::FeedbackRecord;
use aftercare::domain::survey::SurveyScale;
use aftercare::domain::{Locale, Merchant, Money};
use aftercare::usecases::followups::Draft;
use jiff::SignedDuration;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Most products one email recommends.
const MAX_RECOMMENDATIONS: usize = 3;

/// "a***@example.com": enough for the customer to recognise their address, little for a logger.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The kind-specific part of a follow-up's template data, or `None` if there is nothing to say.
fn kind_data(links: &Links, draft: &Draft<'_>, locale: Locale) -> Option<(&'static str, Value)> {
    let (merchant, kind, now) = (draft.merchant, draft.kind, draft.now);
    let o = &draft.order.order;
    // What the customer bought, and what they bought and sent back: never recommended.
    let bought: BTreeSet<&str> = o
        .items
        .iter()
        .map(|i| i.sku.as_str())
        .chain(draft.refunded.iter().map(|s| s.as_str()))
        .collect();
    let catalogue = draft.products;
    match kind {
        FollowUpKind::FeedbackSurvey => {
            let scale = merchant.settings.survey.scale;
            let expires = now
                .saturating_add(SignedDuration::from_hours(
                    24 * i64::from(merchant.settings.survey.link_valid_days()),
                ))
                .unwrap_or(now);
            let scores: Vec<Value> = scale
                .scores()
                .map(|score| {
                    json!({"value": score, "url": links.survey(
                        merchant.id.as_str(), o.customer.id.as_str(), o.id.as_str(), score, expires)})
                })
                .collect();
            Some(("survey", json!({"scale": scale.as_str(), "scores": scores})))
        }
        FollowUpKind::ReviewRequest => {
            let reviews: Vec<Value> = o
                .items
                .iter()
                .filter_map(|i| {
                    let url = merchant.settings.reviews.url_for(&i.sku, o.id.as_str())?;
                    Some(json!({"name": i.name, "url": url}))
                })
                .collect();
            (!reviews.is_empty()).then(|| ("reviews", Value::from(reviews)))
        }
        FollowUpKind::UsageTips => {
            let mut seen = BTreeSet::new();
            let tips: Vec<Value> = o
                .items
                .iter()
                .filter(|i| seen.insert(i.sku.as_str()))
                .filter_map(|i| catalogue.get(i.sku.as_str()).map(|c| (i, c)))
                .flat_map(|(i, c)| {
                    c.tips_for(locale, merchant.default_locale)
                        .iter()
                        .map(move |t| json!({"name": i.name, "text": t}))
                })
                .collect();
            Some(("tips", Value::from(tips)))
        }
        FollowUpKind::CrossSell => {
            let mut seen = BTreeSet::new();
            let recommendations: Vec<Value> = o
                .items
                .iter()
                .filter_map(|i| catalogue.get(i.sku.as_str()))
                .flat_map(|c| c.related.iter())
                .filter(|sku| !bought.contains(sku.as_str()) && seen.insert(sku.as_str()))
                .filter_map(|sku| {
                    let item = catalogue.get(sku)?;
                    let url = item.url.clone()?;
                    let price = match (item.price, item.currency) {
                        (Some(p), Some(c)) => Some(Money::new(p, c).format(locale)),
                        _ => None,
                    };
                    Some(json!({"name": item.name, "url": url, "image_url": item.image_url, "price": price}))
                })
                .take(MAX_RECOMMENDATIONS)
                .collect();
            (!recommendations.is_empty()).then(|| ("recommendations", Value::from(recommendations)))
        }
    }
}

/// The order's return page, as the delivered email links it, when the merchant's return policy is
/// on: valid until two weeks after the return window counted from the journey's `anchor` closes.
fn return_url(
    links: &Links,
    merchant: &Merchant,
    order: &str,
    anchor: jiff::Timestamp,
) -> Option<String> {
    let policy = &merchant.settings.returns;
    policy.enabled.then(|| {
        links.return_page(
            merchant.id.as_str(),
            order,
            aftercare::links::return_link_expiry(policy, anchor),
        )
    })
}

/// The follow-up email of `draft.kind` for its order (with the customer's newly available points,
/// if any), in the language and time zone the customer chose (`draft.contact`) over their order's,
/// or `None` if there is nothing worth sending.
pub fn follow_up_email(app: &App, links: &Links, draft: &Draft<'_>) -> Option<OutgoingEmail> {
    let Draft {
        merchant,
        order,
        contact,
        kind,
        reference: send_ref,
        points,
        now,
        anchor,
        ..
    } = *draft;
    let o = &order.order;
    let locale = contact
        .locale
        .unwrap_or_else(|| o.customer.locale_or(merchant.default_locale));
    let tz = contact
        .time_zone
        .as_deref()
        .or(o.customer.time_zone.as_deref())
        .unwrap_or(&merchant.time_zone);
    let (name, specific) = kind_data(links, draft, locale)?;
    let address = o.customer.email.clone()?;
    let masked = mask_email(address.as_str());
    let unsubscribe = links.unsubscribe(merchant.id.as_str(), o.customer.id.as_str(), &masked, now);
    let preferences = links.preferences(merchant.id.as_str(), o.customer.id.as_str(), &masked, now);
    let mut data = json!({
        "customer": {"greeting_name": o.customer.first_name, "email": o.customer.email},
        "order": {
            "number": o.id,
            "placed_on": long_date(o.placed_at, tz, locale),
            "items": o.items.iter().map(|i| json!({"sku": i.sku, "name": i.name, "quantity": i.quantity})).collect::<Vec<_>>(),
        },
        "unsubscribe_url": unsubscribe,
        "preferences_url": preferences,
        "points": points,
    });
    data[name] = specific;
    if kind == FollowUpKind::UsageTips
        && let Some(url) = return_url(links, merchant, o.id.as_str(), anchor)
    {
        data["return_url"] = url.into();
    }
    let email_kind = EmailKind::from(kind);
    let rendered = app
        .renderer
        .render(email_kind, locale, merchant, &data)
        .map_err(
            |e| tracing::error!(error = %e, kind = kind.as_str(), "follow-up failed to render"),
        )
        .ok()?;
    let to = Mailbox::new(o.customer.display_name().as_deref(), address);
    Some(OutgoingEmail::compose(
        merchant,
        to,
        email_kind,
        rendered,
        send_ref,
        Some(unsubscribe),
    ))
}

/// The alert to the merchant's operations address about a detractor answer.
pub fn detractor_alert(
    app: &App,
    merchant: &Merchant,
    answer: &FeedbackRecord,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let ops = merchant.ops_email.clone()?;
    let locale = merchant.default_locale;
    let scale: SurveyScale = answer.scale;
    let subject = format!("Re: {} {}", merchant.name, answer.order_id);
    let reply_url = format!(
        "mailto:{}?subject={}",
        answer.customer_email,
        aftercare::domain::merchant::url_component(&subject)
    );
    let data = json!({
        "customer": {
            "name": answer.customer_name.clone().unwrap_or_else(|| answer.customer_email.clone()),
            "email": answer.customer_email,
        },
        "order": {"number": answer.order_id},
        "feedback": {
            "score": answer.score,
            "max": scale.max(),
            "scale": scale.as_str(),
            "comment": answer.comment,
            "answered_at": long_date(answer.answered_at, &merchant.time_zone, locale),
        },
        "reply_url": reply_url,
    });
    let kind = EmailKind::MerchantDetractorAlert;
    let rendered = app
        .renderer
        .render(kind, locale, merchant, &data)
        .map_err(|e| tracing::error!(error = %e, "detractor alert failed to render"))
        .ok()?;
    let to = Mailbox::new(Some(&merchant.name), ops);
    Some(OutgoingEmail::compose(
        merchant, to, kind, rendered, send_ref, None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses() {
        assert_eq!(mask_email("ann.lee@example.com"), "a***@example.com");
        assert_eq!(mask_email("nope"), "***");
    }
}
