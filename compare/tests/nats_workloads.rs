//! Feature `nats`: the airssys-rt-only NATS workloads (request/reply to a
//! doubler through `NatsMessageBroker` between two nodes, against the bare
//! async-nats client, and to sharded entities; sequential and 32 in
//! flight) answer every request on
//! both runtime shapes. Each run starts its own `nats-server` and counts
//! only answers that are the request's value doubled.

#![cfg(feature = "nats")]

mod support;

use airssys_rt_compare::internal::{Internal, Variant};
use support::{every_variant_does_all_its_work, picked_by};

#[test]
fn nats_round_trip_answers_every_request() {
    every_variant_does_all_its_work(
        Internal::NatsRoundTrip,
        &[
            Variant::RawNatsRequest,
            Variant::NatsBrokerRequest,
            Variant::ShardedRequest,
        ],
    );
}

#[test]
fn nats_throughput_answers_every_request() {
    every_variant_does_all_its_work(
        Internal::NatsThroughput,
        &[
            Variant::RawNatsInFlight,
            Variant::NatsBrokerInFlight,
            Variant::ShardedInFlight,
        ],
    );
}

#[test]
fn nats_workloads_are_listed_and_selectable() {
    assert!(Internal::ALL.contains(&Internal::NatsRoundTrip));
    assert!(Internal::ALL.contains(&Internal::NatsThroughput));
    // `--only nats` picks exactly these two.
    let picked = picked_by("nats");
    assert_eq!(picked, [Internal::NatsRoundTrip, Internal::NatsThroughput]);
}
