//! The serving layer against real sockets on 127.0.0.0/8: a server with short limits, raw
//! HTTP/1.1 clients bound to chosen loopback addresses (every 127.x.y.z is this host), and
//! bounded waits. No assertion is about how long something took.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{oneshot, Notify};

use super::*;

/// Far longer than any limit the tests configure, far shorter than a hung test.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_connections: 8,
        max_connections_per_source: 3,
        max_body_bytes: 1000,
        max_header_bytes: 8192,
    }
}

struct Running {
    address: SocketAddr,
    stats: StatsHandle,
    /// Releases every request waiting in `/hold`.
    release: Arc<Notify>,
    /// Requests waiting in `/hold`.
    holding: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(limits: Limits) -> Running {
        let release = Arc::new(Notify::new());
        let held = Arc::clone(&release);
        let holding = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&holding);
        let router =
            Router::new()
                .route("/", get(|| async { "hello" }))
                .route(
                    "/whoami",
                    get(|ConnectInfo(remote): ConnectInfo<SocketAddr>| async move {
                        remote.to_string()
                    }),
                )
                .route(
                    "/hold",
                    get(move || {
                        let held = Arc::clone(&held);
                        let counted = Arc::clone(&counted);
                        async move {
                            let released = held.notified();
                            counted.fetch_add(1, Ordering::SeqCst);
                            released.await;
                            "released"
                        }
                    }),
                )
                .route(
                    "/sleep",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        "late"
                    }),
                )
                .route(
                    "/echo",
                    post(|Json(value): Json<serde_json::Value>| async move { Json(value) }),
                );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = Server::new("test", limits);
        let stats = server.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server.serve(listener, router, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            stats,
            release,
            holding,
            stop: Some(stop),
            served,
        }
    }

    /// A connection from `source` (any 127.x.y.z).
    async fn connect_from(&self, source: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
            .unwrap();
        socket.connect(self.address).await.unwrap()
    }

    /// Sends `request` from `source` and reads the whole answer (the request asks the
    /// server to close).
    async fn request_from(&self, source: &str, request: &str) -> String {
        let mut stream = self.connect_from(source).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        read_all(&mut stream).await
    }

    /// Polls the stats until `done` holds; bounded.
    async fn wait_for(&self, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        for _ in 0..400 {
            let stats = self.stats.now();
            if done(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: never happened; stats {:?}", self.stats.now());
    }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

/// Everything until the peer closes, or what came before a reset (a refused
/// connection); bounded by `PATIENCE`.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed within {PATIENCE:?}: {}",
        String::from_utf8_lossy(&answer)
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_sends_no_headers_is_closed_after_the_header_timeout() {
    let server = Running::start(limits()).await;
    let mut silent = server.connect_from("127.0.0.1").await;
    // A head that never ends is treated the same way.
    let mut trickling = server.connect_from("127.0.0.1").await;
    trickling
        .write_all(b"GET / HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    assert_eq!(read_all(&mut silent).await, "", "closed without an answer");
    assert_eq!(
        read_all(&mut trickling).await,
        "",
        "closed without an answer"
    );
    let stats = server
        .wait_for("two header timeouts", |stats| stats.header_timeouts == 2)
        .await;
    assert_eq!(stats.open, 0, "{stats:?}");
    // A client that sends its request in time is answered on the same server.
    let answer = server.request_from("127.0.0.1", &get_request("/")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_full_source_is_refused_while_another_source_is_answered() {
    let server = Running::start(limits()).await;
    // 127.0.0.5 fills its cap of 3 with requests that stay in flight.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let mut stream = server.connect_from("127.0.0.5").await;
        stream
            .write_all(get_request("/hold").as_bytes())
            .await
            .unwrap();
        busy.push(stream);
    }
    for _ in 0..400 {
        if server.holding.load(Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.holding.load(Ordering::SeqCst),
        3,
        "three requests in flight"
    );
    // A fourth connection from the same source finds no idle one to replace: closed at
    // once, without an answer.
    let answer = server.request_from("127.0.0.5", &get_request("/")).await;
    assert_eq!(answer, "");
    assert_eq!(server.stats.now().refused, 1);
    // Another source is answered meanwhile.
    let answer = server
        .request_from("127.0.0.6", &get_request("/whoami"))
        .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\r\n\r\n127.0.0.6:"), "{answer}");
    // The held requests finish when released.
    server.release.notify_waiters();
    for mut stream in busy {
        let answer = read_all(&mut stream).await;
        assert!(answer.ends_with("released"), "{answer}");
    }
}

#[tokio::test]
async fn idle_connections_give_way_to_a_new_request_from_their_own_source_and_others() {
    let server = Running::start(Limits {
        header_read_timeout: Duration::from_secs(60),
        ..limits()
    })
    .await;
    // Idle connections fill the total of 8: 3 from each of 127.0.1.1 (its cap) and
    // 127.0.1.2, 2 from 127.0.1.3.
    let mut idle = Vec::new();
    for (source, count) in [("127.0.1.1", 3), ("127.0.1.2", 3), ("127.0.1.3", 2)] {
        for _ in 0..count {
            idle.push(server.connect_from(source).await);
        }
    }
    server.wait_for("eight open", |stats| stats.open == 8).await;
    // From the full source: its own longest idle connection gives way.
    let answer = server.request_from("127.0.1.1", &get_request("/")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server
        .wait_for("the answered connection gone", |stats| stats.open == 7)
        .await;
    assert_eq!(
        read_all(&mut idle[0]).await,
        "",
        "the evicted one is closed"
    );
    // The total is full again; a new source evicts the longest idle of any source
    // (127.0.1.1's second).
    idle.push(server.connect_from("127.0.1.3").await);
    server
        .wait_for("eight open again", |stats| stats.open == 8)
        .await;
    let answer = server.request_from("127.0.1.9", &get_request("/")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        read_all(&mut idle[1]).await,
        "",
        "the evicted one is closed"
    );
    let stats = server.stats.now();
    assert_eq!((stats.refused, stats.evicted), (0, 2), "{stats:?}");
}

#[tokio::test]
async fn an_oversized_body_gets_413_declared_or_chunked() {
    let server = Running::start(limits()).await;
    let body = format!("{{\"text\":\"{}\"}}", "x".repeat(2000));
    let declared = server
        .request_from(
            "127.0.0.1",
            &format!(
                "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(
        declared.ends_with(
            r#"{"error":"the request body is 2011 bytes; this server accepts at most 1000 bytes"}"#
        ),
        "{declared}"
    );
    let chunked = server
        .request_from(
            "127.0.0.1",
            &format!(
                "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        )
        .await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    // A body within the limit is served.
    let small = r#"{"text":"hi"}"#;
    let echoed = server
        .request_from(
            "127.0.0.1",
            &format!(
                "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{small}",
                small.len()
            ),
        )
        .await;
    assert!(
        echoed.starts_with("HTTP/1.1 200") && echoed.ends_with(small),
        "{echoed}"
    );
}

#[tokio::test]
async fn a_request_over_the_request_timeout_gets_503() {
    let server = Running::start(Limits {
        request_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let answer = server
        .request_from("127.0.0.1", &get_request("/sleep"))
        .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("request timeout"), "{answer}");
}

#[tokio::test]
async fn requests_carry_the_remote_address_and_shutdown_releases_the_port() {
    let mut server = Running::start(limits()).await;
    let answer = server
        .request_from("127.0.0.7", &get_request("/whoami"))
        .await;
    assert!(answer.contains("\r\n\r\n127.0.0.7:"), "{answer}");
    // An idle kept-alive connection does not hold up the shutdown.
    let mut kept = server.connect_from("127.0.0.1").await;
    kept.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(PATIENCE, &mut server.served)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(std::net::TcpListener::bind(server.address).is_ok());
}
