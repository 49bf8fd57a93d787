//! Lifecycle: panics in every hook, error actions, restarts, stopping with a
//! full queue, and a stress run of the stop/send race.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use airssys_rt::actor::ActorState;
use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use support::{Cmd, PATIENCE, PanicIn, Probe, Seen, hold, system};

#[tokio::test]
async fn a_panic_in_handle_message_becomes_the_exit_reason() {
    let system = system();
    let seen = Seen::new();
    let probe = system.spawn(Probe::new(&seen)).unwrap();
    let open = hold(&probe).await;
    probe
        .tell(Cmd::Panic("boom in handler".into()))
        .await
        .unwrap();
    let pending = tokio::spawn({
        let probe = probe.clone();
        async move { probe.ask(Cmd::Log, PATIENCE).await }
    });
    while probe.mailbox_len() < 2 {
        tokio::task::yield_now().await;
    }
    let _ = open.send(());
    assert_eq!(
        probe.wait_for_exit().await,
        ExitReason::Panic("boom in handler".into())
    );
    assert_eq!(
        pending.await.unwrap().unwrap_err(),
        AskError::NoReply { actor: probe.id() }
    );
    assert_eq!(
        seen.post_stops(),
        1,
        "post_stop still runs after a handler panic"
    );
    assert_eq!(system.metrics().snapshot().panics, 1);
    assert_eq!(probe.state(), ActorState::Stopped);
}

#[tokio::test]
async fn a_panic_in_pre_start_becomes_the_exit_reason() {
    let system = system();
    let seen = Seen::new();
    let mut probe = Probe::new(&seen);
    probe.panic_in = PanicIn::PreStart;
    let probe = system.spawn(probe).unwrap();
    let pending = probe.ask(Cmd::Log, PATIENCE).await;
    assert!(matches!(
        pending,
        Err(AskError::NoReply { .. } | AskError::ActorStopped { .. })
    ));
    assert_eq!(
        probe.wait_for_exit().await,
        ExitReason::Panic("pre_start exploded".into())
    );
    assert_eq!(
        seen.post_stops(),
        0,
        "post_stop does not run when pre_start failed"
    );
}

#[tokio::test]
async fn a_panic_in_post_stop_becomes_the_exit_reason() {
    let system = system();
    let seen = Seen::new();
    let mut probe = Probe::new(&seen);
    probe.panic_in = PanicIn::PostStop;
    let probe = system.spawn(probe).unwrap();
    probe.stop();
    assert_eq!(
        probe.wait_for_exit().await,
        ExitReason::Panic("post_stop exploded".into())
    );
}

#[tokio::test]
async fn restart_builds_a_fresh_actor_and_keeps_the_queue() {
    let system = system();
    let seen = Seen::new();
    let factory_seen = seen.clone();
    let probe = system
        .spawn_builder()
        .spawn_with_factory(move || {
            let mut probe = Probe::new(&factory_seen);
            probe.on_error = ErrorAction::Restart;
            probe
        })
        .unwrap();
    let open = hold(&probe).await;
    // A held reply port lives in the actor's state: a restart drops it.
    let held = tokio::spawn({
        let probe = probe.clone();
        async move { probe.ask(Cmd::Hold, PATIENCE).await }
    });
    while probe.mailbox_len() == 0 {
        tokio::task::yield_now().await;
    }
    probe.tell(Cmd::Fail(1)).await.unwrap();
    probe.tell(Cmd::Record(42)).await.unwrap();
    let _ = open.send(());
    assert_eq!(
        held.await.unwrap().unwrap_err(),
        AskError::NoReply { actor: probe.id() }
    );
    assert_eq!(
        probe.ask(Cmd::Log, PATIENCE).await.unwrap(),
        vec![42],
        "the queued message survived the restart"
    );
    assert_eq!(seen.pre_starts(), 2);
    assert_eq!(seen.post_stops(), 1, "the old instance ran post_stop");
    assert_eq!(system.metrics().snapshot().restarts, 1);
    assert!(probe.is_alive());
}

#[tokio::test]
async fn restart_without_a_factory_stops_with_a_clear_error() {
    let system = system();
    let mut probe = Probe::new(&Seen::new());
    probe.on_error = ErrorAction::Restart;
    let probe = system.spawn(probe).unwrap();
    probe.tell(Cmd::Fail(1)).await.unwrap();
    match probe.wait_for_exit().await {
        ExitReason::Error(text) => assert!(text.contains("spawn_with_factory"), "{text}"),
        other => panic!("unexpected exit {other}"),
    }
}

#[tokio::test]
async fn error_action_stop_is_normal_and_escalate_carries_the_error_text() {
    let system = system();
    for (action, expected) in [
        (ErrorAction::Stop, ExitReason::Normal),
        (
            ErrorAction::Escalate,
            ExitReason::Escalated("probe failure 5".into()),
        ),
    ] {
        let mut probe = Probe::new(&Seen::new());
        probe.on_error = action;
        let probe = system.spawn(probe).unwrap();
        probe.tell(Cmd::Fail(5)).await.unwrap();
        assert_eq!(probe.wait_for_exit().await, expected);
    }
}

#[tokio::test]
async fn stopping_with_queued_messages_accounts_for_every_one() {
    let system = system();
    let seen = Seen::new();
    let probe = system.spawn(Probe::new(&seen)).unwrap();
    let open = hold(&probe).await;
    const QUEUED: u64 = 1_000;
    for v in 0..QUEUED {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    probe.stop();
    let _ = open.send(());
    assert_eq!(probe.wait_for_exit().await, ExitReason::Normal);
    let handled = seen.log().len() as u64;
    let dead = system.dead_letters().count(DeadLetterReason::ActorStopped);
    assert_eq!(handled + dead, QUEUED);
    assert_eq!(
        handled, 0,
        "the stop signal is served before queued messages"
    );
}

#[tokio::test]
async fn a_killed_actor_skips_post_stop_and_its_queue_becomes_dead_letters() {
    let system = system();
    let seen = Seen::new();
    let probe = system.spawn(Probe::new(&seen)).unwrap();
    // The actor is parked inside a handler that would never finish by itself.
    let _never_opened = hold(&probe).await;
    for v in 0..5 {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    probe.kill();
    assert_eq!(probe.wait_for_exit().await, ExitReason::Killed);
    assert_eq!(seen.post_stops(), 0);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorKilled),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_stop_while_senders_race_loses_no_message() {
    const SENDERS: u64 = 3;
    const EACH: u64 = 200;
    for round in 0..200 {
        // A system per round, so its dead-letter count is this round's.
        let system = system();
        let seen = Seen::new();
        let probe = system.spawn(Probe::new(&seen)).unwrap();
        let returned = Arc::new(AtomicU64::new(0));
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let probe = probe.clone();
                let returned = returned.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        if let Err(err) = probe.tell(Cmd::Record(s << 32 | i)).await {
                            assert_eq!(err.kind(), SendErrorKind::ActorStopped);
                            returned.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        probe.stop();
        for s in senders {
            s.await.unwrap();
        }
        probe.wait_for_exit().await;
        let handled = seen.log().len() as u64;
        let dead = system.dead_letters().count(DeadLetterReason::ActorStopped);
        let returned = returned.load(Ordering::SeqCst);
        assert_eq!(
            handled + dead + returned,
            SENDERS * EACH,
            "round {round}: handled {handled} + dead {dead} + returned {returned}"
        );
    }
}

/// Stops itself from `pre_start`.
struct Quitter;

impl Actor for Quitter {
    type Message = u64;
    type Error = std::convert::Infallible;
    async fn pre_start(&mut self, ctx: &mut ActorContext<u64>) -> Result<(), Self::Error> {
        ctx.stop();
        Ok(())
    }
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Self::Error> {
        panic!("a message was handled after pre_start asked to stop");
    }
}

#[tokio::test]
async fn a_stop_requested_in_pre_start_stops_before_any_message() {
    let system = system();
    let quitter = system.spawn(Quitter).unwrap();
    let _ = quitter.tell(1).await;
    assert_eq!(quitter.wait_for_exit().await, ExitReason::Normal);
}

/// Spawns one child in `pre_start` and restarts on every error.
struct Breeder {
    children: std::sync::Arc<parking_lot::Mutex<Vec<ActorRef<Cmd>>>>,
}

impl Actor for Breeder {
    type Message = u64;
    type Error = support::ProbeError;
    async fn pre_start(&mut self, ctx: &mut ActorContext<u64>) -> Result<(), Self::Error> {
        let child = ctx
            .spawn_child()
            .spawn(Probe::new(&Seen::new()))
            .expect("spawn child");
        self.children.lock().push(child);
        Ok(())
    }
    async fn handle_message(
        &mut self,
        n: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Self::Error> {
        Err(support::ProbeError(n))
    }
    async fn on_error(&mut self, _: Self::Error, _: &ActorContext<u64>) -> ErrorAction {
        ErrorAction::Restart
    }
}

// Paused clock: if an old child never exits, the hang guard below fails at once.
#[tokio::test(start_paused = true)]
async fn a_restart_shuts_down_the_children_of_the_old_instance() {
    let system = system();
    let children = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let shared = children.clone();
    let breeder = system
        .spawn_builder()
        .spawn_with_factory(move || Breeder {
            children: shared.clone(),
        })
        .unwrap();
    breeder.tell(1).await.unwrap();
    breeder.tell(2).await.unwrap();
    while children.lock().len() < 3 {
        tokio::task::yield_now().await;
    }
    let all = children.lock().clone();
    for old in &all[..2] {
        let exit =
            tokio::time::timeout(std::time::Duration::from_secs(60), old.wait_for_exit()).await;
        assert_eq!(
            exit,
            Ok(ExitReason::Shutdown),
            "a child of an old instance outlived the restart"
        );
    }
    assert!(all[2].is_alive(), "the current instance's child lives on");
    assert_eq!(system.metrics().snapshot().restarts, 2);
}

/// Whoever wakes from `wait_for_exit` sees a system that no longer counts
/// the actor (the registry is updated before waiters are woken). Repeated on
/// two worker threads to give the race a chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_wait_for_exit_the_system_no_longer_counts_the_actor() {
    let system = system();
    for round in 0..500 {
        let probe = system.spawn(Probe::new(&Arc::default())).unwrap();
        if round % 2 == 0 {
            probe.stop();
        } else {
            probe.kill();
        }
        probe.wait_for_exit().await;
        assert_eq!(system.actor_count(), 0, "round {round}");
    }
}
