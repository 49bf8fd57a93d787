//! Actor addressing: how a sender names the actor (or group of actors) a
//! message is for, how that name resolves to a live actor, and pools of
//! interchangeable actors behind one address.

pub mod pool;
mod pool_child;
pub mod resolver;
pub mod ring;
pub mod types;
pub(crate) mod work_sharing;

pub use pool::{ActorPool, PoolError, PoolSendError, PoolSpec, PoolStatus};
pub use ring::HashRing;
pub use types::{ActorAddress, PoolStrategy};
