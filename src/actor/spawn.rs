//! Spawning: creates an actor's cell, registers it, and runs its task — the
//! lifecycle loop `pre_start → handle messages → post_stop`, with restarts,
//! panic capture and the final accounting of every queued message.
//!
//! The message loop reads each message straight from its mailbox slot
//! (`MailboxReceiver::take_claimed_in_place`, the one `unsafe` here): the
//! slot stays valid until the receiver is used again, and the loop moves
//! the message out of it exactly once, before that.

use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::panic::AssertUnwindSafe;
use std::ptr;
use std::sync::Arc;

use futures::FutureExt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::task::AbortHandle;
use tracing::{Instrument, Span};

use super::cell::{ActorCell, ActorControl, Delivery, LifecycleWatcher};
use super::dock::{Dock, DockKey, Replacement};
use super::lifecycle::panic_text;
use super::running::Running;
use super::{Actor, ActorContext, ActorRef, ActorState, ErrorAction, ExitReason};
use crate::mailbox::{DeadLetterReason, MailboxConfig, MailboxReceiver, Ready, SystemSignal};
use crate::message::Message;
use crate::system::registry::Slot;
use crate::system::{ActorSystem, SystemError};
use crate::util::ActorId;

/// How a replacement actor is built for `ErrorAction::Restart`.
pub(crate) trait Rebuild<A>: Send + 'static {
    /// A fresh actor, or `None` if this actor cannot be rebuilt.
    fn rebuild(&mut self) -> Option<A>;
}

/// Spawned from an instance: no way to build another (and no bytes spent).
pub(crate) struct NoFactory;

impl<A> Rebuild<A> for NoFactory {
    fn rebuild(&mut self) -> Option<A> {
        None
    }
}

/// Spawned from a factory, which builds each replacement.
pub(crate) struct Factory<F>(pub(crate) F);

impl<A, F: FnMut() -> A + Send + 'static> Rebuild<A> for Factory<F> {
    fn rebuild(&mut self) -> Option<A> {
        Some((self.0)())
    }
}

/// Spawn-time settings besides the actor itself.
pub(crate) struct SpawnOptions {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) mailbox: MailboxConfig,
    /// Told of the actor's start and exit (its supervisor).
    pub(crate) watcher: Option<Arc<dyn LifecycleWatcher>>,
    /// A name to register in the system's registry before the actor runs.
    pub(crate) register: Option<Arc<str>>,
    /// A supervised worker that keeps its mailbox across restarts (see
    /// [`super::kept_mail`]).
    pub(crate) keep_mailbox: bool,
}

impl SpawnOptions {
    pub(crate) fn new(name: Option<Arc<str>>, mailbox: MailboxConfig) -> Self {
        Self {
            name,
            mailbox,
            watcher: None,
            register: None,
            keep_mailbox: false,
        }
    }
}

/// Starts `actor` in `system`; `factory` builds replacements for
/// `ErrorAction::Restart` (unsupervised actors restart in place; a
/// supervised one exits and leaves the restart to its supervisor).
pub(crate) fn spawn_actor<A, F>(
    system: &ActorSystem,
    options: SpawnOptions,
    actor: A,
    factory: F,
) -> Result<ActorRef<A::Message>, SystemError>
where
    A: Actor,
    F: Rebuild<A>,
{
    let prepared = prepare_actor(system, options, actor, factory)?;
    let myself = prepared.myself().clone();
    prepared.launch(myself.cell());
    Ok(myself)
}

/// Starts `actor` the way a supervisor starts a child: its first
/// `pre_start` runs here, in the caller's task, and only an actor that
/// started gets a task of its own (see [`Prepared::start`]). On failure, the
/// exit reason of an actor that never ran.
pub(crate) async fn start_actor<A: Actor>(
    system: &ActorSystem,
    options: SpawnOptions,
    actor: A,
) -> Result<ActorRef<A::Message>, ExitReason> {
    let prepared = prepare_in_place(system, options, actor)?;
    let myself = prepared.myself().clone();
    prepared.start(myself.cell()).await?;
    Ok(myself)
}

/// Builds the cell of an actor to be started in place and registers it; a
/// failure is the exit reason of an actor that never ran. A supervised
/// worker is then started in three steps rather than one `async fn`:
/// [`Prepared::pre_start_here`], then [`Replacement::run_in`] (moving the
/// spawn options into a future and out again stalled the store buffer — a
/// two-word name written as words, read back as one 16-byte move — on every
/// restart).
pub(crate) fn prepare_in_place<A: Actor>(
    system: &ActorSystem,
    options: SpawnOptions,
    actor: A,
) -> Result<Replacement<A>, ExitReason> {
    prepare_actor(system, options, actor, NoFactory)
        .map_err(|error| ExitReason::Error(error.to_string()))
}

/// Builds `actor`'s cell and registers it, without running anything yet.
fn prepare_actor<A, F>(
    system: &ActorSystem,
    options: SpawnOptions,
    actor: A,
    factory: F,
) -> Result<Prepared<A, F>, SystemError>
where
    A: Actor,
    F: Rebuild<A>,
{
    options
        .mailbox
        .validate()
        .map_err(SystemError::InvalidMailbox)?;
    let cell = ActorCell::new(
        ActorId::next(),
        options.name,
        options.mailbox,
        system.shared(),
        options.watcher,
        options.keep_mailbox,
    );
    // Before anyone can reach it: what its predecessor kept comes first.
    cell.take_kept_mail();
    let myself = ActorRef::from_cell(cell.clone());
    let registered = match options.register {
        Some(name) => system
            .registry()
            .register_name(name, &myself)
            .map_err(SystemError::from),
        None => Ok(()),
    };
    let slot = match registered.and_then(|()| system.register(myself.control())) {
        Ok(slot) => slot,
        Err(error) => {
            system.registry().release(cell.id);
            // Kept mail goes back for the next try.
            cell.close_and_drain(&ExitReason::Error(error.to_string()));
            return Err(error);
        }
    };
    let prepared = Prepared {
        actor,
        factory,
        ctx: ActorContext::new(myself, system.clone()),
        exit: ExitGuard {
            cell,
            system: system.clone(),
            slot,
            finished: false,
            tell_watcher: true,
        },
    };
    Ok(prepared)
}

/// An actor whose cell is built and registered but which has no task yet.
///
/// [`launch`](Self::launch) gives it a task that runs `pre_start` first.
/// [`start`](Self::start) runs the first `pre_start` in the caller's task
/// and launches only an actor that started: how a supervisor starts a
/// child, since it waits for that start anyway (OTP's synchronous
/// `start_link`), and doing it in place saves a task switch each way.
/// Dropped unlaunched, the actor exits as killed.
pub(crate) struct Prepared<A: Actor, F> {
    // Dropped in this order: the actor and its context before `exit`
    // publishes the exit.
    actor: A,
    factory: F,
    ctx: ActorContext<A::Message>,
    exit: ExitGuard<A::Message>,
}

impl<A: Actor, F: Rebuild<A>> Prepared<A, F> {
    /// The actor's handle.
    pub(crate) fn myself(&self) -> &ActorRef<A::Message> {
        self.ctx.myself()
    }

    /// Runs the actor's `pre_start` here, then spawns its task. On failure
    /// the actor has exited, with the returned reason; its watcher is not
    /// told (the caller has the reason). `cell` is the actor's own, held
    /// by the caller (see [`launch_as`](Self::launch_as)).
    async fn start(mut self, cell: &ActorCell<A::Message>) -> Result<(), ExitReason> {
        if let Err(reason) = self.pre_start_here().await {
            return Err(self.abandon(reason));
        }
        self.launch(cell);
        Ok(())
    }

    /// Runs the actor's `pre_start` here (by reference: moving a prepared
    /// actor in and out of the future costs more than the start itself).
    /// An actor that started still needs a task; one that failed, to be
    /// [`abandon`](Self::abandon)ed.
    pub(crate) async fn pre_start_here(&mut self) -> Result<(), ExitReason> {
        pre_start(&mut self.actor, &mut self.ctx, &self.exit).await
    }

    /// Ends an actor whose in-place `pre_start` failed with `reason`,
    /// without telling its watcher (the caller has the reason).
    pub(crate) fn abandon(self, reason: ExitReason) -> ExitReason {
        let Prepared {
            actor,
            ctx,
            mut exit,
            ..
        } = self;
        drop(ctx);
        drop(actor);
        exit.tell_watcher = false;
        exit.finish(reason.clone());
        reason
    }

    /// Spawns the actor's task, which starts it unless [`start`](Self::start)
    /// already did.
    fn launch(self, cell: &ActorCell<A::Message>) {
        self.launch_as(Self::run, cell);
    }

    /// Spawns a task running `task` of this actor, which aborting the
    /// actor aborts. `cell` is this actor's, borrowed from a handle the
    /// caller keeps: the task may end (and drop its own) before its abort
    /// handle is stored, and cloning it here cost every spawn two atomic
    /// updates (the system's handle two more).
    fn launch_as<L>(self, task: impl FnOnce(Self) -> L, cell: &ActorCell<A::Message>)
    where
        L: Future<Output = ()> + Send + 'static,
    {
        debug_assert_eq!(cell.id, self.exit.cell.id);
        let task = cell.shared.runtime.spawn(task(self));
        cell.set_abort_handle(task.abort_handle());
    }

    /// The actor's lifecycle, to run in its own task (marked as this
    /// actor's while polled: see [`super::running`]).
    fn run(self) -> impl Future<Output = ()> + Send {
        let actor = self.exit.cell.id;
        Running::new(actor, run(self))
    }

    /// The actor runs in a task that already exists (see [`super::dock`]),
    /// which `abort` aborts.
    pub(crate) fn adopt_task(&self, abort: AbortHandle) {
        self.exit.cell.set_abort_handle(abort);
    }
}

impl<A: Actor> Replacement<A> {
    /// Gives this started worker a task: the task of the exited instance
    /// `recycled` names if that task can take it (see [`super::dock`]),
    /// else a new one. Returns the key to its task. `cell` is this worker's,
    /// from a handle the caller keeps.
    pub(crate) fn run_in(self, recycled: Option<DockKey>, cell: &ActorCell<A::Message>) -> DockKey {
        let reused = recycled.as_ref().and_then(DockKey::dock::<A>);
        match (recycled, reused) {
            (Some(key), Some(dock)) => match dock.hand(key, self) {
                Ok(()) => dock.key(),
                // That task cannot take it (it was killed meanwhile, or is
                // being killed): a task of its own.
                Err(started) => started.launch_docked(cell),
            },
            _ => self.launch_docked(cell),
        }
    }

    /// Spawns a task that runs this actor and then, while its supervisor
    /// hands it replacements, those; returns the key to that task.
    fn launch_docked(self, cell: &ActorCell<A::Message>) -> DockKey {
        let dock = Dock::new();
        let key = dock.key();
        self.launch_as(|started| run_docked(started, dock), cell);
        key
    }
}

pin_project_lite::pin_project! {
    /// A docked worker's task: runs each instance in turn, waiting at its
    /// dock between them. Written out by hand so that the task holds one
    /// lifecycle future, replaced in place for each instance (an `async fn`
    /// looping over instances held a second one and a prepared instance,
    /// ≈250 bytes more per task).
    struct RunDocked<A: Actor, L, N> {
        // The instance running; `None` between instances.
        #[pin]
        lifecycle: Option<L>,
        // Makes the lifecycle of the next instance (`Prepared::run`, a
        // zero-sized function item).
        next_lifecycle: N,
        departure: Departure<A>,
    }
}

/// The task of a docked worker whose first instance is `first`.
fn run_docked<A: Actor>(
    first: Replacement<A>,
    dock: Arc<Dock<A>>,
) -> impl Future<Output = ()> + Send {
    RunDocked {
        departure: Departure(dock),
        lifecycle: Some(first.run()),
        next_lifecycle: Prepared::run,
    }
}

impl<A, L, N> Future for RunDocked<A, L, N>
where
    A: Actor,
    L: Future<Output = ()>,
    N: Fn(Replacement<A>) -> L,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            if let Some(lifecycle) = this.lifecycle.as_mut().as_pin_mut() {
                ready!(lifecycle.poll(cx));
                this.lifecycle.set(None);
            }
            match ready!(this.departure.0.poll_successor(cx)) {
                Some(next) => this.lifecycle.set(Some((this.next_lifecycle)(next))),
                None => return Poll::Ready(()),
            }
        }
    }
}

/// Tells a dock its task has ended, however it ends.
struct Departure<A: Actor>(Arc<Dock<A>>);

impl<A: Actor> Drop for Departure<A> {
    fn drop(&mut self) {
        self.0.depart();
    }
}

/// Messages an actor handles before adding them to the system's counter (the
/// rest is added when it stops): one shared atomic update per batch instead
/// of per message.
const HANDLED_FLUSH_BATCH: u64 = 64;

/// The receiving end of an actor's mailbox, held by its task.
type Inbox<'a, M> = MailboxReceiver<'a, Delivery<M>>;

/// How the message loop ended.
enum LoopExit {
    Stop(ExitReason),
    /// `on_error` chose `Restart` (an actor nobody supervises restarts in
    /// place).
    Restart,
}

/// The actor's task: the lifecycle loop, from `pre_start` (unless it already
/// ran in place) to the final accounting.
///
/// An `async` block capturing the prepared actor whole, not an `async fn`
/// of its four parts: an `async fn` keeps each parameter twice in its task
/// (as passed, and as the local it is moved into), 96 bytes more that tokio
/// copies five times per spawn. Captured whole (the block's first line: it
/// uses only fields, which it would otherwise capture one by one, dropped
/// in an order the language leaves unspecified), it is dropped in its
/// fields' declaration order if the task is killed: the actor and its
/// context (timers, children, the handled count) before `exit` publishes
/// the exit.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` would store its parameter twice (see above)"
)]
fn run<A, F>(mut prepared: Prepared<A, F>) -> impl Future<Output = ()> + Send
where
    A: Actor,
    F: Rebuild<A>,
{
    async move {
        let _ = &prepared;
        let Some(mut inbox) = prepared.exit.cell.mailbox.receiver() else {
            let reason = ExitReason::Error(
                "internal error: the actor's mailbox already had a receiver".into(),
            );
            return prepared.exit.finish(reason);
        };
        tracing::debug!(actor = %prepared.exit.cell.id, name = ?prepared.exit.cell.name, "actor running");
        // Already running if its supervisor ran the first `pre_start` in place
        // (`Prepared::start`; a flag passed in would cost every idle actor
        // another 128 bytes of task).
        let mut started = prepared.exit.cell.state() == ActorState::Running;
        let reason = loop {
            if !started
                && let Err(reason) =
                    pre_start(&mut prepared.actor, &mut prepared.ctx, &prepared.exit).await
            {
                break reason;
            }
            started = false;
            let loop_exit =
                match AssertUnwindSafe(serve(&mut prepared.actor, &mut prepared.ctx, &mut inbox))
                    .catch_unwind()
                    .await
                {
                    Ok(loop_exit) => loop_exit,
                    Err(panic) => LoopExit::Stop(prepared.exit.handler_panicked(panic)),
                };
            let restarting = matches!(loop_exit, LoopExit::Restart);
            if restarting {
                prepared.exit.cell.set_state(ActorState::Restarting);
            } else {
                prepared.exit.cell.mailbox.close();
                prepared.exit.cell.set_state(ActorState::Stopping);
            }
            let mut reason = match loop_exit {
                LoopExit::Stop(reason) => reason,
                LoopExit::Restart => ExitReason::Normal,
            };
            match AssertUnwindSafe(prepared.actor.post_stop(&prepared.ctx))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(actor = %prepared.exit.cell.id, %error, "post_stop failed")
                }
                Err(panic) => {
                    let panic = prepared.exit.panicked(panic);
                    if reason.is_normal() {
                        reason = panic;
                    }
                }
            }
            if !restarting {
                break reason;
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| prepared.factory.rebuild())) {
                Ok(Some(fresh)) => {
                    prepared.ctx.release_dependents();
                    prepared.actor = fresh;
                    prepared.ctx.system().metrics().restarted();
                    tracing::debug!(actor = %prepared.exit.cell.id, "actor restarted");
                }
                Ok(None) => {
                    break ExitReason::Error(
                        "restart requested but the actor was spawned without a factory; \
                         spawn it with spawn_with_factory to allow restarts"
                            .into(),
                    );
                }
                Err(panic) => break prepared.exit.panicked(panic),
            }
        };
        // The receiver goes first: draining takes it again.
        drop(inbox);
        let Prepared {
            actor, ctx, exit, ..
        } = prepared;
        drop(ctx);
        drop(actor);
        exit.finish(reason);
    }
}

/// Runs `pre_start`, moving the actor from `Starting` to `Running`; on
/// failure, the exit reason.
async fn pre_start<A: Actor>(
    actor: &mut A,
    ctx: &mut ActorContext<A::Message>,
    exit: &ExitGuard<A::Message>,
) -> Result<(), ExitReason> {
    exit.cell.set_state(ActorState::Starting);
    match AssertUnwindSafe(actor.pre_start(ctx)).catch_unwind().await {
        Err(panic) => Err(exit.panicked(panic)),
        Ok(Err(error)) => Err(ExitReason::Error(format!("pre_start failed: {error}"))),
        Ok(Ok(())) => {
            exit.cell.set_state(ActorState::Running);
            Ok(())
        }
    }
}

/// The message loop: system signals first, then user messages, until a stop
/// or restart is decided.
async fn serve<A: Actor>(
    actor: &mut A,
    ctx: &mut ActorContext<A::Message>,
    inbox: &mut Inbox<'_, A::Message>,
) -> LoopExit {
    // Whether the message being handled came in an envelope (its id is then
    // visible through `ActorContext::envelope_id`).
    let mut in_envelope = false;
    loop {
        // Also catches a stop requested from `pre_start`.
        if ctx.stop_requested() {
            return LoopExit::Stop(ExitReason::Normal);
        }
        // The handler's span, only when a subscriber wants DEBUG spans (one
        // relaxed load otherwise); for an envelope it hangs off the sender's,
        // so it is made while the envelope still holds that span.
        let mut traced = None;
        match std::future::poll_fn(|cx| inbox.poll_ready(cx)).await {
            Ready::Item => {}
            Ready::Signal(SystemSignal::Stop) => return LoopExit::Stop(ExitReason::Normal),
            Ready::Signal(SystemSignal::Shutdown) => return LoopExit::Stop(ExitReason::Shutdown),
        }
        // The message is read straight from its queue slot into the
        // handler's future (see `take_claimed_in_place`): ring −6 %,
        // ping-pong −8 %, tell −7 % against taking it by value. The block
        // ends `staging` before the handler's await, so the task never
        // keeps room for a second message.
        let message = {
            let mut staging = MaybeUninit::uninit();
            let delivery = inbox.take_claimed_in_place(&mut staging);
            // SAFETY: `delivery` is the item just taken, live until the inbox
            // is used again; the arm taken below moves its one field out, once.
            match unsafe { &*delivery } {
                Delivery::Tell(message) => {
                    // SAFETY: see above.
                    let message = unsafe { ptr::read(message) };
                    if in_envelope {
                        in_envelope = false;
                        ctx.myself().cell().set_current_envelope(None);
                    }
                    if tracing_on() {
                        traced = Some(handler_span(ctx, None));
                    }
                    message
                }
                Delivery::Envelope(envelope) => {
                    // SAFETY: see above.
                    let envelope = unsafe { ptr::read(envelope) };
                    if envelope.is_expired() {
                        ctx.myself()
                            .cell()
                            .dead_letter(Delivery::Envelope(envelope), DeadLetterReason::Expired);
                        continue;
                    }
                    in_envelope = true;
                    ctx.myself().cell().set_current_envelope(Some(envelope.id));
                    if tracing_on() {
                        traced = Some(handler_span(ctx, envelope.span.id()));
                    }
                    envelope.payload
                }
            }
        };
        ctx.handled += 1;
        if ctx.handled == HANDLED_FLUSH_BATCH {
            ctx.handled = 0;
            let metrics = ctx.system().metrics();
            metrics.messages_handled(HANDLED_FLUSH_BATCH);
            metrics.mailbox_depth(ctx.myself().mailbox_len());
        }
        let handled = match traced {
            None => actor.handle_message(message, ctx).await,
            Some(span) => in_span(actor.handle_message(message, ctx), *span).await,
        };
        if let Err(error) = handled {
            let text = ErrorText::new(&error, ctx.myself().cell().is_supervised());
            match actor.on_error(error, ctx).await {
                ErrorAction::Resume => {}
                ErrorAction::Restart => {
                    return match text.into_restart_request() {
                        // Its supervisor restarts it (applying its strategy
                        // and counting the restart): it exits abnormally.
                        Some(reason) => LoopExit::Stop(ExitReason::Error(reason)),
                        None => LoopExit::Restart,
                    };
                }
                ErrorAction::Stop => {
                    let error = text.error();
                    tracing::info!(actor = %ctx.id(), %error, "actor stops after an error");
                    return LoopExit::Stop(ExitReason::Normal);
                }
                ErrorAction::Escalate => {
                    return LoopExit::Stop(ExitReason::Escalated(text.into_error()));
                }
            }
        }
    }
}

/// What a supervised actor's exit reason says before the error, when its
/// `on_error` asked for a restart.
const RESTART_REQUESTED: &str = "restart requested after: ";

/// A handler error's text, formatted once, before `on_error` consumes the
/// error. For a supervised actor it starts with [`RESTART_REQUESTED`]
/// already (a requested restart makes that text its exit reason); the
/// other uses skip it.
struct ErrorText {
    text: String,
    /// Bytes of prefix in `text`.
    prefix: usize,
}

impl ErrorText {
    fn new(error: &dyn std::fmt::Display, supervised: bool) -> Self {
        if supervised {
            // Room for the prefix and a typical error up front: `format!`
            // would guess no capacity here and grow the string twice.
            let mut text = String::with_capacity(RESTART_REQUESTED.len() + 64);
            text.push_str(RESTART_REQUESTED);
            let _ = write!(text, "{error}");
            Self {
                text,
                prefix: RESTART_REQUESTED.len(),
            }
        } else {
            Self {
                text: error.to_string(),
                prefix: 0,
            }
        }
    }

    /// The error's own text.
    fn error(&self) -> &str {
        &self.text[self.prefix..]
    }

    fn into_error(mut self) -> String {
        self.text.drain(..self.prefix);
        self.text
    }

    /// The exit reason's text of a supervised actor that asked for a
    /// restart; `None` for an actor nobody supervises.
    fn into_restart_request(self) -> Option<String> {
        (self.prefix > 0).then_some(self.text)
    }
}

/// `future` polled inside `span`, boxed and out of line so that the message
/// loop's fast path does not carry the traced path's code or state.
#[cold]
fn in_span<'a, F>(future: F, span: Span) -> Pin<Box<dyn Future<Output = F::Output> + Send + 'a>>
where
    F: Future + Send + 'a,
{
    Box::pin(future.instrument(span))
}

/// Whether handler spans are wanted: DEBUG enabled for some subscriber.
#[inline(always)]
fn tracing_on() -> bool {
    tracing::level_enabled!(tracing::Level::DEBUG)
}

/// The span a message is handled in, a child of `parent` (the sender's span,
/// for an envelope).
#[cold]
fn handler_span<M: Message>(ctx: &ActorContext<M>, parent: Option<tracing::Id>) -> Box<Span> {
    Box::new(tracing::debug_span!(
        parent: parent,
        "handle",
        actor = %ctx.id(),
        name = ctx.myself().name(),
        message_type = M::MESSAGE_TYPE,
    ))
}

/// Accounts for an actor's end on every path: a normal finish, or the task
/// being dropped (killed by `abort`, or its runtime shutting down).
struct ExitGuard<M: Message> {
    cell: Arc<ActorCell<M>>,
    system: ActorSystem,
    slot: Slot,
    finished: bool,
    /// Whether the cell's watcher hears of the exit (not for a failed
    /// in-place start, whose caller has the reason).
    tell_watcher: bool,
}

impl<M: Message> ExitGuard<M> {
    fn panicked(&self, payload: Box<dyn std::any::Any + Send>) -> ExitReason {
        let text = panic_text(payload);
        tracing::warn!(actor = %self.cell.id, panic = %text, "actor panicked");
        self.system.metrics().panic_caught();
        ExitReason::Panic(text)
    }

    /// A panic in the message loop is a handler's (or `on_error`'s): the
    /// message it was handling is gone with it; say so.
    fn handler_panicked(&self, payload: Box<dyn std::any::Any + Send>) -> ExitReason {
        let reason = self.panicked(payload);
        self.cell.shared.dead_letters.record_crashed_in_handler(
            self.cell.id,
            M::MESSAGE_TYPE,
            &reason,
        );
        reason
    }

    fn finish(mut self, reason: ExitReason) {
        self.finished = true;
        self.conclude(reason);
    }

    fn conclude(&self, reason: ExitReason) {
        // A linked actor's exit signal may have decided the reason.
        let reason = self.cell.exit_reason_with_links(reason);
        self.cell.close_and_drain(&reason);
        tracing::debug!(actor = %self.cell.id, %reason, "actor stopped");
        // The reason first (so `shutdown` reports see it), then the registry,
        // then the waiters (so they see a system that no longer counts it),
        // then the supervisor.
        self.cell.record_exit(reason);
        // Pairs with the registry's fence after registering: either it sees
        // this exit, or this sees its registration. (And with a new bond's,
        // below.)
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        if self.cell.is_registered() {
            self.system.registry().release(self.cell.id);
        }
        // The mailbox is closed and the fence above also pairs with the one
        // a new watch or link makes (see `bonds`).
        let severed = self
            .cell
            .recorded_exit()
            .and_then(|r| self.cell.seal_bonds(r));
        self.system.deregister(self.slot);
        self.cell.mark_stopped();
        let Some(reason) = self.cell.recorded_exit() else {
            return;
        };
        if let Some(severed) = severed {
            severed.notify(self.cell.id, reason);
        }
        if self.tell_watcher
            && let Some(watcher) = &self.cell.watcher
        {
            watcher.exited(self.cell.id, reason);
        }
    }
}

impl<M: Message> Drop for ExitGuard<M> {
    fn drop(&mut self) {
        if !self.finished {
            self.conclude(ExitReason::Killed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::system::SystemConfig;

    /// A word of state, like most small actors.
    struct Counter(u64);

    impl Actor for Counter {
        type Message = u64;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            n: u64,
            _: &mut ActorContext<u64>,
        ) -> Result<(), Infallible> {
            self.0 += n;
            Ok(())
        }
    }

    /// tokio allocates a task in 128-byte steps: a docked worker's task
    /// may add only its dock and the between-instances tag to the plain
    /// lifecycle, or every supervised actor would pay another step.
    #[tokio::test]
    async fn a_docked_task_adds_at_most_two_words_to_the_lifecycle() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let prepare = || {
            let options = SpawnOptions::new(None, MailboxConfig::unbounded());
            prepare_actor(&system, options, Counter(0), NoFactory).unwrap()
        };
        let plain = std::mem::size_of_val(&prepare().run());
        let docked = std::mem::size_of_val(&run_docked(prepare(), Dock::new()));
        assert!(
            docked <= plain + 16,
            "docked task {docked} B, plain lifecycle {plain} B"
        );
    }

    /// Text on the heap: a message moved out of its queue slot twice, or
    /// read from a freed block, is a double free or a use after free that
    /// Miri reports.
    #[derive(Debug)]
    struct Note(String);

    impl Message for Note {
        const MESSAGE_TYPE: &'static str = "test.note";
    }

    /// Forwards each note's text.
    struct Relay(tokio::sync::mpsc::UnboundedSender<String>);

    impl Actor for Relay {
        type Message = Note;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            note: Note,
            _: &mut ActorContext<Note>,
        ) -> Result<(), Infallible> {
            let _ = self.0.send(note.0);
            Ok(())
        }
    }

    /// The message loop reads each message in place from its slot, for
    /// plain tells and envelopes alike, across several queue blocks, and an
    /// expired envelope goes to the dead letters instead: every text arrives
    /// once, in order (run under Miri, see the README).
    #[tokio::test]
    async fn the_loop_moves_each_message_out_of_its_slot_once() {
        use crate::address::ActorAddress;
        use crate::message::MessageEnvelope;

        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let (texts, mut relayed) = tokio::sync::mpsc::unbounded_channel();
        let relay = system.spawn(Relay(texts)).unwrap();
        let envelope =
            |text: String| MessageEnvelope::new(ActorAddress::Id(relay.id()), Note(text));
        let mut expected = Vec::new();
        for i in 0..20 {
            let text = format!("note {i}");
            expected.push(text.clone());
            if i % 3 == 0 {
                relay.tell_envelope(envelope(text)).await.unwrap();
            } else {
                relay.tell(Note(text)).await.unwrap();
            }
            if i % 7 == 0 {
                let expired = envelope(format!("expired {i}")).with_ttl(std::time::Duration::ZERO);
                relay.tell_envelope(expired).await.unwrap();
            }
        }
        let mut got = Vec::new();
        while got.len() < expected.len() {
            got.push(relayed.recv().await.unwrap());
        }
        assert_eq!(got, expected);
        relay.stop();
        relay.wait_for_exit().await;
        assert_eq!(
            system.dead_letters().count(DeadLetterReason::Expired),
            3,
            "the expired envelopes"
        );
    }

    /// A page-sized message, to see how much room the task keeps for it.
    #[derive(Debug)]
    struct Page([u8; 4096]);

    impl Message for Page {
        const MESSAGE_TYPE: &'static str = "test.page";
    }

    struct Reader;

    impl Actor for Reader {
        type Message = Page;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            page: Page,
            _: &mut ActorContext<Page>,
        ) -> Result<(), Infallible> {
            std::hint::black_box(&page.0);
            Ok(())
        }
    }

    /// The message is moved from its queue slot into the handler's future,
    /// so the task holds one message (in that future), not a second copy
    /// kept by the loop across the handler's await.
    #[tokio::test]
    async fn the_task_keeps_room_for_one_message_not_two() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let options = SpawnOptions::new(None, MailboxConfig::unbounded());
        let prepared = prepare_actor(&system, options, Reader, NoFactory).unwrap();
        let task = std::mem::size_of_val(&prepared.run());
        assert!(task < 2 * 4096, "the task is {task} B for a 4096 B message");
    }
}
