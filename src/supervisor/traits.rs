//! The type-erased contract between a supervisor and what it supervises: a
//! [`ChildStart`] builds and spawns one instance of a child, whatever its
//! actor type, and hands back a [`StartedChild`].

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::actor::ExitReason;
use crate::actor::cell::{ActorControl, LifecycleWatcher};
use crate::system::ActorSystem;

/// A health probe bound to one running instance: `true` means healthy.
pub(crate) type BoundProbe = Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// Starts one instance of a child. Implemented for workers (any [`Actor`](crate::actor::Actor))
/// and for nested supervisors.
pub(crate) trait ChildStart: Send + Sync {
    /// Builds and spawns an instance named `name`, watched by `watcher`.
    /// Errors (a panicking factory, a system shutting down) are returned as
    /// the exit reason of an instance that never ran.
    fn start(
        &self,
        system: &ActorSystem,
        name: Arc<str>,
        watcher: Arc<dyn LifecycleWatcher>,
    ) -> Result<StartedChild, ExitReason>;
}

/// A freshly spawned instance.
pub(crate) struct StartedChild {
    /// Stop, kill, wait for it.
    pub(crate) control: Arc<dyn ActorControl>,
    /// Its typed handle (`ActorRef<M>` or `SupervisorRef`), for lookups.
    pub(crate) handle: Arc<dyn Any + Send + Sync>,
    /// Its health probe, when the spec asked for one.
    pub(crate) probe: Option<BoundProbe>,
}
