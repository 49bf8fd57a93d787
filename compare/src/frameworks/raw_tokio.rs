//! The floor: plain tokio tasks and channels doing the same work. No actor
//! library can beat it; it shows what the abstractions cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::jobs::{Job, Ledger, Task, WORKERS};
use crate::memory::MemoryProbe;
use crate::workload::{FAN_OUT_ACTORS, Framework, RING_ACTORS, Sample};

/// The raw-tokio column.
pub struct RawTokio;

/// A counting task fed by an unbounded channel; returns its total when the
/// channel closes.
fn counter() -> (mpsc::UnboundedSender<u64>, tokio::task::JoinHandle<u64>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let task = tokio::spawn(async move {
        let mut total = 0;
        while let Some(n) = rx.recv().await {
            total += n;
        }
        total
    });
    (tx, task)
}

/// A task answering each request with 1.
fn server() -> (
    mpsc::UnboundedSender<oneshot::Sender<u64>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
    let task = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let _ = reply.send(1);
        }
    });
    (tx, task)
}

enum Life {
    Crash,
    Ping(oneshot::Sender<()>),
}

/// How a worker task ended.
enum Exit {
    Crashed,
    Closed,
}

/// A supervising task: spawns a worker task with a fresh channel, announces
/// its sender, awaits its end and spawns a replacement unless it ended
/// because its channel closed.
fn supervised(
    announce: mpsc::UnboundedSender<mpsc::UnboundedSender<Life>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (tx, mut rx) = mpsc::unbounded_channel::<Life>();
            let worker = tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Life::Crash => return Exit::Crashed,
                        Life::Ping(reply) => {
                            let _ = reply.send(());
                        }
                    }
                }
                Exit::Closed
            });
            if announce.send(tx).is_err() {
                // Nobody left to use a replacement; its sender is gone, so
                // the worker ends by itself.
                let _ = worker.await;
                return;
            }
            match worker.await {
                Ok(Exit::Closed) => return,
                Ok(Exit::Crashed) | Err(_) => continue,
            }
        }
    })
}

/// [`WORKERS`] tasks sharing one unbounded channel (its receiver behind a
/// tokio `Mutex`), each handling what it takes with `handle`; each returns
/// how many it handled when the channel closes.
fn shared_queue<T: Send + 'static>(
    handle: fn(T),
) -> (mpsc::UnboundedSender<T>, Vec<tokio::task::JoinHandle<u64>>) {
    let (tx, rx) = mpsc::unbounded_channel::<T>();
    let rx = Arc::new(Mutex::new(rx));
    let workers = (0..WORKERS)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(job) = next else {
                        return handled;
                    };
                    handle(job);
                    handled += 1;
                }
            })
        })
        .collect();
    (tx, workers)
}

impl Framework for RawTokio {
    const NAME: &'static str = "raw tokio";

    async fn tell(n: u64) -> Sample {
        let (tx, task) = counter();
        let start = Instant::now();
        for _ in 0..n {
            tx.send(1).expect("send");
        }
        drop(tx);
        let total = task.await.expect("counter");
        Sample::per_op(start.elapsed(), total)
    }

    async fn fan_out(n: u64) -> Sample {
        let (senders, tasks): (Vec<_>, Vec<_>) = (0..FAN_OUT_ACTORS).map(|_| counter()).unzip();
        let start = Instant::now();
        for i in 0..n {
            senders[(i % FAN_OUT_ACTORS) as usize]
                .send(1)
                .expect("send");
        }
        drop(senders);
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("counter");
        }
        Sample::per_op(start.elapsed(), total)
    }

    async fn ask(n: u64) -> Sample {
        let (tx, task) = server();
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            let (reply, answer) = oneshot::channel();
            tx.send(reply).expect("send");
            let answer = answer.await.expect("answer");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, 1, "wrong answer");
        }
        drop(tx);
        task.await.expect("server");
        Sample::latencies(latencies)
    }

    async fn spawn_stop(n: u64) -> Sample {
        let start = Instant::now();
        let mut answered = 0;
        for _ in 0..n {
            let (tx, task) = server();
            let (reply, answer) = oneshot::channel();
            tx.send(reply).expect("send");
            answered += answer.await.expect("answer");
            drop(tx);
            task.await.expect("server");
        }
        Sample::per_op(start.elapsed(), answered)
    }

    async fn idle_memory(n: u64) -> Sample {
        let probe = MemoryProbe::start();
        let mut senders = Vec::with_capacity(n as usize);
        let mut started = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (tx, mut rx) = mpsc::channel::<u64>(32);
            let (up, is_up) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = up.send(());
                while rx.recv().await.is_some() {}
            });
            senders.push(tx);
            started.push(is_up);
        }
        let mut alive = 0;
        for is_up in started {
            is_up.await.expect("task started");
            alive += 1;
        }
        let (heap, rss) = probe.per_actor(n);
        drop(senders);
        Sample {
            processed: alive,
            value: heap,
            secondary: Some(rss),
        }
    }

    async fn ping_pong(n: u64) -> Sample {
        let (to_pong, mut pongs_in) = mpsc::unbounded_channel::<()>();
        let (to_ping, mut pings_in) = mpsc::unbounded_channel::<()>();
        let ponger = tokio::spawn(async move {
            while pongs_in.recv().await.is_some() {
                if to_ping.send(()).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let pinger = tokio::spawn(async move {
            let mut seen = 0;
            to_pong.send(()).expect("ping");
            while pings_in.recv().await.is_some() {
                seen += 1;
                if seen == n {
                    break;
                }
                to_pong.send(()).expect("ping");
            }
            seen
        });
        let seen = pinger.await.expect("pinger");
        let sample = Sample::per_op(start.elapsed(), seen);
        ponger.await.expect("ponger");
        sample
    }

    async fn thread_ring(hops: u64) -> Sample {
        let (done, finished) = oneshot::channel::<u64>();
        let done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..RING_ACTORS)
            .map(|_| mpsc::unbounded_channel::<(u64, u64)>())
            .unzip();
        for (i, mut rx) in receivers.into_iter().enumerate() {
            let next = senders[(i + 1) % senders.len()].clone();
            let done = done.clone();
            tokio::spawn(async move {
                while let Some((left, travelled)) = rx.recv().await {
                    if left == 0 {
                        if let Some(done) = done.lock().take() {
                            let _ = done.send(travelled);
                        }
                        break;
                    }
                    if next.send((left - 1, travelled + 1)).is_err() {
                        break;
                    }
                }
            });
        }
        let start = Instant::now();
        senders[0].send((hops, 0)).expect("token");
        let travelled = finished.await.expect("ring finished");
        let sample = Sample::per_op(start.elapsed(), travelled);
        drop(senders);
        sample
    }

    async fn counting(n: u64) -> Sample {
        let (counter_tx, mut counter_rx) =
            mpsc::unbounded_channel::<Result<u64, oneshot::Sender<u64>>>();
        tokio::spawn(async move {
            let mut total = 0;
            while let Some(msg) = counter_rx.recv().await {
                match msg {
                    Ok(n) => total += n,
                    Err(reply) => {
                        let _ = reply.send(total);
                    }
                }
            }
        });
        let start = Instant::now();
        let producer = tokio::spawn(async move {
            for _ in 0..n {
                counter_tx.send(Ok(1)).expect("send");
            }
            let (reply, total) = oneshot::channel();
            counter_tx.send(Err(reply)).expect("send");
            total.await.expect("total")
        });
        let total = producer.await.expect("producer");
        Sample::per_op(start.elapsed(), total)
    }

    async fn fork_join(n: u64) -> Sample {
        let (done, finished) = oneshot::channel::<u64>();
        let done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let counter = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        for _ in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
            let counter = counter.clone();
            let done = done.clone();
            tokio::spawn(async move {
                if rx.recv().await.is_some()
                    && counter.fetch_add(1, Ordering::AcqRel) + 1 == n
                    && let Some(done) = done.lock().take()
                {
                    let _ = done.send(n);
                }
            });
            tx.send(1).expect("send");
        }
        let joined = finished.await.expect("all joined");
        Sample::per_op(start.elapsed(), joined)
    }

    async fn restart(n: u64) -> Sample {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let supervisor = supervised(announce);
        let mut current = announced.recv().await.expect("first instance");
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            current.send(Life::Crash).expect("crash");
            current = announced.recv().await.expect("replacement");
            let (reply, answer) = oneshot::channel();
            current.send(Life::Ping(reply)).expect("ping");
            answer.await.expect("answer");
            latencies.push(start.elapsed().as_nanos() as u64);
        }
        // The worker ends when its channel closes; the supervisor with it.
        drop((current, announced));
        supervisor.await.expect("supervisor");
        Sample::latencies(latencies)
    }

    async fn pool_throughput(n: u64) -> Sample {
        let (tx, workers) = shared_queue(Task::run);
        let start = Instant::now();
        for i in 0..n {
            tx.send(Task(i)).expect("send");
        }
        drop(tx);
        let mut handled = 0;
        for worker in workers {
            handled += worker.await.expect("worker");
        }
        Sample::per_op(start.elapsed(), handled)
    }

    /// Each worker task catches a job's panic (`catch_unwind` around the
    /// synchronous handling) and takes the next job.
    async fn crash_recovery(n: u64) -> Sample {
        let ledger = Ledger::new(n);
        let (tx, workers) = shared_queue(|job: Job| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if job.is_poison() {
                    job.crash();
                }
                job.done();
            }));
        });
        let start = Instant::now();
        for i in 0..n {
            tx.send(ledger.job(i)).expect("send");
        }
        drop(tx);
        for worker in workers {
            worker.await.expect("worker");
        }
        let (outcome, settled) = ledger.wait().await;
        Sample::crash_recovery(settled - start, outcome)
    }
}
