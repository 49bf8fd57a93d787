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
    waiting: Mutex<ById<oneshot::Sender<R>>>,
}

impl<R> Default for Pending<R> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(ById::default()),
        }
    }
}

impl<R> Pending<R> {
    /// Starts waiting for the reply to `request`; dropping the returned
    /// ticket (on timeout or cancellation) stops waiting.
    pub(crate) fn open(&self, request: MessageId) -> (Ticket<'_, R>, oneshot::Receiver<R>) {
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().insert(request, sender);
        let ticket = Ticket {
            pending: self,
            request,
            open: true,
        };
        (ticket, receiver)
    }

    /// Delivers `reply` to `request`; gives it back if nobody waits for it.
    pub(crate) fn complete(&self, request: MessageId, reply: R) -> Result<(), R> {
        let waiting = self.waiting.lock().remove(&request);
        match waiting {
            Some(sender) => sender.send(reply),
            None => Err(reply),
        }
    }

    /// Requests still waiting.
    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().len()
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
            self.pending.waiting.lock().remove(&self.request);
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
