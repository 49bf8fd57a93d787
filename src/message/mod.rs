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
/// `#[derive(Message)]` (feature `macros`, on by default): implements
/// [`Message`] with `MESSAGE_TYPE` defaulting to the type's path-qualified
/// name. Attributes: `#[message(name = "...", priority = "high",
/// version = 2, routing_key = field)]`.
///
/// ```
/// use airssys_rt::prelude::*;
///
/// #[derive(Debug, Message)]
/// #[message(name = "billing.invoice", priority = "high", version = 2, routing_key = customer)]
/// struct Invoice { customer: String, cents: u64 }
///
/// let invoice = Invoice { customer: "c-42".into(), cents: 995 };
/// assert_eq!(Invoice::MESSAGE_TYPE, "billing.invoice");
/// assert_eq!(invoice.priority(), MessagePriority::High);
/// assert_eq!((invoice.version(), invoice.routing_key()), (2, Some("c-42")));
///
/// #[derive(Debug, Message)]
/// enum Ping { Once }
/// // By default, the module path and the name.
/// assert!(Ping::MESSAGE_TYPE.ends_with("::Ping"), "{}", Ping::MESSAGE_TYPE);
/// ```
///
/// A routing key names a field that exists:
///
/// ```compile_fail
/// use airssys_rt::prelude::*;
/// #[derive(Debug, Message)]
/// #[message(routing_key = nowhere)]
/// struct Order { id: String }
/// ```
///
/// Unknown attributes and priorities are errors too:
///
/// ```compile_fail
/// use airssys_rt::prelude::*;
/// #[derive(Debug, Message)]
/// #[message(priority = "urgent")]
/// struct Page;
/// ```
#[cfg(feature = "macros")]
pub use airssys_rt_macros::Message;
pub use envelope::MessageEnvelope;
pub use priority::MessagePriority;
pub use router::route_by_key;
pub use traits::Message;
pub use zero_copy::ZeroCopyMessage;
