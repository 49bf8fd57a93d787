//! Dead letters: what the office keeps of a message that will never be
//! handled. (Its own test binary: it counts allocations with a global
//! allocator, per thread.)

#[path = "support/counting.rs"]
mod counting;

use std::convert::Infallible;

use airssys_rt::mailbox::{DeadLetter, DeadLetterReason};
use airssys_rt::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

#[derive(Debug)]
struct Blob(Vec<u8>);

impl Message for Blob {
    const MESSAGE_TYPE: &'static str = "test.blob";
}

struct Sink;

impl Actor for Sink {
    type Message = Blob;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        blob: Blob,
        _: &mut ActorContext<Blob>,
    ) -> Result<(), Infallible> {
        std::hint::black_box(blob.0.len());
        Ok(())
    }
}

/// An 8 MiB message queued behind a stop becomes a dead letter of a few
/// hundred bytes: its `Debug` text is cut at the bound while it is
/// written, never rendered whole (that was 25 MB of text, kept in the
/// ring). The current-thread runtime runs the actor's exit on this thread,
/// where the allocations are counted.
#[tokio::test]
async fn an_8_mib_message_is_dead_lettered_without_a_copy() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let sink = system.spawn(Sink).unwrap();
    // The stop is served first; the message is still queued at the exit.
    assert!(sink.stop());
    sink.tell(Blob(vec![7; 8 << 20])).await.unwrap();
    let before = counting::allocated_by_this_thread();
    sink.wait_for_exit().await;
    let allocated = counting::allocated_by_this_thread() - before;

    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorStopped),
        1
    );
    let letter = system
        .dead_letters()
        .recent()
        .pop()
        .expect("kept in the ring");
    assert_eq!(letter.message_type, "test.blob");
    assert!(
        letter.message.starts_with("Blob([7, 7, "),
        "{}",
        letter.message
    );
    assert!(letter.message.len() <= DeadLetter::SUMMARY_BYTES + '…'.len_utf8());
    assert!(
        allocated < 64 * 1024,
        "the exit allocated {allocated} B for one 8 MiB dead letter"
    );
}

/// Messages still queued when an actor is killed reach dead-letter
/// subscribers, each with its reason, in queue order.
#[tokio::test]
async fn dead_letters_are_streamed_to_subscribers() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let mut letters = system.dead_letters().subscribe();
    let sink = system.spawn(Sink).unwrap();
    // Killed before it ever runs (nothing yields until the wait): all three
    // are still queued.
    for n in 0..3u8 {
        sink.tell(Blob(vec![n])).await.unwrap();
    }
    sink.kill();
    sink.wait_for_exit().await;
    let mut seen = Vec::new();
    while let Some(letter) = letters.try_recv() {
        assert_eq!(letter.recipient, sink.id());
        assert_eq!(letter.reason, DeadLetterReason::ActorKilled);
        seen.push(letter.message);
    }
    assert_eq!(seen, ["Blob([0])", "Blob([1])", "Blob([2])"]);
}

/// Adds up the numbers it is told, and answers with the total so far.
#[derive(Debug)]
enum Sum {
    Add(u64),
    Total(ReplyTo<u64>),
}

impl Message for Sum {
    const MESSAGE_TYPE: &'static str = "test.sum";
}

#[derive(Default)]
struct Adder(u64);

impl Actor for Adder {
    type Message = Sum;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        sum: Sum,
        _: &mut ActorContext<Sum>,
    ) -> Result<(), Infallible> {
        match sum {
            Sum::Add(n) => self.0 += n,
            Sum::Total(reply) => {
                let _ = reply.reply(self.0);
            }
        }
        Ok(())
    }
}

/// Jobs queued at an actor that is killed come back typed and by value,
/// and resubmitted to a replacement they are all handled; the summary is
/// recorded as before.
#[tokio::test]
async fn reclaimed_dead_letters_come_back_typed_and_can_be_resubmitted() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let mut lost = system.dead_letters().reclaim::<Sum>();
    let first = system.spawn(Adder::default()).unwrap();
    // Killed before it runs: all ten are still queued.
    for n in 1..=10 {
        first.tell(Sum::Add(n)).await.unwrap();
    }
    first.kill();
    first.wait_for_exit().await;
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorKilled),
        10
    );

    let second = system.spawn(Adder::default()).unwrap();
    for _ in 0..10 {
        let letter = lost.try_recv().expect("handed back");
        assert_eq!(
            (letter.recipient, letter.reason),
            (first.id(), DeadLetterReason::ActorKilled)
        );
        second.tell(letter.message).await.unwrap();
    }
    assert!(lost.try_recv().is_none());
    let total = second
        .ask(Sum::Total, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(total, Ok(55));
}

/// One reclaimer per type: a newer one takes over (the older stream ends),
/// and once it is dropped letters are only summarised again.
#[tokio::test]
async fn a_newer_reclaimer_takes_over_and_a_dropped_one_stops_reclaiming() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let mut older = system.dead_letters().reclaim::<Sum>();
    let mut newer = system.dead_letters().reclaim::<Sum>();
    let lose = |n| {
        let actor = system.spawn(Adder::default()).unwrap();
        async move {
            actor.tell(Sum::Add(n)).await.unwrap();
            actor.kill();
            actor.wait_for_exit().await;
        }
    };
    lose(1).await;
    assert!(older.recv().await.is_none(), "taken over");
    assert!(matches!(newer.try_recv(), Some(letter) if matches!(letter.message, Sum::Add(1))));
    drop(newer);
    lose(2).await;
    lose(3).await;
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorKilled),
        3
    );
}
