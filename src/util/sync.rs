//! The synchronisation primitives of the lock-free core (the mailbox's
//! queue and park/wake protocol, [`OnceBox`](super::once_box::OnceBox)),
//! swapped for [loom]'s under `--cfg loom`, so that the loom models in
//! `mailbox::loom_models` check the very source that ships (tokio's shim,
//! `tokio::loom`, works the same way).
//!
//! A normal build re-exports `std`'s atomics and crossbeam's backoff, and
//! [`UnsafeCell`] is `std`'s behind two always-inlined methods: the shim
//! costs nothing there. The swap needs `test` too (`cfg(all(test, loom))`,
//! as in tokio): an application that builds everything with `--cfg loom`
//! to check its own code gets the normal airssys-rt.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::atomic;

#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic;

#[cfg(not(all(test, loom)))]
pub(crate) use std_cell::UnsafeCell;

#[cfg(all(test, loom))]
pub(crate) use loom::cell::UnsafeCell;

/// Waits out a spin: exponential backoff on real threads; under loom, a
/// yield, so that the model runs the thread being waited for.
#[cfg(not(all(test, loom)))]
pub(crate) use crossbeam_utils::Backoff as SpinWait;

#[cfg(all(test, loom))]
pub(crate) use loom_spin::SpinWait;

/// Wakes senders waiting for room: tokio's `Notify`. Under loom it stays
/// tokio's (outside the model: each call runs as one step), but every call
/// is first a scheduling point, so the models interleave other threads
/// between a sender's look at the mailbox and its registering for a wake.
#[cfg(not(all(test, loom)))]
pub(crate) use tokio::sync::Notify;

#[cfg(all(test, loom))]
pub(crate) use loom_notify::Notify;

#[cfg(all(test, loom))]
mod loom_notify {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::futures::Notified;

    /// tokio's `Notify` behind a loom scheduling point per call.
    #[derive(Debug)]
    pub(crate) struct Notify {
        inner: tokio::sync::Notify,
        step: AtomicUsize,
    }

    impl Notify {
        pub(crate) fn new() -> Self {
            Self {
                inner: tokio::sync::Notify::new(),
                step: AtomicUsize::new(0),
            }
        }

        fn step(&self) {
            self.step.fetch_add(1, Ordering::Relaxed);
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            self.step();
            self.inner.notified()
        }

        pub(crate) fn notify_one(&self) {
            self.step();
            self.inner.notify_one();
        }

        pub(crate) fn notify_waiters(&self) {
            self.step();
            self.inner.notify_waiters();
        }
    }
}

/// The multi-consumer queue of the lanes `DropOldest` evicts from:
/// crossbeam's `SegQueue`. Under loom a mutex-guarded `VecDeque` stands in
/// for it (both are linearizable queues), so that each push and pop is a
/// step the models interleave with the mailbox's own.
#[cfg(not(all(test, loom)))]
pub(crate) use crossbeam_queue::SegQueue as MpmcQueue;

#[cfg(all(test, loom))]
pub(crate) use loom_queue::MpmcQueue;

#[cfg(all(test, loom))]
mod loom_queue {
    use std::collections::VecDeque;

    use loom::sync::Mutex;

    /// A linearizable multi-producer, multi-consumer queue under loom.
    #[derive(Debug)]
    pub(crate) struct MpmcQueue<T>(Mutex<VecDeque<T>>);

    impl<T> MpmcQueue<T> {
        pub(crate) fn new() -> Self {
            Self(Mutex::new(VecDeque::new()))
        }

        fn queue(&self) -> loom::sync::MutexGuard<'_, VecDeque<T>> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        pub(crate) fn push(&self, value: T) {
            self.queue().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.queue().pop_front()
        }
    }
}

#[cfg(not(all(test, loom)))]
mod std_cell {
    /// `std`'s `UnsafeCell` with loom's access API: every access names
    /// whether it reads or writes, which loom checks against the
    /// happens-before order of the threads touching the cell.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Reads through the cell's pointer (no other thread may write
        /// meanwhile).
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Writes (or reads) through the cell's pointer (no other thread may
        /// touch the cell meanwhile).
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(all(test, loom))]
mod loom_spin {
    /// The loom stand-in for crossbeam's `Backoff`: every wait yields to
    /// the model's scheduler.
    #[derive(Debug, Default)]
    pub(crate) struct SpinWait;

    impl SpinWait {
        pub(crate) fn new() -> Self {
            Self
        }

        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
        }
    }
}
