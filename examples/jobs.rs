//! 10,000 jobs through a supervised work-sharing pool, as an application
//! would run them: 1 % are poison (they crash their member), some are slow,
//! and the burst overflows the pool's bounded queue (`DropNewest`). The
//! dropped jobs come back from the dead-letter office by value and are
//! resubmitted once. Prints what was handled, what failed and why, and what
//! was lost (0).
//!
//! `cargo run --release --example jobs`

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use airssys_rt::address::{PoolSpec, PoolStrategy};
use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use tokio::sync::mpsc;

const JOBS: u32 = 10_000;
const QUEUE: usize = 256;

#[derive(Debug, Message)]
#[message(name = "jobs.job")]
enum Job {
    Work { id: u32, slow: bool },
    Poison { id: u32 },
}

struct Worker {
    done: mpsc::UnboundedSender<u32>,
}

impl Actor for Worker {
    type Message = Job;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        job: Job,
        _: &mut ActorContext<Job>,
    ) -> Result<(), Infallible> {
        match job {
            Job::Work { id, slow } => {
                if slow {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                let _ = self.done.send(id);
            }
            Job::Poison { id } => panic!("poison job {id}"),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The poison jobs' panics are expected: keep the output to the report.
    std::panic::set_hook(Box::new(|_| {}));
    let system = ActorSystem::new(SystemConfig::default())?;
    let mut dropped = system.dead_letters().reclaim::<Job>();
    let mut letters = system.dead_letters().subscribe();
    let (done, mut handled_ids) = mpsc::unbounded_channel();
    let pool = system
        .start_pool(
            PoolSpec::new("jobs", 4, move || Worker { done: done.clone() })
                .strategy(PoolStrategy::WorkSharing)
                .mailbox(MailboxConfig::bounded(QUEUE, Backpressure::DropNewest))
                .intensity(1_000, Duration::from_secs(60)),
        )
        .await?;

    let began = Instant::now();
    for id in 0..JOBS {
        let job = match id % 100 {
            42 => Job::Poison { id },
            n => Job::Work {
                id,
                slow: n % 20 == 7 || fastrand::u8(..) < 8,
            },
        };
        pool.tell(job).await?;
    }

    let (mut handled, mut crashed, mut burst_drops) = (HashSet::new(), Vec::new(), 0u32);
    let (mut resubmitted, mut lost) = (HashSet::new(), 0u32);
    while handled.len() + crashed.len() + lost as usize != JOBS as usize {
        tokio::select! {
            Some(id) = handled_ids.recv() => {
                assert!(handled.insert(id), "job {id} handled twice");
            }
            Some(letter) = letters.recv() => match letter.reason {
                DeadLetterReason::ActorCrashed => {
                    crashed.push(letter.exit.map(|exit| exit.to_string()).unwrap_or_default());
                }
                DeadLetterReason::DroppedNewest => burst_drops += 1,
                other => println!("unexpected dead letter ({other}): {}", letter.message),
            },
            Some(back) = dropped.recv() => {
                let id = match back.message {
                    Job::Work { id, .. } | Job::Poison { id } => id,
                };
                if back.reason != DeadLetterReason::DroppedNewest || !resubmitted.insert(id) {
                    lost += 1; // dropped twice, or lost another way: not retried again
                    continue;
                }
                // Resubmit once the queue has room again.
                while pool.route(&back.message)?.mailbox_len() >= QUEUE / 2 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                pool.tell(back.message).await?;
            }
            () = tokio::time::sleep(Duration::from_secs(10)) => {
                lost = JOBS - handled.len() as u32 - crashed.len() as u32;
                println!("no progress for 10 s");
            }
        }
    }
    let elapsed = began.elapsed();

    println!("{JOBS} jobs through a work-sharing pool of 4 (queue bounded({QUEUE}, DropNewest)):");
    println!("  handled      {:>6}", handled.len());
    println!(
        "  failed       {:>6}  (each crashed its member; reason: {})",
        crashed.len(),
        crashed.first().map_or("-", String::as_str)
    );
    println!("  dropped in the burst, reclaimed and resubmitted once: {burst_drops}");
    println!("  lost         {lost:>6}");
    println!(
        "  throughput   {:>6.0} jobs/s ({} ms)",
        f64::from(JOBS) / elapsed.as_secs_f64(),
        elapsed.as_millis()
    );
    pool.shutdown().await;
    system.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
