//! Helpers shared by the criterion benches: the runtime every bench uses and
//! the way it drives a measurement from a runtime worker.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;

/// A 2-worker multi-thread runtime, as on this machine's 2 cores.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `work(iters)` inside a spawned task and returns the time it measured.
pub fn on_worker<F, Fut>(rt: &Runtime, iters: u64, work: F) -> Duration
where
    F: FnOnce(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(async move { tokio::spawn(work(iters)).await.expect("bench task") })
}
