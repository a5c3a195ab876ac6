//! Client listeners and the byte copy. Each session: refuse it at once when the proxy or
//! its source address holds too many; pick a backend for the listener's role, connect
//! and read the server's greeting, each bounded (a refused or reset attempt marks the
//! node down; a server that connects but does not greet is given up; either way the next
//! node is tried); then the kernel splice or the copy with two fixed buffers until either
//! side closes, the session stays idle too long, or the proxy tells it to leave its
//! backend.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::packet::{error_packet, NO_BACKEND, TOO_MANY_CONNECTIONS};
use crate::splice::{self, Ended, KernelSplice};
use crate::state::{Forwarder, Proxy, Role};

/// Per direction. Two per session: 16 KiB of buffer per client connection.
const BUFFER_SIZE: usize = 8 * 1024;

/// Accepts clients on `listener` until `shutdown` fires; sessions already running go on.
pub async fn serve(
    proxy: Arc<Proxy>,
    role: Role,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tokio::spawn(session(Arc::clone(&proxy), role, client, peer));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = role.label(), "accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Decrements the session counters however the session ends.
struct SessionGuard<'a> {
    proxy: &'a Proxy,
    backend: Option<usize>,
    source: Option<IpAddr>,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.proxy
            .active_connections
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(index) = self.backend {
            self.proxy.backends[index]
                .active_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(source) = self.source {
            self.proxy.release_source(source);
        }
    }
}

/// Takes a session out of the proxy's table of logins in progress however it ends.
struct LoginEntry<'a> {
    proxy: &'a Proxy,
    id: u64,
}

impl Drop for LoginEntry<'_> {
    fn drop(&mut self) {
        self.proxy.end_login(self.id);
    }
}

/// A backend for a new session of `role`. With the shared writer decision, a writer
/// session that finds no writer waits for one, at most `patience` (the connect
/// timeout): between the moment the old writer is out (drained, dead) and the moment
/// the record names the next one, a few milliseconds pass in which no node may take
/// writes, and a client should see a slower connect there, not an error.
async fn pick_or_wait(
    proxy: &Proxy,
    role: Role,
    tried: &[usize],
    patience: Duration,
) -> Result<usize, String> {
    let first = proxy.pick(role, tried);
    if first.is_ok()
        || role != Role::Writer
        || !tried.is_empty()
        || proxy.writer_decision != spec::WriterDecision::Shared
    {
        return first;
    }
    let deadline = Instant::now() + patience;
    let mut last = first;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        last = proxy.pick(role, tried);
        if last.is_ok() {
            break;
        }
    }
    last
}

/// Why one backend could not take a session.
enum Attempt {
    Connect(io::Error),
    ConnectTimedOut,
    /// Connected, but the server sent no greeting in time.
    GreetingTimedOut,
    /// Connected, but the server closed, reset or sent something that is no greeting.
    Greeting(io::Error),
    /// The client left while the proxy waited for the server.
    ClientGone,
}

async fn session(proxy: Arc<Proxy>, role: Role, mut client: TcpStream, peer: SocketAddr) {
    let accepted = Instant::now();
    let _ = client.set_nodelay(true);
    proxy.metrics.count_connection(role);
    let settings = proxy.settings();
    let active = proxy.active_connections.fetch_add(1, Ordering::Relaxed) + 1;
    let mut guard = SessionGuard {
        proxy: &proxy,
        backend: None,
        source: None,
    };
    let limit = settings
        .max_connections
        .min(proxy.descriptor_cap.load(Ordering::Relaxed));
    // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d: one source.
    let source = peer.ip().to_canonical();
    let source_full = !proxy.admit_source(source, settings.max_connections_per_source);
    if active > u64::from(limit) || source_full {
        // Full: a session still logging in (the oldest) makes room, since a MySQL proxy
        // cannot tell an idle stranger from a slow client before the login; at the
        // per-source limit only one from the same address, so that a flood from one
        // address displaces only its own. Only when every session there has logged in
        // is the new one refused.
        if proxy.close_oldest_login(source_full.then_some(source)) {
            if source_full {
                proxy.admit_source_in_place(source);
            }
        } else {
            let message = if source_full {
                proxy
                    .metrics
                    .rejected_source_limit
                    .fetch_add(1, Ordering::Relaxed);
                format!(
                    "galley proxy: too many connections from {source} ({} allowed per client address: proxy.max_connections_per_source)",
                    settings.max_connections_per_source
                )
            } else {
                proxy.release_source(source);
                proxy.metrics.rejected_limit.fetch_add(1, Ordering::Relaxed);
                format!(
                    "galley proxy: too many connections ({limit} allowed: proxy.max_connections and the open-files limit)"
                )
            };
            let _ = client
                .write_all(&error_packet(TOO_MANY_CONNECTIONS, &message))
                .await;
            return;
        }
    }
    guard.source = Some(source);
    let (login, displaced) = proxy.begin_login(source);
    let login_entry = LoginEntry {
        proxy: &proxy,
        id: login,
    };
    let login_deadline = accepted + Duration::from_millis(settings.login_timeout_ms);
    let connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
    let greeting_timeout = Duration::from_millis(settings.greeting_timeout_ms);
    let mut tried = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let establish = async {
        let (index, mut backend, greeting) = loop {
            let index = match pick_or_wait(&proxy, role, &tried, connect_timeout).await {
                Ok(index) => index,
                Err(reason) => {
                    let writes = matches!(role, Role::Writer | Role::MultiWriter);
                    let counter = if writes && proxy.split_brain_active() {
                        &proxy.metrics.rejected_split_brain
                    } else {
                        &proxy.metrics.rejected_no_backend
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let message = if failures.is_empty() {
                        reason
                    } else {
                        format!(
                            "galley proxy: no Galera node took this session ({})",
                            failures.join("; ")
                        )
                    };
                    let _ = client.write_all(&error_packet(NO_BACKEND, &message)).await;
                    let _ = client.shutdown().await;
                    return None;
                }
            };
            // Held by the guard from here, so that a session closed while it waits gives
            // the reservation back too.
            guard.backend = Some(index);
            let target = &proxy.backends[index];
            let attempt = open_backend(&client, &target.address, connect_timeout, greeting_timeout)
                .await
                .map(|(stream, greeting)| {
                    // The writer may have moved between the pick and the greeting.
                    proxy.still_valid(role, index).then_some((stream, greeting))
                });
            if let Ok(Some((stream, greeting))) = attempt {
                break (index, stream, greeting);
            }
            // Not used: give back the reservation pick() made.
            guard.backend = None;
            target.active_connections.fetch_sub(1, Ordering::Relaxed);
            tried.push(index);
            let failure = match attempt {
                Ok(_) => continue,
                Err(failure) => failure,
            };
            match failure {
                Attempt::ClientGone => return None,
                Attempt::Connect(error) if matches!(error.raw_os_error(), Some(23 | 24)) => {
                    // EMFILE/ENFILE: this proxy is out of descriptors; the node is not at fault.
                    proxy.metrics.rejected_limit.fetch_add(1, Ordering::Relaxed);
                    let message = "galley proxy: out of file descriptors; try again later";
                    let _ = client
                        .write_all(&error_packet(TOO_MANY_CONNECTIONS, message))
                        .await;
                    return None;
                }
                Attempt::Connect(error) => {
                    target.connect_errors.fetch_add(1, Ordering::Relaxed);
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) {
                        proxy.on_connect_refused(index, &error.to_string());
                    }
                    failures.push(format!("{}: cannot connect: {error}", target.name));
                }
                Attempt::ConnectTimedOut => {
                    target.connect_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(backend = %target.name, "connect timed out after {} ms", connect_timeout.as_millis());
                    failures.push(format!(
                        "{}: connect timed out after {} ms",
                        target.name,
                        connect_timeout.as_millis()
                    ));
                }
                Attempt::GreetingTimedOut => {
                    target.connect_errors.fetch_add(1, Ordering::Relaxed);
                    proxy
                        .metrics
                        .greeting_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(backend = %target.name, "no server greeting within {} ms (proxy.greeting_timeout_ms); trying the next node", greeting_timeout.as_millis());
                    failures.push(format!(
                        "{}: no server greeting within {} ms",
                        target.name,
                        greeting_timeout.as_millis()
                    ));
                }
                Attempt::Greeting(error) => {
                    target.connect_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(backend = %target.name, "the server did not greet: {error}");
                    failures.push(format!(
                        "{}: the server did not greet: {error}",
                        target.name
                    ));
                }
            }
        };
        match crate::login::relay(&mut client, &mut backend, &greeting).await {
            Ok(logged_in) => Some((index, backend, logged_in)),
            Err(error) => {
                tracing::debug!(backend = %proxy.backends[index].name, "login not finished: {error}");
                None
            }
        }
    };
    let (index, mut backend, logged_in) = tokio::select! {
        established = tokio::time::timeout_at(login_deadline, establish) => match established {
            Ok(Some(established)) => established,
            Ok(None) => return,
            Err(_) => {
                proxy.metrics.login_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "session closed: no login within {} ms (proxy.login_timeout_ms)", settings.login_timeout_ms);
                return;
            }
        },
        () = displaced.notified() => {
            proxy.metrics.logins_displaced.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "session closed before its login: the proxy is full and a new client came");
            return;
        }
    };
    drop(login_entry);
    tracing::trace!(%peer, capabilities = logged_in.capabilities, "logged in");
    let target = &proxy.backends[index];
    let mut evictions = target.evictions(role);
    evictions.mark_unchanged();
    if !proxy.still_valid(role, index) {
        return;
    }
    let idle = (settings.idle_timeout_s > 0).then(|| Duration::from_secs(settings.idle_timeout_s));
    let forward = async {
        match &proxy.forwarder {
            Forwarder::Kernel(splice) if logged_in.copy_only.is_none() => {
                spliced(&proxy, splice, client, backend, &logged_in.answer, idle).await
            }
            forwarder => {
                if let (Forwarder::Kernel(_), Some(reason)) = (forwarder, logged_in.copy_only) {
                    tracing::debug!("session copied in userspace: {reason}");
                }
                client.write_all(&logged_in.answer).await?;
                proxy
                    .metrics
                    .bytes_to_clients
                    .fetch_add(logged_in.answer.len() as u64, Ordering::Relaxed);
                copied(&proxy, &mut client, &mut backend, idle).await
            }
        }
    };
    let evicted = async {
        let _ = evictions.changed().await;
        // The session may finish what it is doing, then it is closed so that the client
        // reconnects and lands on a healthy node.
        tokio::time::sleep(Duration::from_millis(proxy.settings().writer_grace_ms)).await;
    };
    tokio::select! {
        result = forward => match result {
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                proxy.metrics.idle_closed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(backend = %target.name, listener = role.label(), "session closed: {error}");
            }
            Err(error) => {
                tracing::debug!(backend = %target.name, listener = role.label(), "session ended: {error}");
            }
            Ok(()) => {}
        },
        () = evicted => {
            tracing::debug!(backend = %target.name, listener = role.label(), "session closed: the node left its role");
        }
    }
}

/// Connects to `address` and reads the server's greeting, each step bounded; meanwhile
/// watches the client, which may not speak before the greeting: readable means its FIN
/// or a reset (or a wake-up with nothing behind it).
async fn open_backend(
    client: &TcpStream,
    address: &str,
    connect_timeout: Duration,
    greeting_timeout: Duration,
) -> Result<(TcpStream, Vec<u8>), Attempt> {
    let mut backend = match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(Attempt::Connect(error)),
        Err(_) => return Err(Attempt::ConnectTimedOut),
    };
    let _ = backend.set_nodelay(true);
    let greeting = {
        let read = tokio::time::timeout(greeting_timeout, read_packet(&mut backend));
        tokio::pin!(read);
        loop {
            tokio::select! {
                greeting = &mut read => match greeting {
                    Ok(Ok(greeting)) => break greeting,
                    Ok(Err(error)) => return Err(Attempt::Greeting(error)),
                    Err(_) => return Err(Attempt::GreetingTimedOut),
                },
                ready = client.readable() => {
                    if ready.is_err() {
                        return Err(Attempt::ClientGone);
                    }
                    let mut probe = [0u8; 1];
                    match client.try_read(&mut probe) {
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                        _ => return Err(Attempt::ClientGone),
                    }
                }
            }
        }
    };
    Ok((backend, greeting))
}

/// When a session last moved a byte, for the idle timeout; written by both directions of
/// the copy without a lock.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once no byte moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed));
            if Instant::now() >= last + limit {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }
}

fn idle_error(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("idle for {} s (proxy.idle_timeout_s)", limit.as_secs()),
    )
}

/// The userspace copy: both directions at once, a fixed buffer each; closed after `idle`
/// without a byte either way.
async fn copied(
    proxy: &Proxy,
    client: &mut TcpStream,
    backend: &mut TcpStream,
    idle: Option<Duration>,
) -> io::Result<()> {
    let activity = Activity::new();
    let (client_read, client_write) = client.split();
    let (backend_read, backend_write) = backend.split();
    let copy = async {
        tokio::try_join!(
            pump(
                client_read,
                backend_write,
                &proxy.metrics.bytes_from_clients,
                &activity
            ),
            pump(
                backend_read,
                client_write,
                &proxy.metrics.bytes_to_clients,
                &activity
            ),
        )
        .map(|_| ())
    };
    match idle {
        None => copy.await,
        Some(limit) => tokio::select! {
            result = copy => result,
            () = activity.idle_for(limit) => Err(idle_error(limit)),
        },
    }
}

/// The server greets first and says nothing more until the client answers; the greeting
/// is at most a few hundred bytes.
pub const MAX_GREETING: usize = 64 * 1024;

/// How often a spliced session adds its byte counts to the metrics.
const SPLICED_METRICS_EVERY: Duration = Duration::from_secs(5);

/// How long a half-close waits for the kernel to pass on the bytes before it.
const FORWARD_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The kernel splice: the proxy passes the server's greeting (already read) on itself, so
/// that nothing is waiting unread when the kernel takes over; then it only watches both
/// sockets for the end of the session, which it passes on as the copy loop does (FIN for
/// FIN), and TCP's byte counters for the idle timeout.
async fn spliced(
    proxy: &Proxy,
    splice: &KernelSplice,
    mut client: TcpStream,
    mut backend: TcpStream,
    greeting: &[u8],
    idle: Option<Duration>,
) -> io::Result<()> {
    let start = splice::Start::capture(&client, &backend, greeting.len());
    let joined = match splice.join(&client, &backend) {
        Ok(joined) => joined,
        Err(error) => {
            // The map is full, or a socket closed in between: copy this session instead.
            proxy.metrics.splice_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("kernel splice refused a session ({error}); copying it");
            client.write_all(greeting).await?;
            proxy
                .metrics
                .bytes_to_clients
                .fetch_add(greeting.len() as u64, Ordering::Relaxed);
            return copied(proxy, &mut client, &mut backend, idle).await;
        }
    };
    client.write_all(greeting).await?;
    let mut counted = (0, 0);
    let result = watch_spliced(proxy, &start, &client, &backend, &mut counted, idle).await;
    add_spliced_bytes(proxy, &start, &client, &mut counted);
    drop(joined);
    result
}

/// Adds what a spliced session moved since the last call to the byte metrics; `counted`
/// holds what was added before (from the client, to the client).
fn add_spliced_bytes(
    proxy: &Proxy,
    start: &splice::Start,
    client: &TcpStream,
    counted: &mut (u64, u64),
) {
    let (from_client, to_client) = start.client_bytes(client);
    proxy
        .metrics
        .bytes_from_clients
        .fetch_add(from_client.saturating_sub(counted.0), Ordering::Relaxed);
    proxy
        .metrics
        .bytes_to_clients
        .fetch_add(to_client.saturating_sub(counted.1), Ordering::Relaxed);
    *counted = (counted.0.max(from_client), counted.1.max(to_client));
}

async fn watch_spliced(
    proxy: &Proxy,
    start: &splice::Start,
    client: &TcpStream,
    backend: &TcpStream,
    counted: &mut (u64, u64),
    idle: Option<Duration>,
) -> io::Result<()> {
    let mut client_open = true;
    let mut backend_open = true;
    let mut tick = tokio::time::interval(SPLICED_METRICS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The kernel moves the bytes, so activity is read from the client socket's counters
    // whenever the idle limit would be reached.
    let mut seen = start.client_bytes(client);
    let mut idle_deadline = idle.map(|limit| Instant::now() + limit);
    while client_open || backend_open {
        tokio::select! {
            () = sleep_until_some(idle_deadline) => {
                let limit = idle.expect("a deadline comes from a limit");
                let now = start.client_bytes(client);
                if now == seen {
                    return Err(idle_error(limit));
                }
                seen = now;
                idle_deadline = Some(Instant::now() + limit);
            }
            ready = client.readable(), if client_open => {
                ready?;
                if ended(client)? {
                    splice::pass_fin_on(start, Ended::Client, client, backend, FORWARD_DRAIN_LIMIT).await;
                    client_open = false;
                }
            }
            ready = backend.readable(), if backend_open => {
                ready?;
                if ended(backend)? {
                    splice::pass_fin_on(start, Ended::Backend, client, backend, FORWARD_DRAIN_LIMIT).await;
                    backend_open = false;
                }
            }
            _ = tick.tick() => add_spliced_bytes(proxy, start, client, counted),
        }
    }
    Ok(())
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Whether a spliced socket that polled readable has seen its peer's FIN. The kernel
/// takes every byte, so a read finds either the end, nothing (a spurious wake-up), or an
/// error; bytes would mean the splice let some through, and the session is ended rather
/// than risk passing them on out of order.
fn ended(socket: &TcpStream) -> io::Result<bool> {
    let mut probe = [0u8; 1];
    match socket.try_read(&mut probe) {
        Ok(0) => Ok(true),
        Ok(_) => Err(io::Error::other(
            "bytes reached the proxy past the kernel splice; session closed",
        )),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(error) => Err(error),
    }
}

/// One MySQL packet: 3-byte length, sequence id, payload. Generic over the stream so that
/// the fuzz target (`proxy::fuzzing`) feeds it bytes from memory.
pub async fn read_packet(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if length > MAX_GREETING {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the server's first packet is {length} bytes long, not a greeting"),
        ));
    }
    let mut packet = vec![0u8; 4 + length];
    packet[..4].copy_from_slice(&header);
    stream.read_exact(&mut packet[4..]).await?;
    Ok(packet)
}

/// Copies one direction with one buffer, allocated once per session, never per packet.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    counter: &AtomicU64,
    activity: &Activity,
) -> io::Result<()> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let read = from.read(&mut buffer).await?;
        activity.touch();
        if read == 0 {
            // Pass the half-close on so the other side sees the end of the stream.
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
        counter.fetch_add(read as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use tokio::io::AsyncReadExt as _;

    use crate::state::{Forwarder, Role};
    use crate::test_support::{
        backend, connect_from, error_of, eventually, first_packet, log_in, proxy, serve, Backend,
        GREETING, PATIENCE,
    };

    /// The userspace copy always; the kernel splice too where it can be loaded (root or
    /// CAP_BPF, as in CI).
    fn forwarders() -> Vec<Forwarder> {
        let mut forwarders = vec![Forwarder::Userspace {
            reason: "test".to_owned(),
        }];
        match crate::splice::KernelSplice::load(64) {
            Ok(splice) => forwarders.push(Forwarder::Kernel(splice)),
            Err(error) => eprintln!("kernel splice not tested here: {error}"),
        }
        forwarders
    }

    #[tokio::test]
    async fn a_server_that_never_greets_is_given_up_and_the_next_node_tried() {
        for forwarder in forwarders() {
            let mode = forwarder.label();
            // n1 greets and is the writer; readers go to n2 first (least connections,
            // off the writer on a tie), which accepts and never says a word.
            let good = backend("127.0.1.1", Backend::Greets).await;
            let hung = backend("127.0.1.2", Backend::Silent).await;
            let mut state = proxy(&[good, hung], "greeting_timeout_ms = 200");
            state.forwarder = forwarder;
            let state = Arc::new(state);
            let (reader, _stop) = serve(&state, Role::Reader).await;
            let mut client = connect_from("127.0.0.1", reader).await;
            assert_eq!(first_packet(&mut client).await, GREETING, "{mode}");
            assert_eq!(
                state.metrics.greeting_timeouts.load(Ordering::Relaxed),
                1,
                "{mode}"
            );
            assert_eq!(state.backends[1].connect_errors.load(Ordering::Relaxed), 1);

            // With no other node, the client gets an error that says why, not a hang.
            let hung = backend("127.0.1.3", Backend::Silent).await;
            let mut state = proxy(&[hung], "greeting_timeout_ms = 200");
            state.forwarder = match mode {
                "kernel" => forwarders().pop().unwrap(),
                _ => Forwarder::Userspace {
                    reason: "test".to_owned(),
                },
            };
            let state = Arc::new(state);
            let (writer, _stop) = serve(&state, Role::Writer).await;
            let mut client = connect_from("127.0.0.1", writer).await;
            let (code, message) = error_of(&first_packet(&mut client).await).expect("an error");
            assert_eq!(code, crate::packet::NO_BACKEND, "{mode}: {message}");
            assert!(
                message.contains("n1: no server greeting within 200 ms"),
                "{message}"
            );
            assert_eq!(state.metrics.greeting_timeouts.load(Ordering::Relaxed), 1);
        }
    }

    #[tokio::test]
    async fn an_idle_session_is_closed() {
        for forwarder in forwarders() {
            let mode = forwarder.label();
            let server = backend("127.0.1.4", Backend::Greets).await;
            let mut state = proxy(&[server], "idle_timeout_s = 1");
            state.forwarder = forwarder;
            let state = Arc::new(state);
            let (writer, _stop) = serve(&state, Role::Writer).await;
            let mut client = connect_from("127.0.0.1", writer).await;
            log_in(&mut client).await;
            // Bytes still pass (the backend echoes them) ...
            tokio::io::AsyncWriteExt::write_all(&mut client, b"ping")
                .await
                .unwrap();
            let mut echo = [0u8; 4];
            tokio::time::timeout(PATIENCE, client.read_exact(&mut echo))
                .await
                .expect("the echo")
                .unwrap();
            assert_eq!(&echo, b"ping", "{mode}");
            // ... and once none has moved for the limit, the proxy closes the session.
            let mut rest = [0u8; 16];
            let read = tokio::time::timeout(PATIENCE, client.read(&mut rest))
                .await
                .unwrap_or_else(|_| panic!("{mode}: the idle session stayed open"));
            assert!(matches!(read, Ok(0) | Err(_)), "{mode}: {read:?}");
            eventually("idle counted", || {
                state.metrics.idle_closed.load(Ordering::Relaxed) == 1
            })
            .await;
            eventually("session gone", || {
                state.active_connections.load(Ordering::Relaxed) == 0
            })
            .await;
        }
    }

    #[tokio::test]
    async fn one_source_is_limited_while_others_still_get_in() {
        let server = backend("127.0.1.5", Backend::Greets).await;
        let state = Arc::new(proxy(&[server], "max_connections_per_source = 2"));
        let (writer, _stop) = serve(&state, Role::Writer).await;
        let mut first = connect_from("127.0.0.1", writer).await;
        let mut second = connect_from("127.0.0.1", writer).await;
        log_in(&mut first).await;
        log_in(&mut second).await;
        // The third from the same address is refused at once, as a server refuses.
        let mut third = connect_from("127.0.0.1", writer).await;
        let (code, message) = error_of(&first_packet(&mut third).await).expect("an error packet");
        assert_eq!(code, crate::packet::TOO_MANY_CONNECTIONS);
        assert!(
            message.contains("too many connections from 127.0.0.1 (2 allowed"),
            "{message}"
        );
        assert_eq!(
            state.metrics.rejected_source_limit.load(Ordering::Relaxed),
            1
        );
        // Another address is not held back by it.
        let mut other = connect_from("127.0.0.2", writer).await;
        assert_eq!(first_packet(&mut other).await, GREETING);
        // A session that ends gives its place back...
        drop(first);
        eventually("place given back", || {
            state.active_connections.load(Ordering::Relaxed) == 2
        })
        .await;
        let mut again = connect_from("127.0.0.1", writer).await;
        assert_eq!(first_packet(&mut again).await, GREETING);
        // ... and an address leaves the table with its last session.
        drop((second, third, other, again));
        eventually("table empty", || state.source_count() == 0).await;
    }

    #[tokio::test]
    async fn a_client_that_never_logs_in_is_closed_at_the_login_deadline() {
        for forwarder in forwarders() {
            let mode = forwarder.label();
            let server = backend("127.0.1.6", Backend::Greets).await;
            let mut state = proxy(&[server], "login_timeout_ms = 300");
            state.forwarder = forwarder;
            let state = Arc::new(state);
            let (writer, _stop) = serve(&state, Role::Writer).await;
            // One client logs in; another connects, reads the greeting and says nothing.
            let mut logged_in = connect_from("127.0.0.1", writer).await;
            log_in(&mut logged_in).await;
            let mut silent = connect_from("127.0.0.1", writer).await;
            assert_eq!(first_packet(&mut silent).await, GREETING, "{mode}");
            let mut rest = [0u8; 16];
            let read = tokio::time::timeout(PATIENCE, silent.read(&mut rest))
                .await
                .unwrap_or_else(|_| panic!("{mode}: the silent client stayed connected"));
            assert!(matches!(read, Ok(0) | Err(_)), "{mode}: {read:?}");
            eventually("login timeout counted", || {
                state.metrics.login_timeouts.load(Ordering::Relaxed) == 1
            })
            .await;
            // The logged-in session outlives the deadline: bytes still pass both ways.
            tokio::io::AsyncWriteExt::write_all(&mut logged_in, b"ping")
                .await
                .unwrap();
            let mut echo = [0u8; 4];
            tokio::time::timeout(PATIENCE, logged_in.read_exact(&mut echo))
                .await
                .expect("the echo")
                .unwrap();
            assert_eq!(&echo, b"ping", "{mode}");
            assert_eq!(state.metrics.login_timeouts.load(Ordering::Relaxed), 1);
            eventually("one session left", || {
                state.active_connections.load(Ordering::Relaxed) == 1
            })
            .await;
        }
    }

    #[tokio::test]
    async fn when_full_a_session_still_logging_in_makes_room_for_a_new_client() {
        let server = backend("127.0.1.7", Backend::Greets).await;
        let state = Arc::new(proxy(&[server], "max_connections = 2"));
        let (writer, _stop) = serve(&state, Role::Writer).await;
        let mut first = connect_from("127.0.0.1", writer).await;
        assert_eq!(first_packet(&mut first).await, GREETING);
        let mut second = connect_from("127.0.0.1", writer).await;
        log_in(&mut second).await;
        // Full. The newcomer is greeted, and the session that never logged in is closed.
        let mut third = connect_from("127.0.0.1", writer).await;
        log_in(&mut third).await;
        let mut rest = [0u8; 16];
        let read = tokio::time::timeout(PATIENCE, first.read(&mut rest))
            .await
            .expect("the oldest login was closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(state.metrics.logins_displaced.load(Ordering::Relaxed), 1);
        eventually("two sessions", || {
            state.active_connections.load(Ordering::Relaxed) == 2
        })
        .await;
        // With every session logged in, a new client is refused as a server refuses.
        let mut fourth = connect_from("127.0.0.1", writer).await;
        let (code, _) = error_of(&first_packet(&mut fourth).await).expect("an error packet");
        assert_eq!(code, crate::packet::TOO_MANY_CONNECTIONS);
        // (On loopback the per-source limit is the whole, and is reached first.)
        assert_eq!(
            state.metrics.rejected_source_limit.load(Ordering::Relaxed),
            1
        );
        assert_eq!(state.logins_in_progress(), 0);
    }
}
