//! Feature `wasm`: the airssys-rt-only WebAssembly workloads (a `WasmActor`
//! counter's round trip and its restart after a trap, each against native
//! counters) process every operation on both runtime shapes. Each workload
//! also checks every answer itself: the round trip each running total, the
//! restart that every replacement starts from a fresh instance.

#![cfg(feature = "wasm")]

mod support;

use airssys_rt_compare::internal::{Internal, Variant};
use support::{every_variant_does_all_its_work, picked_by};

#[test]
fn wasm_round_trip_answers_every_ask() {
    every_variant_does_all_its_work(
        Internal::WasmRoundTrip,
        &[Variant::NativeCounterAsk, Variant::WasmCounterAsk],
    );
}

#[test]
fn wasm_restart_replaces_the_actor_after_every_failure() {
    every_variant_does_all_its_work(
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
    let picked = picked_by("wasm");
    assert_eq!(picked, [Internal::WasmRoundTrip, Internal::WasmRestart]);
}
