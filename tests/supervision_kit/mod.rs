//! Workers, a reference model of OTP's rules, and helpers shared by the
//! supervision tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airssys_rt::prelude::*;
use airssys_rt::supervisor::{SupervisionEvent, SupervisionEvents, WorkerSpec};
use parking_lot::Mutex;

/// Hang guard for waits that must end; never reached in a passing run.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The shared log children append to: "start x" from `pre_start`, "stop x"
/// from `post_stop`.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, line: String) {
        self.0.lock().push(line);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// How a test makes a child exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum How {
    /// It stops itself (`ctx.stop()`): reason `Normal`.
    Normal,
    /// It is sent a shutdown signal: reason `Shutdown`.
    Shutdown,
    /// Its handler fails and `on_error` says `Restart`: reason `Error`.
    Error,
    /// Its handler panics: reason `Panic`.
    Panic,
    /// It is killed: reason `Killed` (no `post_stop`).
    Killed,
}

pub const EVERY_HOW: [How; 5] = [
    How::Normal,
    How::Shutdown,
    How::Error,
    How::Panic,
    How::Killed,
];

impl How {
    pub fn label(self) -> &'static str {
        match self {
            How::Normal => "normal",
            How::Shutdown => "shutdown",
            How::Error => "error",
            How::Panic => "panic",
            How::Killed => "killed",
        }
    }

    pub fn is_normal(self) -> bool {
        matches!(self, How::Normal | How::Shutdown)
    }
}

/// A reason's label, as in [`How::label`].
pub fn reason_label(reason: &ExitReason) -> &'static str {
    match reason {
        ExitReason::Normal => "normal",
        ExitReason::Shutdown => "shutdown",
        ExitReason::Error(_) => "error",
        ExitReason::Panic(_) => "panic",
        ExitReason::Killed => "killed",
        ExitReason::Escalated(_) => "escalated",
        ExitReason::Linked { .. } => "linked",
    }
}

#[derive(Debug)]
pub enum Cmd {
    Stop,
    Fail,
    Panic,
    Ping(ReplyTo<String>),
}

impl Message for Cmd {
    const MESSAGE_TYPE: &'static str = "test.supervised";
}

#[derive(Debug, thiserror::Error)]
#[error("asked to fail")]
pub struct Failure;

/// A child that logs its start and stop and exits however it is told.
pub struct Worker {
    pub name: String,
    pub log: Log,
    /// Counts deliberate failures (`Fail` and `Panic` handled).
    pub failures: Arc<AtomicU64>,
}

impl Actor for Worker {
    type Message = Cmd;
    type Error = Failure;

    async fn pre_start(&mut self, _: &mut ActorContext<Cmd>) -> Result<(), Failure> {
        self.log.push(format!("start {}", self.name));
        Ok(())
    }

    async fn handle_message(
        &mut self,
        cmd: Cmd,
        ctx: &mut ActorContext<Cmd>,
    ) -> Result<(), Failure> {
        match cmd {
            Cmd::Stop => ctx.stop(),
            Cmd::Fail => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err(Failure);
            }
            Cmd::Panic => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                panic!("{} told to panic", self.name);
            }
            Cmd::Ping(reply) => {
                let _ = reply.reply(self.name.clone());
            }
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &ActorContext<Cmd>) -> Result<(), Failure> {
        self.log.push(format!("stop {}", self.name));
        Ok(())
    }

    async fn on_error(&mut self, _: Failure, _: &ActorContext<Cmd>) -> ErrorAction {
        ErrorAction::Restart
    }
}

/// A worker spec named `id` logging to `log`.
pub fn worker(id: &str, log: &Log) -> WorkerSpec<Worker> {
    worker_counting(id, log, &Arc::default())
}

/// A worker spec whose deliberate failures are counted in `failures`.
pub fn worker_counting(id: &str, log: &Log, failures: &Arc<AtomicU64>) -> WorkerSpec<Worker> {
    let (name, log, failures) = (id.to_owned(), log.clone(), failures.clone());
    ChildSpec::worker(id, move || Worker {
        name: name.clone(),
        log: log.clone(),
        failures: failures.clone(),
    })
}

/// The current instance of worker `id`.
pub async fn current(supervisor: &SupervisorRef, id: &str) -> ActorRef<Cmd> {
    supervisor
        .child::<Cmd>(id)
        .await
        .expect("supervisor running")
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// Makes the running child `id` exit as `how`.
pub async fn trigger(supervisor: &SupervisorRef, id: &str, how: How) {
    let child = current(supervisor, id).await;
    match how {
        How::Normal => child.tell(Cmd::Stop).await.expect("alive"),
        How::Shutdown => assert!(child.shutdown()),
        How::Error => child.tell(Cmd::Fail).await.expect("alive"),
        How::Panic => child.tell(Cmd::Panic).await.expect("alive"),
        How::Killed => child.kill(),
    }
}

/// An event in the compact form the model speaks: "started a",
/// "restarted a", "exited a panic", "gave up".
pub fn compact(event: &SupervisionEvent) -> String {
    match event {
        SupervisionEvent::ChildStarted { child, .. } => format!("started {child}"),
        SupervisionEvent::ChildRestarted { child, .. } => format!("restarted {child}"),
        SupervisionEvent::ChildExited { child, reason, .. } => {
            format!("exited {child} {}", reason_label(reason))
        }
        SupervisionEvent::ChildUnhealthy { child, .. } => format!("unhealthy {child}"),
        SupervisionEvent::ChildStartFailed { child, reason, .. } => {
            format!("start failed {child} {}", reason_label(reason))
        }
        SupervisionEvent::SupervisorGaveUp { .. } => "gave up".to_owned(),
        other => format!("{other:?}"),
    }
}

/// Forgets the events published so far.
pub fn drain(events: &mut SupervisionEvents) {
    while events.try_recv().is_some() {}
}

/// Waits for the next event of `supervisor`.
pub async fn next_event(
    events: &mut SupervisionEvents,
    supervisor: &SupervisorRef,
) -> SupervisionEvent {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("a supervision event in time")
            .expect("the system is alive");
        if event.supervisor() == supervisor.id() {
            return event;
        }
    }
}

/// Makes `id` exit as `how`, waits until the supervisor has handled the
/// exit completely, and returns the events it published meanwhile.
pub async fn fail_and_settle(
    supervisor: &SupervisorRef,
    events: &mut SupervisionEvents,
    id: &str,
    how: How,
) -> Vec<String> {
    trigger(supervisor, id, how).await;
    let first = compact(&next_event(events, supervisor).await);
    assert!(
        first.starts_with(&format!("exited {id} ")),
        "first event {first}"
    );
    // Requests queue behind the exit: when this answers (or the supervisor
    // has exited), the exit has been handled completely.
    if supervisor.which_children().await.is_err() {
        supervisor.wait_for_exit().await;
    }
    let mut seen = vec![first];
    while let Some(event) = events.try_recv() {
        if event.supervisor() == supervisor.id() {
            seen.push(compact(&event));
        }
    }
    seen
}

/// What the log shows for `events`: each start and each stop that ran
/// `post_stop` (a killed child does not).
pub fn log_of(events: &[String]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| {
            let parts: Vec<&str> = event.split(' ').collect();
            match parts.as_slice() {
                ["started" | "restarted", child] => Some(format!("start {child}")),
                ["exited", child, reason] if *reason != "killed" => Some(format!("stop {child}")),
                _ => None,
            }
        })
        .collect()
}

/// A reference model of OTP's supervisor rules, written from the OTP
/// documentation, independent of the implementation.
#[derive(Debug, Clone)]
pub struct Model {
    pub strategy: SupervisionStrategy,
    pub max_restarts: u32,
    /// (id, restart type, running), in start order.
    pub children: Vec<(String, RestartType, bool)>,
    pub restarts: u32,
    pub gave_up: bool,
}

impl Model {
    pub fn new(
        strategy: SupervisionStrategy,
        max_restarts: u32,
        children: &[(&str, RestartType)],
    ) -> Self {
        Self {
            strategy,
            max_restarts,
            children: children
                .iter()
                .map(|(id, r)| ((*id).to_owned(), *r, true))
                .collect(),
            restarts: 0,
            gave_up: false,
        }
    }

    pub fn running(&self) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.2)
            .map(|c| c.0.clone())
            .collect()
    }

    /// The events when child `id` exits as `how` (all restarts inside one
    /// intensity window).
    pub fn fail(&mut self, id: &str, how: How) -> Vec<String> {
        let at = self
            .children
            .iter()
            .position(|c| c.0 == id)
            .expect("known child");
        let mut events = vec![format!("exited {id} {}", how.label())];
        self.children[at].2 = false;
        let restart = self.children[at].1;
        let restarted = match restart {
            RestartType::Permanent => true,
            RestartType::Transient => !how.is_normal(),
            RestartType::Temporary => false,
        };
        if !restarted {
            if restart == RestartType::Temporary {
                self.children.remove(at);
            }
            return events;
        }
        self.restarts += 1;
        if self.restarts > self.max_restarts {
            events.push("gave up".to_owned());
            for child in self.children.iter_mut().rev().filter(|c| c.2) {
                events.push(format!("exited {} shutdown", child.0));
                child.2 = false;
            }
            self.gave_up = true;
            return events;
        }
        let range = match self.strategy {
            SupervisionStrategy::OneForOne => at..at + 1,
            SupervisionStrategy::OneForAll => 0..self.children.len(),
            SupervisionStrategy::RestForOne => at..self.children.len(),
        };
        for j in range.clone().rev() {
            if self.children[j].2 {
                events.push(format!("exited {} shutdown", self.children[j].0));
                self.children[j].2 = false;
            }
        }
        // Temporary children in the group are stopped and removed, never
        // restarted; the others start again in start order.
        let (temporary, group): (Vec<_>, Vec<_>) = self.children[range]
            .iter()
            .map(|c| (c.0.clone(), c.1))
            .partition(|(_, restart)| *restart == RestartType::Temporary);
        self.children
            .retain(|c| !temporary.iter().any(|(id, _)| *id == c.0));
        let group: Vec<String> = group.into_iter().map(|(id, _)| id).collect();
        for id in group {
            events.push(format!("restarted {id}"));
            if let Some(child) = self.children.iter_mut().find(|c| c.0 == id) {
                child.2 = true;
            }
        }
        events
    }
}

/// A fresh system on the current runtime.
pub fn system() -> ActorSystem {
    ActorSystem::new(SystemConfig::default()).expect("inside a runtime")
}
