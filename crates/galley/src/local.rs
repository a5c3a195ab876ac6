//! A cluster's state directory (./.galley by default) and its agents: the generated local
//! spec, loading a spec and its secrets, starting agents as background daemons, and the
//! `galley agent` process itself.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent::{AgentClient, AgentError, Binaries, Secrets};
use anyhow::{bail, Context as _};
use spec::{ClusterSpec, NodeSpec};

/// Where a command finds its cluster: a state directory and the spec in it (or given).
#[derive(Debug, Clone)]
pub struct Location {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Location {
    pub fn new(dir: PathBuf, config: Option<PathBuf>) -> Location {
        let dir = absolute(&dir);
        let config = config
            .map(|path| absolute(&path))
            .unwrap_or_else(|| dir.join("galley.toml"));
        Location { dir, config }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// A loaded cluster: its spec, its secrets and a client per node agent.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub spec: ClusterSpec,
    pub secrets: Secrets,
    pub location: Location,
}

impl Cluster {
    /// Loads the spec and secrets of an existing cluster, printing spec warnings once.
    pub fn load(location: &Location, print_warnings: bool) -> anyhow::Result<Cluster> {
        if !location.config.exists() {
            bail!(
                "no cluster at {}: {} does not exist; run `galley up` to create one",
                location.dir.display(),
                location.config.display()
            );
        }
        let loaded = spec::load(&location.config)?;
        if print_warnings {
            for warning in &loaded.warnings {
                eprintln!("warning: {}: {warning}", location.config.display());
            }
        }
        let secrets = Secrets::load(&loaded.spec.secrets_file)?;
        Ok(Cluster {
            spec: loaded.spec,
            secrets,
            location: location.clone(),
        })
    }

    /// Refuses what only agents can do on a cluster that `galley import` registered.
    pub fn require_managed(&self, what: &str) -> anyhow::Result<()> {
        if self.spec.is_imported() {
            bail!(
                "cluster {} was imported (its nodes have `managed = false`): galley watches it but does not {what}; do that on the servers themselves",
                self.spec.name
            );
        }
        Ok(())
    }

    pub fn client(&self, node: &NodeSpec) -> AgentClient {
        AgentClient::new(&node.agent_address(), &self.secrets.cluster_token)
    }

    /// The reconcile engine over this cluster's agents, for commands: the operator ran
    /// the command, so no step waits for a confirmation and nothing is wiped.
    pub fn engine(&self) -> reconcile::Engine<reconcile::AgentClients> {
        let clients = self
            .spec
            .nodes
            .iter()
            .map(|node| (node.name.clone(), self.client(node)))
            .collect();
        let controller = crate::control::settings(self);
        let settings = reconcile::Settings {
            policy: planner::Policy::default(),
            stuck_after_ms: controller.stuck_after_s as i64 * 1000,
        };
        reconcile::Engine::new(
            controller::members(&self.spec),
            reconcile::AgentClients::new(clients),
            settings,
        )
    }

    /// What a command's engine needs from the controller's store (the high-water mark,
    /// the nodes stopped on purpose), when this host keeps it, and what the operator
    /// asked for.
    pub fn command_inputs(
        &self,
        create_new: bool,
        rebuild: &[String],
    ) -> anyhow::Result<reconcile::Inputs> {
        let mut inputs = reconcile::Inputs {
            operator: planner::Operator {
                create_new,
                rebuild: rebuild.to_vec(),
            },
            ..reconcile::Inputs::default()
        };
        let path = controller::store_path(&crate::control::settings(self));
        if path.exists() {
            let store = store::Store::open(&path)?;
            inputs.high_water_mark = store.high_water_mark()?.map(|mark| planner::Mark {
                uuid: mark.uuid,
                seqno: mark.seqno,
            });
            inputs.stopped_on_purpose = store.stopped_on_purpose()?;
        }
        Ok(inputs)
    }

    /// Nodes in priority order (most preferred first).
    pub fn nodes_by_priority(&self) -> Vec<&NodeSpec> {
        let mut nodes: Vec<&NodeSpec> = self.spec.nodes.iter().collect();
        nodes.sort_by_key(|node| node.priority);
        nodes
    }

    /// Makes sure every node's agent answers, starting the missing ones on this machine.
    pub async fn ensure_agents(&self) -> anyhow::Result<()> {
        for node in &self.spec.nodes {
            self.ensure_agent(node).await?;
        }
        Ok(())
    }

    pub async fn ensure_agent(&self, node: &NodeSpec) -> anyhow::Result<()> {
        let client = self.client(node);
        match client.status().await {
            Ok(report) if report.node == node.name => return Ok(()),
            Ok(report) => bail!(
                "{}'s agent_port {} is answered by the agent of node {} of this cluster; fix the ports in {}",
                node.name,
                node.agent_port,
                report.node,
                self.location.config.display()
            ),
            Err(AgentError::Unreachable { .. }) => {}
            Err(AgentError::Refused { status: 401, .. }) => bail!(
                "{}'s agent_port {} on {} is taken by the agent of another galley cluster (it does not know this cluster's token); \
                 stop that cluster, or choose other ports in {}",
                node.name,
                node.agent_port,
                node.address,
                self.location.config.display()
            ),
            Err(error) => return Err(error.into()),
        }
        if !is_local_address(&node.address) {
            bail!(
                "the agent of {} at {} does not answer, and it runs on another host; start it there",
                node.name,
                node.agent_address()
            );
        }
        let log_path = node.log_dir.join("agent.log");
        let config = self.location.config.as_os_str();
        let mut child = spawn_daemon(
            &[
                "agent".as_ref(),
                "--config".as_ref(),
                config,
                "--node".as_ref(),
                node.name.as_ref(),
            ],
            &log_path,
        )?;
        for _ in 0..200 {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the agent of {} exited at once ({status}); its log {} says:\n{}",
                    node.name,
                    log_path.display(),
                    tail(&log_path, 6)
                );
            }
            if client.status().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the agent of {} did not answer within 10 s; see {}",
            node.name,
            log_path.display()
        )
    }
}

/// Starts `galley ARGS` in the background, in its own process group (it outlives this
/// command and ignores its Ctrl-C), with its output appended to `log_path`.
pub fn spawn_daemon(
    args: &[&std::ffi::OsStr],
    log_path: &Path,
) -> anyhow::Result<std::process::Child> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let executable = std::env::current_exe().context("cannot find the galley executable")?;
    std::process::Command::new(executable)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start `galley {}`",
                args.first()
                    .map(|a| a.to_string_lossy())
                    .unwrap_or_default()
            )
        })
}

pub use spec::is_local_address;

pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The spec `galley up` writes for a new local cluster: three nodes on 127.0.0.1, on
/// ports clear of a MySQL server on 3306, everything under the state directory.
pub fn local_spec_text(dir: &Path, offset: u16) -> String {
    let dir = dir.display();
    let mut text = format!(
        "# galley cluster spec, written by `galley up`. Edit and run `galley up` again.\n\
         [cluster]\n\
         name = \"galley\"\n\
         secrets_file = \"{dir}/secrets.toml\"\n\
         \n\
         [server]\n\
         # Sized for three nodes sharing one machine.\n\
         buffer_pool_size = \"128M\"\n\
         log_file_size = \"48M\"\n\
         gcache_size = \"128M\"\n\
         max_connections = 1000\n\
         innodb_flush_log_at_trx_commit = 1\n\
         sst_method = \"rsync\"\n\
         \n\
         [proxy]\n\
         # Applications connect here: one writer node, reads balanced over healthy nodes.\n\
         address = \"127.0.0.1\"\n\
         writer_port = {writer}\n\
         reader_port = {reader}\n\
         admin_port = {admin}\n\
         \n\
         [controller]\n\
         # Watches every node, keeps the history and heals the cluster by itself;\n\
         # serves the web console and REST API on address:port.\n\
         state_dir = \"{dir}/controller\"\n\
         address = \"127.0.0.1\"\n\
         port = {console}\n",
        writer = 13306 + offset,
        reader = 13307 + offset,
        admin = 13380 + offset,
        console = 13390 + offset,
    );
    for index in 1..=3 {
        text.push_str(&format!(
            "\n[[node]]\n\
             name = \"node{index}\"\n\
             address = \"127.0.0.1\"\n\
             client_port = {client}\n\
             galera_port = {galera}\n\
             ist_port = {ist}\n\
             sst_port = {sst}\n\
             agent_port = {agent}\n\
             data_dir = \"{dir}/node{index}/data\"\n\
             run_dir = \"{dir}/node{index}/run\"\n\
             log_dir = \"{dir}/node{index}/log\"\n",
            client = 13300 + offset + index,
            galera = 14560 + offset + index,
            ist = 14570 + offset + index,
            sst = 14440 + offset + index,
            agent = 14580 + offset + index,
        ));
    }
    text
}

/// Creates a new local cluster's state directory: galley.toml and the secrets file.
/// Checks the software first, so that a machine without MariaDB gets nothing half-made.
pub fn create_local(location: &Location) -> anyhow::Result<()> {
    // Another local cluster (or anything else) may hold the default ports: take the
    // first block of ports that is wholly free, so clusters in different directories
    // can run side by side.
    let mut chosen = None;
    for offset in (0..10).map(|step| step * 100) {
        let text = local_spec_text(&location.dir, offset);
        let loaded = spec::parse(&location.config, &text)?;
        if all_ports_free(&loaded.spec) {
            chosen = Some((text, loaded));
            break;
        }
        if offset == 0 {
            eprintln!("note: galley's default local ports are in use; looking for a free block");
        }
    }
    let Some((text, loaded)) = chosen else {
        bail!("no free block of local ports found (tried 13301-14583 and nine blocks above, 100 apart); stop other clusters with `galley down --dir ...`");
    };
    Binaries::locate(&loaded.spec)?;
    std::fs::create_dir_all(&location.dir)
        .with_context(|| format!("cannot create {}", location.dir.display()))?;
    // mariadbd runs as its own OS user and must be able to pass through to its dirs.
    std::fs::set_permissions(
        &location.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Secrets::load_or_create(&loaded.spec.secrets_file)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&location.config)
        .with_context(|| format!("cannot create {}", location.config.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The proxy's log directory for a local cluster.
pub fn proxy_dir(location: &Location) -> PathBuf {
    location.dir.join("proxy")
}

impl Cluster {
    pub fn proxy_admin(&self) -> Option<proxy::AdminClient> {
        self.spec
            .proxy
            .as_ref()
            .map(|proxy| proxy::AdminClient::for_spec(proxy, &self.secrets.cluster_token))
    }

    /// Starts the local proxy as a daemon if the spec has one and it does not answer.
    pub async fn ensure_proxy(&self) -> anyhow::Result<()> {
        let (Some(proxy), Some(admin)) = (&self.spec.proxy, self.proxy_admin()) else {
            return Ok(());
        };
        if admin.status().await.is_ok() {
            return Ok(());
        }
        if !is_local_address(&proxy.address) {
            bail!(
                "the proxy at {} does not answer, and it runs on another host; start it there",
                proxy.address
            );
        }
        let log_path = proxy_dir(&self.location).join("proxy.log");
        let mut child = spawn_daemon(
            &[
                "proxy".as_ref(),
                "--config".as_ref(),
                self.location.config.as_os_str(),
            ],
            &log_path,
        )?;
        for _ in 0..200 {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the proxy exited at once ({status}); its log {} says:\n{}",
                    log_path.display(),
                    tail(&log_path, 6)
                );
            }
            if admin.status().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the proxy did not answer within 10 s; see {}",
            log_path.display()
        )
    }
}

/// `galley proxy`: routes until SIGINT or SIGTERM (or `POST /shutdown`); SIGHUP reloads
/// galley.toml without touching established sessions.
pub async fn run_proxy(config: &Path) -> anyhow::Result<std::process::ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
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

fn all_ports_free(spec: &ClusterSpec) -> bool {
    let node_ports = spec
        .nodes
        .iter()
        .all(|node| agent::ports::taken_ports(&node.address, &node.ports()).is_empty());
    let proxy_ports = spec.proxy.as_ref().is_none_or(|proxy| {
        let ports = [
            ("writer_port", proxy.writer_port),
            ("reader_port", proxy.reader_port),
            ("admin_port", proxy.admin_port),
        ];
        agent::ports::taken_ports(&proxy.address, &ports).is_empty()
    });
    let controller_port = spec.controller.as_ref().is_none_or(|controller| {
        agent::ports::taken_ports(&controller.address, &[("port", controller.port)]).is_empty()
    });
    node_ports && proxy_ports && controller_port
}

/// Writes `<dir>/client.cnf` (mode 0600) so that `mariadb --defaults-extra-file=...`
/// logs in as the admin without a password on the command line.
pub fn write_client_config(cluster: &Cluster, node: &NodeSpec) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = cluster.location.dir.join("client.cnf");
    let text = format!(
        "# Written by galley: the admin account of cluster {}. Keep private.\n[client]\nuser = {}\npassword = {}\nhost = {}\nport = {}\n",
        cluster.spec.name,
        agent::secrets::ADMIN_USER,
        cluster.secrets.admin_password,
        node.address,
        node.client_port
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(path)
}

/// `galley agent`: serves one node until SIGINT or SIGTERM, or until asked to exit.
/// Stopping the agent leaves mariadbd running; the next agent adopts it.
pub async fn run_agent(config: &Path, node_name: &str) -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
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
