//! WebAssembly actors against real guests (WAT in `tests/wasm/`): round
//! trips and kept state, typed values through postcard, send and clock
//! capabilities with their activity records, fuel, memory and message size
//! limits, traps under a supervisor (a fresh instance of the same compiled
//! module), a looping guest that cannot stall its thread, modules that do
//! not compile or do not instantiate, and identical bytes compiled once even
//! when raced.
#![cfg(feature = "wasm")]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use airssys_rt::integration::osl::{
    ActivityLog, ActivityRecord, MemorySink, Operation, Outcome, SecurityContext,
};
use airssys_rt::integration::wasm::{
    DENIED, MAX_GUEST_MEMORY_BYTES, REFUSED, SENT, UNKNOWN_ADDRESS, WasmActor, WasmError,
    WasmLimit, WasmLimits, WasmMessage, WasmSpec, decode, encode,
};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::{SupervisionEvent, SupervisorError};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Hang guard for waits that must end; never reached in a passing run.
const PATIENCE: Duration = Duration::from_secs(30);

/// Adds each message's first byte to a total; answers with the total.
const COUNTER: &str = include_str!("wasm/counter.wat");
/// Answers a request with its own bytes.
const ECHO: &str = include_str!("wasm/echo.wat");
/// `[name length][name][payload]`: sends the payload, answers the status.
const SENDER: &str = include_str!("wasm/sender.wat");
/// Answers with `clock_ms()`.
const CLOCK: &str = include_str!("wasm/clock.wat");
/// Tells the actor its message names (if any), then loops forever.
const SPIN: &str = include_str!("wasm/spin.wat");
/// Grows memory by as many pages as asked; answers its size in pages.
const GROW: &str = include_str!("wasm/grow.wat");
/// `[op][len]`: replies (op 0) or sends to "sink" (op 1) `len` bytes.
const BLAST: &str = include_str!("wasm/blast.wat");
/// A counter that executes `unreachable` on byte 255.
const TRAP: &str = include_str!("wasm/trap.wat");
/// No `handle` export.
const NO_HANDLE: &str = include_str!("wasm/no_handle.wat");
/// Imports `airssys.open`, which the host does not give.
const BAD_IMPORT: &str = include_str!("wasm/bad_import.wat");

fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}

fn spec(wat: &str) -> WasmSpec {
    WasmSpec::from_wat(wat).expect("the guest compiles")
}

fn spawn(system: &ActorSystem, spec: WasmSpec) -> ActorRef<WasmMessage> {
    system.spawn(WasmActor::new(spec)).expect("spawned")
}

/// Default limits with `change` applied.
fn limits(change: impl FnOnce(&mut WasmLimits)) -> WasmLimits {
    let mut limits = WasmLimits::default();
    change(&mut limits);
    limits
}

/// Asks the guest to handle `bytes`; its reply, or why it failed.
async fn ask(
    actor: &ActorRef<WasmMessage>,
    bytes: impl Into<Vec<u8>>,
) -> Result<Vec<u8>, WasmError> {
    let bytes = bytes.into();
    actor
        .ask(|reply| WasmMessage::Ask(bytes, reply), PATIENCE)
        .await
        .expect("the wasm actor answers")
}

async fn tell(actor: &ActorRef<WasmMessage>, bytes: impl Into<Vec<u8>>) {
    actor
        .tell(WasmMessage::Tell(bytes.into()))
        .await
        .expect("the wasm actor takes messages");
}

async fn exit(actor: &ActorRef<WasmMessage>) -> ExitReason {
    tokio::time::timeout(PATIENCE, actor.wait_for_exit())
        .await
        .expect("the actor exits")
}

/// A counter's answer: its total (u64, little-endian).
fn total(answer: Result<Vec<u8>, WasmError>) -> u64 {
    let bytes = answer.expect("the counter answers");
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

/// A host call's status, as a guest answers it (i32, little-endian).
fn status(answer: Result<Vec<u8>, WasmError>) -> i32 {
    let bytes = answer.expect("the guest answers");
    i32::from_le_bytes(bytes.try_into().expect("4 bytes"))
}

/// A command for the sender guest: send `payload` to `name`.
fn send_command(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut command = vec![u8::try_from(name.len()).expect("a short name")];
    command.extend_from_slice(name.as_bytes());
    command.extend_from_slice(payload);
    command
}

/// A command for the blast guest: pass out `len` bytes, by reply (op 0) or
/// by a send to "sink" (op 1).
fn blast_command(op: u8, len: u32) -> Vec<u8> {
    let mut command = vec![op];
    command.extend_from_slice(&len.to_le_bytes());
    command
}

/// A log that records to the returned memory sink.
fn audit() -> (ActivityLog, MemorySink) {
    let memory = MemorySink::default();
    (ActivityLog::new().with_sink(memory.clone()), memory)
}

/// The denials of `operation` recorded so far.
fn denials(memory: &MemorySink, operation: Operation) -> Vec<ActivityRecord> {
    memory
        .records()
        .into_iter()
        .filter(|r| r.operation == operation && matches!(r.outcome, Outcome::Denied(_)))
        .collect()
}

/// Whether a failed actor's exit reason is an escalated failure whose text
/// holds every one of `words`.
fn escalated_with(reason: &ExitReason, words: &[&str]) -> bool {
    matches!(reason, ExitReason::Escalated(text) if words.iter().all(|w| text.contains(w)))
}

// ---------------------------------------------------------------------------
// A native actor taking Wasm messages
// ---------------------------------------------------------------------------

/// Native, takes `WasmMessage`: keeps every tell (also forwarded to a
/// channel the test reads) and answers a request with all tells so far,
/// postcard-encoded. With a hold, it stops on its first tell until released.
struct Sink {
    seen: Vec<Vec<u8>>,
    forward: mpsc::UnboundedSender<Vec<u8>>,
    hold: Option<oneshot::Receiver<()>>,
}

impl Actor for Sink {
    type Message = WasmMessage;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        message: WasmMessage,
        _: &mut ActorContext<WasmMessage>,
    ) -> Result<(), Infallible> {
        match message {
            WasmMessage::Tell(bytes) => {
                self.seen.push(bytes.clone());
                let _ = self.forward.send(bytes);
                if let Some(release) = self.hold.take() {
                    let _ = release.await;
                }
            }
            WasmMessage::Ask(_, reply) => {
                let _ = reply.reply(Ok(encode(&self.seen).expect("encodes")));
            }
        }
        Ok(())
    }
}

/// A native actor that does not take Wasm messages.
struct Native;

#[derive(Debug)]
struct Ping;

impl Message for Ping {
    const MESSAGE_TYPE: &'static str = "test.ping";
}

impl Actor for Native {
    type Message = Ping;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: Ping,
        _: &mut ActorContext<Ping>,
    ) -> Result<(), Infallible> {
        Ok(())
    }
}

type Tells = mpsc::UnboundedReceiver<Vec<u8>>;

/// A sink registered as `name`.
fn sink(system: &ActorSystem, name: &str) -> (ActorRef<WasmMessage>, Tells) {
    sink_with(system, name, None, None)
}

fn sink_with(
    system: &ActorSystem,
    name: &str,
    capacity: Option<usize>,
    hold: Option<oneshot::Receiver<()>>,
) -> (ActorRef<WasmMessage>, Tells) {
    let (forward, tells) = mpsc::unbounded_channel();
    let mut builder = system.spawn_builder().register(name);
    if let Some(capacity) = capacity {
        builder = builder.bounded(capacity, Backpressure::Reject);
    }
    let actor = builder
        .spawn(Sink {
            seen: Vec::new(),
            forward,
            hold,
        })
        .expect("spawned");
    (actor, tells)
}

/// Every tell the sink has handled (a request queues behind earlier tells).
async fn seen(sink: &ActorRef<WasmMessage>) -> Vec<Vec<u8>> {
    let answer = ask(sink, Vec::new()).await.expect("the sink answers");
    decode(&answer).expect("decodes")
}

async fn next_tell(tells: &mut Tells) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, tells.recv())
        .await
        .expect("hung waiting for a tell")
        .expect("the sink is alive")
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_counter_keeps_its_total_across_tells_and_asks() {
    let system = system();
    let counter = spawn(&system, spec(COUNTER));
    tell(&counter, [2]).await;
    tell(&counter, [3]).await;
    assert_eq!(total(ask(&counter, [4]).await), 9);
    assert_eq!(total(ask(&counter, []).await), 9, "an empty message adds 0");
    tell(&counter, [250]).await;
    assert_eq!(total(ask(&counter, [0]).await), 259);

    // A second instance of the same spec has a total of its own.
    let other = spawn(&system, spec(COUNTER));
    assert_eq!(total(ask(&other, [1]).await), 1);
    assert_eq!(total(ask(&counter, [1]).await), 260);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    item: String,
    quantity: Option<u16>,
    tags: Vec<String>,
    price: f64,
}

#[tokio::test]
async fn typed_values_round_trip_through_an_echo_guest() {
    let system = system();
    let echo = spawn(&system, spec(ECHO));
    let order = Order {
        id: 1 << 40,
        item: "widget — large".into(),
        quantity: Some(300),
        tags: vec!["urgent".into(), String::new()],
        price: 12.5,
    };
    let bytes = encode(&order).expect("encodes");
    let answer = ask(&echo, bytes.clone()).await.expect("echoed");
    assert_eq!(answer, bytes, "the guest returns the bytes unchanged");
    assert_eq!(decode::<Order>(&answer).expect("decodes"), order);
    // Decoding really checks the bytes: a cut-off value does not decode.
    assert!(decode::<Order>(&answer[..answer.len() - 1]).is_err());

    assert_eq!(ask(&echo, []).await.expect("echoed"), Vec::<u8>::new());
    // A tell is handled (the guest's reply is refused: nothing to answer)
    // and the actor goes on.
    tell(&echo, b"told".to_vec()).await;
    let again = encode(&vec![1u32, 2, 3]).expect("encodes");
    let answer = ask(&echo, again).await.expect("echoed");
    assert_eq!(decode::<Vec<u32>>(&answer).expect("decodes"), [1, 2, 3]);
}

// ---------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_guest_sends_only_to_names_it_was_granted() {
    let system = system();
    let (log, memory) = audit();
    let (granted, mut granted_tells) = sink(&system, "sink");
    let (secret, _) = sink(&system, "secret");
    let sender = spawn(
        &system,
        spec(SENDER)
            .grant_send("sink")
            .grant_send("nobody")
            .grant_send("native")
            .audited(SecurityContext::new("guest-7"), log),
    );

    // Granted and registered: delivered.
    assert_eq!(
        status(ask(&sender, send_command("sink", b"hello")).await),
        SENT
    );
    assert_eq!(next_tell(&mut granted_tells).await, b"hello");
    assert!(denials(&memory, Operation::WasmSend).is_empty());

    // Registered, but not granted: DENIED, recorded, not delivered.
    assert_eq!(
        status(ask(&sender, send_command("secret", b"psst")).await),
        DENIED
    );
    let denied = denials(&memory, Operation::WasmSend);
    assert_eq!(denied.len(), 1, "one denial expected in {denied:#?}");
    assert_eq!(denied[0].target, "secret");
    assert_eq!(denied[0].principal, "guest-7");
    assert!(
        seen(&secret).await.is_empty(),
        "a denied send is not delivered"
    );

    // Granted, but nobody has the name, or not an actor taking Wasm
    // messages.
    assert_eq!(
        status(ask(&sender, send_command("nobody", b"hi")).await),
        UNKNOWN_ADDRESS
    );
    let native = system
        .spawn_builder()
        .register("native")
        .spawn(Native)
        .expect("spawned");
    assert_eq!(
        status(ask(&sender, send_command("native", b"hi")).await),
        UNKNOWN_ADDRESS
    );
    assert!(native.is_alive());
    assert_eq!(denials(&memory, Operation::WasmSend).len(), 1);

    // Refusals are answers, not failures: the guest goes on.
    assert_eq!(
        status(ask(&sender, send_command("sink", b"again")).await),
        SENT
    );
    assert_eq!(seen(&granted).await, [b"hello".to_vec(), b"again".to_vec()]);
    assert!(sender.is_alive());
}

#[tokio::test]
async fn a_send_to_a_full_mailbox_is_refused() {
    let system = system();
    let (release, hold) = oneshot::channel();
    let (full, mut tells) = sink_with(&system, "full", Some(1), Some(hold));
    let sender = spawn(&system, spec(SENDER).grant_send("full"));
    // The sink holds on its first tell; a second fills its one slot.
    full.tell(WasmMessage::Tell(b"first".to_vec()))
        .await
        .unwrap();
    assert_eq!(next_tell(&mut tells).await, b"first");
    full.tell(WasmMessage::Tell(b"second".to_vec()))
        .await
        .unwrap();

    assert_eq!(
        status(ask(&sender, send_command("full", b"third")).await),
        REFUSED
    );

    release.send(()).unwrap();
    assert_eq!(next_tell(&mut tells).await, b"second");
    assert_eq!(seen(&full).await, [b"first".to_vec(), b"second".to_vec()]);
}

/// Milliseconds since the Unix epoch, by the test's own clock.
fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn the_clock_is_denied_unless_granted() {
    let system = system();
    let (log, memory) = audit();
    let context = SecurityContext::new("clock-reader");

    let ungranted = spawn(&system, spec(CLOCK).audited(context.clone(), log.clone()));
    let answer = ask(&ungranted, []).await.expect("answers");
    assert_eq!(
        i64::from_le_bytes(answer.try_into().unwrap()),
        i64::from(DENIED)
    );
    let denied = denials(&memory, Operation::WasmClock);
    assert_eq!(denied.len(), 1, "one denial expected in {denied:#?}");
    assert_eq!(denied[0].principal, "clock-reader");

    let granted = spawn(&system, spec(CLOCK).grant_clock().audited(context, log));
    let before = wall_ms();
    let answer = ask(&granted, []).await.expect("answers");
    let after = wall_ms();
    let read = i64::from_le_bytes(answer.try_into().unwrap());
    // The runtime's clock is derived from a monotonic one re-anchored each
    // second, so allow it a little skew against the test's own reading.
    let skew = 5_000;
    assert!(
        before - skew <= read && read <= after + skew,
        "clock_ms() = {read}, expected about {before}..={after}"
    );
    assert_eq!(denials(&memory, Operation::WasmClock).len(), 1);
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_endless_loop_runs_out_of_fuel() {
    let system = system();
    let spinner = spec(SPIN).limits(limits(|l| l.fuel_per_message = 100_000));
    let asked = spawn(&system, spinner.clone());
    let error = ask(&asked, []).await.expect_err("the loop never answers");
    assert!(
        matches!(
            error,
            WasmError::Limit {
                limit: WasmLimit::Fuel(100_000),
                kind: "a request",
                ..
            }
        ),
        "{error:?}"
    );
    let reason = exit(&asked).await;
    assert!(escalated_with(&reason, &["fuel"]), "{reason:?}");

    // A tell fails the actor the same way.
    let told = spawn(&system, spinner);
    tell(&told, []).await;
    let reason = exit(&told).await;
    assert!(escalated_with(&reason, &["fuel", "a tell"]), "{reason:?}");
}

#[tokio::test]
async fn fuel_is_a_budget_per_message() {
    let system = system();
    // A few dozen fuel a message: 200 messages need far more than 1,000 in
    // all, but each fits its own.
    let counter = spawn(
        &system,
        spec(COUNTER).limits(limits(|l| l.fuel_per_message = 1_000)),
    );
    for _ in 0..199 {
        tell(&counter, [1]).await;
    }
    assert_eq!(total(ask(&counter, [1]).await), 200);
}

#[tokio::test]
async fn growing_memory_past_the_limit_fails_the_guest() {
    const PAGE: usize = 64 << 10;
    let system = system();
    let grower = spawn(
        &system,
        spec(GROW).limits(limits(|l| l.max_memory_bytes = 4 * PAGE)),
    );
    // Up to the limit: 1 page to start with, 3 more.
    assert_eq!(status(ask(&grower, 3u32.to_le_bytes()).await), 4);
    // Then without bound.
    let error = ask(&grower, u32::MAX.to_le_bytes())
        .await
        .expect_err("refused");
    assert!(
        matches!(
            error,
            WasmError::Limit {
                limit: WasmLimit::Memory(bytes),
                ..
            } if bytes == 4 * PAGE
        ),
        "{error:?}"
    );
    let reason = exit(&grower).await;
    assert!(escalated_with(&reason, &["memory limit"]), "{reason:?}");
}

#[tokio::test]
async fn memory_is_capped_at_the_pool_slot_whatever_the_limit_says() {
    const PAGE: usize = 64 << 10;
    let system = system();
    let asked = limits(|l| l.max_memory_bytes = 1 << 30);
    let capped = spec(GROW).limits(asked);
    assert_eq!(
        capped.current_limits().max_memory_bytes,
        MAX_GUEST_MEMORY_BYTES
    );
    let grower = spawn(&system, capped);
    // Up to the cap: 1 page to start with, the rest now.
    let pages = (MAX_GUEST_MEMORY_BYTES / PAGE) as u32;
    assert_eq!(
        status(ask(&grower, (pages - 1).to_le_bytes()).await),
        pages as i32
    );
    let error = ask(&grower, 1u32.to_le_bytes()).await.expect_err("refused");
    assert!(
        matches!(
            error,
            WasmError::Limit {
                limit: WasmLimit::Memory(bytes),
                ..
            } if bytes == MAX_GUEST_MEMORY_BYTES
        ),
        "{error:?}"
    );
}

/// More instances at once than the pooled engine holds (1,000): the rest
/// start on the overflow engine and behave the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_beyond_the_pool_run_on_demand() {
    const INSTANCES: usize = 1_100;
    let system = system();
    let counter = spec(COUNTER);
    let counters: Vec<_> = (0..INSTANCES)
        .map(|_| spawn(&system, counter.clone()))
        .collect();
    // Every instance is live (none has exited) and keeps its own total.
    for (i, actor) in counters.iter().enumerate() {
        let step = (i % 200) as u8;
        tell(actor, [step]).await;
        assert_eq!(
            total(ask(actor, [1]).await),
            u64::from(step) + 1,
            "instance {i}"
        );
    }
}

#[tokio::test]
async fn a_guest_passing_out_too_much_fails() {
    let system = system();
    let (sink, _) = sink(&system, "sink");
    let blast = spec(BLAST)
        .grant_send("sink")
        .limits(limits(|l| l.max_message_bytes = 1_000));
    let size_limit = |error: &WasmError| {
        matches!(
            error,
            WasmError::Limit {
                limit: WasmLimit::MessageSize(1_000),
                ..
            }
        )
    };

    // At the limit, replies and sends go through.
    let replying = spawn(&system, blast.clone());
    assert_eq!(
        ask(&replying, blast_command(0, 1_000)).await.unwrap().len(),
        1_000
    );
    assert_eq!(status(ask(&replying, blast_command(1, 1_000)).await), SENT);
    let delivered: Vec<usize> = seen(&sink).await.iter().map(Vec::len).collect();
    assert_eq!(delivered, [1_000]);

    // One byte over: a reply fails the guest.
    let error = ask(&replying, blast_command(0, 1_001)).await.unwrap_err();
    assert!(size_limit(&error), "{error:?}");
    let reason = exit(&replying).await;
    assert!(escalated_with(&reason, &["over 1000 bytes"]), "{reason:?}");

    // And so does a send, which is not delivered.
    let sending = spawn(&system, blast);
    let error = ask(&sending, blast_command(1, 1_001)).await.unwrap_err();
    assert!(size_limit(&error), "{error:?}");
    let reason = exit(&sending).await;
    assert!(escalated_with(&reason, &["over 1000 bytes"]), "{reason:?}");
    let delivered: Vec<usize> = seen(&sink).await.iter().map(Vec::len).collect();
    assert_eq!(delivered, [1_000], "the oversized send was not delivered");
}

#[tokio::test]
async fn an_oversized_message_is_refused_without_failing_the_guest() {
    let system = system();
    let echo = spawn(
        &system,
        spec(ECHO).limits(limits(|l| l.max_message_bytes = 1_000)),
    );
    assert_eq!(ask(&echo, vec![7; 1_000]).await.unwrap(), vec![7; 1_000]);
    assert_eq!(
        ask(&echo, vec![7; 1_001]).await,
        Err(WasmError::MessageTooLarge {
            len: 1_001,
            max: 1_000
        })
    );
    tell(&echo, vec![7; 5_000]).await;
    assert_eq!(
        ask(&echo, b"still here".to_vec()).await.unwrap(),
        b"still here"
    );
    assert!(echo.is_alive());
}

// ---------------------------------------------------------------------------
// Traps and supervision
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_trapped_guest_restarts_fresh_from_the_same_module() {
    let system = system();
    let mut events = system.supervision_events();
    let first = spec(TRAP);
    // The factory compiles from the bytes on every start, as a caller
    // without a spec at hand would; identical bytes give the same module.
    let built = Arc::new(Mutex::new(Vec::<WasmSpec>::new()));
    let record = built.clone();
    let steady = spec(COUNTER);
    let supervisor = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .intensity(3, PATIENCE)
                .child(ChildSpec::worker("flaky", move || {
                    let spec = WasmSpec::from_bytes(TRAP.as_bytes()).expect("compiles");
                    record.lock().push(spec.clone());
                    WasmActor::new(spec)
                }))
                .child(ChildSpec::worker("steady", move || {
                    WasmActor::new(steady.clone())
                })),
        )
        .await
        .unwrap();
    let child = |id: &'static str| {
        let supervisor = supervisor.clone();
        async move {
            supervisor
                .child::<WasmMessage>(id)
                .await
                .unwrap()
                .expect("running")
        }
    };
    let flaky = child("flaky").await;
    let steady = child("steady").await;
    assert_eq!(total(ask(&flaky, [5]).await), 5);
    assert_eq!(total(ask(&steady, [7]).await), 7);

    let error = ask(&flaky, [255]).await.expect_err("the guest traps");
    assert!(
        matches!(&error, WasmError::Trap { trap, kind: "a request", .. } if trap.contains("unreachable")),
        "{error:?}"
    );
    let mut seen_events = Vec::new();
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("the supervisor restarts the child")
            .expect("events flow");
        let restarted =
            matches!(&event, SupervisionEvent::ChildRestarted { child, .. } if child == "flaky");
        seen_events.push(event);
        if restarted {
            break;
        }
    }
    let exits: Vec<_> = seen_events
        .iter()
        .filter_map(|event| match event {
            SupervisionEvent::ChildExited { child, reason, .. } => Some((child, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(exits.len(), 1, "{seen_events:#?}");
    assert_eq!(exits[0].0, "flaky");
    assert!(
        escalated_with(exits[0].1, &["trapped", "unreachable"]),
        "{:?}",
        exits[0].1
    );
    assert!(
        !seen_events.iter().any(|event| matches!(event,
            SupervisionEvent::ChildRestarted { child, .. } if child == "steady")),
        "{seen_events:#?}"
    );
    assert_eq!(exit(&flaky).await, *exits[0].1);

    // A fresh instance: its total starts again.
    let restarted = child("flaky").await;
    assert_ne!(restarted.id(), flaky.id());
    assert_eq!(total(ask(&restarted, [1]).await), 1);
    // The sibling was not touched: same instance, same total.
    let still = child("steady").await;
    assert_eq!(still.id(), steady.id());
    assert_eq!(total(ask(&still, [0]).await), 7);

    // Both starts ran the module compiled for `first`; another module is
    // not the same.
    let built = built.lock().clone();
    assert_eq!(built.len(), 2);
    assert!(built.iter().all(|spec| spec.same_module(&first)));
    assert!(spec(TRAP).same_module(&spec(TRAP).grant_clock()));
    assert!(!first.same_module(&spec(COUNTER)));
}

// ---------------------------------------------------------------------------
// A looping guest and its thread
// ---------------------------------------------------------------------------

/// On a runtime with one thread, a guest looping with a practically endless
/// budget still lets the actor next to it answer (it yields every 10,000
/// fuel), and can be killed. The runtime runs on a thread of its own,
/// watched from the test's, so a guest that never yields fails the test
/// instead of hanging it.
#[test]
fn a_looping_guest_cannot_stall_its_thread() {
    let (done, finished) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(a_looping_guest_on_one_thread());
        let _ = done.send(());
    });
    match finished.recv_timeout(PATIENCE) {
        Ok(()) => runner.join().expect("finished"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().expect_err("it panicked"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the runtime's only thread stalled: the looping guest never yielded")
        }
    }
}

async fn a_looping_guest_on_one_thread() {
    let system = system();
    let (probe, mut tells) = sink(&system, "started");
    let spinner = spawn(
        &system,
        spec(SPIN)
            .grant_send("started")
            .limits(limits(|l| l.fuel_per_message = 1_000_000_000_000)),
    );
    let pending = tokio::spawn({
        let spinner = spinner.clone();
        async move {
            spinner
                .ask(
                    |reply| WasmMessage::Ask(b"started".to_vec(), reply),
                    PATIENCE,
                )
                .await
        }
    });
    // The guest has started (and is looping) once this arrives, which it
    // only can if the guest yields.
    assert_eq!(next_tell(&mut tells).await, b"started");
    for _ in 0..3 {
        assert_eq!(seen(&probe).await, [b"started".to_vec()]);
    }
    assert!(spinner.is_alive(), "{:?}", spinner.exit_reason());
    assert!(
        !pending.is_finished(),
        "the looping guest's request is pending"
    );

    spinner.kill();
    assert_eq!(exit(&spinner).await, ExitReason::Killed);
    let answer = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("the ask ends")
        .expect("the ask task did not panic");
    assert!(
        matches!(answer, Err(AskError::NoReply { .. })),
        "{answer:?}"
    );
}

// ---------------------------------------------------------------------------
// Bad modules
// ---------------------------------------------------------------------------

#[test]
fn a_module_that_does_not_compile_is_refused() {
    let cases: [&[u8]; 3] = [
        // Not WAT.
        b"(module (func",
        // Parses, but does not validate: the result is missing.
        b"(module (func (result i32)))",
        // A binary header, then garbage.
        b"\0asm\x01\0\0\0garbage",
    ];
    for bytes in cases {
        match WasmSpec::from_bytes(bytes) {
            Err(WasmError::Compile(why)) => assert!(!why.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }
}

#[tokio::test]
async fn a_module_that_does_not_instantiate_fails_to_start() {
    let system = system();
    for (wat, missing) in [(NO_HANDLE, "handle"), (BAD_IMPORT, "open")] {
        let actor = spawn(&system, spec(wat));
        let reason = exit(&actor).await;
        assert!(
            matches!(&reason, ExitReason::Error(text)
                if text.contains("does not instantiate") && text.contains(missing)),
            "{reason:?}"
        );
    }

    let supervisor = system
        .start_supervisor(SupervisorSpec::one_for_one())
        .await
        .unwrap();
    let no_handle = spec(NO_HANDLE);
    let started = supervisor
        .start_child(ChildSpec::worker("broken", move || {
            WasmActor::new(no_handle.clone())
        }))
        .await;
    match started {
        Err(SupervisorError::StartFailed { child, reason }) => {
            assert_eq!(child, "broken");
            assert!(
                matches!(&reason, ExitReason::Error(text) if text.contains("does not instantiate")),
                "{reason:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(supervisor.which_children().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Compiling once
// ---------------------------------------------------------------------------

/// Specs made at the same time from the same bytes (say, the factories of
/// a pool's members on several workers) still share one compiled module.
#[test]
fn racing_compiles_of_identical_bytes_share_one_module() {
    // Bytes no other test compiles, so the first compile happens here.
    let wat = format!("{COUNTER}\n;; raced by {}", std::process::id());
    let barrier = std::sync::Barrier::new(8);
    let specs: Vec<WasmSpec> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    spec(&wat)
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("compiled"))
            .collect()
    });
    assert!(specs.iter().all(|spec| spec.same_module(&specs[0])));
}
