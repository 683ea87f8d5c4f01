//! The merchant's side of a customer's preferences (Bearer key):
//!
//! * `GET /v1/customers/{customerId}/preferences` → `{"subscribed", "opted_out", "locale",
//!   "time_zone", "unsubscribed_at"}` (defaults for a customer who never chose).
//! * `PUT /v1/customers/{customerId}/preferences` with any of `subscribed`, `opted_out` (kinds:
//!   `usage_tips`, `feedback_survey`, `review_request`, `cross_sell`), `locale` (`en`, `de`,
//!   `fr`; empty clears), `time_zone` (IANA; empty clears) → the preferences now. A refusal names
//!   the field and stores nothing.
//!
//! The customer sets the same on their signed preference page (`/v1/preferences/{token}`, linked
//! from every marketing email).

use crate::pages::contacts;
use aftercare::app::App;
use aftercare::domain::CustomerId;
use aftercare::domain::marketing::{ContactState, PreferencesInput};
use aftercare::domain::validation::parse_json;
use aftercare::http::{self, ApiError};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Value, json};

pub const ROUTE_GET_PREFERENCES: &str = "GET /v1/customers/{customerId}/preferences";
pub const ROUTE_PUT_PREFERENCES: &str = "PUT /v1/customers/{customerId}/preferences";

fn view(customer: &CustomerId, contact: &ContactState) -> Value {
    let p = contact.preferences();
    json!({
        "customer_id": customer, "subscribed": p.subscribed,
        "opted_out": p.opted_out.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "locale": p.locale.map(|l| l.as_str()), "time_zone": p.time_zone,
        "unsubscribed_at": contact.unsubscribed_at,
    })
}

pub async fn preferences(
    app: &App,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let raw = req
        .path_parameters
        .get("customerId")
        .map(|c| http::percent_decode(c))
        .unwrap_or_default();
    let customer = CustomerId::parse("customerId", &raw)?;
    let contacts = contacts(app);
    if http::route_key(req) == ROUTE_GET_PREFERENCES {
        let contact = contacts.contact(&merchant.id, &customer).await?;
        return Ok((200, view(&customer, &contact)));
    }
    http::require_json(req)?;
    let input: PreferencesInput = parse_json(&http::body_bytes(req)?)?;
    contacts
        .save_preferences(&merchant.id, &customer, input)
        .await?;
    let stored = contacts.contact(&merchant.id, &customer).await?;
    Ok((200, view(&customer, &stored)))
}
