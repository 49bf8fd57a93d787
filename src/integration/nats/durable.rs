//! At-least-once delivery on JetStream: a durable send is stored by the
//! server before it is confirmed, and handed to the actor until the
//! receiving node acknowledges it; the receiving node drops repeats by the
//! sender's [`MessageId`](crate::util::MessageId).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::NatsError;
use super::broker::{Inner, NatsMessageBroker, WireMessage, WireReply};
use super::link::LinkState;
use super::wire::{self, Head, Kind, Mismatch};
use crate::address::ActorAddress;
use crate::broker::metrics;
use crate::broker::{BrokerError, MessageBroker, RemoteFailure, undelivered};
use crate::message::MessageEnvelope;

/// How many delivered message ids a node remembers to drop repeats.
const REMEMBERED: usize = 65_536;
/// How long the server drops a repeated publish of the same id.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a taken message may go unacknowledged before redelivery.
pub(super) const ACK_WAIT: Duration = Duration::from_secs(10);
/// Wait before taking again a message the actor could not take.
pub(super) const RETRY_DELAY: Duration = Duration::from_millis(100);
/// Wait before offering again a message of a version not taken here.
const LATER: Duration = Duration::from_secs(5);

/// The JetStream side of a broker.
#[derive(Default)]
pub(super) struct Durable {
    context: OnceCell<jetstream::Context>,
    seen: Mutex<Seen>,
}

/// Recently delivered messages by [`message_key`], oldest first out.
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

/// What names a message across nodes and restarts.
fn message_key(node: &str, incarnation: u64, id: u64) -> String {
    format!("{node}.{incarnation:x}.{id}")
}

impl Seen {
    fn contains(&self, key: &str) -> bool {
        self.ids.contains(key)
    }

    fn insert(&mut self, key: String) {
        if self.ids.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > REMEMBERED
                && let Some(oldest) = self.order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }
}

fn jetstream_error(e: impl std::fmt::Display) -> NatsError {
    NatsError::JetStream(format!(
        "{e} (is JetStream enabled on the server? `nats-server -js`)"
    ))
}

impl<M: WireMessage, R: WireReply> NatsMessageBroker<M, R> {
    /// The JetStream context, with the system's stream made on first use.
    pub(super) async fn jetstream(&self) -> Result<&jetstream::Context, NatsError> {
        let inner = &self.inner;
        inner
            .durable
            .context
            .get_or_try_init(|| async {
                let mut context = jetstream::new(inner.client.clone());
                // A stored message is confirmed within the send timeout.
                context.set_timeout(inner.config.ack_timeout);
                context
                    .get_or_create_stream(stream::Config {
                        name: inner.subjects.stream(),
                        subjects: vec![inner.subjects.durables()],
                        retention: stream::RetentionPolicy::WorkQueue,
                        storage: stream::StorageType::File,
                        duplicate_window: DUPLICATE_WINDOW,
                        ..Default::default()
                    })
                    .await
                    .map_err(jetstream_error)?;
                Ok(context)
            })
            .await
    }

    /// Sends `envelope` to the actor named by its address (a name, or a
    /// sharded entity), at least once: `Ok` means the server stored it, and it reaches the actor even
    /// if the receiving node or the server restarts in between. Sending the
    /// same envelope again (after an error) does not deliver it twice. The
    /// receiving node must [`export_durable`](Self::export_durable) the
    /// name; the server must run JetStream.
    pub async fn send_durable(&self, envelope: MessageEnvelope<M>) -> Result<(), BrokerError<M>> {
        let envelope = Box::new(envelope);
        let refused = |envelope, failure: RemoteFailure| undelivered(envelope, failure.into());
        let subject = match &envelope.recipient {
            ActorAddress::Named(name) => self.inner.subjects.durable(name),
            ActorAddress::Entity { kind, key } => match self.entity_durable_subject(kind, key) {
                Ok(subject) => subject,
                Err(failure) => return Err(refused(envelope, failure)),
            },
            _ => {
                let reason = "durable sends go to named actors and entities".to_owned();
                return Err(refused(envelope, RemoteFailure::Transport(reason)));
            }
        };
        let head = Head {
            kind: Kind::Tell,
            message_type: M::MESSAGE_TYPE,
            version: envelope.payload.version(),
            node: &self.inner.config.node,
            incarnation: self.inner.incarnation,
            timeout_ms: 0,
        };
        let body = match wire::encode(&head, &*envelope) {
            Ok(body) => body,
            Err(e) => return Err(refused(envelope, e)),
        };
        if let Some(failure) = self.cannot_send(&body) {
            return Err(refused(envelope, failure));
        }
        let context = match self.jetstream().await {
            Ok(context) => context,
            Err(e) => return Err(refused(envelope, RemoteFailure::Transport(e.to_string()))),
        };
        // The server drops a repeat of this id (a resend after an error)
        // within its duplicate window; node and incarnation keep ids of
        // other nodes and earlier runs apart.
        let mut headers = HeaderMap::new();
        let id = message_key(
            &self.inner.config.node,
            self.inner.incarnation,
            envelope.id.as_u64(),
        );
        headers.insert("Nats-Msg-Id", id.as_str());
        let stored = match context
            .publish_with_headers(subject, headers, body.into())
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(_) => {
                metrics::delivered();
                Ok(())
            }
            // Sent, perhaps stored: resending is safe (the id dedups).
            Err(e) if e.kind() == PublishErrorKind::TimedOut => Err(refused(
                envelope,
                RemoteFailure::Unconfirmed(self.inner.config.ack_timeout),
            )),
            Err(_) if self.inner.link.state() == LinkState::Reconnecting => {
                Err(refused(envelope, RemoteFailure::Disconnected))
            }
            Err(_) if self.inner.link.state() == LinkState::Closed => {
                Err(refused(envelope, RemoteFailure::Closed))
            }
            Err(e) => Err(refused(envelope, RemoteFailure::Transport(e.to_string()))),
        }
    }

    /// Takes this node's share of the durable messages to `name` (nodes
    /// exporting the same name share one durable consumer).
    pub async fn export_durable(&self, name: &str) -> Result<(), NatsError> {
        let context = self.jetstream().await?;
        let stream = context
            .get_stream(self.inner.subjects.stream())
            .await
            .map_err(jetstream_error)?;
        let durable = super::subject::token(name);
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    filter_subject: self.inner.subjects.durable(name),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(jetstream_error)?;
        self.start(consume(
            Arc::downgrade(&self.inner),
            consumer,
            |inner, message| async move { inner.take(message).await },
        ));
        Ok(())
    }
}

/// Takes `consumer`'s messages one at a time with `take`, resuming after
/// the server goes away and comes back, until the broker is gone.
pub(super) async fn consume<M, R, Take, Taking>(
    inner: Weak<Inner<M, R>>,
    consumer: consumer::PullConsumer,
    mut take: Take,
) where
    M: WireMessage,
    R: WireReply,
    Take: FnMut(Arc<Inner<M, R>>, jetstream::Message) -> Taking,
    Taking: Future<Output = ()>,
{
    loop {
        match consumer.messages().await {
            Ok(mut messages) => {
                while let Some(next) = messages.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    match next {
                        Ok(message) => take(inner, message).await,
                        Err(e) => {
                            tracing::debug!(error = %e, "durable consumer interrupted");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "durable consumer unavailable"),
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

/// A durable message's envelope and the key that names it across nodes
/// and restarts; or how to settle a message that is not for this node.
pub(super) fn open<M: WireMessage>(
    payload: &[u8],
    accepted: &std::ops::RangeInclusive<u32>,
) -> Result<(String, Box<MessageEnvelope<M>>), AckKind> {
    let (head, rest) = match wire::head(payload) {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "durable message undecodable: dropped for good");
            return Err(AckKind::Term);
        }
    };
    match head.taken_as::<M>(accepted) {
        Ok(()) => {}
        Err(Mismatch::Type) => {
            tracing::warn!(
                message_type = head.message_type,
                "durable message of another type: dropped for good"
            );
            return Err(AckKind::Term);
        }
        Err(Mismatch::Version) => {
            // Kept for a node that takes this version (an upgrade in
            // progress): offered again later, never dropped.
            tracing::warn!(
                version = head.version,
                "durable message of a version not taken here: left for later"
            );
            return Err(AckKind::Nak(Some(LATER)));
        }
    }
    match wire::envelope::<M>(rest) {
        Ok(envelope) => Ok((
            message_key(head.node, head.incarnation, envelope.id.as_u64()),
            Box::new(envelope),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "durable message undecodable: dropped for good");
            Err(AckKind::Term)
        }
    }
}

impl<M: WireMessage, R: WireReply> Inner<M, R> {
    /// Hands one durable message to its actor; acknowledges it once the
    /// actor's mailbox has it (or it was delivered before).
    async fn take(&self, message: jetstream::Message) {
        let message = &message;
        let settle = |kind: AckKind| async move {
            if let Err(e) = message.ack_with(kind).await {
                // Unacknowledged, it comes again; the seen set drops it.
                tracing::debug!(error = %e, "durable acknowledgement lost");
            }
        };
        let (key, envelope) = match open::<M>(&message.payload, &self.config.accepted_versions) {
            Ok(opened) => opened,
            Err(settled) => return settle(settled).await,
        };
        if self.durable.seen.lock().contains(&key) {
            return settle(AckKind::Ack).await;
        }
        match self.local.send(*envelope).await {
            Ok(()) => {
                self.durable.seen.lock().insert(key);
                settle(AckKind::Ack).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "durable message not taken yet");
                settle(AckKind::Nak(Some(RETRY_DELAY))).await;
            }
        }
    }
}
