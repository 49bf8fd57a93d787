//! Fixed micro-workloads for the instruction-count gate (`.ci/instructions`):
//! each runs `n` operations on a current-thread runtime, with nothing else
//! scheduled, so the instructions it executes are the same from run to run
//! (`valgrind --tool=callgrind` counts them). The gate runs each with `n`
//! and with 0, and divides the difference by `n`: instructions per
//! operation, setup left out.
//!
//! ```text
//! cargo run --release --example instructions -- <tell|ask|spawn|restart|ring> <n>
//! ```

use std::fmt;
use std::time::Duration;

use airssys_rt::prelude::*;
use tokio::sync::mpsc;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(n)) = (args.get(1), args.get(2)) else {
        return Err("usage: instructions <tell|ask|spawn|restart|ring> <n>".into());
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
            other => return Err(format!("unknown workload {other}").into()),
        }
        system.shutdown(PATIENCE).await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
