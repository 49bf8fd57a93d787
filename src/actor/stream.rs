//! Streams into actors (actix's `add_stream`): a task that takes the items
//! of a [`Stream`] and tells them to an actor, one at a time and in order,
//! then an optional end-of-stream message.
//!
//! This module owns that forwarding task: [`ActorContext::add_stream`] for a
//! stream an actor starts itself (tracked by its context like timers and
//! pipes, so cancelled when it stops or restarts), [`ActorRef::add_stream`]
//! for a stream attached from outside (cancelled when the actor exits).
//!
//! Each item is sent with an awaited `tell`, so the actor's mailbox sets the
//! pace: a full `Block` mailbox stops the stream from being polled until
//! there is room, and at most one item is ever held outside the mailbox;
//! `DropNewest`/`DropOldest` mailboxes drop items as they drop any message,
//! and a full `Reject` mailbox refuses them: into the dead letters, and the
//! stream goes on. An item the actor refuses because it has stopped becomes
//! a dead letter and ends the forwarding.

use std::future::{Future, pending};
use std::pin::pin;

use futures::future::{Either, select};
use futures::{Stream, StreamExt};

use super::context::TaskHandle;
use super::{ActorContext, ActorRef};
use crate::message::Message;

impl<M: Message> ActorContext<M> {
    /// Sends the items of `stream` to this actor as messages, in order, and
    /// then `on_end` (if any) once the stream has ended.
    ///
    /// The stream is polled on the system's runtime, alongside the actor,
    /// and only as fast as the mailbox takes its items: with a full `Block`
    /// mailbox the forwarder waits (holding at most one item) before
    /// polling again, so nothing piles up without bound. A
    /// `DropNewest`/`DropOldest` mailbox drops items like any other message,
    /// as dead letters (so does a full `Reject` mailbox), and the stream goes
    /// on. An item the actor refuses because it is stopping is a dead letter,
    /// and the stream is dropped.
    ///
    /// Like timers and pipes, the stream belongs to this instance of the
    /// actor: it is dropped when the actor stops or restarts (a restarted
    /// instance starts with no streams), or when the returned handle is
    /// [cancelled](TaskHandle::cancel). To attach a stream from outside
    /// the actor, see [`ActorRef::add_stream`].
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use airssys_rt::prelude::*;
    /// use futures::StreamExt;
    ///
    /// #[derive(Debug, Message)]
    /// enum Msg { Watch(Vec<u64>), Reading(u64), Done }
    ///
    /// struct Sum { total: u64, report: tokio::sync::mpsc::UnboundedSender<u64> }
    /// impl Actor for Sum {
    ///     type Message = Msg;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, msg: Msg, ctx: &mut ActorContext<Msg>) -> Result<(), Infallible> {
    ///         match msg {
    ///             Msg::Watch(readings) => {
    ///                 let readings = futures::stream::iter(readings).map(Msg::Reading);
    ///                 ctx.add_stream(readings, Some(Msg::Done));
    ///             }
    ///             Msg::Reading(n) => self.total += n,
    ///             Msg::Done => { let _ = self.report.send(self.total); }
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new(SystemConfig::default())?;
    /// let (report, mut totals) = tokio::sync::mpsc::unbounded_channel();
    /// let sum = system
    ///     .spawn_builder()
    ///     .bounded(4, Backpressure::Block)
    ///     .spawn(Sum { total: 0, report })?;
    /// sum.tell(Msg::Watch((1..=100).collect())).await?;
    /// assert_eq!(totals.recv().await, Some(5050));
    /// # Ok(()) }
    /// ```
    pub fn add_stream<S>(&mut self, stream: S, on_end: Option<M>) -> TaskHandle
    where
        S: Stream<Item = M> + Send + 'static,
    {
        let target = self.myself().clone();
        self.track(async move { forward(&target, stream, on_end, pending()).await })
    }
}

impl<M: Message> ActorRef<M> {
    /// Sends the items of `stream` to this actor as messages, in order, and
    /// then `on_end` (if any) once the stream has ended: the same delivery
    /// as [`ActorContext::add_stream`], for code outside the actor.
    ///
    /// The stream is not tied to one instance of the actor: it keeps going
    /// across a restart in place (`ErrorAction::Restart` of an actor nobody
    /// supervises), and is dropped as soon as the actor exits, even while
    /// it is waiting for its next item. It is also dropped when the returned
    /// handle is [cancelled](TaskHandle::cancel). An item the actor refuses
    /// (it is stopping) is a dead letter, and ends the stream.
    ///
    /// The forwarder runs on the runtime of the actor's system.
    pub fn add_stream<S>(&self, stream: S, on_end: Option<M>) -> TaskHandle
    where
        S: Stream<Item = M> + Send + 'static,
    {
        let target = self.clone();
        let runtime = &self.cell().shared.runtime;
        let task = runtime.spawn(async move {
            let exited = async { drop(target.wait_for_exit().await) };
            forward(&target, stream, on_end, exited).await;
        });
        TaskHandle(task.abort_handle())
    }
}

/// Tells `target` each item of `stream`, then `on_end`; gives up (dropping
/// the stream) when the actor has stopped, or when `until` completes while
/// the stream is waiting for its next item.
async fn forward<M, S>(
    target: &ActorRef<M>,
    stream: S,
    on_end: Option<M>,
    until: impl Future<Output = ()>,
) where
    M: Message,
    S: Stream<Item = M>,
{
    let mut stream = pin!(stream);
    let mut until = pin!(until);
    loop {
        // `until` first: once it is over, no item is taken from the stream.
        let item = match select(until.as_mut(), stream.next()).await {
            Either::Left(((), _)) => return,
            Either::Right((item, _)) => item,
        };
        let Some(item) = item else { break };
        if !target.tell_or_dead_letter(item).await {
            return;
        }
    }
    if let Some(end) = on_end {
        target.tell_or_dead_letter(end).await;
    }
}
