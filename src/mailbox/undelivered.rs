//! Undelivered messages handed back by value: [`DeadLetterOffice::reclaim`]
//! gives a stream of every dead letter of one message type, owned and typed,
//! so that an application can resubmit it (the office's ring and broadcast
//! stream keep only a text summary).
//!
//! [`DeadLetterOffice::reclaim`]: super::DeadLetterOffice::reclaim

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::DeadLetterReason;
use crate::message::Message;
use crate::util::{ActorId, time};

/// A message that will never be handled where it was sent, handed back by
/// value (see [`DeadLetterOffice::reclaim`](super::DeadLetterOffice::reclaim)).
#[derive(Debug)]
pub struct Undelivered<M> {
    /// The actor it was addressed to.
    pub recipient: ActorId,
    /// Why it was not handled.
    pub reason: DeadLetterReason,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The message itself (an envelope's payload).
    pub message: M,
}

/// The stream of a message type's dead letters, by value
/// ([`DeadLetterOffice::reclaim`](super::DeadLetterOffice::reclaim)).
/// Letters wait here until read; dropping the stream stops the reclaiming
/// (later letters of the type are dropped after their summary is recorded,
/// as before).
#[derive(Debug)]
pub struct Reclaimed<M> {
    receiver: mpsc::UnboundedReceiver<Undelivered<M>>,
}

impl<M> Reclaimed<M> {
    /// The next undelivered message; `None` once the office is gone or a
    /// newer `reclaim` of the same type took over.
    pub async fn recv(&mut self) -> Option<Undelivered<M>> {
        self.receiver.recv().await
    }

    /// The next undelivered message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Undelivered<M>> {
        self.receiver.try_recv().ok()
    }
}

/// One sender per reclaimed message type.
#[derive(Default)]
pub(crate) struct Reclaimers {
    /// `TypeId` of `M` → `UnboundedSender<Undelivered<M>>`.
    senders: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
    /// Whether any type is reclaimed: a dead letter nobody reclaims costs
    /// one load, no lock.
    any: AtomicBool,
}

impl Reclaimers {
    /// Starts reclaiming `M` (replacing an earlier reclaimer of `M`).
    pub(crate) fn reclaim<M: Message>(&self) -> Reclaimed<M> {
        let (sender, receiver) = mpsc::unbounded_channel::<Undelivered<M>>();
        self.senders
            .lock()
            .insert(TypeId::of::<M>(), Box::new(sender));
        self.any.store(true, Ordering::Release);
        Reclaimed { receiver }
    }

    /// Hands `message` to `M`'s reclaimer, if there is one; else drops it.
    pub(crate) fn hand_back<M: Message>(
        &self,
        recipient: ActorId,
        message: M,
        reason: DeadLetterReason,
    ) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut senders = self.senders.lock();
        let Some(sender) = senders
            .get(&TypeId::of::<M>())
            .and_then(|sender| sender.downcast_ref::<mpsc::UnboundedSender<Undelivered<M>>>())
        else {
            return;
        };
        let letter = Undelivered {
            recipient,
            reason,
            at: time::now(),
            message,
        };
        if sender.send(letter).is_err() {
            // The stream was dropped: forget the type.
            senders.remove(&TypeId::of::<M>());
            self.any.store(!senders.is_empty(), Ordering::Release);
        }
    }
}
