//! tell / ask semantics: per-sender FIFO order for every mailbox shape, every
//! `AskError`, sends to stopped actors, envelope TTLs, timers and children.

mod common;

use std::sync::Arc;
use std::time::Duration;

use airssys_rt::actor::TaskHandle;
use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use common::{Cmd, Journal, PATIENCE, Recorder, exit_of, park, spawn_recorder, system, within};
use tokio::sync::Barrier;
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Per-sender FIFO
// ---------------------------------------------------------------------------

const SENDERS: u64 = 6;
const PER_SENDER: u64 = 2_000;

/// Tags a value with its sender.
fn tag(sender: u64, seq: u64) -> u64 {
    (sender << 32) | seq
}

/// Several senders start together and each sends its own numbered sequence;
/// the actor must see every message, and each sender's in the order sent.
async fn assert_per_sender_fifo(mailbox: MailboxConfig) {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, mailbox);
    let start = Arc::new(Barrier::new(SENDERS as usize));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let actor = actor.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                for i in 0..PER_SENDER {
                    actor.tell(Cmd::Rec(tag(s, i))).await.expect("accepted");
                }
            })
        })
        .collect();
    for sender in senders {
        within(sender).await.expect("sender finished");
    }
    // Every tell has returned, so every message is queued ahead of this ask.
    let log = actor.ask(Cmd::Log, PATIENCE).await.expect("log");
    assert_eq!(
        log.len() as u64,
        SENDERS * PER_SENDER,
        "{mailbox:?}: messages lost or duplicated"
    );
    let mut next = [0u64; SENDERS as usize];
    for value in log {
        let (s, i) = ((value >> 32) as usize, value & 0xffff_ffff);
        assert_eq!(i, next[s], "{mailbox:?}: sender {s} out of order");
        next[s] += 1;
    }
    assert_eq!(system.dead_letters().total(), 0, "{mailbox:?}");
    assert_eq!(actor.dropped_messages(), 0, "{mailbox:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_fifo_unbounded() {
    assert_per_sender_fifo(MailboxConfig::unbounded()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_fifo_bounded_block_small_capacity() {
    assert_per_sender_fifo(MailboxConfig::bounded(8, Backpressure::Block)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_fifo_priority_mailbox_same_priority() {
    assert_per_sender_fifo(MailboxConfig::unbounded().with_kind(MailboxKind::Priority)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_fifo_bounded_drop_oldest_never_full() {
    // A DropOldest mailbox uses a multi-consumer lane; order must still hold.
    assert_per_sender_fifo(MailboxConfig::bounded(1 << 20, Backpressure::DropOldest)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sender_fifo_bounded_priority_block() {
    assert_per_sender_fifo(
        MailboxConfig::bounded(4, Backpressure::Block).with_kind(MailboxKind::Priority),
    )
    .await;
}

// ---------------------------------------------------------------------------
// ask errors
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ask_times_out_when_the_actor_never_replies() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let timeout = Duration::from_secs(5);
    let began = Instant::now();
    let err = actor.ask(Cmd::Keep, timeout).await.unwrap_err();
    assert_eq!(
        err,
        AskError::Timeout {
            actor: actor.id(),
            timeout
        }
    );
    assert!(
        began.elapsed() >= timeout,
        "timed out early, after {:?}",
        began.elapsed()
    );
    assert!(err.to_string().contains("did not reply"), "{err}");
    // The asker stopped waiting, so the port the actor kept is closed, and the
    // actor itself is unharmed.
    assert_eq!(
        actor.ask(Cmd::KeptClosed, PATIENCE).await.unwrap(),
        vec![true]
    );
    assert_eq!(actor.ask(|r| Cmd::Echo(9, r), PATIENCE).await, Ok(9));
}

/// A zero timeout is one documented outcome, whatever the actor's speed:
/// refused at once, the request never sent (the actor here answers `Echo`
/// at once, and it was `Ok` before whenever the reply came in the same
/// poll).
#[tokio::test]
async fn an_ask_with_a_zero_timeout_is_refused_without_sending() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    for _ in 0..100 {
        let err = actor
            .ask(|r| Cmd::Echo(1, r), Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err, AskError::ZeroTimeout { actor: actor.id() });
    }
    assert!(
        actor
            .ask(|r| Cmd::Echo(0, r), Duration::ZERO)
            .await
            .is_err()
    );
    assert_eq!(actor.mailbox_len(), 0, "nothing was sent");
    assert_eq!(actor.ask(|r| Cmd::Echo(2, r), PATIENCE).await, Ok(2));
    assert!(
        AskError::ZeroTimeout { actor: actor.id() }
            .to_string()
            .contains("give it a timeout"),
    );
}

/// `tell` sends when called, awaited or not: `let _ = actor.tell(m)`
/// delivers. A refusal comes back to whoever awaits it, and becomes a dead
/// letter when no one does.
#[tokio::test(start_paused = true)]
// `let _ = actor.tell(m)` is the habit under test (clippy flags it too).
#[allow(clippy::let_underscore_future)]
async fn a_tell_sends_at_once_and_an_unawaited_refusal_is_a_dead_letter() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&actor, Cmd::Park).await;

    let _ = actor.tell(Cmd::Rec(1));
    assert_eq!(actor.mailbox_len(), 1, "sent without an await");
    let sending = actor.tell(Cmd::Rec(2));
    assert_eq!(actor.mailbox_len(), 2, "sent before the await");
    sending.await.expect("already queued");
    key.release();
    assert_eq!(actor.ask(|r| Cmd::Echo(0, r), PATIENCE).await, Ok(0));
    assert_eq!(journal.log(), vec![1, 2]);

    assert!(actor.stop());
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    let stopped = || system.dead_letters().count(DeadLetterReason::ActorStopped);
    let before = stopped();
    let _ = actor.tell(Cmd::Rec(4));
    assert_eq!(
        stopped(),
        before + 1,
        "an unawaited refusal is a dead letter"
    );
    let refused = actor.tell(Cmd::Rec(5)).await.expect_err("stopped");
    assert_eq!(refused.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(refused.into_message(), Cmd::Rec(5)));
    assert_eq!(stopped(), before + 1, "an awaited refusal is handed back");
}

#[tokio::test(start_paused = true)]
async fn ask_to_a_stopped_actor_is_actor_stopped() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    assert!(actor.stop());
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    let began = Instant::now();
    let err = actor.ask(|r| Cmd::Echo(1, r), PATIENCE).await.unwrap_err();
    assert_eq!(err, AskError::ActorStopped { actor: actor.id() });
    assert_eq!(began.elapsed(), Duration::ZERO, "failed at once");
    assert!(err.to_string().contains("has stopped"), "{err}");
    assert_eq!(
        system.dead_letters().total(),
        0,
        "a refused request is not a dead letter"
    );
}

#[tokio::test(start_paused = true)]
async fn ask_to_a_killed_actor_is_actor_stopped() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    actor.kill();
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    assert_eq!(
        actor.ask(|r| Cmd::Echo(1, r), PATIENCE).await,
        Err(AskError::ActorStopped { actor: actor.id() })
    );
}

#[tokio::test(start_paused = true)]
async fn ask_whose_reply_port_is_dropped_is_no_reply_at_once() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let began = Instant::now();
    assert_eq!(
        actor.ask(Cmd::Discard, PATIENCE).await,
        Err(AskError::NoReply { actor: actor.id() })
    );
    assert_eq!(
        began.elapsed(),
        Duration::ZERO,
        "NoReply must not wait for the timeout"
    );
    assert!(actor.is_alive());
}

#[tokio::test(start_paused = true)]
async fn ask_pending_when_the_actor_stops_resolves_with_no_reply() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let key = park(&actor, Cmd::Park).await;
    let mut ask = std::pin::pin!(actor.ask(|r| Cmd::Echo(1, r), PATIENCE));
    assert!(
        futures::poll!(ask.as_mut()).is_pending(),
        "the request is queued behind the gate"
    );
    assert_eq!(actor.mailbox_len(), 1);
    assert!(actor.stop());
    key.release();
    let began = Instant::now();
    assert_eq!(ask.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(
        began.elapsed(),
        Duration::ZERO,
        "resolved without a timeout"
    );
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    let letters = system.dead_letters().recent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::ActorStopped);
    assert_eq!(letters[0].recipient, actor.id());
    assert!(letters[0].message.starts_with("Echo(1"), "{}", letters[0]);
}

#[tokio::test(start_paused = true)]
async fn ask_pending_when_the_actor_is_killed_resolves_with_no_reply() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    // Parked and never released: only a kill ends it.
    let _key = park(&actor, Cmd::Park).await;
    let mut ask = std::pin::pin!(actor.ask(|r| Cmd::Echo(1, r), PATIENCE));
    assert!(futures::poll!(ask.as_mut()).is_pending());
    actor.kill();
    assert_eq!(ask.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(exit_of(&actor).await, ExitReason::Killed);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorKilled),
        1
    );
    assert_eq!(journal.post_stops(), 0, "a kill skips post_stop");
}

#[tokio::test(start_paused = true)]
async fn ask_with_an_unbounded_timeout_does_not_panic() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    assert_eq!(actor.ask(|r| Cmd::Echo(4, r), Duration::MAX).await, Ok(4));
}

// ---------------------------------------------------------------------------
// Sending to a stopped actor
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_send_to_a_stopped_actor_returns_the_message() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    actor.stop();
    exit_of(&actor).await;
    assert!(!actor.is_alive());

    let err = actor.tell(Cmd::Rec(1)).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert_eq!(err.actor(), actor.id());
    assert!(err.to_string().contains("stopped"), "{err}");
    assert!(matches!(err.into_message(), Cmd::Rec(1)));

    let err = actor.try_tell(Cmd::Rec(2)).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.message(), Cmd::Rec(2)));

    let envelope = MessageEnvelope::new(actor.id().into(), Cmd::Rec(3));
    let err = actor.tell_envelope(envelope).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.into_message().payload, Cmd::Rec(3)));

    assert!(journal.log().is_empty());
    assert_eq!(
        system.dead_letters().total(),
        0,
        "returned messages are not also dead letters"
    );
}

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_envelope_is_not_handled_and_becomes_a_dead_letter() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
    let to = || actor.id().into();
    actor
        .tell_envelope(MessageEnvelope::new(to(), Cmd::Rec(1)).with_ttl(Duration::ZERO))
        .await
        .expect("an expired envelope is still accepted");
    actor
        .tell_envelope(MessageEnvelope::new(to(), Cmd::Rec(2)).with_ttl(Duration::from_secs(3600)))
        .await
        .unwrap();
    actor
        .tell_envelope(MessageEnvelope::new(to(), Cmd::Rec(3)))
        .await
        .unwrap();
    actor.tell(Cmd::Rec(4)).await.unwrap();
    assert_eq!(actor.ask(Cmd::Log, PATIENCE).await.unwrap(), vec![2, 3, 4]);
    assert_eq!(system.dead_letters().count(DeadLetterReason::Expired), 1);
    assert_eq!(system.dead_letters().total(), 1);
    let letter = &system.dead_letters().recent()[0];
    assert_eq!(letter.reason, DeadLetterReason::Expired);
    assert_eq!(letter.recipient, actor.id());
    assert_eq!(letter.message_type, "it.cmd");
    assert_eq!(letter.message, "Rec(1)");
}

#[tokio::test]
async fn an_envelope_priority_overrides_the_message_priority() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn_builder()
        .priority()
        .spawn(Recorder::new(&journal))
        .unwrap();
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::At(MessagePriority::High, 1)).await.unwrap();
    // Low by itself, but sent as Critical.
    actor
        .tell_envelope(
            MessageEnvelope::new(actor.id().into(), Cmd::At(MessagePriority::Low, 2))
                .with_priority(MessagePriority::Critical),
        )
        .await
        .unwrap();
    actor.tell(Cmd::At(MessagePriority::Low, 3)).await.unwrap();
    key.release();
    assert_eq!(journal.wait_len(3).await, vec![2, 1, 3]);
}

// ---------------------------------------------------------------------------
// Timers (paused clock: time moves only when every task is idle, so after a
// sleep everything due before its end has been handled)
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum TimerCmd {
    After(Duration, u64, ReplyTo<TaskHandle>),
    Every(Duration, u64, ReplyTo<TaskHandle>),
    Fired(u64),
    Log(ReplyTo<Vec<u64>>),
}

impl Message for TimerCmd {
    const MESSAGE_TYPE: &'static str = "it.timer";
}

struct Timed {
    journal: Arc<Journal>,
}

impl Actor for Timed {
    type Message = TimerCmd;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        cmd: TimerCmd,
        ctx: &mut ActorContext<TimerCmd>,
    ) -> Result<(), Self::Error> {
        match cmd {
            TimerCmd::After(delay, v, reply) => {
                let _ = reply.reply(ctx.send_after(delay, TimerCmd::Fired(v)));
            }
            TimerCmd::Every(period, v, reply) => {
                let _ = reply.reply(ctx.send_interval(period, move || TimerCmd::Fired(v)));
            }
            TimerCmd::Fired(v) => self.journal.push(v),
            TimerCmd::Log(reply) => {
                let _ = reply.reply(self.journal.log());
            }
        }
        Ok(())
    }
}

fn spawn_timed(system: &ActorSystem, journal: &Arc<Journal>) -> ActorRef<TimerCmd> {
    system
        .spawn(Timed {
            journal: journal.clone(),
        })
        .unwrap()
}

async fn advance_by(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn send_after_delivers_once_after_the_delay() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_timed(&system, &journal);
    let handle = actor
        .ask(|r| TimerCmd::After(Duration::from_secs(10), 7, r), PATIENCE)
        .await
        .unwrap();
    advance_by(9_900).await;
    assert!(
        actor.ask(TimerCmd::Log, PATIENCE).await.unwrap().is_empty(),
        "delivered early"
    );
    advance_by(200).await;
    assert_eq!(actor.ask(TimerCmd::Log, PATIENCE).await.unwrap(), vec![7]);
    advance_by(60_000).await;
    assert_eq!(
        actor.ask(TimerCmd::Log, PATIENCE).await.unwrap(),
        vec![7],
        "send_after fires once"
    );
    assert!(handle.is_finished());
}

#[tokio::test(start_paused = true)]
async fn send_interval_repeats_until_the_actor_stops() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_timed(&system, &journal);
    let handle = actor
        .ask(|r| TimerCmd::Every(Duration::from_secs(1), 1, r), PATIENCE)
        .await
        .unwrap();
    advance_by(500).await;
    assert_eq!(journal.len(), 0, "the first tick comes after one period");
    advance_by(3_000).await; // t = 3.5 s
    assert_eq!(journal.len(), 3);
    advance_by(2_000).await; // t = 5.5 s
    assert_eq!(journal.len(), 5);
    assert!(!handle.is_finished());

    actor.stop();
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    let ticks = journal.len();
    // t = 5.8 s: before the next tick would even try to send, the timer is
    // already gone (cancelled with the actor, not ended by a failed send).
    advance_by(300).await;
    assert!(handle.is_finished(), "the interval outlived its actor");
    advance_by(30_000).await;
    assert_eq!(journal.len(), ticks, "ticks after the actor stopped");
    assert_eq!(
        system.dead_letters().total(),
        0,
        "no tick was even attempted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_interval_stops_while_the_actor_lives() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_timed(&system, &journal);
    let handle = actor
        .ask(|r| TimerCmd::Every(Duration::from_secs(1), 1, r), PATIENCE)
        .await
        .unwrap();
    advance_by(2_500).await;
    assert_eq!(journal.len(), 2);
    handle.cancel();
    advance_by(10_000).await;
    assert_eq!(journal.len(), 2);
    assert!(handle.is_finished());
    assert!(actor.is_alive());
}

#[tokio::test(start_paused = true)]
async fn a_pending_send_after_is_cancelled_when_the_actor_stops() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_timed(&system, &journal);
    let handle = actor
        .ask(|r| TimerCmd::After(Duration::from_secs(10), 1, r), PATIENCE)
        .await
        .unwrap();
    advance_by(5_000).await;
    actor.stop();
    exit_of(&actor).await;
    // t = 6 s, before the timer is due: it was cancelled with the actor.
    advance_by(1_000).await;
    assert!(handle.is_finished(), "the timer outlived its actor");
    advance_by(20_000).await;
    assert_eq!(journal.len(), 0);
    assert_eq!(system.dead_letters().total(), 0);
}

/// A `send_interval` or `send_after` of `Duration::MAX` neither overflows
/// when it is scheduled (the handler scheduling it would panic, and its
/// reply would be `NoReply`) nor ever fires.
#[tokio::test(start_paused = true)]
async fn a_timer_with_an_enormous_period_never_fires_and_does_not_panic() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_timed(&system, &journal);
    actor
        .ask(|r| TimerCmd::Every(Duration::MAX, 1, r), PATIENCE)
        .await
        .expect("send_interval(Duration::MAX) is scheduled");
    actor
        .ask(|r| TimerCmd::After(Duration::MAX, 2, r), PATIENCE)
        .await
        .expect("send_after(Duration::MAX) is scheduled");
    // Ten years.
    tokio::time::sleep(Duration::from_secs(10 * 365 * 24 * 3600)).await;
    assert_eq!(
        actor.ask(TimerCmd::Log, PATIENCE).await.unwrap(),
        Vec::<u64>::new(),
        "a timer of Duration::MAX fired"
    );
    assert!(actor.is_alive());
}

// ---------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum ParentCmd {
    /// Spawn a child `Recorder` logging into the parent's journal.
    SpawnChild(ReplyTo<ActorRef<Cmd>>),
    /// Refs of the whole chain below this actor, nearest first.
    Chain(ReplyTo<Vec<ActorRef<ParentCmd>>>),
    Panic,
}

impl Message for ParentCmd {
    const MESSAGE_TYPE: &'static str = "it.parent";
}

/// Spawns `depth` nested `Parent`s below itself in `pre_start`.
struct Parent {
    journal: Arc<Journal>,
    depth: usize,
    below: Option<ActorRef<ParentCmd>>,
}

impl Actor for Parent {
    type Message = ParentCmd;
    type Error = SystemError;

    async fn pre_start(&mut self, ctx: &mut ActorContext<ParentCmd>) -> Result<(), SystemError> {
        if self.depth > 0 {
            self.below = Some(ctx.spawn_child().spawn(Parent {
                journal: self.journal.clone(),
                depth: self.depth - 1,
                below: None,
            })?);
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        cmd: ParentCmd,
        ctx: &mut ActorContext<ParentCmd>,
    ) -> Result<(), SystemError> {
        match cmd {
            ParentCmd::SpawnChild(reply) => {
                let child = ctx
                    .spawn_child()
                    .name("child")
                    .spawn(Recorder::new(&self.journal))?;
                let _ = reply.reply(child);
            }
            ParentCmd::Chain(reply) => {
                let mut chain = Vec::new();
                if let Some(below) = &self.below {
                    chain.push(below.clone());
                    chain.extend(
                        below
                            .ask(ParentCmd::Chain, PATIENCE)
                            .await
                            .unwrap_or_default(),
                    );
                }
                let _ = reply.reply(chain);
            }
            ParentCmd::Panic => panic!("parent down"),
        }
        Ok(())
    }
}

fn spawn_parent(system: &ActorSystem, journal: &Arc<Journal>, depth: usize) -> ActorRef<ParentCmd> {
    system
        .spawn(Parent {
            journal: journal.clone(),
            depth,
            below: None,
        })
        .unwrap()
}

#[tokio::test]
async fn a_child_is_shut_down_when_its_parent_stops() {
    let system = system();
    let journal = Journal::new();
    let parent = spawn_parent(&system, &journal, 0);
    let child = parent.ask(ParentCmd::SpawnChild, PATIENCE).await.unwrap();
    assert_eq!(child.name(), Some("child"));
    assert_eq!(child.ask(|r| Cmd::Echo(3, r), PATIENCE).await, Ok(3));
    assert_eq!(system.actor_count(), 2);
    parent.stop();
    assert_eq!(exit_of(&parent).await, ExitReason::Normal);
    assert_eq!(exit_of(&child).await, ExitReason::Shutdown);
    assert_eq!(journal.post_stops(), 1, "the child ran post_stop");
    within(system.all_stopped()).await;
    assert_eq!(system.actor_count(), 0);
}

#[tokio::test]
async fn children_are_shut_down_when_their_parent_panics() {
    let system = system();
    let journal = Journal::new();
    let parent = spawn_parent(&system, &journal, 0);
    let first = parent.ask(ParentCmd::SpawnChild, PATIENCE).await.unwrap();
    let second = parent.ask(ParentCmd::SpawnChild, PATIENCE).await.unwrap();
    parent.tell(ParentCmd::Panic).await.unwrap();
    assert_eq!(
        exit_of(&parent).await,
        ExitReason::Panic("parent down".into())
    );
    assert_eq!(exit_of(&first).await, ExitReason::Shutdown);
    assert_eq!(exit_of(&second).await, ExitReason::Shutdown);
}

#[tokio::test]
async fn stopping_the_root_shuts_down_a_chain_of_descendants() {
    let system = system();
    let journal = Journal::new();
    let root = spawn_parent(&system, &journal, 3);
    let chain = root.ask(ParentCmd::Chain, PATIENCE).await.unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(system.actor_count(), 4);
    root.stop();
    assert_eq!(exit_of(&root).await, ExitReason::Normal);
    for descendant in &chain {
        assert_eq!(exit_of(descendant).await, ExitReason::Shutdown);
    }
    within(system.all_stopped()).await;
}

// ---------------------------------------------------------------------------
// Ownership: the actor loop moves each message out of its mailbox slot in
// place (no copy through a returned value); every message must be dropped
// exactly once, whatever the lanes.
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Owned {
    Keep(Arc<()>),
    Handled(ReplyTo<u64>),
}

impl Message for Owned {
    const MESSAGE_TYPE: &'static str = "it.owned";
}

struct Dropper(u64);

impl Actor for Dropper {
    type Message = Owned;
    type Error = std::convert::Infallible;
    async fn handle_message(
        &mut self,
        message: Owned,
        _: &mut ActorContext<Owned>,
    ) -> Result<(), Self::Error> {
        match message {
            Owned::Keep(token) => {
                self.0 += 1;
                drop(token);
            }
            Owned::Handled(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_dropped_exactly_once_whatever_the_lanes() {
    let system = system();
    let mailboxes = [
        MailboxConfig::unbounded(),
        MailboxConfig::bounded(4, Backpressure::Block),
        MailboxConfig::bounded(10_000, Backpressure::DropOldest),
        MailboxConfig::unbounded().with_kind(MailboxKind::Priority),
    ];
    for mailbox in mailboxes {
        let token = Arc::new(());
        let actor = system
            .spawn_builder()
            .mailbox(mailbox)
            .spawn(Dropper(0))
            .unwrap();
        for i in 0..500 {
            if i % 5 == 0 {
                let envelope = MessageEnvelope::new(actor.id().into(), Owned::Keep(token.clone()));
                actor.tell_envelope(envelope).await.unwrap();
            } else {
                actor.tell(Owned::Keep(token.clone())).await.unwrap();
            }
        }
        let handled = actor.ask(Owned::Handled, PATIENCE).await.unwrap();
        assert_eq!(handled, 500, "{mailbox:?}");
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "{mailbox:?}: a message leaked"
        );
        actor.stop();
    }
}
