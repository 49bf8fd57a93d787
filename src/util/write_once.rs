//! [`WriteOnce`]: a value set at most once, in place, then read by anyone —
//! what `OnceLock::set` does, for one compare-and-swap and one release
//! store. (`OnceLock` goes through `Once`, which also handles waiting
//! initialisers and poisoning: two read-modify-writes and ≈80 instructions
//! more, paid by every actor's exit.)
//!
//! The state goes `EMPTY → WRITING → SET`. The compare-and-swap out of
//! `EMPTY` elects the one writer; it writes the value and publishes it with
//! a release store of `SET`. Readers load the state with acquire and touch
//! the value only once it says `SET`, so they see it fully written. A
//! second `set` fails at once, even while the first is still writing (a
//! reader then sees no value yet, as it would a moment earlier). Checked by
//! Miri over this module's tests (`util::write_once` in `.ci/run`'s list).

use std::mem::MaybeUninit;

use super::sync::UnsafeCell;
use super::sync::atomic::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const SET: u8 = 2;

/// A `T` written at most once, by whichever `set` comes first.
pub(crate) struct WriteOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by one thread and then shared by reference
// (hence `T: Sync`), and may be dropped on another thread (hence `T: Send`).
unsafe impl<T: Send + Sync> Sync for WriteOnce<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for WriteOnce<T> {}

impl<T> WriteOnce<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` unless a value was already set (or is being set):
    /// then it is handed back.
    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the compare-and-swap above made this call the only writer,
        // and no reader touches the value before `SET` is published below.
        self.value.with_mut(|slot| unsafe { (*slot).write(value) });
        self.state.store(SET, Ordering::Release);
        Ok(())
    }

    /// The value, once set.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != SET {
            return None;
        }
        // SAFETY: `SET` was stored (release) after the value was written,
        // and the value is never written again nor dropped before `self`.
        Some(self.value.with(|slot| unsafe { (*slot).assume_init_ref() }))
    }
}

impl<T> Default for WriteOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for WriteOnce<T> {
    fn drop(&mut self) {
        if self.state.load(Ordering::Acquire) == SET {
            // SAFETY: set, and dropped here only (`&mut self`).
            self.value
                .with_mut(|slot| unsafe { (*slot).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_first_set_wins_and_a_later_one_gets_its_value_back() {
        let once = WriteOnce::new();
        assert_eq!(once.get(), None);
        assert_eq!(once.set(String::from("first")), Ok(()));
        assert_eq!(
            once.set(String::from("second")),
            Err(String::from("second"))
        );
        assert_eq!(once.get().map(String::as_str), Some("first"));
    }

    #[test]
    fn a_value_never_set_is_not_dropped_and_a_set_one_is_dropped_once() {
        let probe = Arc::new(());
        drop(WriteOnce::<Arc<()>>::new());
        let once = WriteOnce::new();
        once.set(probe.clone()).unwrap();
        assert_eq!(Arc::strong_count(&probe), 2);
        drop(once);
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    /// Two threads set while a third reads: one value wins, the reader sees
    /// either nothing or that value whole, and the loser's value comes back.
    #[test]
    fn racing_setters_and_a_reader_agree_on_one_whole_value() {
        const ROUNDS: usize = if cfg!(miri) { 20 } else { 1_000 };
        for _ in 0..ROUNDS {
            let once = Arc::new(WriteOnce::new());
            let setters: Vec<_> = ["left", "right"]
                .into_iter()
                .map(|side| {
                    let once = once.clone();
                    std::thread::spawn(move || match once.set(side.repeat(8)) {
                        Ok(()) => true,
                        Err(back) => {
                            assert_eq!(back, side.repeat(8), "the loser's own value");
                            false
                        }
                    })
                })
                .collect();
            let reader = {
                let once = once.clone();
                std::thread::spawn(move || once.get().cloned())
            };
            let won: usize = setters
                .into_iter()
                .map(|setter| usize::from(setter.join().unwrap()))
                .sum();
            assert_eq!(won, 1);
            let winner = once.get().cloned().unwrap();
            assert!(winner == "left".repeat(8) || winner == "right".repeat(8));
            if let Some(seen) = reader.join().unwrap() {
                assert_eq!(seen, winner);
            }
        }
    }
}
