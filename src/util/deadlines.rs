//! [`Deadlines`]: cheap timeouts for many short waits, such as `ask`.
//!
//! A tokio timer costs a driver registration and, whenever it becomes the
//! earliest timer, a wake-up of the parked time driver; measured here that
//! added ≈750 ns to every request/reply round trip. Most asks are answered
//! long before their timeout, so this registry makes the common case cheap:
//! registering and cancelling a deadline is one uncontended lock and an O(1)
//! slab operation each. A single watchdog task (spawned on first use) sleeps
//! until the earliest deadline it knows of, then scans the pending entries,
//! wakes whoever has expired and re-arms; a new deadline disturbs it only if
//! it is earlier than the one it sleeps towards.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use tokio::time::Instant;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Identifies one registered deadline: a slot and that slot's generation,
/// so a stale key never touches a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeadlineKey {
    slot: u32,
    generation: u32,
}

struct Entry {
    generation: u32,
    /// `None` while the slot is free.
    waiting: Option<(Instant, Waker)>,
}

#[derive(Default)]
struct Pending {
    entries: Vec<Entry>,
    free: Vec<u32>,
    live: usize,
    /// When the watchdog will next wake up by itself (`None`: only when
    /// notified). A new deadline notifies it only if it is earlier.
    armed: Option<Instant>,
}

impl Pending {
    fn entry(&mut self, key: DeadlineKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.slot as usize)
            .filter(|e| e.generation == key.generation && e.waiting.is_some())
    }

    fn release(&mut self, slot: u32) -> Option<(Instant, Waker)> {
        let entry = self.entries.get_mut(slot as usize)?;
        let waiting = entry.waiting.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        Some(waiting)
    }
}

/// Waits for `future` until `deadline`, through a [`Deadlines`] registry
/// rather than a tokio timer: `Some(output)` if it finished first, `None`
/// once the deadline has passed. The deadline is registered only if the
/// first poll finds the future pending, and cancelled when this is dropped.
pub(crate) struct Within<'a, F> {
    future: F,
    deadlines: &'a Arc<Deadlines>,
    deadline: Instant,
    registered: Option<DeadlineKey>,
}

impl<'a, F> Within<'a, F> {
    pub(crate) fn new(future: F, deadlines: &'a Arc<Deadlines>, deadline: Instant) -> Self {
        Self {
            future,
            deadlines,
            deadline,
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
                this.registered = Some(this.deadlines.register(this.deadline, cx.waker().clone()));
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

/// A registry of deadlines served by one watchdog task.
pub(crate) struct Deadlines {
    pending: Mutex<Pending>,
    rearm: Notify,
    watching: AtomicBool,
    closed: AtomicBool,
    runtime: Handle,
}

impl Deadlines {
    pub(crate) fn new(runtime: Handle) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            rearm: Notify::new(),
            watching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            runtime,
        }
    }

    /// Registers `waker` to be woken at `deadline`.
    pub(crate) fn register(self: &Arc<Self>, deadline: Instant, waker: Waker) -> DeadlineKey {
        let mut pending = self.pending.lock();
        let slot = match pending.free.pop() {
            Some(slot) => slot,
            None => {
                pending.entries.push(Entry {
                    generation: 0,
                    waiting: None,
                });
                // More than u32::MAX asks in flight at once cannot fit in memory.
                (pending.entries.len() - 1) as u32
            }
        };
        let entry = &mut pending.entries[slot as usize];
        entry.waiting = Some((deadline, waker));
        let key = DeadlineKey {
            slot,
            generation: entry.generation,
        };
        pending.live += 1;
        let rearm = pending.armed.is_none_or(|armed| deadline < armed);
        if rearm {
            pending.armed = Some(deadline);
        }
        drop(pending);
        if !self.watching.swap(true, Ordering::AcqRel) {
            self.runtime.spawn(watch(self.clone()));
        } else if rearm {
            self.rearm.notify_one();
        }
        key
    }

    /// Updates the waker of a pending deadline. Returns `false` if the
    /// deadline has already expired (and was removed by the watchdog).
    pub(crate) fn refresh(&self, key: DeadlineKey, waker: &Waker) -> bool {
        match self
            .pending
            .lock()
            .entry(key)
            .and_then(|e| e.waiting.as_mut())
        {
            Some((_, registered)) => {
                if !registered.will_wake(waker) {
                    registered.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    /// Removes a deadline that is no longer needed.
    pub(crate) fn cancel(&self, key: DeadlineKey) {
        let mut pending = self.pending.lock();
        if pending.entry(key).is_some() {
            pending.release(key.slot);
        }
    }

    /// Stops the watchdog (when the owning system is dropped).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.rearm.notify_one();
    }

    /// Wakes and removes every deadline at or before `now`; returns (and
    /// arms) the earliest one left.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        let mut pending = self.pending.lock();
        for slot in 0..pending.entries.len() {
            let Some((deadline, _)) = pending.entries[slot].waiting.as_ref() else {
                continue;
            };
            let deadline = *deadline;
            if deadline <= now {
                expired.extend(pending.release(slot as u32).map(|(_, waker)| waker));
            } else if next.is_none_or(|n| deadline < n) {
                next = Some(deadline);
            }
        }
        pending.armed = next;
        drop(pending);
        for waker in expired {
            waker.wake();
        }
        next
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.lock().live
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn expired_deadlines_wake_and_disappear_cancelled_ones_never_fire() {
        let deadlines = Arc::new(Deadlines::new(Handle::current()));
        let now = Instant::now();
        let mut key = None;
        let woke = poll_fn(|cx| match key {
            None => {
                key = Some(deadlines.register(now + Duration::from_secs(2), cx.waker().clone()));
                let cancelled =
                    deadlines.register(now + Duration::from_secs(1), cx.waker().clone());
                deadlines.cancel(cancelled);
                Poll::Pending
            }
            Some(k) if deadlines.refresh(k, cx.waker()) => Poll::Pending,
            Some(_) => Poll::Ready(Instant::now()),
        })
        .await;
        assert!(woke >= now + Duration::from_secs(2));
        assert_eq!(deadlines.len(), 0);
        deadlines.close();
    }

    #[tokio::test]
    async fn a_stale_key_never_touches_a_reused_slot() {
        let deadlines = Arc::new(Deadlines::new(Handle::current()));
        let far = Instant::now() + Duration::from_secs(3600);
        let first = deadlines.register(far, futures::task::noop_waker());
        deadlines.cancel(first);
        let second = deadlines.register(far, futures::task::noop_waker());
        assert_eq!(first.slot, second.slot, "the slot is reused");
        assert!(!deadlines.refresh(first, &futures::task::noop_waker()));
        deadlines.cancel(first);
        assert!(deadlines.refresh(second, &futures::task::noop_waker()));
        assert_eq!(deadlines.len(), 1);
        deadlines.close();
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_rearms_the_watchdog() {
        let deadlines = Arc::new(Deadlines::new(Handle::current()));
        let now = Instant::now();
        let late = deadlines.register(now + Duration::from_secs(3600), futures::task::noop_waker());
        let mut key = None;
        poll_fn(|cx| match key {
            None => {
                key = Some(deadlines.register(now + Duration::from_millis(10), cx.waker().clone()));
                Poll::Pending
            }
            Some(k) if deadlines.refresh(k, cx.waker()) => Poll::Pending,
            Some(_) => Poll::Ready(()),
        })
        .await;
        assert!(Instant::now() < now + Duration::from_secs(3600));
        assert!(deadlines.refresh(late, &futures::task::noop_waker()));
        deadlines.close();
    }
}
