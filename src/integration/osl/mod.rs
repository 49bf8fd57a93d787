//! The OS layer (feature `osl`, on by default): file-system, process and
//! network operations performed by actors, each checked against a
//! [`SecurityPolicy`] for the [`SecurityContext`] of the actor that performs
//! it, and recorded in an [`ActivityLog`].
//!
//! The brief puts airssys-osl under the runtime; it is not published, so the
//! layer lives here, on tokio's `process` and `net` and Linux's `openat2`.
//! The README's OS-layer section has the threat model: what is guarded
//! against, by which mechanism, and what stays out of scope.
//!
//! * [`Osl`] holds the policy, the log and the limits' counters, and makes
//!   the actors: [`FileActor`], [`ProcessActor`], [`NetworkActor`]. Spawn
//!   them, or supervise them like any worker.
//! * The policy denies everything not granted. Paths are resolved (`..`,
//!   symlinks) before they are compared with granted prefixes, and the
//!   operation then opens exactly the checked path with the kernel following
//!   no symlink (`openat2`), so a path swapped meanwhile cannot lead out.
//!   Programs are granted by name or path (not by what they resolve to),
//!   with an allow-list of environment keys; hosts and ports by range.
//! * Every operation, allowed or denied, completed or cut short, yields one
//!   [`ActivityRecord`] (time, principal, operation, target, outcome,
//!   duration) to every sink: [`TracingSink`], [`JsonLinesSink`],
//!   [`MemorySink`], or your own.
//!
//! ```
//! use std::time::Duration;
//! use airssys_rt::integration::osl::*;
//! use airssys_rt::prelude::*;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("osl-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let memory = MemorySink::default();
//! let osl = Osl::new(
//!     SecurityPolicy::deny_all().grant(Grant::read(&dir)).grant(Grant::write(&dir)),
//!     ActivityLog::new().with_sink(memory.clone()),
//! );
//! let system = ActorSystem::new(SystemConfig::default())?;
//! let files = system.spawn(osl.file_actor(SecurityContext::new("doc")))?;
//! let note = dir.join("note.txt");
//! files.ask(|r| FileRequest::Write { path: note.clone(), data: b"hi".to_vec(), reply: r }, Duration::from_secs(5)).await??;
//! let text = files.ask(|r| FileRequest::Read { path: note.clone(), reply: r }, Duration::from_secs(5)).await??;
//! assert_eq!(text, b"hi");
//! let denied = files.ask(|r| FileRequest::Read { path: "/etc/hostname".into(), reply: r }, Duration::from_secs(5)).await?;
//! assert!(denied.unwrap_err().is_denied());
//! assert_eq!(memory.records().len(), 3);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

#[cfg(not(target_os = "linux"))]
compile_error!(
    "the `osl` feature (on by default) needs Linux 5.11+ (openat2, close_range, PR_SET_PDEATHSIG); build with `default-features = false` elsewhere"
);

pub mod activity;
mod confine;
pub mod errors;
pub mod file;
mod launcher;
pub mod network;
pub mod process;
pub mod security;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

pub use activity::{
    ActivityLog, ActivityRecord, ActivitySink, JsonLinesSink, MemorySink, Operation, Outcome,
    TracingSink, escape_path,
};
pub use errors::OslError;
pub use file::{DirEntryInfo, FileActor, FileInfo, FileRequest};
pub use network::{
    Accepted, Connection, ConnectionError, ConnectionRequest, Framing, NetworkActor, NetworkRequest,
};
pub use process::{
    OutputLine, ProcessActor, ProcessId, ProcessOutput, ProcessRequest, ProcessSpec, Stream,
};
pub use security::{
    Access, DenyRule, Grant, GrantedProgram, Limits, SecurityContext, SecurityPolicy,
};

use activity::micros;

/// The OS layer: one policy, one activity log, shared by the actors it
/// makes. Cheap to clone.
#[derive(Clone)]
pub struct Osl {
    shared: Arc<Shared>,
}

struct Shared {
    policy: SecurityPolicy,
    log: ActivityLog,
    connections: Mutex<OpenConnections>,
}

/// Open connections, in all and per principal.
#[derive(Default)]
struct OpenConnections {
    total: usize,
    by_principal: HashMap<String, usize>,
}

impl fmt::Debug for Osl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Osl")
            .field("policy", &self.shared.policy)
            .field("log", &self.shared.log)
            .finish()
    }
}

impl Osl {
    /// A layer enforcing `policy` and recording to `log`.
    pub fn new(policy: SecurityPolicy, log: ActivityLog) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                log,
                connections: Mutex::default(),
            }),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &SecurityPolicy {
        &self.shared.policy
    }

    /// The activity log.
    pub fn log(&self) -> &ActivityLog {
        &self.shared.log
    }

    /// An actor performing file operations as `context`.
    pub fn file_actor(&self, context: SecurityContext) -> FileActor {
        FileActor::new(self.clone(), context)
    }

    /// An actor running programs as `context`.
    pub fn process_actor(&self, context: SecurityContext) -> ProcessActor {
        ProcessActor::new(self.clone(), context)
    }

    /// An actor opening connections and listeners as `context`.
    pub fn network_actor(&self, context: SecurityContext) -> NetworkActor {
        NetworkActor::new(self.clone(), context)
    }

    /// Open connections right now, all principals together.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.lock().total
    }

    /// Open connections of `principal` right now.
    pub fn open_connections_of(&self, principal: &str) -> usize {
        let connections = self.shared.connections.lock();
        connections
            .by_principal
            .get(principal)
            .copied()
            .unwrap_or(0)
    }

    /// Starts auditing one operation on `target` (already escaped for the
    /// log, see [`escape_path`]).
    pub(crate) fn audit<'a>(
        &'a self,
        context: &'a SecurityContext,
        operation: Operation,
        target: impl fmt::Display,
    ) -> Audit<'a> {
        Audit {
            osl: self,
            context,
            operation,
            target: target.to_string(),
            at: crate::util::time::now(),
            started: std::time::Instant::now(),
            recorded: false,
        }
    }

    /// Takes one connection slot for `principal`, or refuses at the
    /// `max_connections` (per principal) or `max_connections_total` limit.
    pub(crate) fn open_connection(&self, principal: &str) -> Result<ConnectionSlot, DenyRule> {
        let limits = self.policy().current_limits();
        let mut connections = self.shared.connections.lock();
        if connections.total >= limits.max_connections_total {
            return Err(DenyRule::Limit {
                name: "max_connections_total",
                value: limits.max_connections_total as u64,
            });
        }
        let mine = connections
            .by_principal
            .get(principal)
            .copied()
            .unwrap_or(0);
        if mine >= limits.max_connections {
            return Err(DenyRule::Limit {
                name: "max_connections",
                value: limits.max_connections as u64,
            });
        }
        *connections
            .by_principal
            .entry(principal.to_owned())
            .or_default() += 1;
        connections.total += 1;
        Ok(ConnectionSlot {
            osl: self.clone(),
            principal: principal.to_owned(),
        })
    }
}

/// One open connection counted against the connection limits; freed on
/// drop.
pub(crate) struct ConnectionSlot {
    osl: Osl,
    principal: String,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self.osl.shared.connections.lock();
        connections.total = connections.total.saturating_sub(1);
        if let Some(mine) = connections.by_principal.get_mut(&self.principal) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                connections.by_principal.remove(&self.principal);
            }
        }
    }
}

/// One operation being audited: checks go through it, and
/// [`finish`](Self::finish) records the outcome. An audit dropped unfinished
/// (its actor was stopped or killed mid-operation, its future dropped)
/// records the operation as cancelled: every started operation yields
/// exactly one record.
pub(crate) struct Audit<'a> {
    osl: &'a Osl,
    context: &'a SecurityContext,
    operation: Operation,
    target: String,
    at: chrono::DateTime<chrono::Utc>,
    started: std::time::Instant,
    recorded: bool,
}

impl Audit<'_> {
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn limits(&self) -> Limits {
        self.osl.policy().current_limits()
    }

    /// The error for a refusal by `rule`.
    pub(crate) fn denied(&self, rule: DenyRule) -> OslError {
        OslError::Denied {
            operation: self.operation,
            target: self.target.clone(),
            principal: self.context.principal().to_owned(),
            rule,
        }
    }

    /// The error for an I/O failure.
    pub(crate) fn io(&self, error: &std::io::Error) -> OslError {
        OslError::io(self.operation, &self.target, error)
    }

    /// Checks `program` with the environment keys the request sets.
    pub(crate) fn program<'k>(
        &self,
        program: &Path,
        env_keys: impl IntoIterator<Item = &'k str> + Clone,
    ) -> Result<GrantedProgram, OslError> {
        self.osl
            .policy()
            .check_program(self.context, program, env_keys)
            .map_err(|rule| self.denied(rule))
    }

    /// Checks a connection to `host` (resolved to `ip`) on `port`.
    pub(crate) fn connect(
        &self,
        host: &str,
        ip: std::net::IpAddr,
        port: u16,
    ) -> Result<(), OslError> {
        self.osl
            .policy()
            .check_connect(self.context, host, ip, port)
            .map_err(|rule| self.denied(rule))
    }

    /// Checks that a connection to `host` on `port` could be granted, before
    /// `host` is looked up.
    pub(crate) fn connect_before_lookup(&self, host: &str, port: u16) -> Result<(), OslError> {
        self.osl
            .policy()
            .check_connect_before_lookup(self.context, host, port)
            .map_err(|rule| self.denied(rule))
    }

    /// Checks listening on `port`.
    pub(crate) fn listen(&self, port: u16) -> Result<(), OslError> {
        self.osl
            .policy()
            .check_listen(self.context, port)
            .map_err(|rule| self.denied(rule))
    }

    /// Takes a connection slot for the audited principal.
    pub(crate) fn connection_slot(&self) -> Result<ConnectionSlot, OslError> {
        self.osl
            .open_connection(self.context.principal())
            .map_err(|rule| self.denied(rule))
    }

    /// Runs `job` on tokio's blocking pool for at most `max_duration`; its
    /// refusal, a panic, or running out of time become this operation's
    /// error. A job that runs out of time is not stopped (a system call
    /// cannot be): it may still complete.
    async fn blocking<T, F>(&self, job: F) -> Result<T, OslError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, confine::Refused> + Send + 'static,
    {
        let limit = self.limits().max_duration;
        match tokio::time::timeout(limit, tokio::task::spawn_blocking(job)).await {
            Ok(Ok(done)) => done.map_err(|refused| self.refused(refused)),
            Ok(Err(panicked)) => Err(self.io(&std::io::Error::other(panicked.to_string()))),
            Err(_) => Err(self.timed_out(limit)),
        }
    }

    /// The error for a refusal by the policy or the OS.
    fn refused(&self, refused: confine::Refused) -> OslError {
        match refused {
            confine::Refused::Denied(rule) => self.denied(rule),
            confine::Refused::Io(error) => self.io(&error),
        }
    }

    /// The error for running out of time after `after`.
    pub(crate) fn timed_out(&self, after: std::time::Duration) -> OslError {
        OslError::TimedOut {
            operation: self.operation,
            target: self.target.clone(),
            after,
        }
    }

    /// Records how the operation ended and hands the result on.
    pub(crate) fn finish<T>(mut self, result: Result<T, OslError>) -> Result<T, OslError> {
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(OslError::Denied { rule, .. }) => Outcome::Denied(rule.to_string()),
            Err(error) => Outcome::Failed(error.to_string()),
        };
        self.record(outcome);
        result
    }

    fn record(&mut self, outcome: Outcome) {
        self.recorded = true;
        self.osl.log().record(&ActivityRecord {
            at: self.at,
            principal: self.context.principal().to_owned(),
            operation: self.operation,
            target: std::mem::take(&mut self.target),
            outcome,
            duration_us: micros(self.started.elapsed()),
        });
    }
}

impl Drop for Audit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.record(Outcome::Cancelled(
                "cut short before its outcome was known: its actor stopped, was killed or restarted, or the connection was closed (a file-system call already under way may still complete)".into(),
            ));
        }
    }
}
