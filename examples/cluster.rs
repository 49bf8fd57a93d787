//! Two nodes of one actor system on one machine, talking over NATS: this
//! program starts `nats-server` on a free loopback port, starts a second
//! node (this same program, `--worker`) as a child process, sends it 10,000
//! requests, then kills it and waits for its heartbeats to stop.
//!
//! ```text
//! cargo run --release --example cluster --features nats
//! ```
//!
//! `--worker --server <url> [--heartbeat-ms <ms>]` runs the second node
//! alone: a "doubler" actor exported to the other nodes; it prints `ready`
//! and serves until killed or until its standard input closes.

#[path = "../tests/support/nats_server.rs"]
mod nats_server;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::MessageBroker;
use airssys_rt::integration::nats::{NatsConfig, NatsMessageBroker};
use airssys_rt::prelude::*;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// Asks for twice the number.
#[derive(Debug, Clone, Serialize, Deserialize, Message)]
#[message(name = "cluster.double")]
struct Double(u64);

type Broker = NatsMessageBroker<Double, u64>;

/// Answers each request with twice its number.
struct Doubler(Broker);

impl Actor for Doubler {
    type Message = Double;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        Double(n): Double,
        ctx: &mut ActorContext<Double>,
    ) -> Result<(), Infallible> {
        if let Some(request) = ctx.envelope_id() {
            // Unanswerable only if the requester gave up; nothing to do then.
            let _ = self.0.reply(request, n * 2);
        }
        Ok(())
    }
}

const REQUESTS: u64 = 10_000;
const IN_FLIGHT: usize = 32;

fn argument(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn config(server: &str, node: &str, heartbeat: Duration) -> NatsConfig {
    NatsConfig::new([server], "cluster-demo", node).heartbeat(heartbeat, 3)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let heartbeat =
        Duration::from_millis(argument(&args, "--heartbeat-ms").map_or(Ok(200), |ms| ms.parse())?);
    if args.iter().any(|a| a == "--worker") {
        let server = argument(&args, "--server").ok_or("--worker needs --server <url>")?;
        return worker(&server, heartbeat).await;
    }

    let server = nats_server::NatsServer::start();
    println!("nats-server on {}", server.url());
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--worker", "--server", &server.url()])
        .args(["--heartbeat-ms", &heartbeat.as_millis().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    match lines.next() {
        Some(Ok(line)) if line == "ready" => println!("worker node (pid {}) ready", child.id()),
        other => return Err(format!("the worker did not start: {other:?}").into()),
    }

    let system = ActorSystem::new(SystemConfig::default())?;
    let broker: Broker =
        NatsMessageBroker::connect(&system, config(&server.url(), "driver", heartbeat)).await?;
    let doubler = ActorAddress::named("doubler");
    let mut monitor = broker.monitor(&doubler).await?;
    println!("\"doubler\" is on node {:?}", monitor.node());

    let began = Instant::now();
    let answers: Vec<Result<bool, String>> = futures::stream::iter(0..REQUESTS)
        .map(|n| {
            let broker = broker.clone();
            let request = MessageEnvelope::new(ActorAddress::named("doubler"), Double(n));
            async move {
                let reply = broker.request(request, Duration::from_secs(10)).await;
                reply.map(|twice| twice == n * 2).map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let took = began.elapsed();
    let right = answers.iter().filter(|a| matches!(a, Ok(true))).count();
    println!(
        "{right}/{REQUESTS} requests answered right across processes in {took:.2?} ({:.0} requests/s, {IN_FLIGHT} in flight)",
        REQUESTS as f64 / took.as_secs_f64()
    );
    if let Some(Err(first)) = answers.iter().find(|a| a.is_err()) {
        println!("first failure: {first}");
    }

    child.kill()?;
    let killed = Instant::now();
    monitor.down().await;
    println!(
        "worker killed; node {:?} reported gone after {:.0?} (heartbeat window {:?})",
        monitor.node(),
        killed.elapsed(),
        heartbeat * 3
    );
    let _ = child.wait();
    if right as u64 != REQUESTS {
        return Err("some requests were not answered right".into());
    }
    Ok(())
}

/// The second node: a doubler, exported, until killed or stdin closes.
async fn worker(server: &str, heartbeat: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let system = ActorSystem::new(SystemConfig::default())?;
    let broker: Broker =
        NatsMessageBroker::connect(&system, config(server, "worker", heartbeat)).await?;
    system
        .spawn_builder()
        .register("doubler")
        .spawn(Doubler(broker.clone()))?;
    broker.export_name("doubler").await?;
    println!("ready");
    // Serve until the parent closes our stdin (or kills us).
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin()
            .read_line(&mut line)
            .is_ok_and(|read| read > 0)
        {
            line.clear();
        }
    })
    .await?;
    Ok(())
}
