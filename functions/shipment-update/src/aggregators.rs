//! Tracking aggregators' webhooks: `POST /v1/connectors/{easypost|aftership|shippo}/{merchantId}`.
//!
//! Every delivery, in this order, before anything is read or stored:
//! 1. the merchant must have the provider connected (`connectors.<provider>`);
//! 2. the provider's own authentication must verify over the raw body:
//!    * EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex>`, HMAC-SHA256 keyed with the NFKD form
//!      of a webhook secret ([`aftercare::signature::verify_easypost`]);
//!    * AfterShip: `aftership-hmac-sha256`, the base64 HMAC-SHA256 with a webhook secret;
//!    * Shippo: the `token` query parameter of the registered URL (constant-time), and, where the
//!      merchant configured HMAC secrets, `Shippo-Auth-Signature: t=<unix>,v1=<hex>` over
//!      `"<t>.<body>"` within 5 minutes.
//!
//! Any failure answers 401 and stores nothing; an unknown merchant looks exactly like a bad
//! signature. Then the provider's payload is mapped ([`aftercare::domain::connectors`]), deduped on
//! its event id (EasyPost `id`, AfterShip `event_id`, Shippo: the tracking number and its current
//! status's `object_id`, else a digest of the body), and handed to the tracking use-case, which
//! finds the shipment by the parcel's tracking number.
//!
//! Answers: 200 for everything authentic, acted on or not, because aggregators disable endpoints
//! that keep failing: `applied`, `unchanged`, `duplicate`, `ignored` (an event that carries no
//! tracking, or an `unknown_tracking_number`, which is logged and stores nothing), `refused` (a
//! payload that cannot be read, naming the field). 503 only when storage is busy and a retry will
//! help; 401 as above.

use super::*;
use aftercare::domain::connectors::tracking::TrackingUpdate;
use aftercare::domain::connectors::{aftership, easypost, shippo};
use aftercare::domain::merchant::Connectors;

/// A tracking aggregator Aftercare takes webhooks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    EasyPost,
    AfterShip,
    Shippo,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::EasyPost, Provider::AfterShip, Provider::Shippo];

    pub fn name(self) -> &'static str {
        match self {
            Provider::EasyPost => "easypost",
            Provider::AfterShip => "aftership",
            Provider::Shippo => "shippo",
        }
    }

    /// The provider's route.
    pub fn route(self) -> &'static str {
        match self {
            Provider::EasyPost => ROUTE_EASYPOST,
            Provider::AfterShip => ROUTE_AFTERSHIP,
            Provider::Shippo => ROUTE_SHIPPO,
        }
    }

    pub fn of_route(route: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.route() == route)
    }

    /// The header (or query parameter) a caller is told to fix when authentication fails.
    fn credential(self) -> &'static str {
        match self {
            Provider::EasyPost => "X-Hmac-Signature",
            Provider::AfterShip => "aftership-hmac-sha256",
            Provider::Shippo => "token",
        }
    }

    fn connected(self, connectors: &Connectors) -> bool {
        match self {
            Provider::EasyPost => connectors.easypost.is_some(),
            Provider::AfterShip => connectors.aftership.is_some(),
            Provider::Shippo => connectors.shippo.is_some(),
        }
    }

    fn map(
        self,
        body: &Value,
        zone: &jiff::tz::TimeZone,
    ) -> Result<Option<TrackingUpdate>, FieldError> {
        match self {
            Provider::EasyPost => easypost::update(body, zone),
            Provider::AfterShip => aftership::update(body, zone),
            Provider::Shippo => shippo::update(body, zone),
        }
    }
}

pub const ROUTE_EASYPOST: &str = "POST /v1/connectors/easypost/{merchantId}";
pub const ROUTE_AFTERSHIP: &str = "POST /v1/connectors/aftership/{merchantId}";
pub const ROUTE_SHIPPO: &str = "POST /v1/connectors/shippo/{merchantId}";
/// The header of Shippo's signed webhooks (when Shippo turned them on for the account).
pub const SHIPPO_SIGNATURE_HEADER: &str = "shippo-auth-signature";

fn unauthorized(provider: Provider) -> ApiError {
    ApiError::new(
        401,
        "invalid_signature",
        format!(
            "the {} webhook's {} is missing or invalid",
            provider.name(),
            provider.credential()
        ),
    )
    .field(provider.credential())
}

/// Verifies the delivery (see the module doc): the merchant and the raw body.
async fn verified(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    provider: Provider,
) -> Result<(std::sync::Arc<Merchant>, Vec<u8>), ApiError> {
    use aftercare::signature;
    let refuse = || unauthorized(provider);
    let merchant = app.tenancy.path_merchant(req, refuse).await?;
    if !provider.connected(&merchant.connectors) {
        return Err(refuse());
    }
    let body = http::body_bytes(req)?;
    let c = &merchant.connectors;
    let ok = match provider {
        Provider::EasyPost => c.easypost.as_ref().is_some_and(|e| {
            let secrets: Vec<&str> = e.secrets.iter().map(|s| s.0.as_str()).collect();
            signature::verify_easypost(http::header(req, "x-hmac-signature"), &body, &secrets)
                .is_ok()
        }),
        Provider::AfterShip => c.aftership.as_ref().is_some_and(|a| {
            let secrets: Vec<&[u8]> = a.secrets.iter().map(|s| s.0.as_bytes()).collect();
            signature::verify_base64_hmac(
                http::header(req, "aftership-hmac-sha256"),
                &body,
                &secrets,
            )
            .is_ok()
        }),
        Provider::Shippo => c.shippo.as_ref().is_some_and(|s| {
            let given = http::query_param(req, "token").unwrap_or_default();
            let token_ok = signature::same_secret(given.as_bytes(), s.token.0.as_bytes());
            let secrets: Vec<&[u8]> = s.secrets.iter().map(|s| s.0.as_bytes()).collect();
            token_ok
                && (secrets.is_empty()
                    || signature::verify(
                        http::header(req, SHIPPO_SIGNATURE_HEADER),
                        &body,
                        &secrets,
                        app.clock.now(),
                    )
                    .is_ok())
        }),
    };
    if !ok {
        return Err(refuse());
    }
    Ok((merchant, body))
}

/// One aggregator delivery (see the module doc).
pub(crate) async fn webhook(
    app: &App,
    req: &ApiGatewayV2httpRequest,
    provider: Provider,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let (merchant, body) = verified(app, req, provider).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let source = provider.name();
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok((
                200,
                http::refused(
                    FieldError::new("body", "invalid_json", format!("the body is not JSON: {e}"))
                        .into(),
                ),
            ));
        }
    };
    let update = match provider.map(&payload, &merchant.zone()) {
        Ok(Some(update)) => update,
        Ok(None) => {
            tracing::info!(
                provider = source,
                "an event that carries no tracking; acknowledged"
            );
            return Ok((
                200,
                json!({"result": "ignored", "reason": "not_a_tracking_event"}),
            ));
        }
        Err(e) => {
            tracing::warn!(provider = source, field = %e.field, "a tracking webhook refused");
            return Ok((200, http::refused(e.into())));
        }
    };
    let event_id = update.event_id.clone().unwrap_or_else(|| {
        use sha2::{Digest, Sha256};
        format!("body-{}", hex::encode(&Sha256::digest(&body)[..16]))
    });
    if app
        .store
        .delivery_seen(&merchant.id, source, &event_id)
        .await?
    {
        return Ok((200, json!({"result": "duplicate", "event_id": event_id})));
    }
    if !update.unmapped.is_empty() {
        tracing::info!(provider = source, statuses = ?update.unmapped, "provider statuses with no checkpoint of ours");
    }
    let result = tracking(app).track(&merchant, &update, deadline).await?;
    if result.shipment_id.is_none()
        && let Some(mut out) =
            crate::returns::parcel_update(app, &merchant, &update, deadline).await?
    {
        // A return parcel on its way back: its delivery scan to the merchant receives the return.
        app.store
            .mark_delivery(&merchant.id, source, &event_id, "return", app.clock.now())
            .await?;
        out["event_id"] = event_id.into();
        return Ok((200, out));
    }
    if result.shipment_id.is_none() {
        // Counted by the template's metric filter (`UnknownTrackingNumbers`); nothing is stored, so
        // a parcel the merchant adds later is picked up by the provider's next update.
        tracing::warn!(
            provider = source,
            unknown_tracking_number = 1,
            outcome = result.result,
            "a tracking update for no shipment of this merchant; acknowledged, nothing stored"
        );
        return Ok((
            200,
            json!({"result": "ignored", "reason": result.result, "event_id": event_id}),
        ));
    }
    app.store
        .mark_delivery(&merchant.id, source, &event_id, "tracking", app.clock.now())
        .await?;
    let mut out = serde_json::to_value(&result).unwrap_or_default();
    out["event_id"] = event_id.into();
    Ok((200, out))
}
