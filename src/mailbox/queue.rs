//! [`Mailbox`]: a multi-producer, single-consumer queue with a system lane,
//! optional capacity with backpressure, and optional priority order.
//!
//! # How it works
//! One atomic word holds the number of queued user items and two flags
//! (closed, receiver parked); a separate byte holds the pending system
//! signals, so the receiver's per-message check of the system lane reads a
//! word that senders do not write. A sender *reserves*
//! a slot by a compare-and-swap on that word (which also fails fast when
//! the mailbox is closed or full) and then pushes onto a lock-free queue.
//! The receiver *claims* an item by decrementing the count, then pops it
//! (spinning for the few nanoseconds a concurrent push may still be in
//! flight). Because every item is counted before it is pushed and claimed
//! before it is popped, the count, the capacity check and the
//! close-then-drain protocol agree exactly: after [`Mailbox::close`],
//! [`MailboxReceiver::drain_one`] returns every item that was ever accepted.
//!
//! # Waking the receiver
//! The receiver's waker sits in a plain slot guarded by the state word
//! rather than in an `AtomicWaker`, which would cost two atomic
//! read-modify-writes and a waker clone on every park and two more on every
//! wake. A parking receiver clears a `waker_free` flag and sets `PARKED`
//! in the state word; the one sender (or signal) whose compare-and-swap
//! clears `PARKED` wakes the waker by reference and then *resolves* the
//! park by setting `waker_free` with a plain release store. One party
//! resolves each park and the receiver parks again only once the last park
//! is resolved, so no locked instruction is needed (a locked one, right
//! after the wake's stores, costs a store-buffer drain on every message of
//! a hop-by-hop workload). The receiver writes the slot only while no park
//! is outstanding and only when the waker changed (a task's waker rarely
//! does). So the slot is never written while a sender reads it, and a park
//! costs one atomic read-modify-write.
//!
//! # Who touches which word, and when
//! * `state` (count, `CLOSED`, `PARKED`): senders add one with a
//!   compare-and-swap that also clears `PARKED` (the one that clears it
//!   wakes); the receiver subtracts what it claims and sets `PARKED`;
//!   `DropOldest` senders subtract the victim they claim; `close` sets
//!   `CLOSED`; a signal clears `PARKED`. Every change is a read-modify-write
//!   of the one word, so all of them are totally ordered.
//! * `claimed`: the receiver only (its batch).
//! * `signals`: senders set bits; only the receiver clears one.
//! * the waker slot: the receiver, while no park is outstanding
//!   (`waker_free` set); the one party that cleared `PARKED`, until it sets
//!   `waker_free` again.
//! * `blocked_senders` and `room`: a `Block` sender registers before it
//!   looks for room; the receiver notifies after each claim when the count
//!   is non-zero; `close` notifies every waiter when it is non-zero.
//!
//! Where one side stores and then loads what the other stored (a signal
//! against a park, a blocked sender against a claim), both sides make a
//! read-modify-write of `state`, so the handshake holds with
//! acquire/release alone; loom does not model `SeqCst` loads, and with a
//! plain load there the models report lost wake-ups that `SeqCst`'s total
//! order rules out. Checked by Miri over this module's tests and by the
//! loom models in `mailbox::loom_models` (park/wake, `DropOldest`, `Block`,
//! close versus push).
//!
//! Found that way: `pop_claimed_in_place` once fell back with
//! `unwrap_or_else(|| staging.write(..))`; the closure borrowed `staging`
//! uniquely even when not called, which (under Stacked Borrows) invalidated
//! the pointer into `staging` just returned for a priority lane's item: a
//! read through a dead pointer on every priority message. It is a `match`
//! now; the priority tests under Miri are its regression test.

use std::fmt;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::ptr;

use std::task::{Context, Poll, Waker};

use super::lanes::Lanes;
use super::{Backpressure, MailboxConfig, MailboxItem, MailboxKind, SystemSignal};
use crate::util::once_box::OnceBox;
use crate::util::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use crate::util::sync::{Notify, SpinWait, UnsafeCell};

const CLOSED: usize = 0b01;
const PARKED: usize = 0b10;
const ONE: usize = 0b100;
const LEN_SHIFT: u32 = 2;

#[inline]
const fn len_of(state: usize) -> usize {
    state >> LEN_SHIFT
}

const fn signal_bit(signal: SystemSignal) -> u8 {
    match signal {
        SystemSignal::Stop => 0b01,
        SystemSignal::Shutdown => 0b10,
    }
}

/// What the receiver got.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<T> {
    /// A system-lane signal (always served first).
    Signal(SystemSignal),
    /// A user message.
    Item(T),
}

/// What a receiver found ready: a signal, or a user item it has claimed
/// but not yet taken out of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    Signal(SystemSignal),
    Item,
}

/// A push that was accepted.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a dropped item must be recorded as a dead letter"]
pub enum Pushed<T> {
    /// The item is queued.
    Queued,
    /// The item is queued and this older item was dropped to make room
    /// (`Backpressure::DropOldest`).
    DroppedOldest(T),
    /// The mailbox was full and the item itself was dropped
    /// (`Backpressure::DropNewest`).
    DroppedNewest(T),
}

/// A push that was refused; the item comes back.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The mailbox is closed: its actor has stopped.
    Closed(T),
    /// The mailbox is full (`Block` via a non-waiting push, or `Reject`).
    Full(T),
}

impl<T> PushError<T> {
    /// The refused item.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Closed(t) | PushError::Full(t) => t,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Closed(_) => "Closed(..)",
            PushError::Full(_) => "Full(..)",
        })
    }
}

/// The receiver's waker, guarded by the mailbox's `PARKED` and
/// `waker_free` flags (see the module docs) instead of a lock of its own.
struct WakerSlot(UnsafeCell<Option<Waker>>);

// SAFETY: the waker is `Send + Sync`; the slot is written only by the
// receiver while no sender can read it, and read only by the one sender
// resolving the current park, per the protocol in the module docs.
unsafe impl Sync for WakerSlot {}

/// A mailbox: many senders, one receiver.
///
/// ```
/// use airssys_rt::mailbox::{Backpressure, Mailbox, MailboxConfig, MailboxItem, PushError, Pushed, Received};
/// use airssys_rt::message::MessagePriority;
///
/// #[derive(Debug, PartialEq)]
/// struct Job(u32);
/// impl MailboxItem for Job {
///     fn priority(&self) -> MessagePriority { MessagePriority::Normal }
/// }
///
/// let mb = Mailbox::new(MailboxConfig::bounded(1, Backpressure::Reject));
/// assert_eq!(mb.try_push(Job(1)), Ok(Pushed::Queued));
/// assert_eq!(mb.try_push(Job(2)), Err(PushError::Full(Job(2))));
/// let mut rx = mb.receiver().expect("the only receiver");
/// assert_eq!(rx.try_recv(), Some(Received::Item(Job(1))));
/// mb.close();
/// assert_eq!(mb.try_push(Job(3)), Err(PushError::Closed(Job(3))));
/// ```
#[repr(C)]
pub struct Mailbox<T> {
    // The fields every message touches come first, so that they share as
    // few cache lines as possible (`repr(C)` keeps this order).
    state: AtomicUsize,
    /// Items the receiver has claimed from the count but not yet popped;
    /// written only by the receiver. Kept here (not in the receiver) so a
    /// batch survives the receiver being dropped and taken again.
    claimed: AtomicUsize,
    /// Allocated on the first push: an actor that is never sent anything
    /// pays one pointer for its user lane.
    lanes: OnceBox<Lanes<T>>,
    capacity: usize,
    rx_waker: WakerSlot,
    /// The system lane: one bit per pending [`SystemSignal`]. Read by the
    /// receiver before every message, written only when signals come and go.
    signals: AtomicU8,
    backpressure: Backpressure,
    /// Bounded with `Block`: the receiver must look for waiting senders.
    senders_may_block: bool,
    kind: MailboxKind,
    /// No park is outstanding, so no sender reads the waker slot (see
    /// [`resolve_park`](Self::resolve_park)).
    waker_free: AtomicBool,
    receiver_taken: AtomicBool,
    blocked_senders: AtomicUsize,
    dropped: AtomicU64,
    room: Notify,
}

impl<T> fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("backpressure", &self.backpressure)
            .field("closed", &self.is_closed())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<T> Mailbox<T> {
    /// Queued user items.
    pub fn len(&self) -> usize {
        len_of(self.state.load(SeqCst)) + self.claimed.load(Relaxed)
    }

    /// Whether no user item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity, or `None` when unbounded.
    pub fn capacity(&self) -> Option<usize> {
        (self.capacity != usize::MAX).then_some(self.capacity)
    }

    /// The configuration this mailbox was built with (capacity clamped).
    pub fn config(&self) -> MailboxConfig {
        MailboxConfig {
            kind: self.kind,
            capacity: self.capacity(),
            backpressure: self.backpressure,
        }
    }

    /// The backpressure strategy.
    pub fn backpressure(&self) -> Backpressure {
        self.backpressure
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.state.load(SeqCst) & CLOSED != 0
    }

    /// Items dropped by `DropOldest` / `DropNewest` so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(SeqCst)
    }
}

impl<T: MailboxItem> Mailbox<T> {
    /// Builds a mailbox. An invalid capacity (see [`MailboxConfig::validate`])
    /// is clamped to `1..=MAX_CAPACITY`; the spawn path validates first.
    pub fn new(config: MailboxConfig) -> Self {
        let capacity = match config.capacity {
            None => usize::MAX,
            Some(c) => c.clamp(1, MailboxConfig::MAX_CAPACITY),
        };
        Self {
            state: AtomicUsize::new(0),
            rx_waker: WakerSlot(UnsafeCell::new(None)),
            lanes: OnceBox::new(),
            kind: config.kind,
            capacity,
            backpressure: config.backpressure,
            signals: AtomicU8::new(0),
            claimed: AtomicUsize::new(0),
            waker_free: AtomicBool::new(true),
            receiver_taken: AtomicBool::new(false),
            senders_may_block: capacity != usize::MAX && config.backpressure == Backpressure::Block,
            blocked_senders: AtomicUsize::new(0),
            room: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Pushes without waiting. A full mailbox applies its backpressure
    /// strategy, except that `Block` reports [`PushError::Full`] here.
    #[inline(always)]
    pub fn try_push(&self, item: T) -> Result<Pushed<T>, PushError<T>> {
        let mut state = self.state.load(SeqCst);
        let overflowed = loop {
            if state & CLOSED != 0 {
                return Err(PushError::Closed(item));
            }
            let full = len_of(state) >= self.capacity;
            if full {
                match self.backpressure {
                    Backpressure::Block | Backpressure::Reject => {
                        return Err(PushError::Full(item));
                    }
                    Backpressure::DropNewest => {
                        self.dropped.fetch_add(1, SeqCst);
                        return Ok(Pushed::DroppedNewest(item));
                    }
                    Backpressure::DropOldest => {}
                }
            }
            match self
                .state
                .compare_exchange_weak(state, (state + ONE) & !PARKED, SeqCst, SeqCst)
            {
                Ok(_) => break full,
                Err(actual) => state = actual,
            }
        };
        self.lanes
            .get_or_init(|| Lanes::new(self.config()))
            .push(item);
        if state & PARKED != 0 {
            self.wake_receiver();
        }
        if overflowed && let Some(victim) = self.evict_one() {
            return Ok(Pushed::DroppedOldest(victim));
        }
        Ok(Pushed::Queued)
    }

    /// Pushes, waiting for room while a `Block` mailbox is full. Other
    /// strategies never wait. Cancel-safe: dropping the future drops the item.
    pub async fn push(&self, item: T) -> Result<Pushed<T>, PushError<T>> {
        match self.try_push(item) {
            Err(PushError::Full(item)) if self.waits_when_full() => self.push_when_room(item).await,
            pushed => pushed,
        }
    }

    /// Whether a full mailbox makes [`push`](Self::push) wait (`Block`).
    #[inline]
    pub fn waits_when_full(&self) -> bool {
        self.backpressure == Backpressure::Block
    }

    /// The slow path of [`push`](Self::push): `item` found the mailbox full;
    /// wait until there is room (or the mailbox closes).
    pub async fn push_when_room(&self, item: T) -> Result<Pushed<T>, PushError<T>> {
        let mut unsent = Some(item);
        match self.push_from_when_room(&mut unsent).await {
            Some(pushed) => pushed,
            // Not reached: the item was put there just above.
            None => Ok(Pushed::Queued),
        }
    }

    /// [`push_when_room`](Self::push_when_room) for an item left in `unsent`
    /// while it waits: if the future is dropped before the push, the item
    /// is still there for the caller (who may record it as undelivered).
    /// `None` if `unsent` was empty (there was nothing to push).
    pub(crate) async fn push_from_when_room(
        &self,
        unsent: &mut Option<T>,
    ) -> Option<Result<Pushed<T>, PushError<T>>> {
        let _waiting = BlockedSender::register(&self.blocked_senders);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            // A read-modify-write before looking for room (it changes
            // nothing): it reads the latest state word, so either it sees the
            // receiver's claim (room), or that claim (a later
            // read-modify-write) sees this sender registered and notifies.
            // With `try_push`'s plain load alone this needs `SeqCst`'s total
            // order, which loom cannot check; it costs only a blocked sender.
            self.state.fetch_add(0, SeqCst);
            match self.try_push(unsent.take()?) {
                Err(PushError::Full(back)) => *unsent = Some(back),
                other => return Some(other),
            }
            room.await;
        }
    }

    /// Raises a signal on the system lane. Returns `false` if the mailbox is
    /// closed (the actor is already stopping) or the same signal is already
    /// pending (raising it twice is the same as once). When several kinds are
    /// pending, `Shutdown` is served before `Stop`.
    pub fn signal(&self, signal: SystemSignal) -> bool {
        if self.is_closed() {
            return false;
        }
        let bit = signal_bit(signal);
        if self.signals.fetch_or(bit, SeqCst) & bit != 0 {
            return false;
        }
        // A read-modify-write, not a load: it reads the latest state word,
        // so either it sees the receiver's park, or the park (a later
        // read-modify-write of the word) sees this signal. That holds with
        // acquire/release alone (with a plain load it needs `SeqCst`'s
        // total order, which loom cannot check).
        if self.state.fetch_and(!PARKED, SeqCst) & PARKED != 0 {
            self.wake_receiver();
        }
        true
    }

    /// Clears `PARKED` if it is set, starting from `state` (a recent load,
    /// updated to the word as this call leaves it). `true` if this call
    /// cleared it: the caller then resolves that park.
    fn take_park(&self, state: &mut usize) -> bool {
        while *state & PARKED != 0 {
            match self
                .state
                .compare_exchange_weak(*state, *state & !PARKED, SeqCst, SeqCst)
            {
                Ok(_) => {
                    *state &= !PARKED;
                    return true;
                }
                Err(actual) => *state = actual,
            }
        }
        false
    }

    /// Wakes the parked receiver; called only by whoever cleared `PARKED`
    /// (see the module docs).
    fn wake_receiver(&self) {
        self.rx_waker.0.with(|slot| {
            // SAFETY: this caller resolves the current park, and the
            // receiver does not write the slot until it is resolved, below.
            if let Some(waker) = unsafe { &*slot } {
                waker.wake_by_ref();
            }
        });
        self.resolve_park();
    }

    /// Records that the current park is resolved: its waker was woken (or
    /// the receiver took the park back) and nobody reads the slot for it
    /// any more. Exactly one party resolves each park, and a receiver parks
    /// again only once the last park is resolved, so a plain release store
    /// does it: no locked instruction, which after a wake would wait for the
    /// wake's stores to drain.
    fn resolve_park(&self) {
        self.waker_free.store(true, Release);
    }

    /// Receiver only: waits until the last park is resolved, so that no
    /// sender reads the waker slot. Only a sender still inside
    /// `wake_by_ref` can hold it up, for nanoseconds.
    fn wait_for_waker(&self) {
        if !self.waker_free.load(Acquire) {
            let backoff = SpinWait::new();
            while !self.waker_free.load(Acquire) {
                backoff.snooze();
            }
        }
    }

    /// Closes the mailbox: every later push fails with [`PushError::Closed`]
    /// and blocked senders wake up to get their item back. Returns `true` for
    /// the call that closed it.
    pub fn close(&self) -> bool {
        // Closing stays closed: a second call (an actor's exit closes from
        // its loop and again when it drains) needs no read-modify-write,
        // and whoever closed it first woke the blocked senders.
        if self.is_closed() {
            return false;
        }
        let previous = self.state.fetch_or(CLOSED, SeqCst);
        // A blocked sender registers before its read-modify-write of
        // `state`: if that came first, the one above sees the registration;
        // if not, the sender's sees `CLOSED`. With none registered, no
        // wake-up (it takes a lock and two atomic updates, twice per exit).
        if self.blocked_senders.load(SeqCst) > 0 {
            self.room.notify_waiters();
        }
        previous & CLOSED == 0
    }

    /// The receiving end, or `None` while another receiver exists. Only the
    /// receiver pops, so exactly one consumer touches the queue at a time.
    pub fn receiver(&self) -> Option<MailboxReceiver<'_, T>> {
        (!self.receiver_taken.swap(true, SeqCst)).then_some(MailboxReceiver { mailbox: self })
    }

    /// Takes the most urgent pending signal (receiver only: senders only
    /// ever set bits, so clearing one cannot lose another).
    fn take_signal(&self) -> Option<SystemSignal> {
        let pending = self.signals.load(SeqCst);
        let signal = [SystemSignal::Shutdown, SystemSignal::Stop]
            .into_iter()
            .find(|s| pending & signal_bit(*s) != 0)?;
        self.signals.fetch_and(!signal_bit(signal), SeqCst);
        Some(signal)
    }

    /// Claims and removes one victim while the mailbox is over capacity.
    fn evict_one(&self) -> Option<T> {
        let mut state = self.state.load(SeqCst);
        loop {
            if len_of(state) <= self.capacity {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(state, state - ONE, SeqCst, SeqCst)
            {
                Ok(_) => {
                    self.dropped.fetch_add(1, SeqCst);
                    let backoff = SpinWait::new();
                    loop {
                        if let Some(victim) = self.lanes.get().and_then(|lanes| lanes.pop_victim())
                        {
                            return Some(victim);
                        }
                        backoff.snooze();
                    }
                }
                Err(actual) => state = actual,
            }
        }
    }
}

/// The receiving end of a [`Mailbox`]: at most one exists at a time (see
/// [`Mailbox::receiver`]), which is what makes popping safe without locks.
pub struct MailboxReceiver<'a, T: MailboxItem> {
    mailbox: &'a Mailbox<T>,
}

impl<T: MailboxItem> fmt::Debug for MailboxReceiver<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MailboxReceiver")
            .field(self.mailbox)
            .finish()
    }
}

impl<T: MailboxItem> Drop for MailboxReceiver<'_, T> {
    fn drop(&mut self) {
        self.mailbox.receiver_taken.store(false, SeqCst);
    }
}

impl<'a, T: MailboxItem> MailboxReceiver<'a, T> {
    /// The mailbox this receiver reads.
    pub fn mailbox(&self) -> &'a Mailbox<T> {
        self.mailbox
    }

    /// Takes the next item without waiting: a pending signal first, then the
    /// next user item. `None` when both lanes are empty.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Received<T>> {
        self.try_ready().map(|ready| self.take(ready))
    }

    /// Waits for the next item.
    pub fn recv(&mut self) -> Recv<'_, 'a, T> {
        Recv { receiver: self }
    }

    /// Polls for the next item, registering `cx`'s waker when both lanes are empty.
    #[inline]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Received<T>> {
        self.poll_ready(cx).map(|ready| self.take(ready))
    }

    /// Polls for the next item like [`poll_recv`](Self::poll_recv), but
    /// leaves a user item in the queue, claimed: the caller must take it
    /// with [`take_claimed_in_place`](Self::take_claimed_in_place) before
    /// anything else touches this receiver. The actor loop reads the message straight from
    /// its slot this way, instead of moving it through every layer of
    /// `Poll<Received<Delivery<M>>>` (each move of a small enum mixes
    /// 8- and 16-byte copies that stall store-to-load forwarding).
    #[inline]
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Ready> {
        match self.try_ready() {
            Some(ready) => Poll::Ready(ready),
            None => self.park(cx),
        }
    }

    /// A pending signal, else a claimed user item; `None` when both lanes
    /// are empty.
    #[inline(always)]
    fn try_ready(&mut self) -> Option<Ready> {
        let mailbox = self.mailbox;
        if mailbox.signals.load(SeqCst) != 0
            && let Some(signal) = mailbox.take_signal()
        {
            return Some(Ready::Signal(signal));
        }
        self.claim().then_some(Ready::Item)
    }

    /// What `ready` stands for, with a claimed item taken out of the queue.
    #[inline(always)]
    fn take(&mut self, ready: Ready) -> Received<T> {
        match ready {
            Ready::Signal(signal) => Received::Signal(signal),
            Ready::Item => Received::Item(self.take_claimed()),
        }
    }

    /// Takes the item that [`poll_ready`](Self::poll_ready) claimed, and
    /// lets a sender waiting for room try again.
    #[inline(always)]
    fn take_claimed(&mut self) -> T {
        let mut staging = MaybeUninit::uninit();
        // SAFETY: the item is read once, here, before any other pop.
        unsafe { self.take_claimed_in_place(&mut staging).read() }
    }

    /// [`take_claimed`](Self::take_claimed), leaving the item where it is:
    /// in its queue slot, or in `staging` for the lanes that cannot lend
    /// one. The caller must move the item out of the returned place
    /// (`ptr::read`) exactly once, before using this receiver again. The
    /// actor loop reads its message straight from the slot this way: each
    /// move of a returned enum through registers and the stack costs rustc
    /// a mix of 8- and 16-byte copies that stall store-to-load forwarding.
    #[inline(always)]
    pub(crate) fn take_claimed_in_place(&mut self, staging: &mut MaybeUninit<T>) -> *mut T {
        let mailbox = self.mailbox;
        let item = self.pop_claimed_in_place(staging);
        if mailbox.senders_may_block && mailbox.blocked_senders.load(SeqCst) > 0 {
            mailbox.room.notify_one();
        }
        item
    }

    /// Registers `cx`'s waker and marks the mailbox parked, unless an item
    /// or signal arrived meanwhile. Out of line: the message loop's fast
    /// path (an item waiting) stays small.
    #[inline(never)]
    fn park(&mut self, cx: &mut Context<'_>) -> Poll<Ready> {
        let mailbox = self.mailbox;
        let mut state = mailbox.state.load(SeqCst);
        // Own the waker slot: take back a `PARKED` left by an earlier poll
        // (no sender may start reading the slot then), and wait for the
        // sender that took the last park to finish reading it.
        if mailbox.take_park(&mut state) {
            mailbox.resolve_park();
        }
        mailbox.wait_for_waker();
        mailbox.rx_waker.0.with_mut(|slot| {
            // SAFETY: no park is outstanding and only this receiver parks,
            // so no sender touches the slot now.
            let slot = unsafe { &mut *slot };
            match slot {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        });
        loop {
            if len_of(state) > 0 || mailbox.signals.load(SeqCst) != 0 {
                if let Some(ready) = self.try_ready() {
                    return Poll::Ready(ready);
                }
                state = mailbox.state.load(SeqCst);
                continue;
            }
            // Outstanding from the moment `PARKED` is set (the SeqCst
            // compare-and-swap publishes this store with it).
            mailbox.waker_free.store(false, Relaxed);
            match mailbox
                .state
                .compare_exchange_weak(state, state | PARKED, SeqCst, SeqCst)
            {
                Ok(_) => {
                    // A signal queued just before we parked cleared no
                    // `PARKED` bit, so look once more (both sides are
                    // SeqCst). Nothing else can be missed: the park saw no
                    // user item, and every later push sees `PARKED`. The
                    // park stands either way: a sender may take it (a
                    // spurious wake) or the next park takes it back.
                    if mailbox.signals.load(SeqCst) != 0
                        && let Some(ready) = self.try_ready()
                    {
                        return Poll::Ready(ready);
                    }
                    return Poll::Pending;
                }
                Err(actual) => {
                    mailbox.waker_free.store(true, Relaxed);
                    state = actual;
                }
            }
        }
    }

    /// After [`Mailbox::close`]: takes one remaining user item, oldest
    /// first. Returns `None` once every accepted item has been taken.
    pub fn drain_one(&mut self) -> Option<T> {
        self.claim().then(|| self.pop_claimed())
    }

    /// Claims one item: from the batch already held, else from the shared
    /// count. An unbounded mailbox claims everything queued in one step, so
    /// a busy receiver touches the shared word once per batch instead of once
    /// per message; a bounded one claims one at a time, so that its capacity
    /// counts exactly the messages not yet taken. `false` when nothing is queued.
    #[inline]
    fn claim(&mut self) -> bool {
        let mailbox = self.mailbox;
        let batch = mailbox.claimed.load(Relaxed);
        if batch > 0 {
            mailbox.claimed.store(batch - 1, Relaxed);
            return true;
        }
        let queued = len_of(mailbox.state.load(SeqCst));
        if queued == 0 {
            return false;
        }
        let take = if mailbox.capacity == usize::MAX {
            queued
        } else {
            1
        };
        // The count cannot fall below `take` before this subtraction lands:
        // only this receiver lowers it, except `DropOldest` senders, and
        // they evict only while it is above the capacity, so they leave it
        // at the capacity or more (and `take` is 1 in a bounded mailbox).
        mailbox.state.fetch_sub(take * ONE, SeqCst);
        mailbox.claimed.store(take - 1, Relaxed);
        true
    }

    /// Pops a claimed item. Its push may still be in flight on another
    /// thread; it lands within a few instructions, so back off until it does.
    #[inline(always)]
    fn pop_claimed(&mut self) -> T {
        let mut staging = MaybeUninit::uninit();
        // SAFETY: the item is read once, here, before any other pop.
        unsafe { self.pop_claimed_in_place(&mut staging).read() }
    }

    /// [`pop_claimed`](Self::pop_claimed), leaving the item in its queue
    /// slot or in `staging` (see [`Lanes::pop_next_in_place`]); the caller
    /// moves it out exactly once, before the next pop.
    #[inline(always)]
    fn pop_claimed_in_place(&mut self, staging: &mut MaybeUninit<T>) -> *mut T {
        let landed = match self.mailbox.lanes.get() {
            // SAFETY: this receiver is the only one (`receiver_taken`), and
            // the item was claimed from the count just before.
            Some(lanes) => unsafe { lanes.pop_next_in_place(staging) },
            None => None,
        };
        // A match, not `unwrap_or_else`: a closure capturing `staging` would
        // reborrow it uniquely even when not called, invalidating (under
        // Stacked Borrows) the pointer into `staging` that `landed` may hold.
        match landed {
            Some(item) => item,
            None => ptr::from_mut(staging.write(self.pop_claimed_in_flight())),
        }
    }

    /// [`pop_claimed`](Self::pop_claimed) for an item whose push has not
    /// landed yet.
    #[cold]
    #[inline(never)]
    fn pop_claimed_in_flight(&mut self) -> T {
        let backoff = SpinWait::new();
        loop {
            if let Some(lanes) = self.mailbox.lanes.get() {
                // SAFETY: this receiver is the only one (`receiver_taken`),
                // and the item was claimed from the count just above.
                if let Some(item) = unsafe { lanes.pop_next() } {
                    return item;
                }
            }
            backoff.snooze();
        }
    }
}

/// Future returned by [`MailboxReceiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'r, 'a, T: MailboxItem> {
    receiver: &'r mut MailboxReceiver<'a, T>,
}

impl<T: MailboxItem> Future for Recv<'_, '_, T> {
    type Output = Received<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.receiver.poll_recv(cx)
    }
}

/// Counts a sender waiting for room for as long as it waits (also when its
/// future is cancelled).
struct BlockedSender<'a>(&'a AtomicUsize);

impl<'a> BlockedSender<'a> {
    fn register(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Self(counter)
    }
}

impl Drop for BlockedSender<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::mailbox::MailboxKind;
    use crate::message::MessagePriority;
    use std::sync::Arc;

    #[derive(Debug, PartialEq, Eq)]
    struct Item(MessagePriority, u32);
    impl MailboxItem for Item {
        fn priority(&self) -> MessagePriority {
            self.0
        }
    }
    fn n(v: u32) -> Item {
        Item(MessagePriority::Normal, v)
    }

    #[test]
    fn signals_jump_the_queue_and_ignore_capacity() {
        let mb = Mailbox::new(MailboxConfig::bounded(1, Backpressure::Reject));
        assert_eq!(mb.try_push(n(1)), Ok(Pushed::Queued));
        assert!(mb.signal(SystemSignal::Stop));
        let mut rx = mb.receiver().unwrap();
        assert!(mb.receiver().is_none(), "only one receiver at a time");
        assert_eq!(rx.try_recv(), Some(Received::Signal(SystemSignal::Stop)));
        assert_eq!(rx.try_recv(), Some(Received::Item(n(1))));
        assert_eq!(rx.try_recv(), None);
        drop(rx);
        assert!(
            mb.receiver().is_some(),
            "a dropped receiver can be taken again"
        );
    }

    #[test]
    fn drop_strategies_report_their_victims() {
        let oldest = Mailbox::new(MailboxConfig::bounded(2, Backpressure::DropOldest));
        assert_eq!(oldest.try_push(n(1)), Ok(Pushed::Queued));
        assert_eq!(oldest.try_push(n(2)), Ok(Pushed::Queued));
        assert_eq!(oldest.try_push(n(3)), Ok(Pushed::DroppedOldest(n(1))));
        assert_eq!(oldest.len(), 2);
        assert_eq!(oldest.dropped(), 1);

        let newest = Mailbox::new(MailboxConfig::bounded(1, Backpressure::DropNewest));
        assert_eq!(newest.try_push(n(1)), Ok(Pushed::Queued));
        assert_eq!(newest.try_push(n(2)), Ok(Pushed::DroppedNewest(n(2))));
        assert_eq!(
            newest.receiver().unwrap().try_recv(),
            Some(Received::Item(n(1)))
        );
    }

    #[test]
    fn closing_refuses_signals_and_drains_everything() {
        let mb = Mailbox::new(MailboxConfig::unbounded().with_kind(MailboxKind::Priority));
        for v in 0..5 {
            let _ = mb.try_push(n(v));
        }
        assert!(mb.close());
        assert!(!mb.close());
        assert!(!mb.signal(SystemSignal::Stop));
        let mut rx = mb.receiver().unwrap();
        let drained: Vec<_> = std::iter::from_fn(|| rx.drain_one()).collect();
        assert_eq!(drained, (0..5).map(n).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn blocked_sender_wakes_when_room_appears_and_on_close() {
        let mb = Arc::new(Mailbox::new(MailboxConfig::bounded(1, Backpressure::Block)));
        assert_eq!(mb.try_push(n(1)), Ok(Pushed::Queued));
        let sender = tokio::spawn({
            let mb = mb.clone();
            async move { mb.push(n(2)).await }
        });
        while mb.blocked_senders.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(mb.receiver().unwrap().recv().await, Received::Item(n(1)));
        assert_eq!(sender.await.unwrap(), Ok(Pushed::Queued));

        let sender = tokio::spawn({
            let mb = mb.clone();
            async move { mb.push(n(3)).await }
        });
        while mb.blocked_senders.load(SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        mb.close();
        assert_eq!(sender.await.unwrap(), Err(PushError::Closed(n(3))));
    }

    #[test]
    fn concurrent_pushes_are_all_received() {
        // Miri interprets every step: a few blocks' worth there.
        const EACH: u32 = if cfg!(miri) { 60 } else { 10_000 };
        let mb = Arc::new(Mailbox::new(MailboxConfig::unbounded()));
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let mb = mb.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        assert_eq!(mb.try_push(n(p * 100_000 + i)), Ok(Pushed::Queued));
                    }
                })
            })
            .collect();
        let mut rx = mb.receiver().unwrap();
        let mut last = [None::<u32>; 4];
        let mut got = 0;
        while got < 4 * EACH {
            if let Some(Received::Item(Item(_, v))) = rx.try_recv() {
                let p = (v / 100_000) as usize;
                assert!(last[p].is_none_or(|l| l < v), "per-producer FIFO broken");
                last[p] = Some(v);
                got += 1;
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(rx.try_recv(), None);
    }

    /// The waker-slot protocol under contention: threads push (pausing now
    /// and then, so the receiver keeps parking) and raise signals, while the
    /// receiver moves to a new task every few items (a new waker to store).
    /// Every item and signal must arrive; a lost wake hangs the round.
    #[test]
    fn no_wake_is_lost_while_senders_race_a_parking_receiver() {
        // Miri interprets every step: a few tasks' worth there.
        const SENDERS: u32 = if cfg!(miri) { 2 } else { 3 };
        const PER_SENDER: u32 = if cfg!(miri) { 30 } else { 3_000 };
        const PER_TASK: u32 = if cfg!(miri) { 10 } else { 50 };
        const ROUNDS: u32 = if cfg!(miri) { 2 } else { 30 };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        for round in 0..ROUNDS {
            let mailbox = Arc::new(Mailbox::new(MailboxConfig::unbounded()));
            let threads: Vec<_> = (0..SENDERS)
                .map(|sender| {
                    let mailbox = mailbox.clone();
                    std::thread::spawn(move || {
                        for i in 0..PER_SENDER {
                            assert_eq!(
                                mailbox.try_push(n(sender * PER_SENDER + i)),
                                Ok(Pushed::Queued)
                            );
                            if i % 64 == 0 {
                                mailbox.signal(SystemSignal::Stop);
                            }
                            if i % 5 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            let mut seen = vec![false; (SENDERS * PER_SENDER) as usize];
            let mut items = 0;
            while items < SENDERS * PER_SENDER {
                let mailbox = mailbox.clone();
                // A lost wake would hang this batch; the guard turns that
                // into a failure (no batch comes anywhere near it).
                let batch = runtime.block_on(async move {
                    let task = tokio::spawn(async move {
                        let mut rx = mailbox.receiver().expect("the only receiver");
                        let mut batch = Vec::new();
                        while batch.len() < PER_TASK as usize {
                            match rx.recv().await {
                                Received::Item(item) => batch.push(item.1),
                                Received::Signal(_) => {}
                            }
                        }
                        batch
                    });
                    tokio::time::timeout(std::time::Duration::from_secs(60), task)
                        .await
                        .expect("a wake was lost")
                        .unwrap()
                });
                for value in batch {
                    assert!(
                        !std::mem::replace(&mut seen[value as usize], true),
                        "round {round}: {value} twice"
                    );
                    items += 1;
                }
            }
            for thread in threads {
                thread.join().unwrap();
            }
            assert!(seen.iter().all(|&s| s), "round {round}: an item is missing");
        }
    }
}
