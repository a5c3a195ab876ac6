//! Kernel splice: once a session's backend has greeted the client, the kernel forwards its
//! bytes both ways itself and the proxy is not woken per packet. Both sockets go into a
//! sockhash map under each other's cookie; a stream verdict program attached to the map
//! sends whatever arrives on one socket out of the other. TCP flow control still holds: a
//! client that stops reading stops its backend.
//!
//! The proxy keeps both descriptors and watches them only for the end of the session (FIN
//! or reset) and for its own eviction of the session, as in the userspace copy.
//!
//! It needs CAP_BPF and CAP_NET_ADMIN (or root) and a kernel with sockhash (4.18+); where
//! the programs cannot be loaded, `forwarding = "auto"` copies in userspace instead.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::bpf;

/// The map and the two programs, loaded once per proxy process.
#[derive(Debug)]
pub struct KernelSplice {
    map: OwnedFd,
    _programs: (OwnedFd, OwnedFd),
}

impl KernelSplice {
    /// `sessions` bounds the map: two entries per session.
    pub fn load(sessions: u32) -> io::Result<KernelSplice> {
        let map = bpf::create_sockhash(sessions.saturating_mul(2).max(64))?;
        let programs = bpf::load_and_attach(&map)?;
        Ok(KernelSplice {
            map,
            _programs: programs,
        })
    }

    /// Hands the two connected sockets to the kernel. Nothing may be waiting unread on
    /// either socket (data already queued stays there until more arrives), which holds
    /// for MySQL when the proxy has read the server's greeting and not yet passed it on.
    pub fn join<'a>(&'a self, client: &TcpStream, backend: &TcpStream) -> io::Result<Joined<'a>> {
        let client_cookie = bpf::socket_cookie(client)?;
        let backend_cookie = bpf::socket_cookie(backend)?;
        let joined = Joined {
            splice: self,
            cookies: [client_cookie, backend_cookie],
        };
        // On an error, dropping `joined` removes whatever was inserted.
        bpf::map_update(&self.map, client_cookie, backend)?;
        bpf::map_update(&self.map, backend_cookie, client)?;
        Ok(joined)
    }
}

/// Two sockets the kernel forwards between; dropping this takes them out of the map
/// (closing a socket does too, but the proxy does not rely on that).
#[derive(Debug)]
pub struct Joined<'a> {
    splice: &'a KernelSplice,
    cookies: [u64; 2],
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        for cookie in self.cookies {
            let _ = bpf::map_delete(&self.splice.map, cookie);
        }
    }
}

pub use bpf::shutdown_write;
use bpf::TcpBytes;

/// TCP's byte counters of a session's two sockets just before the kernel took it over.
/// Counting from here leaves out the handshake (the active opener's counters include its
/// SYN) and the greeting the proxy read itself.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    client: TcpBytes,
    backend: TcpBytes,
    /// The server's greeting: read from the backend before `Start`, written to the client
    /// after it.
    greeting: u64,
}

impl Start {
    pub fn capture(client: &TcpStream, backend: &TcpStream, greeting: usize) -> Start {
        Start {
            client: tcp_bytes(client),
            backend: tcp_bytes(backend),
            greeting: greeting as u64,
        }
    }

    /// Bytes that arrived from the client and bytes written to it (the greeting
    /// included), up to now. Each may be one more than the payload: TCP counts a FIN it
    /// received, and one it sent once acknowledged, as a byte.
    pub fn client_bytes(&self, client: &TcpStream) -> (u64, u64) {
        let now = tcp_bytes(client);
        (
            now.received.saturating_sub(self.client.received),
            now.written.saturating_sub(self.client.written),
        )
    }
}

/// Which socket has seen its peer's FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Client,
    Backend,
}

fn tcp_bytes(socket: &TcpStream) -> TcpBytes {
    bpf::tcp_bytes(socket).unwrap_or_default()
}

/// After one side's FIN, waits until every byte that arrived on it before the FIN has
/// been written to the other (the kernel forwards from a work queue, a moment after the
/// data arrived), so that passing the half-close on does not cut the last bytes off.
/// Bounded: a peer that reads nothing for `limit` gets the FIN anyway.
pub async fn wait_forwarded(
    start: &Start,
    ended: Ended,
    client: &TcpStream,
    backend: &TcpStream,
    limit: Duration,
) {
    let (from, from_start, to, to_start, written_by_proxy) = match ended {
        Ended::Client => (client, start.client, backend, start.backend, 0),
        Ended::Backend => (backend, start.backend, client, start.client, start.greeting),
    };
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    loop {
        // The FIN that ended `from` counts as one received byte.
        let arrived = tcp_bytes(from)
            .received
            .saturating_sub(from_start.received)
            .saturating_sub(1);
        let forwarded = tcp_bytes(to)
            .written
            .saturating_sub(to_start.written)
            .saturating_sub(written_by_proxy);
        if forwarded >= arrived {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::debug!(
                arrived,
                forwarded,
                "half-close passed on before the kernel had forwarded everything"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
