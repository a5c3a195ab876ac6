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
use crate::state::{Proxy, Role};

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
    let (client_read, client_write) = client.split();
    let (backend_read, backend_write) = backend.split();
    let copy = async {
        tokio::try_join!(
            pump(
                client_read,
                backend_write,
                &proxy.metrics.bytes_from_clients
            ),
            pump(backend_read, client_write, &proxy.metrics.bytes_to_clients),
        )
    };
    let evicted = async {
        let _ = evictions.changed().await;
        // The session may finish what it is doing, then it is closed so that the client
        // reconnects and lands on a healthy node.
        tokio::time::sleep(Duration::from_millis(proxy.settings().writer_grace_ms)).await;
    };
    tokio::select! {
        _ = copy => {}
        () = evicted => {
            tracing::debug!(backend = %target.name, listener = role.label(), "session closed: the node left its role");
        }
    }
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
