//! The observer's page in a real browser: headless Chromium driven over
//! WebDriver (`chromedriver`, started here on a free loopback port). Every
//! wait is a WebDriver wait on a DOM condition (a CSS selector that holds
//! once the page shows the expected state), never a sleep.
//!
//! Needs Debian's `chromium` and `chromium-driver` packages
//! (`apt-get install -y chromium chromium-driver`; `.ci/run` installs them).
//! `CHROMIUM` and `CHROMEDRIVER` override the binaries' paths.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use airssys_rt::observer::{Observer, ObserverConfig};
use airssys_rt::prelude::*;
use common::Idle;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one DOM condition may take to hold.
const WAIT: Duration = Duration::from_secs(10);

fn binary(var: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()));
    assert!(
        path.exists(),
        "the observer's browser tests need headless Chromium and its WebDriver: {} is missing. \
         Install them with `apt-get install -y chromium chromium-driver` (Debian), or point \
         {var} at the binary.",
        path.display()
    );
    path
}

/// A `chromedriver` child process on a free loopback port, shut down (with
/// the browsers it started, even when a test failed before closing its
/// session) and killed on drop.
struct Chromedriver {
    process: Child,
    port: u16,
    url: String,
}

impl Chromedriver {
    async fn start() -> Self {
        let driver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", driver.display()));
        let this = Self {
            process,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Ready once it accepts connections.
        let began = Instant::now();
        while tokio::net::TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .is_err()
        {
            assert!(
                began.elapsed() < WAIT,
                "chromedriver did not listen on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        this
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1600,1000",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session with headless Chromium")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // `GET /shutdown` quits the sessions' browsers, then chromedriver.
        if let Ok(mut stream) = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Waits until an element matches `css` (the page reached that state).
async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("the page never showed `{css}`: {e}"))
}

/// Runs `script` with the element matching `css` as `e` (one step in the
/// page: no stale references while the page refreshes what it shows).
async fn read(browser: &Client, css: &str, script: &str) -> Value {
    let value = browser
        .execute(
            &format!("const e = document.querySelector(arguments[0]); return e === null ? null : {script};"),
            vec![json!(css)],
        )
        .await
        .unwrap();
    assert!(!value.is_null(), "no `{css}` on the page");
    value
}

async fn text(browser: &Client, css: &str) -> String {
    read(browser, css, "e.textContent")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn attr(browser: &Client, css: &str, name: &str) -> String {
    match read(browser, css, &format!("e.getAttribute({name:?}) ?? false")).await {
        Value::String(value) => value,
        _ => panic!("`{css}` has no {name}"),
    }
}

async fn count(browser: &Client, css: &str) -> usize {
    let n = browser
        .execute(
            "return document.querySelectorAll(arguments[0]).length",
            vec![json!(css)],
        )
        .await
        .unwrap();
    n.as_u64().unwrap() as usize
}

async fn click(browser: &Client, css: &str) {
    wait_for(browser, css).await.click().await.unwrap();
}

/// Load the page, expand the tree, find a child, press its kill button
/// (first without the token: refused, shown, nothing changes; then with it)
/// and see the page show the restart and the new instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_child_from_the_page_shows_its_restart() {
    let driver = Chromedriver::start().await;
    let system = ActorSystem::new(SystemConfig::named("browser")).unwrap();
    let app = system
        .start_supervisor(
            SupervisorSpec::one_for_one()
                .name("app")
                .intensity(5, Duration::from_secs(10))
                .child(ChildSpec::worker("cache", || Idle))
                .child(ChildSpec::worker("sessions", || Idle))
                .child(ChildSpec::supervisor(
                    "inner",
                    SupervisorSpec::one_for_all()
                        .name("inner")
                        .child(ChildSpec::worker("leaf", || Idle)),
                )),
        )
        .await
        .unwrap();
    let observer = Observer::serve(&system, ObserverConfig::default())
        .await
        .unwrap();
    let browser = driver.browser().await;
    browser.goto(&observer.url()).await.unwrap();

    // The tree: the root supervisor, its strategy, and (expanded) its children.
    let root = format!("#tree [data-supervisor=\"{}\"]", app.id().as_u64());
    wait_for(&browser, &root).await;
    assert!(
        text(&browser, &format!("{root} .strategy"))
            .await
            .contains("one_for_one")
    );
    assert!(
        text(&browser, &format!("{root} .intensity"))
            .await
            .contains("5 in 10s")
    );
    click(&browser, &format!("{root} > .sup-head .toggle")).await;
    let row = format!("{root} [data-child=\"cache\"]");
    wait_for(&browser, &format!("{row}[data-actor]")).await;
    let before = attr(&browser, &row, "data-actor").await;
    let running = app.which_children().await.unwrap();
    let cache = running.iter().find(|c| c.id == "cache").unwrap();
    assert_eq!(before, cache.actor.unwrap().as_u64().to_string());
    assert_eq!(text(&browser, &format!("{row} .restarts")).await, "0");
    assert_eq!(text(&browser, &format!("{row} .status")).await, "running");
    // The nested supervisor expands with the same endpoint.
    let inner = format!("{root} [data-child=\"inner\"] > [data-supervisor]");
    click(&browser, &format!("{inner} > .sup-head .toggle")).await;
    wait_for(
        &browser,
        &format!("{inner} [data-child=\"leaf\"][data-actor]"),
    )
    .await;

    // Without the token: refused, the server's reason shown, nothing changed.
    click(&browser, &format!("{row} button.kill")).await;
    wait_for(&browser, "#notice.error").await;
    let refused = text(&browser, "#notice").await;
    assert!(refused.contains("refused (401)"), "{refused}");
    assert_eq!(attr(&browser, &row, "data-actor").await, before);
    assert_eq!(app.which_children().await.unwrap()[0].restarts, 0);

    // With the token: killed, restarted, and the page shows the new instance.
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(observer.token())
        .await
        .unwrap();
    click(&browser, &format!("{row} button.kill")).await;
    wait_for(
        &browser,
        &format!(
            "{row}[data-restarts=\"1\"][data-status=\"running\"]:not([data-actor=\"{before}\"])"
        ),
    )
    .await;
    assert_eq!(text(&browser, &format!("{row} .restarts")).await, "1");
    let after = attr(&browser, &row, "data-actor").await;
    let now = app.which_children().await.unwrap();
    let cache = now.iter().find(|c| c.id == "cache").unwrap();
    assert_eq!(after, cache.actor.unwrap().as_u64().to_string());
    assert_ne!(after, before);
    // The supervision events list shows the exit and the restart.
    wait_for(&browser, "#events li[data-kind=\"child_restarted\"]").await;
    wait_for(&browser, "#events li[data-kind=\"child_exited\"]").await;
    wait_for(&browser, "#notice.ok").await;

    // A read-only observer of the same system: the page hides every action.
    let read_only = Observer::serve(&system, ObserverConfig::default().read_only())
        .await
        .unwrap();
    browser.goto(&read_only.url()).await.unwrap();
    wait_for(&browser, "body.read-only").await;
    click(&browser, &format!("{root} > .sup-head .toggle")).await;
    let kill = wait_for(&browser, &format!("{row}[data-actor] button.kill")).await;
    assert!(!kill.is_displayed().await.unwrap());
    assert!(
        !browser
            .find(Locator::Css("#token"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    browser.close().await.unwrap();
    system.shutdown(Duration::from_secs(5)).await;
}

/// 10,000 actors: the page renders, the actors view shows the total and its
/// first page only, paging and jumping respond, and expanding a supervisor
/// of 10,000 children shows them a chunk at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_actors_stay_usable() {
    const N: usize = 10_000;
    let driver = Chromedriver::start().await;
    let system = ActorSystem::new(SystemConfig::named("big")).unwrap();
    let mut big = SupervisorSpec::one_for_one().name("big");
    for i in 0..N {
        big = big.child(ChildSpec::worker(format!("w{i}"), || Idle));
    }
    let big = system.start_supervisor(big).await.unwrap();
    let observer = Observer::serve(&system, ObserverConfig::default())
        .await
        .unwrap();
    let browser = driver.browser().await;
    browser.goto(&observer.url()).await.unwrap();

    // The total, and the first page of 100 rows.
    let total = system.actor_count();
    assert!(total > N);
    wait_for(&browser, &format!("#actors-total[data-total=\"{total}\"]")).await;
    wait_for(&browser, "#actors-body[data-offset=\"0\"]").await;
    assert_eq!(count(&browser, "#actors [data-actor-row]").await, 100);
    let first = attr(&browser, "#actors [data-actor-row]", "data-actor-row").await;

    // The next page.
    click(&browser, "#actors-next").await;
    wait_for(&browser, "#actors-body[data-offset=\"100\"]").await;
    assert_eq!(count(&browser, "#actors [data-actor-row]").await, 100);
    assert_ne!(
        attr(&browser, "#actors [data-actor-row]", "data-actor-row").await,
        first
    );
    // A jump to the last page.
    browser
        .find(Locator::Css("#actors-goto"))
        .await
        .unwrap()
        .send_keys(&format!("{total}\u{E007}"))
        .await
        .unwrap();
    let last_page = (total - 1) / 100 * 100;
    wait_for(
        &browser,
        &format!("#actors-body[data-offset=\"{last_page}\"]"),
    )
    .await;
    assert_eq!(
        count(&browser, "#actors [data-actor-row]").await,
        total - last_page
    );
    assert!(
        text(&browser, "#actors-range")
            .await
            .ends_with(&format!("of {}", fmt(total)))
    );

    // The supervisor of 10,000: expanded, its first 200 children; then 200 more.
    let root = format!("#tree [data-supervisor=\"{}\"]", big.id().as_u64());
    assert!(
        text(&browser, &format!("{root} .sup-children"))
            .await
            .contains("10000")
    );
    click(&browser, &format!("{root} > .sup-head .toggle")).await;
    wait_for(
        &browser,
        &format!("{root} [data-child=\"w199\"][data-actor]"),
    )
    .await;
    assert_eq!(count(&browser, &format!("{root} [data-child]")).await, 200);
    assert!(
        text(&browser, &format!("{root} .more"))
            .await
            .contains("9800 not shown")
    );
    click(&browser, &format!("{root} .more")).await;
    wait_for(
        &browser,
        &format!("{root} [data-child=\"w399\"][data-actor]"),
    )
    .await;
    assert_eq!(count(&browser, &format!("{root} [data-child]")).await, 400);
    // Collapsing responds too.
    click(&browser, &format!("{root} > .sup-head .toggle")).await;
    wait_for(&browser, &format!("{root}:not(.open)")).await;

    // The page asked only for what it showed.
    let asked = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let asked: Vec<String> = serde_json::from_value(asked).unwrap();
    for url in &asked {
        if url.contains("/api/actors") {
            assert!(url.contains("limit=100"), "{url}");
        }
        if url.contains("/children") {
            assert!(
                url.contains("limit=200") || url.contains("limit=400"),
                "{url}"
            );
        }
    }
    assert!(asked.iter().any(|url| url.contains("/children")));

    browser.close().await.unwrap();
    system.shutdown(Duration::from_secs(10)).await;
}

/// `n` as the page prints it (en-US grouping).
fn fmt(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The example's system (`examples/observer.rs`), for the screenshot.
#[path = "../examples/observer.rs"]
#[allow(dead_code)]
mod example;

/// Not a check: takes the README's screenshot of the example's system after
/// it has run long enough to fill the chart, and writes it to
/// `OBSERVER_SCREENSHOT` (default `docs/observer.png`).
///
/// `OBSERVER_SCREENSHOT=docs/observer.png cargo test --release --features observer --test observer_browser -- --ignored screenshot`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/observer.png; run by hand"]
async fn screenshot() {
    let path = std::env::var("OBSERVER_SCREENSHOT").unwrap_or_else(|_| "docs/observer.png".into());
    let warm_up = std::env::var("OBSERVER_SCREENSHOT_AFTER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    // The example's synthetic crashes are expected; anything else is shown.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("synthetic crash") {
            report(info);
        }
    }));
    let driver = Chromedriver::start().await;
    let system = ActorSystem::new(SystemConfig::named("observer-demo")).unwrap();
    example::start(&system).await.unwrap();
    let observer = Observer::serve(&system, ObserverConfig::default())
        .await
        .unwrap();
    // A screenshot helper, not an assertion: let the chart fill up.
    tokio::time::sleep(Duration::from_secs(warm_up)).await;
    let browser = driver.browser().await;
    browser.set_window_size(1600, 1250).await.unwrap();
    browser
        .goto(&format!("{}#expand=all", observer.url()))
        .await
        .unwrap();
    // `expand=all` opens the nested supervisors too.
    wait_for(&browser, "[data-child=\"index\"]").await;
    wait_for(&browser, "#chart polyline").await;
    wait_for(&browser, "#events li").await;
    let png = browser.screenshot().await.unwrap();
    std::fs::write(&path, png).unwrap();
    println!("wrote {path}");
    browser.close().await.unwrap();
}
