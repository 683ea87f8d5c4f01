//! Timestamped webhook signatures in Stripe's scheme: a header `t=<unix seconds>,v1=<hex>` where
//! `v1` is HMAC-SHA256 over `"<t>.<raw body>"`. Several `v1` values may be present (the sender
//! signs with every active secret during a rotation) and any of our secrets may match. Comparison
//! is constant-time; timestamps outside the tolerance are refused, which bounds replays; the caller
//! also remembers accepted signatures to refuse an exact replay inside the window.

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

/// How far a signature's timestamp may be from now.
pub const TOLERANCE_SECONDS: i64 = 300;
const MAX_HEADER_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the accepted window")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// A verified signature's identity, for replay detection: a digest of the timestamp and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub timestamp: i64,
    pub replay_key: String,
}

/// Verifies `header` over `body` against any of `secrets` at time `now`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {} // other schemes (v0, ...) are ignored, as Stripe documents
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // abs_diff: a timestamp near i64::MIN or MAX must not overflow the subtraction.
    if now.as_second().abs_diff(t) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for sig in &signatures {
            if mac.clone().verify_slice(sig).is_ok() {
                let replay_key = hex::encode(
                    &Sha256::digest(format!("{t}.{}", hex::encode(sig)).as_bytes())[..16],
                );
                return Ok(Verified {
                    timestamp: t,
                    replay_key,
                });
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Signs `body` at `t` with `secret` (for senders, tests and the local demo).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies a platform webhook signed the way Shopify and WooCommerce sign theirs: `header` is the
/// base64 HMAC-SHA256 of the raw `body` with one of `secrets` (several during a rotation),
/// compared in constant time. No timestamp is signed: the caller dedupes on the delivery's id.
pub fn verify_base64_hmac(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<(), SignatureError> {
    use base64::Engine as _;
    let header = header.ok_or(SignatureError::Missing)?.trim();
    if header.is_empty() || header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header)
        .map_err(|_| SignatureError::Malformed)?;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Verifies an EasyPost webhook: `header` (`X-Hmac-Signature`) is `hmac-sha256-hex=` and the
/// lowercase hex HMAC-SHA256 of the raw `body`, keyed with the webhook secret normalised to Unicode
/// NFKD and encoded as UTF-8 (as EasyPost's client libraries validate it). Constant time; no
/// timestamp is signed: the caller dedupes on the event's id.
pub fn verify_easypost(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let hex_part = header
        .strip_prefix("hmac-sha256-hex=")
        .ok_or(SignatureError::Malformed)?;
    let signature = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    for secret in secrets {
        let key = easypost_key(secret);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Whether a secret sent as it is (a token in a webhook URL) is `expected`, compared in constant
/// time (only the lengths may differ observably).
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

/// The `X-Hmac-Signature` EasyPost would send for `body` with `secret` (tests and the demo).
pub fn sign_easypost(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(easypost_key(secret).as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!(
        "hmac-sha256-hex={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn easypost_key(secret: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    secret.nfkd().collect()
}

/// The base64 HMAC-SHA256 of `body` with `secret` (for tests and the local demo).
pub fn sign_base64_hmac(secret: &[u8], body: &[u8]) -> String {
    use base64::Engine as _;
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_token_matches_only_itself() {
        assert!(super::same_secret(b"token-0123456789", b"token-0123456789"));
        assert!(!super::same_secret(
            b"token-0123456788",
            b"token-0123456789"
        ));
        assert!(!super::same_secret(b"token-012345678", b"token-0123456789"));
        assert!(!super::same_secret(b"", b"token-0123456789"));
    }

    #[test]
    fn easypost_signatures_match_easyposts_own_vectors() {
        // EasyPost's client-library test vector: the secret "sécret" (é as one code point, which
        // NFKD splits into e and a combining accent).
        let header =
            "hmac-sha256-hex=648a648ccf2d4fb82924f631da8d92ecfb4d0e8406023c78f9a215117f1ac4d0";
        let body = br#"{"id":"evt_1"}"#;
        assert_eq!(super::sign_easypost("s\u{e9}cret", body), header);
        assert_eq!(
            super::verify_easypost(Some(header), body, &["other-secret", "s\u{e9}cret"]),
            Ok(())
        );
        // Already decomposed, the same key.
        assert_eq!(
            super::verify_easypost(Some(header), body, &["se\u{301}cret"]),
            Ok(())
        );
        assert_eq!(
            super::verify_easypost(Some(header), br#"{"id":"evt_2"}"#, &["s\u{e9}cret"]),
            Err(super::SignatureError::Mismatch)
        );
        assert_eq!(
            super::verify_easypost(Some(&header[16..]), body, &["s\u{e9}cret"]),
            Err(super::SignatureError::Malformed),
            "the scheme prefix is required"
        );
        assert_eq!(
            super::verify_easypost(None, body, &["s\u{e9}cret"]),
            Err(super::SignatureError::Missing)
        );
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_base64_hmac_verifies_with_any_secret_of_a_rotation_and_nothing_else() {
        let body = br#"{"id":820982911946154508}"#;
        let old = b"shpss_old_secret_0123456789";
        let new = b"shpss_new_secret_0123456789";
        let header = sign_base64_hmac(old, body);
        assert_eq!(verify_base64_hmac(Some(&header), body, &[new, old]), Ok(()));
        assert_eq!(
            verify_base64_hmac(Some(&header), body, &[new]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_base64_hmac(Some(&header), br#"{"id":820982911946154509}"#, &[old]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_base64_hmac(None, body, &[old]),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_base64_hmac(Some("not base64!"), body, &[old]),
            Err(SignatureError::Malformed)
        );
        // A known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            sign_base64_hmac(b"key", b"The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }

    const SECRET: &[u8] = b"whsec_0123456789abcdef0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn valid_signatures_verify() {
        let h = sign(SECRET, now().as_second(), BODY);
        assert!(verify(Some(&h), BODY, &[SECRET], now()).is_ok());
    }

    #[test]
    fn wrong_secret_tampered_body_stale_and_missing_fail() {
        let t = now().as_second();
        let h = sign(SECRET, t, BODY);
        assert_eq!(
            verify(
                Some(&h),
                BODY,
                &[b"another-secret-another-secret-xx"],
                now()
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), br#"{"id":"evt_2"}"#, &[SECRET], now()),
            Err(SignatureError::Mismatch)
        );
        let old = sign(SECRET, t - TOLERANCE_SECONDS - 1, BODY);
        assert_eq!(
            verify(Some(&old), BODY, &[SECRET], now()),
            Err(SignatureError::Stale)
        );
        let future = sign(SECRET, t + TOLERANCE_SECONDS + 1, BODY);
        assert_eq!(
            verify(Some(&future), BODY, &[SECRET], now()),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(None, BODY, &[SECRET], now()),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=abc,v1=00",
            "v1=00",
            "t=1",
            &format!("t={t},v1=zz"),
            "garbage",
        ] {
            assert_eq!(
                verify(Some(bad), BODY, &[SECRET], now()),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn extreme_timestamps_are_stale_not_a_panic() {
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let h = format!("t={t},v1=00");
            assert_eq!(
                verify(Some(&h), BODY, &[SECRET], now()),
                Err(SignatureError::Stale),
                "{t}"
            );
        }
    }

    #[test]
    fn rotation_accepts_any_v1_and_any_secret() {
        let t = now().as_second();
        let new_secret: &[u8] = b"whsec_new_new_new_new_new_new_new_new_0";
        let old_sig = sign(SECRET, t, BODY);
        let new_sig = sign(new_secret, t, BODY);
        let both = format!("{old_sig},v1={}", new_sig.split("v1=").nth(1).unwrap());
        assert!(verify(Some(&both), BODY, &[new_secret], now()).is_ok());
        assert!(verify(Some(&both), BODY, &[SECRET], now()).is_ok());
        assert!(verify(Some(&old_sig), BODY, &[new_secret, SECRET], now()).is_ok());
    }

    #[test]
    fn replay_keys_identify_the_signature() {
        let t = now().as_second();
        let a = verify(Some(&sign(SECRET, t, BODY)), BODY, &[SECRET], now()).unwrap();
        let b = verify(Some(&sign(SECRET, t, BODY)), BODY, &[SECRET], now()).unwrap();
        let c = verify(Some(&sign(SECRET, t + 1, BODY)), BODY, &[SECRET], now()).unwrap();
        assert_eq!(a.replay_key, b.replay_key);
        assert_ne!(a.replay_key, c.replay_key);
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_verify_or_panic(h in ".{0,200}") {
            prop_assert!(verify(Some(&h), BODY, &[SECRET], now()).is_err());
        }
    }
}
