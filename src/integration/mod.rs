//! Integrations with what lies outside the runtime: the OS layer
//! ([`osl`], feature `osl`, on by default) and WebAssembly actors (`wasm`,
//! feature `wasm`).

#[cfg(feature = "osl")]
pub mod osl;

#[cfg(feature = "wasm")]
pub mod wasm;

#[cfg(feature = "nats")]
pub mod nats;
