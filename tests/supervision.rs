//! Supervision trees against OTP's rules: strategies, restart types,
//! intensity, escalation, shutdown specs, dynamic children, `ErrorAction`
//! wiring, health checks and backoff.

mod supervision_kit;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use airssys_rt::prelude::*;
use airssys_rt::supervisor::{
    Backoff, ChildCounts, ChildKind, ChildStatus, HealthCheck, SupervisionEvent, SupervisorError,
};
use airssys_rt::system::{ActorSystemHealth, HealthThresholds, HealthVerdict};
use supervision_kit::*;
use tokio::sync::Notify;

const STRATEGIES: [SupervisionStrategy; 3] = [
    SupervisionStrategy::OneForOne,
    SupervisionStrategy::OneForAll,
    SupervisionStrategy::RestForOne,
];
const RESTART_TYPES: [RestartType; 3] = [
    RestartType::Permanent,
    RestartType::Transient,
    RestartType::Temporary,
];

/// The full table: each strategy × each restart type of the failing child ×
/// each exit reason. Children a, b, c (b fails; a and c are permanent); the
/// events and the children's own log must match the OTP model exactly,
/// order included.
#[tokio::test]
async fn every_strategy_restart_type_and_exit_reason_follows_otp() {
    for strategy in STRATEGIES {
        for restart in RESTART_TYPES {
            for how in EVERY_HOW {
                let case = format!("{strategy:?} × {restart:?} × {}", how.label());
                let system = system();
                let mut events = system.supervision_events();
                let log = Log::default();
                let spec = SupervisorSpec::new(strategy)
                    .intensity(10, Duration::from_secs(3600))
                    .child(worker("a", &log))
                    .child(worker("b", &log).restart(restart))
                    .child(worker("c", &log));
                let supervisor = system.start_supervisor(spec).await.expect(&case);
                assert_eq!(log.take(), ["start a", "start b", "start c"], "{case}");
                while events.try_recv().is_some() {}

                let mut model = Model::new(
                    strategy,
                    10,
                    &[
                        ("a", RestartType::Permanent),
                        ("b", restart),
                        ("c", RestartType::Permanent),
                    ],
                );
                let expected = model.fail("b", how);
                let seen = fail_and_settle(&supervisor, &mut events, "b", how).await;
                assert_eq!(seen, expected, "events for {case}");
                assert_eq!(log.take(), log_of(&expected), "log for {case}");

                let children = supervisor.which_children().await.expect(&case);
                let ids: Vec<&str> = children.iter().map(|c| c.id.as_str()).collect();
                let model_ids: Vec<&str> = model.children.iter().map(|c| c.0.as_str()).collect();
                assert_eq!(ids, model_ids, "children kept for {case}");
                for (child, modelled) in children.iter().zip(&model.children) {
                    let status = if modelled.2 {
                        ChildStatus::Running
                    } else {
                        ChildStatus::Stopped
                    };
                    assert_eq!(child.status, status, "{} in {case}", child.id);
                }
                system.shutdown(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Temporary siblings inside a group restart are stopped and removed.
#[tokio::test]
async fn group_restarts_remove_temporary_siblings() {
    for strategy in [
        SupervisionStrategy::OneForAll,
        SupervisionStrategy::RestForOne,
    ] {
        let system = system();
        let mut events = system.supervision_events();
        let log = Log::default();
        let spec = SupervisorSpec::new(strategy)
            .intensity(5, Duration::from_secs(60))
            .child(worker("a", &log))
            .child(worker("t", &log).restart(RestartType::Temporary))
            .child(worker("c", &log));
        let supervisor = system.start_supervisor(spec).await.unwrap();
        drain(&mut events);
        let seen = fail_and_settle(&supervisor, &mut events, "a", How::Panic).await;
        let expected = [
            "exited a panic",
            "exited c shutdown",
            "exited t shutdown",
            "restarted a",
            "restarted c",
        ];
        assert_eq!(seen, expected, "{strategy:?}");
        let ids: Vec<_> = supervisor
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id.to_string())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        system.shutdown(Duration::from_secs(5)).await;
    }
}

/// OTP starts every child of a group again, including one that was not
/// running (here: a transient child that had stopped normally).
#[tokio::test]
async fn group_restarts_also_start_children_that_were_stopped() {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_all()
        .intensity(5, Duration::from_secs(60))
        .child(worker("a", &log).restart(RestartType::Transient))
        .child(worker("b", &log));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    assert_eq!(
        fail_and_settle(&supervisor, &mut events, "a", How::Normal).await,
        ["exited a normal"]
    );
    assert_eq!(
        fail_and_settle(&supervisor, &mut events, "b", How::Panic).await,
        ["exited b panic", "restarted a", "restarted b"]
    );
    system.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn exactly_max_restarts_within_the_period_are_tolerated_and_one_more_gives_up() {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_one()
        .name("root")
        .intensity(3, Duration::from_secs(10))
        .child(worker("a", &log))
        .child(worker("b", &log));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    for _ in 0..3 {
        let seen = fail_and_settle(&supervisor, &mut events, "b", How::Panic).await;
        assert_eq!(seen, ["exited b panic", "restarted b"]);
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let seen = fail_and_settle(&supervisor, &mut events, "b", How::Panic).await;
    assert_eq!(seen, ["exited b panic", "gave up", "exited a shutdown"]);
    assert_eq!(supervisor.wait_for_exit().await, ExitReason::Shutdown);
    let failures = system.root_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].supervisor, supervisor.id());
    assert_eq!(failures[0].name.as_deref(), Some("root"));
    assert_eq!(
        system.actor_count(),
        0,
        "children stopped with the supervisor"
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_spaced_wider_than_the_period_never_accumulate() {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_one()
        .intensity(1, Duration::from_secs(5))
        .child(worker("a", &log));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    for _ in 0..20 {
        let seen = fail_and_settle(&supervisor, &mut events, "a", How::Error).await;
        assert_eq!(seen, ["exited a error", "restarted a"]);
        tokio::time::advance(Duration::from_secs(6)).await;
    }
    assert!(supervisor.is_alive());
    // Two inside one window is one too many.
    fail_and_settle(&supervisor, &mut events, "a", How::Error).await;
    let seen = fail_and_settle(&supervisor, &mut events, "a", How::Error).await;
    assert_eq!(seen, ["exited a error", "gave up"]);
    assert_eq!(system.supervisor_stats().gave_up, 1);
}

/// root (intensity 0) ← mid (intensity 1) ← leaf (intensity 0) ← worker.
/// The first worker crash makes the leaf give up; mid restarts it. The
/// second climbs: leaf gives up, mid exceeds its intensity and gives up,
/// root gives up, and the system records the root failure.
#[tokio::test]
async fn escalation_climbs_three_levels_to_the_system() {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let leaf = SupervisorSpec::one_for_one()
        .intensity(0, Duration::from_secs(60))
        .child(worker("w", &log));
    let mid = SupervisorSpec::one_for_one()
        .intensity(1, Duration::from_secs(60))
        .child(ChildSpec::supervisor("leaf", leaf));
    let root_spec = SupervisorSpec::one_for_one()
        .name("root")
        .intensity(0, Duration::from_secs(60))
        .child(ChildSpec::supervisor("mid", mid))
        .child(worker("sibling", &log));
    let root = system.start_supervisor(root_spec).await.unwrap();
    assert_eq!(log.take(), ["start w", "start sibling"]);
    let mid = root.child_supervisor("mid").await.unwrap().unwrap();
    let leaf = mid.child_supervisor("leaf").await.unwrap().unwrap();
    while events.try_recv().is_some() {}

    trigger(&leaf, "w", How::Panic).await;
    assert_eq!(leaf.wait_for_exit().await, ExitReason::Shutdown);
    // mid restarts the leaf: wait for that, then crash its new worker.
    loop {
        let event = next_event(&mut events, &mid).await;
        if compact(&event) == "restarted leaf" {
            break;
        }
    }
    assert!(mid.is_alive() && root.is_alive());
    let leaf = mid.child_supervisor("leaf").await.unwrap().unwrap();
    trigger(&leaf, "w", How::Panic).await;
    assert_eq!(root.wait_for_exit().await, ExitReason::Shutdown);

    let mut gave_up = Vec::new();
    while let Some(event) = events.try_recv() {
        if let SupervisionEvent::SupervisorGaveUp { supervisor, .. } = event {
            gave_up.push(supervisor);
        }
    }
    assert_eq!(
        gave_up,
        [leaf.id(), mid.id(), root.id()],
        "leaf, then mid, then root"
    );
    let failures = system.root_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].supervisor, root.id());
    assert_eq!(system.actor_count(), 0);
    let health = ActorSystemHealth::new(system.clone(), HealthThresholds::default());
    let status = health.health_check().await;
    assert_eq!(status.verdict, HealthVerdict::Unhealthy, "{status}");
    assert_eq!(status.supervisor_stats.gave_up, 4, "leaf twice, mid, root");
    assert!(
        log.take()
            .ends_with(&["stop w".to_owned(), "stop sibling".to_owned()])
    );
}

/// A child whose `post_stop` never finishes until `release` is notified.
struct Stubborn {
    release: Arc<Notify>,
}

impl Actor for Stubborn {
    type Message = u64;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Infallible> {
        Ok(())
    }
    async fn post_stop(&mut self, _: &ActorContext<u64>) -> Result<(), Infallible> {
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_stop_is_killed_after_its_shutdown_timeout() {
    let system = system();
    let mut events = system.supervision_events();
    let release = Arc::new(Notify::new());
    let stubborn = {
        let release = release.clone();
        ChildSpec::worker("stubborn", move || Stubborn {
            release: release.clone(),
        })
        .shutdown(ChildShutdown::Timeout(Duration::from_secs(2)))
    };
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(stubborn))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    supervisor.terminate_child("stubborn").await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "killed when the timeout passed"
    );
    let mut exit = None;
    while let Some(event) = events.try_recv() {
        if let SupervisionEvent::ChildExited { reason, .. } = event {
            exit = Some(reason);
        }
    }
    assert_eq!(exit, Some(ExitReason::Killed));
}

#[tokio::test(start_paused = true)]
async fn infinity_waits_for_the_child_however_long_it_takes() {
    let system = system();
    let release = Arc::new(Notify::new());
    let stubborn = {
        let release = release.clone();
        ChildSpec::worker("stubborn", move || Stubborn {
            release: release.clone(),
        })
        .shutdown(ChildShutdown::Infinity)
    };
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(stubborn))
        .await
        .unwrap();
    let child = supervisor.child::<u64>("stubborn").await.unwrap().unwrap();
    let terminate = tokio::spawn({
        let supervisor = supervisor.clone();
        async move { supervisor.terminate_child("stubborn").await }
    });
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    tokio::task::yield_now().await;
    assert!(!terminate.is_finished(), "still waiting after a day");
    release.notify_one();
    terminate.await.unwrap().unwrap();
    assert_eq!(child.wait_for_exit().await, ExitReason::Shutdown);
}

#[tokio::test]
async fn brutal_kill_skips_post_stop() {
    let system = system();
    let log = Log::default();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .child(worker("a", &log).shutdown(ChildShutdown::BrutalKill)),
        )
        .await
        .unwrap();
    let child = current(&supervisor, "a").await;
    supervisor.terminate_child("a").await.unwrap();
    assert_eq!(child.exit_reason(), Some(ExitReason::Killed));
    assert_eq!(log.take(), ["start a"]);
}

#[tokio::test]
async fn dynamic_children_start_terminate_restart_delete_and_count() {
    let system = system();
    let log = Log::default();
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(worker("a", &log)))
        .await
        .unwrap();
    let b = supervisor.start_child(worker("b", &log)).await.unwrap();
    assert_eq!(
        supervisor.start_child(worker("b", &log)).await,
        Err(SupervisorError::DuplicateChild { child: "b".into() })
    );
    supervisor
        .start_child(ChildSpec::supervisor(
            "nested",
            SupervisorSpec::one_for_one(),
        ))
        .await
        .unwrap();
    assert_eq!(
        supervisor.count_children().await.unwrap(),
        ChildCounts {
            specs: 3,
            active: 3,
            supervisors: 1,
            workers: 2
        }
    );
    assert_eq!(
        supervisor.delete_child("b").await,
        Err(SupervisorError::ChildRunning { child: "b".into() })
    );
    supervisor.terminate_child("b").await.unwrap();
    let info = supervisor.which_children().await.unwrap();
    assert_eq!(info[1].status, ChildStatus::Stopped);
    assert_eq!(info[1].actor, None);
    assert_eq!(info[2].kind, ChildKind::Supervisor);
    let b2 = supervisor.restart_child("b").await.unwrap();
    assert_ne!(b, b2, "a restart is a new actor");
    assert_eq!(current(&supervisor, "b").await.id(), b2);
    supervisor.terminate_child("b").await.unwrap();
    supervisor.delete_child("b").await.unwrap();
    assert_eq!(
        supervisor.restart_child("b").await,
        Err(SupervisorError::UnknownChild { child: "b".into() })
    );
    assert_eq!(supervisor.count_children().await.unwrap().specs, 2);
    assert_eq!(
        log.take(),
        ["start a", "start b", "stop b", "start b", "stop b"]
    );
    assert!(
        supervisor.child::<u64>("a").await.unwrap().is_none(),
        "wrong message type"
    );
}

#[tokio::test]
async fn a_temporary_child_terminated_by_request_is_removed() {
    let system = system();
    let log = Log::default();
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one())
        .await
        .unwrap();
    supervisor
        .start_child(worker("t", &log).restart(RestartType::Temporary))
        .await
        .unwrap();
    supervisor.terminate_child("t").await.unwrap();
    assert_eq!(supervisor.count_children().await.unwrap().specs, 0);
}

/// A child whose `pre_start` fails.
struct Broken;

impl Actor for Broken {
    type Message = u64;
    type Error = std::io::Error;
    async fn pre_start(&mut self, _: &mut ActorContext<u64>) -> Result<(), std::io::Error> {
        Err(std::io::Error::other("no database"))
    }
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), std::io::Error> {
        Ok(())
    }
}

#[tokio::test]
async fn a_child_that_cannot_start_fails_the_supervisor_start_and_stops_the_others() {
    let system = system();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_one()
        .name("app")
        .child(worker("a", &log))
        .child(ChildSpec::worker("db", || Broken))
        .child(worker("c", &log));
    let error = system.start_supervisor(spec).await.unwrap_err();
    match &error {
        SupervisorError::SupervisorStartFailed { supervisor, reason } => {
            assert_eq!(supervisor, "app");
            assert!(reason.to_string().contains("no database"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        log.take(),
        ["start a", "stop a"],
        "c never started, a stopped"
    );
    assert_eq!(system.actor_count(), 0);

    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one())
        .await
        .unwrap();
    let error = supervisor
        .start_child(ChildSpec::worker("db", || Broken))
        .await
        .unwrap_err();
    assert!(matches!(error, SupervisorError::StartFailed { ref child, .. } if child == "db"));
    assert_eq!(
        supervisor.count_children().await.unwrap().specs,
        0,
        "not kept"
    );
}

#[tokio::test]
async fn duplicate_child_ids_in_a_spec_are_refused() {
    let system = system();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_one()
        .child(worker("a", &log))
        .child(worker("a", &log));
    assert!(matches!(
        system.start_supervisor(spec).await,
        Err(SupervisorError::SupervisorStartFailed { .. })
    ));
    assert_eq!(system.actor_count(), 0);
}

#[derive(Debug)]
enum Op {
    Add(u64),
    Fail(ErrorAction),
    Total(ReplyTo<u64>),
}
impl Message for Op {
    const MESSAGE_TYPE: &'static str = "test.op";
}

#[derive(Debug, thiserror::Error)]
#[error("op failed")]
struct OpFailed(ErrorAction);

struct Adder(u64);
impl Actor for Adder {
    type Message = Op;
    type Error = OpFailed;
    async fn handle_message(&mut self, op: Op, _: &mut ActorContext<Op>) -> Result<(), OpFailed> {
        match op {
            Op::Add(n) => self.0 += n,
            Op::Fail(action) => return Err(OpFailed(action)),
            Op::Total(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
    async fn on_error(&mut self, error: OpFailed, _: &ActorContext<Op>) -> ErrorAction {
        error.0
    }
}

/// `Resume` keeps the state; `Restart` goes through the supervisor (a fresh
/// actor, a counted restart); `Stop` is a normal exit (a transient child
/// stays down); `Escalate` is abnormal (a transient child is restarted).
#[tokio::test]
async fn error_actions_are_wired_into_supervision() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(10, Duration::from_secs(60))
        .child(ChildSpec::worker("adder", || Adder(0)).restart(RestartType::Transient));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    let total = |adder: ActorRef<Op>| async move { adder.ask(Op::Total, PATIENCE).await.unwrap() };
    let adder = supervisor.child::<Op>("adder").await.unwrap().unwrap();
    adder.tell(Op::Add(5)).await.unwrap();
    adder.tell(Op::Fail(ErrorAction::Resume)).await.unwrap();
    assert_eq!(total(adder.clone()).await, 5, "resume keeps state");

    adder.tell(Op::Fail(ErrorAction::Restart)).await.unwrap();
    let seen = [
        next_event(&mut events, &supervisor).await,
        next_event(&mut events, &supervisor).await,
    ];
    let seen: Vec<_> = seen.iter().map(compact).collect();
    assert_eq!(seen, ["exited adder error", "restarted adder"]);
    let adder = supervisor.child::<Op>("adder").await.unwrap().unwrap();
    assert_eq!(total(adder.clone()).await, 0, "a fresh actor");
    assert_eq!(system.supervisor_stats().restarts, 1);

    adder.tell(Op::Fail(ErrorAction::Escalate)).await.unwrap();
    let seen = [
        next_event(&mut events, &supervisor).await,
        next_event(&mut events, &supervisor).await,
    ];
    let seen: Vec<_> = seen.iter().map(compact).collect();
    assert_eq!(seen, ["exited adder escalated", "restarted adder"]);

    let adder = supervisor.child::<Op>("adder").await.unwrap().unwrap();
    adder.tell(Op::Fail(ErrorAction::Stop)).await.unwrap();
    assert_eq!(
        compact(&next_event(&mut events, &supervisor).await),
        "exited adder normal"
    );
    let info = supervisor.which_children().await.unwrap();
    assert_eq!(
        info[0].status,
        ChildStatus::Stopped,
        "transient: a normal stop is final"
    );
}

/// A child that answers health probes while `healthy` says so.
struct Patient {
    healthy: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug)]
struct Probe(ReplyTo<bool>);
impl Message for Probe {
    const MESSAGE_TYPE: &'static str = "test.probe";
}

impl Actor for Patient {
    type Message = Probe;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        Probe(reply): Probe,
        _: &mut ActorContext<Probe>,
    ) -> Result<(), Infallible> {
        let _ = reply.reply(self.healthy.load(Ordering::SeqCst));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_child_is_restarted_after_its_failure_threshold() {
    let system = system();
    let mut events = system.supervision_events();
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probes = Arc::new(AtomicU32::new(0));
    let spec = {
        let (healthy, probes) = (healthy.clone(), probes.clone());
        ChildSpec::worker("patient", move || Patient {
            healthy: healthy.clone(),
        })
        .health_check(
            HealthCheck::every(Duration::from_secs(1))
                .timeout(Duration::from_millis(100))
                .failures(3),
            move |patient| {
                probes.fetch_add(1, Ordering::SeqCst);
                async move {
                    patient
                        .ask(Probe, Duration::from_secs(10))
                        .await
                        .unwrap_or(false)
                }
            },
        )
    };
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .intensity(5, Duration::from_secs(60))
                .child(spec),
        )
        .await
        .unwrap();
    let first = supervisor.child::<Probe>("patient").await.unwrap().unwrap();
    while events.try_recv().is_some() {}
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(probes.load(Ordering::SeqCst) >= 9, "probed every second");
    assert!(first.is_alive(), "healthy children are left alone");

    healthy.store(false, Ordering::SeqCst);
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("restarted patient") {
        seen.push(compact(&next_event(&mut events, &supervisor).await));
    }
    // The child really exits with `Shutdown` (stopped by its spec); the
    // supervisor handles that as a failure because it was unhealthy.
    assert_eq!(
        seen,
        [
            "unhealthy patient",
            "exited patient shutdown",
            "restarted patient"
        ]
    );
    assert!(!first.is_alive());
    assert_eq!(system.supervisor_stats().unhealthy, 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_delays_restarts_exponentially_and_still_counts_them() {
    let system = system();
    let mut events = system.supervision_events();
    let log = Log::default();
    let spec = SupervisorSpec::one_for_one()
        .intensity(3, Duration::from_secs(3600))
        .child(worker("a", &log).backoff(
            Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)).jitter(0.0),
        ));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    for expected_delay in [1, 2, 4] {
        trigger(&supervisor, "a", How::Panic).await;
        assert_eq!(
            compact(&next_event(&mut events, &supervisor).await),
            "exited a panic"
        );
        let failed_at = tokio::time::Instant::now();
        let status = supervisor.which_children().await.unwrap()[0].status;
        assert_eq!(status, ChildStatus::Restarting);
        assert_eq!(
            compact(&next_event(&mut events, &supervisor).await),
            "restarted a"
        );
        assert_eq!(failed_at.elapsed(), Duration::from_secs(expected_delay));
    }
    trigger(&supervisor, "a", How::Panic).await;
    assert_eq!(
        supervisor.wait_for_exit().await,
        ExitReason::Shutdown,
        "the fourth exceeds 3"
    );
}

#[tokio::test]
async fn system_shutdown_stops_the_tree_top_down_in_reverse_start_order() {
    let system = system();
    let log = Log::default();
    let inner = SupervisorSpec::one_for_one()
        .child(worker("x", &log))
        .child(worker("y", &log));
    let spec = SupervisorSpec::one_for_one()
        .child(worker("a", &log))
        .child(ChildSpec::supervisor("inner", inner))
        .child(worker("c", &log));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    let plain = system.spawn(Adder(0)).unwrap();
    assert_eq!(log.take(), ["start a", "start x", "start y", "start c"]);
    let report = system.shutdown(Duration::from_secs(10)).await;
    assert_eq!(log.take(), ["stop c", "stop y", "stop x", "stop a"]);
    assert_eq!(report.killed, 0);
    assert_eq!(report.actors, 7);
    assert_eq!(report.stopped_cleanly, 7);
    assert_eq!(supervisor.exit_reason(), Some(ExitReason::Shutdown));
    assert_eq!(plain.exit_reason(), Some(ExitReason::Shutdown));
    assert!(
        system.root_failures().is_empty(),
        "a shutdown is not a failure"
    );
    let stats = system.supervisor_stats();
    assert_eq!(
        (stats.supervisors, stats.children, stats.restarts),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn killing_a_supervisor_kills_its_children() {
    let system = system();
    let log = Log::default();
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(worker("a", &log)))
        .await
        .unwrap();
    let child = current(&supervisor, "a").await;
    supervisor.kill();
    assert_eq!(supervisor.wait_for_exit().await, ExitReason::Killed);
    assert_eq!(child.wait_for_exit().await, ExitReason::Killed);
    assert_eq!(
        supervisor.which_children().await,
        Err(SupervisorError::NotRunning {
            supervisor: supervisor.id()
        })
    );
}

#[tokio::test]
async fn a_shut_down_supervisor_reports_shutdown_and_stops_its_children() {
    let system = system();
    let log = Log::default();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::rest_for_one()
                .child(worker("a", &log))
                .child(worker("b", &log)),
        )
        .await
        .unwrap();
    assert_eq!(supervisor.shutdown().await, ExitReason::Shutdown);
    assert_eq!(log.take(), ["start a", "start b", "stop b", "stop a"]);
    assert_eq!(system.actor_count(), 0);
}

/// A child whose `pre_start` fails on the starts listed in `failing`
/// (counting from 1) and which panics when told anything.
struct Flaky {
    starts: Arc<AtomicU32>,
    failing: std::ops::Range<u32>,
}

impl Actor for Flaky {
    type Message = u64;
    type Error = std::io::Error;
    async fn pre_start(&mut self, _: &mut ActorContext<u64>) -> Result<(), std::io::Error> {
        let start = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if self.failing.contains(&start) {
            return Err(std::io::Error::other(format!("start {start} refused")));
        }
        Ok(())
    }
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), std::io::Error> {
        panic!("told to crash");
    }
}

fn flaky(failing: std::ops::Range<u32>) -> airssys_rt::supervisor::WorkerSpec<Flaky> {
    let starts = Arc::new(AtomicU32::new(0));
    ChildSpec::worker("flaky", move || Flaky {
        starts: starts.clone(),
        failing: failing.clone(),
    })
}

/// As OTP's `try_again_restart`: a restart whose start fails is tried again
/// through the strategy, each attempt counted toward intensity.
#[tokio::test]
async fn a_restart_that_cannot_start_is_retried_until_it_starts() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(3, Duration::from_secs(3600))
        .child(flaky(2..4));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    let child = supervisor.child::<u64>("flaky").await.unwrap().unwrap();
    child.tell(1).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("restarted flaky") {
        seen.push(compact(&next_event(&mut events, &supervisor).await));
    }
    assert_eq!(
        seen,
        [
            "exited flaky panic",
            "start failed flaky error",
            "start failed flaky error",
            "restarted flaky"
        ]
    );
    assert!(
        supervisor.is_alive(),
        "three restarts are within the intensity"
    );
}

#[tokio::test]
async fn a_restart_that_never_starts_exhausts_the_intensity() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(3, Duration::from_secs(3600))
        .child(flaky(2..u32::MAX));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    drain(&mut events);
    let child = supervisor.child::<u64>("flaky").await.unwrap().unwrap();
    child.tell(1).await.unwrap();
    assert_eq!(supervisor.wait_for_exit().await, ExitReason::Shutdown);
    let mut seen = Vec::new();
    while let Some(event) = events.try_recv() {
        seen.push(compact(&event));
    }
    assert_eq!(
        seen,
        [
            "exited flaky panic",
            "start failed flaky error",
            "start failed flaky error",
            "start failed flaky error",
            "gave up"
        ]
    );
    assert_eq!(system.supervisor_stats().child_failures, 4);
}

/// Announces its handle from `pre_start`.
struct Announcer(tokio::sync::mpsc::UnboundedSender<ActorRef<()>>);

impl Actor for Announcer {
    type Message = ();
    type Error = Infallible;
    async fn pre_start(&mut self, ctx: &mut ActorContext<()>) -> Result<(), Infallible> {
        let _ = self.0.send(ctx.myself().clone());
        Ok(())
    }
    async fn handle_message(&mut self, _: (), _: &mut ActorContext<()>) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Never finishes `pre_start`.
struct Stuck;

impl Actor for Stuck {
    type Message = ();
    type Error = Infallible;
    async fn pre_start(&mut self, _: &mut ActorContext<()>) -> Result<(), Infallible> {
        std::future::pending().await
    }
    async fn handle_message(&mut self, _: (), _: &mut ActorContext<()>) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A root supervisor starts in the task awaiting `start_supervisor`:
/// dropping that future mid-start kills the supervisor and every child it
/// had started, and leaves nothing running.
#[tokio::test]
async fn abandoning_a_supervisor_start_kills_what_it_had_started() {
    let system = system();
    let (announce, mut announced) = tokio::sync::mpsc::unbounded_channel();
    let spec = SupervisorSpec::one_for_one()
        .child(ChildSpec::worker("first", move || {
            Announcer(announce.clone())
        }))
        .child(ChildSpec::worker("stuck", || Stuck));
    let first = tokio::select! {
        _ = system.start_supervisor(spec) => panic!("the stuck child never starts"),
        Some(first) = announced.recv() => first,
    };
    assert_eq!(first.wait_for_exit().await, ExitReason::Killed);
    assert_eq!(system.actor_count(), 0);
}

/// A factory that panics is named as such, at the first start (where the
/// root supervisor, not a "child", is what could not start) and when a
/// restart builds the child again.
#[tokio::test]
async fn a_panicking_factory_is_reported_as_such() {
    let system = system();
    let spec = SupervisorSpec::one_for_one()
        .name("app")
        .child(ChildSpec::worker("w", || -> Broken { panic!("boom") }));
    let error = system.start_supervisor(spec).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("supervisor 'app' could not start")
            && text.contains("child 'w' failed to start: panic: factory panicked: boom"),
        "{text}"
    );

    struct Quiet;
    impl Actor for Quiet {
        type Message = u64;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            _: u64,
            _: &mut ActorContext<u64>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }
    let builds = Arc::new(AtomicU32::new(0));
    let counted = builds.clone();
    let spec = SupervisorSpec::one_for_one().child(ChildSpec::worker("w", move || {
        if counted.fetch_add(1, Ordering::SeqCst) > 0 {
            panic!("boom again");
        }
        Quiet
    }));
    let supervisor = system.start_supervisor(spec).await.unwrap();
    supervisor.terminate_child("w").await.unwrap();
    let error = supervisor.restart_child("w").await.unwrap_err();
    assert!(
        matches!(&error, SupervisorError::StartFailed { child, .. } if child == "w"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("factory panicked: boom again"),
        "{error}"
    );
}
