//! Mailboxes: the queue between an actor's senders and its task.
//!
//! One [`Mailbox`] type serves every kind (the brief's `bounded.rs` and
//! `unbounded.rs` are one implementation with an optional capacity):
//!
//! * a **user lane**, FIFO by default or split by [`MessagePriority`]
//!   when [`MailboxKind::Priority`] is chosen, unbounded or bounded with a
//!   [`Backpressure`] strategy;
//! * a **system lane** for [`SystemSignal`]s, always served first and never
//!   subject to the user lane's capacity.
//!
//! The user lane is a lock-free block queue (single-consumer for FIFO
//! mailboxes; multi-consumer where `DropOldest` lets senders evict) plus one
//! atomic state word (length, closed, parked). A send is one compare-and-swap
//! and one queue push; the receiver's waker is touched only when the receiver
//! is actually parked, and blocked senders only when someone is waiting. The
//! single [`MailboxReceiver`] is what makes lock-free popping safe.
//!
//! [`MessagePriority`]: crate::message::MessagePriority

pub mod backpressure;
pub mod config;
pub mod dead_letter;
pub mod lanes;
#[cfg(all(test, loom))]
mod loom_models;
mod mpsc;
pub mod queue;
pub mod signal;
pub mod undelivered;

pub use backpressure::Backpressure;
pub use config::{MailboxConfig, MailboxKind};
pub use dead_letter::{DeadLetter, DeadLetterOffice, DeadLetterReason, DeadLetterStream};
pub use lanes::MailboxItem;
pub(crate) use queue::Ready;
pub use queue::{Mailbox, MailboxReceiver, PushError, Pushed, Received, Recv};
pub use signal::SystemSignal;
pub use undelivered::{Reclaimed, Undelivered};
