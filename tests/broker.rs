//! The in-memory broker: every reply reaches exactly its requester, timed-out
//! requests leave nothing behind, undeliverable envelopes come back, TTLs
//! are honoured.

use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::{
    BrokerError, DeliveryFailure, InMemoryMessageBroker, MessageBroker, RegistryError,
};
use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;

/// A request carrying who asked (the reply must echo it) and how long the
/// server should take.
#[derive(Debug)]
struct Echo {
    from: u64,
    delay: Duration,
}

impl Message for Echo {
    const MESSAGE_TYPE: &'static str = "test.echo";
}

type Broker = InMemoryMessageBroker<Echo, u64>;

/// Answers each request after its delay, without blocking its mailbox.
struct Server(Broker);

impl Actor for Server {
    type Message = Echo;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        echo: Echo,
        ctx: &mut ActorContext<Echo>,
    ) -> Result<(), Infallible> {
        let Some(request) = ctx.envelope_id() else {
            return Ok(());
        };
        let broker = self.0.clone();
        tokio::spawn(async move {
            tokio::time::sleep(echo.delay).await;
            let _ = broker.reply(request, echo.from);
        });
        Ok(())
    }
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_their_own_reply() {
    let system = system();
    let broker = Broker::new(&system);
    for _ in 0..4 {
        let server = system.spawn(Server(broker.clone())).unwrap();
        system.registry().register_service("echo", &server).unwrap();
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let requests: Vec<_> = (0..1_000u64)
        .map(|from| {
            let broker = broker.clone();
            let delay = Duration::from_micros(rng.u64(0..3_000));
            tokio::spawn(async move {
                let address = ActorAddress::Service {
                    service: "echo".into(),
                    key: Some(format!("client-{from}")),
                };
                let envelope = MessageEnvelope::new(address, Echo { from, delay });
                let reply = broker.request(envelope, Duration::from_secs(60)).await;
                (from, reply.map_err(|e| e.to_string()))
            })
        })
        .collect();
    for request in requests {
        let (from, reply) = request.await.unwrap();
        assert_eq!(reply, Ok(from), "request {from} got another's reply");
    }
    assert_eq!(broker.pending_requests(), 0);
}

#[tokio::test]
async fn a_request_without_a_practical_timeout_waits_for_its_reply() {
    let system = system();
    let broker = Broker::new(&system);
    system
        .spawn_builder()
        .register("echo")
        .spawn(Server(broker.clone()))
        .unwrap();
    let echo = Echo {
        from: 9,
        delay: Duration::from_millis(1),
    };
    let request = MessageEnvelope::new(ActorAddress::named("echo"), echo);
    // Duration::MAX is "no timeout", not a deadline that has already passed.
    assert_eq!(broker.request(request, Duration::MAX).await.unwrap(), 9);
}

#[tokio::test(start_paused = true)]
async fn timed_out_requests_leave_nothing_behind_and_late_replies_come_back() {
    let system = system();
    let broker = Broker::new(&system);
    system
        .spawn_builder()
        .register("slow")
        .spawn(Server(broker.clone()))
        .unwrap();
    let mut timed_out = Vec::new();
    for from in 0..10 {
        let envelope = MessageEnvelope::new(
            ActorAddress::named("slow"),
            Echo {
                from,
                delay: Duration::from_secs(10),
            },
        );
        match broker.request(envelope, Duration::from_secs(1)).await {
            Err(BrokerError::Timeout { request, .. }) => timed_out.push(request),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    assert_eq!(
        broker.pending_requests(),
        0,
        "timed-out requests are forgotten"
    );
    // The late replies arrive to nobody and are refused, not lost silently.
    for request in timed_out {
        let late = broker.reply(request, 99).unwrap_err();
        assert_eq!((late.request, late.reply), (request, 99));
    }
}

#[tokio::test]
async fn an_undeliverable_envelope_comes_back_with_the_reason() {
    let system = system();
    let broker = Broker::new(&system);
    let envelope = MessageEnvelope::new(
        ActorAddress::named("nobody"),
        Echo {
            from: 7,
            delay: Duration::ZERO,
        },
    );
    let id = envelope.id;
    match broker.send(envelope).await {
        Err(BrokerError::Undelivered {
            cause, envelope, ..
        }) => {
            assert_eq!(
                cause,
                DeliveryFailure::Unresolved(RegistryError::UnknownName {
                    name: "nobody".into()
                })
            );
            assert_eq!((envelope.id, envelope.payload.from), (id, 7));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(broker.pending_requests(), 0);
}

#[tokio::test]
async fn an_expired_envelope_becomes_a_dead_letter() {
    let system = system();
    let broker = Broker::new(&system);
    let server = system
        .spawn_builder()
        .register("srv")
        .spawn(Server(broker.clone()))
        .unwrap();
    let mut letters = system.dead_letters().subscribe();
    let mut envelope = MessageEnvelope::new(
        ActorAddress::named("srv"),
        Echo {
            from: 1,
            delay: Duration::ZERO,
        },
    )
    .with_ttl(Duration::from_millis(5));
    // Created a second ago (envelopes carry wall-clock timestamps).
    envelope.timestamp -= chrono::Duration::seconds(1);
    broker.send(envelope).await.unwrap();
    let letter = letters.recv().await.unwrap();
    assert_eq!(
        (letter.recipient, letter.reason),
        (server.id(), DeadLetterReason::Expired)
    );
}

/// Held until released, so its mailbox can be filled.
#[derive(Debug)]
enum Job {
    Hold {
        started: tokio::sync::oneshot::Sender<()>,
        release: tokio::sync::oneshot::Receiver<()>,
    },
    Work(u32),
}

impl Message for Job {
    const MESSAGE_TYPE: &'static str = "test.job";
}

struct Holder;

impl Actor for Holder {
    type Message = Job;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        job: Job,
        _: &mut ActorContext<Job>,
    ) -> Result<(), Infallible> {
        if let Job::Hold { started, release } = job {
            let _ = started.send(());
            let _ = release.await;
        }
        Ok(())
    }
}

/// Spawns a held `Holder` as `name` with a one-slot mailbox already full;
/// returns the key that releases it.
async fn full_holder(
    system: &ActorSystem,
    name: &'static str,
    backpressure: airssys_rt::mailbox::Backpressure,
) -> tokio::sync::oneshot::Sender<()> {
    let holder = system
        .spawn_builder()
        .register(name)
        .mailbox(MailboxConfig::bounded(1, backpressure))
        .spawn(Holder)
        .unwrap();
    let (started, started_rx) = tokio::sync::oneshot::channel();
    let (release, release_rx) = tokio::sync::oneshot::channel();
    holder
        .tell(Job::Hold {
            started,
            release: release_rx,
        })
        .await
        .unwrap();
    started_rx.await.unwrap();
    holder.tell(Job::Work(0)).await.unwrap();
    release
}

/// Both routes to a named actor (a static name is pushed to under the
/// registry's lock; an owned one is resolved first) treat full mailboxes
/// alike: `Reject` hands the envelope back, `Block` waits for room.
#[tokio::test]
async fn full_mailboxes_behind_a_name_refuse_or_wait() {
    use airssys_rt::mailbox::Backpressure;
    let system = system();
    let broker = InMemoryMessageBroker::<Job, ()>::new(&system);
    let _rejecting = full_holder(&system, "rejecting", Backpressure::Reject).await;
    let blocking = full_holder(&system, "blocking", Backpressure::Block).await;

    for address in [
        ActorAddress::named("rejecting"),
        ActorAddress::named(String::from("rejecting")),
    ] {
        match broker
            .send(MessageEnvelope::new(address, Job::Work(1)))
            .await
        {
            Err(BrokerError::Undelivered {
                cause, envelope, ..
            }) => {
                assert_eq!(cause, DeliveryFailure::MailboxFull);
                assert!(matches!(envelope.payload, Job::Work(1)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let mut waiting = std::pin::pin!(broker.send(MessageEnvelope::new(
        ActorAddress::named("blocking"),
        Job::Work(2)
    )));
    assert!(
        futures::poll!(waiting.as_mut()).is_pending(),
        "a full Block mailbox makes the sender wait"
    );
    let _ = blocking.send(());
    waiting.await.unwrap();

    let wrong = InMemoryMessageBroker::<Echo, u64>::new(&system)
        .send(MessageEnvelope::new(
            ActorAddress::named("blocking"),
            Echo {
                from: 1,
                delay: Duration::ZERO,
            },
        ))
        .await;
    assert!(matches!(
        wrong,
        Err(BrokerError::Undelivered {
            cause: DeliveryFailure::Unresolved(RegistryError::WrongMessageType { .. }),
            ..
        })
    ));
}
