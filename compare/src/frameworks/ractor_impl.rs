//! ractor 0.16, written as its documentation shows: `Actor` with explicit
//! state, `cast` for tells, `call` with an `RpcReplyPort` for asks. ractor
//! has no restart strategies: a supervisor is an actor that links its child
//! (`spawn_linked`) and spawns a new one on `SupervisionEvent::ActorFailed`.
//! The job workloads use `ractor::factory`: a `Factory` of 4 `Worker`s with
//! `QueuerRouting` and the `DefaultQueue` (jobs wait in the factory and go to
//! whichever worker is free; the factory replaces a worker that panicked).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::QueuerRouting;
use ractor::factory::{
    Factory, FactoryArguments, FactoryMessage, Job as FactoryJob, Worker, WorkerId, worker_builder,
};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{mpsc, oneshot};

use crate::jobs::{Job, Ledger, Tally, Task, WORKERS};
use crate::memory::MemoryProbe;
use crate::workload::{FAN_OUT_ACTORS, Framework, RING_ACTORS, Sample};

const PATIENCE: Duration = Duration::from_secs(60);

/// The ractor column.
pub struct Ractor;

enum Count {
    Add(u64),
    Total(RpcReplyPort<u64>),
}

struct Counter;

impl Actor for Counter {
    type Msg = Count;
    type State = u64;
    type Arguments = u64;
    async fn pre_start(&self, _: ActorRef<Count>, start: u64) -> Result<u64, ActorProcessingErr> {
        Ok(start)
    }
    async fn handle(
        &self,
        _: ActorRef<Count>,
        msg: Count,
        total: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Count::Add(n) => *total += n,
            Count::Total(reply) => {
                let _ = reply.send(*total);
            }
        }
        Ok(())
    }
}

async fn spawn_counter(start: u64) -> (ActorRef<Count>, tokio::task::JoinHandle<()>) {
    Actor::spawn(None, Counter, start).await.expect("spawn")
}

async fn total(counter: &ActorRef<Count>) -> u64 {
    match counter
        .call(Count::Total, Some(PATIENCE))
        .await
        .expect("call")
    {
        CallResult::Success(total) => total,
        other => panic!("call failed: {other:?}"),
    }
}

enum Ball {
    Start(ActorRef<Ball>),
    Ping(ActorRef<Ball>),
    Pong,
}

struct Ponger;

impl Actor for Ponger {
    type Msg = Ball;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Ball>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Ball>,
        msg: Ball,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let Ball::Ping(from) = msg {
            from.cast(Ball::Pong)?;
        }
        Ok(())
    }
}

struct Pinger;

struct PingState {
    ponger: Option<ActorRef<Ball>>,
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Pinger {
    type Msg = Ball;
    type State = PingState;
    type Arguments = (u64, oneshot::Sender<u64>);
    async fn pre_start(
        &self,
        _: ActorRef<Ball>,
        (target, done): (u64, oneshot::Sender<u64>),
    ) -> Result<PingState, ActorProcessingErr> {
        Ok(PingState {
            ponger: None,
            seen: 0,
            target,
            done: Some(done),
        })
    }
    async fn handle(
        &self,
        myself: ActorRef<Ball>,
        msg: Ball,
        state: &mut PingState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Ball::Start(ponger) => {
                ponger.cast(Ball::Ping(myself))?;
                state.ponger = Some(ponger);
            }
            Ball::Pong => {
                state.seen += 1;
                if state.seen == state.target {
                    if let Some(done) = state.done.take() {
                        let _ = done.send(state.seen);
                    }
                } else if let Some(ponger) = &state.ponger {
                    ponger.cast(Ball::Ping(myself))?;
                }
            }
            Ball::Ping(_) => {}
        }
        Ok(())
    }
}

type Done = Arc<parking_lot::Mutex<Option<oneshot::Sender<u64>>>>;

enum Ring {
    Link(ActorRef<Ring>),
    Token { left: u64, travelled: u64 },
}

struct RingNode;

impl Actor for RingNode {
    type Msg = Ring;
    type State = (Option<ActorRef<Ring>>, Done);
    type Arguments = Done;
    async fn pre_start(
        &self,
        _: ActorRef<Ring>,
        done: Done,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((None, done))
    }
    async fn handle(
        &self,
        _: ActorRef<Ring>,
        msg: Ring,
        (next, done): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Ring::Link(to) => *next = Some(to),
            Ring::Token { left: 0, travelled } => {
                if let Some(done) = done.lock().take() {
                    let _ = done.send(travelled);
                }
            }
            Ring::Token { left, travelled } => {
                if let Some(next) = next {
                    next.cast(Ring::Token {
                        left: left - 1,
                        travelled: travelled + 1,
                    })?;
                }
            }
        }
        Ok(())
    }
}

struct Go(u64, ActorRef<Count>, RpcReplyPort<u64>);

struct Producer;

impl Actor for Producer {
    type Msg = Go;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Go>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Go>,
        Go(n, counter, reply): Go,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        for _ in 0..n {
            counter.cast(Count::Add(1))?;
        }
        let _ = reply.send(total(&counter).await);
        Ok(())
    }
}

struct Forked;

impl Actor for Forked {
    type Msg = u64;
    type State = (Arc<AtomicU64>, u64, Done);
    type Arguments = (Arc<AtomicU64>, u64, Done);
    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }
    async fn handle(
        &self,
        _: ActorRef<u64>,
        _: u64,
        (finished, target, done): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if finished.fetch_add(1, Ordering::AcqRel) + 1 == *target
            && let Some(done) = done.lock().take()
        {
            let _ = done.send(*target);
        }
        Ok(())
    }
}

enum Life {
    Crash,
    Ping(RpcReplyPort<()>),
}

type Announce = mpsc::UnboundedSender<ActorRef<Life>>;

/// A supervised worker: announces each new instance from `pre_start`, fails
/// (a handler error) on `Crash`, answers `Ping`.
struct Fragile;

impl Actor for Fragile {
    type Msg = Life;
    type State = ();
    type Arguments = Announce;
    async fn pre_start(
        &self,
        myself: ActorRef<Life>,
        announce: Announce,
    ) -> Result<(), ActorProcessingErr> {
        let _ = announce.send(myself);
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Life>,
        msg: Life,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Life::Crash => Err("told to crash".into()),
            Life::Ping(reply) => {
                let _ = reply.send(());
                Ok(())
            }
        }
    }
}

/// One-for-one by hand: replaces a failed child, lets a stopped one go, and
/// takes its children with it when it stops.
struct Guardian;

impl Actor for Guardian {
    type Msg = ();
    type State = Announce;
    type Arguments = Announce;
    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        announce: Announce,
    ) -> Result<Announce, ActorProcessingErr> {
        Actor::spawn_linked(None, Fragile, announce.clone(), myself.get_cell()).await?;
        Ok(announce)
    }
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        announce: &mut Announce,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(..) = event {
            Actor::spawn_linked(None, Fragile, announce.clone(), myself.get_cell()).await?;
        }
        Ok(())
    }
    async fn post_stop(
        &self,
        myself: ActorRef<()>,
        _: &mut Announce,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children_and_wait(None, Some(PATIENCE)).await;
        Ok(())
    }
}

/// A pool-throughput worker: does each task's work and counts it.
struct Cruncher;

impl Worker for Cruncher {
    type Key = ();
    type Message = Task;
    type Arguments = Arc<Tally>;
    type State = Arc<Tally>;
    async fn pre_start(
        &self,
        _: WorkerId,
        _: &ActorRef<FactoryMessage<(), Task>>,
        tally: Arc<Tally>,
    ) -> Result<Arc<Tally>, ActorProcessingErr> {
        Ok(tally)
    }
    async fn handle(
        &self,
        _: WorkerId,
        _: &ActorRef<FactoryMessage<(), Task>>,
        FactoryJob { key, msg, .. }: FactoryJob<(), Task>,
        tally: &mut Arc<Tally>,
    ) -> Result<(), ActorProcessingErr> {
        msg.run();
        tally.handled();
        Ok(key)
    }
}

/// A crash-recovery worker: handles good jobs, panics on poison ones.
struct Breakable;

impl Worker for Breakable {
    type Key = ();
    type Message = Job;
    type Arguments = ();
    type State = ();
    async fn pre_start(
        &self,
        _: WorkerId,
        _: &ActorRef<FactoryMessage<(), Job>>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: WorkerId,
        _: &ActorRef<FactoryMessage<(), Job>>,
        FactoryJob { key, msg, .. }: FactoryJob<(), Job>,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if msg.is_poison() {
            msg.crash();
        }
        msg.done();
        Ok(key)
    }
}

/// Starts a factory of [`WORKERS`] `W`s, queue-routed, each started with
/// `start()`.
async fn start_factory<W, M, S>(
    worker: impl Fn() -> W + Send + Sync + 'static,
    start: impl Fn() -> S + Send + Sync + 'static,
) -> (ActorRef<FactoryMessage<(), M>>, tokio::task::JoinHandle<()>)
where
    W: Worker<Key = (), Message = M, Arguments = S>,
    M: ractor::Message,
    S: ractor::Message,
{
    let factory = Factory::<(), M, S, W, QueuerRouting<(), M>, DefaultQueue<(), M>>::default();
    let arguments = FactoryArguments::builder()
        .worker_builder(Box::new(worker_builder(move |_| (worker(), start()))))
        .queue(Default::default())
        .router(Default::default())
        .num_initial_workers(WORKERS)
        .build();
    Actor::spawn(None, factory, arguments)
        .await
        .expect("factory")
}

async fn stop_all<M: ractor::Message>(actors: Vec<(ActorRef<M>, tokio::task::JoinHandle<()>)>) {
    for (actor, _) in &actors {
        actor.stop(None);
    }
    for (_, handle) in actors {
        handle.await.expect("actor task");
    }
}

impl Framework for Ractor {
    const NAME: &'static str = "ractor";

    async fn tell(n: u64) -> Sample {
        let (counter, handle) = spawn_counter(0).await;
        let start = Instant::now();
        for _ in 0..n {
            counter.cast(Count::Add(1)).expect("cast");
        }
        let sample = Sample::per_op(start.elapsed(), total(&counter).await);
        stop_all(vec![(counter, handle)]).await;
        sample
    }

    async fn fan_out(n: u64) -> Sample {
        let mut actors = Vec::new();
        for _ in 0..FAN_OUT_ACTORS {
            actors.push(spawn_counter(0).await);
        }
        let start = Instant::now();
        for i in 0..n {
            actors[(i % FAN_OUT_ACTORS) as usize]
                .0
                .cast(Count::Add(1))
                .expect("cast");
        }
        let mut sum = 0;
        for (actor, _) in &actors {
            sum += total(actor).await;
        }
        let sample = Sample::per_op(start.elapsed(), sum);
        stop_all(actors).await;
        sample
    }

    async fn ask(n: u64) -> Sample {
        let (counter, handle) = spawn_counter(1).await;
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            let answer = total(&counter).await;
            latencies.push(start.elapsed().as_nanos() as u64);
            assert_eq!(answer, 1, "wrong answer");
        }
        stop_all(vec![(counter, handle)]).await;
        Sample::latencies(latencies)
    }

    async fn spawn_stop(n: u64) -> Sample {
        let start = Instant::now();
        let mut answered = 0;
        for _ in 0..n {
            let (actor, handle) = spawn_counter(1).await;
            answered += total(&actor).await;
            actor.stop(None);
            handle.await.expect("actor task");
        }
        Sample::per_op(start.elapsed(), answered)
    }

    async fn idle_memory(n: u64) -> Sample {
        let probe = MemoryProbe::start();
        let mut actors = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // `spawn` returns once `pre_start` has run.
            actors.push(spawn_counter(0).await);
        }
        let (heap, rss) = probe.per_actor(n);
        let alive = actors.len() as u64;
        stop_all(actors).await;
        Sample {
            processed: alive,
            value: heap,
            secondary: Some(rss),
        }
    }

    async fn ping_pong(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let (ponger, ponger_task) = Actor::spawn(None, Ponger, ()).await.expect("spawn");
        let (pinger, pinger_task) = Actor::spawn(None, Pinger, (n, done)).await.expect("spawn");
        let start = Instant::now();
        pinger.cast(Ball::Start(ponger.clone())).expect("cast");
        let seen = finished.await.expect("ping-pong finished");
        let sample = Sample::per_op(start.elapsed(), seen);
        stop_all(vec![(pinger, pinger_task), (ponger, ponger_task)]).await;
        sample
    }

    async fn thread_ring(hops: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let mut nodes = Vec::with_capacity(RING_ACTORS as usize);
        for _ in 0..RING_ACTORS {
            nodes.push(
                Actor::spawn(None, RingNode, done.clone())
                    .await
                    .expect("spawn"),
            );
        }
        for i in 0..nodes.len() {
            let next = nodes[(i + 1) % nodes.len()].0.clone();
            nodes[i].0.cast(Ring::Link(next)).expect("link");
        }
        let start = Instant::now();
        nodes[0]
            .0
            .cast(Ring::Token {
                left: hops,
                travelled: 0,
            })
            .expect("token");
        let travelled = finished.await.expect("ring finished");
        let sample = Sample::per_op(start.elapsed(), travelled);
        stop_all(nodes).await;
        sample
    }

    async fn counting(n: u64) -> Sample {
        let (counter, counter_task) = spawn_counter(0).await;
        let (producer, producer_task) = Actor::spawn(None, Producer, ()).await.expect("spawn");
        let start = Instant::now();
        let counted = match producer
            .call(|reply| Go(n, counter.clone(), reply), Some(PATIENCE))
            .await
            .expect("call")
        {
            CallResult::Success(total) => total,
            other => panic!("call failed: {other:?}"),
        };
        let sample = Sample::per_op(start.elapsed(), counted);
        stop_all(vec![(producer, producer_task)]).await;
        stop_all(vec![(counter, counter_task)]).await;
        sample
    }

    async fn fork_join(n: u64) -> Sample {
        let (done, finished) = oneshot::channel();
        let done: Done = Arc::new(parking_lot::Mutex::new(Some(done)));
        let counter = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let worker = Actor::spawn(None, Forked, (counter.clone(), n, done.clone()))
                .await
                .expect("spawn");
            worker.0.cast(1).expect("cast");
            workers.push(worker);
        }
        let joined = finished.await.expect("all joined");
        let sample = Sample::per_op(start.elapsed(), joined);
        stop_all(workers).await;
        sample
    }

    async fn restart(n: u64) -> Sample {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let guardian = Actor::spawn(None, Guardian, announce).await.expect("spawn");
        let mut current = announced.recv().await.expect("first instance");
        let mut latencies = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let start = Instant::now();
            current.cast(Life::Crash).expect("crash");
            current = announced.recv().await.expect("replacement");
            match current
                .call(Life::Ping, Some(PATIENCE))
                .await
                .expect("call")
            {
                CallResult::Success(()) => {}
                other => panic!("call failed: {other:?}"),
            }
            latencies.push(start.elapsed().as_nanos() as u64);
        }
        stop_all(vec![guardian]).await;
        Sample::latencies(latencies)
    }

    async fn pool_throughput(n: u64) -> Sample {
        let tally = Tally::new(n);
        let counts = tally.clone();
        let (factory, handle) = start_factory(|| Cruncher, move || counts.clone()).await;
        let start = Instant::now();
        for i in 0..n {
            factory.dispatch((), Task(i)).expect("dispatch");
        }
        let handled = tally.wait().await;
        let sample = Sample::per_op(start.elapsed(), handled);
        stop_all(vec![(factory, handle)]).await;
        sample
    }

    /// A worker that panics fails; the factory replaces it with a new one
    /// from the builder and sends it the next queued job. Only the job in
    /// flight (the poison one) is lost; a job the factory refused comes back
    /// in the error and is dropped here: lost.
    async fn crash_recovery(n: u64) -> Sample {
        let ledger = Ledger::new(n);
        let (factory, handle) = start_factory(|| Breakable, || ()).await;
        let start = Instant::now();
        for i in 0..n {
            let _ = factory.dispatch((), ledger.job(i));
        }
        let (outcome, settled) = ledger.wait().await;
        let sample = Sample::crash_recovery(settled - start, outcome);
        stop_all(vec![(factory, handle)]).await;
        sample
    }
}
