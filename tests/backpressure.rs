//! Bounded mailboxes: every backpressure strategy with the actor provably
//! busy (parked on a gate), priority order, and the system lane past a full
//! mailbox.

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use common::{
    Cmd, Journal, PATIENCE, dead_messages, exit_of, park, rendered, spawn_recorder, system, within,
};
use tokio::sync::Barrier;
use tokio::time::Instant;

// ---------------------------------------------------------------------------
// Block
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Count {
    Item { producer: usize, seq: u64 },
    Report(ReplyTo<CountReport>),
}

impl Message for Count {
    const MESSAGE_TYPE: &'static str = "it.count";
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CountReport {
    total: u64,
    next: Vec<u64>,
    out_of_order: u64,
    /// Highest mailbox length seen while handling.
    high_water: usize,
}

/// Counts items and checks per-producer order as they arrive.
struct Counter {
    report: CountReport,
}

impl Actor for Counter {
    type Message = Count;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        msg: Count,
        ctx: &mut ActorContext<Count>,
    ) -> Result<(), Self::Error> {
        let len = ctx.myself().mailbox_len();
        self.report.high_water = self.report.high_water.max(len);
        match msg {
            Count::Item { producer, seq } => {
                self.report.total += 1;
                if self.report.next[producer] != seq {
                    self.report.out_of_order += 1;
                }
                self.report.next[producer] = seq + 1;
            }
            Count::Report(reply) => {
                let _ = reply.reply(self.report.clone());
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_eight_producers_into_a_small_mailbox_lose_nothing() {
    const PRODUCERS: usize = 8;
    const EACH: u64 = 10_000;
    const CAPACITY: usize = 16;
    let system = system();
    let counter = system
        .spawn_builder()
        .bounded(CAPACITY, Backpressure::Block)
        .spawn(Counter {
            report: CountReport {
                total: 0,
                next: vec![0; PRODUCERS],
                out_of_order: 0,
                high_water: 0,
            },
        })
        .unwrap();
    assert_eq!(counter.mailbox_capacity(), Some(CAPACITY));
    assert_eq!(counter.backpressure(), Backpressure::Block);
    let start = Arc::new(Barrier::new(PRODUCERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let counter = counter.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                for seq in 0..EACH {
                    counter
                        .tell(Count::Item { producer, seq })
                        .await
                        .expect("Block never refuses a live actor");
                }
            })
        })
        .collect();
    for producer in producers {
        within(producer).await.unwrap();
    }
    let report = counter.ask(Count::Report, PATIENCE).await.unwrap();
    assert_eq!(report.total, PRODUCERS as u64 * EACH);
    assert_eq!(report.out_of_order, 0);
    assert_eq!(report.next, vec![EACH; PRODUCERS]);
    assert!(
        report.high_water <= CAPACITY,
        "mailbox held {} > capacity {CAPACITY}",
        report.high_water
    );
    assert_eq!(counter.dropped_messages(), 0);
    assert_eq!(system.dead_letters().total(), 0);
}

#[tokio::test]
async fn block_tell_waits_while_full_and_completes_when_room_appears() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(2, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();

    let full = actor.try_tell(Cmd::Rec(3)).unwrap_err();
    assert_eq!(full.kind(), SendErrorKind::MailboxFull);
    let mut blocked = pin!(actor.tell(full.into_message()));
    for _ in 0..3 {
        assert!(
            futures::poll!(blocked.as_mut()).is_pending(),
            "tell must wait while the mailbox is full"
        );
    }
    assert_eq!(actor.mailbox_len(), 2);
    key.release();
    within(blocked).await.expect("room appeared");
    assert_eq!(journal.wait_len(3).await, vec![1, 2, 3]);
    assert_eq!(system.dead_letters().total(), 0);
}

/// A tell waiting for room that is dropped (a `select!` that went another
/// way, a task cancelled) leaves its message in the dead letters.
#[tokio::test]
async fn block_a_wait_for_room_given_up_is_a_dead_letter() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(1, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    let mut blocked = Box::pin(actor.tell(Cmd::Rec(2)));
    assert!(futures::poll!(blocked.as_mut()).is_pending());
    drop(blocked);
    let letters = system.dead_letters().recent();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::DroppedNewest);
    // And one dropped before it was ever polled.
    drop(actor.tell(Cmd::Rec(3)));
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::DroppedNewest),
        2
    );
    key.release();
    assert_eq!(journal.wait_len(1).await, vec![1]);
    assert_eq!(actor.ask(|r| Cmd::Echo(9, r), PATIENCE).await, Ok(9));
    assert_eq!(journal.log(), vec![1], "the given-up messages never arrive");
}

#[tokio::test]
async fn block_a_waiting_sender_gets_its_message_back_when_the_actor_stops() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(2, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    let mut blocked = pin!(actor.tell(Cmd::Rec(3)));
    assert!(futures::poll!(blocked.as_mut()).is_pending());
    assert!(actor.stop());
    key.release();
    let err = within(blocked).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.into_message(), Cmd::Rec(3)));
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    assert!(journal.log().is_empty());
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorStopped),
        rendered(1..=2)
    );
}

#[tokio::test(start_paused = true)]
async fn block_ask_times_out_while_waiting_for_room() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(2, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    let timeout = Duration::from_secs(5);
    let began = Instant::now();
    assert_eq!(
        actor.ask(|r| Cmd::Echo(3, r), timeout).await,
        Err(AskError::Timeout {
            actor: actor.id(),
            timeout
        })
    );
    assert!(began.elapsed() >= timeout);
    assert_eq!(actor.mailbox_len(), 2, "the request never got in");
    key.release();
    assert_eq!(actor.ask(Cmd::Log, PATIENCE).await.unwrap(), vec![1, 2]);
}

#[tokio::test(start_paused = true)]
async fn block_ask_waiting_for_room_fails_with_actor_stopped_when_the_actor_stops() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(1, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    let mut ask = pin!(actor.ask(|r| Cmd::Echo(2, r), PATIENCE));
    assert!(futures::poll!(ask.as_mut()).is_pending());
    actor.stop();
    key.release();
    let began = Instant::now();
    assert_eq!(ask.await, Err(AskError::ActorStopped { actor: actor.id() }));
    assert_eq!(began.elapsed(), Duration::ZERO, "no wait for the timeout");
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorStopped),
        rendered([1])
    );
}

// ---------------------------------------------------------------------------
// Reject
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn reject_returns_the_message_when_full() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(3, Backpressure::Reject),
    );
    let key = park(&actor, Cmd::Park).await;
    for v in 0..3 {
        actor.tell(Cmd::Rec(v)).await.expect("room for three");
    }
    assert_eq!(actor.mailbox_len(), 3);

    let err = actor.tell(Cmd::Rec(99)).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::MailboxFull);
    assert_eq!(err.actor(), actor.id());
    assert!(err.to_string().contains("full"), "{err}");
    assert!(matches!(err.into_message(), Cmd::Rec(99)));

    let err = actor.try_tell(Cmd::Rec(98)).unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::MailboxFull);
    assert!(matches!(err.into_message(), Cmd::Rec(98)));

    let envelope = MessageEnvelope::new(actor.id().into(), Cmd::Rec(97));
    let err = actor.tell_envelope(envelope).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::MailboxFull);
    assert!(matches!(err.into_message().payload, Cmd::Rec(97)));

    let began = Instant::now();
    assert_eq!(
        actor.ask(|r| Cmd::Echo(1, r), PATIENCE).await,
        Err(AskError::MailboxFull { actor: actor.id() })
    );
    assert_eq!(began.elapsed(), Duration::ZERO, "Reject never waits");

    assert_eq!(actor.mailbox_len(), 3);
    key.release();
    assert_eq!(journal.wait_len(3).await, vec![0, 1, 2]);
    // Room again: the next send is accepted.
    actor.tell(Cmd::Rec(3)).await.unwrap();
    assert_eq!(journal.wait_len(4).await, vec![0, 1, 2, 3]);
    assert_eq!(
        system.dead_letters().total(),
        0,
        "rejected messages are returned, not dead letters"
    );
    assert_eq!(actor.dropped_messages(), 0);
}

// ---------------------------------------------------------------------------
// DropOldest / DropNewest
// ---------------------------------------------------------------------------

/// A `bounded(4, DropOldest)` recorder, parked, told `Rec(0..10)`: it
/// holds `Rec(6..10)` and has dropped the six oldest.
async fn parked_drop_oldest_after_ten(
    system: &ActorSystem,
    journal: &Arc<Journal>,
) -> (ActorRef<Cmd>, common::GateKey) {
    let actor = spawn_recorder(
        system,
        journal,
        MailboxConfig::bounded(4, Backpressure::DropOldest),
    );
    let key = park(&actor, Cmd::Park).await;
    for v in 0..10 {
        actor.tell(Cmd::Rec(v)).await.expect("DropOldest accepts");
    }
    assert_eq!(actor.mailbox_len(), 4);
    assert_eq!(actor.dropped_messages(), 6);
    (actor, key)
}

#[tokio::test]
async fn drop_oldest_drops_exactly_the_oldest_and_records_them() {
    let system = system();
    let journal = Journal::new();
    let (actor, key) = parked_drop_oldest_after_ten(&system, &journal).await;
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::DroppedOldest),
        6
    );
    assert_eq!(
        dead_messages(&system, DeadLetterReason::DroppedOldest),
        rendered(0..6)
    );
    assert!(
        system
            .dead_letters()
            .recent()
            .iter()
            .all(|l| l.recipient == actor.id() && l.message_type == "it.cmd")
    );
    key.release();
    assert_eq!(journal.wait_len(4).await, vec![6, 7, 8, 9]);
    // Nothing else was queued: the survivors are all the actor handles.
    assert_eq!(
        actor.ask(Cmd::Log, PATIENCE).await.unwrap(),
        vec![6, 7, 8, 9]
    );
    assert_eq!(system.dead_letters().total(), 6);
}

/// An ask sent into a full DropOldest mailbox is accepted like a tell: it
/// pushes out the oldest queued message (recorded with the earlier drops,
/// in order) and is answered once the actor gets to it.
#[tokio::test]
async fn drop_oldest_an_ask_into_a_full_mailbox_evicts_the_oldest() {
    let system = system();
    let journal = Journal::new();
    let (actor, key) = parked_drop_oldest_after_ten(&system, &journal).await;
    // While the actor is still parked, the request pushes out Rec(6) too.
    let mut ask = pin!(actor.ask(Cmd::Log, PATIENCE));
    assert!(futures::poll!(ask.as_mut()).is_pending());
    assert_eq!(actor.dropped_messages(), 7);
    assert_eq!(actor.mailbox_len(), 4);
    key.release();
    assert_eq!(within(ask).await.unwrap(), vec![7, 8, 9]);
    assert_eq!(
        dead_messages(&system, DeadLetterReason::DroppedOldest),
        rendered(0..7)
    );
    assert_eq!(system.dead_letters().total(), 7);
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_evicting_an_ask_resolves_it_with_no_reply() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(2, Backpressure::DropOldest),
    );
    let key = park(&actor, Cmd::Park).await;
    let mut ask = pin!(actor.ask(|r| Cmd::Echo(5, r), PATIENCE));
    assert!(futures::poll!(ask.as_mut()).is_pending());
    actor.tell(Cmd::Rec(1)).await.unwrap();
    actor.tell(Cmd::Rec(2)).await.unwrap();
    // The request was the oldest message: evicted while the actor is parked.
    let began = Instant::now();
    assert_eq!(ask.await, Err(AskError::NoReply { actor: actor.id() }));
    assert_eq!(began.elapsed(), Duration::ZERO);
    let dropped = dead_messages(&system, DeadLetterReason::DroppedOldest);
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].starts_with("Echo(5"), "{dropped:?}");
    key.release();
    assert_eq!(journal.wait_len(2).await, vec![1, 2]);
}

#[tokio::test]
async fn drop_newest_drops_exactly_the_newcomers_and_records_them() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(4, Backpressure::DropNewest),
    );
    let key = park(&actor, Cmd::Park).await;
    for v in 0..10 {
        actor.tell(Cmd::Rec(v)).await.expect("DropNewest accepts");
    }
    assert_eq!(actor.mailbox_len(), 4);
    assert_eq!(actor.dropped_messages(), 6);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::DroppedNewest),
        6
    );
    assert_eq!(
        dead_messages(&system, DeadLetterReason::DroppedNewest),
        rendered(4..10)
    );
    key.release();
    assert_eq!(journal.wait_len(4).await, vec![0, 1, 2, 3]);
    assert_eq!(
        actor.ask(Cmd::Log, PATIENCE).await.unwrap(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(system.dead_letters().total(), 6);
}

#[tokio::test(start_paused = true)]
async fn drop_newest_dropping_an_ask_resolves_it_with_no_reply() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(1, Backpressure::DropNewest),
    );
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::Rec(1)).await.unwrap();
    let began = Instant::now();
    assert_eq!(
        actor.ask(|r| Cmd::Echo(2, r), PATIENCE).await,
        Err(AskError::NoReply { actor: actor.id() })
    );
    assert_eq!(began.elapsed(), Duration::ZERO);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::DroppedNewest),
        1
    );
    key.release();
    assert_eq!(journal.wait_len(1).await, vec![1]);
}

// ---------------------------------------------------------------------------
// Priority
// ---------------------------------------------------------------------------

/// A fixed pseudo-random sequence of priorities (64-bit LCG).
fn priorities(n: usize) -> Vec<MessagePriority> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            MessagePriority::HIGHEST_FIRST[(state >> 62) as usize]
        })
        .collect()
}

#[tokio::test]
async fn priority_mailbox_serves_highest_first_fifo_within_a_priority() {
    const N: usize = 200;
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn_builder()
        .priority()
        .spawn(common::Recorder::new(&journal))
        .unwrap();
    let key = park(&actor, Cmd::Park).await;
    let sent: Vec<(MessagePriority, u64)> = priorities(N).into_iter().zip(0u64..).collect();
    for level in MessagePriority::HIGHEST_FIRST {
        assert!(
            sent.iter().any(|(p, _)| *p == level),
            "the sequence covers {level:?}"
        );
    }
    for (priority, v) in &sent {
        actor.tell(Cmd::At(*priority, *v)).await.unwrap();
    }
    key.release();
    let mut expected = sent.clone();
    // Stable: equal priorities keep their sending order.
    expected.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
    let expected: Vec<u64> = expected.into_iter().map(|(_, v)| v).collect();
    assert_eq!(journal.wait_len(N).await, expected);
}

#[tokio::test]
async fn priority_drop_oldest_sacrifices_the_oldest_of_the_lowest_priority() {
    use MessagePriority::{Critical, High, Low, Normal};
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn_builder()
        .priority()
        .bounded(3, Backpressure::DropOldest)
        .spawn(common::Recorder::new(&journal))
        .unwrap();
    let key = park(&actor, Cmd::Park).await;
    for (p, v) in [
        (Critical, 1),
        (Low, 2),
        (High, 3),
        (Low, 4),
        (Normal, 5),
        (Critical, 6),
    ] {
        actor.tell(Cmd::At(p, v)).await.unwrap();
    }
    assert_eq!(
        dead_messages(&system, DeadLetterReason::DroppedOldest),
        vec!["At(Low, 2)", "At(Low, 4)", "At(Normal, 5)"]
    );
    assert_eq!(actor.dropped_messages(), 3);
    key.release();
    assert_eq!(journal.wait_len(3).await, vec![1, 6, 3]);
}

#[tokio::test]
async fn priority_reject_refuses_even_critical_messages_when_full() {
    let system = system();
    let journal = Journal::new();
    let actor = system
        .spawn_builder()
        .priority()
        .bounded(2, Backpressure::Reject)
        .spawn(common::Recorder::new(&journal))
        .unwrap();
    let key = park(&actor, Cmd::Park).await;
    actor.tell(Cmd::At(MessagePriority::Low, 1)).await.unwrap();
    actor.tell(Cmd::At(MessagePriority::Low, 2)).await.unwrap();
    let err = actor
        .tell(Cmd::At(MessagePriority::Critical, 3))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::MailboxFull);
    assert!(matches!(
        err.into_message(),
        Cmd::At(MessagePriority::Critical, 3)
    ));
    key.release();
    assert_eq!(journal.wait_len(2).await, vec![1, 2]);
}

// ---------------------------------------------------------------------------
// The system lane past a full mailbox
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_stop_reaches_an_actor_whose_block_mailbox_is_full() {
    const CAPACITY: u64 = 8;
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(CAPACITY as usize, Backpressure::Block),
    );
    let key = park(&actor, Cmd::Park).await;
    for v in 0..CAPACITY {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    assert_eq!(actor.mailbox_len(), CAPACITY as usize);
    assert_eq!(
        actor.try_tell(Cmd::Rec(100)).unwrap_err().kind(),
        SendErrorKind::MailboxFull
    );
    // A sender is already waiting for room as well.
    let mut blocked = pin!(actor.tell(Cmd::Rec(101)));
    assert!(futures::poll!(blocked.as_mut()).is_pending());

    assert!(actor.stop(), "the stop is accepted past a full mailbox");
    key.release();
    assert_eq!(exit_of(&actor).await, ExitReason::Normal);
    assert!(journal.log().is_empty(), "the stop overtook the queue");
    assert_eq!(
        dead_messages(&system, DeadLetterReason::ActorStopped),
        rendered(0..CAPACITY)
    );
    let err = within(blocked).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.into_message(), Cmd::Rec(101)));
    assert_eq!(journal.post_stops(), 1);
}

#[tokio::test]
async fn a_shutdown_reaches_an_actor_whose_reject_mailbox_is_full() {
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(
        &system,
        &journal,
        MailboxConfig::bounded(4, Backpressure::Reject),
    );
    let key = park(&actor, Cmd::Park).await;
    for v in 0..4 {
        actor.tell(Cmd::Rec(v)).await.unwrap();
    }
    let mut shutdown = pin!(system.shutdown(PATIENCE));
    assert!(
        futures::poll!(shutdown.as_mut()).is_pending(),
        "the actor is still parked"
    );
    key.release();
    let report = shutdown.await;
    assert_eq!(
        (report.actors, report.stopped_cleanly, report.killed),
        (1, 1, 0)
    );
    assert_eq!(report.dead_letters, 4);
    assert_eq!(exit_of(&actor).await, ExitReason::Shutdown);
    assert!(journal.log().is_empty());
}

#[tokio::test]
async fn an_invalid_mailbox_is_refused_with_a_clear_error() {
    let system = system();
    let err = system
        .spawn_builder()
        .bounded(0, Backpressure::Reject)
        .spawn(common::Recorder::new(&Journal::new()))
        .unwrap_err();
    match err {
        SystemError::InvalidMailbox(text) => assert!(text.contains("at least 1"), "{text}"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(system.actor_count(), 0);
}
