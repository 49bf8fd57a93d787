//! Shared test actors and synchronisation helpers for the integration tests
//! (`messaging.rs`, `backpressure.rs`, `lifecycle.rs`, `shutdown.rs`,
//! `stress.rs`, the observer's and others).
//!
//! Everything here synchronises with explicit signals (oneshot gates, a
//! `Notify` on the journal, ask round trips, `wait_for_exit`); nothing waits
//! for time to pass.
#![allow(dead_code)]

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airssys_rt::prelude::*;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

/// Timeout for asks that must succeed. Never reached by a passing test; with
/// a paused clock a hang shows up as a `Timeout` error at once instead.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A new system with default settings and a dead-letter ring big enough for
/// every test here.
pub fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::named("it").with_dead_letters_kept(4096))
        .expect("tests run inside a tokio runtime")
}

/// Awaits `future`, failing the test instead of hanging if it never
/// completes. Not a timing assertion: with a paused clock the guard fires as
/// soon as everything is idle, with a real clock after [`PATIENCE`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("hung: did not complete")
}

/// The actor's exit reason, failing instead of hanging if it never exits.
pub async fn exit_of<M: Message>(actor: &ActorRef<M>) -> ExitReason {
    within(actor.wait_for_exit()).await
}

/// Takes `u64`s and does nothing with them: a live actor where a test needs
/// actors to exist, not behaviour.
pub struct Idle;

impl Actor for Idle {
    type Message = u64;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        _: u64,
        _: &mut ActorContext<u64>,
    ) -> Result<(), Infallible> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Gates
// ---------------------------------------------------------------------------

/// The actor's half of a gate: carried in a message; the handler calls
/// [`Gate::pass`], which reports that the actor is inside the handler and
/// then waits until the test releases it.
#[derive(Debug)]
pub struct Gate {
    entered: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Gate {
    /// Reports arrival, then waits for the release (or for the key to be
    /// dropped).
    pub async fn pass(self) {
        let _ = self.entered.send(());
        let _ = self.release.await;
    }
}

/// The test's half of a gate.
#[derive(Debug)]
pub struct GateKey {
    entered: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl GateKey {
    /// Waits until the actor is inside the gated handler.
    pub async fn entered(&mut self) {
        (&mut self.entered)
            .await
            .expect("the actor reached the gate");
    }

    /// Lets the actor leave the handler.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

/// A fresh gate and its key.
pub fn gate() -> (Gate, GateKey) {
    let (entered_tx, entered_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    (
        Gate {
            entered: entered_tx,
            release: release_rx,
        },
        GateKey {
            entered: entered_rx,
            release: release_tx,
        },
    )
}

/// Sends a gate to `actor` and returns once the actor is parked inside the
/// handler: from then on its mailbox only fills up.
pub async fn park<M: Message>(actor: &ActorRef<M>, wrap: impl FnOnce(Gate) -> M) -> GateKey {
    let (gate, mut key) = gate();
    actor
        .tell(wrap(gate))
        .await
        .expect("the gate message is accepted");
    within(key.entered()).await;
    key
}

// ---------------------------------------------------------------------------
// Journal: observations that outlive an actor
// ---------------------------------------------------------------------------

/// What a [`Recorder`] saw, shared with the test.
#[derive(Debug, Default)]
pub struct Journal {
    log: Mutex<Vec<u64>>,
    changed: Notify,
    pub pre_starts: AtomicUsize,
    pub post_stops: AtomicUsize,
    /// Instances built (by the test or a restart factory).
    pub built: AtomicUsize,
}

impl Journal {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn push(&self, value: u64) {
        self.log.lock().push(value);
        self.changed.notify_waiters();
    }

    pub fn log(&self) -> Vec<u64> {
        self.log.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.log.lock().len()
    }

    pub fn pre_starts(&self) -> usize {
        self.pre_starts.load(Ordering::SeqCst)
    }

    pub fn post_stops(&self) -> usize {
        self.post_stops.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` values are logged and returns the log
    /// (failing instead of hanging if that never happens).
    pub async fn wait_len(&self, n: usize) -> Vec<u64> {
        within(self.wait_len_forever(n)).await
    }

    async fn wait_len_forever(&self, n: usize) -> Vec<u64> {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            {
                let log = self.log.lock();
                if log.len() >= n {
                    return log.clone();
                }
            }
            changed.await;
        }
    }
}

// ---------------------------------------------------------------------------
// Recorder: the general-purpose test actor
// ---------------------------------------------------------------------------

/// Commands a [`Recorder`] understands.
#[derive(Debug)]
pub enum Cmd {
    /// Log the value (priority `Normal`).
    Rec(u64),
    /// Log the value; the message has the given priority.
    At(MessagePriority, u64),
    /// Park inside the handler until the gate is released.
    Park(Gate),
    /// Reply with the log so far.
    Log(ReplyTo<Vec<u64>>),
    /// Reply with the value.
    Echo(u64, ReplyTo<u64>),
    /// Keep the reply port without answering.
    Keep(ReplyTo<u64>),
    /// Drop the reply port without answering.
    Discard(ReplyTo<u64>),
    /// Reply with `is_closed()` of every kept port.
    KeptClosed(ReplyTo<Vec<bool>>),
    /// Panic with this text.
    Panic(String),
    /// Return an error with this text.
    Fail(String),
    /// Report entry on the sender, then never finish handling (ignores
    /// stop and shutdown; only a kill ends it).
    Forever(oneshot::Sender<()>),
    /// Call `ctx.stop()`.
    StopSelf,
    /// Reply with how many instances were built and the instance's own number.
    Incarnation(ReplyTo<(usize, usize)>),
}

impl Message for Cmd {
    const MESSAGE_TYPE: &'static str = "it.cmd";

    fn priority(&self) -> MessagePriority {
        match self {
            Cmd::At(p, _) => *p,
            _ => MessagePriority::Normal,
        }
    }
}

/// The error a [`Recorder`] handler returns for [`Cmd::Fail`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// A configurable test actor that logs what it handles into a [`Journal`].
#[derive(Debug)]
pub struct Recorder {
    journal: Arc<Journal>,
    kept: Vec<ReplyTo<u64>>,
    on_error: ErrorAction,
    panic_in_pre_start: Option<String>,
    panic_in_post_stop: Option<String>,
    fail_pre_start: Option<String>,
    stop_in_pre_start: bool,
    /// This instance's number (1 for the first one built for a journal).
    incarnation: usize,
}

impl Recorder {
    pub fn new(journal: &Arc<Journal>) -> Self {
        let incarnation = journal.built.fetch_add(1, Ordering::SeqCst) + 1;
        Self {
            journal: journal.clone(),
            kept: Vec::new(),
            on_error: ErrorAction::Stop,
            panic_in_pre_start: None,
            panic_in_post_stop: None,
            fail_pre_start: None,
            stop_in_pre_start: false,
            incarnation,
        }
    }

    pub fn on_error(mut self, action: ErrorAction) -> Self {
        self.on_error = action;
        self
    }

    pub fn panic_in_pre_start(mut self, text: &str) -> Self {
        self.panic_in_pre_start = Some(text.to_owned());
        self
    }

    pub fn panic_in_post_stop(mut self, text: &str) -> Self {
        self.panic_in_post_stop = Some(text.to_owned());
        self
    }

    pub fn fail_pre_start(mut self, text: &str) -> Self {
        self.fail_pre_start = Some(text.to_owned());
        self
    }

    pub fn stop_in_pre_start(mut self) -> Self {
        self.stop_in_pre_start = true;
        self
    }
}

impl Actor for Recorder {
    type Message = Cmd;
    type Error = Failure;

    async fn pre_start(&mut self, ctx: &mut ActorContext<Cmd>) -> Result<(), Failure> {
        self.journal.pre_starts.fetch_add(1, Ordering::SeqCst);
        if let Some(text) = &self.panic_in_pre_start {
            panic!("{text}");
        }
        if let Some(text) = &self.fail_pre_start {
            return Err(Failure(text.clone()));
        }
        if self.stop_in_pre_start {
            ctx.stop();
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        cmd: Cmd,
        ctx: &mut ActorContext<Cmd>,
    ) -> Result<(), Failure> {
        match cmd {
            Cmd::Rec(v) | Cmd::At(_, v) => self.journal.push(v),
            Cmd::Park(gate) => gate.pass().await,
            Cmd::Log(reply) => {
                let _ = reply.reply(self.journal.log());
            }
            Cmd::Echo(v, reply) => {
                let _ = reply.reply(v);
            }
            Cmd::Keep(reply) => self.kept.push(reply),
            Cmd::Discard(reply) => drop(reply),
            Cmd::KeptClosed(reply) => {
                let _ = reply.reply(self.kept.iter().map(ReplyTo::is_closed).collect());
            }
            Cmd::Panic(text) => panic!("{text}"),
            Cmd::Fail(text) => return Err(Failure(text)),
            Cmd::Forever(entered) => {
                let _ = entered.send(());
                std::future::pending::<()>().await;
            }
            Cmd::StopSelf => ctx.stop(),
            Cmd::Incarnation(reply) => {
                let built = self.journal.built.load(Ordering::SeqCst);
                let _ = reply.reply((built, self.incarnation));
            }
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<Cmd>) -> Result<(), Failure> {
        self.journal.post_stops.fetch_add(1, Ordering::SeqCst);
        if let Some(text) = &self.panic_in_post_stop {
            panic!("{text}");
        }
        Ok(())
    }

    async fn on_error(&mut self, _: Failure, _: &ActorContext<Cmd>) -> ErrorAction {
        self.on_error
    }
}

/// Spawns a plain [`Recorder`] with `mailbox`.
pub fn spawn_recorder(
    system: &ActorSystem,
    journal: &Arc<Journal>,
    mailbox: MailboxConfig,
) -> ActorRef<Cmd> {
    system
        .spawn_builder()
        .mailbox(mailbox)
        .spawn(Recorder::new(journal))
        .expect("spawn")
}

/// The messages of the dead letters recorded so far for `reason`, oldest first.
pub fn dead_messages(
    system: &ActorSystem,
    reason: airssys_rt::mailbox::DeadLetterReason,
) -> Vec<String> {
    system
        .dead_letters()
        .recent()
        .into_iter()
        .filter(|letter| letter.reason == reason)
        .map(|letter| letter.message)
        .collect()
}

/// `Rec(a)`, `Rec(a+1)`, … as dead letters render them.
pub fn rendered(values: impl IntoIterator<Item = u64>) -> Vec<String> {
    values.into_iter().map(|v| format!("Rec({v})")).collect()
}
