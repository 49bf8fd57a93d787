//! The observer's API, through a real HTTP client against a real server on
//! a loopback port: the tree matches `which_children`, a crash shows up in
//! the event stream, actions need the token (and change nothing without
//! it), read-only refuses them all, actors come in pages, `/metrics` serves
//! the `metrics` facade's output.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use airssys_rt::observer::{Observer, ObserverConfig};
use airssys_rt::prelude::*;
use airssys_rt::supervisor::SupervisionEvent;
use airssys_rt::util::ActorId;
use common::{Idle, within};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One Prometheus recorder for the whole test process (there can be only
/// one), handed to every observer.
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("the first recorder of this test process")
        })
        .clone()
}

fn config() -> ObserverConfig {
    ObserverConfig {
        prometheus: Some(prometheus()),
        ..ObserverConfig::default()
    }
}

/// A root `shop` with workers `a` and `b` and a nested supervisor `inner`
/// holding worker `c`.
async fn shop(system: &ActorSystem) -> SupervisorRef {
    let inner = SupervisorSpec::one_for_all()
        .name("inner")
        .child(ChildSpec::worker("c", || Idle));
    system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .name("shop")
                .intensity(5, std::time::Duration::from_secs(10))
                .child(ChildSpec::worker("a", || Idle))
                .child(ChildSpec::worker("b", || Idle))
                .child(ChildSpec::supervisor("inner", inner)),
        )
        .await
        .unwrap()
}

async fn get(observer: &Observer, path: &str) -> Value {
    let url = format!("{}{}", observer.url(), path.trim_start_matches('/'));
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn post(observer: &Observer, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}api/actions", observer.url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// The running instance of `child`.
async fn actor_of(supervisor: &SupervisorRef, child: &str) -> ActorId {
    let children = supervisor.which_children().await.unwrap();
    let info = children.iter().find(|c| c.id == child).unwrap();
    info.actor.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_matches_which_children() {
    let system = common::system();
    let shop = shop(&system).await;
    let observer = Observer::serve(&system, config()).await.unwrap();

    let tree = get(&observer, "/api/tree").await;
    let root = tree["roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|root| root["id"] == json!(shop.id().as_u64()))
        .expect("the root is listed");
    assert_eq!(root["name"], "shop");
    assert_eq!(root["strategy"], "one_for_one");
    assert_eq!(
        (root["max_restarts"].clone(), root["period_ms"].clone()),
        (json!(5), json!(10_000))
    );
    assert_eq!(root["status"], "running");
    assert_eq!(root["children"], 3);

    let listed = get(
        &observer,
        &format!("/api/supervisors/{}/children", shop.id().as_u64()),
    )
    .await;
    let rows = listed["children"].as_array().unwrap();
    let expected = shop.which_children().await.unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, child) in rows.iter().zip(&expected) {
        assert_eq!(row["child"], child.id.to_string());
        assert_eq!(row["actor"], json!(child.actor.map(ActorId::as_u64)));
        assert_eq!(row["status"], "running");
        assert_eq!(row["restarts"], 0);
    }
    let inner = &rows[2]["supervisor"];
    assert_eq!(
        (inner["name"].clone(), inner["strategy"].clone()),
        (json!("inner"), json!("one_for_all"))
    );
    let nested = get(
        &observer,
        &format!("/api/supervisors/{}/children", inner["id"]),
    )
    .await;
    assert_eq!(nested["children"][0]["child"], "c");

    // Unknown supervisors are a clear 404.
    let response = reqwest::get(format!(
        "{}api/supervisors/999999999/children",
        observer.url()
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_shows_up_in_the_event_stream() {
    let system = common::system();
    let shop = shop(&system).await;
    let observer = Observer::serve(&system, config()).await.unwrap();
    let mut stream = reqwest::get(format!("{}api/stream", observer.url()))
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let victim = actor_of(&shop, "a").await;
    system.kill_actor(victim);
    // Read the stream until the restart of `a` comes by.
    let mut seen = String::new();
    let restarted = within(async {
        loop {
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
            let found = seen.split("\n\n").find_map(|message| {
                let data = message.strip_prefix("event: supervision\ndata: ")?;
                let event: Value = serde_json::from_str(data).ok()?;
                (event["kind"] == "child_restarted" && event["child"] == "a").then_some(event)
            });
            if let Some(event) = found {
                return event;
            }
        }
    })
    .await;
    assert_eq!(restarted["supervisor"], json!(shop.id().as_u64()));
    assert_ne!(restarted["actor"], json!(victim.as_u64()));
    // And among the last events.
    let events = get(&observer, "/api/events?limit=10").await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "child_exited")
    );
}

/// Samples in the overview's history.
async fn samples(observer: &Observer) -> usize {
    let overview = get(observer, "/api/overview").await;
    overview["history"].as_array().unwrap().len()
}

/// With no page open, the observer schedules nothing: a minute passes (on
/// tokio's paused clock, which jumps to the next timer whenever the runtime
/// idles) without a sample, `/api/overview` samples on demand; a page's
/// stream starts the one-second samples and closing it stops them.
#[tokio::test(start_paused = true)]
async fn the_sampler_ticks_only_while_a_page_is_open() {
    let system = common::system();
    let observer = Observer::serve(&system, config()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(samples(&observer).await, 1, "one sample, on demand");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(samples(&observer).await, 2, "again only on demand");

    let mut stream = reqwest::get(format!("{}api/stream", observer.url()))
        .await
        .unwrap();
    let mut overviews = 0;
    let mut seen = String::new();
    while overviews < 5 {
        let chunk = stream
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        overviews = seen.matches("event: overview\n").count();
    }
    drop(stream);
    // The server finds the page gone at its next write; then the ticks stop.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after_page = samples(&observer).await;
    assert!(after_page >= 2 + 5, "the page's samples are in the history");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(samples(&observer).await, after_page + 1, "idle again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_needs_the_token_and_changes_nothing_without_it() {
    let system = common::system();
    let shop = shop(&system).await;
    let observer = Observer::serve(&system, config().token("s3cret"))
        .await
        .unwrap();
    assert_eq!(observer.token(), "s3cret");
    let before = actor_of(&shop, "b").await;
    let kill = json!({ "action": "kill", "actor": before.as_u64() });

    let (status, body) = post(&observer, None, kill.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (status, _) = post(&observer, Some("guess"), kill.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(actor_of(&shop, "b").await, before, "nothing changed");
    assert_eq!(system.actor(before).map(|a| a.id), Some(before));

    let mut events = system.supervision_events();
    let (status, body) = post(&observer, Some("s3cret"), kill).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    within(async {
        while let Some(event) = events.recv().await {
            if matches!(&event, SupervisionEvent::ChildRestarted { child, .. } if *child == "b") {
                return;
            }
        }
    })
    .await;
    assert_ne!(actor_of(&shop, "b").await, before, "a new instance");

    // A supervisor's child by name, as OTP's calls: terminate, restart (a
    // running child cannot be: 409), and a clear 404 for unknowns.
    let on_a =
        |action: &str| json!({ "action": action, "supervisor": shop.id().as_u64(), "child": "a" });
    let (status, _) = post(&observer, Some("s3cret"), on_a("terminate")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(&observer, Some("s3cret"), on_a("restart")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(&observer, Some("s3cret"), on_a("restart")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let unknown =
        json!({ "action": "terminate", "supervisor": shop.id().as_u64(), "child": "zzz" });
    let (status, body) = post(&observer, Some("s3cret"), unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_action() {
    let system = common::system();
    let shop = shop(&system).await;
    let observer = Observer::serve(&system, config().token("t").read_only())
        .await
        .unwrap();
    let before = actor_of(&shop, "a").await;
    let (status, body) = post(
        &observer,
        Some("t"),
        json!({ "action": "kill", "actor": before.as_u64() }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("read-only"));
    assert_eq!(actor_of(&shop, "a").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_come_in_pages_and_metrics_in_prometheus_text() {
    let system = common::system();
    let actors: Vec<_> = (0..250).map(|_| system.spawn(Idle).unwrap()).collect();
    for actor in &actors {
        actor.tell(1).await.unwrap();
    }
    let observer = Observer::serve(&system, config()).await.unwrap();
    let first = get(&observer, "/api/actors?offset=0&limit=100").await;
    assert_eq!(first["total"], 250);
    assert_eq!(first["actors"].as_array().unwrap().len(), 100);
    let row = &first["actors"][0];
    assert_eq!(row["message_type"], "u64");
    assert_eq!(row["mailbox_capacity"], Value::Null);
    let last = get(&observer, "/api/actors?offset=200&limit=100").await;
    assert_eq!(last["actors"].as_array().unwrap().len(), 50);

    let metrics = reqwest::get(format!("{}metrics", observer.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("airssys_rt_actors_spawned_total"),
        "{metrics}"
    );
    let page = reqwest::get(observer.url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html"), "the page is served");
}

/// How long the API takes with 100,000 live actors (a measurement, not a
/// check: `cargo test --release --features observer --test observer --
/// --ignored --nocapture`; the numbers are in the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it by hand in release mode"]
async fn measure_the_api_with_100_000_actors() {
    let system = common::system();
    let actors: Vec<_> = (0..100_000).map(|_| system.spawn(Idle).unwrap()).collect();
    let shop = shop(&system).await;
    let observer = Observer::serve(&system, config()).await.unwrap();
    let client = reqwest::Client::new();
    for path in [
        "api/overview".to_owned(),
        "api/tree".to_owned(),
        format!("api/supervisors/{}/children", shop.id().as_u64()),
        "api/actors?offset=0&limit=100".to_owned(),
        "api/actors?offset=99900&limit=100".to_owned(),
        "api/events?limit=50".to_owned(),
        "metrics".to_owned(),
    ] {
        let mut best = std::time::Duration::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            let body = client
                .get(format!("{}{path}", observer.url()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            best = best.min(start.elapsed());
            assert!(!body.is_empty());
        }
        println!("{path:<40} {best:?}");
    }
    drop(actors);
}
