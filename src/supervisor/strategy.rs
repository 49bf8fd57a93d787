//! The OTP rules a supervisor applies after a child exits: which children a
//! restart involves ([`SupervisionStrategy`]), whether an exit is restarted
//! at all ([`RestartType`]), and how many restarts are tolerated
//! ([`RestartIntensity`]).

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

use crate::actor::ExitReason;

/// Which children are restarted when one of them must be (OTP's strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SupervisionStrategy {
    /// Only the child that exited is restarted.
    #[default]
    OneForOne,
    /// All children are stopped (in reverse start order) and then all are
    /// started again (in start order).
    OneForAll,
    /// The child that exited and every child started after it are stopped
    /// (in reverse order) and started again (in order).
    RestForOne,
}

impl SupervisionStrategy {
    /// The positions (in start order) of the children a restart of the child
    /// at `failed` involves, out of `children`.
    ///
    /// ```
    /// use airssys_rt::supervisor::SupervisionStrategy;
    ///
    /// assert_eq!(SupervisionStrategy::OneForOne.affected(1, 4), 1..2);
    /// assert_eq!(SupervisionStrategy::OneForAll.affected(1, 4), 0..4);
    /// assert_eq!(SupervisionStrategy::RestForOne.affected(1, 4), 1..4);
    /// ```
    pub fn affected(self, failed: usize, children: usize) -> Range<usize> {
        match self {
            SupervisionStrategy::OneForOne => failed..failed + 1,
            SupervisionStrategy::OneForAll => 0..children,
            SupervisionStrategy::RestForOne => failed..children,
        }
    }
}

/// When a child is restarted after it exits (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartType {
    /// Always restarted.
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit (anything but `Normal` and
    /// `Shutdown`).
    Transient,
    /// Never restarted; removed from the supervisor when it exits.
    Temporary,
}

impl RestartType {
    /// Whether a child of this type that exited with `reason` is restarted.
    ///
    /// ```
    /// use airssys_rt::actor::ExitReason;
    /// use airssys_rt::supervisor::RestartType;
    ///
    /// assert!(RestartType::Permanent.restarts_after(&ExitReason::Normal));
    /// assert!(!RestartType::Transient.restarts_after(&ExitReason::Shutdown));
    /// assert!(RestartType::Transient.restarts_after(&ExitReason::Killed));
    /// assert!(!RestartType::Temporary.restarts_after(&ExitReason::Panic("boom".into())));
    /// ```
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            RestartType::Permanent => true,
            RestartType::Transient => !reason.is_normal(),
            RestartType::Temporary => false,
        }
    }
}

/// Restart intensity: at most `max_restarts` restarts within any window of
/// `period`; one more and the supervisor gives up. Like OTP, a restart is
/// counted when it is decided, and restarts older than `period` fall out of
/// the window.
#[derive(Debug, Clone)]
pub(crate) struct RestartIntensity {
    max_restarts: u32,
    period: Duration,
    recent: VecDeque<Instant>,
}

impl RestartIntensity {
    /// Restarts allowed within the period.
    pub(crate) fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    pub(crate) fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period,
            recent: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; `false` when that exceeds the intensity.
    pub(crate) fn add_restart(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) > self.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.push_back(now);
        self.recent.len() <= self.max_restarts as usize
    }

    /// Restarts inside the current window.
    pub(crate) fn recent(&self) -> u32 {
        self.recent.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_tolerates_exactly_max_restarts_in_the_window() {
        let start = Instant::now();
        let mut intensity = RestartIntensity::new(3, Duration::from_secs(5));
        for i in 0..3 {
            assert!(intensity.add_restart(start + Duration::from_secs(i)));
        }
        assert!(!intensity.add_restart(start + Duration::from_secs(4)));
    }

    #[test]
    fn restarts_older_than_the_period_fall_out() {
        let start = Instant::now();
        let mut intensity = RestartIntensity::new(1, Duration::from_secs(5));
        for i in 0..100 {
            assert!(intensity.add_restart(start + Duration::from_secs(6 * i)));
        }
        assert_eq!(intensity.recent(), 1);
    }

    #[test]
    fn zero_restarts_means_the_first_failure_gives_up() {
        let mut intensity = RestartIntensity::new(0, Duration::from_secs(5));
        assert!(!intensity.add_restart(Instant::now()));
    }

    #[test]
    fn a_restart_exactly_one_period_later_still_counts() {
        let start = Instant::now();
        let mut intensity = RestartIntensity::new(1, Duration::from_secs(5));
        assert!(intensity.add_restart(start));
        assert!(!intensity.add_restart(start + Duration::from_secs(5)));
    }
}
