//! Criterion benchmarks of the OS layer's per-operation cost, each beside the
//! same work done directly on tokio (no policy, no log, no actor) in the same
//! run:
//!
//! * `file_read`: read a 4 KiB file through a `FileActor` (ask round trip,
//!   policy check, confinement, one activity record); floor:
//!   `tokio::fs::read`.
//! * `file_write`: replace a 4 KiB file; floor: `tokio::fs::write`.
//! * `process_run`: run `/bin/true` to its end through a `ProcessActor`;
//!   floor: `tokio::process::Command::new("/bin/true").status()`.
//!
//! Run with `cargo bench --bench osl`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use airssys_rt::integration::osl::*;
use airssys_rt::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const PATIENCE: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` runs of `op` driven from a task on the runtime.
fn timed<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let started = Instant::now();
            for _ in 0..iters {
                op().await;
            }
            started.elapsed()
        })
        .await
        .expect("bench task")
    })
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("osl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir writable");
    std::fs::canonicalize(&dir).expect("just created")
}

fn osl_benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = scratch();
    let file = dir.join("data.bin");
    std::fs::write(&file, vec![7u8; 4096]).expect("writable");
    let osl = Osl::new(
        SecurityPolicy::deny_all()
            .grant(Grant::read(&dir))
            .grant(Grant::write(&dir))
            .grant(Grant::program("/bin/true")),
        ActivityLog::new().with_sink(NullSink),
    );
    let (files, processes) = rt.block_on(async {
        let system = ActorSystem::new(SystemConfig::default()).expect("system");
        let files = system
            .spawn(osl.file_actor(SecurityContext::new("bench")))
            .expect("spawned");
        let processes = system
            .spawn(osl.process_actor(SecurityContext::new("bench")))
            .expect("spawned");
        (files, processes)
    });

    let mut group = c.benchmark_group("file_read");
    group.bench_function("airssys_rt", |b| {
        b.iter_custom(|iters| {
            let (files, file) = (files.clone(), file.clone());
            timed(&rt, iters, move || {
                let (files, path) = (files.clone(), file.clone());
                async move {
                    let read = files
                        .ask(|reply| FileRequest::Read { path, reply }, PATIENCE)
                        .await;
                    assert_eq!(read.expect("answered").expect("read").len(), 4096);
                }
            })
        });
    });
    group.bench_function("tokio_fs", |b| {
        b.iter_custom(|iters| {
            let file = file.clone();
            timed(&rt, iters, move || {
                let file = file.clone();
                async move {
                    assert_eq!(tokio::fs::read(&file).await.expect("read").len(), 4096);
                }
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("file_write");
    let target = dir.join("out.bin");
    group.bench_function("airssys_rt", |b| {
        b.iter_custom(|iters| {
            let (files, target) = (files.clone(), target.clone());
            timed(&rt, iters, move || {
                let (files, path) = (files.clone(), target.clone());
                async move {
                    files
                        .ask(
                            |reply| FileRequest::Write {
                                path,
                                data: vec![1u8; 4096],
                                reply,
                            },
                            PATIENCE,
                        )
                        .await
                        .expect("answered")
                        .expect("written");
                }
            })
        });
    });
    group.bench_function("tokio_fs", |b| {
        b.iter_custom(|iters| {
            let target = target.clone();
            timed(&rt, iters, move || {
                let target = target.clone();
                async move {
                    tokio::fs::write(&target, vec![1u8; 4096])
                        .await
                        .expect("written");
                }
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("process_run");
    group.sample_size(20);
    group.bench_function("airssys_rt", |b| {
        b.iter_custom(|iters| {
            let processes = processes.clone();
            timed(&rt, iters, move || {
                let processes = processes.clone();
                async move {
                    let spec = ProcessSpec::new("/bin/true");
                    let output = processes
                        .ask(|reply| ProcessRequest::Run { spec, reply }, PATIENCE)
                        .await
                        .expect("answered")
                        .expect("ran");
                    assert!(output.success());
                }
            })
        });
    });
    group.bench_function("tokio_process", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let status = tokio::process::Command::new("/bin/true")
                    .status()
                    .await
                    .expect("ran");
                assert!(status.success());
            })
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Drops every record: the bench measures the operation, not a sink.
struct NullSink;

impl ActivitySink for NullSink {
    fn record(&self, _: &ActivityRecord) {}
}

criterion_group!(benches, osl_benches);
criterion_main!(benches);
