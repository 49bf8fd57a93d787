//! Supervision trees with Erlang/OTP's semantics.
//!
//! A supervisor ([`SupervisorSpec`], started with
//! [`ActorSystem::start_supervisor`](crate::system::ActorSystem::start_supervisor))
//! starts its children in order and restarts them by its
//! [`SupervisionStrategy`] and each child's [`RestartType`]. More than
//! `max_restarts` restarts within `max_restart_period` make it stop all its
//! children (last started first) and exit with `Shutdown`; its parent treats
//! that like any child exit, so failures climb the tree to the root, which
//! the system records ([`ActorSystem::root_failures`](crate::system::ActorSystem::root_failures)).
//!
//! Beyond OTP, opt-in per child: [`Backoff`] before restarts and a
//! [`HealthCheck`] that restarts a child which stops answering. Everything a
//! supervisor does is published as a [`SupervisionEvent`]. A
//! [`CircuitBreaker`] protects callers from a failing dependency.
//!
//! This module owns the specs ([`spec`](ChildSpec)), the rules
//! ([`strategy`](SupervisionStrategy)), the supervisor actor (`tree`), its
//! handle ([`SupervisorRef`]), health monitoring and the event stream.

mod backoff;
mod circuit_breaker;
mod errors;
mod events;
mod handle;
mod monitor;
mod spec;
mod strategy;
pub(crate) mod traits;
pub(crate) mod tree;

pub use backoff::Backoff;
pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerConfig, CircuitBreakerError, CircuitState,
};
pub use errors::SupervisorError;
pub(crate) use events::SupervisionBus;
pub use events::{SupervisionEvent, SupervisionEvents, SupervisorStats};
pub use handle::{ChildCounts, ChildInfo, ChildStatus, SupervisorInfo, SupervisorRef};
pub use monitor::HealthCheck;
pub use spec::{
    ChildId, ChildKind, ChildShutdown, ChildSpec, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_PERIOD,
    DEFAULT_WORKER_SHUTDOWN, SupervisorSpec, WorkerSpec,
};
pub use strategy::{RestartType, SupervisionStrategy};
