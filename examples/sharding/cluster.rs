//! What the sharding example and the sharding tests share: the entity (a
//! hit counter that logs its lifetime and every message it handles to its
//! node's log file), the node process (`--node`), and reading the logs
//! back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::MessageBroker;
use airssys_rt::integration::nats::{Entity, NatsConfig, NatsMessageBroker, ShardingConfig};
use airssys_rt::prelude::*;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The system all nodes belong to.
pub const SYSTEM: &str = "sharding-demo";
/// The entity kind.
pub const KIND: &str = "counter";

/// What a counter takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Counts a hit; the number names the message (unique per sender run).
    Hit(u64),
    /// Answers where the counter runs and how many hits it counted.
    Where,
}

impl Message for Op {
    const MESSAGE_TYPE: &'static str = "demo.counter.op";
}

/// A counter's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub node: String,
    pub hits: u64,
}

pub type Broker = NatsMessageBroker<Op, Place>;

/// Microseconds since the epoch: the nodes share this machine's clock.
pub fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_micros())
}

/// A node's log: one line per event, written through at once (a killed
/// process loses nothing it wrote).
#[derive(Clone)]
pub struct Log(Arc<Mutex<File>>);

impl Log {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self(Arc::new(Mutex::new(file))))
    }

    fn line(&self, line: String) {
        let _ = self.0.lock().write_all(line.as_bytes());
    }
}

/// Counts hits; logs `start` (when its task starts), every `hit`, and
/// `end` (on drop, which a kill or a crash runs too) with its key.
pub struct Counter {
    key: String,
    broker: Broker,
    log: Log,
    hits: u64,
}

impl Counter {
    pub fn new(key: &str, broker: Broker, log: Log) -> Self {
        Self {
            key: key.to_owned(),
            broker,
            log,
            hits: 0,
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.log.line(format!("end {} {}\n", self.key, now_us()));
    }
}

impl Actor for Counter {
    type Message = Op;
    type Error = Infallible;

    async fn pre_start(&mut self, _: &mut ActorContext<Op>) -> Result<(), Infallible> {
        self.log.line(format!("start {} {}\n", self.key, now_us()));
        Ok(())
    }

    async fn handle_message(
        &mut self,
        op: Op,
        ctx: &mut ActorContext<Op>,
    ) -> Result<(), Infallible> {
        match op {
            Op::Hit(id) => {
                self.hits += 1;
                self.log.line(format!("hit {} {id}\n", self.key));
            }
            Op::Where => {
                if let Some(request) = ctx.envelope_id() {
                    let node = self.broker.node().to_owned();
                    let _ = self.broker.reply(
                        request,
                        Place {
                            node,
                            hits: self.hits,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// The hit count survives moves.
impl Entity for Counter {
    const SNAPSHOTS: bool = true;
    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(self.hits.to_le_bytes().to_vec())
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let bytes = snapshot.try_into().map_err(|_| "not a count".to_owned())?;
        self.hits = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// The cluster's timing: a short lease and fast heartbeats for a demo.
pub fn sharding() -> ShardingConfig {
    ShardingConfig {
        shards: 32,
        lease_ttl: Duration::from_millis(1_500),
        passivate_after: None,
        rebalance_batch: 8,
    }
}

/// Heartbeat every 100 ms, a node is missed after 5 silent beats.
pub fn nats(server: &str, node: &str) -> NatsConfig {
    NatsConfig::new([server], SYSTEM, node).heartbeat(Duration::from_millis(100), 5)
}

/// Runs a hosting node until its standard input closes (or it is killed):
/// joins the cluster, hosts counters logging to `log`, prints `ready`.
/// With `hammer`, it also keeps asking random keys below it where they
/// run, four at a time.
pub async fn run_node(
    server: &str,
    node: &str,
    log: &Path,
    hammer: Option<u64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let system = ActorSystem::new(SystemConfig::named(node))?;
    let broker: Broker = NatsMessageBroker::connect(&system, nats(server, node)).await?;
    broker.start_sharding(sharding()).await?;
    let log = Log::create(log)?;
    let replies = broker.clone();
    broker
        .register_entity(KIND, move |key: &str| {
            Counter::new(key, replies.clone(), log.clone())
        })
        .await?;
    if let Some(keys) = hammer {
        for _ in 0..4 {
            let broker = broker.clone();
            tokio::spawn(async move {
                loop {
                    let key = fastrand::u64(0..keys.max(1)).to_string();
                    let ask = MessageEnvelope::new(ActorAddress::entity(KIND, key), Op::Where);
                    // A key between owners does not answer: ask the next.
                    let _ = broker.request(ask, Duration::from_secs(1)).await;
                }
            });
        }
    }
    println!("ready");
    // Serves until the parent closes our standard input.
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    })
    .await?;
    Ok(())
}

/// A node process: this program (`exe`) with `--node`.
pub struct NodeProcess {
    pub name: String,
    pub log: PathBuf,
    /// When it was killed, in µs.
    pub killed_at: Option<u128>,
    child: Child,
}

impl NodeProcess {
    /// Starts node `name` and waits for its `ready`; with `hammer`, the
    /// node asks random keys below it where they run, all along.
    pub fn start(exe: &Path, server: &str, name: &str, log: PathBuf, hammer: Option<u64>) -> Self {
        let mut command = Command::new(exe);
        command
            .args(["--node", name, "--server", server, "--log"])
            .arg(&log);
        if let Some(keys) = hammer {
            command.args(["--hammer", &keys.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the sharding example runs (`cargo test --features nats` builds it)");
        let stdout = child.stdout.take().expect("piped");
        let first = BufReader::new(stdout).lines().next();
        assert_eq!(
            first.and_then(Result::ok).as_deref(),
            Some("ready"),
            "node {name} started"
        );
        Self {
            name: name.to_owned(),
            log,
            killed_at: None,
            child,
        }
    }

    /// Nodes n1, n2 and n3, logging to `<name>.log` in `logs`.
    pub fn start_three(exe: &Path, server: &str, logs: &Path) -> Vec<Self> {
        ["n1", "n2", "n3"]
            .iter()
            .map(|name| Self::start(exe, server, name, logs.join(format!("{name}.log")), None))
            .collect()
    }

    /// SIGKILL; returns once the process is gone, with the time.
    pub fn kill(&mut self) -> u128 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let at = now_us();
        self.killed_at = Some(at);
        at
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One instance's lifetime on one node run, in µs.
#[derive(Debug, Clone)]
pub struct Lifetime {
    pub run: String,
    pub start: u128,
    pub end: u128,
}

/// What a node run's log says: lifetimes per key (an instance still running
/// when the run ended, by a kill or still alive, ends at `ended`) and the
/// hit ids handled.
fn read_log(
    run: &str,
    path: &Path,
    ended: u128,
    lifetimes: &mut HashMap<String, Vec<Lifetime>>,
    hits: &mut Vec<u64>,
) {
    let Ok(file) = File::open(path) else { return };
    let mut open: HashMap<String, u128> = HashMap::new();
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        let mut words = line.split(' ');
        match (
            words.next(),
            words.next(),
            words.next().and_then(|w| w.parse::<u128>().ok()),
        ) {
            (Some("start"), Some(key), Some(at)) => {
                open.insert(key.to_owned(), at);
            }
            (Some("end"), Some(key), Some(at)) => {
                if let Some(start) = open.remove(key) {
                    lifetimes.entry(key.to_owned()).or_default().push(Lifetime {
                        run: run.to_owned(),
                        start,
                        end: at,
                    });
                }
            }
            (Some("hit"), Some(_), Some(id)) => hits.push(id as u64),
            _ => {}
        }
    }
    for (key, start) in open {
        lifetimes.entry(key).or_default().push(Lifetime {
            run: run.to_owned(),
            start,
            end: ended,
        });
    }
}

/// What the logs of `runs` say: lifetimes per key (one still running ends
/// when its run was killed, or now) and every hit id handled.
pub fn read_logs(runs: &[NodeProcess]) -> (HashMap<String, Vec<Lifetime>>, Vec<u64>) {
    let mut lifetimes = HashMap::new();
    let mut hits = Vec::new();
    let now = now_us();
    for run in runs {
        let ended = run.killed_at.unwrap_or(now);
        let name = format!("{} ({})", run.name, run.log.display());
        read_log(&name, &run.log, ended, &mut lifetimes, &mut hits);
    }
    (lifetimes, hits)
}

/// Pairs of lifetimes of one key that overlap (should be none).
pub fn overlaps(lifetimes: &HashMap<String, Vec<Lifetime>>) -> Vec<(String, Lifetime, Lifetime)> {
    let mut found = Vec::new();
    for (key, lives) in lifetimes {
        let mut lives = lives.clone();
        lives.sort_by_key(|life| life.start);
        for pair in lives.windows(2) {
            if pair[1].start < pair[0].end {
                found.push((key.clone(), pair[0].clone(), pair[1].clone()));
            }
        }
    }
    found
}
