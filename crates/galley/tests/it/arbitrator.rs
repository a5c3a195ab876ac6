//! Two real data nodes and a real garbd (`[[arbitrator]]`), brought up by `galley up`:
//! garbd is counted in the view, and when one data node is killed with SIGKILL under a
//! stream of writes, the other keeps a Primary component and takes writes (the
//! survivor and garbd are 2 of the last view's 3). `galley down` stops garbd first. With
//! a controller, a killed data node is started again: the view of the survivor and garbd
//! is not taken for one that still holds the dead node.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;
use tokio::time::Instant;

use crate::support::TestCluster;

/// `wsrep_cluster_status`, `wsrep_cluster_size` and the Primary component's members as
/// node `index` reports them, or None while it does not answer.
async fn view_of(cluster: &TestCluster, index: usize) -> Option<(String, i64, Vec<String>)> {
    let port = cluster.client_ports[index - 1];
    let mut conn = cluster.conn_port(port).await.ok()?;
    let status: (String, String) = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_status'")
        .await
        .ok()??;
    let size: (String, String) = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
        .await
        .ok()??;
    let mut members: Vec<String> = conn
        .query("SELECT node_name FROM mysql.wsrep_cluster_members")
        .await
        .ok()?;
    members.sort();
    Some((status.1, size.1.parse().ok()?, members))
}

/// Polls node `index` until its view is `(status, size, members)`, for at most 60 s.
async fn wait_for_view(cluster: &TestCluster, index: usize, status: &str, members: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = view_of(cluster, index).await;
        if let Some((seen_status, size, seen_members)) = &last {
            if seen_status == status && *size == members.len() as i64 && seen_members == members {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("node{index} never reported {status} with members {members:?}; last seen {last:?}");
}

fn status_json(cluster: &TestCluster) -> Value {
    let output = cluster.galley(&["status", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_data_nodes_and_garbd_keep_a_primary_when_one_node_is_killed() {
    let cluster = TestCluster::two_nodes_and_arbitrator();

    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(
        out.contains("2 nodes Synced and 1 arbitrator(s) in the view"),
        "{out}"
    );
    assert!(out.contains("arbitrator garbd1 at 127.0.0.1:"), "{out}");
    assert!(
        out.contains("(segment 0): in the Primary component, garbd pid "),
        "{out}"
    );
    // garbd is a member of the view on both data nodes.
    for node in [1, 2] {
        wait_for_view(&cluster, node, "Primary", &["garbd1", "node1", "node2"]).await;
    }
    let status = status_json(&cluster);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 2, "{status}");
    let arbitrators = status["arbitrators"].as_array().unwrap();
    assert_eq!(arbitrators.len(), 1, "{status}");
    assert_eq!(arbitrators[0]["arbitrator"], "garbd1", "{status}");
    assert_eq!(arbitrators[0]["in_primary"], true, "{status}");
    assert!(arbitrators[0]["garbd_pid"].is_i64(), "{status}");

    // A rolling restart counts garbd in the whole view (2 data nodes + 1 = 3), so it goes
    // ahead: each node down in turn leaves the other and garbd, 2 of 3.
    let out = cluster.galley_ok(&["restart", "--rolling"]);
    assert!(out.contains("Rolling restart of ittest done"), "{out}");
    for node in [1, 2] {
        wait_for_view(&cluster, node, "Primary", &["garbd1", "node1", "node2"]).await;
    }

    // garbd killed: the two data nodes are 2 of 3 and stay Primary; a rolling restart is
    // refused, since stopping either node now would cost quorum; `galley up` starts
    // garbd again.
    let garbd_pid = std::fs::read_to_string(cluster.path().join("garbd1/run/garbd.pid"))
        .unwrap()
        .trim()
        .parse::<i32>()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(garbd_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for node in [1, 2] {
        wait_for_view(&cluster, node, "Primary", &["node1", "node2"]).await;
    }
    let refused = cluster.galley(&["restart", "--rolling"]);
    let text = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains("Synced in a cluster of 2 nodes, not 3 (2 data nodes and 1 arbitrator(s))"),
        "{text}"
    );
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(
        out.contains("2 nodes Synced and 1 arbitrator(s) in the view"),
        "{out}"
    );
    wait_for_view(&cluster, 1, "Primary", &["garbd1", "node1", "node2"]).await;

    // A stream of inserts on node2, the node that survives.
    let mut setup = cluster.conn(2).await;
    setup
        .query_drop("CREATE DATABASE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    drop(setup);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        let port = cluster.client_ports[1];
        let password = cluster.secrets().admin_password;
        tokio::spawn(async move {
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(port)
                .user(Some(agent::secrets::ADMIN_USER))
                .pass(Some(password))
                .prefer_socket(false);
            let mut conn = None;
            let mut next_id: u64 = 1;
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if conn.is_none() {
                    conn = mysql_async::Conn::new(options.clone()).await.ok();
                }
                let Some(session) = conn.as_mut() else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                match session
                    .exec_drop("INSERT INTO app.items VALUES (?)", (next_id,))
                    .await
                {
                    Ok(()) => {
                        acked.push(next_id);
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                        next_id += 1;
                    }
                    Err(error) => {
                        // The insert may or may not have committed: never reuse its id.
                        next_id += 1;
                        errors.push(error.to_string());
                        conn = None;
                    }
                }
            }
            (acked, errors)
        })
    };
    // Some writes before the kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "no writes were acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // SIGKILL node1's mariadbd (the most preferred node) under the writes.
    let pid = cluster.mariadbd_pid("node1").expect("node1 runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let at_kill = acknowledged.load(Ordering::SeqCst);

    // node2 and garbd are 2 of the last view's 3: still a Primary component, without any
    // bootstrap, and the view counts garbd.
    wait_for_view(&cluster, 2, "Primary", &["garbd1", "node2"]).await;
    // The writes go on: more are acknowledged after the kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < at_kill + 100 {
        assert!(
            Instant::now() < deadline,
            "node2 took no writes after node1 was killed (acknowledged {} at the kill, {} now)",
            at_kill,
            acknowledged.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (acked, errors) = writer.await.unwrap();

    // Every acknowledged insert is on node2 (an insert that failed may or may not have
    // committed, and is not counted either way).
    let mut conn = cluster.conn(2).await;
    let ids: Vec<u64> = conn.query("SELECT id FROM app.items").await.unwrap();
    let ids: std::collections::HashSet<u64> = ids.into_iter().collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged inserts lost: {lost:?} (errors seen: {errors:?})"
    );
    let wsrep_ready: (String, String) = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_ready'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wsrep_ready.1, "ON");
    drop(conn);

    // galley status: node1 down, node2 Synced in a view of 2 that counts garbd.
    let status = status_json(&cluster);
    let nodes = status["nodes"].as_array().unwrap();
    let node2 = nodes.iter().find(|node| node["node"] == "node2").unwrap();
    assert_eq!(node2["state"], "Synced", "{status}");
    assert_eq!(node2["cluster_size"], 2, "{status}");
    assert_eq!(status["arbitrators"][0]["in_primary"], true, "{status}");

    // down stops garbd before the data nodes.
    let out = cluster.galley_ok(&["down"]);
    eprintln!("galley down:\n{out}");
    let garbd_line = out.find("garbd1: garbd stopped").expect(&out);
    let node2_line = out.find("node2: stopping").expect(&out);
    assert!(garbd_line < node2_line, "{out}");
    // With garbd gone first, node2 was the last member of the Primary component.
    assert!(
        out.contains("node2 holds the last state") && out.contains("marked safe to bootstrap"),
        "{out}"
    );

    // Up again: node1 (killed, position unknown) is recovered, node2 bootstraps as the
    // most advanced node, node1 rejoins, and garbd joins the new view.
    let out = cluster.galley_ok(&["up", "--detach"]);
    eprintln!("galley up again:\n{out}");
    assert!(
        out.contains("2 nodes Synced and 1 arbitrator(s) in the view"),
        "{out}"
    );
    wait_for_view(&cluster, 1, "Primary", &["garbd1", "node1", "node2"]).await;
    let mut conn = cluster.conn(1).await;
    conn.query_drop("SET SESSION wsrep_sync_wait = 1")
        .await
        .unwrap();
    let count: u64 = conn
        .query_first("SELECT COUNT(*) FROM app.items")
        .await
        .unwrap()
        .unwrap();
    assert!(
        count >= acked.len() as u64,
        "{count} rows, {} acknowledged",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_restarts_a_killed_node_beside_garbd() {
    let cluster = TestCluster::two_nodes_and_arbitrator_with_controller();
    cluster.galley_ok(&["up", "--detach"]);
    wait_for_view(&cluster, 1, "Primary", &["garbd1", "node1", "node2"]).await;

    let pid = cluster.mariadbd_pid("node2").expect("node2 runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // node1 and garbd (a view of 2) stay Primary; the controller recovers node2's
    // position and starts it, and it rejoins: the view is whole again.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let restarted = cluster
            .mariadbd_pid("node2")
            .is_some_and(|new_pid| new_pid != pid);
        let view = view_of(&cluster, 2).await;
        let whole = view.as_ref().is_some_and(|(status, _, members)| {
            status == "Primary" && members == &["garbd1", "node1", "node2"]
        });
        if restarted && whole {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller did not bring node2 back; view {view:?}\n{}",
            String::from_utf8_lossy(&cluster.galley(&["events", "--limit", "10"]).stdout)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let events = cluster.galley_ok(&["events", "--limit", "20"]);
    assert!(events.contains("start node2"), "{events}");
    cluster.galley_ok(&["down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbd_that_outlived_both_data_nodes_is_restarted_by_up() {
    let cluster = TestCluster::two_nodes_and_arbitrator();
    cluster.galley_ok(&["up", "--detach"]);
    wait_for_view(&cluster, 1, "Primary", &["garbd1", "node1", "node2"]).await;

    // Both data nodes stopped one after the other: garbd is left as a Primary component
    // of its own, which a bootstrapped node must never meet. `up` stops it first and
    // starts it again once the nodes are Synced.
    cluster.galley_ok(&["stop", "node2"]);
    cluster.galley_ok(&["stop", "node1"]);
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(
        out.contains("garbd1: garbd stopped until the data nodes are back"),
        "{out}"
    );
    assert!(
        out.contains("2 nodes Synced and 1 arbitrator(s) in the view"),
        "{out}"
    );
    for node in [1, 2] {
        wait_for_view(&cluster, node, "Primary", &["garbd1", "node1", "node2"]).await;
    }

    // Both data nodes killed with SIGKILL while garbd runs: the same.
    for node in ["node1", "node2"] {
        let pid = cluster.mariadbd_pid(node).expect("runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(
        out.contains("garbd1: garbd stopped until the data nodes are back"),
        "{out}"
    );
    for node in [1, 2] {
        wait_for_view(&cluster, node, "Primary", &["garbd1", "node1", "node2"]).await;
    }
    cluster.galley_ok(&["down"]);
}
