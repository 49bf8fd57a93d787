//! Metrics through the `metrics` facade: with a recorder installed, the
//! runtime and the broker report what they do (its own test binary, since a
//! recorder is process-wide).

use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;
use airssys_rt::util::MessageId;
use metrics::Key;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Req {
    /// Answered through the broker.
    Double(u64),
    /// Never answered.
    Ignore,
    /// Counted.
    Tick,
    /// A direct ask, to wait for what was queued before it.
    Sync(ReplyTo<()>),
}
impl Message for Req {
    const MESSAGE_TYPE: &'static str = "test.req";
}

struct Server(InMemoryMessageBroker<Req, u64>);

impl Actor for Server {
    type Message = Req;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        req: Req,
        ctx: &mut ActorContext<Req>,
    ) -> Result<(), Infallible> {
        match req {
            Req::Double(n) => {
                if let Some(request) = ctx.envelope_id() {
                    let _ = self.0.reply(request, n * 2);
                }
            }
            Req::Sync(reply) => drop(reply.reply(())),
            Req::Ignore | Req::Tick => {}
        }
        Ok(())
    }
}

/// What was reported since the previous snapshot (taking one resets the
/// recorder's counters and histograms).
struct Reported(Vec<(Key, DebugValue)>);

impl Reported {
    fn since_last(snapshotter: &Snapshotter) -> Self {
        Self(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| (key.key().clone(), value))
                .collect(),
        )
    }

    /// The value of a metric by name and labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|(key, _)| {
                key.name() == name
                    && labels.len() == key.labels().count()
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(_, value)| value)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.value(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            other => panic!("{name}{labels:?} is not a counter: {other:?}"),
        }
    }

    fn samples(&self, name: &str) -> usize {
        match self.value(name, &[]) {
            Some(DebugValue::Histogram(samples)) => samples.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_runtime_and_the_broker_report_through_the_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this binary");

    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let broker = InMemoryMessageBroker::<Req, u64>::new(&system);
    let server = system
        .spawn_builder()
        .register("server")
        .spawn(Server(broker.clone()))
        .unwrap();

    // Request/reply, a timeout, an unknown reply and an unresolved address.
    let to_server = || ActorAddress::named("server");
    // Eight requests in a row: latency is sampled one request id in eight.
    for n in 0..8 {
        let doubled = broker
            .request(MessageEnvelope::new(to_server(), Req::Double(n)), PATIENCE)
            .await
            .unwrap();
        assert_eq!(doubled, 2 * n);
    }
    broker
        .request(
            MessageEnvelope::new(to_server(), Req::Ignore),
            Duration::from_millis(1),
        )
        .await
        .unwrap_err();
    broker.reply(MessageId::from_raw(u64::MAX), 0).unwrap_err();
    broker
        .send(MessageEnvelope::new(
            ActorAddress::named("nobody"),
            Req::Tick,
        ))
        .await
        .unwrap_err();
    let reported = Reported::since_last(&snapshotter);
    // Sent = delivered + undelivered.
    assert_eq!(
        reported.counter("airssys_rt_broker_delivered_total", &[]),
        9
    );
    assert_eq!(
        reported.counter(
            "airssys_rt_broker_undelivered_total",
            &[("cause", "unresolved")]
        ),
        1
    );
    assert_eq!(
        reported.counter("airssys_rt_broker_request_timeouts_total", &[]),
        1
    );
    assert_eq!(
        reported.counter("airssys_rt_broker_unknown_replies_total", &[]),
        1
    );
    assert_eq!(reported.samples("airssys_rt_broker_request_seconds"), 1);

    // An expired envelope is a dead letter, counted by reason.
    server
        .tell_envelope(MessageEnvelope::new(to_server(), Req::Tick).with_ttl(Duration::ZERO))
        .await
        .unwrap();
    // A batch of 64 handled messages is reported with a mailbox-depth sample.
    for _ in 0..64 {
        server.tell(Req::Tick).await.unwrap();
    }
    server.ask(Req::Sync, PATIENCE).await.unwrap();
    let reported = Reported::since_last(&snapshotter);
    assert_eq!(
        reported.counter("airssys_rt_dead_letters_total", &[("reason", "expired")]),
        1
    );
    assert!(reported.counter("airssys_rt_messages_handled_total", &[]) >= 64);
    assert!(reported.samples("airssys_rt_mailbox_depth") >= 1);

    // A supervised restart.
    let mut events = system.supervision_events();
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .intensity(5, PATIENCE)
                .child(ChildSpec::worker("server", move || Server(broker.clone()))),
        )
        .await
        .unwrap();
    supervisor
        .child::<Req>("server")
        .await
        .unwrap()
        .unwrap()
        .kill();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event, SupervisionEvent::ChildRestarted { .. }) {
            break;
        }
    }
    let reported = Reported::since_last(&snapshotter);
    assert_eq!(
        reported.counter(
            "airssys_rt_supervision_events_total",
            &[("kind", "child_restarted")]
        ),
        1
    );
}
