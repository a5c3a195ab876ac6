//! `galley status`: one row per node, as a table or as JSON, once or refreshed.

use std::process::ExitCode;
use std::time::Duration;

use agent::api::NodeReport;
use local::controller_daemon;
use local::{Cluster, Location};
use serde::Serialize;

/// One node as `galley status --json` prints it.
#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub node: String,
    pub address: String,
    pub client_port: u16,
    /// "up" or "down" for a node galley manages; "none" for an imported node, which
    /// is read over SQL instead.
    pub agent: &'static str,
    pub state: String,
    pub cluster_size: Option<i64>,
    pub cluster_status: Option<String>,
    pub last_committed: Option<i64>,
    pub recv_queue: Option<i64>,
    pub flow_control_paused: Option<f64>,
    pub synced: bool,
    /// Why the node is not usable, or what the agent could not do.
    pub problem: Option<String>,
    pub report: Option<NodeReport>,
}

#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    cluster: &'a str,
    nodes: &'a [NodeRow],
    #[serde(skip_serializing_if = "<[ArbitratorRow]>::is_empty")]
    arbitrators: &'a [ArbitratorRow],
    proxy: Option<ProxyRow>,
    controller: Option<ControllerRow>,
}

/// An arbitrator (garbd) as `galley status` shows it: a member of the group with no
/// agent, seen in the Primary component's member list of a Synced data node.
#[derive(Debug, Serialize)]
pub struct ArbitratorRow {
    pub arbitrator: String,
    pub address: String,
    pub segment: u8,
    /// Whether `mysql.wsrep_cluster_members` of a Synced node names it; None when no
    /// Synced node answered.
    pub in_primary: Option<bool>,
    /// garbd's pid, for an arbitrator on this machine whose garbd runs.
    pub garbd_pid: Option<i32>,
}

/// The Primary component's member names, read on the first Synced node of `rows`.
async fn primary_members(cluster: &Cluster, rows: &[NodeRow]) -> Option<Vec<String>> {
    let row = rows.iter().find(|row| row.synced)?;
    let node = cluster.spec.node(&row.node)?;
    let account = controller::sql_observe::SqlAccount {
        user: cluster.secrets.admin_user().to_owned(),
        password: cluster.secrets.admin_password.clone(),
    };
    controller::sql_observe::primary_members(&node.address, node.client_port, &account)
        .await
        .ok()
}

pub async fn collect_arbitrators(cluster: &Cluster, rows: &[NodeRow]) -> Vec<ArbitratorRow> {
    if cluster.spec.arbitrators.is_empty() {
        return Vec::new();
    }
    let members = primary_members(cluster, rows).await;
    cluster
        .spec
        .arbitrators
        .iter()
        .map(|arbitrator| ArbitratorRow {
            arbitrator: arbitrator.name.clone(),
            address: spec::host_port(&arbitrator.address, arbitrator.galera_port),
            segment: arbitrator.segment,
            in_primary: members
                .as_ref()
                .map(|members| members.contains(&arbitrator.name)),
            garbd_pid: spec::is_local_address(&arbitrator.address)
                .then(|| local::arbitrator::running_pid(&cluster.spec, arbitrator))
                .flatten(),
        })
        .collect()
}

pub fn print_arbitrators(rows: &[ArbitratorRow]) {
    for row in rows {
        let membership = match row.in_primary {
            Some(true) => "in the Primary component",
            Some(false) => "NOT in the Primary component",
            None => "membership unknown (no Synced node answered)",
        };
        let pid = row
            .garbd_pid
            .map_or_else(String::new, |pid| format!(", garbd pid {pid}"));
        println!(
            "arbitrator {} at {} (segment {}): {membership}{pid}",
            row.arbitrator, row.address, row.segment
        );
    }
}

/// The controller as `galley status` shows it: running or not, and its latest word.
#[derive(Debug, Serialize)]
pub struct ControllerRow {
    pub running: bool,
    pub pid: Option<i32>,
    /// Where the controller serves the web console and the REST API.
    pub console_url: String,
    pub last_event: Option<store::Event>,
    pub last_decision: Option<store::Decision>,
}

fn collect_controller(cluster: &Cluster) -> Option<ControllerRow> {
    cluster.spec.controller.as_ref()?;
    let settings = controller_daemon::settings(cluster);
    let pid = controller_daemon::running_pid(&settings);
    let path = controller::store_path(&settings);
    let store = path
        .exists()
        .then(|| store::Store::open_read_only(&path).ok())
        .flatten();
    let last_event = store.as_ref().and_then(|s| {
        s.events(&store::EventFilter {
            limit: 1,
            ..Default::default()
        })
        .ok()?
        .pop()
    });
    let last_decision = store
        .as_ref()
        .and_then(|s| s.decisions(None, 1).ok()?.pop());
    Some(ControllerRow {
        running: pid.is_some(),
        pid,
        console_url: controller_daemon::console_url(&settings),
        last_event,
        last_decision,
    })
}

fn print_controller(row: &ControllerRow) {
    match row.pid {
        Some(pid) => println!(
            "controller: running (pid {pid}); console and API at {}",
            row.console_url
        ),
        None => println!("controller: not running (`galley up` starts it)"),
    }
    if let Some(decision) = &row.last_decision {
        println!(
            "  last decision: {} — {} [{}]",
            decision.action, decision.reason, decision.outcome
        );
    }
    if let Some(event) = &row.last_event {
        println!(
            "  last event: {} {}: {}",
            event.severity, event.kind, event.message
        );
    }
}

/// The proxy as `galley status --json` prints it.
#[derive(Debug, Serialize)]
pub struct ProxyRow {
    pub writer_address: String,
    pub reader_address: String,
    pub multi_writer_address: Option<String>,
    pub admin_address: String,
    pub running: bool,
    /// The node that takes writes now, per the proxy.
    pub writer: Option<String>,
    /// Who moves sessions' bytes: "kernel" or "userspace" (with the reason).
    pub forwarding: Option<String>,
    /// Whose writer choice the proxy follows: the shared record (with its term) or its
    /// own, and why it refuses writes when it does.
    pub writer_decision: Option<String>,
    pub problem: Option<String>,
    pub status: Option<serde_json::Value>,
}

pub async fn collect_proxy(cluster: &Cluster) -> Option<ProxyRow> {
    let proxy = cluster.spec.proxy.as_ref()?;
    let admin = cluster.proxy_admin()?;
    let (running, status, problem) = match admin.status().await {
        Ok(status) => (true, Some(status), None),
        Err(error) => (
            false,
            None,
            Some(format!("the proxy does not answer: {error}")),
        ),
    };
    Some(ProxyRow {
        writer_address: spec::host_port(&proxy.address, proxy.writer_port),
        reader_address: spec::host_port(&proxy.address, proxy.reader_port),
        multi_writer_address: proxy
            .multi_writer_port
            .map(|port| spec::host_port(&proxy.address, port)),
        admin_address: proxy.admin_endpoint(),
        running,
        writer: status.as_ref().and_then(|s| s.writer.clone()),
        forwarding: status.as_ref().map(|s| match &s.forwarding_note {
            Some(note) => format!("{} ({note})", s.forwarding),
            None => s.forwarding.clone(),
        }),
        writer_decision: status
            .as_ref()
            .and_then(|s| s.writer_decision.as_ref())
            .map(describe_decision),
        problem,
        status: status.and_then(|s| serde_json::to_value(s).ok()),
    })
}

fn describe_decision(decision: &proxy::state::DecisionStatus) -> String {
    if decision.mode != "shared" {
        return "its own choice (proxy.writer_decision = \"local\")".to_owned();
    }
    let term = decision
        .term
        .map_or_else(String::new, |term| format!(", term {term}"));
    match (&decision.follows, &decision.refused) {
        (Some(node), _) => format!("the shared record{term}: {node}"),
        (None, Some(reason)) => format!("the shared record{term}; no writes: {reason}"),
        (None, None) => format!("the shared record{term}: not read yet"),
    }
}

pub fn print_proxy(row: &ProxyRow) {
    if row.running {
        println!(
            "\nproxy: writer {} -> {}, reader {}, admin {}",
            row.writer_address,
            row.writer.as_deref().unwrap_or("no writer"),
            row.reader_address,
            row.admin_address
        );
        if let Some(forwarding) = &row.forwarding {
            println!("  forwarding: {forwarding}");
        }
        if let Some(decision) = &row.writer_decision {
            println!("  writer decision: {decision}");
        }
    } else {
        println!(
            "\nproxy: not running ({})",
            row.problem.as_deref().unwrap_or("unknown")
        );
    }
}

pub async fn collect(cluster: &Cluster) -> Vec<NodeRow> {
    let mut results = Vec::new();
    for node in &cluster.spec.nodes {
        let result = if node.managed {
            cluster
                .client(node)
                .status()
                .await
                .map_err(|error| error.to_string())
        } else {
            let account = controller::sql_observe::SqlAccount {
                user: cluster.secrets.admin_user().to_owned(),
                password: cluster.secrets.admin_password.clone(),
            };
            controller::sql_observe::observe(node, &account)
                .await
                .map_err(|error| error.to_string())
        };
        results.push((node.name.clone(), result));
    }
    // A node's word about itself is judged against the others' (a frozen node still
    // says Synced after it resumes).
    let mut reports: Vec<(String, Option<NodeReport>)> = results
        .iter()
        .map(|(name, result)| (name.clone(), result.as_ref().ok().cloned()))
        .collect();
    reconcile::mark_stale_views(&mut reports);
    let mut rows = Vec::new();
    for (node, ((_, result), (_, marked))) in cluster
        .spec
        .nodes
        .iter()
        .zip(results.into_iter().zip(reports))
    {
        let result = result.map(|report| marked.unwrap_or(report));
        let agent_state = |reachable: bool| match (node.managed, reachable) {
            (false, _) => "none",
            (true, true) => "up",
            (true, false) => "down",
        };
        let row = match result {
            Ok(report) => {
                let wsrep = report.wsrep.as_ref();
                let problem = if let Some(stale) = &report.stale_view {
                    Some(stale.clone())
                } else if report.process.running {
                    match wsrep {
                        Some(status) => {
                            status.write_health().err().map(|reason| reason.to_string())
                        }
                        None => report.sql_error.clone(),
                    }
                } else {
                    report
                        .process
                        .last_exit
                        .clone()
                        .or_else(|| report.grastate_error.clone())
                };
                NodeRow {
                    node: node.name.clone(),
                    address: node.address.clone(),
                    client_port: node.client_port,
                    agent: agent_state(true),
                    state: report.state_label(),
                    cluster_size: wsrep.map(|w| w.cluster_size),
                    cluster_status: wsrep.map(|w| w.cluster_status.clone()),
                    last_committed: wsrep.map(|w| w.last_committed).or_else(|| {
                        report
                            .grastate
                            .as_ref()
                            .and_then(|g| g.position())
                            .map(|p| p.seqno)
                    }),
                    recv_queue: wsrep.map(|w| w.local_recv_queue),
                    flow_control_paused: wsrep.map(|w| w.flow_control_paused),
                    synced: report.is_synced(),
                    problem,
                    report: Some(report),
                }
            }
            Err(error) => NodeRow {
                node: node.name.clone(),
                address: node.address.clone(),
                client_port: node.client_port,
                agent: agent_state(false),
                state: if node.managed {
                    "unknown"
                } else {
                    "unreachable"
                }
                .to_owned(),
                cluster_size: None,
                cluster_status: None,
                last_committed: None,
                recv_queue: None,
                flow_control_paused: None,
                synced: false,
                problem: Some(error),
                report: None,
            },
        };
        rows.push(row);
    }
    rows
}

pub fn print_table(rows: &[NodeRow]) {
    fn cell<T: ToString>(value: Option<T>) -> String {
        value.map_or("-".to_owned(), |v| v.to_string())
    }
    println!(
        "{:<10} {:<16} {:<15} {:>5} {:<12} {:>10} {:>7} {:>10}",
        "NODE", "ADDRESS", "STATE", "SIZE", "STATUS", "SEQNO", "RECV_Q", "FC_PAUSED"
    );
    for row in rows {
        println!(
            "{:<10} {:<16} {:<15} {:>5} {:<12} {:>10} {:>7} {:>10}",
            row.node,
            format!("{}:{}", row.address, row.client_port),
            if row.agent == "down" {
                "agent down".to_owned()
            } else {
                row.state.clone()
            },
            cell(row.cluster_size),
            cell(row.cluster_status.clone()),
            cell(row.last_committed),
            cell(row.recv_queue),
            cell(row.flow_control_paused.map(|f| format!("{f:.3}"))),
        );
    }
    for row in rows {
        if let Some(problem) = &row.problem {
            println!("  {}: {problem}", row.node);
        }
    }
}

pub async fn run(
    location: &Location,
    json: bool,
    watch: bool,
    interval: f64,
) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::load(location, !json)?;
    let interval = Duration::from_secs_f64(interval.clamp(0.2, 3600.0));
    loop {
        let rows = collect(&cluster).await;
        let arbitrator_rows = collect_arbitrators(&cluster, &rows).await;
        let proxy_row = collect_proxy(&cluster).await;
        let controller_row = collect_controller(&cluster);
        if json {
            let text = serde_json::to_string_pretty(&StatusJson {
                cluster: &cluster.spec.name,
                nodes: &rows,
                arbitrators: &arbitrator_rows,
                proxy: proxy_row,
                controller: controller_row,
            })?;
            println!("{text}");
        } else {
            if watch {
                // Clear the screen and home the cursor, like watch(1).
                print!("\x1b[2J\x1b[H");
                println!(
                    "cluster {} (every {:.1} s, Ctrl-C to stop)\n",
                    cluster.spec.name,
                    interval.as_secs_f64()
                );
            }
            print_table(&rows);
            print_arbitrators(&arbitrator_rows);
            if let Some(row) = &proxy_row {
                print_proxy(row);
            }
            if let Some(row) = &controller_row {
                print_controller(row);
            }
        }
        let all_synced = rows.iter().all(|row| row.synced);
        if !watch {
            if !cluster.spec.is_imported() && rows.iter().all(|row| row.agent == "down") {
                if let Err(error) = agent::Binaries::locate(&cluster.spec) {
                    eprintln!("{error:#}");
                }
            }
            return Ok(if all_synced {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            });
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
