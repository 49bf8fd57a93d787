//! [`ActorAddress`] and [`PoolStrategy`].

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::util::ActorId;

/// Names the destination of a message.
///
/// ```
/// use airssys_rt::address::{ActorAddress, PoolStrategy};
/// assert_eq!(ActorAddress::named("db").to_string(), "db");
/// let pool = ActorAddress::Pool { pool: "workers".into(), strategy: PoolStrategy::RoundRobin };
/// assert_eq!(pool.to_string(), "pool:workers/round-robin");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActorAddress {
    /// A specific actor; the fastest route.
    Id(ActorId),
    /// A registered name. A `&'static str` name is kept without copying.
    Named(Cow<'static, str>),
    /// A service, optionally narrowed by a key.
    Service {
        /// Service name.
        service: String,
        /// Optional key within the service (e.g. a shard).
        key: Option<String>,
    },
    /// A pool of interchangeable actors behind a load-balancing strategy.
    Pool {
        /// Pool name.
        pool: String,
        /// How a member is chosen.
        strategy: PoolStrategy,
    },
    /// A sharded entity: the one live instance of `kind` for `key` in a
    /// cluster, activated on its first message (see the NATS broker's
    /// sharding, feature `nats`). Locally it resolves to the entity's
    /// instance on this node, registered under
    /// [`entity_name`](ActorAddress::entity_name).
    Entity {
        /// The entity kind, as registered on the hosting nodes.
        kind: String,
        /// The entity's key within its kind (e.g. a customer id).
        key: String,
    },
}

/// How a pool picks the member that receives a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PoolStrategy {
    /// Members in turn.
    RoundRobin,
    /// The member with the fewest messages in flight.
    LeastConnections,
    /// A uniformly random member.
    Random,
    /// The member chosen by hashing the message's routing key; the string
    /// names the hash ring (pools with the same ring name agree).
    ConsistentHash(String),
    /// One queue shared by every member: an idle member always takes the
    /// next job, and a member that crashes loses only the job it was
    /// handling (Akka's balancing pool). The pool's mailbox config (capacity,
    /// backpressure) applies to the shared queue. A pool started with
    /// another strategy and addressed with this one routes round-robin.
    WorkSharing,
}

impl ActorAddress {
    /// Shorthand for [`ActorAddress::Named`]; a string literal is not
    /// copied.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        ActorAddress::Named(name.into())
    }

    /// Shorthand for [`ActorAddress::Entity`].
    ///
    /// ```
    /// use airssys_rt::address::ActorAddress;
    /// let account = ActorAddress::entity("account", "42");
    /// assert_eq!(account.to_string(), "entity:account/42");
    /// ```
    pub fn entity(kind: impl Into<String>, key: impl Into<String>) -> Self {
        ActorAddress::Entity {
            kind: kind.into(),
            key: key.into(),
        }
    }

    /// The name an entity's instance is registered under on the node
    /// hosting it: `entity:<kind>/<key>`.
    pub fn entity_name(kind: &str, key: &str) -> String {
        format!("entity:{kind}/{key}")
    }

    /// The actor id, for an [`ActorAddress::Id`].
    pub fn id(&self) -> Option<ActorId> {
        match self {
            ActorAddress::Id(id) => Some(*id),
            _ => None,
        }
    }
}

impl From<ActorId> for ActorAddress {
    fn from(id: ActorId) -> Self {
        ActorAddress::Id(id)
    }
}

impl fmt::Display for PoolStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolStrategy::RoundRobin => f.write_str("round-robin"),
            PoolStrategy::LeastConnections => f.write_str("least-connections"),
            PoolStrategy::Random => f.write_str("random"),
            PoolStrategy::ConsistentHash(ring) => write!(f, "consistent-hash({ring})"),
            PoolStrategy::WorkSharing => f.write_str("work-sharing"),
        }
    }
}

impl fmt::Display for ActorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorAddress::Id(id) => write!(f, "{id}"),
            ActorAddress::Named(name) => f.write_str(name),
            ActorAddress::Service { service, key: None } => write!(f, "service:{service}"),
            ActorAddress::Service {
                service,
                key: Some(key),
            } => write!(f, "service:{service}/{key}"),
            ActorAddress::Pool { pool, strategy } => write!(f, "pool:{pool}/{strategy}"),
            ActorAddress::Entity { kind, key } => write!(f, "entity:{kind}/{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        assert_eq!(
            ActorAddress::Id(ActorId::from_raw(5)).to_string(),
            "actor#5"
        );
        let svc = ActorAddress::Service {
            service: "auth".into(),
            key: Some("eu".into()),
        };
        assert_eq!(svc.to_string(), "service:auth/eu");
        let ch = PoolStrategy::ConsistentHash("ring".into());
        assert_eq!(ch.to_string(), "consistent-hash(ring)");
    }

    #[test]
    fn serde_round_trip() {
        let a = ActorAddress::Pool {
            pool: "p".into(),
            strategy: PoolStrategy::LeastConnections,
        };
        let back: ActorAddress = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            ActorAddress::from(ActorId::from_raw(2)).id(),
            Some(ActorId::from_raw(2))
        );
    }
}
