//! The [`Entity`] trait and the actor that hosts one entity instance: it
//! runs the entity's hooks, marks when it was last busy (for passivation),
//! saves its snapshot after each message when the entity keeps state, and
//! acknowledges a durable message only once the entity has handled it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_nats::jetstream::{self, kv};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::actor::{Actor, ActorContext, ErrorAction};
use crate::util::MessageId;

/// An actor that can be sharded across a cluster: any [`Actor`], plus an
/// optional snapshot of its state that lets it resume where it was after
/// it moves to another node (its node died, or the cluster rebalanced).
///
/// Without state to keep, `impl Entity for MyActor {}` is all it takes.
///
/// ```
/// use std::convert::Infallible;
/// use airssys_rt::prelude::*;
/// use airssys_rt::integration::nats::Entity;
///
/// struct Account { balance: u64 }
///
/// impl Actor for Account {
///     type Message = u64;
///     type Error = Infallible;
///     async fn handle_message(&mut self, deposit: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> {
///         self.balance += deposit;
///         Ok(())
///     }
/// }
///
/// impl Entity for Account {
///     const SNAPSHOTS: bool = true;
///     fn snapshot(&self) -> Option<Vec<u8>> {
///         Some(self.balance.to_le_bytes().to_vec())
///     }
///     fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
///         let bytes = snapshot.try_into().map_err(|_| "not a balance".to_owned())?;
///         self.balance = u64::from_le_bytes(bytes);
///         Ok(())
///     }
/// }
/// ```
pub trait Entity: Actor {
    /// Whether instances keep a snapshot: if so, an activation restores the
    /// last one before the first message, and the snapshot is saved after
    /// every message that changed it and when the instance stops.
    const SNAPSHOTS: bool = false;

    /// The state to keep, when it changed (`None`: nothing to save now).
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Takes back a snapshot [`snapshot`](Self::snapshot) made, on another
    /// instance (maybe on another node). An `Err` stops the activation.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let _ = snapshot;
        Ok(())
    }
}

/// Durable messages in an instance's mailbox, acknowledged once handled.
pub(crate) type Acks = Arc<Mutex<HashMap<MessageId, jetstream::Message>>>;

/// What the host shares with one instance.
pub(crate) struct Ties {
    /// When the instance last finished a message, in ms since `epoch`.
    pub(crate) busy_at: Arc<AtomicU64>,
    pub(crate) epoch: Instant,
    pub(crate) acks: Acks,
    /// The state bucket and the instance's snapshot key, when it keeps one.
    pub(crate) snapshots: Option<(kv::Store, String)>,
}

/// Hosts one instance of entity `A`.
pub(crate) struct Hosted<A> {
    pub(crate) entity: A,
    pub(crate) ties: Ties,
    /// The snapshot saved last, so an unchanged one is not written again.
    pub(crate) saved: Option<Vec<u8>>,
}

/// Why an activation stopped before the first message.
#[derive(Debug)]
pub(crate) enum Activation<E> {
    Restore(String),
    Entity(E),
}

impl<E: std::fmt::Display> std::fmt::Display for Activation<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activation::Restore(reason) => write!(f, "could not restore the snapshot: {reason}"),
            Activation::Entity(error) => error.fmt(f),
        }
    }
}

impl<A: Entity> Hosted<A> {
    fn mark_busy(&self) {
        let now = self.ties.epoch.elapsed().as_millis() as u64;
        self.ties.busy_at.store(now, Ordering::Relaxed);
    }

    /// Saves the snapshot if the entity keeps one and it changed.
    async fn save(&mut self) {
        let Some((store, key)) = &self.ties.snapshots else {
            return;
        };
        let Some(snapshot) = self.entity.snapshot() else {
            return;
        };
        if self.saved.as_ref() == Some(&snapshot) {
            return;
        }
        match store.put(key, snapshot.clone().into()).await {
            Ok(_) => self.saved = Some(snapshot),
            Err(e) => {
                tracing::warn!(target: "airssys_rt::sharding", key, error = %e, "snapshot not saved")
            }
        }
    }
}

impl<A: Entity> Actor for Hosted<A> {
    type Message = A::Message;
    type Error = Activation<A::Error>;

    async fn pre_start(&mut self, ctx: &mut ActorContext<A::Message>) -> Result<(), Self::Error> {
        if let Some((store, key)) = &self.ties.snapshots {
            let snapshot = store
                .get(key.as_str())
                .await
                .map_err(|e| Activation::Restore(e.to_string()))?;
            if let Some(snapshot) = snapshot {
                self.entity
                    .restore(&snapshot)
                    .map_err(Activation::Restore)?;
                self.saved = Some(snapshot.to_vec());
            }
        }
        self.mark_busy();
        self.entity.pre_start(ctx).await.map_err(Activation::Entity)
    }

    async fn handle_message(
        &mut self,
        message: A::Message,
        ctx: &mut ActorContext<A::Message>,
    ) -> Result<(), Self::Error> {
        let handled = self.entity.handle_message(message, ctx).await;
        self.save().await;
        // A durable message counts as delivered once handled (and its
        // effect saved): acknowledged now, not when it reached the mailbox.
        let durable = ctx
            .envelope_id()
            .and_then(|id| self.ties.acks.lock().remove(&id));
        if let Some(message) = durable
            && let Err(e) = message.ack().await
        {
            // Unacknowledged, it comes again: at least once.
            tracing::debug!(target: "airssys_rt::sharding", error = %e, "durable acknowledgement lost");
        }
        self.mark_busy();
        handled.map_err(Activation::Entity)
    }

    async fn post_stop(&mut self, ctx: &ActorContext<A::Message>) -> Result<(), Self::Error> {
        let stopped = self.entity.post_stop(ctx).await;
        self.save().await;
        stopped.map_err(Activation::Entity)
    }

    async fn on_error(
        &mut self,
        error: Self::Error,
        ctx: &ActorContext<A::Message>,
    ) -> ErrorAction {
        match error {
            Activation::Entity(error) => self.entity.on_error(error, ctx).await,
            Activation::Restore(_) => ErrorAction::Escalate,
        }
    }
}
