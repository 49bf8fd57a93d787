//! A pool as a child of a supervisor: `SupervisorSpec::child(pool_spec)`.
//!
//! The pool's own supervisor, which restarts its members, becomes a nested
//! supervisor under the parent. A pool whose members crash beyond its
//! intensity gives up and exits like an OTP supervisor, and the parent
//! applies its strategy: a permanent pool (the default) starts again, as a
//! new pool under the same name. [`registry().pool(name)`](crate::broker::ActorRegistry::pool)
//! and `ActorAddress::Pool` find the new one, and an [`ActorPool`] handle
//! of the old one forwards to it.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{ActorPool, PoolSpec};
use crate::actor::cell::LifecycleWatcher;
use crate::actor::dock::DockKey;
use crate::actor::{Actor, ExitReason};
use crate::supervisor::ChildSpec;
use crate::supervisor::traits::{ChildStart, StartedChild};
use crate::system::ActorSystem;

/// A pool as a supervised child, with the pool's name as its child id.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::address::PoolSpec;
/// use airssys_rt::prelude::*;
/// use airssys_rt::supervisor::SupervisorSpec;
///
/// struct Worker;
/// impl Actor for Worker {
///     type Message = u64;
///     type Error = Infallible;
///     async fn handle_message(&mut self, _: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let app = system
///     .start_supervisor(SupervisorSpec::one_for_one().child(PoolSpec::new("workers", 4, || Worker)))
///     .await?;
/// let workers = system.registry().pool::<u64>("workers")?;
/// workers.tell(7).await?;
/// # Ok(()) }
/// ```
impl<A: Actor> From<PoolSpec<A>> for ChildSpec {
    fn from(spec: PoolSpec<A>) -> Self {
        ChildSpec::nested(spec.name().into(), Arc::new(PoolStart { spec }))
    }
}

/// Starts a pool (again on each restart of the child).
struct PoolStart<A: Actor> {
    spec: PoolSpec<A>,
}

impl<A: Actor> ChildStart for PoolStart<A> {
    fn start<'a>(
        &'a self,
        system: &'a ActorSystem,
        _name: Arc<str>,
        watcher: Arc<dyn LifecycleWatcher>,
        _recycled: Option<DockKey>,
    ) -> BoxFuture<'a, Result<StartedChild, ExitReason>> {
        Box::pin(async move {
            let pool = ActorPool::start_under(system, self.spec.clone(), Some(watcher))
                .await
                .map_err(|error| ExitReason::Error(error.to_string()))?;
            let supervisor = pool.supervisor().actor.clone();
            Ok(StartedChild {
                control: supervisor.control(),
                handle: supervisor.into_any(),
                probe: None,
                dock: None,
            })
        })
    }
}
