//! [`InMemoryMessageBroker`]: the broker for actors in one process. It
//! resolves addresses through the system's registry, delivers envelopes
//! (TTL honoured by the receiving actor) and correlates replies by id.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::delivery::Pending;
use super::metrics;
use super::{BrokerError, DeliveryFailure, MessageBroker, UnknownRequest};
use crate::actor::ActorRef;
use crate::message::{Message, MessageEnvelope};
use crate::system::{ActorSystem, SendErrorKind};
use crate::util::MessageId;
use crate::util::deadlines::Within;

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
        metrics::sent();
        let undelivered = |envelope: Box<MessageEnvelope<M>>, cause| {
            metrics::undelivered(&cause);
            BrokerError::Undelivered {
                address: envelope.recipient.clone(),
                cause,
                envelope,
            }
        };
        let actor = match self.resolve(&envelope) {
            Ok(actor) => actor,
            Err(cause) => return Err(undelivered(envelope, cause)),
        };
        match actor.tell_boxed_envelope(envelope).await {
            Ok(()) => {
                metrics::delivered();
                Ok(())
            }
            Err(error) => {
                let cause = match error.kind() {
                    SendErrorKind::ActorStopped => DeliveryFailure::ActorStopped,
                    SendErrorKind::MailboxFull => DeliveryFailure::MailboxFull,
                };
                Err(undelivered(error.into_message(), cause))
            }
        }
    }
}

impl<M: Message, R: Send + 'static> MessageBroker<M> for InMemoryMessageBroker<M, R> {
    type Reply = R;

    async fn send(&self, envelope: MessageEnvelope<M>) -> Result<(), BrokerError<M>> {
        self.send_boxed(Box::new(envelope)).await
    }

    async fn request(
        &self,
        envelope: MessageEnvelope<M>,
        timeout: Duration,
    ) -> Result<R, BrokerError<M>> {
        let request = envelope.id;
        let began = Instant::now();
        let deadline = began.checked_add(timeout).unwrap_or(began);
        // The ticket removes the request from the table however this ends.
        let (ticket, reply) = self.pending.open(request);
        self.send_boxed(Box::new(envelope)).await?;
        // The system's deadline registry, not a tokio timer: most replies
        // come long before the timeout, and a timer per request would wake
        // the timer driver each time.
        match Within::new(reply, self.system.deadlines(), deadline).await {
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
