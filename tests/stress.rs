//! Race-prone paths run many times: concurrent senders while the actor is
//! stopped or killed mid-stream. Every message sent must be accounted for
//! exactly once: handled, recorded as a dead letter, or returned to its
//! sender.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use common::{Cmd, Journal, PATIENCE, exit_of, spawn_recorder, system, within};
use parking_lot::Mutex;
use tokio::sync::{Barrier, Notify};

const SENDERS: u64 = 3;
const EACH: u64 = 300;
const TOTAL: u64 = SENDERS * EACH;

/// Counts send attempts so the test can end the actor after a chosen number.
#[derive(Default)]
struct Attempts {
    count: AtomicU64,
    changed: Notify,
}

impl Attempts {
    fn bump(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    async fn wait_at_least(&self, n: u64) {
        loop {
            let mut changed = std::pin::pin!(self.changed.notified());
            changed.as_mut().enable();
            if self.count.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Stop,
    Kill,
}

/// The number at the end of a rendered `Rec(n)` / `At(p, n)`.
fn value_of(rendered: &str) -> u64 {
    let digits: String = rendered
        .trim_end_matches(')')
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().expect("a rendered test message")
}

fn command(value: u64, with_priority: bool) -> Cmd {
    if with_priority {
        Cmd::At(MessagePriority::HIGHEST_FIRST[(value % 4) as usize], value)
    } else {
        Cmd::Rec(value)
    }
}

/// One round: `SENDERS` tasks send `EACH` messages each while the actor is
/// stopped or killed after `end_after` send attempts.
async fn race_round(mailbox: MailboxConfig, ending: Ending, end_after: u64, label: &str) {
    let with_priority = mailbox.kind == MailboxKind::Priority;
    // A system per round, so its dead letters are this round's.
    let system = system();
    let journal = Journal::new();
    let actor = spawn_recorder(&system, &journal, mailbox);
    let attempts = Arc::new(Attempts::default());
    let returned = Arc::new(Mutex::new(Vec::<(SendErrorKind, u64)>::new()));
    let start = Arc::new(Barrier::new(SENDERS as usize + 1));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let actor = actor.clone();
            let attempts = attempts.clone();
            let returned = returned.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                for i in 0..EACH {
                    let value = s * EACH + i;
                    if let Err(err) = actor.tell(command(value, with_priority)).await {
                        let kind = err.kind();
                        let back = match err.into_message() {
                            Cmd::Rec(v) | Cmd::At(_, v) => v,
                            other => panic!("returned a different message: {other:?}"),
                        };
                        assert_eq!(back, value, "the error returned another message");
                        returned.lock().push((kind, value));
                    }
                    attempts.bump();
                }
            })
        })
        .collect();
    start.wait().await;
    attempts.wait_at_least(end_after).await;
    match ending {
        Ending::Stop => {
            actor.stop();
        }
        Ending::Kill => actor.kill(),
    }
    for sender in senders {
        sender.await.expect("sender finished");
    }
    let reason = exit_of(&actor).await;
    let expected_reason = match ending {
        Ending::Stop => ExitReason::Normal,
        Ending::Kill => ExitReason::Killed,
    };
    assert_eq!(reason, expected_reason, "{label}");

    let handled = journal.log();
    let letters = system.dead_letters().recent();
    assert_eq!(
        letters.len() as u64,
        system.dead_letters().total(),
        "{label}: the ring kept every letter"
    );
    let returned = returned.lock().clone();

    for letter in &letters {
        let allowed = match (ending, mailbox.backpressure, mailbox.capacity) {
            (Ending::Kill, _, _) => [DeadLetterReason::ActorKilled].as_slice(),
            (Ending::Stop, Backpressure::DropOldest, Some(_)) => &[
                DeadLetterReason::ActorStopped,
                DeadLetterReason::DroppedOldest,
            ],
            (Ending::Stop, Backpressure::DropNewest, Some(_)) => &[
                DeadLetterReason::ActorStopped,
                DeadLetterReason::DroppedNewest,
            ],
            (Ending::Stop, _, _) => &[DeadLetterReason::ActorStopped],
        };
        assert!(
            allowed.contains(&letter.reason),
            "{label}: unexpected dead letter {letter}"
        );
        assert_eq!(letter.recipient, actor.id(), "{label}");
    }
    for (kind, value) in &returned {
        let refusable = mailbox.backpressure == Backpressure::Reject && mailbox.capacity.is_some();
        assert!(
            *kind == SendErrorKind::ActorStopped
                || (refusable && *kind == SendErrorKind::MailboxFull),
            "{label}: value {value} returned as {kind:?}"
        );
    }

    let mut seen = BTreeSet::new();
    let all = handled
        .iter()
        .copied()
        .chain(letters.iter().map(|l| value_of(&l.message)))
        .chain(returned.iter().map(|(_, v)| *v));
    for value in all {
        assert!(seen.insert(value), "{label}: {value} accounted twice");
    }
    assert_eq!(
        handled.len() + letters.len() + returned.len(),
        TOTAL as usize,
        "{label}: handled {} + dead {} + returned {} != sent {TOTAL}",
        handled.len(),
        letters.len(),
        returned.len()
    );
    assert_eq!(seen, (0..TOTAL).collect(), "{label}");

    if !with_priority {
        // FIFO lanes: what was handled from each sender is in its order.
        let mut last = [None::<u64>; SENDERS as usize];
        for value in &handled {
            let s = (value / EACH) as usize;
            assert!(
                last[s].is_none_or(|l| l < *value),
                "{label}: sender {s} out of order"
            );
            last[s] = Some(*value);
        }
    }
}

/// Runs `rounds` rounds, ending the actor at a different point in each.
async fn race_many(mailbox: MailboxConfig, ending: Ending, rounds: u64) {
    for round in 0..rounds {
        // Spread the end over the whole stream, including before the first
        // and after the last send.
        let end_after = (round * 131) % (TOTAL + 1);
        let label = format!("{mailbox:?} {ending:?} round {round} (after {end_after})");
        within(race_round(mailbox, ending, end_after, &label)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_unbounded() {
    race_many(MailboxConfig::unbounded(), Ending::Stop, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_block_with_waiting_senders() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::Block),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_reject() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::Reject),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_drop_oldest() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::DropOldest),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_drop_newest() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::DropNewest),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_priority_block() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::Block).with_kind(MailboxKind::Priority),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_priority_drop_oldest() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::DropOldest).with_kind(MailboxKind::Priority),
        Ending::Stop,
        100,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_stream_unbounded() {
    race_many(MailboxConfig::unbounded(), Ending::Kill, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mid_stream_block_with_waiting_senders() {
    race_many(
        MailboxConfig::bounded(4, Backpressure::Block),
        Ending::Kill,
        100,
    )
    .await;
}

/// Concurrent asks while the actor is stopped: every ask resolves, and the
/// outcomes add up: answered + dropped-unanswered + refused == asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_racing_a_stop_all_resolve_and_add_up() {
    const ASKERS: u64 = 3;
    const ASKS: u64 = 100;
    for round in 0..100u64 {
        let system = system();
        let journal = Journal::new();
        let actor = spawn_recorder(&system, &journal, MailboxConfig::unbounded());
        let attempts = Arc::new(Attempts::default());
        let start = Arc::new(Barrier::new(ASKERS as usize + 1));
        let askers: Vec<_> = (0..ASKERS)
            .map(|a| {
                let actor = actor.clone();
                let attempts = attempts.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let (mut answered, mut no_reply, mut refused) = (0u64, 0u64, 0u64);
                    for i in 0..ASKS {
                        let value = a * ASKS + i;
                        match actor.ask(|r| Cmd::Echo(value, r), PATIENCE).await {
                            Ok(v) => {
                                assert_eq!(v, value);
                                answered += 1;
                            }
                            Err(AskError::NoReply { .. }) => no_reply += 1,
                            Err(AskError::ActorStopped { .. }) => refused += 1,
                            Err(other) => panic!("round {round}: unexpected {other}"),
                        }
                        attempts.bump();
                    }
                    (answered, no_reply, refused)
                })
            })
            .collect();
        start.wait().await;
        attempts
            .wait_at_least((round * 7) % (ASKERS * ASKS + 1))
            .await;
        actor.stop();
        let (mut answered, mut no_reply, mut refused) = (0, 0, 0);
        for asker in askers {
            let (a, n, r) = within(asker).await.unwrap();
            answered += a;
            no_reply += n;
            refused += r;
        }
        assert_eq!(exit_of(&actor).await, ExitReason::Normal);
        assert_eq!(
            answered + no_reply + refused,
            ASKERS * ASKS,
            "round {round}"
        );
        assert_eq!(
            no_reply,
            system.dead_letters().count(DeadLetterReason::ActorStopped),
            "round {round}: every unanswered request is a dead letter"
        );
    }
}

/// Spawning from several tasks while the system shuts down: every spawn
/// either fails with `ShuttingDown` or yields an actor that the shutdown
/// stops; nothing is left running and every message sent is accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_racing_a_shutdown_leave_no_actor_running() {
    const SPAWNERS: usize = 2;
    const EACH: u64 = 200;
    for round in 0..50u64 {
        let system = system();
        let journal = Journal::new();
        let attempts = Arc::new(Attempts::default());
        let start = Arc::new(Barrier::new(SPAWNERS + 1));
        let spawners: Vec<_> = (0..SPAWNERS)
            .map(|s| {
                let system = system.clone();
                let journal = journal.clone();
                let attempts = attempts.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let mut spawned = Vec::new();
                    let mut returned = 0u64;
                    for i in 0..EACH {
                        let actor = match system.spawn(common::Recorder::new(&journal)) {
                            Ok(actor) => actor,
                            Err(SystemError::ShuttingDown { .. }) => break,
                            Err(other) => panic!("unexpected spawn error {other}"),
                        };
                        if let Err(err) = actor.tell(Cmd::Rec(s as u64 * EACH + i)).await {
                            assert_eq!(err.kind(), SendErrorKind::ActorStopped);
                            returned += 1;
                        }
                        spawned.push(actor);
                        attempts.bump();
                    }
                    (spawned, returned)
                })
            })
            .collect();
        start.wait().await;
        attempts.wait_at_least(round * 8).await;
        let report = within(system.shutdown(PATIENCE)).await;
        let mut spawned = Vec::new();
        let mut returned = 0;
        for spawner in spawners {
            let (actors, r) = within(spawner).await.unwrap();
            spawned.extend(actors);
            returned += r;
        }
        for actor in &spawned {
            assert_eq!(exit_of(actor).await, ExitReason::Shutdown, "round {round}");
        }
        assert_eq!(system.actor_count(), 0, "round {round}");
        assert_eq!(report.actors, spawned.len(), "round {round}");
        assert_eq!(
            (report.stopped_cleanly, report.killed),
            (spawned.len(), 0),
            "round {round}"
        );
        let handled = journal.len() as u64;
        let dead = system.dead_letters().count(DeadLetterReason::ActorStopped);
        assert_eq!(
            handled + dead + returned,
            spawned.len() as u64,
            "round {round}: one message per actor"
        );
        assert_eq!(journal.post_stops(), spawned.len(), "round {round}");
    }
}

/// `stop`, `kill` and a system shutdown racing on the same busy actors:
/// each actor ends exactly once, with one of the three reasons, and its
/// queue is fully accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kill_and_shutdown_racing_end_each_actor_once() {
    const ACTORS: usize = 20;
    const QUEUED: u64 = 20;
    for round in 0..50u64 {
        let system = system();
        let journal = Journal::new();
        let actors: Vec<_> = (0..ACTORS)
            .map(|_| spawn_recorder(&system, &journal, MailboxConfig::unbounded()))
            .collect();
        for actor in &actors {
            for v in 0..QUEUED {
                actor.tell(Cmd::Rec(v)).await.unwrap();
            }
        }
        let start = Arc::new(Barrier::new(3));
        let stopper = tokio::spawn({
            let (actors, start) = (actors.clone(), start.clone());
            async move {
                start.wait().await;
                for actor in &actors {
                    actor.stop();
                }
            }
        });
        let killer = tokio::spawn({
            let (actors, start) = (actors.clone(), start.clone());
            async move {
                start.wait().await;
                for actor in actors.iter().rev().step_by(2) {
                    actor.kill();
                }
            }
        });
        start.wait().await;
        let report = within(system.shutdown(PATIENCE)).await;
        within(stopper).await.unwrap();
        within(killer).await.unwrap();
        for actor in &actors {
            let reason = exit_of(actor).await;
            assert!(
                matches!(
                    reason,
                    ExitReason::Normal | ExitReason::Shutdown | ExitReason::Killed
                ),
                "round {round}: {reason}"
            );
        }
        assert_eq!(system.actor_count(), 0, "round {round}");
        assert_eq!(report.killed, 0, "round {round}: nobody ignored shutdown");
        let handled = journal.len() as u64;
        let dead = system.dead_letters().count(DeadLetterReason::ActorStopped)
            + system.dead_letters().count(DeadLetterReason::ActorKilled);
        assert_eq!(
            handled + dead,
            ACTORS as u64 * QUEUED,
            "round {round}: handled {handled} + dead {dead}"
        );
        let killed = actors
            .iter()
            .filter(|a| a.exit_reason() == Some(ExitReason::Killed))
            .count();
        assert_eq!(
            journal.post_stops(),
            ACTORS - killed,
            "round {round}: post_stop ran for every actor not killed"
        );
    }
}
