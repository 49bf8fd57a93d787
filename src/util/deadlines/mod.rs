//! [`Deadlines`]: cheap timeouts for many short waits, such as `ask`.
//!
//! Most asks are answered long before their timeout, so registering and
//! cancelling a deadline must cost next to nothing: one uncontended lock and
//! an O(1) slab operation each, no clock read and no tokio timer (a timer
//! armed anywhere on a runtime makes each of its parks read the clock and
//! scan the timer wheel). A deadline lives in two stages:
//!
//! - **fresh**: registered with its timeout only. The process-wide
//!   [`ticker`] thread reads the registry's clock every tick, gives fresh
//!   deadlines their instant (never earlier than asked, at most a tick
//!   later) and fires those that are due.
//! - **promoted**: one still pending a few ticks later is handed to the
//!   registry's watchdog task, which sleeps on a tokio timer until the
//!   earliest promoted deadline, so that a paused test clock advances to it
//!   as it does to any tokio timer. When the last promoted deadline is
//!   cancelled the watchdog drops its timer.
//!
//! Under a paused test clock (tokio's `test-util`) tokio jumps the clock to
//! its next timer whenever the runtime is idle, so a fresh deadline it does
//! not know of would be jumped over: a registry whose clock is paused (seen
//! when it is made, or by the ticker: the clock stands still or jumps while
//! real time moves) sends every deadline to the watchdog at once, with its
//! instant, as tokio's own `timeout` would.

mod ticker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::util::time::deadline_from;

/// When a registered wait is over.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Due {
    /// This long after it was registered (no clock read to register it).
    After(Duration),
    /// At this instant of tokio's clock.
    At(Instant),
}

/// Identifies one registered deadline: a slot and that slot's generation,
/// so a stale key never touches a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadlineKey {
    slot: u32,
    generation: u32,
}

struct Waiting {
    due: Due,
    /// Ticks seen since the ticker gave it its instant.
    ticks: u8,
    /// Whether the watchdog, not the ticker, watches it.
    promoted: bool,
    /// Its place in `Pending::fresh` while the ticker watches it.
    fresh_at: u32,
}

struct Entry {
    generation: u32,
    /// `None` while the slot is free.
    waiting: Option<Waiting>,
    /// Whom to wake. Kept when the slot is freed: the next wait registered
    /// in it is most often the same task's next ask, which then needs no
    /// waker clone (two atomic operations per ask). Dropped when the
    /// registry goes idle.
    waker: Option<Waker>,
}

#[derive(Default)]
struct Pending {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Slots of the live deadlines the ticker watches.
    fresh: Vec<u32>,
    /// Live deadlines the watchdog watches.
    promoted: usize,
    /// The promoted deadline the watchdog sleeps towards (`None`: it waits
    /// only for a notification). A promotion notifies it only if earlier.
    armed: Option<Instant>,
    /// Whether the registry is in the ticker's round.
    enlisted: bool,
    /// Ticks in a row that found no fresh deadline.
    idle_ticks: u32,
    /// The ticker's last reading of tokio's clock and of the real one.
    last_reading: Option<(Instant, std::time::Instant)>,
}

impl Pending {
    /// The entry `key` names, if its wait is still registered.
    fn entry(&mut self, key: DeadlineKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.slot as usize)
            .filter(|e| e.generation == key.generation && e.waiting.is_some())
    }

    /// Frees `slot`; returns its wait (the waker stays in the slot).
    fn release(&mut self, slot: u32) -> Option<Waiting> {
        let entry = self.entries.get_mut(slot as usize)?;
        let waiting = entry.waiting.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        if waiting.promoted {
            self.promoted -= 1;
        } else {
            self.unwatch(waiting.fresh_at);
        }
        Some(waiting)
    }

    /// Frees the slot `key` names if its wait is still registered.
    fn release_key(&mut self, key: DeadlineKey) -> Option<Waiting> {
        self.entry(key)?;
        self.release(key.slot)
    }

    /// Drops the wakers kept in free slots (they keep their tasks'
    /// memory alive).
    fn forget_kept_wakers(&mut self) {
        for &slot in &self.free {
            self.entries[slot as usize].waker = None;
        }
    }

    /// Takes the slot at `fresh_at` out of the ticker's list.
    fn unwatch(&mut self, fresh_at: u32) {
        self.fresh.swap_remove(fresh_at as usize);
        if let Some(&moved) = self.fresh.get(fresh_at as usize)
            && let Some(waiting) = self.entries[moved as usize].waiting.as_mut()
        {
            waiting.fresh_at = fresh_at;
        }
    }

    /// Frees `slot` and takes its waker, to wake it.
    fn fire(&mut self, slot: u32) -> Option<Waker> {
        self.release(slot)?;
        self.entries[slot as usize].waker.take()
    }

    /// Hands the wait in `slot` (due at `deadline`) to the watchdog;
    /// returns whether the watchdog must hear of it (it sleeps towards a
    /// later instant).
    fn promote(&mut self, slot: u32, deadline: Instant) -> bool {
        let Some(waiting) = self.entries[slot as usize].waiting.as_mut() else {
            return false;
        };
        waiting.promoted = true;
        let fresh_at = waiting.fresh_at;
        self.unwatch(fresh_at);
        self.promoted += 1;
        let earlier = self.armed.is_none_or(|armed| deadline < armed);
        if earlier {
            self.armed = Some(deadline);
        }
        earlier
    }
}

/// Waits for `future` until it is [`Due`], through a [`Deadlines`] registry
/// rather than a tokio timer: `Some(output)` if it finished first, `None`
/// once the deadline has passed. The deadline is registered only if the
/// first poll finds the future pending, and cancelled when this is dropped.
pub(crate) struct Within<'a, F> {
    future: F,
    deadlines: &'a Arc<Deadlines>,
    due: Due,
    registered: Option<DeadlineKey>,
}

impl<'a, F> Within<'a, F> {
    pub(crate) fn new(future: F, deadlines: &'a Arc<Deadlines>, due: Due) -> Self {
        Self {
            future,
            deadlines,
            due,
            registered: None,
        }
    }
}

impl<F: Future + Unpin> Future for Within<'_, F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(output) = Pin::new(&mut this.future).poll(cx) {
            if let Some(key) = this.registered.take() {
                this.deadlines.cancel(key);
            }
            return Poll::Ready(Some(output));
        }
        let still_waiting = match this.registered {
            Some(key) => this.deadlines.refresh(key, cx.waker()),
            None => {
                this.registered = Some(this.deadlines.register(this.due, cx.waker()));
                true
            }
        };
        if still_waiting {
            return Poll::Pending;
        }
        this.registered = None;
        Poll::Ready(None)
    }
}

impl<F> Drop for Within<'_, F> {
    fn drop(&mut self) {
        if let Some(key) = self.registered.take() {
            self.deadlines.cancel(key);
        }
    }
}

/// A registry of deadlines, kept by the process's ticker thread and one
/// watchdog task on the registry's runtime.
pub(crate) struct Deadlines {
    pending: Mutex<Pending>,
    rearm: Notify,
    watching: AtomicBool,
    closed: AtomicBool,
    /// Whether the runtime's clock is a paused test clock: then tokio may
    /// jump it to its next timer whenever the runtime is idle, so every
    /// deadline goes to the watchdog's timer at once, with its instant.
    paused: AtomicBool,
    runtime: Handle,
}

impl Deadlines {
    pub(crate) fn new(runtime: Handle) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            rearm: Notify::new(),
            watching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(clock_is_paused(&runtime)),
            runtime,
        }
    }

    /// Registers `waker` to be woken when `due`.
    pub(crate) fn register(self: &Arc<Self>, due: Due, waker: &Waker) -> DeadlineKey {
        let mut pending = self.pending.lock();
        let slot = match pending.free.pop() {
            Some(slot) => slot,
            None => {
                pending.entries.push(Entry {
                    generation: 0,
                    waiting: None,
                    waker: None,
                });
                // More than u32::MAX asks in flight at once cannot fit in memory.
                (pending.entries.len() - 1) as u32
            }
        };
        // Below u32::MAX as the slots are.
        let fresh_at = pending.fresh.len() as u32;
        pending.fresh.push(slot);
        let entry = &mut pending.entries[slot as usize];
        entry.waiting = Some(Waiting {
            due,
            ticks: 0,
            promoted: false,
            fresh_at,
        });
        keep(&mut entry.waker, waker);
        let key = DeadlineKey {
            slot,
            generation: entry.generation,
        };
        if self.paused.load(Ordering::Relaxed) {
            drop(pending);
            self.promote_now(key);
            return key;
        }
        if pending.enlisted {
            return key;
        }
        pending.enlisted = true;
        drop(pending);
        if ticker::enlist(Arc::downgrade(self)).is_err() {
            // No thread for the ticker: the watchdog takes this one at once
            // (and the next registration tries to start the thread again).
            self.pending.lock().enlisted = false;
            self.promote_now(key);
        }
        key
    }

    /// Hands a fresh deadline straight to the watchdog, with its instant
    /// counted from now (under a paused clock, or when the ticker thread
    /// could not be started).
    fn promote_now(self: &Arc<Self>, key: DeadlineKey) {
        let now = self.now();
        let mut pending = self.pending.lock();
        let Some(waiting) = pending.entry(key).and_then(|e| e.waiting.as_mut()) else {
            return;
        };
        let deadline = waiting.instant(now);
        let notify = pending.promote(key.slot, deadline);
        drop(pending);
        if notify {
            self.wake_watchdog();
        }
    }

    /// Updates the waker of a pending deadline. Returns `false` if the
    /// deadline has already expired (and was removed).
    pub(crate) fn refresh(&self, key: DeadlineKey, waker: &Waker) -> bool {
        match self.pending.lock().entry(key) {
            Some(entry) => {
                keep(&mut entry.waker, waker);
                true
            }
            None => false,
        }
    }

    /// Removes a deadline that is no longer needed. The watchdog drops its
    /// timer once no promoted deadline is left.
    pub(crate) fn cancel(&self, key: DeadlineKey) {
        let mut pending = self.pending.lock();
        let Some(waiting) = pending.release_key(key) else {
            return;
        };
        let promoted = waiting.promoted;
        let disarm = promoted && pending.promoted == 0 && pending.armed.is_some();
        if disarm {
            pending.armed = None;
        }
        drop(pending);
        if disarm {
            self.rearm.notify_one();
        }
    }

    /// Stops the watchdog and leaves the ticker's round (when the owning
    /// system is dropped).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.rearm.notify_one();
    }

    /// Tokio's clock as the registry's runtime sees it (a paused test clock
    /// included), from any thread.
    fn now(&self) -> Instant {
        let _runtime = self.runtime.enter();
        Instant::now()
    }

    /// One tick of the ticker: gives fresh deadlines their instant, wakes
    /// those that are due and promotes those pending for
    /// [`ticker::PROMOTE_AFTER_TICKS`]. Returns whether the registry stays in
    /// the ticker's round.
    fn tick(self: &Arc<Self>) -> bool {
        if self.closed.load(Ordering::Acquire) {
            self.pending.lock().enlisted = false;
            return false;
        }
        let mut due = Vec::new();
        let mut notify = false;
        let mut guard = self.pending.lock();
        let pending = &mut *guard;
        // Read under the lock: a wait registered after this reading is
        // not stamped with it (it would fire early).
        let now = self.now();
        let real_now = std::time::Instant::now();
        if let Some((then, real_then)) = pending.last_reading.replace((now, real_now)) {
            let (moved, real_moved) = (now - then, real_now - real_then);
            if moved.abs_diff(real_moved) > Duration::from_millis(1) {
                // A paused clock (it stood still or jumped): from now on
                // every deadline goes to the watchdog at once.
                self.paused.store(true, Ordering::Relaxed);
            }
        }
        let promote_all = self.paused.load(Ordering::Relaxed);
        // Backwards, as expiring or promoting one moves the last into its place.
        for at in (0..pending.fresh.len()).rev() {
            let slot = pending.fresh[at];
            let Some(waiting) = pending.entries[slot as usize].waiting.as_mut() else {
                continue;
            };
            let deadline = waiting.instant(now);
            waiting.ticks = waiting.ticks.saturating_add(1);
            if deadline <= now {
                due.extend(pending.fire(slot));
            } else if promote_all || waiting.ticks > ticker::PROMOTE_AFTER_TICKS {
                notify |= pending.promote(slot, deadline);
            }
        }
        pending.idle_ticks = if pending.fresh.is_empty() {
            pending.idle_ticks + 1
        } else {
            0
        };
        let stays = pending.idle_ticks < ticker::LINGER_TICKS;
        if !stays {
            pending.enlisted = false;
            pending.idle_ticks = 0;
            pending.forget_kept_wakers();
        }
        drop(guard);
        for waker in due {
            waker.wake();
        }
        if notify {
            self.wake_watchdog();
        }
        stays
    }

    /// Tells the watchdog of an earlier promoted deadline, starting it on
    /// first use.
    fn wake_watchdog(self: &Arc<Self>) {
        if !self.watching.swap(true, Ordering::AcqRel) {
            self.runtime.spawn(watch(self.clone()));
        } else {
            self.rearm.notify_one();
        }
    }

    /// Wakes and removes every promoted deadline at or before `now`;
    /// returns (and arms) the earliest promoted one left.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let mut pending = self.pending.lock();
        for slot in 0..pending.entries.len() {
            let deadline = match &pending.entries[slot].waiting {
                Some(Waiting {
                    promoted: true,
                    due: Due::At(deadline),
                    ..
                }) => *deadline,
                _ => continue,
            };
            if deadline <= now {
                due.extend(pending.fire(slot as u32));
            } else if next.is_none_or(|n| deadline < n) {
                next = Some(deadline);
            }
        }
        pending.armed = next;
        drop(pending);
        for waker in due {
            waker.wake();
        }
        next
    }

    #[cfg(all(test, not(miri)))]
    fn live(&self) -> (usize, usize) {
        let pending = self.pending.lock();
        (pending.fresh.len(), pending.promoted)
    }
}

/// Puts `waker` in `slot` unless the one there already wakes the same task
/// (then no clone: two atomic operations saved).
fn keep(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(kept) if kept.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Waiting {
    /// The instant it is due, fixing it at `now` + its timeout if it had
    /// none yet.
    fn instant(&mut self, now: Instant) -> Instant {
        match self.due {
            Due::At(deadline) => deadline,
            Due::After(timeout) => {
                let deadline = deadline_from(now, timeout);
                self.due = Due::At(deadline);
                deadline
            }
        }
    }
}

/// Whether `runtime`'s clock is paused (tokio's `test-util`): it does not
/// move while real time does. Spins for about 20 µs.
fn clock_is_paused(runtime: &Handle) -> bool {
    let _runtime = runtime.enter();
    let before = Instant::now();
    let real_before = std::time::Instant::now();
    while real_before.elapsed() < Duration::from_micros(20) {
        std::hint::spin_loop();
    }
    Instant::now() == before
}

async fn watch(deadlines: Arc<Deadlines>) {
    loop {
        let rearmed = deadlines.rearm.notified();
        tokio::pin!(rearmed);
        rearmed.as_mut().enable();
        if deadlines.closed.load(Ordering::Acquire) {
            return;
        }
        match deadlines.expire(Instant::now()) {
            None => rearmed.await,
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = rearmed => {}
                }
            }
        }
    }
}

// Not under Miri: this module has no unsafe code, its tests need the ticker
// thread (not started there) and two threads contending its lock make
// parking_lot call futex, which Miri does not support.
#[cfg(all(test, not(miri)))]
mod tests;
