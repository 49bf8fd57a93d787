//! The observer's actions — terminate, restart or delete a supervised
//! child; stop or kill an actor — behind the token, and logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::json;

use super::api::{State, not_found};
use crate::supervisor::{ChildId, SupervisorError};
use crate::util::ActorId;

/// An action, as the page posts it.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(super) enum Action {
    Terminate { supervisor: u64, child: String },
    Restart { supervisor: u64, child: String },
    Delete { supervisor: u64, child: String },
    Stop { actor: u64 },
    Kill { actor: u64 },
}

/// 256 random bits, hex.
pub(super) fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| error.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal without telling by how long it took where they differ.
fn same(given: &[u8], token: &[u8]) -> bool {
    given.len() == token.len() && given.iter().zip(token).fold(0, |d, (a, b)| d | (a ^ b)) == 0
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "ok": false, "error": error }))).into_response()
}

/// `POST /api/actions`.
pub(super) async fn act(
    Shared(state): Shared<Arc<State>>,
    ConnectInfo(who): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(action): Json<Action>,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let refused = match given {
        _ if state.read_only => Some((
            StatusCode::FORBIDDEN,
            "the observer is read-only: actions are turned off",
        )),
        None => Some((
            StatusCode::UNAUTHORIZED,
            "this action needs the observer's token (Authorization: Bearer <token>), printed when it started",
        )),
        Some(token) if !same(token.as_bytes(), state.token.as_bytes()) => Some((
            StatusCode::FORBIDDEN,
            "wrong token: use the one the observer printed when it started",
        )),
        Some(_) => None,
    };
    if let Some((status, error)) = refused {
        tracing::warn!(target: "airssys_rt::observer", %who, ?action, %status, "action refused");
        return refuse(status, error);
    }
    let outcome = perform(&state, &action).await;
    match &outcome {
        Ok(done) => {
            tracing::info!(target: "airssys_rt::observer", %who, ?action, outcome = %done, "action done")
        }
        Err(error) => {
            tracing::warn!(target: "airssys_rt::observer", %who, ?action, %error, "action failed")
        }
    }
    match outcome {
        Ok(done) => Json(json!({ "ok": true, "outcome": done })).into_response(),
        Err(Failed::Unknown(error)) => not_found(error),
        Err(Failed::Refused(error)) => refuse(StatusCode::CONFLICT, &error),
    }
}

/// Why an action did not happen.
enum Failed {
    /// No such actor, supervisor or child (404).
    Unknown(String),
    /// It exists, but the action does not apply now, e.g. restarting a
    /// running child, as OTP's `restart_child` refuses (409).
    Refused(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Unknown(error) | Failed::Refused(error) => f.write_str(error),
        }
    }
}

/// Does `action`; what happened, or why not.
async fn perform(state: &State, action: &Action) -> Result<String, Failed> {
    let system = &state.system;
    match action {
        Action::Stop { actor } => match system.stop_actor(ActorId::from_raw(*actor)) {
            true => Ok(format!("actor#{actor} asked to stop")),
            false => Err(Failed::Unknown(format!(
                "no live actor#{actor} (or it is stopping already)"
            ))),
        },
        Action::Kill { actor } => match system.kill_actor(ActorId::from_raw(*actor)) {
            true => Ok(format!("actor#{actor} killed")),
            false => Err(Failed::Unknown(format!("no live actor#{actor}"))),
        },
        Action::Terminate { supervisor, child }
        | Action::Restart { supervisor, child }
        | Action::Delete { supervisor, child } => {
            let parent = system
                .supervisor(ActorId::from_raw(*supervisor))
                .ok_or_else(|| Failed::Unknown(format!("no live supervisor actor#{supervisor}")))?;
            let id = ChildId::from(child.as_str());
            let done = match action {
                Action::Terminate { .. } => parent
                    .terminate_child(id)
                    .await
                    .map(|()| format!("{child} terminated")),
                Action::Restart { .. } => parent
                    .restart_child(id)
                    .await
                    .map(|actor| format!("{child} restarted as {actor}")),
                _ => parent
                    .delete_child(id)
                    .await
                    .map(|()| format!("{child} deleted")),
            };
            done.map_err(|error| match error {
                SupervisorError::UnknownChild { .. } | SupervisorError::NotRunning { .. } => {
                    Failed::Unknown(error.to_string())
                }
                refused => Failed::Refused(refused.to_string()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(a.as_bytes(), a.as_bytes()));
        assert!(!same(a.as_bytes(), b.as_bytes()));
        assert!(!same(&a.as_bytes()[..63], a.as_bytes()));
    }
}
