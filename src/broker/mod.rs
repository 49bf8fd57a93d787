//! The broker layer: how actors find each other without holding each
//! other's [`ActorRef`](crate::actor::ActorRef).
//!
//! It owns the [`ActorRegistry`] (names, services, and resolving an
//! [`ActorAddress`](crate::address::ActorAddress)), the [`MessageBroker`]
//! trait with its [`InMemoryMessageBroker`] (envelopes by address,
//! request/reply correlated by message id), and pub/sub [`Topic`]s. Direct
//! [`ActorRef`](crate::actor::ActorRef)s stay the fast path; the broker is
//! for loose coupling.

mod delivery;
mod in_memory;
pub(crate) mod metrics;
mod pubsub;
mod registry;
mod traits;

pub use in_memory::InMemoryMessageBroker;
#[cfg(feature = "nats")]
pub(crate) use in_memory::undelivered;
pub(crate) use pubsub::Topics;
pub use pubsub::{PublishReport, Topic};
pub use registry::{ActorRegistry, RegistryError};
pub use traits::{BrokerError, DeliveryFailure, MessageBroker, RemoteFailure, UnknownRequest};
