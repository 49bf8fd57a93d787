//! kameo 0.22, written as its documentation shows: `#[derive(Actor)]`, one
//! `Message<T>` impl per message, `tell`/`ask` requests, and its default
//! bounded(64) mailbox — measured here as its fastest (≈250 ns per tell
//! against ≈360 ns unbounded). Restarts by its supervision module: a
//! supervisor actor with a `supervise`d child (permanent, one-for-one).
//! The job workloads use kameo's pool, `kameo_actors::pool::ActorPool` (the
//! companion crate that holds it for kameo 0.22), with `Dispatch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kameo::error::Infallible;
use kameo::prelude::*;
use kameo::supervision::{RestartPolicy, SupervisionStrategy};
use kameo_actors::pool::{ActorPool, Dispatch};
use tokio::sync::{mpsc, oneshot};

use crate::jobs::{Job, Ledger, Tally, Task, WORKERS};
use crate::memory::MemoryProbe;
use crate::workload::{FAN_OUT_ACTORS, Framework, RING_ACTORS, Sample};

/// The kameo column.
pub struct Kameo;

fn spawn<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn(actor)
}

async fn stop_all<A: Actor>(actors: &[ActorRef<A>]) {
    for actor in actors {
        actor.stop_gracefully().await.expect("stop");
    }
    for actor in actors {
        actor.wait_for_shutdown().await;
    }
}

#[derive(Actor)]
struct Counter(u64);

struct Add(u64);
struct Total;

impl Message<Add> for Counter {
    type Reply = ();
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, ()>) {
        self.0 += n;
    }
}

impl Message<Total> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Total, _: &mut Context<Self, u64>) -> u64 {
        self.0
    }
}

#[derive(Actor)]
struct Ponger;

struct Ping(ActorRef<Pinger>);

impl Message<Ping> for Ponger {
    type Reply = ();
    async fn handle(&mut self, Ping(from): Ping, _: &mut Context<Self, ()>) {
        let _ = from.tell(Pong).await;
    }
}

#[derive(Actor)]
struct Pinger {
    ponger: Option<ActorRef<Ponger>>,
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<u64>>,
}

struct Start(ActorRef<Ponger>);
struct Pong;

impl Message<Start> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Start(ponger): Start, ctx: &mut Context<Self, ()>) {
        let _ = ponger.tell(Ping(ctx.actor_ref().clone())).await;
        self.ponger = Some(ponger);
    }
}

impl Message<Pong> for Pinger {
    type Reply = ();
    async fn handle(&mut self, _: Pong, ctx: &mut Context<Self, ()>) {
        self.seen += 1;
        if self.seen == self.target {
            if let Some(done) = self.done.take() {
                let _ = done.send(self.seen);
            }
        } else if let Some(ponger) = &self.ponger {
            let _ = ponger.tell(Ping(ctx.actor_ref().clone())).await;
        }
    }
}

type Done = Arc<parking_lot::Mutex<Option<oneshot::Sender<u64>>>>;

#[derive(Actor)]
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    done: Done,
}

struct Link(ActorRef<RingNode>);
struct Token {
    left: u64,
    travelled: u64,
}

impl Message<Link> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Link(next): Link, _: &mut Context<Self, ()>) {
        self.next = Some(next);
    }
}

impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token { left, travelled }: Token, _: &mut Context<Self, ()>) {
        if left == 0 {
            if let Some(done) = self.done.lock().take() {
                let _ = done.send(travelled);
            }
        } else if let Some(next) = &self.next {
            let _ = next
                .tell(Token {
                    left: left - 1,
                    travelled: travelled + 1,
                })
                .await;
        }
    }
}

#[derive(Actor)]
struct Producer;

struct Go(u64, ActorRef<Counter>);

impl Message<Go> for Producer {
    type Reply = u64;
    async fn handle(&mut self, Go(n, counter): Go, _: &mut Context<Self, u64>) -> u64 {
        for _ in 0..n {
            let _ = counter.tell(Add(1)).await;
        }
        counter.ask(Total).await.unwrap_or(0)
    }
}

#[derive(Actor)]
struct Forked {
    finished: Arc<AtomicU64>,
    target: u64,
    done: Done,
}

impl Message<u64> for Forked {
    type Reply = ();
    async fn handle(&mut self, _: u64, _: &mut Context<Self, ()>) {
        if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.target
            && let Some(done) = self.done.lock().take()
        {
            let _ = done.send(self.target);
        }
    }
}

type Announce = mpsc::UnboundedSender<ActorRef<Fragile>>;

/// A supervised worker: announces each new instance from `on_start`, fails
/// (an error reply to a tell, which kameo treats as a panic) on `Crash`,
/// answers `Probe`. A restart builds a new instance behind the same
/// `ActorRef` and mailbox.
struct Fragile;

impl Actor for Fragile {
    type Args = Announce;
    type Error = Infallible;
    async fn on_start(announce: Announce, actor_ref: ActorRef<Self>) -> Result<Self, Infallible> {
        let _ = announce.send(actor_ref);
        Ok(Fragile)
    }
}

struct Crash;
struct Probe;

impl Message<Crash> for Fragile {
    type Reply = Result<(), &'static str>;
    async fn handle(&mut self, _: Crash, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        Err("told to crash")
    }
}

impl Message<Probe> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Probe, _: &mut Context<Self, ()>) {}
}

/// Supervises one `Fragile`: restarted whatever the failure, without limit.
struct Guardian;

impl Actor for Guardian {
    type Args = Announce;
    type Error = Infallible;
    fn supervision_strategy() -> SupervisionStrategy {
        SupervisionStrategy::OneForOne
    }
    async fn on_start(announce: Announce, actor_ref: ActorRef<Self>) -> Result<Self, Infallible> {
        Fragile::supervise(&actor_ref, announce)
            .restart_policy(RestartPolicy::Permanent)
            .restart_limit(u32::MAX, Duration::from_secs(1))
            .spawn()
            .await;
        Ok(Guardian)
    }
}

/// A pool-throughput worker: does each task's work and counts it.
#[derive(Actor)]
struct Cruncher(Arc<Tally>);

impl Message<Task> for Cruncher {
    type Reply = ();
    async fn handle(&mut self, task: Task, _: &mut Context<Self, ()>) {
        task.run();
        self.0.handled();
    }
}

/// A crash-recovery worker: handles good jobs, panics on poison ones.
#[derive(Actor)]
struct Breakable;

impl Message<Job> for Breakable {
    type Reply = ();
    async fn handle(&mut self, job: Job, _: &mut Context<Self, ()>) {
        if job.is_poison() {
            job.crash();
        }
        job.done();
    }
}

impl Framework for Kameo {
    const NAME: &'static str = "kameo";

    async fn tell(n: u64) -> Sample {
        let counter = spawn(Counter(0));
        let start = Instant::now();
        for _ in 0..n {
            counter.tell(Add(1)).await.expect("tell");
        }
        let total = counter.ask(Total).await.expect("ask");
        let sample = Sample::per_op(start.elapsed(), total);
        stop_all(&[counter]).await;
        sample
    }

    async fn fan_out(n: u64) -> Sample {
        let actors: Vec<_> = (0..FAN_OUT_ACTORS).map(|_| spawn(Counter(0))).collect();
        let start = Instant::now();
        for i in 0..n {
            actors[(i % FAN_OUT_ACTORS) as usize]
                .tell(Add(1))
                .await
                .expect("tell");
        }
        let mut total = 0;
        for actor in &actors {
            total += actor.ask(Total).await.expect("ask");
        }
        let sample = Sample::per_op(start.elapsed(), total);
        stop_all(&actors).await;
        sample
    }

    async fn ask(n: u64) -> Sample {
        let counter = spawn(Counter(1));
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            let answer = counter.ask(Total).await.expect("ask");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, 1, "wrong answer");
        }
        stop_all(&[counter]).await;
        Sample::latencies(latencies)
    }

    async fn spawn_stop(n: u64) -> Sample {
        let start = Instant::now();
        let mut answered = 0;
        for _ in 0..n {
            let actor = spawn(Counter(1));
            answered += actor.ask(Total).await.expect("ask");
            stop_all(&[actor]).await;
        }
        Sample::per_op(start.elapsed(), answered)
    }

    async fn idle_memory(n: u64) -> Sample {
        let probe = MemoryProbe::start();
        let actors: Vec<_> = (0..n).map(|_| spawn(Counter(0))).collect();
        for actor in &actors {
            actor.wait_for_startup().await;
        }
        let (heap, rss) = probe.per_actor(n);
        let alive = actors.iter().filter(|a| a.is_alive()).count() as u64;
        stop_all(&actors).await;
        Sample {
            processed: alive,
            value: heap,
            secondary: Some(rss),
        }
    }

    async fn ping_pong(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let ponger = spawn(Ponger);
        let pinger = spawn(Pinger {
            ponger: None,
            seen: 0,
            target: n,
            done: Some(done),
        });
        let start = Instant::now();
        pinger.tell(Start(ponger.clone())).await.expect("tell");
        let seen = finished.await.expect("ping-pong finished");
        let sample = Sample::per_op(start.elapsed(), seen);
        stop_all(&[pinger]).await;
        stop_all(&[ponger]).await;
        sample
    }

    async fn thread_ring(hops: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let nodes: Vec<_> = (0..RING_ACTORS)
            .map(|_| {
                spawn(RingNode {
                    next: None,
                    done: done.clone(),
                })
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            node.tell(Link(nodes[(i + 1) % nodes.len()].clone()))
                .await
                .expect("link");
        }
        let start = Instant::now();
        nodes[0]
            .tell(Token {
                left: hops,
                travelled: 0,
            })
            .await
            .expect("token");
        let travelled = finished.await.expect("ring finished");
        let sample = Sample::per_op(start.elapsed(), travelled);
        stop_all(&nodes).await;
        sample
    }

    async fn counting(n: u64) -> Sample {
        let counter = spawn(Counter(0));
        let producer = spawn(Producer);
        let start = Instant::now();
        let total = producer.ask(Go(n, counter.clone())).await.expect("ask");
        let sample = Sample::per_op(start.elapsed(), total);
        stop_all(&[producer]).await;
        stop_all(&[counter]).await;
        sample
    }

    async fn fork_join(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let counter = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let worker = spawn(Forked {
                finished: counter.clone(),
                target: n,
                done: done.clone(),
            });
            worker.tell(1u64).await.expect("tell");
            workers.push(worker);
        }
        let joined = finished.await.expect("all joined");
        let sample = Sample::per_op(start.elapsed(), joined);
        stop_all(&workers).await;
        sample
    }

    async fn restart(n: u64) -> Sample {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let guardian = Guardian::spawn(announce);
        let mut current = announced.recv().await.expect("first instance");
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            current.tell(Crash).await.expect("crash");
            current = announced.recv().await.expect("replacement");
            current.ask(Probe).await.expect("probe");
            latencies.push(start.elapsed().as_nanos() as u64);
        }
        // A supervisor stops its children before it goes.
        stop_all(&[guardian]).await;
        Sample::latencies(latencies)
    }

    /// `ActorPool` forwards each `Dispatch` to the member with the fewest
    /// jobs in flight; each member is a proxy actor that asks the worker.
    async fn pool_throughput(n: u64) -> Sample {
        let tally = Tally::new(n);
        let counts = tally.clone();
        let pool = ActorPool::spawn(ActorPool::new(WORKERS, move || {
            Cruncher::spawn(Cruncher(counts.clone()))
        }));
        let start = Instant::now();
        for i in 0..n {
            pool.tell(Dispatch(Task(i))).await.expect("dispatch");
        }
        let handled = tally.wait().await;
        let sample = Sample::per_op(start.elapsed(), handled);
        // The members go when the pool (their last reference) is gone.
        stop_all(&[pool]).await;
        sample
    }

    /// A worker that panics stops; its proxy's ask fails, which stops the
    /// proxy too (an error reply to a tell), and the pool replaces it (a
    /// linked member died) with a new proxy and worker from the factory.
    /// The jobs queued in the dead proxy's mailbox are dropped with it: lost.
    /// Until the pool has handled that member's death, `Dispatch` keeps
    /// picking it (its load is now zero) for all of its retries, and the
    /// error reply stops the pool itself: every later `Dispatch` is refused,
    /// comes back in the error and is dropped here — lost, like the one the
    /// pool's stop reason keeps (it never settles: counted lost once nothing
    /// has moved for [`STALL`](crate::jobs::STALL)).
    async fn crash_recovery(n: u64) -> Sample {
        let ledger = Ledger::new(n);
        let pool = ActorPool::spawn(ActorPool::new(WORKERS, || Breakable::spawn(Breakable)));
        let start = Instant::now();
        for i in 0..n {
            let _ = pool.tell(Dispatch(ledger.job(i))).await;
        }
        let (outcome, settled) = ledger.wait().await;
        let sample = Sample::crash_recovery(settled - start, outcome);
        // The pool may have stopped itself (see the README).
        let _ = pool.stop_gracefully().await;
        pool.wait_for_shutdown().await;
        sample
    }
}
