//! [`Registry`]: the system's table of live actors, so shutdown can reach
//! every one. A slab: registering and removing are O(1) with no hashing, and
//! growth only copies pointers.

use std::sync::Arc;

use crate::actor::cell::ActorControl;
use crate::util::ActorId;

/// Where an actor sits in the registry; handed back to remove it. (`u32`
/// keeps the guard that holds it small; four billion live actors is beyond
/// any machine's memory.)
pub(crate) type Slot = u32;

#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Arc<dyn ActorControl>>>,
    free: Vec<Slot>,
    live: usize,
    /// Calls of `ActorSystem::all_stopped` waiting for the table to empty:
    /// with none, the last exit wakes nobody (the wake-up takes a lock and
    /// two atomic updates).
    pub(crate) awaiting_empty: usize,
}

impl Registry {
    pub(crate) fn insert(&mut self, actor: Arc<dyn ActorControl>) -> Slot {
        self.live += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(actor);
                slot
            }
            None => {
                self.slots.push(Some(actor));
                (self.slots.len() - 1) as Slot
            }
        }
    }

    /// Removes the actor in `slot`; `false` if the slot was already empty.
    pub(crate) fn remove(&mut self, slot: Slot) -> bool {
        match self.slots.get_mut(slot as usize).and_then(Option::take) {
            Some(_) => {
                self.free.push(slot);
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<dyn ActorControl>> {
        self.slots.iter().flatten().cloned().collect()
    }

    /// Up to `limit` actors from position `offset` (counting live ones).
    pub(crate) fn page(&self, offset: usize, limit: usize) -> Vec<Arc<dyn ActorControl>> {
        self.slots
            .iter()
            .flatten()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The live actor `id` (a scan: for operator tools, not the message
    /// path).
    pub(crate) fn find(&self, id: ActorId) -> Option<Arc<dyn ActorControl>> {
        self.slots.iter().flatten().find(|a| a.id() == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::SystemSignal;

    struct Dummy;
    impl ActorControl for Dummy {
        fn signal(&self, _: SystemSignal) -> bool {
            true
        }
        fn kill(&self) {}
        fn is_closed(&self) -> bool {
            false
        }
        fn id(&self) -> crate::util::ActorId {
            crate::util::ActorId::next()
        }
        fn is_supervised(&self) -> bool {
            false
        }
        fn wait_for_exit(
            &self,
        ) -> std::pin::Pin<Box<dyn Future<Output = crate::actor::ExitReason> + Send + '_>> {
            Box::pin(std::future::pending())
        }
        fn take_abort_handle(&self) -> Option<tokio::task::AbortHandle> {
            None
        }
        fn summary(&self) -> crate::system::ActorSummary {
            unreachable!("not summarised in these tests")
        }
        fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
            self
        }
    }

    #[test]
    fn slots_are_reused_and_counts_stay_exact() {
        let mut registry = Registry::default();
        let a = registry.insert(Arc::new(Dummy));
        let b = registry.insert(Arc::new(Dummy));
        assert_eq!(registry.len(), 2);
        assert!(registry.remove(a));
        assert!(!registry.remove(a), "a second removal is a no-op");
        let c = registry.insert(Arc::new(Dummy));
        assert_eq!(c, a, "the freed slot is reused");
        assert_eq!(registry.snapshot().len(), 2);
        assert!(registry.remove(b) && registry.remove(c));
        assert!(registry.is_empty());
    }
}
