//! Watches (Erlang's monitors, Akka's `watch`): any actor can watch any
//! other, whatever its message type, and gets one message, made from a
//! [`Down`], when it exits.
//!
//! A watch delivers exactly once: when the watched actor exits, or at once
//! (with [`DownReason::NoProc`]) if it had already exited when the watch
//! was set. After [`unwatch`](ActorContext::unwatch) it delivers nothing,
//! and a watcher that exits first leaves nothing behind in the watched
//! actor. A supervised child's restart is a new actor (a new id, as in
//! OTP), so the watch of the old instance fires. The `Down` message obeys
//! the watcher's mailbox like any other (a full `Block` mailbox is waited
//! on; a dropping mailbox may drop it, as a dead letter).
//!
//! ```
//! use airssys_rt::actor::{Down, DownReason};
//! use airssys_rt::prelude::*;
//!
//! #[derive(Debug, Message)]
//! enum Msg { Watch(ActorRef<u64>, ReplyTo<()>), Down(Down) }
//!
//! struct Watcher(tokio::sync::mpsc::UnboundedSender<Down>);
//! impl Actor for Watcher {
//!     type Message = Msg;
//!     type Error = std::convert::Infallible;
//!     async fn handle_message(&mut self, msg: Msg, ctx: &mut ActorContext<Msg>) -> Result<(), Self::Error> {
//!         match msg {
//!             Msg::Watch(worker, done) => {
//!                 ctx.watch(&worker, Msg::Down);
//!                 let _ = done.reply(());
//!             }
//!             Msg::Down(down) => drop(self.0.send(down)),
//!         }
//!         Ok(())
//!     }
//! }
//! # struct Worker;
//! # impl Actor for Worker {
//! #     type Message = u64;
//! #     type Error = std::convert::Infallible;
//! #     async fn handle_message(&mut self, _: u64, _: &mut ActorContext<u64>) -> Result<(), Self::Error> { Ok(()) }
//! # }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::new(SystemConfig::default())?;
//! let (downs, mut seen) = tokio::sync::mpsc::unbounded_channel();
//! let watcher = system.spawn(Watcher(downs))?;
//! let worker = system.spawn(Worker)?;
//! let timeout = std::time::Duration::from_secs(5);
//! watcher.ask(|done| Msg::Watch(worker.clone(), done), timeout).await?;
//! worker.kill();
//! let down = seen.recv().await.ok_or("no Down")?;
//! assert_eq!((down.actor, down.reason), (worker.id(), DownReason::Exited(ExitReason::Killed)));
//! # Ok(()) }
//! ```

use std::fmt;

use super::bonds::Bonded;
use super::{ActorContext, ActorRef, ExitReason};
use crate::message::Message;
use crate::system::LinkError;
use crate::util::ActorId;

/// A watched actor went down: the message a watcher's `into_message` is
/// given (Erlang's `{'DOWN', Ref, process, Pid, Reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// The watched actor.
    pub actor: ActorId,
    /// The watch that fired.
    pub watch: WatchRef,
    /// Why it went down.
    pub reason: DownReason,
}

/// Why a watched (or linked) actor is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// It exited, with this reason, while watched or linked.
    Exited(ExitReason),
    /// It had already exited when the watch or link was made (Erlang's
    /// `noproc`).
    NoProc,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Exited(reason) => write!(f, "exited: {reason}"),
            DownReason::NoProc => f.write_str("noproc: had already exited"),
        }
    }
}

/// One watch, as returned by `watch`: pass it to `unwatch` to remove it.
/// Also in the [`Down`] it delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchRef {
    id: u64,
    target: ActorId,
}

impl WatchRef {
    pub(crate) fn new(id: u64, target: ActorId) -> Self {
        Self { id, target }
    }

    pub(crate) fn id(self) -> u64 {
        self.id
    }

    /// The watched actor.
    pub fn target(self) -> ActorId {
        self.target
    }
}

impl<M: Message> ActorRef<M> {
    /// Makes this actor watch `target`: when `target` exits, this actor
    /// gets `into_message(down)`, once (at once, with
    /// [`DownReason::NoProc`], if `target` has already exited). From a
    /// handler, use [`ActorContext::watch`].
    ///
    /// Fails with [`LinkError::Stopped`] if this actor has stopped.
    pub fn watch<T: Message>(
        &self,
        target: &ActorRef<T>,
        into_message: impl FnOnce(Down) -> M + Send + 'static,
    ) -> Result<WatchRef, LinkError> {
        self.cell_arc()
            .watch(target.bonded(), Box::new(into_message))
    }

    /// Removes a watch this actor set. Returns `true` if its `Down` had not
    /// been delivered yet and now never will be; `false` if it was
    /// delivered already (it may still be queued) or is not this actor's.
    pub fn unwatch(&self, watch: WatchRef) -> bool {
        self.cell().unwatch(watch)
    }

    /// This actor's bonds table, type-erased.
    pub(crate) fn bonded(&self) -> std::sync::Arc<dyn Bonded> {
        self.cell_arc().clone()
    }
}

impl<M: Message> ActorContext<M> {
    /// Watches `target`, an actor of any message type: when it exits, this
    /// actor gets `into_message(down)`, exactly once — at once, with
    /// [`DownReason::NoProc`], if it has already exited. See the
    /// [module docs](super::watch). (From `post_stop`, when this actor
    /// takes no more messages, nothing is watched.)
    pub fn watch<T: Message>(
        &mut self,
        target: &ActorRef<T>,
        into_message: impl FnOnce(Down) -> M + Send + 'static,
    ) -> WatchRef {
        match self.myself().watch(target, into_message) {
            Ok(watch) => watch,
            // A running handler's actor has not exited: unreachable, and
            // harmless if it were (a watch of nothing).
            Err(_) => WatchRef::new(0, target.id()),
        }
    }

    /// Removes a watch; `true` if its `Down` will now never be delivered.
    pub fn unwatch(&mut self, watch: WatchRef) -> bool {
        self.myself().unwatch(watch)
    }
}
