//! [`MessageEnvelope`]: a message plus delivery metadata.
//!
//! Envelopes are for the broker path and for senders that want metadata
//! (a TTL, a correlation id). Plain [`ActorRef::tell`](crate::actor::ActorRef::tell)
//! never builds one: no clock read, no id allocation per message.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Span;

use super::{Message, MessagePriority};
use crate::address::ActorAddress;
use crate::util::{ActorId, MessageId, time};

/// A message with its delivery metadata. Serializable when the payload is.
///
/// ```
/// use std::time::Duration;
/// use airssys_rt::address::ActorAddress;
/// use airssys_rt::message::MessageEnvelope;
/// use airssys_rt::util::ActorId;
///
/// let env = MessageEnvelope::new(ActorAddress::named("billing"), 42u64)
///     .with_ttl(Duration::from_secs(5))
///     .with_sender(ActorId::from_raw(1));
/// assert_eq!(env.payload, 42);
/// assert!(!env.is_expired());
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageEnvelope<M> {
    /// Unique id of this envelope.
    pub id: MessageId,
    /// The sending actor, when known.
    pub sender: Option<ActorId>,
    /// Where the envelope is going.
    pub recipient: ActorAddress,
    /// The message itself; generic, no boxing.
    pub payload: M,
    /// When the envelope was created (RFC 3339 in JSON, integers in
    /// binary formats).
    #[serde(with = "time::wire_timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The request this envelope answers, if it is a reply.
    pub reply_to: Option<MessageId>,
    /// How long the envelope stays deliverable; expired envelopes become
    /// dead letters instead of being handled.
    pub ttl: Option<Duration>,
    /// Priority (taken from the payload at creation).
    pub priority: MessagePriority,
    /// The span the envelope was created in: the receiving actor handles it
    /// in a child of this span, so one request can be followed across
    /// actors. Not serialized.
    #[serde(skip, default = "Span::none")]
    pub span: Span,
    /// When it was created on this process's monotonic clock (the instant
    /// `timestamp` was derived from; a deserialized envelope gets the time
    /// it was read). Broker timeouts count from it.
    #[serde(skip, default = "Instant::now")]
    pub(crate) created: Instant,
}

impl<M: Message> MessageEnvelope<M> {
    /// Wraps `payload` for `recipient`, stamping a fresh id and the current time.
    pub fn new(recipient: ActorAddress, payload: M) -> Self {
        let priority = payload.priority();
        let (created, timestamp) = time::now_with_instant();
        Self {
            id: MessageId::next(),
            sender: None,
            recipient,
            payload,
            timestamp,
            reply_to: None,
            ttl: None,
            priority,
            // Handler spans exist only at DEBUG; without them there is
            // nothing to hang off the sender's span.
            span: if tracing::level_enabled!(tracing::Level::DEBUG) {
                Span::current()
            } else {
                Span::none()
            },
            created,
        }
    }

    /// Sets the sender.
    pub fn with_sender(mut self, sender: ActorId) -> Self {
        self.sender = Some(sender);
        self
    }

    /// Sets the time-to-live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Marks this envelope as the reply to `request`.
    pub fn with_reply_to(mut self, request: MessageId) -> Self {
        self.reply_to = Some(request);
        self
    }

    /// Overrides the priority.
    pub fn with_priority(mut self, priority: MessagePriority) -> Self {
        self.priority = priority;
        self
    }

    /// Whether the TTL has run out (never, without a TTL).
    pub fn is_expired(&self) -> bool {
        self.ttl
            .is_some_and(|ttl| time::is_expired(self.timestamp, ttl, time::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_keeps_every_field() {
        let env = MessageEnvelope::new(ActorAddress::named("svc"), 9u64)
            .with_sender(ActorId::from_raw(3))
            .with_ttl(Duration::from_millis(250))
            .with_reply_to(MessageId::from_raw(11))
            .with_priority(MessagePriority::High);
        let json = serde_json::to_string(&env).unwrap();
        let back: MessageEnvelope<u64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, env.id);
        assert_eq!(back.sender, Some(ActorId::from_raw(3)));
        assert_eq!(back.recipient, ActorAddress::named("svc"));
        assert_eq!(back.payload, 9);
        assert_eq!(back.timestamp, env.timestamp);
        assert_eq!(back.reply_to, Some(MessageId::from_raw(11)));
        assert_eq!(back.ttl, Some(Duration::from_millis(250)));
        assert_eq!(back.priority, MessagePriority::High);
    }

    #[test]
    fn timestamps_are_text_in_json_and_integers_in_binary() {
        let env = MessageEnvelope::new(ActorAddress::named("svc"), 9u64);
        let json = serde_json::to_value(&env).unwrap();
        assert!(json["timestamp"].is_string(), "{json}");
        let bytes = postcard::to_allocvec(&env).unwrap();
        let back: MessageEnvelope<u64> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.timestamp, env.timestamp);
        assert_eq!(back.id, env.id);
        // No RFC 3339 text (about 30 bytes by itself) on the binary wire.
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
    }

    #[test]
    fn expiry_follows_ttl() {
        let mut env = MessageEnvelope::new(ActorAddress::named("svc"), 1u64);
        assert!(!env.is_expired());
        env.ttl = Some(Duration::ZERO);
        assert!(env.is_expired());
    }
}
