//! [`ActorSpawnBuilder`]: spawn-time options (name, mailbox) for one actor.

use std::sync::Arc;

use super::{ActorSystem, SystemError};
use crate::actor::cell::ActorControl;
use crate::actor::spawn::{Factory, NoFactory, Rebuild, SpawnOptions, spawn_actor};
use crate::actor::{Actor, ActorRef};
use crate::mailbox::{Backpressure, MailboxConfig, MailboxKind};

/// Options for spawning one actor; get one from
/// [`ActorSystem::spawn_builder`] or [`ActorContext::spawn_child`](crate::actor::ActorContext::spawn_child).
///
/// ```
/// use std::convert::Infallible;
/// use airssys_rt::prelude::*;
///
/// struct Sink;
/// impl Actor for Sink {
///     type Message = u64;
///     type Error = Infallible;
///     async fn handle_message(&mut self, _: u64, _: &mut ActorContext<u64>) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), SystemError> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// let sink = system
///     .spawn_builder()
///     .name("sink")
///     .bounded(100, Backpressure::Reject)
///     .priority()
///     .spawn(Sink)?;
/// assert_eq!(sink.name(), Some("sink"));
/// assert_eq!(sink.mailbox_capacity(), Some(100));
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until .spawn() is called"]
pub struct ActorSpawnBuilder<'a> {
    system: &'a ActorSystem,
    name: Option<Arc<str>>,
    register: Option<Arc<str>>,
    mailbox: MailboxConfig,
    parent: Option<&'a mut Vec<Arc<dyn ActorControl>>>,
}

impl<'a> ActorSpawnBuilder<'a> {
    pub(crate) fn new(system: &'a ActorSystem) -> Self {
        Self {
            system,
            name: None,
            register: None,
            mailbox: system.config().default_mailbox,
            parent: None,
        }
    }

    pub(crate) fn with_parent(mut self, children: &'a mut Vec<Arc<dyn ActorControl>>) -> Self {
        self.parent = Some(children);
        self
    }

    /// Names the actor (shown in logs, errors and `ActorRef::name`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Registers the actor under `name` in the system's
    /// [registry](crate::broker::ActorRegistry) before it starts (and names
    /// it so, unless [`name`](Self::name) says otherwise). Spawning fails
    /// with [`SystemError::Registry`] if another live actor holds the name;
    /// the name is released when the actor exits.
    pub fn register(mut self, name: impl Into<Arc<str>>) -> Self {
        let name = name.into();
        self.name.get_or_insert_with(|| name.clone());
        self.register = Some(name);
        self
    }

    /// Sets the whole mailbox configuration.
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// A bounded mailbox of `capacity` user messages with `backpressure`.
    pub fn bounded(mut self, capacity: usize, backpressure: Backpressure) -> Self {
        self.mailbox.capacity = Some(capacity);
        self.mailbox.backpressure = backpressure;
        self
    }

    /// An unbounded mailbox.
    pub fn unbounded(mut self) -> Self {
        self.mailbox.capacity = None;
        self
    }

    /// A priority mailbox: higher [`MessagePriority`](crate::message::MessagePriority) first.
    pub fn priority(mut self) -> Self {
        self.mailbox.kind = MailboxKind::Priority;
        self
    }

    /// Spawns `actor`. `ErrorAction::Restart` needs a factory: use
    /// [`spawn_with_factory`](Self::spawn_with_factory) for actors that restart.
    pub fn spawn<A: Actor>(self, actor: A) -> Result<ActorRef<A::Message>, SystemError> {
        self.launch(actor, NoFactory)
    }

    /// Spawns the actor built by `factory`, which also builds each
    /// replacement on `ErrorAction::Restart`.
    pub fn spawn_with_factory<A, F>(
        self,
        mut factory: F,
    ) -> Result<ActorRef<A::Message>, SystemError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let actor = factory();
        self.launch(actor, Factory(factory))
    }

    fn launch<A, F>(self, actor: A, factory: F) -> Result<ActorRef<A::Message>, SystemError>
    where
        A: Actor,
        F: Rebuild<A>,
    {
        let options = SpawnOptions {
            register: self.register,
            ..SpawnOptions::new(self.name, self.mailbox)
        };
        let actor_ref = spawn_actor(self.system, options, actor, factory)?;
        if let Some(children) = self.parent {
            children.retain(|child| !child.is_closed());
            children.push(actor_ref.control());
        }
        Ok(actor_ref)
    }
}
