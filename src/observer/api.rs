//! The observer's HTTP side: the routes, the JSON they answer with, and the
//! stream of changes. What the JSON looks like is listed in the module docs
//! of [`observer`](super).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State as Shared};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use futures::Stream;
use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, watch};

use super::actions;
use super::sampler::{self, Sampler};
use crate::supervisor::{
    ChildInfo, ChildKind, ChildStatus, RestartType, SupervisionEvent, SupervisionStrategy,
    SupervisorRef,
};
use crate::system::{ActorSummary, ActorSystem};
use crate::util::ActorId;

/// The page, embedded.
const PAGE: &str = include_str!("page.html");

/// Most rows one request returns.
const MAX_PAGE: usize = 1_000;

/// What the observer's tasks share.
pub(super) struct State {
    pub(super) system: ActorSystem,
    pub(super) token: String,
    pub(super) read_only: bool,
    pub(super) prometheus: Option<PrometheusHandle>,
    events_kept: usize,
    events: Mutex<Events>,
    /// Readings of the runtime's counters, one at a time.
    sampler: tokio::sync::Mutex<Sampler>,
    /// The latest overview and when it was sampled.
    overview: Mutex<Option<(Instant, Arc<Value>)>>,
    updates: broadcast::Sender<Update>,
    /// Pages holding the stream open; the sampler ticks only while some do.
    pages: AtomicUsize,
    /// Wakes the idle sampler when a page opens the stream.
    page_opened: Notify,
    /// Turns `true` when the observer stops: open streams end.
    pub(super) stopped: watch::Receiver<bool>,
}

#[derive(Default)]
struct Events {
    next_seq: u64,
    kept: VecDeque<Arc<Value>>,
}

/// A change sent to open pages.
#[derive(Clone)]
pub(super) enum Update {
    Overview(Arc<Value>),
    Event(Arc<Value>),
}

impl State {
    pub(super) fn new(
        system: ActorSystem,
        token: String,
        read_only: bool,
        events_kept: usize,
        prometheus: Option<PrometheusHandle>,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        Self {
            sampler: tokio::sync::Mutex::new(Sampler::new(&system)),
            system,
            token,
            read_only,
            prometheus,
            events_kept: events_kept.max(1),
            events: Mutex::default(),
            overview: Mutex::new(None),
            updates: broadcast::channel(256).0,
            pages: AtomicUsize::new(0),
            page_opened: Notify::new(),
            stopped,
        }
    }

    /// Sends `update` to open pages (none open: nothing happens).
    pub(super) fn publish(&self, update: Update) {
        let _ = self.updates.send(update);
    }

    /// Samples the runtime's counters now and keeps the overview.
    pub(super) async fn sample(&self) -> Arc<Value> {
        let mut sampler = self.sampler.lock().await;
        let overview = Arc::new(sampler.sample(self).await);
        *self.overview.lock() = Some((Instant::now(), overview.clone()));
        overview
    }

    /// The kept overview if it is younger than a sampling period, else a
    /// new one.
    async fn recent_overview(&self) -> Arc<Value> {
        let kept = self.overview.lock().clone();
        match kept {
            Some((at, overview)) if at.elapsed() < sampler::PERIOD => overview,
            _ => self.sample().await,
        }
    }

    /// Whether a page holds the stream open.
    pub(super) fn is_watched(&self) -> bool {
        self.pages.load(Ordering::Acquire) > 0
    }

    /// Waits for a page to open the stream (one opened since the last wait
    /// counts).
    pub(super) async fn page_opened(&self) {
        self.page_opened.notified().await;
    }

    /// Keeps `event` (numbered) among the last ones, and returns it as JSON.
    pub(super) fn record_event(&self, event: &SupervisionEvent) -> Value {
        let mut events = self.events.lock();
        events.next_seq += 1;
        let record = event_json(events.next_seq, &self.system, event);
        if events.kept.len() == self.events_kept {
            events.kept.pop_front();
        }
        events.kept.push_back(Arc::new(record.clone()));
        record
    }
}

/// Serves `state`'s routes on `listener` until aborted.
pub(super) async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    let routes = Router::new()
        .route("/", get(page))
        .route("/api/overview", get(overview))
        .route("/api/tree", get(tree))
        .route("/api/supervisors/{id}/children", get(children))
        .route("/api/actors", get(actors))
        .route("/api/events", get(events))
        .route("/api/stream", get(stream))
        .route("/api/actions", post(actions::act))
        .route("/metrics", get(metrics))
        .with_state(state);
    let service = routes.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        tracing::error!(target: "airssys_rt::observer", %error, "observer server stopped");
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn overview(Shared(state): Shared<Arc<State>>) -> Json<Value> {
    Json(state.recent_overview().await.as_ref().clone())
}

async fn tree(Shared(state): Shared<Arc<State>>) -> Json<Value> {
    let mut roots = Vec::new();
    for root in state.system.root_supervisors() {
        roots.push(supervisor_json(&state.system, &root).await);
    }
    Json(json!({ "roots": roots }))
}

/// Paging parameters.
#[derive(Debug, Deserialize)]
pub(super) struct Paging {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

impl Paging {
    fn limit(&self, default: usize) -> usize {
        self.limit.unwrap_or(default).min(MAX_PAGE)
    }
}

async fn children(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<u64>,
    Query(paging): Query<Paging>,
) -> Response {
    let Some(supervisor) = state.system.supervisor(ActorId::from_raw(id)) else {
        return not_found(format!("no live supervisor actor#{id}"));
    };
    let Ok(children) = supervisor.which_children().await else {
        return not_found(format!("supervisor actor#{id} has stopped"));
    };
    let total = children.len();
    let mut rows = Vec::new();
    for child in children
        .into_iter()
        .skip(paging.offset)
        .take(paging.limit(MAX_PAGE))
    {
        rows.push(child_json(&state.system, &supervisor, child).await);
    }
    Json(json!({ "supervisor": id, "total": total, "offset": paging.offset, "children": rows }))
        .into_response()
}

async fn actors(Shared(state): Shared<Arc<State>>, Query(paging): Query<Paging>) -> Json<Value> {
    let page = state.system.actors(paging.offset, paging.limit(100));
    let actors: Vec<Value> = page.actors.iter().map(actor_json).collect();
    Json(json!({ "total": page.total, "offset": paging.offset, "actors": actors }))
}

/// How many events to return.
#[derive(Debug, Deserialize)]
pub(super) struct Last {
    limit: Option<usize>,
}

async fn events(Shared(state): Shared<Arc<State>>, Query(last): Query<Last>) -> Json<Value> {
    let events = state.events.lock();
    let limit = last.limit.unwrap_or(50).min(events.kept.len());
    let recent: Vec<Value> = events
        .kept
        .iter()
        .skip(events.kept.len() - limit)
        .map(|event| event.as_ref().clone())
        .collect();
    Json(json!({ "events": recent }))
}

async fn stream(
    Shared(state): Shared<Arc<State>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = state.updates.subscribe();
    let first = state
        .overview
        .lock()
        .clone()
        .map(|(_, kept)| Update::Overview(kept));
    let stopped = state.stopped.clone();
    let page = Page::open(state);
    let events = futures::stream::unfold(
        (first, updates, stopped, page),
        |(mut first, mut updates, mut stopped, page)| async move {
            let update = match first.take() {
                Some(update) => update,
                None => loop {
                    tokio::select! {
                        received = updates.recv() => match received {
                            Ok(update) => break update,
                            // A slow page missed some: go on with the next.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                        _ = stopped.wait_for(|stopped| *stopped) => return None,
                    }
                },
            };
            let event = match &update {
                Update::Overview(value) => {
                    Event::default().event("overview").data(value.to_string())
                }
                Update::Event(value) => Event::default()
                    .event("supervision")
                    .data(value.to_string()),
            };
            Some((Ok(event), (None, updates, stopped, page)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A page holding the stream open, counted while it does.
struct Page(Arc<State>);

impl Page {
    /// Counts a page in and wakes the sampler (its first tick is at once).
    fn open(state: Arc<State>) -> Self {
        state.pages.fetch_add(1, Ordering::AcqRel);
        state.page_opened.notify_one();
        Self(state)
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.0.pages.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    let text = match &state.prometheus {
        Some(prometheus) => {
            prometheus.run_upkeep();
            prometheus.render()
        }
        None => super::exposition::render(&state.system),
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(super) fn not_found(error: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "ok": false, "error": error })),
    )
        .into_response()
}

/// A supervisor as the tree shows it.
async fn supervisor_json(system: &ActorSystem, supervisor: &SupervisorRef) -> Value {
    let id = supervisor.id().as_u64();
    if let Ok(info) = supervisor.describe().await {
        return json!({
            "id": id,
            "name": info.name,
            "strategy": strategy_name(info.strategy),
            "max_restarts": info.max_restarts,
            "period_ms": info.period.as_millis() as u64,
            "status": "running",
            "restarts": info.restarts,
            "children": info.children.specs,
        });
    }
    let failure = system
        .root_failures()
        .into_iter()
        .find(|failure| failure.supervisor == supervisor.id());
    json!({
        "id": id,
        "name": supervisor.name(),
        "strategy": null,
        "max_restarts": failure.as_ref().map(|f| f.restarts),
        "period_ms": failure.as_ref().map(|f| f.period.as_millis() as u64),
        "status": if failure.is_some() { "gave_up" } else { "stopped" },
        "restarts": null,
        "children": 0,
    })
}

async fn child_json(system: &ActorSystem, parent: &SupervisorRef, child: ChildInfo) -> Value {
    let nested = match (child.kind, child.actor) {
        (ChildKind::Supervisor, Some(_)) => match parent.child_supervisor(child.id.clone()).await {
            Ok(Some(nested)) => Some(Box::pin(supervisor_json(system, &nested)).await),
            _ => None,
        },
        _ => None,
    };
    json!({
        "child": child.id.to_string(),
        "actor": child.actor.map(ActorId::as_u64),
        "kind": match child.kind {
            ChildKind::Worker => "worker",
            ChildKind::Supervisor => "supervisor",
        },
        "restart": match child.restart {
            RestartType::Permanent => "permanent",
            RestartType::Transient => "transient",
            RestartType::Temporary => "temporary",
        },
        "status": match child.status {
            ChildStatus::Running => "running",
            ChildStatus::Restarting => "restarting",
            ChildStatus::Stopped => "stopped",
        },
        "restarts": child.restarts,
        "supervisor": nested,
    })
}

fn actor_json(actor: &ActorSummary) -> Value {
    json!({
        "id": actor.id.as_u64(),
        "name": actor.name,
        "message_type": actor.message_type,
        "state": format!("{:?}", actor.state).to_lowercase(),
        "mailbox_len": actor.mailbox_len,
        "mailbox_capacity": actor.mailbox.capacity,
        "backpressure": format!("{:?}", actor.mailbox.backpressure).to_lowercase(),
        "priority": actor.mailbox.kind == crate::mailbox::MailboxKind::Priority,
        "supervised": actor.supervised,
    })
}

fn event_json(seq: u64, system: &ActorSystem, event: &SupervisionEvent) -> Value {
    let (child, actor) = match event {
        SupervisionEvent::ChildStarted { child, actor, .. }
        | SupervisionEvent::ChildExited { child, actor, .. }
        | SupervisionEvent::ChildRestarted { child, actor, .. }
        | SupervisionEvent::ChildUnhealthy { child, actor, .. } => {
            (Some(child.to_string()), Some(actor.as_u64()))
        }
        SupervisionEvent::ChildStartFailed { child, .. } => (Some(child.to_string()), None),
        SupervisionEvent::SupervisorGaveUp { .. } => (None, None),
    };
    json!({
        "seq": seq,
        "at_ms": system.uptime().as_millis() as u64,
        "kind": event.kind(),
        "supervisor": event.supervisor().as_u64(),
        "child": child,
        "actor": actor,
        "text": event.to_string(),
    })
}

fn strategy_name(strategy: SupervisionStrategy) -> &'static str {
    match strategy {
        SupervisionStrategy::OneForOne => "one_for_one",
        SupervisionStrategy::OneForAll => "one_for_all",
        SupervisionStrategy::RestForOne => "rest_for_one",
    }
}
