//! Storage of the user lane: one lock-free queue, or one per priority.
//!
//! Any thread pushes. Only the mailbox's single receiver pops the next
//! item (`pop_next`, unsafe: the single-consumer queue relies on it), and
//! only an item it has claimed from the mailbox's count; senders pop
//! victims (`pop_victim`) only from the multi-consumer lanes.

use std::mem::MaybeUninit;
use std::ptr;

use super::mpsc::MpscQueue;
use super::{Backpressure, MailboxConfig, MailboxKind};
use crate::message::MessagePriority;
use crate::util::sync::MpmcQueue;

/// Something a [`Mailbox`](super::Mailbox) can hold: it only needs to say its
/// priority (ignored by FIFO mailboxes).
pub trait MailboxItem: Send {
    /// The lane this item goes to in a priority mailbox.
    fn priority(&self) -> MessagePriority;
}

/// The user lane's queues, allocated on the first push (see
/// [`Mailbox`](super::Mailbox)).
pub(crate) enum Lanes<T> {
    /// The common case: only the receiver pops, so a single-consumer queue
    /// serves it.
    Fifo(MpscQueue<T>),
    /// FIFO with `DropOldest`: senders pop victims too, so the queue must
    /// allow several consumers.
    SharedFifo(Box<MpmcQueue<T>>),
    /// Indexed by `MessagePriority::index()`; senders may pop victims.
    Priority(Box<[MpmcQueue<T>; MessagePriority::COUNT]>),
}

impl<T: MailboxItem> Lanes<T> {
    pub(crate) fn new(config: MailboxConfig) -> Self {
        match config.kind {
            MailboxKind::Priority => {
                Lanes::Priority(Box::new(std::array::from_fn(|_| MpmcQueue::new())))
            }
            MailboxKind::Fifo
                if config.capacity.is_some() && config.backpressure == Backpressure::DropOldest =>
            {
                Lanes::SharedFifo(Box::new(MpmcQueue::new()))
            }
            MailboxKind::Fifo => Lanes::Fifo(MpscQueue::new()),
        }
    }

    #[inline]
    pub(crate) fn push(&self, item: T) {
        match self {
            Lanes::Fifo(q) => q.push(item),
            Lanes::SharedFifo(q) => q.push(item),
            Lanes::Priority(qs) => qs[item.priority().index()].push(item),
        }
    }

    /// The next item to handle: the front of the FIFO, or of the highest
    /// non-empty priority. `None` if the claimed item is still in flight.
    ///
    /// # Safety
    /// Only the mailbox's single receiver may call this, and only for an item
    /// it has claimed from the mailbox's count.
    #[inline]
    pub(crate) unsafe fn pop_next(&self) -> Option<T> {
        match self {
            // SAFETY: forwarded from this function's contract.
            Lanes::Fifo(q) => Some(unsafe { q.pop() }),
            Lanes::SharedFifo(q) => q.pop(),
            Lanes::Priority(qs) => qs.iter().rev().find_map(MpmcQueue::pop),
        }
    }

    /// [`pop_next`](Self::pop_next), leaving a FIFO item in its slot (see
    /// [`MpscQueue::pop_in_place`]); an item of the other lanes is moved to
    /// `staging`. Returns where the item is, for the caller to move it out
    /// exactly once before the next pop.
    ///
    /// # Safety
    /// As for [`pop_next`](Self::pop_next).
    #[inline(always)]
    pub(crate) unsafe fn pop_next_in_place(&self, staging: &mut MaybeUninit<T>) -> Option<*mut T> {
        match self {
            // SAFETY: forwarded from this function's contract.
            Lanes::Fifo(q) => Some(unsafe { q.pop_in_place() }),
            // SAFETY: as above.
            _ => unsafe { self.pop_next() }.map(|item| ptr::from_mut(staging.write(item))),
        }
    }

    /// The item to sacrifice under `DropOldest`: the front of the FIFO, or of
    /// the lowest non-empty priority. Any thread may call this.
    pub(crate) fn pop_victim(&self) -> Option<T> {
        match self {
            // A single-consumer lane is never chosen for `DropOldest`.
            Lanes::Fifo(_) => None,
            Lanes::SharedFifo(q) => q.pop(),
            Lanes::Priority(qs) => qs.iter().find_map(MpmcQueue::pop),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The next item; these tests are each lanes' only consumer, and pop
    /// only what they pushed.
    fn pop_next(lanes: &Lanes<P>) -> Option<P> {
        // SAFETY: single consumer (the test), and the item was pushed.
        unsafe { lanes.pop_next() }
    }

    #[derive(Debug, PartialEq)]
    struct P(MessagePriority, u32);
    impl MailboxItem for P {
        fn priority(&self) -> MessagePriority {
            self.0
        }
    }

    #[test]
    fn priority_lanes_serve_highest_first_and_sacrifice_lowest() {
        let lanes = Lanes::new(MailboxConfig::unbounded().with_kind(MailboxKind::Priority));
        lanes.push(P(MessagePriority::Low, 1));
        lanes.push(P(MessagePriority::Critical, 2));
        lanes.push(P(MessagePriority::Normal, 3));
        lanes.push(P(MessagePriority::Critical, 4));
        assert_eq!(lanes.pop_victim(), Some(P(MessagePriority::Low, 1)));
        assert_eq!(pop_next(&lanes), Some(P(MessagePriority::Critical, 2)));
        assert_eq!(pop_next(&lanes), Some(P(MessagePriority::Critical, 4)));
        assert_eq!(pop_next(&lanes), Some(P(MessagePriority::Normal, 3)));
        assert_eq!(pop_next(&lanes), None);
    }

    #[test]
    fn lanes_are_six_words_whatever_the_item() {
        // Allocated for every actor that receives a message: keep it small
        // (see `MpscQueue`).
        assert_eq!(std::mem::size_of::<Lanes<P>>(), 6 * size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Lanes<[u8; 4096]>>(),
            6 * size_of::<usize>()
        );
    }

    #[test]
    fn fifo_lanes_ignore_priority() {
        let single = Lanes::new(MailboxConfig::unbounded());
        assert!(matches!(single, Lanes::Fifo(_)));
        let shared = Lanes::new(MailboxConfig::bounded(4, Backpressure::DropOldest));
        assert!(matches!(shared, Lanes::SharedFifo(_)));
        for lanes in [single, shared] {
            lanes.push(P(MessagePriority::Low, 1));
            lanes.push(P(MessagePriority::Critical, 2));
            assert_eq!(pop_next(&lanes), Some(P(MessagePriority::Low, 1)));
            assert_eq!(pop_next(&lanes), Some(P(MessagePriority::Critical, 2)));
        }
    }
}
