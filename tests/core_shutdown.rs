//! System shutdown: many actors, stubborn actors, the report.

mod support;

use std::sync::Arc;
use std::time::Duration;

use airssys_rt::prelude::*;
use support::{Cmd, Probe, Seen, hold, system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_ten_thousand_actors_stops_every_one_cleanly() {
    let system = system();
    let seen = Seen::new();
    let actors: Vec<_> = (0..10_000)
        .map(|_| system.spawn(Probe::new(&seen)).unwrap())
        .collect();
    assert_eq!(system.actor_count(), 10_000);
    let report = system.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.actors, 10_000);
    assert_eq!(report.stopped_cleanly, 10_000);
    assert_eq!((report.killed, report.unresponsive), (0, 0));
    assert_eq!(seen.post_stops(), 10_000);
    assert_eq!(system.actor_count(), 0);
    for actor in &actors {
        assert_eq!(actor.exit_reason(), Some(ExitReason::Shutdown));
    }
    let metrics = system.metrics().snapshot();
    assert_eq!((metrics.spawned, metrics.stopped), (10_000, 10_000));
}

#[tokio::test(start_paused = true)]
async fn an_actor_that_ignores_shutdown_is_killed_after_the_grace_period() {
    let system = system();
    let seen = Seen::new();
    let polite = system.spawn(Probe::new(&seen)).unwrap();
    let stubborn = system.spawn(Probe::new(&seen)).unwrap();
    let _never_opened = hold(&stubborn).await;
    stubborn.tell(Cmd::Record(1)).await.unwrap();
    let report = system.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.actors, 2);
    assert_eq!(
        (report.stopped_cleanly, report.killed, report.unresponsive),
        (1, 1, 0)
    );
    assert_eq!(
        report.dead_letters, 1,
        "the stubborn actor's queued message"
    );
    assert_eq!(polite.wait_for_exit().await, ExitReason::Shutdown);
    assert_eq!(stubborn.wait_for_exit().await, ExitReason::Killed);
    assert_eq!(seen.post_stops(), 1, "only the polite actor ran post_stop");
    assert!(report.to_string().contains("1 killed"), "{report}");
}

#[tokio::test]
async fn spawning_during_shutdown_is_refused_with_a_clear_error() {
    let system = system();
    system.shutdown(Duration::from_secs(1)).await;
    let err = system.spawn(Probe::new(&Seen::new())).unwrap_err();
    assert!(matches!(err, SystemError::ShuttingDown { .. }));
    assert!(err.to_string().contains("shutting down"));
}

#[tokio::test]
async fn an_invalid_mailbox_is_refused_with_a_clear_error() {
    let system = system();
    let err = system
        .spawn_builder()
        .bounded(0, Backpressure::Reject)
        .spawn(Probe::new(&Seen::new()))
        .unwrap_err();
    match err {
        SystemError::InvalidMailbox(text) => assert!(text.contains("at least 1"), "{text}"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(system.actor_count(), 0);
}

#[tokio::test]
async fn actors_already_stopping_are_not_counted_by_shutdown() {
    let system = system();
    let gone = system.spawn(Probe::new(&Seen::new())).unwrap();
    gone.stop();
    gone.wait_for_exit().await;
    let running = system.spawn(Probe::new(&Seen::new())).unwrap();
    let report = system.shutdown(Duration::from_secs(5)).await;
    assert_eq!((report.actors, report.stopped_cleanly), (1, 1));
    assert_eq!(running.wait_for_exit().await, ExitReason::Shutdown);
    assert_eq!(gone.exit_reason(), Some(ExitReason::Normal));
}

/// Messages still queued when an actor stops reach dead-letter subscribers,
/// each with its reason, in queue order.
#[tokio::test]
async fn dead_letters_are_streamed_to_subscribers() {
    let system = system();
    let mut letters = system.dead_letters().subscribe();
    let probe = system.spawn(Probe::new(&Arc::default())).unwrap();
    let open = hold(&probe).await;
    for n in 0..3 {
        probe.tell(Cmd::Record(n)).await.unwrap();
    }
    probe.kill();
    probe.wait_for_exit().await;
    drop(open);
    let mut seen = Vec::new();
    while let Some(letter) = letters.try_recv() {
        assert_eq!(letter.recipient, probe.id());
        assert_eq!(
            letter.reason,
            airssys_rt::mailbox::DeadLetterReason::ActorKilled
        );
        seen.push(letter.message);
    }
    assert_eq!(seen, ["Record(0)", "Record(1)", "Record(2)"]);
}
