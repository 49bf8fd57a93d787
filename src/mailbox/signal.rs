//! Signals carried on the system lane.

use std::fmt;

/// A control signal for an actor, delivered on the system lane: served
/// before any user message and never blocked by a full user lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
// Word-sized on purpose: in `Received<T>` a one-byte signal sits in the
// first byte of the message's payload area, and rustc then moves every
// received message as a byte plus the rest — a store-forwarding stall on
// each receive (thread ring 93 -> 85 ns per hop, tell 31 -> 24 ns, once
// word-sized).
#[repr(u64)]
pub enum SystemSignal {
    /// Stop gracefully after the current message; exit reason `Normal`.
    Stop,
    /// Stop gracefully because the system or a supervisor is shutting down;
    /// exit reason `Shutdown`.
    Shutdown,
}

impl fmt::Display for SystemSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SystemSignal::Stop => "stop",
            SystemSignal::Shutdown => "shutdown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(SystemSignal::Stop.to_string(), "stop");
        assert_eq!(SystemSignal::Shutdown.to_string(), "shutdown");
    }
}
