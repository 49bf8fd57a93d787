//! Pub/sub topics: every live subscriber gets each message; stopped
//! subscribers are removed automatically; refusals are counted, not hidden.

use airssys_rt::broker::{PublishReport, RegistryError};
use airssys_rt::prelude::*;
use airssys_rt::util::ActorId;
use std::convert::Infallible;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
struct Headline(u64);

impl Message for Headline {
    const MESSAGE_TYPE: &'static str = "test.news";
}

/// Forwards what it reads, tagged with its own id, to the test.
struct Reader(mpsc::UnboundedSender<(ActorId, u64)>);

impl Actor for Reader {
    type Message = Headline;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        Headline(n): Headline,
        ctx: &mut ActorContext<Headline>,
    ) -> Result<(), Infallible> {
        let _ = self.0.send((ctx.id(), n));
        Ok(())
    }
}

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

#[tokio::test]
async fn every_subscriber_gets_every_message_in_order() {
    let system = system();
    let topic = system.topic::<Headline>("news").unwrap();
    let (read, mut reads) = mpsc::unbounded_channel();
    let readers: Vec<_> = (0..3)
        .map(|_| system.spawn(Reader(read.clone())).unwrap())
        .collect();
    for reader in &readers {
        topic.subscribe(reader);
        topic.subscribe(reader); // twice is once
    }
    for n in 0..5 {
        let report = topic.publish(Headline(n)).await;
        assert_eq!(
            report,
            PublishReport {
                delivered: 3,
                refused: 0,
                removed: 0
            }
        );
    }
    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); 3];
    for _ in 0..15 {
        let (reader, n) = reads.recv().await.expect("a reader read");
        let at = readers
            .iter()
            .position(|r| r.id() == reader)
            .expect("a subscriber");
        seen[at].push(n);
    }
    assert!(seen.iter().all(|s| s == &[0, 1, 2, 3, 4]), "{seen:?}");
    // The same name gives the same topic.
    assert_eq!(
        system.topic::<Headline>("news").unwrap().subscriber_count(),
        3
    );
    assert!(topic.unsubscribe(&readers[0]));
    assert_eq!(topic.subscriber_count(), 2);
}

#[tokio::test]
async fn stopped_subscribers_are_removed_automatically() {
    let system = system();
    let topic = system.topic::<Headline>("news").unwrap();
    let (read, _reads) = mpsc::unbounded_channel();
    let stays = system.spawn(Reader(read.clone())).unwrap();
    let leaves = system.spawn(Reader(read.clone())).unwrap();
    let killed = system.spawn(Reader(read)).unwrap();
    for reader in [&stays, &leaves, &killed] {
        topic.subscribe(reader);
    }
    leaves.stop();
    leaves.wait_for_exit().await;
    let report = topic.publish(Headline(1)).await;
    assert_eq!(
        report,
        PublishReport {
            delivered: 2,
            refused: 0,
            removed: 1
        }
    );
    killed.kill();
    killed.wait_for_exit().await;
    assert_eq!(
        topic.subscriber_count(),
        1,
        "counting also drops stopped subscribers"
    );
}

#[tokio::test]
async fn a_full_mailbox_refusal_is_reported() {
    let system = system();
    let topic = system.topic::<Headline>("news").unwrap();
    let (read, _reads) = mpsc::unbounded_channel();
    let tiny = system
        .spawn_builder()
        .bounded(1, Backpressure::Reject)
        .spawn(Reader(read))
        .unwrap();
    topic.subscribe(&tiny);
    let mut total = PublishReport::default();
    for n in 0..50 {
        let report = topic.publish(Headline(n)).await;
        total.delivered += report.delivered;
        total.refused += report.refused;
    }
    // On this single-threaded test runtime the reader does not run while
    // the loop publishes without yielding: one message fits, the rest are
    // refused, and every one is accounted for.
    assert_eq!((total.delivered, total.refused), (1, 49));
}

#[tokio::test]
async fn a_topic_has_one_message_type() {
    let system = system();
    system.topic::<Headline>("news").unwrap();
    assert_eq!(
        system.topic::<u64>("news").unwrap_err(),
        RegistryError::WrongMessageType {
            name: "news".into(),
            expected: "u64",
            registered: "test.news"
        }
    );
}
