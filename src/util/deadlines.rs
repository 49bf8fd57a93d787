//! [`Deadlines`]: cheap timeouts for many short waits, such as `ask`.
//!
//! A tokio timer costs a driver registration and, whenever it becomes the
//! earliest timer, a wake-up of the parked time driver; measured here that
//! added ≈750 ns to every request/reply round trip. Most asks are answered
//! long before their timeout, so this registry makes the common case cheap:
//! registering and cancelling a deadline is one uncontended lock each, and a
//! single watchdog task (spawned on first use) sleeps until the earliest
//! deadline, wakes whoever has expired, and re-arms only when an earlier
//! deadline arrives.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;
use tokio::time::Instant;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Identifies one registered deadline.
pub(crate) type DeadlineKey = (Instant, u64);

#[derive(Default)]
struct Pending {
    wakers: BTreeMap<DeadlineKey, Waker>,
    /// When the watchdog will next wake up by itself (`None`: only when
    /// notified). A new deadline notifies it only if it is earlier.
    armed: Option<Instant>,
}

/// A registry of deadlines served by one watchdog task.
pub(crate) struct Deadlines {
    pending: Mutex<Pending>,
    next_seq: AtomicU64,
    rearm: Notify,
    watching: AtomicBool,
    closed: AtomicBool,
    runtime: Handle,
}

impl Deadlines {
    pub(crate) fn new(runtime: Handle) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            next_seq: AtomicU64::new(0),
            rearm: Notify::new(),
            watching: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            runtime,
        }
    }

    /// Registers `waker` to be woken at `deadline`.
    pub(crate) fn register(self: &Arc<Self>, deadline: Instant, waker: Waker) -> DeadlineKey {
        let key = (deadline, self.next_seq.fetch_add(1, Ordering::Relaxed));
        let mut pending = self.pending.lock();
        pending.wakers.insert(key, waker);
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
        match self.pending.lock().wakers.get_mut(&key) {
            Some(registered) => {
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
        self.pending.lock().wakers.remove(&key);
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
        let mut pending = self.pending.lock();
        while let Some(entry) = pending.wakers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            expired.push(entry.remove());
        }
        let next = pending.wakers.first_key_value().map(|(k, _)| k.0);
        pending.armed = next;
        drop(pending);
        for waker in expired {
            waker.wake();
        }
        next
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.lock().wakers.len()
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
