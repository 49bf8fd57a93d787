//! The bonds between actors, kept in each actor's cell: whom it watches,
//! who watches it, whom it is linked to, whether it traps exits. The public
//! faces are [`watch`](super::watch) and [`link`](super::link); this module
//! owns the table and the protocol that makes them exact.
//!
//! The table is allocated the first time an actor takes part in a bond: an
//! actor with none pays one null pointer, and one load when it exits.
//!
//! **Exactly once.** A watch is entered in two tables: the watcher's, with
//! the function that makes its message, and the target's. The watcher's
//! entry decides. A `Down` is delivered by whoever removes that entry
//! because the target went down, and by no one once the entry has gone
//! another way (unwatched, or the watcher exited first). So a watch
//! delivers at most once; and at least once, because the target's exit
//! visits every entry in its table, and a watch that finds the target
//! already exited delivers `NoProc` itself. A link is entered in both
//! actors' tables the same way, and an exit signal is acted on only by the
//! side that still held the link when it arrived.
//!
//! **Locks.** One table at a time, and no call out (to another actor, or
//! into user code) while holding it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use parking_lot::Mutex;

use super::cell::{ActorCell, ActorControl};
use super::link::ExitSignal;
use super::watch::{Down, DownReason, WatchRef};
use super::{ActorRef, ExitReason};
use crate::message::Message;
use crate::system::{LinkError, SendErrorKind};
use crate::util::ActorId;

/// Makes a watcher's message from the `Down` of the actor it watched.
pub(crate) type IntoDown<M> = Box<dyn FnOnce(Down) -> M + Send>;

/// Makes a trapping actor's message from an exit signal.
pub(crate) type IntoExitSignal<M> = Arc<dyn Fn(ExitSignal) -> M + Send + Sync>;

/// Watch numbers, unique in the process.
static NEXT_WATCH: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_watch_id() -> u64 {
    NEXT_WATCH.fetch_add(1, Ordering::Relaxed)
}

/// One actor's bonds.
pub(crate) struct Bonds<M> {
    /// The final exit reason, once the actor has exited: bonds made from
    /// then on find it gone.
    exited: Option<ExitReason>,
    /// Actors this one watches, and how to make each `Down` message.
    watching: Vec<Watching<M>>,
    /// Actors watching this one, by watch.
    watchers: Vec<(u64, Arc<dyn Bonded>)>,
    /// Actors linked to this one.
    links: Vec<Arc<dyn Bonded>>,
    /// Set while the actor traps exits.
    trap: Option<IntoExitSignal<M>>,
    /// How this actor exits, decided by a linked actor's exit signal (which
    /// then kills it).
    doomed: Option<ExitReason>,
}

impl<M> Default for Bonds<M> {
    fn default() -> Self {
        Self {
            exited: None,
            watching: Vec::new(),
            watchers: Vec::new(),
            links: Vec::new(),
            trap: None,
            doomed: None,
        }
    }
}

struct Watching<M> {
    watch: WatchRef,
    target: Arc<dyn Bonded>,
    into_message: IntoDown<M>,
}

/// What an actor's bonds table offers other actors, whatever its message
/// type.
pub(crate) trait Bonded: Send + Sync {
    fn bonded_id(&self) -> ActorId;
    /// Enters a watch of this actor; `Err` if it has exited.
    fn add_watcher(&self, watch: u64, watcher: Arc<dyn Bonded>) -> Result<(), ()>;
    fn remove_watcher(&self, watch: u64);
    /// The actor `down.actor` that this one watches went down: delivers the
    /// watch's message if the watch is still set.
    fn watched_down(self: Arc<Self>, down: Down);
    /// Enters a link to `peer`; `Err` if this actor has exited.
    fn add_link(&self, peer: Arc<dyn Bonded>) -> Result<(), ()>;
    fn remove_link(&self, peer: ActorId);
    /// The linked actor `from` exited with `reason`: applies Erlang's rules
    /// if the link is still there.
    fn linked_exit(self: Arc<Self>, from: ActorId, reason: &ExitReason);
}

/// The bonds an exiting actor leaves, to be told of its exit.
pub(crate) struct Severed<M> {
    watching: Vec<Watching<M>>,
    watchers: Vec<(u64, Arc<dyn Bonded>)>,
    links: Vec<Arc<dyn Bonded>>,
}

impl<M> Severed<M> {
    /// Tells everyone bonded to `actor` that it exited with `reason`.
    pub(crate) fn notify(self, actor: ActorId, reason: &ExitReason) {
        for watching in self.watching {
            watching.target.remove_watcher(watching.watch.id());
        }
        for (watch, watcher) in self.watchers {
            let down = Down {
                actor,
                watch: WatchRef::new(watch, actor),
                reason: DownReason::Exited(reason.clone()),
            };
            watcher.watched_down(down);
        }
        for peer in self.links {
            peer.linked_exit(actor, reason);
        }
    }
}

impl<M: Message> ActorCell<M> {
    /// The table, made if need be, to enter a bond in.
    ///
    /// Whether the actor has exited is then read under its lock as
    /// `gone()`: the recorded exit, or a closed mailbox. The fence pairs
    /// with the one its exit makes between closing the mailbox and looking
    /// for a table to seal: either the exit finds this table, or this sees
    /// the mailbox closed.
    fn bond_table(&self) -> &Mutex<Bonds<M>> {
        let table = self.bonds.get_or_init(Mutex::default);
        fence(Ordering::SeqCst);
        table
    }

    /// Whether this actor has exited, or is exiting (its mailbox is
    /// closed), as seen with its table locked.
    fn gone(&self, bonds: &Bonds<M>) -> bool {
        bonds.exited.is_some() || self.mailbox.is_closed()
    }

    /// Makes this actor watch `target`.
    pub(crate) fn watch(
        self: &Arc<Self>,
        target: Arc<dyn Bonded>,
        into_message: IntoDown<M>,
    ) -> Result<WatchRef, LinkError> {
        let watch = WatchRef::new(next_watch_id(), target.bonded_id());
        {
            let mut bonds = self.bond_table().lock();
            if self.gone(&bonds) {
                return Err(LinkError::Stopped { actor: self.id });
            }
            bonds.watching.push(Watching {
                watch,
                target: target.clone(),
                into_message,
            });
        }
        if target.add_watcher(watch.id(), self.clone()).is_err() {
            // Already gone: the watch delivers `NoProc` itself (unless it was
            // removed meanwhile).
            self.clone().watched_down(Down {
                actor: watch.target(),
                watch,
                reason: DownReason::NoProc,
            });
        } else if self.gone(&self.bond_table().lock()) {
            // This actor exited while the target's entry was being made, and
            // so may have missed it on its way out.
            target.remove_watcher(watch.id());
        }
        Ok(watch)
    }

    /// Removes a watch this actor set; `true` if its `Down` had not been
    /// delivered (and now never will be).
    pub(crate) fn unwatch(&self, watch: WatchRef) -> bool {
        let Some(bonds) = self.bonds.get() else {
            return false;
        };
        let removed = {
            let mut bonds = bonds.lock();
            let position = bonds.watching.iter().position(|w| w.watch == watch);
            position.map(|i| bonds.watching.swap_remove(i))
        };
        match removed {
            Some(watching) => {
                watching.target.remove_watcher(watch.id());
                true
            }
            None => false,
        }
    }

    /// Links this actor and `peer`.
    pub(crate) fn link(self: &Arc<Self>, peer: Arc<dyn Bonded>) -> Result<(), LinkError> {
        let peer_id = peer.bonded_id();
        if peer_id == self.id {
            return Ok(());
        }
        {
            let mut bonds = self.bond_table().lock();
            if self.gone(&bonds) {
                return Err(LinkError::Stopped { actor: self.id });
            }
            if bonds.links.iter().any(|l| l.bonded_id() == peer_id) {
                return Ok(());
            }
            bonds.links.push(peer.clone());
        }
        if peer.add_link(self.clone()).is_err() {
            // Erlang's `link/1` to a process that is gone: `noproc`, as an
            // error, or as an exit message to an actor that traps exits.
            let (link, trap) = {
                let mut bonds = self.bond_table().lock();
                let position = bonds.links.iter().position(|l| l.bonded_id() == peer_id);
                (
                    position.map(|i| bonds.links.swap_remove(i)),
                    bonds.trap.clone(),
                )
            };
            // Possibly the last reference to the peer's cell: freed unlocked.
            drop(link);
            return match trap {
                Some(into_message) => {
                    let signal = ExitSignal {
                        actor: peer_id,
                        reason: DownReason::NoProc,
                    };
                    self.clone().deliver(into_message(signal));
                    Ok(())
                }
                None => Err(LinkError::NoProc { actor: peer_id }),
            };
        }
        // This actor exited while the peer's entry was being made, and its
        // exit signal may have missed the peer: send it now (the peer acts
        // on it only if it still holds the link). An actor still exiting
        // finds the link in its own table.
        let exited = self.bond_table().lock().exited.clone();
        if let Some(reason) = exited {
            peer.linked_exit(self.id, &reason);
        }
        Ok(())
    }

    /// Removes the link between this actor and `peer`, if any.
    pub(crate) fn unlink(&self, peer: ActorId) {
        let Some(bonds) = self.bonds.get() else {
            return;
        };
        let removed = {
            let mut bonds = bonds.lock();
            let position = bonds.links.iter().position(|l| l.bonded_id() == peer);
            position.map(|i| bonds.links.swap_remove(i))
        };
        if let Some(peer) = removed {
            peer.remove_link(self.id);
        }
    }

    /// Traps exits (turning linked actors' exit signals into messages made
    /// by `into_message`), or stops trapping them with `None`.
    pub(crate) fn trap_exits(&self, into_message: Option<IntoExitSignal<M>>) {
        if into_message.is_none() && self.bonds.get().is_none() {
            return;
        }
        self.bond_table().lock().trap = into_message;
    }

    /// The exit reason this actor leaves with: a linked actor's exit signal
    /// overrides the one its task reports (which is then only the kill).
    pub(crate) fn exit_reason_with_links(&self, reason: ExitReason) -> ExitReason {
        match self.bonds.get() {
            Some(bonds) => bonds.lock().doomed.take().unwrap_or(reason),
            None => reason,
        }
    }

    /// Marks this actor exited with `reason` and takes the bonds to tell of
    /// it. Called once its mailbox is closed and after a `SeqCst` fence
    /// (see [`bond_table`](Self::bond_table)): from here on, new bonds find
    /// it gone.
    pub(crate) fn seal_bonds(&self, reason: &ExitReason) -> Option<Severed<M>> {
        let mut bonds = self.bonds.get()?.lock();
        bonds.exited = Some(reason.clone());
        let trap = bonds.trap.take();
        let severed = Severed {
            watching: std::mem::take(&mut bonds.watching),
            watchers: std::mem::take(&mut bonds.watchers),
            links: std::mem::take(&mut bonds.links),
        };
        drop(bonds);
        // User code: dropped outside the lock.
        drop(trap);
        Some(severed)
    }

    /// Puts a bond's message in this actor's mailbox like any message: a
    /// full `Block` mailbox is waited on (in a task: exits are published
    /// synchronously), a refusal or drop is a dead letter.
    fn deliver(self: Arc<Self>, message: M) {
        let actor = ActorRef::from_cell(self);
        let Err(refused) = actor.try_tell(message) else {
            return;
        };
        if refused.kind() == SendErrorKind::MailboxFull && actor.cell().mailbox.waits_when_full() {
            let runtime = actor.cell().shared.runtime.clone();
            runtime.spawn(async move {
                actor.tell_or_dead_letter(refused.into_message()).await;
            });
        } else {
            actor.dead_letter_refused(refused);
        }
    }
}

impl<M: Message> Bonded for ActorCell<M> {
    fn bonded_id(&self) -> ActorId {
        self.id
    }

    fn add_watcher(&self, watch: u64, watcher: Arc<dyn Bonded>) -> Result<(), ()> {
        let mut bonds = self.bond_table().lock();
        if self.gone(&bonds) {
            return Err(());
        }
        bonds.watchers.push((watch, watcher));
        Ok(())
    }

    fn remove_watcher(&self, watch: u64) {
        let removed = {
            let Some(bonds) = self.bonds.get() else {
                return;
            };
            let mut bonds = bonds.lock();
            let position = bonds.watchers.iter().position(|(id, _)| *id == watch);
            position.map(|i| bonds.watchers.swap_remove(i))
        };
        // The watcher's cell may be the last reference: freed unlocked.
        drop(removed);
    }

    fn watched_down(self: Arc<Self>, down: Down) {
        let watching = {
            let Some(bonds) = self.bonds.get() else {
                return;
            };
            let mut bonds = bonds.lock();
            let position = bonds.watching.iter().position(|w| w.watch == down.watch);
            position.map(|i| bonds.watching.swap_remove(i))
        };
        if let Some(watching) = watching {
            let message = (watching.into_message)(down);
            self.deliver(message);
        }
    }

    fn add_link(&self, peer: Arc<dyn Bonded>) -> Result<(), ()> {
        let mut bonds = self.bond_table().lock();
        if self.gone(&bonds) {
            return Err(());
        }
        let peer_id = peer.bonded_id();
        if !bonds.links.iter().any(|l| l.bonded_id() == peer_id) {
            bonds.links.push(peer);
        }
        Ok(())
    }

    fn remove_link(&self, peer: ActorId) {
        let removed = {
            let Some(bonds) = self.bonds.get() else {
                return;
            };
            let mut bonds = bonds.lock();
            let position = bonds.links.iter().position(|l| l.bonded_id() == peer);
            position.map(|i| bonds.links.swap_remove(i))
        };
        drop(removed);
    }

    fn linked_exit(self: Arc<Self>, from: ActorId, reason: &ExitReason) {
        let (link, trap) = {
            let Some(bonds) = self.bonds.get() else {
                return;
            };
            let mut bonds = bonds.lock();
            let Some(position) = bonds.links.iter().position(|l| l.bonded_id() == from) else {
                // Unlinked meanwhile (or this actor has exited): no signal.
                return;
            };
            let link = bonds.links.swap_remove(position);
            let trap = bonds.trap.clone();
            if trap.is_none() && *reason != ExitReason::Normal && bonds.doomed.is_none() {
                bonds.doomed = Some(ExitReason::Linked {
                    actor: from,
                    reason: Box::new(reason.clone()),
                });
            }
            (link, trap)
        };
        drop(link);
        match trap {
            Some(into_message) => {
                let signal = ExitSignal {
                    actor: from,
                    reason: DownReason::Exited(reason.clone()),
                };
                self.deliver(into_message(signal));
            }
            // A `Normal` exit signal is ignored by an actor not trapping.
            None if *reason == ExitReason::Normal => {}
            // Any other makes it go at once, like a kill (no `post_stop`, as
            // an Erlang process that does not trap exits gets no
            // `terminate`), with the reason set above.
            None => ActorControl::kill(&*self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{ActorSystem, SystemConfig};
    use std::convert::Infallible;

    struct Idle;

    impl crate::actor::Actor for Idle {
        type Message = u64;
        type Error = Infallible;
        async fn handle_message(
            &mut self,
            _: u64,
            _: &mut crate::actor::ActorContext<u64>,
        ) -> Result<(), Infallible> {
            Ok(())
        }
    }

    impl<M: Message> ActorCell<M> {
        /// Entries in the table: (watching, watchers, links).
        fn bond_counts(&self) -> (usize, usize, usize) {
            self.bonds.get().map_or((0, 0, 0), |bonds| {
                let bonds = bonds.lock();
                (
                    bonds.watching.len(),
                    bonds.watchers.len(),
                    bonds.links.len(),
                )
            })
        }
    }

    /// Watchers and linked actors that exit first, or unwatch and unlink,
    /// leave no entry behind in the actor they were bonded to.
    #[tokio::test]
    async fn bonds_that_end_leave_nothing_behind() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let target = system.spawn(Idle).unwrap();
        for round in 0..3 {
            let watcher = system.spawn(Idle).unwrap();
            let watch = watcher.watch(&target, |_| 0).unwrap();
            watcher.link(&target).unwrap();
            assert_eq!(target.cell().bond_counts(), (0, 1, 1));
            assert_eq!(watcher.cell().bond_counts(), (1, 0, 1));
            if round == 0 {
                assert!(watcher.unwatch(watch));
                watcher.unlink(&target);
                assert_eq!(watcher.cell().bond_counts(), (0, 0, 0));
            } else {
                // Stopping normally (no propagation) or killed (the target
                // traps nothing, so it would go too: unlink first).
                watcher.stop();
                watcher.wait_for_exit().await;
            }
            assert_eq!(target.cell().bond_counts(), (0, 0, 0), "round {round}");
        }
        assert!(target.is_alive());
    }

    /// A target that exits leaves nothing in its watchers' tables.
    #[tokio::test(flavor = "current_thread")]
    async fn a_down_clears_the_watchers_entry() {
        let system = ActorSystem::new(SystemConfig::default()).unwrap();
        let watcher = system.spawn(Idle).unwrap();
        let target = system.spawn(Idle).unwrap();
        watcher.watch(&target, |_| 0).unwrap();
        target.stop();
        target.wait_for_exit().await;
        // One thread: the target's task finished its exit (watchers told)
        // before this task resumed.
        assert_eq!(watcher.cell().bond_counts(), (0, 0, 0));
        assert!(!watcher.unwatch(WatchRef::new(0, target.id())));
    }
}
