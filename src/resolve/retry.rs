//! When to retry a registry request and how long to wait: 408, 429, 5xx and transport
//! failures are retried with full-jitter exponential backoff, and `Retry-After` (seconds or
//! an HTTP date) wins over the backoff. 401, 403 and 404 are answers, never retried.

use std::time::{Duration, SystemTime};

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
const BASE_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// Whether a status is worth another try.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 499 | 500..=599)
}

/// The wait before attempt `attempt + 1`, where `attempt` counts from 0.
pub fn backoff(attempt: u32) -> Duration {
    // Full jitter spreads the clients of one registry apart (AWS architecture blog).
    cap(attempt).mul_f64(fastrand::f64())
}

/// The longest wait before attempt `attempt + 1`: doubling from the base, up to the max.
fn cap(attempt: u32) -> Duration {
    BASE_DELAY
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_DELAY)
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 405] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        // Issue 14: this used to pass with a constant backoff.
        assert_eq!(cap(0), BASE_DELAY);
        for attempt in 0..40 {
            let (now, next) = (cap(attempt), cap(attempt + 1));
            assert!(
                next == MAX_DELAY || next == now * 2,
                "doubles until the max"
            );
            assert!(next >= now && next <= MAX_DELAY);
        }
        assert_eq!(cap(40), MAX_DELAY);
        for attempt in 0..6 {
            let samples: Vec<Duration> = (0..200).map(|_| backoff(attempt)).collect();
            assert!(
                samples.iter().all(|d| *d <= cap(attempt)),
                "jitter stays under the cap"
            );
            // Jitter spreads the waits: 200 draws of one uniform wait fill its upper half.
            let max = samples.iter().max().unwrap();
            assert!(*max > cap(attempt) / 2, "attempt {attempt}: {max:?}");
        }
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
