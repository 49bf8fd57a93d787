//! Bounded mailboxes under load: every backpressure strategy, priority order,
//! and the system lane past a full mailbox.

mod support;

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use support::{Cmd, PATIENCE, Probe, Seen, hold, log_when_room, system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_with_eight_producers_loses_nothing_and_keeps_order() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(16, Backpressure::Block)
        .spawn(Probe::new(&seen))
        .unwrap();
    const PRODUCERS: u64 = 8;
    const EACH: u64 = 10_000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let probe = probe.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    probe.tell(Cmd::Record(p << 32 | i)).await.unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    let log = probe.ask(Cmd::Log, PATIENCE).await.unwrap();
    assert_eq!(log.len() as u64, PRODUCERS * EACH);
    let mut next = [0u64; PRODUCERS as usize];
    for v in log {
        let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert_eq!(i, next[p], "producer {p} out of order");
        next[p] += 1;
    }
    assert_eq!(probe.dropped_messages(), 0);
    assert_eq!(system.dead_letters().total(), 0);
}

#[tokio::test]
async fn block_makes_tell_wait_and_try_tell_fail_when_full() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(2, Backpressure::Block)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    probe.tell(Cmd::Record(1)).await.unwrap();
    probe.tell(Cmd::Record(2)).await.unwrap();
    let full = probe.try_tell(Cmd::Record(3)).unwrap_err();
    assert_eq!(full.kind(), SendErrorKind::MailboxFull);
    let waiting = tokio::spawn({
        let probe = probe.clone();
        async move { probe.tell(full.into_message()).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !waiting.is_finished(),
        "tell must wait while the mailbox is full"
    );
    let _ = open.send(());
    waiting.await.unwrap().unwrap();
    assert_eq!(probe.ask(Cmd::Log, PATIENCE).await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn reject_gives_the_message_back() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(3, Backpressure::Reject)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    for v in 0..3 {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    assert_eq!(probe.mailbox_len(), 3);
    let err = probe.tell(Cmd::Record(99)).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::MailboxFull);
    assert_eq!(err.actor(), probe.id());
    assert!(err.to_string().contains("full"), "{err}");
    assert!(matches!(err.into_message(), Cmd::Record(99)));
    let _ = open.send(());
    assert_eq!(log_when_room(&probe).await, vec![0, 1, 2]);
    assert_eq!(
        system.dead_letters().total(),
        0,
        "a rejected message is returned, not a dead letter"
    );
}

#[tokio::test]
async fn drop_oldest_drops_exactly_the_oldest_and_records_them() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(4, Backpressure::DropOldest)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    for v in 0..10 {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    assert_eq!(probe.mailbox_len(), 4);
    assert_eq!(probe.dropped_messages(), 6);
    // While the actor is still held, the request pushes out message 6 too.
    let asking = tokio::spawn({
        let probe = probe.clone();
        async move { probe.ask(Cmd::Log, PATIENCE).await }
    });
    while probe.dropped_messages() < 7 {
        tokio::task::yield_now().await;
    }
    let _ = open.send(());
    assert_eq!(asking.await.unwrap().unwrap(), vec![7, 8, 9]);
    let dropped: Vec<String> = system
        .dead_letters()
        .recent()
        .into_iter()
        .map(|l| l.message)
        .collect();
    let expected: Vec<String> = (0..7).map(|v| format!("Record({v})")).collect();
    assert_eq!(dropped, expected);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::DroppedOldest),
        7
    );
}

#[tokio::test]
async fn drop_newest_drops_exactly_the_newcomers_and_records_them() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(4, Backpressure::DropNewest)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    for v in 0..10 {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    assert_eq!(probe.dropped_messages(), 6);
    let _ = open.send(());
    assert_eq!(log_when_room(&probe).await, vec![0, 1, 2, 3]);
    let dropped: Vec<String> = system
        .dead_letters()
        .recent()
        .into_iter()
        .filter(|l| l.reason == DeadLetterReason::DroppedNewest && l.message.starts_with("Record"))
        .map(|l| l.message)
        .collect();
    let expected: Vec<String> = (4..10).map(|v| format!("Record({v})")).collect();
    assert_eq!(dropped, expected);
}

#[tokio::test]
async fn priority_mailbox_serves_highest_first_fifo_within_a_level() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .priority()
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    // Record(v) has priority by v / 1000: 0 Low, 1 Normal, 2 High, 3 Critical.
    for v in [1, 2001, 3001, 2, 1001, 2002, 3, 3002, 1002] {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    let _ = open.send(());
    let log = probe.ask(Cmd::Log, PATIENCE).await.unwrap();
    assert_eq!(log, vec![3001, 3002, 2001, 2002, 1001, 1002, 1, 2, 3]);
}

#[tokio::test]
async fn priority_drop_oldest_sacrifices_the_lowest_priority_first() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .priority()
        .bounded(3, Backpressure::DropOldest)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    for v in [3001, 1, 2001, 2, 3002] {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    let _ = open.send(());
    assert_eq!(log_when_room(&probe).await, vec![3001, 3002, 2001]);
    let dropped: Vec<String> = system
        .dead_letters()
        .recent()
        .into_iter()
        .map(|l| l.message)
        .take(2)
        .collect();
    assert_eq!(dropped, vec!["Record(1)", "Record(2)"]);
}

#[tokio::test]
async fn a_stop_reaches_an_actor_whose_bounded_mailbox_is_full() {
    let system = system();
    let seen = Seen::new();
    let probe = system
        .spawn_builder()
        .bounded(8, Backpressure::Block)
        .spawn(Probe::new(&seen))
        .unwrap();
    let open = hold(&probe).await;
    for v in 0..8 {
        probe.tell(Cmd::Record(v)).await.unwrap();
    }
    assert!(
        probe.try_tell(Cmd::Record(8)).is_err(),
        "the mailbox is full"
    );
    assert!(
        probe.stop(),
        "the stop signal is accepted past a full mailbox"
    );
    let _ = open.send(());
    assert_eq!(probe.wait_for_exit().await, ExitReason::Normal);
    assert!(
        seen.log().is_empty(),
        "the stop overtook every queued message"
    );
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorStopped),
        8
    );
}
