//! Every implementation, on every runtime it supports, processes exactly the
//! expected number of operations for every workload (tiny sizes). A workload
//! that skips work fails here instead of winning the benchmark.

mod support;

use airssys_rt_compare::driver::{Contender, Flavor};
use airssys_rt_compare::internal::Internal;
use airssys_rt_compare::memory::Counting;
use airssys_rt_compare::workload::{Sizes, Workload};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Good jobs each contender's crash-recovery pool may lose (`None`: any
/// number, reported in the results but not held against it here).
fn allowed_losses(contender: Contender) -> Option<u64> {
    match contender {
        // Work sharing loses only the poison job a member crashed on; the
        // factory keeps its queue; actix restarts in place, mailbox kept; the
        // floor catches the panic.
        Contender::Airssys | Contender::Ractor | Contender::Actix | Contender::RawTokio => Some(0),
        // Its pool drops the jobs queued for a member that died, and can stop
        // itself (see `kameo_impl`).
        Contender::Kameo => None,
    }
}

fn check(contender: Contender) {
    for flavor in Flavor::ALL.into_iter().filter(|f| contender.runs_on(*f)) {
        for workload in Workload::ALL {
            // `measure` itself asserts `processed == expected`; check it again
            // here so the test names what it guarantees.
            let sample = contender.measure(flavor, workload, Sizes::TINY);
            assert_eq!(
                sample.processed,
                Sizes::TINY.ops(workload),
                "{} {workload:?} on {flavor:?}",
                contender.name()
            );
            if workload == Workload::CrashRecovery {
                let lost = sample.secondary.expect("lost good jobs reported");
                if let Some(allowed) = allowed_losses(contender) {
                    assert!(
                        lost <= allowed as f64,
                        "{} lost {lost} good jobs on {flavor:?}",
                        contender.name()
                    );
                }
            }
            // Heap figures are meaningless here: the tests run in parallel
            // threads sharing one counting allocator. Times must be positive.
            if workload != Workload::IdleMemory {
                assert!(
                    sample.value > 0.0,
                    "{} {workload:?} reported no cost",
                    contender.name()
                );
            }
        }
    }
}

#[test]
fn airssys_rt_processes_everything() {
    check(Contender::Airssys);
}

#[test]
fn airssys_rt_only_workloads_process_everything() {
    for workload in Internal::ALL {
        support::variants_do_all_their_work(*workload);
    }
}

#[test]
fn ractor_processes_everything() {
    check(Contender::Ractor);
}

#[test]
fn kameo_processes_everything() {
    check(Contender::Kameo);
}

#[test]
fn actix_processes_everything() {
    check(Contender::Actix);
}

#[test]
fn raw_tokio_processes_everything() {
    check(Contender::RawTokio);
}

#[test]
fn a_pool_that_loses_jobs_ends_and_reports_them() {
    use airssys_rt_compare::jobs::{Ledger, is_poison};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let ledger = Ledger::new(300);
        let mut stuck = Vec::new();
        for i in 0..300 {
            let job = ledger.job(i);
            match i {
                _ if is_poison(i) => job.fail(),
                // Dropped unhandled: lost at once.
                0..100 => drop(job),
                // Held forever: lost once nothing moves for a while.
                100..150 => stuck.push(job),
                _ => job.done(),
            }
        }
        let (outcome, _) = ledger.wait().await;
        drop(stuck);
        outcome
    });
    assert_eq!(outcome.crashed, 3);
    assert_eq!(outcome.lost_good, 148);
    assert_eq!(outcome.handled, 149);
    assert_eq!(outcome.accounted(), 300);
}

#[test]
fn a_run_that_skips_work_is_rejected() {
    let caught = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(airssys_rt_compare::workload::run::<Skipper>(
            Workload::Tell,
            Sizes::TINY,
        ))
    });
    assert!(
        caught.is_err(),
        "a sample with fewer processed operations must fail"
    );
}

/// A "framework" that claims to be done after doing half the work.
struct Skipper;

impl airssys_rt_compare::workload::Framework for Skipper {
    const NAME: &'static str = "skipper";
    async fn tell(n: u64) -> airssys_rt_compare::workload::Sample {
        airssys_rt_compare::workload::Sample::per_op(std::time::Duration::from_millis(1), n / 2)
    }
    async fn fan_out(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn ask(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn spawn_stop(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn idle_memory(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn ping_pong(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn thread_ring(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn counting(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn fork_join(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn restart(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn pool_throughput(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
    async fn crash_recovery(n: u64) -> airssys_rt_compare::workload::Sample {
        Self::tell(n).await
    }
}
