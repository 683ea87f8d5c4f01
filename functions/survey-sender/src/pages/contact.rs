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

/// One visit to a customer's own page: the signed link's token and what answers it.
pub struct Visit<'a> {
    pub app: &'a App,
    pub links: &'a Links,
    pub token: &'a str,
    pub rid: &'a str,
}

/// A verified link to a customer's page, and the customer it is about.
struct Opened {
    link: Link,
    customer: CustomerId,
}

impl Visit<'_> {
    /// Verifies the link for `purpose` and names its customer.
    async fn open(&self, purpose: &str) -> Result<Opened, Failure> {
        let link = verify_link(self.app, self.links, self.token, purpose).await?;
        let customer = CustomerId::parse("customer", &link.claims.subject)
            .map_err(|_| link.fail(PageError::Invalid))?;
        // An erased customer's old links lead nowhere: a choice saved now would bring their id
        // back into the table.
        let known = self
            .app
            .store
            .customer_known(&link.merchant.id, &customer)
            .await
            .map_err(|e| link.fail(e))?;
        if !known {
            return Err(link.fail(PageError::NotFound));
        }
        Ok(Opened { link, customer })
    }

    /// What the link's customer told us, as stored.
    async fn contact(&self, opened: &Opened) -> Result<ContactState, Failure> {
        contacts(self.app)
            .contact(&opened.link.merchant.id, &opened.customer)
            .await
            .map_err(|e| opened.link.fail(e))
    }

    fn respond(&self, result: PageResult) -> ApiGatewayV2httpResponse {
        respond(self.app, self.rid, result)
    }

    /// The subscription page: the state, with the action to change it; `done` right after a
    /// change.
    fn subscription(&self, link: &Link, subscribed: bool, done: Option<&str>) -> PageResult {
        let data = json!({
            "subscribed": subscribed,
            "action_url": format!("{}/v1/unsubscribe/{}", self.links.base(), self.token),
            "email_masked": link.claims.value.clone().unwrap_or_default(),
            "done": done,
        });
        let merchant = &link.merchant;
        let (name, title) = ("unsubscribe", "page.unsubscribe.title");
        let locale = merchant.default_locale;
        Ok(page(
            self.app, merchant, locale, name, title, &data, self.rid,
        ))
    }

    /// The preference page: marketing mail at all and each kind, language and time zone; `done`
    /// right after a save, `error` (with `status`) when a save was refused.
    fn preferences(
        &self,
        link: &Link,
        prefs: &Preferences,
        done: bool,
        error: Option<&str>,
        status: u16,
    ) -> PageResult {
        let kinds: Vec<serde_json::Value> = FollowUpKind::ALL
            .iter()
            .map(|k| json!({"name": k.as_str(), "wanted": !prefs.opted_out.contains(k)}))
            .collect();
        let locales: Vec<serde_json::Value> = Locale::ALL
            .iter()
            .map(|l| json!({"code": l.as_str(), "name": l.native_name()}))
            .collect();
        let data = json!({
            "action_url": format!("{}/v1/preferences/{}", self.links.base(), self.token),
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
        let (name, title) = ("preferences", "page.preferences.title");
        let mut resp = page(self.app, merchant, locale, name, title, &data, self.rid);
        if resp.status_code == 200 {
            resp.status_code = i64::from(status);
        }
        Ok(resp)
    }
}

/// GET: the customer's subscription state with the action to change it.
pub async fn unsubscribe_page(visit: Visit<'_>) -> ApiGatewayV2httpResponse {
    let result = async {
        let opened = visit.open(UNSUBSCRIBE).await?;
        let contact = visit.contact(&opened).await?;
        visit.subscription(&opened.link, !contact.unsubscribed, None)
    };
    visit.respond(result.await)
}

/// POST: RFC 8058 one-click (`List-Unsubscribe=One-Click`) or the page's form (`action=`).
pub async fn unsubscribe(
    visit: Visit<'_>,
    req: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let Opened { link, customer } = visit.open(UNSUBSCRIBE).await?;
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
        let unsubscribed = contacts(visit.app)
            .subscription(&link.merchant.id, &customer, request)
            .await
            .map_err(|e| link.fail(e))?;
        let done = if unsubscribed {
            "unsubscribed"
        } else {
            "resubscribed"
        };
        visit.subscription(&link, !unsubscribed, Some(done))
    };
    visit.respond(result.await)
}

/// GET: the customer's preferences as stored. Records nothing (mail filters prefetch links).
pub async fn preferences_page(visit: Visit<'_>) -> ApiGatewayV2httpResponse {
    let result = async {
        let opened = visit.open(PREFERENCES).await?;
        let contact = visit.contact(&opened).await?;
        visit.preferences(&opened.link, &contact.preferences(), false, None, 200)
    };
    visit.respond(result.await)
}

/// POST: the page's form. Unchecked boxes are absent from a form post, so every box is read.
pub async fn preferences_save(
    visit: Visit<'_>,
    req: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let Opened { link, customer } = visit.open(PREFERENCES).await?;
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
        let prefs = match contacts(visit.app)
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
                return visit.preferences(&link, &current, false, Some(why), 400);
            }
            Err(e) => return Err(link.fail(e)),
        };
        visit.preferences(&link, &prefs, true, None, 200)
    };
    visit.respond(result.await)
}
