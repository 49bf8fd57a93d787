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
