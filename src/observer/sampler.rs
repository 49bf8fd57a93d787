//! The observer's sampler: it reads the runtime's counters (messages
//! handled, restarts, dead letters by reason) and the health verdict, and
//! keeps two minutes of one-second rates; it also keeps the last
//! supervision events and sends each one to open pages.
//!
//! It ticks only while a page holds the stream open: with none, nothing of
//! the observer is scheduled — no timer, no task woken — and
//! `/api/overview` samples on demand when its last sample is a second old.
//! That is what keeps an observer nobody looks at off the runtime's books.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::api::{State, Update};
use crate::mailbox::DeadLetterReason;
use crate::supervisor::SupervisionEvents;
use crate::system::{ActorSystem, ActorSystemHealth, HealthThresholds, HealthVerdict};

/// One-second samples kept: two minutes.
const HISTORY: usize = 120;

/// How often open pages get an overview, and how old a sample
/// `/api/overview` answers with at most.
pub(super) const PERIOD: Duration = Duration::from_secs(1);

/// One reading's rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    t_ms: u64,
    handled_per_sec: f64,
    restarts_per_sec: f64,
}

/// The counters a sample is the difference of.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    handled: u64,
    restarts: u64,
    dead_letters: [u64; DeadLetterReason::ALL.len()],
}

impl Counters {
    fn read(system: &ActorSystem) -> Self {
        let letters = system.dead_letters();
        Self {
            handled: system.metrics().snapshot().messages_handled,
            restarts: system.supervisor_stats().restarts,
            dead_letters: DeadLetterReason::ALL.map(|reason| letters.count(reason)),
        }
    }
}

/// What sampling remembers between readings: the previous counters and
/// the history of rates.
pub(super) struct Sampler {
    health: ActorSystemHealth,
    last: Counters,
    last_at: Instant,
    history: VecDeque<Sample>,
}

impl Sampler {
    pub(super) fn new(system: &ActorSystem) -> Self {
        Self {
            health: ActorSystemHealth::new(system.clone(), HealthThresholds::default()),
            last: Counters::read(system),
            last_at: Instant::now(),
            history: VecDeque::with_capacity(HISTORY),
        }
    }

    /// Reads the counters now (rates are since the previous reading) and
    /// returns the overview the API and the stream send.
    pub(super) async fn sample(&mut self, state: &State) -> Value {
        let system = &state.system;
        let now = Counters::read(system);
        let elapsed = self.last_at.elapsed().as_secs_f64().max(1e-3);
        self.last_at = Instant::now();
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / elapsed;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            t_ms: system.uptime().as_millis() as u64,
            handled_per_sec: rate(now.handled, self.last.handled),
            restarts_per_sec: rate(now.restarts, self.last.restarts),
        });
        let letters_per_sec: Vec<f64> = now
            .dead_letters
            .iter()
            .zip(self.last.dead_letters)
            .map(|(now, then)| rate(*now, then))
            .collect();
        self.last = now;
        let checked = self.health.health_check().await;
        overview(
            state,
            &now,
            &letters_per_sec,
            &self.history,
            checked.verdict,
            &checked.reasons,
        )
    }
}

/// Forwards supervision events to open pages, and sends them an overview
/// every [`PERIOD`] while at least one is open; until aborted.
pub(super) async fn run(state: Arc<State>, mut events: SupervisionEvents) {
    let mut ticks: Option<Interval> = None;
    loop {
        if !state.is_watched() {
            // No page: drop the timer, wait to be woken by one.
            ticks = None;
        } else if ticks.is_none() {
            let mut every = tokio::time::interval(PERIOD);
            every.set_missed_tick_behavior(MissedTickBehavior::Skip);
            ticks = Some(every);
        }
        tokio::select! {
            Some(_) = tick(&mut ticks) => {
                let overview = state.sample().await;
                state.publish(Update::Overview(overview));
            }
            () = state.page_opened(), if ticks.is_none() => {}
            event = events.recv() => match event {
                Some(event) => {
                    let record = state.record_event(&event);
                    state.publish(Update::Event(Arc::new(record)));
                }
                // The system is gone.
                None => return,
            },
        }
    }
}

/// The next tick, when there is a timer.
async fn tick(ticks: &mut Option<Interval>) -> Option<()> {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
            Some(())
        }
        None => None,
    }
}

/// The overview as the API and the stream send it.
fn overview(
    state: &State,
    counters: &Counters,
    letters_per_sec: &[f64],
    history: &VecDeque<Sample>,
    verdict: HealthVerdict,
    reasons: &[String],
) -> Value {
    let system = &state.system;
    let last = history.back();
    let by_reason = |values: &mut dyn Iterator<Item = Value>| {
        DeadLetterReason::ALL
            .iter()
            .map(|reason| reason.label().to_owned())
            .zip(values)
            .collect::<serde_json::Map<_, _>>()
    };
    json!({
        "system": system.name(),
        "uptime_ms": system.uptime().as_millis() as u64,
        "read_only": state.read_only,
        "actors": system.actor_count(),
        "handled_total": counters.handled,
        "handled_per_sec": last.map_or(0.0, |s| s.handled_per_sec),
        "restarts_total": counters.restarts,
        "restarts_per_sec": last.map_or(0.0, |s| s.restarts_per_sec),
        "dead_letters_total": by_reason(&mut counters.dead_letters.iter().map(|n| json!(n))),
        "dead_letters_per_sec": by_reason(&mut letters_per_sec.iter().map(|r| json!(r))),
        "health": {
            "status": match verdict {
                HealthVerdict::Healthy => "healthy",
                HealthVerdict::Degraded => "degraded",
                HealthVerdict::Unhealthy => "unhealthy",
            },
            "reasons": reasons,
        },
        "history": history.iter().map(|s| json!({
            "t_ms": s.t_ms,
            "handled_per_sec": s.handled_per_sec,
            "restarts_per_sec": s.restarts_per_sec,
        })).collect::<Vec<_>>(),
    })
}
