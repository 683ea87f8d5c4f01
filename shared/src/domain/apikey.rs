//! Merchant API keys. A key is shown once when issued and stored only as its SHA-256 digest; the
//! digest is what requests are looked up by. Keys carry 256 bits of randomness, so a fast hash is
//! the right tool (there is nothing to brute-force as with passwords).

use super::ids::KeyId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are easy to recognise in logs and secret scanners.
pub const PREFIX: &str = "ak_";

/// A freshly issued key: the secret (to show once) and what is stored.
pub struct IssuedKey {
    pub secret: String,
    pub key_id: KeyId,
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessUnavailable;

/// Issues a new key.
pub fn issue() -> Result<IssuedKey, RandomnessUnavailable> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|_| RandomnessUnavailable)?;
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let key_id = KeyId::parse("key_id", &format!("key_{}", super::ids::new_id()))
        .map_err(|_| RandomnessUnavailable)?;
    Ok(IssuedKey {
        hash: hash(&secret),
        secret,
        key_id,
    })
}

/// The digest a key is stored and looked up under.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Cheap shape check before any lookup: refuses obviously wrong tokens without a database call.
pub fn looks_like_key(secret: &str) -> bool {
    secret.len() == PREFIX.len() + 43
        && secret.starts_with(PREFIX)
        && secret[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// A key as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: KeyId,
    pub merchant_id: super::MerchantId,
    pub status: KeyStatus,
    pub created_at: Timestamp,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// Free text for the operator ("Shopify connector").
    #[serde(default)]
    pub label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_are_unique_well_formed_and_hashed() {
        let a = issue().unwrap();
        let b = issue().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(looks_like_key(&a.secret), "{}", a.secret);
        assert_eq!(a.hash, hash(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret[3..]));
        assert!(!looks_like_key("ak_short"));
        assert!(!looks_like_key(&format!("xx_{}", &a.secret[3..])));
    }
}
