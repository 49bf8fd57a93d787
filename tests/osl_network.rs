//! The OS layer's `NetworkActor` over real loopback sockets: an echo server
//! and client built from its actors, both framings, denials (port, host,
//! listen port, OS-picked port) with their activity records, the
//! `max_connections` limit on both sides, and accepted connections closing
//! with their listener's actor.
#![cfg(all(feature = "osl", target_os = "linux"))]

mod support;

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};

use airssys_rt::integration::osl::*;
use airssys_rt::prelude::*;
use support::osl::{layer, network_actor};
use support::{PATIENCE, system};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Connect anywhere on 127.0.0.1, listen on unprivileged ports.
fn open_policy() -> SecurityPolicy {
    SecurityPolicy::deny_all()
        .grant(Grant::connect("127.0.0.1", 1..=65535))
        .grant(Grant::listen(1024..=65535))
}

async fn connect(
    network: &ActorRef<NetworkRequest>,
    host: &str,
    port: u16,
    framing: Framing,
) -> Result<Connection, OslError> {
    let host = host.to_owned();
    network
        .ask(
            |reply| NetworkRequest::Connect {
                host,
                port,
                framing,
                reply,
            },
            PATIENCE,
        )
        .await
        .expect("the network actor answers")
}

async fn listen(
    network: &ActorRef<NetworkRequest>,
    address: SocketAddr,
    framing: Framing,
    on_accept: ActorRef<Accepted>,
) -> Result<SocketAddr, OslError> {
    network
        .ask(
            |reply| NetworkRequest::Listen {
                address,
                framing,
                on_accept,
                reply,
            },
            PATIENCE,
        )
        .await
        .expect("the network actor answers")
}

/// The rule an operation was denied by.
fn rule_of<T: std::fmt::Debug>(result: Result<T, OslError>) -> DenyRule {
    match result {
        Err(OslError::Denied { rule, .. }) => rule,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Exactly one record of `operation` on `target`, denied by `rule`.
fn assert_denial_recorded(
    memory: &MemorySink,
    operation: Operation,
    target: &str,
    principal: &str,
    rule: &DenyRule,
) {
    let records = memory.records();
    let matching: Vec<_> = records
        .iter()
        .filter(|r| r.operation == operation && r.target == target)
        .collect();
    assert_eq!(matching.len(), 1, "{operation} {target} in {records:#?}");
    assert_eq!(matching[0].principal, principal);
    assert_eq!(matching[0].outcome, Outcome::Denied(rule.to_string()));
}

/// Whether `listener` has a connection waiting (it is left non-blocking).
fn has_pending_connection(listener: &StdListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(error) if error.kind() == ErrorKind::WouldBlock => false,
        Err(error) => panic!("accept failed: {error}"),
    }
}

// ---------------------------------------------------------------------------
// Servers made of actors
// ---------------------------------------------------------------------------

/// Echoes every message on every accepted connection, one task each, until
/// the connection ends.
struct EchoServer;

impl Actor for EchoServer {
    type Message = Accepted;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        accepted: Accepted,
        _: &mut ActorContext<Accepted>,
    ) -> Result<(), Infallible> {
        let connection = accepted.connection;
        tokio::spawn(async move {
            while let Ok(data) = connection.receive(PATIENCE).await {
                if connection.send(data, PATIENCE).await.is_err() {
                    break;
                }
            }
            connection.close();
        });
        Ok(())
    }
}

/// Hands each accepted connection to the test.
struct Inbox(mpsc::UnboundedSender<Connection>);

impl Actor for Inbox {
    type Message = Accepted;
    type Error = Infallible;
    async fn handle_message(
        &mut self,
        accepted: Accepted,
        _: &mut ActorContext<Accepted>,
    ) -> Result<(), Infallible> {
        let _ = self.0.send(accepted.connection);
        Ok(())
    }
}

async fn next_accepted(accepted: &mut mpsc::UnboundedReceiver<Connection>) -> Connection {
    tokio::time::timeout(PATIENCE, accepted.recv())
        .await
        .expect("hung waiting for an accepted connection")
        .expect("the inbox is alive")
}

/// A network actor listening on an OS-picked loopback port that hands each
/// accepted connection to the test (see [`next_accepted`]).
async fn accepting_server(
    system: &ActorSystem,
    osl: &Osl,
    framing: Framing,
) -> (
    ActorRef<NetworkRequest>,
    SocketAddr,
    mpsc::UnboundedReceiver<Connection>,
) {
    let server = network_actor(system, osl, "server");
    let (tx, accepted) = mpsc::unbounded_channel();
    let inbox = system.spawn(Inbox(tx)).unwrap();
    let bound = listen(&server, (LOOPBACK, 0).into(), framing, inbox)
        .await
        .unwrap();
    (server, bound, accepted)
}

/// A network actor listening on an OS-picked loopback port, echoing.
async fn echo_server(
    system: &ActorSystem,
    osl: &Osl,
    framing: Framing,
) -> (ActorRef<NetworkRequest>, SocketAddr) {
    let server = network_actor(system, osl, "server");
    let echo = system.spawn(EchoServer).unwrap();
    let bound = listen(&server, (LOOPBACK, 0).into(), framing, echo)
        .await
        .expect("listening allowed");
    assert_eq!(bound.ip(), LOOPBACK);
    assert_ne!(bound.port(), 0);
    (server, bound)
}

// ---------------------------------------------------------------------------
// Echo
// ---------------------------------------------------------------------------

/// Message `i` of the echo run: distinct text, lengths varying from a few
/// bytes to 8 KiB (so frames straddle reads), some empty-bodied.
fn message(i: usize) -> Vec<u8> {
    let mut data = format!("#{i}:").into_bytes();
    let extra = if i % 1000 == 999 {
        8192
    } else {
        i * 7919 % 300
    };
    data.extend((0..extra).map(|k| (i + k) as u8));
    data
}

/// A client and an echo server, both made of network actors, exchange
/// 10,000 length-delimited messages: each comes back whole, unchanged and in
/// order, up to 32 in flight at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_echo_over_loopback() {
    const MESSAGES: usize = 10_000;
    const WINDOW: usize = 32;
    let (osl, memory) = layer(open_policy());
    let system = system();
    let (_server, bound) = echo_server(&system, &osl, Framing::LengthDelimited).await;
    let client = network_actor(&system, &osl, "client");
    let connection = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
        .await
        .expect("connecting allowed");
    assert_eq!(connection.peer(), bound);

    // An empty message is a frame too.
    connection.send(Vec::new(), PATIENCE).await.unwrap();
    assert_eq!(connection.receive(PATIENCE).await.unwrap(), b"");

    let mut next_echo = 0;
    for start in (0..MESSAGES).step_by(WINDOW) {
        let end = (start + WINDOW).min(MESSAGES);
        for i in start..end {
            connection.send(message(i), PATIENCE).await.unwrap();
        }
        for _ in start..end {
            let echoed = connection.receive(PATIENCE).await.unwrap();
            assert!(echoed == message(next_echo), "echo {next_echo} differs");
            next_echo += 1;
        }
    }
    assert_eq!(next_echo, MESSAGES);
    // Server and client sides both counted.
    assert_eq!(osl.open_connections(), 2);

    let count = |principal: &str, operation: Operation| {
        memory
            .records()
            .iter()
            .filter(|r| {
                r.principal == principal
                    && r.operation == operation
                    && r.outcome == Outcome::Succeeded
            })
            .count()
    };
    assert_eq!(count("client", Operation::Connect), 1);
    assert_eq!(count("client", Operation::Send), MESSAGES + 1);
    assert_eq!(count("client", Operation::Receive), MESSAGES + 1);
    assert_eq!(count("server", Operation::Listen), 1);
    assert_eq!(count("server", Operation::Accept), 1);
    assert_eq!(count("server", Operation::Send), MESSAGES + 1);
    system.shutdown(PATIENCE).await;
}

/// Raw framing: bytes come back as sent, however the reads cut them.
#[tokio::test]
async fn raw_bytes_echo_over_loopback() {
    let (osl, _) = layer(open_policy());
    let system = system();
    let (_server, bound) = echo_server(&system, &osl, Framing::Raw).await;
    let client = network_actor(&system, &osl, "client");
    let connection = connect(&client, "127.0.0.1", bound.port(), Framing::Raw)
        .await
        .unwrap();
    let mut sent = Vec::new();
    for chunk in [&b"hello, "[..], b"raw ", b"world", &[0u8, 255, 10, 13]] {
        connection.send(chunk.to_vec(), PATIENCE).await.unwrap();
        sent.extend_from_slice(chunk);
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let piece = connection.receive(PATIENCE).await.unwrap();
        assert!(!piece.is_empty());
        received.extend(piece);
    }
    // No length prefix was added: exactly the bytes sent come back.
    assert_eq!(received, sent);
    system.shutdown(PATIENCE).await;
}

// ---------------------------------------------------------------------------
// Denials
// ---------------------------------------------------------------------------

/// A port outside the connect grants is refused before any connection is
/// made, and recorded.
#[tokio::test]
async fn connecting_to_a_port_not_granted_is_denied() {
    let target = StdListener::bind((LOOPBACK, 0)).unwrap();
    let port = target.local_addr().unwrap().port();
    // Every port but the target's.
    let (osl, memory) = layer(
        SecurityPolicy::deny_all()
            .grant(Grant::connect("127.0.0.1", 1..=port - 1))
            .grant(Grant::connect("127.0.0.1", port.saturating_add(1)..=65535)),
    );
    let system = system();
    let network = network_actor(&system, &osl, "prober");
    let rule = rule_of(connect(&network, "127.0.0.1", port, Framing::Raw).await);
    assert_eq!(rule, DenyRule::NoGrant("connect".into()));
    assert!(!has_pending_connection(&target), "no connection was made");
    assert_eq!(osl.open_connections(), 0);
    assert_denial_recorded(
        &memory,
        Operation::Connect,
        &format!("127.0.0.1:{port}"),
        "prober",
        &rule,
    );
}

/// A host outside the connect grants is refused, even on a granted port.
/// A principal whose grants could not cover a host is refused before the
/// name is looked up (no DNS query of its choosing leaves the machine), and
/// a newline in the host name is escaped in the record's target.
#[tokio::test]
async fn a_host_no_grant_could_cover_is_refused_before_any_lookup() {
    let (osl, memory) =
        layer(SecurityPolicy::deny_all().grant(Grant::connect("localhost", 80..=80)));
    let system = system();
    let network = network_actor(&system, &osl, "exfiltrator");
    // A lookup of this name would fail with an I/O error; a denial shows
    // none was made.
    let host = "secret-data.example.invalid\nforged";
    let rule = rule_of(connect(&network, host, 80, Framing::Raw).await);
    assert_eq!(rule, DenyRule::NoGrant("connect".into()));
    assert_denial_recorded(
        &memory,
        Operation::Connect,
        "secret-data.example.invalid\\nforged:80",
        "exfiltrator",
        &rule,
    );
}

#[tokio::test]
async fn connecting_to_a_host_not_granted_is_denied() {
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let target = StdListener::bind((other, 0)).expect("all of 127/8 is loopback");
    let port = target.local_addr().unwrap().port();
    let (osl, memory) = layer(open_policy());
    let system = system();
    let network = network_actor(&system, &osl, "prober");
    let rule = rule_of(connect(&network, "127.0.0.2", port, Framing::Raw).await);
    assert_eq!(rule, DenyRule::NoGrant("connect".into()));
    assert!(!has_pending_connection(&target), "no connection was made");
    assert_denial_recorded(
        &memory,
        Operation::Connect,
        &format!("127.0.0.2:{port}"),
        "prober",
        &rule,
    );
}

/// Listening on a port outside the listen grants is refused, whether the
/// port is asked for or picked by the OS (checked once bound).
#[tokio::test]
async fn listening_on_a_port_not_granted_is_denied() {
    let system = system();
    let inbox = system.spawn(Inbox(mpsc::unbounded_channel().0)).unwrap();

    // An explicit port below the granted range.
    let (osl, memory) = layer(open_policy());
    let network = network_actor(&system, &osl, "daemon");
    let low: SocketAddr = (LOOPBACK, 80).into();
    let rule = rule_of(listen(&network, low, Framing::Raw, inbox.clone()).await);
    assert_eq!(rule, DenyRule::NoGrant("listen".into()));
    assert_denial_recorded(&memory, Operation::Listen, "127.0.0.1:80", "daemon", &rule);

    // Port 0 when only ports below the OS's ephemeral range are granted: the
    // port it picks is refused.
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (osl, memory) = layer(SecurityPolicy::deny_all().grant(Grant::listen(1..=ephemeral - 1)));
    let network = network_actor(&system, &osl, "daemon");
    let any: SocketAddr = (LOOPBACK, 0).into();
    let rule = rule_of(listen(&network, any, Framing::Raw, inbox).await);
    assert_eq!(rule, DenyRule::NoGrant("listen".into()));
    assert_denial_recorded(&memory, Operation::Listen, "127.0.0.1:0", "daemon", &rule);
}

// ---------------------------------------------------------------------------
// The max_connections limit
// ---------------------------------------------------------------------------

fn one_connection_policy() -> SecurityPolicy {
    open_policy().limits(Limits {
        max_connections: 1,
        ..Limits::default()
    })
}

/// With `max_connections = 1` a second connect is refused by the limit;
/// once the first is closed and its actor gone, a new one is allowed.
#[tokio::test]
async fn a_connect_over_max_connections_is_refused_until_one_closes() {
    let target = StdListener::bind((LOOPBACK, 0)).unwrap();
    let port = target.local_addr().unwrap().port();
    let (osl, memory) = layer(one_connection_policy());
    let system = system();
    let network = network_actor(&system, &osl, "client");

    let first = connect(&network, "127.0.0.1", port, Framing::Raw)
        .await
        .expect("the first fits");
    assert_eq!(osl.open_connections(), 1);
    let rule = rule_of(connect(&network, "127.0.0.1", port, Framing::Raw).await);
    assert_eq!(
        rule,
        DenyRule::Limit {
            name: "max_connections",
            value: 1
        }
    );
    // Only the first reached the listener.
    assert!(has_pending_connection(&target));
    assert!(!has_pending_connection(&target));
    let records = memory.records();
    let connects: Vec<_> = records
        .iter()
        .filter(|r| r.operation == Operation::Connect)
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(
        connects,
        [Outcome::Succeeded, Outcome::Denied(rule.to_string())]
    );

    first.close();
    tokio::time::timeout(PATIENCE, first.actor().wait_for_exit())
        .await
        .expect("the connection actor stops");
    assert_eq!(osl.open_connections(), 0);
    let again = connect(&network, "127.0.0.1", port, Framing::Raw)
        .await
        .expect("room again");
    assert!(has_pending_connection(&target));
    again.close();
}

/// Accepted connections count too: one over the limit is refused (the peer
/// sees its socket closed) and recorded; after the first closes, a new one
/// is accepted.
#[tokio::test]
async fn an_accept_over_max_connections_is_refused() {
    let (osl, memory) = layer(one_connection_policy());
    let system = system();
    let (_server, bound, mut accepted) = accepting_server(&system, &osl, Framing::Raw).await;

    let _first_peer = tokio::net::TcpStream::connect(bound).await.unwrap();
    let first = next_accepted(&mut accepted).await;
    assert_eq!(osl.open_connections(), 1);

    let mut refused_peer = tokio::net::TcpStream::connect(bound).await.unwrap();
    let refused_at = refused_peer.local_addr().unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, refused_peer.read(&mut byte))
        .await
        .expect("the refused socket is closed");
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed, not data: {read:?}"
    );
    assert_denial_recorded(
        &memory,
        Operation::Accept,
        &format!("{refused_at} on {bound}"),
        "server",
        &DenyRule::Limit {
            name: "max_connections",
            value: 1,
        },
    );
    assert_eq!(osl.open_connections(), 1);

    first.close();
    tokio::time::timeout(PATIENCE, first.actor().wait_for_exit())
        .await
        .expect("the connection actor stops");
    let _third_peer = tokio::net::TcpStream::connect(bound).await.unwrap();
    let third = next_accepted(&mut accepted).await;
    assert_eq!(third.local(), bound);
    assert_eq!(osl.open_connections(), 1);
    system.shutdown(PATIENCE).await;
}

// ---------------------------------------------------------------------------
// Stopping the listener's actor
// ---------------------------------------------------------------------------

/// Stopping the network actor that listens stops the listener and closes
/// every connection it accepted, idle or busy serving a `Receive`: the
/// clients see `ConnectionClosed`. Killing it (no `post_stop`) closes them
/// too.
#[tokio::test]
async fn stopping_the_network_actor_closes_accepted_connections() {
    for kill in [false, true] {
        let (osl, _) = layer(open_policy());
        let system = system();
        let (server, bound, mut accepted) =
            accepting_server(&system, &osl, Framing::LengthDelimited).await;
        let client = network_actor(&system, &osl, "client");

        // One accepted connection stays idle; the other is blocked receiving.
        let idle_client = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
            .await
            .unwrap();
        let idle = next_accepted(&mut accepted).await;
        let busy_client = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
            .await
            .unwrap();
        let busy = next_accepted(&mut accepted).await;
        assert_eq!(busy.peer(), busy_client.local());
        let pending = receive_pending(&busy).await;
        // The busy side is serving: a message sent now is what it receives.
        busy_client.send(b"ping".to_vec(), PATIENCE).await.unwrap();
        assert_eq!(pending.await.unwrap(), b"ping");
        let pending = receive_pending(&busy).await;
        assert_eq!(osl.open_connections(), 4);

        if kill {
            server.kill();
        } else {
            assert!(server.stop());
        }
        tokio::time::timeout(PATIENCE, server.wait_for_exit())
            .await
            .expect("the network actor stops");

        for (name, client_side) in [("idle", &idle_client), ("busy", &busy_client)] {
            match client_side.receive(PATIENCE).await {
                Err(ConnectionError::Osl(OslError::ConnectionClosed { .. })) => {}
                other => panic!("{name} (kill: {kill}): expected ConnectionClosed, got {other:?}"),
            }
        }
        for server_side in [&idle, &busy] {
            tokio::time::timeout(PATIENCE, server_side.actor().wait_for_exit())
                .await
                .expect("the accepted connection's actor stops");
        }
        // The receive pending on the busy side ends too (unanswered).
        let ended = pending.await;
        assert!(ended.is_err(), "{ended:?}");
        // The listener is closed before a stopped actor has exited (a killed
        // one's is aborted in the background).
        if !kill {
            match connect(&client, "127.0.0.1", bound.port(), Framing::Raw).await {
                Err(OslError::Io { kind, .. }) => assert_eq!(kind, ErrorKind::ConnectionRefused),
                other => panic!("expected the connection refused, got {other:?}"),
            }
        }
        system.shutdown(PATIENCE).await;
    }
}

/// Queues a `Receive` on `connection` and waits until its actor is serving
/// it (blocked on the socket); the returned future ends with its answer.
async fn receive_pending(
    connection: &Connection,
) -> impl Future<Output = Result<Vec<u8>, ConnectionError>> + '_ {
    let mut pending = Box::pin(connection.receive(PATIENCE));
    assert!(futures::poll!(pending.as_mut()).is_pending());
    let give_up = std::time::Instant::now() + PATIENCE;
    while connection.actor().mailbox_len() > 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "the Receive is never taken"
        );
        tokio::task::yield_now().await;
    }
    pending
}

/// Stopping a network actor closes the connections it opened, even one
/// whose actor is blocked serving a `Receive`: the peer sees the close.
#[tokio::test]
async fn stopping_the_network_actor_closes_its_outgoing_connections() {
    let (osl, _) = layer(open_policy());
    let system = system();
    let (_server, bound, mut accepted) =
        accepting_server(&system, &osl, Framing::LengthDelimited).await;
    let client = network_actor(&system, &osl, "client");
    let outgoing = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
        .await
        .unwrap();
    let peer = next_accepted(&mut accepted).await;
    let pending = receive_pending(&outgoing).await;

    assert!(client.stop());
    tokio::time::timeout(PATIENCE, client.wait_for_exit())
        .await
        .expect("the network actor stops");
    tokio::time::timeout(PATIENCE, outgoing.actor().wait_for_exit())
        .await
        .expect("its connection's actor stops");
    match peer.receive(PATIENCE).await {
        Err(ConnectionError::Osl(OslError::ConnectionClosed { .. })) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    let ended = pending.await;
    assert!(ended.is_err(), "{ended:?}");
    system.shutdown(PATIENCE).await;
}

/// `Connection::close` closes at once, even while its actor is blocked
/// serving a `Receive`: the pending receive ends, the slot is freed, and the
/// peer sees the close.
#[tokio::test]
async fn close_ends_a_connection_that_is_receiving() {
    let (osl, _) = layer(open_policy());
    let system = system();
    let (_server, bound, mut accepted) =
        accepting_server(&system, &osl, Framing::LengthDelimited).await;
    let client = network_actor(&system, &osl, "client");
    let connection = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
        .await
        .unwrap();
    let peer = next_accepted(&mut accepted).await;
    peer.send(b"hi".to_vec(), PATIENCE).await.unwrap();
    assert_eq!(connection.receive(PATIENCE).await.unwrap(), b"hi");
    let pending = receive_pending(&connection).await;
    assert_eq!(osl.open_connections(), 2);

    connection.close();
    tokio::time::timeout(PATIENCE, connection.actor().wait_for_exit())
        .await
        .expect("the connection's actor stops");
    assert_eq!(osl.open_connections(), 1);
    let ended = pending.await;
    assert!(ended.is_err(), "{ended:?}");
    match peer.receive(PATIENCE).await {
        Err(ConnectionError::Osl(OslError::ConnectionClosed { .. })) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    system.shutdown(PATIENCE).await;
}

// ---------------------------------------------------------------------------
// Limits per principal, and records of operations cut short
// ---------------------------------------------------------------------------

/// `max_connections` is per principal: inbound connections that fill one
/// principal's slots (its listener's) leave another principal's connect
/// alone; `max_connections_total` caps all of them together.
#[tokio::test]
async fn connection_limits_are_per_principal_with_a_total_cap() {
    let (osl, memory) = layer(open_policy().limits(Limits {
        max_connections: 2,
        max_connections_total: 3,
        ..Limits::default()
    }));
    let system = system();
    let (_server, bound, mut accepted) = accepting_server(&system, &osl, Framing::Raw).await;
    let _peers = [
        tokio::net::TcpStream::connect(bound).await.unwrap(),
        tokio::net::TcpStream::connect(bound).await.unwrap(),
    ];
    let _accepted = [
        next_accepted(&mut accepted).await,
        next_accepted(&mut accepted).await,
    ];
    // A third inbound one is over the server's own limit: closed at once.
    let mut refused = tokio::net::TcpStream::connect(bound).await.unwrap();
    let refused_at = refused.local_addr().unwrap();
    let read = tokio::time::timeout(PATIENCE, refused.read(&mut [0u8; 1]))
        .await
        .expect("the refused socket is closed");
    assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
    let per_principal = DenyRule::Limit {
        name: "max_connections",
        value: 2,
    };
    assert_denial_recorded(
        &memory,
        Operation::Accept,
        &format!("{refused_at} on {bound}"),
        "server",
        &per_principal,
    );
    assert_eq!(osl.open_connections_of("server"), 2);

    // Another principal still has its own slots.
    let target = StdListener::bind((LOOPBACK, 0)).unwrap();
    let port = target.local_addr().unwrap().port();
    let client = network_actor(&system, &osl, "client");
    let _connection = connect(&client, "127.0.0.1", port, Framing::Raw)
        .await
        .expect("the server's connections do not use the client's slots");
    assert_eq!(osl.open_connections_of("client"), 1);
    assert_eq!(osl.open_connections(), 3);

    // The total is reached: a third principal is refused by it.
    let other = network_actor(&system, &osl, "other");
    assert_eq!(
        rule_of(connect(&other, "127.0.0.1", port, Framing::Raw).await),
        DenyRule::Limit {
            name: "max_connections_total",
            value: 3
        }
    );
    system.shutdown(PATIENCE).await;
}

/// A `Receive` cut short by `Connection::close` (its actor killed while it
/// waits for data) still yields its one record, as cancelled: every started
/// operation is recorded.
#[tokio::test]
async fn receives_cut_short_by_close_are_recorded_as_cancelled() {
    const CLOSES: usize = 10;
    let (osl, memory) = layer(open_policy());
    let system = system();
    let (_server, bound, mut accepted) =
        accepting_server(&system, &osl, Framing::LengthDelimited).await;
    let client = network_actor(&system, &osl, "client");
    for _ in 0..CLOSES {
        let connection = connect(&client, "127.0.0.1", bound.port(), Framing::LengthDelimited)
            .await
            .unwrap();
        let _peer = next_accepted(&mut accepted).await;
        let pending = receive_pending(&connection).await;
        connection.close();
        tokio::time::timeout(PATIENCE, connection.actor().wait_for_exit())
            .await
            .expect("the connection's actor stops");
        assert!(pending.await.is_err());
    }
    let receives: Vec<Outcome> = memory
        .records()
        .into_iter()
        .filter(|r| r.operation == Operation::Receive && r.principal == "client")
        .map(|r| r.outcome)
        .collect();
    assert_eq!(receives.len(), CLOSES, "{receives:#?}");
    assert!(
        receives
            .iter()
            .all(|outcome| matches!(outcome, Outcome::Cancelled(_))),
        "{receives:#?}"
    );
    system.shutdown(PATIENCE).await;
}
