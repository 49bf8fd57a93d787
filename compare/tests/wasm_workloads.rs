//! Feature `wasm`: the airssys-rt-only WebAssembly workloads (a `WasmActor`
//! counter's round trip and its restart after a trap, each against native
//! counters) process every operation on both runtime shapes. Each workload
//! also checks every answer itself: the round trip each running total, the
//! restart that every replacement starts from a fresh instance.

#![cfg(feature = "wasm")]

use airssys_rt_compare::driver::Flavor;
use airssys_rt_compare::internal::{Internal, Variant};
use airssys_rt_compare::workload::Sizes;

fn check(workload: Internal, expected: &[Variant]) {
    assert_eq!(workload.variants(), expected, "{workload:?} variants");
    for flavor in Flavor::ALL {
        for variant in workload.variants() {
            assert_eq!(variant.workload(), workload);
            let sample = variant.measure(flavor, Sizes::TINY);
            assert_eq!(
                sample.processed,
                workload.ops(&Sizes::TINY),
                "{variant:?} on {flavor:?}"
            );
            assert!(sample.value > 0.0, "{variant:?} reported no cost");
            assert!(
                sample.secondary.is_some_and(|p99| p99 >= sample.value),
                "{variant:?}: a p99 at least the median"
            );
        }
    }
}

#[test]
fn wasm_round_trip_answers_every_ask() {
    check(
        Internal::WasmRoundTrip,
        &[Variant::NativeCounterAsk, Variant::WasmCounterAsk],
    );
}

#[test]
fn wasm_restart_replaces_the_actor_after_every_failure() {
    check(
        Internal::WasmRestart,
        &[
            Variant::NativePanicRestart,
            Variant::NativeErrorRestart,
            Variant::WasmTrapRestart,
        ],
    );
}

#[test]
fn wasm_workloads_are_listed_and_selectable() {
    assert!(Internal::ALL.contains(&Internal::WasmRoundTrip));
    assert!(Internal::ALL.contains(&Internal::WasmRestart));
    // `--only wasm` picks exactly these two.
    let picked: Vec<_> = Internal::ALL
        .iter()
        .copied()
        .filter(|w| w.label().contains("wasm"))
        .collect();
    assert_eq!(picked, [Internal::WasmRoundTrip, Internal::WasmRestart]);
}
