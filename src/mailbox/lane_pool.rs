//! Recycled memory for user lanes.
//!
//! A mailbox allocates its user lane ([`Lanes`]) on its first message and
//! frees it with the mailbox. The lane is 128-byte aligned (see `MpscQueue`),
//! and an aligned allocation is the allocator's slow path: glibc before 2.38
//! serves `posix_memalign` without its thread cache, ≈620 instructions
//! against ≈50 for a plain `malloc`, and the free costs ≈200 more (callgrind,
//! here). Actors that come and go — restarted children, fork-join workers,
//! spawn-and-stop — paid that for every instance. A freed lane's memory
//! therefore goes to a small lock-free free list shared by all mailboxes, and
//! the next lane is built in it; only a full list frees memory for real.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::{self, NonNull};
use std::sync::LazyLock;

use crossbeam_queue::ArrayQueue;

use super::lanes::Lanes;
use crate::util::once_box::{Global, Storage};

/// Lane allocations kept for reuse (each a few hundred bytes): enough for
/// the instances a burst of restarts or a fork-join round turns over.
const RETAINED: usize = 128;

/// Memory for one lane, not holding a value.
struct Chunk(NonNull<u8>);

// SAFETY: a chunk is bare memory owned by whoever holds it.
unsafe impl Send for Chunk {}

static FREE: LazyLock<ArrayQueue<Chunk>> = LazyLock::new(|| ArrayQueue::new(RETAINED));

/// [`Storage`] for a mailbox's lanes: reuses freed lane memory.
pub(crate) struct LanePool;

impl LanePool {
    /// The layout every pooled chunk has. A lane holds pointers to its
    /// items, never items, so its layout does not depend on the item type;
    /// one that did would simply not be pooled.
    fn layout<T>() -> Option<Layout> {
        let layout = Layout::new::<Lanes<T>>();
        (layout == Layout::new::<Lanes<()>>()).then_some(layout)
    }
}

// SAFETY: `store` writes the lane into memory allocated with its own layout
// (or returned by `discard`, which dropped its previous lane), owned by no one
// else: a chunk is in the free list or in one lane, never both.
unsafe impl<T> Storage<Lanes<T>> for LanePool {
    fn store(lanes: Lanes<T>) -> NonNull<Lanes<T>> {
        let Some(layout) = Self::layout::<T>() else {
            return Global::store(lanes);
        };
        let memory = match FREE.pop() {
            Some(Chunk(memory)) => memory,
            None => {
                // SAFETY: a lane's layout has a non-zero size.
                let fresh = unsafe { alloc(layout) };
                NonNull::new(fresh).unwrap_or_else(|| handle_alloc_error(layout))
            }
        };
        let slot = memory.cast::<Lanes<T>>();
        // SAFETY: `memory` is unused, sized and aligned for `layout`, which
        // is `Lanes<T>`'s.
        unsafe { slot.as_ptr().write(lanes) };
        slot
    }

    unsafe fn discard(lanes: NonNull<Lanes<T>>) {
        let Some(layout) = Self::layout::<T>() else {
            // SAFETY: an unpooled lane came from `Global::store`.
            return unsafe { Global::discard(lanes) };
        };
        // SAFETY: per the contract, it holds a live lane nobody uses again.
        unsafe { ptr::drop_in_place(lanes.as_ptr()) };
        if let Err(Chunk(memory)) = FREE.push(Chunk(lanes.cast())) {
            // SAFETY: allocated with `layout`, in `store`, and now unused.
            unsafe { dealloc(memory.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{MailboxConfig, MailboxItem};
    use crate::message::MessagePriority;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its drops, to show a recycled lane drops what it held.
    struct Tracked(u64, Arc<AtomicUsize>);

    impl MailboxItem for Tracked {
        fn priority(&self) -> MessagePriority {
            MessagePriority::Normal
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn lanes_of_any_item_type_share_the_pool() {
        assert!(LanePool::layout::<Tracked>().is_some());
        assert!(LanePool::layout::<[u8; 4096]>().is_some());
    }

    #[test]
    fn a_recycled_lane_starts_empty_and_its_old_items_are_dropped() {
        let drops = Arc::new(AtomicUsize::new(0));
        for round in 0..4 * RETAINED as u64 {
            let lanes = LanePool::store(Lanes::new(MailboxConfig::unbounded()));
            // SAFETY: `lanes` is live until discarded below.
            let queue = unsafe { lanes.as_ref() };
            queue.push(Tracked(round, drops.clone()));
            queue.push(Tracked(round + 1, drops.clone()));
            // SAFETY: this test is the only consumer and pushed two items.
            let first = unsafe { queue.pop_next() }.map(|item| item.0);
            assert_eq!(first, Some(round), "a fresh lane yields its own first item");
            // SAFETY: from `store`, not used again.
            unsafe { LanePool::discard(lanes) };
        }
        assert_eq!(drops.load(Ordering::SeqCst), 8 * RETAINED);
    }

    #[test]
    fn threads_recycling_lanes_at_once_never_share_one() {
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                std::thread::spawn(move || {
                    let drops = Arc::new(AtomicUsize::new(0));
                    for round in 0..2_000u64 {
                        let held: Vec<_> = (0..3u64)
                            .map(|i| {
                                let lanes = LanePool::store(Lanes::new(MailboxConfig::unbounded()));
                                let tag = thread << 32 | round << 2 | i;
                                // SAFETY: live until discarded below.
                                unsafe { lanes.as_ref() }.push(Tracked(tag, drops.clone()));
                                (lanes, tag)
                            })
                            .collect();
                        for (lanes, tag) in held {
                            // SAFETY: this thread is the only consumer of its
                            // own lanes, each holding one item.
                            let item = unsafe { lanes.as_ref().pop_next() };
                            assert_eq!(item.map(|item| item.0), Some(tag));
                            // SAFETY: from `store`, not used again.
                            unsafe { LanePool::discard(lanes) };
                        }
                    }
                    drops.load(Ordering::SeqCst)
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().expect("no panic"), 2_000 * 3);
        }
    }
}
