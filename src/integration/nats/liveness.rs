//! Node liveness: each node publishes a heartbeat every interval; a node
//! not heard from for the heartbeat window is gone, and its
//! [`NodeMonitor`]s are told.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::actor::ActorRef;
use crate::message::Message;

/// What this node knows of the others.
pub(crate) struct Liveness {
    window: Duration,
    nodes: Mutex<HashMap<String, Node>>,
}

struct Node {
    last_seen: Instant,
    up: watch::Sender<bool>,
}

impl Liveness {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            nodes: Mutex::default(),
        }
    }

    /// `node` was heard from.
    pub(crate) fn heard(&self, node: &str) {
        let now = Instant::now();
        let mut nodes = self.nodes.lock();
        match nodes.get_mut(node) {
            Some(known) => {
                known.last_seen = now;
                known.up.send_if_modified(|up| !std::mem::replace(up, true));
            }
            None => {
                nodes.insert(
                    node.to_owned(),
                    Node {
                        last_seen: now,
                        up: watch::Sender::new(true),
                    },
                );
            }
        }
    }

    /// Marks the nodes silent for longer than the window as gone.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        for (node, known) in self.nodes.lock().iter() {
            if now.duration_since(known.last_seen) > self.window
                && known.up.send_if_modified(|up| std::mem::replace(up, false))
            {
                tracing::warn!(node = %node, window = ?self.window, "node missed its heartbeats: gone");
            }
        }
    }

    /// Nodes heard from within the window.
    pub(crate) fn live_nodes(&self) -> Vec<String> {
        let mut live: Vec<String> = self
            .nodes
            .lock()
            .iter()
            .filter(|(_, known)| *known.up.borrow())
            .map(|(node, _)| node.clone())
            .collect();
        live.sort();
        live
    }

    /// A monitor of `node`. A node never heard from gets a window to show
    /// up before it counts as gone.
    pub(crate) fn monitor(&self, node: &str) -> NodeMonitor {
        let mut nodes = self.nodes.lock();
        let known = nodes.entry(node.to_owned()).or_insert_with(|| Node {
            last_seen: Instant::now(),
            up: watch::Sender::new(true),
        });
        NodeMonitor {
            node: node.to_owned(),
            up: known.up.subscribe(),
        }
    }
}

/// Watches one node of the system; [`down`](NodeMonitor::down) resolves
/// when the node has missed its heartbeats for the configured window.
#[derive(Debug, Clone)]
pub struct NodeMonitor {
    node: String,
    up: watch::Receiver<bool>,
}

/// A node that stopped answering its heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDown {
    /// The node's name.
    pub node: String,
}

impl NodeMonitor {
    /// The node watched.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the node is live now.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Tells `actor` `message` once the node is gone: how a supervisor or
    /// any other actor learns of it without awaiting [`down`](Self::down).
    pub fn notify<T: Message>(mut self, actor: ActorRef<T>, message: T) {
        tokio::spawn(async move {
            let down = self.down().await;
            if actor.tell(message).await.is_err() {
                tracing::debug!(node = %down.node, "node down, but the actor to tell has stopped");
            }
        });
    }

    /// Resolves once the node is gone (at once if it is gone already).
    pub async fn down(&mut self) -> NodeDown {
        // The sender lives as long as the broker; if the broker is dropped
        // the node is as good as gone for this watcher.
        let _ = self.up.wait_for(|up| !*up).await;
        NodeDown {
            node: self.node.clone(),
        }
    }
}
