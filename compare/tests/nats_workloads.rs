//! Feature `nats`: the airssys-rt-only NATS workloads (request/reply to a
//! doubler through `NatsMessageBroker` between two nodes, against the bare
//! async-nats client; sequential and 32 in flight) answer every request on
//! both runtime shapes. Each run starts its own `nats-server` and counts
//! only answers that are the request's value doubled.

#![cfg(feature = "nats")]

use airssys_rt_compare::driver::Flavor;
use airssys_rt_compare::internal::{Internal, Variant};
use airssys_rt_compare::workload::Sizes;

fn check(workload: Internal, expected: &[Variant], latencies: bool) {
    assert_eq!(workload.variants(), expected, "{workload:?} variants");
    for flavor in Flavor::ALL {
        for variant in workload.variants() {
            assert_eq!(variant.workload(), workload);
            let sample = variant.measure(flavor, Sizes::TINY);
            assert_eq!(
                sample.processed,
                workload.ops(&Sizes::TINY),
                "{variant:?} on {flavor:?}: every request answered right"
            );
            assert!(sample.value > 0.0, "{variant:?} reported no cost");
            if latencies {
                assert!(
                    sample.secondary.is_some_and(|p99| p99 >= sample.value),
                    "{variant:?}: a p99 at least the median"
                );
            }
        }
    }
}

#[test]
fn nats_round_trip_answers_every_request() {
    check(
        Internal::NatsRoundTrip,
        &[Variant::RawNatsRequest, Variant::NatsBrokerRequest],
        true,
    );
}

#[test]
fn nats_throughput_answers_every_request() {
    check(
        Internal::NatsThroughput,
        &[Variant::RawNatsInFlight, Variant::NatsBrokerInFlight],
        false,
    );
}

#[test]
fn nats_workloads_are_listed_and_selectable() {
    assert!(Internal::ALL.contains(&Internal::NatsRoundTrip));
    assert!(Internal::ALL.contains(&Internal::NatsThroughput));
    // `--only nats` picks exactly these two.
    let picked: Vec<_> = Internal::ALL
        .iter()
        .copied()
        .filter(|w| w.label().contains("nats"))
        .collect();
    assert_eq!(picked, [Internal::NatsRoundTrip, Internal::NatsThroughput]);
}
