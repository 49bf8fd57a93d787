//! Live-heap accounting (a counting global allocator) and RSS, for the
//! idle-memory workload.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Forwards to the system allocator and keeps a running total of live bytes.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Live heap bytes (meaningful when [`Counting`] is the global allocator).
pub fn live_heap() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Resident set size in bytes, from `/proc/self/statm` (0 where unavailable).
pub fn rss() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Measures the memory `spawn_idle` adds, per actor: (heap, RSS).
pub struct MemoryProbe {
    heap: isize,
    rss: isize,
}

impl MemoryProbe {
    pub fn start() -> Self {
        Self {
            heap: live_heap(),
            rss: rss(),
        }
    }

    pub fn per_actor(&self, actors: u64) -> (f64, f64) {
        let n = actors.max(1) as f64;
        (
            (live_heap() - self.heap) as f64 / n,
            (rss() - self.rss) as f64 / n,
        )
    }
}
