//! Specifications: [`SupervisorSpec`] (strategy, intensity, children) and
//! [`ChildSpec`] (id, how to build the child, restart type, shutdown,
//! kind), built with small chaining builders. A spec is a value: cloning it
//! is cheap, and a nested supervisor is started again from its spec on each
//! restart.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::traits::{BoundProbe, ChildStart, StartedChild};
use super::tree::SupervisorStart;
use super::{Backoff, HealthCheck, RestartType, SupervisionStrategy};
use crate::actor::cell::LifecycleWatcher;
use crate::actor::dock::DockKey;
use crate::actor::lifecycle::panic_text;
use crate::actor::spawn::{SpawnOptions, prepare_in_place};
use crate::actor::{Actor, ActorRef, ExitReason};
use crate::mailbox::MailboxConfig;
use crate::system::ActorSystem;

/// A child's id, unique within its supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(Arc<str>);

impl ChildId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn shared(&self) -> Arc<str> {
        self.0.clone()
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ChildId {
    fn from(id: &str) -> Self {
        Self(id.into())
    }
}

impl From<String> for ChildId {
    fn from(id: String) -> Self {
        Self(id.into())
    }
}

impl PartialEq<str> for ChildId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ChildId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// How a supervisor stops a child (OTP's `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildShutdown {
    /// Kill at once: no `post_stop`.
    BrutalKill,
    /// Ask it to stop (a `Shutdown` signal, then `post_stop`); kill it if it
    /// has not exited after this long.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (the default for nested
    /// supervisors, which need the time to stop their own children).
    Infinity,
}

/// Whether a child is a worker or a supervisor (reported by
/// `which_children` and `count_children`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// An ordinary actor.
    Worker,
    /// A nested supervisor.
    Supervisor,
}

/// The default graceful-stop time for workers (OTP's 5000 ms).
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

/// One child of a supervisor: what to start and how to treat it.
///
/// Build a worker with [`ChildSpec::worker`] (which returns a typed
/// [`WorkerSpec`]) and a nested supervisor with [`ChildSpec::supervisor`].
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: ChildId,
    pub(crate) start: Arc<dyn ChildStart>,
    pub(crate) kind: ChildKind,
    pub(crate) options: ChildOptions,
}

/// The settings every child has, whatever it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildOptions {
    pub(crate) restart: RestartType,
    pub(crate) shutdown: ChildShutdown,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) health: Option<HealthCheck>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("restart", &self.options.restart)
            .field("shutdown", &self.options.shutdown)
            .field("backoff", &self.options.backoff)
            .field("health", &self.options.health)
            .finish()
    }
}

impl ChildSpec {
    /// A worker built by `factory` for each start and restart. Permanent,
    /// stopped gracefully with a 5 s timeout, unless changed.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use airssys_rt::prelude::*;
    /// use airssys_rt::supervisor::{ChildShutdown, ChildSpec, RestartType};
    ///
    /// struct Cache;
    /// impl Actor for Cache {
    ///     type Message = u64;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, _: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> { Ok(()) }
    /// }
    ///
    /// let spec: ChildSpec = ChildSpec::worker("cache", || Cache)
    ///     .restart(RestartType::Transient)
    ///     .shutdown(ChildShutdown::Timeout(Duration::from_secs(1)))
    ///     .into();
    /// assert_eq!(spec.id().as_str(), "cache");
    /// ```
    pub fn worker<A, F>(id: impl Into<ChildId>, factory: F) -> WorkerSpec<A>
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        WorkerSpec {
            id: id.into(),
            factory: Arc::new(factory),
            mailbox: None,
            register: None,
            probe: None,
            keep_mailbox: false,
            options: ChildOptions {
                restart: RestartType::Permanent,
                shutdown: ChildShutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
                backoff: None,
                health: None,
            },
        }
    }

    /// A nested supervisor started from `spec` (again on each restart).
    /// Permanent, shutdown `Infinity`, unless changed.
    pub fn supervisor(id: impl Into<ChildId>, spec: SupervisorSpec) -> ChildSpec {
        Self::nested(id.into(), Arc::new(SupervisorStart::new(spec)))
    }

    /// A child that is a supervisor started by `start`: permanent, shutdown
    /// `Infinity`, unless changed.
    pub(crate) fn nested(id: ChildId, start: Arc<dyn ChildStart>) -> ChildSpec {
        ChildSpec {
            id,
            start,
            kind: ChildKind::Supervisor,
            options: ChildOptions {
                restart: RestartType::Permanent,
                shutdown: ChildShutdown::Infinity,
                backoff: None,
                health: None,
            },
        }
    }

    /// The child's id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }

    /// Its restart type.
    pub fn restart_type(&self) -> RestartType {
        self.options.restart
    }

    /// Sets when it is restarted.
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.options.restart = restart;
        self
    }

    /// Sets how it is stopped.
    pub fn shutdown(mut self, shutdown: ChildShutdown) -> Self {
        self.options.shutdown = shutdown;
        self
    }

    /// Delays its restarts (beyond OTP); see [`Backoff`].
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.options.backoff = Some(backoff);
        self
    }
}

/// A health probe for actors taking messages `M`: `true` means healthy.
type Probe<M> = Arc<dyn Fn(ActorRef<M>) -> BoxFuture<'static, bool> + Send + Sync>;

/// A worker child spec, typed by its actor so a health probe can talk to it.
/// Converts into a [`ChildSpec`].
#[must_use = "a spec does nothing until given to a supervisor"]
pub struct WorkerSpec<A: Actor> {
    id: ChildId,
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    mailbox: Option<MailboxConfig>,
    register: Option<Arc<str>>,
    probe: Option<Probe<A::Message>>,
    keep_mailbox: bool,
    options: ChildOptions,
}

impl<A: Actor> fmt::Debug for WorkerSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerSpec")
            .field("id", &self.id)
            .field("mailbox", &self.mailbox)
            .field("keep_mailbox", &self.keep_mailbox)
            .field("options", &self.options)
            .finish()
    }
}

impl<A: Actor> WorkerSpec<A> {
    /// Sets when it is restarted.
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.options.restart = restart;
        self
    }

    /// Sets how it is stopped.
    pub fn shutdown(mut self, shutdown: ChildShutdown) -> Self {
        self.options.shutdown = shutdown;
        self
    }

    /// Delays its restarts (beyond OTP); see [`Backoff`].
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.options.backoff = Some(backoff);
        self
    }

    /// Registers each instance under `name` in the system's
    /// [registry](crate::broker::ActorRegistry): after a restart the name
    /// leads to the new instance. An instance that cannot take the name
    /// fails to start.
    pub fn register(mut self, name: impl Into<Arc<str>>) -> Self {
        self.register = Some(name.into());
        self
    }

    /// Its mailbox (the system's default otherwise).
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// Keeps its mailbox across restarts (beyond OTP; off by default).
    ///
    /// By default a restarted child is a new actor with a new, empty
    /// mailbox, as in OTP: what was queued for the old instance becomes
    /// dead letters. With `keep_mailbox(true)` the replacement handles what
    /// was queued, first and in order (Akka's behaviour). The message being
    /// handled when an instance crashed is still dead-lettered, with the
    /// crash. The replacement is still a new actor with a new [`ActorRef`]:
    /// send through a name ([`register`](Self::register)) to reach
    /// whichever instance runs. Messages kept for a restart that does not
    /// happen (the supervisor gave up or stopped, or the child is not
    /// restarted after this exit) are dead-lettered, with
    /// [`DeadLetterReason::NotRestarted`](crate::mailbox::DeadLetterReason::NotRestarted)
    /// or the reason the exit gives. Under `one_for_all` and `rest_for_one`
    /// the siblings stopped for the restart keep theirs too (if they keep
    /// their mailboxes); the stop and start order stays OTP's.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use airssys_rt::prelude::*;
    /// use airssys_rt::supervisor::ChildSpec;
    ///
    /// struct Mailer;
    /// impl Actor for Mailer {
    ///     type Message = String;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, _: String, _: &mut ActorContext<String>) -> Result<(), Infallible> { Ok(()) }
    /// }
    ///
    /// let spec = ChildSpec::worker("mailer", || Mailer).register("mailer").keep_mailbox(true);
    /// ```
    pub fn keep_mailbox(mut self, keep: bool) -> Self {
        self.keep_mailbox = keep;
        self
    }

    /// Checks its health by `check` with `probe` (beyond OTP): a probe that
    /// returns `false` or takes longer than the check's timeout is a failure.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use airssys_rt::prelude::*;
    /// use airssys_rt::supervisor::{ChildSpec, HealthCheck};
    ///
    /// #[derive(Debug)]
    /// enum Msg { Ping(ReplyTo<()>) }
    /// impl Message for Msg { const MESSAGE_TYPE: &'static str = "db"; }
    ///
    /// struct Db;
    /// impl Actor for Db {
    ///     type Message = Msg;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, Msg::Ping(r): Msg, _: &mut ActorContext<Msg>) -> Result<(), Infallible> {
    ///         let _ = r.reply(());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let spec = ChildSpec::worker("db", || Db).health_check(
    ///     HealthCheck::every(Duration::from_secs(5)).timeout(Duration::from_secs(1)),
    ///     |db| async move { db.ask(Msg::Ping, Duration::from_secs(1)).await.is_ok() },
    /// );
    /// ```
    pub fn health_check<P, Fut>(mut self, check: HealthCheck, probe: P) -> Self
    where
        P: Fn(ActorRef<A::Message>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.options.health = Some(check);
        self.probe = Some(Arc::new(move |actor| probe(actor).boxed()));
        self
    }
}

impl<A: Actor> From<WorkerSpec<A>> for ChildSpec {
    fn from(spec: WorkerSpec<A>) -> Self {
        ChildSpec {
            id: spec.id,
            start: Arc::new(WorkerStart {
                factory: spec.factory,
                mailbox: spec.mailbox,
                register: spec.register,
                probe: spec.probe,
                keep_mailbox: spec.keep_mailbox,
            }),
            kind: ChildKind::Worker,
            options: spec.options,
        }
    }
}

/// Starts worker instances.
struct WorkerStart<A: Actor> {
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    mailbox: Option<MailboxConfig>,
    register: Option<Arc<str>>,
    probe: Option<Probe<A::Message>>,
    keep_mailbox: bool,
}

impl<A: Actor> ChildStart for WorkerStart<A> {
    fn start<'a>(
        &'a self,
        system: &'a ActorSystem,
        name: Arc<str>,
        watcher: Arc<dyn LifecycleWatcher>,
        recycled: Option<DockKey>,
    ) -> BoxFuture<'a, Result<StartedChild, ExitReason>> {
        Box::pin(async move {
            let actor = std::panic::catch_unwind(AssertUnwindSafe(|| (self.factory)())).map_err(
                |panic| ExitReason::Panic(format!("factory panicked: {}", panic_text(panic))),
            )?;
            let mailbox = self.mailbox.unwrap_or(system.config().default_mailbox);
            let options = SpawnOptions {
                watcher: Some(watcher),
                register: self.register.clone(),
                keep_mailbox: self.keep_mailbox,
                ..SpawnOptions::new(Some(name), mailbox)
            };
            let mut worker = prepare_in_place(system, options, actor)?;
            if let Err(reason) = worker.pre_start_here().await {
                return Err(worker.abandon(reason));
            }
            let actor_ref = worker.myself().clone();
            let dock = worker.run_in(recycled, actor_ref.cell());
            let probe = self.probe.clone().map(|probe| {
                let target = actor_ref.clone();
                Box::new(move || probe(target.clone())) as BoundProbe
            });
            Ok(StartedChild {
                control: actor_ref.control(),
                handle: actor_ref.into_any(),
                probe,
                dock: Some(dock),
            })
        })
    }
}

/// The default restart intensity (OTP's: 1 restart in 5 seconds).
pub const DEFAULT_MAX_RESTARTS: u32 = 1;
/// The default intensity window (OTP's 5 seconds).
pub const DEFAULT_RESTART_PERIOD: Duration = Duration::from_secs(5);

/// A supervisor: its strategy, restart intensity and children in start order.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::prelude::*;
/// use airssys_rt::supervisor::{ChildSpec, SupervisorSpec};
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
/// let spec = SupervisorSpec::one_for_one()
///     .name("app")
///     .intensity(3, Duration::from_secs(10))
///     .child(ChildSpec::worker("a", || Worker))
///     .child(ChildSpec::worker("b", || Worker));
/// let supervisor = system.start_supervisor(spec).await?;
/// assert_eq!(supervisor.count_children().await?.active, 2);
/// let worker = supervisor.child::<u64>("a").await?.expect("running");
/// worker.tell(1).await?;
/// # system.shutdown(Duration::from_secs(1)).await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a spec does nothing until started"]
pub struct SupervisorSpec {
    pub(crate) strategy: SupervisionStrategy,
    pub(crate) max_restarts: u32,
    pub(crate) max_restart_period: Duration,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) name: Option<Arc<str>>,
}

impl SupervisorSpec {
    /// A spec with `strategy`, OTP's default intensity (1 restart in 5 s)
    /// and no children yet.
    pub fn new(strategy: SupervisionStrategy) -> Self {
        Self {
            strategy,
            max_restarts: DEFAULT_MAX_RESTARTS,
            max_restart_period: DEFAULT_RESTART_PERIOD,
            children: Vec::new(),
            name: None,
        }
    }

    /// `new(OneForOne)`.
    pub fn one_for_one() -> Self {
        Self::new(SupervisionStrategy::OneForOne)
    }

    /// `new(OneForAll)`.
    pub fn one_for_all() -> Self {
        Self::new(SupervisionStrategy::OneForAll)
    }

    /// `new(RestForOne)`.
    pub fn rest_for_one() -> Self {
        Self::new(SupervisionStrategy::RestForOne)
    }

    /// Tolerates at most `max_restarts` restarts within any `period`; one
    /// more and the supervisor stops its children and exits.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.max_restart_period = period;
        self
    }

    /// Names the supervisor's actor (for logs).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a child, started after the ones added before it.
    pub fn child(mut self, child: impl Into<ChildSpec>) -> Self {
        self.children.push(child.into());
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> SupervisionStrategy {
        self.strategy
    }

    /// The children in start order.
    pub fn children(&self) -> &[ChildSpec] {
        &self.children
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::actor::ActorContext;

    struct Idle;

    impl Actor for Idle {
        type Message = u64;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            _: u64,
            _: &mut ActorContext<u64>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }

    #[test]
    fn defaults_follow_otp() {
        let worker: ChildSpec = ChildSpec::worker("w", || Idle).into();
        assert_eq!(worker.restart_type(), RestartType::Permanent);
        assert_eq!(
            worker.options.shutdown,
            ChildShutdown::Timeout(DEFAULT_WORKER_SHUTDOWN)
        );
        assert_eq!(worker.kind(), ChildKind::Worker);
        let nested = ChildSpec::supervisor("s", SupervisorSpec::one_for_one());
        assert_eq!(nested.options.shutdown, ChildShutdown::Infinity);
        assert_eq!(nested.kind(), ChildKind::Supervisor);
        let spec = SupervisorSpec::rest_for_one();
        assert_eq!(
            (spec.max_restarts, spec.max_restart_period),
            (1, Duration::from_secs(5))
        );
    }

    #[test]
    fn builders_set_what_they_say() {
        let backoff = Backoff::exponential(Duration::from_millis(1), Duration::from_secs(1));
        let spec: ChildSpec = ChildSpec::worker("w", || Idle)
            .restart(RestartType::Temporary)
            .shutdown(ChildShutdown::BrutalKill)
            .backoff(backoff)
            .into();
        assert_eq!(spec.restart_type(), RestartType::Temporary);
        assert_eq!(spec.options.shutdown, ChildShutdown::BrutalKill);
        assert_eq!(spec.options.backoff, Some(backoff));
        let tree = SupervisorSpec::one_for_all()
            .intensity(7, Duration::from_secs(9))
            .child(spec)
            .child(ChildSpec::worker("x", || Idle));
        assert_eq!(tree.strategy(), SupervisionStrategy::OneForAll);
        let ids: Vec<&str> = tree.children().iter().map(|c| c.id().as_str()).collect();
        assert_eq!(ids, ["w", "x"]);
    }

    #[test]
    fn child_ids_compare_with_text() {
        let id = ChildId::from("db");
        assert_eq!(id, "db");
        assert_eq!(id, ChildId::from(String::from("db")));
        assert_eq!(id.to_string(), "db");
    }
}
