//! Supervision events: what supervisors did, as a stream anyone can follow
//! ([`ActorSystem::supervision_events`](crate::system::ActorSystem::supervision_events)),
//! and the running totals behind [`SupervisorStats`].
//!
//! Each subscriber gets its own unbounded queue: events are rare next to
//! messages, and a test or monitor must never miss one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::ChildId;
use crate::actor::ExitReason;
use crate::util::ActorId;
use crate::util::subscribers::Subscribers;

/// One thing a supervisor did or saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisionEvent {
    /// A child was started for the first time (at supervisor start or by
    /// `start_child` / `restart_child`).
    ChildStarted {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The child's id in its spec.
        child: ChildId,
        /// The running instance.
        actor: ActorId,
    },
    /// A child instance exited (on its own, or stopped by its supervisor).
    ChildExited {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The child's id in its spec.
        child: ChildId,
        /// The instance that exited.
        actor: ActorId,
        /// Why it exited.
        reason: ExitReason,
    },
    /// A child was started again by the supervisor's strategy.
    ChildRestarted {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The child's id in its spec.
        child: ChildId,
        /// The new instance.
        actor: ActorId,
    },
    /// A child instance could not start (its factory panicked or its
    /// `pre_start` failed). During a restart, the restart is tried again
    /// through the strategy, and counted again.
    ChildStartFailed {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The child's id in its spec.
        child: ChildId,
        /// Why the start failed.
        reason: ExitReason,
    },
    /// A child failed its health check too many times in a row; it is
    /// stopped and handled as a failure.
    ChildUnhealthy {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The child's id in its spec.
        child: ChildId,
        /// The unhealthy instance.
        actor: ActorId,
        /// Consecutive failed probes.
        failures: u32,
    },
    /// The supervisor exceeded its restart intensity: it stops all its
    /// children and exits with reason `Shutdown`, which its own parent
    /// handles like any child exit.
    SupervisorGaveUp {
        /// The supervisor's actor id.
        supervisor: ActorId,
        /// The restarts in the window, including the one refused.
        restarts: u32,
        /// The window.
        period: Duration,
    },
}

impl SupervisionEvent {
    /// The supervisor that reported the event.
    pub fn supervisor(&self) -> ActorId {
        match self {
            SupervisionEvent::ChildStarted { supervisor, .. }
            | SupervisionEvent::ChildExited { supervisor, .. }
            | SupervisionEvent::ChildRestarted { supervisor, .. }
            | SupervisionEvent::ChildStartFailed { supervisor, .. }
            | SupervisionEvent::ChildUnhealthy { supervisor, .. }
            | SupervisionEvent::SupervisorGaveUp { supervisor, .. } => *supervisor,
        }
    }
}

/// Each kind of event with its stable name: the one table behind
/// [`SupervisionEvent::kind`] and the per-kind metric keys.
macro_rules! event_kinds {
    ($($variant:ident => $name:literal),* $(,)?) => {
        impl SupervisionEvent {
            /// A short, stable name of the event's kind (a metrics label),
            /// e.g. `"child_restarted"`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(SupervisionEvent::$variant { .. } => $name,)*
                }
            }

            /// Counts this event in `airssys_rt_supervision_events_total`,
            /// labelled by kind. With literal labels each key is a static
            /// built at compile time: counting allocates and hashes nothing.
            fn count(&self) {
                let counter = match self {
                    $(SupervisionEvent::$variant { .. } => metrics::counter!(
                        "airssys_rt_supervision_events_total",
                        "kind" => $name
                    ),)*
                };
                counter.increment(1);
            }
        }
    };
}

event_kinds! {
    ChildStarted => "child_started",
    ChildExited => "child_exited",
    ChildRestarted => "child_restarted",
    ChildStartFailed => "child_start_failed",
    ChildUnhealthy => "child_unhealthy",
    SupervisorGaveUp => "supervisor_gave_up",
}

impl fmt::Display for SupervisionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisionEvent::ChildStarted {
                supervisor,
                child,
                actor,
            } => write!(f, "{supervisor}: child {child} started as {actor}"),
            SupervisionEvent::ChildExited {
                supervisor,
                child,
                actor,
                reason,
            } => write!(f, "{supervisor}: child {child} ({actor}) exited: {reason}"),
            SupervisionEvent::ChildRestarted {
                supervisor,
                child,
                actor,
            } => write!(f, "{supervisor}: child {child} restarted as {actor}"),
            SupervisionEvent::ChildStartFailed {
                supervisor,
                child,
                reason,
            } => write!(f, "{supervisor}: child {child} failed to start: {reason}"),
            SupervisionEvent::ChildUnhealthy {
                supervisor,
                child,
                actor,
                failures,
            } => write!(
                f,
                "{supervisor}: child {child} ({actor}) failed {failures} health checks in a row"
            ),
            SupervisionEvent::SupervisorGaveUp {
                supervisor,
                restarts,
                period,
            } => write!(
                f,
                "{supervisor}: gave up after {restarts} restarts within {}",
                crate::util::time::human(*period)
            ),
        }
    }
}

/// A subscription to a system's supervision events, from the moment it was
/// made. Dropping it unsubscribes.
#[derive(Debug)]
pub struct SupervisionEvents {
    receiver: mpsc::UnboundedReceiver<SupervisionEvent>,
}

impl SupervisionEvents {
    /// The next event; `None` once the system is gone.
    pub async fn recv(&mut self) -> Option<SupervisionEvent> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SupervisionEvent> {
        self.receiver.try_recv().ok()
    }
}

/// Totals over all supervisors of one system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SupervisorStats {
    /// Supervisors currently running.
    pub supervisors: u64,
    /// Supervised children currently running.
    pub children: u64,
    /// Restarts decided (each counts toward its supervisor's intensity).
    pub restarts: u64,
    /// Child exits with an abnormal reason, and failed child starts.
    pub child_failures: u64,
    /// Children stopped for failing their health checks.
    pub unhealthy: u64,
    /// Supervisors that exceeded their restart intensity.
    pub gave_up: u64,
}

/// Fans events out to subscribers and keeps the totals.
#[derive(Default)]
pub(crate) struct SupervisionBus {
    subscribers: Subscribers<SupervisionEvent>,
    supervisors: AtomicU64,
    children: AtomicU64,
    restarts: AtomicU64,
    child_failures: AtomicU64,
    unhealthy: AtomicU64,
    gave_up: AtomicU64,
}

impl SupervisionBus {
    pub(crate) fn subscribe(&self) -> SupervisionEvents {
        SupervisionEvents {
            receiver: self.subscribers.subscribe(),
        }
    }

    pub(crate) fn publish(&self, event: SupervisionEvent) {
        let counter = match &event {
            SupervisionEvent::ChildStarted { .. } => Some((&self.children, true)),
            SupervisionEvent::ChildRestarted { .. } => {
                self.restarts.fetch_add(1, Ordering::Relaxed);
                Some((&self.children, true))
            }
            SupervisionEvent::ChildExited { reason, .. } => {
                if !reason.is_normal() {
                    self.child_failures.fetch_add(1, Ordering::Relaxed);
                }
                Some((&self.children, false))
            }
            SupervisionEvent::ChildStartFailed { .. } => {
                self.child_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
            SupervisionEvent::ChildUnhealthy { .. } => {
                self.unhealthy.fetch_add(1, Ordering::Relaxed);
                None
            }
            SupervisionEvent::SupervisorGaveUp { .. } => {
                self.gave_up.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        match counter {
            Some((counter, true)) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Some((counter, false)) => {
                counter.fetch_sub(1, Ordering::Relaxed);
            }
            None => {}
        }
        match &event {
            SupervisionEvent::ChildExited { reason, .. } if !reason.is_normal() => {
                tracing::warn!(%event, "supervision");
            }
            SupervisionEvent::ChildStartFailed { .. } => tracing::warn!(%event, "supervision"),
            SupervisionEvent::SupervisorGaveUp { .. } | SupervisionEvent::ChildUnhealthy { .. } => {
                tracing::error!(%event, "supervision");
            }
            _ => tracing::debug!(%event, "supervision"),
        }
        event.count();
        self.subscribers.send(&event);
    }

    pub(crate) fn supervisor_started(&self) {
        self.supervisors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn supervisor_stopped(&self) {
        self.supervisors.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> SupervisorStats {
        SupervisorStats {
            supervisors: self.supervisors.load(Ordering::Relaxed),
            children: self.children.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            child_failures: self.child_failures.load(Ordering::Relaxed),
            unhealthy: self.unhealthy.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }
}

/// Where a supervisor publishes: the bus plus its own id.
#[derive(Clone)]
pub(crate) struct EventSink {
    pub(crate) bus: Arc<SupervisionBus>,
    pub(crate) supervisor: ActorId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_gets_every_event_and_totals_follow() {
        let bus = SupervisionBus::default();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        let (supervisor, actor) = (ActorId::next(), ActorId::next());
        let child = ChildId::from("worker");
        bus.publish(SupervisionEvent::ChildStarted {
            supervisor,
            child: child.clone(),
            actor,
        });
        bus.publish(SupervisionEvent::ChildExited {
            supervisor,
            child,
            actor,
            reason: ExitReason::Killed,
        });
        for events in [&mut a, &mut b] {
            assert!(matches!(
                events.try_recv(),
                Some(SupervisionEvent::ChildStarted { .. })
            ));
            assert!(matches!(
                events.try_recv(),
                Some(SupervisionEvent::ChildExited { .. })
            ));
            assert!(events.try_recv().is_none());
        }
        let stats = bus.stats();
        assert_eq!((stats.children, stats.child_failures), (0, 1));
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let bus = SupervisionBus::default();
        drop(bus.subscribe());
        bus.publish(SupervisionEvent::SupervisorGaveUp {
            supervisor: ActorId::next(),
            restarts: 2,
            period: Duration::from_secs(1),
        });
        assert_eq!(bus.subscribers.len(), 0);
        assert_eq!(bus.stats().gave_up, 1);
    }
}
