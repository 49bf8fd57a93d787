//! `airssys_rt::mailbox::Mailbox` against a `VecDeque` reference model.
//!
//! Single-threaded property tests drive a mailbox of each kind and the model
//! with the same random sequence of `try_push`, `push` (polled once),
//! `try_recv`, `signal`, `close`, `drain_one` and receiver hand-overs, and
//! compare every result, `len()`, `is_empty()`, `dropped()` and
//! `is_closed()` after each step. Items count themselves, so the tests also
//! check that the mailbox holds exactly the items the model holds (nothing
//! leaked, nothing dropped twice), including when it is dropped non-empty.
//!
//! Two threaded tests at the end push from several threads while one thread
//! receives, for the lock-free paths the single-threaded model cannot reach.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use airssys_rt::mailbox::{
    Backpressure, Mailbox, MailboxConfig, MailboxItem, MailboxKind, MailboxReceiver, PushError,
    Pushed, Received, SystemSignal,
};
use airssys_rt::message::MessagePriority;
use futures::FutureExt;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Self-counting items
// ---------------------------------------------------------------------------

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// What identifies an item: its priority and its sequence number.
type Key = (MessagePriority, u32);

#[derive(Debug)]
struct Item {
    key: Key,
    /// On the heap, so a double drop or a use after free is loud.
    _payload: Box<u32>,
}

impl Item {
    fn new(priority: MessagePriority, id: u32) -> Self {
        LIVE.with(|l| l.set(l.get() + 1));
        Self {
            key: (priority, id),
            _payload: Box::new(id),
        }
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

impl MailboxItem for Item {
    fn priority(&self) -> MessagePriority {
        self.key.0
    }
}

// ---------------------------------------------------------------------------
// Outcomes, comparable between the mailbox and the model
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushOutcome {
    Queued,
    DroppedOldest(Key),
    DroppedNewest(Key),
    Closed(Key),
    Full(Key),
    /// `push` on a full `Block` mailbox: still waiting after one poll.
    Waiting,
}

fn push_outcome(result: Result<Pushed<Item>, PushError<Item>>) -> PushOutcome {
    match result {
        Ok(Pushed::Queued) => PushOutcome::Queued,
        Ok(Pushed::DroppedOldest(item)) => PushOutcome::DroppedOldest(item.key),
        Ok(Pushed::DroppedNewest(item)) => PushOutcome::DroppedNewest(item.key),
        Err(PushError::Closed(item)) => PushOutcome::Closed(item.key),
        Err(PushError::Full(item)) => PushOutcome::Full(item.key),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvOutcome {
    Signal(SystemSignal),
    Item(Key),
}

fn recv_outcome(received: Option<Received<Item>>) -> Option<RecvOutcome> {
    received.map(|r| match r {
        Received::Signal(s) => RecvOutcome::Signal(s),
        Received::Item(item) => RecvOutcome::Item(item.key),
    })
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

/// A queue in arrival order plus the documented rules.
struct Model {
    config: MailboxConfig,
    queue: VecDeque<Key>,
    stop_pending: bool,
    shutdown_pending: bool,
    closed: bool,
    dropped: u64,
}

impl Model {
    fn new(config: MailboxConfig) -> Self {
        Self {
            config,
            queue: VecDeque::new(),
            stop_pending: false,
            shutdown_pending: false,
            closed: false,
            dropped: 0,
        }
    }

    fn full(&self) -> bool {
        self.config
            .capacity
            .is_some_and(|capacity| self.queue.len() >= capacity)
    }

    /// The next item to serve: the front, or in a priority mailbox the
    /// oldest of the highest priority present.
    fn next_index(&self) -> Option<usize> {
        match self.config.kind {
            MailboxKind::Fifo => (!self.queue.is_empty()).then_some(0),
            MailboxKind::Priority => {
                let highest = self.queue.iter().map(|k| k.0).max()?;
                self.queue.iter().position(|k| k.0 == highest)
            }
        }
    }

    /// The `DropOldest` victim: the front, or in a priority mailbox the
    /// oldest of the lowest priority present.
    fn victim_index(&self) -> Option<usize> {
        match self.config.kind {
            MailboxKind::Fifo => (!self.queue.is_empty()).then_some(0),
            MailboxKind::Priority => {
                let lowest = self.queue.iter().map(|k| k.0).min()?;
                self.queue.iter().position(|k| k.0 == lowest)
            }
        }
    }

    fn try_push(&mut self, key: Key) -> PushOutcome {
        if self.closed {
            return PushOutcome::Closed(key);
        }
        if !self.full() {
            self.queue.push_back(key);
            return PushOutcome::Queued;
        }
        match self.config.backpressure {
            Backpressure::Block | Backpressure::Reject => PushOutcome::Full(key),
            Backpressure::DropNewest => {
                self.dropped += 1;
                PushOutcome::DroppedNewest(key)
            }
            Backpressure::DropOldest => {
                // The newcomer joins first, so it is itself the victim when
                // it is the oldest of the lowest priority.
                self.queue.push_back(key);
                let victim = self
                    .victim_index()
                    .and_then(|i| self.queue.remove(i))
                    .expect("a full mailbox has a victim");
                self.dropped += 1;
                PushOutcome::DroppedOldest(victim)
            }
        }
    }

    /// `Mailbox::push` polled once.
    fn push(&mut self, key: Key) -> PushOutcome {
        match self.try_push(key) {
            PushOutcome::Full(_) if self.config.backpressure == Backpressure::Block => {
                PushOutcome::Waiting
            }
            other => other,
        }
    }

    fn signal(&mut self, signal: SystemSignal) -> bool {
        if self.closed {
            return false;
        }
        let pending = match signal {
            SystemSignal::Stop => &mut self.stop_pending,
            SystemSignal::Shutdown => &mut self.shutdown_pending,
            _ => unreachable!("only Stop and Shutdown exist"),
        };
        // Raising a pending signal again is a no-op and says so.
        !std::mem::replace(pending, true)
    }

    fn try_recv(&mut self) -> Option<RecvOutcome> {
        if std::mem::take(&mut self.shutdown_pending) {
            return Some(RecvOutcome::Signal(SystemSignal::Shutdown));
        }
        if std::mem::take(&mut self.stop_pending) {
            return Some(RecvOutcome::Signal(SystemSignal::Stop));
        }
        self.take_item().map(RecvOutcome::Item)
    }

    fn take_item(&mut self) -> Option<Key> {
        self.next_index().and_then(|i| self.queue.remove(i))
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    TryPush(MessagePriority),
    Push(MessagePriority),
    TryRecv,
    Signal(SystemSignal),
    Close,
    DrainOne,
    /// Drop the receiver and take a new one.
    NewReceiver,
}

fn priority() -> impl Strategy<Value = MessagePriority> {
    prop_oneof![
        Just(MessagePriority::Low),
        Just(MessagePriority::Normal),
        Just(MessagePriority::High),
        Just(MessagePriority::Critical),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => priority().prop_map(Op::TryPush),
        4 => priority().prop_map(Op::Push),
        10 => Just(Op::TryRecv),
        1 => prop_oneof![Just(SystemSignal::Stop), Just(SystemSignal::Shutdown)].prop_map(Op::Signal),
        1 => Just(Op::Close),
        2 => Just(Op::DrainOne),
        1 => Just(Op::NewReceiver),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..300)
}

fn take_receiver(mailbox: &Mailbox<Item>) -> MailboxReceiver<'_, Item> {
    mailbox.receiver().expect("no other receiver exists")
}

/// Runs `ops` on a fresh mailbox and on the model, comparing every step.
fn check(config: MailboxConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let before = live();
    {
        let mailbox = Mailbox::new(config);
        prop_assert_eq!(mailbox.config(), config);
        prop_assert_eq!(mailbox.capacity(), config.capacity);
        prop_assert_eq!(mailbox.backpressure(), config.backpressure);
        let mut model = Model::new(config);
        let mut receiver = Some(take_receiver(&mailbox));
        prop_assert!(
            mailbox.receiver().is_none(),
            "a second receiver while one exists"
        );

        for (step, op) in ops.iter().enumerate() {
            let id = step as u32;
            match op {
                Op::TryPush(p) => {
                    let got = push_outcome(mailbox.try_push(Item::new(*p, id)));
                    prop_assert_eq!(got, model.try_push((*p, id)), "step {} {:?}", step, op);
                }
                Op::Push(p) => {
                    let got = match mailbox.push(Item::new(*p, id)).now_or_never() {
                        Some(result) => push_outcome(result),
                        None => PushOutcome::Waiting,
                    };
                    prop_assert_eq!(got, model.push((*p, id)), "step {} {:?}", step, op);
                }
                Op::TryRecv => {
                    let rx = receiver.as_mut().expect("receiver held");
                    let got = recv_outcome(rx.try_recv());
                    prop_assert_eq!(got, model.try_recv(), "step {} {:?}", step, op);
                }
                Op::Signal(s) => {
                    prop_assert_eq!(mailbox.signal(*s), model.signal(*s), "step {}", step);
                }
                Op::Close => prop_assert_eq!(mailbox.close(), model.close(), "step {}", step),
                Op::DrainOne => {
                    let rx = receiver.as_mut().expect("receiver held");
                    let got = rx.drain_one().map(|item| item.key);
                    prop_assert_eq!(got, model.take_item(), "step {} {:?}", step, op);
                }
                Op::NewReceiver => {
                    drop(receiver.take());
                    receiver = Some(take_receiver(&mailbox));
                }
            }
            prop_assert_eq!(mailbox.len(), model.queue.len(), "len after step {}", step);
            prop_assert_eq!(mailbox.is_empty(), model.queue.is_empty());
            prop_assert_eq!(
                mailbox.dropped(),
                model.dropped,
                "dropped after step {}",
                step
            );
            prop_assert_eq!(mailbox.is_closed(), model.closed);
            prop_assert_eq!(
                live() - before,
                model.queue.len() as isize,
                "items alive after step {}",
                step
            );
        }
        // Closing and draining hands back exactly what the model holds, in
        // the model's order; pending signals survive the close.
        if model.queue.len().is_multiple_of(2) {
            mailbox.close();
            model.close();
            let rx = receiver.as_mut().expect("receiver held");
            while let Some(key) = model.take_item() {
                prop_assert_eq!(rx.drain_one().map(|i| i.key), Some(key));
            }
            prop_assert_eq!(rx.drain_one().map(|i| i.key), None);
            prop_assert_eq!(recv_outcome(rx.try_recv()), model.try_recv());
            prop_assert_eq!(mailbox.len(), 0);
        }
        // Otherwise the mailbox is dropped with its items still inside.
    }
    prop_assert_eq!(live(), before, "items leaked or dropped twice");
    Ok(())
}

fn capacity() -> impl Strategy<Value = usize> {
    1usize..=6
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unbounded_fifo(ops in ops()) {
        check(MailboxConfig::unbounded(), &ops)?;
    }

    #[test]
    fn bounded_reject(capacity in capacity(), ops in ops()) {
        check(MailboxConfig::bounded(capacity, Backpressure::Reject), &ops)?;
    }

    #[test]
    fn bounded_block(capacity in capacity(), ops in ops()) {
        check(MailboxConfig::bounded(capacity, Backpressure::Block), &ops)?;
    }

    #[test]
    fn bounded_drop_oldest(capacity in capacity(), ops in ops()) {
        check(MailboxConfig::bounded(capacity, Backpressure::DropOldest), &ops)?;
    }

    #[test]
    fn bounded_drop_newest(capacity in capacity(), ops in ops()) {
        check(MailboxConfig::bounded(capacity, Backpressure::DropNewest), &ops)?;
    }

    #[test]
    fn priority_unbounded(ops in ops()) {
        check(MailboxConfig::unbounded().with_kind(MailboxKind::Priority), &ops)?;
    }

    #[test]
    fn priority_bounded_drop_oldest(capacity in capacity(), ops in ops()) {
        check(
            MailboxConfig::bounded(capacity, Backpressure::DropOldest).with_kind(MailboxKind::Priority),
            &ops,
        )?;
    }

    #[test]
    fn priority_bounded_other_strategies(
        capacity in capacity(),
        backpressure in prop_oneof![
            Just(Backpressure::Block),
            Just(Backpressure::Reject),
            Just(Backpressure::DropNewest),
        ],
        ops in ops(),
    ) {
        check(
            MailboxConfig::bounded(capacity, backpressure).with_kind(MailboxKind::Priority),
            &ops,
        )?;
    }
}

// ---------------------------------------------------------------------------
// Deterministic long runs: many queue blocks allocated, emptied and reused
// ---------------------------------------------------------------------------

#[test]
fn long_interleavings_keep_fifo_order_and_release_every_item() {
    let configs = [
        MailboxConfig::unbounded(),
        MailboxConfig::bounded(1 << 20, Backpressure::DropOldest),
        MailboxConfig::unbounded().with_kind(MailboxKind::Priority),
    ];
    for config in configs {
        let before = live();
        {
            let mailbox = Mailbox::new(config);
            let mut rx = take_receiver(&mailbox);
            let mut model = Model::new(config);
            let mut id = 0u32;
            // Push `burst`, pop `burst - 1`: the queue creeps forward over
            // many blocks while staying short, then grows and shrinks.
            for burst in (1..40).chain((1..40).rev()).cycle().take(400) {
                for _ in 0..burst {
                    let p = MessagePriority::HIGHEST_FIRST[(id % 4) as usize];
                    assert_eq!(
                        push_outcome(mailbox.try_push(Item::new(p, id))),
                        model.try_push((p, id))
                    );
                    id += 1;
                }
                for _ in 0..burst - 1 {
                    assert_eq!(recv_outcome(rx.try_recv()), model.try_recv());
                }
                assert_eq!(mailbox.len(), model.queue.len());
            }
            assert_eq!(live() - before, model.queue.len() as isize);
            // Dropped while holding items.
        }
        assert_eq!(live(), before, "{config:?}: items leaked or dropped twice");
    }
}

// ---------------------------------------------------------------------------
// Threaded: many producers, one receiver
// ---------------------------------------------------------------------------

/// An item that counts itself in a shared counter (usable across threads).
#[derive(Debug)]
struct Shared {
    producer: usize,
    seq: u64,
    live: Arc<AtomicIsize>,
}

impl Shared {
    fn new(producer: usize, seq: u64, live: &Arc<AtomicIsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self {
            producer,
            seq,
            live: live.clone(),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MailboxItem for Shared {
    fn priority(&self) -> MessagePriority {
        MessagePriority::Normal
    }
}

/// Producers push concurrently while one thread receives part of the stream;
/// the rest stays queued and is released when the mailbox is dropped.
/// Received items keep per-producer order; evicted ones are counted; every
/// item is released exactly once.
fn threaded_round(config: MailboxConfig, receive: u64) {
    const PRODUCERS: usize = 4;
    const EACH: u64 = 5_000;
    let live = Arc::new(AtomicIsize::new(0));
    {
        let mailbox = Arc::new(Mailbox::new(config));
        let evicted = Arc::new(AtomicIsize::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let mailbox = mailbox.clone();
                let live = live.clone();
                let evicted = evicted.clone();
                std::thread::spawn(move || {
                    for seq in 0..EACH {
                        match mailbox.try_push(Shared::new(p, seq, &live)) {
                            Ok(Pushed::Queued) => {}
                            Ok(Pushed::DroppedOldest(_)) => {
                                evicted.fetch_add(1, Ordering::SeqCst);
                            }
                            other => panic!("unexpected push result {other:?}"),
                        }
                    }
                })
            })
            .collect();
        let mut rx = mailbox.receiver().expect("the only receiver");
        let mut last = [None::<u64>; PRODUCERS];
        let mut received = 0u64;
        let total = PRODUCERS as u64 * EACH;
        while received < receive {
            // With DropOldest most items may be evicted: stop once nothing
            // more can arrive.
            if mailbox.is_empty() && producers.iter().all(|p| p.is_finished()) {
                break;
            }
            if let Some(Received::Item(item)) = rx.try_recv() {
                assert!(
                    last[item.producer].is_none_or(|l| l < item.seq),
                    "{config:?}: producer {} out of order",
                    item.producer
                );
                last[item.producer] = Some(item.seq);
                received += 1;
            }
        }
        drop(rx);
        for producer in producers {
            producer.join().expect("producer finished");
        }
        let evicted = evicted.load(Ordering::SeqCst) as u64;
        assert_eq!(
            received + evicted + mailbox.len() as u64,
            total,
            "{config:?}: received {received} + evicted {evicted} + queued {}",
            mailbox.len()
        );
        assert_eq!(mailbox.dropped(), evicted);
        assert_eq!(live.load(Ordering::SeqCst), mailbox.len() as isize);
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "{config:?}: items leaked or dropped twice"
    );
}

#[test]
fn threaded_producers_unbounded_fifo() {
    for round in 0..20u64 {
        threaded_round(MailboxConfig::unbounded(), round * 1_000);
    }
}

#[test]
fn threaded_producers_bounded_drop_oldest() {
    for round in 0..20u64 {
        threaded_round(
            MailboxConfig::bounded(16, Backpressure::DropOldest),
            round * 1_000,
        );
    }
}

#[test]
fn threaded_producers_priority_unbounded() {
    for round in 0..10u64 {
        threaded_round(
            MailboxConfig::unbounded().with_kind(MailboxKind::Priority),
            round * 2_000,
        );
    }
}
