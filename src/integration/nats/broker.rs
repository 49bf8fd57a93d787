//! [`NatsMessageBroker`]: the [`MessageBroker`] whose addresses reach the
//! actors of every node of a system, through NATS.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Request, RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::config::NatsConfig;
use super::link::{self, Link, LinkState};
use super::liveness::{self, Liveness, NodeMonitor};
use super::serve::{self, StopServing};
use super::subject::Subjects;
use super::wire::{self, Answer, Head, Kind, Mismatch};
use super::{NatsError, RemotePublishError};
use crate::address::ActorAddress;
use crate::broker::{
    BrokerError, DeliveryFailure, InMemoryMessageBroker, MessageBroker, RemoteFailure, Topic,
    UnknownRequest,
};
use crate::broker::{metrics, undelivered};
use crate::message::{Message, MessageEnvelope};
use crate::system::ActorSystem;
use crate::util::MessageId;
use crate::util::hash::IdHasher;

/// A message type that can cross nodes.
pub trait WireMessage: Message + Serialize + DeserializeOwned {}
impl<M: Message + Serialize + DeserializeOwned> WireMessage for M {}

/// A reply type that can cross nodes.
pub trait WireReply: Serialize + DeserializeOwned + Send + 'static {}
impl<R: Serialize + DeserializeOwned + Send + 'static> WireReply for R {}

/// A request from another node, waiting for a local actor's reply.
pub(super) struct RemoteRequest {
    pub(super) answer_to: async_nats::Subject,
    pub(super) expires: Instant,
}

/// Why a call to another node did not come back with an answer.
pub(super) enum Failure {
    Refused(DeliveryFailure),
    TimedOut,
}

impl From<RemoteFailure> for Failure {
    fn from(failure: RemoteFailure) -> Self {
        Failure::Refused(DeliveryFailure::Remote(failure))
    }
}

pub(super) type Envelope<M> = Box<MessageEnvelope<M>>;

pub(super) struct Inner<M: Message, R> {
    pub(super) client: Client,
    pub(super) system: ActorSystem,
    pub(super) config: NatsConfig,
    pub(super) subjects: Subjects,
    pub(super) local: InMemoryMessageBroker<M, R>,
    /// This run of this node: random, new at each start.
    pub(super) incarnation: u64,
    /// Requests from other nodes waiting for a local actor's reply.
    pub(super) remote: Mutex<HashMap<MessageId, RemoteRequest, BuildHasherDefault<IdHasher>>>,
    /// Answers to other nodes that found the client's queue full, published
    /// by one task (a reply is given from synchronous code).
    pub(super) outbound: mpsc::UnboundedSender<(async_nats::Subject, Bytes)>,
    pub(super) liveness: Liveness,
    pub(super) link: Arc<Link>,
    /// The server's largest message (its info is a large clone: read on
    /// connecting and reconnecting only).
    pub(super) max_payload: AtomicUsize,
    /// Exported subjects, each with the way to stop serving it.
    exports: Mutex<HashMap<String, StopServing>>,
    /// Topics bridged already.
    bridged: Mutex<HashSet<String>>,
    pub(super) tasks: Mutex<Vec<AbortHandle>>,
    pub(super) durable: super::durable::Durable,
    /// This node's sharding, once started.
    pub(super) sharding: std::sync::OnceLock<Arc<super::sharding::Host<M>>>,
    /// Its placement rounds (for leaving).
    pub(super) coordinator: std::sync::OnceLock<Arc<super::sharding::Coordinator<M, R>>>,
}

impl<M: Message, R> Drop for Inner<M, R> {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
        // Nothing renews or fences their leases any more.
        if let Some(host) = self.sharding.get() {
            host.kill_all();
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
/// the actor's mailbox; `request` waits for the actor's reply, which the
/// actor gives through this broker ([`reply`](MessageBroker::reply) with
/// [`ActorContext::envelope_id`](crate::actor::ActorContext::envelope_id)).
/// Delivery is at most once; see
/// [`send_durable`](NatsMessageBroker::send_durable) for at least once.
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
        Answer::UnknownKind { kind, .. } => RemoteFailure::UnknownKind { kind }.into(),
        Answer::Moved { kind, shard } => RemoteFailure::ShardUnavailable { kind, shard }.into(),
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
        let link = Link::new();
        let events = link.clone();
        let subjects = Subjects::new(config.namespace());
        let client = config
            .options()
            .await?
            // Replies come to this system's own inboxes, so NATS permissions
            // can keep other systems from reading them.
            .custom_inbox_prefix(subjects.inboxes())
            .event_callback(move |event| {
                let events = events.clone();
                async move { events.on_event(event) }
            })
            .connect(config.servers.clone())
            .await
            .map_err(|e| NatsError::Connect {
                servers: config.servers.join(", "),
                reason: e.to_string(),
            })?;
        link.seed(client.connection_state() == State::Connected);
        let (outbound, answers) = mpsc::unbounded_channel();
        let max_payload = client.server_info().max_payload;
        let inner = Arc::new(Inner {
            local: InMemoryMessageBroker::new(system),
            system: system.clone(),
            liveness: Liveness::new(config.heartbeat_window()),
            durable: super::durable::Durable::default(),
            incarnation: fastrand::u64(1..),
            client,
            config,
            subjects,
            remote: Mutex::default(),
            outbound,
            max_payload: AtomicUsize::new(max_payload),
            link,
            exports: Mutex::default(),
            bridged: Mutex::default(),
            tasks: Mutex::default(),
            sharding: std::sync::OnceLock::new(),
            coordinator: std::sync::OnceLock::new(),
        });
        let broker = Self { inner };
        broker.start(serve::answer_loop(broker.inner.client.clone(), answers));
        broker.start(liveness::heartbeat_loop(Arc::downgrade(&broker.inner)));
        let heartbeats = broker
            .subscribe(broker.inner.subjects.heartbeats(), None)
            .await?;
        broker.start(liveness::hear_loop(
            Arc::downgrade(&broker.inner),
            heartbeats,
        ));
        Ok(broker)
    }

    pub(super) fn start(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        let mut tasks = self.inner.tasks.lock();
        // Ended tasks (unexported subjects) leave; the rest stop with us.
        tasks.retain(|task| !task.is_finished());
        tasks.push(handle);
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
        let denials = self.inner.link.denials();
        let subscriber = match queue {
            Some(queue) => client.queue_subscribe(subject.clone(), queue).await,
            None => client.subscribe(subject.clone()).await,
        }
        .map_err(|e| failed(&e))?;
        self.round_trip(denials, &subject)
            .await
            .map_err(|e| failed(&e))?;
        Ok(subscriber)
    }

    /// Returns once the server has processed everything this client sent
    /// before: a message to a fresh inbox of ours comes back only after it.
    /// (The client's `flush` only empties the socket.) Fails at once if
    /// the server refuses `watched` or the inbox (permissions).
    async fn round_trip(
        &self,
        denials: broadcast::Receiver<Arc<str>>,
        watched: &str,
    ) -> Result<(), String> {
        let client = &self.inner.client;
        let inbox = client.new_inbox();
        let timeout = self.inner.config.ack_timeout;
        let echo = async {
            let mut echo = client
                .subscribe(inbox.clone())
                .await
                .map_err(|e| e.to_string())?;
            client
                .publish(inbox.clone(), Bytes::new())
                .await
                .map_err(|e| e.to_string())?;
            match tokio::time::timeout(timeout, echo.next()).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("the connection closed".to_owned()),
                Err(_) => Err(format!("the server did not answer within {timeout:?}")),
            }
        };
        match link::unless_denied(denials, &[watched, &inbox], echo).await {
            Ok(echoed) => echoed,
            Err(refused) => Err(format!(
                "the server refused {refused} (NATS permissions: allow this system's subjects and its inboxes {}.>)",
                self.inner.subjects.inboxes()
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

    /// Stops serving `name` to the other nodes (messages to it then go to
    /// another node that exports it, or get `NoResponders`).
    pub async fn unexport_name(&self, name: &str) -> Result<(), NatsError> {
        self.unexport(self.inner.subjects.name(name)).await
    }

    /// Stops serving this node's members of `service`.
    pub async fn unexport_service(&self, service: &str) -> Result<(), NatsError> {
        self.unexport(self.inner.subjects.service(service)).await
    }

    /// Stops serving this node's part of `pool`.
    pub async fn unexport_pool(&self, pool: &str) -> Result<(), NatsError> {
        self.unexport(self.inner.subjects.pool(pool)).await
    }

    pub(super) async fn export(&self, subject: String) -> Result<(), NatsError> {
        if self.inner.exports.lock().contains_key(&subject) {
            return Ok(());
        }
        // The subject is the queue group: one node takes each message.
        let subscriber = self
            .subscribe(subject.clone(), Some(subject.clone()))
            .await?;
        let (stop, stopped) = oneshot::channel();
        if let Some(racing) = self.inner.exports.lock().insert(subject, stop) {
            // Exported twice at once: the first stops serving.
            let _ = racing.send(None);
        }
        self.start(serve::serve_loop(
            Arc::downgrade(&self.inner),
            subscriber,
            stopped,
        ));
        Ok(())
    }

    pub(super) async fn unexport(&self, subject: String) -> Result<(), NatsError> {
        let Some(stop) = self.inner.exports.lock().remove(&subject) else {
            return Ok(());
        };
        let (done, unsubscribed) = oneshot::channel();
        if stop.send(Some(done)).is_ok() {
            // The loop unsubscribes, then says so.
            let _ = unsubscribed.await;
        }
        // Once the server answers a round trip, it has the unsubscription.
        self.round_trip(self.inner.link.denials(), &subject)
            .await
            .map_err(|reason| NatsError::Subscribe { subject, reason })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.config.node
    }

    /// Whether the connection to NATS is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.link.state() == LinkState::Up
    }

    /// Follows the connection. Await a change (`changed()`,
    /// `wait_for(|s| *s == LinkState::Up)`) to learn of a loss or a
    /// reconnect.
    pub fn connection(&self) -> watch::Receiver<LinkState> {
        self.inner.link.watch()
    }

    /// Waits until the connection is up and the server has every
    /// subscription of this broker (after a reconnect too): what is sent
    /// to this node from then on reaches its exports. Fails if the
    /// connection is closed for good.
    pub async fn until_connected(&self) -> Result<(), NatsError> {
        let mut connection = self.connection();
        let state = connection
            .wait_for(|state| *state != LinkState::Reconnecting)
            .await
            .map(|state| *state)
            .unwrap_or(LinkState::Closed);
        if state == LinkState::Closed {
            return Err(NatsError::Closed);
        }
        // The client resubscribes first thing after reconnecting: once the
        // server answers a round trip, it has the subscriptions.
        let denials = self.inner.link.denials();
        let subjects = self.inner.subjects.heartbeats();
        self.round_trip(denials, &subjects)
            .await
            .map_err(|reason| NatsError::Connect {
                servers: self.inner.config.servers.join(", "),
                reason,
            })
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
            incarnation: self.inner.incarnation,
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
            && self.inner.system.registry().holds_name::<M>(name)
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

    /// Why `body` cannot go out now, if it cannot.
    pub(super) fn cannot_send(&self, body: &[u8]) -> Option<RemoteFailure> {
        match self.inner.link.state() {
            LinkState::Up => {}
            LinkState::Reconnecting => return Some(RemoteFailure::Disconnected),
            LinkState::Closed => return Some(RemoteFailure::Closed),
        }
        let max = self.inner.max_payload.load(Ordering::Relaxed);
        (max > 0 && body.len() > max).then_some(RemoteFailure::TooLarge {
            bytes: body.len(),
            max,
        })
    }

    /// Sends `body` to `subject` and waits up to `timeout` for the answer;
    /// a refusal by the server (permissions) ends the wait at once.
    async fn exchange(
        &self,
        subject: String,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, Failure> {
        if let Some(failure) = self.cannot_send(&body) {
            return Err(failure.into());
        }
        let denials = self.inner.link.denials();
        let request = Request::new().payload(body.into()).timeout(Some(timeout));
        let answer = self.inner.client.send_request(subject.clone(), request);
        match link::unless_denied(denials, &[&subject], answer).await {
            Ok(Ok(message)) => Ok(message.payload),
            Ok(Err(e)) => Err(match e.kind() {
                RequestErrorKind::NoResponders => RemoteFailure::NoResponders.into(),
                // Sent, perhaps handled: only "not confirmed" is true.
                RequestErrorKind::TimedOut => Failure::TimedOut,
                RequestErrorKind::Other => match self.inner.link.state() {
                    LinkState::Up => RemoteFailure::Transport(e.to_string()).into(),
                    LinkState::Reconnecting => RemoteFailure::Disconnected.into(),
                    LinkState::Closed => RemoteFailure::Closed.into(),
                },
            }),
            Err(refused) => Err(RemoteFailure::Denied(refused).into()),
        }
    }

    /// Hands `envelope` to the node serving `subject`: its answer's
    /// payload (after the answer), or the envelope back with the failure.
    pub(super) async fn call(
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
            incarnation: self.inner.incarnation,
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
        if let ActorAddress::Entity { .. } = envelope.recipient {
            return self.send_to_entity(envelope).await;
        }
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
        if let ActorAddress::Entity { .. } = envelope.recipient {
            return self.ask_entity(envelope, timeout).await;
        }
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
            incarnation: self.inner.incarnation,
            timeout_ms: 0,
        };
        let refused = |message, cause| Err(RemotePublishError { message, cause });
        let body = match wire::encode(&head, &message) {
            Ok(body) => body,
            Err(cause) => return refused(message, cause),
        };
        if let Some(cause) = self.cannot_send(&body) {
            return refused(message, cause);
        }
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
        if !self.inner.bridged.lock().insert(topic.to_owned()) {
            // Bridged already: a second bridge would deliver twice.
            return Ok(local);
        }
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
    match head.taken_as::<M>(accepted) {
        Ok(()) => wire::value(rest).map_err(|e| e.to_string()),
        Err(Mismatch::Type) => Err(format!(
            "{} messages, not {}",
            head.message_type,
            M::MESSAGE_TYPE
        )),
        Err(Mismatch::Version) => Err(format!(
            "version {} of {} (accepted {accepted:?})",
            head.version,
            M::MESSAGE_TYPE
        )),
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
        let max = self.inner.max_payload.load(Ordering::Relaxed);
        let body = match wire::reply(&reply) {
            Ok(body) if max == 0 || body.len() <= max => body,
            Ok(body) => {
                tracing::error!(
                    bytes = body.len(),
                    max,
                    "a reply too large for NATS; the requester is told"
                );
                let failure = RemoteFailure::TooLarge {
                    bytes: body.len(),
                    max,
                };
                wire::answer(&Answer::Malformed(format!("the reply: {failure}")))
            }
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
