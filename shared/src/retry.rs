//! Backoff for our own retries (transaction conflicts, SES throttling).

use std::time::Duration;

/// Exponential backoff with full jitter: uniformly 0..=(25 ms × 2^attempt), capped at 1 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1000);
    let mut b = [0u8; 8];
    let r = getrandom::getrandom(&mut b)
        .map(|_| u64::from_le_bytes(b))
        .unwrap_or(cap / 2);
    Duration::from_millis(r % (cap + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        for attempt in 0..20 {
            assert!(backoff(attempt) <= Duration::from_secs(1));
        }
    }
}
