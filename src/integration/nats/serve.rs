//! The serving side of the NATS broker: messages from other nodes to the
//! names, services and pools this node exported, handed to local actors,
//! and the answers sent back (a delivery confirmation, a refusal, or later
//! the actor's reply).

use std::sync::Weak;
use std::time::Duration;

use async_nats::{Client, Subscriber};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::broker::{Inner, RemoteRequest, WireMessage, WireReply};
use super::wire::{self, Answer, Kind, Mismatch};
use crate::address::ActorAddress;
use crate::broker::{BrokerError, DeliveryFailure, MessageBroker};
use crate::message::Message;
use crate::util::MessageId;

/// The answer to send back for a local delivery that failed.
fn refusal<M: Message>(error: &BrokerError<M>, node: &str) -> Answer {
    match error {
        BrokerError::Undelivered { cause, .. } => match cause {
            DeliveryFailure::ActorStopped => Answer::Stopped,
            DeliveryFailure::MailboxFull => Answer::Full,
            other => Answer::Unresolved {
                node: node.to_owned(),
                reason: other.to_string(),
            },
        },
        BrokerError::Timeout { .. } => Answer::Unresolved {
            node: node.to_owned(),
            reason: error.to_string(),
        },
    }
}

impl<M: WireMessage, R: WireReply> Inner<M, R> {
    /// Handles a message from another node; answers it unless the answer
    /// is the actor's reply, which comes later.
    pub(super) async fn incoming(&self, message: async_nats::Message) {
        let answer_to = message.reply.clone();
        let answer = self.accept(&message.payload, answer_to.as_ref()).await;
        if let (Some(to), Some(answer)) = (answer_to, answer) {
            self.answer(to, wire::answer(&answer).into());
        }
    }

    async fn accept(
        &self,
        bytes: &[u8],
        answer_to: Option<&async_nats::Subject>,
    ) -> Option<Answer> {
        let node = &self.config.node;
        let (head, rest) = match wire::head(bytes) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "refused bytes that are no message");
                return Some(Answer::Malformed(format!("could not decode the head: {e}")));
            }
        };
        let accepted = &self.config.accepted_versions;
        match (head.taken_as::<M>(accepted), head.kind) {
            (Err(Mismatch::Type), _) => {
                return Some(Answer::WrongType {
                    node: node.clone(),
                    serves: M::MESSAGE_TYPE.to_owned(),
                });
            }
            // A locate carries an address, not a message: no version.
            (_, Kind::Locate) => {
                let address: ActorAddress = match wire::value(rest) {
                    Ok(address) => address,
                    Err(e) => return Some(Answer::Malformed(e.to_string())),
                };
                return Some(match self.system.registry().resolve::<M>(&address) {
                    Ok(_) => Answer::Located(node.clone()),
                    Err(e) => Answer::Unresolved {
                        node: node.clone(),
                        reason: e.to_string(),
                    },
                });
            }
            (Err(Mismatch::Version), _) => {
                tracing::warn!(
                    from = head.node,
                    message_type = head.message_type,
                    version = head.version,
                    "refused a message version this node does not accept"
                );
                return Some(Answer::UnknownVersion {
                    node: node.clone(),
                    accepted: format!("{}..={}", accepted.start(), accepted.end()),
                });
            }
            (Ok(()), _) => {}
        }
        let mut envelope = match wire::envelope::<M>(rest) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(from = head.node, error = %e, "refused a malformed message");
                return Some(Answer::Malformed(format!(
                    "could not decode the envelope: {e}"
                )));
            }
        };
        if let ActorAddress::Entity { kind, key } = &envelope.recipient {
            // The instance runs before the registry is asked for it.
            let Some(host) = self.sharding.get() else {
                return Some(Answer::UnknownKind {
                    node: node.clone(),
                    kind: kind.clone(),
                });
            };
            if let Err(refusal) = host.activate(kind, key) {
                return Some(refusal.into_answer(kind, node));
            }
        }
        match (head.kind, answer_to) {
            (Kind::Tell, _) => Some(match self.local.send(envelope).await {
                Ok(()) => Answer::Delivered,
                Err(e) => refusal(&e, node),
            }),
            (Kind::Ask, Some(answer_to)) => {
                // A fresh id on this node: ids of different nodes may clash.
                let id = MessageId::next();
                envelope.id = id;
                let expires = Instant::now() + Duration::from_millis(head.timeout_ms);
                let waiting = RemoteRequest {
                    answer_to: answer_to.clone(),
                    expires,
                };
                self.remote.lock().insert(id, waiting);
                match self.local.send(envelope).await {
                    Ok(()) => None,
                    Err(e) => {
                        self.remote.lock().remove(&id);
                        Some(refusal(&e, node))
                    }
                }
            }
            (kind, _) => Some(Answer::Malformed(format!(
                "a {kind:?} cannot be served here"
            ))),
        }
    }

    /// Sends an answer from synchronous code: straight into the client's
    /// queue when it has room (the common case, no task hop), else through
    /// the answering task.
    pub(super) fn answer(&self, to: async_nats::Subject, body: Bytes) {
        // A bounded channel send that is not ready is dropped unsent, so
        // the answer is never sent twice. Subjects and bytes clone cheaply.
        match self.client.publish(to.clone(), body.clone()).now_or_never() {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "could not answer another node"),
            // The answering task lives as long as `self`.
            None => {
                let _ = self.outbound.send((to, body));
            }
        }
    }

    /// Forgets requests from other nodes whose senders stopped waiting.
    pub(super) fn expire_remote(&self) {
        let now = Instant::now();
        self.remote
            .lock()
            .retain(|_, waiting| waiting.expires > now);
    }
}

/// Publishes answers to other nodes, in order.
pub(super) async fn answer_loop(
    client: Client,
    mut answers: mpsc::UnboundedReceiver<(async_nats::Subject, Bytes)>,
) {
    while let Some((to, body)) = answers.recv().await {
        if let Err(e) = client.publish(to, body).await {
            tracing::warn!(error = %e, "could not answer another node");
        }
    }
}

/// Stops an export's loop; with a sender, the loop says when the server
/// has been told to unsubscribe.
pub(super) type StopServing = oneshot::Sender<Option<oneshot::Sender<()>>>;

/// Handles messages to one exported subject, one at a time (a `Block`
/// mailbox that is full holds the export up: backpressure to NATS).
pub(super) async fn serve_loop<M: WireMessage, R: WireReply>(
    inner: Weak<Inner<M, R>>,
    mut subscriber: Subscriber,
    mut stop: oneshot::Receiver<Option<oneshot::Sender<()>>>,
) {
    loop {
        tokio::select! {
            biased;
            stopping = &mut stop => {
                if let Err(e) = subscriber.unsubscribe().await {
                    tracing::debug!(error = %e, "unsubscribe failed; the subscription ends with the connection");
                }
                if let Ok(Some(done)) = stopping {
                    let _ = done.send(());
                }
                return;
            }
            next = subscriber.next() => {
                let Some(message) = next else { return };
                let Some(inner) = inner.upgrade() else { return };
                inner.incoming(message).await;
            }
        }
    }
}
