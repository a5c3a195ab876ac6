//! galley proxy: a Galera-aware TCP load balancer. It probes every node itself over the
//! MySQL protocol, keeps one writer (priority, then `wsrep_local_index`; sticky), balances
//! reads by least connections, sends a MySQL error packet when nothing can serve, and
//! copies bytes without allocating per packet. It depends on neither the controller nor
//! the agents: it keeps routing when they are down.

mod admin;
mod bpf;
pub mod client;
pub mod health;
mod listener;
mod metrics;
pub mod packet;
mod probe;
mod splice;
pub mod state;
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
    /// Binds the addresses the spec names, with clear errors naming a taken port.
    pub async fn bind(proxy: &spec::ProxySpec) -> anyhow::Result<Listeners> {
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
        Ok(Listeners {
            writer: bind_one("writer_port", &proxy.address, proxy.writer_port).await?,
            reader: bind_one("reader_port", &proxy.address, proxy.reader_port).await?,
            multi_writer: match proxy.multi_writer_port {
                Some(port) => Some(bind_one("multi_writer_port", &proxy.address, port).await?),
                None => None,
            },
            admin: bind_one("admin_port", &proxy.address, proxy.admin_port).await?,
        })
    }
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
    );
    let mut admin_shutdown = shutdown.subscribe();
    tokio::spawn(async move {
        let result = axum::serve(listeners.admin, admin)
            .with_graceful_shutdown(async move {
                let _ = admin_shutdown.wait_for(|stopping| *stopping).await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!("admin endpoint failed: {error}");
        }
    });
    Ok(Running { proxy, shutdown })
}
