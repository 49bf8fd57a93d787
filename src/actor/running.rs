//! Which actor the current thread is running: set around every poll of an
//! actor's lifecycle, so that an `ask` from inside a handler can see that
//! it asks the very actor that would have to answer — a certain deadlock —
//! and fail at once ([`AskError::SelfAsk`](crate::system::AskError::SelfAsk)).
//! Costs a thread-local write and restore per poll of an actor's task, and
//! one thread-local read per `ask`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::util::ActorId;

thread_local! {
    /// The raw id of the actor whose task this thread is polling (0: none).
    static RUNNING: Cell<u64> = const { Cell::new(0) };
}

/// Whether the current thread is running `actor` (inside one of its hooks).
#[inline]
pub(crate) fn is_running(actor: ActorId) -> bool {
    RUNNING.with(Cell::get) == actor.as_u64()
}

pin_project_lite::pin_project! {
    /// An actor's lifecycle future, marked as that actor while polled.
    pub(crate) struct Running<F> {
        actor: u64,
        #[pin]
        lifecycle: F,
    }
}

impl<F> Running<F> {
    pub(crate) fn new(actor: ActorId, lifecycle: F) -> Self {
        Self {
            actor: actor.as_u64(),
            lifecycle,
        }
    }
}

impl<F: Future> Future for Running<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(RUNNING.with(|running| running.replace(*this.actor)));
        this.lifecycle.poll(cx)
    }
}

/// Puts back what the thread ran before, however the poll ends.
struct Restore(u64);

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        RUNNING.with(|running| running.set(self.0));
    }
}
