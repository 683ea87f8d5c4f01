//! The webhook signature header parser (Stripe's `t=…,v1=…` scheme, also the tracking webhook's):
//! any header over any body verifies only if it really is a signature over that body, and never
//! panics. The input is `header \n body`.
#![no_main]

use aftercare::signature::{self, SignatureError};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"whsec_fuzz_fuzz_fuzz_fuzz_fuzz_fuzz_0";

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    match signature::verify(Some(header), body, &[SECRET], now) {
        Ok(v) => {
            // Accepted: it must be what the sender would have produced for this body and time
            // (hex digits in either case are the same bytes).
            let expected = signature::sign(SECRET, v.timestamp, body);
            let sig = expected.split("v1=").nth(1).unwrap_or_default();
            assert!(
                header.to_ascii_lowercase().contains(sig),
                "accepted a header that is not a signature of the body"
            );
        }
        Err(SignatureError::Missing) => panic!("a present header reported missing"),
        Err(_) => {}
    }
});
