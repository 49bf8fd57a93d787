//! Actor addressing: how a sender names the actor (or group of actors) a
//! message is for.

pub mod types;

pub use types::{ActorAddress, PoolStrategy};
