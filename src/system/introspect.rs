//! Looking at a running system from outside: every live actor with its
//! mailbox, the root supervisors, and stopping or killing an actor by id —
//! what an operator's tool (the `observer` feature's web view, a shell)
//! needs. Everything here reads what the runtime keeps anyway; nothing is
//! counted on the message path for it.

use crate::actor::ActorState;
use crate::mailbox::MailboxConfig;
use crate::supervisor::SupervisorRef;
use crate::util::ActorId;

use super::ActorSystem;

/// One live actor, as [`ActorSystem::actors`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorSummary {
    /// Its id.
    pub id: ActorId,
    /// The name given at spawn, if any.
    pub name: Option<String>,
    /// Its message type's `MESSAGE_TYPE`.
    pub message_type: &'static str,
    /// Where it is in its life.
    pub state: ActorState,
    /// User messages queued now.
    pub mailbox_len: usize,
    /// Its mailbox: kind, capacity, backpressure.
    pub mailbox: MailboxConfig,
    /// Whether a supervisor owns it.
    pub supervised: bool,
}

/// A page of [`ActorSystem::actors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorPage {
    /// Live actors in the whole system.
    pub total: usize,
    /// The actors from `offset` on, at most `limit` of them, in the
    /// system's table order (stable while they live).
    pub actors: Vec<ActorSummary>,
}

impl ActorSystem {
    /// Up to `limit` live actors from position `offset` of the system's
    /// table, and how many there are in all: a page, so that a system of
    /// 100,000 actors can be looked at without copying them all.
    pub fn actors(&self, offset: usize, limit: usize) -> ActorPage {
        let (total, page) = {
            let actors = self.inner.actors.lock();
            (actors.len(), actors.page(offset, limit))
        };
        ActorPage {
            total,
            actors: page.iter().map(|actor| actor.summary()).collect(),
        }
    }

    /// The live actor `id`, summarised; `None` if no such actor lives.
    pub fn actor(&self, id: ActorId) -> Option<ActorSummary> {
        self.inner
            .actors
            .lock()
            .find(id)
            .map(|actor| actor.summary())
    }

    /// Asks the live actor `id` to stop after its current message (exit
    /// reason `Normal`), as [`ActorRef::stop`](crate::actor::ActorRef::stop)
    /// does. `false` if no such actor lives, or it is stopping already.
    pub fn stop_actor(&self, id: ActorId) -> bool {
        let actor = self.inner.actors.lock().find(id);
        actor.is_some_and(|actor| actor.signal(crate::mailbox::SystemSignal::Stop))
    }

    /// Kills the live actor `id` (exit reason `Killed`, no `post_stop`), as
    /// [`ActorRef::kill`](crate::actor::ActorRef::kill) does. `false` if no
    /// such actor lives.
    pub fn kill_actor(&self, id: ActorId) -> bool {
        let actor = self.inner.actors.lock().find(id);
        actor.map(|actor| actor.kill()).is_some()
    }

    /// The live supervisor `id` (a root or a nested one, pools' included);
    /// `None` if no such actor lives or it is not a supervisor.
    pub fn supervisor(&self, id: ActorId) -> Option<SupervisorRef> {
        let actor = self.inner.actors.lock().find(id)?;
        crate::actor::ActorRef::from_any(actor.into_any()).map(SupervisorRef::from_actor)
    }

    /// The root supervisors started with
    /// [`start_supervisor`](Self::start_supervisor) (and by pools): those
    /// alive, and those that gave up (see [`root_failures`](Self::root_failures)),
    /// in start order.
    pub fn root_supervisors(&self) -> Vec<SupervisorRef> {
        let gave_up = self.root_failures();
        let mut roots = self.inner.roots.lock();
        roots.retain(|root| root.is_alive() || gave_up.iter().any(|f| f.supervisor == root.id()));
        roots.clone()
    }

    /// Records a root supervisor (forgetting those that stopped without
    /// giving up).
    pub(crate) fn add_root_supervisor(&self, root: SupervisorRef) {
        let gave_up = self.root_failures();
        let mut roots = self.inner.roots.lock();
        roots.retain(|root| root.is_alive() || gave_up.iter().any(|f| f.supervisor == root.id()));
        roots.push(root);
    }
}
