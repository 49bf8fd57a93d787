//! The observer (feature `observer`): a live web view of a running system,
//! after Erlang's `observer` — the supervision tree, every actor's mailbox,
//! throughput, dead letters, health and supervision events, with actions to
//! stop, kill or restart what it shows.
//!
//! [`Observer::serve`] starts a small axum server on the system's runtime
//! serving one page (embedded: no CDN, works offline), a JSON API, a stream
//! of changes (Server-Sent Events) and the Prometheus exposition at
//! `/metrics`. It reads what the runtime counts anyway — a sampler reads the
//! counters once a second while a page is open, and not at all otherwise —
//! so with no page open it costs nothing on the message path, and nothing
//! of it is scheduled.
//!
//! **Security.** Actions change a running system, so: the server binds to
//! `127.0.0.1` unless told otherwise; every action needs the token made at
//! start (or given in [`ObserverConfig::token`]) as `Authorization: Bearer
//! <token>`, and is refused without it (401) or with another (403);
//! [`ObserverConfig::read_only`] turns actions off entirely (403); every
//! action is logged through `tracing` (target `airssys_rt::observer`) with
//! who asked, what, and the outcome.
//!
//! The API (ids are numbers, times milliseconds):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/overview` | counts, rates per second (handled, restarts, dead letters by reason), health verdict and reasons, the last two minutes of samples |
//! | `GET /api/tree` | the root supervisors: strategy, intensity, restarts, status (`gave_up` marked), child count |
//! | `GET /api/supervisors/{id}/children?offset&limit` | one supervisor's children, nested supervisors described (the tree is fetched lazily) |
//! | `GET /api/actors?offset&limit` | a page of live actors with their mailboxes |
//! | `GET /api/events?limit` | the last supervision events |
//! | `GET /api/stream` | Server-Sent Events: `supervision` (each event) and `overview` (each second) |
//! | `POST /api/actions` | `{"action": "terminate"\|"restart"\|"delete", "supervisor", "child"}` or `{"action": "stop"\|"kill", "actor"}`, with the token |
//! | `GET /metrics` | Prometheus text: the `metrics` facade's output through the recorder in [`ObserverConfig::prometheus`], else the runtime's own counters |

mod actions;
mod api;
mod exposition;
mod sampler;

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::system::ActorSystem;

/// How to serve the observer.
#[derive(Debug, Clone)]
pub struct ObserverConfig {
    /// Where to listen; `127.0.0.1:0` (loopback, a free port) by default.
    pub addr: SocketAddr,
    /// The token actions need; a random one is made when `None`.
    pub token: Option<String>,
    /// Refuse every action: a view only.
    pub read_only: bool,
    /// Supervision events kept for the page.
    pub events_kept: usize,
    /// The handle of the Prometheus recorder the program installed for the
    /// `metrics` facade, for `/metrics` to serve its output. Without one,
    /// `/metrics` serves the runtime's own counters, read when scraped (the
    /// observer installs no recorder: that would add recording to the
    /// message path).
    pub prometheus: Option<PrometheusHandle>,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            read_only: false,
            events_kept: 200,
            prometheus: None,
        }
    }
}

impl ObserverConfig {
    /// Listens on `addr` instead of a free loopback port.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Uses `token` for actions instead of a random one.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Refuses every action.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// Why the observer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ObserverError {
    /// The address could not be bound.
    #[error("the observer could not listen on {addr}: {source} (pick another address or port)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// No random token could be made (give one in the config).
    #[error("the observer could not make a random token: {0} (set ObserverConfig::token)")]
    Token(String),
}

/// A running observer; dropping it (or [`stop`](Self::stop)) stops the
/// server.
#[derive(Debug)]
pub struct Observer {
    addr: SocketAddr,
    token: String,
    read_only: bool,
    /// The server and the sampler.
    tasks: Vec<AbortHandle>,
    /// Ends the pages' streams.
    stopped: watch::Sender<bool>,
}

impl Observer {
    /// Serves the observer of `system` as `config` says, on the system's
    /// runtime.
    ///
    /// ```no_run
    /// # async fn f(system: airssys_rt::system::ActorSystem) -> Result<(), Box<dyn std::error::Error>> {
    /// use airssys_rt::observer::{Observer, ObserverConfig};
    /// let observer = Observer::serve(&system, ObserverConfig::default()).await?;
    /// println!("open {} (token {})", observer.url(), observer.token());
    /// # Ok(()) }
    /// ```
    pub async fn serve(
        system: &ActorSystem,
        config: ObserverConfig,
    ) -> Result<Self, ObserverError> {
        let token = match config.token.clone() {
            Some(token) => token,
            None => actions::random_token().map_err(ObserverError::Token)?,
        };
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| ObserverError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ObserverError::Bind {
                addr: config.addr,
                source,
            })?;
        let prometheus = config.prometheus.clone();
        let (stopped, stop_seen) = watch::channel(false);
        let state = Arc::new(api::State::new(
            system.clone(),
            token.clone(),
            config.read_only,
            config.events_kept,
            prometheus,
            stop_seen,
        ));
        let runtime = system.runtime().clone();
        let sampler = runtime.spawn(sampler::run(state.clone(), system.supervision_events()));
        let server = runtime.spawn(api::serve(listener, state));
        tracing::info!(target: "airssys_rt::observer", %addr, read_only = config.read_only, "observer serving");
        Ok(Self {
            addr,
            token,
            read_only: config.read_only,
            tasks: vec![sampler.abort_handle(), server.abort_handle()],
            stopped,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The token actions need.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether actions are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Stops the server and its sampler (open pages lose their stream).
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.stopped.send_replace(true);
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop();
    }
}
