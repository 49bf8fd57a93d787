//! What crosses the wire, in postcard (compact, fast, schema-less): the
//! [`PROTOCOL`] byte, a [`Head`] then, for a message, its [`MessageEnvelope`] (the brief's
//! envelope derives `Serialize`); an [`Answer`] then, for a reply, the reply
//! value. The head travels first so a receiver can refuse a type or version
//! it does not know before decoding anything else.

use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::broker::RemoteFailure;
use crate::message::{Message, MessageEnvelope};

/// The wire protocol's version, the first byte of every message: a node
/// refuses another with a clear error (a rolling upgrade that changes the
/// format bumps it).
pub(crate) const PROTOCOL: u8 = 1;

/// What the sender asks of the receiving node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// Deliver; answer [`Answer::Delivered`].
    Tell,
    /// Deliver; answer with the actor's reply.
    Ask,
    /// Answer which node serves the address ([`Answer::Located`]).
    Locate,
    /// A topic message: no answer.
    Publish,
}

/// Read before anything else.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Head<'a> {
    pub(crate) kind: Kind,
    pub(crate) message_type: &'a str,
    pub(crate) version: u32,
    /// The sending node.
    pub(crate) node: &'a str,
    /// The sending node's incarnation (random, new at each start): with
    /// the message id, it names the message uniquely across restarts.
    pub(crate) incarnation: u64,
    /// For [`Kind::Ask`]: how long the sender waits for the reply, in ms.
    pub(crate) timeout_ms: u64,
}

/// Why a node does not take a message its head announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// Another message type.
    Type,
    /// A version outside the accepted range.
    Version,
}

impl Head<'_> {
    /// Whether a node taking `M`, in `accepted` versions, takes this
    /// message.
    pub(crate) fn taken_as<M: Message>(
        &self,
        accepted: &RangeInclusive<u32>,
    ) -> Result<(), Mismatch> {
        if self.message_type != M::MESSAGE_TYPE {
            Err(Mismatch::Type)
        } else if !accepted.contains(&self.version) {
            Err(Mismatch::Version)
        } else {
            Ok(())
        }
    }
}

/// The receiving node's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    /// In the actor's mailbox.
    Delivered,
    /// The actor's reply follows.
    Replied,
    /// The address is served by this node.
    Located(String),
    /// The address resolves to nothing on `node`.
    Unresolved { node: String, reason: String },
    /// The actor stopped before taking it.
    Stopped,
    /// The actor's mailbox is full.
    Full,
    /// `node` serves another message type there.
    WrongType { node: String, serves: String },
    /// That version is not accepted on `node`.
    UnknownVersion { node: String, accepted: String },
    /// It could not be decoded there.
    Malformed(String),
    /// The node does not hold the entity's shard (any more): ask again.
    Moved { kind: String, shard: u32 },
    /// `node` hosts no entities of `kind`.
    UnknownKind { node: String, kind: String },
}

fn malformed(e: postcard::Error) -> RemoteFailure {
    RemoteFailure::Malformed(e.to_string())
}

/// `head` then `body`.
pub(crate) fn encode<T: Serialize>(head: &Head<'_>, body: &T) -> Result<Vec<u8>, RemoteFailure> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(PROTOCOL);
    let bytes = postcard::to_extend(head, bytes).map_err(malformed)?;
    postcard::to_extend(body, bytes).map_err(malformed)
}

/// The head of `bytes` and what follows it.
pub(crate) fn head(bytes: &[u8]) -> Result<(Head<'_>, &[u8]), RemoteFailure> {
    match bytes.split_first() {
        Some((&PROTOCOL, rest)) => postcard::take_from_bytes(rest).map_err(malformed),
        Some((other, _)) => Err(RemoteFailure::Malformed(format!(
            "wire protocol {other}; this node speaks {PROTOCOL} (upgrade the older node)"
        ))),
        None => Err(RemoteFailure::Malformed("an empty message".into())),
    }
}

/// An envelope after its head.
pub(crate) fn envelope<M: Message + DeserializeOwned>(
    rest: &[u8],
) -> Result<MessageEnvelope<M>, RemoteFailure> {
    postcard::from_bytes(rest).map_err(malformed)
}

/// An answer with nothing after it.
pub(crate) fn answer(answer: &Answer) -> Vec<u8> {
    // An `Answer` holds only strings and integers: it always encodes.
    postcard::to_allocvec(answer).unwrap_or_default()
}

/// [`Answer::Replied`] and `reply`.
pub(crate) fn reply<R: Serialize>(reply: &R) -> Result<Vec<u8>, RemoteFailure> {
    let bytes = postcard::to_extend(&Answer::Replied, Vec::with_capacity(64)).map_err(malformed)?;
    postcard::to_extend(reply, bytes).map_err(malformed)
}

/// An answer and what follows it.
pub(crate) fn read_answer(bytes: &[u8]) -> Result<(Answer, &[u8]), RemoteFailure> {
    postcard::take_from_bytes(bytes).map_err(malformed)
}

/// A heartbeat: the node's name and incarnation.
pub(crate) fn heartbeat(node: &str, incarnation: u64) -> Vec<u8> {
    // A string and an integer always encode.
    postcard::to_allocvec(&(PROTOCOL, node, incarnation)).unwrap_or_default()
}

/// The node and incarnation of a heartbeat.
pub(crate) fn read_heartbeat(bytes: &[u8]) -> Result<(String, u64), RemoteFailure> {
    match postcard::from_bytes::<(u8, String, u64)>(bytes).map_err(malformed)? {
        (PROTOCOL, node, incarnation) => Ok((node, incarnation)),
        (other, ..) => Err(RemoteFailure::Malformed(format!(
            "heartbeat of wire protocol {other}"
        ))),
    }
}

/// A value with nothing after it.
pub(crate) fn value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RemoteFailure> {
    postcard::from_bytes(bytes).map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::ActorAddress;

    fn head_of(kind: Kind) -> Head<'static> {
        Head {
            kind,
            message_type: "u64",
            version: 3,
            node: "a",
            incarnation: 77,
            timeout_ms: 250,
        }
    }

    #[test]
    fn a_message_round_trips_head_first() {
        let envelope = MessageEnvelope::new(ActorAddress::named("x"), 42u64);
        let bytes = encode(&head_of(Kind::Ask), &envelope).unwrap();
        assert_eq!(bytes[0], PROTOCOL);
        let (head, rest) = head(&bytes).unwrap();
        assert_eq!(
            (head.kind, head.message_type, head.version),
            (Kind::Ask, "u64", 3)
        );
        assert_eq!((head.node, head.timeout_ms), ("a", 250));
        let back: MessageEnvelope<u64> = super::envelope(rest).unwrap();
        assert_eq!((back.id, back.payload), (envelope.id, 42));
    }

    #[test]
    fn another_protocol_or_nothing_is_refused_clearly() {
        let mut bytes = encode(&head_of(Kind::Tell), &1u64).unwrap();
        bytes[0] = PROTOCOL + 1;
        let refused = head(&bytes).unwrap_err().to_string();
        assert!(
            refused.contains("wire protocol 2; this node speaks 1"),
            "{refused}"
        );
        assert!(head(&[]).unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn a_reply_follows_its_answer() {
        let bytes = reply(&"done".to_owned()).unwrap();
        let (answer, rest) = read_answer(&bytes).unwrap();
        assert!(matches!(answer, Answer::Replied));
        assert_eq!(value::<String>(rest).unwrap(), "done");
    }
}
