//! galley proxy: a Galera-aware TCP load balancer. It probes every node itself over the
//! MySQL protocol, keeps one writer (priority, then `wsrep_local_index`; sticky; with
//! several proxies, the one that the cluster's shared writer record names), balances
//! reads by least connections, sends a MySQL error packet when nothing can serve, and
//! copies bytes without allocating per packet. It depends on neither the controller nor
//! the agents: it keeps routing when they are down.

mod admin;
mod bpf;
pub mod client;
mod decider;
pub mod decision;
pub mod health;
mod listener;
mod login;
mod metrics;
pub mod packet;
mod probe;
mod splice;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod writer;

use std::sync::Arc;

use anyhow::Context as _;
pub use client::{AdminClient, AdminError};
pub use state::{BackendStatus, Proxy, ProxyStatus, Role};

/// The private parsers that the fuzz targets in fuzz/ call; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::listener::{read_packet, MAX_GREETING};
}

/// What the proxy needs besides the spec: the monitor account for probes and the
/// cluster token for admin actions.
#[derive(Clone)]
pub struct Credentials {
    pub monitor_user: String,
    pub monitor_password: String,
    pub cluster_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("monitor_user", &self.monitor_user)
            .finish_non_exhaustive()
    }
}

/// Bound listeners, so that callers (and tests) can bind port 0 and learn the address.
#[derive(Debug)]
pub struct Listeners {
    pub writer: tokio::net::TcpListener,
    pub reader: tokio::net::TcpListener,
    pub multi_writer: Option<tokio::net::TcpListener>,
    pub admin: tokio::net::TcpListener,
}

impl Listeners {
    /// Binds the addresses the spec names, with clear errors naming a taken port: the
    /// client listeners on `proxy.address`, the admin endpoint on its own address.
    pub async fn bind(proxy: &spec::ProxySpec) -> anyhow::Result<Listeners> {
        Ok(Listeners {
            writer: bind_one("writer_port", &proxy.address, proxy.writer_port).await?,
            reader: bind_one("reader_port", &proxy.address, proxy.reader_port).await?,
            multi_writer: match proxy.multi_writer_port {
                Some(port) => Some(bind_one("multi_writer_port", &proxy.address, port).await?),
                None => None,
            },
            admin: bind_admin(proxy).await?,
        })
    }
}

/// The admin endpoint's listener: `proxy.admin_address` (loopback unless set), never the
/// client-facing address, so that SQL clients cannot reach it.
pub async fn bind_admin(proxy: &spec::ProxySpec) -> anyhow::Result<tokio::net::TcpListener> {
    bind_one("admin_port", &proxy.admin_address, proxy.admin_port).await
}

async fn bind_one(
    field: &str,
    address: &str,
    port: u16,
) -> anyhow::Result<tokio::net::TcpListener> {
    let target = spec::host_port(address, port);
    tokio::net::TcpListener::bind(&target)
        .await
        .with_context(|| format!("cannot listen on {target} (proxy.{field})"))
}

/// A running proxy: its state (for reloads and tests) and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    pub proxy: Arc<Proxy>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops accepting and probing. Sessions in flight finish on their own.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Resolves when the proxy was asked to stop (by `stop` or `POST /shutdown`).
    pub async fn stopped(&self) {
        let mut receiver = self.shutdown.subscribe();
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }
}

/// Raises the soft open-files limit to the hard one and returns how many sessions it
/// leaves room for (two descriptors per session, some kept for probes and the admin).
pub fn raise_descriptor_limit() -> u32 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return u32::MAX;
    };
    // Root may raise the hard limit too (to 64Ki, enough for 32k sessions); anyone may
    // raise the soft limit to the hard one.
    const WANTED: u64 = 65_536;
    let limit = if hard < WANTED && setrlimit(Resource::RLIMIT_NOFILE, WANTED, WANTED).is_ok() {
        WANTED
    } else if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    (limit.saturating_sub(128) / 2).min(u64::from(u32::MAX)) as u32
}

/// Starts probes, listeners and the admin endpoint; returns at once. Fails only when
/// `proxy.forwarding = "kernel"` and the kernel splice cannot be loaded.
pub fn start(
    spec: &spec::ClusterSpec,
    proxy_spec: &spec::ProxySpec,
    listeners: Listeners,
    credentials: Credentials,
) -> anyhow::Result<Running> {
    let mut proxy = Proxy::new(spec, proxy_spec);
    let cap = raise_descriptor_limit();
    proxy.forwarder =
        state::Forwarder::choose(proxy_spec.forwarding, cap.min(proxy_spec.max_connections))?;
    match &proxy.forwarder {
        state::Forwarder::Kernel(_) => {
            tracing::info!("forwarding: kernel splice (sockhash + stream verdict)")
        }
        state::Forwarder::Userspace { reason } => {
            tracing::info!("forwarding: userspace copy ({reason})")
        }
    }
    let proxy = Arc::new(proxy);
    proxy
        .descriptor_cap
        .store(cap, std::sync::atomic::Ordering::Relaxed);
    if cap < proxy_spec.max_connections {
        tracing::warn!(
            "the open-files limit leaves room for {cap} sessions, fewer than proxy.max_connections = {}; clients beyond it are refused with error 1040",
            proxy_spec.max_connections
        );
    }
    let (shutdown, _) = tokio::sync::watch::channel(false);
    {
        let mut addresses = proxy.listeners.write().expect("listeners lock");
        let address =
            |listener: &tokio::net::TcpListener| listener.local_addr().ok().map(|a| a.to_string());
        addresses.writer = address(&listeners.writer);
        addresses.reader = address(&listeners.reader);
        addresses.multi_writer = listeners.multi_writer.as_ref().and_then(address);
        addresses.admin = address(&listeners.admin);
    }
    for index in 0..proxy.backends.len() {
        tokio::spawn(probe::run(
            Arc::clone(&proxy),
            index,
            credentials.monitor_user.clone(),
            credentials.monitor_password.clone(),
            shutdown.subscribe(),
        ));
    }
    if proxy.writer_decision == spec::WriterDecision::Shared {
        tokio::spawn(decider::run(
            Arc::clone(&proxy),
            credentials.monitor_user.clone(),
            credentials.monitor_password.clone(),
            shutdown.subscribe(),
        ));
    }
    tokio::spawn(listener::serve(
        Arc::clone(&proxy),
        Role::Writer,
        listeners.writer,
        shutdown.subscribe(),
    ));
    tokio::spawn(listener::serve(
        Arc::clone(&proxy),
        Role::Reader,
        listeners.reader,
        shutdown.subscribe(),
    ));
    if let Some(multi_writer) = listeners.multi_writer {
        tokio::spawn(listener::serve(
            Arc::clone(&proxy),
            Role::MultiWriter,
            multi_writer,
            shutdown.subscribe(),
        ));
    }
    let admin = admin::router(
        Arc::clone(&proxy),
        credentials.cluster_token,
        shutdown.clone(),
        admin::StatusAccess::for_listener(&listeners.admin),
    );
    let mut admin_shutdown = shutdown.subscribe();
    tokio::spawn(async move {
        let result = httpd::Server::new("proxy admin", httpd::Limits::proxy_admin())
            .serve(listeners.admin, admin, async move {
                let _ = admin_shutdown.wait_for(|stopping| *stopping).await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!("admin endpoint failed: {error}");
        }
    });
    Ok(Running { proxy, shutdown })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("0.0.0.0:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port()
    }

    /// A proxy on `address` whose nodes do not exist (its probes fail; routing is not
    /// what these tests look at), with `admin` added to its section; its admin port.
    async fn start_proxy(address: &str, admin: &str) -> (Running, u16) {
        let (writer, reader, admin_port) = (free_port(), free_port(), free_port());
        let text = format!(
            "[cluster]\nname = \"t\"\nsecrets_file = \"/tmp/s.toml\"\n\
             [proxy]\naddress = \"{address}\"\nwriter_port = {writer}\nreader_port = {reader}\nadmin_port = {admin_port}\n{admin}\n\
             [[node]]\nname = \"n1\"\naddress = \"127.0.1.9\"\ndata_dir = \"/d1\"\n"
        );
        let spec = spec::parse(std::path::Path::new("galley.toml"), &text)
            .unwrap()
            .spec;
        let proxy_spec = spec.proxy.clone().unwrap();
        let listeners = Listeners::bind(&proxy_spec).await.unwrap();
        let credentials = Credentials {
            monitor_user: "monitor".to_owned(),
            monitor_password: "unused".to_owned(),
            cluster_token: "the-token".to_owned(),
        };
        let running = start(&spec, &proxy_spec, listeners, credentials).unwrap();
        (running, admin_port)
    }

    async fn get(url: &str, token: Option<&str>) -> reqwest::StatusCode {
        let mut request = reqwest::Client::new()
            .get(url)
            .timeout(std::time::Duration::from_secs(10));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("the admin endpoint answers")
            .status()
    }

    #[tokio::test]
    async fn the_admin_endpoint_is_not_on_the_client_address() {
        let (running, admin) = start_proxy("127.0.0.2", "").await;
        let addresses = running.proxy.status().listeners;
        assert_eq!(addresses.admin, Some(format!("127.0.0.1:{admin}")));
        assert!(addresses.writer.unwrap().starts_with("127.0.0.2:"));
        // Clients reach the proxy at 127.0.0.2; the admin port there is closed.
        let refused = tokio::net::TcpStream::connect(("127.0.0.2", admin)).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        // On loopback, metrics and status are open.
        let base = format!("http://127.0.0.1:{admin}");
        assert_eq!(get(&format!("{base}/metrics"), None).await, 200);
        assert_eq!(get(&format!("{base}/status"), None).await, 200);
        running.stop();
    }

    #[tokio::test]
    async fn status_needs_the_token_where_other_hosts_reach_it() {
        let (running, admin) = start_proxy("127.0.0.2", "admin_address = \"0.0.0.0\"").await;
        let base = format!("http://127.0.0.1:{admin}");
        // Monitoring still scrapes without a token...
        assert_eq!(get(&format!("{base}/metrics"), None).await, 200);
        // ...but node addresses, states and reasons need the cluster token,
        assert_eq!(get(&format!("{base}/status"), None).await, 401);
        assert_eq!(get(&format!("{base}/status"), Some("wrong")).await, 401);
        // which the CLI's and the controller's client sends.
        let client = AdminClient::new(&format!("127.0.0.1:{admin}"), "the-token");
        let status = client.status().await.expect("status with the token");
        assert_eq!(status.listeners.admin, Some(format!("0.0.0.0:{admin}")));
        running.stop();
    }
}
