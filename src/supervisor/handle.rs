//! [`SupervisorRef`]: the handle to a running supervisor, with OTP's child
//! management calls (`start_child`, `terminate_child`, `restart_child`,
//! `delete_child`, `which_children`, `count_children`) and typed lookups of
//! the current instance of a child.

use std::any::Any;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::tree::{Request, SupervisorMsg};
use super::{ChildId, ChildKind, ChildSpec, RestartType, SupervisionStrategy, SupervisorError};
use crate::actor::{ActorRef, ExitReason};
use crate::message::Message;
use crate::util::ActorId;

/// A running supervisor. Cheap to clone.
///
/// Requests are messages to the supervisor, answered in turn with child
/// exits, so what they report is consistent with the supervisor's own view.
/// A restarted child is a new actor with a new [`ActorRef`]; look up the
/// current one with [`child`](Self::child).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorRef {
    pub(crate) actor: ActorRef<SupervisorMsg>,
}

/// What [`SupervisorRef::which_children`] reports about one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// Its id.
    pub id: ChildId,
    /// The running instance, if any.
    pub actor: Option<ActorId>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: RestartType,
    /// Running, waiting for a restart, or stopped.
    pub status: ChildStatus,
    /// Instances started by a restart so far.
    pub restarts: u32,
}

/// What [`SupervisorRef::describe`] reports about a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorInfo {
    /// Its name, if it has one.
    pub name: Option<String>,
    /// How a failure affects its other children.
    pub strategy: SupervisionStrategy,
    /// Restarts allowed within [`period`](Self::period) (its intensity).
    pub max_restarts: u32,
    /// The intensity's window.
    pub period: std::time::Duration,
    /// Children started by a restart so far.
    pub restarts: u64,
    /// Its children, counted as [`count_children`](SupervisorRef::count_children) does.
    pub children: ChildCounts,
}

/// Where a child is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildStatus {
    /// An instance is running.
    Running,
    /// Waiting for a delayed or retried restart.
    Restarting,
    /// Not running (terminated, or exited and not restarted); its spec is kept.
    Stopped,
}

/// What [`SupervisorRef::count_children`] reports (OTP's counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Child specs held, running or not.
    pub specs: usize,
    /// Children with a running instance.
    pub active: usize,
    /// Specs of nested supervisors.
    pub supervisors: usize,
    /// Specs of workers.
    pub workers: usize,
}

impl SupervisorRef {
    pub(crate) fn from_actor(actor: ActorRef<SupervisorMsg>) -> Self {
        Self { actor }
    }

    /// The supervisor's actor id (the `supervisor` field of its events).
    pub fn id(&self) -> ActorId {
        self.actor.id()
    }

    /// Its name, if its spec gave one (or its child id when nested).
    pub fn name(&self) -> Option<&str> {
        self.actor.name()
    }

    /// Whether it is still running.
    pub fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    /// Its exit reason once it has exited (`Shutdown` when it stopped its
    /// children and went, including after exceeding its restart intensity).
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.actor.exit_reason()
    }

    /// Waits until it has exited and returns why.
    pub async fn wait_for_exit(&self) -> ExitReason {
        self.actor.wait_for_exit().await
    }

    /// Stops the supervisor: its children are stopped in reverse start
    /// order, each by its shutdown spec; then it exits with `Shutdown`.
    /// Returns its exit reason.
    pub async fn shutdown(&self) -> ExitReason {
        self.actor.shutdown();
        self.actor.wait_for_exit().await
    }

    /// Kills the supervisor without a graceful stop; its children are killed too.
    pub fn kill(&self) {
        self.actor.kill();
    }

    /// Adds a child and starts it (after the existing ones). Fails if the id
    /// is taken or the child cannot start; a child that fails to start is
    /// not kept.
    pub async fn start_child(
        &self,
        spec: impl Into<ChildSpec>,
    ) -> Result<ActorId, SupervisorError> {
        let spec = spec.into();
        self.request(|reply| Request::StartChild(Box::new(spec), reply))
            .await?
    }

    /// Stops a child by its shutdown spec. Its spec is kept (except for a
    /// temporary child) so it can be restarted or deleted.
    pub async fn terminate_child(&self, id: impl Into<ChildId>) -> Result<(), SupervisorError> {
        let id = id.into();
        self.request(|reply| Request::TerminateChild(id, reply))
            .await?
    }

    /// Starts a stopped child again from its spec.
    pub async fn restart_child(&self, id: impl Into<ChildId>) -> Result<ActorId, SupervisorError> {
        let id = id.into();
        self.request(|reply| Request::RestartChild(id, reply))
            .await?
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: impl Into<ChildId>) -> Result<(), SupervisorError> {
        let id = id.into();
        self.request(|reply| Request::DeleteChild(id, reply))
            .await?
    }

    /// Every child, in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.request(Request::WhichChildren).await
    }

    /// How many children of each kind.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        self.request(Request::CountChildren).await
    }

    /// Its strategy, intensity, restarts so far and child counts.
    pub async fn describe(&self) -> Result<SupervisorInfo, SupervisorError> {
        self.request(Request::Describe).await
    }

    /// The current instance of a worker child taking messages `M`; `None`
    /// if no such child is running (or it takes another message type).
    pub async fn child<M: Message>(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<Option<ActorRef<M>>, SupervisorError> {
        Ok(self.lookup(id.into()).await?.and_then(ActorRef::from_any))
    }

    /// The current instance of a nested supervisor child.
    pub async fn child_supervisor(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<Option<SupervisorRef>, SupervisorError> {
        Ok(self
            .lookup(id.into())
            .await?
            .and_then(ActorRef::from_any)
            .map(|actor| SupervisorRef { actor }))
    }

    async fn lookup(
        &self,
        id: ChildId,
    ) -> Result<Option<Arc<dyn Any + Send + Sync>>, SupervisorError> {
        self.request(|reply| Request::Lookup(id, reply)).await
    }

    async fn request<R>(
        &self,
        request: impl FnOnce(oneshot::Sender<R>) -> Request,
    ) -> Result<R, SupervisorError> {
        let not_running = || SupervisorError::NotRunning {
            supervisor: self.id(),
        };
        let (reply, answer) = oneshot::channel();
        self.actor
            .tell(SupervisorMsg::Request(request(reply)))
            .await
            .map_err(|_| not_running())?;
        answer.await.map_err(|_| not_running())
    }
}
