//! [`OslError`]: what an OS operation can run into.

use std::time::Duration;

use super::{DenyRule, Operation};

/// An OS operation that was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OslError {
    /// The security policy refused it; nothing was done.
    #[error("{operation} on {target} denied for '{principal}': {rule}")]
    Denied {
        /// The operation.
        operation: Operation,
        /// What it was aimed at.
        target: String,
        /// Who asked.
        principal: String,
        /// The rule that refused it.
        rule: DenyRule,
    },
    /// The OS reported an error.
    #[error("{operation} on {target} failed: {message}")]
    Io {
        /// The operation.
        operation: Operation,
        /// What it was aimed at.
        target: String,
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The OS's message.
        message: String,
    },
    /// It ran out of time. A process is killed then; a file-system call
    /// cannot be stopped and may still complete.
    #[error(
        "{operation} on {target} did not finish within {after:?} (a process is killed then; a file-system call cannot be stopped and may still complete)"
    )]
    TimedOut {
        /// The operation.
        operation: Operation,
        /// What it was aimed at.
        target: String,
        /// The limit that passed.
        after: Duration,
    },
    /// No such process (never started here, or finished and already waited
    /// for).
    #[error(
        "no process with id {id} to wait for or kill (it may have finished and been waited for already)"
    )]
    UnknownProcess {
        /// The id asked for.
        id: u64,
    },
    /// The peer closed the connection.
    #[error("the connection to {peer} is closed")]
    ConnectionClosed {
        /// The peer's address.
        peer: String,
    },
}

impl OslError {
    pub(crate) fn io(operation: Operation, target: &str, error: &std::io::Error) -> Self {
        OslError::Io {
            operation,
            target: target.to_owned(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    /// Whether the policy refused the operation.
    pub fn is_denied(&self) -> bool {
        matches!(self, OslError::Denied { .. })
    }
}
