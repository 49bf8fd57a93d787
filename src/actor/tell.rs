//! [`Telling`]: a message already sent to an actor, and what is left to
//! learn about it.
//!
//! `ActorRef::tell` pushes the message at once and returns a [`Telling`],
//! a future that is ready at once unless a `Block` mailbox is full (then
//! it waits for room), and that reports a refusal with the message. So a
//! tell that is never awaited — `let _ = actor.tell(m);`, the habit ractor
//! users bring — still sends. And nothing it carries is lost in silence: a
//! refusal nobody awaited, or a wait for room given up by dropping the
//! future, leaves the message in the dead letters.
//!
//! A message taken by the mailbox (almost every one) leaves the future two
//! words holding nothing, so a handler that tells keeps no copy of the
//! message in its own future. (An `async fn tell` kept it there: the
//! actor's task wrote the message into its future, read it back and wrote
//! it again into the mailbox. Measured with the `compare` harness on the
//! current-thread runtime: a 1,000-actor ring ran ≈12 % slower, ping-pong
//! ≈14 %, one-to-one tell ≈17 %.)

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use super::ActorRef;
use super::cell::Delivery;
use crate::mailbox::{PushError, Pushed};
use crate::message::Message;
use crate::system::SendError;

/// A message sent by [`ActorRef::tell`]: awaiting this waits for room
/// while a `Block` mailbox is full, and returns a refusal with the message.
///
/// The message is pushed when `tell` is called, awaited or not. Dropped
/// without being awaited, a refused message — or one still waiting for
/// room in a full `Block` mailbox — becomes a dead letter
/// ([`ActorStopped`](crate::mailbox::DeadLetterReason::ActorStopped) or
/// [`DroppedNewest`](crate::mailbox::DeadLetterReason::DroppedNewest)),
/// so it is accounted for even where no one looks at the outcome (a
/// `tokio::select!` branch that lost, a `let _`).
///
/// ```
/// # use std::convert::Infallible;
/// # use airssys_rt::prelude::*;
/// # #[derive(Debug)] struct Ping;
/// # impl Message for Ping { const MESSAGE_TYPE: &'static str = "ping"; }
/// # struct Quiet;
/// # impl Actor for Quiet {
/// #     type Message = Ping;
/// #     type Error = Infallible;
/// #     async fn handle_message(&mut self, _: Ping, _: &mut ActorContext<Ping>) -> Result<(), Infallible> { Ok(()) }
/// # }
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let actor = system.spawn(Quiet)?;
/// actor.tell(Ping).await?; // sent; a refusal comes back here
/// let _ = actor.tell(Ping); // sent too; a refusal would be a dead letter
/// let sends = (0..3).map(|_| actor.tell(Ping));
/// for sent in futures::future::join_all(sends).await {
///     sent?;
/// }
/// # Ok(()) }
/// ```
#[must_use = "the message is sent; await this to wait for room in a full Block mailbox and to get a refusal back (unawaited, a refusal is a dead letter)"]
pub struct Telling<'a, M: Message> {
    /// A wait for room, or a refusal to report: boxed, with a guard that
    /// makes the message a dead letter if the box is dropped first.
    rest: Option<BoxFuture<'a, Result<(), SendError<M>>>>,
}

impl<'a, M: Message> Telling<'a, M> {
    /// Pushes `message` to `actor`'s mailbox.
    #[inline]
    pub(super) fn send(actor: &'a ActorRef<M>, message: M) -> Self {
        match actor.cell().mailbox.try_push(Delivery::Tell(message)) {
            Ok(Pushed::Queued) => Telling { rest: None },
            pushed => Telling::slow(actor, pushed),
        }
    }

    /// Everything but a queued message: a wait for room in a full `Block`
    /// mailbox, or an outcome to report (a refusal is boxed with its
    /// message; a dropped message is already a dead letter).
    #[cold]
    fn slow(
        actor: &'a ActorRef<M>,
        pushed: Result<Pushed<Delivery<M>>, PushError<Delivery<M>>>,
    ) -> Self {
        let mailbox = &actor.cell().mailbox;
        let rest: BoxFuture<'a, _> = match pushed {
            Err(PushError::Full(message)) if mailbox.waits_when_full() => {
                let mut unsent = Unsent {
                    actor,
                    message: Some(message),
                };
                Box::pin(async move {
                    match mailbox.push_from_when_room(&mut unsent.message).await {
                        Some(pushed) => actor.settle(pushed),
                        None => Ok(()),
                    }
                })
            }
            pushed => match actor.settle(pushed) {
                Ok(()) => return Telling { rest: None },
                Err(refused) => {
                    let mut refusal = Refusal {
                        actor,
                        refused: Some(refused),
                    };
                    Box::pin(async move {
                        match refusal.refused.take() {
                            Some(refused) => Err(refused),
                            None => Ok(()),
                        }
                    })
                }
            },
        };
        Telling { rest: Some(rest) }
    }
}

/// A message waiting for room in a full `Block` mailbox: a dead letter
/// if the wait is dropped before the push.
struct Unsent<'a, M: Message> {
    actor: &'a ActorRef<M>,
    message: Option<Delivery<M>>,
}

impl<M: Message> Drop for Unsent<'_, M> {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            self.actor
                .cell()
                .dead_letter(message, crate::mailbox::DeadLetterReason::DroppedNewest);
        }
    }
}

/// A refused message: handed back when awaited, a dead letter if not.
struct Refusal<'a, M: Message> {
    actor: &'a ActorRef<M>,
    refused: Option<SendError<M>>,
}

impl<M: Message> Drop for Refusal<'_, M> {
    fn drop(&mut self) {
        if let Some(refused) = self.refused.take() {
            self.actor.dead_letter_refused(refused);
        }
    }
}

impl<M: Message> fmt::Debug for Telling<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.rest {
            None => "queued",
            Some(_) => "settling",
        };
        f.debug_struct("Telling").field("state", &state).finish()
    }
}

impl<M: Message> Future for Telling<'_, M> {
    type Output = Result<(), SendError<M>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().rest {
            None => Poll::Ready(Ok(())),
            Some(rest) => rest.as_mut().poll(cx),
        }
    }
}
