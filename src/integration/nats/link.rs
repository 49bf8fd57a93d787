//! What the client's events say about the connection: up, reconnecting or
//! closed for good, and which publishes the server refused.

use std::sync::Arc;

use async_nats::{ClientError, Event, ServerError};
use tokio::sync::{broadcast, watch};

/// The connection to NATS, as a [`NatsMessageBroker`](super::NatsMessageBroker)
/// sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Connected: sends go out.
    Up,
    /// Lost; the client is reconnecting. Sends fail with
    /// [`RemoteFailure::Disconnected`](crate::broker::RemoteFailure::Disconnected).
    Reconnecting,
    /// Closed for good (reconnect attempts ran out). Sends fail with
    /// [`RemoteFailure::Closed`](crate::broker::RemoteFailure::Closed).
    Closed,
}

/// Follows the client's events.
pub(super) struct Link {
    state: watch::Sender<LinkState>,
    /// Subjects the server refused a publish to or a subscription on, as
    /// they are refused.
    denied: broadcast::Sender<Arc<str>>,
}

impl Link {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: watch::Sender::new(LinkState::Reconnecting),
            denied: broadcast::Sender::new(64),
        })
    }

    /// Sets the state from the client's own (before any event arrives).
    pub(super) fn seed(&self, connected: bool) {
        if connected {
            self.state.send_replace(LinkState::Up);
        }
    }

    pub(super) fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    pub(super) fn watch(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }

    /// Refusals from now on.
    pub(super) fn denials(&self) -> broadcast::Receiver<Arc<str>> {
        self.denied.subscribe()
    }

    pub(super) fn on_event(&self, event: Event) {
        match event {
            Event::Connected => {
                tracing::info!("connected to NATS");
                self.state.send_replace(LinkState::Up);
            }
            Event::Disconnected => {
                tracing::warn!("disconnected from NATS; reconnecting");
                self.state.send_if_modified(|state| {
                    let was = std::mem::replace(state, LinkState::Reconnecting);
                    if was == LinkState::Closed {
                        *state = was;
                    }
                    *state != was
                });
            }
            Event::Closed | Event::ClientError(ClientError::MaxReconnects) => {
                tracing::error!("the NATS connection is closed for good");
                self.state.send_replace(LinkState::Closed);
            }
            Event::ServerError(ServerError::Other(text)) => {
                tracing::warn!(error = %text, "NATS server error");
                if let Some(subject) = denied_subject(&text) {
                    // Nobody listening is fine: no call was waiting on it.
                    let _ = self.denied.send(subject.into());
                }
            }
            Event::SlowConsumer(sid) => tracing::warn!(
                subscription = sid,
                "NATS dropped messages to a slow subscription (an export whose actor is behind?)"
            ),
            other => tracing::warn!(event = %other, "NATS event"),
        }
    }
}

/// Runs `work` unless the server first refuses one of `subjects` (a
/// publish or a subscription): then the refused subject.
pub(super) async fn unless_denied<T>(
    mut denials: broadcast::Receiver<Arc<str>>,
    subjects: &[&str],
    work: impl Future<Output = T>,
) -> Result<T, String> {
    let denied = async {
        loop {
            match denials.recv().await {
                Ok(refused) if subjects.contains(&&*refused) => return refused.to_string(),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    tokio::select! {
        done = work => Ok(done),
        refused = denied => Err(refused),
    }
}

/// The subject of a `Permissions Violation for Publish to "…"` (or
/// `… for Subscription to "…"`) error.
fn denied_subject(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let after = [
        "permissions violation for publish to ",
        "permissions violation for subscription to ",
    ]
    .iter()
    .find_map(|prefix| lower.find(prefix).map(|at| at + prefix.len()))?;
    let quoted = text.get(after..)?.trim_start_matches(['"', '\'']);
    let end = quoted.find(['"', '\'']).unwrap_or(quoted.len());
    Some(&quoted[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_subject() {
        assert_eq!(
            denied_subject("Permissions Violation for Publish to \"airssys.beta.name.counter\""),
            Some("airssys.beta.name.counter")
        );
        assert_eq!(
            denied_subject("permissions violation for publish to 'a.b'"),
            Some("a.b")
        );
        assert_eq!(
            denied_subject("Permissions Violation for Subscription to \"a.>\" using queue \"q\""),
            Some("a.>")
        );
        assert_eq!(denied_subject("Authorization Violation"), None);
    }
}
