//! Message priorities.

use serde::{Deserialize, Serialize};

/// How urgently a message should be handled.
///
/// Ordered `Low < Normal < High < Critical`. Only actors spawned with a
/// priority mailbox reorder by priority; the default FIFO mailbox ignores it.
///
/// ```
/// use airssys_rt::message::MessagePriority;
/// assert!(MessagePriority::Critical > MessagePriority::High);
/// assert_eq!(MessagePriority::default(), MessagePriority::Normal);
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum MessagePriority {
    /// Background work; handled after everything else.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Handled before normal traffic.
    High = 2,
    /// Handled before everything else in the user lane.
    Critical = 3,
}

impl MessagePriority {
    /// Number of priority levels.
    pub const COUNT: usize = 4;

    /// All levels, highest first (the order a priority mailbox serves them).
    pub const HIGHEST_FIRST: [MessagePriority; 4] = [
        MessagePriority::Critical,
        MessagePriority::High,
        MessagePriority::Normal,
        MessagePriority::Low,
    ];

    /// Index of this level, `0` for `Low` up to `3` for `Critical`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_matches_urgency() {
        let mut v = vec![
            MessagePriority::Normal,
            MessagePriority::Critical,
            MessagePriority::Low,
            MessagePriority::High,
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                MessagePriority::Low,
                MessagePriority::Normal,
                MessagePriority::High,
                MessagePriority::Critical
            ]
        );
        for (i, p) in MessagePriority::HIGHEST_FIRST.iter().rev().enumerate() {
            assert_eq!(p.index(), i);
        }
    }
}
