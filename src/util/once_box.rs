//! [`OnceBox`]: a heap value created on first use, published with one atomic
//! pointer — cheaper than `OnceLock<Box<T>>` on both the first and every
//! later access, and one word in size.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Where a [`OnceBox`] keeps its value: [`Global`] (a plain `Box`) unless a
/// value has a better place, such as the mailbox's lane pool.
///
/// # Safety
/// [`store`](Self::store) must return a pointer to a live, properly aligned
/// `T` that nothing else uses until it is handed to
/// [`discard`](Self::discard): `OnceBox` gives out shared references to it.
pub(crate) unsafe trait Storage<T> {
    /// Moves `value` into memory of its own.
    fn store(value: T) -> NonNull<T>;

    /// Drops the value and gives its memory back.
    ///
    /// # Safety
    /// `value` came from [`store`](Self::store) of the same storage and is
    /// not used again.
    unsafe fn discard(value: NonNull<T>);
}

/// The global allocator, through `Box`.
pub(crate) struct Global;

// SAFETY: a leaked `Box` is live, aligned and owned until `discard`.
unsafe impl<T> Storage<T> for Global {
    fn store(value: T) -> NonNull<T> {
        NonNull::from(Box::leak(Box::new(value)))
    }

    unsafe fn discard(value: NonNull<T>) {
        // SAFETY: per the contract, it came from `Box::leak` in `store`.
        drop(unsafe { Box::from_raw(value.as_ptr()) });
    }
}

/// A lazily allocated `T` (kept by the storage `S`, a `Box` by default) that
/// any thread may initialise; if two race, one allocation wins and the other
/// is dropped.
pub(crate) struct OnceBox<T, S: Storage<T> = Global> {
    ptr: AtomicPtr<T>,
    storage: PhantomData<S>,
}

// SAFETY: the box is shared by reference after publication (hence `T: Sync`)
// and may be created on one thread and dropped on another (hence `T: Send`);
// `S` is only a marker type for its functions.
unsafe impl<T: Send + Sync, S: Storage<T>> Send for OnceBox<T, S> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync, S: Storage<T>> Sync for OnceBox<T, S> {}

impl<T, S: Storage<T>> OnceBox<T, S> {
    pub(crate) const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(ptr::null_mut()),
            storage: PhantomData,
        }
    }

    /// The value, if it has been created.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        // SAFETY: a non-null pointer was published by `init` from
        // `S::store` (live and unshared, per `Storage`'s contract) and is
        // discarded only in `drop` (which needs `&mut self`).
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
        let fresh = S::store(init());
        match self.ptr.compare_exchange(
            ptr::null_mut(),
            fresh.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; lives until `drop`.
            Ok(_) => unsafe { fresh.as_ref() },
            Err(winner) => {
                // SAFETY: `fresh` was never shared; `winner` is published.
                unsafe {
                    S::discard(fresh);
                    &*winner
                }
            }
        }
    }
}

impl<T, S: Storage<T>> Drop for OnceBox<T, S> {
    fn drop(&mut self) {
        if let Some(value) = NonNull::new(*self.ptr.get_mut()) {
            // SAFETY: exclusive access; the pointer came from `S::store`.
            unsafe { S::discard(value) };
        }
    }
}

#[cfg(test)]
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
        for _ in 0..100 {
            let drops = Arc::new(AtomicUsize::new(0));
            let cell = Arc::new(OnceBox::<_>::new());
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
        let cell = OnceBox::<_>::new();
        assert!(cell.get().is_none());
        assert_eq!(*cell.get_or_init(|| 5), 5);
        assert_eq!(cell.get(), Some(&5));
    }
}
