//! The type-erased contract between a supervisor and what it supervises: a
//! [`ChildStart`] builds and starts one instance of a child, whatever its
//! actor type, and hands back a [`StartedChild`].

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::actor::ExitReason;
use crate::actor::cell::{ActorControl, LifecycleWatcher};
use crate::actor::dock::DockKey;
use crate::system::ActorSystem;

/// A health probe bound to one running instance: `true` means healthy.
pub(crate) type BoundProbe = Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// Starts one instance of a child. Implemented for workers (any [`Actor`](crate::actor::Actor))
/// and for nested supervisors.
pub(crate) trait ChildStart: Send + Sync {
    /// Builds an instance named `name`, watched by `watcher`, runs its
    /// first `pre_start` in the calling (supervisor's) task and then gives
    /// it a task of its own. Resolves once it has started; a failure (a
    /// panicking factory, a failing `pre_start`, a system shutting down) is
    /// the exit reason of an instance that never ran. `recycled` is the
    /// task of this child's exited instance, which a worker's replacement
    /// runs in if that task still waits (see [`crate::actor::dock`]).
    fn start<'a>(
        &'a self,
        system: &'a ActorSystem,
        name: Arc<str>,
        watcher: Arc<dyn LifecycleWatcher>,
        recycled: Option<DockKey>,
    ) -> BoxFuture<'a, Result<StartedChild, ExitReason>>;
}

/// A freshly spawned instance.
pub(crate) struct StartedChild {
    /// Stop, kill, wait for it.
    pub(crate) control: Arc<dyn ActorControl>,
    /// Its handle, type-erased (`ActorRef::into_any`: the cell itself), for
    /// lookups.
    pub(crate) handle: Arc<dyn Any + Send + Sync>,
    /// Its health probe, when the spec asked for one.
    pub(crate) probe: Option<BoundProbe>,
    /// A worker's task, reusable for its replacement.
    pub(crate) dock: Option<DockKey>,
}
