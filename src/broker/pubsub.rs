//! Pub/sub topics: loose coupling between actors that do not know each
//! other. A [`Topic<M>`] has any number of subscribers (actors taking `M`);
//! publishing sends each a clone. Subscribers that have stopped are dropped
//! from the topic automatically, the next time it is published to or
//! counted.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use super::RegistryError;
use crate::actor::ActorRef;
use crate::message::Message;
use crate::system::SendErrorKind;

/// A topic of some message type: the type's name and the `TopicInner<M>`.
type AnyTopic = (&'static str, Arc<dyn Any + Send + Sync>);

/// The topics of one system ([`ActorSystem::topic`](crate::system::ActorSystem::topic)).
#[derive(Default)]
pub(crate) struct Topics {
    topics: RwLock<HashMap<Arc<str>, AnyTopic>>,
}

impl Topics {
    /// The topic `name` for messages `M`, created on first use.
    pub(crate) fn topic<M: Message + Clone>(&self, name: &str) -> Result<Topic<M>, RegistryError> {
        let typed = |(message_type, topic): &AnyTopic| {
            topic
                .clone()
                .downcast::<TopicInner<M>>()
                .map(|inner| Topic { inner })
                .map_err(|_| RegistryError::WrongMessageType {
                    name: name.to_owned(),
                    expected: M::MESSAGE_TYPE,
                    registered: message_type,
                })
        };
        if let Some(existing) = self.topics.read().get(name) {
            return typed(existing);
        }
        let mut topics = self.topics.write();
        let entry = topics.entry(name.into()).or_insert_with(|| {
            let inner: Arc<dyn Any + Send + Sync> = Arc::new(TopicInner::<M> {
                name: name.into(),
                subscribers: RwLock::new(Vec::new()),
            });
            (M::MESSAGE_TYPE, inner)
        });
        typed(entry)
    }
}

struct TopicInner<M: Message> {
    name: Arc<str>,
    subscribers: RwLock<Vec<ActorRef<M>>>,
}

/// A topic: publish once, every live subscriber gets a clone. Cheap to clone.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::prelude::*;
///
/// #[derive(Debug, Clone)]
/// struct Price(u64);
/// impl Message for Price { const MESSAGE_TYPE: &'static str = "price"; }
///
/// struct Ticker;
/// impl Actor for Ticker {
///     type Message = Price;
///     type Error = Infallible;
///     async fn handle_message(&mut self, _: Price, _: &mut ActorContext<Price>) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let prices = system.topic::<Price>("prices")?;
/// prices.subscribe(&system.spawn(Ticker)?);
/// prices.subscribe(&system.spawn(Ticker)?);
/// let report = prices.publish(Price(42)).await;
/// assert_eq!(report.delivered, 2);
/// # Ok(()) }
/// ```
pub struct Topic<M: Message> {
    inner: Arc<TopicInner<M>>,
}

impl<M: Message> Clone for Topic<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Message> fmt::Debug for Topic<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.name)
            .field("message_type", &M::MESSAGE_TYPE)
            .field("subscribers", &self.inner.subscribers.read().len())
            .finish()
    }
}

/// What one [`Topic::publish`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Subscribers the message was delivered to.
    pub delivered: usize,
    /// Live subscribers whose mailbox refused it (full, `Reject`/`DropNewest`).
    pub refused: usize,
    /// Stopped subscribers removed from the topic.
    pub removed: usize,
}

impl<M: Message + Clone> Topic<M> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds `actor` (once; subscribing twice is the same as once).
    pub fn subscribe(&self, actor: &ActorRef<M>) {
        let mut subscribers = self.inner.subscribers.write();
        if !subscribers.contains(actor) {
            subscribers.push(actor.clone());
        }
    }

    /// Removes `actor`; `true` if it was subscribed.
    pub fn unsubscribe(&self, actor: &ActorRef<M>) -> bool {
        let mut subscribers = self.inner.subscribers.write();
        let before = subscribers.len();
        subscribers.retain(|s| s != actor);
        subscribers.len() != before
    }

    /// Live subscribers (stopped ones are dropped here).
    pub fn subscriber_count(&self) -> usize {
        let mut subscribers = self.inner.subscribers.write();
        subscribers.retain(ActorRef::is_alive);
        subscribers.len()
    }

    /// Sends a clone of `message` to every live subscriber, in subscription
    /// order (waiting where a `Block` mailbox is full). Stopped subscribers
    /// are removed.
    pub async fn publish(&self, message: M) -> PublishReport {
        let subscribers = self.inner.subscribers.read().clone();
        let mut report = PublishReport::default();
        let mut stopped = Vec::new();
        for subscriber in &subscribers {
            match subscriber.tell(message.clone()).await {
                Ok(()) => report.delivered += 1,
                Err(error) if error.kind() == SendErrorKind::ActorStopped => {
                    stopped.push(subscriber.id());
                }
                Err(_) => report.refused += 1,
            }
        }
        if !stopped.is_empty() {
            let mut subscribers = self.inner.subscribers.write();
            let before = subscribers.len();
            subscribers.retain(|s| !stopped.contains(&s.id()));
            report.removed = before - subscribers.len();
        }
        metrics::counter!("airssys_rt_published_total").increment(report.delivered as u64);
        report
    }
}
