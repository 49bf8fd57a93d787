//! [`ActorRef`]: the cloneable address of a running actor, and [`ReplyTo`],
//! the typed reply port used by `ask`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::cell::{ActorCell, ActorControl, Delivery};
use super::tell::Telling;
use super::{Actor, ActorState, ExitReason};
use crate::mailbox::{Backpressure, DeadLetterReason, PushError, Pushed, SystemSignal};
use crate::message::{Message, MessageEnvelope};
use crate::system::{AskError, ReplyError, SendError, SendErrorKind};
use crate::util::deadlines::{Due, Within};
use crate::util::{ActorId, time};

/// A handle to an actor that receives messages of type `M`.
///
/// Cheap to clone (one `Arc`), `Send + Sync`. Sending never allocates beyond
/// the mailbox slot.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::prelude::*;
///
/// #[derive(Debug)]
/// enum Msg { Add(u64), Get(ReplyTo<u64>) }
/// impl Message for Msg { const MESSAGE_TYPE: &'static str = "counter"; }
///
/// struct Counter(u64);
/// impl Actor for Counter {
///     type Message = Msg;
///     type Error = Infallible;
///     async fn handle_message(&mut self, msg: Msg, _: &mut ActorContext<Msg>) -> Result<(), Infallible> {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => { let _ = reply.reply(self.0); }
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let counter = system.spawn(Counter(0))?;
/// counter.tell(Msg::Add(2)).await?;
/// assert_eq!(counter.ask(Msg::Get, Duration::from_secs(1)).await?, 2);
/// counter.stop();
/// assert_eq!(counter.wait_for_exit().await, ExitReason::Normal);
/// # Ok(()) }
/// ```
pub struct ActorRef<M: Message> {
    cell: Arc<ActorCell<M>>,
}

/// The handle returned for an actor type: an [`ActorRef`] to its message type.
pub type ActorHandle<A> = ActorRef<<A as Actor>::Message>;

impl<M: Message> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
        }
    }
}

impl<M: Message> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("id", &self.cell.id)
            .field("name", &self.cell.name)
            .field("message_type", &M::MESSAGE_TYPE)
            .finish()
    }
}

impl<M: Message> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        self.cell.id == other.cell.id
    }
}

impl<M: Message> Eq for ActorRef<M> {}

impl<M: Message> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cell.id.hash(state);
    }
}

impl<M: Message> ActorRef<M> {
    pub(crate) fn from_cell(cell: Arc<ActorCell<M>>) -> Self {
        Self { cell }
    }

    pub(crate) fn cell(&self) -> &ActorCell<M> {
        &self.cell
    }

    pub(crate) fn cell_arc(&self) -> &Arc<ActorCell<M>> {
        &self.cell
    }

    /// Records a message the mailbox refused as a dead letter; returns why
    /// it was refused.
    pub(crate) fn dead_letter_refused(&self, refused: SendError<M>) -> SendErrorKind {
        let kind = refused.kind();
        let reason = match kind {
            SendErrorKind::ActorStopped => DeadLetterReason::ActorStopped,
            SendErrorKind::MailboxFull => DeadLetterReason::DroppedNewest,
        };
        self.cell
            .dead_letter(Delivery::Tell(refused.into_message()), reason);
        kind
    }

    /// The handle as a type-erased value (its cell: no allocation), for
    /// lookups that recover it with [`from_any`](Self::from_any).
    pub(crate) fn into_any(self) -> Arc<dyn std::any::Any + Send + Sync> {
        self.cell
    }

    /// The handle [`into_any`](Self::into_any) erased, if `any` is one to
    /// an actor taking `M`.
    pub(crate) fn from_any(any: Arc<dyn std::any::Any + Send + Sync>) -> Option<Self> {
        any.downcast::<ActorCell<M>>().ok().map(Self::from_cell)
    }

    pub(crate) fn control(&self) -> Arc<dyn ActorControl> {
        self.cell.clone()
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.cell.id
    }

    /// The name given at spawn, if any.
    pub fn name(&self) -> Option<&str> {
        self.cell.name.as_deref()
    }

    /// Sends a message: pushed to the mailbox now, awaited or not. Awaiting
    /// the returned [`Telling`] waits only while a `Block` mailbox is full
    /// (other strategies take or refuse at once) and returns a refusal with
    /// the message; a refusal nobody awaits becomes a dead letter.
    #[inline]
    pub fn tell(&self, message: M) -> Telling<'_, M> {
        Telling::send(self, message)
    }

    /// Sends without waiting: a full mailbox (even a `Block` one) returns
    /// [`SendErrorKind::MailboxFull`] with the message.
    #[inline]
    pub fn try_tell(&self, message: M) -> Result<(), SendError<M>> {
        let pushed = self.cell.mailbox.try_push(Delivery::Tell(message));
        self.settle(pushed)
    }

    /// Sends an envelope: its TTL is checked when it reaches the front of the
    /// mailbox, and an expired envelope becomes a dead letter. Its priority
    /// overrides the message's own in a priority mailbox.
    /// On error the whole envelope comes back.
    pub async fn tell_envelope(
        &self,
        envelope: MessageEnvelope<M>,
    ) -> Result<(), SendError<MessageEnvelope<M>>> {
        self.tell_boxed_envelope(Box::new(envelope))
            .await
            .map_err(|error| error.map_message(|envelope| *envelope))
    }

    /// Pushes a boxed envelope without waiting.
    pub(crate) fn try_tell_boxed_envelope(
        &self,
        envelope: Box<MessageEnvelope<M>>,
    ) -> Result<(), NotPushed<Box<MessageEnvelope<M>>>> {
        let mailbox = &self.cell.mailbox;
        let actor = self.cell.id;
        match mailbox.try_push(Delivery::Envelope(envelope)) {
            Err(PushError::Full(delivery)) if mailbox.waits_when_full() => {
                Err(NotPushed::WouldBlock(delivery.into_boxed_envelope(actor)))
            }
            pushed => self
                .settle_with(pushed, |delivery| delivery.into_boxed_envelope(actor))
                .map_err(NotPushed::Refused),
        }
    }

    /// [`tell_envelope`](Self::tell_envelope) for an envelope already boxed
    /// (the broker boxes once and moves only the pointer).
    pub(crate) async fn tell_boxed_envelope(
        &self,
        envelope: Box<MessageEnvelope<M>>,
    ) -> Result<(), SendError<Box<MessageEnvelope<M>>>> {
        let pushed = self.cell.mailbox.push(Delivery::Envelope(envelope)).await;
        let actor = self.cell.id;
        self.settle_with(pushed, |delivery| delivery.into_boxed_envelope(actor))
    }

    /// Sends a request built around a fresh [`ReplyTo`] and waits for the
    /// answer, at most `timeout` (including any wait for mailbox room).
    ///
    /// If the actor stops before replying, the port is dropped and this
    /// returns [`AskError::NoReply`] at once; it never hangs past `timeout`.
    /// A zero `timeout` sends nothing and returns [`AskError::ZeroTimeout`]
    /// (every time: not `Ok` when a reply happens to be quick enough).
    pub async fn ask<R, F>(&self, request: F, timeout: Duration) -> Result<R, AskError>
    where
        R: Send,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        let (port, reply) = oneshot::channel();
        self.ask_message(request(ReplyTo { port }), reply, timeout)
            .await
    }

    /// [`ask`](Self::ask) for a request already built around the sending
    /// half of `reply` (for routers that must see the message first).
    pub(crate) async fn ask_message<R: Send>(
        &self,
        message: M,
        reply: oneshot::Receiver<R>,
        timeout: Duration,
    ) -> Result<R, AskError> {
        let actor = self.cell.id;
        if timeout.is_zero() {
            return Err(AskError::ZeroTimeout { actor });
        }
        if super::running::is_running(actor) {
            return Err(AskError::SelfAsk { actor });
        }
        // The usual case reads no clock: the registry counts the timeout
        // from when it first sees the wait. Only a wait for mailbox room
        // needs the instant at once.
        let mut due = Due::After(timeout);
        let pushed = match self.cell.mailbox.try_push(Delivery::Tell(message)) {
            Err(PushError::Full(request)) if self.cell.mailbox.waits_when_full() => {
                let deadline = time::deadline_after(timeout);
                due = Due::At(deadline);
                tokio::time::timeout_at(deadline, self.cell.mailbox.push_when_room(request))
                    .await
                    .map_err(|_| AskError::Timeout { actor, timeout })?
            }
            pushed => pushed,
        };
        self.settle(pushed).map_err(|e| AskError::from_send(&e))?;
        match Within::new(reply, &self.cell.shared.deadlines, due).await {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(_)) => Err(AskError::NoReply { actor }),
            None => Err(AskError::Timeout { actor, timeout }),
        }
    }

    /// Asks the actor to stop after its current message (system lane: ahead
    /// of queued messages, even in a full mailbox). Queued messages become
    /// dead letters. Returns `false` if it has stopped or a stop request is
    /// already pending.
    pub fn stop(&self) -> bool {
        self.cell.mailbox.signal(SystemSignal::Stop)
    }

    /// Asks the actor to stop with exit reason `Shutdown`, as its supervisor
    /// or system does when shutting down (system lane, ahead of a pending
    /// `stop`). Returns `false` if it has stopped or a shutdown is already
    /// pending.
    pub fn shutdown(&self) -> bool {
        self.cell.mailbox.signal(SystemSignal::Shutdown)
    }

    /// Stops the actor at its next await point without running `post_stop`;
    /// exit reason `Killed`. Queued messages become dead letters.
    pub fn kill(&self) {
        self.cell.kill();
    }

    /// Whether the actor still accepts messages.
    pub fn is_alive(&self) -> bool {
        !self.cell.mailbox.is_closed()
    }

    /// The actor's lifecycle state.
    pub fn state(&self) -> ActorState {
        self.cell.state()
    }

    /// The exit reason, once the actor has stopped.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.cell.exit_reason()
    }

    /// Waits until the actor has stopped and returns why.
    pub async fn wait_for_exit(&self) -> ExitReason {
        self.cell.wait_for_exit().await
    }

    /// User messages currently queued.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox.len()
    }

    /// Mailbox capacity, `None` when unbounded.
    pub fn mailbox_capacity(&self) -> Option<usize> {
        self.cell.mailbox.capacity()
    }

    /// The mailbox's backpressure strategy.
    pub fn backpressure(&self) -> Backpressure {
        self.cell.mailbox.backpressure()
    }

    /// Messages dropped so far by a `DropOldest`/`DropNewest` mailbox.
    pub fn dropped_messages(&self) -> u64 {
        self.cell.mailbox.dropped()
    }

    /// Tells `message`, as [`tell`](Self::tell) does; a refused message is
    /// recorded as a dead letter (`ActorStopped`, or `DroppedNewest` when a
    /// full `Reject` mailbox refuses it) instead of coming back. For senders
    /// with nobody to hand a refusal to: timers, pipes, streams. Returns
    /// `false` once the actor has stopped (no later message can arrive
    /// either), `true` otherwise.
    pub(crate) async fn tell_or_dead_letter(&self, message: M) -> bool {
        match self.tell(message).await {
            Ok(()) => true,
            Err(refused) => self.dead_letter_refused(refused) != SendErrorKind::ActorStopped,
        }
    }

    #[inline(always)]
    pub(super) fn settle(
        &self,
        pushed: Result<Pushed<Delivery<M>>, PushError<Delivery<M>>>,
    ) -> Result<(), SendError<M>> {
        self.settle_with(pushed, Delivery::into_message)
    }

    /// Records drops as dead letters and converts refusals to [`SendError`],
    /// handing back what `back` makes of the refused delivery.
    #[inline(always)]
    fn settle_with<T>(
        &self,
        pushed: Result<Pushed<Delivery<M>>, PushError<Delivery<M>>>,
        back: impl FnOnce(Delivery<M>) -> T,
    ) -> Result<(), SendError<T>> {
        match pushed {
            Ok(Pushed::Queued) => Ok(()),
            Ok(Pushed::DroppedOldest(victim)) => {
                self.cell
                    .dead_letter(victim, DeadLetterReason::DroppedOldest);
                Ok(())
            }
            Ok(Pushed::DroppedNewest(dropped)) => {
                self.cell
                    .dead_letter(dropped, DeadLetterReason::DroppedNewest);
                Ok(())
            }
            Err(PushError::Closed(d)) => Err(SendError::new(
                SendErrorKind::ActorStopped,
                self.cell.id,
                back(d),
            )),
            Err(PushError::Full(d)) => Err(SendError::new(
                SendErrorKind::MailboxFull,
                self.cell.id,
                back(d),
            )),
        }
    }
}

/// Why a push that must not wait did not happen.
pub(crate) enum NotPushed<T> {
    /// The mailbox is full and blocks senders: wait for room with an async
    /// send.
    WouldBlock(T),
    /// The mailbox refused it (stopped, or full and not blocking).
    Refused(SendError<T>),
}

/// The reply port of an `ask`: put it in a message variant, and the handler
/// answers with [`reply`](ReplyTo::reply). Dropping it unanswered makes the
/// asker's `ask` return [`AskError::NoReply`].
pub struct ReplyTo<T> {
    port: oneshot::Sender<T>,
}

impl<T> fmt::Debug for ReplyTo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyTo<")?;
        f.write_str(std::any::type_name::<T>())?;
        f.write_str(">")
    }
}

impl<T> From<oneshot::Sender<T>> for ReplyTo<T> {
    /// Wraps a tokio oneshot sender, e.g. to collect a reply outside `ask`.
    fn from(port: oneshot::Sender<T>) -> Self {
        Self { port }
    }
}

impl<T> ReplyTo<T> {
    /// Sends the answer. Fails, giving the value back, if the asker stopped
    /// waiting (timeout or cancellation).
    pub fn reply(self, value: T) -> Result<(), ReplyError<T>> {
        self.port.send(value).map_err(ReplyError)
    }

    /// Whether the asker has stopped waiting.
    pub fn is_closed(&self) -> bool {
        self.port.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reply_to_reports_a_gone_asker() {
        let (tx, rx) = oneshot::channel::<u8>();
        let port = ReplyTo { port: tx };
        assert!(!port.is_closed());
        drop(rx);
        assert_eq!(port.reply(3), Err(ReplyError(3)));
    }

    #[test]
    fn reply_to_debug_names_the_type() {
        let (tx, _rx) = oneshot::channel::<u64>();
        assert_eq!(format!("{:?}", ReplyTo { port: tx }), "ReplyTo<u64>");
    }
}
