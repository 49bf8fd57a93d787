//! [`InMemoryMessageBroker`]: the broker for actors in one process. It
//! resolves addresses through the system's registry, delivers envelopes
//! (TTL honoured by the receiving actor) and correlates replies by id.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::delivery::Pending;
use super::metrics;
use super::{BrokerError, DeliveryFailure, MessageBroker, UnknownRequest};
use crate::actor::ActorRef;
use crate::actor::handle::NotPushed;
use crate::address::ActorAddress;
use crate::message::{Message, MessageEnvelope};
use crate::system::{ActorSystem, SendError, SendErrorKind};
use crate::util::MessageId;
use crate::util::deadlines::{Due, Within};

/// How [`InMemoryMessageBroker::push_to_static_name`] went.
enum FastPath<M: Message> {
    /// Delivered, or refused for good.
    Done(Result<(), BrokerError<M>>),
    /// The actor's `Block` mailbox is full: wait for room.
    WouldBlock(ActorRef<M>, Box<MessageEnvelope<M>>),
    /// Not a static name: resolve the address the general way.
    NotTaken(Box<MessageEnvelope<M>>),
}

/// An envelope handed back, counted.
pub(crate) fn undelivered<M: Message>(
    envelope: Box<MessageEnvelope<M>>,
    cause: DeliveryFailure,
) -> BrokerError<M> {
    metrics::undelivered(&cause);
    BrokerError::Undelivered {
        address: envelope.recipient.clone(),
        cause,
        envelope,
    }
}

/// Why a mailbox refused.
fn refused_because<T>(refused: &SendError<T>) -> DeliveryFailure {
    match refused.kind() {
        SendErrorKind::ActorStopped => DeliveryFailure::ActorStopped,
        SendErrorKind::MailboxFull => DeliveryFailure::MailboxFull,
    }
}

/// One request in this many has its latency recorded.
const LATENCY_SAMPLING: u64 = 8;

/// A broker for requests `M` and replies `R` among one system's actors.
/// Cheap to clone; clones share the correlation table.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::address::ActorAddress;
/// use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
/// use airssys_rt::prelude::*;
///
/// #[derive(Debug)]
/// struct Double(u64);
/// impl Message for Double { const MESSAGE_TYPE: &'static str = "double"; }
///
/// struct Doubler(InMemoryMessageBroker<Double, u64>);
/// impl Actor for Doubler {
///     type Message = Double;
///     type Error = Infallible;
///     async fn handle_message(&mut self, Double(n): Double, ctx: &mut ActorContext<Double>) -> Result<(), Infallible> {
///         if let Some(request) = ctx.envelope_id() {
///             let _ = self.0.reply(request, n * 2);
///         }
///         Ok(())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let broker = InMemoryMessageBroker::new(&system);
/// system.spawn_builder().register("doubler").spawn(Doubler(broker.clone()))?;
/// let request = MessageEnvelope::new(ActorAddress::named("doubler"), Double(21));
/// assert_eq!(broker.request(request, Duration::from_secs(1)).await?, 42);
/// # Ok(()) }
/// ```
pub struct InMemoryMessageBroker<M: Message, R> {
    system: ActorSystem,
    pending: Arc<Pending<R>>,
    _requests: std::marker::PhantomData<fn(M)>,
}

impl<M: Message, R> Clone for InMemoryMessageBroker<M, R> {
    fn clone(&self) -> Self {
        Self {
            system: self.system.clone(),
            pending: self.pending.clone(),
            _requests: std::marker::PhantomData,
        }
    }
}

impl<M: Message, R> fmt::Debug for InMemoryMessageBroker<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryMessageBroker")
            .field("message_type", &M::MESSAGE_TYPE)
            .field("pending_requests", &self.pending.len())
            .finish()
    }
}

impl<M: Message, R: Send + 'static> InMemoryMessageBroker<M, R> {
    /// A broker over `system`'s registry.
    pub fn new(system: &ActorSystem) -> Self {
        Self {
            system: system.clone(),
            pending: Arc::default(),
            _requests: std::marker::PhantomData,
        }
    }

    /// Requests still waiting for a reply.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    fn resolve(&self, envelope: &MessageEnvelope<M>) -> Result<ActorRef<M>, DeliveryFailure> {
        Ok(self
            .system
            .registry()
            .resolve_for(&envelope.recipient, &envelope.payload)?)
    }

    /// Delivers a boxed envelope: requests box once and move the pointer.
    async fn send_boxed(&self, envelope: Box<MessageEnvelope<M>>) -> Result<(), BrokerError<M>> {
        let envelope = match self.push_to_static_name(envelope) {
            FastPath::Done(result) => return result,
            FastPath::WouldBlock(actor, envelope) => return self.push(actor, envelope).await,
            FastPath::NotTaken(envelope) => envelope,
        };
        let actor = match self.resolve(&envelope) {
            Ok(actor) => actor,
            Err(cause) => return Err(undelivered(envelope, cause)),
        };
        self.push(actor, envelope).await
    }

    /// For a `&'static str` name, the common case: pushes while the
    /// registry holds the name, with no handle cloned and no wait.
    fn push_to_static_name(&self, envelope: Box<MessageEnvelope<M>>) -> FastPath<M> {
        let ActorAddress::Named(Cow::Borrowed(name)) = envelope.recipient else {
            return FastPath::NotTaken(envelope);
        };
        let pushed =
            self.system
                .registry()
                .with_named(name, envelope, |actor: &ActorRef<M>, envelope| {
                    actor
                        .try_tell_boxed_envelope(envelope)
                        .map_err(|not_pushed| (actor.clone(), not_pushed))
                });
        FastPath::Done(match pushed {
            Ok(Ok(())) => {
                metrics::delivered();
                Ok(())
            }
            Ok(Err((actor, NotPushed::WouldBlock(envelope)))) => {
                return FastPath::WouldBlock(actor, envelope);
            }
            Ok(Err((_, NotPushed::Refused(refused)))) => {
                let cause = refused_because(&refused);
                Err(undelivered(refused.into_message(), cause))
            }
            Err((unresolved, envelope)) => Err(undelivered(envelope, unresolved.into())),
        })
    }

    /// Pushes to a resolved actor, waiting for room in a full `Block` mailbox.
    async fn push(
        &self,
        actor: ActorRef<M>,
        envelope: Box<MessageEnvelope<M>>,
    ) -> Result<(), BrokerError<M>> {
        match actor.tell_boxed_envelope(envelope).await {
            Ok(()) => {
                metrics::delivered();
                Ok(())
            }
            Err(refused) => {
                let cause = refused_because(&refused);
                Err(undelivered(refused.into_message(), cause))
            }
        }
    }
}

impl<M: Message, R: Send + 'static> MessageBroker<M> for InMemoryMessageBroker<M, R> {
    type Reply = R;

    // Not `async fn`s: the envelope is boxed before the future is built, so
    // the future holds a pointer instead of a copy of the whole envelope.
    #[allow(clippy::manual_async_fn)]
    fn send(
        &self,
        envelope: MessageEnvelope<M>,
    ) -> impl Future<Output = Result<(), BrokerError<M>>> + Send {
        self.send_boxed(Box::new(envelope))
    }

    #[allow(clippy::manual_async_fn)]
    fn request(
        &self,
        envelope: MessageEnvelope<M>,
        timeout: Duration,
    ) -> impl Future<Output = Result<R, BrokerError<M>>> + Send {
        let envelope = Box::new(envelope);
        async move {
            let request = envelope.id;
            // The timeout counts from the envelope's creation, as its TTL does
            // (and saves reading the clock again).
            let began = envelope.created;
            let deadline = crate::util::time::deadline_from(began, timeout);
            // The ticket removes the request from the table however this ends.
            let (ticket, reply) = self.pending.open(request);
            self.send_boxed(envelope).await?;
            // The system's deadline registry, not a tokio timer: most replies
            // come long before the timeout, and a timer per request would wake
            // the timer driver each time.
            match Within::new(reply, self.system.deadlines(), Due::At(deadline)).await {
                Some(Ok(reply)) => {
                    // `complete` already took the entry out of the table.
                    ticket.completed();
                    // A clock read costs about a tenth of a round trip here, so
                    // the latency histogram samples one request in
                    // `LATENCY_SAMPLING`.
                    if request.as_u64().is_multiple_of(LATENCY_SAMPLING) {
                        metrics::replied(began.elapsed());
                    }
                    Ok(reply)
                }
                // The table never drops a waiting sender without a reply or the
                // ticket; treat it as a timeout to be safe.
                Some(Err(_)) | None => {
                    metrics::timed_out();
                    Err(BrokerError::Timeout { request, timeout })
                }
            }
        }
    }

    fn reply(&self, reply_to: MessageId, reply: R) -> Result<(), UnknownRequest<R>> {
        self.pending.complete(reply_to, reply).map_err(|reply| {
            metrics::unknown_reply();
            UnknownRequest {
                request: reply_to,
                reply,
            }
        })
    }
}
