//! Task reuse across restarts. When a supervised worker's instance exits,
//! its tokio task waits at a [`Dock`] for the replacement its supervisor
//! starts straight away, and runs it — instead of the old task ending and a
//! new one being spawned, which costs an aligned allocation, a free and the
//! scheduler's bookkeeping each way.
//!
//! The replacement is still a new actor, as OTP requires: a new id, cell and
//! mailbox, and its own `pre_start` (run by the supervisor, like every
//! child start). Only the task that carries it is reused. The supervisor
//! holds a [`DockKey`] for each running instance and hands a replacement
//! over only after that instance has exited, moving the task's abort handle
//! from the old instance to the new one, so that killing the old one can no
//! longer reach the task. A key dropped unused (no restart, a restart after
//! a backoff delay, a failed start) lets the task end.

use std::any::Any;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::task::AbortHandle;

use super::Actor;
use super::cell::ActorControl;
use super::spawn::{NoFactory, Prepared};

/// A replacement instance, started and ready to run.
pub(crate) type Replacement<A> = Prepared<A, NoFactory>;

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
    /// The task runs an instance (or is finishing one that has exited).
    Serving,
    /// The task has finished its instance and waits for a replacement.
    Waiting(Option<Waker>),
    /// A replacement, to run once the task has finished its instance.
    Handed(Replacement<A>),
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
            task: None,
        }
    }

    /// Gives `replacement` to the task of the exited instance `key` names.
    /// Returns the replacement if that task cannot take it (it was killed
    /// meanwhile — the kill took its abort handle — or the key is stale):
    /// start it in a task of its own.
    pub(crate) fn hand(
        &self,
        mut key: DockKey,
        replacement: Replacement<A>,
    ) -> Result<(), Replacement<A>> {
        let mut state = self.state.lock();
        if state.generation != key.generation {
            return Err(replacement);
        }
        // No abort handle: a kill of the exited instance took it, and the
        // task may be aborting — it must not carry the replacement.
        let Some(task) = key.task.take() else {
            return Err(replacement);
        };
        let waker = match &mut state.berth {
            Berth::Serving => None,
            Berth::Waiting(waker) => waker.take(),
            Berth::Handed(_) | Berth::Closed | Berth::Gone => return Err(replacement),
        };
        replacement.adopt_task(task);
        state.generation += 1;
        state.berth = Berth::Handed(replacement);
        drop(state);
        // Used: the key must not close the dock when it goes.
        key.dock = None;
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The next instance to run once the task has finished its current
    /// one, or `None` when the task should end. The task is `Serving` again
    /// when this returns an instance, `Gone` when it returns none.
    pub(crate) fn poll_successor(&self, cx: &mut Context<'_>) -> Poll<Option<Replacement<A>>> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut state.berth, Berth::Gone) {
            Berth::Serving => {
                state.berth = Berth::Waiting(Some(cx.waker().clone()));
                Poll::Pending
            }
            Berth::Waiting(mut waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    waker = Some(cx.waker().clone());
                }
                state.berth = Berth::Waiting(waker);
                Poll::Pending
            }
            Berth::Handed(next) => {
                state.berth = Berth::Serving;
                Poll::Ready(Some(next))
            }
            Berth::Closed | Berth::Gone => Poll::Ready(None),
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
            Berth::Waiting(waker) => {
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
    /// The task's abort handle, taken from the instance once it has exited.
    task: Option<AbortHandle>,
}

impl DockKey {
    /// Takes the task's abort handle from `instance`, which has exited: from
    /// now on killing that instance cannot reach the task, and a
    /// replacement handed to the task takes the handle over.
    pub(crate) fn take_task_from(&mut self, instance: &dyn ActorControl) {
        self.task = instance.take_abort_handle();
    }

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
