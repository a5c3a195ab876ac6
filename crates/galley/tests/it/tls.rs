//! `[tls]` on a real 3-node cluster (docs/tls.md): nodes join by SST through stunnel and
//! rejoin by IST with Galera's socket.ssl, client SQL speaks TLS directly and through the
//! galley proxy, and a foreign mariadbd with the right cluster name but no certificate of
//! the cluster's CA cannot join and receives no data.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::support::TestCluster;

fn log_of(cluster: &TestCluster, node: &str) -> String {
    std::fs::read_to_string(cluster.node_dir(node).join("log/mariadbd.err")).unwrap()
}

/// Runs one statement with the mariadb client over TCP with TLS, the server's
/// certificate verified against the cluster CA; the password goes in a 0600 file.
fn mariadb_tls(cluster: &TestCluster, port: u16, sql: &str) -> String {
    let login = cluster.path().join("client-login.cnf");
    if !login.exists() {
        std::fs::write(
            &login,
            format!(
                "[client]\nuser = {}\npassword = {}\n",
                agent::secrets::ADMIN_USER,
                cluster.secrets().admin_password
            ),
        )
        .unwrap();
        std::fs::set_permissions(&login, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let output = Command::new("mariadb")
        .arg(format!("--defaults-extra-file={}", login.display()))
        .args(["--protocol=TCP", "-h", "127.0.0.1", "-P", &port.to_string()])
        .arg(format!(
            "--ssl-ca={}",
            cluster.path().join("tls/ca.crt").display()
        ))
        .args(["--ssl-verify-server-cert", "-N", "-B", "-e", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "mariadb -P {port} -e {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn cluster_size(cluster: &TestCluster) -> i64 {
    let mut conn = cluster.conn(1).await;
    let row: (String, String) = conn
        .query_first("SHOW STATUS LIKE 'wsrep_cluster_size'")
        .await
        .unwrap()
        .unwrap();
    row.1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_replicates_encrypted_and_refuses_a_stranger() {
    let cluster = TestCluster::with_proxy();
    let config = cluster.path().join("galley.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[tls]\n");
    std::fs::write(&config, text).unwrap();

    let out = cluster.galley_ok(&["up", "--detach"]);
    assert!(out.contains("Generated the cluster CA in"), "{out}");
    assert!(out.contains("3 nodes Synced"), "{out}");
    let installed_key = cluster.node_dir("node2").join("run/tls-server.key");
    let mode = std::fs::metadata(&installed_key).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // node2 and node3 joined by a full SST, wrapped in stunnel and checked against the CA.
    for node in ["node2", "node3"] {
        let log = log_of(&cluster, node);
        assert!(
            log.contains("Using stunnel for SSL encryption")
                && log.contains("ssl-mode='VERIFY_CA'"),
            "{node} did not receive its SST over stunnel:\n{log}"
        );
    }
    // Galera's own sockets are TLS.
    let mut node1 = cluster.conn(1).await;
    let options: (String, String) = node1
        .query_first("SHOW VARIABLES LIKE 'wsrep_provider_options'")
        .await
        .unwrap()
        .unwrap();
    assert!(options.1.contains("socket.ssl = YES"), "{}", options.1);
    let allowlist: (String, String) = node1
        .query_first("SHOW VARIABLES LIKE 'wsrep_allowlist'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(allowlist.1, "127.0.0.1");
    node1
        .query_drop("CREATE DATABASE app; CREATE TABLE app.items (id INT PRIMARY KEY, label VARCHAR(60)); INSERT INTO app.items VALUES (1, 'galley-tls-marker')")
        .await
        .unwrap();

    // IST over TLS: node3 stops, misses writes, and catches up.
    cluster.galley_ok(&["stop", "node3"]);
    let log_before = log_of(&cluster, "node3").len();
    for id in 2..=20 {
        node1
            .query_drop(format!(
                "INSERT INTO app.items VALUES ({id}, 'while node3 was down')"
            ))
            .await
            .unwrap();
    }
    cluster.galley_ok(&["start", "node3"]);
    let rejoin = log_of(&cluster, "node3")[log_before..].to_owned();
    assert!(
        rejoin.contains("IST received"),
        "node3 did not rejoin by IST:\n{rejoin}"
    );
    assert!(
        rejoin.contains("ssl://127.0.0.1"),
        "the IST receiver did not listen with TLS:\n{rejoin}"
    );

    // Client TLS, directly and through the proxy's writer and reader ports.
    let (writer, reader, _) = cluster.proxy_ports.unwrap();
    for port in [cluster.client_ports[0], writer, reader] {
        let cipher = mariadb_tls(&cluster, port, "SHOW STATUS LIKE 'Ssl_cipher'");
        let cipher = cipher.split_whitespace().nth(1).unwrap_or("");
        assert!(!cipher.is_empty(), "no TLS on port {port}");
        let rows = mariadb_tls(&cluster, port, "SELECT COUNT(*) FROM app.items");
        assert_eq!(rows, "20", "port {port}");
    }

    // A stranger: the right cluster name and node1's address, plaintext Galera.
    let stranger = cluster.path().join("stranger");
    let stranger_log = stranger.join("mariadbd.err");
    let joined = run_stranger(&cluster, &stranger).await;
    let log = std::fs::read_to_string(&stranger_log).unwrap_or_default();
    assert!(!joined, "the stranger joined:\n{log}");
    assert!(
        !stranger.join("data/app").exists(),
        "the stranger received the app database:\n{log}"
    );
    assert_eq!(cluster_size(&cluster).await, 3);
}

/// Starts a mariadbd that tries to join the cluster without its certificates and waits
/// (bounded) until it gives up; returns whether it ever saw a Primary view.
async fn run_stranger(cluster: &TestCluster, dir: &Path) -> bool {
    let loaded = spec::load(&cluster.path().join("galley.toml")).unwrap();
    let node1 = &loaded.spec.nodes[0];
    let ports = testkit::free_ports(3);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join("my.cnf");
    std::fs::write(
        &config,
        format!(
            "[mariadbd]\ndatadir = {data}\nsocket = {dir}/s.sock\npid_file = {dir}/pid\nlog_error = {dir}/mariadbd.err\n\
             bind_address = 127.0.0.1\nport = {client}\nuser = root\nbinlog_format = ROW\ninnodb_autoinc_lock_mode = 2\n\
             innodb_buffer_pool_size = 32M\nwsrep_on = ON\nwsrep_provider = {provider}\nwsrep_cluster_name = {name}\n\
             wsrep_cluster_address = gcomm://127.0.0.1:{galera}\nwsrep_node_address = 127.0.0.1:{own}\n\
             wsrep_provider_options = \"gmcast.listen_addr=tcp://127.0.0.1:{own};pc.wait_prim_timeout=PT15S\"\n\
             wsrep_sst_method = rsync\nwsrep_sst_receive_address = 127.0.0.1:{sst}\n",
            data = data.display(),
            dir = dir.display(),
            client = ports[0],
            own = ports[1],
            sst = ports[2],
            provider = spec::GALERA_PROVIDER,
            name = loaded.spec.name,
            galera = node1.galera_port,
        ),
    )
    .unwrap();
    let install = Command::new("mariadb-install-db")
        .arg(format!("--defaults-file={}", config.display()))
        .arg("--user=root")
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let mut child = tokio::process::Command::new("mariadbd")
        .arg(format!("--defaults-file={}", config.display()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Galera gives up after pc.wait_prim_timeout and the server exits; bounded at 90 s.
    let exited = tokio::time::timeout(Duration::from_secs(90), child.wait()).await;
    if exited.is_err() {
        let _ = child.kill().await;
    }
    let log = std::fs::read_to_string(dir.join("mariadbd.err")).unwrap_or_default();
    log.contains("PRIMARY, ") || log.contains("Synchronized with group")
}
