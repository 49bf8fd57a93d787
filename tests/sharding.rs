//! Cluster sharding on a real `nats-server` with JetStream: nodes (each an
//! actor system with its own NATS connection) host entities by kind and
//! key; the first message activates an entity on the node holding its
//! shard's lease, one instance per key whichever node sends; idle entities
//! passivate and come back; a node joining takes shards over and a moved
//! entity resumes from its snapshot; durable sends are handled after a
//! hand-off; unknown kinds and bad keys are refused clearly.
#![cfg(feature = "nats")]

#[path = "support/nats_server.rs"]
mod nats_server;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::{BrokerError, DeliveryFailure, MessageBroker, RemoteFailure};
use airssys_rt::integration::nats::{
    Entity, NatsConfig, NatsMessageBroker, ShardingConfig, ShardingStats,
};
use airssys_rt::prelude::*;
use nats_server::NatsServer;
use serde::{Deserialize, Serialize};

const PATIENCE: Duration = Duration::from_secs(30);
const SHARDS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Op {
    Add(u64),
    Get,
}

impl Message for Op {
    const MESSAGE_TYPE: &'static str = "test.sharding.op";
}

/// Who answered, and the entity's total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    node: String,
    total: u64,
}

type Broker = NatsMessageBroker<Op, Seen>;

/// A total per key, kept in snapshots.
struct Tally {
    broker: Broker,
    total: u64,
}

impl Actor for Tally {
    type Message = Op;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        op: Op,
        ctx: &mut ActorContext<Op>,
    ) -> Result<(), Infallible> {
        if let Op::Add(n) = op {
            self.total += n;
        }
        if let (Op::Get, Some(request)) = (op, ctx.envelope_id()) {
            let node = self.broker.node().to_owned();
            let _ = self.broker.reply(
                request,
                Seen {
                    node,
                    total: self.total,
                },
            );
        }
        Ok(())
    }
}

impl Entity for Tally {
    const SNAPSHOTS: bool = true;
    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.total.to_le_bytes().to_vec())
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let bytes = snapshot.try_into().map_err(|_| "not a total".to_owned())?;
        self.total = u64::from_le_bytes(bytes);
        Ok(())
    }
}

struct Node {
    _system: ActorSystem,
    broker: Broker,
}

fn sharding() -> ShardingConfig {
    ShardingConfig {
        shards: SHARDS,
        lease_ttl: Duration::from_millis(1_200),
        passivate_after: None,
        rebalance_batch: 4,
    }
}

async fn node(server: &NatsServer, name: &str, config: ShardingConfig) -> Node {
    let system = ActorSystem::new(SystemConfig::named(name)).unwrap();
    let nats = NatsConfig::new([server.url()], "sharding-test", name)
        .heartbeat(Duration::from_millis(100), 5);
    let broker: Broker = NatsMessageBroker::connect(&system, nats).await.unwrap();
    broker.start_sharding(config).await.unwrap();
    let replies = broker.clone();
    broker
        .register_entity("tally", move |_key: &str| Tally {
            broker: replies.clone(),
            total: 0,
        })
        .await
        .unwrap();
    Node {
        _system: system,
        broker,
    }
}

fn stats(node: &Node) -> ShardingStats {
    node.broker.sharding_stats().unwrap()
}

/// Waits (polling the nodes' counts; there is no event to await across
/// nodes) until `settled` holds.
async fn until(what: &str, mut settled: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !settled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "not within {PATIENCE:?}: {what}");
}

/// Every shard held by the node placement gives it to (hand-offs settled).
async fn until_balanced(nodes: &[&Node]) {
    until("every shard held where placement puts it", || {
        let all: Vec<ShardingStats> = nodes.iter().map(|n| stats(n)).collect();
        all.iter().map(|s| s.shards_held).sum::<usize>() == SHARDS as usize
            && all.iter().map(|s| s.shards_placed).sum::<usize>() == SHARDS as usize
            && all
                .iter()
                .all(|s| s.shards_held == s.shards_placed && s.shards_held > 0)
    })
    .await;
}

async fn get(broker: &Broker, key: &str) -> Seen {
    let envelope = MessageEnvelope::new(ActorAddress::entity("tally", key), Op::Get);
    broker.request(envelope, PATIENCE).await.unwrap()
}

async fn add(broker: &Broker, key: &str, n: u64) {
    let envelope = MessageEnvelope::new(ActorAddress::entity("tally", key), Op::Add(n));
    broker.send(envelope).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_per_key_whichever_node_sends() {
    let server = NatsServer::with_jetstream();
    let a = node(&server, "a", sharding()).await;
    let b = node(&server, "b", sharding()).await;
    let c = node(&server, "c", sharding()).await;
    let nodes = [&a, &b, &c];
    until_balanced(&nodes).await;

    // 60 keys, each added to from every node, then read from every node.
    for key in 0..60 {
        for node in nodes {
            add(&node.broker, &key.to_string(), 1).await;
        }
    }
    let mut served_by: HashMap<String, usize> = HashMap::new();
    for key in 0..60 {
        let key = key.to_string();
        let answers: Vec<Seen> =
            futures::future::join_all(nodes.iter().map(|node| get(&node.broker, &key))).await;
        // One instance: the same node answers for every sender, with every add.
        assert!(
            answers.iter().all(|seen| *seen == answers[0]),
            "{answers:?}"
        );
        assert_eq!(answers[0].total, 3, "key {key}");
        *served_by.entry(answers[0].node.clone()).or_default() += 1;
    }
    assert_eq!(
        served_by.len(),
        3,
        "keys spread over the nodes: {served_by:?}"
    );
    let active: usize = nodes.iter().map(|n| stats(n).entities_active).sum();
    let activations: u64 = nodes.iter().map(|n| stats(n).activations).sum();
    assert_eq!(active, 60);
    assert_eq!(activations, 60, "each key activated once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_entity_is_passivated_and_comes_back_with_its_state() {
    let server = NatsServer::with_jetstream();
    let config = ShardingConfig {
        passivate_after: Some(Duration::from_millis(300)),
        ..sharding()
    };
    let a = node(&server, "a", config).await;
    until_balanced(&[&a]).await;
    add(&a.broker, "idle", 5).await;
    assert_eq!(get(&a.broker, "idle").await.total, 5);
    until("the idle entity passivated", || {
        let now = stats(&a);
        now.passivations == 1 && now.entities_active == 0
    })
    .await;
    // The next message activates it again, from its snapshot.
    assert_eq!(get(&a.broker, "idle").await.total, 5);
    assert_eq!(stats(&a).activations, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_shards_over_and_moved_entities_resume_from_their_snapshots() {
    let server = NatsServer::with_jetstream();
    let a = node(&server, "a", sharding()).await;
    until_balanced(&[&a]).await;
    for key in 0..40 {
        add(&a.broker, &key.to_string(), key).await;
    }
    // Durable sends while the cluster grows: each handled once it settles.
    let b = node(&server, "b", sharding()).await;
    for key in 0..40 {
        let envelope = MessageEnvelope::new(
            ActorAddress::entity("tally", key.to_string()),
            Op::Add(1000),
        );
        a.broker.send_durable(envelope).await.unwrap();
    }
    until_balanced(&[&a, &b]).await;
    assert!(stats(&a).hand_offs > 0);
    let mut moved = 0;
    for key in 0..40u64 {
        // Its adds (from the snapshot, if it moved) and the durable one,
        // which may still be on its way to the new owner.
        let expected = key + 1000;
        let mut seen = get(&b.broker, &key.to_string()).await;
        let waited = tokio::time::timeout(PATIENCE, async {
            while seen.total != expected {
                tokio::time::sleep(Duration::from_millis(20)).await;
                seen = get(&b.broker, &key.to_string()).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "key {key}: total {} not {expected}",
            seen.total
        );
        if seen.node == "b" {
            moved += 1;
        }
    }
    assert!(moved > 0, "some keys moved to the new node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kinds_and_bad_keys_are_refused_with_the_message() {
    let server = NatsServer::with_jetstream();
    let a = node(&server, "a", sharding()).await;
    until_balanced(&[&a]).await;
    let unknown = MessageEnvelope::new(ActorAddress::entity("nobody", "1"), Op::Add(1));
    match a.broker.send(unknown).await {
        Err(BrokerError::Undelivered {
            envelope, cause, ..
        }) => {
            assert_eq!(envelope.payload, Op::Add(1));
            assert!(
                matches!(
                    cause,
                    DeliveryFailure::Remote(RemoteFailure::UnknownKind { .. })
                ),
                "{cause}"
            );
        }
        other => panic!("refused, not {other:?}"),
    }
    let empty = MessageEnvelope::new(ActorAddress::entity("tally", ""), Op::Add(1));
    match a.broker.send(empty).await {
        Err(BrokerError::Undelivered { cause, .. }) => {
            assert!(
                matches!(
                    cause,
                    DeliveryFailure::Remote(RemoteFailure::BadEntityKey(_))
                ),
                "{cause}"
            );
        }
        other => panic!("refused, not {other:?}"),
    }
}
