//! Links (Erlang's `link/1`): two actors that share a fate. When one
//! exits, the other gets an exit signal and reacts by Erlang's rules —
//! checked case by case against Erlang/OTP 25:
//!
//! | linked actor exits with | other actor does not trap exits | other actor traps exits |
//! |---|---|---|
//! | `Normal` | nothing happens | gets [`ExitSignal`] (`Exited(Normal)`) |
//! | `Shutdown` | exits with `Linked { actor, Shutdown }` (a normal exit, as Erlang's `shutdown`) | gets [`ExitSignal`] |
//! | `Killed` (after [`kill`](super::ActorRef::kill)) | exits with `Linked { actor, Killed }` | gets [`ExitSignal`] (`Exited(Killed)`) |
//! | any other (`Error`, `Panic`, `Escalated`, `Linked`) | exits with `Linked { actor, reason }` | gets [`ExitSignal`] |
//! | — linking to an actor already exited | `link` fails with [`LinkError::NoProc`] | `link` succeeds, then [`ExitSignal`] with `NoProc` |
//!
//! An actor brought down by a link exits at once, like a kill: its
//! current handler is abandoned and `post_stop` does not run (an Erlang
//! process that does not trap exits gets no `terminate`); its own links and
//! watchers then see its [`ExitReason::Linked`](super::ExitReason::Linked) reason, so a failure
//! travels along a chain of links. Links are symmetric, made once (linking
//! twice, or to itself, does nothing), and removed by either side's
//! `unlink` or exit. An actor restarted by its supervisor is a new actor:
//! its links were the old instance's, as in OTP. Supervision does not use
//! links and works the same with or without them.
//!
//! ```
//! use airssys_rt::actor::{DownReason, ExitSignal};
//! use airssys_rt::prelude::*;
//!
//! #[derive(Debug, Message)]
//! enum Msg { Started(ReplyTo<()>), Exit(ExitSignal) }
//!
//! struct Trapper(tokio::sync::mpsc::UnboundedSender<ExitSignal>);
//! impl Actor for Trapper {
//!     type Message = Msg;
//!     type Error = std::convert::Infallible;
//!     async fn pre_start(&mut self, ctx: &mut ActorContext<Msg>) -> Result<(), Self::Error> {
//!         ctx.trap_exits(Msg::Exit);
//!         Ok(())
//!     }
//!     async fn handle_message(&mut self, msg: Msg, _: &mut ActorContext<Msg>) -> Result<(), Self::Error> {
//!         match msg {
//!             Msg::Started(reply) => drop(reply.reply(())),
//!             Msg::Exit(signal) => drop(self.0.send(signal)),
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
//! let (signals, mut seen) = tokio::sync::mpsc::unbounded_channel();
//! let trapper = system.spawn(Trapper(signals))?;
//! trapper.ask(Msg::Started, std::time::Duration::from_secs(5)).await?; // traps exits now
//! let worker = system.spawn(Worker)?;
//! let lonely = system.spawn(Worker)?;
//! worker.link(&trapper)?;
//! worker.link(&lonely)?;
//! worker.kill();
//! // The trapping actor lives on and is told; the other goes too.
//! let signal = seen.recv().await.ok_or("no exit signal")?;
//! assert_eq!(signal.reason, DownReason::Exited(ExitReason::Killed));
//! assert_eq!(
//!     lonely.wait_for_exit().await,
//!     ExitReason::Linked { actor: worker.id(), reason: Box::new(ExitReason::Killed) }
//! );
//! assert!(trapper.is_alive());
//! # Ok(()) }
//! ```

use super::bonds::IntoExitSignal;
use super::watch::DownReason;
use super::{ActorContext, ActorRef};
use crate::message::Message;
use crate::system::LinkError;
use crate::util::ActorId;

/// An exit signal from a linked actor, as a message to an actor that traps
/// exits (Erlang's `{'EXIT', Pid, Reason}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitSignal {
    /// The linked actor that exited.
    pub actor: ActorId,
    /// Its exit reason, or `NoProc` when it had exited before the link.
    pub reason: DownReason,
}

impl<M: Message> ActorRef<M> {
    /// Links this actor and `other` (see the [module docs](super::link)
    /// for what an exit then does to the other). Linking twice, or an
    /// actor to itself, does nothing.
    ///
    /// If `other` has already exited, fails with [`LinkError::NoProc`] —
    /// unless this actor traps exits, which then gets an [`ExitSignal`]
    /// with [`DownReason::NoProc`]. Fails with [`LinkError::Stopped`] if
    /// this actor has stopped.
    pub fn link<T: Message>(&self, other: &ActorRef<T>) -> Result<(), LinkError> {
        self.cell_arc().link(other.bonded())
    }

    /// Removes the link between this actor and `other`, if there is one:
    /// from now on neither's exit signals the other.
    pub fn unlink<T: Message>(&self, other: &ActorRef<T>) {
        self.cell().unlink(other.id());
    }
}

impl<M: Message> ActorContext<M> {
    /// Links this actor and `other`; see [`ActorRef::link`] and the
    /// [module docs](super::link).
    pub fn link<T: Message>(&mut self, other: &ActorRef<T>) -> Result<(), LinkError> {
        self.myself().link(other)
    }

    /// Removes the link between this actor and `other`, if any.
    pub fn unlink<T: Message>(&mut self, other: &ActorRef<T>) {
        self.myself().unlink(other);
    }

    /// Traps exits (Erlang's `process_flag(trap_exit, true)`): an exit
    /// signal from a linked actor no longer brings this actor down but
    /// arrives as `into_message(signal)`, `Normal` exits included. Lasts
    /// until [`stop_trapping_exits`](Self::stop_trapping_exits) or the
    /// actor exits (an in-place restart keeps it, like its links).
    pub fn trap_exits(&mut self, into_message: impl Fn(ExitSignal) -> M + Send + Sync + 'static) {
        let into_message: IntoExitSignal<M> = std::sync::Arc::new(into_message);
        self.myself().cell().trap_exits(Some(into_message));
    }

    /// Stops trapping exits: linked actors' exit signals apply again.
    pub fn stop_trapping_exits(&mut self) {
        self.myself().cell().trap_exits(None);
    }
}
