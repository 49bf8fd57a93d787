//! `/metrics` without a Prometheus recorder: the runtime's own counters in
//! the Prometheus text format, under the names the `metrics` facade uses
//! (see [`util::metrics`](crate::util::metrics)). Read when scraped, so
//! nothing is recorded on the message path for it. A program that installs
//! `metrics-exporter-prometheus` and hands its handle to the observer gets
//! the recorder's fuller output (histograms, broker metrics) instead.

use std::fmt::Write as _;

use crate::mailbox::DeadLetterReason;
use crate::system::ActorSystem;

/// The exposition of `system`'s counters.
pub(super) fn render(system: &ActorSystem) -> String {
    let metrics = system.metrics().snapshot();
    let supervision = system.supervisor_stats();
    let mut text = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    };
    family(
        "airssys_rt_actors_spawned_total",
        "counter",
        "Actors spawned.",
        &[("", metrics.spawned)],
    );
    family(
        "airssys_rt_actors_stopped_total",
        "counter",
        "Actors that exited.",
        &[("", metrics.stopped)],
    );
    family(
        "airssys_rt_actors",
        "gauge",
        "Actors alive.",
        &[("", system.actor_count() as u64)],
    );
    family(
        "airssys_rt_messages_handled_total",
        "counter",
        "Messages delivered to handlers (counted in batches of 64 per actor).",
        &[("", metrics.messages_handled)],
    );
    family(
        "airssys_rt_panics_total",
        "counter",
        "Panics caught in actor hooks.",
        &[("", metrics.panics)],
    );
    family(
        "airssys_rt_restarts_total",
        "counter",
        "In-place restarts (ErrorAction::Restart).",
        &[("", metrics.restarts)],
    );
    let letters = system.dead_letters();
    let by_reason: Vec<(String, u64)> = DeadLetterReason::ALL
        .iter()
        .map(|reason| {
            (
                format!("{{reason=\"{}\"}}", reason.label()),
                letters.count(*reason),
            )
        })
        .collect();
    let by_reason: Vec<(&str, u64)> = by_reason.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    family(
        "airssys_rt_dead_letters_total",
        "counter",
        "Undeliverable messages by reason.",
        &by_reason,
    );
    family(
        "airssys_rt_supervised_restarts_total",
        "counter",
        "Restarts decided by supervisors.",
        &[("", supervision.restarts)],
    );
    family(
        "airssys_rt_supervisors_gave_up_total",
        "counter",
        "Supervisors that exceeded their restart intensity.",
        &[("", supervision.gave_up)],
    );
    text
}
