//! What the proxy's in-process tests share: a spec whose nodes are fake backends on
//! loopback addresses, backends that greet or stay silent, and a listener serving one
//! role. Real sockets throughout; only the MySQL servers are stand-ins, and the probes
//! are replaced by feeding `Proxy::on_probe` a Synced status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::state::{ProbeOutcome, Proxy, Role};

/// What a stand-in server sends first: one MySQL packet (not a real handshake; the
/// proxy only needs a packet).
pub const GREETING: &[u8] = &[5, 0, 0, 0, 10, b'f', b'a', b'k', b'e'];

/// A stand-in client's login packet (sequence id 1; not a real handshake response).
pub const LOGIN: &[u8] = &[4, 0, 0, 1, 0, 0, 0, 0];

/// The stand-in server's OK to the login: sequence id 2, status SERVER_STATUS_AUTOCOMMIT.
pub const LOGIN_OK: &[u8] = &[7, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0];

/// Reads the greeting, sends `LOGIN` and reads the server's OK, as a client logs in.
pub async fn log_in(client: &mut TcpStream) {
    assert_eq!(first_packet(client).await, GREETING);
    client.write_all(LOGIN).await.expect("send the login");
    assert_eq!(first_packet(client).await, LOGIN_OK);
}

/// How a stand-in server behaves once it accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Sends `GREETING`, answers the first bytes that arrive (the login) with `LOGIN_OK`,
    /// then echoes whatever arrives.
    Greets,
    /// Accepts and never sends a byte (a hung server).
    Silent,
}

/// Starts a stand-in server on `ip` (a loopback address) and returns where it listens.
pub async fn backend(ip: &str, behaviour: Backend) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind a backend");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if behaviour == Backend::Greets && socket.write_all(GREETING).await.is_err() {
                    return;
                }
                let mut buffer = [0u8; 1024];
                let mut logged_in = false;
                while let Ok(read @ 1..) = socket.read(&mut buffer).await {
                    if behaviour != Backend::Greets {
                        continue;
                    }
                    let answer = if logged_in { &buffer[..read] } else { LOGIN_OK };
                    logged_in = true;
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// A proxy routing to `backends` (in priority order), with `settings` added to its
/// `[proxy]` section, every backend probed Synced once.
pub fn proxy(backends: &[SocketAddr], settings: &str) -> Proxy {
    let mut text = format!(
        "[cluster]\nname = \"t\"\nsecrets_file = \"/tmp/s.toml\"\n[proxy]\nwriter_grace_ms = 0\nwriter_decision = \"local\"\n{settings}\n"
    );
    for (n, backend) in backends.iter().enumerate() {
        text.push_str(&format!(
            "[[node]]\nname = \"n{}\"\naddress = \"{}\"\nclient_port = {}\ndata_dir = \"/d{n}\"\n",
            n + 1,
            backend.ip(),
            backend.port()
        ));
    }
    let spec = spec::parse(std::path::Path::new("galley.toml"), &text)
        .unwrap_or_else(|error| panic!("{error}"))
        .spec;
    let proxy_spec = spec.proxy.clone().unwrap();
    let proxy = Proxy::new(&spec, &proxy_spec);
    for index in 0..backends.len() {
        proxy.on_probe(index, synced(index as i64));
    }
    proxy
}

/// A Synced Primary node's probe result, at `wsrep_local_index` `index`.
pub(crate) fn synced(index: i64) -> ProbeOutcome {
    let index = index.to_string();
    let status = galera::WsrepStatus::from_variables([
        ("wsrep_ready", "ON"),
        ("wsrep_cluster_status", "Primary"),
        ("wsrep_local_state", "4"),
        ("wsrep_local_index", index.as_str()),
    ]);
    ProbeOutcome::Status {
        status: Box::new(status),
        latency_ms: 1.0,
    }
}

/// Serves `role` on 127.0.0.1 until the returned sender is dropped.
pub async fn serve(
    proxy: &Arc<Proxy>,
    role: Role,
) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::listener::serve(
        Arc::clone(proxy),
        role,
        listener,
        stopped,
    ));
    (address, stop)
}

/// Connects to `address` from the loopback address `from`.
pub async fn connect_from(from: &str, address: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind the client's source address");
    socket.connect(address).await.expect("the proxy accepts")
}

/// Longer than any timeout of the code under test, so that a hang fails the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The first packet the client gets: the backend's greeting or the proxy's error.
pub async fn first_packet(client: &mut TcpStream) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, async {
        let mut header = [0u8; 4];
        client
            .read_exact(&mut header)
            .await
            .expect("a packet header");
        let length = usize::from(header[0]) | usize::from(header[1]) << 8;
        let mut packet = header.to_vec();
        packet.resize(4 + length, 0);
        client
            .read_exact(&mut packet[4..])
            .await
            .expect("the packet's payload");
        packet
    })
    .await
    .expect("the client got nothing: the proxy hangs")
}

/// The error code and message of an ERR packet, or None for any other packet.
pub fn error_of(packet: &[u8]) -> Option<(u16, String)> {
    (packet.get(4) == Some(&0xFF)).then(|| {
        (
            u16::from_le_bytes([packet[5], packet[6]]),
            String::from_utf8_lossy(&packet[13..]).into_owned(),
        )
    })
}

/// Polls `condition` every 20 ms until it holds; panics after `PATIENCE`.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
