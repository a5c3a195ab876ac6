//! `galley chaos`: faults from a seeded schedule injected into a local cluster under
//! workloads that run through its proxy, each fault healed by galley itself, and the
//! history judged by the chaos crate's checkers (docs/chaos.md).
//!
//! The runner is also the supervisor that a deployment's units are (Restart=always): a
//! killed agent, proxy or controller is started again a moment later. Everything else is
//! left to galley: the controller restarts and recovers nodes, the proxy moves the writer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chaos::report::{self, FaultRun, NodeEnd, RunRecord};
use chaos::schedule::{self, Fault, FaultClass};
use chaos::workload::{self, Run, Table};
use chaos::History;
use local::{controller_daemon, Cluster, Location};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use spec::{is_local_address, NodeSpec};
use tokio::sync::watch;
use tokio::time::Instant;

/// The database the workloads own: created (its tables dropped first) at the start.
pub const DATABASE: &str = "galley_chaos";
const ACCOUNTS: u64 = 10;
/// The append-list workload's keys.
const LISTS: u64 = 5;
/// A read must see every write acknowledged this long before it began.
const STALE_LAG_MS: u64 = 1_000;
/// How long a supervisor waits before starting a killed daemon again (systemd's
/// RestartSec is of this order).
const RESTART_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// How many faults to inject.
    #[arg(long, default_value_t = 10)]
    pub faults: usize,
    /// The schedule's seed; the same seed gives the same schedule. Random (and printed)
    /// when not given.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The fault classes to draw from, comma-separated (all when not given): kill-node,
    /// kill-writer, kill-all, hang-node, hang-writer, kill-agent, kill-proxy,
    /// kill-controller.
    #[arg(long, value_name = "CLASSES")]
    pub classes: Option<String>,
    /// Seconds of steady traffic between a healed fault and the next one.
    #[arg(long, default_value_t = 3.0)]
    pub between: f64,
    /// Seconds a fault may take to heal; past that the run stops injecting and the
    /// report counts the fault as not healed.
    #[arg(long, default_value_t = 180.0)]
    pub heal_within: f64,
    /// Send the workloads' SQL to this loopback address (HOST:PORT) instead of galley's
    /// proxy: a peer load balancer in front of the same cluster, for comparison. The
    /// faults' "writer" is then the node that answers a new session there.
    #[arg(long, value_name = "ADDRESS")]
    pub through: Option<std::net::SocketAddr>,
    /// Where to write report.md, report.json, timeline.svg and history.json
    /// (default: <dir>/chaos-<seed>).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

pub async fn run(location: &Location, args: &ChaosArgs) -> anyhow::Result<ExitCode> {
    if let Some(address) = args.through {
        if !address.ip().is_loopback() {
            bail!("--through {address}: galley chaos sends its workloads to this machine only; give a loopback address");
        }
    }
    let classes = match &args.classes {
        Some(text) => schedule::parse_classes(text).map_err(anyhow::Error::msg)?,
        None => FaultClass::ALL.to_vec(),
    };
    for (name, value) in [
        ("--between", args.between),
        ("--heal-within", args.heal_within),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            bail!("{name} must be a number of seconds, 0 or more (got {value})");
        }
    }
    let cluster = Cluster::load(location, true)?;
    refuse_unless_local_and_healing(&cluster)?;
    if let Err(why) = whole(&cluster).await {
        bail!("the cluster is not whole, so a fault's effect could not be told apart: {why}; see `galley status`");
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let faults = schedule::schedule(seed, args.faults, &classes);
    let report_dir = args
        .report
        .clone()
        .unwrap_or_else(|| location.dir.join(format!("chaos-{seed}")));
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("cannot create {}", report_dir.display()))?;
    println!(
        "galley chaos: seed {seed}, {} faults (replay: galley chaos --seed {seed} --faults {}{})",
        faults.len(),
        faults.len(),
        args.classes
            .as_ref()
            .map(|c| format!(" --classes {c}"))
            .unwrap_or_default()
    );
    for fault in &faults {
        println!("  {fault}");
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: no more faults; checking what was recorded");
                interrupted.store(true, Ordering::SeqCst);
            }
        });
    }

    let proxy = cluster.spec.proxy.clone().expect("checked above");
    let (writer_opts, reader_opts) = match args.through {
        Some(address) => {
            let opts = sql_opts(&cluster, &address.ip().to_string(), address.port());
            (opts.clone(), opts)
        }
        None => (
            sql_opts(&cluster, &proxy.address, proxy.writer_port),
            sql_opts(&cluster, &proxy.address, proxy.reader_port),
        ),
    };
    let through = Through(args.through.map(|_| writer_opts.clone()));
    let table = Table {
        database: DATABASE.to_owned(),
        table: "inserts".to_owned(),
    };
    workload::prepare(writer_opts.clone(), &table)
        .await
        .context("cannot create the workload's table through the proxy's writer port")?;
    workload::prepare_bank(writer_opts.clone(), DATABASE, ACCOUNTS)
        .await
        .context("cannot create the bank's accounts through the proxy's writer port")?;
    workload::prepare_lists(writer_opts.clone(), DATABASE, LISTS)
        .await
        .context("cannot create the append lists through the proxy's writer port")?;

    let clock = Instant::now();
    let run = |opts: &mysql_async::Opts| Run {
        opts: opts.clone(),
        table: table.clone(),
        clock,
        answer_within: Duration::from_secs(10),
    };
    let (stop, stopped) = watch::channel(false);
    let inserts = tokio::spawn(workload::unique_inserts(run(&writer_opts), stopped.clone()));
    let transfers = tokio::spawn(workload::bank_transfers(
        run(&writer_opts),
        ACCOUNTS,
        seed,
        stopped.clone(),
    ));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(workload::max_id_reads(
                run(&reader_opts),
                Duration::from_millis(100),
                stopped.clone(),
            ))
        })
        .collect();
    let appenders: Vec<_> = (1..=2)
        .map(|client| {
            tokio::spawn(workload::list_appends(
                run(&writer_opts),
                LISTS,
                client,
                seed,
                stopped.clone(),
            ))
        })
        .collect();
    let list_readers: Vec<_> = [true, false]
        .into_iter()
        .map(|causal| {
            tokio::spawn(workload::list_reads(
                run(&reader_opts),
                Duration::from_millis(200),
                causal,
                stopped.clone(),
            ))
        })
        .collect();
    let balances = tokio::spawn(workload::balance_reads(
        run(&reader_opts),
        Duration::from_millis(200),
        stopped.clone(),
    ));

    let heal_within = Duration::from_secs_f64(args.heal_within);
    let between = Duration::from_secs_f64(args.between);
    tokio::time::sleep(between).await;
    let mut runs = Vec::new();
    let mut aborted = None;
    for fault in &faults {
        if interrupted.load(Ordering::SeqCst) {
            aborted = Some(format!("interrupted before fault {fault}"));
            break;
        }
        let mut fault_run = match inject(&cluster, &through, fault, clock).await {
            Ok(run) => run,
            Err(error) => {
                let why = format!("cannot inject fault {fault}: {error:#}");
                println!("{why}; no more faults");
                aborted = Some(why);
                break;
            }
        };
        let healed = wait_until_whole(&cluster, heal_within).await;
        fault_run.healed_ms = healed
            .as_ref()
            .ok()
            .map(|_| clock.elapsed().as_millis() as u64);
        let from = fault_run.released_ms.unwrap_or(fault_run.injected_ms);
        match &healed {
            Ok(()) => println!(
                "{fault} on {}: healed after {:.1} s",
                fault_run.target,
                (fault_run.healed_ms.unwrap_or(from) - from) as f64 / 1000.0
            ),
            Err(why) => println!(
                "{fault} on {}: NOT healed within {:.0} s ({why}); no more faults",
                fault_run.target, args.heal_within
            ),
        }
        runs.push(fault_run);
        if healed.is_err() {
            break;
        }
        tokio::time::sleep(between).await;
    }

    stop.send(true).ok();
    let mut history = History {
        writes: inserts.await?,
        transfers: transfers.await?,
        balance_reads: balances.await?,
        ..History::default()
    };
    for reader in readers {
        let (reads, failed) = reader.await?;
        history.reads.extend(reads);
        history.failed_reads += failed;
    }
    for appender in appenders {
        history.appends.extend(appender.await?);
    }
    for reader in list_readers {
        history.list_reads.extend(reader.await?);
    }
    let duration_ms = clock.elapsed().as_millis() as u64;
    let ends = node_ends(&cluster, &table, &history).await;
    let record = RunRecord {
        seed,
        through: args
            .through
            .map_or("galley's proxy".to_owned(), |address| address.to_string()),
        faults: runs,
        history,
        ends,
        accounts: ACCOUNTS,
        initial_balance: workload::INITIAL_BALANCE,
        stale_lag_ms: STALE_LAG_MS,
        duration_ms,
        aborted,
    };
    let judged = report::judge(&record);
    let markdown = report::markdown(&judged);
    write(&report_dir.join("report.md"), markdown.as_bytes())?;
    write(
        &report_dir.join("report.json"),
        &serde_json::to_vec_pretty(&judged)?,
    )?;
    write(
        &report_dir.join("timeline.svg"),
        report::svg(&record).as_bytes(),
    )?;
    write(
        &report_dir.join("history.json"),
        &serde_json::to_vec(&record)?,
    )?;
    println!("\n{markdown}");
    println!(
        "The report: {} (report.md, report.json, timeline.svg, history.json)",
        report_dir.display()
    );
    Ok(if judged.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Faults go only into a cluster whose every part this machine runs (the node agents,
/// the proxy and the controller on loopback), and only when galley heals it: a
/// controller that recovers nodes and the whole cluster, and a proxy the workloads use.
fn refuse_unless_local_and_healing(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.require_managed("inject faults into")?;
    let config = cluster.location.config.display();
    if let Some(node) = cluster
        .spec
        .nodes
        .iter()
        .find(|node| !is_local_address(&node.address))
    {
        bail!(
            "galley chaos injects faults into a cluster on this machine only, and node {} is at {} ({config}); the netns test bed is not supported yet",
            node.name,
            node.address
        );
    }
    let Some(proxy) = &cluster.spec.proxy else {
        bail!("galley chaos runs its workloads through galley's proxy, and {config} has no [proxy] section");
    };
    if !is_local_address(&proxy.address) || !is_local_address(&proxy.admin_address) {
        bail!(
            "galley chaos needs the proxy on this machine, and it listens at {} ({config})",
            proxy.address
        );
    }
    let Some(controller) = &cluster.spec.controller else {
        bail!("galley chaos needs the controller, which heals the faults, and {config} has no [controller] section");
    };
    if !(controller.auto_recover_nodes && controller.auto_recover_cluster) {
        bail!(
            "galley chaos needs a controller that heals nodes and the whole cluster; {config} sets auto_recover_nodes = {} and auto_recover_cluster = {}",
            controller.auto_recover_nodes,
            controller.auto_recover_cluster
        );
    }
    if !is_local_address(&controller.address) {
        bail!(
            "galley chaos needs the controller on this machine, and it listens at {} ({config})",
            controller.address
        );
    }
    Ok(())
}

fn random_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |now| now.as_nanos() as u64 % 1_000_000_000)
}

fn sql_opts(cluster: &Cluster, host: &str, port: u16) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(cluster.secrets.admin_user()))
        .pass(Some(cluster.secrets.admin_password.clone()))
        .prefer_socket(false)
        .into()
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether the cluster is whole: every node's agent answers and its node is Synced in
/// one view of every node, the proxy answers and has a writer, the controller runs.
/// Otherwise, what is missing.
async fn whole(cluster: &Cluster) -> Result<(), String> {
    let size = cluster.spec.nodes.len() as i64;
    for row in crate::status::collect(cluster).await {
        if !row.synced || row.cluster_size != Some(size) {
            return Err(format!(
                "{} is {}{}",
                row.node,
                row.state,
                row.problem
                    .map(|problem| format!(" ({problem})"))
                    .unwrap_or_default()
            ));
        }
    }
    match crate::status::collect_proxy(cluster).await {
        Some(proxy) if proxy.running && proxy.writer.is_some() => {}
        Some(proxy) if proxy.running => return Err("the proxy has no writer".to_owned()),
        _ => return Err("the proxy does not answer".to_owned()),
    }
    if controller_daemon::running_pid(&controller_daemon::settings(cluster)).is_none() {
        return Err("the controller does not run".to_owned());
    }
    Ok(())
}

async fn wait_until_whole(cluster: &Cluster, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let answer = whole(cluster).await;
        if answer.is_ok() || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the workloads go when it is not galley's proxy (`--through`): the session
/// options for that address.
struct Through(Option<mysql_async::Opts>);

/// The writer of the moment: the proxy's, as its admin endpoint says, or with
/// `--through`, the node that answers a new session there.
async fn writer<'a>(cluster: &'a Cluster, through: &Through) -> anyhow::Result<&'a NodeSpec> {
    let name = match &through.0 {
        None => crate::status::collect_proxy(cluster)
            .await
            .and_then(|proxy| proxy.writer)
            .context("the proxy has no writer")?,
        Some(opts) => {
            use mysql_async::prelude::Queryable as _;
            let ask = async {
                let mut conn = mysql_async::Conn::new(opts.clone()).await?;
                let name: Option<String> = conn.query_first("SELECT @@wsrep_node_name").await?;
                conn.disconnect().await?;
                Ok::<_, mysql_async::Error>(name)
            };
            tokio::time::timeout(Duration::from_secs(10), ask)
                .await
                .context("no answer within 10 s")?
                .context("cannot ask which node answers there")?
                .context("the node did not say its name")?
        }
    };
    node(cluster, &name)
}

fn node<'a>(cluster: &'a Cluster, name: &str) -> anyhow::Result<&'a NodeSpec> {
    cluster
        .spec
        .nodes
        .iter()
        .find(|node| node.name == name)
        .with_context(|| format!("the proxy names writer {name}, which is not in the spec"))
}

/// The node a fault on "non-writer #k" hits: the nodes other than the writer, in the
/// spec's order, taken modulo their number.
async fn non_writer<'a>(
    cluster: &'a Cluster,
    through: &Through,
    pick: usize,
) -> anyhow::Result<&'a NodeSpec> {
    let writer = writer(cluster, through).await?.name.clone();
    let others: Vec<&NodeSpec> = cluster
        .spec
        .nodes
        .iter()
        .filter(|node| node.name != writer)
        .collect();
    if others.is_empty() {
        bail!("the cluster has no node besides the writer");
    }
    Ok(others[pick % others.len()])
}

async fn mariadbd_pid(cluster: &Cluster, node: &NodeSpec) -> anyhow::Result<Pid> {
    let report = cluster.client(node).status().await?;
    let pid = report
        .process
        .pid
        .with_context(|| format!("{}'s mariadbd is not running", node.name))?;
    Ok(Pid::from_raw(pid as i32))
}

/// The pid of the agent of `node` of this spec, found by its command line
/// (`galley agent --config CONFIG --node NODE`).
fn agent_pid(cluster: &Cluster, node: &NodeSpec) -> anyhow::Result<Pid> {
    let config = cluster.location.config.as_os_str().as_encoded_bytes();
    let wanted: [&[u8]; 5] = [
        b"agent",
        b"--config",
        config,
        b"--node",
        node.name.as_bytes(),
    ];
    for entry in std::fs::read_dir("/proc").context("cannot read /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.windows(wanted.len()).any(|window| window == wanted) {
            return Ok(Pid::from_raw(pid));
        }
    }
    bail!("no agent of {} runs on this machine", node.name)
}

/// Resumes a stopped process however the run ends (an error, Ctrl-C in the hold).
struct Thaw(Vec<Pid>);

impl Drop for Thaw {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = kill(*pid, Signal::SIGCONT);
        }
    }
}

fn send(pid: Pid, signal: Signal, what: &str) -> anyhow::Result<()> {
    kill(pid, signal).with_context(|| format!("cannot send {signal} to {what} (pid {pid})"))
}

/// Injects one fault and, for a daemon, plays the supervisor that starts it again.
async fn inject(
    cluster: &Cluster,
    through: &Through,
    fault: &Fault,
    clock: Instant,
) -> anyhow::Result<FaultRun> {
    let now = || clock.elapsed().as_millis() as u64;
    let mut released_ms = None;
    let injected_ms;
    let target = match fault.class {
        FaultClass::KillNode | FaultClass::KillWriter => {
            let node = if fault.class == FaultClass::KillWriter {
                writer(cluster, through).await?
            } else {
                non_writer(cluster, through, fault.pick).await?
            };
            let pid = mariadbd_pid(cluster, node).await?;
            injected_ms = now();
            send(pid, Signal::SIGKILL, &format!("{}'s mariadbd", node.name))?;
            describe(cluster, through, node).await
        }
        FaultClass::KillAll => {
            let mut pids = Vec::new();
            for node in &cluster.spec.nodes {
                pids.push((node, mariadbd_pid(cluster, node).await?));
            }
            injected_ms = now();
            for (node, pid) in pids {
                send(pid, Signal::SIGKILL, &format!("{}'s mariadbd", node.name))?;
            }
            "every node".to_owned()
        }
        FaultClass::HangNode | FaultClass::HangWriter => {
            let node = if fault.class == FaultClass::HangWriter {
                writer(cluster, through).await?
            } else {
                non_writer(cluster, through, fault.pick).await?
            };
            let target = describe(cluster, through, node).await;
            let pid = mariadbd_pid(cluster, node).await?;
            let thaw = Thaw(vec![pid]);
            injected_ms = now();
            send(pid, Signal::SIGSTOP, &format!("{}'s mariadbd", node.name))?;
            tokio::time::sleep(Duration::from_millis(fault.hold_ms)).await;
            drop(thaw);
            released_ms = Some(now());
            target
        }
        FaultClass::KillAgent => {
            let node = non_writer(cluster, through, fault.pick).await?;
            let pid = agent_pid(cluster, node)?;
            injected_ms = now();
            send(pid, Signal::SIGKILL, &format!("{}'s agent", node.name))?;
            tokio::time::sleep(RESTART_AFTER).await;
            cluster.ensure_agent(node).await?;
            format!("{}'s agent", node.name)
        }
        FaultClass::KillProxy => {
            let admin = cluster.proxy_admin().context("the spec has no proxy")?;
            let pid = Pid::from_raw(admin.status().await?.pid as i32);
            injected_ms = now();
            send(pid, Signal::SIGKILL, "the proxy")?;
            wait_gone(pid).await;
            tokio::time::sleep(RESTART_AFTER).await;
            cluster.ensure_proxy().await?;
            "the proxy".to_owned()
        }
        FaultClass::KillController => {
            let settings = controller_daemon::settings(cluster);
            let pid = Pid::from_raw(
                controller_daemon::running_pid(&settings).context("the controller does not run")?,
            );
            injected_ms = now();
            send(pid, Signal::SIGKILL, "the controller")?;
            wait_gone(pid).await;
            tokio::time::sleep(RESTART_AFTER).await;
            controller_daemon::ensure_controller(cluster).await?;
            "the controller".to_owned()
        }
    };
    Ok(FaultRun {
        fault: fault.clone(),
        target,
        injected_ms,
        released_ms,
        healed_ms: None,
    })
}

/// "node2 (the writer)" or "node3".
async fn describe(cluster: &Cluster, through: &Through, node: &NodeSpec) -> String {
    match writer(cluster, through).await {
        Ok(writer) if writer.name == node.name => format!("{} (the writer)", node.name),
        _ => node.name.clone(),
    }
}

/// Waits (up to 5 s) until a killed process is gone, so that its successor does not
/// find it still holding its ports or pid file.
async fn wait_gone(pid: Pid) {
    for _ in 0..100 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // A zombie has an empty command line: it holds nothing any more.
        if cmdline.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What each node holds at the end, read on the node itself with causal reads on, so
/// that a node still applying the last write sets answers after it applied them. A node
/// that cannot be read is reported as unchecked, never as fine.
async fn node_ends(cluster: &Cluster, table: &Table, history: &History) -> Vec<NodeEnd> {
    let mut ends = Vec::new();
    for node in &cluster.spec.nodes {
        let opts: mysql_async::Opts =
            mysql_async::OptsBuilder::from_opts(sql_opts(cluster, &node.address, node.client_port))
                .init(vec!["SET SESSION wsrep_sync_wait = 1"])
                .into();
        let read = async {
            let present: BTreeSet<u64> = workload::present_ids(opts.clone(), table).await?;
            let bank = workload::bank_on_node(opts.clone(), DATABASE).await?;
            let lists = workload::lists_on_node(opts, DATABASE).await?;
            Ok::<_, mysql_async::Error>((present, bank, lists))
        };
        let end = match tokio::time::timeout(Duration::from_secs(30), read).await {
            Ok(Ok((present, bank, lists))) => NodeEnd {
                node: node.name.clone(),
                missing: chaos::missing_writes(history, &present),
                bank,
                lists,
                unreadable: None,
            },
            Ok(Err(error)) => unreadable(node, error.to_string()),
            Err(_) => unreadable(node, "no answer within 30 s".to_owned()),
        };
        ends.push(end);
    }
    ends
}

fn unreadable(node: &NodeSpec, why: String) -> NodeEnd {
    NodeEnd {
        node: node.name.clone(),
        missing: chaos::check::Missing::default(),
        bank: (0, 0, 0),
        lists: Default::default(),
        unreadable: Some(why),
    }
}
