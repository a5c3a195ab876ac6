//! The `galley agent` and `galley proxy` processes: the daemons that the `local` crate
//! starts for a local cluster (and a deployment's units run on hosts); `galley
//! arbitrator`, which becomes garbd on an arbitrator's host; and the logging that every
//! daemon, `galley controller` too, sets up.

use std::path::Path;

use agent::Secrets;
use anyhow::{bail, Context as _};

/// How the daemons write their logs (`--log-format`, or `GALLEY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event for people.
    #[default]
    Text,
    /// One JSON object per line for log collectors, with stable field names: `timestamp`
    /// (RFC 3339, UTC), `level`, `target`, `message` and the event's own fields at the
    /// top level (docs/metrics.md, "Logs").
    Json,
}

/// The daemons' logging flag, shared by `galley agent`, `proxy` and `controller`.
#[derive(Debug, Clone, clap::Args)]
pub struct Logging {
    /// Log lines as text or as JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "GALLEY_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Logs of the daemons (`galley agent`, `proxy`, `controller`) to stderr, `info` unless
/// RUST_LOG says otherwise.
pub(crate) fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// `galley proxy`: routes until SIGINT or SIGTERM (or `POST /shutdown`); SIGHUP reloads
/// galley.toml without touching established sessions.
pub async fn run_proxy(config: &Path, logging: &Logging) -> anyhow::Result<std::process::ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    init_logging(logging.log_format);
    let loaded = spec::load(config)?;
    let Some(proxy_spec) = loaded.spec.proxy.clone() else {
        bail!(
            "{} has no [proxy] section; add one, for example:\n[proxy]\naddress = \"127.0.0.1\"\nwriter_port = 3306\nreader_port = 3307\nadmin_port = 4590",
            config.display()
        );
    };
    let secrets = Secrets::load(&loaded.spec.secrets_file)?;
    let listeners = proxy::Listeners::bind(&proxy_spec).await?;
    let running = proxy::start(
        &loaded.spec,
        &proxy_spec,
        listeners,
        proxy::Credentials {
            monitor_user: agent::secrets::MONITOR_USER.to_owned(),
            monitor_password: secrets.monitor_password.clone(),
            cluster_token: secrets.cluster_token.clone(),
        },
    )?;
    let status = running.proxy.status();
    tracing::info!(writer = ?status.listeners.writer, reader = ?status.listeners.reader, admin = ?status.listeners.admin, "proxy listening");
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => match spec::load(config) {
                Ok(reloaded) => match &reloaded.spec.proxy {
                    Some(new_proxy) => {
                        for note in running.proxy.reload(&reloaded.spec, new_proxy) {
                            tracing::warn!("reload: {note}");
                        }
                        if new_proxy.writer_port != proxy_spec.writer_port || new_proxy.reader_port != proxy_spec.reader_port
                            || new_proxy.admin_port != proxy_spec.admin_port || new_proxy.address != proxy_spec.address
                            || new_proxy.admin_address != proxy_spec.admin_address
                            || new_proxy.multi_writer_port != proxy_spec.multi_writer_port {
                            tracing::warn!("reload: listener addresses changed; restart the proxy to apply them");
                        }
                        if new_proxy.forwarding != proxy_spec.forwarding {
                            tracing::warn!("reload: proxy.forwarding changed; restart the proxy to apply it");
                        }
                        tracing::info!("reloaded {}", config.display());
                    }
                    None => tracing::error!("reload refused: {} has no [proxy] section now", config.display()),
                },
                Err(error) => tracing::error!("reload refused, keeping the running configuration: {error}"),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            () = running.stopped() => break,
        }
    }
    running.stop();
    tracing::info!("proxy stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

/// `galley agent`: serves one node until SIGINT or SIGTERM, or until asked to exit.
/// Stopping the agent leaves mariadbd running; the next agent adopts it.
pub async fn run_agent(
    config: &Path,
    node_name: &str,
    logging: &Logging,
) -> anyhow::Result<std::process::ExitCode> {
    init_logging(logging.log_format);
    let loaded = spec::load(config)?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", config.display());
    }
    let secrets = Secrets::load(&loaded.spec.secrets_file)?;
    let server = agent::Server::new(loaded.spec, node_name, secrets).await?;
    let address = server.node().agent_address();
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            let owner = agent::ports::owner_of_port(server.node().agent_port)
                .map(|owner| format!(" (in use by {owner})"))
                .unwrap_or_default();
            format!("cannot listen on {address}{owner}")
        })?;
    tracing::info!(node = node_name, %address, "agent listening");
    let shutdown = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    agent::serve(listener, server, shutdown).await?;
    tracing::info!("agent stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

/// `galley arbitrator`: replaces this process with garbd for arbitrator `name` of the
/// spec, so that systemd or galley-supervise watch garbd itself. Its command line comes
/// from the validated spec alone (`ArbitratorSpec::garbd_args`), with no secret on it.
pub fn run_arbitrator(config: &Path, name: &str) -> anyhow::Result<std::process::ExitCode> {
    use std::os::unix::process::CommandExt as _;
    let loaded = spec::load(config)?;
    let spec = loaded.spec;
    let Some(arbitrator) = spec.arbitrator(name) else {
        let names: Vec<&str> = spec.arbitrators.iter().map(|a| a.name.as_str()).collect();
        bail!(
            "{} has no arbitrator named `{name}`; arbitrators: {}",
            config.display(),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
    };
    let garbd = local::arbitrator::locate_garbd()?;
    for dir in [&arbitrator.log_dir, &arbitrator.run_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let error = std::process::Command::new(&garbd)
        .args(arbitrator.garbd_args(&spec))
        .exec();
    Err(error).with_context(|| format!("cannot run {}", garbd.display()))
}
