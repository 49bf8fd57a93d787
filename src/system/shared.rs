//! The parts of a system that each actor cell reaches without holding the
//! whole [`ActorSystem`](super::ActorSystem): the dead-letter office, the
//! ask-timeout registry, the supervision event bus and the runtime the
//! system's tasks run on.

use std::sync::Arc;

use tokio::runtime::Handle;

use crate::mailbox::DeadLetterOffice;
use crate::supervisor::SupervisionBus;
use crate::util::RuntimeMetrics;
use crate::util::deadlines::Deadlines;

pub(crate) struct SystemShared {
    pub(crate) dead_letters: DeadLetterOffice,
    pub(crate) deadlines: Arc<Deadlines>,
    pub(crate) supervision: Arc<SupervisionBus>,
    /// The runtime the system's actors run on, for tasks started from an
    /// `ActorRef` (streams, watches).
    pub(crate) runtime: Handle,
}

impl SystemShared {
    pub(crate) fn new(
        dead_letters_kept: usize,
        metrics: Arc<RuntimeMetrics>,
        runtime: Handle,
    ) -> Self {
        Self {
            dead_letters: DeadLetterOffice::with_metrics(dead_letters_kept, metrics),
            deadlines: Arc::new(Deadlines::new(runtime.clone())),
            supervision: Arc::default(),
            runtime,
        }
    }
}

impl Drop for SystemShared {
    fn drop(&mut self) {
        self.deadlines.close();
    }
}
