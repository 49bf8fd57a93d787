//! The placement rounds each hosting node runs, every sixth of the lease
//! TTL: renew the leases held, take the shards this node should own that
//! nobody holds, and hand off (a bounded number per round) the shards
//! another live node should own; passivate idle entities. Beside them, a
//! fence watch every twelfth of the TTL stops the shards whose lease was
//! not renewed in time — on its own, so a round held up by a slow server
//! cannot hold a fence up.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::{AckKind, consumer};
use tokio::time::Instant;

use super::host::{Held, Host, Refusal};
use super::lease::Leases;
use super::placement;
use crate::broker::MessageBroker;
use crate::integration::nats::broker::{Inner, NatsMessageBroker, WireMessage, WireReply};
use crate::integration::nats::durable::{self, RETRY_DELAY};
use crate::message::MessageEnvelope;
use crate::util::MessageId;

/// The lease bucket's key for `shard` of `kind`.
pub(crate) fn lease_key(kind: &str, shard: u32) -> String {
    format!("{kind}.{shard}")
}

/// The members bucket's key for `node`.
pub(crate) fn member_key(node: &str) -> String {
    format!("node.{}", super::host::kv_token(node))
}

/// What a coordinator works with.
pub(crate) struct Coordinator<M: crate::message::Message, R> {
    pub(crate) inner: Weak<Inner<M, R>>,
    pub(crate) host: Arc<Host<M>>,
    pub(crate) leases: Leases,
}

/// Runs placement rounds until the broker is gone.
pub(crate) async fn run<M: WireMessage, R: WireReply>(coordinator: Arc<Coordinator<M, R>>) {
    let mut rounds = tokio::time::interval(coordinator.host.config.lease_ttl / 6);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rounds.tick().await;
        let Some(inner) = coordinator.inner.upgrade() else {
            return;
        };
        let broker = NatsMessageBroker { inner };
        coordinator.round(&broker).await;
        coordinator.host.passivate_idle();
    }
}

/// Stops, every twelfth of the TTL, the shards whose lease is within a
/// sixth of the TTL of its local deadline (renewals failed): their
/// instances are gone before the server could let the lease expire.
pub(crate) async fn fence<M: WireMessage, R: WireReply>(coordinator: Arc<Coordinator<M, R>>) {
    let ttl = coordinator.host.config.lease_ttl;
    let mut checks = tokio::time::interval(ttl / 12);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        checks.tick().await;
        let Some(inner) = coordinator.inner.upgrade() else {
            return;
        };
        let broker = NatsMessageBroker { inner };
        let soon = Instant::now() + ttl / 6;
        let late: Vec<(String, u32)> = coordinator
            .host
            .held
            .lock()
            .iter()
            .filter(|(_, held)| held.lease.held_until <= soon)
            .map(|(id, _)| id.clone())
            .collect();
        let (coordinator, broker) = (&coordinator, &broker);
        futures::future::join_all(late.iter().map(|(kind, shard)| async move {
            tracing::warn!(target: "airssys_rt::sharding", kind, shard,
                "lease not renewed in time: entities stopped before it can expire");
            coordinator.drop_shard(broker, kind, *shard, false).await;
        }))
        .await;
    }
}

impl<M: WireMessage, R: WireReply> Coordinator<M, R> {
    async fn round(&self, broker: &NatsMessageBroker<M, R>) {
        self.renew(broker).await;
        if self.host.leaving.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        // Unreadable this round (or slow): nothing is taken or handed off.
        let ttl = self.host.config.lease_ttl;
        let live = broker.live_nodes();
        let reading = self.host.refresh_members(&live);
        let Ok(Some(members)) = tokio::time::timeout(ttl / 6, reading).await else {
            return;
        };
        let kinds: Vec<String> = self.host.kinds.lock().keys().cloned().collect();
        let me = self.host.node.as_str();
        let mut hand_offs: Vec<(String, u32)> = Vec::new();
        let mut placed = 0;
        for kind in &kinds {
            let Some(members) = members.get(kind) else {
                continue;
            };
            let mut wanted = Vec::new();
            let owners = placement::assign(kind, self.host.config.shards, members);
            for (shard, owner) in (0..self.host.config.shards).zip(owners) {
                let mine = owner == me;
                placed += usize::from(mine);
                let held = self.host.held.lock().contains_key(&(kind.clone(), shard));
                match (mine, held) {
                    (true, false) => wanted.push(shard),
                    (false, true) => hand_offs.push((kind.clone(), shard)),
                    _ => {}
                }
            }
            let taken = futures::future::join_all(wanted.into_iter().map(|shard| async move {
                (shard, self.leases.acquire(&lease_key(kind, shard)).await)
            }))
            .await;
            for (shard, acquired) in taken {
                // `None` or `Err`: held by another node still (it hands
                // it off soon, or its lease expires), or no answer.
                if let Ok(Some(lease)) = acquired {
                    self.take(broker, kind, shard, lease).await;
                }
            }
        }
        self.host
            .counters
            .placed
            .store(placed as u64, std::sync::atomic::Ordering::Relaxed);
        hand_offs.truncate(self.host.config.rebalance_batch);
        // All at once: each must be done before its lease could expire.
        futures::future::join_all(hand_offs.iter().map(|(kind, shard)| async move {
            self.drop_shard(broker, kind, *shard, true).await;
            self.host
                .counters
                .hand_offs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("airssys_rt_sharding_hand_offs_total", "kind" => kind.clone())
                .increment(1);
        }))
        .await;
        let stats = self.host.stats();
        let node = self.host.node.clone();
        metrics::gauge!("airssys_rt_sharding_shards_held", "node" => node.clone())
            .set(stats.shards_held as f64);
        metrics::gauge!("airssys_rt_sharding_entities_active", "node" => node)
            .set(stats.entities_active as f64);
    }

    /// Renews every lease held; a shard whose lease was lost (someone else
    /// wrote it) stops at once.
    async fn renew(&self, broker: &NatsMessageBroker<M, R>) {
        let held: Vec<((String, u32), super::lease::Lease)> = self
            .host
            .held
            .lock()
            .iter()
            .map(|(id, held)| (id.clone(), held.lease.clone()))
            .collect();
        let renewed = futures::future::join_all(held.into_iter().map(|(id, mut lease)| async {
            let renewed = self.leases.renew(&lease_key(&id.0, id.1), &mut lease).await;
            (id, lease, renewed)
        }))
        .await;
        let mut fenced = Vec::new();
        for ((kind, shard), lease, renewed) in renewed {
            match renewed {
                Ok(true) => {
                    if let Some(held) = self.host.held.lock().get_mut(&(kind.clone(), shard)) {
                        held.lease = lease;
                    }
                }
                Ok(false) => {
                    tracing::warn!(target: "airssys_rt::sharding", kind, shard, "lease lost: entities stopped");
                    fenced.push((kind, shard));
                }
                // Renewed again next round; the fence watch stops the shard
                // if its deadline comes first.
                Err(unsure) => {
                    tracing::debug!(target: "airssys_rt::sharding", kind, shard, error = %unsure.0, "lease not renewed this round");
                }
            }
        }
        // All at once: each must be done before its lease could expire.
        futures::future::join_all(
            fenced
                .iter()
                .map(|(kind, shard)| self.drop_shard(broker, kind, *shard, false)),
        )
        .await;
    }

    /// Starts serving `shard` of `kind` under `lease`.
    async fn take(
        &self,
        broker: &NatsMessageBroker<M, R>,
        kind: &str,
        shard: u32,
        lease: super::lease::Lease,
    ) {
        self.host.held.lock().insert(
            (kind.to_owned(), shard),
            Held {
                lease,
                consumer: None,
            },
        );
        if let Err(e) = broker
            .export(broker.inner.subjects.shard(kind, shard))
            .await
        {
            tracing::warn!(target: "airssys_rt::sharding", kind, shard, error = %e, "shard subject not served");
        }
        match self.consumer(broker, kind, shard).await {
            Ok(consumer) => {
                let (host, of_kind) = (self.host.clone(), kind.to_owned());
                let task = tokio::spawn(durable::consume(
                    Arc::downgrade(&broker.inner),
                    consumer,
                    move |inner, message| {
                        let (host, kind) = (host.clone(), of_kind.clone());
                        async move { take(&inner, &host, &kind, message).await }
                    },
                ));
                match self.host.held.lock().get_mut(&(kind.to_owned(), shard)) {
                    Some(held) => held.consumer = Some(task.abort_handle()),
                    None => task.abort(),
                }
            }
            Err(e) => {
                tracing::warn!(target: "airssys_rt::sharding", kind, shard, error = %e, "durable messages of the shard not taken")
            }
        }
        self.host
            .counters
            .take_overs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(target: "airssys_rt::sharding", node = %self.host.node, kind, shard, "shard taken");
    }

    /// Hands every shard held to the other nodes, all at once.
    pub(crate) async fn hand_off_all(&self, broker: &NatsMessageBroker<M, R>) {
        let held: Vec<(String, u32)> = self.host.held.lock().keys().cloned().collect();
        futures::future::join_all(
            held.iter()
                .map(|(kind, shard)| self.drop_shard(broker, kind, *shard, true)),
        )
        .await;
    }

    /// Stops serving `shard` of `kind`: no new messages, its entities
    /// stopped (and their snapshots saved); then, when `release`, the lease
    /// is given up for the next owner.
    pub(crate) async fn drop_shard(
        &self,
        broker: &NatsMessageBroker<M, R>,
        kind: &str,
        shard: u32,
        release: bool,
    ) {
        let Some(held) = self.host.held.lock().remove(&(kind.to_owned(), shard)) else {
            return;
        };
        if let Some(consumer) = held.consumer {
            consumer.abort();
        }
        // No longer held: new messages are refused (their senders ask
        // again). Handing off, the instances first empty their mailboxes,
        // until a twelfth of the TTL before the lease's local deadline;
        // fenced, they stop at once.
        let ttl = self.host.config.lease_ttl;
        let drain = if release {
            (held.lease.held_until - ttl / 12).saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        self.host.stop_shard(kind, shard, drain, ttl / 12).await;
        // Unsubscribing waits for the server, which may be gone.
        let unsubscribing = broker.clone();
        let subject = broker.inner.subjects.shard(kind, shard);
        tokio::spawn(async move {
            if let Err(e) = unsubscribing.unexport(subject).await {
                tracing::debug!(target: "airssys_rt::sharding", error = %e, "unsubscribe failed");
            }
        });
        if release {
            self.leases
                .release(&lease_key(kind, shard), &held.lease)
                .await;
        }
        tracing::info!(target: "airssys_rt::sharding", node = %self.host.node, kind, shard, release, "shard given up");
    }

    /// The durable consumer of `shard` of `kind` (shared by its successive
    /// owners: what one did not acknowledge, the next gets).
    async fn consumer(
        &self,
        broker: &NatsMessageBroker<M, R>,
        kind: &str,
        shard: u32,
    ) -> Result<consumer::PullConsumer, String> {
        let context = broker.jetstream().await.map_err(|e| e.to_string())?;
        let stream = context
            .get_stream(broker.inner.subjects.stream())
            .await
            .map_err(|e| e.to_string())?;
        let name = format!("shard_{kind}_{shard}");
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: broker.inner.subjects.shard_durable(kind, shard),
                    ack_policy: consumer::AckPolicy::Explicit,
                    // Unacknowledged by a node that died, a message comes
                    // back about when that node's lease expires.
                    ack_wait: self.host.config.lease_ttl.max(Duration::from_secs(1)),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }
}

/// Hands one of a shard's durable messages to its entity, to be
/// acknowledged once the entity has handled it.
async fn take<M: WireMessage, R: WireReply>(
    inner: &Inner<M, R>,
    host: &Host<M>,
    kind: &str,
    message: async_nats::jetstream::Message,
) {
    let mut envelope: Box<MessageEnvelope<M>> =
        match durable::open::<M>(&message.payload, &inner.config.accepted_versions) {
            Ok((_, envelope)) => envelope,
            Err(how) => return settle(&message, how).await,
        };
    let key = match &envelope.recipient {
        crate::address::ActorAddress::Entity { kind: of_kind, key } if of_kind == kind => {
            key.clone()
        }
        _ => return settle(&message, AckKind::Term).await,
    };
    let acks = match host.activate(kind, &key) {
        Ok(acks) => acks,
        Err(Refusal::Moved { .. }) => {
            return settle(&message, AckKind::Nak(Some(RETRY_DELAY))).await;
        }
        Err(Refusal::UnknownKind | Refusal::BadKey(_)) => {
            return settle(&message, AckKind::Term).await;
        }
    };
    // A fresh id on this node (ids of different senders may clash): the
    // instance acknowledges by it once it has handled the message.
    let id = MessageId::next();
    envelope.id = id;
    acks.lock().insert(id, message);
    if let Err(e) = inner.local.send(*envelope).await {
        tracing::debug!(target: "airssys_rt::sharding", error = %e, "durable message not taken yet");
        let refused = acks.lock().remove(&id);
        if let Some(message) = refused {
            settle(&message, AckKind::Nak(Some(RETRY_DELAY))).await;
        }
    }
}

/// Acknowledges, refuses or drops `message` as `how` says.
async fn settle(message: &async_nats::jetstream::Message, how: AckKind) {
    if let Err(e) = message.ack_with(how).await {
        tracing::debug!(target: "airssys_rt::sharding", error = %e, "durable settlement lost");
    }
}
