//! The loyalty emails: telling a customer of a reward or of points about to expire (claimed and
//! sent through the send protocol).

use super::*;
use aftercare::ports::ContactLookup as _;

/// What became of telling the customer.
pub(crate) enum Told {
    /// This sweep sent it.
    Sent,
    /// An earlier attempt did (or gave up on it for good).
    Settled,
    /// Nobody to tell: why.
    Nobody(&'static str),
    /// Not now: the item stays (or is held) as this outcome says.
    Later(Outcome),
}

/// Sends `kind` to the notice's customer once (claim keyed by `subject`), with their balance and
/// tier beside `data`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn tell(
    app: &App,
    pacer: &Pacer,
    due: &Notice<'_>,
    state: &LoyaltyState,
    kind: EmailKind,
    subject: &str,
    mut data: Value,
    deadline: Deadline,
) -> Result<Told, StoreError> {
    let now = app.clock.now();
    let m = &due.merchant.id;
    let c = &due.notice.customer_id;
    let Some(mut profile) = app.store.get_customer_profile(m, c).await? else {
        return Ok(Told::Nobody("no_customer"));
    };
    let Some(address) = profile.email.clone() else {
        return Ok(Told::Nobody("no_address"));
    };
    app.store
        .contact(m, c)
        .await?
        .choose(&mut profile.locale, &mut profile.time_zone);
    if !pacer.slot(deadline).await {
        return Ok(Told::Later(Outcome::LeftDue));
    }
    let merchant = &due.merchant;
    let status = tier_status(
        &state.entries,
        &merchant.settings.loyalty,
        now,
        &merchant.zone(),
    );
    data["customer"] = json!({"greeting_name": profile.first_name});
    if let Some(at) = data["expiry"]["expires_at"]
        .as_str()
        .and_then(|a| a.parse::<Timestamp>().ok())
    {
        let zone = profile.time_zone.as_deref().unwrap_or(&merchant.time_zone);
        data["expiry"]["expires_on"] = long_date(at, zone, locale_of(&profile, merchant)).into();
    }
    data["balance"] = json!({
        "available": balance(&state.entries, now).available,
        "tier": status.and_then(|s| s.current).map(|t| t.name),
    });
    let key = SendIdentity::new(m, c, kind, subject, 0);
    let record = key.claim(
        address.as_str(),
        now,
        deadline.lease_until(app.clock.as_ref()),
    );
    let expires = app.send_expiry(&due.merchant, now);
    let build = || compose(app, merchant, &profile, kind, &data, &key.reference());
    let outcome = app
        .courier()
        .claim_and_send(&key, &record, expires, deadline, build)
        .await?;
    Ok(match outcome {
        SendOutcome::Sent { .. } => Told::Sent,
        SendOutcome::Suppressed | SendOutcome::Settled(SendStatus::Suppressed) => {
            Told::Nobody("suppressed")
        }
        SendOutcome::Unaddressed => Told::Nobody("no_address"),
        SendOutcome::Settled(SendStatus::InProgress) | SendOutcome::InProgress => {
            Told::Later(Outcome::Taken)
        }
        SendOutcome::Settled(_) | SendOutcome::Ambiguous | SendOutcome::Rejected { .. } => {
            Told::Settled
        }
        SendOutcome::RetryLater { reason } => {
            tracing::warn!(
                reason,
                kind = kind.as_str(),
                "loyalty notice not sent now; stays due"
            );
            Told::Later(Outcome::LeftDue)
        }
    })
}

pub(crate) fn compose(
    app: &App,
    merchant: &Merchant,
    profile: &CustomerProfile,
    kind: EmailKind,
    data: &Value,
    send_ref: &str,
) -> Option<OutgoingEmail> {
    let locale = locale_of(profile, merchant);
    let rendered = app
        .renderer
        .render(kind, locale, merchant, data)
        .inspect_err(
            |e| tracing::error!(error = ?e, kind = kind.as_str(), "loyalty email failed to render"),
        )
        .ok()?;
    let name = match (&profile.first_name, &profile.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.clone().or_else(|| l.clone()),
    };
    let to = Mailbox::new(name.as_deref(), profile.email.clone()?);
    Some(OutgoingEmail::compose(
        merchant, to, kind, rendered, send_ref, None,
    ))
}
