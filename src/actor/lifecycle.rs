//! Lifecycle: the states an actor passes through and the reason it exits.

use std::any::Any;
use std::fmt;

use crate::util::ActorId;

/// Where an actor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorState {
    /// Running `pre_start`.
    Starting,
    /// Handling messages.
    Running,
    /// Being replaced by a fresh instance after `ErrorAction::Restart`.
    Restarting,
    /// Running `post_stop`; the mailbox is closed.
    Stopping,
    /// Gone; its exit reason is available.
    Stopped,
}

impl ActorState {
    pub(crate) const fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) const fn from_u8(v: u8) -> Self {
        match v {
            0 => ActorState::Starting,
            1 => ActorState::Running,
            2 => ActorState::Restarting,
            3 => ActorState::Stopping,
            _ => ActorState::Stopped,
        }
    }
}

/// Why an actor stopped. Supervisors decide on restarts from this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// It stopped itself or was asked to stop.
    Normal,
    /// It was stopped by a shutdown of its system or supervisor.
    Shutdown,
    /// A hook returned an error and `on_error` chose `Stop` (or `pre_start` failed).
    Error(String),
    /// A hook panicked; the panic text.
    Panic(String),
    /// It was killed without running `post_stop`.
    Killed,
    /// `on_error` chose `Escalate`: the failure is handed to the supervisor.
    Escalated(String),
    /// A linked actor exited abnormally (or with `Shutdown`) and this one,
    /// not trapping exits, went with it (see [`link`](super::link)):
    /// which actor, and its exit reason. Normal when that reason is.
    Linked {
        /// The linked actor that exited first.
        actor: ActorId,
        /// Why it exited.
        reason: Box<ExitReason>,
    },
}

impl ExitReason {
    /// `Normal` and `Shutdown` are normal exits (OTP's `normal` / `shutdown`);
    /// everything else is abnormal.
    pub fn is_normal(&self) -> bool {
        match self {
            ExitReason::Normal | ExitReason::Shutdown => true,
            // Erlang's linked process exits with the very reason it
            // received: `shutdown` stays a normal exit.
            ExitReason::Linked { reason, .. } => reason.is_normal(),
            _ => false,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Error(e) => write!(f, "error: {e}"),
            ExitReason::Panic(p) => write!(f, "panic: {p}"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Escalated(e) => write!(f, "escalated: {e}"),
            ExitReason::Linked { actor, reason } => write!(f, "linked {actor} exited: {reason}"),
        }
    }
}

/// Extracts the text of a panic payload.
pub(crate) fn panic_text(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => panic_text_of(&*payload),
    }
}

/// The text of a panic payload that stays where it is (to be resumed).
pub(crate) fn panic_text_of(payload: &(dyn Any + Send)) -> String {
    match payload.downcast_ref::<String>() {
        Some(s) => s.clone(),
        None => match payload.downcast_ref::<&'static str>() {
            Some(s) => (*s).to_owned(),
            None => "panic with a non-string payload".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_exits_follow_otp() {
        assert!(ExitReason::Normal.is_normal());
        assert!(ExitReason::Shutdown.is_normal());
        for r in [
            ExitReason::Error("e".into()),
            ExitReason::Panic("p".into()),
            ExitReason::Killed,
            ExitReason::Escalated("x".into()),
        ] {
            assert!(!r.is_normal(), "{r}");
        }
    }

    #[test]
    fn state_round_trips_through_u8() {
        for s in [
            ActorState::Starting,
            ActorState::Running,
            ActorState::Restarting,
            ActorState::Stopping,
            ActorState::Stopped,
        ] {
            assert_eq!(ActorState::from_u8(s.to_u8()), s);
        }
    }

    #[test]
    fn panic_text_reads_str_and_string_payloads() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_text(p), "boom 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_text(p), "static");
        let p = std::panic::catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(panic_text(p), "panic with a non-string payload");
    }
}
