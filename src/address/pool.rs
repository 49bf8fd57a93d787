//! [`ActorPool`]: interchangeable actors behind one address, picked per
//! message by a [`PoolStrategy`], supervised and resizable.
//!
//! A pool is a one-for-one supervisor whose children are the members
//! `"{pool}/0"`, `"{pool}/1"`, …, each registered under its child id. A
//! member that fails is restarted by the supervisor and takes its slot (and
//! its consistent-hash keys) back; while it restarts, messages go to the next
//! live member. The pool itself is registered in the system's registry, so
//! `ActorAddress::Pool` reaches it through the broker.
//!
//! The keyed strategies push each message into one member's mailbox. A
//! member keeps its mailbox across a restart by default
//! ([`PoolSpec::keep_mailboxes`]; see
//! [`WorkerSpec::keep_mailbox`](crate::supervisor::WorkerSpec::keep_mailbox)): its
//! replacement handles what was queued, and a crash loses only the job
//! being handled. Without it a crash throws the queue away (OTP's
//! semantics: a restarted process starts with an empty mailbox; the jobs
//! become `ActorCrashed` dead letters). [`PoolStrategy::WorkSharing`]
//! keeps the jobs in one shared queue instead (see `work_sharing.rs`).
//!
//! [`ActorPool::tell`] waits while every member is restarting (as a `Block`
//! mailbox waits for room), so a crash does not hand jobs back to senders.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::work_sharing::{self, Idle, Sharing};
use super::{HashRing, PoolStrategy};
use crate::actor::cell::LifecycleWatcher;
use crate::actor::{Actor, ActorRef, ReplyTo};
use crate::broker::RegistryError;
use crate::mailbox::MailboxConfig;
use crate::message::Message;
use crate::supervisor::tree;
use crate::supervisor::{
    ChildSpec, SupervisionEvent, SupervisorError, SupervisorRef, SupervisorSpec,
};
use crate::system::{ActorSystem, AskError, RootFailure, SendErrorKind};
use crate::util::ActorId;

/// What can go wrong routing to, or managing, a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool runs but no member is live right now: it was resized to
    /// none, or (from [`ActorPool::route`], which does not wait) its members
    /// are restarting.
    #[error(
        "pool '{pool}' has no live member right now: it has none (see ActorPool::resize) or they are restarting (ActorPool::tell waits for one; see ActorPool::status)"
    )]
    NoLiveMember {
        /// The pool.
        pool: String,
    },
    /// The pool's supervisor exceeded its restart intensity and stopped,
    /// with every member: nothing restarts it.
    #[error(
        "pool '{pool}' gave up: its members crashed {restarts} times within {period:?}, so its supervisor stopped them all; start the pool again, or start it under a supervisor of yours that restarts it"
    )]
    GaveUp {
        /// The pool.
        pool: String,
        /// Restarts in the intensity window when it gave up.
        restarts: u32,
        /// The intensity window.
        period: Duration,
    },
    /// The pool was shut down (or, under a parent supervisor, gave up and
    /// is not running again yet).
    #[error(
        "pool '{pool}' was shut down, or gave up under a parent supervisor that has not started it again yet; start it again, or retry once its parent has"
    )]
    Stopped {
        /// The pool.
        pool: String,
    },
    /// Consistent-hash routing needs a key the message does not have.
    #[error(
        "pool '{pool}' routes by consistent hash but this {message_type} message has no routing_key(); implement Message::routing_key or pick another strategy"
    )]
    NoRoutingKey {
        /// The pool.
        pool: String,
        /// The message's type.
        message_type: &'static str,
    },
    /// The chosen member's mailbox is full (for a work-sharing pool,
    /// `member` is its shared queue).
    #[error("the mailbox of pool '{pool}' member {member} is full; retry later or grow the pool")]
    MailboxFull {
        /// The pool.
        pool: String,
        /// The member that refused.
        member: ActorId,
    },
    /// A request to a member failed.
    #[error("request to pool '{pool}' failed: {error}")]
    Ask {
        /// The pool.
        pool: String,
        /// Why.
        error: AskError,
    },
    /// Starting or stopping members failed.
    #[error("pool '{pool}': {error}")]
    Supervisor {
        /// The pool.
        pool: String,
        /// Why.
        error: SupervisorError,
    },
    /// Another live pool has this name.
    #[error(
        "the pool name '{pool}' is taken (its supervisor is {holder}); pick another name or shut that pool down"
    )]
    NameTaken {
        /// The name.
        pool: String,
        /// The supervisor of the pool holding it.
        holder: ActorId,
    },
}

/// A message a pool could not deliver, with the reason; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PoolSendError<M> {
    error: PoolError,
    message: M,
}

impl<M> PoolSendError<M> {
    /// Why the message was not delivered.
    pub fn error(&self) -> &PoolError {
        &self.error
    }

    /// The message, back.
    pub fn into_message(self) -> M {
        self.message
    }
}

/// Whether a pool runs ([`ActorPool::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStatus {
    /// Its supervisor runs; `live` of its `members` are running (the rest
    /// are restarting).
    Running {
        /// Member slots.
        members: usize,
        /// Members running now.
        live: usize,
    },
    /// Its supervisor exceeded its restart intensity and stopped, with
    /// every member.
    GaveUp(RootFailure),
    /// It was shut down.
    Stopped,
}

/// How to start a pool: its name, size, strategy and member factory.
#[must_use = "a spec does nothing until started with ActorSystem::start_pool"]
pub struct PoolSpec<A: Actor> {
    name: Arc<str>,
    size: usize,
    strategy: PoolStrategy,
    factory: Arc<dyn Fn() -> A + Send + Sync>,
    mailbox: Option<MailboxConfig>,
    intensity: Option<(u32, Duration)>,
    keep_mailboxes: bool,
}

impl<A: Actor> Clone for PoolSpec<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            size: self.size,
            strategy: self.strategy.clone(),
            factory: self.factory.clone(),
            mailbox: self.mailbox,
            intensity: self.intensity,
            keep_mailboxes: self.keep_mailboxes,
        }
    }
}

impl<A: Actor> fmt::Debug for PoolSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSpec")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl<A: Actor> PoolSpec<A> {
    /// The pool's name (also its child id under a supervisor).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A round-robin pool `name` of `size` members made by `factory`.
    pub fn new<F>(name: impl Into<Arc<str>>, size: usize, factory: F) -> Self
    where
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            size,
            strategy: PoolStrategy::RoundRobin,
            factory: Arc::new(factory),
            mailbox: None,
            intensity: None,
            keep_mailboxes: true,
        }
    }

    /// How [`ActorPool::tell`] and [`ActorPool::ask`] pick a member.
    pub fn strategy(mut self, strategy: PoolStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Each member's mailbox (the system's default otherwise); for
    /// [`PoolStrategy::WorkSharing`], the shared queue's (members then take
    /// one job at a time).
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// Whether a member keeps its mailbox across a restart (default: yes),
    /// for every strategy but [`PoolStrategy::WorkSharing`], whose members
    /// take one job at a time from the shared queue. Kept, the replacement
    /// handles what was queued for the crashed member; not kept (OTP's
    /// semantics), those jobs become `ActorCrashed` dead letters. See
    /// [`WorkerSpec::keep_mailbox`](crate::supervisor::WorkerSpec::keep_mailbox).
    pub fn keep_mailboxes(mut self, keep: bool) -> Self {
        self.keep_mailboxes = keep;
        self
    }

    /// The supervisor's restart intensity: more than `max_restarts` member
    /// restarts within `period` stops the pool. Defaults to one restart per
    /// member in 5 s.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Some((max_restarts, period));
        self
    }
}

/// A running pool. Cheap to clone.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use airssys_rt::address::{PoolSpec, PoolStrategy};
/// use airssys_rt::prelude::*;
///
/// #[derive(Debug)]
/// struct Square(u64, ReplyTo<u64>);
/// impl Message for Square { const MESSAGE_TYPE: &'static str = "square"; }
///
/// struct Squarer;
/// impl Actor for Squarer {
///     type Message = Square;
///     type Error = Infallible;
///     async fn handle_message(&mut self, Square(n, reply): Square, _: &mut ActorContext<Square>) -> Result<(), Infallible> {
///         let _ = reply.reply(n * n);
///         Ok(())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let pool = system.start_pool(PoolSpec::new("squarers", 4, || Squarer)).await?;
/// assert_eq!(pool.ask(|r| Square(7, r), Duration::from_secs(1)).await?, 49);
/// pool.resize(2).await?;
/// assert_eq!(pool.len(), 2);
/// # Ok(()) }
/// ```
pub struct ActorPool<M: Message> {
    inner: Arc<PoolInner<M>>,
}

impl<M: Message> Clone for ActorPool<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Message> fmt::Debug for ActorPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorPool")
            .field("name", &self.inner.name)
            .field("strategy", &self.inner.strategy)
            .field("members", &self.len())
            .finish()
    }
}

type MemberSpec = Box<dyn Fn(&str) -> ChildSpec + Send + Sync>;

struct PoolInner<M: Message> {
    name: Arc<str>,
    strategy: PoolStrategy,
    system: ActorSystem,
    supervisor: SupervisorRef,
    members: RwLock<Members<M>>,
    turn: AtomicUsize,
    member_spec: MemberSpec,
    resizing: tokio::sync::Mutex<()>,
    /// A work-sharing pool's shared queue: every message goes here.
    queue: Option<ActorRef<M>>,
}

struct Members<M: Message> {
    slots: Vec<Slot<M>>,
    ring: HashRing,
}

/// One member position; `actor` is its latest known instance.
struct Slot<M: Message> {
    name: Arc<str>,
    actor: ActorRef<M>,
}

impl<M: Message> ActorPool<M> {
    /// Starts the pool's supervisor and members, then registers the pool.
    pub(crate) async fn start<A>(system: &ActorSystem, spec: PoolSpec<A>) -> Result<Self, PoolError>
    where
        A: Actor<Message = M>,
    {
        Self::start_under(system, spec, None).await
    }

    /// [`start`](Self::start), with the pool's supervisor watched by
    /// `parent` (a supervisor the pool is a child of) or by none (a root).
    pub(crate) async fn start_under<A>(
        system: &ActorSystem,
        spec: PoolSpec<A>,
        parent: Option<Arc<dyn LifecycleWatcher>>,
    ) -> Result<Self, PoolError>
    where
        A: Actor<Message = M>,
    {
        let name = spec.name.clone();
        let supervisor_error = |error| PoolError::Supervisor {
            pool: name.to_string(),
            error,
        };
        let (max_restarts, period) = spec
            .intensity
            .unwrap_or((spec.size.max(1) as u32, Duration::from_secs(5)));
        let supervisor_spec = SupervisorSpec::one_for_one()
            .name(name.clone())
            .intensity(max_restarts, period);
        let supervisor = tree::start_supervisor(system, supervisor_spec, name.clone(), parent)
            .await
            .map_err(|reason| {
                supervisor_error(SupervisorError::SupervisorStartFailed {
                    supervisor: name.to_string(),
                    reason,
                })
            })?;
        let (factory, mailbox) = (spec.factory, spec.mailbox);
        let (member_spec, queue): (MemberSpec, _) = if spec.strategy == PoolStrategy::WorkSharing {
            // Members take one job at a time from the shared queue, which
            // gets the pool's mailbox config.
            let idle = Idle::new();
            let queue = work_sharing::open_queue(
                system,
                &name,
                mailbox.unwrap_or(system.config().default_mailbox),
                idle.clone(),
                supervisor.clone(),
            );
            let Ok(queue) = queue else {
                // The system is shutting down.
                supervisor.shutdown().await;
                return Err(PoolError::Stopped {
                    pool: name.to_string(),
                });
            };
            let member_spec: MemberSpec = Box::new(move |member| {
                let (factory, idle) = (factory.clone(), idle.clone());
                ChildSpec::worker(member, move || Sharing::new(factory(), idle.clone()))
                    .register(member)
                    .mailbox(MailboxConfig::unbounded())
                    .into()
            });
            (member_spec, Some(queue))
        } else {
            let keep_mailboxes = spec.keep_mailboxes;
            let member_spec: MemberSpec = Box::new(move |member| {
                let factory = factory.clone();
                let worker = ChildSpec::worker(member, move || factory())
                    .register(member)
                    .keep_mailbox(keep_mailboxes);
                match mailbox {
                    Some(mailbox) => worker.mailbox(mailbox).into(),
                    None => worker.into(),
                }
            });
            (member_spec, None)
        };
        let ring_name = match &spec.strategy {
            PoolStrategy::ConsistentHash(ring) => ring.clone(),
            _ => name.to_string(),
        };
        let pool = Self {
            inner: Arc::new(PoolInner {
                name: name.clone(),
                strategy: spec.strategy,
                system: system.clone(),
                supervisor: supervisor.clone(),
                members: RwLock::new(Members {
                    slots: Vec::with_capacity(spec.size),
                    ring: HashRing::new(&ring_name, 0),
                }),
                turn: AtomicUsize::new(0),
                member_spec,
                resizing: tokio::sync::Mutex::new(()),
                queue,
            }),
        };
        let registered = async {
            system
                .registry()
                .register_pool(&name, &pool, &supervisor.actor)
                .map_err(|error| match error {
                    RegistryError::NameTaken { holder, .. } => PoolError::NameTaken {
                        pool: name.to_string(),
                        holder,
                    },
                    _ => PoolError::Supervisor {
                        pool: name.to_string(),
                        error: SupervisorError::NotRunning {
                            supervisor: supervisor.id(),
                        },
                    },
                })?;
            pool.resize(spec.size).await
        };
        if let Err(error) = registered.await {
            supervisor.shutdown().await;
            return Err(error);
        }
        Ok(pool)
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The strategy [`tell`](Self::tell) and [`ask`](Self::ask) use.
    pub fn strategy(&self) -> &PoolStrategy {
        &self.inner.strategy
    }

    /// Members (live or restarting).
    pub fn len(&self) -> usize {
        self.inner.members.read().slots.len()
    }

    /// Whether the pool has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latest known instance of every member, in slot order.
    pub fn members(&self) -> Vec<ActorRef<M>> {
        self.refresh_stale();
        let members = self.inner.members.read();
        members.slots.iter().map(|s| s.actor.clone()).collect()
    }

    /// The pool's supervisor (its children are the members).
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.inner.supervisor
    }

    /// The member the pool's strategy picks for `message`.
    pub fn route(&self, message: &M) -> Result<ActorRef<M>, PoolError> {
        self.route_with(&self.inner.strategy, Some(message))
    }

    /// The member `strategy` picks for `message`: a live member, preferring
    /// the strategy's choice, else the next live one after it. Only
    /// consistent hashing needs the message. A work-sharing pool routes
    /// everything to its shared queue, whatever the strategy.
    pub fn route_with(
        &self,
        strategy: &PoolStrategy,
        message: Option<&M>,
    ) -> Result<ActorRef<M>, PoolError> {
        if let Some(queue) = &self.inner.queue {
            return match queue.is_alive() {
                true => Ok(queue.clone()),
                false => Err(self.no_live_member()),
            };
        }
        let choice = {
            let members = self.inner.members.read();
            let Some(choice) = self.choose(&members, strategy, message)? else {
                drop(members);
                return Err(self.no_live_member());
            };
            if let Some(slot) = members.slots.get(choice)
                && slot.actor.is_alive()
            {
                return Ok(slot.actor.clone());
            }
            choice
        };
        // The chosen member stopped: pick up restarted instances, then take
        // the first live member from the choice on.
        self.refresh_stale();
        let live = {
            let members = self.inner.members.read();
            let n = members.slots.len();
            (0..n)
                .map(|step| &members.slots[(choice + step) % n])
                .find(|slot| slot.actor.is_alive())
                .map(|slot| slot.actor.clone())
        };
        // Outside the lock: finding out why takes it again.
        live.ok_or_else(|| self.no_live_member())
    }

    /// The slot `strategy` picks; `None` when the pool has no members.
    fn choose(
        &self,
        members: &Members<M>,
        strategy: &PoolStrategy,
        message: Option<&M>,
    ) -> Result<Option<usize>, PoolError> {
        let n = members.slots.len();
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(match strategy {
            // Only a pool started otherwise gets here with `WorkSharing`.
            PoolStrategy::RoundRobin | PoolStrategy::WorkSharing => {
                self.inner.turn.fetch_add(1, Ordering::Relaxed) % n
            }
            PoolStrategy::Random => fastrand::usize(..n),
            PoolStrategy::LeastConnections => {
                // Start the scan at a rotating slot so ties spread out.
                let start = self.inner.turn.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|step| (start + step) % n)
                    .filter(|&at| members.slots[at].actor.is_alive())
                    .min_by_key(|&at| members.slots[at].actor.mailbox_len())
                    .unwrap_or(start % n)
            }
            PoolStrategy::ConsistentHash(_) => {
                let key =
                    message
                        .and_then(M::routing_key)
                        .ok_or_else(|| PoolError::NoRoutingKey {
                            pool: self.inner.name.to_string(),
                            message_type: M::MESSAGE_TYPE,
                        })?;
                members.ring.member(key).unwrap_or(0)
            }
        }))
    }

    /// Replaces stopped instances with their restarted ones, if registered.
    fn refresh_stale(&self) {
        let stale: Vec<(usize, Arc<str>)> = {
            let members = self.inner.members.read();
            members
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| !slot.actor.is_alive())
                .map(|(at, slot)| (at, slot.name.clone()))
                .collect()
        };
        for (at, name) in stale {
            if let Ok(actor) = self.inner.system.registry().lookup::<M>(&name) {
                let mut members = self.inner.members.write();
                if let Some(slot) = members.slots.get_mut(at)
                    && slot.name == name
                {
                    slot.actor = actor;
                }
            }
        }
    }

    /// The pool now registered under this pool's name, if this one has
    /// ended and another took its place (a parent supervisor restarted it).
    fn successor(&self) -> Option<Self> {
        if self.inner.supervisor.is_alive() {
            return None;
        }
        let next = self
            .inner
            .system
            .registry()
            .pool::<M>(&self.inner.name)
            .ok()?;
        (!Arc::ptr_eq(&next.inner, &self.inner)).then_some(next)
    }

    /// Whether the pool runs, and with how many live members. A pool that
    /// a parent supervisor started again reports its successor's status.
    pub fn status(&self) -> PoolStatus {
        if let Some(next) = self.successor() {
            return next.status();
        }
        if self.inner.supervisor.is_alive() {
            self.refresh_stale();
            let members = self.inner.members.read();
            return PoolStatus::Running {
                members: members.slots.len(),
                live: members.slots.iter().filter(|s| s.actor.is_alive()).count(),
            };
        }
        let supervisor = self.inner.supervisor.id();
        match self
            .inner
            .system
            .root_failures()
            .into_iter()
            .find(|failure| failure.supervisor == supervisor)
        {
            Some(failure) => PoolStatus::GaveUp(failure),
            None => PoolStatus::Stopped,
        }
    }

    /// Why no member can take a message: restarting, gave up, or stopped.
    fn no_live_member(&self) -> PoolError {
        let pool = self.inner.name.to_string();
        match self.status() {
            PoolStatus::Running { .. } => PoolError::NoLiveMember { pool },
            PoolStatus::GaveUp(failure) => PoolError::GaveUp {
                pool,
                restarts: failure.restarts,
                period: failure.period,
            },
            PoolStatus::Stopped => PoolError::Stopped { pool },
        }
    }

    /// Sends `message` to the member the strategy picks. A member that stops
    /// before the message lands is skipped; while every member is
    /// restarting, this waits for one to come back (and fails once the pool
    /// gave up or was shut down). A full mailbox is reported (a `Block`
    /// mailbox waits for room). On error the message comes back.
    pub async fn tell(&self, mut message: M) -> Result<(), PoolSendError<M>> {
        loop {
            let member = match self.live_member(&message).await {
                Ok(member) => member,
                Err(error) => return Err(PoolSendError { error, message }),
            };
            match member.tell(message).await {
                Ok(()) => return Ok(()),
                // It stopped since it was picked, so the next pick skips it
                // (a stopped member is not alive).
                Err(refused) if refused.kind() == SendErrorKind::ActorStopped => {
                    message = refused.into_message();
                }
                Err(refused) => {
                    return Err(PoolSendError {
                        error: PoolError::MailboxFull {
                            pool: self.inner.name.to_string(),
                            member: refused.actor(),
                        },
                        message: refused.into_message(),
                    });
                }
            }
        }
    }

    /// Sends a request to the member the strategy picks and waits for the
    /// reply, at most `timeout` in all (waiting for a restarting member
    /// included).
    pub async fn ask<R, F>(&self, request: F, timeout: Duration) -> Result<R, PoolError>
    where
        R: Send,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        let (port, reply) = oneshot::channel();
        let message = request(ReplyTo::from(port));
        let (member, left) = match self.route(&message) {
            Ok(member) => (member, timeout),
            Err(_) => self.member_within(&message, timeout).await?,
        };
        member
            .ask_message(message, reply, left)
            .await
            .map_err(|error| PoolError::Ask {
                pool: self.inner.name.to_string(),
                error,
            })
    }

    /// For an ask that found no member at once: waits for one (or takes it
    /// from the pool that replaced this one) at most `timeout`, and returns it with
    /// what is left of the timeout (a zero timeout stays zero: refused).
    #[cold]
    async fn member_within(
        &self,
        message: &M,
        timeout: Duration,
    ) -> Result<(ActorRef<M>, Duration), PoolError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let member = match tokio::time::timeout_at(deadline, self.live_member(message)).await {
            Ok(member) => member?,
            Err(_) => return Err(self.no_live_member()),
        };
        let left = match timeout.is_zero() {
            true => Duration::ZERO,
            false => deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_nanos(1)),
        };
        Ok((member, left))
    }

    /// The member for `message`, waiting while every member is restarting;
    /// from the pool that replaced this one, if a parent restarted it.
    async fn live_member(&self, message: &M) -> Result<ActorRef<M>, PoolError> {
        let routed = match self.route(message) {
            Err(PoolError::NoLiveMember { .. }) if self.may_recover() => {
                self.wait_for_member(message).await
            }
            routed => routed,
        };
        match routed {
            Err(error) => match self.successor() {
                Some(next) => Box::pin(next.live_member(message)).await,
                None => Err(error),
            },
            member => member,
        }
    }

    /// Whether a pool with no live member can get one back by itself: it
    /// has members, which its supervisor restarts (a work-sharing pool's
    /// queue is not restarted).
    fn may_recover(&self) -> bool {
        self.inner.queue.is_none() && !self.is_empty()
    }

    /// Waits until a member restarts (then routes again), or the pool's
    /// supervisor ends (then says why).
    #[cold]
    async fn wait_for_member(&self, message: &M) -> Result<ActorRef<M>, PoolError> {
        let supervisor = self.inner.supervisor.id();
        // Subscribed before looking again: a restart from now on is seen.
        let mut events = self.inner.system.supervision_events();
        loop {
            match self.route(message) {
                Err(PoolError::NoLiveMember { .. }) if self.may_recover() => {}
                routed => return routed,
            }
            let restarted = async {
                while let Some(event) = events.recv().await {
                    if event.supervisor() == supervisor
                        && matches!(
                            event,
                            SupervisionEvent::ChildRestarted { .. }
                                | SupervisionEvent::ChildStarted { .. }
                        )
                    {
                        return;
                    }
                }
                // The system is gone, and the supervisor with it.
                std::future::pending::<()>().await;
            };
            tokio::select! {
                () = restarted => {}
                _ = self.inner.supervisor.wait_for_exit() => {}
            }
        }
    }

    /// Grows or shrinks the pool to `size` members. New members start (and
    /// join the routing) in slot order; removed members, highest slots
    /// first, leave the routing before they are stopped, and messages still
    /// queued for them become dead letters. Consistent-hash keys move only
    /// to or from the added or removed members.
    pub async fn resize(&self, size: usize) -> Result<(), PoolError> {
        let _one_at_a_time = self.inner.resizing.lock().await;
        let supervisor_error = |error| PoolError::Supervisor {
            pool: self.inner.name.to_string(),
            error,
        };
        let current = self.len();
        for at in current..size {
            let name: Arc<str> = format!("{}/{at}", self.inner.name).into();
            self.inner
                .supervisor
                .start_child((self.inner.member_spec)(&name))
                .await
                .map_err(supervisor_error)?;
            let actor = self
                .inner
                .supervisor
                .child::<M>(&*name)
                .await
                .map_err(supervisor_error)?
                .ok_or_else(|| self.no_live_member())?;
            let mut members = self.inner.members.write();
            members.slots.push(Slot { name, actor });
            members.ring.resize(at + 1);
        }
        for at in (size..current).rev() {
            let name = {
                let mut members = self.inner.members.write();
                members.ring.resize(at);
                members.slots.pop().map(|slot| slot.name)
            };
            if let Some(name) = name {
                self.inner
                    .supervisor
                    .terminate_child(&*name)
                    .await
                    .map_err(supervisor_error)?;
                self.inner
                    .supervisor
                    .delete_child(&*name)
                    .await
                    .map_err(supervisor_error)?;
            }
        }
        Ok(())
    }

    /// Stops every member and the pool's supervisor (and a work-sharing
    /// pool's queue, whose remaining jobs become dead letters).
    pub async fn shutdown(&self) {
        self.inner.supervisor.shutdown().await;
        if let Some(queue) = &self.inner.queue {
            queue.wait_for_exit().await;
        }
    }
}
