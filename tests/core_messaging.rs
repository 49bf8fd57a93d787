//! tell/ask semantics: ordering, request/reply errors, envelopes, timers, children.

mod support;

use std::time::Duration;

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use support::{Cmd, PATIENCE, Probe, Seen, hold, system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_senders_messages_arrive_in_the_order_sent() {
    let system = system();
    let seen = Seen::new();
    let probe = system.spawn(Probe::new(&seen)).unwrap();
    const SENDERS: u64 = 4;
    const EACH: u64 = 5_000;
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let probe = probe.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    probe.tell(Cmd::Record(s << 32 | i)).await.unwrap();
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let log = probe.ask(Cmd::Log, PATIENCE).await.unwrap();
    assert_eq!(log.len() as u64, SENDERS * EACH);
    let mut next = [0u64; SENDERS as usize];
    for v in log {
        let (s, i) = ((v >> 32) as usize, v & 0xffff_ffff);
        assert_eq!(i, next[s], "sender {s} out of order");
        next[s] += 1;
    }
}

#[tokio::test]
async fn ask_that_is_never_answered_times_out() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    let err = probe
        .ask(Cmd::Hold, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AskError::Timeout {
            actor: probe.id(),
            timeout: Duration::from_millis(20)
        }
    );
    // The actor is unharmed and still answers.
    assert!(probe.ask(Cmd::Log, PATIENCE).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn ask_timeouts_follow_the_paused_clock() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    let started = tokio::time::Instant::now();
    let err = probe
        .ask(Cmd::Hold, Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(matches!(err, AskError::Timeout { .. }));
    assert!(started.elapsed() >= Duration::from_secs(3600));
}

#[tokio::test]
async fn ask_to_a_stopped_actor_fails_at_once() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    probe.stop();
    probe.wait_for_exit().await;
    let err = probe.ask(Cmd::Log, PATIENCE).await.unwrap_err();
    assert_eq!(err, AskError::ActorStopped { actor: probe.id() });
    assert!(err.to_string().contains("has stopped"));
}

#[tokio::test]
async fn a_dropped_reply_port_is_reported_as_no_reply() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    let err = probe.ask(Cmd::Drop, PATIENCE).await.unwrap_err();
    assert_eq!(err, AskError::NoReply { actor: probe.id() });
}

#[tokio::test]
async fn an_ask_pending_when_the_actor_stops_resolves_with_an_error() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    let open = hold(&probe).await;
    let pending = tokio::spawn({
        let probe = probe.clone();
        async move { probe.ask(Cmd::Log, PATIENCE).await }
    });
    while probe.mailbox_len() == 0 {
        tokio::task::yield_now().await;
    }
    probe.stop();
    let _ = open.send(());
    assert_eq!(
        pending.await.unwrap().unwrap_err(),
        AskError::NoReply { actor: probe.id() }
    );
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorStopped),
        1
    );
}

#[tokio::test]
async fn a_tell_to_a_stopped_actor_returns_the_message() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    probe.stop();
    assert_eq!(probe.wait_for_exit().await, ExitReason::Normal);
    assert!(!probe.is_alive());
    let err = probe.tell(Cmd::Record(7)).await.unwrap_err();
    assert_eq!(err.kind(), SendErrorKind::ActorStopped);
    assert!(matches!(err.into_message(), Cmd::Record(7)));
    let err = probe.try_tell(Cmd::Record(8)).unwrap_err();
    assert!(matches!(err.into_message(), Cmd::Record(8)));
}

#[tokio::test]
async fn an_expired_envelope_becomes_a_dead_letter() {
    let system = system();
    let seen = Seen::new();
    let probe = system.spawn(Probe::new(&seen)).unwrap();
    let expired = MessageEnvelope::new(probe.id().into(), Cmd::Record(1)).with_ttl(Duration::ZERO);
    probe.tell_envelope(expired).await.unwrap();
    let fresh =
        MessageEnvelope::new(probe.id().into(), Cmd::Record(2)).with_ttl(Duration::from_secs(3600));
    probe.tell_envelope(fresh).await.unwrap();
    assert_eq!(probe.ask(Cmd::Log, PATIENCE).await.unwrap(), vec![2]);
    assert_eq!(system.dead_letters().count(DeadLetterReason::Expired), 1);
    let letter = &system.dead_letters().recent()[0];
    assert_eq!(letter.message, "Record(1)");
    assert_eq!(letter.message_type, "test.cmd");
}

/// An actor that schedules timers on itself.
struct Ticker {
    ticks: u64,
    interval: Option<airssys_rt::actor::TimerHandle>,
}

#[derive(Debug)]
enum Tick {
    Start,
    Once,
    Every,
    Count(ReplyTo<u64>),
}

impl Message for Tick {
    const MESSAGE_TYPE: &'static str = "test.tick";
}

impl Actor for Ticker {
    type Message = Tick;
    type Error = std::convert::Infallible;
    async fn handle_message(
        &mut self,
        msg: Tick,
        ctx: &mut ActorContext<Tick>,
    ) -> Result<(), Self::Error> {
        match msg {
            Tick::Start => {
                ctx.send_after(Duration::from_secs(10), Tick::Once);
                self.interval = Some(ctx.send_interval(Duration::from_secs(1), || Tick::Every));
            }
            Tick::Once => self.ticks += 1000,
            Tick::Every => self.ticks += 1,
            Tick::Count(reply) => {
                let _ = reply.reply(self.ticks);
            }
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn timers_fire_on_schedule_and_stop_with_the_actor() {
    let system = system();
    let ticker = system
        .spawn(Ticker {
            ticks: 0,
            interval: None,
        })
        .unwrap();
    ticker.tell(Tick::Start).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    // Ten interval ticks (1 s .. 10 s) plus the one-shot at 10 s.
    assert_eq!(ticker.ask(Tick::Count, PATIENCE).await.unwrap(), 1010);
    ticker.stop();
    ticker.wait_for_exit().await;
    let before = system.dead_letters().total();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        system.dead_letters().total(),
        before,
        "a timer outlived its actor"
    );
}

#[tokio::test]
async fn an_ask_with_an_enormous_timeout_waits_instead_of_overflowing() {
    let system = system();
    let probe = system.spawn(Probe::new(&Seen::new())).unwrap();
    probe.tell(Cmd::Record(1)).await.unwrap();
    assert_eq!(probe.ask(Cmd::Log, Duration::MAX).await.unwrap(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn a_timer_with_an_enormous_period_never_fires_and_does_not_panic() {
    let system = system();
    struct Slow;
    impl Actor for Slow {
        type Message = Tick;
        type Error = std::convert::Infallible;
        async fn handle_message(
            &mut self,
            msg: Tick,
            ctx: &mut ActorContext<Tick>,
        ) -> Result<(), Self::Error> {
            match msg {
                Tick::Start => {
                    ctx.send_interval(Duration::MAX, || Tick::Every);
                    ctx.send_after(Duration::MAX, Tick::Once);
                }
                Tick::Count(reply) => {
                    let _ = reply.reply(0);
                }
                _ => panic!("a timer of Duration::MAX fired"),
            }
            Ok(())
        }
    }
    let slow = system.spawn(Slow).unwrap();
    slow.tell(Tick::Start).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10 * 365 * 24 * 3600)).await;
    assert_eq!(slow.ask(Tick::Count, PATIENCE).await.unwrap(), 0);
    assert!(slow.is_alive());
}
