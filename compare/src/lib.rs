//! # airssys-rt-compare
//!
//! The side-by-side benchmark harness: the same workloads written
//! idiomatically for airssys-rt, ractor, kameo, actix and plain tokio, run
//! interleaved in one process on the same runtime settings, every run checked
//! for having done all of its work. Features no peer has (the broker's
//! request/reply, actor pools) are measured against airssys-rt's own direct
//! path instead, in a separate table ([`internal`]).
//!
//! `cargo run --release -p airssys-rt-compare -- --quick` for a one-minute
//! run; without `--quick` for the full one; `--only broker --only pool` for
//! just the airssys-rt-only workloads. Results land in `target/compare/`.
//!
//! With the `wasm` feature (off by default: it builds wasmtime) the
//! airssys-rt-only table also has airssys-rt's WebAssembly actors against
//! native ones — an ask round trip and the restart after a trap:
//! `cargo run --release -p airssys-rt-compare --features wasm -- --only wasm`.

pub mod driver;
pub mod frameworks;
pub mod internal;
pub mod memory;
pub mod report;
pub mod workload;
