//! Cheap identifiers.
//!
//! Ids are plain `u64`s handed out by atomic counters: creating one is a single
//! relaxed `fetch_add`, comparing and hashing them is free, and they print as
//! `actor#17` / `msg#3`. No UUIDs on the hot path (see DESIGN.md).

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Identifies one actor incarnation. Unique within the process.
///
/// ```
/// use airssys_rt::util::ActorId;
/// let a = ActorId::next();
/// let b = ActorId::next();
/// assert_ne!(a, b);
/// assert!(a.to_string().starts_with("actor#"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActorId(u64);

/// Identifies one message envelope. Unique within the process.
///
/// ```
/// use airssys_rt::util::MessageId;
/// assert_ne!(MessageId::next(), MessageId::next());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(u64);

static NEXT_ACTOR_ID: AtomicU64 = AtomicU64::new(1);
/// Message ids handed to a thread at a time (blocks stay aligned to it).
const MESSAGE_ID_BLOCK: u64 = 1024;
static NEXT_MESSAGE_ID: AtomicU64 = AtomicU64::new(MESSAGE_ID_BLOCK);

impl ActorId {
    /// Allocates a fresh, never-before-seen actor id.
    pub fn next() -> Self {
        Self(NEXT_ACTOR_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// Wraps a raw value, e.g. one received from another node.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw `u64` value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl MessageId {
    /// Allocates a fresh, never-before-seen message id. Each thread takes
    /// ids in blocks, so ids rise per thread but interleave across threads.
    #[inline]
    pub fn next() -> Self {
        thread_local! {
            /// The next id of this thread's block and the block's end.
            static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        Self(BLOCK.with(|block| {
            let (mut next, mut end) = block.get();
            if next == end {
                next = NEXT_MESSAGE_ID.fetch_add(MESSAGE_ID_BLOCK, Ordering::Relaxed);
                end = next + MESSAGE_ID_BLOCK;
            }
            block.set((next + 1, end));
            next
        }))
    }

    /// Wraps a raw value, e.g. one received from another node.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw `u64` value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor#{}", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..10_000).map(|_| ActorId::next()).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 40_000);
    }

    #[test]
    fn display_and_serde_round_trip() {
        let id = ActorId::from_raw(42);
        assert_eq!(id.to_string(), "actor#42");
        assert_eq!(MessageId::from_raw(7).to_string(), "msg#7");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "42");
        assert_eq!(serde_json::from_str::<ActorId>(&json).unwrap(), id);
    }
}
