//! The API is served through `httpd`: a silent client is closed after the header timeout
//! (over TLS too, where the handshake counts against it), idle connections from one
//! source give way to an authenticated request from that source or another, and an
//! oversized body gets 413 in the API's error shape.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use controller::api::{self, ApiListener, ApiSecrets, ApiState};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Far longer than the limits below, far shorter than a hung test.
const PATIENCE: Duration = Duration::from_secs(20);

const TOKEN: &str = "cluster-token";

fn limits() -> httpd::Limits {
    httpd::Limits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 16,
        max_connections_per_source: 4,
        ..httpd::Limits::controller_api()
    }
}

struct Running {
    address: SocketAddr,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn spec_text(dir: &Path, tls: bool) -> String {
    let root = dir.display();
    let tls = if tls {
        format!("tls_cert = \"{root}/api.pem\"\ntls_key = \"{root}/api.key\"\n")
    } else {
        String::new()
    };
    format!(
        "[cluster]\nname = \"limits\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
         [controller]\nstate_dir = \"{root}/controller\"\n{tls}\n\
         [[node]]\nname = \"node1\"\naddress = \"127.0.0.1\"\nclient_port = 3301\ngalera_port = 4501\n\
         ist_port = 4511\nsst_port = 4521\nagent_port = 4531\ndata_dir = \"{root}/node1/data\"\n\
         run_dir = \"{root}/node1/run\"\nlog_dir = \"{root}/node1/log\"\n"
    )
}

async fn start(limits: httpd::Limits, tls: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    if tls {
        crate::tls::make_certificates(dir.path());
    }
    let loaded = spec::parse(&dir.path().join("galley.toml"), &spec_text(dir.path(), tls)).unwrap();
    let settings = loaded.spec.controller.clone().unwrap();
    let state = ApiState::new(
        loaded.spec.clone(),
        settings.clone(),
        ApiSecrets {
            cluster_token: TOKEN.to_owned(),
            admin_user: "galley_admin".to_owned(),
            admin_password: "unused".to_owned(),
        },
        controller::Observations::default(),
        tls,
    )
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let listener = match &settings.tls {
        Some(files) => {
            let config = api::tls::server_config(&files.cert, &files.key).unwrap();
            ApiListener::Tls(api::tls::TlsListener::new(tcp, config).unwrap())
        }
        None => ApiListener::Plain(tcp),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve_with(listener, state, limits, async {
        let _ = stopped.await;
    }));
    Running {
        address,
        _dir: dir,
        _stop: stop,
    }
}

async fn connect_from(address: SocketAddr, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(address).await.unwrap()
}

/// Everything until the server closes (or resets); bounded.
async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server neither answered nor closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn request_from(address: SocketAddr, source: &str, request: &str) -> String {
    let mut stream = connect_from(address, source).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_all(&mut stream).await
}

fn authenticated_get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_header_timeout_in_plain_text_and_over_tls() {
    for tls in [false, true] {
        let server = start(limits(), tls).await;
        let mut silent = connect_from(server.address, "127.0.0.1").await;
        // The server closes without a byte (no TLS alert either: no handshake began).
        assert_eq!(read_all(&mut silent).await, "", "tls: {tls}");
    }
}

#[tokio::test]
async fn idle_connections_from_one_source_do_not_keep_an_authenticated_request_out() {
    let server = start(
        httpd::Limits {
            header_read_timeout: Duration::from_secs(120),
            ..limits()
        },
        false,
    )
    .await;
    // 127.0.0.5 opens twice its cap of idle connections, and other sources fill the
    // total of 16.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from(server.address, "127.0.0.5").await);
    }
    for source in ["127.0.0.6", "127.0.0.7", "127.0.0.8"] {
        for _ in 0..4 {
            idle.push(connect_from(server.address, source).await);
        }
    }
    // From the flooding source itself and from a new one, the authenticated request
    // is answered.
    for source in ["127.0.0.5", "127.0.0.9"] {
        let answer =
            request_from(server.address, source, &authenticated_get("/api/v1/events")).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "from {source}: {answer}"
        );
    }
    // The first four of 127.0.0.5's were closed to make room for its next four.
    for stream in &mut idle[..4] {
        assert_eq!(read_all(stream).await, "");
    }
}

#[tokio::test]
async fn an_oversized_body_gets_413_in_the_api_error_shape() {
    let server = start(limits(), false).await;
    let limit = limits().max_body_bytes;
    let body = format!(
        "{{\"username\":\"admin\",\"password\":\"{}\"}}",
        "x".repeat(limit)
    );
    let declared = request_from(
        server.address,
        "127.0.0.1",
        &format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(
        declared.contains(&format!("this server accepts at most {limit} bytes")),
        "{declared}"
    );
    let chunked = request_from(
        server.address,
        "127.0.0.1",
        &format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(
        chunked.ends_with(&format!(
            "{{\"error\":\"the request body is over this server's limit of {limit} bytes\"}}"
        )),
        "{chunked}"
    );
}
