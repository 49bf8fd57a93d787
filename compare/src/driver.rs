//! Runs one workload for one framework on a fresh runtime, driven from a task
//! on that runtime's workers (never from `block_on` on the main thread, which
//! makes every tokio-based crate look far slower than it is).

use std::future::Future;

use serde::Serialize;

use crate::frameworks::{
    actix_impl::Actix, airssys::Airssys, kameo_impl::Kameo, ractor_impl::Ractor,
    raw_tokio::RawTokio,
};
use crate::workload::{Framework, Sample, Sizes, Workload, run};

/// The runtime shape a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Flavor {
    /// tokio multi-thread runtime with 2 workers (this machine's cores).
    MultiThread,
    /// One thread: tokio's current-thread runtime, or actix's own `System`.
    CurrentThread,
}

impl Flavor {
    pub const ALL: [Flavor; 2] = [Flavor::MultiThread, Flavor::CurrentThread];

    pub fn label(self) -> &'static str {
        match self {
            Flavor::MultiThread => "multi-thread ×2",
            Flavor::CurrentThread => "current-thread",
        }
    }
}

/// The compared implementations, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Contender {
    Airssys,
    Ractor,
    Kameo,
    Actix,
    RawTokio,
}

impl Contender {
    pub const ALL: [Contender; 5] = [
        Contender::Airssys,
        Contender::Ractor,
        Contender::Kameo,
        Contender::Actix,
        Contender::RawTokio,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contender::Airssys => Airssys::NAME,
            Contender::Ractor => Ractor::NAME,
            Contender::Kameo => Kameo::NAME,
            Contender::Actix => Actix::NAME,
            Contender::RawTokio => RawTokio::NAME,
        }
    }

    /// Whether this contender can run on `flavor` (actix has no multi-thread mode).
    pub fn runs_on(self, flavor: Flavor) -> bool {
        !(self == Contender::Actix && flavor == Flavor::MultiThread)
    }

    /// Measures `workload` once. Panics if the implementation skipped work.
    pub fn measure(self, flavor: Flavor, workload: Workload, sizes: Sizes) -> Sample {
        match self {
            Contender::Airssys => on_tokio::<Airssys>(flavor, workload, sizes),
            Contender::Ractor => on_tokio::<Ractor>(flavor, workload, sizes),
            Contender::Kameo => on_tokio::<Kameo>(flavor, workload, sizes),
            Contender::RawTokio => on_tokio::<RawTokio>(flavor, workload, sizes),
            Contender::Actix => {
                assert_eq!(
                    flavor,
                    Flavor::CurrentThread,
                    "actix runs only on its single-threaded System"
                );
                actix::System::new().block_on(run::<Actix>(workload, sizes))
            }
        }
    }
}

fn on_tokio<F: Framework + 'static>(flavor: Flavor, workload: Workload, sizes: Sizes) -> Sample {
    on_runtime(flavor, run::<F>(workload, sizes))
}

/// Runs `work` on a fresh tokio runtime of `flavor`, as a task on its
/// workers; a panic in `work` is re-raised here.
pub(crate) fn on_runtime(
    flavor: Flavor,
    work: impl Future<Output = Sample> + Send + 'static,
) -> Sample {
    let runtime = match flavor {
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    let sample = runtime.block_on(async move {
        match tokio::spawn(work).await {
            Ok(sample) => sample,
            Err(failure) => std::panic::resume_unwind(failure.into_panic()),
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    sample
}
