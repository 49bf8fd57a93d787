//! Starts a real `nats-server` on a free loopback port, for the NATS tests
//! and the cluster example (each includes this file with `#[path]`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to say it is ready.
const STARTUP: Duration = Duration::from_secs(20);

/// A running `nats-server`, killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

/// A fresh directory under the system's temporary directory.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "airssys-nats-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

impl NatsServer {
    /// A plain server.
    pub fn start() -> Self {
        Self::with(Vec::new(), None)
    }

    /// A server with JetStream, storing under its own directory (kept
    /// across restarts).
    pub fn with_jetstream() -> Self {
        Self::with(vec!["-js".into()], None)
    }

    /// A server reading `config` (NATS configuration text) as well.
    pub fn with_config(config: &str) -> Self {
        Self::with(Vec::new(), Some(config))
    }

    fn with(mut args: Vec<String>, config: Option<&str>) -> Self {
        let dir = scratch_dir();
        if let Some(config) = config {
            let path = dir.join("nats.conf");
            std::fs::write(&path, config).expect("config written");
            args.extend(["-c".into(), path.display().to_string()]);
        }
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            args,
        };
        server.launch();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process and waits until it says it is ready.
    fn launch(&mut self) {
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-sd", &self.dir.display().to_string()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server runs (install it: apt-get install nats-server)");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready, is_ready) = mpsc::channel();
        // Reads the log until the server is ready, then keeps draining it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready.send(());
                }
            }
        });
        is_ready
            .recv_timeout(STARTUP)
            .expect("nats-server says it is ready");
        self.child = Some(child);
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
