//! A guided tour of airssys-rt: run it with
//! `cargo run --release --example tour`.
//!
//! 1. a counter actor driven with `tell` and `ask`
//! 2. a bounded mailbox rejecting messages under load (and giving them back)
//! 3. a priority mailbox serving urgent messages first
//! 4. a panicking handler, reported as an exit reason
//! 5. composing actors: an ask piped off the handler's turn, a stream of
//!    readings, a watch that reports a death, and a link that shares it
//! 6. a supervision tree that survives crashes, then gives up when its
//!    restart intensity is exceeded and escalates to the root
//! 7. a circuit breaker opening and recovering, and a health report
//! 8. the broker: a named service looked up, request/reply by address, a
//!    pool behind one address (consistent hash and round robin), resized
//! 9. the OS layer: an allowed and a denied file operation, a program run,
//!    and the activity log they left
//! 10. a graceful shutdown and its report

use std::convert::Infallible;
use std::time::Duration;

use airssys_rt::address::{ActorAddress, PoolSpec, PoolStrategy};
use airssys_rt::broker::{InMemoryMessageBroker, MessageBroker};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::{
    CircuitBreaker, CircuitBreakerConfig, SupervisionEvent, SupervisionEvents,
};
use airssys_rt::system::{ActorSystemHealth, HealthThresholds};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- counter --

#[derive(Debug, Message)]
#[message(name = "tour.counter")]
enum CounterMsg {
    Add(u64),
    Get(ReplyTo<u64>),
}

struct Counter {
    total: u64,
}

impl Actor for Counter {
    type Message = CounterMsg;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        msg: CounterMsg,
        _: &mut ActorContext<CounterMsg>,
    ) -> Result<(), Infallible> {
        match msg {
            CounterMsg::Add(n) => self.total += n,
            CounterMsg::Get(reply) => {
                let _ = reply.reply(self.total);
            }
        }
        Ok(())
    }

    async fn post_stop(&mut self, ctx: &ActorContext<CounterMsg>) -> Result<(), Infallible> {
        println!(
            "   counter {} ran post_stop with total {}",
            ctx.id(),
            self.total
        );
        Ok(())
    }
}

// ------------------------------------------------------------ slow worker --

/// Holds every job until its gate opens, so its mailbox fills up.
#[derive(Debug)]
enum Job {
    /// Reports that it started, then waits until the gate opens.
    Gate(oneshot::Sender<()>, oneshot::Receiver<()>),
    Work(u32),
    Log(&'static str, MessagePriority, ReplyTo<()>),
    Report(ReplyTo<Vec<String>>),
}

impl Message for Job {
    const MESSAGE_TYPE: &'static str = "tour.job";
    fn priority(&self) -> MessagePriority {
        match self {
            Job::Log(_, priority, _) => *priority,
            _ => MessagePriority::Normal,
        }
    }
}

#[derive(Default)]
struct Worker {
    log: Vec<String>,
}

impl Actor for Worker {
    type Message = Job;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        job: Job,
        _: &mut ActorContext<Job>,
    ) -> Result<(), Infallible> {
        match job {
            Job::Gate(started, gate) => {
                let _ = started.send(());
                let _ = gate.await;
            }
            Job::Work(n) => self.log.push(format!("work {n}")),
            Job::Log(text, priority, done) => {
                self.log.push(format!("{priority:?}: {text}"));
                let _ = done.reply(());
            }
            Job::Report(reply) => {
                let _ = reply.reply(std::mem::take(&mut self.log));
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------ fragile --

struct Fragile;

impl Actor for Fragile {
    type Message = String;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        text: String,
        _: &mut ActorContext<String>,
    ) -> Result<(), Infallible> {
        if text == "divide by zero" {
            panic!("cannot {text}");
        }
        Ok(())
    }
}

// ---------------------------------------------------------- aggregator --

#[derive(Debug, Message)]
#[message(name = "tour.aggregator")]
enum Aggregate {
    /// Watch a worker, and ask it for its log without blocking the handler.
    Follow(ActorRef<Job>),
    /// The piped ask's answer.
    Log(Result<Vec<String>, AskError>),
    /// One item of an attached stream, and its end.
    Reading(u32),
    ReadingsDone,
    /// A watched actor went down.
    Down(Down),
}

/// Collects what other actors and a stream tell it, and says what it saw.
struct Aggregator {
    sum: u32,
    notes: mpsc::UnboundedSender<String>,
}

impl Actor for Aggregator {
    type Message = Aggregate;
    // `?` on any error: here, the notes channel's.
    type Error = ActorError;

    async fn handle_message(
        &mut self,
        msg: Aggregate,
        ctx: &mut ActorContext<Aggregate>,
    ) -> Result<(), ActorError> {
        let note = match msg {
            Aggregate::Follow(worker) => {
                ctx.watch(&worker, Aggregate::Down);
                // Awaiting the ask here would hold up every other message
                // (and deadlock if the worker asked back): pipe it instead.
                ctx.pipe(
                    async move { worker.ask(Job::Report, TIMEOUT).await },
                    Aggregate::Log,
                );
                "watching the worker; its log is on the way".to_owned()
            }
            Aggregate::Log(log) => format!("piped ask answered: {:?}", log?),
            Aggregate::Reading(n) => {
                self.sum += n;
                return Ok(());
            }
            Aggregate::ReadingsDone => format!("stream ended; readings sum to {}", self.sum),
            Aggregate::Down(down) => format!("{} went down: {}", down.actor, down.reason),
        };
        self.notes.send(note)?;
        Ok(())
    }
}

// ------------------------------------------------------------ services --

#[derive(Debug, Message)]
#[message(name = "tour.service")]
enum ServiceMsg {
    Crash,
}

/// A supervised service that crashes when told to.
struct Service(&'static str);

impl Actor for Service {
    type Message = ServiceMsg;
    type Error = Infallible;

    async fn pre_start(&mut self, ctx: &mut ActorContext<ServiceMsg>) -> Result<(), Infallible> {
        println!("   {} started as {}", self.0, ctx.id());
        Ok(())
    }

    async fn handle_message(
        &mut self,
        ServiceMsg::Crash: ServiceMsg,
        _: &mut ActorContext<ServiceMsg>,
    ) -> Result<(), Infallible> {
        panic!("{} lost its connection", self.0);
    }
}

// -------------------------------------------------------------- quotes --

/// A price request, routed by its symbol in consistent-hash pools.
#[derive(Debug, Message)]
#[message(name = "tour.quote", routing_key = 0)]
struct Quote(&'static str);

type QuoteBroker = InMemoryMessageBroker<Quote, String>;

/// Answers quotes through the broker, saying who answered.
struct Quoter(QuoteBroker);

impl Actor for Quoter {
    type Message = Quote;
    type Error = Infallible;

    async fn handle_message(
        &mut self,
        Quote(symbol): Quote,
        ctx: &mut ActorContext<Quote>,
    ) -> Result<(), Infallible> {
        if let Some(request) = ctx.envelope_id() {
            let price = symbol.bytes().map(u32::from).sum::<u32>();
            let who = ctx.myself().name().unwrap_or("?").to_owned();
            let _ = self
                .0
                .reply(request, format!("{symbol} {price} (from {who})"));
        }
        Ok(())
    }
}

/// Section 5: work off the turn, a stream, a watch and a link.
async fn compose_tour(system: &ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
    let (notes, mut seen) = mpsc::unbounded_channel();
    let aggregator = system
        .spawn_builder()
        .name("aggregator")
        .bounded(4, Backpressure::Block)
        .spawn(Aggregator { sum: 0, notes })?;
    let worker = system
        .spawn_builder()
        .name("reporter")
        .spawn(Worker::default())?;
    worker.tell(Job::Work(7)).await?;
    aggregator.tell(Aggregate::Follow(worker.clone())).await?;
    for _ in 0..2 {
        println!(
            "   aggregator: {}",
            seen.recv().await.ok_or("aggregator gone")?
        );
    }
    // A hundred readings through a mailbox of four: the stream waits for room.
    let readings = futures::stream::iter(1..=100).map(Aggregate::Reading);
    aggregator.add_stream(readings, Some(Aggregate::ReadingsDone));
    println!(
        "   aggregator: {}",
        seen.recv().await.ok_or("aggregator gone")?
    );
    // A sidekick linked to the worker shares its fate; the watch reports it.
    let sidekick = system
        .spawn_builder()
        .name("sidekick")
        .spawn(Worker::default())?;
    sidekick.link(&worker)?;
    worker.kill();
    println!(
        "   aggregator: {}",
        seen.recv().await.ok_or("aggregator gone")?
    );
    println!("   the linked sidekick: {}", sidekick.wait_for_exit().await);
    Ok(())
}

/// Section 8: names, request/reply and pools through the broker.
async fn broker_tour(system: &ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
    let broker = QuoteBroker::new(system);
    let ask = |to: ActorAddress, symbol| {
        let broker = broker.clone();
        async move {
            broker
                .request(MessageEnvelope::new(to, Quote(symbol)), TIMEOUT)
                .await
        }
    };

    let pricing = system
        .spawn_builder()
        .register("pricing")
        .spawn(Quoter(broker.clone()))?;
    let found = system.registry().lookup::<Quote>("pricing")?;
    println!(
        "   registry: 'pricing' is {} (spawned as {})",
        found.id(),
        pricing.id()
    );
    println!(
        "   request to 'pricing': {}",
        ask(ActorAddress::named("pricing"), "ACME").await?
    );
    if let Err(error) = ask(ActorAddress::named("nobody"), "ACME").await {
        println!("   request to 'nobody': {error}");
    }

    let factory = broker.clone();
    let pool = system
        .start_pool(
            PoolSpec::new("quoters", 3, move || Quoter(factory.clone()))
                .strategy(PoolStrategy::ConsistentHash("symbols".into())),
        )
        .await?;
    let by_symbol = ActorAddress::Pool {
        pool: "quoters".into(),
        strategy: PoolStrategy::ConsistentHash("symbols".into()),
    };
    println!("   pool 'quoters' (3 supervised members), consistent hash by symbol:");
    for symbol in ["AAPL", "MSFT", "AAPL", "GOOG", "MSFT"] {
        println!("     {}", ask(by_symbol.clone(), symbol).await?);
    }
    let in_turn = ActorAddress::Pool {
        pool: "quoters".into(),
        strategy: PoolStrategy::RoundRobin,
    };
    println!("   the same pool, round robin:");
    for _ in 0..3 {
        println!("     {}", ask(in_turn.clone(), "AAPL").await?);
    }
    pool.resize(4).await?;
    println!(
        "   resized to {}; by symbol again (only keys of the new member move):",
        pool.len()
    );
    for symbol in ["AAPL", "MSFT", "GOOG"] {
        println!("     {}", ask(by_symbol.clone(), symbol).await?);
    }
    Ok(())
}

/// Section 9: OS operations under a security policy, and their log.
async fn osl_tour(system: &ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
    use airssys_rt::integration::osl::{
        ActivityLog, FileRequest, Grant, MemorySink, Osl, ProcessRequest, ProcessSpec,
        SecurityContext, SecurityPolicy, TracingSink,
    };
    let sandbox = std::env::temp_dir().join(format!("airssys-tour-{}", std::process::id()));
    std::fs::create_dir_all(&sandbox)?;
    let log = MemorySink::default();
    let osl = Osl::new(
        SecurityPolicy::deny_all()
            .grant(Grant::read(&sandbox))
            .grant(Grant::write(&sandbox))
            .grant(Grant::program("echo")),
        ActivityLog::new()
            .with_sink(TracingSink)
            .with_sink(log.clone()),
    );
    let who = SecurityContext::new("tour").with_role("demo");
    println!(
        "   policy: read+write {}, run echo; everything else denied",
        sandbox.display()
    );
    let files = system.spawn(osl.file_actor(who.clone()))?;
    let note = sandbox.join("note.txt");
    let data = b"written by an actor".to_vec();
    let write = |path: std::path::PathBuf, data: Vec<u8>| {
        files.ask(
            move |reply| FileRequest::Write { path, data, reply },
            TIMEOUT,
        )
    };
    match write(note.clone(), data.clone()).await? {
        Ok(()) => println!("   write {}: ok", note.display()),
        Err(error) => println!("   write {}: {error}", note.display()),
    }
    let escape = sandbox.join("../airssys-tour-escape.txt");
    match write(escape.clone(), data).await? {
        Ok(()) => println!("   write {}: unexpectedly allowed", escape.display()),
        Err(error) => println!("   write {}: {error}", escape.display()),
    }
    let processes = system.spawn(osl.process_actor(who))?;
    let spec = ProcessSpec::new("echo").arg("hello from a child process");
    match processes
        .ask(|reply| ProcessRequest::Run { spec, reply }, TIMEOUT)
        .await?
    {
        Ok(output) => println!(
            "   echo (pid {}) exited {:?}: {}",
            output.pid,
            output.code,
            String::from_utf8_lossy(&output.stdout).trim()
        ),
        Err(error) => println!("   echo: {error}"),
    }
    let spec = ProcessSpec::new("rm")
        .arg("-rf")
        .arg(&*sandbox.to_string_lossy());
    if let Err(error) = processes
        .ask(|reply| ProcessRequest::Run { spec, reply }, TIMEOUT)
        .await?
    {
        println!("   rm -rf: {error}");
    }
    println!("   the activity log:");
    for record in log.records() {
        println!("     {record}");
    }
    std::fs::remove_dir_all(&sandbox)?;
    Ok(())
}

/// Crashes the current instance of `child` under `supervisor`.
async fn crash(supervisor: &SupervisorRef, child: &str) -> Result<(), Box<dyn std::error::Error>> {
    let service = supervisor
        .child::<ServiceMsg>(child)
        .await?
        .ok_or("the service is not running")?;
    println!("   -> crashing {child}");
    service.tell(ServiceMsg::Crash).await?;
    Ok(())
}

/// Prints supervision events until one for which `last` says true.
async fn show_until(events: &mut SupervisionEvents, last: impl Fn(&SupervisionEvent) -> bool) {
    while let Some(event) = events.recv().await {
        println!("   event: {event}");
        if last(&event) {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the demo's output readable: the runtime reports panics itself.
    std::panic::set_hook(Box::new(|info| {
        let text = info.payload_as_str().unwrap_or("non-string panic");
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        println!("   (panic hook) '{text}' at {place}");
    }));
    let system = ActorSystem::new(SystemConfig::named("tour"))?;
    let health = ActorSystemHealth::new(system.clone(), HealthThresholds::default());

    println!("1. counter: tell and ask");
    let counter = system
        .spawn_builder()
        .name("counter")
        .spawn(Counter { total: 0 })?;
    for n in 1..=10 {
        counter.tell(CounterMsg::Add(n)).await?;
    }
    let total = counter.ask(CounterMsg::Get, TIMEOUT).await?;
    println!("   told 1..=10, asked for the total: {total}");

    println!("\n2. bounded mailbox (capacity 4, Reject) under load");
    let worker = system
        .spawn_builder()
        .name("busy-worker")
        .bounded(4, Backpressure::Reject)
        .spawn(Worker::default())?;
    let open = hold(&worker).await?;
    let (mut accepted, mut rejected) = (0, Vec::new());
    for n in 0..10 {
        match worker.try_tell(Job::Work(n)) {
            Ok(()) => accepted += 1,
            Err(err) => {
                if rejected.is_empty() {
                    println!("   first rejection: {err}");
                }
                if let Job::Work(n) = err.into_message() {
                    rejected.push(n);
                }
            }
        }
    }
    println!(
        "   accepted {accepted}, got back {} rejected messages: {rejected:?}",
        rejected.len()
    );
    let _ = open.send(());
    let log = loop {
        // The mailbox may still be full for a moment: a rejected ask is an
        // error to handle, here by retrying.
        match worker.ask(Job::Report, TIMEOUT).await {
            Err(AskError::MailboxFull { .. }) => tokio::task::yield_now().await,
            other => break other?,
        }
    };
    println!("   the worker handled: {log:?}");

    println!("\n3. priority mailbox: urgent messages first");
    let prio = system
        .spawn_builder()
        .name("triage")
        .priority()
        .spawn(Worker::default())?;
    let open = hold(&prio).await?;
    let mut done = Vec::new();
    for (text, priority) in [
        ("tidy logs", MessagePriority::Low),
        ("serve request", MessagePriority::Normal),
        ("disk almost full", MessagePriority::High),
        ("data center on fire", MessagePriority::Critical),
    ] {
        let (tx, rx) = oneshot::channel();
        prio.tell(Job::Log(text, priority, ReplyTo::from(tx)))
            .await?;
        done.push(rx);
        println!("   queued {priority:?}: {text}");
    }
    let _ = open.send(());
    for rx in done {
        rx.await?;
    }
    println!(
        "   handled in this order: {:?}",
        prio.ask(Job::Report, TIMEOUT).await?
    );

    println!("\n4. a panicking handler");
    let fragile = system.spawn_builder().name("fragile").spawn(Fragile)?;
    fragile.tell("divide by zero".to_owned()).await?;
    println!("   exit reason: {}", fragile.wait_for_exit().await);
    match fragile.tell("anyone there?".to_owned()).await {
        Err(err) => println!("   a later tell fails cleanly: {err}"),
        Ok(()) => println!("   unexpected: the stopped actor accepted a message"),
    }

    println!("\n5. composing actors: pipe, stream, watch, link");
    compose_tour(&system).await?;

    println!("\n6. a supervision tree");
    let mut events = system.supervision_events();
    let payments = SupervisorSpec::one_for_all()
        .name("payments")
        .intensity(1, Duration::from_secs(5))
        .child(ChildSpec::worker("gateway", || Service("gateway")))
        .child(ChildSpec::worker("ledger", || Service("ledger")));
    let shop = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .name("shop")
                .intensity(2, Duration::from_secs(5))
                .child(ChildSpec::worker("catalog", || Service("catalog")))
                .child(ChildSpec::supervisor("payments", payments)),
        )
        .await?;
    while events.try_recv().is_some() {}
    let payments = shop
        .child_supervisor("payments")
        .await?
        .ok_or("payments is running")?;
    println!("   shop (one_for_one, 2 restarts per 5 s): catalog + payments");
    println!("   payments (one_for_all, 1 restart per 5 s): gateway + ledger");
    let ledger_back = |e: &SupervisionEvent| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "ledger");
    crash(&shop, "catalog").await?;
    show_until(&mut events, |e| {
        matches!(e, SupervisionEvent::ChildRestarted { .. })
    })
    .await;
    crash(&payments, "gateway").await?;
    println!("   (one_for_all: the ledger is restarted with the gateway)");
    show_until(&mut events, ledger_back).await;
    crash(&payments, "ledger").await?;
    println!("   (a second restart within 5 s: payments gives up, shop restarts it)");
    show_until(
        &mut events,
        |e| matches!(e, SupervisionEvent::ChildRestarted { child, .. } if child == "payments"),
    )
    .await;
    let payments = shop
        .child_supervisor("payments")
        .await?
        .ok_or("payments is running")?;
    crash(&payments, "gateway").await?;
    show_until(&mut events, ledger_back).await;
    crash(&payments, "ledger").await?;
    println!("   (payments gives up again: shop's third restart in 5 s, so shop gives up too)");
    println!("   shop exit reason: {}", shop.wait_for_exit().await);
    while let Some(event) = events.try_recv() {
        println!("   event: {event}");
    }
    for failure in system.root_failures() {
        println!(
            "   the system reports: root supervisor {:?} gave up after {} restarts",
            failure.name.as_deref().unwrap_or("?"),
            failure.restarts
        );
    }

    println!("\n7. a circuit breaker, and the system's health");
    let breaker = CircuitBreaker::new(CircuitBreakerConfig {
        failure_threshold: 2,
        reset_timeout: Duration::from_millis(50),
        success_threshold: 1,
    });
    let flaky = |ok: bool| async move { if ok { Ok("pong") } else { Err("timeout") } };
    for ok in [false, false, true] {
        match breaker.call(flaky(ok)).await {
            Ok(reply) => println!("   call -> {reply}"),
            Err(error) => println!("   call -> {error}"),
        }
    }
    println!(
        "   state: {:?}; waiting out the reset timeout",
        breaker.state()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("   state: {:?}", breaker.state());
    match breaker.call(flaky(true)).await {
        Ok(reply) => println!("   trial call -> {reply}; state: {:?}", breaker.state()),
        Err(error) => println!("   trial call -> {error}"),
    }
    println!(
        "   health since the tour began: {}",
        health.health_check().await
    );

    println!("\n8. the broker: names, request/reply, pools");
    broker_tour(&system).await?;

    println!("\n9. the OS layer: allowed and denied operations, and their log");
    osl_tour(&system).await?;

    println!("\n10. graceful shutdown");
    // The shutdown signal travels on the system lane and usually overtakes
    // this message; if so it is listed below as a dead letter, never lost.
    counter.tell(CounterMsg::Add(1)).await?;
    let report = system.shutdown(TIMEOUT).await;
    println!("   {report}");
    println!("   counter exit reason: {}", counter.wait_for_exit().await);
    for letter in system.dead_letters().recent() {
        println!("   {letter}");
    }
    println!(
        "   runtime counters: {} spawned, {} messages handled, {} panics",
        system.info().metrics.spawned,
        system.info().metrics.messages_handled,
        system.info().metrics.panics
    );
    Ok(())
}

/// Parks `worker` on a gate and returns the key that opens it.
async fn hold(worker: &ActorRef<Job>) -> Result<oneshot::Sender<()>, Box<dyn std::error::Error>> {
    let (started_tx, started) = oneshot::channel();
    let (open, gate) = oneshot::channel();
    worker.tell(Job::Gate(started_tx, gate)).await?;
    started.await?;
    Ok(open)
}
