//! [`ActorContext`]: what a handler can do besides changing its own state —
//! know itself, reach its system, spawn children, schedule timers, run work
//! off its turn ([`pipe`](ActorContext::pipe)), stop — and [`TaskHandle`],
//! the handle of a timer, pipe or stream. Streams are in
//! [`stream`](super::stream).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

use super::ActorRef;
use super::cell::ActorControl;
use crate::address::ActorAddress;
use crate::mailbox::SystemSignal;
use crate::message::Message;
use crate::system::{ActorSpawnBuilder, ActorSystem};
use crate::util::{ActorId, time};

/// The context an actor's hooks run with.
///
/// Timers, pipes and streams started here are cancelled, and children
/// spawned here are shut down, when the actor stops or restarts.
pub struct ActorContext<M: Message> {
    myself: ActorRef<M>,
    system: ActorSystem,
    stop_requested: bool,
    /// Messages handled since the last flush to the system's counter; the
    /// rest is flushed when the context is dropped, on every exit path
    /// (a kill included).
    pub(crate) handled: u64,
    /// Tasks and children, allocated the first time either is used so that
    /// actors without them stay small.
    dependents: Option<Box<Dependents>>,
}

#[derive(Default)]
struct Dependents {
    /// Timers, pipes and streams.
    tasks: Vec<AbortHandle>,
    children: Vec<Arc<dyn ActorControl>>,
}

impl<M: Message> fmt::Debug for ActorContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorContext")
            .field("myself", &self.myself)
            .field("system", &self.system.name())
            .field(
                "tasks",
                &self.dependents.as_ref().map_or(0, |d| d.tasks.len()),
            )
            .field(
                "children",
                &self.dependents.as_ref().map_or(0, |d| d.children.len()),
            )
            .finish()
    }
}

/// A task that sends to an actor on its behalf: a timer
/// ([`send_after`](ActorContext::send_after),
/// [`send_interval`](ActorContext::send_interval)), a
/// [`pipe`](ActorContext::pipe) or a stream
/// ([`ActorContext::add_stream`], [`ActorRef::add_stream`]).
///
/// Cancel it with [`cancel`](TaskHandle::cancel); dropping the handle does
/// not cancel. Cheap to clone; every clone refers to the same task.
#[derive(Debug, Clone)]
pub struct TaskHandle(pub(super) AbortHandle);

impl TaskHandle {
    /// Stops the task at its next await point. What that means:
    /// - a timer sends nothing more (a `send_after` whose message was not
    ///   yet sent never sends it);
    /// - a pipe drops its future, and its result is never sent;
    /// - a stream is dropped; items not yet taken from it are not sent,
    ///   nor is the end-of-stream message.
    ///
    /// A message the task was waiting to put in a full `Block` mailbox
    /// becomes a dead letter (`DroppedNewest`), like any tell given up.
    ///
    /// Messages already in the mailbox stay there. Cancelling a finished
    /// task does nothing.
    pub fn cancel(&self) {
        self.0.abort();
    }

    /// Whether the task is over: the timer fired for the last time, the
    /// pipe's result or the stream's last message was sent (or refused),
    /// or it was cancelled — by [`cancel`](Self::cancel) or because its
    /// actor stopped.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<M: Message> ActorContext<M> {
    pub(crate) fn new(myself: ActorRef<M>, system: ActorSystem) -> Self {
        Self {
            myself,
            system,
            stop_requested: false,
            handled: 0,
            dependents: None,
        }
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.myself.id()
    }

    /// This actor's address: its name if it has one, else its id.
    pub fn address(&self) -> ActorAddress {
        match self.myself.name() {
            Some(name) => ActorAddress::Named(name.to_owned().into()),
            None => ActorAddress::Id(self.myself.id()),
        }
    }

    /// A reference to this actor, to hand out to others.
    pub fn myself(&self) -> &ActorRef<M> {
        &self.myself
    }

    /// The system this actor runs in (name, counters, spawning).
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// The id of the envelope the message being handled came in (sent with
    /// `tell_envelope` or through a broker): what a broker reply answers.
    /// `None` for a plain `tell`.
    pub fn envelope_id(&self) -> Option<crate::util::MessageId> {
        self.myself.cell().current_envelope()
    }

    /// Stops this actor once the current hook returns; exit reason `Normal`.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// A builder for a child actor: it is shut down when this actor stops.
    ///
    /// ```no_run
    /// # use airssys_rt::prelude::*;
    /// # fn f<M: Message, A: Actor>(ctx: &mut ActorContext<M>, worker: A) -> Result<(), SystemError> {
    /// let child = ctx.spawn_child().name("worker").bounded(64, Backpressure::Block).spawn(worker)?;
    /// # Ok(()) }
    /// ```
    pub fn spawn_child(&mut self) -> ActorSpawnBuilder<'_> {
        let dependents = self.dependents.get_or_insert_with(Box::default);
        ActorSpawnBuilder::new(&self.system).with_parent(&mut dependents.children)
    }

    /// Sends `message` to this actor after `delay`.
    ///
    /// A message the mailbox refuses (the actor is stopping, or a full
    /// `Reject` mailbox) is a dead letter.
    pub fn send_after(&mut self, delay: Duration, message: M) -> TaskHandle {
        let target = self.myself.clone();
        self.track(async move {
            tokio::time::sleep(delay).await;
            target.tell_or_dead_letter(message).await;
        })
    }

    /// Sends `make()` to this actor every `period` (first after one period)
    /// until cancelled or the actor stops. Ticks missed under load are
    /// skipped, not bunched up. A tick the mailbox refuses is a dead letter;
    /// one refused because the actor stopped is the last.
    pub fn send_interval<F>(&mut self, period: Duration, mut make: F) -> TaskHandle
    where
        F: FnMut() -> M + Send + 'static,
    {
        let target = self.myself.clone();
        self.track(async move {
            let start = time::deadline_after(period);
            let mut ticks = tokio::time::interval_at(start, period.max(Duration::from_nanos(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                if !target.tell_or_dead_letter(make()).await {
                    return;
                }
            }
        })
    }

    /// Runs `future` alongside this actor, without blocking its handler,
    /// and sends `into_message(output)` to this actor when it completes
    /// (Akka's `pipeTo`). This is how to ask another actor, call a database
    /// or wait on anything from inside a handler: awaiting it in the handler
    /// holds up every other message, and waiting on an actor that waits on
    /// this one deadlocks.
    ///
    /// The result obeys the mailbox's backpressure like any other message
    /// (a full `Block` mailbox makes it wait); one the mailbox refuses is a
    /// dead letter. The future is cancelled when the actor stops or
    /// restarts, so a new instance never gets an old instance's result.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use airssys_rt::prelude::*;
    ///
    /// #[derive(Debug, Message)]
    /// enum Msg { Price(ActorRef<Quote>), Got(Result<u64, AskError>) }
    /// #[derive(Debug, Message)]
    /// struct Quote(ReplyTo<u64>);
    ///
    /// struct Shop(tokio::sync::mpsc::UnboundedSender<u64>);
    /// impl Actor for Shop {
    ///     type Message = Msg;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, msg: Msg, ctx: &mut ActorContext<Msg>) -> Result<(), Infallible> {
    ///         match msg {
    ///             // Ask off the turn: the handler returns at once.
    ///             Msg::Price(pricer) => {
    ///                 ctx.pipe(async move { pricer.ask(Quote, Duration::from_secs(1)).await }, Msg::Got);
    ///             }
    ///             Msg::Got(price) => { let _ = self.0.send(price.unwrap_or(0)); }
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// struct Pricer;
    /// impl Actor for Pricer {
    ///     type Message = Quote;
    ///     type Error = Infallible;
    ///     async fn handle_message(&mut self, Quote(reply): Quote, _: &mut ActorContext<Quote>) -> Result<(), Infallible> {
    ///         let _ = reply.reply(42);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new(SystemConfig::default())?;
    /// let (prices, mut seen) = tokio::sync::mpsc::unbounded_channel();
    /// let shop = system.spawn(Shop(prices))?;
    /// shop.tell(Msg::Price(system.spawn(Pricer)?)).await?;
    /// assert_eq!(seen.recv().await, Some(42));
    /// # Ok(()) }
    /// ```
    pub fn pipe<F, T>(
        &mut self,
        future: F,
        into_message: impl FnOnce(T) -> M + Send + 'static,
    ) -> TaskHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let target = self.myself.clone();
        self.track(async move {
            let output = future.await;
            target.tell_or_dead_letter(into_message(output)).await;
        })
    }

    /// Spawns `task`, to be cancelled when this actor stops or restarts.
    pub(super) fn track(&mut self, task: impl Future<Output = ()> + Send + 'static) -> TaskHandle {
        let handle = self.system.runtime().spawn(task).abort_handle();
        let tasks = &mut self.dependents.get_or_insert_with(Box::default).tasks;
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle.clone());
        TaskHandle(handle)
    }
}

impl<M: Message> ActorContext<M> {
    /// Cancels this actor's timers, pipes and streams, and shuts its children down: done when it
    /// stops, and before a restart (the fresh instance starts with none, as
    /// in Akka and OTP).
    pub(crate) fn release_dependents(&mut self) {
        let Some(dependents) = self.dependents.take() else {
            return;
        };
        for task in &dependents.tasks {
            task.abort();
        }
        for child in &dependents.children {
            child.signal(SystemSignal::Shutdown);
        }
    }
}

impl<M: Message> Drop for ActorContext<M> {
    fn drop(&mut self) {
        self.system.metrics().messages_handled(self.handled);
        self.release_dependents();
    }
}
