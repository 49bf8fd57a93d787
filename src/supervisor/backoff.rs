//! [`Backoff`]: an opt-in delay before a child is restarted (beyond OTP,
//! which restarts at once). Exponential in the number of recent restarts,
//! capped, with random jitter so that many children failing together do not
//! come back in lockstep.

use std::time::Duration;

/// Exponential restart backoff with jitter and a cap.
///
/// The delay before the `n`th restart within the supervisor's intensity
/// window (`n` from 1) is `base × 2^(n-1)`, capped at `cap`, then spread by
/// ± `jitter` (a fraction). A delayed restart still counts toward restart
/// intensity at the moment it is decided.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::supervisor::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(0.0);
/// assert_eq!(backoff.delay(1), Duration::from_millis(10));
/// assert_eq!(backoff.delay(3), Duration::from_millis(40));
/// assert_eq!(backoff.delay(30), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: f64,
}

impl Backoff {
    /// Doubles from `base` up to `cap`, with the default ±20% jitter.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            jitter: 0.2,
        }
    }

    /// Sets the jitter as a fraction of the delay, clamped to `0.0..=1.0`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delay before the `attempt`th restart (counting from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        let raw = self
            .base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.cap)
            .min(self.cap);
        if self.jitter == 0.0 {
            return raw;
        }
        let spread = 1.0 + self.jitter * (2.0 * fastrand::f64() - 1.0);
        raw.mul_f64(spread).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let b =
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2)).jitter(0.0);
        let delays: Vec<_> = (1..=7).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_under_the_cap() {
        let b =
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.5);
        for _ in 0..1000 {
            let d = b.delay(2).as_secs_f64();
            assert!((0.1..=0.3).contains(&d), "{d}");
        }
        let capped = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1));
        assert!(capped.delay(5) <= Duration::from_secs(1));
    }

    #[test]
    fn nonsense_jitter_is_clamped() {
        let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(10));
        assert_eq!(b.jitter(f64::NAN).delay(1), Duration::from_millis(10));
        assert_eq!(b.jitter(-3.0).delay(1), Duration::from_millis(10));
    }
}
