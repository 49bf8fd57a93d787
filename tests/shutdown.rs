//! System shutdown: many actors, actors that ignore the signal, queued
//! messages, children, and the report.

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use common::{Cmd, Journal, PATIENCE, Recorder, exit_of, park, spawn_recorder, system, within};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Counts its `post_stop` runs in a shared counter.
struct Counted {
    post_stops: Arc<AtomicUsize>,
    handled: Arc<AtomicUsize>,
}

impl Actor for Counted {
    type Message = u64;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Self::Error> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<u64>) -> Result<(), Self::Error> {
        self.post_stops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_ten_thousand_actors_stops_every_one_cleanly() {
    const ACTORS: usize = 10_000;
    let system = system();
    let post_stops = Arc::new(AtomicUsize::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let mut actors = Vec::with_capacity(ACTORS);
    for i in 0..ACTORS {
        let actor = system
            .spawn(Counted {
                post_stops: post_stops.clone(),
                handled: handled.clone(),
            })
            .unwrap();
        actor.tell(i as u64).await.unwrap();
        actors.push(actor);
    }
    assert_eq!(system.actor_count(), ACTORS);

    let report = system.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.actors, ACTORS);
    assert_eq!(report.stopped_cleanly, ACTORS);
    assert_eq!(report.killed, 0);
    assert_eq!(report.unresponsive, 0);
    assert_eq!(post_stops.load(Ordering::SeqCst), ACTORS);
    assert_eq!(system.actor_count(), 0);
    for actor in &actors {
        assert_eq!(actor.exit_reason(), Some(ExitReason::Shutdown));
    }
    // Every message sent was handled or recorded.
    let dead = system.dead_letters().count(DeadLetterReason::ActorStopped);
    assert_eq!(handled.load(Ordering::SeqCst) as u64 + dead, ACTORS as u64);
    assert_eq!(report.dead_letters, dead);
    let metrics = system.metrics().snapshot();
    assert_eq!(
        (metrics.spawned, metrics.stopped),
        (ACTORS as u64, ACTORS as u64)
    );
}

#[tokio::test(start_paused = true)]
async fn an_actor_that_ignores_shutdown_is_killed() {
    let system = system();
    let journal = Journal::new();
    let polite: Vec<_> = (0..3)
        .map(|_| spawn_recorder(&system, &journal, MailboxConfig::unbounded()))
        .collect();
    let stubborn = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let (entered_tx, entered) = oneshot::channel();
    stubborn.tell(Cmd::Forever(entered_tx)).await.unwrap();
    within(entered)
        .await
        .expect("the stubborn actor is stuck in its handler");
    stubborn.tell(Cmd::Rec(1)).await.unwrap();
    let mut pending = pin!(stubborn.ask(|r| Cmd::Echo(2, r), PATIENCE));
    assert!(futures::poll!(pending.as_mut()).is_pending());

    let grace = Duration::from_secs(5);
    let began = Instant::now();
    let report = system.shutdown(grace).await;
    assert!(began.elapsed() >= grace, "killed before the grace period");
    assert_eq!(report.actors, 4);
    assert_eq!(report.killed, 1);
    assert_eq!(report.stopped_cleanly, 3);
    assert_eq!(report.unresponsive, 0);
    assert_eq!(exit_of(&stubborn).await, ExitReason::Killed);
    for actor in &polite {
        assert_eq!(exit_of(actor).await, ExitReason::Shutdown);
    }
    assert_eq!(journal.post_stops(), 3, "a killed actor skips post_stop");
    assert_eq!(
        pending.await,
        Err(AskError::NoReply {
            actor: stubborn.id()
        })
    );
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorKilled),
        2,
        "the stubborn actor's queue"
    );
    assert_eq!(report.dead_letters, 2);
    assert!(report.to_string().contains("1 killed"), "{report}");
    assert_eq!(system.actor_count(), 0);
}

#[tokio::test]
async fn shutdown_overtakes_queued_messages_and_records_them() {
    const ACTORS: usize = 10;
    const QUEUED: u64 = 5;
    let system = system();
    let journal = Journal::new();
    let mut actors = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..ACTORS {
        let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
        keys.push(park(&actor, Cmd::Park).await);
        for v in 0..QUEUED {
            actor.tell(Cmd::Rec(v)).await.unwrap();
        }
        actors.push(actor);
    }
    let mut shutdown = pin!(system.shutdown(PATIENCE));
    assert!(futures::poll!(shutdown.as_mut()).is_pending());
    assert!(system.is_shutting_down());
    for key in keys {
        key.release();
    }
    let report = shutdown.await;
    assert_eq!(
        (report.actors, report.stopped_cleanly, report.killed),
        (ACTORS, ACTORS, 0)
    );
    assert_eq!(report.dead_letters, ACTORS as u64 * QUEUED);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorStopped),
        ACTORS as u64 * QUEUED
    );
    assert!(journal.log().is_empty(), "the shutdown signal went first");
    assert_eq!(journal.post_stops(), ACTORS);
    for actor in &actors {
        assert_eq!(actor.exit_reason(), Some(ExitReason::Shutdown));
    }
}

#[derive(Debug)]
struct GetChild(ReplyTo<ActorRef<Cmd>>);

impl Message for GetChild {
    const MESSAGE_TYPE: &'static str = "it.get-child";
}

struct WithChild {
    journal: Arc<Journal>,
    child: Option<ActorRef<Cmd>>,
}

impl Actor for WithChild {
    type Message = GetChild;
    type Error = SystemError;

    async fn pre_start(&mut self, ctx: &mut ActorContext<GetChild>) -> Result<(), SystemError> {
        self.child = Some(ctx.spawn_child().spawn(Recorder::new(&self.journal))?);
        Ok(())
    }

    async fn handle_message(
        &mut self,
        GetChild(reply): GetChild,
        _: &mut ActorContext<GetChild>,
    ) -> Result<(), SystemError> {
        if let Some(child) = &self.child {
            let _ = reply.reply(child.clone());
        }
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_stops_children_too() {
    let system = system();
    let journal = Journal::new();
    let parent = system
        .spawn(WithChild {
            journal: journal.clone(),
            child: None,
        })
        .unwrap();
    let child = parent.ask(GetChild, PATIENCE).await.unwrap();
    let report = system.shutdown(PATIENCE).await;
    assert_eq!(
        (report.actors, report.stopped_cleanly, report.killed),
        (2, 2, 0)
    );
    assert_eq!(parent.exit_reason(), Some(ExitReason::Shutdown));
    assert_eq!(child.exit_reason(), Some(ExitReason::Shutdown));
    assert_eq!(journal.post_stops(), 1);
}

#[tokio::test]
async fn after_shutdown_spawns_are_refused_and_a_second_shutdown_finds_nothing() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let report = system.shutdown(PATIENCE).await;
    assert_eq!((report.actors, report.stopped_cleanly), (1, 1));
    assert_eq!(actor.exit_reason(), Some(ExitReason::Shutdown));

    let err = system.spawn(Recorder::new(&journal)).unwrap_err();
    assert!(
        matches!(err, SystemError::ShuttingDown { ref system } if system == "it"),
        "{err:?}"
    );
    assert!(err.to_string().contains("shutting down"), "{err}");

    let again = system.shutdown(PATIENCE).await;
    assert_eq!(
        (again.actors, again.stopped_cleanly, again.killed),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn shutdown_of_an_empty_system_reports_nothing() {
    let system = system();
    let report = system.shutdown(PATIENCE).await;
    assert_eq!(
        (
            report.actors,
            report.stopped_cleanly,
            report.killed,
            report.unresponsive,
            report.dead_letters
        ),
        (0, 0, 0, 0, 0)
    );
}

/// Hangs in `post_stop` after reporting that it got there.
struct StuckInPostStop {
    entered: Option<oneshot::Sender<()>>,
}

impl Actor for StuckInPostStop {
    type Message = u64;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<u64>) -> Result<(), Self::Error> {
        if let Some(entered) = self.entered.take() {
            let _ = entered.send(());
        }
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn killing_an_actor_that_was_already_stopping_does_not_reduce_stopped_cleanly() {
    let system = system();
    let journal = Journal::new();
    let (entered_tx, entered) = oneshot::channel();
    let stuck = system
        .spawn(StuckInPostStop {
            entered: Some(entered_tx),
        })
        .unwrap();
    stuck.stop();
    within(entered).await.expect("stuck in post_stop");
    let polite = spawn_recorder(&system, &journal, MailboxConfig::unbounded());

    let report = system.shutdown(Duration::from_secs(2)).await;
    assert_eq!(exit_of(&polite).await, ExitReason::Shutdown);
    assert_eq!(exit_of(&stuck).await, ExitReason::Killed);
    assert_eq!(report.actors, 1, "only the polite actor was running");
    assert_eq!(
        report.stopped_cleanly, 1,
        "the polite actor stopped cleanly: {report}"
    );
}

#[tokio::test]
async fn actors_already_stopped_are_not_counted_by_shutdown() {
    let system = system();
    let journal = Journal::new();
    let gone = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    gone.stop();
    assert_eq!(exit_of(&gone).await, ExitReason::Normal);
    let running = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let report = system.shutdown(PATIENCE).await;
    assert_eq!((report.actors, report.stopped_cleanly), (1, 1));
    assert_eq!(exit_of(&running).await, ExitReason::Shutdown);
}

/// The report counts what this shutdown dead-lettered, by message type;
/// letters from before it are not its own.
#[tokio::test]
async fn the_report_counts_this_shutdowns_dead_letters_by_type() {
    let system = system();
    let journal = Journal::new();
    let earlier = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&earlier, Cmd::Park).await;
    earlier.tell(Cmd::Rec(1)).await.unwrap();
    earlier.kill();
    assert_eq!(exit_of(&earlier).await, ExitReason::Killed);
    drop(key);
    assert_eq!(
        system.dead_letters().total(),
        1,
        "one letter before shutdown"
    );

    let recorder = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&recorder, Cmd::Park).await;
    for v in 0..3 {
        recorder.tell(Cmd::Rec(v)).await.unwrap();
    }
    // Not yet run (nothing yields on this current-thread runtime until the
    // shutdown): it meets the shutdown signal before its two messages.
    let counter = system
        .spawn(Counted {
            post_stops: Arc::default(),
            handled: Arc::default(),
        })
        .unwrap();
    counter.tell(7).await.unwrap();
    counter.tell(8).await.unwrap();
    let mut shutdown = pin!(system.shutdown(PATIENCE));
    assert!(futures::poll!(shutdown.as_mut()).is_pending());
    key.release();
    let report = shutdown.await;
    assert_eq!(report.dead_letters, 5, "{report}");
    assert_eq!(
        report
            .dead_letters_by_type
            .iter()
            .map(|(t, n)| (*t, *n))
            .collect::<Vec<_>>(),
        [("it.cmd", 3), ("u64", 2)]
    );
    assert!(
        report
            .to_string()
            .contains("5 dead letters (it.cmd: 3, u64: 2)"),
        "{report}"
    );
    assert_eq!(system.dead_letters().total(), 6, "the lifetime total");
}

/// A work-sharing pool's queued jobs are dead-lettered by the shutdown and
/// counted in its report (the shared queue counts as one of the system's
/// actors, so the shutdown waits for it).
#[tokio::test]
async fn the_report_counts_the_jobs_in_a_work_sharing_pools_queue() {
    use airssys_rt::address::{PoolSpec, PoolStrategy};

    let system = system();
    let journal = Journal::new();
    let recorders = journal.clone();
    let pool = system
        .start_pool(
            PoolSpec::new("queue", 1, move || Recorder::new(&recorders))
                .strategy(PoolStrategy::WorkSharing),
        )
        .await
        .unwrap();
    let (gate, mut key) = common::gate();
    pool.tell(Cmd::Park(gate)).await.unwrap();
    within(key.entered()).await;
    for v in 0..4 {
        pool.tell(Cmd::Rec(v)).await.unwrap();
    }
    drop(key);
    let report = system.shutdown(PATIENCE).await;
    assert_eq!(
        report.dead_letters_by_type.get("it.cmd"),
        Some(&4),
        "{report}"
    );
    assert!(journal.log().is_empty(), "no queued job was handled");
}
