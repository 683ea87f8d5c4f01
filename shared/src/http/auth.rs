//! Bearer API-key authentication and signed webhooks, over the merchant directory.
//!
//! A request's key is hashed (SHA-256) and looked up by digest; unknown, malformed or revoked keys
//! get 401 before anything else happens. A warm instance remembers verified digests for
//! `AFTERCARE_KEY_CACHE_TTL_SECONDS` (default 30 s; 0 turns it off), so a revoked key stops working
//! everywhere within that time. Merchants come from the app's [`Merchants`] directory.

use super::{ApiError, header};
use crate::adapters::store::Store;
use crate::adapters::store::merchants::Merchants;
use crate::cache::TtlCache;
use crate::domain::apikey;
use crate::domain::merchant::MerchantStatus;
use crate::domain::{Merchant, MerchantId};
use crate::ports::MerchantDirectory;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use std::sync::Arc;
use std::time::Duration;

pub struct Tenancy {
    store: Store,
    /// Verified key digests: the merchant and the key's id.
    keys: TtlCache<String, (MerchantId, String)>,
    merchants: Arc<Merchants>,
}

impl Tenancy {
    pub fn new(store: Store, key_ttl: Duration, merchants: Arc<Merchants>) -> Self {
        Self {
            store,
            keys: TtlCache::new(key_ttl, 1024),
            merchants,
        }
    }

    /// The merchant a request's bearer key belongs to, or 401.
    pub async fn authenticate(
        &self,
        req: &ApiGatewayV2httpRequest,
    ) -> Result<Arc<Merchant>, ApiError> {
        Ok(self.caller(req).await?.0)
    }

    /// The merchant a request's bearer key belongs to and the key's id (who asked, for audit
    /// records), or 401.
    pub async fn caller(
        &self,
        req: &ApiGatewayV2httpRequest,
    ) -> Result<(Arc<Merchant>, String), ApiError> {
        let secret = header(req, "authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        if !apikey::looks_like_key(secret) {
            return Err(ApiError::unauthorized());
        }
        let digest = apikey::hash(secret);
        let (merchant_id, key_id) = match self.keys.get(&digest) {
            Some(known) => known,
            None => {
                let record = self.store.find_api_key(&digest).await?;
                let record = record
                    .filter(|r| r.is_active())
                    .ok_or_else(ApiError::unauthorized)?;
                let known = (record.merchant_id, record.key_id.to_string());
                self.keys.insert(digest, known.clone());
                known
            }
        };
        let merchant = self
            .merchants
            .merchant(&merchant_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if merchant.status != MerchantStatus::Active {
            return Err(ApiError::new(
                403,
                "merchant_suspended",
                "this merchant account is suspended",
            ));
        }
        Ok((merchant, key_id))
    }

    /// The merchant the `merchantId` path parameter of a signed route names, or `refuse()` when
    /// there is none: an unknown merchant answers exactly like a bad signature.
    pub async fn path_merchant(
        &self,
        req: &ApiGatewayV2httpRequest,
        refuse: impl Fn() -> ApiError,
    ) -> Result<Arc<Merchant>, ApiError> {
        let raw = req
            .path_parameters
            .get("merchantId")
            .map(String::as_str)
            .unwrap_or_default();
        let id = MerchantId::parse("merchantId", raw).map_err(|_| refuse())?;
        self.merchants.merchant(&id).await?.ok_or_else(refuse)
    }

    /// A signed webhook for the merchant named by the `merchantId` path parameter: the signature
    /// in header `header` (shown to callers as `field`; Stripe's scheme, see [`crate::signature`])
    /// is verified against the merchant's webhook secrets before anything is parsed or stored. An
    /// unknown merchant looks exactly like a bad signature: ids are not confirmed to strangers.
    pub async fn verify_webhook(
        &self,
        req: &ApiGatewayV2httpRequest,
        header_name: &str,
        field: &str,
        now: jiff::Timestamp,
    ) -> Result<SignedWebhook, ApiError> {
        use crate::signature::{self, SignatureError};
        let unauthorized = || {
            ApiError::new(
                401,
                "invalid_signature",
                format!("the {field} header is missing or invalid"),
            )
            .field(field)
        };
        let merchant = self.path_merchant(req, unauthorized).await?;
        let body = super::body_bytes(req)?;
        let secrets: Vec<&[u8]> = merchant
            .webhook_secrets
            .iter()
            .map(|s| s.0.as_bytes())
            .collect();
        let verified = signature::verify(header(req, header_name), &body, &secrets, now).map_err(
            |e| match e {
                SignatureError::Stale => ApiError::new(
                    401,
                    "stale_signature",
                    format!(
                        "the signature timestamp is more than {} seconds from now",
                        signature::TOLERANCE_SECONDS
                    ),
                )
                .field(field),
                _ => unauthorized(),
            },
        )?;
        Ok(SignedWebhook {
            merchant,
            body,
            verified,
        })
    }
}

/// A webhook whose signature checked out.
pub struct SignedWebhook {
    pub merchant: Arc<Merchant>,
    /// The raw body, exactly as signed.
    pub body: Vec<u8>,
    pub verified: crate::signature::Verified,
}
