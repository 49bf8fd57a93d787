//! The [`MessageBroker`] trait and its errors.
//!
//! The brief's signatures disagree (a request returns an `R` envelope, a
//! reply sends an `M`); here a broker is typed by both: requests carry `M`,
//! replies carry [`MessageBroker::Reply`], and `request` returns the reply
//! itself. Nothing is type-erased.

use std::future::Future;
use std::time::Duration;

use super::RegistryError;
use crate::address::ActorAddress;
use crate::message::{Message, MessageEnvelope};
use crate::util::MessageId;

/// Routes envelopes to actors by address, and correlates replies with
/// requests by [`MessageId`].
pub trait MessageBroker<M: Message>: Send + Sync + Clone {
    /// The type replies carry.
    type Reply: Send + 'static;

    /// Delivers `envelope` to the actor its recipient address resolves to.
    /// On failure the envelope comes back in the error.
    fn send(
        &self,
        envelope: MessageEnvelope<M>,
    ) -> impl Future<Output = Result<(), BrokerError<M>>> + Send;

    /// Sends `envelope` and waits for the reply to its id until `timeout`
    /// after the envelope was created (like its TTL, the timeout counts
    /// from the envelope's creation; build the envelope when you send it).
    fn request(
        &self,
        envelope: MessageEnvelope<M>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Reply, BrokerError<M>>> + Send;

    /// Answers the request `reply_to` (from
    /// [`ActorContext::envelope_id`](crate::actor::ActorContext::envelope_id)).
    /// A reply nobody waits for (unknown, timed out, already answered) comes
    /// back in the error.
    fn reply(
        &self,
        reply_to: MessageId,
        reply: Self::Reply,
    ) -> Result<(), UnknownRequest<Self::Reply>>;
}

/// Why an envelope could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryFailure {
    /// Its address resolves to no live actor.
    #[error(transparent)]
    Unresolved(#[from] RegistryError),
    /// The actor stopped before taking it.
    #[error("the actor has stopped")]
    ActorStopped,
    /// The actor's mailbox is full and refuses messages.
    #[error("the actor's mailbox is full")]
    MailboxFull,
}

/// A broker operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError<M> {
    /// The envelope could not be delivered; here it is back.
    #[error("could not deliver message {} to {address}: {cause}", envelope.id)]
    Undelivered {
        /// Where it was going.
        address: ActorAddress,
        /// Why it did not arrive.
        cause: DeliveryFailure,
        /// The envelope, untouched.
        envelope: Box<MessageEnvelope<M>>,
    },
    /// No reply within the timeout; the request is forgotten (a late reply
    /// is refused).
    #[error("no reply to request {request} within {}; the request is forgotten", crate::util::time::human(*timeout))]
    Timeout {
        /// The request's id.
        request: MessageId,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
}

/// A reply to a request nobody waits for; the reply comes back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("no request {request} is waiting for a reply (unknown, timed out or already answered)")]
pub struct UnknownRequest<R> {
    /// The request id the reply named.
    pub request: MessageId,
    /// The reply, undelivered.
    pub reply: R,
}
