//! The supervisor itself: an actor that starts its children in order,
//! watches them exit, applies its strategy, counts restarts against its
//! intensity, and stops its children in reverse order when it goes.
//!
//! Everything a supervisor does happens in its own message loop, one event
//! at a time, like OTP's `supervisor` process: child exits, health reports
//! and requests from [`SupervisorRef`] are messages to it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::events::EventSink;
use super::monitor::spawn_monitor;
use super::strategy::RestartIntensity;
use super::traits::{ChildStart, StartedChild};
use super::{
    ChildCounts, ChildId, ChildInfo, ChildKind, ChildShutdown, ChildSpec, ChildStatus, RestartType,
    SupervisionEvent, SupervisionStrategy, SupervisorError, SupervisorInfo, SupervisorRef,
    SupervisorSpec,
};
use crate::actor::cell::{ActorControl, LifecycleWatcher};
use crate::actor::dock::DockKey;
use crate::actor::kept_mail::Kept;
use crate::actor::spawn::{SpawnOptions, start_actor};
use crate::actor::{Actor, ActorContext, ActorRef, ExitReason};
use crate::mailbox::{MailboxConfig, SystemSignal};
use crate::message::Message;
use crate::system::ActorSystem;
use crate::util::ActorId;

/// What a supervisor receives.
pub(crate) enum SupervisorMsg {
    /// A child instance exited.
    Exited { actor: ActorId, reason: ExitReason },
    /// A child instance failed its health checks.
    Unhealthy { actor: ActorId, failures: u32 },
    /// A restart could not start this child: apply the strategy again (and
    /// count it), like OTP's `try_again_restart`.
    RetryRestart { child: ChildId },
    /// A backoff delay is over: start these children (those still waiting).
    RestartDue { children: Vec<ChildId> },
    /// A request from a [`SupervisorRef`].
    Request(Request),
}

/// Requests from [`SupervisorRef`], each with its reply port.
pub(crate) enum Request {
    /// Boxed: a spec is large, and every message to a supervisor would
    /// otherwise be as large.
    StartChild(
        Box<ChildSpec>,
        oneshot::Sender<Result<ActorId, SupervisorError>>,
    ),
    TerminateChild(ChildId, oneshot::Sender<Result<(), SupervisorError>>),
    RestartChild(ChildId, oneshot::Sender<Result<ActorId, SupervisorError>>),
    DeleteChild(ChildId, oneshot::Sender<Result<(), SupervisorError>>),
    WhichChildren(oneshot::Sender<Vec<ChildInfo>>),
    Describe(oneshot::Sender<SupervisorInfo>),
    CountChildren(oneshot::Sender<ChildCounts>),
    Lookup(ChildId, oneshot::Sender<Option<Arc<dyn Any + Send + Sync>>>),
}

impl fmt::Debug for SupervisorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorMsg::Exited { actor, reason } => write!(f, "Exited({actor}, {reason})"),
            SupervisorMsg::Unhealthy { actor, failures } => {
                write!(f, "Unhealthy({actor}, {failures} failures)")
            }
            SupervisorMsg::RetryRestart { child } => write!(f, "RetryRestart({child})"),
            SupervisorMsg::RestartDue { children } => write!(f, "RestartDue({children:?})"),
            SupervisorMsg::Request(request) => {
                let name = match request {
                    Request::StartChild(spec, _) => return write!(f, "StartChild({})", spec.id),
                    Request::TerminateChild(..) => "TerminateChild",
                    Request::RestartChild(..) => "RestartChild",
                    Request::DeleteChild(..) => "DeleteChild",
                    Request::WhichChildren(_) => "WhichChildren",
                    Request::Describe(_) => "Describe",
                    Request::CountChildren(_) => "CountChildren",
                    Request::Lookup(..) => "Lookup",
                };
                f.write_str(name)
            }
        }
    }
}

impl Message for SupervisorMsg {
    const MESSAGE_TYPE: &'static str = "airssys.supervisor";
}

/// Starts supervisor instances (a nested supervisor is a child like any other).
pub(crate) struct SupervisorStart {
    spec: SupervisorSpec,
}

impl SupervisorStart {
    pub(crate) fn new(spec: SupervisorSpec) -> Self {
        Self { spec }
    }
}

impl ChildStart for SupervisorStart {
    fn start<'a>(
        &'a self,
        system: &'a ActorSystem,
        name: Arc<str>,
        watcher: Arc<dyn LifecycleWatcher>,
        _recycled: Option<DockKey>,
    ) -> BoxFuture<'a, Result<StartedChild, ExitReason>> {
        Box::pin(async move {
            let name = self.spec.name.clone().unwrap_or(name);
            let supervisor =
                start_supervisor(system, self.spec.clone(), name, Some(watcher)).await?;
            Ok(StartedChild {
                control: supervisor.actor.control(),
                handle: supervisor.actor.into_any(),
                probe: None,
                dock: None,
            })
        })
    }
}

/// Starts a supervisor actor and waits until it has started its children
/// (in its `pre_start`, run in the caller's task). `watcher` is its parent
/// supervisor's; a root supervisor has none. On failure, the exit reason of
/// a supervisor that never ran.
pub(crate) async fn start_supervisor(
    system: &ActorSystem,
    spec: SupervisorSpec,
    name: Arc<str>,
    watcher: Option<Arc<dyn LifecycleWatcher>>,
) -> Result<SupervisorRef, ExitReason> {
    let supervisor = Supervisor {
        strategy: spec.strategy,
        intensity: RestartIntensity::new(spec.max_restarts, spec.max_restart_period),
        max_restart_period: spec.max_restart_period,
        initial: spec.children,
        children: Vec::new(),
        events: EventSink {
            bus: system.supervision_bus(),
            supervisor: ActorId::from_raw(0),
        },
        root: watcher.is_none(),
        counted: false,
        stopping: false,
        recycling: false,
        restarts: 0,
    };
    let options = SpawnOptions {
        watcher,
        ..SpawnOptions::new(Some(name), MailboxConfig::unbounded())
    };
    let root = options.watcher.is_none();
    let actor = start_actor(system, options, supervisor).await?;
    let supervisor = SupervisorRef { actor };
    if root {
        system.add_root_supervisor(supervisor.clone());
    }
    Ok(supervisor)
}

/// Tells a supervisor when an instance of one child exits, and holds what
/// an instance that keeps its mailbox left queued until the next instance
/// starts. One per child, shared by its successive instances (each exit
/// names its instance).
pub(crate) struct ChildWatcher {
    supervisor: ActorRef<SupervisorMsg>,
    /// The instance the supervisor stopped itself and will not need to
    /// hear about (raw id; 0: none).
    detached: AtomicU64,
    /// Kept mail for the child's next instance, oldest first.
    kept: Mutex<Vec<Box<dyn Kept>>>,
    /// The supervisor is gone: kept mail is dead-lettered at once.
    closed: AtomicBool,
}

impl ChildWatcher {
    fn new(supervisor: ActorRef<SupervisorMsg>) -> Arc<Self> {
        Arc::new(Self {
            supervisor,
            detached: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// No instance of this child will start again: what it keeps now, or
    /// is left later, is dead-lettered.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.abandon_kept();
    }

    /// Dead-letters what is kept as waiting for a restart that will not
    /// happen (`NotRestarted`).
    fn abandon_kept(&self) {
        for mail in self.take_kept() {
            mail.not_restarted();
        }
    }

    /// Dead-letters what is kept as its instance's exit says.
    fn discard_kept(&self) {
        drop(self.take_kept());
    }

    /// Stops listening to the exit of `actor` (the supervisor stopped it
    /// itself and handles that).
    fn detach(&self, actor: ActorId) {
        self.detached.store(actor.as_u64(), Ordering::Release);
    }
}

impl LifecycleWatcher for ChildWatcher {
    fn exited(&self, actor: ActorId, reason: &ExitReason) {
        if self.detached.load(Ordering::Acquire) == actor.as_u64() {
            return;
        }
        let told = self.supervisor.try_tell(SupervisorMsg::Exited {
            actor,
            reason: reason.clone(),
        });
        if told.is_err() {
            // No supervisor to restart it: nothing will take the mail.
            self.close();
        }
    }

    fn keep(&self, mail: Box<dyn Kept>) {
        self.kept.lock().push(mail);
        // Checked after the push: a `close` in between takes it.
        if self.closed.load(Ordering::SeqCst) {
            self.discard_kept();
        }
    }

    fn take_kept(&self) -> Vec<Box<dyn Kept>> {
        std::mem::take(&mut *self.kept.lock())
    }
}

/// A running instance of a child.
struct Running {
    actor: ActorId,
    control: Arc<dyn ActorControl>,
    handle: Arc<dyn Any + Send + Sync>,
    watcher: Arc<ChildWatcher>,
    monitor: Option<AbortHandle>,
    /// Its task, reusable for the replacement (workers only).
    dock: Option<DockKey>,
}

impl Running {
    /// Stops listening to this instance (its exit is handled by the
    /// caller) and hands over the key to its task.
    fn detach(&mut self) -> Option<DockKey> {
        self.watcher.detach(self.actor);
        if let Some(monitor) = &self.monitor {
            monitor.abort();
        }
        self.dock.take()
    }
}

struct Child {
    spec: ChildSpec,
    running: Option<Running>,
    /// Waiting for a delayed (backoff) or retried restart.
    pending: bool,
    /// The task of the instance that just exited, for an immediate restart
    /// to reuse; dropped (letting the task end) once the event that
    /// stopped the instance is handled.
    recycled: Option<DockKey>,
    /// Hears of its instances' exits; made at the first start.
    watcher: Option<Arc<ChildWatcher>>,
    /// Instances started by a restart so far.
    restarts: u32,
}

impl Child {
    /// A child not started yet.
    fn new(spec: ChildSpec) -> Self {
        Self {
            spec,
            running: None,
            pending: false,
            recycled: None,
            watcher: None,
            restarts: 0,
        }
    }

    fn status(&self) -> ChildStatus {
        match (&self.running, self.pending) {
            (Some(_), _) => ChildStatus::Running,
            (None, true) => ChildStatus::Restarting,
            (None, false) => ChildStatus::Stopped,
        }
    }

    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            actor: self.running.as_ref().map(|r| r.actor),
            kind: self.spec.kind,
            restart: self.spec.options.restart,
            status: self.status(),
            restarts: self.restarts,
        }
    }
}

/// Whether a start is a first start or a restart (for the event).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StartKind {
    First,
    Restart,
}

pub(crate) struct Supervisor {
    strategy: SupervisionStrategy,
    intensity: RestartIntensity,
    max_restart_period: Duration,
    /// The children from the spec, moved into `children` as they start.
    initial: Vec<ChildSpec>,
    /// In start order.
    children: Vec<Child>,
    events: EventSink,
    /// Started by the system rather than by a parent supervisor.
    root: bool,
    /// Counted in the system's live supervisors.
    counted: bool,
    /// Stopping: no more restarts.
    stopping: bool,
    /// Some child keeps the task of an instance that just stopped.
    recycling: bool,
    /// Children started by a restart so far.
    restarts: u64,
}

impl Actor for Supervisor {
    type Message = SupervisorMsg;
    type Error = SupervisorError;

    async fn pre_start(
        &mut self,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) -> Result<(), SupervisorError> {
        self.events.supervisor = ctx.id();
        self.events.bus.supervisor_started();
        self.counted = true;
        let specs = std::mem::take(&mut self.initial);
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|earlier| earlier.id == spec.id) {
                self.stop_all().await;
                return Err(SupervisorError::DuplicateChild {
                    child: spec.id.clone(),
                });
            }
        }
        for spec in specs {
            self.children.push(Child::new(spec));
            let at = self.children.len() - 1;
            if let Err(reason) = self.start_at(at, StartKind::First, ctx).await {
                // As OTP: a supervisor whose child cannot start does not
                // start; the children already running are stopped.
                let child = self.children[at].spec.id.clone();
                self.stop_all().await;
                return Err(SupervisorError::StartFailed { child, reason });
            }
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        message: SupervisorMsg,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) -> Result<(), SupervisorError> {
        match message {
            SupervisorMsg::Exited { actor, reason } => self.child_exited(actor, reason, ctx).await,
            SupervisorMsg::Unhealthy { actor, failures } => {
                self.child_unhealthy(actor, failures, ctx).await;
            }
            SupervisorMsg::RetryRestart { child } => {
                // Only if it is still waiting: a terminate_child meanwhile
                // cancels the retry.
                if let Some(at) = self.index_of(&child)
                    && self.children[at].pending
                {
                    self.restart(at, ctx).await;
                }
            }
            SupervisorMsg::RestartDue { children } => {
                // Only those still waiting: a terminate_child or delete_child
                // meanwhile cancels their restart.
                let waiting: Vec<usize> = children
                    .iter()
                    .filter_map(|id| self.index_of(id))
                    .filter(|&at| self.children[at].pending)
                    .collect();
                self.start_group(waiting.into_iter(), ctx).await;
            }
            SupervisorMsg::Request(request) => self.serve(request, ctx).await,
        }
        self.release_recycled();
        Ok(())
    }

    async fn post_stop(
        &mut self,
        _ctx: &ActorContext<SupervisorMsg>,
    ) -> Result<(), SupervisorError> {
        self.stop_all().await;
        Ok(())
    }
}

impl Supervisor {
    fn index_of(&self, id: &ChildId) -> Option<usize> {
        self.children.iter().position(|child| child.spec.id == *id)
    }

    /// Keeps the task of `running`, the exited instance of the child at
    /// `at`, for a restart within the event being handled (see
    /// [`crate::actor::dock`]).
    fn keep_task(&mut self, at: usize, running: &Running, dock: Option<DockKey>) {
        if let Some(mut key) = dock {
            key.take_task_from(&*running.control);
            self.children[at].recycled = Some(key);
            self.recycling = true;
        }
    }

    /// Dead-letters the mail the child at `at` kept for a restart that will
    /// not happen now.
    fn abandon_kept(&self, at: usize) {
        if let Some(watcher) = &self.children[at].watcher {
            watcher.abandon_kept();
        }
    }

    /// Dead-letters the mail the child at `at` kept as its instance's exit
    /// says (it will not be restarted after that exit).
    fn drop_kept(&self, at: usize) {
        if let Some(watcher) = &self.children[at].watcher {
            watcher.discard_kept();
        }
    }

    /// Stops the child at `at` for good (its kept mail, if any, with it).
    async fn stop_for_good(&mut self, at: usize) {
        self.abandon_kept(at);
        self.stop_at(at).await;
        self.drop_kept(at);
    }

    /// Lets every kept task that no restart used end.
    fn release_recycled(&mut self) {
        if std::mem::take(&mut self.recycling) {
            for child in &mut self.children {
                child.recycled = None;
            }
        }
    }

    /// Where the child whose running instance is `actor` sits.
    fn running_index(&self, actor: ActorId) -> Option<usize> {
        self.children
            .iter()
            .position(|child| child.running.as_ref().is_some_and(|r| r.actor == actor))
    }

    fn publish(&self, event: SupervisionEvent) {
        self.events.bus.publish(event);
    }

    /// Publishes that the instance `actor` of the child at `at` exited.
    fn publish_exit(&self, at: usize, actor: ActorId, reason: ExitReason) {
        self.publish(SupervisionEvent::ChildExited {
            supervisor: self.events.supervisor,
            child: self.children[at].spec.id.clone(),
            actor,
            reason,
        });
    }

    /// Starts the child at `at` and waits for its `pre_start`.
    async fn start_at(
        &mut self,
        at: usize,
        kind: StartKind,
        ctx: &ActorContext<SupervisorMsg>,
    ) -> Result<ActorId, ExitReason> {
        let child = &mut self.children[at];
        let recycled = child.recycled.take();
        let watcher = child
            .watcher
            .get_or_insert_with(|| ChildWatcher::new(ctx.myself().clone()))
            .clone();
        let child = &self.children[at];
        let start = child
            .spec
            .start
            .start(
                ctx.system(),
                child.spec.id.shared(),
                watcher.clone(),
                recycled,
            )
            .await;
        let instance = match start {
            Ok(instance) => instance,
            Err(reason) => {
                self.start_failed(at, &reason);
                return Err(reason);
            }
        };
        let child = &mut self.children[at];
        let actor = instance.control.id();
        let monitor = match (child.spec.options.health, instance.probe) {
            (Some(check), Some(probe)) => Some(spawn_monitor(
                ctx.system().runtime(),
                check,
                probe,
                ctx.myself().clone(),
                actor,
            )),
            _ => None,
        };
        child.running = Some(Running {
            actor,
            control: instance.control,
            handle: instance.handle,
            watcher,
            monitor,
            dock: instance.dock,
        });
        child.pending = false;
        if kind == StartKind::Restart {
            child.restarts = child.restarts.saturating_add(1);
            self.restarts = self.restarts.saturating_add(1);
        }
        let child = child.spec.id.clone();
        let supervisor = self.events.supervisor;
        self.publish(match kind {
            StartKind::First => SupervisionEvent::ChildStarted {
                supervisor,
                child,
                actor,
            },
            StartKind::Restart => SupervisionEvent::ChildRestarted {
                supervisor,
                child,
                actor,
            },
        });
        Ok(actor)
    }

    fn start_failed(&self, at: usize, reason: &ExitReason) {
        self.publish(SupervisionEvent::ChildStartFailed {
            supervisor: self.events.supervisor,
            child: self.children[at].spec.id.clone(),
            reason: reason.clone(),
        });
    }

    /// Stops the child at `at` by its shutdown spec (if it is running) and
    /// reports the exit.
    async fn stop_at(&mut self, at: usize) {
        let Some(mut running) = self.children[at].running.take() else {
            return;
        };
        let dock = running.detach();
        let reason = shutdown(&*running.control, self.children[at].spec.options.shutdown).await;
        self.keep_task(at, &running, dock);
        self.publish_exit(at, running.actor, reason);
    }

    /// Stops every child, last started first.
    async fn stop_all(&mut self) {
        self.stopping = true;
        for at in (0..self.children.len()).rev() {
            self.children[at].pending = false;
            self.stop_for_good(at).await;
        }
    }

    async fn child_exited(
        &mut self,
        actor: ActorId,
        reason: ExitReason,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) {
        let Some(at) = self.running_index(actor) else {
            return; // an instance this supervisor already stopped or replaced
        };
        if let Some(mut running) = self.children[at].running.take() {
            let dock = running.detach();
            self.keep_task(at, &running, dock);
        }
        let restarts = self.restarts_after(at, &reason);
        self.publish_exit(at, actor, reason);
        self.handle_exit(at, restarts, ctx).await;
    }

    async fn child_unhealthy(
        &mut self,
        actor: ActorId,
        failures: u32,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) {
        let Some(at) = self.running_index(actor) else {
            return;
        };
        self.publish(SupervisionEvent::ChildUnhealthy {
            supervisor: self.events.supervisor,
            child: self.children[at].spec.id.clone(),
            actor,
            failures,
        });
        self.stop_at(at).await;
        // Stopped for failing: an abnormal exit, whatever the instance said.
        let reason = ExitReason::Error(format!("failed {failures} health checks in a row"));
        let restarts = self.restarts_after(at, &reason);
        self.handle_exit(at, restarts, ctx).await;
    }

    /// Whether the child at `at` is restarted after exiting with `reason`
    /// (its restart type's judgement).
    fn restarts_after(&self, at: usize, reason: &ExitReason) -> bool {
        self.children[at]
            .spec
            .options
            .restart
            .restarts_after(reason)
    }

    /// Acts on an exit after the child's restart type has judged it:
    /// restart it, or forget it if it is temporary.
    async fn handle_exit(
        &mut self,
        at: usize,
        restarts: bool,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) {
        if restarts {
            self.restart(at, ctx).await;
            return;
        }
        self.drop_kept(at);
        if self.children[at].spec.options.restart == RestartType::Temporary {
            self.children.remove(at);
        }
    }

    /// Restarts the child at `at` by the strategy, after counting the restart.
    async fn restart(&mut self, at: usize, ctx: &mut ActorContext<SupervisorMsg>) {
        if self.stopping || ctx.system().is_shutting_down() {
            return;
        }
        if !self.intensity.add_restart(tokio::time::Instant::now()) {
            return self.give_up(ctx).await;
        }
        let backoff = self.children[at].spec.options.backoff;
        let affected = self.strategy.affected(at, self.children.len());
        for other in affected.clone().rev() {
            if other != at {
                self.stop_at(other).await;
            }
        }
        // Temporary children are never restarted: a group restart removes
        // them (as OTP does). The rest of the group starts again in order.
        let mut end = affected.end;
        for i in affected.clone().rev() {
            if self.children[i].spec.options.restart == RestartType::Temporary {
                self.drop_kept(i);
                self.children.remove(i);
                end -= 1;
            }
        }
        let group = affected.start..end;
        match backoff {
            Some(backoff) => {
                let waiting = &mut self.children[group];
                for child in waiting.iter_mut() {
                    child.pending = true;
                }
                let children = waiting.iter().map(|child| child.spec.id.clone()).collect();
                let delay = backoff.delay(self.intensity.recent());
                ctx.send_after(delay, SupervisorMsg::RestartDue { children });
            }
            None => self.start_group(group, ctx).await,
        }
    }

    /// Starts, in order, the children at `group` that are not running. If
    /// one fails to start, it and the rest wait and the restart is tried
    /// again through the strategy (counted again), like OTP's
    /// `try_again_restart`.
    async fn start_group(
        &mut self,
        group: impl Iterator<Item = usize> + Send,
        ctx: &mut ActorContext<SupervisorMsg>,
    ) {
        let mut group = group;
        while let Some(at) = group.next() {
            if self.children[at].running.is_some() {
                continue;
            }
            if self.start_at(at, StartKind::Restart, ctx).await.is_err() {
                self.children[at].pending = true;
                for waiting in group {
                    self.children[waiting].pending = true;
                }
                let child = self.children[at].spec.id.clone();
                let _ = ctx.myself().try_tell(SupervisorMsg::RetryRestart { child });
                return;
            }
        }
    }

    /// Restart intensity exceeded: stop every child (last started first)
    /// and exit with reason `Shutdown`, as OTP does.
    async fn give_up(&mut self, ctx: &mut ActorContext<SupervisorMsg>) {
        self.publish(SupervisionEvent::SupervisorGaveUp {
            supervisor: self.events.supervisor,
            restarts: self.intensity.recent(),
            period: self.max_restart_period,
        });
        self.stop_all().await;
        if self.root {
            ctx.system().record_root_failure(
                self.events.supervisor,
                ctx.myself().name().map(str::to_owned),
                self.intensity.recent(),
                self.max_restart_period,
            );
        }
        ctx.myself().shutdown();
    }

    async fn serve(&mut self, request: Request, ctx: &mut ActorContext<SupervisorMsg>) {
        match request {
            Request::StartChild(spec, reply) => {
                let _ = reply.send(self.start_child(*spec, ctx).await);
            }
            Request::TerminateChild(id, reply) => {
                let _ = reply.send(self.terminate_child(&id).await);
            }
            Request::RestartChild(id, reply) => {
                let _ = reply.send(self.restart_child(id, ctx).await);
            }
            Request::DeleteChild(id, reply) => {
                let _ = reply.send(self.delete_child(id));
            }
            Request::WhichChildren(reply) => {
                let _ = reply.send(self.children.iter().map(Child::info).collect());
            }
            Request::CountChildren(reply) => {
                let _ = reply.send(self.count_children());
            }
            Request::Describe(reply) => {
                let _ = reply.send(SupervisorInfo {
                    name: ctx.myself().name().map(str::to_owned),
                    strategy: self.strategy,
                    max_restarts: self.intensity.max_restarts(),
                    period: self.max_restart_period,
                    restarts: self.restarts,
                    children: self.count_children(),
                });
            }
            Request::Lookup(id, reply) => {
                let handle = self
                    .index_of(&id)
                    .and_then(|at| self.children[at].running.as_ref())
                    .map(|running| running.handle.clone());
                let _ = reply.send(handle);
            }
        }
    }

    async fn start_child(
        &mut self,
        spec: ChildSpec,
        ctx: &ActorContext<SupervisorMsg>,
    ) -> Result<ActorId, SupervisorError> {
        if self.index_of(&spec.id).is_some() {
            return Err(SupervisorError::DuplicateChild { child: spec.id });
        }
        let id = spec.id.clone();
        self.children.push(Child::new(spec));
        let at = self.children.len() - 1;
        match self.start_at(at, StartKind::First, ctx).await {
            Ok(actor) => Ok(actor),
            Err(reason) => {
                self.children.remove(at);
                Err(SupervisorError::StartFailed { child: id, reason })
            }
        }
    }

    async fn terminate_child(&mut self, id: &ChildId) -> Result<(), SupervisorError> {
        let at = self
            .index_of(id)
            .ok_or_else(|| SupervisorError::UnknownChild { child: id.clone() })?;
        self.children[at].pending = false;
        self.stop_for_good(at).await;
        if self.children[at].spec.options.restart == RestartType::Temporary {
            self.children.remove(at);
        }
        Ok(())
    }

    async fn restart_child(
        &mut self,
        id: ChildId,
        ctx: &ActorContext<SupervisorMsg>,
    ) -> Result<ActorId, SupervisorError> {
        let at = self
            .index_of(&id)
            .ok_or_else(|| SupervisorError::UnknownChild { child: id.clone() })?;
        if self.children[at].running.is_some() {
            return Err(SupervisorError::ChildRunning { child: id });
        }
        self.start_at(at, StartKind::Restart, ctx)
            .await
            .map_err(|reason| SupervisorError::StartFailed { child: id, reason })
    }

    fn delete_child(&mut self, id: ChildId) -> Result<(), SupervisorError> {
        let at = self
            .index_of(&id)
            .ok_or_else(|| SupervisorError::UnknownChild { child: id.clone() })?;
        if self.children[at].running.is_some() {
            return Err(SupervisorError::ChildRunning { child: id });
        }
        self.abandon_kept(at);
        self.children.remove(at);
        Ok(())
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.children.len(),
            ..ChildCounts::default()
        };
        for child in &self.children {
            if child.running.is_some() {
                counts.active += 1;
            }
            match child.spec.kind {
                ChildKind::Worker => counts.workers += 1,
                ChildKind::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}

impl Drop for Supervisor {
    /// A supervisor that goes without `post_stop` (killed, or its task
    /// dropped) takes its children with it, like a linked OTP supervisor.
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            if let Some(watcher) = &child.watcher {
                watcher.close();
            }
            if let Some(mut running) = child.running.take() {
                // The key goes first: the killed instance's task must not
                // wait for a replacement.
                drop(running.detach());
                running.control.kill();
                self.events.bus.publish(SupervisionEvent::ChildExited {
                    supervisor: self.events.supervisor,
                    child: child.spec.id.clone(),
                    actor: running.actor,
                    reason: ExitReason::Killed,
                });
            }
        }
        if self.counted {
            self.events.bus.supervisor_stopped();
        }
    }
}

/// Stops one instance by a shutdown spec and returns how it exited.
async fn shutdown(control: &dyn ActorControl, policy: ChildShutdown) -> ExitReason {
    match policy {
        ChildShutdown::BrutalKill => control.kill(),
        ChildShutdown::Infinity => {
            control.signal(SystemSignal::Shutdown);
        }
        ChildShutdown::Timeout(grace) => {
            control.signal(SystemSignal::Shutdown);
            if let Ok(reason) = tokio::time::timeout(grace, control.wait_for_exit()).await {
                return reason;
            }
            control.kill();
        }
    }
    control.wait_for_exit().await
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::system::SystemConfig;

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

    /// Stands in for a supervisor: never gets past `pre_start`, so whatever
    /// is sent to it stays countable in its mailbox.
    struct Parked;

    impl Actor for Parked {
        type Message = SupervisorMsg;
        type Error = Infallible;
        async fn pre_start(
            &mut self,
            _: &mut ActorContext<SupervisorMsg>,
        ) -> Result<(), Infallible> {
            std::future::pending().await
        }
        async fn handle_message(
            &mut self,
            _: SupervisorMsg,
            _: &mut ActorContext<SupervisorMsg>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }

    fn system() -> ActorSystem {
        ActorSystem::new(SystemConfig::default()).unwrap()
    }

    #[tokio::test]
    async fn shutdown_policies_end_in_the_expected_reason() {
        let system = system();
        let cases = [
            (
                ChildShutdown::Timeout(Duration::from_secs(30)),
                ExitReason::Shutdown,
            ),
            (ChildShutdown::Infinity, ExitReason::Shutdown),
            (ChildShutdown::BrutalKill, ExitReason::Killed),
        ];
        for (policy, expected) in cases {
            let actor = system.spawn(Idle).unwrap();
            assert_eq!(
                shutdown(&*actor.control(), policy).await,
                expected,
                "{policy:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_watcher_reports_every_instance_but_the_one_detached() {
        let system = system();
        let supervisor = system.spawn(Parked).unwrap();
        let (stopped, replacement) = (ActorId::next(), ActorId::next());

        let watcher = ChildWatcher::new(supervisor.clone());
        watcher.detach(stopped);
        watcher.exited(stopped, &ExitReason::Killed);
        assert_eq!(
            supervisor.mailbox_len(),
            0,
            "the detached instance is not reported"
        );

        watcher.exited(replacement, &ExitReason::Killed);
        assert_eq!(
            supervisor.mailbox_len(),
            1,
            "a later instance of the same child is reported"
        );
    }
}
