//! A lock-free multi-producer, single-consumer FIFO: a linked list of
//! blocks, the shape tokio's channels use. Blocks grow from 8 to 32 slots, so
//! an actor that receives a few messages allocates little.
//!
//! It is specialised for the [`Mailbox`](super::Mailbox): the mailbox's state
//! word already counts every item before it is pushed, and the receiver pops
//! only an item it has claimed from that count. So the consumer never has to
//! detect emptiness: it only waits (a few nanoseconds at most) for a claimed
//! item whose push is still in flight. A push is one `fetch_add` and one
//! release store; a pop reads the slot and touches no shared counter.
//!
//! # Memory reclamation
//! Producers reach blocks through `tail_block`, which only moves past a block
//! once every slot of that block is written. The producer that moves it
//! records the tail index it then sees (`observed_tail`) and releases the
//! block. Any producer that could still hold a pointer to the block reserved
//! its index before that, so once the consumer has popped every index below
//! `observed_tail`, no producer can touch the block again and it is freed.
//!
//! # Who touches which word, and when
//! * `tail`: every producer, once per push (`fetch_add` reserves the index).
//! * `tail_block`: producers load it; a producer that finds the block full
//!   moves it one block on with a compare-and-swap (one winner).
//! * a block's `next`: null until one producer links the next block with a
//!   compare-and-swap (a loser frees its unshared block); read by producers
//!   walking forward and by the consumer moving on.
//! * a slot's value: written once, by the producer that reserved its
//!   index, *before* its `ready` flag (release); read once, by the consumer,
//!   *after* it saw `ready` (acquire). Nobody else touches it.
//! * a block's `observed_tail`: written once, by the producer whose
//!   compare-and-swap moved `tail_block` past the block, before `released`
//!   (release); read by the consumer only after it saw `released`
//!   (acquire).
//! * the cursor (`head`, `head_block`, `free_head`): the consumer only;
//!   the caller guarantees a single consumer (`pop`'s contract).
//! * freeing a block: the consumer only, under the rule above; a block is
//!   reached through a raw pointer that keeps the whole allocation's
//!   provenance (a `&Block` covers only the header, not the slots after it).
//!
//! Checked by Miri (Stacked and Tree Borrows) over this module's tests and
//! by the loom model `block_queue_across_blocks_with_reclamation`, which
//! uses two-slot blocks and fails on any touch of a freed block (see
//! `Block::header`).
//!
//! Found that way: `Block::slot` once took `&self` and indexed past the
//! header from it. Such a reference's provenance covers the header only,
//! so every push wrote a slot through a pointer that had no right to it
//! (Stacked Borrows rejects the first push; Tree Borrows let it pass). It
//! now takes the block's raw pointer; `fifo_across_many_blocks` under Miri
//! is its regression test.

use std::alloc::{Layout, alloc, handle_alloc_error};
use std::mem::MaybeUninit;
use std::ptr;

use crate::util::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::util::sync::{SpinWait, UnsafeCell};

/// Slots in the first block. The next block is four times larger, up to
/// [`MAX_BLOCK_CAP`]: an actor that receives a handful of messages allocates
/// a small block, a busy one works in large ones from its ninth message on.
/// The loom models use two-slot blocks, so that a few pushes already cross
/// block boundaries and free blocks.
const FIRST_BLOCK_CAP: usize = if cfg!(all(test, loom)) { 2 } else { 8 };
const MAX_BLOCK_CAP: usize = if cfg!(all(test, loom)) { 2 } else { 32 };

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    ready: AtomicBool,
}

/// A block header followed, in the same allocation, by `cap` slots.
/// `repr(C)` keeps `slots` last, so the slots really follow the header.
#[repr(C)]
struct Block<T> {
    /// Index of the first slot.
    start: usize,
    /// Number of slots.
    cap: usize,
    next: AtomicPtr<Block<T>>,
    /// Set once `tail_block` has moved past this block.
    released: AtomicBool,
    /// The tail index seen when it was released; written once, before
    /// `released` is set.
    observed_tail: UnsafeCell<usize>,
    /// Under loom, a freed block is kept (leaked) and marked, so that a
    /// model fails on any later touch of it instead of reading freed memory.
    #[cfg(all(test, loom))]
    freed: std::sync::atomic::AtomicBool,
    /// Where the slots begin (they follow the header in the allocation).
    slots: [Slot<T>; 0],
}

impl<T> Block<T> {
    /// The header followed by `cap` slots. Only a message type close to
    /// `isize::MAX / 32` bytes could overflow it, and such a value cannot
    /// exist to be pushed; treat it as the allocation failure it would be.
    fn layout(cap: usize) -> Layout {
        let header = Layout::new::<Block<T>>();
        Layout::array::<Slot<T>>(cap)
            .and_then(|slots| header.extend(slots))
            .map(|(layout, _)| layout.pad_to_align())
            .unwrap_or_else(|_| handle_alloc_error(header))
    }

    /// Allocates an empty block of `cap` slots starting at index `start`.
    /// Slot values stay uninitialised until pushed (writing an uninitialised
    /// `MaybeUninit` into a cell costs nothing; loom's cells need it).
    fn allocate(start: usize, cap: usize) -> *mut Block<T> {
        let layout = Self::layout(cap);
        // SAFETY: the layout has a non-zero size (the header).
        let block = unsafe { alloc(layout) }.cast::<Block<T>>();
        if block.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: `block` is a fresh allocation sized for the header and
        // `cap` slots; each field is written before the block is shared.
        unsafe {
            (&raw mut (*block).start).write(start);
            (&raw mut (*block).cap).write(cap);
            (&raw mut (*block).next).write(AtomicPtr::new(ptr::null_mut()));
            (&raw mut (*block).released).write(AtomicBool::new(false));
            (&raw mut (*block).observed_tail).write(UnsafeCell::new(0));
            #[cfg(all(test, loom))]
            (&raw mut (*block).freed).write(std::sync::atomic::AtomicBool::new(false));
            let slots = Self::slots_ptr(block);
            for i in 0..cap {
                let slot = slots.add(i);
                (&raw mut (*slot).value).write(UnsafeCell::new(MaybeUninit::uninit()));
                (&raw mut (*slot).ready).write(AtomicBool::new(false));
            }
        }
        block
    }

    /// Frees a block allocated by [`allocate`](Self::allocate).
    ///
    /// # Safety
    /// `block` must be unreachable by every thread, and its remaining values
    /// already dropped or moved out.
    unsafe fn free(block: *mut Block<T>) {
        #[cfg(not(all(test, loom)))]
        // SAFETY: per the contract, and `cap` is the one it was allocated with.
        unsafe {
            std::alloc::dealloc(block.cast(), Self::layout((*block).cap));
        }
        #[cfg(all(test, loom))]
        // SAFETY: per the contract; the block is only marked.
        unsafe {
            (*block)
                .freed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The header of a live block.
    ///
    /// # Safety
    /// `block` is live (allocated by [`allocate`](Self::allocate), not yet
    /// freed) for `'a`. Under loom that is checked: a model that reaches a
    /// freed block fails here.
    #[inline(always)]
    unsafe fn header<'a>(block: *mut Block<T>) -> &'a Block<T> {
        // SAFETY: per the contract.
        let header = unsafe { &*block };
        #[cfg(all(test, loom))]
        assert!(
            !header.freed.load(std::sync::atomic::Ordering::Relaxed),
            "a freed block was touched"
        );
        header
    }

    fn slots_ptr(block: *mut Block<T>) -> *mut Slot<T> {
        // SAFETY: only computes the address of the trailing slot array.
        unsafe { (&raw mut (*block).slots).cast::<Slot<T>>() }
    }

    /// The slot at `offset` (< `cap`) of `block`. It takes the block's raw
    /// pointer, not `&self`: a reference to the header carries provenance
    /// for the header only, and the slots lie past it in the allocation.
    ///
    /// # Safety
    /// `block` is live (allocated by [`allocate`](Self::allocate), not yet
    /// freed) for `'a`, and `offset` is below its `cap`.
    unsafe fn slot<'a>(block: *mut Block<T>, offset: usize) -> &'a Slot<T> {
        // SAFETY: per the contract: the allocation holds `cap` slots with
        // initialised flags after the header, and `offset < cap`.
        unsafe {
            debug_assert!(offset < Self::header(block).cap);
            &*Self::slots_ptr(block).add(offset)
        }
    }

    /// Whether `index` falls in this block.
    #[inline]
    fn holds(&self, index: usize) -> bool {
        index.wrapping_sub(self.start) < self.cap
    }

    /// Whether every slot of `block` is written.
    ///
    /// # Safety
    /// `block` is live.
    unsafe fn is_full(block: *mut Block<T>) -> bool {
        // SAFETY: live per the contract; every offset is below `cap`.
        unsafe {
            let cap = Self::header(block).cap;
            (0..cap).all(|i| Self::slot(block, i).ready.load(Ordering::Acquire))
        }
    }
}

/// The consumer's private position.
struct Cursor<T> {
    head: usize,
    head_block: *mut Block<T>,
    /// Oldest block not yet freed (at or before `head_block`).
    free_head: *mut Block<T>,
}

/// A multi-producer, single-consumer FIFO queue; see the module docs.
///
/// Five words: the producers' fields and the consumer's cursor sit side by
/// side. Keeping them on separate cache lines (128 bytes apart in a
/// 128-byte aligned queue) made every actor that had received a message
/// ≈450 bytes bigger and cost an over-aligned allocation per queue; with
/// 100,000 such actors (fork-join) that was 1.72 KB of memory per actor
/// against 1.27 KB now, and creation ran ≈30 % slower. The thread ring, for
/// which the split was made, now runs within noise of it.
#[repr(C)]
pub(crate) struct MpscQueue<T> {
    tail: AtomicUsize,
    tail_block: AtomicPtr<Block<T>>,
    cursor: UnsafeCell<Cursor<T>>,
}

// SAFETY: values of type `T` move between threads through the queue (hence
// `T: Send`); producer-shared state is atomic, and the consumer cursor is only
// touched by the single consumer, as `pop`'s contract requires.
unsafe impl<T: Send> Send for MpscQueue<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for MpscQueue<T> {}

impl<T> MpscQueue<T> {
    pub(crate) fn new() -> Self {
        let first = Block::allocate(0, FIRST_BLOCK_CAP);
        Self {
            tail: AtomicUsize::new(0),
            tail_block: AtomicPtr::new(first),
            cursor: UnsafeCell::new(Cursor {
                head: 0,
                head_block: first,
                free_head: first,
            }),
        }
    }

    /// Appends `value`. Any thread may push.
    #[inline]
    pub(crate) fn push(&self, value: T) {
        let index = self.tail.fetch_add(1, Ordering::AcqRel);
        let block = self.find_block(index);
        // SAFETY: `find_block` returns the live block holding `index`, and
        // this producer alone reserved `index`, so it alone writes the slot.
        let slot = unsafe { Block::slot(block, index - Block::header(block).start) };
        // SAFETY: as above: no other thread touches the slot's value until
        // `ready` publishes it.
        slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
        slot.ready.store(true, Ordering::Release);
    }

    /// The block holding `index`: almost always `tail_block` itself.
    #[inline(always)]
    fn find_block(&self, index: usize) -> *mut Block<T> {
        let block = self.tail_block.load(Ordering::Acquire);
        // SAFETY: see `walk_to`.
        if unsafe { Block::header(block) }.holds(index) {
            return block;
        }
        self.walk_to(block, index)
    }

    /// Walks from `block` to the block holding `index`, creating blocks as
    /// needed and moving `tail_block` past full blocks on the way.
    #[cold]
    fn walk_to(&self, mut block: *mut Block<T>, index: usize) -> *mut Block<T> {
        let mut may_advance = true;
        loop {
            // SAFETY: `tail_block` never moves past a block holding an index
            // reserved by an unfinished push (it moves only past full blocks),
            // and a block reachable from it is freed only after every push
            // that could reach it has finished (module docs); ours has not.
            let current = unsafe { Block::header(block) };
            if current.holds(index) {
                return block;
            }
            let next = match current.next.load(Ordering::Acquire) {
                next if next.is_null() => self.grow(current),
                next => next,
            };
            // SAFETY: `block` is live (above).
            if may_advance && unsafe { Block::is_full(block) } {
                match self.tail_block.compare_exchange(
                    block,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        let observed = self.tail.load(Ordering::Acquire);
                        // SAFETY: only the producer whose CAS moved
                        // `tail_block` past this block writes this field, and
                        // it does so before publishing `released`.
                        let record = |tail: *mut usize| unsafe { *tail = observed };
                        current.observed_tail.with_mut(record);
                        current.released.store(true, Ordering::Release);
                    }
                    Err(_) => may_advance = false,
                }
            } else {
                may_advance = false;
            }
            block = next;
        }
    }

    /// Links a new block after `current` (or returns the one another
    /// producer linked first).
    fn grow(&self, current: &Block<T>) -> *mut Block<T> {
        let fresh = Block::allocate(
            current.start + current.cap,
            (current.cap * 4).min(MAX_BLOCK_CAP),
        );
        match current.next.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` was never shared and holds no values.
                unsafe { Block::free(fresh) };
                winner
            }
        }
    }

    /// Removes the oldest item, waiting for its push to land if it is still
    /// in flight.
    ///
    /// # Safety
    /// As for [`pop_in_place`](Self::pop_in_place).
    #[inline]
    pub(crate) unsafe fn pop(&self) -> T {
        // SAFETY: forwarded; the item is read once, here.
        unsafe { self.pop_in_place().read() }
    }

    /// Removes the oldest item like [`pop`](Self::pop), but leaves its
    /// value in the slot and returns where it is: the caller moves it out
    /// (`ptr::read`) exactly once, before the next pop, which may free the
    /// slot's block. Reading a message straight from its slot spares the
    /// copies a returned value makes on its way to where it is used.
    ///
    /// # Safety
    /// Only one thread may pop at a time (single consumer), and only after a
    /// push of this item has at least begun (the caller claimed it from a
    /// count that producers increment before pushing).
    #[inline]
    pub(crate) unsafe fn pop_in_place(&self) -> *mut T {
        // SAFETY: single consumer, per the contract: no other thread touches
        // the cursor.
        self.cursor
            .with_mut(|cursor| unsafe { self.pop_at(&mut *cursor) })
    }

    /// [`pop_in_place`](Self::pop_in_place) with the consumer's cursor.
    ///
    /// # Safety
    /// As for [`pop_in_place`](Self::pop_in_place).
    #[inline(always)]
    unsafe fn pop_at(&self, cursor: &mut Cursor<T>) -> *mut T {
        // SAFETY: `head_block` is never freed while it is the cursor's block.
        while !unsafe { Block::header(cursor.head_block) }.holds(cursor.head) {
            self.advance(cursor);
        }
        // SAFETY: the block is live (above) and the slot was reserved.
        let slot = unsafe {
            let start = Block::header(cursor.head_block).start;
            Block::slot(cursor.head_block, cursor.head - start)
        };
        if !slot.ready.load(Ordering::Acquire) {
            let backoff = SpinWait::new();
            while !slot.ready.load(Ordering::Acquire) {
                backoff.snooze();
            }
        }
        cursor.head += 1;
        // `ready` says the value was written; the caller moves it out once.
        slot.value.with_mut(|value| value.cast::<T>())
    }

    /// Moves the cursor to the next block (waiting for a producer to link
    /// it), then frees the blocks no producer can reach any more.
    #[cold]
    fn advance(&self, cursor: &mut Cursor<T>) {
        // SAFETY: `head_block` is live.
        let current = unsafe { Block::header(cursor.head_block) };
        let backoff = SpinWait::new();
        let next = loop {
            let next = current.next.load(Ordering::Acquire);
            if !next.is_null() {
                break next;
            }
            backoff.snooze();
        };
        cursor.head_block = next;
        while cursor.free_head != cursor.head_block {
            // SAFETY: blocks from `free_head` up to `head_block` are live.
            let oldest = unsafe { Block::header(cursor.free_head) };
            if !oldest.released.load(Ordering::Acquire) {
                break;
            }
            // SAFETY: `released` (seen above, with acquire) is set after the
            // one write of `observed_tail`.
            let observed_tail = oldest.observed_tail.with(|tail| unsafe { *tail });
            if observed_tail > cursor.head {
                break;
            }
            let next = oldest.next.load(Ordering::Acquire);
            // SAFETY: released, and every push that could reach it has been
            // popped (module docs): nobody references this block any more.
            unsafe { Block::free(cursor.free_head) };
            cursor.free_head = next;
        }
    }
}

impl<T> Drop for MpscQueue<T> {
    fn drop(&mut self) {
        let tail = self.tail.load(Ordering::Relaxed);
        // SAFETY: exclusive access (`&mut self`).
        let cursor = self.cursor.with_mut(|cursor| unsafe { &mut *cursor });
        let mut block = cursor.free_head;
        while !block.is_null() {
            // SAFETY: exclusive access; every block from `free_head` on is live
            // and owned by the queue.
            let owned = unsafe { Block::header(block) };
            for offset in 0..owned.cap {
                let index = owned.start + offset;
                // SAFETY: live (above), and `offset < cap`.
                let slot = unsafe { Block::slot(block, offset) };
                if index >= cursor.head && index < tail && slot.ready.load(Ordering::Acquire) {
                    // SAFETY: written and never popped.
                    slot.value
                        .with_mut(|value| unsafe { (*value).assume_init_drop() });
                }
            }
            let next = owned.next.load(Ordering::Acquire);
            // SAFETY: its values were dropped just above; nothing else can
            // reach it (exclusive access).
            unsafe { Block::free(block) };
            block = next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as Counter;

    #[test]
    fn fifo_across_many_blocks() {
        let q = MpscQueue::new();
        for i in 0..1_000 {
            q.push(i);
        }
        for i in 0..1_000 {
            // SAFETY: single consumer; item pushed.
            assert_eq!(unsafe { q.pop() }, i);
        }
    }

    #[test]
    fn growing_blocks_keep_order_for_over_aligned_values() {
        #[derive(Debug, PartialEq)]
        #[repr(align(64))]
        struct Wide(u64);
        let q = MpscQueue::new();
        // 8 + 32 + 32 + …: crosses the growth step and many blocks.
        for round in 0..3u64 {
            for i in 0..200 {
                q.push(Wide(round * 1000 + i));
            }
            for i in 0..200 {
                // SAFETY: single consumer; item pushed.
                let got = unsafe { q.pop() };
                assert_eq!(got, Wide(round * 1000 + i));
                assert_eq!(std::ptr::from_ref(&got).align_offset(64), 0);
            }
        }
    }

    #[test]
    fn drop_releases_unpopped_values_exactly_once() {
        struct Tracked(Arc<Counter>);
        impl Drop for Tracked {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(Counter::new(0));
        let q = MpscQueue::new();
        for _ in 0..100 {
            q.push(Tracked(drops.clone()));
        }
        for _ in 0..40 {
            // SAFETY: single consumer; items pushed.
            drop(unsafe { q.pop() });
        }
        assert_eq!(drops.load(Ordering::SeqCst), 40);
        drop(q);
        assert_eq!(drops.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn concurrent_producers_keep_per_producer_order_and_lose_nothing() {
        // Miri interprets every step (and picks its own interleavings): a
        // few blocks' worth is enough there.
        const ROUNDS: usize = if cfg!(miri) { 2 } else { 20 };
        const PRODUCERS: usize = if cfg!(miri) { 3 } else { 4 };
        const EACH: usize = if cfg!(miri) { 40 } else { 20_000 };
        for _ in 0..ROUNDS {
            let q = Arc::new(MpscQueue::new());
            let pushed = Arc::new(Counter::new(0));
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let q = q.clone();
                    let pushed = pushed.clone();
                    std::thread::spawn(move || {
                        for i in 0..EACH {
                            // Count first, as the mailbox does: the consumer
                            // may then wait on a push still in flight.
                            pushed.fetch_add(1, Ordering::SeqCst);
                            q.push((p, i));
                        }
                    })
                })
                .collect();
            let mut next = [0usize; PRODUCERS];
            let mut popped = 0;
            while popped < PRODUCERS * EACH {
                // Pop only what is counted (the mailbox's claim rule).
                if popped < pushed.load(Ordering::SeqCst) {
                    // SAFETY: single consumer; the item is counted, so its push
                    // has begun or will.
                    let (p, i) = unsafe { q.pop() };
                    assert_eq!(i, next[p], "producer {p} out of order");
                    next[p] += 1;
                    popped += 1;
                }
            }
            for p in producers {
                p.join().unwrap();
            }
            assert_eq!(next, [EACH; PRODUCERS]);
        }
    }
}
