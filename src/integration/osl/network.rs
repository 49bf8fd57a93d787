//! [`NetworkActor`]: TCP connections and listeners as messages, checked,
//! limited and logged. Each connection is its own actor
//! ([`ConnectionRequest`]); a listener hands every accepted connection to a
//! recipient actor as [`Accepted`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::activity::escape_text;
use super::{ConnectionSlot, Operation, Osl, OslError, SecurityContext};
use crate::actor::{Actor, ActorContext, ActorRef, ReplyTo};
use crate::message::Message;
use crate::system::{ActorSystem, AskError};

/// How bytes on a connection are cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No framing: `Receive` returns whatever arrived (up to 64 KiB).
    Raw,
    /// Each message is a 4-byte big-endian length, then that many bytes (at
    /// most the policy's `max_output_bytes`).
    LengthDelimited,
}

/// What a [`NetworkActor`] can be asked to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkRequest {
    /// Opens a TCP connection to `host:port` (a name or an address; the
    /// policy is checked for the name and for the address it resolves to).
    Connect {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
        /// How messages are cut.
        framing: Framing,
        /// The connection.
        reply: ReplyTo<Result<Connection, OslError>>,
    },
    /// Listens on `address` (port 0: one the OS picks, checked once bound)
    /// and sends each accepted connection to `on_accept`.
    Listen {
        /// Where to listen.
        address: SocketAddr,
        /// How messages are cut on accepted connections.
        framing: Framing,
        /// Who gets the connections.
        on_accept: ActorRef<Accepted>,
        /// The address actually bound.
        reply: ReplyTo<Result<SocketAddr, OslError>>,
    },
}

impl Message for NetworkRequest {
    const MESSAGE_TYPE: &'static str = "airssys.osl.network";
}

/// A connection accepted by a listener.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The connection.
    pub connection: Connection,
}

impl Message for Accepted {
    const MESSAGE_TYPE: &'static str = "airssys.osl.accepted";
}

/// What a connection actor can be asked to do. One request is served at a
/// time: a `Receive` waits for data before the next request is taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionRequest {
    /// Sends one message (framed by the connection's [`Framing`]).
    Send {
        /// The bytes (never logged).
        data: Vec<u8>,
        /// Done.
        reply: ReplyTo<Result<(), OslError>>,
    },
    /// Receives the next message.
    Receive {
        /// The bytes.
        reply: ReplyTo<Result<Vec<u8>, OslError>>,
    },
}

impl Message for ConnectionRequest {
    const MESSAGE_TYPE: &'static str = "airssys.osl.connection";
}

/// A handle to a connection actor, with its addresses.
#[derive(Debug, Clone)]
pub struct Connection {
    actor: ActorRef<ConnectionRequest>,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Connection {
    /// The connection actor.
    pub fn actor(&self) -> &ActorRef<ConnectionRequest> {
        &self.actor
    }

    /// The remote address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Sends one message, waiting at most `timeout`.
    pub async fn send(&self, data: Vec<u8>, timeout: Duration) -> Result<(), ConnectionError> {
        Ok(self
            .actor
            .ask(|reply| ConnectionRequest::Send { data, reply }, timeout)
            .await??)
    }

    /// Receives the next message, waiting at most `timeout`.
    pub async fn receive(&self, timeout: Duration) -> Result<Vec<u8>, ConnectionError> {
        Ok(self
            .actor
            .ask(|reply| ConnectionRequest::Receive { reply }, timeout)
            .await??)
    }

    /// Closes the connection (its actor stops) at once: a `Send` or
    /// `Receive` in progress is cut short and gets no reply. (A stop request
    /// would wait behind a `Receive` until data came.)
    pub fn close(&self) {
        self.actor.kill();
    }
}

/// Why [`Connection::send`] or [`Connection::receive`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The connection actor did not answer (stopped, or too slow).
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The operation was refused or failed.
    #[error(transparent)]
    Osl(#[from] OslError),
}

/// Opens connections and listeners as one [`SecurityContext`]. Make it with
/// [`Osl::network_actor`]. Its connections and listeners close when it stops
/// (or is killed).
pub struct NetworkActor {
    osl: Osl,
    context: SecurityContext,
    listeners: JoinSet<()>,
    /// The connections opened and accepted here, closed with it.
    connections: Connections,
}

/// Connection actors to close together.
type Connections = Arc<Mutex<Vec<ActorRef<ConnectionRequest>>>>;

/// Adds `connection` to `connections` (forgetting those already closed).
fn track(connections: &Connections, connection: &ActorRef<ConnectionRequest>) {
    let mut connections = connections.lock();
    connections.retain(ActorRef::is_alive);
    connections.push(connection.clone());
}

impl fmt::Debug for NetworkActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkActor")
            .field("context", &self.context)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl NetworkActor {
    pub(crate) fn new(osl: Osl, context: SecurityContext) -> Self {
        Self {
            osl,
            context,
            listeners: JoinSet::new(),
            connections: Arc::default(),
        }
    }

    /// Closes every connection at once, like [`Connection::close`].
    fn close_connections(&self) {
        for connection in self.connections.lock().drain(..) {
            connection.kill();
        }
    }

    async fn connect(
        &self,
        ctx: &mut ActorContext<NetworkRequest>,
        host: String,
        port: u16,
        framing: Framing,
    ) -> Result<Connection, OslError> {
        let audit = self.osl.audit(
            &self.context,
            Operation::Connect,
            format!("{}:{port}", escape_text(&host)),
        );
        let result = async {
            audit.connect_before_lookup(&host, port)?;
            let mut addresses = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| audit.io(&e))?;
            let address = addresses.next().ok_or_else(|| {
                audit.io(&std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the host resolved to no address",
                ))
            })?;
            audit.connect(&host, address.ip(), port)?;
            let slot = audit.connection_slot()?;
            let stream = TcpStream::connect(address)
                .await
                .map_err(|e| audit.io(&e))?;
            let actor = ConnectionActor::new(&self.osl, &self.context, stream, framing, slot)
                .map_err(|e| audit.io(&e))?;
            let (peer, local) = (actor.peer, actor.local);
            let actor_ref = ctx
                .spawn_child()
                .spawn(actor)
                .map_err(|e| audit.io(&std::io::Error::other(e.to_string())))?;
            track(&self.connections, &actor_ref);
            Ok(Connection {
                actor: actor_ref,
                peer,
                local,
            })
        }
        .await;
        audit.finish(result)
    }

    async fn listen(
        &mut self,
        system: &ActorSystem,
        address: SocketAddr,
        framing: Framing,
        on_accept: ActorRef<Accepted>,
    ) -> Result<SocketAddr, OslError> {
        let audit = self.osl.audit(&self.context, Operation::Listen, address);
        let result = async {
            if address.port() != 0 {
                audit.listen(address.port())?;
            }
            let listener = TcpListener::bind(address).await.map_err(|e| audit.io(&e))?;
            let bound = listener.local_addr().map_err(|e| audit.io(&e))?;
            // An OS-picked port is checked once known.
            audit.listen(bound.port())?;
            Ok((listener, bound))
        }
        .await;
        let (listener, bound) = audit.finish(result)?;
        let accept = AcceptLoop {
            osl: self.osl.clone(),
            context: self.context.clone(),
            system: system.clone(),
            framing,
            on_accept,
            connections: self.connections.clone(),
        };
        self.listeners.spawn(accept.run(listener, bound));
        Ok(bound)
    }
}

impl Actor for NetworkActor {
    type Message = NetworkRequest;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        request: NetworkRequest,
        ctx: &mut ActorContext<NetworkRequest>,
    ) -> Result<(), Self::Error> {
        match request {
            NetworkRequest::Connect {
                host,
                port,
                framing,
                reply,
            } => drop(reply.reply(self.connect(ctx, host, port, framing).await)),
            NetworkRequest::Listen {
                address,
                framing,
                on_accept,
                reply,
            } => {
                let system = ctx.system().clone();
                drop(reply.reply(self.listen(&system, address, framing, on_accept).await));
            }
        }
        Ok(())
    }

    /// Stops accepting, and closes the connections opened and accepted so
    /// far.
    async fn post_stop(&mut self, _: &ActorContext<NetworkRequest>) -> Result<(), Self::Error> {
        self.listeners.shutdown().await;
        self.close_connections();
        Ok(())
    }
}

impl Drop for NetworkActor {
    /// Killed (no `post_stop`): its listeners are aborted with the `JoinSet`;
    /// its connections are closed here.
    fn drop(&mut self) {
        self.close_connections();
    }
}

/// Accepts connections on one listener until its actor stops.
struct AcceptLoop {
    osl: Osl,
    context: SecurityContext,
    system: ActorSystem,
    framing: Framing,
    on_accept: ActorRef<Accepted>,
    connections: Connections,
}

impl AcceptLoop {
    async fn run(self, listener: TcpListener, bound: SocketAddr) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    let audit = self.osl.audit(&self.context, Operation::Accept, bound);
                    let failed = audit.io(&error);
                    let _ = audit.finish::<()>(Err(failed));
                    // Out of descriptors, typically: give connections time
                    // to close instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let audit = self.osl.audit(
                &self.context,
                Operation::Accept,
                format!("{peer} on {bound}"),
            );
            let accepted = audit.connection_slot().and_then(|slot| {
                ConnectionActor::new(&self.osl, &self.context, stream, self.framing, slot)
                    .map_err(|e| audit.io(&e))
            });
            let Ok(actor) = audit.finish(accepted) else {
                // Refused (limit) or failed: the peer's socket is closed;
                // keep listening.
                continue;
            };
            let (peer, local) = (actor.peer, actor.local);
            let Ok(actor_ref) = self.system.spawn(actor) else {
                return; // the system is shutting down
            };
            track(&self.connections, &actor_ref);
            let connection = Connection {
                actor: actor_ref,
                peer,
                local,
            };
            if self.on_accept.tell(Accepted { connection }).await.is_err() {
                return; // nobody takes connections any more
            }
        }
    }
}

/// One TCP connection, owned by its actor.
struct ConnectionActor {
    osl: Osl,
    context: SecurityContext,
    stream: TcpStream,
    framing: Framing,
    peer: SocketAddr,
    local: SocketAddr,
    _slot: ConnectionSlot,
}

impl ConnectionActor {
    fn new(
        osl: &Osl,
        context: &SecurityContext,
        stream: TcpStream,
        framing: Framing,
        slot: ConnectionSlot,
    ) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        Ok(Self {
            osl: osl.clone(),
            context: context.clone(),
            peer: stream.peer_addr()?,
            local: stream.local_addr()?,
            stream,
            framing,
            _slot: slot,
        })
    }

    async fn send(&mut self, data: Vec<u8>) -> Result<(), OslError> {
        let audit = self.osl.audit(&self.context, Operation::Send, self.peer);
        let result = async {
            if self.framing == Framing::LengthDelimited {
                let limit = audit.limits().max_output_bytes;
                let len = u32::try_from(data.len())
                    .ok()
                    .filter(|&len| len as usize <= limit)
                    .ok_or_else(|| {
                        audit.denied(super::DenyRule::Limit {
                            name: "max_output_bytes",
                            value: limit as u64,
                        })
                    })?;
                self.stream
                    .write_all(&len.to_be_bytes())
                    .await
                    .map_err(|e| audit.io(&e))?;
            }
            self.stream.write_all(&data).await.map_err(|e| audit.io(&e))
        }
        .await;
        audit.finish(result)
    }

    async fn receive(&mut self) -> Result<Vec<u8>, OslError> {
        let audit = self.osl.audit(&self.context, Operation::Receive, self.peer);
        let closed = || OslError::ConnectionClosed {
            peer: self.peer.to_string(),
        };
        let result = async {
            match self.framing {
                Framing::Raw => {
                    let mut chunk = vec![0; 64 * 1024];
                    let read = self
                        .stream
                        .read(&mut chunk)
                        .await
                        .map_err(|e| audit.io(&e))?;
                    if read == 0 {
                        return Err(closed());
                    }
                    chunk.truncate(read);
                    Ok(chunk)
                }
                Framing::LengthDelimited => {
                    let mut len = [0u8; 4];
                    if let Err(e) = self.stream.read_exact(&mut len).await {
                        return Err(match e.kind() {
                            std::io::ErrorKind::UnexpectedEof => closed(),
                            _ => audit.io(&e),
                        });
                    }
                    let len = u32::from_be_bytes(len) as usize;
                    let limit = audit.limits().max_output_bytes;
                    if len > limit {
                        return Err(audit.denied(super::DenyRule::Limit {
                            name: "max_output_bytes",
                            value: limit as u64,
                        }));
                    }
                    let mut frame = vec![0; len];
                    self.stream
                        .read_exact(&mut frame)
                        .await
                        .map_err(|e| match e.kind() {
                            std::io::ErrorKind::UnexpectedEof => closed(),
                            _ => audit.io(&e),
                        })?;
                    Ok(frame)
                }
            }
        }
        .await;
        audit.finish(result)
    }
}

impl Actor for ConnectionActor {
    type Message = ConnectionRequest;
    type Error = std::convert::Infallible;

    async fn handle_message(
        &mut self,
        request: ConnectionRequest,
        _: &mut ActorContext<ConnectionRequest>,
    ) -> Result<(), Self::Error> {
        match request {
            ConnectionRequest::Send { data, reply } => drop(reply.reply(self.send(data).await)),
            ConnectionRequest::Receive { reply } => drop(reply.reply(self.receive().await)),
        }
        Ok(())
    }
}
