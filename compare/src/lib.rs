//! # airssys-rt-compare
//!
//! The side-by-side benchmark harness: the same workloads written
//! idiomatically for airssys-rt, ractor, kameo, actix and plain tokio, run
//! interleaved in one process on the same runtime settings, every run checked
//! for having done all of its work. Two of them send jobs through each
//! framework's own worker pool: throughput, and recovery when 1 % of the jobs
//! crash their worker, with the good jobs each pool lost ([`jobs`]).
//! Features no peer has (the broker's request/reply, the pool's routing
//! strategies) are measured against airssys-rt's own direct path instead, in
//! a separate table ([`internal`]).
//!
//! `cargo run --release -p airssys-rt-compare -- --quick` for a one-minute
//! run; without `--quick` for the full one; `--only broker --only pool` for
//! just the airssys-rt-only workloads. Results land in `target/compare/`.
//!
//! With the `wasm` feature (off by default: it builds wasmtime) the
//! airssys-rt-only table also has airssys-rt's WebAssembly actors against
//! native ones — an ask round trip and the restart after a trap:
//! `cargo run --release -p airssys-rt-compare --features wasm -- --only wasm`.
//!
//! With the `nats` feature (off by default: it builds async-nats, and every
//! run starts its own `nats-server`, which must be on the PATH) it also has
//! airssys-rt's NATS broker — two nodes, a request answered by an actor on
//! the other one — against the bare async-nats client doing the same
//! request/reply, one request at a time and 32 in flight:
//! `cargo run --release -p airssys-rt-compare --features nats -- --only nats`.

pub mod driver;
pub mod frameworks;
pub mod internal;
pub mod jobs;
pub mod memory;
#[cfg(feature = "nats")]
#[path = "../../tests/support/nats_server.rs"]
mod nats_server;
pub mod report;
pub mod workload;
