//! WebAssembly actors (feature `wasm`): an actor whose behaviour is a guest
//! module, run by wasmtime, inside the same supervision trees, registry and
//! pools as native actors.
//!
//! # The guest ABI
//!
//! Core WebAssembly, no extra toolchain: a guest is any module that
//!
//! * exports its `memory`;
//! * exports `alloc(len: i32) -> i32`: room for `len` bytes, where the host
//!   writes each message;
//! * exports `handle(ptr: i32, len: i32) -> i32`: handles the message at
//!   `ptr`; 0 means done, anything else is a failure of the actor.
//!
//! It may import, from module `"airssys"`:
//!
//! * `send(to: i32, to_len: i32, msg: i32, msg_len: i32) -> i32`: sends the
//!   bytes at `msg` to the actor registered under the UTF-8 name at `to`
//!   (one that takes [`WasmMessage`]). 0 sent, −1 not granted (recorded in
//!   the activity log), −2 no such actor, −3 refused (stopped or full).
//! * `reply(ptr: i32, len: i32) -> i32`: answers the request being handled;
//!   0 done, −1 nothing to answer (a tell, or answered already).
//! * `log(level: i32, ptr: i32, len: i32)`: a `tracing` event (0 error …
//!   4 trace) with the UTF-8 text at `ptr`.
//! * `clock_ms() -> i64`: the wall clock in Unix milliseconds, or −1 if not
//!   granted (recorded).
//!
//! There are no other imports: no files, sockets or clocks unless granted.
//! Messages are bytes; typed values cross them encoded with `postcard`
//! (compact, schema-less and simple to decode in a guest: varints and
//! length-prefixed fields, no framing overhead), through
//! [`encode`]/[`decode`].
//!
//! # Limits and failures
//!
//! Per instance ([`WasmLimits`]): fuel per message, maximum linear memory,
//! maximum message size. A guest that runs out of fuel, grows memory past
//! the limit, passes an oversized message or traps (`unreachable`, a guest
//! panic, a bad access) fails its actor with a [`WasmError`] naming the
//! limit and the message; a supervisor restarts it with a fresh instance of
//! the module, compiled once. A busy guest yields to tokio every 10,000 fuel,
//! so a handler that loops cannot stall other actors on its worker.

mod actor;
mod host;
mod spec;

pub use actor::{WasmActor, WasmError, WasmLimit, WasmMessage};
pub use host::{DENIED, NO_REQUEST, REFUSED, SENT, UNKNOWN_ADDRESS};
pub use spec::{Capabilities, MAX_GUEST_MEMORY_BYTES, WasmLimits, WasmSpec};

/// Encodes a value for a guest (postcard).
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Decodes a value from a guest (postcard).
pub fn decode<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}
