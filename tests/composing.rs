//! Composing actors without blocking: work off the actor's turn
//! (`ActorContext::pipe`) and asks that cannot deadlock silently.

use std::time::Duration;

use airssys_rt::prelude::*;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug)]
enum Msg {
    /// Asks this very actor from inside the handler; reports the result.
    AskMyself(ReplyTo<Result<u64, AskError>>),
    /// Answers 7.
    Seven(ReplyTo<u64>),
    /// Pipes a future that waits for `release`, then crashes if asked to.
    PipeUntil(oneshot::Receiver<u64>),
    /// A piped result.
    Piped(u64),
    /// Asks for a restart.
    Restart,
}

// By hand, not derived: this file also builds without the `macros` feature.
impl Message for Msg {
    const MESSAGE_TYPE: &'static str = "test.compose";
}

struct Composer {
    piped: mpsc::UnboundedSender<u64>,
}

impl Actor for Composer {
    type Message = Msg;
    type Error = ActorError;

    async fn handle_message(
        &mut self,
        msg: Msg,
        ctx: &mut ActorContext<Msg>,
    ) -> Result<(), ActorError> {
        match msg {
            Msg::AskMyself(reply) => {
                let answer = ctx
                    .myself()
                    .ask(Msg::Seven, Duration::from_secs(3600))
                    .await;
                let _ = reply.reply(answer);
            }
            Msg::Seven(reply) => drop(reply.reply(7)),
            Msg::PipeUntil(release) => {
                ctx.pipe(async move { release.await.unwrap_or(0) }, Msg::Piped);
            }
            Msg::Piped(n) => drop(self.piped.send(n)),
            Msg::Restart => return Err(ActorError::msg("restart requested")),
        }
        Ok(())
    }

    async fn on_error(&mut self, _: ActorError, _: &ActorContext<Msg>) -> ErrorAction {
        ErrorAction::Restart
    }
}

fn composer(system: &ActorSystem) -> (ActorRef<Msg>, mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let actor = system
        .spawn_builder()
        .spawn_with_factory(move || Composer { piped: tx.clone() })
        .unwrap();
    (actor, rx)
}

/// With the clock paused, an ask that waited would time out at once (the
/// runtime skips to its deadline): the error tells which happened.
#[tokio::test(start_paused = true)]
async fn an_actor_asking_itself_fails_at_once_with_its_own_error() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let (actor, _) = composer(&system);
    let answer = actor
        .ask(Msg::AskMyself, Duration::from_secs(60))
        .await
        .unwrap();
    let error = answer.unwrap_err();
    assert_eq!(error, AskError::SelfAsk { actor: actor.id() });
    assert!(error.to_string().contains("asked itself"), "{error}");
    // Asking it from outside still works.
    assert_eq!(
        actor
            .ask(Msg::Seven, Duration::from_secs(60))
            .await
            .unwrap(),
        7
    );
}

#[test]
fn the_timeout_error_names_the_deadlock_and_the_pipe() {
    let error = AskError::Timeout {
        actor: airssys_rt::util::ActorId::from_raw(1),
        timeout: Duration::from_secs(1),
    };
    let text = error.to_string();
    assert!(
        text.contains("deadlock") && text.contains("ActorContext::pipe"),
        "{text}"
    );
}

#[tokio::test]
async fn a_piped_result_arrives_as_a_message_without_blocking_the_handler() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let (actor, mut piped) = composer(&system);
    let (release, pending) = oneshot::channel();
    actor.tell(Msg::PipeUntil(pending)).await.unwrap();
    // The handler returned: the actor answers while the pipe waits.
    assert_eq!(
        actor
            .ask(Msg::Seven, Duration::from_secs(60))
            .await
            .unwrap(),
        7
    );
    release.send(41).unwrap();
    assert_eq!(piped.recv().await, Some(41));
}

#[tokio::test]
async fn a_pipe_started_before_a_restart_is_cancelled_and_never_reaches_the_new_instance() {
    let system = ActorSystem::new(SystemConfig::default()).unwrap();
    let (actor, mut piped) = composer(&system);
    let (mut release, pending) = oneshot::channel::<u64>();
    actor.tell(Msg::PipeUntil(pending)).await.unwrap();
    actor.tell(Msg::Restart).await.unwrap();
    // The restart cancels the pipe: its future (holding the receiver) goes.
    tokio::time::timeout(Duration::from_secs(60), release.closed())
        .await
        .expect("the pipe was cancelled");
    assert!(release.send(1).is_err());
    // The same cell, a new instance: it answers, and no result arrived.
    assert_eq!(
        actor
            .ask(Msg::Seven, Duration::from_secs(60))
            .await
            .unwrap(),
        7
    );
    assert!(
        piped.try_recv().is_err(),
        "the old instance's result was not delivered"
    );
}
