//! airssys-rt's NATS broker (feature `nats`) against the bare async-nats
//! client doing the same request/reply: a doubler answers each 8-byte `u64`
//! with the value doubled. Each run starts its own `nats-server` on a free
//! loopback port (outside the timed section), connects two clients or two
//! nodes to it, warms up with [`WARM_UP`] requests, then times `n` requests
//! either one at a time (per-request latency) or [`IN_FLIGHT`] at a time
//! (ns per request). Only right answers are counted.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::MessageBroker;
use airssys_rt::integration::nats::{Entity, NatsConfig, NatsMessageBroker, ShardingConfig};
use airssys_rt::prelude::*;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::airssys::Airssys;
use crate::nats_server::NatsServer;
use crate::workload::Sample;

const PATIENCE: Duration = Duration::from_secs(60);

/// Requests before timing starts (connections, subscriptions, buffers and
/// the server's routing cache warm).
pub const WARM_UP: u64 = 300;

/// Requests outstanding at once in the throughput workloads.
pub const IN_FLIGHT: usize = 32;

/// The raw NATS subject the doubler listens on.
const SUBJECT: &str = "compare.double";

/// The name the doubler actor is registered and exported under.
const DOUBLER: &str = "doubler";

/// The raw async-nats baseline (no actors, no envelope, no wire head).
pub struct RawNats;

/// Starts a fresh server, off the runtime's workers (it blocks until the
/// server says it is ready).
async fn server() -> NatsServer {
    tokio::task::spawn_blocking(NatsServer::start)
        .await
        .expect("nats-server started")
}

/// Runs `n` requests produced by `request(i)` (each resolving to whether
/// its answer was right): one at a time when `in_flight` is 1, with each
/// right answer's latency recorded; otherwise `in_flight` at a time, timed
/// as a whole. Panics unless every warm-up request is answered right.
async fn measure<F>(n: u64, in_flight: usize, request: impl Fn(u64) -> F) -> Sample
where
    F: Future<Output = bool>,
{
    let warm = futures::stream::iter(0..WARM_UP)
        .map(&request)
        .buffer_unordered(in_flight)
        .filter(|right| std::future::ready(*right))
        .count()
        .await;
    assert_eq!(warm as u64, WARM_UP, "warm-up requests answered wrong");
    if in_flight == 1 {
        let mut latencies = Vec::with_capacity(n as usize);
        for i in 0..n {
            let start = Instant::now();
            let right = request(i).await;
            let took = start.elapsed().as_nanos() as u64;
            if right {
                latencies.push(took);
            }
        }
        Sample::latencies(latencies)
    } else {
        let start = Instant::now();
        let right = futures::stream::iter(0..n)
            .map(&request)
            .buffer_unordered(in_flight)
            .filter(|right| std::future::ready(*right))
            .count()
            .await;
        Sample::per_op(start.elapsed(), right as u64)
    }
}

fn payload(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

fn value(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

impl RawNats {
    /// `n` requests from one client to a responder on another that
    /// publishes each payload's `u64` doubled to the request's reply inbox.
    pub async fn double(n: u64, in_flight: usize) -> Sample {
        let server = server().await;
        let responder = async_nats::connect(server.url())
            .await
            .expect("responder connected");
        let mut requests = responder
            .subscribe(SUBJECT)
            .await
            .expect("responder subscribed");
        let answering = responder.clone();
        let serving = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let (Some(to), Some(n)) = (request.reply, value(&request.payload)) else {
                    continue;
                };
                answering
                    .publish(to, payload(n * 2).into())
                    .await
                    .expect("answer published");
            }
        });
        // The responder answers its own client's request only once the
        // server has its subscription: the requester's come after that.
        responder
            .request(SUBJECT, payload(0).into())
            .await
            .expect("the responder is subscribed");
        let requester = async_nats::connect(server.url())
            .await
            .expect("requester connected");
        let sample = measure(n, in_flight, |i| {
            let requester = requester.clone();
            async move {
                let answer = requester
                    .request(SUBJECT, payload(i).into())
                    .await
                    .expect("request");
                value(&answer.payload) == Some(i * 2)
            }
        })
        .await;
        serving.abort();
        drop((requester, responder));
        drop(server);
        sample
    }
}

/// What the doubler takes (crosses the wire in postcard).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Double(pub u64);

impl Message for Double {
    const MESSAGE_TYPE: &'static str = "compare.double";
}

type Broker = NatsMessageBroker<Double, u64>;

/// Replies `n * 2` to each request, through its node's broker.
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
            let _ = self.0.reply(request, n * 2);
        }
        Ok(())
    }
}

/// The doubler, sharded by key: it keeps no state.
impl Entity for Doubler {}

/// The entity the sharded workloads ask: one, as the exported doubler is
/// one actor (several would add task wake-ups the other setups do not
/// have, not sharding's cost).
const ENTITY_KEY: &str = "42";

/// A system and its broker, node `node` of the system "compare".
/// Times `n` requests through `broker` to double their number at `address`,
/// `in_flight` at a time.
async fn measure_doubling(
    n: u64,
    in_flight: usize,
    broker: &Broker,
    address: ActorAddress,
) -> Sample {
    measure(n, in_flight, |i| {
        let broker = broker.clone();
        let request = MessageEnvelope::new(address.clone(), Double(i));
        async move {
            let answer = broker.request(request, PATIENCE).await.expect("request");
            answer == i * 2
        }
    })
    .await
}

async fn node(server: &NatsServer, node: &str) -> (ActorSystem, Broker) {
    let system = ActorSystem::new(SystemConfig::named("compare")).expect("inside a runtime");
    let broker =
        NatsMessageBroker::connect(&system, NatsConfig::new([server.url()], "compare", node))
            .await
            .expect("connected");
    (system, broker)
}

/// The airssys-rt-only NATS workloads (see [`crate::internal`]).
impl Airssys {
    /// `n` requests from node b's broker to a doubler actor node a
    /// registered and exported; it replies through a's broker.
    pub async fn nats_double(n: u64, in_flight: usize) -> Sample {
        let server = server().await;
        let (a, a_broker) = node(&server, "a").await;
        let (b, b_broker) = node(&server, "b").await;
        a.spawn_builder()
            .register(DOUBLER)
            .spawn(Doubler(a_broker.clone()))
            .expect("spawn");
        a_broker.export_name(DOUBLER).await.expect("exported");
        let sample = measure_doubling(n, in_flight, &b_broker, ActorAddress::named(DOUBLER)).await;
        drop((a_broker, b_broker));
        b.shutdown(PATIENCE).await;
        a.shutdown(PATIENCE).await;
        drop(server);
        sample
    }

    /// `n` requests from node b (which hosts nothing) to the doubler entity
    /// [`ENTITY_KEY`] hosted by node a (which holds every shard before
    /// timing starts; the warm-up activates the entity); it replies
    /// through a's broker.
    pub async fn nats_sharded(n: u64, in_flight: usize) -> Sample {
        let server = tokio::task::spawn_blocking(NatsServer::with_jetstream)
            .await
            .expect("nats-server started");
        let (a, a_broker) = node(&server, "a").await;
        let (b, b_broker) = node(&server, "b").await;
        let sharding = ShardingConfig {
            shards: 16,
            ..ShardingConfig::default()
        };
        a_broker
            .start_sharding(sharding.clone())
            .await
            .expect("sharding on a");
        b_broker
            .start_sharding(sharding)
            .await
            .expect("sharding on b");
        let replies = a_broker.clone();
        a_broker
            .register_entity("doubler", move |_key: &str| Doubler(replies.clone()))
            .await
            .expect("kind registered");
        // Every shard held by a (no event crosses to here: look).
        while a_broker.sharding_stats().map_or(0, |s| s.shards_held) < 16 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let entity = ActorAddress::entity("doubler", ENTITY_KEY);
        let sample = measure_doubling(n, in_flight, &b_broker, entity).await;
        drop((a_broker, b_broker));
        b.shutdown(PATIENCE).await;
        a.shutdown(PATIENCE).await;
        drop(server);
        sample
    }
}
