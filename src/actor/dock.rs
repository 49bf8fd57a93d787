//! Task reuse across restarts. When a supervised worker's instance exits,
//! its tokio task waits at a [`Dock`] for the replacement its supervisor
//! starts straight away, and runs it — instead of the old task ending and a
//! new one being spawned, which costs an aligned allocation, a free and the
//! scheduler's bookkeeping each way.
//!
//! The replacement is still a new actor, as OTP requires: a new id, cell and
//! mailbox, and its own `pre_start` (run by the supervisor, like every
//! child start). Only the task that carries it is reused. The supervisor
//! holds a [`DockKey`] for each running instance; a key dropped unused (no
//! restart, a restart after a backoff delay, a failed start) lets the
//! waiting task end.

use std::any::Any;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::task::AbortHandle;

use super::Actor;
use super::cell::ActorCell;
use super::spawn::{Prepared, Rebuild};
use crate::message::Message;

/// Where one worker task waits between instances.
pub(crate) struct Dock<A: Actor> {
    state: Mutex<DockState<A>>,
}

struct DockState<A: Actor> {
    /// Which instance the task runs: a key only acts for its own instance.
    generation: u64,
    berth: Berth<A>,
}

enum Berth<A: Actor> {
    /// The task runs an instance.
    Serving,
    /// The instance has exited; the task waits for a replacement.
    Waiting {
        /// The task's abort handle, taken from the exited instance's cell
        /// (killing that stale handle must not kill the replacement).
        abort: Option<AbortHandle>,
        waker: Option<Waker>,
    },
    /// A replacement, started and waiting to be run.
    Handed(Prepared<A, Docked<A>>),
    /// No replacement will come: the task ends after its instance.
    Closed,
    /// The task has ended (finished, killed, or its runtime shut down).
    Gone,
}

impl<A: Actor> Dock<A> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(DockState {
                generation: 0,
                berth: Berth::Serving,
            }),
        })
    }

    /// The key to the instance the task runs now.
    pub(crate) fn key(self: &Arc<Self>) -> DockKey {
        DockKey {
            generation: self.state.lock().generation,
            dock: Some(self.clone()),
        }
    }

    /// The exiting instance's task starts waiting (unless its key was
    /// dropped). Called before the instance's watcher hears of the exit,
    /// so a supervisor that restarts it always finds the task waiting.
    fn park<M: Message>(&self, cell: &ActorCell<M>) {
        let mut state = self.state.lock();
        if matches!(state.berth, Berth::Serving) {
            state.berth = Berth::Waiting {
                abort: cell.take_abort_handle(),
                waker: None,
            };
        }
    }

    /// Gives `replacement` to the task waiting for the instance `key`
    /// names. Returns the replacement if the task is not waiting for it
    /// (it was killed meanwhile, or the key is stale): start it in a task
    /// of its own.
    pub(crate) fn hand(
        &self,
        key: DockKey,
        replacement: Prepared<A, Docked<A>>,
    ) -> Result<(), Prepared<A, Docked<A>>> {
        let mut state = self.state.lock();
        if state.generation != key.generation {
            return Err(replacement);
        }
        let Berth::Waiting { abort, waker } = &mut state.berth else {
            return Err(replacement);
        };
        if let Some(abort) = abort.take() {
            replacement.adopt_task(abort);
        }
        let waker = waker.take();
        state.generation += 1;
        state.berth = Berth::Handed(replacement);
        drop(state);
        // Used: the key must not close the dock when it goes.
        let mut key = key;
        key.dock = None;
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The next instance to run, or `None` when the task should end. The
    /// task is `Serving` again when this returns an instance, `Gone` when
    /// it returns none.
    pub(crate) fn poll_successor(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Prepared<A, Docked<A>>>> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut state.berth, Berth::Gone) {
            Berth::Waiting { abort, mut waker } => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    waker = Some(cx.waker().clone());
                }
                state.berth = Berth::Waiting { abort, waker };
                Poll::Pending
            }
            Berth::Handed(next) => {
                state.berth = Berth::Serving;
                Poll::Ready(Some(next))
            }
            Berth::Serving | Berth::Closed | Berth::Gone => Poll::Ready(None),
        }
    }

    /// The task has ended: nothing can be handed to it any more. A
    /// replacement handed but never run is dropped here, outside the lock,
    /// which accounts for it as killed.
    pub(crate) fn depart(&self) {
        let berth = std::mem::replace(&mut self.state.lock().berth, Berth::Gone);
        drop(berth);
    }
}

/// What a supervisor's key can do without knowing the actor type.
trait Berthing: Any + Send + Sync {
    /// The key for instance `generation` was dropped unused.
    fn close(&self, generation: u64);
}

impl<A: Actor> Berthing for Dock<A> {
    fn close(&self, generation: u64) {
        let mut state = self.state.lock();
        if state.generation != generation {
            return;
        }
        match &mut state.berth {
            Berth::Serving => state.berth = Berth::Closed,
            Berth::Waiting { waker, .. } => {
                let waker = waker.take();
                state.berth = Berth::Closed;
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Berth::Handed(_) | Berth::Closed | Berth::Gone => {}
        }
    }
}

/// A supervisor's claim on the task of one running worker instance: used to
/// run that child's replacement in the same task. Dropped unused, it lets
/// the task end once the instance has.
pub(crate) struct DockKey {
    dock: Option<Arc<dyn Berthing>>,
    generation: u64,
}

impl DockKey {
    /// The dock, if it belongs to an `A` task.
    pub(crate) fn dock<A: Actor>(&self) -> Option<Arc<Dock<A>>> {
        let dock: Arc<dyn Any + Send + Sync> = self.dock.clone()?;
        dock.downcast::<Dock<A>>().ok()
    }
}

impl Drop for DockKey {
    fn drop(&mut self) {
        if let Some(dock) = self.dock.take() {
            dock.close(self.generation);
        }
    }
}

/// The factory parameter of a docked worker's task: no rebuilding in place
/// (its supervisor starts replacements), and a dock to wait at on exit.
pub(crate) struct Docked<A: Actor>(pub(crate) Arc<Dock<A>>);

impl<A: Actor> Rebuild<A> for Docked<A> {
    fn rebuild(&mut self) -> Option<A> {
        None
    }

    fn before_exit<M: Message>(&mut self, cell: &ActorCell<M>) {
        self.0.park(cell);
    }
}
