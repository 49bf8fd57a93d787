//! Streams into actors (`ActorContext::add_stream`, `ActorRef::add_stream`):
//! items arrive in order under the mailbox's backpressure, the end-of-stream
//! message comes once after the last item, dropped items are dead letters,
//! and the stream is dropped when its actor stops (and, for a stream started
//! in the actor, when it restarts).
//!
//! A stream's drop is observed through a channel it owns (`Sender::closed`,
//! or a oneshot receiver seeing its sender go): no sleeps, no timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airssys_rt::mailbox::DeadLetterReason;
use airssys_rt::prelude::*;
use futures::{Stream, StreamExt, stream};
use tokio::sync::{mpsc, oneshot};

/// A hang guard only: every wait below ends long before it on success.
const HANG: Duration = Duration::from_secs(10);

/// Items in the backpressure test.
const ITEMS: u64 = 200;

/// The `Block` mailbox's capacity in the backpressure test.
const CAPACITY: usize = 4;

/// How far the stream may run ahead of the handler: the queued items, the
/// one being handled and the one the forwarder holds while it waits.
const AHEAD: u64 = CAPACITY as u64 + 1 + 1;

#[derive(Debug)]
enum Msg {
    /// One stream item.
    Item(u64),
    /// The end-of-stream message.
    End,
    /// Starts a stream from inside the actor (`ActorContext::add_stream`)
    /// over the counted items of [`counted`].
    Feed(Counted),
    /// Starts a stream from inside the actor over a channel.
    Attach(mpsc::Receiver<u64>),
    /// Fails the handler; the actor restarts in place.
    Crash,
    /// Answers once every message before it was handled.
    Ping(ReplyTo<()>),
}

// By hand, not derived: this file also builds without the `macros` feature.
impl Message for Msg {
    const MESSAGE_TYPE: &'static str = "test.stream";
}

/// What a counted stream needs: how many items, a counter of the items
/// produced so far, and a guard dropped with the stream.
#[derive(Debug)]
struct Counted {
    items: u64,
    produced: Arc<AtomicU64>,
    dropped: oneshot::Sender<()>,
}

/// Items `0..items` as messages, counting each as it is produced; `dropped`
/// goes (and its receiver sees an error) when the stream is dropped.
fn counted(counted: Counted) -> impl Stream<Item = Msg> + Send + 'static {
    let Counted {
        items,
        produced,
        dropped,
    } = counted;
    stream::iter(0..items).map(move |i| {
        let _held_until_the_stream_is_dropped = &dropped;
        produced.fetch_add(1, Ordering::SeqCst);
        Msg::Item(i)
    })
}

/// The items of `channel` as messages; dropping the stream drops the
/// receiver, which `Sender::closed` observes.
fn channel_stream(channel: mpsc::Receiver<u64>) -> impl Stream<Item = Msg> + Send + 'static {
    stream::unfold(channel, |mut channel| async move {
        let item = channel.recv().await?;
        Some((Msg::Item(item), channel))
    })
}

#[derive(Debug, PartialEq)]
enum Event {
    /// An item, and how far the stream had run ahead of it (items produced
    /// minus items handled before it), at most, while it was handled.
    Item {
        item: u64,
        ahead: u64,
    },
    End,
}

/// Reports what it handles; optionally slow, optionally held at its first
/// item until a gate opens.
struct Sink {
    events: mpsc::UnboundedSender<Event>,
    /// Items produced by the counted stream, to measure how far ahead it runs.
    produced: Arc<AtomicU64>,
    /// Handle each item slowly, and the first only once the mailbox is full.
    slow: bool,
    /// Wait for this before handling the first item.
    gate: Option<oneshot::Receiver<()>>,
}

impl Sink {
    fn ahead_of(&self, item: u64) -> u64 {
        self.produced.load(Ordering::SeqCst).saturating_sub(item)
    }
}

impl Actor for Sink {
    type Message = Msg;
    type Error = ActorError;

    async fn handle_message(
        &mut self,
        msg: Msg,
        ctx: &mut ActorContext<Msg>,
    ) -> Result<(), ActorError> {
        match msg {
            Msg::Item(item) => {
                if let Some(gate) = self.gate.take() {
                    let _ = gate.await;
                }
                let mut ahead = self.ahead_of(item);
                if self.slow {
                    // The first item waits for a full mailbox, so the
                    // forwarder has had every chance to run ahead.
                    if item == 0 {
                        for _ in 0..100_000 {
                            if ctx.myself().mailbox_len() == CAPACITY {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                        assert_eq!(ctx.myself().mailbox_len(), CAPACITY, "the mailbox filled");
                    }
                    for _ in 0..10 {
                        tokio::task::yield_now().await;
                        ahead = ahead.max(self.ahead_of(item));
                    }
                }
                let _ = self.events.send(Event::Item { item, ahead });
            }
            Msg::End => {
                let _ = self.events.send(Event::End);
            }
            Msg::Feed(feed) => {
                ctx.add_stream(counted(feed), Some(Msg::End));
            }
            Msg::Attach(channel) => {
                ctx.add_stream(channel_stream(channel), Some(Msg::End));
            }
            Msg::Crash => return Err(ActorError::msg("restart requested")),
            Msg::Ping(reply) => {
                let _ = reply.reply(());
            }
        }
        Ok(())
    }

    async fn on_error(&mut self, _: ActorError, _: &ActorContext<Msg>) -> ErrorAction {
        ErrorAction::Restart
    }
}

/// A sink restarted in place on `Crash`, with its event channel.
fn sink(
    system: &ActorSystem,
    mailbox: MailboxConfig,
    produced: &Arc<AtomicU64>,
    slow: bool,
    gate: Option<oneshot::Receiver<()>>,
) -> (ActorRef<Msg>, mpsc::UnboundedReceiver<Event>) {
    let (events, seen) = mpsc::unbounded_channel();
    let produced = produced.clone();
    let mut gate = gate;
    let actor = system
        .spawn_builder()
        .mailbox(mailbox)
        .spawn_with_factory(move || Sink {
            events: events.clone(),
            produced: produced.clone(),
            slow,
            gate: gate.take(),
        })
        .unwrap();
    (actor, seen)
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(HANG, future).await {
        Ok(done) => done,
        Err(_) => panic!("hung waiting for {what}"),
    }
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    within("an event", events.recv())
        .await
        .expect("the actor is alive")
}

/// Waits until `task` is over.
async fn finished(task: &TaskHandle) {
    within("the task's end", async {
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

async fn ping(actor: &ActorRef<Msg>) {
    actor.ask(Msg::Ping, HANG).await.unwrap();
}

/// Runs `ITEMS` items through a slow actor's `Block` mailbox, the stream
/// started by the actor (`from_inside`) or from outside.
async fn a_fast_stream_is_held_back_by_a_block_mailbox(from_inside: bool) {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let mailbox = MailboxConfig::bounded(CAPACITY, Backpressure::Block);
    let (actor, mut events) = sink(&system, mailbox, &produced, true, None);
    let (dropped, stream_gone) = oneshot::channel();
    let feed = Counted {
        items: ITEMS,
        produced: produced.clone(),
        dropped,
    };
    let task = if from_inside {
        actor.tell(Msg::Feed(feed)).await.unwrap();
        None
    } else {
        Some(actor.add_stream(counted(feed), Some(Msg::End)))
    };

    for expected in 0..ITEMS {
        match next_event(&mut events).await {
            Event::Item { item, ahead } => {
                assert_eq!(item, expected, "items arrive in order");
                assert!(
                    ahead <= AHEAD,
                    "item {item}: the stream ran {ahead} items ahead (at most {AHEAD})"
                );
            }
            Event::End => panic!("the end came before item {expected}"),
        }
    }
    assert_eq!(next_event(&mut events).await, Event::End);
    // The stream is dropped once the end is sent: after that, nothing more
    // can come, and a ping flushes whatever was sent.
    assert!(within("the stream's drop", stream_gone).await.is_err());
    ping(&actor).await;
    assert_eq!(events.try_recv().ok(), None, "the end came exactly once");
    assert_eq!(produced.load(Ordering::SeqCst), ITEMS);
    if let Some(task) = task {
        finished(&task).await;
    }
    assert_eq!(system.dead_letters().total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_started_in_the_actor_obeys_a_block_mailbox_and_ends_once() {
    a_fast_stream_is_held_back_by_a_block_mailbox(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_added_from_outside_obeys_a_block_mailbox_and_ends_once() {
    a_fast_stream_is_held_back_by_a_block_mailbox(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_started_in_the_actor_is_dropped_when_it_restarts_and_when_it_stops() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let (actor, mut events) = sink(&system, MailboxConfig::unbounded(), &produced, false, None);

    // Restart: the stream goes with the old instance.
    let (feed, channel) = mpsc::channel(1);
    actor.tell(Msg::Attach(channel)).await.unwrap();
    feed.send(1).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Event::Item { item: 1, ahead: 0 }
    );
    actor.tell(Msg::Crash).await.unwrap();
    within("the stream's drop on restart", feed.closed()).await;
    ping(&actor).await;
    assert!(actor.is_alive());

    // Stop, while the stream waits for its next item.
    let (feed, channel) = mpsc::channel(1);
    actor.tell(Msg::Attach(channel)).await.unwrap();
    feed.send(2).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Event::Item { item: 2, ahead: 0 }
    );
    actor.stop();
    within("the stream's drop on stop", feed.closed()).await;
    within("the exit", actor.wait_for_exit()).await;
    // A dropped stream never sends its end.
    assert_eq!(events.try_recv().ok(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_added_from_outside_survives_a_restart_and_is_dropped_when_the_actor_stops() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let (actor, mut events) = sink(&system, MailboxConfig::unbounded(), &produced, false, None);
    let (feed, channel) = mpsc::channel(1);
    let task = actor.add_stream(channel_stream(channel), Some(Msg::End));

    feed.send(1).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Event::Item { item: 1, ahead: 0 }
    );
    // A restart in place keeps the stream: the new instance gets the next item.
    actor.tell(Msg::Crash).await.unwrap();
    feed.send(2).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Event::Item { item: 2, ahead: 0 }
    );
    assert!(!task.is_finished());

    // Stopped while the stream is pending (no item, no end in sight).
    actor.stop();
    within("the stream's drop on stop", feed.closed()).await;
    within("the exit", actor.wait_for_exit()).await;
    assert_eq!(events.try_recv().ok(), None);
    assert_eq!(system.dead_letters().total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_is_dropped_and_sends_no_end() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let (actor, mut events) = sink(&system, MailboxConfig::unbounded(), &produced, false, None);
    let (feed, channel) = mpsc::channel(1);
    let task = actor.add_stream(channel_stream(channel), Some(Msg::End));
    feed.send(1).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Event::Item { item: 1, ahead: 0 }
    );

    task.cancel();
    within("the stream's drop on cancel", feed.closed()).await;
    ping(&actor).await;
    assert_eq!(events.try_recv().ok(), None, "no end after a cancel");
    assert!(actor.is_alive());
}

/// A stream through a full mailbox that drops (`DropNewest`) or refuses
/// (`Reject`) what does not fit: every item is handled or a dead letter
/// (`DroppedNewest` either way), and the stream goes on to its end.
async fn items_a_full_mailbox_does_not_take_are_dead_letters(backpressure: Backpressure) {
    const SENT: u64 = 100;
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let (open, gate) = oneshot::channel();
    let mailbox = MailboxConfig::bounded(CAPACITY, backpressure);
    let (actor, mut events) = sink(&system, mailbox, &produced, false, Some(gate));
    let (dropped, _) = oneshot::channel();
    let feed = Counted {
        items: SENT,
        produced: produced.clone(),
        dropped,
    };
    let task = actor.add_stream(counted(feed), Some(Msg::End));

    // The actor holds its first item until the whole stream went by: the
    // mailbox filled up and dropped the rest, the end included or not.
    finished(&task).await;
    let dead = system.dead_letters().count(DeadLetterReason::DroppedNewest);
    assert!(dead > 0, "a full mailbox dropped items");
    // Everything else was taken: the held item and a full mailbox at most.
    let taken = SENT + 1 - dead;
    assert!(taken <= CAPACITY as u64 + 1, "{taken} taken");
    open.send(()).unwrap();

    let mut handled = Vec::new();
    let mut ends = 0;
    for _ in 0..taken {
        match next_event(&mut events).await {
            Event::Item { item, .. } => handled.push(item),
            Event::End => ends += 1,
        }
    }
    // The mailbox is empty now: a ping gets in, and flushes anything more.
    ping(&actor).await;
    assert_eq!(
        events.try_recv().ok(),
        None,
        "nothing beyond what was taken"
    );
    assert!(handled.is_sorted(), "in order: {handled:?}");
    assert!(ends <= 1);
    assert_eq!(produced.load(Ordering::SeqCst), SENT, "the stream went on");
    if backpressure == Backpressure::DropNewest {
        assert_eq!(actor.dropped_messages(), dead);
    }
    assert_eq!(system.dead_letters().total(), dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_a_drop_newest_mailbox_drops_are_dead_letters() {
    items_a_full_mailbox_does_not_take_are_dead_letters(Backpressure::DropNewest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_a_full_reject_mailbox_refuses_are_dead_letters_and_the_stream_goes_on() {
    items_a_full_mailbox_does_not_take_are_dead_letters(Backpressure::Reject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_held_when_the_actor_stops_is_a_dead_letter_and_the_stream_ends_there() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let (open, gate) = oneshot::channel();
    let mailbox = MailboxConfig::bounded(CAPACITY, Backpressure::Block);
    let (actor, mut events) = sink(&system, mailbox, &produced, false, Some(gate));
    let (dropped, stream_gone) = oneshot::channel();
    let feed = Counted {
        items: ITEMS,
        produced: produced.clone(),
        dropped,
    };
    let task = actor.add_stream(counted(feed), Some(Msg::End));

    // Item 0 is held at the gate, the mailbox is full, the forwarder holds
    // one more item and waits for room.
    within("a full mailbox and a held item", async {
        while !(actor.mailbox_len() == CAPACITY && produced.load(Ordering::SeqCst) == AHEAD) {
            tokio::task::yield_now().await;
        }
    })
    .await;
    actor.stop();
    open.send(()).unwrap();
    within("the exit", actor.wait_for_exit()).await;
    assert!(within("the stream's drop", stream_gone).await.is_err());
    finished(&task).await;

    assert_eq!(
        next_event(&mut events).await,
        Event::Item {
            item: 0,
            ahead: AHEAD
        }
    );
    assert_eq!(events.try_recv().ok(), None, "no more items, and no end");
    // The queued items and the held one: nothing else was taken from the
    // stream, and nothing went missing.
    assert_eq!(produced.load(Ordering::SeqCst), AHEAD);
    assert_eq!(
        system.dead_letters().count(DeadLetterReason::ActorStopped),
        AHEAD - 1
    );
    assert_eq!(system.dead_letters().total(), AHEAD - 1);
}
