//! The API over TLS: a CA and a server certificate made with `openssl`, the server run
//! in-process on 127.0.0.1:0, and a rustls client that trusts only that CA.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use controller::api::{self, ApiListener, ApiSecrets, ApiState};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Shorter than the server's TLS handshake timeout (10 s), so that an answer within it
/// cannot be the server giving up on a handshake.
const BEFORE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS record of content type alert (21), level fatal (2), description decode_error
/// (50): RFC 8446, sections 5.1 and 6.
const TLS_ALERT_RECORD: u8 = 21;
const TLS_ALERT_FATAL: u8 = 2;
const TLS_ALERT_DECODE_ERROR: u8 = 50;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (scripts/setup-debian.sh installs it)");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

/// A CA (ca.pem) and a server certificate for localhost and 127.0.0.1 (api.pem, api.key).
pub fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=galley test CA",
    ]);
    openssl(dir, &ca);
    let mut request = vec!["req"];
    request.extend(ec);
    request.extend([
        "-keyout",
        "api.key",
        "-out",
        "api.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &request);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "api.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "api.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn spec_text(dir: &Path) -> String {
    let root = dir.display();
    let mut text = format!(
        "[cluster]\nname = \"tls\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
         [controller]\nstate_dir = \"{root}/controller\"\ntls_cert = \"{root}/api.pem\"\ntls_key = \"{root}/api.key\"\n"
    );
    for n in 1..=3 {
        text.push_str(&format!(
            "\n[[node]]\nname = \"node{n}\"\naddress = \"127.0.0.1\"\nclient_port = {}\ngalera_port = {}\n\
             ist_port = {}\nsst_port = {}\nagent_port = {}\ndata_dir = \"{root}/node{n}/data\"\n\
             run_dir = \"{root}/node{n}/run\"\nlog_dir = \"{root}/node{n}/log\"\n",
            3300 + n,
            4500 + n,
            4510 + n,
            4520 + n,
            4530 + n
        ));
    }
    text
}

/// Sends one HTTP/1.1 request over TLS and returns the whole response as text.
async fn request(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    text: &str,
) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(text.as_bytes()).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn the_api_speaks_tls_and_marks_the_cookie_secure() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let loaded = spec::parse(&dir.path().join("galley.toml"), &spec_text(dir.path())).unwrap();
    let settings = loaded.spec.controller.clone().unwrap();
    let files = settings.tls.clone().unwrap();
    let config = api::tls::server_config(&files.cert, &files.key).unwrap();
    let store = store::Store::open(&controller::store_path(&settings)).unwrap();
    api::auth::set_console_password(&store, "admin", "a long console password", 1).unwrap();
    let state = ApiState::new(
        loaded.spec.clone(),
        settings,
        ApiSecrets {
            cluster_token: "cluster-token".to_owned(),
            admin_user: "galley_admin".to_owned(),
            admin_password: "unused".to_owned(),
        },
        controller::Observations::default(),
        true,
    )
    .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = ApiListener::Tls(api::tls::TlsListener::new(tcp, config).unwrap());
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.path().join("ca.pem")).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

    let health = tokio::time::timeout(
        Duration::from_secs(30),
        request(
            &connector,
            port,
            "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("{\"ok\":true}"), "{health}");

    // A silent client that never starts its handshake does not hold up the others.
    let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The login must come back before the silent client's handshake times out (10 s):
    // otherwise the silent one held it up.
    let body = r#"{"username":"admin","password":"a long console password"}"#;
    let login = tokio::time::timeout(
        BEFORE_HANDSHAKE_TIMEOUT,
        request(
            &connector,
            port,
            &format!(
                "POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        ),
    )
    .await
    .expect("a silent client does not hold up the others")
    .unwrap();
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {login}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    // Plain HTTP on the TLS port is refused at once: rustls reads "GET " as a record of
    // no known type and answers with a fatal decode_error alert, then closes. Waiting
    // less than the server's 10 s handshake timeout tells that refusal from a server
    // that merely hangs until it gives up on the handshake.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(BEFORE_HANDSHAKE_TIMEOUT, plain.read_to_end(&mut answer))
        .await
        .expect("plain HTTP is refused, not left hanging")
        .expect("the server closes the connection after its alert");
    assert_eq!(
        (answer.first(), answer.get(5), answer.get(6)),
        (
            Some(&TLS_ALERT_RECORD),
            Some(&TLS_ALERT_FATAL),
            Some(&TLS_ALERT_DECODE_ERROR)
        ),
        "expected one fatal decode_error TLS alert, got {answer:?} ({})",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(answer.len(), 7, "nothing follows the alert: {answer:?}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    // The server released its port: it can be bound again (polled, bounded).
    let mut rebound = false;
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            rebound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rebound, "port {port} still held after shutdown");
}

#[test]
fn a_key_that_is_not_pem_is_named_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    std::fs::write(dir.path().join("bad.key"), "secret-material-not-pem").unwrap();
    let error = api::tls::server_config(&dir.path().join("api.pem"), &dir.path().join("bad.key"))
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(text.contains("bad.key"), "{text}");
    assert!(!text.contains("secret-material"), "{text}");
    let missing =
        api::tls::server_config(&dir.path().join("nope.pem"), &dir.path().join("api.key"))
            .unwrap_err();
    assert!(format!("{missing:#}").contains("nope.pem"), "{missing:#}");
}
