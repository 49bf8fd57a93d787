//! airssys-rt, written as its README recommends: default (unbounded FIFO)
//! mailboxes, `tell` and `ask`; restarts by a one-for-one `SupervisorSpec`;
//! the job workloads through a work-sharing `ActorPool` (`start_pool` with
//! `PoolStrategy::WorkSharing`: the members take jobs from one shared queue,
//! and the pool's supervisor restarts a member that panicked).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airssys_rt::actor::ActorState;
use airssys_rt::address::{ActorAddress, PoolSpec, PoolStrategy};
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
use airssys_rt::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::internal::POOL_MEMBERS;
use crate::jobs::{Job, Ledger, Tally, Task, WORKERS};
use crate::memory::MemoryProbe;
use crate::workload::{FAN_OUT_ACTORS, Framework, RING_ACTORS, Sample};

const PATIENCE: Duration = Duration::from_secs(60);

/// The airssys-rt column.
pub struct Airssys;

#[derive(Debug)]
enum Count {
    Add(u64),
    Total(ReplyTo<u64>),
}

impl Message for Count {
    const MESSAGE_TYPE: &'static str = "compare.count";
}

struct Counter(u64);

impl Actor for Counter {
    type Message = Count;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Count,
        _: &mut ActorContext<Count>,
    ) -> Result<(), Infallible> {
        match msg {
            Count::Add(n) => self.0 += n,
            Count::Total(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Ball {
    Start(ActorRef<Ball>),
    Ping(ActorRef<Ball>),
    Pong,
}

impl Message for Ball {
    const MESSAGE_TYPE: &'static str = "compare.ball";
}

/// Bounces `Pong` back to whoever pinged.
struct Ponger;

impl Actor for Ponger {
    type Message = Ball;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Ball,
        _: &mut ActorContext<Ball>,
    ) -> Result<(), Infallible> {
        if let Ball::Ping(from) = msg {
            let _ = from.tell(Ball::Pong).await;
        }
        Ok(())
    }
}

/// Pings until it has seen `target` pongs, then reports.
struct Pinger {
    ponger: Option<ActorRef<Ball>>,
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Pinger {
    type Message = Ball;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Ball,
        ctx: &mut ActorContext<Ball>,
    ) -> Result<(), Infallible> {
        match msg {
            Ball::Start(ponger) => {
                let _ = ponger.tell(Ball::Ping(ctx.myself().clone())).await;
                self.ponger = Some(ponger);
            }
            Ball::Pong => {
                self.seen += 1;
                if self.seen == self.target {
                    if let Some(done) = self.done.take() {
                        let _ = done.send(self.seen);
                    }
                } else if let Some(ponger) = &self.ponger {
                    let _ = ponger.tell(Ball::Ping(ctx.myself().clone())).await;
                }
            }
            Ball::Ping(_) => {}
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Ring {
    Link(ActorRef<Ring>),
    Token { left: u64, travelled: u64 },
}

impl Message for Ring {
    const MESSAGE_TYPE: &'static str = "compare.ring";
}

struct RingNode {
    next: Option<ActorRef<Ring>>,
    done: Arc<parking_lot::Mutex<Option<oneshot::Sender<u64>>>>,
}

impl Actor for RingNode {
    type Message = Ring;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Ring,
        _: &mut ActorContext<Ring>,
    ) -> Result<(), Infallible> {
        match msg {
            Ring::Link(next) => self.next = Some(next),
            Ring::Token { left: 0, travelled } => {
                if let Some(done) = self.done.lock().take() {
                    let _ = done.send(travelled);
                }
            }
            Ring::Token { left, travelled } => {
                if let Some(next) = &self.next {
                    let _ = next
                        .tell(Ring::Token {
                            left: left - 1,
                            travelled: travelled + 1,
                        })
                        .await;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Go(u64, ActorRef<Count>, ReplyTo<u64>);

impl Message for Go {
    const MESSAGE_TYPE: &'static str = "compare.go";
}

/// The Savina counting producer: an actor that feeds a counter, then queries it.
struct Producer;

impl Actor for Producer {
    type Message = Go;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        Go(n, counter, reply): Go,
        _: &mut ActorContext<Go>,
    ) -> Result<(), Infallible> {
        for _ in 0..n {
            let _ = counter.tell(Count::Add(1)).await;
        }
        if let Ok(total) = counter.ask(Count::Total, PATIENCE).await {
            let _ = reply.reply(total);
        }
        Ok(())
    }
}

/// One fork-join worker: counts its message and signals when it is the last.
struct Forked {
    finished: Arc<AtomicU64>,
    target: u64,
    done: Arc<parking_lot::Mutex<Option<oneshot::Sender<u64>>>>,
}

impl Actor for Forked {
    type Message = u64;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Infallible> {
        if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.target
            && let Some(done) = self.done.lock().take()
        {
            let _ = done.send(self.target);
        }
        Ok(())
    }
}

#[derive(Debug)]
enum Life {
    Crash,
    Ping(ReplyTo<()>),
}

impl Message for Life {
    const MESSAGE_TYPE: &'static str = "compare.life";
}

/// The failure a [`Fragile`] worker is told to have.
#[derive(Debug)]
struct Crashed;

impl fmt::Display for Crashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("told to crash")
    }
}

impl std::error::Error for Crashed {}

/// A supervised worker: announces each new instance from `pre_start`, fails
/// (a handler error) on `Crash`, answers `Ping`.
struct Fragile {
    announce: mpsc::UnboundedSender<ActorRef<Life>>,
}

impl Actor for Fragile {
    type Message = Life;
    type Error = Crashed;
    async fn pre_start(&mut self, ctx: &mut ActorContext<Life>) -> Result<(), Crashed> {
        let _ = self.announce.send(ctx.myself().clone());
        Ok(())
    }
    async fn handle_message(
        &mut self,
        msg: Life,
        _: &mut ActorContext<Life>,
    ) -> Result<(), Crashed> {
        match msg {
            Life::Crash => Err(Crashed),
            Life::Ping(reply) => {
                let _ = reply.reply(());
                Ok(())
            }
        }
    }
    async fn on_error(&mut self, _: Crashed, _: &ActorContext<Life>) -> ErrorAction {
        // Supervised, this exits with `ExitReason::Error` and leaves the
        // replacement to the supervisor's strategy.
        ErrorAction::Restart
    }
}

/// A request the echo actor answers the same way whichever path it came by:
/// through the broker (the reply correlated by the envelope's id) or with a
/// `ReplyTo` (a direct ask).
#[derive(Debug)]
enum Echo {
    ViaBroker(u64),
    Direct(u64, ReplyTo<u64>),
}

impl Message for Echo {
    const MESSAGE_TYPE: &'static str = "compare.echo";
}

/// The name the echo actor is registered under (the broker's address).
const ECHO: &str = "compare.echo";

struct Echoer(InMemoryMessageBroker<Echo, u64>);

impl Actor for Echoer {
    type Message = Echo;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Echo,
        ctx: &mut ActorContext<Echo>,
    ) -> Result<(), Infallible> {
        match msg {
            Echo::ViaBroker(n) => {
                if let Some(request) = ctx.envelope_id() {
                    let _ = self.0.reply(request, n);
                }
            }
            Echo::Direct(n, reply) => {
                let _ = reply.reply(n);
            }
        }
        Ok(())
    }
}

/// Pool work: a job with a routing key (for consistent hashing), or a query
/// of how many jobs this member handled.
#[derive(Debug)]
enum Work {
    Job(&'static str),
    Total(ReplyTo<u64>),
}

impl Message for Work {
    const MESSAGE_TYPE: &'static str = "compare.work";
    fn routing_key(&self) -> Option<&str> {
        match self {
            Work::Job(key) => Some(key),
            Work::Total(_) => None,
        }
    }
}

/// Routing keys the pool jobs cycle through.
const KEYS: [&str; 16] = [
    "user-0", "user-1", "user-2", "user-3", "user-4", "user-5", "user-6", "user-7", "user-8",
    "user-9", "user-10", "user-11", "user-12", "user-13", "user-14", "user-15",
];

/// Counts the jobs it handled.
struct Worker(u64);

impl Actor for Worker {
    type Message = Work;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        msg: Work,
        _: &mut ActorContext<Work>,
    ) -> Result<(), Infallible> {
        match msg {
            Work::Job(_) => self.0 += 1,
            Work::Total(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
}

/// Sums the jobs `workers` handled; each answers after the jobs queued before.
async fn jobs_done(workers: &[ActorRef<Work>]) -> u64 {
    let mut total = 0;
    for worker in workers {
        total += worker.ask(Work::Total, PATIENCE).await.expect("total");
    }
    total
}

impl Message for Task {
    const MESSAGE_TYPE: &'static str = "compare.task";
}

impl Message for Job {
    const MESSAGE_TYPE: &'static str = "compare.job";
}

/// A pool-throughput worker: does each task's work and counts it.
struct Cruncher(Arc<Tally>);

impl Actor for Cruncher {
    type Message = Task;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        task: Task,
        _: &mut ActorContext<Task>,
    ) -> Result<(), Infallible> {
        task.run();
        self.0.handled();
        Ok(())
    }
}

/// A crash-recovery worker: handles good jobs, panics on poison ones.
struct Breakable;

impl Actor for Breakable {
    type Message = Job;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        job: Job,
        _: &mut ActorContext<Job>,
    ) -> Result<(), Infallible> {
        if job.is_poison() {
            job.crash();
        }
        job.done();
        Ok(())
    }
}

/// The airssys-rt-only workloads (see [`crate::internal`]).
impl Airssys {
    /// `n` sequential direct asks to the echo actor; per-ask latency.
    pub async fn echo_ask(n: u64) -> Sample {
        let system = system();
        let broker = InMemoryMessageBroker::new(&system);
        let echo = system
            .spawn_builder()
            .register(ECHO)
            .spawn(Echoer(broker))
            .expect("spawn");
        let mut latencies = Vec::with_capacity(n as usize);
        for i in 0..n {
            let start = Instant::now();
            let answer = echo
                .ask(|reply| Echo::Direct(i, reply), PATIENCE)
                .await
                .expect("ask");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, i, "wrong answer");
        }
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }

    /// `n` sequential broker requests to the same echo actor, addressed by
    /// its registered name; per-request latency, from building the envelope
    /// to holding the reply.
    pub async fn echo_broker(n: u64) -> Sample {
        let system = system();
        let broker = InMemoryMessageBroker::new(&system);
        system
            .spawn_builder()
            .register(ECHO)
            .spawn(Echoer(broker.clone()))
            .expect("spawn");
        let mut latencies = Vec::with_capacity(n as usize);
        for i in 0..n {
            let start = Instant::now();
            let request = MessageEnvelope::new(ActorAddress::named(ECHO), Echo::ViaBroker(i));
            let answer = broker.request(request, PATIENCE).await.expect("request");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, i, "wrong answer");
        }
        assert_eq!(broker.pending_requests(), 0, "requests left waiting");
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }

    /// `n` jobs told directly to `actors` workers in turn, then waited for.
    pub async fn work_tell(actors: usize, n: u64) -> Sample {
        let system = system();
        let workers: Vec<_> = (0..actors)
            .map(|_| system.spawn(Worker(0)).expect("spawn"))
            .collect();
        let start = Instant::now();
        for i in 0..n as usize {
            workers[i % actors]
                .tell(Work::Job(KEYS[i % KEYS.len()]))
                .await
                .expect("tell");
        }
        let done = jobs_done(&workers).await;
        let sample = Sample::per_op(start.elapsed(), done);
        system.shutdown(PATIENCE).await;
        sample
    }

    /// `n` jobs told through a pool of [`POOL_MEMBERS`] using `strategy`,
    /// then waited for.
    pub async fn pool_tell(strategy: PoolStrategy, n: u64) -> Sample {
        let system = system();
        let pool = system
            .start_pool(
                PoolSpec::new("compare.pool", POOL_MEMBERS, || Worker(0)).strategy(strategy),
            )
            .await
            .expect("pool");
        let start = Instant::now();
        for i in 0..n as usize {
            pool.tell(Work::Job(KEYS[i % KEYS.len()]))
                .await
                .expect("pool tell");
        }
        let done = jobs_done(&pool.members()).await;
        let sample = Sample::per_op(start.elapsed(), done);
        pool.shutdown().await;
        system.shutdown(PATIENCE).await;
        sample
    }
}

fn system() -> ActorSystem {
    let system = ActorSystem::new(SystemConfig::named("compare")).expect("inside a runtime");
    #[cfg(feature = "observer")]
    if std::env::var_os("COMPARE_OBSERVER").is_some() {
        observe(&system);
    }
    system
}

/// Serves an observer of `system`, which no client opens, for as long as
/// the measurement's runtime lives: how the observer's cost with no page
/// open is measured (`COMPARE_OBSERVER=1`, feature `observer`).
#[cfg(feature = "observer")]
fn observe(system: &ActorSystem) {
    let system = system.clone();
    tokio::spawn(async move {
        let observer = airssys_rt::observer::Observer::serve(&system, Default::default()).await;
        let _serving = observer.expect("the observer serves on a free loopback port");
        std::future::pending::<()>().await
    });
}

impl Framework for Airssys {
    const NAME: &'static str = "airssys-rt";

    async fn tell(n: u64) -> Sample {
        let system = system();
        let counter = system.spawn(Counter(0)).expect("spawn");
        let start = Instant::now();
        for _ in 0..n {
            counter.tell(Count::Add(1)).await.expect("tell");
        }
        let total = counter.ask(Count::Total, PATIENCE).await.expect("ask");
        let sample = Sample::per_op(start.elapsed(), total);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn fan_out(n: u64) -> Sample {
        let system = system();
        let actors: Vec<_> = (0..FAN_OUT_ACTORS)
            .map(|_| system.spawn(Counter(0)).expect("spawn"))
            .collect();
        let start = Instant::now();
        for i in 0..n {
            actors[(i % FAN_OUT_ACTORS) as usize]
                .tell(Count::Add(1))
                .await
                .expect("tell");
        }
        let mut total = 0;
        for actor in &actors {
            total += actor.ask(Count::Total, PATIENCE).await.expect("ask");
        }
        let sample = Sample::per_op(start.elapsed(), total);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn ask(n: u64) -> Sample {
        let system = system();
        let counter = system.spawn(Counter(1)).expect("spawn");
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            let answer = counter.ask(Count::Total, PATIENCE).await.expect("ask");
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, 1, "wrong answer");
        }
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }

    async fn spawn_stop(n: u64) -> Sample {
        let system = system();
        let start = Instant::now();
        let mut answered = 0;
        for _ in 0..n {
            let actor = system.spawn(Counter(1)).expect("spawn");
            answered += actor.ask(Count::Total, PATIENCE).await.expect("ask");
            actor.stop();
            actor.wait_for_exit().await;
        }
        Sample::per_op(start.elapsed(), answered)
    }

    async fn idle_memory(n: u64) -> Sample {
        let system = system();
        let probe = MemoryProbe::start();
        let actors: Vec<_> = (0..n)
            .map(|_| system.spawn(Counter(0)).expect("spawn"))
            .collect();
        while actors.iter().any(|a| a.state() != ActorState::Running) {
            tokio::task::yield_now().await;
        }
        let (heap, rss) = probe.per_actor(n);
        let alive = system.actor_count() as u64;
        system.shutdown(PATIENCE).await;
        Sample {
            processed: alive,
            value: heap,
            secondary: Some(rss),
        }
    }

    async fn ping_pong(n: u64) -> Sample {
        let system = system();
        let (done, finished) = oneshot::channel();
        let ponger = system.spawn(Ponger).expect("spawn");
        let pinger = system
            .spawn(Pinger {
                ponger: None,
                seen: 0,
                target: n,
                done: Some(done),
            })
            .expect("spawn");
        let start = Instant::now();
        pinger.tell(Ball::Start(ponger)).await.expect("tell");
        let seen = finished.await.expect("ping-pong finished");
        let sample = Sample::per_op(start.elapsed(), seen);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn thread_ring(hops: u64) -> Sample {
        let system = system();
        let (done, finished) = oneshot::channel();
        let done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let nodes: Vec<_> = (0..RING_ACTORS)
            .map(|_| {
                system
                    .spawn(RingNode {
                        next: None,
                        done: done.clone(),
                    })
                    .expect("spawn")
            })
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let next = nodes[(i + 1) % nodes.len()].clone();
            node.tell(Ring::Link(next)).await.expect("link");
        }
        let start = Instant::now();
        nodes[0]
            .tell(Ring::Token {
                left: hops,
                travelled: 0,
            })
            .await
            .expect("token");
        let travelled = finished.await.expect("ring finished");
        let sample = Sample::per_op(start.elapsed(), travelled);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn counting(n: u64) -> Sample {
        let system = system();
        let counter = system.spawn(Counter(0)).expect("spawn");
        let producer = system.spawn(Producer).expect("spawn");
        let start = Instant::now();
        let total = producer
            .ask(|reply| Go(n, counter.clone(), reply), PATIENCE)
            .await
            .expect("counted");
        let sample = Sample::per_op(start.elapsed(), total);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn fork_join(n: u64) -> Sample {
        let system = system();
        let (done, finished) = oneshot::channel();
        let done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let counter = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        for _ in 0..n {
            let worker = system
                .spawn(Forked {
                    finished: counter.clone(),
                    target: n,
                    done: done.clone(),
                })
                .expect("spawn");
            worker.tell(1).await.expect("tell");
        }
        let joined = finished.await.expect("all joined");
        let sample = Sample::per_op(start.elapsed(), joined);
        system.shutdown(PATIENCE).await;
        sample
    }

    async fn restart(n: u64) -> Sample {
        let system = system();
        let (announce, mut announced) = mpsc::unbounded_channel();
        let spec = SupervisorSpec::one_for_one()
            .intensity(u32::MAX, Duration::from_secs(1))
            .child(ChildSpec::worker("fragile", move || Fragile {
                announce: announce.clone(),
            }));
        let supervisor = system.start_supervisor(spec).await.expect("supervisor");
        let mut current = announced.recv().await.expect("first instance");
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            current.tell(Life::Crash).await.expect("crash");
            current = announced.recv().await.expect("replacement");
            current.ask(Life::Ping, PATIENCE).await.expect("ping");
            latencies.push(start.elapsed().as_nanos() as u64);
        }
        supervisor.shutdown().await;
        system.shutdown(PATIENCE).await;
        Sample::latencies(latencies)
    }

    async fn pool_throughput(n: u64) -> Sample {
        let system = system();
        let tally = Tally::new(n);
        let counts = tally.clone();
        let pool = system
            .start_pool(
                PoolSpec::new("compare.jobs", WORKERS, move || Cruncher(counts.clone()))
                    .strategy(PoolStrategy::WorkSharing),
            )
            .await
            .expect("pool");
        let start = Instant::now();
        for i in 0..n {
            pool.tell(Task(i)).await.expect("pool tell");
        }
        let handled = tally.wait().await;
        let sample = Sample::per_op(start.elapsed(), handled);
        pool.shutdown().await;
        system.shutdown(PATIENCE).await;
        sample
    }

    /// A crashed member loses only the poison job it was handling (a dead
    /// letter); the pool's supervisor restarts it, within an intensity that
    /// allows a restart per job. A job the pool refused comes back in the
    /// error and is dropped here: lost.
    async fn crash_recovery(n: u64) -> Sample {
        let system = system();
        let ledger = Ledger::new(n);
        let pool = system
            .start_pool(
                PoolSpec::new("compare.crash", WORKERS, || Breakable)
                    .strategy(PoolStrategy::WorkSharing)
                    .intensity(n as u32, Duration::from_secs(60)),
            )
            .await
            .expect("pool");
        let start = Instant::now();
        for i in 0..n {
            let _ = pool.tell(ledger.job(i)).await;
        }
        let (outcome, settled) = ledger.wait().await;
        let sample = Sample::crash_recovery(settled - start, outcome);
        pool.shutdown().await;
        system.shutdown(PATIENCE).await;
        sample
    }
}
