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

mod support;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use airssys_rt::integration::osl::*;
use airssys_rt::prelude::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use support::{on_worker, runtime};
use tokio::runtime::Runtime;

const PATIENCE: Duration = Duration::from_secs(30);

/// Benchmarks `op`, each iteration one call awaited on a runtime worker.
fn bench<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &Runtime, op: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let op = op.clone();
            on_worker(rt, iters, move |iters| async move {
                let started = Instant::now();
                for _ in 0..iters {
                    op().await;
                }
                started.elapsed()
            })
        });
    });
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
    let target = dir.join("out.bin");
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
        let context = SecurityContext::new("bench");
        let files = system
            .spawn(osl.file_actor(context.clone()))
            .expect("spawned");
        let processes = system.spawn(osl.process_actor(context)).expect("spawned");
        (files, processes)
    });

    let mut group = c.benchmark_group("file_read");
    let (actor, path) = (files.clone(), file.clone());
    bench(&mut group, "airssys_rt", &rt, move || {
        let (actor, path) = (actor.clone(), path.clone());
        async move {
            let read = actor
                .ask(|reply| FileRequest::Read { path, reply }, PATIENCE)
                .await;
            assert_eq!(read.expect("answered").expect("read").len(), 4096);
        }
    });
    bench(&mut group, "tokio_fs", &rt, move || {
        let path = file.clone();
        async move {
            assert_eq!(tokio::fs::read(&path).await.expect("read").len(), 4096);
        }
    });
    group.finish();

    let mut group = c.benchmark_group("file_write");
    let path = target.clone();
    bench(&mut group, "airssys_rt", &rt, move || {
        let (actor, path) = (files.clone(), path.clone());
        async move {
            let data = vec![1u8; 4096];
            actor
                .ask(|reply| FileRequest::Write { path, data, reply }, PATIENCE)
                .await
                .expect("answered")
                .expect("written");
        }
    });
    bench(&mut group, "tokio_fs", &rt, move || {
        let path = target.clone();
        async move {
            tokio::fs::write(&path, vec![1u8; 4096])
                .await
                .expect("written");
        }
    });
    group.finish();

    let mut group = c.benchmark_group("process_run");
    group.sample_size(20);
    bench(&mut group, "airssys_rt", &rt, move || {
        let actor = processes.clone();
        async move {
            let spec = ProcessSpec::new("/bin/true");
            let output = actor
                .ask(|reply| ProcessRequest::Run { spec, reply }, PATIENCE)
                .await
                .expect("answered")
                .expect("ran");
            assert!(output.success());
        }
    });
    bench(&mut group, "tokio_process", &rt, || async {
        let status = tokio::process::Command::new("/bin/true")
            .status()
            .await
            .expect("ran");
        assert!(status.success());
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
