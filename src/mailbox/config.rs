//! Mailbox configuration chosen at spawn time.

use super::Backpressure;

/// Order in which the user lane is served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MailboxKind {
    /// First in, first out per sender; the fastest lane.
    #[default]
    Fifo,
    /// Highest [`MessagePriority`](crate::message::MessagePriority) first,
    /// FIFO within a priority.
    Priority,
}

/// Shape of an actor's mailbox.
///
/// ```
/// use airssys_rt::mailbox::{Backpressure, MailboxConfig, MailboxKind};
/// let cfg = MailboxConfig::bounded(128, Backpressure::Reject).with_kind(MailboxKind::Priority);
/// assert_eq!(cfg.capacity, Some(128));
/// assert!(MailboxConfig::unbounded().validate().is_ok());
/// assert!(MailboxConfig::bounded(0, Backpressure::Block).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MailboxConfig {
    /// FIFO or priority order.
    pub kind: MailboxKind,
    /// Maximum queued user messages; `None` for unbounded.
    pub capacity: Option<usize>,
    /// What happens when a bounded mailbox is full.
    pub backpressure: Backpressure,
}

impl MailboxConfig {
    /// Largest capacity a bounded mailbox accepts.
    pub const MAX_CAPACITY: usize = usize::MAX >> 4;

    /// An unbounded FIFO mailbox.
    pub const fn unbounded() -> Self {
        Self {
            kind: MailboxKind::Fifo,
            capacity: None,
            backpressure: Backpressure::Block,
        }
    }

    /// A bounded FIFO mailbox.
    pub const fn bounded(capacity: usize, backpressure: Backpressure) -> Self {
        Self {
            kind: MailboxKind::Fifo,
            capacity: Some(capacity),
            backpressure,
        }
    }

    /// The same configuration with another lane order.
    pub const fn with_kind(mut self, kind: MailboxKind) -> Self {
        self.kind = kind;
        self
    }

    /// Checks that the configuration can be built; the error says how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        match self.capacity {
            Some(0) => Err(
                "mailbox capacity must be at least 1; use MailboxConfig::unbounded() for no limit"
                    .into(),
            ),
            Some(c) if c > Self::MAX_CAPACITY => Err(format!(
                "mailbox capacity {c} exceeds the maximum {}; use MailboxConfig::unbounded() instead",
                Self::MAX_CAPACITY
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_unbounded_fifo() {
        let d = MailboxConfig::default();
        assert_eq!(d, MailboxConfig::unbounded());
        assert_eq!(d.kind, MailboxKind::Fifo);
    }

    #[test]
    fn validation_messages_say_what_to_do() {
        let err = MailboxConfig::bounded(0, Backpressure::Reject)
            .validate()
            .unwrap_err();
        assert!(err.contains("unbounded"), "{err}");
        let err = MailboxConfig::bounded(usize::MAX, Backpressure::Reject)
            .validate()
            .unwrap_err();
        assert!(err.contains("maximum"), "{err}");
    }
}
