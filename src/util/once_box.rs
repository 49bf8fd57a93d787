//! [`OnceBox`]: a heap value created on first use, published with one atomic
//! pointer — cheaper than `OnceLock<Box<T>>` on both the first and every
//! later access, and one word in size.
//!
//! The pointer is null until one compare-and-swap publishes a leaked `Box`
//! (release); readers load it with acquire, so they see the value fully
//! built. An initialiser that loses the race frees its own box, which no
//! one else saw. The published box is freed only in `drop` (`&mut self`).
//! Checked by Miri (`racing_initialisers_agree_on_one_value_and_free_the_rest`)
//! and, as the mailbox's lane, by the loom models.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use super::sync::atomic::{AtomicPtr, Ordering};

/// A lazily allocated `T` that any thread may initialise; if two race, one
/// allocation wins and the other is dropped.
pub(crate) struct OnceBox<T> {
    ptr: AtomicPtr<T>,
    /// Owns a `Box<T>` (for drop check and auto traits).
    owns: PhantomData<Box<T>>,
}

// SAFETY: the box is shared by reference after publication (hence `T: Sync`)
// and may be created on one thread and dropped on another (hence `T: Send`).
unsafe impl<T: Send + Sync> Send for OnceBox<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for OnceBox<T> {}

impl<T> OnceBox<T> {
    pub(crate) fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
            owns: PhantomData,
        }
    }

    /// The value, if it has been created.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        // SAFETY: a non-null pointer was published by `init` from a leaked
        // `Box` and is freed only in `drop` (which needs `&mut self`).
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// The value, created with `init` if needed.
    #[inline]
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self.get() {
            Some(value) => value,
            None => self.init(init),
        }
    }

    #[cold]
    fn init(&self, init: impl FnOnce() -> T) -> &T {
        let fresh = NonNull::from(Box::leak(Box::new(init())));
        match self.ptr.compare_exchange(
            ptr::null_mut(),
            fresh.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; lives until `drop`.
            Ok(_) => unsafe { fresh.as_ref() },
            Err(winner) => {
                // SAFETY: `fresh` was never shared (its `Box` is taken back);
                // `winner` is published and lives until `drop`.
                unsafe {
                    drop(Box::from_raw(fresh.as_ptr()));
                    &*winner
                }
            }
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` already orders this after every access.
        let value = self.ptr.load(Ordering::Relaxed);
        if !value.is_null() {
            // SAFETY: exclusive access; the pointer came from `Box::leak`.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn racing_initialisers_agree_on_one_value_and_free_the_rest() {
        struct Counted(usize, Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Miri interprets every step (and picks its own interleavings).
        const ROUNDS: usize = if cfg!(miri) { 10 } else { 100 };
        for _ in 0..ROUNDS {
            let drops = Arc::new(AtomicUsize::new(0));
            let cell = Arc::new(OnceBox::new());
            let seen: Vec<usize> = (0..4)
                .map(|i| {
                    let cell = cell.clone();
                    let drops = drops.clone();
                    std::thread::spawn(move || cell.get_or_init(|| Counted(i, drops)).0)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
            let losers = drops.load(Ordering::SeqCst);
            drop(Arc::try_unwrap(cell).ok().unwrap());
            assert_eq!(drops.load(Ordering::SeqCst), losers + 1);
        }
    }

    #[test]
    fn get_is_none_until_initialised() {
        let cell = OnceBox::new();
        assert!(cell.get().is_none());
        assert_eq!(*cell.get_or_init(|| 5), 5);
        assert_eq!(cell.get(), Some(&5));
    }
}
