//! A global allocator that counts live heap bytes, and the bytes each thread
//! allocates, shared by the idle-memory and dead-letter tests and the
//! idle-memory benchmark (each includes this file with `#[path]`).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Forwards to the system allocator and keeps a running total.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // `const`, without a destructor: touching it never allocates.
    static THREAD_ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// Bytes currently allocated.
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Bytes this thread has allocated so far (frees not subtracted).
pub fn allocated_by_this_thread() -> usize {
    THREAD_ALLOCATED.with(Cell::get)
}

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        let _ = THREAD_ALLOCATED.try_with(|bytes| bytes.set(bytes.get() + layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}
