//! Client listeners and the byte copy. Each session: pick a backend for the listener's
//! role, connect with a bounded timeout (a refused or reset attempt marks the node down
//! and the next one is tried), then copy bytes both ways with two fixed buffers until
//! either side closes or the proxy tells the session to leave its backend.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

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
                Ok((client, _)) => {
                    tokio::spawn(session(Arc::clone(&proxy), role, client));
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
    }
}

async fn session(proxy: Arc<Proxy>, role: Role, mut client: TcpStream) {
    let _ = client.set_nodelay(true);
    proxy.metrics.count_connection(role);
    let settings = proxy.settings();
    let active = proxy.active_connections.fetch_add(1, Ordering::Relaxed) + 1;
    let mut guard = SessionGuard {
        proxy: &proxy,
        backend: None,
    };
    let limit = settings
        .max_connections
        .min(proxy.descriptor_cap.load(Ordering::Relaxed));
    if active > u64::from(limit) {
        proxy.metrics.rejected_limit.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "galley proxy: too many connections ({limit} allowed: proxy.max_connections and the open-files limit)"
        );
        let _ = client
            .write_all(&error_packet(TOO_MANY_CONNECTIONS, &message))
            .await;
        return;
    }
    let connect_timeout = Duration::from_millis(settings.connect_timeout_ms);
    let mut tried = Vec::new();
    let (index, mut backend) = loop {
        let index = match proxy.pick(role, &tried) {
            Ok(index) => index,
            Err(reason) => {
                proxy
                    .metrics
                    .rejected_no_backend
                    .fetch_add(1, Ordering::Relaxed);
                let _ = client.write_all(&error_packet(NO_BACKEND, &reason)).await;
                let _ = client.shutdown().await;
                return;
            }
        };
        let target = &proxy.backends[index];
        let connected =
            tokio::time::timeout(connect_timeout, TcpStream::connect(&target.address)).await;
        let failure = match connected {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                // The writer may have moved between the pick and the connect.
                if proxy.still_valid(role, index) {
                    break (index, stream);
                }
                None
            }
            Ok(Err(error)) => Some(Ok(error)),
            Err(elapsed) => Some(Err(elapsed)),
        };
        // Not used: give back the reservation pick() made.
        target.active_connections.fetch_sub(1, Ordering::Relaxed);
        match failure {
            None => tried.push(index),
            Some(Ok(error)) if matches!(error.raw_os_error(), Some(23 | 24)) => {
                // EMFILE/ENFILE: this proxy is out of descriptors; the node is not at fault.
                proxy.metrics.rejected_limit.fetch_add(1, Ordering::Relaxed);
                let message = "galley proxy: out of file descriptors; try again later";
                let _ = client
                    .write_all(&error_packet(TOO_MANY_CONNECTIONS, message))
                    .await;
                return;
            }
            Some(Ok(error)) => {
                target.connect_errors.fetch_add(1, Ordering::Relaxed);
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) {
                    proxy.on_connect_refused(index, &error.to_string());
                }
                tried.push(index);
            }
            Some(Err(_)) => {
                target.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(backend = %target.name, "connect timed out after {} ms", connect_timeout.as_millis());
                tried.push(index);
            }
        }
    };
    let target = &proxy.backends[index];
    guard.backend = Some(index);
    let mut evictions = target.evictions(role);
    evictions.mark_unchanged();
    if !proxy.still_valid(role, index) {
        return;
    }
    let forward = async {
        match &proxy.forwarder {
            Forwarder::Kernel(splice) => spliced(&proxy, splice, client, backend).await,
            Forwarder::Userspace { .. } => copied(&proxy, &mut client, &mut backend).await,
        }
    };
    let evicted = async {
        let _ = evictions.changed().await;
        // The session may finish what it is doing, then it is closed so that the client
        // reconnects and lands on a healthy node.
        tokio::time::sleep(Duration::from_millis(proxy.settings().writer_grace_ms)).await;
    };
    tokio::select! {
        result = forward => {
            if let Err(error) = result {
                tracing::debug!(backend = %target.name, listener = role.label(), "session ended: {error}");
            }
        }
        () = evicted => {
            tracing::debug!(backend = %target.name, listener = role.label(), "session closed: the node left its role");
        }
    }
}

/// The userspace copy: both directions at once, a fixed buffer each.
async fn copied(proxy: &Proxy, client: &mut TcpStream, backend: &mut TcpStream) -> io::Result<()> {
    let (client_read, client_write) = client.split();
    let (backend_read, backend_write) = backend.split();
    tokio::try_join!(
        pump(
            client_read,
            backend_write,
            &proxy.metrics.bytes_from_clients
        ),
        pump(backend_read, client_write, &proxy.metrics.bytes_to_clients),
    )
    .map(|_| ())
}

/// The server greets first and says nothing more until the client answers; the greeting
/// is at most a few hundred bytes.
pub const MAX_GREETING: usize = 64 * 1024;

/// How often a spliced session adds its byte counts to the metrics.
const SPLICED_METRICS_EVERY: Duration = Duration::from_secs(5);

/// How long a half-close waits for the kernel to pass on the bytes before it.
const FORWARD_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The kernel splice: the proxy passes the server's greeting on itself, so that nothing
/// is waiting unread when the kernel takes over; then it only watches both sockets for the
/// end of the session, which it passes on as the copy loop does (FIN for FIN).
async fn spliced(
    proxy: &Proxy,
    splice: &KernelSplice,
    mut client: TcpStream,
    mut backend: TcpStream,
) -> io::Result<()> {
    let greeting = {
        let read = read_packet(&mut backend);
        tokio::pin!(read);
        loop {
            tokio::select! {
                greeting = &mut read => break greeting?,
                // The client may not speak before the greeting: readable means its FIN or
                // a reset (or a wake-up with nothing behind it).
                ready = client.readable() => {
                    ready?;
                    let mut probe = [0u8; 1];
                    match client.try_read(&mut probe) {
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(error) => return Err(error),
                        Ok(_) => return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "the client closed or spoke before the server's greeting",
                        )),
                    }
                }
            }
        }
    };
    let start = splice::Start::capture(&client, &backend, greeting.len());
    let joined = match splice.join(&client, &backend) {
        Ok(joined) => joined,
        Err(error) => {
            // The map is full, or a socket closed in between: copy this session instead.
            proxy.metrics.splice_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("kernel splice refused a session ({error}); copying it");
            client.write_all(&greeting).await?;
            proxy
                .metrics
                .bytes_to_clients
                .fetch_add(greeting.len() as u64, Ordering::Relaxed);
            return copied(proxy, &mut client, &mut backend).await;
        }
    };
    client.write_all(&greeting).await?;
    let mut counted = (0, 0);
    let result = watch_spliced(proxy, &start, &client, &backend, &mut counted).await;
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
) -> io::Result<()> {
    let mut client_open = true;
    let mut backend_open = true;
    let mut tick = tokio::time::interval(SPLICED_METRICS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while client_open || backend_open {
        tokio::select! {
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
) -> io::Result<()> {
    let mut buffer = vec![0u8; BUFFER_SIZE];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            // Pass the half-close on so the other side sees the end of the stream.
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
        counter.fetch_add(read as u64, Ordering::Relaxed);
    }
}
