//! What crosses the wire, in postcard (compact, fast, schema-less): a
//! [`Head`] then, for a message, its [`MessageEnvelope`] (the brief's
//! envelope derives `Serialize`); an [`Answer`] then, for a reply, the reply
//! value. The head travels first so a receiver can refuse a type or version
//! it does not know before decoding anything else.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::broker::RemoteFailure;
use crate::message::{Message, MessageEnvelope};

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
    /// For [`Kind::Ask`]: how long the sender waits for the reply, in ms.
    pub(crate) timeout_ms: u64,
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
}

fn malformed(e: postcard::Error) -> RemoteFailure {
    RemoteFailure::Malformed(e.to_string())
}

/// `head` then `body`.
pub(crate) fn encode<T: Serialize>(head: &Head<'_>, body: &T) -> Result<Vec<u8>, RemoteFailure> {
    let bytes = postcard::to_extend(head, Vec::with_capacity(128)).map_err(malformed)?;
    postcard::to_extend(body, bytes).map_err(malformed)
}

/// The head of `bytes` and what follows it.
pub(crate) fn head(bytes: &[u8]) -> Result<(Head<'_>, &[u8]), RemoteFailure> {
    postcard::take_from_bytes(bytes).map_err(malformed)
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

/// A value with nothing after it.
pub(crate) fn value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RemoteFailure> {
    postcard::from_bytes(bytes).map_err(malformed)
}
