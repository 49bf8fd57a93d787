//! The shared queue of a [`PoolStrategy::WorkSharing`] pool: its members take
//! jobs from one queue, so an idle member always gets the next job, and a
//! member that crashes loses only the job it was handling (recorded as a
//! dead letter that names the crash).
//!
//! The queue is an actor cell without an actor of its own: its mailbox (the
//! pool's mailbox config, so capacity and backpressure apply to it) is fed
//! through an ordinary [`ActorRef`], and `tell`, `ask` and the broker reach
//! it unchanged. One dispatcher task is its receiver. It takes the next job,
//! waits for an idle member and hands the job over. Members announce
//! themselves idle after `pre_start` and after each job ([`Sharing`] wraps
//! the pool's actor), so a member's own mailbox holds at most that one job.
//! The dispatcher ends with the pool's supervisor (shut down, or given up);
//! the queue then refuses new jobs and what it still holds becomes dead
//! letters.
//!
//! [`PoolStrategy::WorkSharing`]: super::PoolStrategy::WorkSharing

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::actor::cell::ActorCell;
use crate::actor::{Actor, ActorContext, ActorRef, ActorState, ErrorAction, ExitReason};
use crate::mailbox::{DeadLetterReason, MailboxConfig, Received};
use crate::message::Message;
use crate::supervisor::SupervisorRef;
use crate::system::registry::Slot;
use crate::system::{ActorSystem, SystemError};
use crate::util::ActorId;

/// Members ready for their next job, oldest first.
pub(crate) struct Idle<M: Message> {
    members: Mutex<VecDeque<ActorRef<M>>>,
    ready: Notify,
}

impl<M: Message> Idle<M> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            members: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        })
    }

    /// `member` can take a job.
    fn announce(&self, member: &ActorRef<M>) {
        self.members.lock().push_back(member.clone());
        self.ready.notify_one();
    }

    /// The next idle member that is still alive (an instance that crashed
    /// after announcing itself is skipped; its replacement announces itself).
    async fn next(&self) -> ActorRef<M> {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            loop {
                let next = self.members.lock().pop_front();
                match next {
                    Some(member) if member.is_alive() => return member,
                    Some(_stopped) => continue,
                    None => break,
                }
            }
            ready.await;
        }
    }
}

/// A work-sharing pool's member: the pool's actor, announcing itself idle
/// whenever it can take the next job.
pub(crate) struct Sharing<A: Actor> {
    actor: A,
    idle: Arc<Idle<A::Message>>,
}

impl<A: Actor> Sharing<A> {
    pub(crate) fn new(actor: A, idle: Arc<Idle<A::Message>>) -> Self {
        Self { actor, idle }
    }
}

impl<A: Actor> Actor for Sharing<A> {
    type Message = A::Message;
    type Error = A::Error;

    async fn pre_start(&mut self, ctx: &mut ActorContext<A::Message>) -> Result<(), A::Error> {
        self.actor.pre_start(ctx).await?;
        self.idle.announce(ctx.myself());
        Ok(())
    }

    async fn handle_message(
        &mut self,
        job: A::Message,
        ctx: &mut ActorContext<A::Message>,
    ) -> Result<(), A::Error> {
        // A panic here crashes the member as it does any actor (the job is
        // recorded as the one it crashed on); an error makes it idle again
        // only if `on_error` resumes (below).
        let handled = self.actor.handle_message(job, ctx).await;
        if handled.is_ok() {
            self.idle.announce(ctx.myself());
        }
        handled
    }

    async fn post_stop(&mut self, ctx: &ActorContext<A::Message>) -> Result<(), A::Error> {
        self.actor.post_stop(ctx).await
    }

    async fn on_error(&mut self, error: A::Error, ctx: &ActorContext<A::Message>) -> ErrorAction {
        let action = self.actor.on_error(error, ctx).await;
        if action == ErrorAction::Resume {
            self.idle.announce(ctx.myself());
        }
        action
    }
}

/// Opens the shared queue of pool `name`, with `mailbox` as its mailbox,
/// and starts its dispatcher, which runs until `supervisor` exits. The
/// queue counts as one of the system's actors, so a system shutdown waits
/// for its jobs to be dead-lettered (and its report counts them). Fails
/// only when the system is shutting down.
pub(crate) fn open_queue<M: Message>(
    system: &ActorSystem,
    name: &str,
    mailbox: MailboxConfig,
    idle: Arc<Idle<M>>,
    supervisor: SupervisorRef,
) -> Result<ActorRef<M>, SystemError> {
    let cell = ActorCell::new(
        ActorId::next(),
        Some(format!("{name}/queue").into()),
        mailbox,
        system.shared(),
        None,
        false,
    );
    let queue = ActorRef::from_cell(cell.clone());
    let slot = system.register(queue.control())?;
    cell.set_state(ActorState::Running);
    let dispatcher = dispatch(cell, slot, idle, supervisor, system.clone());
    system.runtime().spawn(dispatcher);
    Ok(queue)
}

/// The dispatcher: each job to the next idle member, until the pool's
/// supervisor exits; then the queue closes and its jobs become dead letters
/// (`ActorStopped` after a shutdown, `ActorCrashed` when the pool gave up).
async fn dispatch<M: Message>(
    queue: Arc<ActorCell<M>>,
    slot: Slot,
    idle: Arc<Idle<M>>,
    supervisor: SupervisorRef,
    system: ActorSystem,
) {
    {
        let Some(mut jobs) = queue.mailbox.receiver() else {
            return;
        };
        let pool_ended = supervisor.wait_for_exit();
        tokio::pin!(pool_ended);
        'jobs: loop {
            let mut job = tokio::select! {
                biased;
                _ = &mut pool_ended => break 'jobs,
                received = jobs.recv() => match received {
                    Received::Item(job) => job,
                    // Nobody signals the queue; a stop would end it.
                    Received::Signal(_) => break 'jobs,
                },
            };
            loop {
                let member = tokio::select! {
                    biased;
                    _ = &mut pool_ended => {
                        queue.dead_letter(job, DeadLetterReason::ActorStopped);
                        break 'jobs;
                    }
                    member = idle.next() => member,
                };
                match member.cell().mailbox.try_push(job) {
                    Ok(_) => break,
                    // It stopped since it announced itself: the next one.
                    Err(refused) => job = refused.into_inner(),
                }
            }
        }
    }
    let gave_up = system
        .root_failures()
        .iter()
        .any(|failure| failure.supervisor == supervisor.id());
    let exit = if gave_up {
        ExitReason::Escalated(format!(
            "pool '{}' gave up (its supervisor exceeded its restart intensity)",
            supervisor.name().unwrap_or("?")
        ))
    } else {
        ExitReason::Shutdown
    };
    queue.close_and_drain(&exit);
    queue.record_exit(exit);
    system.deregister(slot);
    queue.mark_stopped();
}
