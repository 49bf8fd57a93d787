//! The broker layer: how actors find each other without holding each
//! other's [`ActorRef`](crate::actor::ActorRef).
//!
//! Built so far: the [`ActorRegistry`] (names, services, and resolving an
//! [`ActorAddress`](crate::address::ActorAddress)) and pub/sub [`Topic`]s.
//! The message broker itself (request/reply by message id) and pools are
//! the next steps (see the README's "Not yet built").

mod pubsub;
mod registry;

pub(crate) use pubsub::Topics;
pub use pubsub::{PublishReport, Topic};
pub use registry::{ActorRegistry, RegistryError};
