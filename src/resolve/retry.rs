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
    let cap = BASE_DELAY
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_DELAY);
    // Full jitter spreads the clients of one registry apart (AWS architecture blog).
    cap.mul_f64(fastrand::f64())
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
        for attempt in 0..10 {
            assert!(backoff(attempt) <= MAX_DELAY);
        }
        let max_first = (0..200).map(|_| backoff(0)).max().unwrap();
        assert!(max_first <= BASE_DELAY);
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
