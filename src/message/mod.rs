//! Messages: the [`Message`] trait every actor message implements, its
//! [`MessagePriority`], the [`MessageEnvelope`] used on the broker path,
//! [`ZeroCopyMessage`] for large shared payloads, and key-based routing
//! helpers.

pub mod envelope;
pub mod priority;
pub mod router;
pub mod traits;
pub mod zero_copy;

pub use crate::util::MessageId;
pub use envelope::MessageEnvelope;
pub use priority::MessagePriority;
pub use router::route_by_key;
pub use traits::Message;
pub use zero_copy::ZeroCopyMessage;
