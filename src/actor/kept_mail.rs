//! Mailboxes kept across restarts (beyond OTP, opt-in per worker with
//! [`WorkerSpec::keep_mailbox`](crate::supervisor::WorkerSpec::keep_mailbox)).
//!
//! A supervised instance that keeps its mailbox does not dead-letter what
//! is still queued when it exits: its task drains the queue, in order, into
//! a [`KeptMail`] and leaves it with the child's exit watcher, before its
//! exit is published. The supervisor's next start of that child moves the
//! kept messages into the replacement's new mailbox before the replacement
//! is registered or reachable, so they come first and keep their order. The
//! replacement is still a new actor (new id, cell and `pre_start`); only the
//! queue moves.
//!
//! Kept mail that no start takes is dead-lettered when dropped: with the
//! reason its instance's exit gives (`ActorStopped`, `ActorKilled`,
//! `ActorCrashed`), or [`DeadLetterReason::NotRestarted`] when it was
//! waiting for a restart that did not happen. Nothing is dropped silently.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use super::ExitReason;
use super::cell::Delivery;
use crate::mailbox::{DeadLetterReason, Mailbox, PushError, Pushed};
use crate::message::Message;
use crate::system::shared::SystemShared;
use crate::util::ActorId;

/// What an exited instance left queued, waiting for its replacement.
pub(crate) struct KeptMail<M: Message> {
    /// The instance it was queued for.
    actor: ActorId,
    /// How that instance exited.
    exit: ExitReason,
    shared: Arc<SystemShared>,
    deliveries: VecDeque<Delivery<M>>,
    /// The reason a drop records instead of the exit's (`NotRestarted`).
    abandoned: Option<DeadLetterReason>,
}

impl<M: Message> KeptMail<M> {
    pub(crate) fn new(
        actor: ActorId,
        exit: &ExitReason,
        shared: Arc<SystemShared>,
        deliveries: VecDeque<Delivery<M>>,
    ) -> Self {
        Self {
            actor,
            exit: exit.clone(),
            shared,
            deliveries,
            abandoned: None,
        }
    }

    /// Moves every kept message into `mailbox` (a replacement's, not yet
    /// reachable by anyone else), in order. The replacement has the same
    /// mailbox config, so they fit; one that does not is dead-lettered as
    /// a full mailbox would have.
    pub(crate) fn deliver_into(mut self, mailbox: &Mailbox<Delivery<M>>, replacement: ActorId) {
        while let Some(delivery) = self.deliveries.pop_front() {
            let (dropped, reason) = match mailbox.try_push(delivery) {
                Ok(Pushed::Queued) => continue,
                Ok(Pushed::DroppedOldest(victim)) => (victim, DeadLetterReason::DroppedOldest),
                Ok(Pushed::DroppedNewest(refused))
                | Err(PushError::Full(refused) | PushError::Closed(refused)) => {
                    (refused, DeadLetterReason::DroppedNewest)
                }
            };
            self.shared.dead_letters.record_owned(
                replacement,
                dropped.into_message(),
                reason,
                None,
            );
        }
    }
}

impl<M: Message> Drop for KeptMail<M> {
    fn drop(&mut self) {
        let (reason, exit) = match self.abandoned {
            Some(reason) => (reason, Some(&self.exit)),
            None => DeadLetterReason::for_exit(&self.exit),
        };
        for delivery in self.deliveries.drain(..) {
            self.shared.dead_letters.record_owned(
                self.actor,
                delivery.into_message(),
                reason,
                exit,
            );
        }
    }
}

/// Kept mail of any message type, as a supervisor holds it.
pub(crate) trait Kept: Send {
    /// For the replacement's start, which knows the type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    /// Dead-letters it as waiting for a restart that did not happen.
    fn not_restarted(self: Box<Self>);
}

impl<M: Message> Kept for KeptMail<M> {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn not_restarted(mut self: Box<Self>) {
        self.abandoned = Some(DeadLetterReason::NotRestarted);
    }
}
