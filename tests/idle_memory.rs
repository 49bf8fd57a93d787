//! Live heap per idle actor, from a counting global allocator (its own test
//! binary, so no other test allocates concurrently).

use std::convert::Infallible;

#[path = "support/counting.rs"]
mod counting;

use airssys_rt::actor::ActorState;
use airssys_rt::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// A counter, like most small actors: a word of state.
struct Idle(u64);

impl Actor for Idle {
    type Message = u64;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        n: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Infallible> {
        self.0 += n;
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
        actors.push(system.spawn(Idle(0)).unwrap());
    }
    for actor in actors.drain(..) {
        actor.stop();
    }
    system.all_stopped().await;

    let before = counting::live();
    for _ in 0..ACTORS {
        actors.push(system.spawn(Idle(0)).unwrap());
    }
    // Every task has run to its first wait for a message.
    while actors.iter().any(|a| a.state() != ActorState::Running) {
        tokio::task::yield_now().await;
    }
    tokio::task::yield_now().await;
    let per_actor = (counting::live() - before) as usize / ACTORS;
    println!("live heap per idle actor: {per_actor} B");
    assert!(per_actor <= 1_536, "an idle actor takes {per_actor} B");
    // The smallest peer, actix, measured 754 B per idle actor in compare/.
    // The task is allocated in 128-byte steps, so a few bytes more in the
    // actor task's future cost every actor 128: this catches that.
    assert!(
        per_actor < 754,
        "an idle actor takes {per_actor} B, more than an actix actor"
    );
    system.shutdown(std::time::Duration::from_secs(30)).await;
}
