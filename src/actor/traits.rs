//! The [`Actor`] trait and [`ErrorAction`].

use std::fmt;
use std::future::Future;

use super::ActorContext;
use crate::message::Message;

/// What the runtime does after `handle_message` returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// Keep the current state and go on with the next message.
    Resume,
    /// Restart the actor. A supervised actor exits with
    /// [`ExitReason::Error`](super::ExitReason::Error) and its supervisor
    /// restarts it by its strategy (the restart counts toward intensity). An
    /// unsupervised actor restarts in place: `post_stop`, a fresh instance
    /// from the spawn factory, its `pre_start`, then the queued messages.
    Restart,
    /// Stop normally: exit reason [`ExitReason::Normal`](super::ExitReason::Normal),
    /// so a transient child is not restarted. The error is logged.
    Stop,
    /// Exit abnormally with [`ExitReason::Escalated`](super::ExitReason::Escalated),
    /// handing the decision to the supervisor (the default).
    Escalate,
}

/// An actor: private state plus a handler for one message type.
///
/// Implementors write `async fn`s (native async in traits; no `async_trait`
/// boxing). Only [`handle_message`](Actor::handle_message) is required.
///
/// ```
/// use std::convert::Infallible;
/// use airssys_rt::prelude::*;
///
/// struct Counter(u64);
///
/// impl Actor for Counter {
///     type Message = u64;
///     type Error = Infallible;
///
///     async fn handle_message(&mut self, n: u64, _ctx: &mut ActorContext<u64>) -> Result<(), Infallible> {
///         self.0 += n;
///         Ok(())
///     }
/// }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// The one message type this actor receives (an enum for several kinds).
    type Message: Message;
    /// The error its hooks may return: any `Debug + Display` type — an
    /// error enum of its own, [`ActorError`](super::ActorError) to use `?`
    /// on errors of every kind, or `Infallible`.
    type Error: fmt::Debug + fmt::Display + Send + 'static;

    /// Handles one message. An `Err` is passed to [`on_error`](Actor::on_error).
    fn handle_message(
        &mut self,
        message: Self::Message,
        ctx: &mut ActorContext<Self::Message>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Runs before the first message (and after each restart). An `Err` stops
    /// the actor with [`ExitReason::Error`](super::ExitReason::Error).
    fn pre_start(
        &mut self,
        ctx: &mut ActorContext<Self::Message>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once the actor has stopped taking messages (and before a restart).
    /// Not run after a failed `pre_start` or a kill. An `Err` is logged.
    fn post_stop(
        &mut self,
        ctx: &ActorContext<Self::Message>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Decides what happens after `handle_message` failed. Defaults to
    /// [`ErrorAction::Escalate`]: the actor exits abnormally, like a crashing
    /// Erlang process, and its supervisor (if any) decides what comes next.
    fn on_error(
        &mut self,
        error: Self::Error,
        ctx: &ActorContext<Self::Message>,
    ) -> impl Future<Output = ErrorAction> + Send {
        let _ = (error, ctx);
        async { ErrorAction::Escalate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::ActorSystem;
    use std::time::Duration;

    #[derive(Debug, thiserror::Error)]
    #[error("odd number {0}")]
    struct Odd(u64);

    struct EvenOnly {
        seen: Vec<u64>,
        action: ErrorAction,
    }

    #[derive(Debug)]
    enum Msg {
        Num(u64),
        Seen(crate::actor::ReplyTo<Vec<u64>>),
    }
    impl Message for Msg {
        const MESSAGE_TYPE: &'static str = "test.even";
    }

    impl Actor for EvenOnly {
        type Message = Msg;
        type Error = Odd;
        async fn handle_message(&mut self, msg: Msg, _: &mut ActorContext<Msg>) -> Result<(), Odd> {
            match msg {
                Msg::Num(n) if n % 2 == 1 => Err(Odd(n)),
                Msg::Num(n) => {
                    self.seen.push(n);
                    Ok(())
                }
                Msg::Seen(r) => {
                    let _ = r.reply(self.seen.clone());
                    Ok(())
                }
            }
        }
        async fn on_error(&mut self, _: Odd, _: &ActorContext<Msg>) -> ErrorAction {
            self.action
        }
    }

    #[tokio::test]
    async fn resume_keeps_state_stop_is_normal_and_escalate_is_abnormal() {
        let system = ActorSystem::new(Default::default()).unwrap();
        let resume = system
            .spawn(EvenOnly {
                seen: vec![],
                action: ErrorAction::Resume,
            })
            .unwrap();
        for n in [2, 3, 4] {
            resume.tell(Msg::Num(n)).await.unwrap();
        }
        let seen = resume.ask(Msg::Seen, Duration::from_secs(5)).await.unwrap();
        assert_eq!(seen, vec![2, 4]);

        let stop = system
            .spawn(EvenOnly {
                seen: vec![],
                action: ErrorAction::Stop,
            })
            .unwrap();
        stop.tell(Msg::Num(7)).await.unwrap();
        let reason = stop.wait_for_exit().await;
        assert_eq!(reason, crate::actor::ExitReason::Normal);

        let escalate = system
            .spawn(EvenOnly {
                seen: vec![],
                action: ErrorAction::Escalate,
            })
            .unwrap();
        escalate.tell(Msg::Num(9)).await.unwrap();
        assert_eq!(
            escalate.wait_for_exit().await,
            crate::actor::ExitReason::Escalated("odd number 9".into())
        );
    }
}
