//! [`NatsMessageBroker`]: the [`MessageBroker`] whose addresses reach the
//! actors of every node of a system, through NATS.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Request, RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::config::NatsConfig;
use super::liveness::{Liveness, NodeMonitor};
use super::subject::Subjects;
use super::wire::{self, Answer, Head, Kind};
use super::{NatsError, RemotePublishError};
use crate::address::ActorAddress;
use crate::broker::metrics;
use crate::broker::{
    BrokerError, DeliveryFailure, InMemoryMessageBroker, MessageBroker, RemoteFailure, Topic,
    UnknownRequest,
};
use crate::message::{Message, MessageEnvelope};
use crate::system::ActorSystem;
use crate::util::MessageId;

/// A message type that can cross nodes.
pub trait WireMessage: Message + Serialize + DeserializeOwned {}
impl<M: Message + Serialize + DeserializeOwned> WireMessage for M {}

/// A reply type that can cross nodes.
pub trait WireReply: Serialize + DeserializeOwned + Send + 'static {}
impl<R: Serialize + DeserializeOwned + Send + 'static> WireReply for R {}

/// A request from another node, waiting for a local actor's reply.
struct RemoteRequest {
    answer_to: async_nats::Subject,
    expires: Instant,
}

/// Why a call to another node did not come back with an answer.
enum Failure {
    Refused(DeliveryFailure),
    TimedOut,
}

impl From<RemoteFailure> for Failure {
    fn from(failure: RemoteFailure) -> Self {
        Failure::Refused(DeliveryFailure::Remote(failure))
    }
}

type Envelope<M> = Box<MessageEnvelope<M>>;

pub(super) struct Inner<M: Message, R> {
    pub(super) client: Client,
    pub(super) system: ActorSystem,
    pub(super) config: NatsConfig,
    pub(super) subjects: Subjects,
    pub(super) local: InMemoryMessageBroker<M, R>,
    remote: Mutex<HashMap<MessageId, RemoteRequest>>,
    /// Answers to other nodes, published in order by one task (a reply is
    /// given from synchronous code).
    outbound: mpsc::UnboundedSender<(async_nats::Subject, Bytes)>,
    liveness: Liveness,
    /// Whether the connection is up, as the client's events say.
    connection: watch::Sender<bool>,
    pub(super) tasks: Mutex<Vec<AbortHandle>>,
    pub(super) durable: super::durable::Durable,
}

impl<M: Message, R> Drop for Inner<M, R> {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}

/// A broker for requests `M` and replies `R` among the actors of every
/// node of a system, over NATS. Cheap to clone.
///
/// Addresses resolve as they do locally, across nodes: a name this node
/// holds is delivered here without touching NATS; other names, services
/// and pools go to the node that [exported](NatsMessageBroker::export_name)
/// them (a pool or service exported on several nodes is spread over them by
/// NATS queue groups). An [`ActorAddress::Id`] names an actor of this node
/// only. `send` waits for the receiving node to confirm the message is in
/// the actor's mailbox; `request` waits for the actor's reply. Delivery is
/// at most once; see [`send_durable`](NatsMessageBroker::send_durable) for
/// at least once.
///
/// ```no_run
/// # use std::time::Duration;
/// use airssys_rt::address::ActorAddress;
/// use airssys_rt::broker::MessageBroker;
/// use airssys_rt::integration::nats::{NatsConfig, NatsMessageBroker};
/// use airssys_rt::prelude::*;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let config = NatsConfig::new(["nats://127.0.0.1:4222"], "shop", "node-b");
/// let broker: NatsMessageBroker<u64, u64> = NatsMessageBroker::connect(&system, config).await?;
/// // "doubler" lives on another node, which exported it.
/// let request = MessageEnvelope::new(ActorAddress::named("doubler"), 21u64);
/// assert_eq!(broker.request(request, Duration::from_secs(1)).await?, 42);
/// # Ok(()) }
/// ```
pub struct NatsMessageBroker<M: Message, R> {
    pub(super) inner: Arc<Inner<M, R>>,
}

impl<M: Message, R> Clone for NatsMessageBroker<M, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Message, R> fmt::Debug for NatsMessageBroker<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsMessageBroker")
            .field("message_type", &M::MESSAGE_TYPE)
            .field("namespace", &self.inner.config.namespace())
            .field("node", &self.inner.config.node)
            .field("connection", &self.inner.client.connection_state())
            .finish()
    }
}

/// Where an address is delivered.
enum Route {
    Here,
    /// Over NATS; `fallback` when no node serves it but this one may.
    There {
        subject: String,
        fallback: bool,
    },
}

fn undelivered<M: Message>(envelope: Envelope<M>, cause: DeliveryFailure) -> BrokerError<M> {
    metrics::undelivered(&cause);
    BrokerError::Undelivered {
        address: envelope.recipient.clone(),
        cause,
        envelope,
    }
}

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

/// What a refusing answer to a message of `version` means to the sender.
fn failure_of<M: Message>(answer: Answer, version: u32) -> DeliveryFailure {
    match answer {
        Answer::Stopped => DeliveryFailure::ActorStopped,
        Answer::Full => DeliveryFailure::MailboxFull,
        Answer::Unresolved { node, reason } => RemoteFailure::Unresolved { node, reason }.into(),
        Answer::WrongType { node, serves } => RemoteFailure::Unresolved {
            node,
            reason: format!(
                "the address takes {serves} messages, not {}",
                M::MESSAGE_TYPE
            ),
        }
        .into(),
        Answer::UnknownVersion { node, accepted } => RemoteFailure::UnknownVersion {
            node,
            message_type: M::MESSAGE_TYPE.to_owned(),
            version,
            accepted,
        }
        .into(),
        Answer::Malformed(reason) => RemoteFailure::Malformed(reason).into(),
        Answer::Delivered | Answer::Replied | Answer::Located(_) => {
            RemoteFailure::Malformed(format!("unexpected answer {answer:?}")).into()
        }
    }
}

impl<M: WireMessage, R: WireReply> NatsMessageBroker<M, R> {
    /// Connects to NATS as `config`'s node of `system`, and starts sending
    /// heartbeats and listening for the other nodes'.
    pub async fn connect(system: &ActorSystem, config: NatsConfig) -> Result<Self, NatsError> {
        config.validate()?;
        let (connection, _) = watch::channel(false);
        let events = connection.clone();
        let client = config
            .options()
            .await?
            .event_callback(move |event| {
                let events = events.clone();
                async move { on_event(&events, event) }
            })
            .connect(config.servers.clone())
            .await
            .map_err(|e| NatsError::Connect {
                servers: config.servers.join(", "),
                reason: e.to_string(),
            })?;
        let (outbound, answers) = mpsc::unbounded_channel();
        let subjects = Subjects::new(config.namespace());
        let inner = Arc::new(Inner {
            local: InMemoryMessageBroker::new(system),
            system: system.clone(),
            liveness: Liveness::new(config.heartbeat_window()),
            durable: super::durable::Durable::default(),
            client,
            config,
            subjects,
            remote: Mutex::default(),
            outbound,
            connection,
            tasks: Mutex::default(),
        });
        let broker = Self { inner };
        // Connected before any event could say so.
        broker.inner.connection.send_replace(broker.is_connected());
        broker.start(answer_loop(broker.inner.client.clone(), answers));
        broker.start(heartbeat_loop(Arc::downgrade(&broker.inner)));
        let heartbeats = broker
            .subscribe(broker.inner.subjects.heartbeats(), None)
            .await?;
        broker.start(hear_loop(Arc::downgrade(&broker.inner), heartbeats));
        Ok(broker)
    }

    fn start(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        self.inner.tasks.lock().push(handle);
    }

    /// Subscribes (in `queue` if given) and waits until the server has the
    /// subscription, so a message sent next reaches it.
    async fn subscribe(
        &self,
        subject: String,
        queue: Option<String>,
    ) -> Result<Subscriber, NatsError> {
        let client = &self.inner.client;
        let failed = |e: &dyn fmt::Display| NatsError::Subscribe {
            subject: subject.clone(),
            reason: e.to_string(),
        };
        let subscriber = match queue {
            Some(queue) => client.queue_subscribe(subject.clone(), queue).await,
            None => client.subscribe(subject.clone()).await,
        }
        .map_err(|e| failed(&e))?;
        self.round_trip().await.map_err(|e| failed(&e))?;
        Ok(subscriber)
    }

    /// Returns once the server has processed everything this client sent
    /// before: a message to a fresh inbox of ours comes back only after it.
    /// (The client's `flush` only empties the socket.)
    async fn round_trip(&self) -> Result<(), String> {
        let client = &self.inner.client;
        let inbox = client.new_inbox();
        let mut echo = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| e.to_string())?;
        client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.inner.config.ack_timeout, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("the connection closed".into()),
            Err(_) => Err(format!(
                "the server did not answer within {:?}",
                self.inner.config.ack_timeout
            )),
        }
    }

    /// Serves the actor this node registered as `name` to the other nodes.
    pub async fn export_name(&self, name: &str) -> Result<(), NatsError> {
        self.export(self.inner.subjects.name(name)).await
    }

    /// Serves this node's members of `service` to the other nodes.
    pub async fn export_service(&self, service: &str) -> Result<(), NatsError> {
        self.export(self.inner.subjects.service(service)).await
    }

    /// Serves this node's part of the pool `pool`: messages to the pool are
    /// spread over the nodes that export it, then over local members by the
    /// pool's strategy.
    pub async fn export_pool(&self, pool: &str) -> Result<(), NatsError> {
        self.export(self.inner.subjects.pool(pool)).await
    }

    async fn export(&self, subject: String) -> Result<(), NatsError> {
        // The subject is the queue group: one node takes each message.
        let subscriber = self.subscribe(subject.clone(), Some(subject)).await?;
        self.start(serve_loop(Arc::downgrade(&self.inner), subscriber));
        Ok(())
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.config.node
    }

    /// Whether the connection to NATS is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.client.connection_state() == State::Connected
    }

    /// Follows the connection: `true` while it is up. Await a change
    /// (`changed()`, `wait_for(|up| *up)`) to learn of a loss or a reconnect.
    pub fn connection(&self) -> watch::Receiver<bool> {
        self.inner.connection.subscribe()
    }

    /// Waits until the connection is up and the server has every
    /// subscription of this broker (after a reconnect too): what is sent
    /// to this node from then on reaches its exports.
    pub async fn until_connected(&self) {
        let mut connection = self.connection();
        // The sender lives as long as the broker.
        let _ = connection.wait_for(|up| *up).await;
        // The client resubscribes first thing after reconnecting: once the
        // server answers a round trip, it has the subscriptions.
        if let Err(e) = self.round_trip().await {
            tracing::debug!(error = %e, "round trip after connecting failed");
        }
    }

    /// The nodes of the system heard from within the heartbeat window
    /// (this one included), sorted.
    pub fn live_nodes(&self) -> Vec<String> {
        self.inner.liveness.live_nodes()
    }

    /// Watches `node`: its monitor's `down()` resolves once the node misses
    /// its heartbeats for the configured window.
    pub fn monitor_node(&self, node: &str) -> NodeMonitor {
        self.inner.liveness.monitor(node)
    }

    /// Which node serves `address` now (this one, for an address it holds).
    pub async fn locate(&self, address: &ActorAddress) -> Result<String, RemoteFailure> {
        let subject = match self.route(address) {
            Route::Here => return Ok(self.inner.config.node.clone()),
            Route::There { subject, .. } => subject,
        };
        let head = Head {
            kind: Kind::Locate,
            message_type: M::MESSAGE_TYPE,
            version: 0,
            node: &self.inner.config.node,
            timeout_ms: 0,
        };
        let body = wire::encode(&head, address)?;
        let answer = self
            .exchange(subject, body, self.inner.config.ack_timeout)
            .await
            .map_err(|failure| match failure {
                Failure::Refused(DeliveryFailure::Remote(remote)) => remote,
                Failure::Refused(other) => RemoteFailure::Transport(other.to_string()),
                Failure::TimedOut => RemoteFailure::Unconfirmed(self.inner.config.ack_timeout),
            })?;
        match wire::read_answer(&answer)? {
            (Answer::Located(node), _) => Ok(node),
            (other, _) => match failure_of::<M>(other, 0) {
                DeliveryFailure::Remote(remote) => Err(remote),
                local => Err(RemoteFailure::Transport(local.to_string())),
            },
        }
    }

    /// Watches the node that serves `address` ([`locate`](Self::locate),
    /// then [`monitor_node`](Self::monitor_node)).
    pub async fn monitor(&self, address: &ActorAddress) -> Result<NodeMonitor, RemoteFailure> {
        let node = self.locate(address).await?;
        Ok(self.monitor_node(&node))
    }

    fn route(&self, address: &ActorAddress) -> Route {
        if let ActorAddress::Named(name) = address
            && self.inner.system.registry().lookup::<M>(name).is_ok()
        {
            return Route::Here;
        }
        match self.inner.subjects.of(address) {
            None => Route::Here,
            Some(subject) => Route::There {
                subject,
                fallback: matches!(
                    address,
                    ActorAddress::Service { .. } | ActorAddress::Pool { .. }
                ),
            },
        }
    }

    /// Sends `body` to `subject` and waits up to `timeout` for the answer.
    async fn exchange(
        &self,
        subject: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, Failure> {
        let client = &self.inner.client;
        if client.connection_state() != State::Connected {
            return Err(RemoteFailure::Disconnected.into());
        }
        let request = Request::new().payload(body.into()).timeout(Some(timeout));
        match client.send_request(subject, request).await {
            Ok(message) => Ok(message.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => RemoteFailure::NoResponders.into(),
                RequestErrorKind::TimedOut if client.connection_state() == State::Connected => {
                    Failure::TimedOut
                }
                RequestErrorKind::TimedOut => RemoteFailure::Disconnected.into(),
                RequestErrorKind::Other => RemoteFailure::Transport(e.to_string()).into(),
            }),
        }
    }

    /// Hands `envelope` to the node serving `subject`: its answer's
    /// payload (after the answer), or the envelope back with the failure.
    async fn call(
        &self,
        subject: String,
        kind: Kind,
        envelope: Envelope<M>,
        timeout: Duration,
    ) -> Result<(Envelope<M>, Bytes), (Envelope<M>, Failure)> {
        let head = Head {
            kind,
            message_type: M::MESSAGE_TYPE,
            version: envelope.payload.version(),
            node: &self.inner.config.node,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let body = match wire::encode(&head, &*envelope) {
            Ok(body) => body,
            Err(e) => return Err((envelope, e.into())),
        };
        let answer = match self.exchange(subject, body, timeout).await {
            Ok(answer) => answer,
            Err(failure) => return Err((envelope, failure)),
        };
        match wire::read_answer(&answer) {
            Ok((Answer::Delivered | Answer::Replied, rest)) => {
                let start = answer.len() - rest.len();
                Ok((envelope, answer.slice(start..)))
            }
            Ok((refused, _)) => {
                let failure = failure_of::<M>(refused, envelope.payload.version());
                Err((envelope, Failure::Refused(failure)))
            }
            Err(e) => Err((envelope, e.into())),
        }
    }

    async fn send_boxed(&self, envelope: Envelope<M>) -> Result<(), BrokerError<M>> {
        let (subject, fallback) = match self.route(&envelope.recipient) {
            Route::Here => return self.inner.local.send(*envelope).await,
            Route::There { subject, fallback } => (subject, fallback),
        };
        let timeout = self.inner.config.ack_timeout;
        match self.call(subject, Kind::Tell, envelope, timeout).await {
            Ok(_) => {
                metrics::delivered();
                Ok(())
            }
            Err((
                envelope,
                Failure::Refused(DeliveryFailure::Remote(RemoteFailure::NoResponders)),
            )) if fallback => self.inner.local.send(*envelope).await,
            Err((envelope, Failure::Refused(cause))) => Err(undelivered(envelope, cause)),
            Err((envelope, Failure::TimedOut)) => Err(undelivered(
                envelope,
                RemoteFailure::Unconfirmed(timeout).into(),
            )),
        }
    }

    async fn request_boxed(
        &self,
        envelope: Envelope<M>,
        timeout: Duration,
    ) -> Result<R, BrokerError<M>> {
        let (subject, fallback) = match self.route(&envelope.recipient) {
            Route::Here => return self.inner.local.request(*envelope, timeout).await,
            Route::There { subject, fallback } => (subject, fallback),
        };
        let request = envelope.id;
        // As locally, the timeout counts from the envelope's creation.
        let left = timeout.saturating_sub(envelope.created.elapsed());
        match self.call(subject, Kind::Ask, envelope, left).await {
            Ok((envelope, reply)) => match wire::value::<R>(&reply) {
                Ok(reply) => {
                    metrics::delivered();
                    Ok(reply)
                }
                Err(e) => Err(undelivered(envelope, e.into())),
            },
            Err((
                envelope,
                Failure::Refused(DeliveryFailure::Remote(RemoteFailure::NoResponders)),
            )) if fallback => self.inner.local.request(*envelope, timeout).await,
            Err((envelope, Failure::Refused(cause))) => Err(undelivered(envelope, cause)),
            Err((_, Failure::TimedOut)) => {
                metrics::timed_out();
                Err(BrokerError::Timeout { request, timeout })
            }
        }
    }

    /// Publishes `message` on `topic` to every node that
    /// [bridges](Self::bridge_topic) it (this one too, if it does). At
    /// most once; the message comes back if NATS cannot take it.
    pub async fn publish(&self, topic: &str, message: M) -> Result<(), RemotePublishError<M>> {
        let head = Head {
            kind: Kind::Publish,
            message_type: M::MESSAGE_TYPE,
            version: message.version(),
            node: &self.inner.config.node,
            timeout_ms: 0,
        };
        let refused = |message, cause| Err(RemotePublishError { message, cause });
        if !self.is_connected() {
            return refused(message, RemoteFailure::Disconnected);
        }
        let body = match wire::encode(&head, &message) {
            Ok(body) => body,
            Err(cause) => return refused(message, cause),
        };
        let subject = self.inner.subjects.topic(topic);
        match self.inner.client.publish(subject, body.into()).await {
            Ok(()) => Ok(()),
            Err(e) => refused(message, RemoteFailure::Transport(e.to_string())),
        }
    }
}

impl<M: WireMessage + Clone, R: WireReply> NatsMessageBroker<M, R> {
    /// Joins this node's topic `topic` to every other node's: what any node
    /// [publishes](Self::publish) there reaches this node's subscribers.
    pub async fn bridge_topic(&self, topic: &str) -> Result<Topic<M>, NatsError> {
        let local = self
            .inner
            .system
            .topic::<M>(topic)
            .map_err(|e| NatsError::Config(e.to_string()))?;
        let subscriber = self
            .subscribe(self.inner.subjects.topic(topic), None)
            .await?;
        let accepted = self.inner.config.accepted_versions.clone();
        let forward = local.clone();
        self.start(async move {
            let mut subscriber = subscriber;
            while let Some(message) = subscriber.next().await {
                match decode_published::<M>(&message.payload, &accepted) {
                    Ok(value) => {
                        forward.publish(value).await;
                    }
                    Err(reason) => {
                        tracing::warn!(subject = %message.subject, %reason, "topic message refused");
                    }
                }
            }
        });
        Ok(local)
    }
}

/// A topic message's value, if its type and version are the ones taken.
fn decode_published<M: WireMessage>(
    bytes: &[u8],
    accepted: &std::ops::RangeInclusive<u32>,
) -> Result<M, String> {
    let (head, rest) = wire::head(bytes).map_err(|e| e.to_string())?;
    if head.message_type != M::MESSAGE_TYPE {
        return Err(format!(
            "{} messages, not {}",
            head.message_type,
            M::MESSAGE_TYPE
        ));
    }
    if !accepted.contains(&head.version) {
        return Err(format!(
            "version {} of {} (accepted {accepted:?})",
            head.version,
            M::MESSAGE_TYPE
        ));
    }
    wire::value(rest).map_err(|e| e.to_string())
}

impl<M: WireMessage, R: WireReply> Inner<M, R> {
    /// Handles a message from another node; answers it unless the answer
    /// is the actor's reply, which comes later.
    async fn incoming(&self, message: async_nats::Message) {
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
        if head.message_type != M::MESSAGE_TYPE {
            return Some(Answer::WrongType {
                node: node.clone(),
                serves: M::MESSAGE_TYPE.to_owned(),
            });
        }
        if head.kind == Kind::Locate {
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
        if !self.config.accepted_versions.contains(&head.version) {
            tracing::warn!(
                from = head.node,
                message_type = head.message_type,
                version = head.version,
                "refused a message version this node does not accept"
            );
            let accepted = &self.config.accepted_versions;
            return Some(Answer::UnknownVersion {
                node: node.clone(),
                accepted: format!("{}..={}", accepted.start(), accepted.end()),
            });
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
    fn answer(&self, to: async_nats::Subject, body: Bytes) {
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
    fn expire_remote(&self) {
        let now = Instant::now();
        self.remote
            .lock()
            .retain(|_, waiting| waiting.expires > now);
    }
}

/// Follows the client's connection events; logs what the server refused.
fn on_event(connection: &watch::Sender<bool>, event: async_nats::Event) {
    match event {
        async_nats::Event::Connected => {
            tracing::info!("connected to NATS");
            connection.send_replace(true);
        }
        async_nats::Event::Disconnected => {
            tracing::warn!("disconnected from NATS; reconnecting");
            connection.send_replace(false);
        }
        async_nats::Event::Closed => {
            connection.send_replace(false);
        }
        async_nats::Event::ServerError(e) => tracing::warn!(error = %e, "NATS server error"),
        other => tracing::debug!(event = %other, "NATS event"),
    }
}

/// Publishes answers to other nodes, in order.
async fn answer_loop(
    client: Client,
    mut answers: mpsc::UnboundedReceiver<(async_nats::Subject, Bytes)>,
) {
    while let Some((to, body)) = answers.recv().await {
        if let Err(e) = client.publish(to, body).await {
            tracing::warn!(error = %e, "could not answer another node");
        }
    }
}

/// Handles messages to one exported subject.
async fn serve_loop<M: WireMessage, R: WireReply>(
    inner: Weak<Inner<M, R>>,
    mut subscriber: Subscriber,
) {
    while let Some(message) = subscriber.next().await {
        let Some(inner) = inner.upgrade() else { break };
        inner.incoming(message).await;
    }
}

/// Sends this node's heartbeat, sweeps the silent nodes and the expired
/// requests, every interval.
async fn heartbeat_loop<M: WireMessage, R: WireReply>(inner: Weak<Inner<M, R>>) {
    let Some(interval) = inner.upgrade().map(|inner| inner.config.heartbeat_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { break };
        let subject = inner.subjects.heartbeat(&inner.config.node);
        let node = Bytes::from(inner.config.node.clone().into_bytes());
        if inner.client.connection_state() == State::Connected
            && let Err(e) = inner.client.publish(subject, node).await
        {
            tracing::debug!(error = %e, "heartbeat not sent");
        }
        inner.liveness.sweep();
        inner.expire_remote();
    }
}

/// Records the other nodes' heartbeats.
async fn hear_loop<M: WireMessage, R: WireReply>(
    inner: Weak<Inner<M, R>>,
    mut heartbeats: Subscriber,
) {
    while let Some(heartbeat) = heartbeats.next().await {
        let Some(inner) = inner.upgrade() else { break };
        if let Ok(node) = std::str::from_utf8(&heartbeat.payload) {
            inner.liveness.heard(node);
        }
    }
}

impl<M: WireMessage, R: WireReply> MessageBroker<M> for NatsMessageBroker<M, R> {
    type Reply = R;

    fn send(
        &self,
        envelope: MessageEnvelope<M>,
    ) -> impl Future<Output = Result<(), BrokerError<M>>> + Send {
        self.send_boxed(Box::new(envelope))
    }

    fn request(
        &self,
        envelope: MessageEnvelope<M>,
        timeout: Duration,
    ) -> impl Future<Output = Result<R, BrokerError<M>>> + Send {
        self.request_boxed(Box::new(envelope), timeout)
    }

    fn reply(&self, reply_to: MessageId, reply: R) -> Result<(), UnknownRequest<R>> {
        let waiting = self.inner.remote.lock().remove(&reply_to);
        let Some(waiting) = waiting else {
            return self.inner.local.reply(reply_to, reply);
        };
        let body = match wire::reply(&reply) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "a reply could not be encoded; the requester is told");
                wire::answer(&Answer::Malformed(format!(
                    "the reply could not be encoded: {e}"
                )))
            }
        };
        self.inner.answer(waiting.answer_to, body.into());
        Ok(())
    }
}
