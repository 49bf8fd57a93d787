//! The counters the runtime keeps about itself.
//!
//! Counters are relaxed atomics updated off the per-message path (spawn,
//! exit, dead letter, restart) or in batches: each actor adds its handled
//! messages every 64 messages and when it stops, so `messages_handled` lags
//! by fewer than 64 per running actor. Each update is also reported through the
//! [`metrics`] facade, so an installed exporter (Prometheus, StatsD, …) sees
//! them without extra wiring:
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `airssys_rt_actors_spawned_total`, `airssys_rt_actors_stopped_total` | counter | actor lifecycle |
//! | `airssys_rt_messages_handled_total` | counter | messages delivered to handlers (in batches of 64) |
//! | `airssys_rt_mailbox_depth` | histogram | an actor's queue depth, sampled once per 64 handled messages |
//! | `airssys_rt_dead_letters_total{reason}` | counter | undeliverable messages by reason |
//! | `airssys_rt_panics_total` | counter | panics caught in actor hooks |
//! | `airssys_rt_restarts_total` | counter | in-place restarts (`ErrorAction::Restart`) |
//! | `airssys_rt_supervision_events_total{kind}` | counter | supervisor events; `kind="child_restarted"` counts supervised restarts |
//! | `airssys_rt_health` | gauge | last health verdict (0 healthy, 1 degraded, 2 unhealthy) |
//! | `airssys_rt_circuit_opened_total` | counter | circuit breakers tripping open |
//! | `airssys_rt_published_total` | counter | pub/sub deliveries |
//!
//! The broker adds its own (see [`broker`](crate::broker)'s metrics module docs).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one [`ActorSystem`](crate::system::ActorSystem).
#[derive(Debug, Default)]
pub struct RuntimeMetrics {
    spawned: AtomicU64,
    stopped: AtomicU64,
    messages_handled: AtomicU64,
    dead_letters: AtomicU64,
    panics: AtomicU64,
    restarts: AtomicU64,
}

/// A point-in-time copy of [`RuntimeMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeMetricsSnapshot {
    /// Actors spawned since the system started.
    pub spawned: u64,
    /// Actors that have exited, for any reason.
    pub stopped: u64,
    /// User messages handed to `handle_message`.
    pub messages_handled: u64,
    /// Messages recorded as dead letters.
    pub dead_letters: u64,
    /// Panics caught in actor hooks.
    pub panics: u64,
    /// In-place restarts requested through `ErrorAction::Restart`.
    pub restarts: u64,
}

impl RuntimeMetricsSnapshot {
    /// Actors currently alive according to these counters.
    pub fn alive(&self) -> u64 {
        self.spawned.saturating_sub(self.stopped)
    }
}

/// Adds one to a counter whose writers are serialized by a lock they hold.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl RuntimeMetrics {
    /// Copies the current values.
    pub fn snapshot(&self) -> RuntimeMetricsSnapshot {
        RuntimeMetricsSnapshot {
            spawned: self.spawned.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
            messages_handled: self.messages_handled.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
        }
    }

    /// Counts a spawned actor. Every caller holds the system's registry
    /// lock, which orders the calls: a plain load and store does, without
    /// an atomic read-modify-write (which drains the store buffer on every
    /// spawn). Readers see a value no older than the last unlock. The
    /// facade hears of it through [`export_actor_spawned`](Self::export_actor_spawned),
    /// after the lock (a recorder's code must not run under it).
    pub(crate) fn actor_spawned(&self) {
        bump(&self.spawned);
    }

    /// Counts an exited actor; as [`actor_spawned`](Self::actor_spawned),
    /// only under the system's registry lock.
    pub(crate) fn actor_stopped(&self) {
        bump(&self.stopped);
    }

    /// Reports a spawn through the [`metrics`] facade.
    pub(crate) fn export_actor_spawned() {
        metrics::counter!("airssys_rt_actors_spawned_total").increment(1);
    }

    /// Reports an exit through the [`metrics`] facade.
    pub(crate) fn export_actor_stopped() {
        metrics::counter!("airssys_rt_actors_stopped_total").increment(1);
    }

    pub(crate) fn messages_handled(&self, n: u64) {
        if n > 0 {
            self.messages_handled.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("airssys_rt_messages_handled_total").increment(n);
        }
    }

    /// Counted here; reported through the facade by the dead-letter office,
    /// labelled by reason.
    pub(crate) fn dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// A sample of an actor's mailbox depth, taken once per handled batch.
    pub(crate) fn mailbox_depth(&self, depth: usize) {
        metrics::histogram!("airssys_rt_mailbox_depth").record(depth as f64);
    }

    pub(crate) fn panic_caught(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("airssys_rt_panics_total").increment(1);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("airssys_rt_restarts_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_updates() {
        let m = RuntimeMetrics::default();
        m.actor_spawned();
        m.actor_spawned();
        m.actor_stopped();
        m.messages_handled(10);
        m.messages_handled(0);
        m.dead_letter();
        m.panic_caught();
        m.restarted();
        let s = m.snapshot();
        assert_eq!(s.spawned, 2);
        assert_eq!(s.alive(), 1);
        assert_eq!(s.messages_handled, 10);
        assert_eq!((s.dead_letters, s.panics, s.restarts), (1, 1, 1));
    }
}
