//! One module per framework, each implementing [`Framework`](crate::workload::Framework).

pub mod actix_impl;
pub mod airssys;
#[cfg(feature = "nats")]
pub mod airssys_nats;
#[cfg(feature = "wasm")]
pub mod airssys_wasm;
pub mod kameo_impl;
pub mod ractor_impl;
pub mod raw_tokio;
