//! Error types. Each message says what happened and what to do about it.

use std::fmt;
use std::time::Duration;

use crate::util::ActorId;

/// Why a `tell` failed. The message comes back in the [`SendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendErrorKind {
    /// The actor has stopped; its mailbox is closed.
    ActorStopped,
    /// The mailbox is full (`Reject`, or `try_tell` on a `Block` mailbox).
    MailboxFull,
}

/// A message that could not be sent, returned to the sender.
///
/// ```
/// # use airssys_rt::system::{SendError, SendErrorKind};
/// # fn handle(err: SendError<String>) {
/// match err.kind() {
///     SendErrorKind::MailboxFull => { /* retry later with err.into_message() */ }
///     SendErrorKind::ActorStopped => { /* find another recipient */ }
/// }
/// # }
/// ```
///
/// The error is one pointer wide (its parts are boxed, allocated only when a
/// send fails), so `Result<(), SendError<M>>` — the output of every `tell`
/// — is one word whatever the message's size, and a successful send moves
/// nothing else around.
#[derive(thiserror::Error)]
#[error("{}", describe_send(self.0.kind, self.0.actor))]
pub struct SendError<M>(Box<Undelivered<M>>);

/// What a [`SendError`] holds.
struct Undelivered<M> {
    kind: SendErrorKind,
    actor: ActorId,
    message: M,
}

impl<M: fmt::Debug> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("kind", &self.0.kind)
            .field("actor", &self.0.actor)
            .field("message", &self.0.message)
            .finish()
    }
}

fn describe_send(kind: SendErrorKind, actor: ActorId) -> String {
    match kind {
        SendErrorKind::ActorStopped => format!(
            "{actor} has stopped and accepts no more messages; the message is returned in the error \
             (spawn a replacement or look the actor up again)"
        ),
        SendErrorKind::MailboxFull => format!(
            "the mailbox of {actor} is full; the message is returned in the error \
             (retry later, use `tell` on a Block mailbox to wait for room, or raise the capacity)"
        ),
    }
}

impl<M> SendError<M> {
    #[cold]
    pub(crate) fn new(kind: SendErrorKind, actor: ActorId, message: M) -> Self {
        Self(Box::new(Undelivered {
            kind,
            actor,
            message,
        }))
    }

    /// The same error around `f(message)`.
    pub(crate) fn map_message<T>(self, f: impl FnOnce(M) -> T) -> SendError<T> {
        let Undelivered {
            kind,
            actor,
            message,
        } = *self.0;
        SendError::new(kind, actor, f(message))
    }

    /// What went wrong.
    pub fn kind(&self) -> SendErrorKind {
        self.0.kind
    }

    /// The intended recipient.
    pub fn actor(&self) -> ActorId {
        self.0.actor
    }

    /// The message that was not delivered.
    pub fn message(&self) -> &M {
        &self.0.message
    }

    /// Takes the undelivered message back.
    pub fn into_message(self) -> M {
        self.0.message
    }
}

/// Why a watch or link could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The actor to link to had already exited, and the linking actor does
    /// not trap exits (Erlang's `noproc`). A linking actor that traps exits
    /// gets an [`ExitSignal`](crate::actor::ExitSignal) with
    /// [`DownReason::NoProc`](crate::actor::DownReason::NoProc) instead.
    #[error(
        "{actor} had already exited, so no link was made (noproc); watch it to learn why it exited, or trap exits to get an ExitSignal message instead of this error"
    )]
    NoProc {
        /// The actor that had exited.
        actor: ActorId,
    },
    /// The actor that was to watch or link has stopped itself.
    #[error(
        "{actor} has stopped, so it cannot watch or link to anything (watch from a live actor)"
    )]
    Stopped {
        /// The stopped actor.
        actor: ActorId,
    },
}

/// Why an `ask` returned no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No reply within the timeout.
    #[error(
        "{actor} did not reply within {timeout:?}; it may be overloaded or stuck (raise the timeout or check the actor), or waiting on the asker: awaiting an actor from inside a handler can deadlock, so ask from a handler with ActorContext::pipe instead"
    )]
    Timeout {
        /// The asked actor.
        actor: ActorId,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The ask was given a zero timeout, so it was refused at once and the
    /// request was never sent: no reply can arrive in no time.
    #[error(
        "an ask of {actor} with a zero timeout is refused without sending the request (no reply can arrive in no time; give it a timeout, or `tell` if no reply is needed)"
    )]
    ZeroTimeout {
        /// The actor that was to be asked.
        actor: ActorId,
    },
    /// An actor asked itself from inside one of its own hooks: the reply
    /// could only come from the handler that is waiting for it, so the ask
    /// fails at once instead of waiting out its timeout. The request was
    /// not sent.
    #[error(
        "{actor} asked itself from inside its own handler, which would deadlock; the request was not sent (handle it directly, or use ActorContext::pipe for work off the actor's turn)"
    )]
    SelfAsk {
        /// The asking (and asked) actor.
        actor: ActorId,
    },
    /// The actor had already stopped.
    #[error(
        "{actor} has stopped, so the request was not delivered (spawn a replacement or look the actor up again)"
    )]
    ActorStopped {
        /// The asked actor.
        actor: ActorId,
    },
    /// The actor's mailbox refused the request.
    #[error(
        "the mailbox of {actor} is full, so the request was not delivered (retry later or raise the capacity)"
    )]
    MailboxFull {
        /// The asked actor.
        actor: ActorId,
    },
    /// The request was delivered but its reply port was dropped unanswered:
    /// the actor stopped first, or its handler discarded the port.
    #[error(
        "{actor} dropped the request without replying (it stopped, failed, or its handler did not call reply)"
    )]
    NoReply {
        /// The asked actor.
        actor: ActorId,
    },
}

impl AskError {
    pub(crate) fn from_send<M>(err: &SendError<M>) -> Self {
        match err.kind() {
            SendErrorKind::ActorStopped => AskError::ActorStopped { actor: err.actor() },
            SendErrorKind::MailboxFull => AskError::MailboxFull { actor: err.actor() },
        }
    }
}

/// Errors of the actor system itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    /// The system was created outside a tokio runtime.
    #[error(
        "no tokio runtime is running here; create the ActorSystem inside a runtime (e.g. in #[tokio::main]) or pass a handle with ActorSystem::with_runtime"
    )]
    NoRuntime,
    /// The system is shutting down and accepts no new actors.
    #[error(
        "actor system '{system}' is shutting down and cannot spawn new actors; create a new system"
    )]
    ShuttingDown {
        /// The system's name.
        system: String,
    },
    /// The mailbox configuration is invalid.
    #[error("invalid mailbox configuration: {0}")]
    InvalidMailbox(String),
    /// The actor could not be registered (its name is taken).
    #[error(transparent)]
    Registry(#[from] crate::broker::RegistryError),
}

/// The reply port was dropped by the asker (it timed out or gave up); the
/// value comes back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[error("the asker is no longer waiting for this reply (it timed out or was cancelled)")]
pub struct ReplyError<T>(pub T);

impl<T> fmt::Debug for ReplyError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyError(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_error_returns_the_message_and_explains() {
        let err = SendError::new(SendErrorKind::MailboxFull, ActorId::from_raw(4), "hello");
        let text = err.to_string();
        assert!(
            text.contains("actor#4") && text.contains("full") && text.contains("raise"),
            "{text}"
        );
        assert_eq!(err.into_message(), "hello");
    }

    #[test]
    fn ask_error_maps_send_kinds() {
        let stopped = SendError::new(SendErrorKind::ActorStopped, ActorId::from_raw(1), ());
        assert_eq!(
            AskError::from_send(&stopped),
            AskError::ActorStopped {
                actor: ActorId::from_raw(1)
            }
        );
        let t = AskError::Timeout {
            actor: ActorId::from_raw(2),
            timeout: Duration::from_millis(5),
        };
        assert!(t.to_string().contains("5ms"));
    }

    #[test]
    fn system_errors_say_what_to_do() {
        assert!(SystemError::NoRuntime.to_string().contains("tokio::main"));
        let e = SystemError::ShuttingDown { system: "s".into() };
        assert!(e.to_string().contains("new system"));
    }
}
