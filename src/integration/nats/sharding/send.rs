//! Sending to sharded entities: find the node holding the key's shard (or
//! run the instance here), and ask again while the shard is between owners
//! or an instance is stopping, until the send's time runs out.

use std::time::Duration;

use tokio::time::Instant;

use crate::address::ActorAddress;
use crate::broker::{BrokerError, DeliveryFailure, MessageBroker, RemoteFailure};
use crate::broker::{metrics, undelivered};
use crate::integration::nats::broker::{
    Envelope, Failure, NatsMessageBroker, WireMessage, WireReply,
};
use crate::integration::nats::wire::{self, Kind};

impl<M: WireMessage, R: WireReply> NatsMessageBroker<M, R> {
    /// Where the entity `key` of `kind` is served: `None` here (its
    /// instance running), else the subject of the node holding its shard.
    fn entity_route(&self, kind: &str, key: &str) -> Result<Option<String>, RemoteFailure> {
        let host = self.sharding_host()?;
        if !host.is_hosted(kind) {
            return Err(RemoteFailure::UnknownKind {
                kind: kind.to_owned(),
            });
        }
        let shard = host.shard_of(key);
        if !host.holds(kind, shard) {
            super::check_key(key).map_err(RemoteFailure::BadEntityKey)?;
            return Ok(Some(self.inner.subjects.shard(kind, shard)));
        }
        match host.activate(kind, key) {
            Ok(_) => Ok(None),
            Err(refusal) => Err(refusal.into_failure(kind)),
        }
    }

    /// A refusal from this node's own routing: `Ok` to ask again (the
    /// shard is moving, or a kind refused as unknown is known once the
    /// members are read again: a node may have registered it since the
    /// last round), `Err` to give up.
    async fn worth_retrying(
        &self,
        failure: RemoteFailure,
    ) -> Result<DeliveryFailure, DeliveryFailure> {
        let known_now = match (&failure, self.inner.sharding.get()) {
            (RemoteFailure::UnknownKind { kind }, Some(host)) => {
                host.refresh_members(&self.live_nodes()).await;
                host.is_hosted(kind)
            }
            _ => false,
        };
        let cause = DeliveryFailure::Remote(failure);
        if known_now || moving(&cause) {
            Ok(cause)
        } else {
            Err(cause)
        }
    }

    /// Sends to an entity, asking again while its shard moves, until the
    /// send's time (`ack_timeout`) runs out.
    pub(crate) async fn send_to_entity(
        &self,
        mut envelope: Envelope<M>,
    ) -> Result<(), BrokerError<M>> {
        let (kind, key) = entity_of(&envelope.recipient);
        let timeout = self.inner.config.ack_timeout;
        let mut patience = Patience::new(timeout);
        loop {
            let failure = match self.entity_route(&kind, &key) {
                Ok(None) => match self.inner.local.send(*envelope).await {
                    Err(BrokerError::Undelivered {
                        cause,
                        envelope: back,
                        ..
                    }) if moving(&cause) => {
                        envelope = back;
                        cause
                    }
                    sent => return sent,
                },
                Ok(Some(subject)) => {
                    let left = patience.left();
                    match self.call(subject, Kind::Tell, envelope, left).await {
                        Ok(_) => {
                            metrics::delivered();
                            return Ok(());
                        }
                        Err((back, Failure::Refused(cause))) if moving(&cause) => {
                            envelope = back;
                            cause
                        }
                        Err((back, Failure::Refused(cause))) => {
                            return Err(undelivered(back, cause));
                        }
                        Err((back, Failure::TimedOut)) => {
                            return Err(undelivered(back, RemoteFailure::Unconfirmed(left).into()));
                        }
                    }
                }
                Err(failure) => match self.worth_retrying(failure).await {
                    Ok(cause) => cause,
                    Err(cause) => return Err(undelivered(envelope, cause)),
                },
            };
            if !patience.wait().await {
                return Err(undelivered(
                    envelope,
                    self.unavailable(&kind, &key, failure),
                ));
            }
        }
    }

    /// Asks an entity, asking again while its shard moves, until `timeout`
    /// (counted from the envelope's creation) runs out.
    pub(crate) async fn ask_entity(
        &self,
        mut envelope: Envelope<M>,
        timeout: Duration,
    ) -> Result<R, BrokerError<M>> {
        let (kind, key) = entity_of(&envelope.recipient);
        let request = envelope.id;
        let mut patience = Patience::new(timeout.saturating_sub(envelope.created.elapsed()));
        loop {
            let failure = match self.entity_route(&kind, &key) {
                Ok(None) => match self.inner.local.request(*envelope, timeout).await {
                    Err(BrokerError::Undelivered {
                        cause,
                        envelope: back,
                        ..
                    }) if moving(&cause) => {
                        envelope = back;
                        cause
                    }
                    answered => return answered,
                },
                Ok(Some(subject)) => {
                    match self
                        .call(subject, Kind::Ask, envelope, patience.left())
                        .await
                    {
                        Ok((back, reply)) => {
                            return match wire::value::<R>(&reply) {
                                Ok(reply) => {
                                    metrics::delivered();
                                    Ok(reply)
                                }
                                Err(e) => Err(undelivered(back, e.into())),
                            };
                        }
                        Err((back, Failure::Refused(cause))) if moving(&cause) => {
                            envelope = back;
                            cause
                        }
                        Err((back, Failure::Refused(cause))) => {
                            return Err(undelivered(back, cause));
                        }
                        Err((_, Failure::TimedOut)) => {
                            metrics::timed_out();
                            return Err(BrokerError::Timeout { request, timeout });
                        }
                    }
                }
                Err(failure) => match self.worth_retrying(failure).await {
                    Ok(cause) => cause,
                    Err(cause) => return Err(undelivered(envelope, cause)),
                },
            };
            if !patience.wait().await {
                return Err(undelivered(
                    envelope,
                    self.unavailable(&kind, &key, failure),
                ));
            }
        }
    }

    /// The failure to report when an entity's shard stayed unserved.
    fn unavailable(&self, kind: &str, key: &str, last: DeliveryFailure) -> DeliveryFailure {
        match self.inner.sharding.get() {
            Some(host) => RemoteFailure::ShardUnavailable {
                kind: kind.to_owned(),
                shard: host.shard_of(key),
            }
            .into(),
            None => last,
        }
    }
}

/// An entity address's kind and key.
fn entity_of(address: &ActorAddress) -> (String, String) {
    match address {
        ActorAddress::Entity { kind, key } => (kind.clone(), key.clone()),
        _ => (String::new(), String::new()),
    }
}

/// Whether `cause` means the entity is between instances or its shard
/// between owners: ask again.
fn moving(cause: &DeliveryFailure) -> bool {
    matches!(
        cause,
        DeliveryFailure::Remote(
            RemoteFailure::NoResponders | RemoteFailure::ShardUnavailable { .. }
        ) | DeliveryFailure::ActorStopped
            | DeliveryFailure::Unresolved(_)
    )
}

/// The time left to reach an entity, and the growing pause between tries.
struct Patience {
    deadline: Instant,
    pause: Duration,
}

impl Patience {
    fn new(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            pause: Duration::from_millis(2),
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Pauses before the next try; `false` if no time is left for one.
    async fn wait(&mut self) -> bool {
        if Instant::now() + self.pause >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(100));
        true
    }
}
