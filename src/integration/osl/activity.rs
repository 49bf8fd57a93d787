//! The activity log: one [`ActivityRecord`] per operation, allowed or
//! denied, completed, failed or cut short, handed to every configured
//! [`ActivitySink`] (`tracing`, a JSON-lines file, memory). Records name the
//! operation and its target, never file contents, data sent or environment
//! values. Text renderings escape control characters, so no field can forge
//! a line.

use std::borrow::Cow;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// An operation the OS layer performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Operation {
    /// Read a whole file.
    #[serde(rename = "file.read")]
    FileRead,
    /// Write (replace) a file.
    #[serde(rename = "file.write")]
    FileWrite,
    /// Append to a file.
    #[serde(rename = "file.append")]
    FileAppend,
    /// List a directory.
    #[serde(rename = "file.list")]
    ListDir,
    /// Read metadata.
    #[serde(rename = "file.metadata")]
    Metadata,
    /// Create a directory.
    #[serde(rename = "file.create_dir")]
    CreateDir,
    /// Remove a file or an empty directory.
    #[serde(rename = "file.remove")]
    Remove,
    /// Run a program.
    #[serde(rename = "process.spawn")]
    ProcessSpawn,
    /// Kill a running program.
    #[serde(rename = "process.kill")]
    ProcessKill,
    /// Open a TCP connection.
    #[serde(rename = "net.connect")]
    Connect,
    /// Listen for TCP connections.
    #[serde(rename = "net.listen")]
    Listen,
    /// Accept a TCP connection.
    #[serde(rename = "net.accept")]
    Accept,
    /// Send on a connection.
    #[serde(rename = "net.send")]
    Send,
    /// Receive from a connection.
    #[serde(rename = "net.receive")]
    Receive,
    /// A Wasm guest sends to an actor.
    #[serde(rename = "wasm.send")]
    WasmSend,
    /// A Wasm guest reads the clock.
    #[serde(rename = "wasm.clock")]
    WasmClock,
}

impl Operation {
    /// The operation's stable name, as in the log (e.g. `"file.read"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::FileRead => "file.read",
            Operation::FileWrite => "file.write",
            Operation::FileAppend => "file.append",
            Operation::ListDir => "file.list",
            Operation::Metadata => "file.metadata",
            Operation::CreateDir => "file.create_dir",
            Operation::Remove => "file.remove",
            Operation::ProcessSpawn => "process.spawn",
            Operation::ProcessKill => "process.kill",
            Operation::Connect => "net.connect",
            Operation::Listen => "net.listen",
            Operation::Accept => "net.accept",
            Operation::Send => "net.send",
            Operation::Receive => "net.receive",
            Operation::WasmSend => "wasm.send",
            Operation::WasmClock => "wasm.clock",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed and done.
    Succeeded,
    /// Refused by the policy; the rule that refused it.
    Denied(String),
    /// Allowed, but it failed; why.
    Failed(String),
    /// Started, then cut short before its outcome was known: its actor
    /// stopped, was killed or restarted, or its connection was closed.
    Cancelled(String),
}

/// One operation, allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// When it started.
    pub at: DateTime<Utc>,
    /// Who asked.
    pub principal: String,
    /// What.
    pub operation: Operation,
    /// On what: a path, a program, an address, a connection.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, in microseconds.
    pub duration_us: u64,
}

impl fmt::Display for ActivityRecord {
    /// One line: control characters in any field are escaped, so a path or
    /// argument cannot start a forged line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}: ",
            self.at.format("%H:%M:%S%.3f"),
            escape_control(&self.principal),
            self.operation,
            escape_control(&self.target)
        )?;
        match &self.outcome {
            Outcome::Succeeded => write!(f, "ok in {} µs", self.duration_us),
            Outcome::Denied(rule) => write!(f, "DENIED ({})", escape_control(rule)),
            Outcome::Failed(why) => write!(f, "failed ({})", escape_control(why)),
            Outcome::Cancelled(why) => write!(f, "cancelled ({})", escape_control(why)),
        }
    }
}

/// `path` as one unambiguous line for a log: backslashes doubled, control
/// characters escaped (`\n`, `\u{1b}`), bytes that are not UTF-8 written as
/// `\xNN`. Ordinary paths come out as they are.
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// use std::path::Path;
/// use airssys_rt::integration::osl::escape_path;
/// assert_eq!(escape_path(Path::new("/tmp/a b")), "/tmp/a b");
/// assert_eq!(escape_path(Path::new("/tmp/x\nINFO")), "/tmp/x\\nINFO");
/// assert_eq!(escape_path(Path::new(OsStr::from_bytes(b"/tmp/\xff"))), "/tmp/\\xff");
/// ```
pub fn escape_path(path: &std::path::Path) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let mut escaped = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut escaped, c, true);
        }
        for byte in chunk.invalid() {
            let _ = write!(escaped, "\\x{byte:02x}");
        }
    }
    escaped
}

/// `text` with its control characters escaped (`\n`, `\t`, `\u{1b}`, and
/// the Unicode line separators and direction overrides), so it stays on
/// one line of a text log and reads as written.
pub(crate) fn escape_control(text: &str) -> Cow<'_, str> {
    escape_str(text, false)
}

/// `text` as one unambiguous line: like [`escape_control`], and backslashes
/// doubled, so an escape in the text cannot pass for one made here.
pub(crate) fn escape_text(text: &str) -> Cow<'_, str> {
    escape_str(text, true)
}

fn escape_str(text: &str, backslash: bool) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| needs_escape(c) || (backslash && c == '\\'))
    {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut escaped, c, backslash);
    }
    Cow::Owned(escaped)
}

/// Control characters, and the characters that break or reorder a line
/// when shown: line and paragraph separators, bidirectional overrides.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(into: &mut String, c: char, backslash: bool) {
    match c {
        '\\' if backslash => into.push_str("\\\\"),
        c if needs_escape(c) => into.extend(c.escape_default()),
        c => into.push(c),
    }
}

/// Where activity records go.
pub trait ActivitySink: Send + Sync + 'static {
    /// Takes one record. Must not block for long: it runs on the actor that
    /// performed the operation.
    fn record(&self, record: &ActivityRecord);
}

/// Emits each record as a `tracing` event (target `airssys_rt::osl`): INFO
/// for successes, WARN for denials and failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl ActivitySink for TracingSink {
    /// Text fields are passed with their control characters escaped, so a
    /// text subscriber prints each record on one line.
    fn record(&self, r: &ActivityRecord) {
        let principal = escape_control(&r.principal);
        let target = escape_control(&r.target);
        match &r.outcome {
            Outcome::Succeeded => tracing::info!(
                target: "airssys_rt::osl",
                principal = %principal, operation = %r.operation, target = %target,
                duration_us = r.duration_us, "allowed"
            ),
            Outcome::Denied(rule) => tracing::warn!(
                target: "airssys_rt::osl",
                principal = %principal, operation = %r.operation, target = %target,
                rule = %escape_control(rule), "denied"
            ),
            Outcome::Failed(why) => tracing::warn!(
                target: "airssys_rt::osl",
                principal = %principal, operation = %r.operation, target = %target,
                error = %escape_control(why), "failed"
            ),
            Outcome::Cancelled(why) => tracing::warn!(
                target: "airssys_rt::osl",
                principal = %principal, operation = %r.operation, target = %target,
                reason = %escape_control(why), "cancelled"
            ),
        }
    }
}

/// Appends each record as one JSON line to a file, flushed per record so a
/// crash loses nothing already logged.
#[derive(Debug)]
pub struct JsonLinesSink {
    file: Mutex<File>,
}

impl JsonLinesSink {
    /// Opens (creating or appending to) the log file at `path`.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }
}

impl ActivitySink for JsonLinesSink {
    fn record(&self, record: &ActivityRecord) {
        let line = match serde_json::to_string(record) {
            Ok(mut line) => {
                line.push('\n');
                line
            }
            Err(error) => {
                tracing::error!(%error, "activity record not serialisable");
                return;
            }
        };
        if let Err(error) = self.file.lock().write_all(line.as_bytes()) {
            tracing::error!(%error, "activity log file not writable; record lost");
        }
    }
}

/// Keeps records in memory (for tests, demos and inspection).
#[derive(Debug, Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<ActivityRecord>>>);

impl MemorySink {
    /// A copy of every record so far.
    pub fn records(&self) -> Vec<ActivityRecord> {
        self.0.lock().clone()
    }
}

impl ActivitySink for MemorySink {
    fn record(&self, record: &ActivityRecord) {
        self.0.lock().push(record.clone());
    }
}

/// The sinks every record goes to. Cheap to clone.
///
/// ```
/// use airssys_rt::integration::osl::{ActivityLog, MemorySink, TracingSink};
/// let memory = MemorySink::default();
/// let log = ActivityLog::new().with_sink(TracingSink).with_sink(memory.clone());
/// assert!(memory.records().is_empty());
/// # drop(log);
/// ```
#[derive(Clone, Default)]
pub struct ActivityLog {
    sinks: Vec<Arc<dyn ActivitySink>>,
}

impl fmt::Debug for ActivityLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivityLog")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl ActivityLog {
    /// A log with no sinks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink.
    pub fn with_sink(mut self, sink: impl ActivitySink) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Hands `record` to every sink.
    pub fn record(&self, record: &ActivityRecord) {
        for sink in &self.sinks {
            sink.record(record);
        }
    }
}

pub(crate) fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome) -> ActivityRecord {
        ActivityRecord {
            at: Utc::now(),
            principal: "p".into(),
            operation: Operation::FileRead,
            target: "/tmp/x".into(),
            outcome,
            duration_us: 7,
        }
    }

    #[test]
    fn records_serialise_to_one_json_object() {
        let json = serde_json::to_value(record(Outcome::Denied("no".into()))).unwrap();
        assert_eq!(json["operation"], "file.read");
        assert_eq!(json["outcome"]["status"], "denied");
        assert_eq!(json["outcome"]["detail"], "no");
        let back: ActivityRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.operation, Operation::FileRead);
    }

    #[test]
    fn operation_names_match_their_serialised_form() {
        for op in [
            Operation::FileRead,
            Operation::ProcessSpawn,
            Operation::Receive,
        ] {
            assert_eq!(serde_json::to_value(op).unwrap(), op.as_str());
        }
    }

    #[test]
    fn every_sink_sees_every_record() {
        let (a, b) = (MemorySink::default(), MemorySink::default());
        let log = ActivityLog::new().with_sink(a.clone()).with_sink(b.clone());
        log.record(&record(Outcome::Succeeded));
        assert_eq!((a.records().len(), b.records().len()), (1, 1));
    }
}
