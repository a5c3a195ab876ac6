//! `galley import`: the arguments, the output and the wiring. What is checked and
//! written lives in the `import` crate: every node is inspected over SQL first
//! (reachable, one Galera cluster, an account with the privileges galley needs); only
//! then are galley.toml (nodes with `managed = false`) and the secrets file (mode 0600)
//! written, so a failed import leaves nothing behind.

use std::process::ExitCode;

use ::import::{parse_node_arg, parse_writer_arg, FoundNode, NodeArg};
use controller::sql_observe::SqlAccount;
use local::{Cluster, Location};

/// `galley import`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The new state directory for the imported cluster (galley.toml, secrets file,
    /// controller history). It must not hold a cluster yet.
    #[arg(long, default_value = ".galley", env = "GALLEY_DIR")]
    dir: std::path::PathBuf,
    /// The cluster's name in galley [default: the servers' wsrep_cluster_name].
    #[arg(long)]
    name: Option<String>,
    /// A node of the cluster as [NAME=]HOST:PORT (repeat for every node). Without a
    /// NAME, the server's wsrep_node_name is used.
    #[arg(long = "node", value_name = "[NAME=]HOST:PORT", required = true, value_parser = parse_node_arg)]
    nodes: Vec<NodeArg>,
    /// An account with ALL PRIVILEGES ON *.* WITH GRANT OPTION on the cluster.
    #[arg(long)]
    user: String,
    /// Read the account's password from stdin (the only way to give it: a password
    /// on the command line is visible in `ps`).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// The port of the controller (API and console) for this cluster, on 127.0.0.1.
    #[arg(long, default_value_t = 4600)]
    controller_port: u16,
    /// Where clients send writes today (an existing load balancer or virtual IP), as
    /// HOST:PORT; OpenStack connection strings will point at it [default: the first node].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_writer_arg)]
    proxy_writer: Option<NodeArg>,
}

/// `galley import ARGS`.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let location = Location::new(args.dir, None);
    ::import::check_new_dir(&location.config, &location.dir)?;
    let password = crate::manage_cli::read_secret_from_stdin("the account's password")?;
    let account = SqlAccount {
        user: args.user,
        password,
    };
    let found = ::import::survey(&args.nodes, &account).await?;
    let cluster_name = ::import::cluster_name(args.name, &found)?;
    print_found(&found);

    let writer = args.proxy_writer.map(|writer| writer.address());
    let text = ::import::render_spec(
        &cluster_name,
        &location.dir,
        args.controller_port,
        &::import::spec_nodes(&found),
        writer.as_deref(),
    );
    let loaded = ::import::write_cluster(
        &location.dir,
        &location.config,
        &text,
        &account.user,
        &account.password,
    )?;
    println!(
        "\nImported cluster {cluster_name} into {}: {} and {} (mode 0600).",
        location.dir.display(),
        location.config.display(),
        loaded.spec.secrets_file.display()
    );
    println!(
        "galley watches these nodes over SQL and never starts, stops or recovers them.\n\
         Start the controller with `galley up --dir {dir}`; see the nodes with `galley status --dir {dir}`.",
        dir = location.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The cluster and every node found, and a warning when nodes of it were not given.
fn print_found(found: &[FoundNode]) {
    let first = &found[0];
    println!(
        "Found Galera cluster {} ({}), {} member(s) in its Primary component:",
        first.cluster_name, first.wsrep.cluster_state_uuid, first.wsrep.cluster_size
    );
    println!(
        "  {:<12} {:<22} {:<15} {:>10}  VERSION",
        "NODE", "ADDRESS", "STATE", "SEQNO"
    );
    for node in found {
        println!(
            "  {:<12} {:<22} {:<15} {:>10}  {}",
            node.name,
            node.arg.address(),
            node.wsrep.local_state.to_string(),
            node.wsrep.last_committed,
            node.version
        );
    }
    let size = first.wsrep.cluster_size;
    if size != found.len() as i64 {
        eprintln!(
            "warning: the cluster has {size} member(s) but {} node(s) were given; galley watches only the nodes given",
            found.len()
        );
    }
}

/// `galley up` on an imported cluster: there are no nodes to start, only the controller.
pub async fn up_imported(
    cluster: &Cluster,
    new_console_password: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if cluster.spec.controller.is_some() {
        local::controller_daemon::ensure_controller(cluster).await?;
        println!(
            "Cluster {} was imported: galley does not start its nodes; the controller watches them.\n",
            cluster.spec.name
        );
    }
    let rows = crate::status::collect(cluster).await;
    crate::status::print_table(&rows);
    println!();
    crate::cluster::print_console_help(cluster, new_console_password);
    Ok(ExitCode::SUCCESS)
}
