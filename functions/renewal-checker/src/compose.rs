//! What a notice says: the subscription, the card when it is (part of) a card notice, and the
//! signed links (manage, renew now, update the card).

use crate::Links;
use aftercare::adapters::mail::billing::{card_value, customer_value, subscription_value};
use aftercare::adapters::mail::{EmailKind, Mailbox, OutgoingEmail};
use aftercare::adapters::store::subscriptions::SubscriptionRecord;
use aftercare::app::App;
use aftercare::domain::Merchant;
use aftercare::domain::subscription::{Notice, NoticeKind};
use serde_json::json;

pub fn email_kind(kind: NoticeKind) -> EmailKind {
    match kind {
        NoticeKind::RenewalReminder => EmailKind::RenewalReminder,
        NoticeKind::CardExpiring => EmailKind::CardExpiring,
        NoticeKind::RenewalAndCard => EmailKind::RenewalAndCard,
    }
}

/// The notice's email, or `None` if it cannot be rendered.
pub fn notice_email(
    app: &App,
    links: &Links,
    merchant: &Merchant,
    record: &SubscriptionRecord,
    notice: &Notice,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let sub = &record.subscription;
    let kind = email_kind(notice.kind());
    let locale = sub.customer.locale_or(merchant.default_locale);
    let until = notice.relevant_until.max(sub.next_renewal_at);
    let m = &merchant.id;
    let card = sub.card.as_ref().map(card_value);
    let offers_renewal = sub.status.offers_renewal();
    let data = json!({
        "customer": customer_value(&sub.customer),
        "subscription": subscription_value(sub, merchant, locale, notice.auto_renewal),
        "card": card,
        "links": {
            "manage_url": (!offers_renewal).then(|| links.subscription(m, &sub.id, "manage", until)),
            "renew_url": offers_renewal.then(|| links.subscription(m, &sub.id, "renew", until)),
            "update_payment_url": notice.card_lead.map(|_| links.subscription(m, &sub.id, "update_payment", until)),
        },
    });
    let to = Mailbox::new(
        sub.customer.display_name().as_deref(),
        sub.customer.email.clone()?,
    );
    aftercare::adapters::mail::billing::compose(
        &app.renderer,
        merchant,
        kind,
        to,
        locale,
        &data,
        send_ref,
    )
}
