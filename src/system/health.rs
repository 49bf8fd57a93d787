//! [`ActorSystemHealth`]: a verdict on a running system — actor count,
//! message throughput, dead letters and supervision — with the reasons for
//! it, checked against [`HealthThresholds`] you choose.
//!
//! Rates are measured between consecutive checks, so a monitor that calls
//! [`health_check`](ActorSystemHealth::health_check) every few seconds sees
//! what happened in that window, not since the system started.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::ActorSystem;
use crate::supervisor::SupervisorStats;
use crate::util::time;

/// How bad a system is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthVerdict {
    /// Nothing above a threshold.
    Healthy,
    /// Working, but something crossed a "degraded" threshold.
    Degraded,
    /// A supervision tree is gone, the system is shutting down, or something
    /// crossed an "unhealthy" threshold.
    Unhealthy,
}

/// Limits for the verdict; rates are per second over the window since the
/// previous check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthThresholds {
    /// Restarts per second that make the system degraded.
    pub degraded_restart_rate: f64,
    /// Restarts per second that make it unhealthy.
    pub unhealthy_restart_rate: f64,
    /// Dead letters per second that make it degraded.
    pub degraded_dead_letter_rate: f64,
    /// Dead letters per second that make it unhealthy.
    pub unhealthy_dead_letter_rate: f64,
    /// Live actors above which it is degraded (`None`: no limit).
    pub max_actors: Option<usize>,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            degraded_restart_rate: 1.0,
            unhealthy_restart_rate: 10.0,
            degraded_dead_letter_rate: 100.0,
            unhealthy_dead_letter_rate: 10_000.0,
            max_actors: None,
        }
    }
}

/// Messages handled over a check window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageThroughput {
    /// Handled in the window (each actor reports in batches of 64 and when it
    /// stops, so a few recent messages may be counted in the next window).
    pub handled: u64,
    /// `handled` per second.
    pub per_second: f64,
    /// The window's length.
    pub window: Duration,
}

/// One health check's findings.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthStatus {
    /// The verdict.
    pub verdict: HealthVerdict,
    /// Why it is not healthy (empty when healthy).
    pub reasons: Vec<String>,
    /// Live actors.
    pub actor_count: usize,
    /// Messages handled in the window.
    pub throughput: MessageThroughput,
    /// Dead letters per second in the window.
    pub dead_letter_rate: f64,
    /// Restarts per second in the window.
    pub restart_rate: f64,
    /// Supervision totals.
    pub supervisor_stats: SupervisorStats,
    /// When the check ran.
    pub timestamp: DateTime<Utc>,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: {} actors, {:.0} msg/s, {:.1} restarts/s, {:.1} dead letters/s over {}",
            self.verdict,
            self.actor_count,
            self.throughput.per_second,
            self.restart_rate,
            self.dead_letter_rate,
            time::human(self.throughput.window)
        )?;
        for reason in &self.reasons {
            write!(f, "; {reason}")?;
        }
        Ok(())
    }
}

/// Checks one system's health; keep it and call
/// [`health_check`](Self::health_check) periodically.
///
/// ```
/// use airssys_rt::system::{ActorSystem, ActorSystemHealth, HealthThresholds, HealthVerdict, SystemConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let health = ActorSystemHealth::new(system.clone(), HealthThresholds::default());
/// let status = health.health_check().await;
/// assert_eq!(status.verdict, HealthVerdict::Healthy);
/// println!("{status}");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ActorSystemHealth {
    system: ActorSystem,
    thresholds: HealthThresholds,
    previous: Mutex<Counters>,
}

/// The cumulative counters at the previous check.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    handled: u64,
    dead_letters: u64,
    restarts: u64,
}

impl ActorSystemHealth {
    /// A checker for `system`; the first window starts now.
    pub fn new(system: ActorSystem, thresholds: HealthThresholds) -> Self {
        let previous = Mutex::new(Self::counters(&system));
        Self {
            system,
            thresholds,
            previous,
        }
    }

    fn counters(system: &ActorSystem) -> Counters {
        let metrics = system.metrics().snapshot();
        Counters {
            at: Instant::now(),
            handled: metrics.messages_handled,
            dead_letters: metrics.dead_letters,
            restarts: metrics.restarts + system.supervisor_stats().restarts,
        }
    }

    /// Measures the window since the previous check and gives a verdict.
    pub async fn health_check(&self) -> HealthStatus {
        let now = Self::counters(&self.system);
        let before = std::mem::replace(&mut *self.previous.lock(), now);
        let window = now.at.saturating_duration_since(before.at);
        let seconds = window.as_secs_f64().max(1e-9);
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / seconds;
        let handled = now.handled.saturating_sub(before.handled);
        let restart_rate = rate(now.restarts, before.restarts);
        let dead_letter_rate = rate(now.dead_letters, before.dead_letters);
        let supervisor_stats = self.system.supervisor_stats();
        let actor_count = self.system.actor_count();

        let t = &self.thresholds;
        let mut verdict = HealthVerdict::Healthy;
        let mut reasons = Vec::new();
        let mut judge = |level: HealthVerdict, reason: String| {
            verdict = verdict.max(level);
            reasons.push(reason);
        };
        let root_failures = self.system.root_failures().len();
        if root_failures > 0 {
            judge(
                HealthVerdict::Unhealthy,
                format!("{root_failures} supervision tree(s) gave up"),
            );
        }
        if self.system.is_shutting_down() {
            judge(HealthVerdict::Unhealthy, "shutting down".to_owned());
        }
        for (value, degraded, unhealthy, what) in [
            (
                restart_rate,
                t.degraded_restart_rate,
                t.unhealthy_restart_rate,
                "restarts",
            ),
            (
                dead_letter_rate,
                t.degraded_dead_letter_rate,
                t.unhealthy_dead_letter_rate,
                "dead letters",
            ),
        ] {
            if value >= unhealthy {
                judge(
                    HealthVerdict::Unhealthy,
                    format!("{value:.1} {what}/s (unhealthy from {unhealthy})"),
                );
            } else if value >= degraded {
                judge(
                    HealthVerdict::Degraded,
                    format!("{value:.1} {what}/s (degraded from {degraded})"),
                );
            }
        }
        if let Some(max) = t.max_actors
            && actor_count > max
        {
            judge(
                HealthVerdict::Degraded,
                format!("{actor_count} actors (more than {max})"),
            );
        }
        let status = HealthStatus {
            verdict,
            reasons,
            actor_count,
            throughput: MessageThroughput {
                handled,
                per_second: handled as f64 / seconds,
                window,
            },
            dead_letter_rate,
            restart_rate,
            supervisor_stats,
            timestamp: time::now(),
        };
        metrics::gauge!("airssys_rt_health").set(match status.verdict {
            HealthVerdict::Healthy => 0.0,
            HealthVerdict::Degraded => 1.0,
            HealthVerdict::Unhealthy => 2.0,
        });
        status
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::actor::{Actor, ActorContext};
    use crate::system::SystemConfig;

    struct Sink;

    impl Actor for Sink {
        type Message = u64;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            _: u64,
            _: &mut ActorContext<u64>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_is_measured_per_window() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let health = ActorSystemHealth::new(system.clone(), HealthThresholds::default());
        let sink = system.spawn(Sink).unwrap();
        for n in 0..128 {
            sink.tell(n).await.unwrap();
        }
        // Two full batches of 64 are flushed to the counters by the actor.
        while system.metrics().snapshot().messages_handled < 128 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        let status = health.health_check().await;
        assert_eq!(status.throughput.handled, 128);
        assert_eq!(status.throughput.window, Duration::from_secs(2));
        assert_eq!(status.throughput.per_second, 64.0);
        assert_eq!(status.actor_count, 1);
        assert_eq!(status.verdict, HealthVerdict::Healthy);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            health.health_check().await.throughput.handled,
            0,
            "a new window"
        );
    }

    /// Never gets past `pre_start`: what it is sent stays queued.
    struct Parked;

    impl Actor for Parked {
        type Message = u64;
        type Error = Infallible;
        async fn pre_start(&mut self, _: &mut ActorContext<u64>) -> Result<(), Infallible> {
            std::future::pending().await
        }
        async fn handle_message(
            &mut self,
            _: u64,
            _: &mut ActorContext<u64>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dead_letters_and_actor_counts_cross_thresholds() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let health = ActorSystemHealth::new(
            system.clone(),
            HealthThresholds {
                degraded_dead_letter_rate: 1.0,
                unhealthy_dead_letter_rate: 5.0,
                max_actors: Some(1),
                ..HealthThresholds::default()
            },
        );
        let _sink = system.spawn(Sink).unwrap();
        let parked = system.spawn(Parked).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let status = health.health_check().await;
        assert_eq!(status.verdict, HealthVerdict::Degraded, "{status}");
        assert_eq!(status.reasons, ["2 actors (more than 1)"]);

        for n in 0..10 {
            parked.tell(n).await.unwrap();
        }
        parked.kill();
        parked.wait_for_exit().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let status = health.health_check().await;
        assert_eq!(status.verdict, HealthVerdict::Unhealthy, "{status}");
        assert_eq!(status.dead_letter_rate, 10.0);
    }
}
