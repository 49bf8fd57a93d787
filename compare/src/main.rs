//! `airssys-rt-compare [--quick] [--only NAME-PART]... [--out DIR]`: runs
//! every workload (or those whose label contains any NAME-PART; `--only` may
//! be repeated) for every framework, interleaved, then the airssys-rt-only
//! workloads (broker request/reply, pool routing) the same way, and writes
//! the tables, JSON and chart. Built with `--features wasm`, the
//! airssys-rt-only workloads include the WebAssembly ones (`--only wasm`);
//! with `--features nats`, the NATS broker against raw async-nats
//! (`--only nats`; each run starts `nats-server`, which must be on the PATH).

use std::path::PathBuf;
use std::time::Instant;

use airssys_rt_compare::driver::{Contender, Flavor};
use airssys_rt_compare::internal::Internal;
use airssys_rt_compare::memory::Counting;
use airssys_rt_compare::report::{InternalSeries, Report, Series};
use airssys_rt_compare::workload::{Sample, Sizes, Workload};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Measured repeats per cell (after one warm-up).
const REPEATS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut quick = false;
    let mut only: Vec<String> = Vec::new();
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/compare");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--out" => {
                out = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--out needs a directory")?
            }
            "--only" => only.push(args.next().ok_or("--only needs part of a workload name")?),
            "-h" | "--help" => {
                println!("usage: airssys-rt-compare [--quick] [--only NAME-PART]... [--out DIR]");
                println!("workloads:");
                for w in Workload::ALL {
                    println!("  {}", w.label());
                }
                println!("airssys-rt only:");
                for w in Internal::ALL {
                    println!("  {}", w.label());
                }
                if cfg!(not(feature = "wasm")) {
                    println!("  (the WebAssembly ones: build with --features wasm)");
                }
                if cfg!(not(feature = "nats")) {
                    println!("  (the NATS ones: build with --features nats)");
                }
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    let machine = machine();
    eprintln!(
        "{machine}; {} run, 1 warm-up + {REPEATS} repeats per cell",
        if quick { "quick" } else { "full" }
    );

    let wanted = |label: &str| only.is_empty() || only.iter().any(|part| label.contains(part));
    let began = Instant::now();
    let rows: Vec<(Workload, Flavor)> = Workload::ALL
        .iter()
        .filter(|w| wanted(w.label()))
        .flat_map(|w| Flavor::ALL.iter().map(move |f| (*w, *f)))
        .collect();
    let internal_rows: Vec<(Internal, Flavor)> = Internal::ALL
        .iter()
        .filter(|w| wanted(w.label()))
        .flat_map(|w| Flavor::ALL.iter().map(move |f| (*w, *f)))
        .collect();
    let total = rows.len() + internal_rows.len();
    if total == 0 {
        return Err(format!("no workload label contains any of {only:?}; try --help").into());
    }
    let mut series = Vec::new();
    for (i, (workload, flavor)) in rows.iter().enumerate() {
        let contenders: Vec<Contender> = Contender::ALL
            .into_iter()
            .filter(|c| c.runs_on(*flavor))
            .collect();
        let samples = interleaved(
            (i + 1, total),
            &format!("{} · {}", workload.label(), flavor.label()),
            &contenders,
            |contender| contender.measure(*flavor, *workload, sizes),
        );
        for (contender, samples) in contenders.into_iter().zip(samples) {
            series.push(Series {
                workload: *workload,
                flavor: *flavor,
                framework: contender.name(),
                contender,
                unit: workload.unit(),
                samples,
            });
        }
    }
    let mut internal = Vec::new();
    for (i, (workload, flavor)) in internal_rows.iter().enumerate() {
        let variants = workload.variants();
        let samples = interleaved(
            (rows.len() + i + 1, total),
            &format!(
                "{} · {} (airssys-rt only)",
                workload.label(),
                flavor.label()
            ),
            variants,
            |variant| variant.measure(*flavor, sizes),
        );
        for (variant, samples) in variants.iter().zip(samples) {
            internal.push(InternalSeries {
                workload: *workload,
                flavor: *flavor,
                variant: *variant,
                label: variant.label(),
                unit: workload.unit(),
                samples,
            });
        }
    }
    let report = Report {
        machine,
        sizes,
        repeats: REPEATS,
        series,
        internal,
    };
    println!("{}", report.markdown());
    report.write(&out)?;
    eprintln!(
        "wrote {}/results.{{md,json}}{} in {:.0}s",
        out.display(),
        if report.series.is_empty() {
            ""
        } else {
            " and chart.svg"
        },
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One warm-up and [`REPEATS`] measured repeats of every candidate,
/// interleaved (every candidate once per repeat, so drift and noise on this
/// shared machine hit all of them alike); the measured samples, per candidate.
fn interleaved<T: Copy>(
    (row, rows): (usize, usize),
    title: &str,
    candidates: &[T],
    measure: impl Fn(T) -> Sample,
) -> Vec<Vec<Sample>> {
    let started = Instant::now();
    eprint!("[{row:>2}/{rows}] {title} ");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); candidates.len()];
    for repeat in 0..=REPEATS {
        for (c, candidate) in candidates.iter().enumerate() {
            let sample = measure(*candidate);
            if repeat > 0 {
                samples[c].push(sample);
            }
            eprint!(".");
        }
    }
    eprintln!(" {:.1}s", started.elapsed().as_secs_f64());
    samples
}

/// A one-line description of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}
