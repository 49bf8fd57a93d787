//! The subject scheme (tabled in the `integration::nats` module docs): one
//! token per name under `airssys.<system>`, escaped so that no name can
//! reach into another's subject or add a wildcard.

use std::fmt::Write;

use crate::address::ActorAddress;

/// `name` as one subject token.
pub(crate) fn token(name: &str) -> String {
    let mut token = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(token, "~{byte:02X}");
        }
    }
    if token.is_empty() {
        token.push('~');
    }
    token
}

/// The subjects of one system.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    namespace: String,
}

impl Subjects {
    pub(crate) fn new(namespace: String) -> Self {
        Self { namespace }
    }

    pub(crate) fn name(&self, name: &str) -> String {
        format!("{}.name.{}", self.namespace, token(name))
    }

    pub(crate) fn service(&self, service: &str) -> String {
        format!("{}.svc.{}", self.namespace, token(service))
    }

    pub(crate) fn pool(&self, pool: &str) -> String {
        format!("{}.pool.{}", self.namespace, token(pool))
    }

    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}.topic.{}", self.namespace, token(topic))
    }

    pub(crate) fn heartbeat(&self, node: &str) -> String {
        format!("{}.hb.{}", self.namespace, token(node))
    }

    pub(crate) fn heartbeats(&self) -> String {
        format!("{}.hb.*", self.namespace)
    }

    pub(crate) fn durable(&self, name: &str) -> String {
        format!("{}.durable.{}", self.namespace, token(name))
    }

    pub(crate) fn durables(&self) -> String {
        format!("{}.durable.>", self.namespace)
    }

    /// The prefix of this system's reply inboxes (`_INBOX_airssys_<system>`).
    pub(crate) fn inboxes(&self) -> String {
        format!("_INBOX_{}", self.namespace.replace('.', "_"))
    }

    /// The JetStream stream of this system.
    pub(crate) fn stream(&self) -> String {
        format!("AIRSSYS_{}", self.namespace.replace('.', "_"))
    }

    /// Where the node holding `shard` of `kind` takes its messages.
    pub(crate) fn shard(&self, kind: &str, shard: u32) -> String {
        format!("{}.shard.{}.{shard}", self.namespace, token(kind))
    }

    /// Where durable messages to `shard` of `kind` are stored (two tokens
    /// after `durable`, so no name's subject is one of them).
    pub(crate) fn shard_durable(&self, kind: &str, shard: u32) -> String {
        format!("{}.durable.{}.{shard}", self.namespace, token(kind))
    }

    /// The JetStream key-value bucket of `purpose` (`leases`, `state`).
    pub(crate) fn bucket(&self, purpose: &str) -> String {
        format!("{}_{purpose}", self.stream())
    }

    /// Where `address` is served over NATS; `None` for an actor id, which
    /// names an actor of one node only, and for an entity, whose subject
    /// depends on its shard ([`shard`](Self::shard)).
    pub(crate) fn of(&self, address: &ActorAddress) -> Option<String> {
        match address {
            ActorAddress::Id(_) | ActorAddress::Entity { .. } => None,
            ActorAddress::Named(name) => Some(self.name(name)),
            ActorAddress::Service { service, .. } => Some(self.service(service)),
            ActorAddress::Pool { pool, .. } => Some(self.pool(pool)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_token() {
        assert_eq!(token("billing-eu_1"), "billing-eu_1");
        assert_eq!(token("a.b"), "a~2Eb");
        assert_eq!(token("*"), "~2A");
        assert_eq!(token(">"), "~3E");
        assert_eq!(token("a b"), "a~20b");
        assert_eq!(token("~"), "~7E");
        assert_eq!(token(""), "~");
        let subjects = Subjects::new("airssys.shop".into());
        assert_eq!(subjects.name("orders.v2"), "airssys.shop.name.orders~2Ev2");
        assert_eq!(subjects.stream(), "AIRSSYS_airssys_shop");
    }
}
