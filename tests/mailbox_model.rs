//! Property tests: every mailbox kind against a `VecDeque` reference model
//! under random sequences of pushes, receives, signals, closes and drains.

use std::collections::VecDeque;

use airssys_rt::mailbox::{
    Backpressure, Mailbox, MailboxConfig, MailboxItem, MailboxKind, PushError, Pushed, Received,
    SystemSignal,
};
use airssys_rt::message::MessagePriority;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item(MessagePriority, u32);

impl MailboxItem for Item {
    fn priority(&self) -> MessagePriority {
        self.0
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(MessagePriority),
    Recv,
    Signal(SystemSignal),
    Close,
    Drain,
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
        6 => priority().prop_map(Op::Push),
        4 => Just(Op::Recv),
        1 => prop_oneof![Just(SystemSignal::Stop), Just(SystemSignal::Shutdown)].prop_map(Op::Signal),
        1 => Just(Op::Close),
        1 => Just(Op::Drain),
    ]
}

/// The reference: a plain queue in arrival order plus the rules.
struct Model {
    config: MailboxConfig,
    queue: VecDeque<Item>,
    signals: Vec<SystemSignal>,
    closed: bool,
    dropped: u64,
}

impl Model {
    fn capacity(&self) -> usize {
        self.config.capacity.unwrap_or(usize::MAX)
    }

    /// Index of the next item to handle: the front, or the first of the
    /// highest priority.
    fn next_index(&self) -> Option<usize> {
        match self.config.kind {
            MailboxKind::Fifo => (!self.queue.is_empty()).then_some(0),
            MailboxKind::Priority => {
                let best = self.queue.iter().map(|i| i.0).max()?;
                self.queue.iter().position(|i| i.0 == best)
            }
        }
    }

    /// Index of the `DropOldest` victim: the front, or the first of the
    /// lowest priority.
    fn victim_index(&self) -> Option<usize> {
        match self.config.kind {
            MailboxKind::Fifo => (!self.queue.is_empty()).then_some(0),
            MailboxKind::Priority => {
                let worst = self.queue.iter().map(|i| i.0).min()?;
                self.queue.iter().position(|i| i.0 == worst)
            }
        }
    }

    fn push(&mut self, item: Item) -> Result<Pushed<Item>, PushError<Item>> {
        if self.closed {
            return Err(PushError::Closed(item));
        }
        if self.queue.len() < self.capacity() {
            self.queue.push_back(item);
            return Ok(Pushed::Queued);
        }
        match self.config.backpressure {
            Backpressure::Block | Backpressure::Reject => Err(PushError::Full(item)),
            Backpressure::DropNewest => {
                self.dropped += 1;
                Ok(Pushed::DroppedNewest(item))
            }
            Backpressure::DropOldest => {
                self.queue.push_back(item);
                let victim = self
                    .victim_index()
                    .and_then(|i| self.queue.remove(i))
                    .expect("non-empty");
                self.dropped += 1;
                Ok(Pushed::DroppedOldest(victim))
            }
        }
    }

    fn recv(&mut self) -> Option<Received<Item>> {
        for signal in [SystemSignal::Shutdown, SystemSignal::Stop] {
            if let Some(i) = self.signals.iter().position(|s| *s == signal) {
                self.signals.remove(i);
                return Some(Received::Signal(signal));
            }
        }
        self.take_item().map(Received::Item)
    }

    fn take_item(&mut self) -> Option<Item> {
        self.next_index().and_then(|i| self.queue.remove(i))
    }

    fn signal(&mut self, signal: SystemSignal) -> bool {
        if self.closed {
            return false;
        }
        if !self.signals.contains(&signal) {
            self.signals.push(signal);
        }
        true
    }

    fn close(&mut self) -> bool {
        !std::mem::replace(&mut self.closed, true)
    }
}

fn check(config: MailboxConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mailbox = Mailbox::new(config);
    let mut receiver = mailbox.receiver().expect("first receiver");
    let mut model = Model {
        config,
        queue: VecDeque::new(),
        signals: Vec::new(),
        closed: false,
        dropped: 0,
    };
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Push(priority) => {
                let item = Item(priority, n as u32);
                prop_assert_eq!(mailbox.try_push(item), model.push(item), "push #{}", n);
            }
            Op::Recv => prop_assert_eq!(receiver.try_recv(), model.recv(), "recv #{}", n),
            Op::Signal(signal) => prop_assert_eq!(mailbox.signal(signal), model.signal(signal)),
            Op::Close => prop_assert_eq!(mailbox.close(), model.close()),
            Op::Drain => prop_assert_eq!(receiver.drain_one(), model.take_item(), "drain #{}", n),
        }
        prop_assert_eq!(mailbox.len(), model.queue.len());
        prop_assert_eq!(mailbox.dropped(), model.dropped);
        prop_assert_eq!(mailbox.is_closed(), model.closed);
    }
    // Whatever is left comes out in the model's order.
    while let Some(item) = model.take_item() {
        prop_assert_eq!(receiver.drain_one(), Some(item));
    }
    prop_assert_eq!(receiver.drain_one(), None);
    Ok(())
}

fn configs() -> impl Strategy<Value = MailboxConfig> {
    let backpressure = prop_oneof![
        Just(Backpressure::Block),
        Just(Backpressure::Reject),
        Just(Backpressure::DropOldest),
        Just(Backpressure::DropNewest),
    ];
    let kind = prop_oneof![Just(MailboxKind::Fifo), Just(MailboxKind::Priority)];
    (kind, proptest::option::of(1usize..6), backpressure).prop_map(
        |(kind, capacity, backpressure)| MailboxConfig {
            kind,
            capacity,
            backpressure,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_mailbox_kind_matches_the_model(config in configs(), ops in proptest::collection::vec(op(), 0..120)) {
        check(config, ops)?;
    }

    #[test]
    fn unbounded_fifo_matches_the_model(ops in proptest::collection::vec(op(), 0..300)) {
        check(MailboxConfig::unbounded(), ops)?;
    }

    #[test]
    fn bounded_drop_oldest_fifo_matches_the_model(ops in proptest::collection::vec(op(), 0..300)) {
        check(MailboxConfig::bounded(3, Backpressure::DropOldest), ops)?;
    }

    #[test]
    fn priority_drop_oldest_matches_the_model(ops in proptest::collection::vec(op(), 0..300)) {
        check(MailboxConfig::bounded(3, Backpressure::DropOldest).with_kind(MailboxKind::Priority), ops)?;
    }
}
