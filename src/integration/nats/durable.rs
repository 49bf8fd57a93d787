//! At-least-once delivery on JetStream: a durable send is stored by the
//! server before it is confirmed, and handed to the actor until the
//! receiving node acknowledges it; the receiving node drops repeats by the
//! sender's [`MessageId`](crate::util::MessageId).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::connection::State;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::NatsError;
use super::broker::{Inner, NatsMessageBroker, WireMessage, WireReply};
use super::wire::{self, Head, Kind};
use crate::address::ActorAddress;
use crate::broker::metrics;
use crate::broker::{BrokerError, DeliveryFailure, MessageBroker, RemoteFailure};
use crate::message::MessageEnvelope;

/// How many delivered message ids a node remembers to drop repeats.
const REMEMBERED: usize = 65_536;
/// How long the server drops a repeated publish of the same id.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long a taken message may go unacknowledged before redelivery.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Wait before taking again a message the actor could not take.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// The JetStream side of a broker.
#[derive(Default)]
pub(super) struct Durable {
    context: OnceCell<jetstream::Context>,
    seen: Mutex<Seen>,
}

/// Recently delivered (node, id) pairs, oldest first out.
#[derive(Default)]
struct Seen {
    ids: HashSet<(String, u64)>,
    order: VecDeque<(String, u64)>,
}

impl Seen {
    fn contains(&self, key: &(String, u64)) -> bool {
        self.ids.contains(key)
    }

    fn insert(&mut self, key: (String, u64)) {
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
    async fn jetstream(&self) -> Result<&jetstream::Context, NatsError> {
        let inner = &self.inner;
        inner
            .durable
            .context
            .get_or_try_init(|| async {
                let context = jetstream::new(inner.client.clone());
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

    /// Sends `envelope` to the actor named by its (named) address, at least
    /// once: `Ok` means the server stored it, and it reaches the actor even
    /// if the receiving node or the server restarts in between. Sending the
    /// same envelope again (after an error) does not deliver it twice. The
    /// receiving node must [`export_durable`](Self::export_durable) the
    /// name; the server must run JetStream.
    pub async fn send_durable(&self, envelope: MessageEnvelope<M>) -> Result<(), BrokerError<M>> {
        let envelope = Box::new(envelope);
        let refused = |envelope: Box<MessageEnvelope<M>>, failure: RemoteFailure| {
            let cause = DeliveryFailure::Remote(failure);
            metrics::undelivered(&cause);
            BrokerError::Undelivered {
                address: envelope.recipient.clone(),
                cause,
                envelope,
            }
        };
        let ActorAddress::Named(name) = &envelope.recipient else {
            let reason = "durable sends go to named actors".to_owned();
            return Err(refused(envelope, RemoteFailure::Transport(reason)));
        };
        let subject = self.inner.subjects.durable(name);
        if self.inner.client.connection_state() != State::Connected {
            return Err(refused(envelope, RemoteFailure::Disconnected));
        }
        let context = match self.jetstream().await {
            Ok(context) => context,
            Err(e) => return Err(refused(envelope, RemoteFailure::Transport(e.to_string()))),
        };
        let head = Head {
            kind: Kind::Tell,
            message_type: M::MESSAGE_TYPE,
            version: envelope.payload.version(),
            node: &self.inner.config.node,
            timeout_ms: 0,
        };
        let body = match wire::encode(&head, &*envelope) {
            Ok(body) => body,
            Err(e) => return Err(refused(envelope, e)),
        };
        let mut headers = HeaderMap::new();
        let id = format!("{}.{}", self.inner.config.node, envelope.id.as_u64());
        headers.insert("Nats-Msg-Id", id.as_str());
        let stored = match context
            .publish_with_headers(subject, headers, body.into())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                metrics::delivered();
                Ok(())
            }
            Err(_) if self.inner.client.connection_state() != State::Connected => {
                Err(refused(envelope, RemoteFailure::Disconnected))
            }
            Err(reason) => Err(refused(envelope, RemoteFailure::Transport(reason))),
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
        let inner = Arc::downgrade(&self.inner);
        let task = tokio::spawn(take_loop(inner, consumer)).abort_handle();
        self.inner.tasks.lock().push(task);
        Ok(())
    }
}

/// Takes durable messages and hands them to local actors, resuming after
/// the server goes away and comes back.
async fn take_loop<M: WireMessage, R: WireReply>(
    inner: Weak<Inner<M, R>>,
    consumer: consumer::PullConsumer,
) {
    loop {
        match consumer.messages().await {
            Ok(mut messages) => {
                while let Some(next) = messages.next().await {
                    let Some(inner) = inner.upgrade() else { return };
                    match next {
                        Ok(message) => inner.take(message).await,
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
        let decoded = wire::head(&message.payload).and_then(|(head, rest)| {
            if head.message_type != M::MESSAGE_TYPE
                || !self.config.accepted_versions.contains(&head.version)
            {
                return Err(RemoteFailure::Malformed(format!(
                    "version {} of {} is not taken here",
                    head.version, head.message_type
                )));
            }
            Ok((head.node.to_owned(), wire::envelope::<M>(rest)?))
        });
        let (node, envelope) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(error = %e, "durable message refused for good");
                return settle(AckKind::Term).await;
            }
        };
        let key = (node, envelope.id.as_u64());
        if self.durable.seen.lock().contains(&key) {
            return settle(AckKind::Ack).await;
        }
        match self.local.send(envelope).await {
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
