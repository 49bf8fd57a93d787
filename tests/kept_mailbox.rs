//! Mailboxes kept across restarts (`WorkerSpec::keep_mailbox`): the
//! replacement handles what was queued, in order; the message being handled
//! at a crash is dead-lettered with the crash; mail kept for a restart that
//! does not happen is dead-lettered; OTP's stop/start order holds.

mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::mailbox::{Backpressure, DeadLetterReason, MailboxConfig};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::{
    ChildShutdown, ChildSpec, RestartType, SupervisionEvent, SupervisorRef, SupervisorSpec,
};
use airssys_rt::system::SendErrorKind;
use common::{Gate, PATIENCE, park, system, within};
use tokio::sync::mpsc;

/// What the test worker takes.
#[derive(Debug)]
enum Job {
    /// Handled: reported on the worker's channel.
    Work(u32),
    /// Waits at the gate, then returns.
    Hold(Gate),
    /// Waits at the gate, then crashes the worker.
    CrashAfter(Gate),
    /// Crashes the worker at once.
    Poison(u32),
}

impl Message for Job {
    const MESSAGE_TYPE: &'static str = "test.job";
}

/// Reports every `Work` it handles, tagged with its own id.
struct Worker {
    tag: &'static str,
    handled: mpsc::UnboundedSender<(&'static str, u32)>,
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
            Job::Work(n) => {
                let _ = self.handled.send((self.tag, n));
            }
            Job::Hold(gate) => gate.pass().await,
            Job::CrashAfter(gate) => {
                gate.pass().await;
                panic!("crash on request");
            }
            Job::Poison(n) => panic!("poison job {n}"),
        }
        Ok(())
    }
}

fn worker(
    tag: &'static str,
    handled: &mpsc::UnboundedSender<(&'static str, u32)>,
) -> airssys_rt::supervisor::WorkerSpec<Worker> {
    let handled = handled.clone();
    ChildSpec::worker(tag, move || Worker {
        tag,
        handled: handled.clone(),
    })
    .register(tag)
    .mailbox(MailboxConfig::bounded(16, Backpressure::Block))
}

/// A worker that keeps its mailbox and is killed when stopped.
fn killed_worker(
    tag: &'static str,
    handled: &mpsc::UnboundedSender<(&'static str, u32)>,
) -> airssys_rt::supervisor::WorkerSpec<Worker> {
    worker(tag, handled)
        .keep_mailbox(true)
        .shutdown(ChildShutdown::BrutalKill)
}

async fn child(supervisor: &SupervisorRef, id: &str) -> ActorRef<Job> {
    supervisor
        .child::<Job>(id)
        .await
        .expect("the supervisor answers")
        .expect("the child runs")
}

/// Parks `id`'s instance in a handler, queues `queued` behind it, then lets
/// it crash; returns the crashed instance.
async fn crash_with_queue(
    supervisor: &SupervisorRef,
    id: &str,
    queued: std::ops::Range<u32>,
) -> ActorRef<Job> {
    let instance = child(supervisor, id).await;
    let key = park(&instance, Job::CrashAfter).await;
    for n in queued {
        instance.tell(Job::Work(n)).await.expect("queued");
    }
    key.release();
    within(instance.wait_for_exit()).await;
    instance
}

/// Waits until `n` jobs were handled and returns them.
async fn handled(
    from: &mut mpsc::UnboundedReceiver<(&'static str, u32)>,
    n: usize,
) -> Vec<(&'static str, u32)> {
    let mut seen = Vec::with_capacity(n);
    while seen.len() < n {
        seen.push(within(from.recv()).await.expect("the workers live"));
    }
    seen
}

#[tokio::test]
async fn the_replacement_handles_what_was_queued_in_order() {
    let system = system();
    let mut letters = system.dead_letters().subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(worker("w", &tx).keep_mailbox(true)))
        .await
        .unwrap();
    let crashed = crash_with_queue(&supervisor, "w", 0..10).await;
    let seen = handled(&mut rx, 10).await;
    assert_eq!(seen, (0..10).map(|n| ("w", n)).collect::<Vec<_>>());
    let replacement = child(&supervisor, "w").await;
    assert_ne!(
        replacement.id(),
        crashed.id(),
        "a new actor, as OTP's restart makes"
    );
    // Only the message being handled at the crash is a dead letter, with the crash.
    let letter = within(letters.recv()).await.unwrap();
    assert_eq!(letter.reason, DeadLetterReason::ActorCrashed);
    assert!(letter.message.starts_with("(being handled"), "{letter:?}");
    assert!(
        matches!(&letter.exit, Some(ExitReason::Panic(text)) if text.contains("crash on request")),
        "{letter:?}"
    );
    assert!(letters.try_recv().is_none(), "nothing else was lost");
    system.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn by_default_a_restart_starts_with_an_empty_mailbox_as_in_otp() {
    let system = system();
    let mut letters = system.dead_letters().subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one().child(worker("w", &tx)))
        .await
        .unwrap();
    crash_with_queue(&supervisor, "w", 0..5).await;
    let mut queued = 0;
    for _ in 0..6 {
        let letter = within(letters.recv()).await.unwrap();
        assert_eq!(letter.reason, DeadLetterReason::ActorCrashed);
        queued += usize::from(letter.message.starts_with("Work"));
    }
    assert_eq!(queued, 5, "the queued jobs are dead letters");
    // The replacement runs and handles new work only.
    child(&supervisor, "w")
        .await
        .tell(Job::Work(99))
        .await
        .unwrap();
    assert_eq!(handled(&mut rx, 1).await, [("w", 99)]);
    system.shutdown(PATIENCE).await;
}

/// `one_for_all` with kept mailboxes: the siblings stopped for the restart
/// (killed mid-handler here, `BrutalKill`) keep their queues too, and stops
/// and starts happen in OTP's order (siblings stopped last-started first,
/// everyone started in order).
#[tokio::test]
async fn one_for_all_keeps_every_queue_and_otps_order() {
    let system = system();
    let mut events = system.supervision_events();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_all()
                .child(worker("a", &tx).keep_mailbox(true))
                .child(killed_worker("b", &tx))
                .child(killed_worker("c", &tx)),
        )
        .await
        .unwrap();
    // b and c sit in handlers with work queued behind; a crashes.
    let mut keys = Vec::new();
    for id in ["b", "c"] {
        let instance = child(&supervisor, id).await;
        keys.push(park(&instance, Job::Hold).await);
        for n in 0..3 {
            instance.tell(Job::Work(n)).await.unwrap();
        }
    }
    let a = child(&supervisor, "a").await;
    a.tell(Job::Poison(0)).await.unwrap();
    let mut order = Vec::new();
    while order.len() < 6 {
        let event = within(events.recv()).await.unwrap();
        match event {
            SupervisionEvent::ChildExited { child, .. } => order.push(format!("exit {child}")),
            SupervisionEvent::ChildRestarted { child, .. } => {
                order.push(format!("start {child}"));
            }
            _ => {}
        }
    }
    assert_eq!(
        order,
        [
            "exit a", "exit c", "exit b", "start a", "start b", "start c"
        ]
    );
    let mut seen = handled(&mut rx, 6).await;
    seen.sort();
    let expected: Vec<_> = ["b", "c"]
        .into_iter()
        .flat_map(|id| (0..3).map(move |n| (id, n)))
        .collect();
    assert_eq!(
        seen, expected,
        "b's and c's queues went to their replacements"
    );
    drop(keys);
    system.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn mail_kept_for_a_restart_that_never_comes_is_dead_lettered_not_restarted() {
    let system = system();
    let (tx, _rx) = mpsc::unbounded_channel();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .intensity(0, Duration::from_secs(5))
                .child(worker("w", &tx).keep_mailbox(true)),
        )
        .await
        .unwrap();
    let mut reclaimed = system.dead_letters().reclaim::<Job>();
    crash_with_queue(&supervisor, "w", 0..4).await;
    // The supervisor gives up instead of restarting: the kept jobs come back.
    for n in 0..4 {
        let letter = within(reclaimed.recv()).await.unwrap();
        assert_eq!(letter.reason, DeadLetterReason::NotRestarted);
        assert!(
            matches!(letter.message, Job::Work(m) if m == n),
            "{:?}",
            letter.message
        );
    }
    within(supervisor.wait_for_exit()).await;
    assert!(reclaimed.try_recv().is_none());
}

#[tokio::test]
async fn a_temporary_child_that_is_not_restarted_dead_letters_its_kept_mail_as_crashed() {
    let system = system();
    let (tx, _rx) = mpsc::unbounded_channel();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one().child(
                worker("w", &tx)
                    .keep_mailbox(true)
                    .restart(RestartType::Temporary),
            ),
        )
        .await
        .unwrap();
    let mut reclaimed = system.dead_letters().reclaim::<Job>();
    crash_with_queue(&supervisor, "w", 0..3).await;
    for _ in 0..3 {
        let letter = within(reclaimed.recv()).await.unwrap();
        assert_eq!(letter.reason, DeadLetterReason::ActorCrashed);
    }
    assert!(supervisor.child::<Job>("w").await.unwrap().is_none());
    system.shutdown(PATIENCE).await;
}

/// Senders on both threads tell a child by name while poison jobs crash it
/// again and again: no job is handled twice, none is lost, each sender's
/// jobs are handled in the order sent; only the poison jobs are dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_lose_nothing_while_the_child_crashes_repeatedly() {
    const ROUNDS: usize = 8;
    const SENDERS: u32 = 4;
    const EACH: u32 = 300;
    const POISON_EVERY: u32 = 40;
    for round in 0..ROUNDS {
        let system = system();
        let mut letters = system.dead_letters().subscribe();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mailbox = match round % 2 {
            0 => MailboxConfig::bounded(8, Backpressure::Block),
            _ => MailboxConfig::unbounded(),
        };
        let _supervisor = system
            .start_supervisor(
                SupervisorSpec::one_for_one()
                    .intensity(10_000, Duration::from_secs(60))
                    .child(worker("sink", &tx).mailbox(mailbox).keep_mailbox(true)),
            )
            .await
            .unwrap();
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let system = system.clone();
                tokio::spawn(async move {
                    for seq in 0..EACH {
                        // Jobs are numbered sender-major: sender * EACH + seq.
                        let n = sender * EACH + seq;
                        let mut job = match seq % POISON_EVERY == POISON_EVERY - 1 {
                            true => Job::Poison(n),
                            false => Job::Work(n),
                        };
                        // Resolve the name each try: a crash replaces the actor.
                        loop {
                            let Ok(sink) = system.registry().lookup::<Job>("sink") else {
                                tokio::task::yield_now().await;
                                continue;
                            };
                            match sink.tell(job).await {
                                Ok(()) => break,
                                Err(refused) => {
                                    assert_eq!(refused.kind(), SendErrorKind::ActorStopped);
                                    job = refused.into_message();
                                    tokio::task::yield_now().await;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let poison = (SENDERS * (EACH / POISON_EVERY)) as usize;
        let good = (SENDERS * EACH) as usize - poison;
        let seen = handled(&mut rx, good).await;
        let mut unique = HashSet::new();
        let mut last = vec![None; SENDERS as usize];
        for &(_, n) in &seen {
            assert!(unique.insert(n), "round {round}: job {n} handled twice");
            assert_ne!(
                n % EACH % POISON_EVERY,
                POISON_EVERY - 1,
                "poison {n} was handled"
            );
            let sender = (n / EACH) as usize;
            assert!(
                last[sender] < Some(n),
                "round {round}: sender {sender}'s job {n} out of order"
            );
            last[sender] = Some(n);
        }
        for _ in 0..poison {
            let letter = within(letters.recv()).await.unwrap();
            assert_eq!(letter.reason, DeadLetterReason::ActorCrashed);
            assert!(letter.message.starts_with("(being handled"), "{letter:?}");
        }
        assert!(
            letters.try_recv().is_none(),
            "round {round}: only poison was lost"
        );
        assert!(
            rx.try_recv().is_err(),
            "round {round}: nothing handled twice"
        );
        system.shutdown(PATIENCE).await;
    }
}
