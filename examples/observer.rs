//! The observer on a busy system: a few supervision trees and a pool under
//! synthetic load, with random crashes (and one tree too flaky for its
//! restart intensity: it gives up). Prints the page's address, with the
//! token in the link, and runs until Ctrl-C.
//!
//! `cargo run --release --example observer --features observer`
//!
//! `OBSERVER_ADDR=0.0.0.0:9000` listens elsewhere (loopback by default);
//! `OBSERVER_READ_ONLY=1` turns the actions off.
//!
//! The README's screenshot (`docs/observer.png`) is this system, taken by
//! headless Chromium from the browser tests' helper:
//! `OBSERVER_SCREENSHOT=docs/observer.png cargo test --features observer
//! --test observer_browser -- --ignored screenshot`

use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::{PoolSpec, PoolStrategy};
use airssys_rt::observer::{Observer, ObserverConfig};
use airssys_rt::prelude::*;

/// One unit of synthetic work.
#[derive(Debug)]
struct Work(u32);

impl Message for Work {
    const MESSAGE_TYPE: &'static str = "observer.work";
}

/// A worker that spins a little per message and crashes once in
/// `1 / crash_one_in` messages.
struct Worker {
    crash_one_in: u32,
}

impl Actor for Worker {
    type Message = Work;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        work: Work,
        _: &mut ActorContext<Work>,
    ) -> Result<(), Infallible> {
        if self.crash_one_in > 0 && fastrand::u32(..self.crash_one_in) == 0 {
            panic!("synthetic crash on work {}", work.0);
        }
        if work.0.is_multiple_of(64) {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Ok(())
    }
}

fn worker(name: &str, crash_one_in: u32) -> ChildSpec {
    ChildSpec::worker(name, move || Worker { crash_one_in })
        .register(name)
        .mailbox(MailboxConfig::bounded(1_024, Backpressure::DropNewest))
        .into()
}

/// The named workers the load goes to, with how much each gets per tick.
const TARGETS: [(&str, u32); 8] = [
    ("orders", 40),
    ("payments", 20),
    ("cache", 60),
    ("db", 30),
    ("index", 10),
    ("collector", 25),
    ("exporter", 5),
    ("mailer", 3),
];

/// Starts the demo's trees, pool, idle sessions and load on `system`.
pub async fn start(system: &ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
    system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .name("shop")
                .intensity(20, Duration::from_secs(10))
                .child(worker("orders", 100_000))
                .child(worker("payments", 50_000))
                .child(worker("cache", 1_000_000))
                .child(ChildSpec::supervisor(
                    "inventory",
                    SupervisorSpec::rest_for_one()
                        .name("inventory")
                        .intensity(10, Duration::from_secs(10))
                        .child(worker("db", 60_000))
                        .child(worker("index", 30_000)),
                )),
        )
        .await?;
    system
        .start_supervisor(
            SupervisorSpec::one_for_all()
                .name("telemetry")
                .intensity(10, Duration::from_secs(5))
                .child(worker("collector", 200_000))
                .child(worker("exporter", 5_000)),
        )
        .await?;
    // Too flaky for its intensity: it gives up within a minute or so, and
    // the page marks it.
    system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .name("notifier")
                .intensity(3, Duration::from_secs(5))
                .child(worker("mailer", 500)),
        )
        .await?;
    let pool = system
        .start_pool(
            PoolSpec::new("jobs", 6, || Worker {
                crash_one_in: 20_000,
            })
            .strategy(PoolStrategy::WorkSharing)
            .mailbox(MailboxConfig::bounded(256, Backpressure::DropNewest))
            .intensity(1_000, Duration::from_secs(60)),
        )
        .await?;
    // Idle sessions, so the actors table has pages.
    for _ in 0..500 {
        system
            .spawn_builder()
            .bounded(16, Backpressure::Block)
            .spawn(Worker { crash_one_in: 0 })?;
    }

    let system = system.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut n = 0u32;
        loop {
            tick.tick().await;
            // Bursts now and then: the pool's queue overflows (dead letters).
            let burst = if fastrand::u8(..) < 4 { 400 } else { 60 };
            for _ in 0..burst {
                n = n.wrapping_add(1);
                if pool.tell(Work(n)).await.is_err() {
                    return;
                }
            }
            for (name, per_tick) in TARGETS {
                // Between a crash and the restart there is no such name.
                let Ok(target) = system.registry().lookup::<Work>(name) else {
                    continue;
                };
                for _ in 0..per_tick {
                    n = n.wrapping_add(1);
                    let _ = target.try_tell(Work(n));
                }
            }
            if system.is_shutting_down() {
                return;
            }
        }
    });
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The synthetic crashes are expected: keep the output to the address.
    std::panic::set_hook(Box::new(|_| {}));
    let system = ActorSystem::new(SystemConfig::named("observer-demo"))?;
    start(&system).await?;

    let mut config = ObserverConfig::default();
    if let Ok(addr) = std::env::var("OBSERVER_ADDR") {
        config = config.addr(addr.parse()?);
    }
    if std::env::var_os("OBSERVER_READ_ONLY").is_some() {
        config = config.read_only();
    }
    let observer = Observer::serve(&system, config).await?;
    println!("observer: {}#token={}", observer.url(), observer.token());
    if observer.is_read_only() {
        println!("read-only: actions are refused");
    } else {
        println!("token (actions need it): {}", observer.token());
    }
    println!("Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    drop(observer);
    system.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
