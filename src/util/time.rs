//! Time helpers shared by envelopes, dead letters and reports.
//!
//! Wall-clock timestamps use `chrono` (as the brief's envelope does); the
//! runtime never reads the clock on the plain `tell` path.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The current wall-clock time in UTC.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Whether something stamped at `timestamp` with time-to-live `ttl` has
/// expired at `at`. A TTL too large for chrono never expires.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::util::time::{is_expired, now};
/// let stamped = now() - chrono::Duration::seconds(10);
/// assert!(is_expired(stamped, Duration::from_secs(1), now()));
/// assert!(!is_expired(stamped, Duration::from_secs(60), now()));
/// ```
pub fn is_expired(timestamp: DateTime<Utc>, ttl: Duration, at: DateTime<Utc>) -> bool {
    match chrono::Duration::from_std(ttl) {
        Ok(ttl) => timestamp
            .checked_add_signed(ttl)
            .is_some_and(|deadline| at >= deadline),
        Err(_) => false,
    }
}

/// The instant `timeout` from now on tokio's clock (so paused test clocks
/// apply), saturating at about thirty years ahead: a timeout too large to
/// represent waits "forever" instead of overflowing.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::util::time::deadline_after;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let soon = deadline_after(Duration::from_secs(1));
/// assert!(soon > tokio::time::Instant::now());
/// assert!(deadline_after(Duration::MAX) > soon); // no overflow
/// # }
/// ```
pub fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    const FOREVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let now = tokio::time::Instant::now();
    now.checked_add(timeout.min(FOREVER)).unwrap_or(now)
}

/// Renders a duration compactly for logs and reports: `850ns`, `12.3µs`,
/// `4.56ms`, `1.20s`.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::util::time::human;
/// assert_eq!(human(Duration::from_micros(1500)), "1.50ms");
/// ```
pub fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_of_the_deadline() {
        let t = now();
        let ttl = Duration::from_millis(100);
        let deadline = t + chrono::Duration::milliseconds(100);
        assert!(!is_expired(t, ttl, t));
        assert!(is_expired(t, ttl, deadline));
    }

    #[test]
    fn huge_ttl_never_expires() {
        assert!(!is_expired(now(), Duration::MAX, now()));
    }

    #[test]
    fn huge_timeouts_saturate_instead_of_overflowing() {
        let far = deadline_after(Duration::MAX);
        assert!(far > tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn human_units() {
        assert_eq!(human(Duration::from_nanos(850)), "850ns");
        assert_eq!(human(Duration::from_nanos(12_340)), "12.3µs");
        assert_eq!(human(Duration::from_millis(1200)), "1.20s");
    }
}
