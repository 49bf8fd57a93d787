//! A supervised worker's replacement runs in the tokio task its predecessor
//! ran in (the task waits at a dock between instances): checked through
//! `tokio::task::id()`. The replacement is still a new actor, a stale
//! handle's `kill` cannot reach it, and a task no restart wants ends.

mod supervision_kit;

use std::time::Duration;

use airssys_rt::prelude::*;
use airssys_rt::supervisor::{Backoff, SupervisionEvent, SupervisionEvents};
use supervision_kit::{PATIENCE, drain, next_event, system};
use tokio::task::Id;

#[derive(Debug)]
enum Probe {
    /// Answers the id of the task it runs in.
    WhichTask(ReplyTo<Id>),
    /// Fails; `on_error` asks for a restart.
    Fail,
    /// Stops itself (reason `Normal`).
    Stop,
}

impl Message for Probe {
    const MESSAGE_TYPE: &'static str = "test.task_reuse";
}

#[derive(Debug, thiserror::Error)]
#[error("told to fail")]
struct Failed;

struct Tasked;

impl Actor for Tasked {
    type Message = Probe;
    type Error = Failed;

    async fn handle_message(
        &mut self,
        probe: Probe,
        ctx: &mut ActorContext<Probe>,
    ) -> Result<(), Failed> {
        match probe {
            Probe::WhichTask(reply) => {
                let _ = reply.reply(tokio::task::id());
            }
            Probe::Fail => return Err(Failed),
            Probe::Stop => ctx.stop(),
        }
        Ok(())
    }

    async fn on_error(&mut self, _: Failed, _: &ActorContext<Probe>) -> ErrorAction {
        ErrorAction::Restart
    }
}

async fn instance(supervisor: &SupervisorRef, id: &str) -> ActorRef<Probe> {
    supervisor
        .child::<Probe>(id)
        .await
        .expect("supervisor running")
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

async fn task_of(actor: &ActorRef<Probe>) -> Id {
    actor
        .ask(Probe::WhichTask, PATIENCE)
        .await
        .expect("answers")
}

/// Waits until the supervisor has published `kind` for `child`.
async fn wait_for(
    events: &mut SupervisionEvents,
    supervisor: &SupervisorRef,
    kind: &str,
    child: &str,
) -> SupervisionEvent {
    loop {
        let event = next_event(events, supervisor).await;
        if event.kind() == kind && event_child(&event) == child {
            return event;
        }
    }
}

fn event_child(event: &SupervisionEvent) -> &str {
    match event {
        SupervisionEvent::ChildExited { child, .. }
        | SupervisionEvent::ChildRestarted { child, .. }
        | SupervisionEvent::ChildStarted { child, .. } => child.as_str(),
        _ => "",
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Waits until the runtime runs `expected` tasks (a task ends
/// asynchronously once nothing will be handed to it). The hang guard is
/// wall-clock time: under a paused tokio clock a busy loop never lets
/// tokio's time move.
async fn settle_tasks(expected: usize) {
    let began = std::time::Instant::now();
    while alive_tasks() != expected {
        assert!(
            began.elapsed() < PATIENCE,
            "{} tasks alive, expected {expected}",
            alive_tasks()
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_replacement_reuses_its_predecessors_task_under_every_strategy() {
    for strategy in [
        SupervisionStrategy::OneForOne,
        SupervisionStrategy::OneForAll,
        SupervisionStrategy::RestForOne,
    ] {
        let system = system();
        let mut events = system.supervision_events();
        let spec = SupervisorSpec::new(strategy)
            .intensity(100, Duration::from_secs(60))
            .child(ChildSpec::worker("a", || Tasked))
            .child(ChildSpec::worker("b", || Tasked));
        let supervisor = system.start_supervisor(spec).await.expect("starts");
        let (a, b) = (
            instance(&supervisor, "a").await,
            instance(&supervisor, "b").await,
        );
        let (a_task, b_task) = (task_of(&a).await, task_of(&b).await);
        drain(&mut events);

        a.tell(Probe::Fail).await.expect("alive");
        wait_for(&mut events, &supervisor, "child_restarted", "a").await;
        supervisor.which_children().await.expect("alive");

        let (a2, b2) = (
            instance(&supervisor, "a").await,
            instance(&supervisor, "b").await,
        );
        assert_ne!(
            a2.id(),
            a.id(),
            "{strategy:?}: a replacement is a new actor"
        );
        assert_eq!(task_of(&a2).await, a_task, "{strategy:?}: a's task reused");
        assert_eq!(task_of(&b2).await, b_task, "{strategy:?}: b's task kept");
        if strategy != SupervisionStrategy::OneForOne {
            assert_ne!(b2.id(), b.id(), "{strategy:?}: b was restarted too");
        }
        system.shutdown(PATIENCE).await;
    }
}

#[tokio::test]
async fn killing_a_replaced_instance_does_not_reach_its_replacement() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::worker("w", || Tasked));
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    let old = instance(&supervisor, "w").await;
    let task = task_of(&old).await;
    drain(&mut events);

    old.tell(Probe::Fail).await.expect("alive");
    wait_for(&mut events, &supervisor, "child_restarted", "w").await;
    let new = instance(&supervisor, "w").await;
    assert_eq!(task_of(&new).await, task, "the task was reused");

    old.kill();
    assert_eq!(task_of(&new).await, task, "the replacement still answers");
    assert!(new.is_alive());
    supervisor.which_children().await.expect("alive");
    assert!(
        events.try_recv().is_none(),
        "no exit beyond the failure: the kill reached nothing"
    );
    system.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn a_task_that_no_restart_wants_ends() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .child(ChildSpec::worker("temporary", || Tasked).restart(RestartType::Temporary))
        .child(ChildSpec::worker("transient", || Tasked).restart(RestartType::Transient));
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    let running = alive_tasks();

    // Not restarted after a failure: its task ends with it.
    let temporary = instance(&supervisor, "temporary").await;
    temporary.tell(Probe::Fail).await.expect("alive");
    wait_for(&mut events, &supervisor, "child_exited", "temporary").await;
    supervisor.which_children().await.expect("alive");
    settle_tasks(running - 1).await;

    // Not restarted after a normal exit: the same.
    let transient = instance(&supervisor, "transient").await;
    transient.tell(Probe::Stop).await.expect("alive");
    wait_for(&mut events, &supervisor, "child_exited", "transient").await;
    supervisor.which_children().await.expect("alive");
    settle_tasks(running - 2).await;
    system.shutdown(PATIENCE).await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_a_backoff_delay_gets_a_task_of_its_own() {
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::worker("w", || Tasked).backoff(
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0),
        ));
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    let old = instance(&supervisor, "w").await;
    let task = task_of(&old).await;
    let running = alive_tasks();

    old.tell(Probe::Fail).await.expect("alive");
    wait_for(&mut events, &supervisor, "child_restarted", "w").await;
    let new = instance(&supervisor, "w").await;
    assert_ne!(task_of(&new).await, task, "no task waits through a backoff");
    settle_tasks(running).await;
    system.shutdown(PATIENCE).await;
}

/// A failure raced by a `kill` of the same instance from another worker
/// thread, many times over: each round ends in exactly one exit (`Error`
/// or `Killed`, whichever came first) and one restart, and the replacement
/// always answers — a kill that lands after the handover must not reach
/// the task now running the replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_racing_kills_always_leave_one_answering_replacement() {
    const ROUNDS: usize = 2_000;
    let tasks_before = alive_tasks();
    let system = system();
    let mut events = system.supervision_events();
    let spec = SupervisorSpec::one_for_one()
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(ChildSpec::worker("w", || Tasked));
    let supervisor = system.start_supervisor(spec).await.expect("starts");
    drain(&mut events);
    let mut killed = 0;
    for round in 0..ROUNDS {
        let current = instance(&supervisor, "w").await;
        let killer = tokio::spawn({
            let current = current.clone();
            async move { current.kill() }
        });
        let _ = current.tell(Probe::Fail).await;
        killer.await.expect("killer");
        match wait_for(&mut events, &supervisor, "child_exited", "w").await {
            SupervisionEvent::ChildExited { reason, .. } => match reason {
                ExitReason::Killed => killed += 1,
                ExitReason::Error(_) => {}
                other => panic!("round {round}: unexpected exit {other}"),
            },
            other => panic!("round {round}: unexpected event {other}"),
        }
        wait_for(&mut events, &supervisor, "child_restarted", "w").await;
        let replacement = instance(&supervisor, "w").await;
        task_of(&replacement).await;
        supervisor.which_children().await.expect("alive");
        assert!(
            events.try_recv().is_none(),
            "round {round}: one exit and one restart only"
        );
    }
    println!("{ROUNDS} rounds, {killed} ended by the kill");
    system.shutdown(PATIENCE).await;
    drop((supervisor, events, system));
    settle_tasks(tasks_before).await;
}
