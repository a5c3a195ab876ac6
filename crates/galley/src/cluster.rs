//! Whole-cluster and per-node operations: `up`, `down`, `start`, `stop`. They act only
//! through the agents, and bring nodes up only through the reconcile engine
//! (`reconcile::bring`), which asks the planner: no bootstrap choice is made here.

use std::process::ExitCode;
use std::time::Duration;

use agent::api::NodeReport;
use agent::AgentError;
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use local::controller_daemon;
use local::{Cluster, Location};
use reconcile::{Goal, Limits, SystemClock};
use spec::NodeSpec;
use tokio::time::Instant;

/// A spinner on a terminal, plain lines otherwise (CI logs, pipes).
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar }
    }

    pub(crate) fn step(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    pub(crate) fn done(&self, message: impl AsRef<str>) {
        if self.bar.is_hidden() {
            println!("{}", message.as_ref());
        } else {
            self.bar.println(message.as_ref());
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl reconcile::Progress for Progress {
    fn step(&self, text: &str) {
        Progress::step(self, text);
    }

    fn done(&self, text: &str) {
        Progress::done(self, text);
    }
}

pub async fn up(
    location: &Location,
    detach: bool,
    rebuild: &[String],
    arbitrator: bool,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let created = !location.config.exists();
    if created {
        let topology = if arbitrator {
            local::LocalTopology::TwoNodesAndArbitrator
        } else {
            local::LocalTopology::ThreeNodes
        };
        local::create_local(location, topology)?;
        println!("Created a new cluster in {}", location.dir.display());
    } else {
        if arbitrator && spec::load(&location.config)?.spec.arbitrators.is_empty() {
            bail!(
                "--arbitrator chooses the topology of a new cluster, but {} already describes one without an arbitrator; add an [[arbitrator]] section to it (docs/arbitrator.md) or use another --dir",
                location.config.display()
            );
        }
        create_secrets_for_new_cluster(location)?;
    }
    issue_certificates(location)?;
    let new_console_password = console_admin_password(location)?;
    let cluster = Cluster::load(location, true)?;
    if cluster.spec.is_imported() {
        return crate::import::up_imported(&cluster, new_console_password.as_deref()).await;
    }
    agent::Binaries::locate(&cluster.spec)?;
    if !cluster.spec.arbitrators.is_empty() {
        local::arbitrator::locate_garbd()?;
    }
    if let Some(remote) = cluster
        .spec
        .arbitrators
        .iter()
        .find(|arbitrator| !spec::is_local_address(&arbitrator.address))
    {
        bail!(
            "`galley up` runs a cluster on this machine, but arbitrator {} is at {}; use a spec whose arbitrators are on 127.0.0.1",
            remote.name,
            remote.address
        );
    }
    if let Some(remote) = cluster
        .spec
        .nodes
        .iter()
        .find(|node| !spec::is_local_address(&node.address))
    {
        bail!(
            "`galley up` runs a cluster on this machine, but node {} is at {}; use a spec whose nodes are on 127.0.0.1",
            remote.name,
            remote.address
        );
    }
    let progress = Progress::new();
    progress.step("starting agents");
    for name in rebuild {
        find_node(&cluster, name)?;
    }
    cluster.ensure_agents().await?;
    // One actor at a time: a controller from an earlier `up` pauses while this one
    // brings the nodes in, and starts again below.
    controller_daemon::stop_controller(&cluster).await?;
    for node in &cluster.spec.nodes {
        controller::set_desired(&cluster.spec, &node.name, true)?;
    }
    // No data node in a Primary component: the nodes will be bootstrapped, and a garbd
    // that outlived them keeps a group of its own that would meet the new cluster
    // (docs/arbitrator.md, "garbd alone"). It holds nothing: stop it now, start it after.
    if !cluster.spec.arbitrators.is_empty() && !any_primary(&cluster).await {
        for name in local::arbitrator::stop_arbitrators(&cluster).await? {
            progress.done(format!(
                "{name}: garbd stopped until the data nodes are back (no data node is in a Primary component)"
            ));
        }
    }
    let mut result = bring_up(&cluster, &progress, rebuild).await;
    // garbd joins a Primary component of data nodes; it cannot form one by itself.
    if result.is_ok() && !cluster.spec.arbitrators.is_empty() {
        progress.step("starting the arbitrators (garbd)");
        result = local::arbitrator::ensure_arbitrators(&cluster).await;
    }
    // The proxy starts once the nodes are Synced, so that its first writer is the
    // preferred node rather than whichever node was not donating during the joins.
    if result.is_ok() && cluster.spec.proxy.is_some() {
        progress.step("starting the proxy");
        result = cluster.ensure_proxy().await;
    }
    // The controller starts last: while `up` brings nodes in, it is the only actor.
    if result.is_ok() && cluster.spec.controller.is_some() {
        progress.step("starting the controller");
        result = controller_daemon::ensure_controller(&cluster).await;
    }
    progress.finish();
    result?;
    let arbitrators = match cluster.spec.arbitrators.len() {
        0 => String::new(),
        count => format!(" and {count} arbitrator(s) in the view"),
    };
    println!(
        "\nCluster {} is up: {} nodes Synced{arbitrators} in {:.1} s.\n",
        cluster.spec.name,
        cluster.spec.nodes.len(),
        started.elapsed().as_secs_f64()
    );
    let reports = crate::status::collect(&cluster).await;
    crate::status::print_table(&reports);
    let arbitrators = crate::status::collect_arbitrators(&cluster, &reports).await;
    crate::status::print_arbitrators(&arbitrators);
    print_connection_help(&cluster)?;
    print_console_help(&cluster, new_console_password.as_deref());
    if detach {
        println!(
            "\nThe cluster keeps running. Stop it with: galley down{}",
            dir_flag(location)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nPress Ctrl-C to stop the cluster gracefully (or run with --detach to leave it running)."
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!();
    down(location).await
}

/// A hand-written galley.toml comes without secrets: generate them, but only for a
/// cluster that has no data yet (existing data holds accounts made with the old ones).
fn create_secrets_for_new_cluster(location: &Location) -> anyhow::Result<()> {
    let loaded = spec::load(&location.config)?;
    if loaded.spec.secrets_file.exists() {
        return Ok(());
    }
    if let Some(node) = loaded
        .spec
        .nodes
        .iter()
        .find(|node| node.data_dir.join("mysql").exists())
    {
        bail!(
            "the secrets file {} is missing, but {} already has data whose accounts were made with it; restore the file",
            loaded.spec.secrets_file.display(),
            node.name
        );
    }
    agent::Binaries::locate(&loaded.spec)?;
    agent::Secrets::load_or_create(&loaded.spec.secrets_file)?;
    println!(
        "Generated secrets in {}",
        loaded.spec.secrets_file.display()
    );
    Ok(())
}

/// With `[tls]` on: the cluster CA and every certificate the spec needs, issued where
/// they are missing (docs/tls.md). Keys are never printed; only where they are.
fn issue_certificates(location: &Location) -> anyhow::Result<()> {
    let loaded = spec::load(&location.config)?;
    let Some(tls) = &loaded.spec.tls else {
        return Ok(());
    };
    let issued = certs::ensure(&loaded.spec, time::OffsetDateTime::now_utc())
        .context("cannot issue the cluster's TLS certificates")?;
    if issued.new_ca {
        println!("Generated the cluster CA in {}", tls.dir.display());
    }
    if !issued.leaves.is_empty() {
        println!(
            "Issued TLS certificates ({}) in {}",
            issued.leaves.join(", "),
            tls.dir.display()
        );
    }
    Ok(())
}

fn dir_flag(location: &Location) -> String {
    let default = std::env::current_dir()
        .map(|cwd| cwd.join(".galley"))
        .unwrap_or_default();
    if location.dir == default {
        String::new()
    } else {
        format!(" --dir {}", location.dir.display())
    }
}

/// Generates the console admin's password into the secrets file on the first `up` of a
/// cluster with a controller; returns it when it is new, to be shown once.
fn console_admin_password(location: &Location) -> anyhow::Result<Option<String>> {
    let loaded = spec::load(&location.config)?;
    if loaded.spec.controller.is_none() {
        return Ok(None);
    }
    agent::Secrets::ensure_console_admin_password(&loaded.spec.secrets_file)
}

pub(crate) fn print_console_help(cluster: &Cluster, new_password: Option<&str>) {
    let Some(settings) = &cluster.spec.controller else {
        return;
    };
    println!(
        "Web console and REST API: {}  (user admin)",
        controller_daemon::console_url(settings)
    );
    match new_password {
        Some(password) => println!(
            "  admin password (shown only this once; it is kept in {}):\n  {password}",
            cluster.spec.secrets_file.display()
        ),
        None => println!(
            "  the admin password is console_admin_password in {} (change it with `galley controller --config {} --set-admin-password`)",
            cluster.spec.secrets_file.display(),
            cluster.location.config.display()
        ),
    }
}

fn print_connection_help(cluster: &Cluster) -> anyhow::Result<()> {
    let first = cluster.nodes_by_priority()[0];
    let client_config = local::write_client_config(cluster, first)?;
    println!(
        "\nConnect with the mariadb client (the admin password is read from a file, not typed):"
    );
    println!(
        "  mariadb --defaults-extra-file={}",
        client_config.display()
    );
    println!("or, as root on this machine, through a node's unix socket:");
    println!(
        "  mariadb --socket={} -u root",
        first.socket_path().display()
    );
    println!("Nodes listen on:");
    for node in &cluster.spec.nodes {
        println!("  {:<8} {}:{}", node.name, node.address, node.client_port);
    }
    if let Some(proxy) = &cluster.spec.proxy {
        println!("Applications connect through the proxy:");
        println!(
            "  writer  {}   (one writer node; use this for OpenStack services)",
            spec::host_port(&proxy.address, proxy.writer_port)
        );
        println!(
            "  reader  {}   (reads balanced over healthy nodes)",
            spec::host_port(&proxy.address, proxy.reader_port)
        );
        if let Some(port) = proxy.multi_writer_port {
            println!("  multi-writer  {}", spec::host_port(&proxy.address, port));
        }
        println!(
            "  admin   http://{}/status and /metrics",
            proxy.admin_endpoint()
        );
    }
    println!(
        "Secrets (cluster token, admin and monitor passwords): {}",
        cluster.spec.secrets_file.display()
    );
    Ok(())
}

/// Whether any data node's agent reports it running in a Primary component.
async fn any_primary(cluster: &Cluster) -> bool {
    for node in &cluster.spec.nodes {
        let primary = cluster.client(node).status().await.is_ok_and(|report| {
            report.process.running
                && report
                    .wsrep
                    .as_ref()
                    .is_some_and(galera::WsrepStatus::is_primary)
        });
        if primary {
            return true;
        }
    }
    false
}

async fn reports(cluster: &Cluster) -> anyhow::Result<Vec<(NodeSpec, NodeReport)>> {
    let mut all = Vec::new();
    for node in cluster.nodes_by_priority() {
        let report = cluster.client(node).status().await?;
        all.push((node.clone(), report));
    }
    Ok(all)
}

/// Brings every node to Synced through the engine: joins stopped nodes to a running
/// Primary component, or creates a new cluster, or bootstraps an existing one from the
/// node the planner chooses.
async fn bring_up(
    cluster: &Cluster,
    progress: &Progress,
    rebuild: &[String],
) -> anyhow::Result<()> {
    for (node, report) in reports(cluster).await? {
        if let Some(error) = &report.grastate_error {
            bail!(
                "cannot bring up {}: {error}. Fix or remove the file, then run galley up again",
                node.name
            );
        }
    }
    let inputs = cluster.command_inputs(true, rebuild)?;
    bring(cluster, Goal::AllSynced, None, inputs, progress).await
}

/// Acts through the engine until `goal` holds (`only`: on that node alone), with the
/// command's progress on the terminal.
pub(crate) async fn bring(
    cluster: &Cluster,
    goal: Goal,
    only: Option<String>,
    inputs: reconcile::Inputs,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut engine = cluster.engine();
    reconcile::bring(
        &mut engine,
        &goal,
        only,
        inputs,
        &Limits::default(),
        progress,
        &SystemClock,
    )
    .await?;
    Ok(())
}

pub async fn down(location: &Location) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(location, false)?;
    // The controller goes first, or it would heal the nodes being stopped on purpose.
    if controller_daemon::stop_controller(&cluster).await? {
        println!("controller: stopped");
    }
    if cluster.spec.is_imported() {
        println!(
            "Cluster {} was imported: its nodes keep running (galley does not stop servers it did not deploy).",
            cluster.spec.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    // The proxy next: clients are refused at once instead of meeting dying nodes.
    if let Some(admin) = cluster.proxy_admin() {
        if admin.status().await.is_ok() {
            admin.shutdown().await?;
            println!("proxy: stopped");
        }
    }
    // The arbitrators before the data nodes: with garbd still in the group, the last
    // data node to leave would not be its last member, and none would be marked
    // safe_to_bootstrap (docs/arbitrator.md).
    for name in local::arbitrator::stop_arbitrators(&cluster).await? {
        println!("{name}: garbd stopped");
    }
    let mut order = cluster.nodes_by_priority();
    // The most preferred node leaves last, so it is the one marked safe_to_bootstrap.
    order.reverse();
    let mut last_stopped = None;
    for node in order {
        let client = cluster.client(node);
        let running = match client.status().await {
            Ok(report) => report.process.running,
            Err(AgentError::Unreachable { .. }) => {
                // The agent may be gone while its mariadbd still runs: a new agent adopts it.
                if node.pid_file().exists() {
                    cluster.ensure_agent(node).await?;
                    client.status().await?.process.running
                } else {
                    println!("{}: agent not running, nothing to stop", node.name);
                    continue;
                }
            }
            Err(error) => return Err(error.into()),
        };
        if running {
            print!("{}: stopping... ", node.name);
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            let stopped = Instant::now();
            let response = while_stopping(&node.name, client.shutdown()).await?;
            match response.killed_after_s {
                Some(deadline) => println!("{}", killed_note(&node.name, deadline)),
                None => println!("stopped in {:.1} s", stopped.elapsed().as_secs_f64()),
            }
            if let Some(state) = response.grastate {
                if state.safe_to_bootstrap {
                    last_stopped = Some((node.name.clone(), state.seqno));
                }
            }
        } else {
            client.shutdown().await?;
            println!("{}: already stopped", node.name);
        }
    }
    match last_stopped {
        Some((name, seqno)) => println!("Cluster {} is down; {name} holds the last state (seqno {seqno}) and is marked safe to bootstrap.", cluster.spec.name),
        None => println!("Cluster {} is down.", cluster.spec.name),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn start_node(location: &Location, name: &str) -> anyhow::Result<ExitCode> {
    check_node_name(location, name)?;
    let cluster = Cluster::load(location, true)?;
    cluster.require_managed("start its nodes")?;
    let node = find_node(&cluster, name)?.clone();
    agent::Binaries::locate(&cluster.spec)?;
    controller::set_desired(&cluster.spec, &node.name, true)?;
    cluster.ensure_agents().await?;
    let reports = reports(&cluster).await?;
    let report = &reports
        .iter()
        .find(|(spec, _)| spec.name == node.name)
        .expect("node is in the spec")
        .1;
    if report.process.running {
        println!(
            "{} is already running ({})",
            node.name,
            report.state_label()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let primary = reports.iter().any(|(spec, report)| {
        spec.name != node.name
            && report.process.running
            && report.wsrep.as_ref().is_some_and(|w| w.is_primary())
    });
    if !primary {
        bail!(
            "no other node is in a Primary component, so {} has no cluster to join; \
             start the whole cluster with `galley up`, which picks the right node to bootstrap",
            node.name
        );
    }
    let progress = Progress::new();
    progress.step(format!("{}: starting", node.name));
    let started = Instant::now();
    let inputs = cluster.command_inputs(false, &[])?;
    let result = bring(
        &cluster,
        Goal::Synced(node.name.clone()),
        Some(node.name.clone()),
        inputs,
        &progress,
    )
    .await;
    progress.finish();
    result?;
    println!(
        "{} is Synced ({:.1} s)",
        node.name,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn stop_node(location: &Location, name: &str) -> anyhow::Result<ExitCode> {
    check_node_name(location, name)?;
    let cluster = Cluster::load(location, true)?;
    cluster.require_managed("stop its nodes")?;
    let node = find_node(&cluster, name)?;
    // Tell the controller first, so that it does not start the node again.
    controller::set_desired(&cluster.spec, &node.name, false)?;
    let response = while_stopping(&node.name, cluster.client(node).stop()).await?;
    if let Some(deadline) = response.killed_after_s {
        println!("{}", killed_note(&node.name, deadline));
    }
    match response.grastate.and_then(|state| state.position()) {
        Some(position) => println!("{} stopped at seqno {}", node.name, position.seqno),
        None => println!("{} stopped", node.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for a stop, saying every 15 s that it still waits (a Synced server may take
/// minutes to flush its buffer pool; the agent kills it at `server.stop_timeout_s`).
async fn while_stopping<T>(node: &str, stop: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(stop);
    let started = Instant::now();
    let mut ticks = tokio::time::interval_at(
        Instant::now() + Duration::from_secs(15),
        Duration::from_secs(15),
    );
    loop {
        tokio::select! {
            done = &mut stop => return done,
            _ = ticks.tick() => println!(
                "\n{node}: still shutting down after {} s (killed at server.stop_timeout_s)...",
                started.elapsed().as_secs()
            ),
        }
    }
}

fn killed_note(node: &str, deadline_s: u64) -> String {
    format!("{node} did not stop within {deadline_s} s (server.stop_timeout_s) and was killed; its next start recovers its data as after a crash")
}

/// Names a wrong node before anything else can fail.
fn check_node_name(location: &Location, name: &str) -> anyhow::Result<()> {
    if let Ok(loaded) = spec::load(&location.config) {
        if loaded.spec.node(name).is_none() {
            bail!(
                "no node named `{name}`; nodes: {}",
                loaded.spec.node_names().join(", ")
            );
        }
    }
    Ok(())
}

fn find_node<'a>(cluster: &'a Cluster, name: &str) -> anyhow::Result<&'a NodeSpec> {
    cluster.spec.node(name).with_context(|| {
        format!(
            "no node named `{name}`; nodes: {}",
            cluster.spec.node_names().join(", ")
        )
    })
}

/// `galley drain NODE` / `galley undrain NODE`: maintenance through the proxy.
pub async fn drain(location: &Location, name: &str, draining: bool) -> anyhow::Result<ExitCode> {
    check_node_name(location, name)?;
    let cluster = Cluster::load(location, true)?;
    let admin = cluster
        .proxy_admin()
        .context("this cluster has no [proxy] section, so there is nothing to drain through")?;
    let status = if draining {
        admin.drain(name).await?
    } else {
        admin.undrain(name).await?
    };
    let writer = status.writer.as_deref().unwrap_or("none");
    if draining {
        println!("{name} is draining: it takes no new sessions; the writer is now {writer}");
    } else {
        println!(
            "{name} takes sessions again; the writer is {writer} (no fail-back unless configured)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
