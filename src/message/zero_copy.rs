//! [`ZeroCopyMessage`]: a large byte payload shared, not copied, between
//! the actors it is sent to.

use std::fmt;
use std::sync::Arc;

use super::{Message, MessagePriority};

/// Bytes behind an `Arc<[u8]>` plus a little metadata. Cloning one (to
/// broadcast it, or to keep it while sending it on) bumps a reference count;
/// the bytes are never copied.
///
/// ```
/// use airssys_rt::message::ZeroCopyMessage;
///
/// let frame = ZeroCopyMessage::new(vec![7u8; 1 << 20]).with_content_type("video/raw");
/// let copy = frame.clone();
/// assert!(copy.shares_data_with(&frame));
/// assert_eq!(copy.len(), 1 << 20);
/// assert_eq!(copy.content_type(), Some("video/raw"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ZeroCopyMessage {
    data: Arc<[u8]>,
    content_type: Option<Arc<str>>,
    priority: MessagePriority,
}

impl ZeroCopyMessage {
    /// Wraps `data` (a `Vec<u8>`, a `Box<[u8]>` or an existing `Arc<[u8]>`;
    /// the last is taken as is, without a copy).
    pub fn new(data: impl Into<Arc<[u8]>>) -> Self {
        Self {
            data: data.into(),
            content_type: None,
            priority: MessagePriority::Normal,
        }
    }

    /// Labels the bytes (a MIME type, a schema name).
    pub fn with_content_type(mut self, content_type: impl Into<Arc<str>>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the priority a priority mailbox serves it with.
    pub fn with_priority(mut self, priority: MessagePriority) -> Self {
        self.priority = priority;
        self
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The shared buffer itself, to keep or pass on without a copy.
    pub fn shared_data(&self) -> &Arc<[u8]> {
        &self.data
    }

    /// The label, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether `self` and `other` share the same buffer.
    pub fn shares_data_with(&self, other: &ZeroCopyMessage) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }
}

impl fmt::Debug for ZeroCopyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroCopyMessage")
            .field("bytes", &self.data.len())
            .field("content_type", &self.content_type)
            .field("priority", &self.priority)
            .finish()
    }
}

impl Message for ZeroCopyMessage {
    const MESSAGE_TYPE: &'static str = "airssys.zero_copy";

    fn priority(&self) -> MessagePriority {
        self.priority
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_shares_the_buffer_and_debug_does_not_dump_it() {
        let message = ZeroCopyMessage::new(vec![1u8; 4096]).with_priority(MessagePriority::High);
        let clone = message.clone();
        assert!(clone.shares_data_with(&message));
        assert_eq!(clone.data().as_ptr(), message.data().as_ptr());
        assert_eq!(Arc::strong_count(message.shared_data()), 2);
        assert_eq!(clone.priority(), MessagePriority::High);
        assert!(format!("{clone:?}").contains("bytes: 4096"));
    }

    #[test]
    fn an_existing_arc_is_taken_without_a_copy() {
        let buffer: Arc<[u8]> = Arc::from(vec![9u8; 16]);
        let message = ZeroCopyMessage::new(buffer.clone());
        assert!(Arc::ptr_eq(message.shared_data(), &buffer));
    }
}
