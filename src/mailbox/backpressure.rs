//! What a bounded mailbox does when it is full.

use std::fmt;

/// Behaviour of a bounded mailbox when a message arrives and it is full.
///
/// | strategy     | `tell` when full                                   |
/// |--------------|----------------------------------------------------|
/// | `Block`      | waits until there is room (the default)            |
/// | `Reject`     | returns an error that gives the message back       |
/// | `DropOldest` | accepts it and drops the oldest queued message     |
/// | `DropNewest` | drops the incoming message                         |
///
/// Dropped messages are recorded as dead letters; nothing vanishes silently.
/// In a priority mailbox `DropOldest` drops the oldest message of the lowest
/// non-empty priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Backpressure {
    /// The sender waits for room (`try_tell` returns `MailboxFull` instead).
    #[default]
    Block,
    /// The send fails and returns the message.
    Reject,
    /// The oldest queued message is dropped to make room.
    DropOldest,
    /// The incoming message is dropped.
    DropNewest,
}

impl fmt::Display for Backpressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backpressure::Block => "block",
            Backpressure::Reject => "reject",
            Backpressure::DropOldest => "drop-oldest",
            Backpressure::DropNewest => "drop-newest",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_block_and_names_are_stable() {
        assert_eq!(Backpressure::default(), Backpressure::Block);
        assert_eq!(Backpressure::DropOldest.to_string(), "drop-oldest");
        assert_eq!(Backpressure::DropNewest.to_string(), "drop-newest");
        assert_eq!(Backpressure::Reject.to_string(), "reject");
    }
}
