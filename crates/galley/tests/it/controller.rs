//! The controller against a real 3-node cluster: it brings back a killed node and a
//! cluster whose every node was killed while writes went on (every acknowledged write
//! kept), brings a gracefully stopped cluster back from the right node, and refuses to
//! bootstrap below the high-water mark when the most advanced node's data is gone.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::AgentClient;
use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::{TestCluster, GALLEY};

/// The ids step 4 writes while only node1 runs.
const LATE_IDS: i32 = 2_000_000_000;

fn status(cluster: &TestCluster) -> Value {
    serde_json::from_slice(&cluster.galley(&["status", "--json"]).stdout).unwrap()
}

fn all_synced(cluster: &TestCluster) -> bool {
    let status = status(cluster);
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|node| node["synced"] == true && node["cluster_size"] == 3)
}

/// Waits, without acting, until every node is Synced; bounded.
async fn wait_all_synced(cluster: &TestCluster, what: &str, seconds: u64) {
    for _ in 0..seconds * 4 {
        if all_synced(cluster) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events =
        String::from_utf8_lossy(&cluster.galley(&["events", "--limit", "40"]).stdout).into_owned();
    panic!(
        "{what}: not all Synced after {seconds} s\nstatus: {:#}\nevents:\n{events}",
        status(cluster)
    );
}

fn events_text(cluster: &TestCluster) -> String {
    String::from_utf8_lossy(&cluster.galley(&["events", "--limit", "500"]).stdout).into_owned()
}

fn controller_pid(cluster: &TestCluster) -> Option<i32> {
    std::fs::read_to_string(cluster.path().join("controller/controller.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn stop_controller(cluster: &TestCluster) {
    let pid = controller_pid(cluster).expect("a controller runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for _ in 0..100 {
        // A controller this test spawned stays a zombie until waited for: count it gone.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.contains(") Z "));
        if zombie || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the controller did not stop");
}

fn start_controller(cluster: &TestCluster) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cluster.path().join("controller/test-controller.log"))
        .unwrap();
    Command::new(GALLEY)
        .arg("controller")
        .arg("--config")
        .arg(cluster.path().join("galley.toml"))
        .arg("--dir")
        .arg(cluster.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn agent(cluster: &TestCluster, node: usize) -> AgentClient {
    let text = std::fs::read_to_string(cluster.path().join("galley.toml")).unwrap();
    let spec = spec::parse(&cluster.path().join("galley.toml"), &text)
        .unwrap()
        .spec;
    AgentClient::new(
        &spec.nodes[node - 1].agent_address(),
        &cluster.secrets().cluster_token,
    )
}

fn kill9(cluster: &TestCluster, node: &str) {
    let pid = cluster.mariadbd_pid(node).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_heals_crashes_and_refuses_below_the_high_water_mark() {
    let cluster = TestCluster::with_controller();
    cluster.galley_ok(&["up", "--detach"]);
    assert!(
        controller_pid(&cluster).is_some(),
        "galley up starts the controller"
    );
    let mut conn = cluster.conn(1).await;
    conn.query_drop("CREATE DATABASE app; CREATE TABLE app.acked (id INT PRIMARY KEY)")
        .await
        .unwrap();
    drop(conn);

    // 1. kill -9 one node: back to three Synced with no operator action.
    kill9(&cluster, "node2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_all_synced(&cluster, "after kill -9 of node2", 120).await;
    // The controller notices the recovery on its next observation.
    let mut events = String::new();
    for _ in 0..40 {
        events = events_text(&cluster);
        if events.contains("recovery_finished") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        events.contains("node_down") && events.contains("node2"),
        "{events}"
    );
    assert!(events.contains("recovery_finished"), "{events}");
    // The alert command got the warning and critical events as JSON on stdin; each
    // alert runs its own command, so each writes its own file (they may run at once).
    let mut alerts = Vec::new();
    for entry in std::fs::read_dir(cluster.path().join("alerts"))
        .into_iter()
        .flatten()
        .flatten()
    {
        // Complete alerts only: a command still writing has a `.part` file.
        if entry.path().extension().is_some_and(|e| e == "json") {
            alerts.push(std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    let kinds: Vec<String> = alerts
        .iter()
        .map(|alert| {
            serde_json::from_str::<Value>(alert).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let alerts = alerts.join("\n");
    assert!(kinds.iter().any(|k| k == "node_down"), "alerts: {alerts}");
    assert!(
        kinds.iter().any(|k| k == "recovery_started"),
        "alerts: {alerts}"
    );

    // 2. kill -9 every node while a client writes; every acknowledged write survives.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let acked = Arc::clone(&acked);
        let stop = Arc::clone(&stop);
        let ports = cluster.client_ports.clone();
        let password = cluster.secrets().admin_password;
        tokio::spawn(async move {
            let mut id = 0;
            let mut conn: Option<mysql_async::Conn> = None;
            let mut port_index = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if conn.is_none() {
                    let options = mysql_async::OptsBuilder::default()
                        .ip_or_hostname("127.0.0.1")
                        .tcp_port(ports[port_index % 3])
                        .user(Some(agent::secrets::ADMIN_USER))
                        .pass(Some(password.clone()))
                        .prefer_socket(false);
                    port_index += 1;
                    match tokio::time::timeout(
                        Duration::from_secs(2),
                        mysql_async::Conn::new(options),
                    )
                    .await
                    {
                        Ok(Ok(c)) => conn = Some(c),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                id += 1;
                let insert = conn
                    .as_mut()
                    .unwrap()
                    .query_drop(format!("INSERT INTO app.acked VALUES ({id})"));
                match tokio::time::timeout(Duration::from_secs(3), insert).await {
                    Ok(Ok(())) => acked.lock().unwrap().push(id),
                    _ => conn = None,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let uuid_before = status(&cluster)["nodes"][0]["report"]["wsrep"]["cluster_state_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    for node in ["node1", "node2", "node3"] {
        kill9(&cluster, node);
    }
    let before_kill = acked.lock().unwrap().len();
    assert!(before_kill > 0, "the writer made progress before the kill");
    wait_all_synced(&cluster, "after kill -9 of every node", 240).await;
    // Let the writer commit through the recovered cluster too.
    let resumed_at = acked.lock().unwrap().len();
    for _ in 0..100 {
        if acked.lock().unwrap().len() > resumed_at + 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let acked: BTreeSet<i32> = acked.lock().unwrap().iter().copied().collect();
    assert!(
        acked.len() > resumed_at,
        "writes resumed after the recovery"
    );
    for node in 1..=3 {
        let mut conn = cluster.conn(node).await;
        conn.query_drop("SET SESSION wsrep_sync_wait = 1")
            .await
            .unwrap();
        let present: Vec<i32> = conn.query("SELECT id FROM app.acked").await.unwrap();
        let present: BTreeSet<i32> = present.into_iter().collect();
        let missing: Vec<&i32> = acked.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "node{node} lost acknowledged writes {missing:?}"
        );
    }
    let uuid_after = status(&cluster)["nodes"][0]["report"]["wsrep"]["cluster_state_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        uuid_after, uuid_before,
        "the recovery kept the cluster's history (no new cluster UUID)"
    );
    let events = events_text(&cluster);
    assert!(events.contains("cluster_not_primary"), "{events}");
    assert!(
        events.contains("bootstrap node"),
        "the cluster was bootstrapped from a recovered node:\n{events}"
    );
    // Nothing was lost, so nothing may be refused: a donor passing through Joined
    // once made the Primary look one write behind its mark (planner's table test
    // `a_primary_behind_its_mark_is_missing_writes`).
    assert!(
        !events.contains("recovery_refused"),
        "a refusal without a loss:\n{events}"
    );

    // 3. Graceful stop of every node (the controller paused meanwhile); the controller
    //    brings the cluster back from the node that left last.
    stop_controller(&cluster).await;
    for node in [3, 2, 1] {
        agent(&cluster, node).stop().await.unwrap();
    }
    let mut controller = start_controller(&cluster);
    wait_all_synced(&cluster, "after a graceful stop of every node", 120).await;
    let json: Value = serde_json::from_slice(
        &cluster
            .galley(&["events", "--json", "--limit", "200"])
            .stdout,
    )
    .unwrap();
    let bootstraps: Vec<String> = json["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["action"].as_str())
        .filter(|action| action.starts_with("bootstrap"))
        .map(str::to_owned)
        .collect();
    assert!(
        bootstraps.last().unwrap().starts_with("bootstrap node1"),
        "{bootstraps:?}"
    );

    // 4. The most advanced node's data is lost: the controller refuses to bootstrap
    //    below the high-water mark and says why.
    cluster.galley_ok(&["stop", "node3"]);
    cluster.galley_ok(&["stop", "node2"]);
    let mut conn = cluster.conn(1).await;
    // Far above any id the write loop of step 2 reaches, however long it ran (it once
    // passed 100,000 on a loaded machine and collided with this step's rows).
    for id in LATE_IDS..LATE_IDS + 20 {
        conn.query_drop(format!("INSERT INTO app.acked VALUES ({id})"))
            .await
            .unwrap();
    }
    let committed: i64 = conn.query_first("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LAST_COMMITTED'").await.unwrap().unwrap();
    drop(conn);
    // The controller sees node1 at `committed` and raises its mark.
    let mut seen = false;
    for _ in 0..60 {
        let recover: Value = serde_json::from_slice(&cluster.galley(&["recover", "--json"]).stdout)
            .unwrap_or(Value::Null);
        if recover["evidence"]["high_water_mark"]["seqno"]
            .as_i64()
            .unwrap_or(0)
            >= committed
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen,
        "the controller did not record the high-water mark {committed}"
    );
    stop_controller(&cluster).await;
    let _ = controller.wait();
    agent(&cluster, 1).stop().await.unwrap();
    let data1 = cluster.node_dir("node1").join("data");
    let aside = cluster.node_dir("node1").join("data.lost");
    std::fs::rename(&data1, &aside).unwrap();
    // The operator wants node2 and node3 back; only node1's disk is gone.
    {
        let store = store::Store::open(&cluster.path().join("controller/galley.db")).unwrap();
        store.set_desired("node2", true, 1).unwrap();
        store.set_desired("node3", true, 1).unwrap();
    }
    let mut controller = start_controller(&cluster);
    let mut refused = String::new();
    for _ in 0..80 {
        let events = events_text(&cluster);
        if let Some(line) = events.lines().rev().find(|line| {
            line.contains("recovery_refused") && line.contains("below the high-water mark")
        }) {
            refused = line.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        refused.contains("below the high-water mark"),
        "no refusal recorded:\n{}",
        events_text(&cluster)
    );
    assert!(refused.contains("node1 has no data"), "{refused}");
    assert!(
        (1..=3).all(|n| cluster.mariadbd_pid(&format!("node{n}")).is_none()),
        "nothing may start below the mark"
    );
    let output = cluster.galley(&["recover"]);
    assert_eq!(output.status.code(), Some(3));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("REFUSED") && text.contains("high-water mark"),
        "{text}"
    );

    // The disk comes back: the controller bootstraps node1 and every write is there.
    std::fs::rename(&aside, &data1).unwrap();
    wait_all_synced(&cluster, "after node1's data came back", 120).await;
    let mut conn = cluster.conn(2).await;
    let count: i64 = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM app.acked WHERE id >= {LATE_IDS}"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count, 20);
    drop(conn);
    stop_controller(&cluster).await;
    let _ = controller.wait();
}
