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

use bpf::shutdown_write;
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
async fn wait_forwarded(
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

/// One side has sent its FIN: once the bytes before it are forwarded, sends a FIN to the
/// other side too (the copy loop's half-close, for a spliced session).
pub async fn pass_fin_on(
    start: &Start,
    ended: Ended,
    client: &TcpStream,
    backend: &TcpStream,
    limit: Duration,
) {
    wait_forwarded(start, ended, client, backend, limit).await;
    shutdown_write(match ended {
        Ended::Client => backend,
        Ended::Backend => client,
    });
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// Two real TCP connections on loopback, application ⇄ proxy ⇄ server, joined by the
    /// kernel splice: bytes pass whole both ways, and a FIN that follows a megabyte at
    /// once reaches the server only after the whole megabyte, though small socket
    /// buffers on the server's side keep most of it queued in the kernel at that moment.
    #[tokio::test]
    async fn spliced_sockets_forward_both_ways_and_pass_the_fin_on_last() {
        let splice = match KernelSplice::load(16) {
            Ok(splice) => splice,
            Err(error) => {
                // Only root (or CAP_BPF + CAP_NET_ADMIN) may load socket programs; the
                // tests run as root, where this must work.
                assert!(
                    !nix::unistd::geteuid().is_root(),
                    "root could not load the kernel splice: {error}"
                );
                assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
                return;
            }
        };
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let back = tokio::net::TcpSocket::new_v4().unwrap();
        back.set_recv_buffer_size(4096).unwrap();
        back.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let back = back.listen(16).unwrap();
        let mut application = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (client, _) = front.accept().await.unwrap();
        let backend = tokio::net::TcpSocket::new_v4().unwrap();
        backend.set_send_buffer_size(4096).unwrap();
        let backend = backend.connect(back.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = back.accept().await.unwrap();

        let start = Start::capture(&client, &backend, 0);
        let joined = splice.join(&client, &backend).unwrap();
        application.write_all(b"ping").await.unwrap();
        let mut ping = [0u8; 4];
        server.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
        let reply: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        server.write_all(&reply).await.unwrap();
        let mut received = vec![0u8; reply.len()];
        application.read_exact(&mut received).await.unwrap();
        assert!(received == reply, "the reply came back different");

        // A megabyte and the FIN right behind it, while the server reads slowly.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let read = server.read(&mut chunk).await.unwrap();
                if read == 0 {
                    return got;
                }
                got.extend_from_slice(&chunk[..read]);
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        });
        let upload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
        application.write_all(&upload).await.unwrap();
        application.shutdown().await.unwrap();
        let mut probe = [0u8; 1];
        loop {
            client.readable().await.unwrap();
            match client.try_read(&mut probe) {
                Ok(0) => break,
                Ok(_) => panic!("bytes reached the proxy past the splice"),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => panic!("{error}"),
            }
        }
        pass_fin_on(
            &start,
            Ended::Client,
            &client,
            &backend,
            Duration::from_secs(10),
        )
        .await;
        let got = reader.await.unwrap();
        assert_eq!(got.len(), upload.len(), "bytes lost before the FIN");
        assert!(got == upload, "the upload came back different");
        let (from_client, to_client) = start.client_bytes(&client);
        // TCP counts the FIN it received as one byte.
        assert_eq!(from_client, 4 + upload.len() as u64 + 1);
        assert!(to_client >= reply.len() as u64, "{to_client}");
        drop(joined);
    }
}
