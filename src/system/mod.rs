//! The actor system: configuration, spawning, the registry of live actors,
//! shutdown, and the error types.

pub mod actor_system;
pub mod builder;
pub mod config;
pub mod errors;
pub mod health;
pub mod introspect;
pub(crate) mod registry;
pub(crate) mod shared;

pub use actor_system::{ActorSystem, RootFailure, ShutdownReport, SystemInfo};
pub use builder::ActorSpawnBuilder;
pub use config::SystemConfig;
pub use errors::{AskError, LinkError, ReplyError, SendError, SendErrorKind, SystemError};
pub use health::{
    ActorSystemHealth, HealthStatus, HealthThresholds, HealthVerdict, MessageThroughput,
};
pub use introspect::{ActorPage, ActorSummary};
