//! The ticker: one thread per process that keeps the clock for every
//! registry's fresh deadlines.
//!
//! Registering a deadline reads no clock and arms no tokio timer: a tokio
//! timer that is armed makes every park of the runtime read the clock and
//! scan the timer wheel, which cost more than the rest of the deadline
//! (≈280 instructions per ask). Instead, every [`TICK`] this thread reads
//! each busy registry's clock once, gives the deadlines registered since the
//! last tick their instant (that reading plus their timeout: never earlier
//! than asked, at most a tick later), fires those that are due, and hands
//! the few that outlive [`PROMOTE_AFTER_TICKS`] to the registry's tokio
//! watchdog (whose timer lets a paused test clock advance to them).
//!
//! A registry is enlisted by its first deadline and drops out after
//! [`LINGER_TICKS`] without fresh deadlines; with none enlisted the thread
//! sleeps until one is.

use std::sync::{LazyLock, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Deadlines;

/// How often a busy registry's fresh deadlines are stamped and checked; the
/// most a timeout fires late (besides scheduling).
pub(super) const TICK: Duration = Duration::from_millis(2);

/// Ticks after which a deadline still pending moves to the registry's tokio
/// watchdog (≈10 ms).
pub(super) const PROMOTE_AFTER_TICKS: u8 = 5;

/// Ticks without fresh deadlines after which a registry drops out (≈1 s),
/// so that a steady stream of asks does not enlist it again and again.
pub(super) const LINGER_TICKS: u32 = 500;

struct Ticker {
    /// Registries enlisted since the thread last looked, and whether the
    /// thread runs.
    incoming: Mutex<Incoming>,
    wake: Condvar,
}

#[derive(Default)]
struct Incoming {
    registries: Vec<Weak<Deadlines>>,
    running: bool,
}

static TICKER: LazyLock<Ticker> = LazyLock::new(|| Ticker {
    incoming: Mutex::new(Incoming::default()),
    wake: Condvar::new(),
});

/// Adds `registry` to the ticker's round, starting the thread if it does not
/// run yet. Fails if the thread cannot be started, and under Miri (the
/// caller then hands its deadlines to the tokio watchdog directly).
pub(super) fn enlist(registry: Weak<Deadlines>) -> std::io::Result<()> {
    if cfg!(miri) {
        // Miri checks the unsafe core; it does not support parking_lot's
        // futex calls, which a second thread contending the locks makes.
        return Err(std::io::Error::other("no ticker thread under Miri"));
    }
    let ticker = &*TICKER;
    let mut incoming = ticker.incoming.lock();
    if !incoming.running {
        std::thread::Builder::new()
            .name("airssys-deadlines".into())
            .stack_size(256 * 1024)
            .spawn(|| run(&TICKER))?;
        incoming.running = true;
    }
    incoming.registries.push(registry);
    ticker.wake.notify_one();
    Ok(())
}

fn run(ticker: &Ticker) {
    let mut round: Vec<Weak<Deadlines>> = Vec::new();
    loop {
        {
            let mut incoming = ticker.incoming.lock();
            if round.is_empty() && incoming.registries.is_empty() {
                ticker.wake.wait(&mut incoming);
            } else if incoming.registries.is_empty() {
                ticker.wake.wait_for(&mut incoming, TICK);
            }
            round.append(&mut incoming.registries);
        }
        round.retain(|registry| registry.upgrade().is_some_and(|registry| registry.tick()));
    }
}
