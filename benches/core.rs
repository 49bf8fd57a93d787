//! Criterion micro-benchmarks of the core paths, each beside its raw-tokio
//! floor in the same run:
//!
//! * `tell`: one producer → one actor, per message; floors: tokio unbounded
//!   and bounded mpsc feeding a task.
//! * `ask`: sequential request/reply round trip; floor: a task answering
//!   requests that carry a tokio oneshot.
//! * `spawn_stop`: spawn an actor, stop it, await its exit; floor:
//!   `tokio::spawn` + await.
//!
//! Every measurement is driven from a task on the runtime's workers (not from
//! `block_on` on the main thread) on a 2-worker multi-thread runtime.
//! Run with `cargo bench --bench core`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

mod support;

use airssys_rt::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use support::{on_worker, runtime};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug)]
enum Msg {
    Add(u64),
    Total(ReplyTo<u64>),
}

impl Message for Msg {
    const MESSAGE_TYPE: &'static str = "bench.counter";
}

struct Counter(u64);

impl Actor for Counter {
    type Message = Msg;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        msg: Msg,
        _: &mut ActorContext<Msg>,
    ) -> Result<(), Infallible> {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Total(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
}

const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// Tells `iters` messages to a counter with `mailbox`, then checks its total.
async fn tell_to_counter(mailbox: MailboxConfig, iters: u64) -> Duration {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let counter = system
        .spawn_builder()
        .mailbox(mailbox)
        .spawn(Counter(0))
        .expect("spawn");
    let start = Instant::now();
    for _ in 0..iters {
        counter.tell(Msg::Add(1)).await.expect("tell");
    }
    let total = counter.ask(Msg::Total, ASK_TIMEOUT).await.expect("ask");
    let elapsed = start.elapsed();
    assert_eq!(total, iters);
    system.shutdown(Duration::from_secs(5)).await;
    elapsed
}

fn tell(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("tell");
    group.throughput(Throughput::Elements(1));
    for (name, mailbox) in [
        ("airssys-rt", MailboxConfig::unbounded()),
        (
            "airssys-rt bounded(1024, Block)",
            MailboxConfig::bounded(1024, Backpressure::Block),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                on_worker(&rt, iters, move |iters| tell_to_counter(mailbox, iters))
            })
        });
    }
    group.bench_function("tokio unbounded mpsc", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
                let consumer = tokio::spawn(async move {
                    let mut total = 0;
                    while let Some(n) = rx.recv().await {
                        total += n;
                    }
                    total
                });
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(1).expect("send");
                }
                drop(tx);
                let total = consumer.await.expect("consumer");
                let elapsed = start.elapsed();
                assert_eq!(total, iters);
                elapsed
            })
        })
    });
    group.bench_function("tokio bounded(1024) mpsc", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let (tx, mut rx) = mpsc::channel::<u64>(1024);
                let consumer = tokio::spawn(async move {
                    let mut total = 0;
                    while let Some(n) = rx.recv().await {
                        total += n;
                    }
                    total
                });
                let start = Instant::now();
                for _ in 0..iters {
                    tx.send(1).await.expect("send");
                }
                drop(tx);
                let total = consumer.await.expect("consumer");
                let elapsed = start.elapsed();
                assert_eq!(total, iters);
                elapsed
            })
        })
    });
    group.finish();
}

fn ask(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("ask");
    group.bench_function("airssys-rt", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let system = ActorSystem::new(SystemConfig::default()).expect("system");
                let counter = system.spawn(Counter(7)).expect("spawn");
                let start = Instant::now();
                for _ in 0..iters {
                    let v = counter.ask(Msg::Total, ASK_TIMEOUT).await.expect("ask");
                    assert_eq!(v, 7);
                }
                let elapsed = start.elapsed();
                system.shutdown(Duration::from_secs(5)).await;
                elapsed
            })
        })
    });
    group.bench_function("tokio mpsc + oneshot", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
                let server = tokio::spawn(async move {
                    while let Some(reply) = rx.recv().await {
                        let _ = reply.send(7);
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    let (reply, answer) = oneshot::channel();
                    tx.send(reply).expect("send");
                    assert_eq!(answer.await.expect("answer"), 7);
                }
                let elapsed = start.elapsed();
                drop(tx);
                server.await.expect("server");
                elapsed
            })
        })
    });
    group.finish();
}

fn spawn_stop(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("spawn_stop");
    group.bench_function("airssys-rt", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let system = ActorSystem::new(SystemConfig::default()).expect("system");
                let start = Instant::now();
                for _ in 0..iters {
                    let actor = system.spawn(Counter(0)).expect("spawn");
                    actor.stop();
                    assert_eq!(actor.wait_for_exit().await, ExitReason::Normal);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio::spawn", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, iters, |iters| async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let (tx, rx) = oneshot::channel::<()>();
                    let task = tokio::spawn(async move {
                        let _ = rx.await;
                    });
                    drop(tx);
                    task.await.expect("task");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = tell, ask, spawn_stop
}
criterion_main!(benches);
