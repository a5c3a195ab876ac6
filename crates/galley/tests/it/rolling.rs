//! `galley restart --rolling` on a real 3-node cluster with its proxy and controller,
//! while clients insert through the proxy's writer port: every node restarted (new
//! mariadbd), all Synced after, every acknowledged insert on every node, clients saw at
//! most lost connections (and reconnected), the controller did not fight the restart;
//! then the refusal when a node is down.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::{TestCluster, GALLEY};

const NODES: [&str; 3] = ["node1", "node2", "node3"];

/// What one client saw: the ids whose insert was acknowledged, the errors that only
/// cost a reconnect, and any other error (which a rolling restart must never cause).
#[derive(Debug, Default)]
struct ClientLog {
    acknowledged: Vec<u64>,
    reconnects: Vec<String>,
    other_errors: Vec<String>,
    acknowledged_after_restart: usize,
}

/// An error that a client handles by reconnecting: the connection was closed or reset
/// (the proxy moved the session off a drained node) or could not be opened. A server
/// error (deadlock, "WSREP not ready", the proxy's "no node" packet) is not one.
fn is_reconnect(error: &mysql_async::Error) -> bool {
    matches!(
        error,
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_)
    )
}

async fn client_loop(
    cluster_port: u16,
    password: String,
    client: u64,
    restart_done: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(cluster_port)
        .user(Some(agent::secrets::ADMIN_USER))
        .pass(Some(password))
        .prefer_socket(false);
    let mut next_id = client * 1_000_000;
    let mut connection: Option<mysql_async::Conn> = None;
    // Bounded: the restart takes well under this on any machine that runs the suite.
    for _ in 0..200_000 {
        if restart_done.load(Ordering::Relaxed) && log.acknowledged_after_restart >= 20 {
            break;
        }
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match mysql_async::Conn::new(options.clone()).await {
                Ok(conn) => connection.insert(conn),
                Err(error) => {
                    if is_reconnect(&error) {
                        log.reconnects.push(format!("connect: {error}"));
                    } else {
                        log.other_errors.push(format!("connect: {error}"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let done_before = restart_done.load(Ordering::Relaxed);
        match conn
            .exec_drop(
                "INSERT INTO rolling.acks (id, client) VALUES (?, ?)",
                (next_id, client),
            )
            .await
        {
            Ok(()) => {
                log.acknowledged.push(next_id);
                if done_before {
                    log.acknowledged_after_restart += 1;
                }
            }
            Err(error) => {
                if is_reconnect(&error) {
                    log.reconnects.push(format!("insert {next_id}: {error}"));
                } else {
                    log.other_errors.push(format!("insert {next_id}: {error}"));
                }
                // The session is gone or suspect either way: open a new one.
                connection = None;
            }
        }
    }
    log
}

async fn uptime_seconds(cluster: &TestCluster, node: usize) -> u64 {
    let mut conn = cluster.conn(node).await;
    let row: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Uptime'")
        .await
        .unwrap();
    row.unwrap().1.parse().unwrap()
}

async fn ids_on(cluster: &TestCluster, node: usize) -> BTreeSet<u64> {
    let mut conn = cluster.conn(node).await;
    // Read only after this node has applied everything committed before the read.
    conn.query_drop("SET SESSION wsrep_sync_wait = 1")
        .await
        .unwrap();
    conn.query("SELECT id FROM rolling.acks")
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn error_log(cluster: &TestCluster, node: &str) -> String {
    std::fs::read_to_string(cluster.node_dir(node).join("log/mariadbd.err")).unwrap_or_default()
}

fn status_json(cluster: &TestCluster) -> (bool, Value) {
    let output = cluster.galley(&["status", "--json"]);
    (
        output.status.success(),
        serde_json::from_slice(&output.stdout).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_clients_writing_and_refuses_a_degraded_cluster() {
    let cluster = TestCluster::with_proxy_and_controller();
    let (writer_port, _, _) = cluster.proxy_ports.unwrap();
    cluster.galley_ok(&["up", "--detach"]);
    {
        let mut conn = cluster.conn(1).await;
        conn.query_drop("CREATE DATABASE rolling").await.unwrap();
        conn.query_drop(
            "CREATE TABLE rolling.acks (id BIGINT PRIMARY KEY, client INT NOT NULL) ENGINE=InnoDB",
        )
        .await
        .unwrap();
    }
    let pids_before: Vec<i32> = NODES
        .iter()
        .map(|node| cluster.mariadbd_pid(node).expect("mariadbd runs"))
        .collect();

    let log_lengths: Vec<usize> = NODES
        .iter()
        .map(|node| error_log(&cluster, node).len())
        .collect();
    let restart_done = Arc::new(AtomicBool::new(false));
    let password = cluster.secrets().admin_password;
    let clients: Vec<_> = (1..=2)
        .map(|client| {
            tokio::spawn(client_loop(
                writer_port,
                password.clone(),
                client,
                Arc::clone(&restart_done),
            ))
        })
        .collect();
    // Let the clients get going before the first node is drained.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let began = tokio::time::Instant::now();
    let began_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let output = tokio::process::Command::new(GALLEY)
        .args(["restart", "--rolling", "--dir"])
        .arg(cluster.path())
        .output()
        .await
        .unwrap();
    let restart_seconds = began.elapsed().as_secs();
    restart_done.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "restart --rolling failed:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
    // Non-writers first (least preferred first), the writer (node1) last: it moves once.
    assert!(
        stdout.contains("(node3, node2, node1)"),
        "unexpected order:\n{stdout}"
    );

    let mut logs = Vec::new();
    for client in clients {
        logs.push(
            tokio::time::timeout(Duration::from_secs(120), client)
                .await
                .expect("clients finish their last inserts")
                .unwrap(),
        );
    }
    for (index, log) in logs.iter().enumerate() {
        println!(
            "client {}: {} acknowledged, reconnects: {:?}",
            index + 1,
            log.acknowledged.len(),
            log.reconnects
        );
        assert!(
            log.other_errors.is_empty(),
            "client {} saw errors other than a lost connection: {:?}\nrestart output:\n{stdout}",
            index + 1,
            log.other_errors
        );
        assert!(
            log.acknowledged_after_restart >= 20,
            "client {} stopped making progress",
            index + 1
        );
    }

    // Every node runs a new mariadbd, started during the restart.
    for (index, node) in NODES.iter().enumerate() {
        let pid_after = cluster.mariadbd_pid(node).expect("mariadbd runs");
        assert_ne!(pid_after, pids_before[index], "{node} was not restarted");
        let uptime = uptime_seconds(&cluster, index + 1).await;
        assert!(
            uptime <= restart_seconds + 1,
            "{node} has been up {uptime} s, longer than the restart ({restart_seconds} s)"
        );
    }
    // Each rejoined by IST: the rolling restart never costs a full copy of the data.
    for (index, node) in NODES.iter().enumerate() {
        let rejoin_log = error_log(&cluster, node)[log_lengths[index]..].to_owned();
        assert!(
            rejoin_log.contains("IST received")
                && !rejoin_log.contains("rsync SST completed on joiner"),
            "{node} did not rejoin by IST:\n{rejoin_log}"
        );
    }
    let (all_synced, status) = status_json(&cluster);
    assert!(all_synced, "not every node is Synced: {status:#}");
    // The writer left node1 when it was drained and did not come back (no fail-back).
    assert_ne!(status["proxy"]["writer"], "node1", "{status:#}");
    assert!(status["proxy"]["writer"].is_string(), "{status:#}");

    // Every acknowledged insert is on every node.
    let acknowledged: BTreeSet<u64> = logs
        .iter()
        .flat_map(|log| log.acknowledged.iter().copied())
        .collect();
    assert!(acknowledged.len() >= 40);
    for (index, node) in NODES.iter().enumerate() {
        let present = ids_on(&cluster, index + 1).await;
        let missing: Vec<&u64> = acknowledged.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "{node} lacks {} acknowledged inserts, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }

    // The controller did not fight the restart: it started nothing meanwhile.
    let events: Value = serde_json::from_slice(
        &cluster
            .galley(&["events", "--json", "--limit", "500"])
            .stdout,
    )
    .unwrap();
    let interfering: Vec<&Value> = events["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|decision| decision["at_ms"].as_i64().unwrap() >= began_ms)
        .filter(|decision| {
            let action = decision["action"].as_str().unwrap_or("");
            ["start", "restart", "bootstrap", "wipe"]
                .iter()
                .any(|kind| action.starts_with(kind))
        })
        .collect();
    assert!(
        interfering.is_empty(),
        "the controller acted during the restart: {interfering:#?}"
    );

    stops_at_the_first_failure_and_says_where_each_node_is(&cluster).await;
    stops_when_the_cluster_degrades_half_way(&cluster).await;

    // A degraded cluster is refused, and nothing is touched.
    cluster.galley_ok(&["stop", "node3"]);
    let pids_before_refusal: Vec<Option<i32>> = NODES
        .iter()
        .map(|node| cluster.mariadbd_pid(node))
        .collect();
    let refused = cluster.galley(&["restart", "--rolling"]);
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        !refused.status.success(),
        "a degraded cluster was restarted"
    );
    assert!(
        message.contains("refusing a rolling restart") && message.contains("node3 is stopped"),
        "{message}"
    );
    for (index, node) in NODES[..2].iter().enumerate() {
        assert_eq!(
            cluster.mariadbd_pid(node),
            pids_before_refusal[index],
            "{node} was touched by a refused restart"
        );
    }
    let (_, status) = status_json(&cluster);
    let drained: Vec<&Value> = status["proxy"]["status"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|backend| backend["draining"] == true)
        .collect();
    assert!(drained.is_empty(), "a refused restart drained {drained:?}");
}

/// Takes the client port of the second node the restart stops, while it is down, so
/// that its agent refuses to start it: a real failure half-way through.
struct TakePortOfSecondStopped {
    client_ports: Vec<(String, u16)>,
    stops: AtomicUsize,
    held: Mutex<Option<(String, std::net::TcpListener)>>,
}

impl rolling::Observer for TakePortOfSecondStopped {
    fn event(&self, event: rolling::Event) {
        if let rolling::Event::Stopped { node, .. } = &event {
            if self.stops.fetch_add(1, Ordering::SeqCst) == 1 {
                let port = self
                    .client_ports
                    .iter()
                    .find(|(name, _)| name == node)
                    .unwrap()
                    .1;
                let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
                *self.held.lock().unwrap() = Some((node.clone(), listener));
            }
        }
    }
}

/// Runs the library in-process, as `galley restart --rolling` and `galley deploy` do,
/// with the second node's start made to fail; then brings that node back the way the
/// error message says.
/// Records operator stops in the test cluster's controller store, as the CLI does.
struct LocalStore(spec::ClusterSpec);

impl rolling::Intent for LocalStore {
    fn set_desired(
        &self,
        node: &str,
        running: bool,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send {
        std::future::ready(
            controller::set_desired(&self.0, node, running).map_err(|error| error.to_string()),
        )
    }
}

/// Runs the library in-process over HTTP, as `galley restart --rolling` and a remote
/// deployment do, with `observer` watching (and, in these tests, injecting a fault).
async fn restart_in_process(
    cluster: &TestCluster,
    observer: &impl rolling::Observer,
) -> Result<rolling::Report, rolling::RollingError> {
    let spec = spec::load(&cluster.path().join("galley.toml"))
        .unwrap()
        .spec;
    let token = cluster.secrets().cluster_token;
    let mut nodes: Vec<&spec::NodeSpec> = spec.nodes.iter().collect();
    nodes.sort_by_key(|node| node.priority);
    let members: Vec<rolling::Member> = nodes
        .iter()
        .map(|node| rolling::Member {
            name: node.name.clone(),
            agent: agent::AgentClient::new(&node.agent_address(), &token),
        })
        .collect();
    let proxies = vec![proxy::AdminClient::for_spec(
        spec.proxy.as_ref().unwrap(),
        &token,
    )];
    rolling::rolling_restart(
        &members,
        &proxies,
        &LocalStore(spec.clone()),
        observer,
        &rolling::Options::default(),
    )
    .await
}

/// Stops `victim` (with `galley stop`) as soon as the first node is back in service.
struct StopAnotherAfterFirstUndrained {
    dir: std::path::PathBuf,
    victim: &'static str,
    done: AtomicBool,
}

impl rolling::Observer for StopAnotherAfterFirstUndrained {
    fn event(&self, event: rolling::Event) {
        if matches!(event, rolling::Event::Undrained { .. })
            && !self.done.swap(true, Ordering::SeqCst)
        {
            let status = std::process::Command::new(GALLEY)
                .args(["stop", self.victim, "--dir"])
                .arg(&self.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}

/// A node that fails between two steps stops the restart before another goes down.
async fn stops_when_the_cluster_degrades_half_way(cluster: &TestCluster) {
    let writer = cluster.proxy_status().await["writer"]
        .as_str()
        .unwrap()
        .to_owned();
    // The writer is restarted last; the node stopped behind the restart's back is it.
    let victim = NODES.iter().find(|node| **node == writer).unwrap();
    let observer = StopAnotherAfterFirstUndrained {
        dir: cluster.path().to_path_buf(),
        victim,
        done: AtomicBool::new(false),
    };
    let pids_before: std::collections::HashMap<String, Option<i32>> = NODES
        .iter()
        .map(|node| (node.to_string(), cluster.mariadbd_pid(node)))
        .collect();
    let error = restart_in_process(cluster, &observer)
        .await
        .expect_err("the restart must stop when a node is lost half-way");
    let message = error.to_string();
    println!("{message}");
    let rolling::RollingError::Failed { step, states, .. } = error else {
        panic!("not a mid-way failure: {message}");
    };
    assert_eq!(step, rolling::Step::Check, "{message}");
    assert!(
        message.contains(&format!("{victim} is stopped")),
        "{message}"
    );
    assert_eq!(states[0].state, "restarted, Synced", "{message}");
    assert!(states[1].state.ends_with("not touched"), "{message}");
    // No other node went down: the one not yet restarted runs its old mariadbd.
    let restarted = &states[0].node;
    for node in NODES {
        if node != restarted && node != *victim {
            assert_eq!(
                cluster.mariadbd_pid(node),
                pids_before[&node.to_string()],
                "{node} was restarted: {message}"
            );
        }
    }
    cluster.galley_ok(&["start", victim]);
    let (all_synced, status) = status_json(cluster);
    assert!(all_synced, "{status:#}");
}

/// The second node to stop cannot start again: the restart stops there and says which
/// node is in which state; then that node comes back the way the message says.
async fn stops_at_the_first_failure_and_says_where_each_node_is(cluster: &TestCluster) {
    let spec = spec::load(&cluster.path().join("galley.toml"))
        .unwrap()
        .spec;
    let observer = TakePortOfSecondStopped {
        client_ports: spec
            .nodes
            .iter()
            .map(|node| (node.name.clone(), node.client_port))
            .collect(),
        stops: AtomicUsize::new(0),
        held: Mutex::new(None),
    };
    let pids_before: Vec<(String, Option<i32>)> = NODES
        .iter()
        .map(|node| (node.to_string(), cluster.mariadbd_pid(node)))
        .collect();
    let result = restart_in_process(cluster, &observer).await;
    let (failed, listener) = observer
        .held
        .lock()
        .unwrap()
        .take()
        .expect("a second node was stopped");
    let error = result.expect_err("the restart must stop at the node that cannot start");
    let message = error.to_string();
    println!("{message}");
    let rolling::RollingError::Failed {
        node, step, states, ..
    } = error
    else {
        panic!("not a mid-way failure: {message}");
    };
    assert_eq!(node, failed, "{message}");
    assert_eq!(step, rolling::Step::Start, "{message}");
    assert!(
        message.contains("client_port"),
        "the agent's reason is passed on: {message}"
    );
    // One restarted, the failed one stopped and fenced off, the last untouched.
    assert_eq!(states.len(), 3, "{message}");
    assert_eq!(states[0].state, "restarted, Synced", "{message}");
    assert_eq!(states[1].node, failed);
    assert!(
        states[1].state.starts_with("stopped;")
            && states[1].state.contains("marked stopped on purpose"),
        "{message}"
    );
    assert_eq!(states[2].state, "untouched", "{message}");
    let untouched = &states[2].node;
    let pid_before = pids_before
        .iter()
        .find(|(name, _)| name == untouched)
        .unwrap()
        .1;
    assert_eq!(
        cluster.mariadbd_pid(untouched),
        pid_before,
        "{untouched} was touched"
    );
    let status = cluster.proxy_status().await;
    let backend = status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|backend| backend["name"] == failed.as_str())
        .unwrap();
    assert_eq!(backend["draining"], true, "{status:#}");
    let store = store::Store::open_read_only(&cluster.path().join("controller/galley.db")).unwrap();
    assert_eq!(store.stopped_on_purpose().unwrap(), vec![failed.clone()]);

    // The way back the message gives.
    drop(listener);
    cluster.galley_ok(&["start", &failed]);
    cluster.galley_ok(&["undrain", &failed]);
    let (all_synced, status) = status_json(cluster);
    assert!(all_synced, "{status:#}");
}

/// Without a proxy (and without a controller) the same restart runs: it only warns
/// that sessions on each node are cut when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_without_a_proxy_restarts_every_node() {
    let cluster = TestCluster::new();
    cluster.galley_ok(&["up", "--detach"]);
    let pids_before: Vec<Option<i32>> = NODES
        .iter()
        .map(|node| cluster.mariadbd_pid(node))
        .collect();
    let stdout = cluster.galley_ok(&["restart", "--rolling"]);
    assert!(stdout.contains("this cluster has no [proxy]"), "{stdout}");
    assert!(!stdout.contains("draining"), "{stdout}");
    assert!(stdout.contains("(node3, node2, node1)"), "{stdout}");
    for (index, node) in NODES.iter().enumerate() {
        assert_ne!(
            cluster.mariadbd_pid(node),
            pids_before[index],
            "{node} was not restarted"
        );
    }
    let (all_synced, status) = status_json(&cluster);
    assert!(all_synced, "{status:#}");

    // One node on its own, as a deployment applying a changed configuration does it.
    let spec = spec::load(&cluster.path().join("galley.toml"))
        .unwrap()
        .spec;
    let token = cluster.secrets().cluster_token;
    let members: Vec<rolling::Member> = spec
        .nodes
        .iter()
        .map(|node| rolling::Member {
            name: node.name.clone(),
            agent: agent::AgentClient::new(&node.agent_address(), &token),
        })
        .collect();
    let pids_before: Vec<Option<i32>> = NODES
        .iter()
        .map(|node| cluster.mariadbd_pid(node))
        .collect();
    let restarted = rolling::restart_one(
        "node2",
        &members,
        &[],
        &rolling::NoController,
        &(),
        &rolling::Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(restarted.old_pid.map(|pid| pid as i32), pids_before[1]);
    assert_eq!(
        restarted.new_pid.map(|pid| pid as i32),
        cluster.mariadbd_pid("node2")
    );
    assert_ne!(restarted.new_pid, restarted.old_pid);
    assert_eq!(cluster.mariadbd_pid("node1"), pids_before[0]);
    assert_eq!(cluster.mariadbd_pid("node3"), pids_before[2]);
    let unknown = rolling::restart_one(
        "node9",
        &members,
        &[],
        &rolling::NoController,
        &(),
        &rolling::Options::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("no node named `node9`; nodes: node1, node2, node3"),
        "{unknown}"
    );
    let (all_synced, status) = status_json(&cluster);
    assert!(all_synced, "{status:#}");
}
