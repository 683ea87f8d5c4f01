//! Signed-link tokens: an arbitrary string never panics the decoder and never verifies unless it is
//! a token the key signed; and whatever claims are signed come back exactly.
#![no_main]

use aftercare::token::{self, Claims, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = SigningKey::new(&[7u8; 32]) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let text = String::from_utf8_lossy(data);
    if let Ok(claims) = token::verify(&key, &text, "survey", now) {
        // Only a token signed with this key verifies: signing its claims gives it back.
        assert_eq!(
            token::sign(&key, &claims),
            text,
            "verified a token the key did not sign"
        );
    }
    // Round trip: any claims (fields cut from the input) verify to themselves before expiry.
    let mut parts = text.splitn(3, '\u{1f}');
    let claims = Claims {
        merchant: parts.next().unwrap_or_default().to_owned(),
        purpose: "survey".into(),
        subject: parts.next().unwrap_or_default().to_owned(),
        value: parts.next().map(str::to_owned),
        expires: now.as_second() + 60,
    };
    let signed = token::sign(&key, &claims);
    if signed.len() > token::MAX_TOKEN_LEN {
        // Longer than any link may be: refused before decoding, whatever it says.
        assert_eq!(
            token::verify(&key, &signed, "survey", now),
            Err(token::TokenError::Malformed)
        );
        return;
    }
    assert_eq!(
        token::verify(&key, &signed, "survey", now).ok(),
        Some(claims.clone())
    );
    assert!(token::verify(&key, &signed, "unsubscribe", now).is_err());
});
