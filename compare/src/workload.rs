//! The workloads, their sizes, and what one run of one reports.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::jobs::{Outcome, QuietPoison};

/// One benchmark program, written idiomatically for every framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Workload {
    /// One producer tells one actor `n` messages; the actor counts them.
    Tell,
    /// One producer tells 100 actors round-robin; each counts its share.
    FanOut,
    /// Sequential request/reply round trips; per-ask latency.
    Ask,
    /// Spawn an actor, ask it once, stop it, await its end; per actor.
    SpawnStop,
    /// Live heap per idle actor (counting allocator), RSS as a second figure.
    IdleMemory,
    /// Savina ping-pong: two actors bounce a message `n` times.
    PingPong,
    /// Savina thread ring: a token circles a ring of actors for `n` hops.
    ThreadRing,
    /// Savina counting actor: `n` increments, then one query of the total.
    Counting,
    /// Savina fork-join (creation): `n` actors each created and sent one message.
    ForkJoin,
    /// A supervised actor is told to fail; per failure, the time until its
    /// replacement has answered a request.
    Restart,
    /// One producer sends `n` jobs (a few hundred ns of arithmetic each)
    /// through a pool of [`WORKERS`](crate::jobs::WORKERS) workers; per job,
    /// the time until every job has been handled.
    PoolThroughput,
    /// The same pool of supervised workers; 1 % of the jobs are poison (the
    /// worker panics). Per job, the time until every job is settled — good
    /// ones handled or lost, poison ones crashed on — with the good jobs the
    /// pool lost as a second figure (see [`crate::jobs`]).
    CrashRecovery,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 12] = [
        Workload::Tell,
        Workload::FanOut,
        Workload::Ask,
        Workload::SpawnStop,
        Workload::IdleMemory,
        Workload::PingPong,
        Workload::ThreadRing,
        Workload::Counting,
        Workload::ForkJoin,
        Workload::Restart,
        Workload::PoolThroughput,
        Workload::CrashRecovery,
    ];

    /// Short label for tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Tell => "tell 1→1",
            Workload::FanOut => "tell fan-out ×100",
            Workload::Ask => "ask round trip",
            Workload::SpawnStop => "spawn+ask+stop",
            Workload::IdleMemory => "idle actor heap",
            Workload::PingPong => "ping-pong",
            Workload::ThreadRing => "thread ring ×1000",
            Workload::Counting => "counting actor",
            Workload::ForkJoin => "fork-join create",
            Workload::Restart => "restart latency",
            Workload::PoolThroughput => "job throughput ×4 workers",
            Workload::CrashRecovery => "crash recovery ×4 workers",
        }
    }

    /// The unit of the reported figure.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::IdleMemory => "B/actor",
            Workload::Ask | Workload::Restart => "ns (median; p99 beside)",
            Workload::CrashRecovery => "ns/job; good jobs lost beside",
            _ => "ns/op",
        }
    }
}

/// How many operations each workload performs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    pub tell: u64,
    pub fan_out: u64,
    pub ask: u64,
    pub spawn_stop: u64,
    pub idle: u64,
    pub ping_pong: u64,
    pub ring_hops: u64,
    pub counting: u64,
    pub fork_join: u64,
    pub restart: u64,
    /// Jobs through the pool of 4 (pool throughput).
    pub pool_jobs: u64,
    /// Jobs through the pool of 4, 1 % poison (crash recovery).
    pub crash_jobs: u64,
    /// airssys-rt only: broker request/reply and direct-ask round trips.
    pub broker: u64,
    /// airssys-rt only: messages told through each pool strategy or directly.
    pub pool: u64,
    /// airssys-rt only, feature `wasm`: asks to the Wasm and native counters.
    pub wasm_ask: u64,
    /// airssys-rt only, feature `wasm`: failures and restarts of each counter.
    pub wasm_restart: u64,
    /// airssys-rt only, feature `nats`: sequential requests over NATS, raw
    /// and through the broker.
    pub nats_round_trip: u64,
    /// airssys-rt only, feature `nats`: requests over NATS with 32 in flight.
    pub nats_throughput: u64,
}

/// Actors fed round-robin by the fan-out workload.
pub const FAN_OUT_ACTORS: u64 = 100;
/// Actors in the thread ring.
pub const RING_ACTORS: u64 = 1_000;

impl Sizes {
    /// The full run (a few minutes for everything on 2 cores).
    pub const FULL: Sizes = Sizes {
        tell: 1_000_000,
        fan_out: 1_000_000,
        ask: 100_000,
        spawn_stop: 100_000,
        idle: 100_000,
        ping_pong: 200_000,
        ring_hops: 500_000,
        counting: 1_000_000,
        fork_join: 100_000,
        restart: 20_000,
        pool_jobs: 200_000,
        crash_jobs: 100_000,
        broker: 100_000,
        pool: 1_000_000,
        wasm_ask: 200_000,
        wasm_restart: 5_000,
        nats_round_trip: 5_000,
        nats_throughput: 50_000,
    };

    /// `--quick`: every workload small.
    pub const QUICK: Sizes = Sizes {
        tell: 50_000,
        fan_out: 50_000,
        ask: 5_000,
        spawn_stop: 5_000,
        idle: 10_000,
        ping_pong: 10_000,
        ring_hops: 20_000,
        counting: 50_000,
        fork_join: 5_000,
        restart: 2_000,
        pool_jobs: 20_000,
        crash_jobs: 10_000,
        broker: 5_000,
        pool: 50_000,
        wasm_ask: 10_000,
        wasm_restart: 500,
        nats_round_trip: 1_000,
        nats_throughput: 5_000,
    };

    /// Tests: just enough to prove every message is processed.
    pub const TINY: Sizes = Sizes {
        tell: 2_000,
        fan_out: 2_000,
        ask: 200,
        spawn_stop: 100,
        idle: 500,
        ping_pong: 500,
        ring_hops: 3_000,
        counting: 2_000,
        fork_join: 300,
        restart: 100,
        pool_jobs: 2_000,
        crash_jobs: 1_000,
        broker: 200,
        pool: 2_000,
        wasm_ask: 100,
        wasm_restart: 20,
        nats_round_trip: 100,
        nats_throughput: 200,
    };

    /// Operations the workload performs (what `Sample::processed` must equal).
    pub fn ops(&self, workload: Workload) -> u64 {
        match workload {
            Workload::Tell => self.tell,
            Workload::FanOut => self.fan_out,
            Workload::Ask => self.ask,
            Workload::SpawnStop => self.spawn_stop,
            Workload::IdleMemory => self.idle,
            Workload::PingPong => self.ping_pong,
            Workload::ThreadRing => self.ring_hops,
            Workload::Counting => self.counting,
            Workload::ForkJoin => self.fork_join,
            Workload::Restart => self.restart,
            Workload::PoolThroughput => self.pool_jobs,
            Workload::CrashRecovery => self.crash_jobs,
        }
    }
}

/// What one run of one workload measured.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Operations the implementation actually processed (counted by the actors).
    pub processed: u64,
    /// The figure: ns per operation, median ask or restart latency, or bytes
    /// per actor.
    pub value: f64,
    /// Ask and restart: the 99th-percentile latency (ns); idle memory: RSS
    /// bytes per actor; crash recovery: good jobs the pool lost.
    pub secondary: Option<f64>,
}

impl Sample {
    /// A throughput-style sample: `elapsed` over `processed` operations.
    pub fn per_op(elapsed: Duration, processed: u64) -> Self {
        Self {
            processed,
            value: elapsed.as_nanos() as f64 / processed.max(1) as f64,
            secondary: None,
        }
    }

    /// A crash-recovery sample: `elapsed` over the jobs accounted for (each
    /// handled, crashed on or lost), the good jobs lost beside.
    pub fn crash_recovery(elapsed: Duration, outcome: Outcome) -> Self {
        Self {
            secondary: Some(outcome.lost_good as f64),
            ..Self::per_op(elapsed, outcome.accounted())
        }
    }

    /// A latency sample from individual round-trip times.
    pub fn latencies(mut nanos: Vec<u64>) -> Self {
        nanos.sort_unstable();
        let pick = |q: f64| {
            nanos
                .get(((nanos.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0) as f64
        };
        Self {
            processed: nanos.len() as u64,
            value: pick(0.5),
            secondary: Some(pick(0.99)),
        }
    }
}

/// One framework's implementation of every workload.
///
/// Futures are `Send` so the driver can run them on a runtime worker.
pub trait Framework {
    /// Column name.
    const NAME: &'static str;

    fn tell(n: u64) -> impl Future<Output = Sample> + Send;
    fn fan_out(n: u64) -> impl Future<Output = Sample> + Send;
    fn ask(n: u64) -> impl Future<Output = Sample> + Send;
    fn spawn_stop(n: u64) -> impl Future<Output = Sample> + Send;
    fn idle_memory(n: u64) -> impl Future<Output = Sample> + Send;
    fn ping_pong(n: u64) -> impl Future<Output = Sample> + Send;
    fn thread_ring(hops: u64) -> impl Future<Output = Sample> + Send;
    fn counting(n: u64) -> impl Future<Output = Sample> + Send;
    fn fork_join(n: u64) -> impl Future<Output = Sample> + Send;
    /// `n` times: tell the supervised actor to fail, take its replacement's
    /// handle (announced from its start hook), ask it once; per failure, the
    /// time from the failure being sent to the reply.
    fn restart(n: u64) -> impl Future<Output = Sample> + Send;
    /// `n` [`Task`](crate::jobs::Task)s from one producer through the
    /// framework's pool of [`WORKERS`](crate::jobs::WORKERS); per job, the
    /// time until all are handled (counted by the workers).
    fn pool_throughput(n: u64) -> impl Future<Output = Sample> + Send;
    /// `n` crash-recovery [`Job`](crate::jobs::Job)s through the same pool,
    /// supervised; per job, the time until all have settled, and
    /// [`Sample::crash_recovery`] of the [`Ledger`](crate::jobs::Ledger).
    fn crash_recovery(n: u64) -> impl Future<Output = Sample> + Send;
}

/// Runs `workload` with framework `F`, panicking if it skipped any work.
pub async fn run<F: Framework>(workload: Workload, sizes: Sizes) -> Sample {
    let n = sizes.ops(workload);
    let sample = match workload {
        Workload::Tell => F::tell(n).await,
        Workload::FanOut => F::fan_out(n).await,
        Workload::Ask => F::ask(n).await,
        Workload::SpawnStop => F::spawn_stop(n).await,
        Workload::IdleMemory => F::idle_memory(n).await,
        Workload::PingPong => F::ping_pong(n).await,
        Workload::ThreadRing => F::thread_ring(n).await,
        Workload::Counting => F::counting(n).await,
        Workload::ForkJoin => F::fork_join(n).await,
        Workload::Restart => F::restart(n).await,
        Workload::PoolThroughput => F::pool_throughput(n).await,
        Workload::CrashRecovery => {
            // The poison jobs' panics are expected: keep them off stderr.
            let _quiet = QuietPoison::enter();
            F::crash_recovery(n).await
        }
    };
    assert_eq!(
        sample.processed,
        n,
        "{} {:?} processed {} of {n} operations",
        F::NAME,
        workload,
        sample.processed
    );
    sample
}
