//! Bytes of live heap per idle actor, from a counting global allocator.
//!
//! Spawns 100,000 actors that never receive a message and divides the live
//! heap growth by their number; a raw tokio task holding a bounded mpsc
//! receiver is measured the same way as the floor. Run with
//! `cargo bench --bench idle_memory`.

use std::convert::Infallible;
use std::time::Duration;

#[path = "../tests/support/counting.rs"]
mod counting;

use airssys_rt::actor::ActorState;
use airssys_rt::prelude::*;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const ACTORS: usize = 100_000;

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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::spawn(async {
            let system = ActorSystem::new(SystemConfig::default()).expect("system");
            // Warm up the registry map and runtime structures.
            let warm: Vec<_> = (0..ACTORS)
                .map(|_| system.spawn(Idle).expect("spawn"))
                .collect();
            for a in &warm {
                a.stop();
            }
            drop(warm);
            system.all_stopped().await;
            tokio::task::yield_now().await;

            let before = counting::live();
            let actors: Vec<_> = (0..ACTORS)
                .map(|_| system.spawn(Idle).expect("spawn"))
                .collect();
            while actors.iter().any(|a| a.state() != ActorState::Running) {
                tokio::task::yield_now().await;
            }
            let per_actor = (counting::live() - before) as f64 / ACTORS as f64;
            println!("airssys-rt idle actor: {per_actor:.0} B live heap per actor");
            system.shutdown(Duration::from_secs(30)).await;
            drop(actors);

            let before = counting::live();
            let mut senders = Vec::with_capacity(ACTORS);
            for _ in 0..ACTORS {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(32);
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                senders.push(tx);
            }
            // Plain tasks report no state: give them time to reach their first park.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let per_task = (counting::live() - before) as f64 / ACTORS as f64;
            println!("raw tokio task + bounded mpsc: {per_task:.0} B live heap per task");
            println!("ratio airssys-rt / raw tokio: {:.2}", per_actor / per_task);
        })
        .await
        .expect("bench task");
    });
}
