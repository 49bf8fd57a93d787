use super::*;
use std::future::poll_fn;
use std::task::Poll;

/// Waits through `deadlines` until `due`; returns when it woke.
async fn wait_until_due(deadlines: &Arc<Deadlines>, due: Due) -> Instant {
    let waited = Within::new(std::future::pending::<()>(), deadlines, due).await;
    assert!(waited.is_none(), "a pending future never finishes");
    Instant::now()
}

/// Ticks `deadlines` by hand (the ticker thread may tick it too: ticks
/// only move a deadline forward through its stages).
fn tick_times(deadlines: &Arc<Deadlines>, ticks: u8) {
    for _ in 0..ticks {
        assert!(deadlines.tick(), "an open registry stays in the round");
    }
}

#[tokio::test]
async fn a_short_timeout_fires_from_the_ticker_without_a_tokio_timer() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let started = Instant::now();
    let woke = wait_until_due(&deadlines, Due::After(Duration::from_millis(3))).await;
    assert!(woke >= started + Duration::from_millis(3), "never early");
    assert!(
        !deadlines.watching.load(Ordering::Acquire),
        "the watchdog (and its tokio timer) was never needed"
    );
    assert_eq!(deadlines.live(), (0, 0));
    deadlines.close();
}

#[tokio::test]
async fn a_deadline_cancelled_before_its_first_tick_never_fires() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let waker = futures::task::noop_waker();
    let key = deadlines.register(Due::After(Duration::ZERO), &waker);
    deadlines.cancel(key);
    assert_eq!(deadlines.live(), (0, 0));
    tick_times(&deadlines, 1);
    assert!(!deadlines.refresh(key, &waker));
    assert!(
        deadlines.pending.lock().fresh.is_empty(),
        "the stale key is gone"
    );
    deadlines.close();
}

#[tokio::test]
async fn a_stale_key_never_touches_a_reused_slot() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let far = Due::After(Duration::from_secs(3600));
    let first = deadlines.register(far, &futures::task::noop_waker());
    deadlines.cancel(first);
    let second = deadlines.register(far, &futures::task::noop_waker());
    assert_eq!(first.slot, second.slot, "the slot is reused");
    assert!(!deadlines.refresh(first, &futures::task::noop_waker()));
    deadlines.cancel(first);
    assert!(deadlines.refresh(second, &futures::task::noop_waker()));
    assert_eq!(deadlines.live(), (1, 0));
    deadlines.close();
}

#[tokio::test(start_paused = true)]
async fn a_long_wait_is_promoted_and_a_paused_clock_advances_to_it() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let started = Instant::now();
    // Only the ticker thread moves this one: the paused clock cannot
    // advance until the watchdog's timer exists.
    let woke = wait_until_due(&deadlines, Due::After(Duration::from_secs(3600))).await;
    assert!(woke >= started + Duration::from_secs(3600));
    assert!(deadlines.watching.load(Ordering::Acquire));
    assert_eq!(deadlines.live(), (0, 0));
    deadlines.close();
}

#[tokio::test(start_paused = true)]
async fn an_earlier_promoted_deadline_rearms_the_watchdog() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let now = Instant::now();
    let late = deadlines.register(
        Due::At(now + Duration::from_secs(3600)),
        &futures::task::noop_waker(),
    );
    tick_times(&deadlines, ticker::PROMOTE_AFTER_TICKS + 1);
    assert_eq!(deadlines.live(), (0, 1), "promoted");
    let mut key = None;
    poll_fn(|cx| match key {
        None => {
            key = Some(deadlines.register(Due::At(now + Duration::from_millis(10)), cx.waker()));
            tick_times(&deadlines, ticker::PROMOTE_AFTER_TICKS + 1);
            Poll::Pending
        }
        Some(k) if deadlines.refresh(k, cx.waker()) => Poll::Pending,
        Some(_) => Poll::Ready(()),
    })
    .await;
    assert!(Instant::now() < now + Duration::from_secs(3600));
    assert!(deadlines.refresh(late, &futures::task::noop_waker()));
    deadlines.close();
}

#[tokio::test]
async fn a_wait_pending_for_some_ticks_is_promoted_and_its_cancel_disarms_the_watchdog() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let key = deadlines.register(
        Due::After(Duration::from_secs(60)),
        &futures::task::noop_waker(),
    );
    assert_eq!(deadlines.live(), (1, 0), "fresh: no timer yet");
    tick_times(&deadlines, ticker::PROMOTE_AFTER_TICKS + 1);
    assert_eq!(deadlines.live(), (0, 1));
    assert!(deadlines.pending.lock().armed.is_some());
    deadlines.cancel(key);
    assert_eq!(deadlines.live(), (0, 0));
    assert_eq!(deadlines.pending.lock().armed, None, "no timer left armed");
    deadlines.close();
}

#[tokio::test(start_paused = true)]
async fn under_a_paused_clock_every_wait_goes_to_the_watchdog_at_once() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let key = deadlines.register(
        Due::After(Duration::from_secs(1)),
        &futures::task::noop_waker(),
    );
    assert_eq!(deadlines.live(), (0, 1), "promoted at registration");
    deadlines.cancel(key);
    deadlines.close();
}

#[tokio::test]
async fn a_clock_paused_after_the_registry_was_made_is_noticed_by_the_ticker() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    assert!(!deadlines.paused.load(Ordering::Relaxed));
    tokio::time::pause();
    let key = deadlines.register(
        Due::After(Duration::from_secs(1)),
        &futures::task::noop_waker(),
    );
    tick_times(&deadlines, 1);
    // Real time passes; the paused clock does not.
    std::thread::sleep(Duration::from_millis(3));
    tick_times(&deadlines, 1);
    assert!(deadlines.paused.load(Ordering::Relaxed));
    assert_eq!(
        deadlines.live(),
        (0, 1),
        "the fresh wait went to the watchdog"
    );
    deadlines.cancel(key);
    deadlines.close();
}

/// Many waits at once on two workers, with the ticker and the watchdog
/// both at work: every wait ends, answered ones with their answer, the
/// others never before their timeout, and nothing is left registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waits_at_once_all_end_answered_or_after_their_timeout() {
    let deadlines = Arc::new(Deadlines::new(Handle::current()));
    let mut waits = tokio::task::JoinSet::new();
    for i in 0..400u64 {
        let deadlines = deadlines.clone();
        waits.spawn(async move {
            let timeout = Duration::from_millis(1 + i % 25);
            let (answer, reply) = tokio::sync::oneshot::channel::<u64>();
            // A third are never answered (their sender lives to the end).
            let mut unanswered = None;
            if i % 3 == 0 {
                unanswered = Some(answer);
            } else {
                tokio::spawn(async move {
                    for _ in 0..i % 7 {
                        tokio::task::yield_now().await;
                    }
                    let _ = answer.send(i);
                });
            }
            let started = Instant::now();
            let outcome = Within::new(reply, &deadlines, Due::After(timeout)).await;
            match outcome {
                Some(Ok(value)) => assert_eq!(value, i),
                Some(Err(_)) => panic!("the sender is never dropped unanswered"),
                None => assert!(Instant::now() >= started + timeout, "never early"),
            }
            drop(unanswered);
        });
    }
    while let Some(done) = waits.join_next().await {
        done.expect("every wait ends without a failed assertion");
    }
    assert_eq!(deadlines.live(), (0, 0));
    deadlines.close();
}
