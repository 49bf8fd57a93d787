//! What the two pool workloads share: a job's fixed amount of work, the
//! tallies that count handled (and, for crash recovery, lost) jobs, and the
//! panic hook that keeps the poison jobs' panics off stderr while they run.
//!
//! Both workloads send `n` jobs from one producer through a pool of
//! [`WORKERS`] workers. For crash recovery, job `i` is poison when
//! [`is_poison`]`(i)` (1 %, at fixed positions): the worker handling it
//! panics. Every crash-recovery job carries its [`Ledger`] and settles
//! exactly once: handled, crashed on (a poison job whose worker panicked), or
//! lost — dropped unhandled by whatever held it (a mailbox that died with its
//! actor, a send the pool refused), or still unsettled when the run stops
//! making progress ([`STALL`]; the run is then timed to its last progress).
//! That is how lost jobs are counted for every framework alike, without
//! trusting any one's dead-letter reporting.

use std::fmt;
use std::panic::PanicHookInfo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Workers in every pool.
pub const WORKERS: usize = 4;

/// How long a pool may make no progress before the jobs it still holds are
/// given up on: a run that loses jobs ends after this, not never.
pub const STALL: Duration = Duration::from_secs(1);

/// Rounds of arithmetic per job (≈300 ns on the reference machine).
const ROUNDS: u64 = 300;

/// A job's work: a fixed amount of integer arithmetic the optimiser cannot
/// skip.
pub fn work(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..ROUNDS {
        x = std::hint::black_box(x)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    std::hint::black_box(x)
}

/// Whether crash-recovery job `i` is poison (1 % of the jobs, at fixed
/// positions).
pub fn is_poison(i: u64) -> bool {
    i % 100 == 42
}

/// Poison jobs among the first `n`.
pub fn poison_among(n: u64) -> u64 {
    (0..n).filter(|i| is_poison(*i)).count() as u64
}

/// A pool-throughput job: the seed of its work.
#[derive(Debug, Clone, Copy)]
pub struct Task(pub u64);

impl Task {
    /// Does the job's work.
    pub fn run(self) {
        work(self.0);
    }
}

/// Counts handled pool-throughput jobs; shared by the workers.
#[derive(Debug)]
pub struct Tally {
    target: u64,
    handled: AtomicU64,
    all_handled: Notify,
}

impl Tally {
    /// A tally waiting for `target` jobs.
    pub fn new(target: u64) -> Arc<Self> {
        Arc::new(Self {
            target,
            handled: AtomicU64::new(0),
            all_handled: Notify::new(),
        })
    }

    /// One more job handled.
    pub fn handled(&self) {
        if self.handled.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.all_handled.notify_one();
        }
    }

    /// Waits until every job has been handled, or until none has been for
    /// [`STALL`]; the jobs handled.
    pub async fn wait(&self) -> u64 {
        wait_for(&self.handled, self.target, &self.all_handled)
            .await
            .0
    }
}

/// How often a wait checks for progress (so a stalled run's end is known to
/// within this).
const TICK: Duration = Duration::from_millis(5);

/// Waits until `count` reaches `target` (woken by `reached`), or until it
/// has not moved for [`STALL`]; returns it, and when it last moved (for a
/// stalled run, the end of its progress: the wait for nothing is not timed).
async fn wait_for(count: &AtomicU64, target: u64, reached: &Notify) -> (u64, Instant) {
    let mut seen = count.load(Ordering::Acquire);
    let mut moved = Instant::now();
    while seen < target {
        // `notify_one` stores a permit, so a wake before this wait counts.
        let _ = tokio::time::timeout(TICK, reached.notified()).await;
        let now = count.load(Ordering::Acquire);
        if now != seen {
            seen = now;
            moved = Instant::now();
        } else if moved.elapsed() >= STALL {
            break;
        }
    }
    (seen, moved)
}

/// Where every crash-recovery job ended up.
#[derive(Debug)]
pub struct Ledger {
    jobs: u64,
    handled: AtomicU64,
    crashed: AtomicU64,
    lost_good: AtomicU64,
    lost_poison: AtomicU64,
    settled: AtomicU64,
    all_settled: Notify,
}

/// A crash-recovery run's result, from its [`Ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Good jobs handled.
    pub handled: u64,
    /// Poison jobs a worker crashed on.
    pub crashed: u64,
    /// Good jobs dropped unhandled, or never settled.
    pub lost_good: u64,
    /// Poison jobs dropped before a worker took them, or never settled.
    pub lost_poison: u64,
}

impl Outcome {
    /// Jobs accounted for (every job exactly once: the run's `processed`).
    pub fn accounted(&self) -> u64 {
        self.handled + self.crashed + self.lost_good + self.lost_poison
    }
}

impl Ledger {
    /// A ledger for `jobs` jobs.
    pub fn new(jobs: u64) -> Arc<Self> {
        Arc::new(Self {
            jobs,
            handled: AtomicU64::new(0),
            crashed: AtomicU64::new(0),
            lost_good: AtomicU64::new(0),
            lost_poison: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            all_settled: Notify::new(),
        })
    }

    /// Job `i`, settling in this ledger.
    pub fn job(self: &Arc<Self>, i: u64) -> Job {
        Job {
            index: i,
            ledger: Some(self.clone()),
        }
    }

    fn settle(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        if self.settled.fetch_add(1, Ordering::AcqRel) + 1 == self.jobs {
            self.all_settled.notify_one();
        }
    }

    /// Waits until every job has settled, or until none has for [`STALL`]
    /// (the rest are then lost: still held somewhere, never handled, and the
    /// run ended when its last job settled); the outcome, and when the last
    /// job settled.
    pub async fn wait(&self) -> (Outcome, Instant) {
        let (settled, at) = wait_for(&self.settled, self.jobs, &self.all_settled).await;
        assert!(settled <= self.jobs, "a job settled twice");
        let outcome = self.outcome();
        // Whatever never settled is lost; split good from poison by count.
        let poison_unsettled = poison_among(self.jobs) - outcome.crashed - outcome.lost_poison;
        let unsettled = self.jobs - settled;
        let outcome = Outcome {
            lost_good: outcome.lost_good + (unsettled - poison_unsettled),
            lost_poison: outcome.lost_poison + poison_unsettled,
            ..outcome
        };
        (outcome, at)
    }

    /// The counts so far.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            handled: self.handled.load(Ordering::Acquire),
            crashed: self.crashed.load(Ordering::Acquire),
            lost_good: self.lost_good.load(Ordering::Acquire),
            lost_poison: self.lost_poison.load(Ordering::Acquire),
        }
    }
}

/// A crash-recovery job. Settles exactly once: [`done`](Self::done),
/// [`crash`](Self::crash) or [`fail`](Self::fail) — or, dropped unhandled,
/// as lost.
pub struct Job {
    index: u64,
    /// `None` once settled.
    ledger: Option<Arc<Ledger>>,
}

/// The panic message of a poison job (what [`QuietPoison`] silences).
pub const POISON: &str = "compare: poison job";

impl Job {
    /// Whether this job makes its worker fail.
    pub fn is_poison(&self) -> bool {
        is_poison(self.index)
    }

    /// A good job: does its work and counts it handled.
    pub fn done(mut self) {
        debug_assert!(!self.is_poison(), "done() on a poison job");
        work(self.index);
        if let Some(ledger) = self.ledger.take() {
            ledger.settle(&ledger.handled);
        }
    }

    /// A poison job: counts the crash, then panics (the worker crashes).
    pub fn crash(self) -> ! {
        self.fail();
        panic!("{POISON}")
    }

    /// A poison job, for a framework whose workers fail without panicking:
    /// counts the crash.
    pub fn fail(mut self) {
        if let Some(ledger) = self.ledger.take() {
            ledger.settle(&ledger.crashed);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(ledger) = self.ledger.take() {
            if self.is_poison() {
                ledger.settle(&ledger.lost_poison);
            } else {
                ledger.settle(&ledger.lost_good);
            }
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("index", &self.index)
            .field("poison", &self.is_poison())
            .finish()
    }
}

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Guards running crash-recovery workloads (several at once in the tests).
static QUIET: parking_lot::Mutex<(usize, Option<Arc<Hook>>)> = parking_lot::const_mutex((0, None));

/// While one is alive, the poison jobs' panics print nothing (and capture
/// no backtrace); every other panic goes to the hook installed before, which
/// is restored when the last guard drops.
#[derive(Debug)]
pub struct QuietPoison(());

impl QuietPoison {
    pub fn enter() -> Self {
        let mut quiet = QUIET.lock();
        if quiet.0 == 0 {
            let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
            let forward = previous.clone();
            std::panic::set_hook(Box::new(move |info| {
                if !is_poison_panic(info) {
                    forward(info);
                }
            }));
            quiet.1 = Some(previous);
        }
        quiet.0 += 1;
        QuietPoison(())
    }
}

impl Drop for QuietPoison {
    fn drop(&mut self) {
        let mut quiet = QUIET.lock();
        quiet.0 -= 1;
        if quiet.0 == 0
            && let Some(previous) = quiet.1.take()
        {
            // Dropping the filter releases its clone of `previous`.
            drop(std::panic::take_hook());
            if let Ok(previous) = Arc::try_unwrap(previous) {
                std::panic::set_hook(previous);
            }
        }
    }
}

fn is_poison_panic(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    payload.downcast_ref::<&str>().copied() == Some(POISON)
        || payload.downcast_ref::<String>().map(String::as_str) == Some(POISON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_job_is_lost_and_a_crashed_one_is_not() {
        let ledger = Ledger::new(200);
        for i in 0..200 {
            let job = ledger.job(i);
            match i {
                _ if job.is_poison() && i < 100 => job.fail(),
                _ if job.is_poison() => drop(job),
                _ if i % 10 == 0 => drop(job),
                _ => job.done(),
            }
        }
        let outcome = ledger.outcome();
        assert_eq!(outcome.crashed, 1);
        assert_eq!(outcome.lost_poison, 1);
        assert_eq!(outcome.lost_good, 20);
        assert_eq!(outcome.handled, 178);
        assert_eq!(outcome.accounted(), 200);
    }

    #[test]
    fn a_poison_panic_settles_its_job_as_crashed() {
        let _quiet = QuietPoison::enter();
        let ledger = Ledger::new(1);
        let job = ledger.job(42);
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.crash())).is_err());
        assert_eq!(ledger.outcome().crashed, 1);
        assert_eq!(ledger.outcome().accounted(), 1);
    }
}
