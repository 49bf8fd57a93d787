//! The broker layer: how actors find each other without holding each
//! other's [`ActorRef`](crate::actor::ActorRef).
//!
//! Built so far: the [`ActorRegistry`] (names, services, and resolving an
//! [`ActorAddress`](crate::address::ActorAddress)). The message broker
//! itself (request/reply by message id, pub/sub topics) and pools are the
//! next steps (see the README's "Not yet built").

mod registry;

pub use registry::{ActorRegistry, RegistryError};
