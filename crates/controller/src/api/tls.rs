//! TLS for the API: the listener and each connection's handshake, which `httpd` runs in
//! the connection's own task (a slow or silent client cannot hold up the others), with
//! rustls and its ring provider.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client must finish its handshake within this time; `httpd`'s first-request header
/// timeout, which starts at accept too, is shorter by default.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a PEM certificate chain and private key into a server configuration.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    // The key's parse error could quote it: say only which file was wrong.
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        anyhow::anyhow!(
            "cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1) from {}",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("the TLS provider offers no protocol version")?
    .with_no_client_auth()
    .with_single_cert(certificates, private_key)
    .with_context(|| {
        format!(
            "the TLS key {} does not suit the certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The API's TCP listener with the TLS configuration for its connections. Each handshake
/// runs in its connection's own task, after `httpd`'s connection caps admitted it and
/// under its first-request header timeout (which bounds a silent client), so a slow or
/// silent client cannot hold up the others.
#[derive(Debug)]
pub struct TlsListener {
    pub(crate) listener: TcpListener,
    pub(crate) handshake: TlsHandshake,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        Ok(TlsListener {
            listener,
            handshake: TlsHandshake(TlsAcceptor::from(config)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The TLS handshake of one connection, for `httpd`.
#[derive(Clone)]
pub struct TlsHandshake(TlsAcceptor);

impl std::fmt::Debug for TlsHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsHandshake")
    }
}

impl httpd::Handshake for TlsHandshake {
    type Io = TlsStream<TcpStream>;

    async fn handshake(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.0.accept(stream)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(error)) => {
                tracing::debug!(%remote, "TLS handshake failed: {error}");
                Err(error)
            }
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the TLS handshake timed out",
            )),
        }
    }
}
