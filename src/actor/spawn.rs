//! Spawning: creates an actor's cell, registers it, and runs its task — the
//! lifecycle loop `pre_start → handle messages → post_stop`, with restarts,
//! panic capture and the final accounting of every queued message.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use super::cell::{ActorCell, Delivery};
use super::lifecycle::panic_text;
use super::{Actor, ActorContext, ActorRef, ActorState, ErrorAction, ExitReason};
use crate::mailbox::{DeadLetterReason, MailboxConfig, Received, SystemSignal};
use crate::message::Message;
use crate::system::{ActorSystem, SystemError};
use crate::util::ActorId;

/// Builds a fresh actor for a restart.
pub(crate) type NoFactory<A> = fn() -> A;

/// Starts `actor` in `system`. `factory`, when given, builds the replacement
/// for `ErrorAction::Restart`.
pub(crate) fn spawn_actor<A, F>(
    system: &ActorSystem,
    name: Option<Arc<str>>,
    mailbox: MailboxConfig,
    actor: A,
    factory: Option<F>,
) -> Result<ActorRef<A::Message>, SystemError>
where
    A: Actor,
    F: FnMut() -> A + Send + 'static,
{
    mailbox.validate().map_err(SystemError::InvalidMailbox)?;
    let cell = Arc::new(ActorCell::new(
        ActorId::next(),
        name,
        mailbox,
        system.shared(),
    ));
    let myself = ActorRef::from_cell(cell.clone());
    system.register(myself.control())?;
    let ctx = ActorContext::new(myself.clone(), system.clone());
    let exit = ExitGuard {
        cell: cell.clone(),
        system: system.clone(),
        finished: false,
    };
    let task = system.runtime().spawn(run(actor, factory, ctx, exit));
    cell.set_abort_handle(task.abort_handle());
    Ok(myself)
}

/// How the message loop ended.
enum LoopExit {
    Stop(ExitReason),
    Restart,
}

async fn run<A, F>(
    mut actor: A,
    mut factory: Option<F>,
    mut ctx: ActorContext<A::Message>,
    exit: ExitGuard<A::Message>,
) where
    A: Actor,
    F: FnMut() -> A + Send + 'static,
{
    let cell = &*exit.cell;
    tracing::debug!(actor = %cell.id, name = ?cell.name, "actor started");
    let reason = loop {
        cell.set_state(ActorState::Starting);
        match AssertUnwindSafe(actor.pre_start(&mut ctx))
            .catch_unwind()
            .await
        {
            Err(panic) => break exit.panicked(panic),
            Ok(Err(error)) => break ExitReason::Error(format!("pre_start failed: {error}")),
            Ok(Ok(())) => {}
        }
        cell.set_state(ActorState::Running);
        let loop_exit = match AssertUnwindSafe(serve(&mut actor, &mut ctx, cell))
            .catch_unwind()
            .await
        {
            Ok(loop_exit) => loop_exit,
            Err(panic) => LoopExit::Stop(exit.panicked(panic)),
        };
        let restarting = matches!(loop_exit, LoopExit::Restart);
        if restarting {
            cell.set_state(ActorState::Restarting);
        } else {
            cell.mailbox.close();
            cell.set_state(ActorState::Stopping);
        }
        let mut reason = match loop_exit {
            LoopExit::Stop(reason) => reason,
            LoopExit::Restart => ExitReason::Normal,
        };
        match AssertUnwindSafe(actor.post_stop(&ctx)).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(actor = %cell.id, %error, "post_stop failed"),
            Err(panic) => {
                let panic = exit.panicked(panic);
                if reason.is_normal() {
                    reason = panic;
                }
            }
        }
        if !restarting {
            break reason;
        }
        let Some(make) = factory.as_mut() else {
            break ExitReason::Error(
                "restart requested but the actor was spawned without a factory; \
                 spawn it with spawn_with_factory to allow restarts"
                    .into(),
            );
        };
        match std::panic::catch_unwind(AssertUnwindSafe(make)) {
            Ok(fresh) => {
                actor = fresh;
                ctx.system().metrics().restarted();
                tracing::debug!(actor = %cell.id, "actor restarted");
            }
            Err(panic) => break exit.panicked(panic),
        }
    };
    let handled = ctx.handled;
    drop(ctx);
    drop(actor);
    exit.finish(reason, handled);
}

/// The message loop: system signals first, then user messages, until a stop
/// or restart is decided.
async fn serve<A: Actor>(
    actor: &mut A,
    ctx: &mut ActorContext<A::Message>,
    cell: &ActorCell<A::Message>,
) -> LoopExit {
    loop {
        let received = match cell.mailbox.try_recv() {
            Some(received) => received,
            None => {
                let handled = std::mem::take(&mut ctx.handled);
                ctx.system().metrics().messages_handled(handled);
                cell.mailbox.recv().await
            }
        };
        let message = match received {
            Received::Item(Delivery::Tell(message)) => message,
            Received::Item(Delivery::Envelope(envelope)) => {
                if envelope.is_expired() {
                    cell.dead_letter(Delivery::Envelope(envelope), DeadLetterReason::Expired);
                    continue;
                }
                envelope.payload
            }
            Received::Signal(SystemSignal::Stop) => return LoopExit::Stop(ExitReason::Normal),
            Received::Signal(SystemSignal::Shutdown) => {
                return LoopExit::Stop(ExitReason::Shutdown);
            }
        };
        ctx.handled += 1;
        if let Err(error) = actor.handle_message(message, ctx).await {
            let text = error.to_string();
            match actor.on_error(error, ctx).await {
                ErrorAction::Resume => {}
                ErrorAction::Restart => return LoopExit::Restart,
                ErrorAction::Stop => return LoopExit::Stop(ExitReason::Error(text)),
                ErrorAction::Escalate => return LoopExit::Stop(ExitReason::Escalated(text)),
            }
        }
        if ctx.stop_requested() {
            return LoopExit::Stop(ExitReason::Normal);
        }
    }
}

/// Accounts for an actor's end on every path: a normal finish, or the task
/// being dropped (killed by `abort`, or its runtime shutting down).
struct ExitGuard<M: Message> {
    cell: Arc<ActorCell<M>>,
    system: ActorSystem,
    finished: bool,
}

impl<M: Message> ExitGuard<M> {
    fn panicked(&self, payload: Box<dyn std::any::Any + Send>) -> ExitReason {
        let text = panic_text(payload);
        tracing::warn!(actor = %self.cell.id, panic = %text, "actor panicked");
        self.system.metrics().panic_caught();
        ExitReason::Panic(text)
    }

    fn finish(mut self, reason: ExitReason, handled: u64) {
        self.finished = true;
        self.system.metrics().messages_handled(handled);
        self.conclude(reason);
    }

    fn conclude(&self, reason: ExitReason) {
        let dead = match reason {
            ExitReason::Killed => DeadLetterReason::ActorKilled,
            _ => DeadLetterReason::ActorStopped,
        };
        self.cell.close_and_drain(dead);
        tracing::debug!(actor = %self.cell.id, %reason, "actor stopped");
        self.cell.publish_exit(reason);
        self.system.deregister(self.cell.id);
    }
}

impl<M: Message> Drop for ExitGuard<M> {
    fn drop(&mut self) {
        if !self.finished {
            self.conclude(ExitReason::Killed);
        }
    }
}
