//! The OS layer (feature `osl`, on by default): file-system, process and
//! network operations performed by actors, each checked against a
//! [`SecurityPolicy`] for the [`SecurityContext`] of the actor that performs
//! it, and recorded in an [`ActivityLog`].
//!
//! The brief puts airssys-osl under the runtime; it is not published, so the
//! layer lives here, on tokio's `fs`, `process` and `net`.
//!
//! * [`Osl`] holds the policy, the log and the limits' counters, and makes
//!   the actors: [`FileActor`], [`ProcessActor`], [`NetworkActor`]. Spawn
//!   them, or supervise them like any worker.
//! * The policy denies everything not granted. Paths are resolved (`..`,
//!   symlinks) before they are compared with granted prefixes; programs are
//!   resolved on `PATH` and compared by full path; hosts and ports by range.
//! * Every operation, allowed or denied, yields one [`ActivityRecord`]
//!   (time, principal, operation, target, outcome, duration) to every sink:
//!   [`TracingSink`], [`JsonLinesSink`], [`MemorySink`], or your own.
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

pub mod activity;
pub mod errors;
pub mod file;
pub mod network;
pub mod process;
pub mod security;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use activity::{
    ActivityLog, ActivityRecord, ActivitySink, JsonLinesSink, MemorySink, Operation, Outcome,
    TracingSink,
};
pub use errors::OslError;
pub use file::{DirEntryInfo, FileActor, FileInfo, FileRequest};
pub use network::{
    Accepted, Connection, ConnectionError, ConnectionRequest, Framing, NetworkActor, NetworkRequest,
};
pub use process::{
    OutputLine, ProcessActor, ProcessId, ProcessOutput, ProcessRequest, ProcessSpec, Stream,
};
pub use security::{Access, DenyRule, Grant, Limits, SecurityContext, SecurityPolicy};

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
    open_connections: AtomicUsize,
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
                open_connections: AtomicUsize::new(0),
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

    /// Open connections right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections.load(Ordering::Acquire)
    }

    /// Starts auditing one operation.
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
        }
    }

    /// Takes one connection slot, or refuses at the `max_connections` limit.
    pub(crate) fn open_connection(&self) -> Result<ConnectionSlot, DenyRule> {
        let max = self.policy().current_limits().max_connections;
        let taken = self.shared.open_connections.fetch_update(
            Ordering::AcqRel,
            Ordering::Acquire,
            |open| (open < max).then_some(open + 1),
        );
        match taken {
            Ok(_) => Ok(ConnectionSlot { osl: self.clone() }),
            Err(_) => Err(DenyRule::Limit {
                name: "max_connections",
                value: max as u64,
            }),
        }
    }
}

/// One open connection counted against `max_connections`; freed on drop.
pub(crate) struct ConnectionSlot {
    osl: Osl,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.osl
            .shared
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// One operation being audited: checks go through it, and
/// [`finish`](Self::finish) records the outcome.
pub(crate) struct Audit<'a> {
    osl: &'a Osl,
    context: &'a SecurityContext,
    operation: Operation,
    target: String,
    at: chrono::DateTime<chrono::Utc>,
    started: std::time::Instant,
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

    /// Checks `path` for `access`; the resolved path to use.
    pub(crate) fn path(&self, access: Access, path: &Path) -> Result<PathBuf, OslError> {
        self.osl
            .policy()
            .check_path(self.context, access, path)
            .map_err(|rule| self.denied(rule))
    }

    /// Checks the entry `path` itself (a final symlink not followed).
    pub(crate) fn entry(&self, access: Access, path: &Path) -> Result<PathBuf, OslError> {
        self.osl
            .policy()
            .check_entry(self.context, access, path)
            .map_err(|rule| self.denied(rule))
    }

    /// Checks `program`; its resolved path.
    pub(crate) fn program(&self, program: &Path) -> Result<PathBuf, OslError> {
        self.osl
            .policy()
            .check_program(self.context, program)
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

    /// Checks listening on `port`.
    pub(crate) fn listen(&self, port: u16) -> Result<(), OslError> {
        self.osl
            .policy()
            .check_listen(self.context, port)
            .map_err(|rule| self.denied(rule))
    }

    /// Takes a connection slot.
    pub(crate) fn connection_slot(&self) -> Result<ConnectionSlot, OslError> {
        self.osl.open_connection().map_err(|rule| self.denied(rule))
    }

    /// Records how the operation ended and hands the result on.
    pub(crate) fn finish<T>(self, result: Result<T, OslError>) -> Result<T, OslError> {
        let outcome = match &result {
            Ok(_) => Outcome::Succeeded,
            Err(OslError::Denied { rule, .. }) => Outcome::Denied(rule.to_string()),
            Err(error) => Outcome::Failed(error.to_string()),
        };
        self.osl.log().record(&ActivityRecord {
            at: self.at,
            principal: self.context.principal().to_owned(),
            operation: self.operation,
            target: self.target,
            outcome,
            duration_us: micros(self.started.elapsed()),
        });
        result
    }
}
