//! Storage of the user lane: one lock-free queue, or one per priority.

use crossbeam_queue::SegQueue;

use super::MailboxKind;
use crate::message::MessagePriority;

/// Something a [`Mailbox`](super::Mailbox) can hold: it only needs to say its
/// priority (ignored by FIFO mailboxes).
pub trait MailboxItem: Send {
    /// The lane this item goes to in a priority mailbox.
    fn priority(&self) -> MessagePriority;
}

/// The user lane's queues. A FIFO lane is a single queue whose first segment
/// is allocated on the first push, so an idle actor pays for no slots.
// The FIFO lane is inline on purpose: it is the hot path and must not pay
// an extra pointer hop; the rarer priority lanes are boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Lanes<T> {
    Fifo(SegQueue<T>),
    /// Indexed by `MessagePriority::index()`; boxed so FIFO mailboxes stay small.
    Priority(Box<[SegQueue<T>; MessagePriority::COUNT]>),
}

impl<T: MailboxItem> Lanes<T> {
    pub(crate) fn new(kind: MailboxKind) -> Self {
        match kind {
            MailboxKind::Fifo => Lanes::Fifo(SegQueue::new()),
            MailboxKind::Priority => {
                Lanes::Priority(Box::new(std::array::from_fn(|_| SegQueue::new())))
            }
        }
    }

    #[inline]
    pub(crate) fn push(&self, item: T) {
        match self {
            Lanes::Fifo(q) => q.push(item),
            Lanes::Priority(qs) => qs[item.priority().index()].push(item),
        }
    }

    /// The next item to handle: the front of the FIFO, or of the highest
    /// non-empty priority.
    #[inline]
    pub(crate) fn pop_next(&self) -> Option<T> {
        match self {
            Lanes::Fifo(q) => q.pop(),
            Lanes::Priority(qs) => qs.iter().rev().find_map(SegQueue::pop),
        }
    }

    /// The item to sacrifice under `DropOldest`: the front of the FIFO, or of
    /// the lowest non-empty priority.
    pub(crate) fn pop_victim(&self) -> Option<T> {
        match self {
            Lanes::Fifo(q) => q.pop(),
            Lanes::Priority(qs) => qs.iter().find_map(SegQueue::pop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct P(MessagePriority, u32);
    impl MailboxItem for P {
        fn priority(&self) -> MessagePriority {
            self.0
        }
    }

    #[test]
    fn priority_lanes_serve_highest_first_and_sacrifice_lowest() {
        let lanes = Lanes::new(MailboxKind::Priority);
        lanes.push(P(MessagePriority::Low, 1));
        lanes.push(P(MessagePriority::Critical, 2));
        lanes.push(P(MessagePriority::Normal, 3));
        lanes.push(P(MessagePriority::Critical, 4));
        assert_eq!(lanes.pop_victim(), Some(P(MessagePriority::Low, 1)));
        assert_eq!(lanes.pop_next(), Some(P(MessagePriority::Critical, 2)));
        assert_eq!(lanes.pop_next(), Some(P(MessagePriority::Critical, 4)));
        assert_eq!(lanes.pop_next(), Some(P(MessagePriority::Normal, 3)));
        assert_eq!(lanes.pop_next(), None);
    }

    #[test]
    fn fifo_lane_ignores_priority() {
        let lanes = Lanes::new(MailboxKind::Fifo);
        lanes.push(P(MessagePriority::Low, 1));
        lanes.push(P(MessagePriority::Critical, 2));
        assert_eq!(lanes.pop_next(), Some(P(MessagePriority::Low, 1)));
        assert_eq!(lanes.pop_victim(), Some(P(MessagePriority::Critical, 2)));
    }
}
