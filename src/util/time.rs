//! Time helpers shared by envelopes, dead letters and reports.
//!
//! Wall-clock timestamps use `chrono` (as the brief's envelope does); the
//! runtime never reads the clock on the plain `tell` path.

use std::cell::Cell;
use std::time::Duration;

#[cfg(test)]
use chrono::TimeDelta;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use tokio::time::Instant;

/// The current wall-clock time in UTC.
///
/// One monotonic clock read: each thread anchors tokio's clock to the wall
/// clock once a second and derives timestamps from the anchor, so a
/// timestamp costs no calendar arithmetic and no second clock read (and
/// follows tokio's paused clock in tests).
///
/// ```
/// let ours = airssys_rt::util::time::now();
/// let chronos = chrono::Utc::now();
/// assert!((chronos - ours).num_seconds().abs() < 5);
/// ```
pub fn now() -> DateTime<Utc> {
    now_with_instant().1
}

/// The current monotonic instant and the wall-clock time it corresponds to.
#[inline]
pub(crate) fn now_with_instant() -> (Instant, DateTime<Utc>) {
    let at = Instant::now();
    let wall = ANCHOR.with(|anchor| match anchor.get().wall_at(at) {
        Some(wall) => Some(wall),
        None => {
            let fresh = Anchor::at(at);
            anchor.set(fresh);
            fresh.wall_at(at)
        }
    });
    (at, wall.unwrap_or_else(Utc::now))
}

/// A monotonic instant and the wall-clock date and time of day read right
/// after it; timestamps within a second of it (and the same day) are
/// derived without calendar arithmetic. `date: None` until first set.
#[derive(Clone, Copy)]
struct Anchor {
    at: Option<Instant>,
    date: NaiveDate,
    nanos_of_day: u64,
}

impl Anchor {
    const UNSET: Self = Self {
        at: None,
        date: NaiveDate::MIN,
        nanos_of_day: 0,
    };

    fn at(at: Instant) -> Self {
        let wall = Utc::now();
        let time = wall.time();
        let nanos_of_day = u64::from(time.num_seconds_from_midnight()) * NANOS_PER_SECOND
            + u64::from(time.nanosecond());
        Self {
            at: Some(at),
            date: wall.date_naive(),
            nanos_of_day,
        }
    }

    /// The wall-clock time of `at`, if this anchor still vouches for it.
    #[inline]
    fn wall_at(&self, at: Instant) -> Option<DateTime<Utc>> {
        let since = at.checked_duration_since(self.at?)?;
        if since >= REANCHOR_EVERY {
            return None;
        }
        // Under a second: the nanoseconds fit, and so does the sum.
        let nanos = self.nanos_of_day + u64::from(since.subsec_nanos());
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            (nanos / NANOS_PER_SECOND) as u32,
            (nanos % NANOS_PER_SECOND) as u32,
        )?;
        Some(NaiveDateTime::new(self.date, time).and_utc())
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// How long a thread's anchor is trusted before the wall clock is read
/// again (so a stepped system clock shows up within this long).
const REANCHOR_EVERY: Duration = Duration::from_secs(1);

thread_local! {
    static ANCHOR: Cell<Anchor> = const { Cell::new(Anchor::UNSET) };
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
    deadline_from(tokio::time::Instant::now(), timeout)
}

/// `timeout` after `start`; a timeout too large to represent (such as
/// `Duration::MAX`) is thirty years, not "now".
pub(crate) fn deadline_from(start: Instant, timeout: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    start.checked_add(timeout.min(FOREVER)).unwrap_or(start)
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

/// Serde for envelope timestamps: RFC 3339 text in human-readable formats
/// (JSON), `(seconds, nanoseconds)` integers in binary ones (postcard on
/// the NATS wire), which are smaller and need no date parsing.
pub(crate) mod wire_timestamp {
    use chrono::{DateTime, Utc};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(at: &DateTime<Utc>, to: S) -> Result<S::Ok, S::Error> {
        if to.is_human_readable() {
            at.serialize(to)
        } else {
            (at.timestamp(), at.timestamp_subsec_nanos()).serialize(to)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        from: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        if from.is_human_readable() {
            DateTime::<Utc>::deserialize(from)
        } else {
            let (seconds, nanos) = <(i64, u32)>::deserialize(from)?;
            DateTime::from_timestamp(seconds, nanos)
                .ok_or_else(|| D::Error::custom("timestamp out of range"))
        }
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
    fn anchored_timestamps_track_the_wall_clock() {
        for _ in 0..1_000 {
            let before = Utc::now();
            let ours = now();
            let after = Utc::now();
            let slack = TimeDelta::milliseconds(1);
            assert!(
                before - slack <= ours && ours <= after + slack,
                "{before} {ours} {after}"
            );
        }
    }

    #[test]
    fn timestamps_from_one_anchor_never_go_backwards() {
        let mut last = now();
        for _ in 0..10_000 {
            let next = now();
            assert!(next >= last);
            last = next;
        }
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
