//! Live heap per idle actor, from a counting global allocator (its own test
//! binary, so no other test allocates concurrently).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicIsize, Ordering};

use airssys_rt::actor::ActorState;
use airssys_rt::prelude::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Idle;

impl Actor for Idle {
    type Message = u64;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Infallible> {
        Ok(())
    }
}

#[tokio::test]
async fn an_idle_actor_costs_less_than_an_erlang_process() {
    const ACTORS: usize = 10_000;
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let mut actors = Vec::with_capacity(ACTORS);
    // Grow the registry once, so the measurement sees only per-actor memory.
    for _ in 0..ACTORS {
        actors.push(system.spawn(Idle).unwrap());
    }
    for actor in actors.drain(..) {
        actor.stop();
    }
    system.all_stopped().await;

    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..ACTORS {
        actors.push(system.spawn(Idle).unwrap());
    }
    // Every task has run to its first wait for a message.
    while actors.iter().any(|a| a.state() != ActorState::Running) {
        tokio::task::yield_now().await;
    }
    tokio::task::yield_now().await;
    let per_actor = (LIVE.load(Ordering::SeqCst) - before) as usize / ACTORS;
    println!("live heap per idle actor: {per_actor} B");
    assert!(per_actor <= 1_536, "an idle actor takes {per_actor} B");
    system.shutdown(std::time::Duration::from_secs(30)).await;
}
