//! airssys-rt-only workloads: features none of the peers has an equivalent
//! of (the broker's request/reply, actor pools and, with the `wasm` feature,
//! WebAssembly actors; with the `nats` feature, the NATS broker), each
//! measured against the plain path it is built on (for Wasm: native actors
//! doing the same work; for NATS: the bare async-nats client), in the same run
//! and interleaved the same way as the side-by-side workloads. They have no
//! peer columns; the report gives them a table of their own, each variant's
//! median with its ratio to the group's baseline (the first variant).

use serde::Serialize;

use crate::driver::{Flavor, on_runtime};
use crate::frameworks::airssys::Airssys;
use crate::workload::{Sample, Sizes};

/// An airssys-rt-only comparison: a group of variants of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Internal {
    /// One echo actor answers sequential requests: through
    /// `InMemoryMessageBroker::request` (reply correlated by envelope id)
    /// against a direct `ActorRef::ask`.
    BrokerRequest,
    /// `n` messages told through an `ActorPool` of 4 members, per strategy,
    /// against `ActorRef::tell` to one actor (and, for context, to 4 actors
    /// in turn without a pool), then waited for until all are handled.
    PoolRouting,
    /// Feature `wasm`. Sequential asks to a counter: a `WasmActor` running a
    /// WAT guest against a native actor with the same behaviour and message
    /// type (`WasmMessage`).
    #[cfg(feature = "wasm")]
    WasmRoundTrip,
    /// Feature `wasm`. A supervised counter (one-for-one) is told a poison
    /// byte; per failure, the time until its replacement has answered a
    /// request: native actors that panic or return `Err`, against a
    /// `WasmActor` whose guest traps and is restarted as a fresh instance of
    /// the cached module.
    #[cfg(feature = "wasm")]
    WasmRestart,
    /// Feature `nats`. Sequential requests to a doubler over one
    /// `nats-server` on loopback: `NatsMessageBroker::request` from one
    /// node to an actor another node exported, and to sharded doubler
    /// entities the other node hosts, against the bare async-nats client's
    /// `request` to a subscriber that publishes the answer.
    #[cfg(feature = "nats")]
    NatsRoundTrip,
    /// Feature `nats`. The same two setups with
    /// [`IN_FLIGHT`](crate::frameworks::airssys_nats::IN_FLIGHT) requests
    /// outstanding at once; time per request.
    #[cfg(feature = "nats")]
    NatsThroughput,
}

/// One measured variant of an [`Internal`] workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Variant {
    /// `ActorRef::ask` to the echo actor (the broker's baseline).
    DirectAsk,
    /// `InMemoryMessageBroker::request` to the same actor by name.
    BrokerRequest,
    /// `ActorRef::tell` to one actor (the pool's baseline).
    DirectTell,
    /// `ActorRef::tell` to [`POOL_MEMBERS`] actors in turn, no pool: the
    /// same consumers as the pool without its routing.
    DirectTellInTurn,
    /// `ActorPool::tell`, round robin.
    PoolRoundRobin,
    /// `ActorPool::tell`, least connections (shortest mailbox).
    PoolLeastConnections,
    /// `ActorPool::tell`, random.
    PoolRandom,
    /// `ActorPool::tell`, consistent hash of the message's routing key.
    PoolConsistentHash,
    /// `ActorRef::ask` to the native counter (the Wasm round trip's baseline).
    #[cfg(feature = "wasm")]
    NativeCounterAsk,
    /// `ActorRef::ask` to the `WasmActor` counter.
    #[cfg(feature = "wasm")]
    WasmCounterAsk,
    /// The native counter panics (the Wasm restart's baseline).
    #[cfg(feature = "wasm")]
    NativePanicRestart,
    /// The native counter returns `Err`, escalated (a guest trap's path).
    #[cfg(feature = "wasm")]
    NativeErrorRestart,
    /// The guest traps; a fresh instance replaces it.
    #[cfg(feature = "wasm")]
    WasmTrapRestart,
    /// async-nats `Client::request`, sequential (the NATS round trip's
    /// baseline).
    #[cfg(feature = "nats")]
    RawNatsRequest,
    /// `NatsMessageBroker::request` to the doubler on the other node,
    /// sequential.
    #[cfg(feature = "nats")]
    NatsBrokerRequest,
    /// async-nats `Client::request`, 32 in flight (the NATS throughput's
    /// baseline).
    #[cfg(feature = "nats")]
    RawNatsInFlight,
    /// `NatsMessageBroker::request`, 32 in flight.
    #[cfg(feature = "nats")]
    NatsBrokerInFlight,
    /// `NatsMessageBroker::request` to a sharded doubler entity (active
    /// after the warm-up) hosted by node a, from node b, sequential.
    #[cfg(feature = "nats")]
    ShardedRequest,
    /// The same, 32 in flight.
    #[cfg(feature = "nats")]
    ShardedInFlight,
}

/// Members of every measured pool.
pub const POOL_MEMBERS: usize = 4;

impl Internal {
    /// Every airssys-rt-only workload built in, in report order.
    pub const ALL: &'static [Internal] = &[
        Internal::BrokerRequest,
        Internal::PoolRouting,
        #[cfg(feature = "wasm")]
        Internal::WasmRoundTrip,
        #[cfg(feature = "wasm")]
        Internal::WasmRestart,
        #[cfg(feature = "nats")]
        Internal::NatsRoundTrip,
        #[cfg(feature = "nats")]
        Internal::NatsThroughput,
    ];

    /// Short label for tables (and for `--only`).
    pub fn label(self) -> &'static str {
        match self {
            Internal::BrokerRequest => "broker request/reply",
            Internal::PoolRouting => "pool routing ×4",
            #[cfg(feature = "wasm")]
            Internal::WasmRoundTrip => "wasm round trip",
            #[cfg(feature = "wasm")]
            Internal::WasmRestart => "wasm restart after trap",
            #[cfg(feature = "nats")]
            Internal::NatsRoundTrip => "nats request/reply latency",
            #[cfg(feature = "nats")]
            Internal::NatsThroughput => "nats request/reply throughput",
        }
    }

    /// The unit of the reported figure.
    pub fn unit(self) -> &'static str {
        match self {
            Internal::BrokerRequest => "ns (median; p99 beside)",
            Internal::PoolRouting => "ns/op",
            #[cfg(feature = "wasm")]
            Internal::WasmRoundTrip | Internal::WasmRestart => "ns (median; p99 beside)",
            #[cfg(feature = "nats")]
            Internal::NatsRoundTrip => "ns (median; p99 beside)",
            #[cfg(feature = "nats")]
            Internal::NatsThroughput => "ns/op",
        }
    }

    /// The variants measured, the baseline first.
    pub fn variants(self) -> &'static [Variant] {
        match self {
            Internal::BrokerRequest => &[Variant::DirectAsk, Variant::BrokerRequest],
            Internal::PoolRouting => &[
                Variant::DirectTell,
                Variant::DirectTellInTurn,
                Variant::PoolRoundRobin,
                Variant::PoolLeastConnections,
                Variant::PoolRandom,
                Variant::PoolConsistentHash,
            ],
            #[cfg(feature = "wasm")]
            Internal::WasmRoundTrip => &[Variant::NativeCounterAsk, Variant::WasmCounterAsk],
            #[cfg(feature = "wasm")]
            Internal::WasmRestart => &[
                Variant::NativePanicRestart,
                Variant::NativeErrorRestart,
                Variant::WasmTrapRestart,
            ],
            #[cfg(feature = "nats")]
            Internal::NatsRoundTrip => &[
                Variant::RawNatsRequest,
                Variant::NatsBrokerRequest,
                Variant::ShardedRequest,
            ],
            #[cfg(feature = "nats")]
            Internal::NatsThroughput => &[
                Variant::RawNatsInFlight,
                Variant::NatsBrokerInFlight,
                Variant::ShardedInFlight,
            ],
        }
    }

    /// Operations each variant performs (what `Sample::processed` must equal).
    pub fn ops(self, sizes: &Sizes) -> u64 {
        match self {
            Internal::BrokerRequest => sizes.broker,
            Internal::PoolRouting => sizes.pool,
            #[cfg(feature = "wasm")]
            Internal::WasmRoundTrip => sizes.wasm_ask,
            #[cfg(feature = "wasm")]
            Internal::WasmRestart => sizes.wasm_restart,
            #[cfg(feature = "nats")]
            Internal::NatsRoundTrip => sizes.nats_round_trip,
            #[cfg(feature = "nats")]
            Internal::NatsThroughput => sizes.nats_throughput,
        }
    }
}

impl Variant {
    /// Row label.
    pub fn label(self) -> &'static str {
        match self {
            Variant::DirectAsk => "ActorRef::ask",
            Variant::BrokerRequest => "broker.request",
            Variant::DirectTell => "ActorRef::tell, 1 actor",
            Variant::DirectTellInTurn => "ActorRef::tell, 4 actors in turn",
            Variant::PoolRoundRobin => "pool.tell, round-robin",
            Variant::PoolLeastConnections => "pool.tell, least-connections",
            Variant::PoolRandom => "pool.tell, random",
            Variant::PoolConsistentHash => "pool.tell, consistent-hash",
            #[cfg(feature = "wasm")]
            Variant::NativeCounterAsk => "ActorRef::ask, native counter",
            #[cfg(feature = "wasm")]
            Variant::WasmCounterAsk => "ActorRef::ask, WasmActor counter",
            #[cfg(feature = "wasm")]
            Variant::NativePanicRestart => "native, panic!",
            #[cfg(feature = "wasm")]
            Variant::NativeErrorRestart => "native, handler Err",
            #[cfg(feature = "wasm")]
            Variant::WasmTrapRestart => "WasmActor, guest trap",
            #[cfg(feature = "nats")]
            Variant::RawNatsRequest => "async-nats client.request (raw)",
            #[cfg(feature = "nats")]
            Variant::NatsBrokerRequest => "NatsMessageBroker.request, node b → actor on a",
            #[cfg(feature = "nats")]
            Variant::RawNatsInFlight => "async-nats client.request (raw), 32 in flight",
            #[cfg(feature = "nats")]
            Variant::NatsBrokerInFlight => "NatsMessageBroker.request, 32 in flight",
            #[cfg(feature = "nats")]
            Variant::ShardedRequest => "NatsMessageBroker.request, node b → sharded entity on a",
            #[cfg(feature = "nats")]
            Variant::ShardedInFlight => {
                "NatsMessageBroker.request to a sharded entity, 32 in flight"
            }
        }
    }

    /// The workload this variant belongs to.
    pub fn workload(self) -> Internal {
        match self {
            Variant::DirectAsk | Variant::BrokerRequest => Internal::BrokerRequest,
            Variant::DirectTell
            | Variant::DirectTellInTurn
            | Variant::PoolRoundRobin
            | Variant::PoolLeastConnections
            | Variant::PoolRandom
            | Variant::PoolConsistentHash => Internal::PoolRouting,
            #[cfg(feature = "wasm")]
            Variant::NativeCounterAsk | Variant::WasmCounterAsk => Internal::WasmRoundTrip,
            #[cfg(feature = "wasm")]
            Variant::NativePanicRestart
            | Variant::NativeErrorRestart
            | Variant::WasmTrapRestart => Internal::WasmRestart,
            #[cfg(feature = "nats")]
            Variant::RawNatsRequest | Variant::NatsBrokerRequest | Variant::ShardedRequest => {
                Internal::NatsRoundTrip
            }
            #[cfg(feature = "nats")]
            Variant::RawNatsInFlight | Variant::NatsBrokerInFlight | Variant::ShardedInFlight => {
                Internal::NatsThroughput
            }
        }
    }

    /// Measures the variant once on a fresh runtime of `flavor`. Panics if
    /// it skipped work.
    pub fn measure(self, flavor: Flavor, sizes: Sizes) -> Sample {
        on_runtime(flavor, run(self, sizes))
    }
}

/// Runs `variant`, panicking if it skipped any work.
pub async fn run(variant: Variant, sizes: Sizes) -> Sample {
    #[cfg(feature = "nats")]
    use crate::frameworks::airssys_nats::{IN_FLIGHT, RawNats};
    #[cfg(feature = "wasm")]
    use crate::frameworks::airssys_wasm::Counter;
    use airssys_rt::address::PoolStrategy;
    let n = variant.workload().ops(&sizes);
    let sample = match variant {
        Variant::DirectAsk => Airssys::echo_ask(n).await,
        Variant::BrokerRequest => Airssys::echo_broker(n).await,
        Variant::DirectTell => Airssys::work_tell(1, n).await,
        Variant::DirectTellInTurn => Airssys::work_tell(POOL_MEMBERS, n).await,
        Variant::PoolRoundRobin => Airssys::pool_tell(PoolStrategy::RoundRobin, n).await,
        Variant::PoolLeastConnections => {
            Airssys::pool_tell(PoolStrategy::LeastConnections, n).await
        }
        Variant::PoolRandom => Airssys::pool_tell(PoolStrategy::Random, n).await,
        Variant::PoolConsistentHash => {
            Airssys::pool_tell(PoolStrategy::ConsistentHash("compare".into()), n).await
        }
        #[cfg(feature = "wasm")]
        Variant::NativeCounterAsk => Airssys::counter_ask(Counter::NativeError, n).await,
        #[cfg(feature = "wasm")]
        Variant::WasmCounterAsk => Airssys::counter_ask(Counter::Wasm, n).await,
        #[cfg(feature = "wasm")]
        Variant::NativePanicRestart => Airssys::counter_restart(Counter::NativePanic, n).await,
        #[cfg(feature = "wasm")]
        Variant::NativeErrorRestart => Airssys::counter_restart(Counter::NativeError, n).await,
        #[cfg(feature = "wasm")]
        Variant::WasmTrapRestart => Airssys::counter_restart(Counter::Wasm, n).await,
        #[cfg(feature = "nats")]
        Variant::RawNatsRequest => RawNats::double(n, 1).await,
        #[cfg(feature = "nats")]
        Variant::NatsBrokerRequest => Airssys::nats_double(n, 1).await,
        #[cfg(feature = "nats")]
        Variant::RawNatsInFlight => RawNats::double(n, IN_FLIGHT).await,
        #[cfg(feature = "nats")]
        Variant::NatsBrokerInFlight => Airssys::nats_double(n, IN_FLIGHT).await,
        #[cfg(feature = "nats")]
        Variant::ShardedRequest => Airssys::nats_sharded(n, 1).await,
        #[cfg(feature = "nats")]
        Variant::ShardedInFlight => Airssys::nats_sharded(n, IN_FLIGHT).await,
    };
    assert_eq!(
        sample.processed, n,
        "airssys-rt {variant:?} processed {} of {n} operations",
        sample.processed
    );
    sample
}
