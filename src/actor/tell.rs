//! [`Tell`]: a message on its way to an actor, sent when awaited.
//!
//! `ActorRef::tell` returns a [`Tell`], which implements [`IntoFuture`]
//! rather than `Future`: `.await` turns it into a future, and that is the
//! moment the message is pushed. Almost every push is taken at once, and
//! the future `.await` then polls is two words holding nothing. An
//! `async fn tell` kept the message inside its future, and so inside the
//! future of every handler that tells: the actor's task wrote the message
//! there, read it back and wrote it again into the mailbox, touching more
//! cache lines per message. Measured with the `compare` harness on the
//! current-thread runtime: a 1,000-actor ring ran ≈12 % slower, ping-pong
//! ≈14 %, one-to-one tell ≈17 %.

use std::fmt;
use std::future::{Future, IntoFuture, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use super::ActorRef;
use super::cell::Delivery;
use crate::mailbox::{PushError, Pushed};
use crate::message::Message;
use crate::system::SendError;

/// A message for an actor, pushed to its mailbox when this is awaited;
/// returned by [`ActorRef::tell`].
///
/// Awaiting it waits only while a `Block` mailbox is full; other mailboxes
/// take or refuse the message at once. On error the message comes back in
/// the [`SendError`]. Not awaited, it sends nothing. To use it where a
/// `Future` is required (`join_all`, `select_all`), call
/// [`into_future`](IntoFuture::into_future), which sends the message.
///
/// The send happens in `into_future`, not at the first poll. Whatever calls
/// `into_future` early sends early: `tokio::time::timeout(d, actor.tell(m))`
/// sends when `timeout` is called, and `tokio::select!` converts every
/// branch (even one disabled by its `if`) before polling any, so a `tell`
/// there is sent even if another branch wins — and a refusal in a losing
/// branch is dropped with its message. Keep `tell` out of `select!`; use
/// [`ActorRef::try_tell`] to decide by the outcome.
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
/// # let system = ActorSystem::new(SystemConfig::default())?;
/// let actor = system.spawn(Quiet)?;
/// actor.tell(Ping).await?;
/// // Where a `Future` is needed, `into_future` sends and gives one.
/// let sends = (0..3).map(|_| actor.tell(Ping).into_future());
/// for sent in futures::future::join_all(sends).await {
///     sent?;
/// }
/// # Ok(()) }
/// ```
#[must_use = "a tell sends nothing until it is awaited"]
pub struct Tell<'a, M: Message> {
    actor: &'a ActorRef<M>,
    message: M,
}

impl<'a, M: Message> Tell<'a, M> {
    pub(super) fn new(actor: &'a ActorRef<M>, message: M) -> Self {
        Self { actor, message }
    }
}

impl<M: Message> fmt::Debug for Tell<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tell")
            .field("actor", &self.actor.id())
            .field("message", &self.message)
            .finish()
    }
}

impl<'a, M: Message> IntoFuture for Tell<'a, M> {
    type Output = Result<(), SendError<M>>;
    type IntoFuture = Telling<'a, M>;

    /// Pushes the message; the future resolves at once unless a `Block`
    /// mailbox is full.
    #[inline]
    fn into_future(self) -> Telling<'a, M> {
        let Tell { actor, message } = self;
        let mailbox = &actor.cell().mailbox;
        match mailbox.try_push(Delivery::Tell(message)) {
            Ok(Pushed::Queued) => Telling { rest: None },
            pushed => Telling::slow(actor, pushed),
        }
    }
}

/// The future of an awaited [`Tell`]. A message taken by the mailbox (the
/// common case) leaves nothing to do; a refusal or a wait for room in a full
/// `Block` mailbox is boxed, which keeps this future two words wide inside
/// every handler that tells.
#[must_use = "the message is already sent or refused; dropping this loses the outcome"]
pub struct Telling<'a, M: Message> {
    rest: Option<BoxFuture<'a, Result<(), SendError<M>>>>,
}

impl<'a, M: Message> Telling<'a, M> {
    /// Everything but a queued message: a wait for room in a full `Block`
    /// mailbox, or an outcome to report now (a refusal is boxed with its
    /// message; a dropped message is already a dead letter).
    #[cold]
    fn slow(
        actor: &'a ActorRef<M>,
        pushed: Result<Pushed<Delivery<M>>, PushError<Delivery<M>>>,
    ) -> Self {
        let mailbox = &actor.cell().mailbox;
        let rest: BoxFuture<'a, _> = match pushed {
            Err(PushError::Full(message)) if mailbox.waits_when_full() => {
                Box::pin(async move { actor.settle(mailbox.push_when_room(message).await) })
            }
            pushed => match actor.settle(pushed) {
                Ok(()) => return Telling { rest: None },
                Err(refused) => Box::pin(ready(Err(refused))),
            },
        };
        Telling { rest: Some(rest) }
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
