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
    /// A broker between nodes could not hand it over (see [`RemoteFailure`]).
    #[error(transparent)]
    Remote(#[from] RemoteFailure),
}

/// Why a broker between nodes (such as the NATS broker) did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteFailure {
    /// The connection to the transport is down; retry once it reconnects.
    #[error("disconnected from the transport; retry once it reconnects")]
    Disconnected,
    /// The connection is closed for good (reconnect attempts ran out);
    /// connect a new broker.
    #[error("the connection is closed for good (reconnect attempts ran out); connect a new broker")]
    Closed,
    /// The server refused to let this node publish there (its NATS
    /// permissions).
    #[error("the server refused publishing to {0} (NATS permissions)")]
    Denied(String),
    /// Too big for the server's maximum payload.
    #[error("{bytes} bytes is more than the server takes in one message ({max}); send less")]
    TooLarge {
        /// The message's size on the wire.
        bytes: usize,
        /// The server's `max_payload`.
        max: usize,
    },
    /// No node serves the address (none exported it).
    #[error("no node serves this address; export it on the node that hosts it")]
    NoResponders,
    /// The receiving node did not confirm in time: it may or may not have
    /// the message.
    #[error("node did not confirm delivery within {}; the message may or may not have arrived", crate::util::time::human(*.0))]
    Unconfirmed(std::time::Duration),
    /// The address resolves to nothing on the node that serves it.
    #[error("on node {node}: {reason}")]
    Unresolved {
        /// The node that answered.
        node: String,
        /// What its registry said.
        reason: String,
    },
    /// The receiving node does not accept this version of the message.
    #[error(
        "node {node} does not accept version {version} of {message_type} (it accepts {accepted}); upgrade the node or send a version it knows"
    )]
    UnknownVersion {
        /// The node that refused.
        node: String,
        /// The message type.
        message_type: String,
        /// The version sent.
        version: u32,
        /// The versions it accepts, e.g. `1..=2`.
        accepted: String,
    },
    /// The message could not be encoded or decoded.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The transport refused or failed (a permission, an I/O error).
    #[error("transport error: {0}")]
    Transport(String),
    /// No node hosts this entity kind: register it on the hosting nodes
    /// (or the kind is misspelt).
    #[error("no node hosts entities of kind '{kind}'; register the kind on the hosting nodes")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
    },
    /// An entity key the cluster cannot place.
    #[error("bad entity key: {0}")]
    BadEntityKey(String),
    /// No node held the entity's shard within the send's time: it is moving,
    /// or its node died and its lease has not expired yet. Retry after the
    /// lease TTL; a durable send waits in JetStream instead.
    #[error(
        "shard {shard} of '{kind}' has no live owner now (moving, or its node died and the lease has not expired); retry after the lease TTL, or send durably"
    )]
    ShardUnavailable {
        /// The entity kind.
        kind: String,
        /// The shard of the key.
        shard: u32,
    },
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
