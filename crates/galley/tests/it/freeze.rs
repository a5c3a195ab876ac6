//! A writer that freezes and comes back (issue 21's scenario): under a writer inserting
//! through the writer port and a reader reading through the reader port, the writer's
//! mariadbd is stopped with SIGSTOP for 15 s (what a paused VM, a stalled disk or a
//! cut-off host looks like to its peers), then resumed. The history is judged by the
//! chaos checkers: no read through the reader port misses a write acknowledged more
//! than 1 s before it began, and once the cluster is whole again every acknowledged
//! write is on every node.

use std::time::Duration;

use chaos::workload::{self, Run, Table};
use chaos::History;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::TestCluster;

const READERS: usize = 4;

/// Resumes the frozen process however the test ends, so that teardown can stop it.
struct Thaw(Pid);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

fn status(cluster: &TestCluster) -> Value {
    serde_json::from_slice(&cluster.galley(&["status", "--json"]).stdout).unwrap_or(Value::Null)
}

/// Every node Synced in one 3-node view (stale views count as not Synced).
fn whole(status: &Value) -> bool {
    status["nodes"].as_array().is_some_and(|nodes| {
        nodes
            .iter()
            .all(|node| node["synced"] == true && node["cluster_size"] == 3)
    })
}

fn opts(cluster: &TestCluster, port: u16) -> mysql_async::Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(agent::secrets::ADMIN_USER))
        .pass(Some(cluster.secrets().admin_password))
        .prefer_socket(false)
        .into()
}

/// How long, in ms, the resumed node went on calling itself Primary in the view it was
/// frozen in (`conf_id`): the stale window the proxy must not serve from. Polls its own
/// status directly for up to 10 s.
async fn stale_window(opts: mysql_async::Opts, conf_id: u64) -> u64 {
    let started = tokio::time::Instant::now();
    let mut last_stale = None;
    while started.elapsed() < Duration::from_secs(10) {
        let status = tokio::time::timeout(Duration::from_secs(2), async {
            let mut conn = mysql_async::Conn::new(opts.clone()).await?;
            let status = wsrep_view(&mut conn).await;
            conn.disconnect().await?;
            status
        })
        .await;
        match status {
            Ok(Ok((primary, id))) if primary && id == conf_id => {
                last_stale = Some(started.elapsed())
            }
            // Restarted, or out of the Primary component: the window is over.
            _ if last_stale.is_some() => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last_stale.map_or(0, |at| at.as_millis() as u64)
}

/// (Primary?, wsrep_cluster_conf_id) as the node says.
async fn wsrep_view(conn: &mut mysql_async::Conn) -> Result<(bool, u64), mysql_async::Error> {
    use mysql_async::prelude::Queryable as _;
    let rows: Vec<(String, String)> = conn
        .query("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_cluster_conf_id')")
        .await?;
    let value = |name: &str| {
        rows.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    Ok((
        value("wsrep_cluster_status") == "Primary",
        value("wsrep_cluster_conf_id").parse().unwrap_or(0),
    ))
}

/// The longest stretch, in ms, between two acknowledged writes.
fn longest_write_gap(history: &History) -> u64 {
    let mut ends: Vec<u64> = history.acknowledged().map(|w| w.ended_ms).collect();
    ends.sort_unstable();
    ends.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_writer_that_resumes_serves_no_stale_read_and_loses_no_write() {
    let cluster = TestCluster::with_proxy_and_controller();
    // The scenario: a freeze shorter than the controller's patience, so that the
    // resumed node comes back on its own (a longer freeze gets it restarted while frozen).
    let config = cluster.path().join("galley.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    // And without the hang fence, which would kill the frozen writer before it resumes
    // (the chaos runner's hang faults cover the fence): this is about a node that comes
    // back in its old view.
    std::fs::write(
        &config,
        text.replace("stuck_after_s = 10", "stuck_after_s = 30")
            .replacen("[server]\n", "[server]\nhang_fence_ms = 0\n", 1),
    )
    .unwrap();
    cluster.galley_ok(&["up", "--detach"]);
    let (writer_port, reader_port, _) = cluster.proxy_ports.unwrap();
    let table = Table {
        database: "chaos".into(),
        table: "freeze".into(),
    };
    workload::prepare(opts(&cluster, writer_port), &table)
        .await
        .unwrap();

    let clock = tokio::time::Instant::now();
    let run = |port| Run {
        opts: opts(&cluster, port),
        table: table.clone(),
        clock,
        answer_within: Duration::from_secs(10),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(workload::unique_inserts(run(writer_port), stopped.clone()));
    // Several readers, so that one read held up by a view change does not blind the
    // check for the rest of the window.
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            tokio::spawn(workload::max_id_reads(
                run(reader_port),
                Duration::from_millis(100),
                stopped.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let frozen_node = cluster.proxy_status().await["writer"]
        .as_str()
        .expect("the proxy has a writer")
        .to_owned();
    let frozen_port = cluster.client_ports[frozen_node[4..].parse::<usize>().unwrap() - 1];
    let (_, frozen_view) = wsrep_view(&mut cluster.conn_port(frozen_port).await.unwrap())
        .await
        .unwrap();
    let pid = Pid::from_raw(cluster.mariadbd_pid(&frozen_node).unwrap());
    let thaw = Thaw(pid);
    kill(pid, Signal::SIGSTOP).unwrap();
    let frozen_at = clock.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(15)).await;
    drop(thaw);
    let resumed_at = clock.elapsed().as_millis() as u64;
    let stale_window = tokio::spawn(stale_window(opts(&cluster, frozen_port), frozen_view));
    eprintln!("froze {frozen_node} at {frozen_at} ms, resumed at {resumed_at} ms");

    // The workload goes on while the resumed node finds out that it was left behind,
    // and until the cluster is whole again (bounded: the controller restarts a node
    // that stays outside the Primary component after stuck_after_s).
    let mut whole_at = None;
    for _ in 0..240 {
        if whole(&status(&cluster)) {
            whole_at = Some(clock.elapsed().as_millis() as u64);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A little more traffic on the whole cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    let writes = writer.await.unwrap();
    let mut history = History {
        writes,
        ..History::default()
    };
    for reader in readers {
        let (reads, failed) = reader.await.unwrap();
        history.reads.extend(reads);
        history.failed_reads += failed;
    }
    let events =
        String::from_utf8_lossy(&cluster.galley(&["events", "--limit", "60"]).stdout).into_owned();
    let whole_at = whole_at.unwrap_or_else(|| {
        panic!(
            "the cluster was not whole again within 120 s of the resume\nstatus: {:#}\nevents:\n{events}",
            status(&cluster)
        )
    });

    let stale = chaos::stale_reads(&history, 1_000);
    let stale_window_ms = stale_window.await.unwrap();
    let reads_on_frozen_after_resume = history
        .reads
        .iter()
        .filter(|read| read.node == frozen_node && read.began_ms >= resumed_at)
        .count();
    eprintln!(
        "writes: {} acknowledged, {} unknown, {} refused; longest gap between acknowledged writes {} ms; \
         reads: {} answered ({} by {frozen_node} after the resume), {} without an answer; \
         it called itself Primary in its old view for {stale_window_ms} ms after the resume; \
         whole again {} ms after the resume; stale reads: {}",
        history.count(chaos::Outcome::Acknowledged),
        history.count(chaos::Outcome::Unknown),
        history.count(chaos::Outcome::Failed),
        longest_write_gap(&history),
        history.reads.len(),
        reads_on_frozen_after_resume,
        history.failed_reads,
        whole_at - resumed_at,
        stale.len()
    );
    assert!(
        stale.is_empty(),
        "{} stale reads through the reader port, first: {:?}\nevents:\n{events}",
        stale.len(),
        stale.first()
    );
    // The scenario happened: otherwise this run proves nothing about stale views.
    assert!(
        stale_window_ms > 0,
        "{frozen_node} never reported its old view (conf id {frozen_view}) after the resume"
    );
    // The two others went on taking writes while the writer was frozen.
    let during_freeze = history
        .acknowledged()
        .filter(|write| write.ended_ms > frozen_at && write.ended_ms < resumed_at)
        .count();
    assert!(
        during_freeze > 0,
        "no write was acknowledged while {frozen_node} was frozen\nevents:\n{events}"
    );

    for (index, port) in cluster.client_ports.iter().enumerate() {
        let present = workload::present_ids(opts(&cluster, *port), &table)
            .await
            .unwrap();
        let missing = chaos::missing_writes(&history, &present);
        assert!(
            missing.is_empty(),
            "node{}: acknowledged writes missing {:?}, refused writes present {:?}",
            index + 1,
            missing.lost,
            missing.unexpected
        );
    }
}
