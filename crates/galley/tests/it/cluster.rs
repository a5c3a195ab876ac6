//! One real 3-node cluster taken through its life: up, replication, a kill -9 and an IST
//! rejoin, down and up with every row kept, and the errors for a corrupted grastate.dat
//! and a missing data dir. The steps share one cluster because each builds on the state
//! the previous one left; every step asserts on that state.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::TestCluster;

async fn count_rows(cluster: &TestCluster, node: usize) -> i64 {
    let mut conn = cluster.conn(node).await;
    conn.query_first("SELECT COUNT(*) FROM app.items")
        .await
        .unwrap()
        .unwrap()
}

fn status_json(cluster: &TestCluster) -> Value {
    let output = cluster.galley(&["status", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_all_synced(cluster: &TestCluster) {
    let status = status_json(cluster);
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        assert_eq!(node["state"], "Synced", "{node}");
        assert_eq!(node["cluster_size"], 3, "{node}");
        assert_eq!(node["cluster_status"], "Primary", "{node}");
    }
}

fn log_of(cluster: &TestCluster, node: &str) -> String {
    std::fs::read_to_string(cluster.node_dir(node).join("log/mariadbd.err")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_cluster_lives_through_kill_down_and_up() {
    let cluster = TestCluster::new();

    // Up from nothing: three Synced nodes.
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(out.contains("3 nodes Synced"), "{out}");
    assert!(out.contains("mariadb --defaults-extra-file="), "{out}");
    assert_all_synced(&cluster);
    let plain = cluster.galley(&["status"]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&plain.stdout).contains("FC_PAUSED"));

    // Write on node 2, read on nodes 1 and 3.
    let mut node2 = cluster.conn(2).await;
    node2
        .query_drop("CREATE DATABASE app; CREATE TABLE app.items (id INT PRIMARY KEY, label VARCHAR(40)); INSERT INTO app.items VALUES (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    drop(node2);
    for node in [1, 3] {
        let mut conn = cluster.conn(node).await;
        // Galera is synchronous at commit; wsrep_sync_wait makes the read wait for it.
        conn.query_drop("SET SESSION wsrep_sync_wait = 1")
            .await
            .unwrap();
        let labels: Vec<String> = conn
            .query("SELECT label FROM app.items ORDER BY id")
            .await
            .unwrap();
        assert_eq!(labels, ["one", "two"], "node{node}");
    }

    // Secrets: a private file, never in a log or on a command line.
    let secrets_mode = std::fs::metadata(cluster.path().join("secrets.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(secrets_mode & 0o777, 0o600);
    let secrets = cluster.secrets();
    for node in ["node1", "node2", "node3"] {
        for log in ["mariadbd.err", "agent.log"] {
            let text =
                std::fs::read_to_string(cluster.node_dir(node).join("log").join(log)).unwrap();
            assert!(!text.contains(&secrets.admin_password), "{node}/{log}");
            assert!(!text.contains(&secrets.cluster_token), "{node}/{log}");
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            assert!(
                !cmdline.contains(&secrets.admin_password),
                "password in ps: {cmdline}"
            );
        }
    }

    // kill -9 node 2; writes go on; `galley start node2` brings it back by IST.
    let pid = cluster.mariadbd_pid("node2").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let log_before = log_of(&cluster, "node2").len();
    let mut node1 = cluster.conn(1).await;
    for id in 3..=50 {
        node1
            .query_drop(format!(
                "INSERT INTO app.items VALUES ({id}, 'while node2 was down')"
            ))
            .await
            .unwrap();
    }
    drop(node1);
    // The agent notices the death by itself and says how it ended.
    let mut seen_dead = false;
    for _ in 0..100 {
        let status = status_json(&cluster);
        if status["nodes"][1]["state"] == "stopped" {
            let problem = status["nodes"][1]["problem"].as_str().unwrap().to_owned();
            assert!(problem.contains("SIGKILL"), "{problem}");
            seen_dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_dead, "the agent did not notice the kill");
    assert_eq!(
        cluster.galley(&["status"]).status.code(),
        Some(3),
        "status exits 3 when a node is not Synced"
    );
    cluster.galley_ok(&["start", "node2"]);
    assert_all_synced(&cluster);
    let rejoin_log = log_of(&cluster, "node2")[log_before..].to_owned();
    assert!(
        rejoin_log.contains("IST received"),
        "node2 did not rejoin by IST:\n{rejoin_log}"
    );
    // The rsync script runs for IST too, but only a full copy logs "SST completed".
    assert!(
        rejoin_log.contains("rsync IST completed on joiner"),
        "{rejoin_log}"
    );
    assert!(
        !rejoin_log.contains("rsync SST completed on joiner"),
        "node2 needed a full SST"
    );
    assert_eq!(count_rows(&cluster, 2).await, 50);

    // Down: the highest-priority node leaves last and is marked safe to bootstrap.
    let out = cluster.galley_ok(&["down"]);
    assert!(out.contains("node1 holds the last state"), "{out}");
    let grastate =
        std::fs::read_to_string(cluster.node_dir("node1").join("data/grastate.dat")).unwrap();
    assert!(grastate.contains("safe_to_bootstrap: 1"), "{grastate}");
    assert!(cluster.mariadbd_pid("node1").is_none());

    // A corrupted grastate.dat: a clear error, no panic, nothing started.
    let grastate_path = cluster.node_dir("node3").join("data/grastate.dat");
    let original = std::fs::read_to_string(&grastate_path).unwrap();
    std::fs::write(
        &grastate_path,
        original.replace("seqno:", "seqno: banana #"),
    )
    .unwrap();
    let output = cluster.galley(&["up", "--detach"]);
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(
        error.contains("grastate.dat is invalid") && error.contains("seqno"),
        "{error}"
    );
    assert!(!error.contains("panicked"), "{error}");
    assert!(
        (1..=3).all(|n| cluster.mariadbd_pid(&format!("node{n}")).is_none()),
        "nothing may start"
    );
    std::fs::write(&grastate_path, &original).unwrap();

    // A missing data dir: galley will not guess whether it held the latest writes.
    let data3 = cluster.node_dir("node3").join("data");
    let moved = cluster.node_dir("node3").join("data.moved");
    std::fs::rename(&data3, &moved).unwrap();
    let output = cluster.galley(&["up", "--detach"]);
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(
        error.contains("holds no data") && error.contains("galley up --rebuild node3"),
        "{error}"
    );
    assert!(!error.contains("panicked"), "{error}");
    assert!(
        (1..=3).all(|n| cluster.mariadbd_pid(&format!("node{n}")).is_none()),
        "nothing may start"
    );
    std::fs::rename(&moved, &data3).unwrap();

    // Up again: the same cluster, bootstrapped from node1, with every row.
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(out.contains("node1 bootstrapped the cluster"), "{out}");
    assert_all_synced(&cluster);
    for node in 1..=3 {
        assert_eq!(count_rows(&cluster, node).await, 50, "node{node}");
    }

    // Stop and start one node by name.
    let out = cluster.galley_ok(&["stop", "node3"]);
    assert!(out.contains("node3 stopped at seqno"), "{out}");
    assert_eq!(status_json(&cluster)["nodes"][2]["state"], "stopped");
    cluster.galley_ok(&["start", "node3"]);
    assert_all_synced(&cluster);
    assert_eq!(count_rows(&cluster, 3).await, 50);
}
