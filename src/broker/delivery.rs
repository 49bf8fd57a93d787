//! The broker's correlation table: requests waiting for their reply, by
//! [`MessageId`]. A reply completes exactly the request it names; a reply to
//! an unknown or expired request is refused and handed back; a request that
//! times out or is cancelled removes itself, so nothing is left behind.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::util::MessageId;
use crate::util::hash::IdHasher;

/// Requests waiting for a reply of type `R`.
pub(crate) struct Pending<R> {
    table: Mutex<Table<R>>,
}

/// Slots indexed by the low bits of the request id serve the common case
/// (a few requests in flight) with no hashing or allocation; a request whose
/// slot is taken waits in the overflow map.
struct Table<R> {
    slots: [Option<(MessageId, oneshot::Sender<R>)>; SLOTS],
    overflow: ById<oneshot::Sender<R>>,
    len: usize,
}

const SLOTS: usize = 64;

fn slot_of(request: MessageId) -> usize {
    (request.as_u64() % SLOTS as u64) as usize
}

impl<R> Table<R> {
    fn insert(&mut self, request: MessageId, sender: oneshot::Sender<R>) {
        let slot = &mut self.slots[slot_of(request)];
        if slot.is_none() {
            *slot = Some((request, sender));
        } else {
            self.overflow.insert(request, sender);
        }
        self.len += 1;
    }

    fn remove(&mut self, request: MessageId) -> Option<oneshot::Sender<R>> {
        let slot = &mut self.slots[slot_of(request)];
        let removed = match slot {
            Some((waiting, _)) if *waiting == request => slot.take().map(|(_, sender)| sender),
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.remove(&request),
        };
        self.len -= usize::from(removed.is_some());
        removed
    }
}

impl<R> Default for Pending<R> {
    fn default() -> Self {
        Self {
            table: Mutex::new(Table {
                slots: std::array::from_fn(|_| None),
                overflow: ById::default(),
                len: 0,
            }),
        }
    }
}

impl<R> Pending<R> {
    /// Starts waiting for the reply to `request`; dropping the returned
    /// ticket (on timeout or cancellation) stops waiting.
    pub(crate) fn open(&self, request: MessageId) -> (Ticket<'_, R>, oneshot::Receiver<R>) {
        let (sender, receiver) = oneshot::channel();
        self.table.lock().insert(request, sender);
        let ticket = Ticket {
            pending: self,
            request,
            open: true,
        };
        (ticket, receiver)
    }

    /// Delivers `reply` to `request`; gives it back if nobody waits for it.
    pub(crate) fn complete(&self, request: MessageId, reply: R) -> Result<(), R> {
        let waiting = self.table.lock().remove(request);
        match waiting {
            Some(sender) => sender.send(reply),
            None => Err(reply),
        }
    }

    /// Requests still waiting.
    pub(crate) fn len(&self) -> usize {
        self.table.lock().len
    }
}

/// Removes its request from the table when dropped, unless the reply came
/// (then `complete` has removed it already).
pub(crate) struct Ticket<'a, R> {
    pending: &'a Pending<R>,
    request: MessageId,
    open: bool,
}

impl<R> Ticket<'_, R> {
    /// The reply arrived: nothing is left to remove.
    pub(crate) fn completed(mut self) {
        self.open = false;
    }
}

impl<R> Drop for Ticket<'_, R> {
    fn drop(&mut self) {
        if self.open {
            self.pending.table.lock().remove(self.request);
        }
    }
}

type ById<V> = HashMap<MessageId, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_reply_reaches_its_request_and_only_once() {
        let pending = Arc::new(Pending::<u32>::default());
        let (a, b) = (MessageId::next(), MessageId::next());
        let (_ticket_a, reply_a) = pending.open(a);
        let (_ticket_b, reply_b) = pending.open(b);
        assert_eq!(pending.complete(b, 2), Ok(()));
        assert_eq!(pending.complete(a, 1), Ok(()));
        assert_eq!(pending.complete(a, 9), Err(9), "a second reply is refused");
        assert_eq!((reply_a.await, reply_b.await), (Ok(1), Ok(2)));
        assert_eq!(pending.len(), 0);
    }

    #[tokio::test]
    async fn requests_sharing_a_slot_each_get_their_reply() {
        let pending = Arc::new(Pending::<u64>::default());
        let ids: Vec<_> = (0..4)
            .map(|k| MessageId::from_raw(7 + k * SLOTS as u64))
            .collect();
        let waits: Vec<_> = ids.iter().map(|&id| pending.open(id)).collect();
        assert_eq!(pending.len(), 4);
        for &id in ids.iter().rev() {
            assert_eq!(pending.complete(id, id.as_u64()), Ok(()));
        }
        for ((ticket, reply), id) in waits.into_iter().zip(&ids) {
            assert_eq!(reply.await, Ok(id.as_u64()));
            ticket.completed();
        }
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn a_dropped_ticket_leaves_nothing_and_a_late_reply_comes_back() {
        let pending = Arc::new(Pending::<u32>::default());
        let request = MessageId::next();
        let (ticket, _reply) = pending.open(request);
        drop(ticket);
        assert_eq!(pending.len(), 0);
        assert_eq!(pending.complete(request, 5), Err(5));
    }
}
