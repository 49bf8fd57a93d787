//! Node liveness: each node publishes a heartbeat (its name and a random
//! incarnation, new at each start) every interval. A node not heard from
//! for the heartbeat window is gone; a node heard with a new incarnation
//! restarted (its actors are new). Either way its [`NodeMonitor`]s are told.
//! While this node is itself disconnected it judges nobody.

use std::collections::HashMap;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Subscriber;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::broker::{Inner, WireMessage, WireReply};
use super::link::LinkState;
use super::wire;
use crate::actor::ActorRef;
use crate::message::Message;

/// What this node knows of the others.
pub(crate) struct Liveness {
    window: Duration,
    nodes: Mutex<HashMap<String, Node>>,
}

struct Node {
    last_seen: Instant,
    /// 0 until heard from.
    incarnation: u64,
    state: watch::Sender<NodeState>,
}

/// A node's state as its monitors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeState {
    up: bool,
    /// How many times it went away or restarted.
    losses: u64,
}

impl Liveness {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            nodes: Mutex::default(),
        }
    }

    fn entry<'a>(nodes: &'a mut HashMap<String, Node>, node: &str) -> &'a mut Node {
        nodes.entry(node.to_owned()).or_insert_with(|| Node {
            last_seen: Instant::now(),
            incarnation: 0,
            state: watch::Sender::new(NodeState {
                up: true,
                losses: 0,
            }),
        })
    }

    /// `node`, in `incarnation`, was heard from.
    pub(crate) fn heard(&self, node: &str, incarnation: u64) {
        let mut nodes = self.nodes.lock();
        let known = Self::entry(&mut nodes, node);
        known.last_seen = Instant::now();
        let restarted = known.incarnation != 0 && known.incarnation != incarnation;
        known.incarnation = incarnation;
        known.state.send_if_modified(|state| {
            let lost = restarted && state.up;
            if lost {
                tracing::warn!(node = %node, "node restarted: its actors are new");
                state.losses += 1;
            }
            let back = !state.up;
            state.up = true;
            lost || back
        });
    }

    /// Marks the nodes silent for longer than the window as gone.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        for (node, known) in self.nodes.lock().iter() {
            if now.duration_since(known.last_seen) > self.window {
                known.state.send_if_modified(|state| {
                    if !state.up {
                        return false;
                    }
                    tracing::warn!(node = %node, window = ?self.window, "node missed its heartbeats: gone");
                    state.up = false;
                    state.losses += 1;
                    true
                });
            }
        }
    }

    /// Gives every node a fresh window (after this node was away itself).
    pub(crate) fn refresh(&self) {
        let now = Instant::now();
        for known in self.nodes.lock().values_mut() {
            known.last_seen = now;
        }
    }

    /// Nodes heard from within the window, sorted.
    pub(crate) fn live_nodes(&self) -> Vec<String> {
        let mut live: Vec<String> = self
            .nodes
            .lock()
            .iter()
            .filter(|(_, known)| known.state.borrow().up)
            .map(|(node, _)| node.clone())
            .collect();
        live.sort();
        live
    }

    /// A monitor of `node`. A node never heard from gets a window to show
    /// up before it counts as gone.
    pub(crate) fn monitor(&self, node: &str) -> NodeMonitor {
        let mut nodes = self.nodes.lock();
        let state = Self::entry(&mut nodes, node).state.subscribe();
        let losses = state.borrow().losses;
        NodeMonitor {
            node: node.to_owned(),
            state,
            losses,
        }
    }
}

/// Watches one node of the system; [`down`](NodeMonitor::down) resolves
/// when the node has missed its heartbeats for the configured window, or
/// came back as a new incarnation (it restarted, its actors are new).
#[derive(Debug, Clone)]
pub struct NodeMonitor {
    node: String,
    state: watch::Receiver<NodeState>,
    /// Losses already reported to this monitor.
    losses: u64,
}

/// A node that stopped answering its heartbeats, or restarted.
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
        self.state.borrow().up
    }

    /// Resolves at the node's next loss since this monitor last reported
    /// one (at once if one happened meanwhile, even if the node is back).
    pub async fn down(&mut self) -> NodeDown {
        let seen = self.losses;
        // The sender lives as long as the broker; a dropped broker hears
        // nothing more, so for this watcher the node is as good as gone.
        let losses = match self.state.wait_for(|state| state.losses > seen).await {
            Ok(state) => state.losses,
            Err(_) => seen + 1,
        };
        self.losses = losses;
        NodeDown {
            node: self.node.clone(),
        }
    }

    /// Tells `actor` `message` at the node's next loss: how a supervisor or
    /// any other actor learns of it without awaiting [`down`](Self::down).
    pub fn notify<T: Message>(mut self, actor: ActorRef<T>, message: T) {
        tokio::spawn(async move {
            let down = self.down().await;
            if actor.tell(message).await.is_err() {
                tracing::debug!(node = %down.node, "node down, but the actor to tell has stopped");
            }
        });
    }
}

/// Sends this node's heartbeat, sweeps the silent nodes and the expired
/// requests, every interval.
pub(super) async fn heartbeat_loop<M: WireMessage, R: WireReply>(inner: Weak<Inner<M, R>>) {
    let Some(interval) = inner.upgrade().map(|inner| inner.config.heartbeat_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { break };
        let up = inner.link.state() == LinkState::Up;
        if up {
            let subject = inner.subjects.heartbeat(&inner.config.node);
            let beat = wire::heartbeat(&inner.config.node, inner.incarnation);
            if let Err(e) = inner.client.publish(subject, beat.into()).await {
                tracing::debug!(error = %e, "heartbeat not sent");
            }
            if !was_up {
                // Deaf while away: nobody is judged on that silence.
                inner.liveness.refresh();
                // Perhaps another server, with other limits.
                let max = inner.client.server_info().max_payload;
                inner.max_payload.store(max, Ordering::Relaxed);
            }
            inner.liveness.sweep();
        }
        was_up = up;
        inner.expire_remote();
    }
}

/// Records the other nodes' heartbeats.
pub(super) async fn hear_loop<M: WireMessage, R: WireReply>(
    inner: Weak<Inner<M, R>>,
    mut heartbeats: Subscriber,
) {
    while let Some(beat) = heartbeats.next().await {
        let Some(inner) = inner.upgrade() else { break };
        match wire::read_heartbeat(&beat.payload) {
            Ok((node, incarnation)) => inner.liveness.heard(&node, incarnation),
            Err(e) => tracing::debug!(error = %e, "not a heartbeat"),
        }
    }
}
