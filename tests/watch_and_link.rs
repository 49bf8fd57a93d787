//! Watches and links between actors: a `Down` exactly once (also for an
//! actor already gone, also under races), unwatching, and Erlang's
//! exit-signal rules for links, row by row of the table in
//! `airssys_rt::actor::link`.
//!
//! The link tests run on a current-thread runtime: when a test task wakes
//! from `wait_for_exit`, the exiting actor's task has finished its exit,
//! signals included, so what a linked actor did about it is settled.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airssys_rt::actor::{Down, DownReason, ExitSignal};
use airssys_rt::prelude::*;
use airssys_rt::system::LinkError;
use common::{PATIENCE, exit_of, system, within};
use tokio::sync::mpsc;

/// What an observer saw.
#[derive(Debug)]
enum Seen {
    Down(Down),
    Exit(ExitSignal),
}

#[derive(Debug)]
enum ObserverMsg {
    Down(Down),
    Exit(ExitSignal),
    /// Answers once everything queued before it was handled.
    Sync(ReplyTo<()>),
}

impl Message for ObserverMsg {
    const MESSAGE_TYPE: &'static str = "test.observer";
}

/// Forwards every `Down` and exit signal to the test; traps exits if asked.
struct Observer {
    seen: mpsc::UnboundedSender<Seen>,
    traps: bool,
}

impl Actor for Observer {
    type Message = ObserverMsg;
    type Error = std::convert::Infallible;

    async fn pre_start(&mut self, ctx: &mut ActorContext<ObserverMsg>) -> Result<(), Self::Error> {
        if self.traps {
            ctx.trap_exits(ObserverMsg::Exit);
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        msg: ObserverMsg,
        _: &mut ActorContext<ObserverMsg>,
    ) -> Result<(), Self::Error> {
        match msg {
            ObserverMsg::Down(down) => drop(self.seen.send(Seen::Down(down))),
            ObserverMsg::Exit(signal) => drop(self.seen.send(Seen::Exit(signal))),
            ObserverMsg::Sync(reply) => drop(reply.reply(())),
        }
        Ok(())
    }
}

/// An observer that has started (and so traps exits, if `traps`).
async fn observer(
    system: &ActorSystem,
    traps: bool,
) -> (ActorRef<ObserverMsg>, mpsc::UnboundedReceiver<Seen>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let observer = system.spawn(Observer { seen, traps }).unwrap();
    settle(&observer).await;
    (observer, rx)
}

/// What a worker is told to do.
#[derive(Debug)]
enum Do {
    Stop,
    Panic,
    Fail,
    /// Blocks its handler until the test's sender is dropped (or forever).
    Hang(tokio::sync::oneshot::Receiver<()>),
}

impl Message for Do {
    const MESSAGE_TYPE: &'static str = "test.do";
}

/// Does what it is told; counts its `post_stop`s.
#[derive(Default, Clone)]
struct Worker {
    post_stops: Arc<AtomicUsize>,
}

impl Actor for Worker {
    type Message = Do;
    type Error = ActorError;

    async fn handle_message(
        &mut self,
        msg: Do,
        ctx: &mut ActorContext<Do>,
    ) -> Result<(), ActorError> {
        match msg {
            Do::Stop => ctx.stop(),
            Do::Panic => panic!("worker panics on purpose"),
            Do::Fail => return Err(ActorError::msg("failed on purpose")),
            Do::Hang(release) => drop(release.await),
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<Do>) -> Result<(), ActorError> {
        self.post_stops.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    within(seen.recv()).await.expect("observer gone")
}

async fn next_down(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Down {
    match next(seen).await {
        Seen::Down(down) => down,
        other => panic!("expected a Down, got {other:?}"),
    }
}

async fn next_exit(seen: &mut mpsc::UnboundedReceiver<Seen>) -> ExitSignal {
    match next(seen).await {
        Seen::Exit(signal) => signal,
        other => panic!("expected an exit signal, got {other:?}"),
    }
}

/// Everything the observer was sent before now has been handled.
async fn settle(observer: &ActorRef<ObserverMsg>) {
    observer.ask(ObserverMsg::Sync, PATIENCE).await.unwrap();
}

fn linked(actor: &ActorRef<Do>, reason: ExitReason) -> ExitReason {
    ExitReason::Linked {
        actor: actor.id(),
        reason: Box::new(reason),
    }
}

// ---------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_watch_delivers_the_exit_reason_once() {
    let system = system();
    let (watcher, mut seen) = observer(&system, false).await;
    for (order, reason) in [
        (Do::Stop, ExitReason::Normal),
        (
            Do::Panic,
            ExitReason::Panic("worker panics on purpose".into()),
        ),
        (Do::Fail, ExitReason::Escalated("failed on purpose".into())),
    ] {
        let worker = system.spawn(Worker::default()).unwrap();
        let watch = watcher.watch(&worker, ObserverMsg::Down).unwrap();
        worker.tell(order).await.unwrap();
        let down = next_down(&mut seen).await;
        assert_eq!(down.actor, worker.id());
        assert_eq!(down.watch, watch);
        assert_eq!(down.watch.target(), worker.id());
        assert_eq!(down.reason, DownReason::Exited(reason));
    }
    settle(&watcher).await;
    assert!(seen.try_recv().is_err(), "one Down per watch");
}

#[tokio::test]
async fn watching_an_actor_already_gone_says_noproc_at_once() {
    let system = system();
    let (watcher, mut seen) = observer(&system, false).await;
    let worker = system.spawn(Worker::default()).unwrap();
    worker.kill();
    exit_of(&worker).await;
    let watch = watcher.watch(&worker, ObserverMsg::Down).unwrap();
    let down = next_down(&mut seen).await;
    assert_eq!((down.watch, down.reason), (watch, DownReason::NoProc));
    // Watching from a stopped actor is refused, with who it was.
    watcher.stop();
    exit_of(&watcher).await;
    let other = system.spawn(Worker::default()).unwrap();
    assert_eq!(
        watcher.watch(&other, ObserverMsg::Down),
        Err(LinkError::Stopped {
            actor: watcher.id()
        })
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unwatched_actor_sends_no_down() {
    let system = system();
    let (watcher, mut seen) = observer(&system, false).await;
    let worker = system.spawn(Worker::default()).unwrap();
    let removed = watcher.watch(&worker, ObserverMsg::Down).unwrap();
    let kept = watcher.watch(&worker, ObserverMsg::Down).unwrap();
    assert!(watcher.unwatch(removed), "removed before it fired");
    assert!(!watcher.unwatch(removed), "removed once");
    worker.kill();
    exit_of(&worker).await;
    settle(&watcher).await;
    let down = next_down(&mut seen).await;
    assert_eq!(down.watch, kept);
    assert!(seen.try_recv().is_err(), "the removed watch stayed silent");
    assert!(!watcher.unwatch(kept), "already delivered");
}

/// A watch set while its target is exiting, from another thread, 10,000
/// times: every watch delivers exactly one `Down`, `Exited` or `NoProc`
/// depending on who won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_racing_the_exit_delivers_exactly_once() {
    const ROUNDS: usize = 10_000;
    let system = system();
    let (watcher, mut seen) = observer(&system, false).await;
    let (mut exited, mut noproc) = (0, 0);
    for round in 0..ROUNDS {
        let worker = system.spawn(Worker::default()).unwrap();
        let stopper = {
            let worker = worker.clone();
            tokio::spawn(async move {
                if round % 2 == 0 {
                    worker.kill();
                } else {
                    worker.stop();
                }
            })
        };
        let watch = watcher.watch(&worker, ObserverMsg::Down).unwrap();
        let down = next_down(&mut seen).await;
        assert_eq!(down.watch, watch, "round {round}: a Down of another watch");
        match down.reason {
            DownReason::Exited(_) => exited += 1,
            DownReason::NoProc => noproc += 1,
        }
        stopper.await.unwrap();
    }
    system.shutdown(PATIENCE).await;
    let mut late = Vec::new();
    while let Ok(extra) = seen.try_recv() {
        late.push(extra);
    }
    assert!(late.is_empty(), "duplicates: {late:?}");
    assert_eq!(exited + noproc, ROUNDS);
}

// ---------------------------------------------------------------------------
// Links, by the table
// ---------------------------------------------------------------------------

/// Spawns a worker linked to `to`, and returns its `post_stop` counter.
fn linked_worker(system: &ActorSystem, to: &ActorRef<Do>) -> (ActorRef<Do>, Arc<AtomicUsize>) {
    let worker = Worker::default();
    let post_stops = worker.post_stops.clone();
    let actor = system.spawn(worker).unwrap();
    actor.link(to).unwrap();
    (actor, post_stops)
}

#[tokio::test(flavor = "current_thread")]
async fn a_normal_exit_does_not_propagate_to_an_actor_not_trapping() {
    let system = system();
    let first = system.spawn(Worker::default()).unwrap();
    let (second, _) = linked_worker(&system, &first);
    first.tell(Do::Stop).await.unwrap();
    assert_eq!(exit_of(&first).await, ExitReason::Normal);
    assert!(second.is_alive());
    second.stop();
    assert_eq!(exit_of(&second).await, ExitReason::Normal);
}

#[tokio::test(flavor = "current_thread")]
async fn abnormal_exits_and_shutdown_take_linked_actors_down_without_post_stop() {
    let system = system();
    for (order, reason) in [
        (
            None,
            ExitReason::Shutdown, // by `shutdown()`
        ),
        (
            Some(Do::Panic),
            ExitReason::Panic("worker panics on purpose".into()),
        ),
        (
            Some(Do::Fail),
            ExitReason::Escalated("failed on purpose".into()),
        ),
    ] {
        let first = system.spawn(Worker::default()).unwrap();
        let (second, post_stops) = linked_worker(&system, &first);
        match order {
            Some(order) => first.tell(order).await.unwrap(),
            None => drop(first.shutdown()),
        }
        assert_eq!(exit_of(&first).await, reason);
        let went = exit_of(&second).await;
        assert_eq!(went, linked(&first, reason.clone()));
        // Erlang: the linked process exits with the same reason, so a
        // `shutdown` stays a normal exit.
        assert_eq!(went.is_normal(), reason.is_normal());
        assert_eq!(
            post_stops.load(Ordering::SeqCst),
            0,
            "{reason}: no post_stop"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_killed_actors_links_see_killed_and_it_travels_down_a_chain() {
    let system = system();
    let first = system.spawn(Worker::default()).unwrap();
    let (second, _) = linked_worker(&system, &first);
    let (third, _) = linked_worker(&system, &second);
    // Busy in a handler when the signal comes: it goes at once anyway.
    let (_hold, hang) = tokio::sync::oneshot::channel();
    third.tell(Do::Hang(hang)).await.unwrap();
    first.kill();
    assert_eq!(exit_of(&first).await, ExitReason::Killed);
    let second_reason = linked(&first, ExitReason::Killed);
    assert_eq!(exit_of(&second).await, second_reason);
    assert_eq!(exit_of(&third).await, linked(&second, second_reason));
}

#[tokio::test(flavor = "current_thread")]
async fn an_actor_trapping_exits_gets_every_signal_as_a_message_and_lives_on() {
    let system = system();
    let (trapper, mut seen) = observer(&system, true).await;
    for (order, reason) in [
        (Some(Do::Stop), ExitReason::Normal),
        (None, ExitReason::Killed),
        (
            Some(Do::Panic),
            ExitReason::Panic("worker panics on purpose".into()),
        ),
    ] {
        let worker = system.spawn(Worker::default()).unwrap();
        worker.link(&trapper).unwrap();
        match order {
            Some(order) => worker.tell(order).await.unwrap(),
            None => worker.kill(),
        }
        let signal = next_exit(&mut seen).await;
        assert_eq!(signal.actor, worker.id());
        assert_eq!(signal.reason, DownReason::Exited(reason));
        assert!(trapper.is_alive());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn linking_to_an_actor_already_gone_is_noproc() {
    let system = system();
    let gone = system.spawn(Worker::default()).unwrap();
    gone.tell(Do::Stop).await.unwrap();
    exit_of(&gone).await;

    // Not trapping: an error, and no link.
    let (plain, _) = observer(&system, false).await;
    assert_eq!(
        plain.link(&gone),
        Err(LinkError::NoProc { actor: gone.id() })
    );
    // Trapping: the link "succeeds" and the signal says noproc.
    let (trapper, mut seen) = observer(&system, true).await;
    trapper.link(&gone).unwrap();
    let signal = next_exit(&mut seen).await;
    assert_eq!(
        (signal.actor, signal.reason),
        (gone.id(), DownReason::NoProc)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn unlinked_actors_do_not_share_a_fate() {
    let system = system();
    let first = system.spawn(Worker::default()).unwrap();
    let (second, _) = linked_worker(&system, &first);
    // Linking again, or to itself, changes nothing; unlinking from either
    // side removes the one link.
    second.link(&first).unwrap();
    first.link(&first).unwrap();
    first.unlink(&second);
    first.tell(Do::Panic).await.unwrap();
    exit_of(&first).await;
    assert!(second.is_alive());
}

/// A watch and a link from a handler, through the context.
#[tokio::test(flavor = "current_thread")]
async fn a_handler_watches_and_links_through_its_context() {
    #[derive(Debug)]
    enum Msg {
        Watch(ActorRef<Do>),
        Link(ActorRef<Do>),
        Down(Down),
        Sync(ReplyTo<()>),
    }
    impl Message for Msg {
        const MESSAGE_TYPE: &'static str = "test.bond";
    }
    struct Bonder(mpsc::UnboundedSender<Down>);
    impl Actor for Bonder {
        type Message = Msg;
        type Error = LinkError;
        async fn handle_message(
            &mut self,
            msg: Msg,
            ctx: &mut ActorContext<Msg>,
        ) -> Result<(), LinkError> {
            match msg {
                Msg::Watch(worker) => drop(ctx.watch(&worker, Msg::Down)),
                Msg::Link(worker) => ctx.link(&worker)?,
                Msg::Down(down) => drop(self.0.send(down)),
                Msg::Sync(reply) => drop(reply.reply(())),
            }
            Ok(())
        }
    }
    let system = system();
    let (downs, mut seen) = mpsc::unbounded_channel();
    let watching = system.spawn(Bonder(downs.clone())).unwrap();
    let linking = system.spawn(Bonder(downs)).unwrap();
    let worker = system.spawn(Worker::default()).unwrap();
    watching.tell(Msg::Watch(worker.clone())).await.unwrap();
    linking.tell(Msg::Link(worker.clone())).await.unwrap();
    for bonder in [&watching, &linking] {
        bonder.ask(Msg::Sync, PATIENCE).await.unwrap();
    }
    worker.tell(Do::Fail).await.unwrap();
    let reason = ExitReason::Escalated("failed on purpose".into());
    assert_eq!(exit_of(&linking).await, linked(&worker, reason.clone()));
    let down = within(seen.recv()).await.unwrap();
    assert_eq!(down.reason, DownReason::Exited(reason));
    assert!(watching.is_alive());
    // Linking to it now: `noproc`, an error the handler returns with `?`.
    linking.stop();
    let late = system.spawn(Bonder(mpsc::unbounded_channel().0)).unwrap();
    late.tell(Msg::Link(worker.clone())).await.unwrap();
    assert_eq!(
        exit_of(&late).await,
        ExitReason::Escalated(LinkError::NoProc { actor: worker.id() }.to_string())
    );
}
