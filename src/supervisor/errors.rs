//! [`SupervisorError`]: what can go wrong when starting or managing a
//! supervision tree.

use super::ChildId;
use crate::actor::ExitReason;
use crate::util::ActorId;

/// An error from a supervisor or a request to one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The supervisor has exited; requests to it cannot be answered.
    #[error("supervisor {supervisor} is not running; start a new tree to supervise again")]
    NotRunning {
        /// The supervisor's actor id.
        supervisor: ActorId,
    },
    /// A child with this id already exists in the supervisor.
    #[error("a child with id '{child}' already exists; child ids are unique per supervisor")]
    DuplicateChild {
        /// The id.
        child: ChildId,
    },
    /// No child with this id.
    #[error("no child with id '{child}' in this supervisor (see which_children)")]
    UnknownChild {
        /// The id asked for.
        child: ChildId,
    },
    /// The operation needs the child stopped first.
    #[error("child '{child}' is running; terminate_child it first")]
    ChildRunning {
        /// The id.
        child: ChildId,
    },
    /// A child could not be started: its factory panicked (the reason then
    /// says `factory panicked: …`), its `pre_start` failed, or the system
    /// is shutting down.
    #[error("child '{child}' failed to start: {reason}")]
    StartFailed {
        /// The child that failed.
        child: ChildId,
        /// The exit reason of the failed start.
        reason: ExitReason,
    },
    /// A root supervisor ([`ActorSystem::start_supervisor`](crate::system::ActorSystem::start_supervisor))
    /// could not start: one of its children failed to start (the reason
    /// says which and why; the ones already started were stopped), or the
    /// system is shutting down.
    #[error("supervisor '{supervisor}' could not start: {reason}")]
    SupervisorStartFailed {
        /// The supervisor's name.
        supervisor: String,
        /// The exit reason of the failed start.
        reason: ExitReason,
    },
}
