//! One node's side of sharding: the kinds it hosts, the shards it holds,
//! and the entity instances it runs. Activation, passivation and the
//! stopping of a shard's instances live here; the leases and the placement
//! rounds in [`coordinator`](super::coordinator).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use parking_lot::Mutex;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::entity::{Acks, Entity, Hosted, Ties};
use super::lease::Lease;
use super::placement;
use super::{ShardingConfig, ShardingStats};
use crate::actor::ActorRef;
use crate::address::ActorAddress;
use crate::message::Message;
use crate::system::{ActorSystem, SystemError};

/// Starts an instance of one kind for a key.
pub(crate) type Factory<M> =
    Arc<dyn Fn(&ActorSystem, &str, String, Ties) -> Result<ActorRef<M>, SystemError> + Send + Sync>;

/// A registered kind.
pub(crate) struct Kind<M: Message> {
    pub(crate) start: Factory<M>,
    pub(crate) snapshots: bool,
}

/// A shard this node holds.
pub(crate) struct Held {
    pub(crate) lease: Lease,
    /// Its durable consumer's task.
    pub(crate) consumer: Option<AbortHandle>,
}

/// A running instance.
struct Active<M: Message> {
    actor: ActorRef<M>,
    shard: u32,
    busy_at: Arc<AtomicU64>,
    acks: Acks,
}

/// Why this node does not take a message for an entity now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownKind,
    BadKey(String),
    /// Not held here (any more), or an instance still stopping: retry.
    Moved {
        shard: u32,
    },
}

/// Counters of [`ShardingStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) activations: AtomicU64,
    pub(crate) passivations: AtomicU64,
    pub(crate) hand_offs: AtomicU64,
    pub(crate) take_overs: AtomicU64,
    /// Shards placement gives this node, as of the last round.
    pub(crate) placed: AtomicU64,
}

/// The longest key a cluster places (a KV key and a registry name carry it).
pub(crate) const MAX_KEY: usize = 1_024;

/// One node's sharding state, shared by its broker and its coordinator.
pub(crate) struct Host<M: Message> {
    pub(crate) config: ShardingConfig,
    pub(crate) node: String,
    pub(crate) system: ActorSystem,
    /// Which nodes host which kinds (no expiry).
    pub(crate) members: kv::Store,
    /// Snapshots (no expiry).
    pub(crate) state: kv::Store,
    pub(crate) kinds: Mutex<HashMap<String, Kind<M>>>,
    pub(crate) held: Mutex<HashMap<(String, u32), Held>>,
    active: Mutex<HashMap<(String, String), Active<M>>>,
    pub(crate) counters: Counters,
    /// Set by `leave_sharding`: no shard is taken any more.
    pub(crate) leaving: std::sync::atomic::AtomicBool,
    /// The kinds some node registered (heard from yet or not), as of the
    /// last reading of the members (`None` before the first).
    pub(crate) hosted: Mutex<Option<std::collections::HashSet<String>>>,
    epoch: Instant,
}

/// A kind name: letters, digits, `-` and `_` (it is part of subjects,
/// bucket keys and consumer names).
pub(crate) fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `key` can be placed; why not if not.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("an entity key cannot be empty".to_owned());
    }
    if key.len() > MAX_KEY {
        return Err(format!(
            "an entity key is at most {MAX_KEY} bytes, this one is {}",
            key.len()
        ));
    }
    Ok(())
}

/// `text` as one token of a key-value key (KV keys take letters, digits
/// and `-_/=.`): letters, digits, `-` and `_` stay, other bytes become `=`
/// and two hex digits, so no text adds a `.` level or clashes with another.
pub(crate) fn kv_token(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("={byte:02x}"));
        }
    }
    out
}

/// The state bucket's key for the snapshot of `key` of `kind`.
pub(crate) fn snapshot_key(kind: &str, key: &str) -> String {
    format!("snap.{kind}.{}", kv_token(key))
}

impl<M: Message> Host<M> {
    pub(crate) fn new(
        config: ShardingConfig,
        node: String,
        system: ActorSystem,
        members: kv::Store,
        state: kv::Store,
    ) -> Self {
        Self {
            config,
            node,
            system,
            members,
            state,
            kinds: Mutex::default(),
            held: Mutex::default(),
            active: Mutex::default(),
            counters: Counters::default(),
            leaving: std::sync::atomic::AtomicBool::new(false),
            hosted: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    /// Tells the other nodes this one hosts `kinds`.
    pub(crate) async fn announce(&self, kinds: Vec<String>) -> Result<(), String> {
        let value =
            postcard::to_allocvec(&(self.node.clone(), kinds)).map_err(|e| e.to_string())?;
        self.members
            .put(super::coordinator::member_key(&self.node), value.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Tells the other nodes this one hosts nothing any more.
    pub(crate) async fn withdraw(&self) -> Result<(), String> {
        self.members
            .delete(super::coordinator::member_key(&self.node))
            .await
            .map_err(|e| e.to_string())
    }

    /// The shard of `key`.
    pub(crate) fn shard_of(&self, key: &str) -> u32 {
        placement::shard_of(key, self.config.shards)
    }

    /// Reads which live nodes (`live`, and this one) host each kind, for
    /// placement, and keeps which kinds any node registered for
    /// [`is_hosted`](Self::is_hosted); `None` if the bucket could not be
    /// read.
    pub(crate) async fn refresh_members(
        &self,
        live: &[String],
    ) -> Option<HashMap<String, Vec<String>>> {
        use futures::StreamExt;
        let mut keys = match self.members.keys().await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::debug!(target: "airssys_rt::sharding", error = %e, "members unreadable");
                return None;
            }
        };
        let mut entries = Vec::new();
        while let Some(Ok(key)) = keys.next().await {
            entries.push(key);
        }
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        let mut hosted = std::collections::HashSet::new();
        for key in entries {
            let Ok(Some(value)) = self.members.get(key).await else {
                continue;
            };
            let Ok((node, kinds)) = postcard::from_bytes::<(String, Vec<String>)>(&value) else {
                continue;
            };
            let placeable = node == self.node || live.contains(&node);
            for kind in kinds {
                if placeable {
                    members.entry(kind.clone()).or_default().push(node.clone());
                }
                hosted.insert(kind);
            }
        }
        for nodes in members.values_mut() {
            nodes.sort();
            nodes.dedup();
        }
        *self.hosted.lock() = Some(hosted);
        Some(members)
    }

    /// Whether some node registered `kind`, as of the last reading of the
    /// members (true before the first).
    pub(crate) fn is_hosted(&self, kind: &str) -> bool {
        self.kinds.lock().contains_key(kind)
            || self
                .hosted
                .lock()
                .as_ref()
                .is_none_or(|hosted| hosted.contains(kind))
    }

    /// Whether this node holds `shard` of `kind` now.
    pub(crate) fn holds(&self, kind: &str, shard: u32) -> bool {
        self.held
            .lock()
            .get(&(kind.to_owned(), shard))
            .is_some_and(|held| held.lease.held_until > Instant::now())
    }

    /// Makes sure the instance of `key` of `kind` runs here, if this node
    /// holds its shard; then the registry resolves the entity's address to
    /// it. `acks` gets the instance's durable acknowledgements.
    pub(crate) fn activate(&self, kind: &str, key: &str) -> Result<Acks, Refusal> {
        check_key(key).map_err(Refusal::BadKey)?;
        let shard = self.shard_of(key);
        let (start, snapshots) = {
            let kinds = self.kinds.lock();
            let Some(registered) = kinds.get(kind) else {
                return Err(Refusal::UnknownKind);
            };
            (registered.start.clone(), registered.snapshots)
        };
        if !self.holds(kind, shard) {
            return Err(Refusal::Moved { shard });
        }
        let mut active = self.active.lock();
        let id = (kind.to_owned(), key.to_owned());
        if let Some(running) = active.get(&id) {
            if running.actor.is_alive() {
                return Ok(running.acks.clone());
            }
            active.remove(&id);
        }
        let busy_at = Arc::new(AtomicU64::new(self.now_ms()));
        let acks = Acks::default();
        let ties = Ties {
            busy_at: busy_at.clone(),
            epoch: self.epoch,
            acks: acks.clone(),
            snapshots: snapshots.then(|| (self.state.clone(), snapshot_key(kind, key))),
        };
        let name = ActorAddress::entity_name(kind, key);
        // The name is still taken while the instance before is stopping.
        let actor = start(&self.system, &name, key.to_owned(), ties)
            .map_err(|_| Refusal::Moved { shard })?;
        active.insert(
            id,
            Active {
                actor,
                shard,
                busy_at,
                acks: acks.clone(),
            },
        );
        self.counters.activations.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("airssys_rt_sharding_activations_total", "kind" => kind.to_owned())
            .increment(1);
        tracing::debug!(target: "airssys_rt::sharding", kind, key, shard, "entity activated");
        Ok(acks)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Stops the instances idle for the configured time (their mailboxes
    /// empty); they start again on their next message.
    pub(crate) fn passivate_idle(&self) {
        let Some(idle) = self.config.passivate_after else {
            return;
        };
        let now = self.now_ms();
        let idle_ms = idle.as_millis() as u64;
        let mut active = self.active.lock();
        active.retain(|(kind, key), running| {
            let alive = running.actor.is_alive();
            let idle = now.saturating_sub(running.busy_at.load(Ordering::Relaxed)) >= idle_ms
                && running.actor.mailbox_len() == 0;
            if alive && idle {
                running.actor.stop();
                self.counters.passivations.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("airssys_rt_sharding_passivations_total", "kind" => kind.clone())
                    .increment(1);
                tracing::debug!(target: "airssys_rt::sharding", kind, key, "entity passivated");
            }
            alive && !idle
        });
    }

    /// Stops every instance of `shard` of `kind` (no longer held: no new
    /// messages reach them) once they have handled what their mailboxes
    /// hold, at most `drain` later; then waits until they have exited, at
    /// most `patience` (then kills those left).
    pub(crate) async fn stop_shard(
        &self,
        kind: &str,
        shard: u32,
        drain: Duration,
        patience: Duration,
    ) {
        let stopping: Vec<ActorRef<M>> = {
            let mut active = self.active.lock();
            let mut taken = Vec::new();
            active.retain(|(of_kind, _), running| {
                let here = of_kind == kind && running.shard == shard;
                if here {
                    taken.push(running.actor.clone());
                }
                !here
            });
            taken
        };
        // There is no event for an empty mailbox: look every few ms.
        let drained = async {
            while stopping
                .iter()
                .any(|actor| actor.is_alive() && actor.mailbox_len() > 0)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let _ = tokio::time::timeout(drain, drained).await;
        for actor in &stopping {
            actor.stop();
        }
        let all_exited = futures::future::join_all(stopping.iter().map(ActorRef::wait_for_exit));
        if tokio::time::timeout(patience, all_exited).await.is_err() {
            tracing::warn!(target: "airssys_rt::sharding", kind, shard, "entities did not stop in time: killed");
            for actor in &stopping {
                actor.kill();
            }
            let _ = tokio::time::timeout(
                patience,
                futures::future::join_all(stopping.iter().map(ActorRef::wait_for_exit)),
            )
            .await;
        }
    }

    /// Kills every instance at once (the broker is going away: nothing
    /// would renew or fence their leases).
    pub(crate) fn kill_all(&self) {
        self.held.lock().clear();
        for (_, running) in self.active.lock().drain() {
            running.actor.kill();
        }
    }

    /// The counts [`ShardingStats`] reports.
    pub(crate) fn stats(&self) -> ShardingStats {
        let now = Instant::now();
        ShardingStats {
            shards_held: self
                .held
                .lock()
                .values()
                .filter(|held| held.lease.held_until > now)
                .count(),
            entities_active: self.active.lock().len(),
            activations: self.counters.activations.load(Ordering::Relaxed),
            passivations: self.counters.passivations.load(Ordering::Relaxed),
            hand_offs: self.counters.hand_offs.load(Ordering::Relaxed),
            take_overs: self.counters.take_overs.load(Ordering::Relaxed),
            shards_placed: self.counters.placed.load(Ordering::Relaxed) as usize,
        }
    }
}

/// The factory of a kind whose instances are `A`s made by `make`.
pub(crate) fn factory<A, F>(make: F) -> Factory<A::Message>
where
    A: Entity,
    F: Fn(&str) -> A + Send + Sync + 'static,
{
    Arc::new(
        move |system: &ActorSystem, name: &str, key: String, ties: Ties| {
            let hosted = Hosted {
                entity: make(&key),
                ties,
                saved: None,
            };
            system
                .spawn_builder()
                .register(name.to_owned())
                .spawn(hosted)
        },
    )
}
