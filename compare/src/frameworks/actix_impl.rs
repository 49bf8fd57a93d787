//! actix 0.13, written as its documentation shows: `Actor` + `Handler<M>`,
//! `do_send` for tells (unbounded), `send` for asks, `ResponseFuture` for a
//! handler that awaits. actix only runs on its own single-threaded `System`,
//! so it appears in the current-thread columns only. Restarts by
//! `actix::Supervisor`, which restarts a `Supervised` actor that stops.
//!
//! actix's own pool, `SyncArbiter::start(4, ..)`, runs sync actors on 4 OS
//! threads of its own beside the `System`'s one, which would give actix
//! parallelism the others do not have on the current-thread runtime; and a
//! sync actor that panics takes its thread with it (no restart: `SyncContext`
//! restarts an actor only on `ctx.stop()`). So the job workloads use 4
//! actors on the `System`'s thread, fed round-robin with `do_send`. actix
//! cannot recover from a panic in a handler either (the actor's task ends,
//! `Supervisor` never sees it, and its mailbox is dropped), so in crash
//! recovery a poison job makes its worker fail the actix way: `ctx.stop()`,
//! and `Supervisor` restarts it in place, mailbox kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::jobs::{Job, Ledger, Tally, Task, WORKERS};
use crate::memory::MemoryProbe;
use crate::workload::{FAN_OUT_ACTORS, Framework, RING_ACTORS, Sample};

/// The actix column.
pub struct Actix;

type Done = Arc<parking_lot::Mutex<Option<oneshot::Sender<u64>>>>;

struct Counter {
    total: u64,
    on_stop: Option<oneshot::Sender<()>>,
    started: Option<Arc<AtomicU64>>,
}

impl Counter {
    fn new(total: u64) -> Self {
        Self {
            total,
            on_stop: None,
            started: None,
        }
    }
}

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Self::Context) {
        if let Some(started) = &self.started {
            started.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(on_stop) = self.on_stop.take() {
            let _ = on_stop.send(());
        }
    }
}

struct Add(u64);
impl Message for Add {
    type Result = ();
}

struct Total;
impl Message for Total {
    type Result = u64;
}

impl Handler<Add> for Counter {
    type Result = ();
    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) {
        self.total += n;
    }
}

impl Handler<Total> for Counter {
    type Result = u64;
    fn handle(&mut self, _: Total, _: &mut Context<Self>) -> u64 {
        self.total
    }
}

struct Ponger;
impl Actor for Ponger {
    type Context = Context<Self>;
}

struct Pinger {
    ponger: Option<Addr<Ponger>>,
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<u64>>,
}
impl Actor for Pinger {
    type Context = Context<Self>;
}

struct Ping(Addr<Pinger>);
impl Message for Ping {
    type Result = ();
}
struct Pong;
impl Message for Pong {
    type Result = ();
}
struct Start(Addr<Ponger>);
impl Message for Start {
    type Result = ();
}

impl Handler<Ping> for Ponger {
    type Result = ();
    fn handle(&mut self, Ping(from): Ping, _: &mut Context<Self>) {
        from.do_send(Pong);
    }
}

impl Handler<Start> for Pinger {
    type Result = ();
    fn handle(&mut self, Start(ponger): Start, ctx: &mut Context<Self>) {
        ponger.do_send(Ping(ctx.address()));
        self.ponger = Some(ponger);
    }
}

impl Handler<Pong> for Pinger {
    type Result = ();
    fn handle(&mut self, _: Pong, ctx: &mut Context<Self>) {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.seen);
            }
        } else if let Some(ponger) = &self.ponger {
            ponger.do_send(Ping(ctx.address()));
        }
    }
}

struct RingNode {
    next: Option<Addr<RingNode>>,
    done: Done,
}
impl Actor for RingNode {
    type Context = Context<Self>;
}

struct Link(Addr<RingNode>);
impl Message for Link {
    type Result = ();
}
struct Token {
    left: u64,
    travelled: u64,
}
impl Message for Token {
    type Result = ();
}

impl Handler<Link> for RingNode {
    type Result = ();
    fn handle(&mut self, Link(next): Link, _: &mut Context<Self>) {
        self.next = Some(next);
    }
}

impl Handler<Token> for RingNode {
    type Result = ();
    fn handle(&mut self, Token { left, travelled }: Token, _: &mut Context<Self>) {
        if left == 0 {
            if let Some(done) = self.done.lock().take() {
                let _ = done.send(travelled);
            }
        } else if let Some(next) = &self.next {
            next.do_send(Token {
                left: left - 1,
                travelled: travelled + 1,
            });
        }
    }
}

struct Producer;
impl Actor for Producer {
    type Context = Context<Self>;
}

struct Go(u64, Addr<Counter>);
impl Message for Go {
    type Result = u64;
}

impl Handler<Go> for Producer {
    type Result = ResponseFuture<u64>;
    fn handle(&mut self, Go(n, counter): Go, _: &mut Context<Self>) -> Self::Result {
        for _ in 0..n {
            counter.do_send(Add(1));
        }
        Box::pin(async move { counter.send(Total).await.unwrap_or(0) })
    }
}

struct Forked {
    finished: Arc<AtomicU64>,
    target: u64,
    done: Done,
}
impl Actor for Forked {
    type Context = Context<Self>;
}

struct Work;
impl Message for Work {
    type Result = ();
}

impl Handler<Work> for Forked {
    type Result = ();
    fn handle(&mut self, _: Work, _: &mut Context<Self>) {
        if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.target
            && let Some(done) = self.done.lock().take()
        {
            let _ = done.send(self.target);
        }
    }
}

/// A supervised worker: announces each (re)start from `started`, stops (how
/// actix models a failure; a panic would take the whole `System` down) on
/// `Crash`, answers `Probe`. actix keeps the same value and address across
/// restarts; `restarting` would reset its state.
struct Fragile {
    announce: mpsc::UnboundedSender<Addr<Fragile>>,
    /// Fires when it stops for good: no address left, so no restart.
    gone: Option<oneshot::Sender<()>>,
}

impl Actor for Fragile {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        let _ = self.announce.send(ctx.address());
    }
    fn stopped(&mut self, ctx: &mut Self::Context) {
        if !ctx.connected()
            && let Some(gone) = self.gone.take()
        {
            let _ = gone.send(());
        }
    }
}

impl Supervised for Fragile {}

struct Crash;
impl Message for Crash {
    type Result = ();
}

struct Probe;
impl Message for Probe {
    type Result = ();
}

impl Handler<Crash> for Fragile {
    type Result = ();
    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Probe> for Fragile {
    type Result = ();
    fn handle(&mut self, _: Probe, _: &mut Context<Self>) {}
}

impl Message for Task {
    type Result = ();
}

impl Message for Job {
    type Result = ();
}

/// A pool-throughput worker: does each task's work and counts it.
struct Cruncher(Arc<Tally>);

impl Actor for Cruncher {
    type Context = Context<Self>;
}

impl Handler<Task> for Cruncher {
    type Result = ();
    fn handle(&mut self, task: Task, _: &mut Context<Self>) {
        task.run();
        self.0.handled();
    }
}

/// A crash-recovery worker: handles good jobs, stops (to be restarted by its
/// `Supervisor`) on poison ones.
struct Breakable;

impl Actor for Breakable {
    type Context = Context<Self>;
}

impl Supervised for Breakable {}

impl Handler<Job> for Breakable {
    type Result = ();
    fn handle(&mut self, job: Job, ctx: &mut Context<Self>) {
        if job.is_poison() {
            job.fail();
            ctx.stop();
        } else {
            job.done();
        }
    }
}

impl Framework for Actix {
    const NAME: &'static str = "actix";

    async fn tell(n: u64) -> Sample {
        let counter = Counter::new(0).start();
        let start = Instant::now();
        for _ in 0..n {
            counter.do_send(Add(1));
        }
        let total = counter.send(Total).await.expect("send");
        Sample::per_op(start.elapsed(), total)
    }

    async fn fan_out(n: u64) -> Sample {
        let actors: Vec<_> = (0..FAN_OUT_ACTORS)
            .map(|_| Counter::new(0).start())
            .collect();
        let start = Instant::now();
        for i in 0..n {
            actors[(i % FAN_OUT_ACTORS) as usize].do_send(Add(1));
        }
        let mut total = 0;
        for actor in &actors {
            total += actor.send(Total).await.expect("send");
        }
        Sample::per_op(start.elapsed(), total)
    }

    async fn ask(n: u64) -> Sample {
        let counter = Counter::new(1).start();
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            let answer = counter.send(Total).await.expect("send");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, 1, "wrong answer");
        }
        Sample::latencies(latencies)
    }

    async fn spawn_stop(n: u64) -> Sample {
        let start = Instant::now();
        let mut answered = 0;
        for _ in 0..n {
            let (on_stop, stopped) = oneshot::channel();
            let mut counter = Counter::new(1);
            counter.on_stop = Some(on_stop);
            let addr = counter.start();
            answered += addr.send(Total).await.expect("send");
            // An actix actor stops once no address to it is left.
            drop(addr);
            stopped.await.expect("stopped");
        }
        Sample::per_op(start.elapsed(), answered)
    }

    async fn idle_memory(n: u64) -> Sample {
        let started = Arc::new(AtomicU64::new(0));
        let probe = MemoryProbe::start();
        let actors: Vec<_> = (0..n)
            .map(|_| {
                let mut counter = Counter::new(0);
                counter.started = Some(started.clone());
                counter.start()
            })
            .collect();
        while started.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
        let (heap, rss) = probe.per_actor(n);
        let alive = actors.iter().filter(|a| a.connected()).count() as u64;
        drop(actors);
        Sample {
            processed: alive,
            value: heap,
            secondary: Some(rss),
        }
    }

    async fn ping_pong(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let ponger = Ponger.start();
        let pinger = Pinger {
            ponger: None,
            seen: 0,
            target: n,
            done: Some(done),
        }
        .start();
        let start = Instant::now();
        pinger.do_send(Start(ponger));
        let seen = finished.await.expect("ping-pong finished");
        Sample::per_op(start.elapsed(), seen)
    }

    async fn thread_ring(hops: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let nodes: Vec<_> = (0..RING_ACTORS)
            .map(|_| {
                RingNode {
                    next: None,
                    done: done.clone(),
                }
                .start()
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            node.do_send(Link(nodes[(i + 1) % nodes.len()].clone()));
        }
        let start = Instant::now();
        nodes[0].do_send(Token {
            left: hops,
            travelled: 0,
        });
        let travelled = finished.await.expect("ring finished");
        Sample::per_op(start.elapsed(), travelled)
    }

    async fn counting(n: u64) -> Sample {
        let counter = Counter::new(0).start();
        let producer = Producer.start();
        let start = Instant::now();
        let total = producer.send(Go(n, counter)).await.expect("send");
        Sample::per_op(start.elapsed(), total)
    }

    async fn fork_join(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let counter = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let worker = Forked {
                finished: counter.clone(),
                target: n,
                done: done.clone(),
            }
            .start();
            worker.do_send(Work);
            workers.push(worker);
        }
        let joined = finished.await.expect("all joined");
        Sample::per_op(start.elapsed(), joined)
    }

    async fn restart(n: u64) -> Sample {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let (gone, stopped) = oneshot::channel();
        let supervised = Supervisor::start(move |_| Fragile {
            announce,
            gone: Some(gone),
        });
        let mut current = announced.recv().await.expect("first instance");
        drop(supervised);
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            current.do_send(Crash);
            current = announced.recv().await.expect("replacement");
            current.send(Probe).await.expect("probe");
            latencies.push(start.elapsed().as_nanos() as u64);
        }
        // With no address left the supervised actor stops for good.
        drop((current, announced));
        stopped.await.expect("stopped");
        Sample::latencies(latencies)
    }

    async fn pool_throughput(n: u64) -> Sample {
        let tally = Tally::new(n);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| Cruncher(tally.clone()).start())
            .collect();
        let start = Instant::now();
        for i in 0..n {
            workers[i as usize % WORKERS].do_send(Task(i));
        }
        let handled = tally.wait().await;
        Sample::per_op(start.elapsed(), handled)
    }

    /// A job sent to an actor that is gone (none should be) is dropped by
    /// `do_send`: lost.
    async fn crash_recovery(n: u64) -> Sample {
        let ledger = Ledger::new(n);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| Supervisor::start(|_| Breakable))
            .collect();
        let start = Instant::now();
        for i in 0..n {
            workers[i as usize % WORKERS].do_send(ledger.job(i));
        }
        let (outcome, settled) = ledger.wait().await;
        Sample::crash_recovery(settled - start, outcome)
    }
}
