//! Cluster sharding (feature `nats`): address an *entity* by kind and key,
//! and the cluster runs exactly one live instance of it somewhere —
//! activated by its first message, passivated when idle, moved when nodes
//! join or die. After Akka Cluster Sharding and Orleans' virtual actors,
//! built on NATS's own primitives: JetStream key-value leases, not a
//! home-made consensus.
//!
//! ```no_run
//! # use std::convert::Infallible;
//! # use airssys_rt::prelude::*;
//! use airssys_rt::address::ActorAddress;
//! use airssys_rt::broker::MessageBroker;
//! use airssys_rt::integration::nats::{Entity, NatsConfig, NatsMessageBroker, ShardingConfig};
//! # struct Account(u64);
//! # impl Actor for Account {
//! #     type Message = u64; type Error = Infallible;
//! #     async fn handle_message(&mut self, n: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> { self.0 += n; Ok(()) }
//! # }
//! impl Entity for Account {}
//!
//! # async fn f(system: ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
//! let config = NatsConfig::new(["nats://127.0.0.1:4222"], "bank", "node-a");
//! let broker: NatsMessageBroker<u64, u64> = NatsMessageBroker::connect(&system, config).await?;
//! broker.start_sharding(ShardingConfig::default()).await?;
//! broker.register_entity("account", |_key: &str| Account(0)).await?;
//! // From any node: the cluster finds (or starts) account 42.
//! broker.send(MessageEnvelope::new(ActorAddress::entity("account", "42"), 100)).await?;
//! # Ok(()) }
//! ```
//!
//! **The lease protocol.** Keys map to a fixed number of shards (a stable
//! hash). Each shard of each kind has a lease: an entry in the JetStream
//! key-value bucket `AIRSSYS_<system>_leases`, whose entries expire after
//! the lease TTL. The node that should own a shard — the live member with
//! the highest rendezvous score, over the nodes whose heartbeats it hears
//! and that host the kind — *creates* the entry (which fails while another
//! node holds it) and then renews it every sixth of the TTL with an
//! *update at the revision it wrote last* (which fails once anyone else
//! wrote it). A node serves a shard — subscribes to its subject, takes its
//! durable messages, activates its entities — only while it holds the lease
//! locally: until two thirds of the TTL after *sending* its last successful
//! write. The server stored that write after it was sent, so it keeps the
//! entry at least a full TTL after that moment; the last third is the time
//! the node has to stop the shard's entities when renewals fail. When a
//! node joins, the others hand off the shards it now wins, a bounded
//! number per round: stop serving, stop the entities (their snapshots
//! saved), delete the lease at its revision; the new owner creates it.
//!
//! **In a partition**, a node cut off from the NATS server cannot renew:
//! its shards stop two thirds of a TTL after its last renewal, before the
//! server lets their leases expire, and the nodes still connected take them
//! over after the expiry. A node cut off from other nodes but not from the
//! server keeps renewing and keeps its shards; the others see it gone
//! (no heartbeats) but cannot create its leases, so nothing runs twice.
//!
//! | guarantee | holds |
//! |---|---|
//! | at most one live instance per key in the cluster | always: joins, leaves, crashes and partitions (instances stop before their lease can expire) |
//! | a plain `send`/`request` to an entity | as any NATS send: confirmed once in the instance's mailbox; retried while the shard moves, until the send's time runs out (`ShardUnavailable`); `Unconfirmed` when the answer is lost |
//! | `send_durable` to an entity | at least once: stored by JetStream, acknowledged only after the instance *handled* it; a message whose node died comes to the next owner once the lease expires (repeats are possible: deduplicate by the envelope's id) |
//! | snapshots ([`Entity::SNAPSHOTS`]) | an instance that moves resumes from the snapshot saved after its last handled message |

mod coordinator;
mod entity;
mod host;
mod lease;
mod placement;
mod send;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

pub(crate) use coordinator::Coordinator;
pub use entity::Entity;
pub(crate) use host::{Host, Refusal, check_key};

use super::broker::{NatsMessageBroker, WireMessage, WireReply};
use crate::broker::RemoteFailure;

impl Refusal {
    /// What a sender is told.
    pub(crate) fn into_failure(self, kind: &str) -> RemoteFailure {
        match self {
            Refusal::UnknownKind => RemoteFailure::UnknownKind {
                kind: kind.to_owned(),
            },
            Refusal::BadKey(reason) => RemoteFailure::BadEntityKey(reason),
            Refusal::Moved { shard } => RemoteFailure::ShardUnavailable {
                kind: kind.to_owned(),
                shard,
            },
        }
    }

    /// What a node answers.
    pub(crate) fn into_answer(self, kind: &str, node: &str) -> super::wire::Answer {
        use super::wire::Answer;
        match self {
            Refusal::UnknownKind => Answer::UnknownKind {
                node: node.to_owned(),
                kind: kind.to_owned(),
            },
            Refusal::BadKey(reason) => Answer::Malformed(reason),
            Refusal::Moved { shard } => Answer::Moved {
                kind: kind.to_owned(),
                shard,
            },
        }
    }
}

/// How a node takes part in sharding. Every node of a cluster must use the
/// same number of shards and the same lease TTL (the first node to start
/// makes the lease bucket with its TTL; nothing checks that the others
/// agree).
#[derive(Debug, Clone)]
pub struct ShardingConfig {
    /// Shards per kind (64): the unit of placement and hand-off.
    pub shards: u32,
    /// How long a lease outlives its holder's last renewal (6 s): the
    /// longest a dead node's shards go unserved, plus the heartbeat window.
    pub lease_ttl: Duration,
    /// Stop instances idle this long (2 min); `None` keeps them.
    pub passivate_after: Option<Duration>,
    /// Shards a node hands off per round (every sixth of the TTL) when a
    /// node joins (8).
    pub rebalance_batch: usize,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self {
            shards: 64,
            lease_ttl: Duration::from_secs(6),
            passivate_after: Some(Duration::from_secs(120)),
            rebalance_batch: 8,
        }
    }
}

/// What one node's sharding has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardingStats {
    /// Shards this node holds now.
    pub shards_held: usize,
    /// Shards placement gives this node, by the members it saw last round:
    /// equal to `shards_held` once hand-offs have settled.
    pub shards_placed: usize,
    /// Instances running here now.
    pub entities_active: usize,
    /// Instances started here.
    pub activations: u64,
    /// Instances stopped for being idle.
    pub passivations: u64,
    /// Shards handed to another node.
    pub hand_offs: u64,
    /// Shards taken (at start, from a node that left or died, or handed over).
    pub take_overs: u64,
}

/// Starting sharding or registering a kind failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardingError {
    /// `start_sharding` was called twice on one broker.
    #[error("sharding is already started on this node")]
    AlreadyStarted,
    /// `register_entity` before `start_sharding`.
    #[error("sharding is not started on this node; call start_sharding first")]
    NotStarted,
    /// A kind name other than letters, digits, `-` and `_` (1–64 bytes).
    #[error("bad entity kind '{0}': use 1-64 letters, digits, '-' or '_'")]
    BadKind(String),
    /// The kind is registered already on this node.
    #[error("entity kind '{0}' is registered already on this node")]
    KindTaken(String),
    /// The settings are unusable.
    #[error("bad sharding settings: {0}")]
    Config(String),
    /// JetStream refused (not enabled, or no permission).
    #[error("JetStream: {0} (is JetStream enabled on the server? `nats-server -js`)")]
    JetStream(String),
}

/// The key-value bucket `bucket` (made if missing) whose entries expire
/// after `max_age` (zero: never). Made as its stream directly: the client's
/// `create_key_value` first reads account details that servers before 2.10
/// answer in a form it does not parse.
async fn key_value(
    context: &jetstream::Context,
    bucket: String,
    max_age: Duration,
) -> Result<kv::Store, ShardingError> {
    let failed = |e: &dyn std::fmt::Display| ShardingError::JetStream(e.to_string());
    context
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    context.get_key_value(bucket).await.map_err(|e| failed(&e))
}

impl<M: WireMessage, R: WireReply> NatsMessageBroker<M, R> {
    /// Makes this node part of the system's sharding: it can address
    /// entities, and host the kinds it [registers](Self::register_entity).
    pub async fn start_sharding(&self, config: ShardingConfig) -> Result<(), ShardingError> {
        if config.shards == 0 || config.lease_ttl < Duration::from_millis(600) {
            return Err(ShardingError::Config(
                "at least one shard, and a lease TTL of at least 600 ms".to_owned(),
            ));
        }
        if self.inner.sharding.get().is_some() {
            return Err(ShardingError::AlreadyStarted);
        }
        let context = self
            .jetstream()
            .await
            .map_err(|e| ShardingError::JetStream(e.to_string()))?;
        let subjects = &self.inner.subjects;
        let leases = key_value(context, subjects.bucket("leases"), config.lease_ttl).await?;
        let members = key_value(context, subjects.bucket("members"), Duration::ZERO).await?;
        let state = key_value(context, subjects.bucket("state"), Duration::ZERO).await?;
        let node = self.inner.config.node.clone();
        let host = Arc::new(Host::new(
            config.clone(),
            node.clone(),
            self.inner.system.clone(),
            members.clone(),
            state,
        ));
        if self.inner.sharding.set(host.clone()).is_err() {
            return Err(ShardingError::AlreadyStarted);
        }
        let coordinator = Arc::new(coordinator::Coordinator {
            inner: Arc::downgrade(&self.inner),
            host: host.clone(),
            leases: lease::Leases::new(leases, &node, config.lease_ttl),
        });
        let _ = self.inner.coordinator.set(coordinator.clone());
        self.start(coordinator::fence(coordinator.clone()));
        self.start(coordinator::run(coordinator));
        Ok(())
    }

    /// Hosts entities of `kind` on this node, each made by `make` from its
    /// key when activated. Register the same kinds on every node that
    /// should host them; a node that only sends to entities registers none.
    pub async fn register_entity<A, F>(&self, kind: &str, make: F) -> Result<(), ShardingError>
    where
        A: Entity<Message = M>,
        F: Fn(&str) -> A + Send + Sync + 'static,
    {
        let host = self.inner.sharding.get().ok_or(ShardingError::NotStarted)?;
        if !host::valid_kind(kind) {
            return Err(ShardingError::BadKind(kind.to_owned()));
        }
        let kinds: Vec<String> = {
            let mut kinds = host.kinds.lock();
            if kinds.contains_key(kind) {
                return Err(ShardingError::KindTaken(kind.to_owned()));
            }
            kinds.insert(
                kind.to_owned(),
                host::Kind {
                    start: host::factory(make),
                    snapshots: A::SNAPSHOTS,
                },
            );
            kinds.keys().cloned().collect()
        };
        host.announce(kinds).await.map_err(ShardingError::JetStream)
    }

    /// Leaves the cluster's sharding gracefully: takes no shard any more,
    /// tells the other nodes it hosts nothing, and hands every shard it
    /// holds over — its instances empty their mailboxes and stop (snapshots
    /// saved), its leases are released — so the others take them at their
    /// next round instead of after the lease TTL. Call it before shutting
    /// a node down.
    pub async fn leave_sharding(&self) -> Result<(), ShardingError> {
        let (Some(host), Some(coordinator)) =
            (self.inner.sharding.get(), self.inner.coordinator.get())
        else {
            return Err(ShardingError::NotStarted);
        };
        host.leaving
            .store(true, std::sync::atomic::Ordering::Release);
        host.withdraw().await.map_err(ShardingError::JetStream)?;
        coordinator.hand_off_all(self).await;
        Ok(())
    }

    /// What this node's sharding has done (`None` before
    /// [`start_sharding`](Self::start_sharding)).
    pub fn sharding_stats(&self) -> Option<ShardingStats> {
        self.inner.sharding.get().map(|host| host.stats())
    }

    /// The durable subject of the entity `key` of `kind`.
    pub(super) fn entity_durable_subject(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<String, RemoteFailure> {
        let host = self.sharding_host()?;
        host::check_key(key).map_err(RemoteFailure::BadEntityKey)?;
        Ok(self.inner.subjects.shard_durable(kind, host.shard_of(key)))
    }

    /// This node's sharding, or why entities cannot be addressed.
    pub(super) fn sharding_host(&self) -> Result<&Arc<Host<M>>, RemoteFailure> {
        self.inner.sharding.get().ok_or_else(|| {
            RemoteFailure::Transport(
                "sharding is not started on this node; call start_sharding first".to_owned(),
            )
        })
    }
}
