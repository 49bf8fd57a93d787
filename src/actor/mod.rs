//! Actors: the [`Actor`] trait, the [`ActorContext`] a handler runs with,
//! [`ActorRef`] for sending, the lifecycle types, the task that runs an
//! actor, and the tasks that send to it ([`TaskHandle`]: timers, pipes,
//! streams).
//!
//! An actor is one tokio task that owns its state and handles one message at
//! a time. The loop is generic over the actor type: static dispatch, no
//! boxing, no per-message allocation.

pub(crate) mod bonds;
pub mod cell;
pub mod context;
pub(crate) mod dock;
pub mod error;
pub mod handle;
pub(crate) mod kept_mail;
pub mod lifecycle;
pub mod link;
pub(crate) mod running;
pub mod spawn;
pub mod stream;
pub mod tell;
pub mod traits;
pub mod watch;

pub use context::{ActorContext, TaskHandle};
pub use error::ActorError;
pub use handle::{ActorHandle, ActorRef, ReplyTo};
pub use lifecycle::{ActorState, ExitReason};
pub use link::ExitSignal;
pub use tell::Telling;
pub use traits::{Actor, ErrorAction};
pub use watch::{Down, DownReason, WatchRef};
