//! The shared part of an actor: its mailbox and the lifecycle facts that
//! outlive its task (state, exit reason). [`ActorRef`](super::ActorRef)s point
//! here; the actor's task owns the state itself.
//!
//! The cell is built in place in its `Arc` (the one `unsafe`: the value is
//! written before `assume_init`). Its lifecycle words: `state` is written
//! by the actor's task (release) and read by anyone (acquire); the exit
//! reason is set once (`WriteOnce`) before the state says `Stopped`; a
//! waiter counts itself in `exit_waiters` and the exit reads that count,
//! each behind a `SeqCst` fence, so either the waiter sees `Stopped` or the
//! exit sees the waiter and wakes it. The first waiter waits on a plain
//! `AtomicWaker` (the usual case: one `wait_for_exit` per actor); others
//! on a tokio `Notify` the first of them makes, which the exit wakes only
//! when the count says one is there. A waiter counts itself before it
//! claims the slot and frees the slot before it uncounts itself, so "more
//! waiters than the slot holds" never misses one.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

use futures::task::AtomicWaker;
use parking_lot::Mutex;

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::bonds::Bonds;
use super::kept_mail::{Kept, KeptMail};
use super::{ActorState, ExitReason};
use crate::address::ActorAddress;
use crate::mailbox::{DeadLetterReason, Mailbox, MailboxConfig, MailboxItem, SystemSignal};
use crate::message::{Message, MessageEnvelope, MessagePriority};
use crate::system::shared::SystemShared;
use crate::util::ActorId;
use crate::util::once_box::OnceBox;
use crate::util::write_once::WriteOnce;

/// A queued user message: a plain `tell` (no metadata, the hot path) or an
/// envelope (TTL and metadata, boxed so plain messages stay small).
#[derive(Debug)]
pub(crate) enum Delivery<M> {
    Tell(M),
    Envelope(Box<MessageEnvelope<M>>),
}

impl<M> Delivery<M> {
    pub(crate) fn into_message(self) -> M {
        match self {
            Delivery::Tell(m) => m,
            Delivery::Envelope(env) => env.payload,
        }
    }

    /// The delivery as an envelope (a plain message gets a fresh one
    /// addressed to `actor`).
    pub(crate) fn into_boxed_envelope(self, actor: ActorId) -> Box<MessageEnvelope<M>>
    where
        M: Message,
    {
        match self {
            Delivery::Tell(m) => Box::new(MessageEnvelope::new(ActorAddress::Id(actor), m)),
            Delivery::Envelope(env) => env,
        }
    }
}

impl<M: Message> MailboxItem for Delivery<M> {
    #[inline]
    fn priority(&self) -> MessagePriority {
        match self {
            Delivery::Tell(m) => m.priority(),
            Delivery::Envelope(env) => env.priority,
        }
    }
}

/// Lifecycle control that does not depend on the message type, so the system
/// and parents can stop, kill and inspect any actor.
pub(crate) trait ActorControl: Send + Sync {
    fn id(&self) -> ActorId;
    fn signal(&self, signal: SystemSignal) -> bool;
    fn kill(&self);
    fn is_closed(&self) -> bool;
    /// Whether a supervisor owns this actor (then the system's shutdown
    /// leaves it to that supervisor, which stops its children in order).
    fn is_supervised(&self) -> bool;
    fn wait_for_exit(&self) -> Pin<Box<dyn Future<Output = ExitReason> + Send + '_>>;
    /// Takes its task's abort handle (see [`ActorCell::take_abort_handle`]).
    fn take_abort_handle(&self) -> Option<AbortHandle>;
    /// What an operator's view shows of it.
    fn summary(&self) -> crate::system::ActorSummary;
    /// The cell, to recover a typed handle (see `ActorRef::from_any`).
    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// Told when a supervised actor has exited; how supervisors learn about
/// their children. (A supervisor learns of a child's start directly: it
/// runs the child's first `pre_start` itself, see `Prepared::start`.)
pub(crate) trait LifecycleWatcher: Send + Sync {
    /// Called once, after the exit reason is published and the actor has
    /// left the system's registry.
    fn exited(&self, actor: ActorId, reason: &ExitReason);
    /// Takes what an exiting instance that keeps its mailbox left queued
    /// (see [`super::kept_mail`]); called before the exit is published.
    fn keep(&self, mail: Box<dyn Kept>);
    /// Hands everything kept to the child's next instance, oldest first.
    fn take_kept(&self) -> Vec<Box<dyn Kept>>;
}

pub(crate) struct ActorCell<M: Message> {
    pub(crate) mailbox: Mailbox<Delivery<M>>,
    pub(crate) id: ActorId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) shared: Arc<SystemShared>,
    state: AtomicU8,
    /// Holds a name or service in the system's registry (released on exit).
    registered: AtomicBool,
    /// The id of the envelope being handled (0: the message came by `tell`).
    current_envelope: AtomicU64,
    exit: WriteOnce<ExitReason>,
    /// Wakes the waiter that holds the slot below.
    first_exit_waiter: AtomicWaker,
    /// Whether a `wait_for_exit` waits on `first_exit_waiter`.
    exit_slot_taken: AtomicBool,
    /// Wakes every other waiter; made by the first of them (most actors
    /// never have two waiters at once, and it is 32 bytes).
    exited: OnceBox<Notify>,
    /// Calls inside `wait_for_exit`: with none, the exit wakes nobody; with
    /// no more than the slot holds, it skips `exited` (whose wake-up takes a
    /// lock even with nobody waiting).
    exit_waiters: AtomicU32,
    /// Its task's abort handle: set when the task starts running it, taken
    /// back when a supervised worker's task moves on to a replacement.
    abort: Mutex<Option<AbortHandle>>,
    /// Set at spawn for actors someone watches (supervised children and
    /// root supervisors); `None` costs nothing on the message path.
    pub(crate) watcher: Option<Arc<dyn LifecycleWatcher>>,
    /// At exit, what is still queued goes to `watcher` for the replacement
    /// instead of the dead letters (a kept mailbox).
    keeps_mailbox: bool,
    /// Watches and links (see [`super::bonds`]), allocated at the first.
    pub(super) bonds: OnceBox<Mutex<Bonds<M>>>,
}

impl<M: Message> fmt::Debug for ActorCell<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorCell")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state())
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

impl<M: Message> ActorCell<M> {
    /// A new cell, built straight into its shared allocation: `Arc::new`
    /// would build it on the stack first and copy it over, hundreds of
    /// bytes moved in pieces that stall store-to-load forwarding on every
    /// spawn and restart.
    pub(crate) fn new(
        id: ActorId,
        name: Option<Arc<str>>,
        mailbox: MailboxConfig,
        shared: Arc<SystemShared>,
        watcher: Option<Arc<dyn LifecycleWatcher>>,
        keeps_mailbox: bool,
    ) -> Arc<Self> {
        let mut cell = Arc::<Self>::new_uninit();
        match Arc::get_mut(&mut cell) {
            Some(slot) => {
                slot.write(Self {
                    mailbox: Mailbox::new(mailbox),
                    id,
                    name,
                    shared,
                    state: AtomicU8::new(ActorState::Starting.to_u8()),
                    registered: AtomicBool::new(false),
                    current_envelope: AtomicU64::new(0),
                    exit: WriteOnce::new(),
                    first_exit_waiter: AtomicWaker::new(),
                    exit_slot_taken: AtomicBool::new(false),
                    exited: OnceBox::new(),
                    exit_waiters: AtomicU32::new(0),
                    abort: Mutex::new(None),
                    keeps_mailbox: keeps_mailbox && watcher.is_some(),
                    watcher,
                    bonds: OnceBox::new(),
                });
            }
            None => unreachable!("a fresh Arc has one owner"),
        }
        // SAFETY: written just above.
        unsafe { cell.assume_init() }
    }

    pub(crate) fn state(&self) -> ActorState {
        ActorState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: ActorState) {
        self.state.store(state.to_u8(), Ordering::Release);
    }

    /// Marks the actor as holding registry entries (before they are added).
    pub(crate) fn mark_registered(&self) {
        self.registered.store(true, Ordering::SeqCst);
    }

    /// Records the envelope now being handled (`None` when a plain `tell`).
    pub(crate) fn set_current_envelope(&self, id: Option<crate::util::MessageId>) {
        self.current_envelope.store(
            id.map_or(0, crate::util::MessageId::as_u64),
            Ordering::Relaxed,
        );
    }

    /// The envelope being handled, if the message came in one.
    pub(crate) fn current_envelope(&self) -> Option<crate::util::MessageId> {
        match self.current_envelope.load(Ordering::Relaxed) {
            0 => None,
            raw => Some(crate::util::MessageId::from_raw(raw)),
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }

    pub(crate) fn set_abort_handle(&self, handle: AbortHandle) {
        *self.abort.lock() = Some(handle);
    }

    /// Takes the task's abort handle back: the task outlives this actor
    /// (it goes on to run a replacement), so killing this actor must no
    /// longer reach it.
    pub(crate) fn take_abort_handle(&self) -> Option<AbortHandle> {
        self.abort.lock().take()
    }

    pub(crate) fn dead_letter(&self, delivery: Delivery<M>, reason: DeadLetterReason) {
        self.shared
            .dead_letters
            .record_owned(self.id, delivery.into_message(), reason, None);
    }

    /// Closes the mailbox and records everything still queued as dead
    /// letters: `ActorKilled` after a kill, `ActorCrashed` (with the exit)
    /// after any other abnormal exit, `ActorStopped` after a normal one. An
    /// actor that keeps its mailbox leaves it with its watcher instead, for
    /// its replacement.
    pub(crate) fn close_and_drain(&self, exit: &ExitReason) {
        self.mailbox.close();
        // Closed, a mailbox gains nothing more (a push in flight is already
        // counted): an empty one has nothing to drain.
        if self.mailbox.is_empty() {
            return;
        }
        let Some(mut inbox) = self.mailbox.receiver() else {
            // The actor task is the only receiver and drains after releasing
            // its own, so this cannot happen; say so loudly if it ever does.
            tracing::error!(actor = %self.id, "mailbox receiver busy while draining; queued messages not recorded");
            return;
        };
        if self.keeps_mailbox
            && let Some(watcher) = &self.watcher
        {
            let queued: VecDeque<_> = std::iter::from_fn(|| inbox.drain_one()).collect();
            if !queued.is_empty() {
                let kept = KeptMail::new(self.id, exit, self.shared.clone(), queued);
                watcher.keep(Box::new(kept));
            }
            return;
        }
        let (reason, crash) = DeadLetterReason::for_exit(exit);
        while let Some(delivery) = inbox.drain_one() {
            self.shared
                .dead_letters
                .record_owned(self.id, delivery.into_message(), reason, crash);
        }
    }

    /// Moves what the child's previous instance kept into this (new, not
    /// yet reachable) instance's mailbox, ahead of anything sent to it.
    pub(crate) fn take_kept_mail(&self) {
        let Some(watcher) = self.watcher.as_ref().filter(|_| self.keeps_mailbox) else {
            return;
        };
        for kept in watcher.take_kept() {
            // A child's instances all take one message type; a mismatch
            // cannot happen, and would dead-letter the mail as it drops.
            if let Ok(mail) = kept.into_any().downcast::<KeptMail<M>>() {
                mail.deliver_into(&self.mailbox, self.id);
            }
        }
    }

    /// Records the exit reason: readable from now on through `exit_reason`.
    /// Its one caller is the actor's exit (`ExitGuard::conclude`, which runs
    /// once per cell): a second call is ignored, and one racing the first
    /// would return before the first is readable (`WriteOnce::set` does not
    /// wait), so the exit must stay the only writer.
    pub(crate) fn record_exit(&self, reason: ExitReason) {
        let _ = self.exit.set(reason);
    }

    /// Marks the actor stopped and wakes everyone waiting for its exit. Called
    /// once it has left the system's registry, so a waiter that wakes up sees
    /// a system that no longer counts it.
    pub(crate) fn mark_stopped(&self) {
        self.set_state(ActorState::Stopped);
        // Pairs with the fence in `wait_for_exit`: either the waiter sees
        // `Stopped`, or this sees the waiter.
        fence(Ordering::SeqCst);
        let waiters = self.exit_waiters.load(Ordering::SeqCst);
        if waiters == 0 {
            return;
        }
        self.first_exit_waiter.wake();
        if waiters > u32::from(self.exit_slot_taken.load(Ordering::SeqCst))
            && let Some(exited) = self.exited.get()
        {
            exited.notify_waiters();
        }
    }

    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        self.recorded_exit().cloned()
    }

    /// The recorded exit reason, borrowed.
    pub(crate) fn recorded_exit(&self) -> Option<&ExitReason> {
        self.exit.get()
    }

    pub(crate) async fn wait_for_exit(&self) -> ExitReason {
        self.exit_waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let waiting = ExitWaiter {
            waiters: &self.exit_waiters,
            slot: (!self.exit_slot_taken.swap(true, Ordering::SeqCst))
                .then_some(&self.exit_slot_taken),
        };
        if waiting.slot.is_some() {
            return std::future::poll_fn(|cx| {
                self.first_exit_waiter.register(cx.waker());
                match self.final_exit() {
                    Some(reason) => std::task::Poll::Ready(reason.clone()),
                    None => std::task::Poll::Pending,
                }
            })
            .await;
        }
        let others = self.exited.get_or_init(Notify::new);
        loop {
            let exited = others.notified();
            tokio::pin!(exited);
            exited.as_mut().enable();
            // Pairs with the fence in `mark_stopped`: either this sees
            // `Stopped`, or the exit sees the `Notify` made above (and this
            // `Notified`, made before the fence, receives its wake-up).
            fence(Ordering::SeqCst);
            if let Some(reason) = self.final_exit() {
                return reason.clone();
            }
            exited.await;
        }
    }

    /// The exit reason once the actor is `Stopped` (left the registry).
    fn final_exit(&self) -> Option<&ExitReason> {
        (self.state() == ActorState::Stopped)
            .then(|| self.exit.get())
            .flatten()
    }
}

/// Counts one call inside `wait_for_exit`, however it ends, and frees the
/// waker slot it holds (first, see the module docs).
struct ExitWaiter<'a> {
    waiters: &'a AtomicU32,
    slot: Option<&'a AtomicBool>,
}

impl Drop for ExitWaiter<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot.store(false, Ordering::SeqCst);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<M: Message> ActorControl for ActorCell<M> {
    fn id(&self) -> ActorId {
        self.id
    }

    fn is_supervised(&self) -> bool {
        self.watcher.is_some()
    }

    fn wait_for_exit(&self) -> Pin<Box<dyn Future<Output = ExitReason> + Send + '_>> {
        Box::pin(ActorCell::wait_for_exit(self))
    }

    fn signal(&self, signal: SystemSignal) -> bool {
        self.mailbox.signal(signal)
    }

    fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }

    fn take_abort_handle(&self) -> Option<AbortHandle> {
        ActorCell::take_abort_handle(self)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn summary(&self) -> crate::system::ActorSummary {
        crate::system::ActorSummary {
            id: self.id,
            name: self.name.as_deref().map(str::to_owned),
            message_type: M::MESSAGE_TYPE,
            state: self.state(),
            mailbox_len: self.mailbox.len(),
            mailbox: self.mailbox.config(),
            supervised: self.watcher.is_some(),
        }
    }

    fn kill(&self) {
        // Taken, not just used: whoever moves the task on to a replacement
        // takes the handle under the same lock, so either this kill reaches
        // the task while it still carries this actor (and the task is not
        // reused), or it finds no handle and cannot reach the replacement.
        let task = self.abort.lock().take();
        match task {
            Some(handle) => handle.abort(),
            // No task yet: the actor is in a first `pre_start` run by its
            // supervisor, or in the instant between spawning the task and
            // storing its handle. Or no task any more: it was killed already,
            // or it has exited and its task runs a replacement. Fall back to
            // the fastest graceful stop.
            None => {
                self.mailbox.signal(SystemSignal::Shutdown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<SystemShared> {
        let metrics = Arc::new(crate::util::RuntimeMetrics::default());
        Arc::new(SystemShared::new(
            8,
            metrics,
            tokio::runtime::Handle::current(),
        ))
    }

    /// An unsupervised cell with an unbounded mailbox.
    fn unbounded_cell(shared: &Arc<SystemShared>) -> Arc<ActorCell<u64>> {
        ActorCell::new(
            ActorId::next(),
            None,
            MailboxConfig::unbounded(),
            shared.clone(),
            None,
            false,
        )
    }

    #[tokio::test]
    async fn drain_records_every_queued_message() {
        let shared = shared();
        let cell = unbounded_cell(&shared);
        for i in 0..3 {
            let _ = cell.mailbox.try_push(Delivery::Tell(i));
        }
        cell.close_and_drain(&ExitReason::Normal);
        assert_eq!(shared.dead_letters.count(DeadLetterReason::ActorStopped), 3);
        assert!(cell.mailbox.receiver().unwrap().try_recv().is_none());
        assert!(matches!(
            cell.mailbox.try_push(Delivery::Tell(9)),
            Err(crate::mailbox::PushError::Closed(_))
        ));
    }

    #[tokio::test]
    async fn exit_is_published_once_and_wakes_waiters() {
        let cell = unbounded_cell(&shared());
        let waiter = tokio::spawn({
            let cell = cell.clone();
            async move { cell.wait_for_exit().await }
        });
        tokio::task::yield_now().await;
        cell.record_exit(ExitReason::Killed);
        cell.record_exit(ExitReason::Normal);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "not stopped until marked so");
        cell.mark_stopped();
        assert_eq!(waiter.await.unwrap(), ExitReason::Killed);
        assert_eq!(cell.state(), ActorState::Stopped);
    }

    /// The exit racing a waiter that is just starting to wait, many times
    /// over on two worker threads: the waiter always wakes, whichever
    /// side comes first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_racing_the_exit_always_wakes() {
        // Miri interprets every step (and picks its own interleavings).
        const ROUNDS: usize = if cfg!(miri) { 20 } else { 2_000 };
        let shared = shared();
        for round in 0..ROUNDS {
            let cell = unbounded_cell(&shared);
            let waiter = tokio::spawn({
                let cell = cell.clone();
                async move { cell.wait_for_exit().await }
            });
            let stopper = tokio::spawn({
                let cell = cell.clone();
                async move {
                    cell.record_exit(ExitReason::Normal);
                    cell.mark_stopped();
                }
            });
            stopper.await.unwrap();
            let woke = tokio::time::timeout(std::time::Duration::from_secs(30), waiter).await;
            assert_eq!(
                woke.map(Result::unwrap).ok(),
                Some(ExitReason::Normal),
                "round {round}: the waiter never woke"
            );
            assert_eq!(cell.exit_waiters.load(Ordering::SeqCst), 0);
        }
    }
}
