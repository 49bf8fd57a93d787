//! The NATS broker against real `nats-server`s on loopback: two and three
//! systems through one server (tell, ask, pub/sub, services, a pool spread
//! over nodes, every message accounted for), refusals (no responders, an
//! unknown version, a malformed payload) that leave the actor running, a
//! server restart during traffic, at-least-once sends on JetStream, node
//! liveness, and a namespace another user may not publish into.
#![cfg(feature = "nats")]

#[path = "support/nats_server.rs"]
mod nats_server;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::PoolSpec;
use airssys_rt::address::{ActorAddress, PoolStrategy};
use airssys_rt::broker::{BrokerError, DeliveryFailure, MessageBroker, RemoteFailure};
use airssys_rt::integration::nats::{
    LinkState, NatsAuth, NatsConfig, NatsError, NatsMessageBroker, NatsTls, ReconnectPolicy,
};
use airssys_rt::prelude::*;
use futures::StreamExt;
use nats_server::NatsServer;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Hang guard for waits that must end; never reached in a passing run.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the test actors take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Cmd {
    /// Adds to the total.
    Add(u64),
    /// Answers the total.
    Total,
}

impl Message for Cmd {
    const MESSAGE_TYPE: &'static str = "test.cmd";
}

/// A later shape of [`Cmd`], version 2 (nodes taking only version 1 refuse it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CmdV2 {
    add: u64,
    note: String,
}

impl Message for CmdV2 {
    const MESSAGE_TYPE: &'static str = "test.cmd";
    fn version(&self) -> u32 {
        2
    }
}

/// Every answer says which node gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reply {
    node: String,
    total: u64,
}

type Broker = NatsMessageBroker<Cmd, Reply>;

/// Keeps a total; answers requests with it (and its node).
struct Counter {
    broker: Broker,
    total: u64,
    seen: Option<mpsc::UnboundedSender<u64>>,
}

impl Actor for Counter {
    type Message = Cmd;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        cmd: Cmd,
        ctx: &mut ActorContext<Cmd>,
    ) -> Result<(), Infallible> {
        if let Cmd::Add(n) = cmd {
            self.total += n;
            if let Some(seen) = &self.seen {
                let _ = seen.send(n);
            }
        }
        // Every envelope has an id; only requests have someone waiting.
        if let Some(request) = ctx.envelope_id() {
            let reply = Reply {
                node: self.broker.node().to_owned(),
                total: self.total,
            };
            let _ = self.broker.reply(request, reply);
        }
        Ok(())
    }
}

/// One node: a system and its broker.
struct Node {
    system: ActorSystem,
    broker: Broker,
}

async fn node(server: &NatsServer, name: &str) -> Node {
    node_with(NatsConfig::new([server.url()], "test", name)).await
}

async fn node_with(config: NatsConfig) -> Node {
    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    let broker = NatsMessageBroker::connect(&system, config)
        .await
        .expect("connected");
    Node { system, broker }
}

impl Node {
    fn counter(&self) -> Counter {
        Counter {
            broker: self.broker.clone(),
            total: 0,
            seen: None,
        }
    }

    /// A counter registered and exported as `name`.
    async fn export_counter(&self, name: &str) -> ActorRef<Cmd> {
        let counter = self
            .system
            .spawn_builder()
            .register(name.to_owned())
            .spawn(self.counter())
            .expect("spawned");
        self.broker.export_name(name).await.expect("exported");
        counter
    }

    /// A counter registered as `name` (not exported) that reports each
    /// number it adds.
    fn watched_counter(&self, name: &str) -> mpsc::UnboundedReceiver<u64> {
        let (seen, arrivals) = mpsc::unbounded_channel();
        self.system
            .spawn_builder()
            .register(name.to_owned())
            .spawn(Counter {
                seen: Some(seen),
                ..self.counter()
            })
            .expect("spawned");
        arrivals
    }

    async fn ask(&self, to: ActorAddress, cmd: Cmd) -> Result<Reply, BrokerError<Cmd>> {
        self.broker
            .request(MessageEnvelope::new(to, cmd), PATIENCE)
            .await
    }
}

fn named(name: &'static str) -> ActorAddress {
    ActorAddress::named(name)
}

// ---------------------------------------------------------------------------
// Two and three systems
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_systems_tell_and_ask_across_one_server() {
    let server = NatsServer::start();
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    a.export_counter("counter").await;

    // 500 tells from b, each confirmed once it is in a's mailbox.
    let mut sent = 0;
    for n in 1..=500u64 {
        b.broker
            .send(MessageEnvelope::new(named("counter"), Cmd::Add(n)))
            .await
            .expect("delivered");
        sent += n;
    }
    // Messages from one sender arrive in order, so the total counts all.
    let reply = b.ask(named("counter"), Cmd::Total).await.expect("answered");
    assert_eq!(
        reply,
        Reply {
            node: "a".into(),
            total: sent
        }
    );

    // a's own broker delivers its own name locally, same actor.
    let local = a
        .ask(named("counter"), Cmd::Add(1))
        .await
        .expect("answered");
    assert_eq!(local.total, sent + 1);
    assert_eq!(b.broker.locate(&named("counter")).await, Ok("a".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_from_two_nodes_are_all_answered() {
    let server = NatsServer::start();
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    let c = node(&server, "c").await;
    a.export_counter("counter").await;
    let asks = |n: &Node| {
        let broker = n.broker.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..200 {
                let envelope = MessageEnvelope::new(named("counter"), Cmd::Add(1));
                answers.push(
                    broker
                        .request(envelope, PATIENCE)
                        .await
                        .expect("answered")
                        .total,
                );
            }
            answers
        })
    };
    let (from_b, from_c) = (asks(&b), asks(&c));
    let mut totals = from_b.await.expect("b asked");
    totals.extend(from_c.await.expect("c asked"));
    // Each request saw a distinct total: 400 adds, none lost or doubled.
    totals.sort_unstable();
    assert_eq!(totals, (1..=400).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_systems_share_a_topic_a_service_and_a_pool() {
    let server = NatsServer::start();
    let nodes = [
        node(&server, "a").await,
        node(&server, "b").await,
        node(&server, "c").await,
    ];
    let [a, b, c] = &nodes;

    // Pub/sub: every node bridges "prices"; a subscriber on each.
    let mut inboxes = Vec::new();
    for n in &nodes {
        let topic = n.broker.bridge_topic("prices").await.expect("bridged");
        let (seen, inbox) = mpsc::unbounded_channel();
        let subscriber = n
            .system
            .spawn(Counter {
                seen: Some(seen),
                ..n.counter()
            })
            .expect("spawned");
        topic.subscribe(&subscriber);
        inboxes.push(inbox);
    }
    for price in [10, 20, 30] {
        a.broker
            .publish("prices", Cmd::Add(price))
            .await
            .expect("published");
    }
    for inbox in &mut inboxes {
        for price in [10, 20, 30] {
            let got = tokio::time::timeout(PATIENCE, inbox.recv())
                .await
                .expect("in time");
            assert_eq!(got, Some(price));
        }
    }

    // A service with members on b and c only: a reaches it.
    for n in [b, c] {
        let member = n.system.spawn(n.counter()).expect("spawned");
        n.system
            .registry()
            .register_service("ledger", &member)
            .expect("registered");
        n.broker.export_service("ledger").await.expect("exported");
    }
    let ledger = ActorAddress::Service {
        service: "ledger".into(),
        key: None,
    };
    let reply = a.ask(ledger, Cmd::Add(5)).await.expect("answered");
    assert!(["b", "c"].contains(&reply.node.as_str()), "{reply:?}");

    // A pool of two members on each of b and c, spread by NATS.
    for n in [b, c] {
        let broker = n.broker.clone();
        n.system
            .start_pool(PoolSpec::new("workers", 2, move || Counter {
                broker: broker.clone(),
                total: 0,
                seen: None,
            }))
            .await
            .expect("pool started");
        n.broker.export_pool("workers").await.expect("exported");
    }
    let pool = ActorAddress::Pool {
        pool: "workers".into(),
        strategy: PoolStrategy::RoundRobin,
    };
    let mut by_node: HashMap<String, u64> = HashMap::new();
    for _ in 0..100 {
        let reply = a.ask(pool.clone(), Cmd::Add(1)).await.expect("answered");
        *by_node.entry(reply.node).or_default() += 1;
    }
    assert_eq!(
        by_node.values().sum::<u64>(),
        100,
        "every request answered once"
    );
    assert!(
        by_node.get("b").is_some_and(|&n| n > 0) && by_node.get("c").is_some_and(|&n| n > 0),
        "both nodes served: {by_node:?}"
    );
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

/// The failure and the envelope an error hands back.
fn undelivered<M: Message>(error: BrokerError<M>) -> (DeliveryFailure, MessageEnvelope<M>) {
    match error {
        BrokerError::Undelivered {
            cause, envelope, ..
        } => (cause, *envelope),
        other => panic!("expected an undelivered envelope, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_no_node_serves_is_refused_at_once_with_the_message() {
    let server = NatsServer::start();
    let a = node(&server, "a").await;
    let error = a
        .ask(named("nobody"), Cmd::Add(7))
        .await
        .expect_err("nobody serves it");
    let (cause, envelope) = undelivered(error);
    assert_eq!(cause, DeliveryFailure::Remote(RemoteFailure::NoResponders));
    assert_eq!(envelope.payload, Cmd::Add(7));
    let error = a
        .broker
        .send(MessageEnvelope::new(named("nobody"), Cmd::Add(8)))
        .await
        .expect_err("nobody serves it");
    let (cause, envelope) = undelivered(error);
    assert_eq!(cause, DeliveryFailure::Remote(RemoteFailure::NoResponders));
    assert_eq!(envelope.payload, Cmd::Add(8));

    // An export withdrawn is no longer served.
    a.export_counter("counter").await;
    let other = node(&server, "b").await;
    assert_eq!(
        other
            .ask(named("counter"), Cmd::Add(1))
            .await
            .expect("answered")
            .total,
        1
    );
    a.broker.unexport_name("counter").await.expect("withdrawn");
    let error = other
        .ask(named("counter"), Cmd::Add(1))
        .await
        .expect_err("withdrawn");
    assert_eq!(
        undelivered(error).0,
        DeliveryFailure::Remote(RemoteFailure::NoResponders)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_version_and_a_malformed_payload_are_refused_and_the_actor_keeps_running() {
    let server = NatsServer::start();
    let a = node(&server, "a").await;
    let counter = a.export_counter("counter").await;

    // Version 2 to a node that takes version 1 only.
    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    let config = NatsConfig::new([server.url()], "test", "newer");
    let newer: NatsMessageBroker<CmdV2, Reply> = NatsMessageBroker::connect(&system, config)
        .await
        .expect("connected");
    let v2 = CmdV2 {
        add: 3,
        note: "bulk".into(),
    };
    let error = newer
        .send(MessageEnvelope::new(named("counter"), v2))
        .await
        .expect_err("refused");
    let (cause, envelope) = undelivered(error);
    match cause {
        DeliveryFailure::Remote(RemoteFailure::UnknownVersion {
            node,
            message_type,
            version,
            accepted,
        }) => {
            assert_eq!((node.as_str(), message_type.as_str()), ("a", "test.cmd"));
            assert_eq!((version, accepted.as_str()), (2, "1..=1"));
        }
        other => panic!("expected an unknown version, got {other:?}"),
    }
    assert_eq!(envelope.payload.note, "bulk", "the message comes back");

    // Bytes that are no message at all, straight onto a's subject.
    let raw = async_nats::connect(server.url()).await.expect("connected");
    let answer = raw
        .request("airssys.test.name.counter", vec![0xff, 0xff, 0xff].into())
        .await
        .expect("a answers");
    let said = String::from_utf8_lossy(&answer.payload);
    assert!(said.contains("could not decode"), "a says why: {said}");

    // The actor never saw either and still works.
    let reply = a
        .ask(named("counter"), Cmd::Add(1))
        .await
        .expect("answered");
    assert_eq!(reply.total, 1);
    assert!(counter.is_alive());
}

// ---------------------------------------------------------------------------
// A node in another process
// ---------------------------------------------------------------------------

/// What the cluster example's doubler takes (same type name and shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Double(u64);

impl Message for Double {
    const MESSAGE_TYPE: &'static str = "cluster.double";
}

/// The cluster example, built by `cargo test` beside the test binaries.
fn cluster_example() -> std::path::PathBuf {
    let deps = std::env::current_exe().expect("the test binary");
    let profile = deps
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    profile.join("examples").join("cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_another_process_answers_ten_thousand_requests_and_is_missed_when_killed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let server = NatsServer::start();
    let heartbeat = Duration::from_millis(100);
    let mut worker = Command::new(cluster_example())
        .args([
            "--worker",
            "--server",
            &server.url(),
            "--heartbeat-ms",
            "100",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the cluster example runs: `cargo test --features nats` builds it (a lone `--test nats` does not)");
    let stdout = worker.stdout.take().expect("piped");
    let ready = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next());
    let line = tokio::time::timeout(PATIENCE, ready)
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(line.and_then(Result::ok).as_deref(), Some("ready"));

    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    // A generous window (10 beats): a loaded machine must not look like a
    // dead node while the requests run.
    let config = NatsConfig::new([server.url()], "cluster-demo", "tester").heartbeat(heartbeat, 10);
    let broker: NatsMessageBroker<Double, u64> = NatsMessageBroker::connect(&system, config)
        .await
        .expect("connected");
    let doubler = named("doubler");
    let mut monitor = broker.monitor(&doubler).await.expect("located");
    assert_eq!(monitor.node(), "worker");

    // 10,000 requests, 16 at a time, each answered with twice its number.
    let answers: Vec<(u64, u64)> = futures::stream::iter(0..10_000u64)
        .map(|n| {
            let broker = broker.clone();
            async move {
                let request = MessageEnvelope::new(named("doubler"), Double(n));
                (
                    n,
                    broker.request(request, PATIENCE).await.expect("answered"),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(answers.len(), 10_000);
    assert!(answers.iter().all(|&(n, twice)| twice == 2 * n));
    assert!(monitor.is_up());
    assert!(broker.live_nodes().contains(&"worker".to_owned()));

    // Killed abruptly (SIGKILL): its heartbeats stop and the monitor says so.
    worker.kill().expect("killed");
    let _ = worker.wait();
    let down = tokio::time::timeout(PATIENCE, monitor.down())
        .await
        .expect("the monitor is told");
    assert_eq!(down.node, "worker");
    assert!(!broker.live_nodes().contains(&"worker".to_owned()));
    // Requests to it now fail at once with the message back.
    let error = broker
        .request(MessageEnvelope::new(named("doubler"), Double(1)), PATIENCE)
        .await
        .expect_err("nobody serves it");
    assert_eq!(
        undelivered(error).0,
        DeliveryFailure::Remote(RemoteFailure::NoResponders)
    );
}

// ---------------------------------------------------------------------------
// Server restarts
// ---------------------------------------------------------------------------

async fn wait_until(connection: &mut tokio::sync::watch::Receiver<LinkState>, state: LinkState) {
    tokio::time::timeout(PATIENCE, connection.wait_for(|now| *now == state))
        .await
        .expect("in time")
        .expect("the broker lives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_fails_sends_with_their_messages_and_the_nodes_reconnect() {
    let mut server = NatsServer::start();
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    a.export_counter("counter").await;
    let tell = |n| {
        b.broker
            .send(MessageEnvelope::new(named("counter"), Cmd::Add(n)))
    };
    for _ in 0..100 {
        tell(1).await.expect("delivered");
    }

    let mut b_connection = b.broker.connection();
    server.kill();
    wait_until(&mut b_connection, LinkState::Reconnecting).await;
    // While the server is away every send fails, and hands its message back.
    let mut returned = Vec::new();
    for n in 1..=50u64 {
        let (cause, envelope) = undelivered(tell(n).await.expect_err("disconnected"));
        assert_eq!(cause, DeliveryFailure::Remote(RemoteFailure::Disconnected));
        assert_eq!(envelope.payload, Cmd::Add(n));
        returned.push(envelope);
    }
    let error = b
        .ask(named("counter"), Cmd::Total)
        .await
        .expect_err("disconnected");
    assert_eq!(
        undelivered(error).0,
        DeliveryFailure::Remote(RemoteFailure::Disconnected)
    );

    server.restart();
    a.broker.until_connected().await.expect("reconnected");
    b.broker.until_connected().await.expect("reconnected");
    // The returned messages go again; nothing was lost.
    for envelope in returned {
        b.broker
            .send(envelope)
            .await
            .expect("delivered after the restart");
    }
    let reply = b.ask(named("counter"), Cmd::Total).await.expect("answered");
    assert_eq!(reply.total, 100 + (1..=50).sum::<u64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_sends_survive_a_server_restart_with_nothing_acknowledged_lost_or_repeated() {
    const SENDS: u64 = 300;
    let mut server = NatsServer::with_jetstream();
    let a = node(&server, "a").await;
    let b = node(&server, "b").await;
    let mut arrivals = a.watched_counter("ledger");
    a.broker.export_durable("ledger").await.expect("JetStream");
    let durable = |n| {
        b.broker
            .send_durable(MessageEnvelope::new(named("ledger"), Cmd::Add(n)))
    };

    let mut acknowledged = Vec::new();
    let mut returned = Vec::new();
    for n in 1..=SENDS {
        if n == 101 {
            // The server goes away in the middle of the traffic.
            let mut connection = b.broker.connection();
            server.kill();
            wait_until(&mut connection, LinkState::Reconnecting).await;
        }
        if n == 201 {
            server.restart();
            a.broker.until_connected().await.expect("reconnected");
            b.broker.until_connected().await.expect("reconnected");
            // What failed during the outage is sent again.
            for envelope in returned.drain(..) {
                b.broker
                    .send_durable(envelope)
                    .await
                    .expect("stored after the restart");
            }
        }
        match durable(n).await {
            Ok(()) => acknowledged.push(n),
            Err(error) => {
                let (cause, envelope) = undelivered(error);
                assert_eq!(cause, DeliveryFailure::Remote(RemoteFailure::Disconnected));
                assert_eq!(envelope.payload, Cmd::Add(n));
                returned.push(envelope);
            }
        }
    }
    assert!(returned.is_empty());
    // Sends 101..=200 came back during the outage and were stored later.
    assert_eq!(acknowledged.len(), 200);

    // Every message reaches the ledger exactly once.
    let mut got = Vec::new();
    while got.len() < SENDS as usize {
        let n = tokio::time::timeout(PATIENCE, arrivals.recv())
            .await
            .expect("every stored message arrives")
            .expect("the ledger runs");
        got.push(n);
    }
    got.sort_unstable();
    assert_eq!(got, (1..=SENDS).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------
// Namespaces and permissions
// ---------------------------------------------------------------------------

/// Two users, each allowed only its own system's subjects and reply
/// inboxes; and an observer of beta that may read but only answer and
/// send heartbeats there.
const PERMISSIONS: &str = r#"
authorization {
  users = [
    { user: alpha, password: alpha-pw, permissions: {
        publish: ["airssys.alpha.>", "_INBOX_airssys_alpha.>"],
        subscribe: ["airssys.alpha.>", "_INBOX_airssys_alpha.>"] } }
    { user: beta, password: beta-pw, permissions: {
        publish: ["airssys.beta.>", "_INBOX_airssys_beta.>"],
        subscribe: ["airssys.beta.>", "_INBOX_airssys_beta.>"] } }
    { user: observer, password: observer-pw, permissions: {
        publish: ["airssys.beta.hb.>", "_INBOX_airssys_beta.>"],
        subscribe: ["airssys.beta.>", "_INBOX_airssys_beta.>"] } }
  ]
}
"#;

fn as_user(server: &NatsServer, system: &str, node: &str, user: &str) -> NatsConfig {
    NatsConfig::new([server.url()], system, node).auth(NatsAuth::UserPassword {
        user: user.into(),
        password: format!("{user}-pw"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_publish_into_another_systems_namespace() {
    let server = NatsServer::with_config(PERMISSIONS);
    let beta = node_with(as_user(&server, "beta", "b1", "beta")).await;
    beta.export_counter("counter").await;
    // Within its own namespace a user works as usual.
    let beta_peer = node_with(as_user(&server, "beta", "b2", "beta")).await;
    let reply = beta_peer
        .ask(named("counter"), Cmd::Add(2))
        .await
        .expect("answered");
    assert_eq!(reply.total, 2);

    // alpha's credentials, claiming to be a node of beta: the server
    // refuses its subscriptions there, so it cannot even join.
    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    let intruder = as_user(&server, "beta", "intruder", "alpha");
    let refused = NatsMessageBroker::<Cmd, Reply>::connect(&system, intruder)
        .await
        .expect_err("refused");
    match &refused {
        NatsError::Subscribe { reason, .. } => {
            assert!(reason.contains("refused"), "{reason}")
        }
        other => panic!("expected a refused subscription, got {other}"),
    }

    // An observer of beta may listen but not send: its send is refused at
    // once, naming the subject, and the message comes back.
    let observer = node_with(as_user(&server, "beta", "observer", "observer")).await;
    let error = observer
        .broker
        .send(MessageEnvelope::new(named("counter"), Cmd::Add(1_000)))
        .await
        .expect_err("refused");
    let (cause, envelope) = undelivered(error);
    assert_eq!(
        cause,
        DeliveryFailure::Remote(RemoteFailure::Denied("airssys.beta.name.counter".into()))
    );
    assert_eq!(envelope.payload, Cmd::Add(1_000));
    let error = observer
        .ask(named("counter"), Cmd::Total)
        .await
        .expect_err("refused");
    assert!(matches!(
        undelivered(error).0,
        DeliveryFailure::Remote(RemoteFailure::Denied(_))
    ));

    // A raw client with alpha's credentials: the server says no too.
    let (violations, mut said) = mpsc::unbounded_channel();
    let raw = async_nats::ConnectOptions::with_user_and_password("alpha".into(), "alpha-pw".into())
        .event_callback(move |event| {
            let violations = violations.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = violations.send(e.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .expect("alpha connects");
    raw.publish("airssys.beta.name.counter", vec![1, 2, 3].into())
        .await
        .expect("queued");
    raw.flush().await.expect("flushed");
    let violation = tokio::time::timeout(PATIENCE, said.recv())
        .await
        .expect("in time")
        .expect("an error");
    assert!(
        violation.to_lowercase().contains("permissions violation"),
        "{violation}"
    );

    // beta's counter never saw any of it.
    let reply = beta_peer
        .ask(named("counter"), Cmd::Total)
        .await
        .expect("answered");
    assert_eq!(reply.total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_the_server_sets_one() {
    let server = NatsServer::with_config("authorization { token: \"s3cret\" }");
    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    let wrong = NatsConfig::new([server.url()], "test", "a")
        .auth(NatsAuth::Token("guess".into()))
        .reconnect(ReconnectPolicy {
            max_attempts: Some(1),
            ..ReconnectPolicy::default()
        });
    let refused = NatsMessageBroker::<Cmd, Reply>::connect(&system, wrong)
        .await
        .expect_err("a wrong token is refused");
    assert!(matches!(refused, NatsError::Connect { .. }), "{refused}");
    let right = NatsConfig::new([server.url()], "test", "a").auth(NatsAuth::Token("s3cret".into()));
    let a = node_with(right).await;
    a.export_counter("counter").await;
    assert_eq!(
        a.ask(named("counter"), Cmd::Add(4))
            .await
            .expect("answered")
            .total,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_is_told_when_a_node_it_watches_goes_silent() {
    let server = NatsServer::start();
    let fast = |node: &str| {
        NatsConfig::new([server.url()], "test", node).heartbeat(Duration::from_millis(50), 2)
    };
    let a = node_with(fast("a")).await;
    let b = node_with(fast("b")).await;
    b.export_counter("counter").await;
    let monitor = a.broker.monitor(&named("counter")).await.expect("located");
    assert_eq!(monitor.node(), "b");
    let (seen, mut told) = mpsc::unbounded_channel();
    let watcher = a
        .system
        .spawn(Counter {
            seen: Some(seen),
            ..a.counter()
        })
        .expect("spawned");
    assert!(monitor.is_up(), "b is live before it goes");
    monitor.notify(watcher, Cmd::Add(99));

    // b goes away: its system stops, its broker (and heartbeats) with it.
    b.system.shutdown(PATIENCE).await;
    drop(b);
    let got = tokio::time::timeout(PATIENCE, told.recv())
        .await
        .expect("told in time");
    assert_eq!(got, Some(99));
    assert!(!a.broker.live_nodes().contains(&"b".to_owned()));
}

/// A certificate authority and a server certificate for 127.0.0.1, made
/// with the `openssl` command line in `dir`: (CA, server cert, server key).
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=airssys test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("written");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connects_with_the_right_authority_only() {
    let dir = std::env::temp_dir().join(format!("airssys-nats-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let (ca, cert, key) = certificates(&dir);
    let server = NatsServer::with_config(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    ));
    let system = ActorSystem::new(SystemConfig::default()).expect("inside a runtime");
    let once = ReconnectPolicy {
        max_attempts: Some(1),
        ..ReconnectPolicy::default()
    };

    // Without our authority the server's certificate is not trusted.
    let untrusting = NatsConfig::new([server.url()], "test", "a")
        .tls(NatsTls::default())
        .reconnect(once);
    let refused = NatsMessageBroker::<Cmd, Reply>::connect(&system, untrusting)
        .await
        .expect_err("an unknown authority is refused");
    assert!(matches!(refused, NatsError::Connect { .. }), "{refused}");

    let trusting = |node: &str| {
        NatsConfig::new([server.url()], "test", node).tls(NatsTls {
            root_certificates: Some(ca.clone()),
            client_certificate: None,
        })
    };
    let a = node_with(trusting("a")).await;
    let b = node_with(trusting("b")).await;
    a.export_counter("counter").await;
    assert_eq!(
        b.ask(named("counter"), Cmd::Add(6))
            .await
            .expect("answered")
            .total,
        6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// Traffic in flight when the server goes, and durable repeats
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_in_flight_when_the_server_dies_fail_or_arrive_and_nothing_is_lost() {
    let mut server = NatsServer::start();
    let a = node(&server, "a").await;
    // A short confirmation wait: the send in flight when the server dies
    // is reported unconfirmed after it.
    let b = node_with(
        NatsConfig::new([server.url()], "test", "b").ack_timeout(Duration::from_millis(500)),
    )
    .await;
    let mut arrivals = a.watched_counter("counter");
    a.broker.export_name("counter").await.expect("exported");

    // b tells 1, 2, 3, … without pause; a failure comes back with its
    // message, and then b waits to be connected again, as a client would.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (failed, mut failures) = mpsc::unbounded_channel();
    let sender = b.broker.clone();
    let traffic = tokio::spawn(async move {
        let mut n = 0u64;
        while stopped.try_recv().is_err() {
            n += 1;
            let envelope = MessageEnvelope::new(named("counter"), Cmd::Add(n));
            if let Err(error) = sender.send(envelope).await {
                let (cause, envelope) = undelivered(error);
                let _ = failed.send((cause, envelope));
                sender.until_connected().await.expect("reconnects");
            }
        }
        n
    });
    let mut got = std::collections::HashSet::new();
    while got.len() < 200 {
        got.insert(arrivals.recv().await.expect("the counter runs"));
    }
    let mut connection = b.broker.connection();
    server.kill();
    wait_until(&mut connection, LinkState::Reconnecting).await;
    // The send in flight fails (at once, or unconfirmed if it was out);
    // every failure hands its message back.
    let first = tokio::time::timeout(PATIENCE, failures.recv())
        .await
        .expect("in time")
        .expect("the sender runs");
    let mut returned = vec![first];
    server.restart();
    a.broker.until_connected().await.expect("reconnected");
    b.broker.until_connected().await.expect("reconnected");
    let _ = stop.send(());
    let last = traffic.await.expect("the sender ends");
    while let Ok(failure) = failures.try_recv() {
        returned.push(failure);
    }
    // Everything that came back goes again.
    for (cause, envelope) in returned {
        assert!(
            matches!(
                cause,
                DeliveryFailure::Remote(
                    RemoteFailure::Disconnected
                        | RemoteFailure::Unconfirmed(_)
                        // a's subscription not back yet, just after the restart
                        | RemoteFailure::NoResponders
                )
            ),
            "{cause:?}"
        );
        b.broker
            .send(envelope)
            .await
            .expect("delivered after the restart");
    }
    // Every number 1..=last reached the counter (an unconfirmed one may
    // have arrived twice: at most once per send, not exactly once).
    while (1..=last).any(|n| !got.contains(&n)) {
        let n = tokio::time::timeout(PATIENCE, arrivals.recv())
            .await
            .expect("every message arrives")
            .expect("the counter runs");
        got.insert(n);
    }
}

async fn arrival(arrivals: &mut mpsc::UnboundedReceiver<u64>) -> u64 {
    tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .expect("in time")
        .expect("the actor runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_repeats_are_dropped_but_a_restarted_sender_is_not_mistaken_for_one() {
    use airssys_rt::util::MessageId;

    let server = NatsServer::with_jetstream();
    let a = node(&server, "a").await;
    let mut arrivals = a.watched_counter("ledger");
    a.broker.export_durable("ledger").await.expect("JetStream");
    let b = node(&server, "b").await;
    // A raw listener sees the bytes b stores.
    let raw = async_nats::connect(server.url()).await.expect("connected");
    let mut stored = raw
        .subscribe("airssys.test.durable.ledger")
        .await
        .expect("subscribed");
    raw.flush().await.expect("flushed");

    // The same envelope sent twice (a resend after an error): stored once.
    let envelope = MessageEnvelope::new(named("ledger"), Cmd::Add(1));
    b.broker
        .send_durable(envelope.clone())
        .await
        .expect("stored");
    b.broker
        .send_durable(envelope)
        .await
        .expect("stored (a repeat)");
    let bytes = tokio::time::timeout(PATIENCE, stored.next())
        .await
        .expect("in time")
        .expect("the bytes")
        .payload;
    // The same bytes stored again under another id (as a redelivery would
    // hand them over again): the receiving node drops them.
    let jetstream = async_nats::jetstream::new(raw.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "another-id");
    jetstream
        .publish_with_headers("airssys.test.durable.ledger", headers, bytes)
        .await
        .expect("published")
        .await
        .expect("stored");
    // b restarts (a new broker under the same node name) and its message
    // ids start over: the same id is a new message, not a repeat.
    drop(b);
    let b_again = node(&server, "b").await;
    let mut first = MessageEnvelope::new(named("ledger"), Cmd::Add(2));
    first.id = MessageId::from_raw(7);
    let mut second = MessageEnvelope::new(named("ledger"), Cmd::Add(3));
    second.id = MessageId::from_raw(7);
    b_again.broker.send_durable(first).await.expect("stored");
    let b_third = node(&server, "b").await;
    b_third.broker.send_durable(second).await.expect("stored");

    // In stream order: 1 once, then 2 and 3.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(arrival(&mut arrivals).await);
    }
    assert_eq!(got, [1, 2, 3]);
    let reply = a.ask(named("ledger"), Cmd::Total).await.expect("answered");
    assert_eq!(reply.total, 6, "nothing more arrived");
}
