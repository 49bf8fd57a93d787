//! Helpers shared by the OS-layer integration tests (`osl_files`,
//! `osl_process`, `osl_network`).
#![allow(dead_code)]

use std::time::Duration;

use airssys_rt::prelude::*;

#[cfg(feature = "osl")]
pub mod osl;

/// Generous timeout for asks that must succeed; never reached in a passing run.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::named("test")).expect("inside a tokio runtime")
}
