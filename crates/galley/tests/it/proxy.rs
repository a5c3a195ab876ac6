//! The proxy in front of a real 3-node cluster: single writer, reads spread, the health
//! rules (desync, read_only, reject_queries), drain, SIGHUP reload with a session kept,
//! kill -9 of the writer, no fail-back, and the error packet when no node is left; bytes
//! pass whole and clean quits stay clean with both forwarders (kernel splice, userspace).
//! One cluster for the whole story; each step asserts on the state the last one left.

use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::TestCluster;

/// Polls the proxy status until `condition` holds; bounded at 30 s.
async fn wait_for(cluster: &TestCluster, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = cluster.proxy_status().await;
        if condition(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}; last proxy status: {last:#}");
}

fn backend<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap()
}

async fn node_name(conn: &mut mysql_async::Conn) -> String {
    conn.query_first("SELECT @@wsrep_node_name")
        .await
        .unwrap()
        .unwrap()
}

async fn set_global(cluster: &TestCluster, node: usize, assignment: &str) {
    let mut conn = cluster.conn(node).await;
    conn.query_drop(format!("SET GLOBAL {assignment}"))
        .await
        .unwrap();
}

async fn global_status(conn: &mut mysql_async::Conn, name: &str) -> u64 {
    let row: (String, String) = conn
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .unwrap()
        .unwrap();
    row.1.parse().unwrap()
}

/// Big values pass whole both ways through the writer port, and sessions that end with
/// COM_QUIT reach the server with it (a FIN passed on before the last bytes would cut it
/// off, and the server would count the session in Aborted_clients).
async fn bytes_pass_whole(cluster: &TestCluster, port: u16) {
    let mut conn = cluster.conn_port(port).await.unwrap();
    let sent: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let echoed: Vec<u8> = conn
        .exec_first("SELECT ?", (sent.clone(),))
        .await
        .unwrap()
        .unwrap();
    assert!(
        echoed == sent,
        "4 MB echoed through the proxy came back different"
    );
    let big: String = conn
        .query_first("SELECT REPEAT('abc', 5000000)")
        .await
        .unwrap()
        .unwrap();
    assert!(
        big == "abc".repeat(5_000_000),
        "a 15 MB result came back different"
    );
    conn.disconnect().await.unwrap();

    let mut direct = cluster.conn(1).await;
    let aborted_before = global_status(&mut direct, "Aborted_clients").await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let mut conn = cluster.conn_port(port).await.unwrap();
        ids.push(conn.id());
        conn.query_drop("DO 1").await.unwrap();
        conn.disconnect().await.unwrap();
    }
    let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut gone = false;
    for _ in 0..200 {
        let left: u64 = direct
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN ({list})"
            ))
            .await
            .unwrap()
            .unwrap();
        if left == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the server still has sessions of {list}");
    assert_eq!(
        global_status(&mut direct, "Aborted_clients").await,
        aborted_before,
        "sessions that ended with COM_QUIT were counted as aborted"
    );
}

async fn proxy_metrics(admin_port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Restarts the proxy (SIGTERM, then `galley up` starts it again) after writing `config`.
async fn restart_proxy(cluster: &TestCluster, config: &str) {
    std::fs::write(cluster.path().join("galley.toml"), config).unwrap();
    let pid = cluster.proxy_status().await["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    for _ in 0..100 {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.galley_ok(&["up", "--detach"]);
    wait_for(cluster, "writer node1", |s| s["writer"] == "node1").await;
}

/// With `server.causal_reads`, every node has `wsrep_sync_wait = 1`, and each of the
/// reader sessions (one on each node) sees every row the moment after the writer port
/// acknowledged it (docs/galera.md, "Causal reads").
async fn causal_reads_see_the_last_write(
    cluster: &TestCluster,
    writer_port: u16,
    mut readers: Vec<mysql_async::Conn>,
) {
    for (index, reader) in readers.iter_mut().enumerate() {
        let sync_wait: Option<u32> = reader
            .query_first("SELECT @@global.wsrep_sync_wait")
            .await
            .unwrap();
        assert_eq!(sync_wait, Some(1), "reader session {index}");
    }
    let mut writer = cluster.conn_port(writer_port).await.unwrap();
    writer
        .query_drop("CREATE DATABASE IF NOT EXISTS causal")
        .await
        .unwrap();
    writer
        .query_drop("CREATE TABLE causal.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    for id in 0..300u32 {
        writer
            .exec_drop("INSERT INTO causal.t VALUES (?)", (id,))
            .await
            .unwrap();
        let reader = &mut readers[id as usize % 3];
        let seen: Option<u32> = reader
            .exec_first("SELECT id FROM causal.t WHERE id = ?", (id,))
            .await
            .unwrap();
        assert_eq!(
            seen,
            Some(id),
            "row {id}, acknowledged before the read began"
        );
    }
    writer.query_drop("DROP DATABASE causal").await.unwrap();
}

/// The writer is node2 (moved there by a drain, and sticky), although node1 is
/// preferred. A second proxy started now with its own choice (`writer_decision =
/// "local"`) would send writes to node1: two writers. With the shared record (the
/// default) it follows node2, the record in the cluster says so, and so does its status.
async fn second_proxies_follow_the_shared_record(cluster: &TestCluster, config: &str) {
    let (writer_port, reader_port, admin_port) = cluster.proxy_ports.unwrap();
    let multi_port = config
        .lines()
        .find_map(|line| line.strip_prefix("multi_writer_port = "))
        .unwrap()
        .to_owned();
    let mut record = cluster.conn(1).await;
    let recorded: Option<(u64, String)> = record
        .query_first("SELECT term, node FROM galley.writer WHERE id = 1")
        .await
        .unwrap();
    let (term, node) = recorded.expect("the first proxy recorded a writer");
    assert_eq!(node, "node2");
    assert!(
        term >= 2,
        "recorded at start, then moved by the drain: term {term}"
    );
    for (mode, expected) in [("local", "node1"), ("shared", "node2")] {
        let ports = testkit::free_ports(4);
        let text = config
            .replace(
                &format!("writer_port = {writer_port}\n"),
                &format!("writer_port = {}\n", ports[0]),
            )
            .replace(
                &format!("reader_port = {reader_port}\n"),
                &format!("reader_port = {}\n", ports[1]),
            )
            .replace(
                &format!("admin_port = {admin_port}\n"),
                &format!("admin_port = {}\n", ports[2]),
            )
            .replace(
                &format!("multi_writer_port = {multi_port}\n"),
                &format!("multi_writer_port = {}\n", ports[3]),
            )
            .replace(
                "writer_grace_ms = 0\n",
                &format!("writer_grace_ms = 0\nwriter_decision = \"{mode}\"\n"),
            );
        let path = cluster
            .path()
            .join(format!("galley-second-proxy-{mode}.toml"));
        std::fs::write(&path, text).unwrap();
        let mut second = std::process::Command::new(crate::support::GALLEY)
            .args(["proxy", "--config", path.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut status = Value::Null;
        for _ in 0..200 {
            if let Ok(response) =
                reqwest::get(format!("http://127.0.0.1:{}/status", ports[2])).await
            {
                status = response.json().await.unwrap();
                if !status["writer"].is_null() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = second.kill();
        second.wait().unwrap();
        assert_eq!(
            status["writer"], expected,
            "second proxy, {mode}: {status:#}"
        );
        assert_eq!(status["writer_decision"]["mode"], mode, "{status:#}");
    }
    assert_eq!(
        cluster.proxy_status().await["writer_decision"]["follows"],
        "node2"
    );
    let out = cluster.galley_ok(&["status"]);
    assert!(
        out.contains(&format!(
            "writer decision: the shared record, term {term}: node2"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_routes_fails_over_and_refuses_clearly() {
    let cluster = TestCluster::with_proxy();
    let (writer_port, reader_port, admin_port) = cluster.proxy_ports.unwrap();
    // This cluster reads causally (server.causal_reads): checked below, and the rest of
    // the test (probes, failover) shows that galley's own probes are not held up by it.
    let config = cluster.path().join("galley.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("[server]\n", "[server]\ncausal_reads = true\n", 1),
    )
    .unwrap();
    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(
        out.contains(&format!("writer  127.0.0.1:{writer_port}")),
        "{out}"
    );

    // status --json names the listeners and the writer: the preferred node.
    let status: Value =
        serde_json::from_slice(&cluster.galley(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["proxy"]["writer_address"],
        format!("127.0.0.1:{writer_port}")
    );
    assert_eq!(
        status["proxy"]["reader_address"],
        format!("127.0.0.1:{reader_port}")
    );
    let status = wait_for(&cluster, "writer node1", |s| s["writer"] == "node1").await;
    assert_eq!(
        status["listeners"]["writer"],
        format!("127.0.0.1:{writer_port}")
    );

    // The tests run as root, so the default forwarding (auto) is the kernel splice;
    // `galley status` says so.
    assert_eq!(status["forwarding"], "kernel", "{status:#}");
    let out = cluster.galley_ok(&["status"]);
    assert!(out.contains("forwarding: kernel"), "{out}");
    let json: Value =
        serde_json::from_slice(&cluster.galley(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["proxy"]["forwarding"], "kernel");
    bytes_pass_whole(&cluster, writer_port).await;
    let metrics = proxy_metrics(admin_port).await;
    assert!(
        metrics.contains("galley_proxy_kernel_forwarding 1"),
        "{metrics}"
    );
    let to_clients: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("galley_proxy_bytes_to_clients_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(to_clients >= 19_000_000, "bytes to clients: {to_clients}");
    // The same with the proxy's own copy loop.
    let config = std::fs::read_to_string(cluster.path().join("galley.toml")).unwrap();
    restart_proxy(
        &cluster,
        &config.replace(
            "writer_grace_ms = 0\n",
            "writer_grace_ms = 0\nforwarding = \"userspace\"\n",
        ),
    )
    .await;
    let status = cluster.proxy_status().await;
    assert_eq!(status["forwarding"], "userspace", "{status:#}");
    assert!(status["forwarding_note"]
        .as_str()
        .unwrap()
        .contains("userspace"));
    bytes_pass_whole(&cluster, writer_port).await;
    restart_proxy(&cluster, &config).await;
    assert_eq!(cluster.proxy_status().await["forwarding"], "kernel");

    // Without the capabilities for socket programs (capsh drops them; the proxy stays
    // root otherwise, so it reads the same files), "kernel" refuses to start and says
    // why, and "auto" copies in userspace and says why.
    let multi_port = status["listeners"]["multi_writer"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let ports = testkit::free_ports(4);
    let uncapped = cluster.path().join("galley-without-bpf.toml");
    let write_uncapped = |mode: &str| {
        let text = config
            .replace(
                &format!("writer_port = {writer_port}\n"),
                &format!("writer_port = {}\n", ports[0]),
            )
            .replace(
                &format!("reader_port = {reader_port}\n"),
                &format!("reader_port = {}\n", ports[1]),
            )
            .replace(
                &format!("admin_port = {admin_port}\n"),
                &format!("admin_port = {}\n", ports[2]),
            )
            .replace(
                &format!("multi_writer_port = {multi_port}\n"),
                &format!("multi_writer_port = {}\n", ports[3]),
            )
            .replace(
                "writer_grace_ms = 0\n",
                &format!("writer_grace_ms = 0\nforwarding = \"{mode}\"\n"),
            );
        std::fs::write(&uncapped, text).unwrap();
    };
    let spawn_uncapped = || {
        std::process::Command::new("capsh")
            .args([
                "--drop=cap_bpf,cap_perfmon,cap_sys_admin,cap_net_admin",
                "--",
                "-c",
                "exec \"$0\" proxy --config \"$1\"",
                crate::support::GALLEY,
                uncapped.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("capsh (Debian package libcap2-bin) runs")
    };
    write_uncapped("kernel");
    let mut refused = spawn_uncapped();
    let mut exited = None;
    for _ in 0..200 {
        exited = refused.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if exited.is_none() {
        let _ = refused.kill();
        panic!("forwarding = \"kernel\" without CAP_BPF did not refuse to start");
    }
    let output = refused.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("kernel splice could not be loaded") && stderr.contains("CAP_BPF"),
        "{stderr}"
    );
    write_uncapped("auto");
    let mut fallback = spawn_uncapped();
    let mut answered = None;
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{}/status", ports[2])).await {
            let status: Value = response.json().await.unwrap();
            if !status["writer"].is_null() {
                answered = Some(status);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fallback_status = answered.expect("the proxy without CAP_BPF answers and has a writer");
    assert_eq!(
        fallback_status["forwarding"], "userspace",
        "{fallback_status:#}"
    );
    assert!(
        fallback_status["forwarding_note"]
            .as_str()
            .unwrap()
            .contains("could not be loaded"),
        "{fallback_status:#}"
    );
    let mut conn = cluster.conn_port(ports[0]).await.unwrap();
    assert_eq!(node_name(&mut conn).await, "node1");
    drop(conn);
    fallback.kill().unwrap();
    fallback.wait().unwrap();

    // Every writer-port session lands on the writer.
    for _ in 0..5 {
        let mut conn = cluster.conn_port(writer_port).await.unwrap();
        assert_eq!(node_name(&mut conn).await, "node1");
    }
    // Held reader sessions spread over the three nodes (least connections).
    let mut readers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let mut conn = cluster.conn_port(reader_port).await.unwrap();
        seen.insert(node_name(&mut conn).await);
        readers.push(conn);
    }
    assert_eq!(seen.len(), 3, "readers went to {seen:?}");
    causal_reads_see_the_last_write(&cluster, writer_port, readers).await;
    // The multi-writer port spreads sessions over every write-healthy node.
    let multi = status["listeners"]["multi_writer"]
        .as_str()
        .unwrap()
        .to_owned();
    let multi_port: u16 = multi.rsplit_once(':').unwrap().1.parse().unwrap();
    let mut writers = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let mut conn = cluster.conn_port(multi_port).await.unwrap();
        seen.insert(node_name(&mut conn).await);
        writers.push(conn);
    }
    assert_eq!(seen.len(), 3, "multi-writer sessions went to {seen:?}");
    drop(writers);

    // A socket that connects and never logs in is closed at the login deadline
    // (proxy.login_timeout_ms, 10 s by default), while a real login made beside it
    // keeps working past it.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", writer_port))
        .await
        .unwrap();
    let mut logged_in = cluster.conn_port(writer_port).await.unwrap();
    // The silent socket got the server's greeting, then nothing, then its close.
    let closed = tokio::time::timeout(Duration::from_secs(40), async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match tokio::io::AsyncReadExt::read(&mut silent, &mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    })
    .await
    .expect("the socket that never logged in was not closed within 40 s");
    assert_eq!(
        closed.get(4),
        Some(&10),
        "a greeting (protocol 10) came first"
    );
    let metrics = proxy_metrics(admin_port).await;
    assert!(
        metrics.contains("galley_proxy_login_timeouts_total 1\n"),
        "{metrics}"
    );
    assert_eq!(node_name(&mut logged_in).await, "node1");
    drop(logged_in);

    // Health rules. A desynced node takes no writes but may serve reads.
    set_global(&cluster, 2, "wsrep_desync = ON").await;
    wait_for(&cluster, "node2 desynced", |s| {
        backend(s, "node2")["write_healthy"] == false && backend(s, "node2")["read_healthy"] == true
    })
    .await;
    set_global(&cluster, 2, "wsrep_desync = OFF").await;
    // read_only: no writes, reads fine.
    set_global(&cluster, 3, "read_only = ON").await;
    let status = wait_for(&cluster, "node3 read_only", |s| {
        backend(s, "node3")["write_healthy"] == false
    })
    .await;
    assert_eq!(backend(&status, "node3")["read_healthy"], true);
    assert!(backend(&status, "node3")["write_reason"]
        .as_str()
        .unwrap()
        .contains("read_only"));
    set_global(&cluster, 3, "read_only = OFF").await;
    // reject_queries: neither.
    set_global(&cluster, 3, "wsrep_reject_queries = ALL").await;
    wait_for(&cluster, "node3 rejecting", |s| {
        backend(s, "node3")["read_healthy"] == false
    })
    .await;
    set_global(&cluster, 3, "wsrep_reject_queries = NONE").await;
    wait_for(&cluster, "all healthy again", |s| {
        s["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["write_healthy"] == true && b["read_healthy"] == true)
    })
    .await;
    assert_eq!(
        cluster.proxy_status().await["writer"],
        "node1",
        "the writer never moved"
    );

    // SIGHUP reloads galley.toml and keeps an established session.
    let mut held = cluster.conn_port(writer_port).await.unwrap();
    let pid = cluster.proxy_status().await["pid"].as_i64().unwrap() as i32;
    let config = cluster.path().join("galley.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replace("writer_grace_ms = 0", "writer_grace_ms = 1"),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let log = cluster.path().join("proxy/proxy.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&log).unwrap().contains("reloaded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(std::fs::read_to_string(&log).unwrap().contains("reloaded"));
    assert_eq!(
        node_name(&mut held).await,
        "node1",
        "the session survived the reload"
    );
    std::fs::write(&config, original.clone()).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();

    // Drain moves the writer off node1 and closes its writer sessions.
    cluster.galley_ok(&["drain", "node1"]);
    let status = cluster.proxy_status().await;
    assert_eq!(status["writer"], "node2");
    let mut closed = false;
    for _ in 0..50 {
        if held.query_drop("SELECT 1").await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the session on the drained writer was not closed");
    let mut conn = cluster.conn_port(writer_port).await.unwrap();
    assert_eq!(node_name(&mut conn).await, "node2");
    drop(conn);
    cluster.galley_ok(&["undrain", "node1"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        cluster.proxy_status().await["writer"],
        "node2",
        "no fail-back after undrain"
    );
    second_proxies_follow_the_shared_record(&cluster, &original).await;

    // kill -9 the writer: new sessions go to the next node at once.
    let mut on_dead_writer = cluster.conn_port(writer_port).await.unwrap();
    let victim = cluster.mariadbd_pid("node2").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut acknowledged = None;
    for _ in 0..100 {
        if let Ok(mut conn) = cluster.conn_port(writer_port).await {
            if conn
                .query_drop("CREATE DATABASE IF NOT EXISTS failover")
                .await
                .is_ok()
            {
                acknowledged = Some(node_name(&mut conn).await);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        acknowledged.as_deref(),
        Some("node1"),
        "the next writer by priority takes over"
    );
    assert!(
        on_dead_writer.query_drop("SELECT 1").await.is_err(),
        "a session on the dead writer cannot go on"
    );
    let status = cluster.proxy_status().await;
    assert_eq!(status["writer"], "node1");
    assert!(status["failovers"].as_u64().unwrap() >= 2);

    // The old writer returns; the writer stays where it is.
    cluster.galley_ok(&["start", "node2"]);
    wait_for(&cluster, "node2 healthy", |s| {
        backend(s, "node2")["write_healthy"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        cluster.proxy_status().await["writer"],
        "node1",
        "no fail-back to node2"
    );

    // Metrics carry the counters.
    let metrics = proxy_metrics(admin_port).await;
    for family in [
        "galley_proxy_connections_total{listener=\"writer\"}",
        "galley_proxy_failovers_total",
        "galley_proxy_backend_connect_errors_total{backend=\"node2\"}",
        "galley_proxy_probe_latency_seconds_count",
        "galley_proxy_bytes_to_clients_total",
    ] {
        assert!(metrics.contains(family), "{family} missing");
    }
    // Admin actions need the cluster token.
    let anonymous = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{admin_port}/drain/node1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // No node left: the client gets a MySQL error packet that says why.
    for node in ["node3", "node2", "node1"] {
        cluster.galley_ok(&["stop", node]);
    }
    wait_for(&cluster, "no writer", |s| s["writer"].is_null()).await;
    let error = cluster
        .conn_port(writer_port)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no Galera node can take writes"), "{error}");
    assert!(error.contains("2003"), "{error}");
    let error = cluster
        .conn_port(reader_port)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no Galera node can serve reads"), "{error}");
}
