//! Distributed actors on NATS (feature `nats`): a [`NatsMessageBroker`]
//! lets the actor systems of several processes and machines address each
//! other with the same [`ActorAddress`](crate::address::ActorAddress)
//! values they use locally.
//!
//! - **Addressing**: a node [exports](NatsMessageBroker::export_name) the
//!   names, services and pools it hosts; any node's broker then reaches
//!   them. A name this node holds is delivered locally, without NATS.
//! - **Messages**: envelopes cross in postcard (the brief's envelope derives
//!   `Serialize`), led by a small head naming the message type and its
//!   [`version`](crate::message::Message::version); a node refuses a type
//!   or version it does not take with a clear error instead of mis-decoding.
//! - **Guarantees**: [`send`](crate::broker::MessageBroker::send) is
//!   confirmed by the receiving node once the message is in the actor's
//!   mailbox; `request` waits for the actor's reply. Core NATS is at most
//!   once: a node that crashes loses what its mailboxes held, and a send
//!   whose confirmation is lost reports
//!   [`Unconfirmed`](crate::broker::RemoteFailure::Unconfirmed) (it may have
//!   arrived). [`send_durable`](NatsMessageBroker::send_durable) is at least
//!   once, on JetStream, with repeats dropped by message id. Every failure
//!   hands the envelope back.
//! - **Liveness**: nodes send heartbeats; a [`NodeMonitor`] tells a watcher
//!   when a node has been silent for the heartbeat window.
//!
//! Subjects, all under `airssys.<system>` (names escaped into one token:
//! letters, digits, `-` and `_` stay, any other byte becomes `~` and two hex
//! digits, so no name reaches into another subject or adds a wildcard):
//!
//! | subject | subscribed by | queue group |
//! |---|---|---|
//! | `….name.<name>` | the node that exported the name | yes: one node takes each message |
//! | `….svc.<service>` | nodes with members of the service | yes |
//! | `….pool.<pool>` | nodes running part of the pool | yes: the pool spreads over nodes |
//! | `….topic.<topic>` | nodes bridging the topic | no: every node gets each message |
//! | `….hb.<node>` | every node (`hb.*`) | no |
//! | `….durable.<name>` | JetStream stream `AIRSSYS_airssys_<system>`, a durable consumer per name | — |
//!
//! Replies travel on the system's own inboxes, `_INBOX_airssys_<system>.>`.
//! With NATS permissions that allow a user only `airssys.<system>.>` and
//! those inboxes, a node cannot publish into, or read the replies of,
//! another system; what the server refuses fails at once with
//! [`RemoteFailure::Denied`] or
//! [`NatsError::Subscribe`].

mod broker;
mod config;
mod durable;
mod link;
mod liveness;
mod serve;
mod sharding;
mod subject;
mod wire;

pub use broker::{NatsMessageBroker, WireMessage, WireReply};
pub use config::{NatsAuth, NatsConfig, NatsTls, ReconnectPolicy};
pub use link::LinkState;
pub use liveness::{NodeDown, NodeMonitor};
pub use sharding::{Entity, ShardingConfig, ShardingError, ShardingStats};

use crate::broker::RemoteFailure;

/// Setting up the NATS broker failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// The settings are unusable.
    #[error("bad NATS settings: {0}")]
    Config(String),
    /// No server could be reached.
    #[error("cannot connect to NATS at {servers}: {reason}; is nats-server running there?")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the last attempt said.
        reason: String,
    },
    /// A subscription was refused (often: NATS permissions).
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The connection is closed for good (reconnect attempts ran out).
    #[error(
        "the NATS connection is closed for good (reconnect attempts ran out); connect a new broker"
    )]
    Closed,
    /// JetStream refused (not enabled, or no permission).
    #[error("JetStream: {0}")]
    JetStream(String),
}

/// A topic message NATS did not take; the message comes back.
#[derive(Debug, thiserror::Error)]
#[error("could not publish: {cause}")]
pub struct RemotePublishError<M> {
    /// The message, unpublished.
    pub message: M,
    /// Why.
    pub cause: RemoteFailure,
}
