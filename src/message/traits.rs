//! The [`Message`] trait.

use std::fmt::Debug;

use super::MessagePriority;

/// A value an actor can receive.
///
/// No reflection: each message type names itself with [`Message::MESSAGE_TYPE`].
/// The bound is `Send + Debug + 'static`; unlike the brief, `Sync + Clone` are
/// not required, so a message can carry a [`ReplyTo`](crate::actor::ReplyTo)
/// port. Operations that copy a message (broadcast, pub/sub) ask for `Clone`
/// themselves.
///
/// ```
/// use airssys_rt::message::{Message, MessagePriority};
///
/// #[derive(Debug)]
/// enum Alarm { Fire, Tick }
///
/// impl Message for Alarm {
///     const MESSAGE_TYPE: &'static str = "alarm";
///     fn priority(&self) -> MessagePriority {
///         match self {
///             Alarm::Fire => MessagePriority::Critical,
///             Alarm::Tick => MessagePriority::Low,
///         }
///     }
/// }
/// assert_eq!(Alarm::Fire.priority(), MessagePriority::Critical);
/// assert_eq!(Alarm::Tick.version(), 1);
/// ```
pub trait Message: Send + Debug + 'static {
    /// Explicit, stable name of this message type (used in dead letters,
    /// metrics and on the wire).
    const MESSAGE_TYPE: &'static str;

    /// Priority honoured by priority mailboxes. Defaults to `Normal`.
    fn priority(&self) -> MessagePriority {
        MessagePriority::Normal
    }

    /// Schema version, for evolving messages that cross process boundaries.
    fn version(&self) -> u32 {
        1
    }

    /// Optional key for sharding (consistent-hash pools).
    fn routing_key(&self) -> Option<&str> {
        None
    }
}

macro_rules! primitive_messages {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(
            impl Message for $ty {
                const MESSAGE_TYPE: &'static str = $name;
            }
        )*
    };
}

primitive_messages! {
    () => "unit",
    bool => "bool",
    u32 => "u32",
    u64 => "u64",
    usize => "usize",
    i32 => "i32",
    i64 => "i64",
    String => "string",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Keyed(String);
    impl Message for Keyed {
        const MESSAGE_TYPE: &'static str = "keyed";
        fn routing_key(&self) -> Option<&str> {
            Some(&self.0)
        }
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(7u64.priority(), MessagePriority::Normal);
        assert_eq!(7u64.version(), 1);
        assert_eq!(7u64.routing_key(), None);
        assert_eq!(<u64 as Message>::MESSAGE_TYPE, "u64");
        assert_eq!(Keyed("user-9".into()).routing_key(), Some("user-9"));
    }
}
