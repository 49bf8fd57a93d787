//! [`ActorContext`]: what a handler can do besides changing its own state —
//! know itself, reach its system, spawn children, schedule timers, run work
//! off its turn ([`pipe`](ActorContext::pipe)), stop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

use super::ActorRef;
use super::cell::ActorControl;
use super::cell::Delivery;
use crate::address::ActorAddress;
use crate::mailbox::{DeadLetterReason, SystemSignal};
use crate::message::Message;
use crate::system::{ActorSpawnBuilder, ActorSystem, SendErrorKind};
use crate::util::{ActorId, time};

/// The context an actor's hooks run with.
///
/// Timers started here are cancelled, and children spawned here are shut
/// down, when the actor stops or restarts.
pub struct ActorContext<M: Message> {
    myself: ActorRef<M>,
    system: ActorSystem,
    stop_requested: bool,
    /// Messages handled since the last flush to the system's counter; the
    /// rest is flushed when the context is dropped, on every exit path
    /// (a kill included).
    pub(crate) handled: u64,
    /// Timers and children, allocated the first time either is used so that
    /// actors without them stay small.
    dependents: Option<Box<Dependents>>,
}

#[derive(Default)]
struct Dependents {
    /// Timers and pipes.
    timers: Vec<AbortHandle>,
    children: Vec<Arc<dyn ActorControl>>,
}

impl<M: Message> fmt::Debug for ActorContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorContext")
            .field("myself", &self.myself)
            .field("system", &self.system.name())
            .field(
                "timers",
                &self.dependents.as_ref().map_or(0, |d| d.timers.len()),
            )
            .field(
                "children",
                &self.dependents.as_ref().map_or(0, |d| d.children.len()),
            )
            .finish()
    }
}

/// A future started with [`ActorContext::pipe`]; cancel it with
/// [`cancel`](PipeHandle::cancel). Dropping the handle does not cancel.
#[derive(Debug, Clone)]
pub struct PipeHandle(AbortHandle);

impl PipeHandle {
    /// Cancels the future; its result will not be sent.
    pub fn cancel(&self) {
        self.0.abort();
    }

    /// Whether the result was sent (or refused), or the pipe was cancelled.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

/// A scheduled `send_after` or `send_interval`; cancel it with
/// [`cancel`](TimerHandle::cancel). Dropping the handle does not cancel.
#[derive(Debug, Clone)]
pub struct TimerHandle(AbortHandle);

impl TimerHandle {
    /// Cancels the timer; a message not yet sent will not be sent.
    pub fn cancel(&self) {
        self.0.abort();
    }

    /// Whether the timer has fired for the last time or was cancelled.
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
    pub fn send_after(&mut self, delay: Duration, message: M) -> TimerHandle {
        let target = self.myself.clone();
        self.track_timer(async move {
            tokio::time::sleep(delay).await;
            let _ = target.tell(message).await;
        })
    }

    /// Sends `make()` to this actor every `period` (first after one period)
    /// until cancelled or the actor stops. Ticks missed under load are
    /// skipped, not bunched up.
    pub fn send_interval<F>(&mut self, period: Duration, mut make: F) -> TimerHandle
    where
        F: FnMut() -> M + Send + 'static,
    {
        let target = self.myself.clone();
        self.track_timer(async move {
            let start = time::deadline_after(period);
            let mut ticks = tokio::time::interval_at(start, period.max(Duration::from_nanos(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                if target.tell(make()).await.is_err() {
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
    ) -> PipeHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let target = self.myself.clone();
        PipeHandle(self.track(async move {
            let output = future.await;
            if let Err(refused) = target.tell(into_message(output)).await {
                let reason = match refused.kind() {
                    SendErrorKind::ActorStopped => DeadLetterReason::ActorStopped,
                    SendErrorKind::MailboxFull => DeadLetterReason::DroppedNewest,
                };
                target
                    .cell()
                    .dead_letter(Delivery::Tell(refused.into_message()), reason);
            }
        }))
    }

    fn track_timer(&mut self, timer: impl Future<Output = ()> + Send + 'static) -> TimerHandle {
        TimerHandle(self.track(timer))
    }

    /// Spawns `task`, to be cancelled when this actor stops or restarts.
    fn track(&mut self, task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        let handle = self.system.runtime().spawn(task).abort_handle();
        let timers = &mut self.dependents.get_or_insert_with(Box::default).timers;
        timers.retain(|t| !t.is_finished());
        timers.push(handle.clone());
        handle
    }
}

impl<M: Message> ActorContext<M> {
    /// Cancels this actor's timers and shuts its children down: done when it
    /// stops, and before a restart (the fresh instance starts with none, as
    /// in Akka and OTP).
    pub(crate) fn release_dependents(&mut self) {
        let Some(dependents) = self.dependents.take() else {
            return;
        };
        for timer in &dependents.timers {
            timer.abort();
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
