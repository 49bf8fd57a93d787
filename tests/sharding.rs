//! Cluster sharding on a real `nats-server` with JetStream.
//!
//! In one process, nodes (each an actor system with its own NATS
//! connection) host entities by kind and key: the first message activates
//! an entity on the node holding its shard's lease, one instance per key
//! whichever node sends; idle entities passivate and come back; a node
//! joining takes shards over and a moved entity resumes from its snapshot;
//! durable sends are handled after a hand-off; unknown kinds and bad keys
//! are refused clearly.
//!
//! Across processes (the sharding example's `--node`), where a node must
//! die: SIGKILLs and restarts under traffic from every node never leave two
//! instances of a key alive at once (each instance logs its lifetime), and
//! after a SIGKILL every key is served again and every durable hit is
//! handled.
#![cfg(feature = "nats")]

#[path = "support/nats_server.rs"]
mod nats_server;

#[path = "../examples/sharding/cluster.rs"]
mod cluster;

use std::collections::{HashMap, HashSet};
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
async fn a_node_leaving_hands_its_shards_over_with_their_state() {
    let server = NatsServer::with_jetstream();
    let a = node(&server, "a", sharding()).await;
    let b = node(&server, "b", sharding()).await;
    until_balanced(&[&a, &b]).await;
    for key in 0..30 {
        add(&b.broker, &key.to_string(), key).await;
    }
    assert!(stats(&a).entities_active > 0);
    a.broker.leave_sharding().await.unwrap();
    assert_eq!(stats(&a).shards_held, 0);
    assert_eq!(stats(&a).entities_active, 0);
    until_balanced(&[&b]).await;
    for key in 0..30u64 {
        let seen = get(&b.broker, &key.to_string()).await;
        assert_eq!(
            seen,
            Seen {
                node: "b".into(),
                total: key
            }
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_registered_since_the_senders_last_round_is_not_refused() {
    let server = NatsServer::with_jetstream();
    let a = node(&server, "a", sharding()).await;
    let b = node(&server, "b", sharding()).await;
    until_balanced(&[&a, &b]).await;
    // `a` has seen the members without "late"; `b` registers it now.
    let replies = b.broker.clone();
    b.broker
        .register_entity("late", move |_key: &str| Tally {
            broker: replies.clone(),
            total: 0,
        })
        .await
        .unwrap();
    let ask = MessageEnvelope::new(ActorAddress::entity("late", "1"), Op::Get);
    let seen = a.broker.request(ask, PATIENCE).await.unwrap();
    assert_eq!(seen.node, "b");
}

/// A TCP relay from a loopback port to the NATS server that can be cut:
/// every relayed connection closes and new ones are refused, as when a
/// node loses its network to the server.
struct Relay {
    url: String,
    tasks: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn to(server: &NatsServer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let upstream = server.url().trim_start_matches("nats://").to_owned();
        let tasks = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let relayed = tasks.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                relayed.lock().push(relay.abort_handle());
            }
        });
        tasks.lock().push(accepting.abort_handle());
        Self { url, tasks }
    }

    fn cut(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// Each instance's lifetime, by key: (node, started, ended).
type Lives = std::sync::Arc<
    parking_lot::Mutex<
        Vec<(
            String,
            String,
            std::time::Instant,
            Option<std::time::Instant>,
        )>,
    >,
>;

/// An entity that records its lifetime (the end on drop: a kill too).
struct Life {
    node: String,
    key: String,
    lives: Lives,
    index: Option<usize>,
    broker: Broker,
}

impl Actor for Life {
    type Message = Op;
    type Error = Infallible;
    async fn pre_start(&mut self, _: &mut ActorContext<Op>) -> Result<(), Infallible> {
        let mut lives = self.lives.lock();
        lives.push((
            self.key.clone(),
            self.node.clone(),
            std::time::Instant::now(),
            None,
        ));
        self.index = Some(lives.len() - 1);
        Ok(())
    }
    async fn handle_message(
        &mut self,
        op: Op,
        ctx: &mut ActorContext<Op>,
    ) -> Result<(), Infallible> {
        if let (Op::Get, Some(request)) = (op, ctx.envelope_id()) {
            let node = self.node.clone();
            let _ = self.broker.reply(request, Seen { node, total: 0 });
        }
        Ok(())
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        if let Some(index) = self.index {
            self.lives.lock()[index].3 = Some(std::time::Instant::now());
        }
    }
}

impl Entity for Life {}

async fn living_node(url: &str, name: &str, lives: &Lives) -> Node {
    let system = ActorSystem::new(SystemConfig::named(name)).unwrap();
    let nats =
        NatsConfig::new([url], "sharding-partition", name).heartbeat(Duration::from_millis(100), 5);
    let broker: Broker = NatsMessageBroker::connect(&system, nats).await.unwrap();
    broker.start_sharding(sharding()).await.unwrap();
    let (replies, lives, node) = (broker.clone(), lives.clone(), name.to_owned());
    broker
        .register_entity("life", move |key: &str| Life {
            node: node.clone(),
            key: key.to_owned(),
            lives: lives.clone(),
            index: None,
            broker: replies.clone(),
        })
        .await
        .unwrap();
    Node {
        _system: system,
        broker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_server_stops_its_entities_before_others_take_them_over() {
    let server = NatsServer::with_jetstream();
    let relay = Relay::to(&server).await;
    let lives = Lives::default();
    let a = living_node(&relay.url, "a", &lives).await;
    let b = living_node(&server.url(), "b", &lives).await;
    until_balanced(&[&a, &b]).await;
    let ask = |key: u64| {
        let broker = b.broker.clone();
        async move {
            let ask = MessageEnvelope::new(ActorAddress::entity("life", key.to_string()), Op::Get);
            broker.request(ask, Duration::from_secs(1)).await.ok()
        }
    };
    let mut on_a = Vec::new();
    for key in 0..60 {
        if ask(key).await.expect("answered").node == "a" {
            on_a.push(key);
        }
    }
    assert!(!on_a.is_empty());

    // `a` loses the server: it cannot renew, so it stops its instances;
    // `b` takes the keys over once the leases expire.
    relay.cut();
    for &key in &on_a {
        let moved = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(seen) = ask(key).await
                    && seen.node == "b"
                {
                    return;
                }
            }
        })
        .await;
        assert!(moved.is_ok(), "key {key} taken over by b");
    }
    assert_eq!(stats(&a).shards_held, 0, "a fenced every shard");
    assert_eq!(stats(&a).entities_active, 0);
    let lives = lives.lock().clone();
    for &key in &on_a {
        let key = key.to_string();
        let on = |node: &str| {
            lives
                .iter()
                .filter(|(k, n, _, _)| *k == key && n == node)
                .cloned()
                .collect::<Vec<_>>()
        };
        let (old, new) = (on("a"), on("b"));
        assert!(!new.is_empty());
        for (_, _, _, ended) in &old {
            let ended = ended.expect("a's instance stopped");
            assert!(
                new.iter().all(|(_, _, started, _)| *started > ended),
                "key {key}: b started before a stopped"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Separate processes
// ---------------------------------------------------------------------------

/// The sharding example, built by `cargo test --features nats` beside the
/// test binaries.
fn sharding_example() -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("the test binary");
    let profile = deps
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    profile.join("examples").join("sharding")
}

/// A fresh directory for node logs.
fn log_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("airssys-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn driver(server: &NatsServer) -> cluster::Broker {
    let system = ActorSystem::new(SystemConfig::named("driver")).unwrap();
    let broker: cluster::Broker =
        NatsMessageBroker::connect(&system, cluster::nats(&server.url(), "driver"))
            .await
            .unwrap();
    broker.start_sharding(cluster::sharding()).await.unwrap();
    broker
}

/// Where `key` runs, if it answers within a second.
async fn place(broker: &cluster::Broker, key: u64) -> Option<cluster::Place> {
    let ask = MessageEnvelope::new(
        ActorAddress::entity(cluster::KIND, key.to_string()),
        cluster::Op::Where,
    );
    broker.request(ask, Duration::from_secs(1)).await.ok()
}

/// Asks `keys` random keys below `below` where they run, 16 at a time.
async fn hammer(broker: &cluster::Broker, keys: usize, below: u64) {
    use futures::StreamExt;
    futures::stream::iter(0..keys)
        .for_each_concurrent(16, |_| async {
            place(broker, fastrand::u64(0..below)).await;
        })
        .await;
}

/// Waits until each key below `keys` answers.
async fn until_all_served(broker: &cluster::Broker, keys: u64) {
    let served = tokio::time::timeout(PATIENCE, async {
        for key in 0..keys {
            while place(broker, key).await.is_none() {}
        }
    })
    .await;
    assert!(served.is_ok(), "every key served again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_restarts_under_traffic_never_leave_two_instances_of_a_key_alive() {
    const KEYS: u64 = 200;
    let server = NatsServer::with_jetstream();
    let exe = sharding_example();
    let logs = log_dir("sharding-at-most-one");
    let start = |name: &str, run: usize| {
        let log = logs.join(format!("{name}-{run}.log"));
        cluster::NodeProcess::start(&exe, &server.url(), name, log, Some(KEYS))
    };
    let mut running: Vec<cluster::NodeProcess> =
        ["n1", "n2", "n3"].iter().map(|n| start(n, 0)).collect();
    let mut ended: Vec<cluster::NodeProcess> = Vec::new();
    let broker = driver(&server).await;
    hammer(&broker, 400, KEYS).await;
    for round in 1..=3 {
        // SIGKILL a random node; under traffic, the survivors take its
        // keys over; it comes back and takes its share back.
        let mut victim = running.remove(fastrand::usize(0..running.len()));
        victim.kill();
        let name = victim.name.clone();
        ended.push(victim);
        hammer(&broker, 200, KEYS).await;
        until_all_served(&broker, KEYS).await;
        running.push(start(&name, round));
        hammer(&broker, 200, KEYS).await;
        until_all_served(&broker, KEYS).await;
    }
    let runs: Vec<cluster::NodeProcess> = ended.into_iter().chain(running).collect();
    let (lifetimes, _) = cluster::read_logs(&runs);
    let overlaps = cluster::overlaps(&lifetimes);
    assert!(
        overlaps.is_empty(),
        "two instances alive at once: {:?}",
        &overlaps[..overlaps.len().min(3)]
    );
    // Not vacuous: keys lived on several runs (they moved with the kills).
    let moved = lifetimes
        .values()
        .filter(|lives| lives.iter().map(|l| &l.run).collect::<HashSet<_>>().len() > 1)
        .count();
    assert!(moved > 0, "no key moved");
    drop(runs);
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_every_key_is_served_again_and_every_durable_hit_is_handled() {
    use futures::StreamExt;
    const KEYS: u64 = 300;
    let server = NatsServer::with_jetstream();
    let exe = sharding_example();
    let logs = log_dir("sharding-failover");
    let mut nodes = cluster::NodeProcess::start_three(&exe, &server.url(), &logs);
    let broker = driver(&server).await;
    let hits = |first: u64| {
        let broker = broker.clone();
        async move {
            futures::stream::iter(0..KEYS)
                .for_each_concurrent(32, |key| {
                    let broker = broker.clone();
                    async move {
                        let hit = MessageEnvelope::new(
                            ActorAddress::entity(cluster::KIND, key.to_string()),
                            cluster::Op::Hit(first + key),
                        );
                        broker.send_durable(hit).await.expect("stored by JetStream");
                    }
                })
                .await;
        }
    };
    hits(0).await;
    // Every key answers, and where.
    let mut places = HashMap::new();
    for key in 0..KEYS {
        let mut answer = place(&broker, key).await;
        while answer.is_none() {
            answer = place(&broker, key).await;
        }
        places.insert(key, answer.unwrap().node);
    }
    let victim = places[&0].clone();
    let its_keys: Vec<u64> = places
        .iter()
        .filter(|(_, n)| **n == victim)
        .map(|(k, _)| *k)
        .collect();
    nodes.iter_mut().find(|n| n.name == victim).unwrap().kill();

    // Hits sent right after the kill, to every key.
    hits(KEYS).await;
    // Every key of the dead node comes back on a survivor.
    for &key in &its_keys {
        let served_again = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(seen) = place(&broker, key).await
                    && seen.node != victim
                {
                    return seen;
                }
            }
        })
        .await;
        assert!(served_again.is_ok(), "key {key} not served again");
    }
    // Every hit handled: at least once, none lost.
    let all: HashSet<u64> = (0..2 * KEYS).collect();
    let handled = tokio::time::timeout(PATIENCE, async {
        loop {
            let (_, hits) = cluster::read_logs(&nodes);
            let unique: HashSet<u64> = hits.into_iter().collect();
            if unique == all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (lifetimes, hits) = cluster::read_logs(&nodes);
    let unique: HashSet<u64> = hits.iter().copied().collect();
    assert!(
        handled.is_ok(),
        "{} of {} hits handled",
        unique.len(),
        all.len()
    );
    assert!(unique.is_subset(&all));
    assert!(cluster::overlaps(&lifetimes).is_empty());
    drop(nodes);
    let _ = std::fs::remove_dir_all(&logs);
}
