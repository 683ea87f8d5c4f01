//! The customer's own pages behind signed links: one-click unsubscribe (RFC 8058 POST and the
//! page a person sees) and the preference page (kinds, language, time zone).

use super::*;
use aftercare::adapters::store::Store;
use aftercare::domain::marketing::{ContactState, Preferences, PreferencesInput};
use aftercare::usecases::preferences::{ContactError, Contacts, SubscriptionRequest};

impl From<ContactError> for PageError {
    fn from(e: ContactError) -> Self {
        match e {
            ContactError::Invalid(_) | ContactError::Refused { .. } => PageError::BadRequest,
            ContactError::Store(e) => e.into(),
        }
    }
}

/// The customers' choices, over the app's store.
pub(crate) fn contacts(app: &App) -> Contacts<'_, Store> {
    Contacts {
        book: &app.store,
        clock: app.clock.as_ref(),
    }
}

/// The customer an unsubscribe link is about.
pub(super) fn link_customer(link: &Link) -> Result<CustomerId, Failure> {
    CustomerId::parse("customer", &link.claims.subject).map_err(|_| link.fail(PageError::Invalid))
}

/// What the link's customer told us, as stored.
async fn stored_contact(
    app: &App,
    link: &Link,
    customer: &CustomerId,
) -> Result<ContactState, Failure> {
    contacts(app)
        .contact(&link.merchant.id, customer)
        .await
        .map_err(|e| link.fail(e))
}

/// GET: the customer's subscription state with the action to change it.
pub async fn unsubscribe_page(
    app: &App,
    links: &Links,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, UNSUBSCRIBE).await?;
        let customer = link_customer(&link)?;
        let contact = stored_contact(app, &link, &customer).await?;
        Ok(subscription_page(
            app,
            links,
            &link,
            token,
            !contact.unsubscribed,
            None,
            rid,
        ))
    };
    respond(app, rid, result.await)
}

/// POST: RFC 8058 one-click (`List-Unsubscribe=One-Click`) or the page's form (`action=`).
pub async fn unsubscribe(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, UNSUBSCRIBE).await?;
        let customer = link_customer(&link)?;
        let body = http::body_bytes(req).unwrap_or_default();
        let form = http::form_fields(&body);
        // Mail providers post `List-Unsubscribe=One-Click`, urlencoded or as multipart form data.
        let one_click = form
            .get("List-Unsubscribe")
            .is_some_and(|v| v == "One-Click")
            || String::from_utf8_lossy(&body).contains("One-Click");
        let request = SubscriptionRequest {
            action: form.get("action").map(String::as_str),
            one_click,
        };
        let unsubscribed = contacts(app)
            .subscription(&link.merchant.id, &customer, request)
            .await
            .map_err(|e| link.fail(e))?;
        let done = if unsubscribed {
            "unsubscribed"
        } else {
            "resubscribed"
        };
        Ok(subscription_page(
            app,
            links,
            &link,
            token,
            !unsubscribed,
            Some(done),
            rid,
        ))
    };
    respond(app, rid, result.await)
}

/// The preference page: marketing mail at all and each kind, language and time zone.
#[allow(clippy::too_many_arguments)]
pub(super) fn preferences_view(
    app: &App,
    links: &Links,
    link: &Link,
    token: &str,
    prefs: &Preferences,
    done: bool,
    error: Option<&str>,
    status: u16,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let kinds: Vec<serde_json::Value> = FollowUpKind::ALL
        .iter()
        .map(|k| json!({"name": k.as_str(), "wanted": !prefs.opted_out.contains(k)}))
        .collect();
    let locales: Vec<serde_json::Value> = Locale::ALL
        .iter()
        .map(|l| json!({"code": l.as_str(), "name": l.native_name()}))
        .collect();
    let data = json!({
        "action_url": format!("{}/v1/preferences/{token}", links.base()),
        "email_masked": link.claims.value.clone().unwrap_or_default(),
        "subscribed": prefs.subscribed,
        "kinds": kinds,
        "locales": locales,
        "locale": prefs.locale.map(|l| l.as_str()),
        "time_zone": prefs.time_zone,
        "done": done,
        "error": error,
    });
    let merchant = &link.merchant;
    let locale = prefs.locale.unwrap_or(merchant.default_locale);
    let mut resp = page(
        app,
        merchant,
        locale,
        "preferences",
        "page.preferences.title",
        &data,
        rid,
    );
    if resp.status_code == 200 {
        resp.status_code = i64::from(status);
    }
    resp
}

/// GET: the customer's preferences as stored. Records nothing (mail filters prefetch links).
pub async fn preferences_page(
    app: &App,
    links: &Links,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, PREFERENCES).await?;
        let customer = link_customer(&link)?;
        let contact = stored_contact(app, &link, &customer).await?;
        Ok(preferences_view(
            app,
            links,
            &link,
            token,
            &contact.preferences(),
            false,
            None,
            200,
            rid,
        ))
    };
    respond(app, rid, result.await)
}

/// POST: the page's form. Unchecked boxes are absent from a form post, so every box is read.
pub async fn preferences_save(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, PREFERENCES).await?;
        let customer = link_customer(&link)?;
        let body = http::body_bytes(req).unwrap_or_default();
        let form = http::form_fields(&body);
        if form.get("form").map(String::as_str) != Some("preferences") {
            return Err(link.fail(PageError::BadRequest));
        }
        let on = |name: &str| form.get(name).is_some_and(|v| v == "on");
        let input = PreferencesInput {
            subscribed: Some(on("marketing")),
            opted_out: Some(
                FollowUpKind::ALL
                    .iter()
                    .filter(|k| !on(&format!("kind_{}", k.as_str())))
                    .map(|k| k.as_str().to_owned())
                    .collect(),
            ),
            locale: Some(form.get("locale").cloned().unwrap_or_default()),
            time_zone: Some(form.get("time_zone").cloned().unwrap_or_default()),
        };
        let prefs = match contacts(app)
            .save_preferences(&link.merchant.id, &customer, input)
            .await
        {
            Ok(prefs) => prefs,
            Err(ContactError::Refused { error, current }) => {
                // Shown again with what the customer had, and why it was not saved.
                let why = if error.field == "time_zone" {
                    "time_zone"
                } else {
                    "invalid"
                };
                return Ok(preferences_view(
                    app,
                    links,
                    &link,
                    token,
                    &current,
                    false,
                    Some(why),
                    400,
                    rid,
                ));
            }
            Err(e) => return Err(link.fail(e)),
        };
        Ok(preferences_view(
            app, links, &link, token, &prefs, true, None, 200, rid,
        ))
    };
    respond(app, rid, result.await)
}
