//! Health monitoring (beyond OTP, opt-in per child): a task per monitored
//! child probes it every interval; after enough consecutive failures (a probe
//! that says `false` or does not answer within its timeout) the supervisor is
//! told, stops the child and handles it as a failure by its strategy.

use std::time::Duration;

use tokio::task::AbortHandle;

use super::traits::BoundProbe;
use super::tree::SupervisorMsg;
use crate::actor::ActorRef;
use crate::util::ActorId;

/// How often and how strictly a child's health is checked.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::supervisor::HealthCheck;
///
/// let check = HealthCheck::every(Duration::from_secs(5))
///     .timeout(Duration::from_secs(1))
///     .failures(3);
/// assert_eq!(check.failure_threshold(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    interval: Duration,
    timeout: Duration,
    failures: u32,
}

impl HealthCheck {
    /// Probes every `interval` (first one `interval` after the start); each
    /// probe may take as long as the interval; three failures in a row make
    /// the child unhealthy.
    pub fn every(interval: Duration) -> Self {
        Self {
            interval,
            timeout: interval,
            failures: 3,
        }
    }

    /// How long one probe may take before it counts as a failure.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Consecutive failures that make the child unhealthy (at least 1).
    pub fn failures(mut self, failures: u32) -> Self {
        self.failures = failures.max(1);
        self
    }

    /// The time between probes.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The time one probe may take.
    pub fn probe_timeout(&self) -> Duration {
        self.timeout
    }

    /// Consecutive failures that make the child unhealthy.
    pub fn failure_threshold(&self) -> u32 {
        self.failures
    }
}

/// Starts probing the instance `actor`; the task ends after reporting it
/// unhealthy, and is aborted by the supervisor when the instance ends.
pub(crate) fn spawn_monitor(
    runtime: &tokio::runtime::Handle,
    check: HealthCheck,
    probe: BoundProbe,
    supervisor: ActorRef<SupervisorMsg>,
    actor: ActorId,
) -> AbortHandle {
    let task = async move {
        let period = check.interval.max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0;
        loop {
            ticks.tick().await;
            let healthy = tokio::time::timeout(check.timeout, probe())
                .await
                .unwrap_or(false);
            if healthy {
                failures = 0;
                continue;
            }
            failures += 1;
            tracing::debug!(%actor, failures, "health probe failed");
            if failures >= check.failures {
                let _ = supervisor.try_tell(SupervisorMsg::Unhealthy { actor, failures });
                return;
            }
        }
    };
    runtime.spawn(task).abort_handle()
}
