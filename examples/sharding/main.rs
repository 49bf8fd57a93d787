//! Cluster sharding on one machine: starts `nats-server` with JetStream and
//! three node processes hosting "counter" entities, sends one durable hit
//! to each of 10,000 keys, SIGKILLs the node of key 0, sends another
//! 10,000 hits at once, and reports how long until the dead node's keys
//! were served again and how many hits were lost or handled twice; then
//! checks every entity's logged lifetimes for two instances of one key
//! alive at once.
//!
//! ```text
//! cargo run --release --example sharding --features nats
//! ```
//!
//! `--node <name> --server <url> --log <file> [--hammer <keys>]` runs one
//! hosting node (the tests start these too); it prints `ready` and serves
//! until killed or until its standard input closes; with `--hammer` it also
//! keeps asking random keys where they run.

#[path = "../../tests/support/nats_server.rs"]
mod nats_server;

mod cluster;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::MessageBroker;
use airssys_rt::integration::nats::NatsMessageBroker;
use airssys_rt::prelude::*;
use cluster::{Broker, KIND, NodeProcess, Op, Place};
use futures::StreamExt;

const KEYS: u64 = 10_000;
const IN_FLIGHT: usize = 64;

fn argument(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(node) = argument(&args, "--node") {
        let server = argument(&args, "--server").ok_or("--node needs --server <url>")?;
        let log = argument(&args, "--log").ok_or("--node needs --log <file>")?;
        let hammer = argument(&args, "--hammer")
            .map(|keys| keys.parse())
            .transpose()?;
        return cluster::run_node(&server, &node, log.as_ref(), hammer).await;
    }

    let server = nats_server::NatsServer::with_jetstream();
    let logs = std::env::temp_dir().join(format!("airssys-sharding-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let exe = std::env::current_exe()?;
    let mut nodes = NodeProcess::start_three(&exe, &server.url(), &logs);
    println!(
        "nats-server (JetStream) on {}; nodes n1, n2, n3 up",
        server.url()
    );

    let system = ActorSystem::new(SystemConfig::named("driver"))?;
    let broker: Broker =
        NatsMessageBroker::connect(&system, cluster::nats(&server.url(), "driver")).await?;
    broker.start_sharding(cluster::sharding()).await?;

    let began = Instant::now();
    send_hits(&broker, 0).await?;
    let logged = wait_for_hits(&nodes, KEYS).await;
    println!(
        "{KEYS} durable hits to {KEYS} keys handled in {:.2?} ({logged} logged)",
        began.elapsed()
    );

    // Where every key lives now.
    let placed = places(&broker, 0..KEYS).await;
    let victim = placed.get(&0).cloned().ok_or("key 0 unplaced")?;
    let its_keys: Vec<u64> = placed
        .iter()
        .filter(|(_, node)| **node == victim)
        .map(|(key, _)| *key)
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for node in placed.values() {
        *counts.entry(node).or_default() += 1;
    }
    println!("keys per node: {counts:?}");

    let index = nodes
        .iter()
        .position(|n| n.name == victim)
        .ok_or("victim unknown")?;
    let killed = Instant::now();
    nodes[index].kill();
    println!("SIGKILLed {victim} ({} keys)", its_keys.len());
    send_hits(&broker, KEYS).await?;
    // Served again: every key of the dead node answers from a survivor.
    let mut waiting: HashSet<u64> = its_keys.iter().copied().collect();
    while !waiting.is_empty() {
        let answered = places(&broker, waiting.iter().copied()).await;
        waiting.retain(|key| answered.get(key).is_none_or(|node| *node == victim));
    }
    println!(
        "all {} keys of {victim} served again {:.2?} after the kill (lease TTL {:?} + heartbeat window 500ms)",
        its_keys.len(),
        killed.elapsed(),
        cluster::sharding().lease_ttl
    );
    wait_for_hits(&nodes, 2 * KEYS).await;
    let (lifetimes, hits) = cluster::read_logs(&nodes);
    let unique: HashSet<u64> = hits.iter().copied().collect();
    println!(
        "durable hits: {} sent, {} handled, {} lost, {} handled twice (at least once: repeats come from messages the dead node handled but had not acknowledged)",
        2 * KEYS,
        hits.len(),
        2 * KEYS - unique.len() as u64,
        hits.len() - unique.len()
    );
    println!(
        "instances of one key alive at once: {}",
        cluster::overlaps(&lifetimes).len()
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&logs);
    Ok(())
}

/// One durable hit to each key, ids `first..first + KEYS`.
async fn send_hits(broker: &Broker, first: u64) -> Result<(), String> {
    let sent: Vec<Result<(), String>> = futures::stream::iter(0..KEYS)
        .map(|key| {
            let broker = broker.clone();
            async move {
                let hit = MessageEnvelope::new(
                    ActorAddress::entity(KIND, key.to_string()),
                    Op::Hit(first + key),
                );
                broker.send_durable(hit).await.map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    sent.into_iter().collect()
}

/// Where each of `keys` runs (keys that did not answer are left out).
async fn places(broker: &Broker, keys: impl Iterator<Item = u64>) -> HashMap<u64, String> {
    futures::stream::iter(keys)
        .map(|key| {
            let broker = broker.clone();
            async move {
                let ask =
                    MessageEnvelope::new(ActorAddress::entity(KIND, key.to_string()), Op::Where);
                let place: Option<Place> = broker.request(ask, Duration::from_secs(1)).await.ok();
                (key, place)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|(key, place)| async move { place.map(|p| (key, p.node)) })
        .collect()
        .await
}

/// Waits until the nodes' logs hold `count` distinct hits; returns the
/// number of hit lines.
async fn wait_for_hits(nodes: &[NodeProcess], count: u64) -> usize {
    loop {
        let (_, hits) = cluster::read_logs(nodes);
        let unique: HashSet<u64> = hits.iter().copied().collect();
        if unique.len() as u64 >= count {
            return hits.len();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
