//! [`Subscribers`]: fans values out to any number of listeners, each with
//! its own unbounded queue (so none misses one), forgetting listeners that
//! have gone. Shared by the supervision event stream and the dead-letter
//! stream.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc;

pub(crate) struct Subscribers<T> {
    senders: Mutex<Vec<mpsc::UnboundedSender<T>>>,
    /// Whether anyone listens: lets publishers skip building a value (and
    /// the lock) while nobody does.
    watched: AtomicBool,
}

impl<T> Default for Subscribers<T> {
    fn default() -> Self {
        Self {
            senders: Mutex::new(Vec::new()),
            watched: AtomicBool::new(false),
        }
    }
}

impl<T: Clone> Subscribers<T> {
    /// A new listener, receiving every value sent from now on.
    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<T> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.senders.lock().push(sender);
        self.watched.store(true, Ordering::Release);
        receiver
    }

    /// Whether anyone listened when last checked.
    pub(crate) fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }

    /// Sends a clone of `value` to every listener; forgets those gone.
    pub(crate) fn send(&self, value: &T) {
        if !self.is_watched() {
            return;
        }
        let mut senders = self.senders.lock();
        senders.retain(|sender| sender.send(value.clone()).is_ok());
        self.watched.store(!senders.is_empty(), Ordering::Release);
    }

    /// Listeners still registered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.senders.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listener_gets_every_value_and_gone_ones_are_forgotten() {
        let subscribers = Subscribers::default();
        assert!(!subscribers.is_watched());
        let mut kept = subscribers.subscribe();
        drop(subscribers.subscribe());
        subscribers.send(&1);
        subscribers.send(&2);
        assert_eq!((kept.try_recv(), kept.try_recv()), (Ok(1), Ok(2)));
        assert_eq!(subscribers.len(), 1);
        drop(kept);
        subscribers.send(&3);
        assert!(!subscribers.is_watched(), "nobody listens any more");
    }
}
