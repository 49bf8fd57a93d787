//! Tracing: every handled message gets a `handle` span naming the actor and
//! the message type, and an envelope carries its sender's span, so one
//! request can be followed across actors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use airssys_rt::address::ActorAddress;
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
use airssys_rt::prelude::*;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as the subscriber saw it created.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: &'static str,
    fields: HashMap<String, String>,
    parent: Option<u64>,
}

/// Records every new span with its fields and parent.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<HashMap<u64, Seen>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        struct Fields<'a>(&'a mut HashMap<String, String>);
        impl Visit for Fields<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut seen = Seen {
            name: attrs.metadata().name(),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        seen.parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.id().into_u64());
        self.0.lock().insert(id.into_u64(), seen);
    }
}

impl Recorder {
    fn handle_spans(&self) -> Vec<(u64, Seen)> {
        let mut spans: Vec<_> = self
            .0
            .lock()
            .iter()
            .filter(|(_, seen)| seen.name == "handle")
            .map(|(id, seen)| (*id, seen.clone()))
            .collect();
        spans.sort_by_key(|(id, _)| *id);
        spans
    }

    fn get(&self, id: u64) -> Option<Seen> {
        self.0.lock().get(&id).cloned()
    }
}

/// Passed along a chain of relays; the last one says it arrived.
#[derive(Debug)]
struct Hop(Option<oneshot::Sender<()>>);
impl Message for Hop {
    const MESSAGE_TYPE: &'static str = "test.hop";
}

struct Relay {
    broker: InMemoryMessageBroker<Hop, ()>,
    next: Option<&'static str>,
}

impl Actor for Relay {
    type Message = Hop;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        hop: Hop,
        _: &mut ActorContext<Hop>,
    ) -> Result<(), Infallible> {
        match (self.next, hop.0) {
            (Some(next), done) => {
                // Created inside this handler: it carries the handler's span.
                let envelope = MessageEnvelope::new(ActorAddress::named(next), Hop(done));
                self.broker
                    .send(envelope)
                    .await
                    .expect("next relay is registered");
            }
            (None, Some(done)) => {
                let _ = done.send(());
            }
            (None, None) => {}
        }
        Ok(())
    }
}

#[tokio::test]
async fn one_request_is_followed_across_actors() {
    let recorder = Recorder::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let broker = InMemoryMessageBroker::<Hop, ()>::new(&system);
    let first = system
        .spawn_builder()
        .register("first")
        .spawn(Relay {
            broker: broker.clone(),
            next: Some("second"),
        })
        .unwrap();
    let second = system
        .spawn_builder()
        .register("second")
        .spawn(Relay {
            broker: broker.clone(),
            next: None,
        })
        .unwrap();

    let request = tracing::info_span!("request");
    let (done, arrived) = oneshot::channel();
    let envelope =
        request.in_scope(|| MessageEnvelope::new(ActorAddress::named("first"), Hop(Some(done))));
    broker.send(envelope).await.unwrap();
    arrived.await.unwrap();

    let handled = recorder.handle_spans();
    assert_eq!(handled.len(), 2, "{handled:?}");
    let (first_span, at_first) = &handled[0];
    let (_, at_second) = &handled[1];
    assert_eq!(at_first.fields["actor"], first.id().to_string());
    assert_eq!(at_first.fields["message_type"], "test.hop");
    assert_eq!(at_first.fields["name"], "first");
    assert_eq!(at_second.fields["actor"], second.id().to_string());
    assert_eq!(
        recorder
            .get(at_first.parent.expect("has a parent"))
            .map(|s| s.name),
        Some("request"),
        "the first handler runs inside the request's span"
    );
    assert_eq!(
        at_second.parent,
        Some(*first_span),
        "the second handler runs inside the first handler's span"
    );
}

#[tokio::test]
async fn a_plain_tell_is_handled_in_its_own_span() {
    let recorder = Recorder::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let broker = InMemoryMessageBroker::<Hop, ()>::new(&system);
    let relay = system.spawn(Relay { broker, next: None }).unwrap();
    let (done, arrived) = oneshot::channel();
    relay.tell(Hop(Some(done))).await.unwrap();
    arrived.await.unwrap();
    let handled = recorder.handle_spans();
    assert_eq!(handled.len(), 1);
    let (_, seen) = &handled[0];
    assert_eq!(seen.fields["actor"], relay.id().to_string());
    assert_eq!(seen.fields["message_type"], "test.hop");
    assert!(
        !seen.fields.contains_key("name"),
        "an unnamed actor records no name"
    );
    assert_eq!(seen.parent, None);
}
