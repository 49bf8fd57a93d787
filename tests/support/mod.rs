//! Test actors shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airssys_rt::prelude::*;

#[cfg(feature = "osl")]
pub mod osl;
use parking_lot::Mutex;
use tokio::sync::oneshot;

/// Generous timeout for asks that must succeed; never reached in a passing run.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What a [`Probe`] can be told to do.
#[derive(Debug)]
pub enum Cmd {
    /// Append the value to the log.
    Record(u64),
    /// Report "started" on the first sender, then wait until the second resolves.
    Gate(oneshot::Sender<()>, oneshot::Receiver<()>),
    /// Reply with the log so far.
    Log(ReplyTo<Vec<u64>>),
    /// Keep the reply port forever without answering.
    Hold(ReplyTo<u64>),
    /// Drop the reply port without answering.
    Drop(ReplyTo<u64>),
    /// Panic with this text.
    Panic(String),
    /// Return an error carrying this value.
    Fail(u64),
    /// Never finish handling.
    Hang,
}

impl Message for Cmd {
    const MESSAGE_TYPE: &'static str = "test.cmd";
    fn priority(&self) -> MessagePriority {
        match self {
            Cmd::Record(v) => match v / 1000 {
                0 => MessagePriority::Low,
                1 => MessagePriority::Normal,
                2 => MessagePriority::High,
                _ => MessagePriority::Critical,
            },
            // Behind everything queued before it, even in a priority mailbox.
            Cmd::Log(_) => MessagePriority::Low,
            _ => MessagePriority::Normal,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("probe failure {0}")]
pub struct ProbeError(pub u64);

/// Observations that outlive the actor.
#[derive(Debug, Default)]
pub struct Seen {
    pub log: Mutex<Vec<u64>>,
    pub pre_starts: AtomicUsize,
    pub post_stops: AtomicUsize,
}

impl Seen {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }
    pub fn log(&self) -> Vec<u64> {
        self.log.lock().clone()
    }
    pub fn pre_starts(&self) -> usize {
        self.pre_starts.load(Ordering::SeqCst)
    }
    pub fn post_stops(&self) -> usize {
        self.post_stops.load(Ordering::SeqCst)
    }
}

/// Which hook should panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PanicIn {
    #[default]
    Nowhere,
    PreStart,
    PostStop,
}

/// A configurable test actor.
pub struct Probe {
    pub seen: Arc<Seen>,
    pub held: Vec<ReplyTo<u64>>,
    pub on_error: ErrorAction,
    pub panic_in: PanicIn,
}

impl Probe {
    pub fn new(seen: &Arc<Seen>) -> Self {
        Self {
            seen: seen.clone(),
            held: Vec::new(),
            on_error: ErrorAction::Stop,
            panic_in: PanicIn::Nowhere,
        }
    }
}

impl Actor for Probe {
    type Message = Cmd;
    type Error = ProbeError;

    async fn pre_start(&mut self, _: &mut ActorContext<Cmd>) -> Result<(), ProbeError> {
        self.seen.pre_starts.fetch_add(1, Ordering::SeqCst);
        if self.panic_in == PanicIn::PreStart {
            panic!("pre_start exploded");
        }
        Ok(())
    }

    async fn handle_message(
        &mut self,
        cmd: Cmd,
        _: &mut ActorContext<Cmd>,
    ) -> Result<(), ProbeError> {
        match cmd {
            Cmd::Record(v) => self.seen.log.lock().push(v),
            Cmd::Gate(started, open) => {
                let _ = started.send(());
                let _ = open.await;
            }
            Cmd::Log(reply) => {
                let _ = reply.reply(self.seen.log());
            }
            Cmd::Hold(reply) => self.held.push(reply),
            Cmd::Drop(reply) => drop(reply),
            Cmd::Panic(text) => panic!("{text}"),
            Cmd::Fail(v) => return Err(ProbeError(v)),
            Cmd::Hang => std::future::pending::<()>().await,
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<Cmd>) -> Result<(), ProbeError> {
        self.seen.post_stops.fetch_add(1, Ordering::SeqCst);
        if self.panic_in == PanicIn::PostStop {
            panic!("post_stop exploded");
        }
        Ok(())
    }

    async fn on_error(&mut self, _: ProbeError, _: &ActorContext<Cmd>) -> ErrorAction {
        self.on_error
    }
}

/// Parks `actor` inside a handler; returns the key that lets it go on.
/// When this returns, the actor has taken the gate out of its mailbox.
pub async fn hold(actor: &ActorRef<Cmd>) -> oneshot::Sender<()> {
    let (started_tx, started) = oneshot::channel();
    let (open, gate) = oneshot::channel();
    actor
        .tell(Cmd::Gate(started_tx, gate))
        .await
        .expect("gate delivered");
    started.await.expect("actor reached the gate");
    open
}

/// Asks for the log, retrying while a bounded mailbox is still full (a
/// rejected or dropped request) right after its actor was let go.
pub async fn log_when_room(actor: &ActorRef<Cmd>) -> Vec<u64> {
    loop {
        match actor.ask(Cmd::Log, PATIENCE).await {
            Ok(log) => return log,
            Err(AskError::MailboxFull { .. } | AskError::NoReply { .. }) => {
                tokio::task::yield_now().await
            }
            Err(other) => panic!("unexpected ask error: {other}"),
        }
    }
}

pub fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::named("test")).expect("inside a tokio runtime")
}
