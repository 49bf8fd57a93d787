//! # airssys-rt
//!
//! An Erlang/OTP-style actor runtime on tokio: typed actors, bounded and
//! priority mailboxes with backpressure, a system lane for control signals,
//! typed request/reply, dead letters for everything undeliverable, and a hot
//! path with no per-message allocation, lock, clock read or dynamic dispatch.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use airssys_rt::prelude::*;
//!
//! #[derive(Debug)]
//! enum Msg { Add(u64), Total(ReplyTo<u64>) }
//! impl Message for Msg { const MESSAGE_TYPE: &'static str = "counter"; }
//!
//! struct Counter(u64);
//! impl Actor for Counter {
//!     type Message = Msg;
//!     type Error = Infallible;
//!     async fn handle_message(&mut self, msg: Msg, _: &mut ActorContext<Msg>) -> Result<(), Infallible> {
//!         match msg {
//!             Msg::Add(n) => self.0 += n,
//!             Msg::Total(reply) => { let _ = reply.reply(self.0); }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::new(SystemConfig::default())?;
//! let counter = system.spawn(Counter(0))?;
//! counter.tell(Msg::Add(40)).await?;
//! counter.tell(Msg::Add(2)).await?;
//! assert_eq!(counter.ask(Msg::Total, Duration::from_secs(1)).await?, 42);
//! let report = system.shutdown(Duration::from_secs(1)).await;
//! assert_eq!(report.stopped_cleanly, 1);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
// Every `unsafe` block states the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

// `#[derive(Message)]` names `::airssys_rt`, also inside this crate.
extern crate self as airssys_rt;

pub mod actor;
pub mod address;
pub mod broker;
pub mod integration;
pub mod mailbox;
pub mod message;
#[cfg(feature = "observer")]
pub mod observer;
pub mod supervisor;
pub mod system;
pub mod util;

/// The names most programs need.
pub mod prelude {
    pub use crate::actor::{
        Actor, ActorContext, ActorError, ActorRef, Down, DownReason, ErrorAction, ExitReason,
        ExitSignal, ReplyTo, TaskHandle, WatchRef,
    };
    pub use crate::mailbox::{Backpressure, MailboxConfig, MailboxKind};
    pub use crate::message::{Message, MessageEnvelope, MessagePriority};
    pub use crate::supervisor::{
        ChildShutdown, ChildSpec, RestartType, SupervisionStrategy, SupervisorRef, SupervisorSpec,
    };
    pub use crate::system::{
        ActorSystem, AskError, LinkError, SendError, SendErrorKind, SystemConfig, SystemError,
    };
}

/// Compiles and runs the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
