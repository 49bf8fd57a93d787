//! Lifecycle: panics in every hook, error actions and restarts, stopping and
//! killing with queued messages.

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use airssys_rt::actor::ActorState;
use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use common::{
    Cmd, Failure, Journal, PATIENCE, Recorder, dead_messages, exit_of, park, rendered,
    spawn_recorder, system, within,
};
use parking_lot::Mutex;
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Panics
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_panic_in_pre_start_is_the_exit_reason_and_asks_fail() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).panic_in_pre_start("pre_start blew up"))
        .unwrap();
    let began = Instant::now();
    let asked = actor.ask(|r| Cmd::Echo(1, r), PATIENCE).await;
    assert!(
        matches!(
            asked,
            Err(AskError::NoReply { .. } | AskError::ActorStopped { .. })
        ),
        "{asked:?}"
    );
    assert_eq!(began.elapsed(), Duration::ZERO, "the ask did not hang");
    assert_eq!(
        exit_of(&actor).await,
        ExitReason::Panic("pre_start blew up".into())
    );
    assert_eq!(journal.pre_starts(), 1);
    assert_eq!(
        journal.post_stops(),
        0,
        "post_stop does not run after a failed pre_start"
    );
    assert_eq!(actor.state(), ActorState::Stopped);
    assert!(!actor.is_alive());
    assert_eq!(system.metrics().snapshot().panics, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_handle_message_is_the_exit_reason_and_pending_asks_fail() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&actor, Cmd::Park).await;
    actor
        .tell(Cmd::Panic(format!("handler blew up on {}", 7)))
        .await
        .unwrap();
    let mut first = pin!(actor.ask(|r| Cmd::Echo(1, r), PATIENCE));
    let mut second = pin!(actor.ask(Cmd::Log, PATIENCE));
    assert!(futures::poll!(first.as_mut()).is_pending());
    assert!(futures::poll!(second.as_mut()).is_pending());
    actor.tell(Cmd::Rec(1)).await.unwrap();
    key.release();
    assert_eq!(
        exit_of(&actor).await,
        ExitReason::Panic("handler blew up on 7".into())
    );
    let began = Instant::now();
    assert_eq!(first.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(second.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(began.elapsed(), Duration::ZERO);
    assert!(journal.log().is_empty());
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorCrashed),
        4,
        "the message it panicked on, then the two requests and Rec(1) queued behind it"
    );
    let letters = system.dead_letters().recent();
    assert_eq!(
        letters[letters.len() - 4].message,
        "(being handled when its actor crashed)"
    );
    let letter = letters.last().cloned().expect("recorded");
    assert_eq!(
        letter.exit,
        Some(ExitReason::Panic("handler blew up on 7".into())),
        "a crash's letters say how it crashed"
    );
    assert!(letter.to_string().contains("crashed"), "{letter}");
    assert_eq!(
        journal.post_stops(),
        1,
        "post_stop runs after a handler panic"
    );
    assert_eq!(system.metrics().snapshot().panics, 1);
    assert_eq!(actor.state(), ActorState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_post_stop_is_the_exit_reason() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).panic_in_post_stop("post_stop blew up"))
        .unwrap();
    assert_eq!(actor.ask(|r| Cmd::Echo(1, r), PATIENCE).await, Ok(1));
    let key = park(&actor, Cmd::Park).await;
    let mut pending = pin!(actor.ask(|r| Cmd::Echo(2, r), PATIENCE));
    assert!(futures::poll!(pending.as_mut()).is_pending());
    actor.stop();
    key.release();
    assert_eq!(
        exit_of(&actor).await,
        ExitReason::Panic("post_stop blew up".into())
    );
    assert_eq!(pending.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(journal.post_stops(), 1);
    assert_eq!(system.metrics().snapshot().panics, 1);
}

#[tokio::test]
async fn the_first_panic_wins_when_post_stop_panics_too() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).panic_in_post_stop("post_stop blew up"))
        .unwrap();
    actor
        .tell(Cmd::Panic("handler first".into()))
        .await
        .unwrap();
    assert_eq!(
        exit_of(&actor).await,
        ExitReason::Panic("handler first".into())
    );
    assert_eq!(system.metrics().snapshot().panics, 2);
}

struct StaticPanic;

impl Actor for StaticPanic {
    type Message = u64;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        n: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Self::Error> {
        if n == 0 {
            panic!("a static panic message");
        }
        std::panic::panic_any(n)
    }
}

#[tokio::test]
async fn panic_payloads_of_any_type_are_reported() {
    let system = system();
    let literal = system.spawn(StaticPanic).unwrap();
    literal.tell(0).await.unwrap();
    assert_eq!(
        exit_of(&literal).await,
        ExitReason::Panic("a static panic message".into())
    );
    let opaque = system.spawn(StaticPanic).unwrap();
    opaque.tell(1).await.unwrap();
    assert!(matches!(exit_of(&opaque).await, ExitReason::Panic(_)));
}

// ---------------------------------------------------------------------------
// Errors and error actions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_pre_start_is_an_error_exit_without_post_stop() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).fail_pre_start("no database"))
        .unwrap();
    match exit_of(&actor).await {
        ExitReason::Error(text) => assert!(text.contains("no database"), "{text}"),
        other => panic!("unexpected exit {other}"),
    }
    assert_eq!(journal.post_stops(), 0);
}

#[tokio::test]
async fn stop_and_escalate_exit_with_the_error_text() {
    let system = system();
    for (action, expected) in [
        (ErrorAction::Stop, ExitReason::Normal),
        (
            ErrorAction::Escalate,
            ExitReason::Escalated("disk full".into()),
        ),
    ] {
        let journal = Journal::new();
        let actor = system
            .spawn(Recorder::new(&journal).on_error(action))
            .unwrap();
        actor.tell(Cmd::Fail("disk full".into())).await.unwrap();
        actor.tell(Cmd::Rec(1)).await.unwrap();
        assert_eq!(exit_of(&actor).await, expected);
        assert!(
            journal.log().is_empty(),
            "{action:?}: handled after failing"
        );
        assert_eq!(journal.post_stops(), 1, "{action:?}");
    }
}

#[tokio::test]
async fn resume_keeps_the_same_instance_and_its_state() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).on_error(ErrorAction::Resume))
        .unwrap();
    let mut kept = pin!(actor.ask(Cmd::Keep, PATIENCE));
    assert!(futures::poll!(kept.as_mut()).is_pending());
    actor.tell(Cmd::Fail("transient".into())).await.unwrap();
    actor.tell(Cmd::Rec(1)).await.unwrap();
    assert_eq!(
        actor.ask(Cmd::KeptClosed, PATIENCE).await.unwrap(),
        vec![false],
        "the kept port survived: same state"
    );
    assert_eq!(actor.ask(Cmd::Incarnation, PATIENCE).await.unwrap(), (1, 1));
    assert_eq!(journal.log(), vec![1]);
    assert_eq!(journal.pre_starts(), 1);
    assert!(futures::poll!(kept.as_mut()).is_pending());
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

fn spawn_restarting(system: &ActorSystem, journal: &std::sync::Arc<Journal>) -> ActorRef<Cmd> {
    let journal = journal.clone();
    system
        .spawn_builder()
        .spawn_with_factory(move || Recorder::new(&journal).on_error(ErrorAction::Restart))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn restart_runs_pre_start_on_a_fresh_instance_and_keeps_the_queue() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_restarting(&system, &journal);
    assert_eq!(actor.ask(Cmd::Incarnation, PATIENCE).await.unwrap(), (1, 1));
    let key = park(&actor, Cmd::Park).await;
    // Private state of the first instance: a reply port it keeps.
    let mut kept = pin!(actor.ask(Cmd::Keep, PATIENCE));
    assert!(futures::poll!(kept.as_mut()).is_pending());
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Fail("bad input".into())).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    let mut incarnation = pin!(actor.ask(Cmd::Incarnation, PATIENCE));
    assert!(futures::poll!(incarnation.as_mut()).is_pending());
    actor.tell(Cmd::Rec(3)).await.unwrap();
    key.release();

    assert_eq!(
        incarnation.await,
        Ok((2, 2)),
        "a fresh instance handles what was queued after the failure"
    );
    assert_eq!(
        kept.await,
        Err(AskError::NoReply { actor: actor.id() }),
        "the old instance's state was dropped"
    );
    assert_eq!(journal.wait_len(3).await, vec![1, 2, 3], "nothing lost");
    assert_eq!(journal.pre_starts(), 2, "pre_start ran again");
    assert_eq!(journal.post_stops(), 1, "the old instance ran post_stop");
    assert_eq!(system.metrics().snapshot().restarts, 1);
    assert_eq!(system.dead_letters().total(), 0);
    assert!(actor.is_alive());
    assert_eq!(actor.exit_reason(), None);
    assert_eq!(actor.state(), ActorState::Running);
    assert_eq!(system.actor_count(), 1, "still one actor, same id");
}

#[tokio::test]
async fn every_failure_restarts_again() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_restarting(&system, &journal);
    for round in 0..3 {
        actor
            .tell(Cmd::Fail(format!("fail {round}")))
            .await
            .unwrap();
        actor.tell(Cmd::Rec(round)).await.unwrap();
    }
    assert_eq!(actor.ask(Cmd::Incarnation, PATIENCE).await.unwrap(), (4, 4));
    assert_eq!(journal.log(), vec![0, 1, 2]);
    assert_eq!(journal.pre_starts(), 4);
    assert_eq!(journal.post_stops(), 3);
    assert_eq!(system.metrics().snapshot().restarts, 3);
}

#[tokio::test]
async fn restart_without_a_factory_exits_with_an_error_naming_spawn_with_factory() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).on_error(ErrorAction::Restart))
        .unwrap();
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Fail("bad".into())).await.unwrap();
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    key.release();
    match exit_of(&actor).await {
        ExitReason::Error(text) => assert!(text.contains("spawn_with_factory"), "{text}"),
        other => panic!("unexpected exit {other}"),
    }
    assert!(journal.log().is_empty());
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorCrashed),
        rendered(1..=2),
        "the queue is accounted for"
    );
    assert_eq!(journal.pre_starts(), 1);
}

#[tokio::test]
async fn a_restart_whose_fresh_pre_start_fails_exits_with_that_error() {
    let system = system();
    let journal = Journal::new();
    let factory_journal = journal.clone();
    let mut built = 0;
    let actor = system
        .spawn_builder()
        .spawn_with_factory(move || {
            built += 1;
            let recorder = Recorder::new(&factory_journal).on_error(ErrorAction::Restart);
            if built == 1 {
                recorder
            } else {
                recorder.fail_pre_start("cannot come back")
            }
        })
        .unwrap();
    actor.tell(Cmd::Fail("first".into())).await.unwrap();
    match exit_of(&actor).await {
        ExitReason::Error(text) => assert!(text.contains("cannot come back"), "{text}"),
        other => panic!("unexpected exit {other}"),
    }
    assert_eq!(journal.pre_starts(), 2);
}

/// Spawns one child in `pre_start` and restarts on every error.
struct Breeder {
    children: Arc<Mutex<Vec<ActorRef<Cmd>>>>,
}

impl Actor for Breeder {
    type Message = Cmd;
    type Error = Failure;

    async fn pre_start(&mut self, ctx: &mut ActorContext<Cmd>) -> Result<(), Failure> {
        let child = ctx
            .spawn_child()
            .spawn(Recorder::new(&Journal::new()))
            .expect("spawn child");
        self.children.lock().push(child);
        Ok(())
    }

    async fn handle_message(&mut self, cmd: Cmd, _: &mut ActorContext<Cmd>) -> Result<(), Failure> {
        match cmd {
            Cmd::Fail(text) => return Err(Failure(text)),
            Cmd::Echo(v, reply) => {
                let _ = reply.reply(v);
            }
            other => panic!("a Breeder does not handle {other:?}"),
        }
        Ok(())
    }

    async fn on_error(&mut self, _: Failure, _: &ActorContext<Cmd>) -> ErrorAction {
        ErrorAction::Restart
    }
}

// Paused clock: if an old child never exits, the hang guard below fails at once.
#[tokio::test(start_paused = true)]
async fn a_restart_shuts_down_the_children_of_the_old_instance() {
    let system = system();
    let children = Arc::new(Mutex::new(Vec::new()));
    let shared = children.clone();
    let breeder = system
        .spawn_builder()
        .spawn_with_factory(move || Breeder {
            children: shared.clone(),
        })
        .unwrap();
    breeder.tell(Cmd::Fail("first".into())).await.unwrap();
    breeder.tell(Cmd::Fail("second".into())).await.unwrap();
    // Answered by the third instance: both restarts, and the pre_start of
    // each fresh instance, are done.
    assert_eq!(breeder.ask(|r| Cmd::Echo(0, r), PATIENCE).await, Ok(0));
    let all = children.lock().clone();
    assert_eq!(all.len(), 3, "one child per instance");
    for old in &all[..2] {
        let exit = tokio::time::timeout(PATIENCE, old.wait_for_exit()).await;
        assert_eq!(
            exit,
            Ok(ExitReason::Shutdown),
            "a child of an old instance outlived the restart"
        );
    }
    assert!(all[2].is_alive(), "the current instance's child lives on");
    assert_eq!(system.metrics().snapshot().restarts, 2);
}

// ---------------------------------------------------------------------------
// Stopping with queued messages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn stop_with_queued_messages_accounts_for_every_one() {
    const QUEUED: u64 = 500;
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&actor, Cmd::Park).await;
    for v in 0..QUEUED {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    assert!(actor.stop());
    key.release();
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    let handled = journal.len() as u64;
    let dead = system.dead_letters().count(DeadLetterReason::ActorStopped);
    assert_eq!(handled + dead, QUEUED, "handled {handled} + dead {dead}");
    // The stop is served on the system lane, ahead of the queue.
    assert_eq!(handled, 0);
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorStopped),
        rendered(0..QUEUED),
        "dead letters keep the queue's order"
    );
    assert!(
        system
            .dead_letters()
            .recent()
            .iter()
            .all(|l| l.recipient == actor.id())
    );
    assert_eq!(journal.post_stops(), 1);
    assert_eq!(actor.mailbox_len(), 0);

    let err = actor.tell(Cmd::Rec(QUEUED)).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.into_message(), Cmd::Rec(v) if v == QUEUED));
}

#[tokio::test]
async fn ctx_stop_ends_the_actor_after_the_current_message() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::StopSelf).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    actor.tell(Cmd::Rec(3)).await.unwrap();
    key.release();
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    assert_eq!(journal.log(), vec![1]);
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorStopped),
        rendered(2..=3)
    );
}

#[tokio::test(start_paused = true)]
async fn ctx_stop_in_pre_start_stops_the_actor() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).stop_in_pre_start())
        .unwrap();
    // Paused clock: if the actor never exits, this times out at once.
    let exit = tokio::time::timeout(PATIENCE, actor.wait_for_exit()).await;
    assert_eq!(exit, Ok(ExitReason::Normal));
    assert_eq!(journal.post_stops(), 1);
}

/// A stop requested in `pre_start` ends the actor before it handles any
/// message, even one sent right after the spawn.
#[tokio::test]
async fn a_stop_requested_in_pre_start_stops_before_any_message() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn(Recorder::new(&journal).stop_in_pre_start())
        .unwrap();
    // Queued or refused, depending on how far the actor got; never handled.
    let _ = actor.tell(Cmd::Rec(1)).await;
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    assert!(
        journal.log().is_empty(),
        "a message was handled after pre_start asked to stop"
    );
}

#[tokio::test]
async fn kill_skips_post_stop_and_queued_messages_become_dead_letters() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    // Parked inside a handler whose gate is never opened.
    let _key = park(&actor, Cmd::Park).await;
    for v in 0..5 {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    // A stop cannot get through a handler that never returns; a kill does.
    assert!(actor.stop());
    actor.kill();
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    assert_eq!(journal.post_stops(), 0);
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorKilled),
        rendered(0..5)
    );
    assert_eq!(system.dead_letters().total(), 5);
}

#[tokio::test]
async fn kill_right_after_spawn_accounts_for_the_queue() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    for v in 0..3 {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    actor.kill();
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    let handled = journal.len() as u64;
    let dead = system.dead_letters().count(DeadLetterReason::ActorKilled);
    assert_eq!(handled + dead, 3);
    within(system.all_stopped()).await;
}

/// A killed actor is dropped, with its context, before its exit is
/// published: when it drops, its handle still says it has not stopped.
#[tokio::test]
async fn a_killed_actor_is_dropped_before_its_exit_is_published() {
    /// Notes, when dropped, whether its own actor had already stopped.
    struct Witness {
        me: Option<ActorRef<()>>,
        started: Option<tokio::sync::oneshot::Sender<()>>,
        stopped_when_dropped: Arc<Mutex<Option<bool>>>,
    }
    impl Actor for Witness {
        type Message = ();
        type Error = std::convert::Infallible;
        async fn pre_start(&mut self, ctx: &mut ActorContext<()>) -> Result<(), Self::Error> {
            self.me = Some(ctx.myself().clone());
            let _ = self.started.take().map(|started| started.send(()));
            Ok(())
        }
        async fn handle_message(
            &mut self,
            (): (),
            _: &mut ActorContext<()>,
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    impl Drop for Witness {
        fn drop(&mut self) {
            if let Some(me) = &self.me {
                *self.stopped_when_dropped.lock() = Some(me.state() == ActorState::Stopped);
            }
        }
    }
    let system = system();
    let seen = Arc::new(Mutex::new(None));
    let (started, has_started) = tokio::sync::oneshot::channel();
    let actor = system
        .spawn(Witness {
            me: None,
            started: Some(started),
            stopped_when_dropped: seen.clone(),
        })
        .unwrap();
    has_started.await.unwrap();
    actor.kill();
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    assert_eq!(
        *seen.lock(),
        Some(false),
        "dropped after its exit was published"
    );
}

/// Whoever wakes from `wait_for_exit` sees a system that no longer counts
/// the actor (the registry is updated before waiters are woken). Repeated on
/// two worker threads to give the race a chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_wait_for_exit_the_system_no_longer_counts_the_actor() {
    let system = system();
    let journal = Journal::new();
    for round in 0..500 {
        let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
        if round % 2 == 0 {
            actor.stop();
        } else {
            actor.kill();
        }
        exit_of(&actor).await;
        assert_eq!(system.actor_count(), 0, "round {round}");
    }
}

/// Several `wait_for_exit` calls waiting at once, one of them given up
/// before the exit (which frees the first waiter's slot when it held it,
/// for a later waiter to take): every waiter still waiting wakes with the
/// exit reason. Repeated on two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exit_waiter_wakes_whichever_waits_first_and_whoever_gave_up() {
    let system = system();
    let journal = Journal::new();
    for round in 0..300usize {
        let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
        let mut quitter = Box::pin(actor.wait_for_exit());
        if round % 3 == 0 {
            // The quitter takes the slot first.
            assert!(futures::poll!(quitter.as_mut()).is_pending());
        }
        let mut waiters: Vec<_> = (0..1 + round % 4)
            .map(|_| Box::pin(actor.wait_for_exit()))
            .collect();
        for waiter in &mut waiters {
            assert!(futures::poll!(waiter.as_mut()).is_pending());
        }
        assert!(futures::poll!(quitter.as_mut()).is_pending());
        drop(quitter);
        let mut late = Box::pin(actor.wait_for_exit());
        assert!(futures::poll!(late.as_mut()).is_pending());
        waiters.push(late);
        let expected = if round % 2 == 0 {
            actor.stop();
            ExitReason::Normal
        } else {
            actor.kill();
            ExitReason::Killed
        };
        for reason in within(futures::future::join_all(waiters)).await {
            assert_eq!(reason, expected, "round {round}");
        }
    }
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// Handles ten messages, then parks; returns the actor and the parked key.
async fn ten_handled_then_parked(
    system: &ActorSystem,
    journal: &std::sync::Arc<Journal>,
) -> (ActorRef<Cmd>, common::GateKey) {
    let actor = spawn_recorder(system, journal, MailboxConfig::unbounded());
    for v in 0..10 {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    journal.wait_len(10).await;
    let key = park(&actor, Cmd::Park).await;
    (actor, key)
}

#[tokio::test]
async fn handled_messages_reach_the_metrics_when_the_actor_stops() {
    let system = system();
    let journal = Journal::new();
    let (actor, key) = ten_handled_then_parked(&system, &journal).await;
    actor.stop();
    key.release();
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    // Ten `Rec`s and the `Park`.
    assert_eq!(system.metrics().snapshot().messages_handled, 11);
}

#[tokio::test]
async fn handled_messages_reach_the_metrics_when_the_actor_is_killed() {
    let system = system();
    let journal = Journal::new();
    let (actor, _key) = ten_handled_then_parked(&system, &journal).await;
    actor.kill();
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    assert_eq!(system.metrics().snapshot().messages_handled, 11);
}
