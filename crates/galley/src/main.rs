//! The `galley` command: argument parsing and wiring. Each subcommand lives in its own
//! module; the work itself is done by the library crates.

mod backup_cli;
mod chaos_cli;
mod cluster;
mod control;
mod daemons;
mod deployment;
mod host;
mod import;
mod init;
mod manage_cli;
mod package_files;
mod restart;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};

/// galley: a highly available MariaDB Galera tier for OpenStack.
///
/// galley configures, starts, watches and heals a Galera cluster. `galley up` runs a
/// three-node cluster on this machine with its state in ./.galley; the same commands
/// drive clusters described by any galley.toml.
#[derive(Debug, Parser)]
#[command(
    name = "galley",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// `init` carries many optional flags; the command is parsed once, so its size is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Create or reuse a 3-node cluster on this machine and start it.
    ///
    /// On a new state directory it writes galley.toml and a secrets file (mode 0600),
    /// starts one agent per node, bootstraps the first node and joins the others one at
    /// a time until all three are Synced. On an existing one it brings the same cluster
    /// back, bootstrapping from the most advanced node. Without --detach it stays in the
    /// foreground and stops the cluster gracefully on Ctrl-C.
    Up {
        #[command(flatten)]
        target: Target,
        /// Return once every node is Synced and leave the cluster running.
        #[arg(long)]
        detach: bool,
        /// Accept that NODE's data is lost: bootstrap from the others and rebuild NODE
        /// from them by a full state transfer. Without it, a stopped cluster with a node
        /// whose data dir is missing is not started.
        #[arg(long, value_name = "NODE")]
        rebuild: Vec<String>,
        /// For a new cluster: two data nodes and an arbitrator (garbd, from the
        /// galera-arbitrator-4 package) instead of three data nodes. An existing
        /// cluster runs what its galley.toml says ([[arbitrator]], docs/arbitrator.md).
        #[arg(long)]
        arbitrator: bool,
    },
    /// Stop the cluster gracefully, one node at a time, and its agents.
    ///
    /// The highest-priority node stops last, so it is the one marked safe_to_bootstrap
    /// and `galley up` bootstraps from it next time.
    Down {
        #[command(flatten)]
        target: Target,
    },
    /// Show each node: state, cluster size and status, last committed seqno, receive
    /// queue and flow control.
    ///
    /// Exit code 0 when every node is Synced, 3 when any is not.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Refresh every --interval seconds until interrupted.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value_t = 1.0, requires = "watch")]
        interval: f64,
    },
    /// Start one node and wait until it is Synced (it joins the running cluster).
    Start {
        /// The node's name from galley.toml.
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Stop one node gracefully.
    Stop {
        /// The node's name from galley.toml.
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print the recovery plan with the evidence per node; carry it out with --yes.
    ///
    /// Shows each node's position (UUID, seqno, safe_to_bootstrap, recovered position),
    /// the high-water mark, and every step with the safety rule that chose it. With
    /// --yes the plan runs (or, when the controller runs, is approved for it).
    /// Exit code 3 when recovery is refused or must wait.
    Recover {
        #[command(flatten)]
        target: Target,
        /// Carry out the plan.
        #[arg(long)]
        yes: bool,
        /// Allow a bootstrap below the high-water mark: writes after the chosen node's
        /// position are lost. Only when the node that held them is gone for good.
        #[arg(long)]
        force: bool,
        /// NODE's data is lost (its data dir is empty): the others may bootstrap
        /// without it, and it is rebuilt from them by a full state transfer.
        #[arg(long, value_name = "NODE")]
        rebuild: Vec<String>,
        /// Print the plan and evidence as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the controller's history: events (node down, recovery, alerts) and its
    /// decisions with their reasons, oldest first.
    Events {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
        /// How many of the most recent entries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only this node's entries.
        #[arg(long)]
        node: Option<String>,
    },
    /// Run the controller of a galley.toml (normally started for you by `galley up`).
    ///
    /// Observes every node through its agent each second, keeps the history in SQLite
    /// under the [controller] state_dir, and heals the cluster by the recovery rules.
    Controller {
        /// The cluster spec.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The cluster's state directory (secrets and default controller state).
        #[arg(long, default_value = ".galley")]
        dir: PathBuf,
        /// Set the console's `admin` password to the line read from stdin, and exit.
        #[arg(long)]
        set_admin_password: bool,
        #[command(flatten)]
        logging: daemons::Logging,
    },
    /// Move sessions and the writer off a node for maintenance (through the proxy).
    Drain {
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Let a drained node take sessions again.
    Undrain {
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Write a galley.toml by answering questions (or flags, with --non-interactive).
    ///
    /// Asks for the vendor and version (MariaDB 10.11 only), the cluster name, the
    /// server settings, the data nodes (name, address, data dir; ports default and never
    /// collide), the controller and proxy hosts and ports, and how `galley deploy`
    /// reaches the hosts. Each answer is checked at once by the same validation every
    /// galley command applies, and asked again until it is valid. Answers can be piped
    /// on stdin, one per line (an empty line takes the default). Writes <dir>/galley.toml
    /// (or --config), never over an existing file without --force.
    Init {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        flags: init::InitFlags,
    },
    /// Restart every node one at a time, behind the proxy (--rolling).
    ///
    /// Refuses unless every node is Synced. For each node (the proxy's writer last, so
    /// the writer moves once): drain it at the proxy, wait until the writer is elsewhere
    /// and its sessions are gone, stop it gracefully, start it (it rejoins by IST), wait
    /// until it is Synced, undrain it. Clients see at most a reconnect. The controller
    /// leaves each node alone while it is down on purpose. Stops at the first failure and
    /// says which node is in which state.
    Restart {
        /// One node at a time (the only kind of restart galley does).
        #[arg(long)]
        rolling: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Run the Galera-aware load balancer of a galley.toml (normally started for you).
    ///
    /// Listens on the [proxy] writer port (one writer node), reader port (least
    /// connections over read-healthy nodes) and optional multi-writer port; probes every
    /// node over the MySQL protocol; serves /status, /metrics and drain on the admin
    /// port. SIGHUP reloads galley.toml without dropping established sessions.
    Proxy {
        /// The cluster spec.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Worker threads for the byte copy; 1 runs everything on one thread, which
        /// avoids cross-thread wake-ups (see BENCHMARKS.md for the measured choice).
        #[arg(long, default_value_t = 1, env = "GALLEY_PROXY_THREADS")]
        threads: usize,
        #[command(flatten)]
        logging: daemons::Logging,
    },
    /// Run the node agent for one node of a galley.toml (normally started for you).
    ///
    /// The agent owns that node's mariadbd and serves HTTP+JSON on the node's
    /// agent_port, authenticated with the cluster token from the secrets file.
    Agent {
        /// The cluster spec.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Which node of the spec this agent owns.
        #[arg(long)]
        node: String,
        #[command(flatten)]
        logging: daemons::Logging,
    },
    /// Run garbd, the Galera arbitrator, for one [[arbitrator]] of a galley.toml
    /// (normally started for you by `galley deploy`'s service).
    ///
    /// Replaces itself with garbd (Debian's galera-arbitrator-4) started with the
    /// cluster's group name and address, the arbitrator's listen address and segment,
    /// and its log file: a voting member of the group that stores no data.
    #[command(hide = true)]
    Arbitrator {
        /// The cluster spec.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Which arbitrator of the spec to run.
        #[arg(long)]
        name: String,
    },
    /// Databases, through the controller's API: list, create, drop.
    Db(manage_cli::DbArgs),
    /// Database accounts, through the controller's API: list, create, drop, password.
    User(manage_cli::UserArgs),
    /// Grant privileges on a database to an account (ALL by default).
    Grant(manage_cli::GrantArgs),
    /// Revoke privileges on a database from an account (ALL by default).
    Revoke(manage_cli::GrantArgs),
    /// OpenStack services' databases and accounts: provision, show config lines, drift.
    Openstack(manage_cli::OpenstackArgs),
    /// API tokens for scripts and remote CLIs: create (shown once), list, revoke.
    Token(manage_cli::TokenArgs),
    /// Physical backups with mariabackup: now, list, show, delete, verify (docs/backup.md).
    Backup(backup_cli::BackupArgs),
    /// Restore a backup into a new data directory, checked and prepared.
    Restore(backup_cli::RestoreArgs),
    /// Inject faults from a seeded schedule under workloads, and judge what clients saw.
    ///
    /// Into a cluster on this machine with a proxy and a controller (`galley up`): kill -9
    /// or SIGSTOP of nodes and of the writer, kill -9 of every node, of an agent, of the
    /// proxy, of the controller, one at a time, each healed by galley before the next.
    /// Meanwhile one client inserts unique ids and one moves money between accounts
    /// through the writer port, and readers read through the reader port. At the end it
    /// checks that every acknowledged write is on every node, that no read was stale,
    /// that the bank's total held, that no two nodes took writes at once, and writes a
    /// report (markdown, JSON, an SVG timeline). Exit code 0 when every check passed.
    /// It owns the database galley_chaos. See docs/chaos.md.
    Chaos {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        args: chaos_cli::ChaosArgs,
    },
    /// Register an existing Galera cluster that galley did not deploy.
    ///
    /// Connects to every node over SQL, checks they form one Galera cluster and that the
    /// account has the privileges galley needs, then writes <dir>/galley.toml (nodes with
    /// `managed = false`) and a secrets file (mode 0600). The controller and `galley
    /// status` then watch the nodes over SQL; galley never starts, stops or recovers them.
    Import(import::ImportArgs),
    /// Write the deployment bundle to review or run by hand: per-host configuration,
    /// service definitions and ordered shell scripts, with a README.
    ///
    /// It does exactly what `galley deploy` does. It holds no secret unless
    /// --include-secrets is given (then <dir>/secrets.toml goes in, mode 0600).
    Generate {
        #[command(flatten)]
        target: Target,
        /// A directory, or a FILE.tar.gz.
        #[arg(long, short, default_value = "galley-bundle")]
        output: PathBuf,
        /// Put the secrets file in the bundle (installed with mode 0600 by step 20).
        #[arg(long)]
        include_secrets: bool,
    },
    /// Install and start the cluster of galley.toml on its hosts over SSH.
    ///
    /// Logs in as [deploy] ssh_user (keys only, passwordless sudo), checks every host
    /// before changing any, installs MariaDB and galera-4 from the OS packages, copies
    /// galley and the secrets (mode 0600), starts the agents, bootstraps and joins one
    /// node at a time, then starts the proxy and controller. Running it again changes
    /// only what differs; a changed my.cnf is applied by a rolling restart. Host keys are
    /// checked against <dir>/deploy/known_hosts; each host's log is in <dir>/deploy/logs.
    /// The cluster's secrets are <dir>/secrets.toml (generated by the first deploy).
    Deploy {
        #[command(flatten)]
        target: Target,
        /// Record the host keys of hosts contacted for the first time (never a changed one).
        #[arg(long)]
        accept_new_host_keys: bool,
        /// Connect to and check every host, then stop without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the Debian package's man pages, shell completions and systemd units into
    /// DIR (run by scripts/build-deb.sh).
    #[command(hide = true)]
    PackageFiles { dir: PathBuf },
    /// A deployment step on this host (run by the bundle's scripts).
    #[command(hide = true)]
    Host {
        #[command(subcommand)]
        step: host::HostStep,
        #[arg(
            long,
            value_name = "FILE",
            global = true,
            default_value = "/etc/galley/galley.toml"
        )]
        config: PathBuf,
        #[arg(long, global = true, default_value = "")]
        node: String,
    },
}

/// Which cluster a command acts on.
#[derive(Debug, Args, Clone)]
struct Target {
    /// State directory of a local cluster (galley.toml, secrets, data, logs).
    #[arg(long, default_value = ".galley", env = "GALLEY_DIR")]
    dir: PathBuf,
    /// Cluster spec to use instead of <dir>/galley.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Proxy { threads, .. } => (*threads).max(1),
        _ => 2,
    };
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("the tokio runtime starts");
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up {
            target,
            detach,
            rebuild,
            arbitrator,
        } => cluster::up(&target.into(), detach, &rebuild, arbitrator).await,
        Command::Down { target } => cluster::down(&target.into()).await,
        Command::Status {
            target,
            json,
            watch,
            interval,
        } => status::run(&target.into(), json, watch, interval).await,
        Command::Start { node, target } => cluster::start_node(&target.into(), &node).await,
        Command::Stop { node, target } => cluster::stop_node(&target.into(), &node).await,
        Command::Agent {
            config,
            node,
            logging,
        } => daemons::run_agent(&config, &node, &logging).await,
        Command::Proxy {
            config, logging, ..
        } => daemons::run_proxy(&config, &logging).await,
        Command::Arbitrator { config, name } => daemons::run_arbitrator(&config, &name),
        Command::Recover {
            target,
            yes,
            force,
            rebuild,
            json,
        } => control::recover(&target.into(), yes, force, &rebuild, json).await,
        Command::Events {
            target,
            json,
            limit,
            node,
        } => control::events(&target.into(), json, limit, node).await,
        Command::Controller {
            config,
            dir,
            set_admin_password: true,
            ..
        } => control::set_admin_password(&config, &dir),
        Command::Controller {
            config,
            dir,
            logging,
            ..
        } => control::run_controller(&config, &dir, &logging).await,
        Command::Drain { node, target } => cluster::drain(&target.into(), &node, true).await,
        Command::Undrain { node, target } => cluster::drain(&target.into(), &node, false).await,
        Command::Generate {
            target,
            output,
            include_secrets,
        } => deployment::generate(&target.into(), &output, include_secrets),
        Command::Deploy {
            target,
            accept_new_host_keys,
            dry_run,
        } => {
            let location = target.into();
            tokio::task::spawn_blocking(move || {
                deployment::deploy(&location, accept_new_host_keys, dry_run)
            })
            .await?
        }
        Command::Host { step, config, node } => host::run(&config, &node, step).await,
        Command::PackageFiles { dir } => package_files::write(Cli::command(), &dir),
        Command::Init { target, flags } => init::init(&target.into(), &flags),
        Command::Restart { rolling, target } => restart::restart(&target.into(), rolling).await,
        Command::Db(args) => manage_cli::db(args).await,
        Command::User(args) => manage_cli::user(args).await,
        Command::Grant(args) => manage_cli::grant(args, true).await,
        Command::Revoke(args) => manage_cli::grant(args, false).await,
        Command::Openstack(args) => manage_cli::openstack(args).await,
        Command::Token(args) => manage_cli::token(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Chaos { target, args } => chaos_cli::run(&target.into(), &args).await,
        Command::Backup(args) => backup_cli::backup(args).await,
        Command::Restore(args) => backup_cli::restore(args).await,
    }
}

impl From<Target> for local::Location {
    fn from(target: Target) -> local::Location {
        local::Location::new(target.dir, target.config)
    }
}
