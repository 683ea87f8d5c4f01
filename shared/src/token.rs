//! Signed, expiring tokens for links that act (score, unsubscribe, manage renewal, update card).
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC-SHA256(key, "aftercare.v1." + payload))`.
//! Claims name the merchant, the purpose and the subject, so a token for one purpose or merchant is
//! useless for another; verification is constant-time (`Mac::verify_slice`) and checks expiry
//! against a caller-supplied time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"aftercare.v1.";
/// Upper bound on an encoded token; anything longer is rejected before decoding.
pub const MAX_TOKEN_LEN: usize = 2048;

/// The HMAC key (at least 32 bytes), kept as a keyed MAC ready to clone.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl SigningKey {
    pub fn new(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < 32 {
            return Err("a signing key needs at least 32 bytes");
        }
        HmacSha256::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| "invalid signing key")
    }

    /// A keyed digest of `data` under `domain` (kept apart from link signatures), e.g. for
    /// identifiers that must be unguessable without the key.
    pub fn digest(&self, domain: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(domain);
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Merchant (tenant) id.
    #[serde(rename = "m")]
    pub merchant: String,
    /// What the link does, e.g. `survey`, `unsubscribe`.
    #[serde(rename = "p")]
    pub purpose: String,
    /// What it acts on, e.g. a customer id or `customer/order`.
    #[serde(rename = "s")]
    pub subject: String,
    /// Optional extra value (a score, a step).
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "e")]
    pub expires: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
    #[error("the link is for a different purpose")]
    WrongPurpose,
}

/// Signs `claims`.
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    // Serialising a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mut mac = key.mac();
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// Verifies `token` for `purpose` at time `now` and returns its claims.
pub fn verify(
    key: &SigningKey,
    token: &str,
    purpose: &str,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = key.mac();
    mac.update(DOMAIN);
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.purpose != purpose {
        return Err(TokenError::WrongPurpose);
    }
    if now.as_second() >= claims.expires {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Signs and verifies the links of one public API (what each function's `Links` wraps): the base
/// URL and the key, read from config at init.
#[derive(Clone)]
pub struct LinkSigner {
    base: String,
    key: SigningKey,
}

impl LinkSigner {
    pub fn new(base: &str, key: SigningKey) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// `<base><path>/<signed claims>`, e.g. `path` = `/v1/survey`.
    pub fn url(&self, path: &str, claims: &Claims) -> String {
        format!("{}{path}/{}", self.base, sign(&self.key, claims))
    }

    pub fn verify(&self, token: &str, purpose: &str, now: Timestamp) -> Result<Claims, TokenError> {
        verify(&self.key, token, purpose, now)
    }

    /// The base URL (pages post back to the same origin).
    pub fn base(&self) -> &str {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::new(&[7u8; 32]).unwrap()
    }

    fn claims(expires: i64) -> Claims {
        Claims {
            merchant: "acme".into(),
            purpose: "survey".into(),
            subject: "c1/o1".into(),
            value: Some("9".into()),
            expires,
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn round_trip() {
        let t = sign(&key(), &claims(1_000));
        assert_eq!(
            verify(&key(), &t, "survey", at(999)).unwrap(),
            claims(1_000)
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let t = sign(&key(), &claims(1_000));
        assert_eq!(
            verify(&key(), &t, "survey", at(1_000)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn wrong_key_purpose_and_tampering_fail() {
        let t = sign(&key(), &claims(1_000));
        let other = SigningKey::new(&[8u8; 32]).unwrap();
        assert_eq!(
            verify(&other, &t, "survey", at(0)),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&key(), &t, "unsubscribe", at(0)),
            Err(TokenError::WrongPurpose)
        );
        let mut forged = claims(1_000);
        forged.merchant = "globex".into();
        let forged_payload = sign(&key(), &forged);
        let (payload, _) = forged_payload.split_once('.').unwrap();
        let (_, sig) = t.split_once('.').unwrap();
        assert_eq!(
            verify(&key(), &format!("{payload}.{sig}"), "survey", at(0)),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&key(), "nodot", "survey", at(0)),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&key(), &"a".repeat(5000), "survey", at(0)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SigningKey::new(b"too short").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_verifies_or_panics(s in ".{0,300}") {
            prop_assert!(verify(&key(), &s, "survey", at(0)).is_err());
        }

        #[test]
        fn any_single_byte_flip_is_rejected(idx in 0usize..200, bit in 0u8..8) {
            let t = sign(&key(), &claims(1_000));
            let mut bytes = t.into_bytes();
            let i = idx % bytes.len();
            bytes[i] ^= 1 << bit;
            if let Ok(s) = String::from_utf8(bytes) {
                prop_assert!(verify(&key(), &s, "survey", at(0)).is_err());
            }
        }
    }
}
