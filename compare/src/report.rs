//! Results: every raw sample, their medians and spreads, and the three
//! outputs — a markdown table, a JSON file and an SVG bar chart.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use crate::driver::{Contender, Flavor};
use crate::internal::{Internal, Variant};
use crate::workload::{Sample, Sizes, Workload};

/// All measured repeats of one (workload, flavor, contender).
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub workload: Workload,
    pub flavor: Flavor,
    pub framework: &'static str,
    #[serde(skip)]
    pub contender: Contender,
    pub unit: &'static str,
    pub samples: Vec<Sample>,
}

impl Series {
    /// Median of the repeats.
    pub fn median(&self) -> f64 {
        samples_median(&self.samples)
    }

    /// Median of the secondary figure (ask/restart p99, idle RSS), if any.
    pub fn secondary_median(&self) -> Option<f64> {
        samples_secondary_median(&self.samples)
    }

    /// (max - min) / median, as a percentage.
    pub fn spread_percent(&self) -> f64 {
        samples_spread_percent(&self.samples)
    }

    /// Crash recovery: the good jobs lost, as `median` or, when the
    /// repeats differ, `median (min–max)`.
    pub fn lost(&self) -> Option<String> {
        let mut lost: Vec<f64> = self.samples.iter().filter_map(|s| s.secondary).collect();
        lost.sort_by(f64::total_cmp);
        let (min, max) = (*lost.first()?, *lost.last()?);
        let mid = median(&lost);
        Some(if min == max {
            format!("{mid:.0}")
        } else {
            format!("{mid:.0} ({min:.0}–{max:.0})")
        })
    }
}

/// All measured repeats of one variant of an airssys-rt-only workload.
#[derive(Debug, Clone, Serialize)]
pub struct InternalSeries {
    pub workload: Internal,
    pub flavor: Flavor,
    pub variant: Variant,
    pub label: &'static str,
    pub unit: &'static str,
    pub samples: Vec<Sample>,
}

impl InternalSeries {
    /// Median of the repeats.
    pub fn median(&self) -> f64 {
        samples_median(&self.samples)
    }

    /// Median of the secondary figure (p99 latency), if any.
    pub fn secondary_median(&self) -> Option<f64> {
        samples_secondary_median(&self.samples)
    }

    /// (max - min) / median, as a percentage.
    pub fn spread_percent(&self) -> f64 {
        samples_spread_percent(&self.samples)
    }
}

fn sorted_values(samples: &[Sample]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().map(|s| s.value).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn samples_median(samples: &[Sample]) -> f64 {
    median(&sorted_values(samples))
}

fn samples_secondary_median(samples: &[Sample]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(|s| s.secondary).collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| median(&v))
}

fn samples_spread_percent(samples: &[Sample]) -> f64 {
    let v = sorted_values(samples);
    let mid = median(&v);
    match (v.first(), v.last()) {
        (Some(lo), Some(hi)) if mid > 0.0 => (hi - lo) / mid * 100.0,
        _ => 0.0,
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Everything one harness run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub sizes: Sizes,
    pub repeats: usize,
    pub series: Vec<Series>,
    /// The airssys-rt-only workloads (no peer equivalent).
    pub internal: Vec<InternalSeries>,
}

impl Report {
    fn find(&self, workload: Workload, flavor: Flavor, contender: Contender) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.workload == workload && s.flavor == flavor && s.contender == contender)
    }

    /// The markdown report: the side-by-side table (if any of its workloads
    /// ran), then the airssys-rt-only table (if any of those ran).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        if !self.series.is_empty() {
            out.push_str(&self.side_by_side_markdown());
        }
        if !self.internal.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&self.internal_markdown());
        }
        out
    }

    /// A row per (workload, flavor), a column per contender; each cell the
    /// median, its spread and its ratio to airssys-rt.
    fn side_by_side_markdown(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "| workload | runtime |");
        for c in Contender::ALL {
            let _ = write!(out, " {} |", c.name());
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(Contender::ALL.len()));
        for workload in Workload::ALL {
            for flavor in Flavor::ALL {
                let Some(base) = self.find(workload, flavor, Contender::Airssys) else {
                    continue;
                };
                let _ = write!(
                    out,
                    "| {} ({}) | {} |",
                    workload.label(),
                    workload.unit(),
                    flavor.label()
                );
                for c in Contender::ALL {
                    let cell = match self.find(workload, flavor, c) {
                        None => "—".to_owned(),
                        Some(s) => {
                            let mut cell =
                                format!("{} ±{:.0}%", figure(s.median()), s.spread_percent());
                            if matches!(workload, Workload::Ask | Workload::Restart)
                                && let Some(p99) = s.secondary_median()
                            {
                                let _ = write!(cell, ", p99 {}", figure(p99));
                            }
                            if workload == Workload::CrashRecovery
                                && let Some(lost) = s.lost()
                            {
                                let _ = write!(cell, ", lost {lost}");
                            }
                            if c != Contender::Airssys {
                                let _ = write!(cell, " ({:.2}×)", s.median() / base.median());
                            }
                            cell
                        }
                    };
                    let _ = write!(out, " {cell} |");
                }
                let _ = writeln!(out);
            }
        }
        out
    }

    /// The airssys-rt-only workloads, which no peer can run: a row per
    /// (workload, flavor, variant), each the median, its spread and its ratio
    /// to the group's baseline (its first variant) measured in the same run.
    fn internal_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "airssys-rt only (no peer equivalent; ratio to the first row of each group, same run):"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| workload | runtime | variant | airssys-rt | ratio to baseline |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for &workload in Internal::ALL {
            for flavor in Flavor::ALL {
                let find = |variant: Variant| {
                    self.internal.iter().find(|s| {
                        s.workload == workload && s.flavor == flavor && s.variant == variant
                    })
                };
                let Some(base) = workload.variants().first().and_then(|v| find(*v)) else {
                    continue;
                };
                for variant in workload.variants() {
                    let Some(s) = find(*variant) else {
                        continue;
                    };
                    let mut cell = format!("{} ±{:.0}%", figure(s.median()), s.spread_percent());
                    if let Some(p99) = s.secondary_median() {
                        let _ = write!(cell, ", p99 {}", figure(p99));
                    }
                    let ratio = if s.variant == base.variant {
                        "1.00× (baseline)".to_owned()
                    } else {
                        format!("{:.2}×", s.median() / base.median())
                    };
                    let _ = writeln!(
                        out,
                        "| {} ({}) | {} | {} | {cell} | {ratio} |",
                        workload.label(),
                        workload.unit(),
                        flavor.label(),
                        s.label,
                    );
                }
            }
        }
        out
    }

    /// Writes `results.json`, `results.md` and (when a side-by-side workload
    /// ran) `chart.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        std::fs::write(dir.join("results.md"), self.markdown())?;
        if !self.series.is_empty() {
            self.chart(&dir.join("chart.svg"))?;
        }
        Ok(())
    }

    /// A grouped bar chart: per row, each contender's median relative to
    /// airssys-rt (1.0 = as fast/small as airssys-rt; higher is worse).
    fn chart(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let rows: Vec<(Workload, Flavor)> = Workload::ALL
            .iter()
            .flat_map(|w| Flavor::ALL.iter().map(move |f| (*w, *f)))
            .filter(|(w, f)| self.find(*w, *f, Contender::Airssys).is_some())
            .collect();
        let ratio = |w, f, c| -> Option<f64> {
            let base = self.find(w, f, Contender::Airssys)?.median();
            Some(self.find(w, f, c)?.median() / base)
        };
        let top = rows
            .iter()
            .flat_map(|(w, f)| Contender::ALL.iter().filter_map(move |c| ratio(*w, *f, *c)))
            .fold(1.0_f64, f64::max)
            .min(20.0)
            * 1.1;
        let height = 60 + rows.len() as u32 * 34;
        let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "time or memory relative to airssys-rt (1.0 = same; lower is better)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(260)
            .build_cartesian_2d(0.0..top, 0.0..rows.len() as f64)?;
        chart.configure_mesh().disable_y_mesh().y_labels(0).draw()?;
        // Row labels, centred on each group of bars.
        let label_style = TextStyle::from(("sans-serif", 13).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (ri, (w, f)) in rows.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, ri as f64 + 0.5));
            root.draw_text(
                &format!("{} · {}", w.label(), f.label()),
                &label_style,
                (x - 8, y),
            )?;
        }
        let colors = [
            RGBColor(200, 60, 40),
            BLUE,
            GREEN,
            MAGENTA,
            RGBColor(120, 120, 120),
        ];
        let band = 0.8 / Contender::ALL.len() as f64;
        for (ci, contender) in Contender::ALL.iter().enumerate() {
            let color = colors[ci % colors.len()];
            let bars = rows.iter().enumerate().filter_map(|(ri, (w, f))| {
                let value = ratio(*w, *f, *contender)?.min(top);
                let y0 = ri as f64 + 0.1 + ci as f64 * band;
                Some(Rectangle::new(
                    [(0.0, y0), (value, y0 + band * 0.9)],
                    color.filled(),
                ))
            });
            chart
                .draw_series(bars)?
                .label(contender.name())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        // Crash recovery: the good jobs each pool lost, beside its bar.
        let lost_style =
            TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (ri, (w, f)) in rows.iter().enumerate() {
            if *w != Workload::CrashRecovery {
                continue;
            }
            for (ci, contender) in Contender::ALL.iter().enumerate() {
                let (Some(series), Some(value)) =
                    (self.find(*w, *f, *contender), ratio(*w, *f, *contender))
                else {
                    continue;
                };
                let Some(lost) = series.secondary_median().filter(|l| *l > 0.0) else {
                    continue;
                };
                let y = ri as f64 + 0.1 + (ci as f64 + 0.45) * band;
                let (x, y) = chart.backend_coord(&(value.min(top), y));
                let (x, label) = if value >= top {
                    (x - 150, format!("lost {lost:.0} good jobs →"))
                } else {
                    (x + 4, format!("lost {lost:.0} good jobs"))
                };
                root.draw_text(&label, &lost_style, (x, y))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// Renders a figure compactly: `27.7`, `1,234`, `2.10 µs` style is left to
/// the unit column; this only picks sensible precision.
fn figure(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
