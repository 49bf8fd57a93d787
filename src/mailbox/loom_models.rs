//! loom models of the mailbox's lock-free protocols. Built only with
//! `RUSTFLAGS="--cfg loom"`, where [`crate::util::sync`] hands the queue
//! and the mailbox loom's atomics and cells, and blocks hold two slots:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test --release --no-default-features --lib loom
//! ```
//!
//! loom runs every interleaving of the threads (up to the preemption
//! bound), checks each access to a cell against the happens-before order,
//! and reports a deadlock when every thread waits: a lost wake-up. Two
//! parts are taken as correct: tokio's `Notify` (the room for blocked
//! senders) runs as one step per call, each a scheduling point, and a
//! mutex-guarded `VecDeque` stands in for crossbeam's `SegQueue` (the lane
//! `DropOldest` evicts from). loom does not model `SeqCst` loads (it
//! treats them as `Acquire`), so every store-then-load handshake in the
//! mailbox is an exchange of read-modify-writes (see `Mailbox::signal`
//! and `Mailbox::push_when_room`).

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

use super::mpsc::MpscQueue;
use super::{
    Backpressure, Mailbox, MailboxConfig, MailboxItem, PushError, Pushed, Received, SystemSignal,
};
use crate::message::MessagePriority;

/// Runs `model` under every interleaving; the preemption bound comes from
/// `LOOM_MAX_PREEMPTIONS` (2 when unset, enough for these protocols and a
/// few seconds per model).
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // Counted outside the model, so that a run says how much it explored.
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    println!(
        "{} interleavings explored",
        executions.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[derive(Debug, PartialEq, Eq, Clone, Copy, PartialOrd, Ord)]
struct Job(u32);

impl MailboxItem for Job {
    fn priority(&self) -> MessagePriority {
        MessagePriority::Normal
    }
}

/// A thread that pushes one job and returns what came back.
type Sender = thread::JoinHandle<Result<Pushed<Job>, PushError<Job>>>;

/// Pushes `job` from a new thread; the thread returns what came back.
fn push_from_thread(mailbox: &Arc<Mailbox<Job>>, job: Job) -> Sender {
    let mailbox = mailbox.clone();
    thread::spawn(move || mailbox.try_push(job))
}

/// The single-consumer block queue: two producers push two items each
/// across two-slot blocks while the consumer pops what the count says is
/// there, so blocks fill, `tail_block` moves on and the consumer frees
/// blocks behind it. Checks per-producer order, that no value is lost or
/// read before it is written, and (the loom build marks freed blocks) that
/// no producer touches a block after the consumer freed it.
#[test]
fn block_queue_across_blocks_with_reclamation() {
    check(|| {
        let queue = Arc::new(MpscQueue::new());
        // The mailbox's count: producers add before pushing, the consumer
        // pops only what is counted.
        let counted = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2u32)
            .map(|producer| {
                let (queue, counted) = (queue.clone(), counted.clone());
                thread::spawn(move || {
                    for i in 0..2 {
                        counted.fetch_add(1, SeqCst);
                        queue.push((producer, i));
                    }
                })
            })
            .collect();
        let mut next = [0u32; 2];
        let mut popped = 0;
        while popped < 4 {
            if popped == counted.load(SeqCst) {
                thread::yield_now();
                continue;
            }
            // SAFETY: the only consumer, popping a counted item.
            let (producer, i) = unsafe { queue.pop() };
            assert_eq!(
                i, next[producer as usize],
                "producer {producer} out of order"
            );
            next[producer as usize] += 1;
            popped += 1;
        }
        for producer in producers {
            producer.join().expect("producer");
        }
    });
}

/// The park/wake protocol: two senders push (one also raises a signal)
/// while the receiver parks between items, each time with a new waker (a
/// new `block_on`), so it rewrites the waker slot between parks. A lost
/// wake leaves the receiver parked forever (loom reports the deadlock); a
/// sender reading the slot while the receiver writes it is a cell race.
#[test]
fn park_and_wake_lose_no_wake() {
    check(|| {
        let mailbox = Arc::new(Mailbox::new(MailboxConfig::unbounded()));
        let first = push_from_thread(&mailbox, Job(1));
        let second = {
            let mailbox = mailbox.clone();
            thread::spawn(move || {
                let pushed = mailbox.try_push(Job(2));
                assert!(mailbox.signal(SystemSignal::Stop));
                pushed
            })
        };
        let mut receiver = mailbox.receiver().expect("the only receiver");
        let mut jobs = Vec::new();
        let mut signals = 0;
        while jobs.len() + signals < 3 {
            match block_on(receiver.recv()) {
                Received::Item(job) => jobs.push(job),
                Received::Signal(_) => signals += 1,
            }
        }
        jobs.sort();
        assert_eq!(jobs, [Job(1), Job(2)]);
        assert_eq!(first.join().expect("sender"), Ok(Pushed::Queued));
        assert_eq!(second.join().expect("sender"), Ok(Pushed::Queued));
    });
}

/// `DropOldest` with room for one, full: two senders push (each evicts the
/// oldest job) while the receiver takes twice, racing them for the last
/// job. Every job ends exactly once: received, handed back to a sender as
/// the evicted victim, or drained after close. The mailbox never holds more
/// than its capacity once the pushes are done.
#[test]
fn drop_oldest_eviction_racing_the_consumer() {
    check(|| {
        let mailbox = Arc::new(Mailbox::new(MailboxConfig::bounded(
            1,
            Backpressure::DropOldest,
        )));
        assert_eq!(mailbox.try_push(Job(0)), Ok(Pushed::Queued));
        let senders = [
            push_from_thread(&mailbox, Job(1)),
            push_from_thread(&mailbox, Job(2)),
        ];
        let mut receiver = mailbox.receiver().expect("the only receiver");
        let mut seen = Vec::new();
        for _ in 0..2 {
            if let Some(Received::Item(job)) = receiver.try_recv() {
                seen.push(job);
            }
        }
        let mut victims = 0;
        for sender in senders {
            match sender.join().expect("sender") {
                Ok(Pushed::Queued) => {}
                Ok(Pushed::DroppedOldest(victim)) => {
                    victims += 1;
                    seen.push(victim);
                }
                other => panic!("a DropOldest push came back as {other:?}"),
            }
        }
        assert!(mailbox.len() <= 1, "over capacity: {}", mailbox.len());
        assert_eq!(mailbox.dropped(), victims);
        mailbox.close();
        seen.extend(std::iter::from_fn(|| receiver.drain_one()));
        seen.sort();
        assert_eq!(
            seen,
            [Job(0), Job(1), Job(2)],
            "a job was lost or seen twice"
        );
    });
}

/// A `Block` mailbox with room for one, holding `Job(1)`, and a thread
/// pushing `Job(2)`: it waits for room (it returns what the push did).
fn sender_waiting_for_room() -> (Arc<Mailbox<Job>>, Sender) {
    let mailbox = Arc::new(Mailbox::new(MailboxConfig::bounded(1, Backpressure::Block)));
    assert_eq!(mailbox.try_push(Job(1)), Ok(Pushed::Queued));
    let sender = {
        let mailbox = mailbox.clone();
        thread::spawn(move || block_on(mailbox.push(Job(2))))
    };
    (mailbox, sender)
}

/// `Block` with room for one, full: a sender waits for room while the
/// receiver takes the queued job. The sender must be woken and its job
/// queued (a lost wake is a deadlock).
#[test]
fn blocked_sender_is_woken_when_room_appears() {
    check(|| {
        let (mailbox, sender) = sender_waiting_for_room();
        let mut receiver = mailbox.receiver().expect("the only receiver");
        assert_eq!(block_on(receiver.recv()), Received::Item(Job(1)));
        assert_eq!(block_on(receiver.recv()), Received::Item(Job(2)));
        assert_eq!(sender.join().expect("sender"), Ok(Pushed::Queued));
    });
}

/// `Block`, full, and nobody receives: the mailbox closes while a sender
/// waits for room. The sender must be told (its job comes back as
/// `Closed`), never left waiting.
#[test]
fn blocked_sender_is_told_when_the_mailbox_closes() {
    check(|| {
        let (mailbox, sender) = sender_waiting_for_room();
        let closer = {
            let mailbox = mailbox.clone();
            thread::spawn(move || assert!(mailbox.close()))
        };
        assert_eq!(
            sender.join().expect("sender"),
            Err(PushError::Closed(Job(2)))
        );
        closer.join().expect("closer");
    });
}

/// Close racing pushes, on the FIFO lane (the single-consumer queue): the
/// receiver takes what it can, then closes and drains, as an actor's exit
/// does. Every job is received, drained, or refused and handed back to its
/// sender: none is silently dropped.
#[test]
fn close_versus_push_loses_nothing() {
    check(|| {
        let mailbox = Arc::new(Mailbox::new(MailboxConfig::unbounded()));
        let senders = [
            push_from_thread(&mailbox, Job(1)),
            push_from_thread(&mailbox, Job(2)),
        ];
        let mut receiver = mailbox.receiver().expect("the only receiver");
        let mut seen = Vec::new();
        if let Some(Received::Item(job)) = receiver.try_recv() {
            seen.push(job);
        }
        mailbox.close();
        seen.extend(std::iter::from_fn(|| receiver.drain_one()));
        for sender in senders {
            match sender.join().expect("sender") {
                Ok(Pushed::Queued) => {}
                Err(PushError::Closed(job)) => seen.push(job),
                other => panic!("an unbounded push came back as {other:?}"),
            }
        }
        assert!(mailbox.is_empty());
        seen.sort();
        assert_eq!(seen, [Job(1), Job(2)], "a job was lost or seen twice");
    });
}
