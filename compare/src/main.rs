//! `airssys-rt-compare [--quick] [--only NAME-PART] [--out DIR]`: runs every
//! workload (or those whose label contains NAME-PART) for every framework,
//! interleaved, and writes the table, JSON and chart.

use std::path::PathBuf;
use std::time::Instant;

use airssys_rt_compare::driver::{Contender, Flavor};
use airssys_rt_compare::memory::Counting;
use airssys_rt_compare::report::{Report, Series};
use airssys_rt_compare::workload::{Sizes, Workload};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Measured repeats per cell (after one warm-up).
const REPEATS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut quick = false;
    let mut only: Option<String> = None;
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
            "--only" => only = Some(args.next().ok_or("--only needs part of a workload name")?),
            "-h" | "--help" => {
                println!("usage: airssys-rt-compare [--quick] [--only NAME-PART] [--out DIR]");
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

    let began = Instant::now();
    let rows: Vec<(Workload, Flavor)> = Workload::ALL
        .iter()
        .filter(|w| {
            only.as_ref()
                .is_none_or(|part| w.label().contains(part.as_str()))
        })
        .flat_map(|w| Flavor::ALL.iter().map(move |f| (*w, *f)))
        .collect();
    let mut series = Vec::new();
    for (i, (workload, flavor)) in rows.iter().enumerate() {
        let started = Instant::now();
        eprint!(
            "[{:>2}/{}] {} · {} ",
            i + 1,
            rows.len(),
            workload.label(),
            flavor.label()
        );
        let contenders: Vec<Contender> = Contender::ALL
            .into_iter()
            .filter(|c| c.runs_on(*flavor))
            .collect();
        let mut samples: Vec<Vec<_>> = vec![Vec::new(); contenders.len()];
        for repeat in 0..=REPEATS {
            // Interleaved: every contender once per repeat, so drift and noise
            // on this shared machine hit all of them alike.
            for (c, contender) in contenders.iter().enumerate() {
                let sample = contender.measure(*flavor, *workload, sizes);
                if repeat > 0 {
                    samples[c].push(sample);
                }
                eprint!(".");
            }
        }
        eprintln!(" {:.1}s", started.elapsed().as_secs_f64());
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
    let report = Report {
        machine,
        sizes,
        repeats: REPEATS,
        series,
    };
    println!("{}", report.markdown());
    report.write(&out)?;
    eprintln!(
        "wrote {}/results.{{md,json}} and chart.svg in {:.0}s",
        out.display(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
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
