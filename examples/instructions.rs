//! Fixed micro-workloads for the instruction-count gate (`.ci/instructions`):
//! each runs `n` operations on a current-thread runtime, with nothing else
//! scheduled, so the instructions it executes are the same from run to run
//! (`valgrind --tool=callgrind` counts them). The gate runs each with `n`
//! and with 0, and divides the difference by `n`: instructions per
//! operation, setup left out.
//!
//! ```text
//! cargo run --release --example instructions -- <workload> <n>
//! ```
//!
//! Workloads: `tell`, `ask`, `spawn`, `restart`, `ring`, `pool`, and the
//! raw-tokio floor of all but the ring (`floor-tell`, `floor-ask`,
//! `floor-spawn`, `floor-restart`, `floor-pool`: tasks and unbounded
//! channels, a oneshot per ask, no timeout; the same shapes as the compare
//! harness's raw-tokio column).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airssys_rt::address::{PoolSpec, PoolStrategy};
use airssys_rt::prelude::*;
use tokio::sync::{Notify, mpsc, oneshot};

const PATIENCE: Duration = Duration::from_secs(60);

/// What the workloads send.
#[derive(Debug)]
enum Op {
    Add(u64),
    Total(ReplyTo<u64>),
    Crash,
    /// Passes the token on `left` more times, then reports.
    Hop {
        left: u64,
    },
    Next(ActorRef<Op>, mpsc::UnboundedSender<()>),
}

impl Message for Op {
    const MESSAGE_TYPE: &'static str = "instructions.op";
}

#[derive(Debug)]
struct Crashed;

impl fmt::Display for Crashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("crashed on purpose")
    }
}

/// Counts, answers its total, crashes on demand, passes ring tokens.
#[derive(Default)]
struct Worker {
    total: u64,
    next: Option<(ActorRef<Op>, mpsc::UnboundedSender<()>)>,
    announce: Option<mpsc::UnboundedSender<ActorRef<Op>>>,
}

/// A pool member: counts the jobs it handles into the pool's [`Jobs`].
struct Member(Arc<Jobs>);

impl Actor for Member {
    type Message = Op;
    type Error = Crashed;

    async fn handle_message(&mut self, op: Op, _: &mut ActorContext<Op>) -> Result<(), Crashed> {
        if let Op::Add(n) = op {
            self.0.handled(n);
        }
        Ok(())
    }
}

/// Jobs handled by a pool's members, and the wake-up when all were.
struct Jobs {
    handled: AtomicU64,
    expected: u64,
    all_handled: Notify,
}

impl Jobs {
    fn handled(&self, n: u64) {
        if self.handled.fetch_add(n, Ordering::AcqRel) + n == self.expected {
            self.all_handled.notify_one();
        }
    }

    async fn all_handled(&self) {
        if self.handled.load(Ordering::Acquire) < self.expected {
            self.all_handled.notified().await;
        }
    }
}

impl Actor for Worker {
    type Message = Op;
    type Error = Crashed;

    async fn pre_start(&mut self, ctx: &mut ActorContext<Op>) -> Result<(), Crashed> {
        if let Some(announce) = &self.announce {
            let _ = announce.send(ctx.myself().clone());
        }
        Ok(())
    }

    async fn handle_message(&mut self, op: Op, _: &mut ActorContext<Op>) -> Result<(), Crashed> {
        match op {
            Op::Add(n) => self.total += n,
            Op::Total(reply) => {
                let _ = reply.reply(self.total);
            }
            Op::Crash => return Err(Crashed),
            Op::Next(next, done) => self.next = Some((next, done)),
            Op::Hop { left } => {
                if let Some((next, done)) = &self.next {
                    if left == 0 {
                        let _ = done.send(());
                    } else {
                        let _ = next.tell(Op::Hop { left: left - 1 }).await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_error(&mut self, _: Crashed, _: &ActorContext<Op>) -> ErrorAction {
        ErrorAction::Restart
    }
}

async fn tell(system: &ActorSystem, n: u64) {
    let worker = system.spawn(Worker::default()).expect("spawn");
    for _ in 0..n {
        worker.tell(Op::Add(1)).await.expect("tell");
    }
    let total = worker.ask(Op::Total, PATIENCE).await.expect("ask");
    assert_eq!(total, n);
}

async fn ask(system: &ActorSystem, n: u64) {
    let worker = system.spawn(Worker::default()).expect("spawn");
    for _ in 0..n {
        worker.ask(Op::Total, PATIENCE).await.expect("ask");
    }
}

async fn spawn(system: &ActorSystem, n: u64) {
    for _ in 0..n {
        let worker = system.spawn(Worker::default()).expect("spawn");
        worker.ask(Op::Total, PATIENCE).await.expect("ask");
        worker.stop();
        worker.wait_for_exit().await;
    }
}

async fn restart(system: &ActorSystem, n: u64) {
    let (announce, mut announced) = mpsc::unbounded_channel();
    let spec = SupervisorSpec::one_for_one()
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(ChildSpec::worker("fragile", move || Worker {
            announce: Some(announce.clone()),
            ..Worker::default()
        }));
    let supervisor = system.start_supervisor(spec).await.expect("supervisor");
    let mut current = announced.recv().await.expect("first instance");
    for _ in 0..n {
        current.tell(Op::Crash).await.expect("crash");
        current = announced.recv().await.expect("replacement");
        current.ask(Op::Total, PATIENCE).await.expect("ask");
    }
    supervisor.shutdown().await;
}

async fn ring(system: &ActorSystem, hops: u64) {
    const ACTORS: usize = 100;
    let (done, mut finished) = mpsc::unbounded_channel();
    let nodes: Vec<ActorRef<Op>> = (0..ACTORS)
        .map(|_| system.spawn(Worker::default()).expect("spawn"))
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % ACTORS].clone();
        node.tell(Op::Next(next, done.clone())).await.expect("link");
    }
    nodes[0].tell(Op::Hop { left: hops }).await.expect("token");
    finished.recv().await.expect("the token came back");
}

/// A work-sharing pool of 4 members, told `n` jobs; done when all were
/// handled.
async fn pool(system: &ActorSystem, n: u64) {
    let jobs = Arc::new(Jobs {
        handled: AtomicU64::new(0),
        expected: n,
        all_handled: Notify::new(),
    });
    let counted = jobs.clone();
    let pool = system
        .start_pool(
            PoolSpec::new("jobs", 4, move || Member(counted.clone()))
                .strategy(PoolStrategy::WorkSharing),
        )
        .await
        .expect("pool");
    for _ in 0..n {
        pool.tell(Op::Add(1)).await.expect("job");
    }
    jobs.all_handled().await;
    pool.shutdown().await;
}

/// The floor: a task with an unbounded channel, told `n` numbers, then
/// asked their sum through a oneshot.
async fn floor_tell(n: u64) {
    let (to_task, mut inbox) = mpsc::unbounded_channel::<FloorOp>();
    let task = tokio::spawn(async move {
        let mut total = 0;
        while let Some(op) = inbox.recv().await {
            match op {
                FloorOp::Add(k) => total += k,
                FloorOp::Total(reply) => {
                    let _ = reply.send(total);
                }
                FloorOp::Crash => {}
            }
        }
    });
    for _ in 0..n {
        to_task.send(FloorOp::Add(1)).expect("send");
    }
    let (reply, answer) = oneshot::channel();
    to_task.send(FloorOp::Total(reply)).expect("send");
    assert_eq!(answer.await.expect("answer"), n);
    drop(to_task);
    task.await.expect("task");
}

/// The floor's ask: a oneshot through an unbounded channel, no timeout.
async fn floor_ask(n: u64) {
    let (to_task, mut inbox) = mpsc::unbounded_channel::<FloorOp>();
    let task = tokio::spawn(async move {
        while let Some(op) = inbox.recv().await {
            if let FloorOp::Total(reply) = op {
                let _ = reply.send(0);
            }
        }
    });
    for _ in 0..n {
        let (reply, answer) = oneshot::channel();
        to_task.send(FloorOp::Total(reply)).expect("send");
        answer.await.expect("answer");
    }
    drop(to_task);
    task.await.expect("task");
}

/// The floor's spawn: a task with its channel, asked once, then closed and
/// awaited.
async fn floor_spawn(n: u64) {
    for _ in 0..n {
        let (to_task, mut inbox) = mpsc::unbounded_channel::<FloorOp>();
        let task = tokio::spawn(async move {
            while let Some(op) = inbox.recv().await {
                if let FloorOp::Total(reply) = op {
                    let _ = reply.send(0);
                }
            }
        });
        let (reply, answer) = oneshot::channel();
        to_task.send(FloorOp::Total(reply)).expect("send");
        answer.await.expect("answer");
        drop(to_task);
        task.await.expect("task");
    }
}

/// The floor's restart: a supervising task spawns a worker task with a
/// fresh channel, announces its sender and spawns a replacement when it
/// ends by a crash; each replacement is asked once.
async fn floor_restart(n: u64) {
    let (announce, mut announced) = mpsc::unbounded_channel();
    let supervisor = tokio::spawn(async move {
        loop {
            let (to_worker, mut inbox) = mpsc::unbounded_channel::<FloorOp>();
            let worker = tokio::spawn(async move {
                while let Some(op) = inbox.recv().await {
                    match op {
                        FloorOp::Crash => return true,
                        FloorOp::Total(reply) => {
                            let _ = reply.send(0);
                        }
                        FloorOp::Add(_) => {}
                    }
                }
                false
            });
            if announce.send(to_worker).is_err() {
                let _ = worker.await;
                return;
            }
            if let Ok(false) = worker.await {
                return;
            }
        }
    });
    let mut current = announced.recv().await.expect("first instance");
    for _ in 0..n {
        current.send(FloorOp::Crash).expect("crash");
        current = announced.recv().await.expect("replacement");
        let (reply, answer) = oneshot::channel();
        current.send(FloorOp::Total(reply)).expect("ask");
        answer.await.expect("answer");
    }
    drop((current, announced));
    supervisor.await.expect("supervisor");
}

/// The floor's pool: 4 tasks sharing one unbounded channel, its receiver
/// behind a tokio `Mutex`.
async fn floor_pool(n: u64) {
    let (to_pool, inbox) = mpsc::unbounded_channel::<FloorOp>();
    let inbox = Arc::new(tokio::sync::Mutex::new(inbox));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut handled = 0;
                loop {
                    let next = inbox.lock().await.recv().await;
                    match next {
                        Some(FloorOp::Add(k)) => handled += k,
                        Some(_) => {}
                        None => return handled,
                    }
                }
            })
        })
        .collect();
    for _ in 0..n {
        to_pool.send(FloorOp::Add(1)).expect("job");
    }
    drop(to_pool);
    let mut handled = 0;
    for worker in workers {
        handled += worker.await.expect("worker");
    }
    assert_eq!(handled, n);
}

/// What the floor's tasks take.
enum FloorOp {
    Add(u64),
    Total(oneshot::Sender<u64>),
    Crash,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(n)) = (args.get(1), args.get(2)) else {
        return Err("usage: instructions <workload> <n> (see the file's docs)".into());
    };
    let n: u64 = n.parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let system = ActorSystem::new(SystemConfig::named("instructions"))?;
        match workload.as_str() {
            "tell" => tell(&system, n).await,
            "ask" => ask(&system, n).await,
            "spawn" => spawn(&system, n).await,
            "restart" => restart(&system, n).await,
            "ring" => ring(&system, n).await,
            "pool" => pool(&system, n).await,
            "floor-tell" => floor_tell(n).await,
            "floor-ask" => floor_ask(n).await,
            "floor-spawn" => floor_spawn(n).await,
            "floor-restart" => floor_restart(n).await,
            "floor-pool" => floor_pool(n).await,
            other => return Err(format!("unknown workload {other}").into()),
        }
        system.shutdown(PATIENCE).await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
