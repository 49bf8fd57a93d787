//! The observer's sampler: once a second it reads the runtime's counters
//! (messages handled, restarts, dead letters by reason), the health
//! verdict, and keeps two minutes of rates; it also keeps the last
//! supervision events. Each sample and each event goes out to open pages.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::api::{State, Update};
use crate::mailbox::DeadLetterReason;
use crate::supervisor::SupervisionEvents;
use crate::system::{ActorSystemHealth, HealthThresholds, HealthVerdict};

/// One-second samples kept: two minutes.
const HISTORY: usize = 120;

/// One second's rates.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) t_ms: u64,
    pub(super) handled_per_sec: f64,
    pub(super) restarts_per_sec: f64,
}

/// The counters a sample is the difference of.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    handled: u64,
    restarts: u64,
    dead_letters: [u64; DeadLetterReason::ALL.len()],
}

impl Counters {
    fn read(state: &State) -> Self {
        let system = &state.system;
        let letters = system.dead_letters();
        Self {
            handled: system.metrics().snapshot().messages_handled,
            restarts: system.supervisor_stats().restarts,
            dead_letters: DeadLetterReason::ALL.map(|reason| letters.count(reason)),
        }
    }
}

/// Samples once a second and forwards supervision events, until aborted.
pub(super) async fn run(state: Arc<State>, mut events: SupervisionEvents) {
    let health = ActorSystemHealth::new(state.system.clone(), HealthThresholds::default());
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = Counters::read(&state);
    let mut last_at = Instant::now();
    let mut history: VecDeque<Sample> = VecDeque::with_capacity(HISTORY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let now = Counters::read(&state);
                let elapsed = last_at.elapsed().as_secs_f64().max(1e-3);
                last_at = Instant::now();
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / elapsed;
                let sample = Sample {
                    t_ms: state.system.uptime().as_millis() as u64,
                    handled_per_sec: rate(now.handled, last.handled),
                    restarts_per_sec: rate(now.restarts, last.restarts),
                };
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(sample);
                let letters_per_sec: Vec<f64> = now
                    .dead_letters
                    .iter()
                    .zip(last.dead_letters)
                    .map(|(now, then)| rate(*now, then))
                    .collect();
                let checked = health.health_check().await;
                let overview = overview(&state, &now, &letters_per_sec, &history, checked.verdict, &checked.reasons);
                last = now;
                if let Some(prometheus) = &state.prometheus {
                    prometheus.run_upkeep();
                }
                state.publish(Update::Overview(Arc::new(overview)));
            }
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
