//! 1,000 children under one one_for_one supervisor, failing at random from
//! two drivers for a few seconds: every failure yields exactly one exit and
//! one restart event, the tree ends whole, and nothing leaks.

mod supervision_kit;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airssys_rt::prelude::*;
use airssys_rt::supervisor::{ChildStatus, SupervisionEvent};
use supervision_kit::*;

const CHILDREN: usize = 1_000;
const LOAD_FOR: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_children_failing_at_random_lose_no_events_and_leak_nothing() {
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let failures = Arc::new(AtomicU64::new(0));
    let mut spec = SupervisorSpec::one_for_one().intensity(u32::MAX, Duration::from_secs(1));
    for i in 0..CHILDREN {
        spec = spec.child(worker_counting(&format!("w{i}"), &log, &failures));
    }
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    drain(&mut events);
    log.take();

    let drivers: Vec<_> = (0..2u64)
        .map(|seed| {
            let supervisor = supervisor.clone();
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed);
                let began = Instant::now();
                let mut sent = 0u64;
                while began.elapsed() < LOAD_FOR {
                    let id = format!("w{}", rng.usize(..CHILDREN));
                    // The child may be between instances; then try another.
                    let Some(child) = supervisor.child::<Cmd>(id).await.expect("alive") else {
                        continue;
                    };
                    let cmd = if rng.bool() { Cmd::Panic } else { Cmd::Fail };
                    if child.tell(cmd).await.is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let mut sent = 0;
    for driver in drivers {
        sent += driver.await.expect("driver");
    }
    assert!(sent > 0);

    // Flush: a ping answered by a child's current instance comes after every
    // command sent to it, so once each child has answered one, no further
    // failure can happen and the count is final.
    for i in 0..CHILDREN {
        loop {
            let child = supervisor
                .child::<Cmd>(format!("w{i}"))
                .await
                .expect("alive");
            if let Some(child) = child
                && child.ask(Cmd::Ping, PATIENCE).await.is_ok()
            {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let happened = failures.load(Ordering::SeqCst);

    // Every failure shows up as exactly one exit and one restart.
    let (mut exited, mut restarted) = (0u64, 0u64);
    while exited < happened || restarted < happened {
        match next_event(&mut events, &supervisor).await {
            SupervisionEvent::ChildExited { reason, .. } => {
                assert!(
                    matches!(reason, ExitReason::Panic(_) | ExitReason::Error(_)),
                    "{reason}"
                );
                exited += 1;
            }
            SupervisionEvent::ChildRestarted { .. } => restarted += 1,
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!((exited, restarted), (happened, happened));
    supervisor.which_children().await.expect("alive");
    assert!(events.try_recv().is_none(), "no event beyond the failures");
    assert!(exited > 0, "the drivers made children fail");
    println!("{exited} failures and restarts in {LOAD_FOR:?}");

    let children = supervisor.which_children().await.expect("alive");
    assert_eq!(children.len(), CHILDREN);
    assert!(children.iter().all(|c| c.status == ChildStatus::Running));
    assert_eq!(system.actor_count(), CHILDREN + 1);
    let stats = system.supervisor_stats();
    assert_eq!(stats.restarts, exited);
    assert_eq!(stats.children, CHILDREN as u64);

    let report = system.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.killed, 0);
    assert_eq!(system.actor_count(), 0);
    assert_eq!(system.supervisor_stats().children, 0);
    assert_eq!(system.supervisor_stats().supervisors, 0);
    assert_eq!(system.metrics().snapshot().alive(), 0);
    // Actor tasks end when they return; the system's own helper (the ask
    // deadline watchdog) ends when the last handle to the system is gone.
    drop((supervisor, events, system));
    tokio::time::timeout(PATIENCE, async {
        while tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            > tasks_before
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every task the system started has ended");
}
