//! The one thread that starts child processes.
//!
//! Every child asks the kernel to kill it when its parent dies
//! (`PR_SET_PDEATHSIG`), so a program cannot outlive a host that exits or is
//! killed. The kernel ties that signal to the *thread* that forked the child,
//! not the process: a child forked from one of tokio's blocking threads (which
//! exit after idling) or from a worker that later retires would be killed
//! early. So children are forked here, on a thread that is started once and
//! lives as long as the process. It only forks: the files a start needs are
//! opened beforehand on the blocking pool, so a hung file system cannot
//! hold it.

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the launcher thread, inside the current tokio runtime's
/// context (so a `tokio::process::Command` spawned there is reaped by this
/// runtime), and returns its result.
pub(super) async fn run<T, F>(job: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        // Nobody waits any more: `T` is dropped here (a child is killed by
        // its own guards).
        let _ = done.send(job());
    });
    launcher()?.send(job).map_err(|_| gone())?;
    result.await.map_err(|_| gone())
}

fn launcher() -> io::Result<&'static Sender<Job>> {
    static LAUNCHER: OnceLock<Sender<Job>> = OnceLock::new();
    if let Some(sender) = LAUNCHER.get() {
        return Ok(sender);
    }
    let (sender, jobs) = channel::<Job>();
    std::thread::Builder::new()
        .name("airssys-osl-launcher".into())
        .spawn(move || {
            for job in jobs {
                // A job that panics fails only its own caller.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })?;
    // Two first callers may race: the loser's thread ends when its sender
    // (dropped here) goes.
    Ok(LAUNCHER.get_or_init(|| sender))
}

fn gone() -> io::Error {
    io::Error::other("the process launcher thread is gone")
}
