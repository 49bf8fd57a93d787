//! [`ActorSystem`]: owns the registry of live actors, the dead-letter office
//! and the runtime counters, spawns actors, and shuts everything down.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::registry::{Registry, Slot};
use super::shared::SystemShared;
use super::{ActorSpawnBuilder, SystemConfig, SystemError};
use crate::actor::cell::ActorControl;
use crate::actor::{Actor, ActorRef};
use crate::address::{ActorPool, PoolError, PoolSpec};
use crate::broker::{ActorRegistry, RegistryError, Topic, Topics};
use crate::mailbox::{DeadLetterOffice, SystemSignal};
use crate::supervisor::tree;
use crate::supervisor::{
    SupervisionBus, SupervisionEvents, SupervisorError, SupervisorRef, SupervisorSpec,
    SupervisorStats,
};
use crate::util::{RuntimeMetrics, RuntimeMetricsSnapshot, time};

/// An actor's identity within one shutdown: the address of its cell (a
/// plain number, so the shutdown future stays `Send`).
fn identity(actor: &Arc<dyn ActorControl>) -> usize {
    Arc::as_ptr(actor).cast::<()>() as usize
}

/// How long killed actors get to unwind before shutdown gives up on them.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// A running actor system. Cheap to clone; all clones are the same system.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::system::{ActorSystem, SystemConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::named("demo"))?;
/// assert_eq!(system.actor_count(), 0);
/// let report = system.shutdown(Duration::from_secs(1)).await;
/// assert_eq!(report.killed, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    config: SystemConfig,
    runtime: Handle,
    pub(super) actors: Mutex<Registry>,
    all_stopped: Notify,
    shutting_down: AtomicBool,
    shared: Arc<SystemShared>,
    metrics: Arc<RuntimeMetrics>,
    started_at: DateTime<Utc>,
    started: Instant,
    root_failures: Mutex<Vec<RootFailure>>,
    /// Root supervisors, for operator views (see `introspect`).
    pub(super) roots: Mutex<Vec<crate::supervisor::SupervisorRef>>,
    registry: ActorRegistry,
    topics: Topics,
}

/// A root supervisor that exceeded its restart intensity: the end of an
/// escalation, with nobody above to restart it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFailure {
    /// The supervisor's actor id.
    pub supervisor: crate::util::ActorId,
    /// Its name, if it had one.
    pub name: Option<String>,
    /// Restarts in its window when it gave up (the refused one included).
    pub restarts: u32,
    /// Its intensity window.
    pub period: Duration,
    /// When it gave up.
    pub at: DateTime<Utc>,
}

/// What [`ActorSystem::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Actors that were running (not already stopping) when shutdown began.
    pub actors: usize,
    /// Of those, how many stopped gracefully (ran `post_stop`) in time.
    pub stopped_cleanly: usize,
    /// How many had to be killed when the grace period ran out (actors that
    /// were already stopping on their own included).
    pub killed: usize,
    /// Actors still running after the kill grace (stuck in blocking code).
    pub unresponsive: usize,
    /// Dead letters recorded while this shutdown ran (the system's
    /// lifetime total is [`DeadLetterOffice::total`](crate::mailbox::DeadLetterOffice::total)).
    pub dead_letters: u64,
    /// The same dead letters by message type (`Message::MESSAGE_TYPE`).
    pub dead_letters_by_type: BTreeMap<&'static str, u64>,
    /// How long shutdown took.
    pub elapsed: Duration,
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} actors: {} stopped cleanly, {} killed, {} unresponsive; {} dead letters",
            self.actors, self.stopped_cleanly, self.killed, self.unresponsive, self.dead_letters,
        )?;
        let mut types = self.dead_letters_by_type.iter();
        if let Some((first, count)) = types.next() {
            write!(f, " ({first}: {count}")?;
            for (message_type, count) in types {
                write!(f, ", {message_type}: {count}")?;
            }
            f.write_str(")")?;
        }
        write!(f, "; took {}", time::human(self.elapsed))
    }
}

/// A summary of the system for actors and monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    /// The system's name.
    pub name: String,
    /// Actors currently alive.
    pub actor_count: usize,
    /// When the system was created.
    pub started_at: DateTime<Utc>,
    /// Whether shutdown has begun.
    pub shutting_down: bool,
    /// The runtime counters.
    pub metrics: RuntimeMetricsSnapshot,
    /// Totals over all supervisors.
    pub supervision: SupervisorStats,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.inner.config.name)
            .field("actors", &self.actor_count())
            .finish()
    }
}

impl ActorSystem {
    /// Creates a system on the current tokio runtime.
    pub fn new(config: SystemConfig) -> Result<Self, SystemError> {
        let runtime = Handle::try_current().map_err(|_| SystemError::NoRuntime)?;
        Ok(Self::with_runtime(config, runtime))
    }

    /// Creates a system whose actors run on `runtime` (usable from any thread).
    pub fn with_runtime(config: SystemConfig, runtime: Handle) -> Self {
        let metrics = Arc::new(RuntimeMetrics::default());
        let shared = Arc::new(SystemShared::new(
            config.dead_letters_kept,
            metrics.clone(),
            runtime.clone(),
        ));
        Self {
            inner: Arc::new(Inner {
                config,
                runtime,
                actors: Mutex::new(Registry::default()),
                all_stopped: Notify::new(),
                shutting_down: AtomicBool::new(false),
                shared,
                metrics,
                started_at: time::now(),
                started: Instant::now(),
                root_failures: Mutex::new(Vec::new()),
                roots: Mutex::new(Vec::new()),
                registry: ActorRegistry::default(),
                topics: Topics::default(),
            }),
        }
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SystemConfig {
        &self.inner.config
    }

    /// Spawns `actor` with the default mailbox.
    pub fn spawn<A: Actor>(&self, actor: A) -> Result<ActorRef<A::Message>, SystemError> {
        self.spawn_builder().spawn(actor)
    }

    /// A builder to spawn an actor with a name or a custom mailbox.
    pub fn spawn_builder(&self) -> ActorSpawnBuilder<'_> {
        ActorSpawnBuilder::new(self)
    }

    /// Starts a root supervisor from `spec` and waits until all its children
    /// have started (each child's `pre_start` done, in order). If one cannot
    /// start, the ones already started are stopped and this fails, as OTP's
    /// `start_link` does.
    ///
    /// The supervisor's start runs in the awaiting task: dropping this
    /// future before it resolves kills the supervisor and every child it
    /// had started.
    pub async fn start_supervisor(
        &self,
        spec: SupervisorSpec,
    ) -> Result<SupervisorRef, SupervisorError> {
        let name = spec.name.clone().unwrap_or_else(|| "supervisor".into());
        let supervisor = name.to_string();
        tree::start_supervisor(self, spec, name, None)
            .await
            .map_err(|reason| SupervisorError::SupervisorStartFailed { supervisor, reason })
    }

    /// Starts a pool of `spec.size` supervised members behind one name
    /// (see [`ActorPool`]); `ActorAddress::Pool` reaches it through the
    /// registry and the broker.
    pub async fn start_pool<A: Actor>(
        &self,
        spec: PoolSpec<A>,
    ) -> Result<ActorPool<A::Message>, PoolError> {
        ActorPool::start(self, spec).await
    }

    /// Names and services of this system's actors.
    pub fn registry(&self) -> &ActorRegistry {
        &self.inner.registry
    }

    /// The pub/sub topic `name` for messages `M` (created on first use).
    /// Fails if the topic exists for another message type.
    pub fn topic<M: crate::message::Message + Clone>(
        &self,
        name: &str,
    ) -> Result<Topic<M>, RegistryError> {
        self.inner.topics.topic(name)
    }

    /// Subscribes to what every supervisor in this system does, from now on.
    pub fn supervision_events(&self) -> SupervisionEvents {
        self.inner.shared.supervision.subscribe()
    }

    /// Totals over all supervisors: restarts, failures, live children.
    pub fn supervisor_stats(&self) -> SupervisorStats {
        self.inner.shared.supervision.stats()
    }

    /// Root supervisors that gave up (exceeded their restart intensity).
    pub fn root_failures(&self) -> Vec<RootFailure> {
        self.inner.root_failures.lock().clone()
    }

    pub(crate) fn supervision_bus(&self) -> Arc<SupervisionBus> {
        self.inner.shared.supervision.clone()
    }

    pub(crate) fn record_root_failure(
        &self,
        supervisor: crate::util::ActorId,
        name: Option<String>,
        restarts: u32,
        period: Duration,
    ) {
        let failure = RootFailure {
            supervisor,
            name,
            restarts,
            period,
            at: time::now(),
        };
        tracing::error!(system = %self.name(), supervisor = %failure.supervisor, name = ?failure.name, restarts, "root supervisor gave up: the supervision tree is gone");
        self.inner.root_failures.lock().push(failure);
    }

    /// Actors currently alive.
    pub fn actor_count(&self) -> usize {
        self.inner.actors.lock().len()
    }

    /// Where undeliverable messages are recorded.
    pub fn dead_letters(&self) -> &DeadLetterOffice {
        &self.inner.shared.dead_letters
    }

    /// The runtime counters.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.inner.metrics
    }

    /// How long the system has been running.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// A summary for monitoring.
    pub fn info(&self) -> SystemInfo {
        SystemInfo {
            name: self.inner.config.name.clone(),
            actor_count: self.actor_count(),
            started_at: self.inner.started_at,
            shutting_down: self.is_shutting_down(),
            metrics: self.inner.metrics.snapshot(),
            supervision: self.supervisor_stats(),
        }
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Stops every actor: each gets a `Shutdown` signal ahead of its queued
    /// messages and runs `post_stop` (supervisors stop their children first,
    /// in reverse start order); actors still running after `timeout`
    /// are killed. Queued messages become dead letters. New spawns fail from
    /// the moment this is called.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let began = Instant::now();
        // What this shutdown dead-letters, by type: the stream sees every
        // letter recorded from here on (a summary each, never the message).
        let mut letters = self.inner.shared.dead_letters.subscribe();
        self.inner.shutting_down.store(true, Ordering::Release);
        // Actors whose mailbox is already closed are stopping by themselves:
        // they are waited for but not counted as stopped by this shutdown.
        // Supervised actors are left to their supervisors, which stop their
        // children in reverse start order (the tree goes down top-down).
        let running: Vec<_> = self
            .live_actors()
            .into_iter()
            .filter(|actor| !actor.is_closed())
            .collect();
        for actor in running.iter().filter(|actor| !actor.is_supervised()) {
            actor.signal(SystemSignal::Shutdown);
        }
        let signalled: HashSet<usize> = running.iter().map(identity).collect();
        let actors = signalled.len();
        let (mut killed, mut killed_signalled) = (0, 0);
        if tokio::time::timeout(timeout, self.all_stopped())
            .await
            .is_err()
        {
            let stragglers = self.live_actors();
            killed = stragglers.len();
            killed_signalled = stragglers
                .iter()
                .filter(|actor| signalled.contains(&identity(actor)))
                .count();
            for actor in &stragglers {
                actor.kill();
            }
            let _ = tokio::time::timeout(KILL_GRACE, self.all_stopped()).await;
        }
        let unresponsive = self.actor_count();
        let mut dead_letters_by_type = BTreeMap::new();
        while let Some(letter) = letters.try_recv() {
            *dead_letters_by_type.entry(letter.message_type).or_insert(0) += 1;
        }
        let report = ShutdownReport {
            actors,
            // Stragglers that were already stopping on their own are killed
            // too, but were never counted in `actors`.
            stopped_cleanly: actors - killed_signalled,
            killed,
            unresponsive,
            dead_letters: dead_letters_by_type.values().sum(),
            dead_letters_by_type,
            elapsed: began.elapsed(),
        };
        tracing::info!(system = %self.name(), %report, "actor system shut down");
        report
    }

    /// [`shutdown`](Self::shutdown) with the configured grace period.
    pub async fn shutdown_default(&self) -> ShutdownReport {
        self.shutdown(self.inner.config.shutdown_timeout).await
    }

    /// Waits until no actor is alive.
    pub async fn all_stopped(&self) {
        loop {
            let notified = self.inner.all_stopped.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut actors = self.inner.actors.lock();
                if actors.is_empty() {
                    return;
                }
                // Under the lock that exits take: the exit that empties the
                // table sees this count and wakes us.
                actors.awaiting_empty += 1;
            }
            let _awaiting = AwaitingEmpty(self);
            notified.await;
        }
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// The system's deadline registry (cheap timeouts for replies).
    pub(crate) fn deadlines(&self) -> &Arc<crate::util::deadlines::Deadlines> {
        &self.inner.shared.deadlines
    }

    pub(crate) fn shared(&self) -> Arc<SystemShared> {
        self.inner.shared.clone()
    }

    pub(crate) fn register(&self, actor: Arc<dyn ActorControl>) -> Result<Slot, SystemError> {
        let mut actors = self.inner.actors.lock();
        if self.is_shutting_down() {
            return Err(SystemError::ShuttingDown {
                system: self.inner.config.name.clone(),
            });
        }
        let slot = actors.insert(actor);
        // Counted under the lock, which orders the count's writers.
        self.inner.metrics.actor_spawned();
        drop(actors);
        RuntimeMetrics::export_actor_spawned();
        Ok(slot)
    }

    pub(crate) fn deregister(&self, slot: Slot) {
        let mut actors = self.inner.actors.lock();
        let removed = actors.remove(slot);
        if removed {
            self.inner.metrics.actor_stopped();
        }
        let wake = actors.is_empty() && actors.awaiting_empty > 0;
        drop(actors);
        if removed {
            RuntimeMetrics::export_actor_stopped();
        }
        if wake {
            self.inner.all_stopped.notify_waiters();
        }
    }

    fn live_actors(&self) -> Vec<Arc<dyn ActorControl>> {
        self.inner.actors.lock().snapshot()
    }
}

/// One `all_stopped` call waiting (see `Registry::awaiting_empty`), until
/// it is woken or dropped.
struct AwaitingEmpty<'a>(&'a ActorSystem);

impl Drop for AwaitingEmpty<'_> {
    fn drop(&mut self) {
        self.0.inner.actors.lock().awaiting_empty -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_outside_a_runtime_is_a_clear_error() {
        assert_eq!(
            ActorSystem::new(SystemConfig::default()).unwrap_err(),
            SystemError::NoRuntime
        );
    }

    #[test]
    fn system_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let system = ActorSystem::with_runtime(SystemConfig::default(), runtime.handle().clone());
        assert_send(&system.shutdown(Duration::ZERO));
        assert_send(&system.all_stopped());
    }

    #[tokio::test]
    async fn shutdown_refuses_new_spawns() {
        struct Idle;
        impl Actor for Idle {
            type Message = u64;
            type Error = std::convert::Infallible;
            async fn handle_message(
                &mut self,
                _: u64,
                _: &mut crate::actor::ActorContext<u64>,
            ) -> Result<(), Self::Error> {
                Ok(())
            }
        }
        let system = ActorSystem::new(SystemConfig::named("t")).unwrap();
        let a = system.spawn(Idle).unwrap();
        let report = system.shutdown(Duration::from_secs(5)).await;
        assert_eq!(
            (report.actors, report.stopped_cleanly, report.killed),
            (1, 1, 0)
        );
        assert_eq!(a.wait_for_exit().await, crate::actor::ExitReason::Shutdown);
        assert!(matches!(
            system.spawn(Idle),
            Err(SystemError::ShuttingDown { .. })
        ));
        assert_eq!(system.info().metrics.alive(), 0);
    }
}
