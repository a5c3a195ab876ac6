//! `galley deploy` and `galley generate` against a test bed of real hosts on this
//! machine: network namespaces with their own addresses, each running its own sshd, with
//! private /etc/mysql, /var/lib/mysql, /opt/galley, ... (tests/netns/bed.sh). No mock
//! SSH: the real OpenSSH client logs in with a key and runs the bundle's scripts with sudo.
//!
//! One test walks every scenario in order on one bed (seven hosts), because a bed with
//! its clusters takes minutes to bring up: first deploy, checks from outside, a second
//! run that changes nothing, a cut link, a rolling restart on a changed galley.toml, the
//! refused deploys, and the bundle's scripts run by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::support::GALLEY;

const BED_USER: &str = "galleytest";

fn bed_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/netns/bed.sh")
}

/// The bed's hosts; always torn down, even when the test fails. One bed at a time on a
/// machine (fixed addresses and names): the lock makes a second run wait.
pub(crate) struct Bed {
    dir: tempfile::TempDir,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Bed {
    pub(crate) fn up(count: usize, password_sudo: &[&str]) -> Bed {
        Bed::start(count, password_sudo, false)
    }

    /// Hosts that each have a root filesystem of their own (`BED_ROOT=overlay`), so that
    /// what is installed on them with apt stays there, not on this machine.
    pub(crate) fn up_with_own_roots(count: usize) -> Bed {
        Bed::start(count, &[], true)
    }

    fn start(count: usize, password_sudo: &[&str], own_roots: bool) -> Bed {
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/galley-netns-bed.lock")
            .unwrap();
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .unwrap();
        let clean = Command::new("bash")
            .arg(bed_script())
            .arg("clean")
            .status()
            .unwrap();
        assert!(clean.success(), "bed.sh clean failed");
        let dir = tempfile::Builder::new()
            .prefix("galley-bed-")
            .tempdir()
            .unwrap();
        let bed = Bed { dir, _lock: lock };
        let output = Command::new("bash")
            .arg(bed_script())
            .arg("up")
            .arg(bed.path())
            .arg(count.to_string())
            .args(password_sudo)
            .env("BED_ROOT", if own_roots { "overlay" } else { "" })
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the test bed did not come up (needs root, iproute2, openssh-server, sudo, socat: scripts/setup-debian.sh):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        bed
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.path().join("id_ed25519")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(bed_script())
            .arg(args[0])
            .arg(self.path())
            .args(&args[1..])
            .output()
            .unwrap()
    }

    /// Runs a shell command inside a host (its network and mounts).
    pub(crate) fn exec(&self, host: &str, command: &str) -> Output {
        self.run(&["exec", host, "bash", "-c", command])
    }

    fn has_file(&self, host: &str, path: &str) -> bool {
        self.exec(host, &format!("test -e {path}")).status.success()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let output = self.run(&["down"]);
        if !output.status.success() {
            eprintln!("bed teardown: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

pub(crate) fn address(host: usize) -> String {
    format!("10.77.0.{}", 10 + host)
}

/// A spec for data nodes on `nodes` (bed host numbers, or full addresses) and the proxy
/// and controller on `controller`.
pub(crate) fn spec_text(
    bed: &Bed,
    name: &str,
    nodes: &[String],
    controller: Option<usize>,
    max_connections: u32,
) -> String {
    let mut text = format!(
        "[cluster]\nname = \"{name}\"\nsecrets_file = \"/etc/galley/secrets.toml\"\n\n\
         [server]\nbuffer_pool_size = \"64M\"\nlog_file_size = \"48M\"\ngcache_size = \"64M\"\nmax_connections = {max_connections}\n\n\
         [deploy]\nssh_user = \"{BED_USER}\"\nssh_key = \"{}\"\n",
        bed.key().display()
    );
    if let Some(host) = controller {
        text.push_str(&format!(
            "\n[proxy]\naddress = \"{a}\"\nadmin_address = \"{a}\"\n\n[controller]\naddress = \"{a}\"\ninterval_ms = 500\n",
            a = address(host)
        ));
    }
    for (index, node_address) in nodes.iter().enumerate() {
        text.push_str(&format!(
            "\n[[node]]\nname = \"db{}\"\naddress = \"{node_address}\"\ndata_dir = \"/var/lib/mysql\"\n",
            index + 1
        ));
    }
    text
}

pub(crate) fn operator_dir(bed: &Bed, name: &str, spec: &str) -> PathBuf {
    let dir = bed.path().join(format!("operator-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("galley.toml"), spec).unwrap();
    dir
}

pub(crate) fn galley(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(GALLEY)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn secrets(dir: &Path) -> agent::Secrets {
    agent::Secrets::load(&dir.join("secrets.toml")).unwrap()
}

/// Polls every node's agent from outside until each reports Synced in a cluster of
/// `size`; panics with the last reports after the timeout.
async fn wait_cluster(dir: &Path, nodes: &[String], size: i64, timeout: Duration) {
    let token = secrets(dir).cluster_token;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut states = Vec::new();
        for node in nodes {
            let client = agent::AgentClient::new(&format!("{node}:4580"), &token);
            let state = match client.status().await {
                Ok(report) if report.is_synced() => {
                    let cluster_size = report.wsrep.as_ref().map_or(0, |w| w.cluster_size);
                    if cluster_size == size {
                        "ok".to_owned()
                    } else {
                        format!("Synced in a cluster of {cluster_size}")
                    }
                }
                Ok(report) => report.state_label(),
                Err(error) => error.to_string(),
            };
            states.push(format!("{node}: {state}"));
        }
        if states.iter().all(|state| state.ends_with(": ok")) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster did not reach {size} Synced nodes: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Connects through the proxy's writer port as the admin; retries while the proxy
/// has no writer yet.
async fn writer_node(dir: &Path, proxy: &str) -> String {
    let password = secrets(dir).admin_password;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let options = mysql_async::OptsBuilder::default()
            .ip_or_hostname(proxy.to_owned())
            .tcp_port(3306)
            .user(Some(agent::secrets::ADMIN_USER))
            .pass(Some(password.clone()));
        let attempt = async {
            let mut conn = mysql_async::Conn::new(options).await?;
            conn.query_drop("CREATE DATABASE IF NOT EXISTS deploy_test")
                .await?;
            conn.query_drop("CREATE TABLE IF NOT EXISTS deploy_test.t (id INT PRIMARY KEY AUTO_INCREMENT, at VARCHAR(32))").await?;
            conn.query_drop("INSERT INTO deploy_test.t (at) VALUES ('through the proxy')")
                .await?;
            let node: Option<String> = conn.query_first("SELECT @@wsrep_node_name").await?;
            conn.disconnect().await?;
            Ok::<_, mysql_async::Error>(node.unwrap_or_default())
        };
        match attempt.await {
            Ok(node) => return node,
            Err(error) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the proxy at {proxy}:3306 does not route: {error}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn max_connections(dir: &Path, node: &str) -> u64 {
    let password = secrets(dir).admin_password;
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(node.to_owned())
        .tcp_port(3306)
        .user(Some(agent::secrets::ADMIN_USER))
        .pass(Some(password));
    let mut conn = mysql_async::Conn::new(options).await.unwrap();
    let value: Option<u64> = conn.query_first("SELECT @@max_connections").await.unwrap();
    conn.disconnect().await.unwrap();
    value.unwrap()
}

/// The controller runs on its host (its supervisor and daemon are alive).
/// The console answers on the controller's host: health without credentials, a login
/// with the admin password `galley deploy` generated, and the cluster view with the
/// cluster token, showing every node Synced.
async fn console_answers(dir: &Path, base: &str, nodes: usize) {
    let secrets = secrets(dir);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = http.get(format!("{base}api/v1/health")).send().await;
        let login = http
            .post(format!("{base}api/v1/login"))
            .json(&serde_json::json!({
                "username": "admin",
                "password": secrets.console_admin_password.clone().unwrap_or_default(),
            }))
            .send()
            .await;
        let cluster = http
            .get(format!("{base}api/v1/cluster"))
            .bearer_auth(&secrets.cluster_token)
            .send()
            .await;
        let mut problems = Vec::new();
        match health {
            Ok(response) if response.status() == 200 => {}
            other => problems.push(format!("health: {other:?}")),
        }
        match login {
            Ok(response) if response.status() == 200 => {}
            other => problems.push(format!("login: {other:?}")),
        }
        match cluster {
            Ok(response) if response.status() == 200 => {
                let view: serde_json::Value = response.json().await.unwrap();
                let synced = view["nodes"]
                    .as_array()
                    .map(|nodes| nodes.iter().filter(|n| n["state"] == "Synced").count())
                    .unwrap_or(0);
                if synced != nodes {
                    problems.push(format!("cluster: {synced} of {nodes} Synced: {view}"));
                }
            }
            other => problems.push(format!("cluster: {other:?}")),
        }
        if problems.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console at {base} does not answer as it should: {problems:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The controller's recent decisions, through its API with the cluster token.
async fn decisions(dir: &Path, base: &str) -> Vec<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!("{base}api/v1/decisions?limit=500"))
        .bearer_auth(secrets(dir).cluster_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn controller_running(bed: &Bed, host: &str) -> bool {
    bed.exec(
        host,
        "pid=$(cat /run/galley/galley-controller.child.pid) && grep -q controller /proc/$pid/cmdline",
    )
    .status
    .success()
}

#[test]
fn deploys_to_hosts_over_ssh() {
    // h1-h3: data nodes; h4: proxy and controller; h5: sudo asks for a password;
    // h6, h7: fresh hosts for the refused deploys, then (with h5 and h8) the bundle run
    // by hand.
    let bed = Bed::up(8, &["h5"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nodes: Vec<String> = (1..=3).map(address).collect();
    let proxy = address(4);
    let dir = operator_dir(&bed, "main", &spec_text(&bed, "bed", &nodes, Some(4), 200));

    // First contact without --accept-new-host-keys: refused before anything changes.
    let (ok, output) = galley(&dir, &["deploy"]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("deploy stopped before changing anything")
            && output.contains("is not in galley's known_hosts")
            && output.contains("--accept-new-host-keys"),
        "{output}"
    );
    assert!(!bed.has_file("h1", "/opt/galley/bin/galley"));

    // The deploy.
    let (ok, output) = galley(&dir, &["deploy", "--accept-new-host-keys"]);
    assert!(ok, "{output}");
    assert!(output.contains("db1 bootstrapped the cluster"), "{output}");
    assert!(
        output.contains("Console: http://10.77.0.14:4600/"),
        "{output}"
    );
    for label in ["db1", "db2", "db3", "proxy"] {
        let log = dir.join("deploy/logs").join(format!("{label}.log"));
        assert!(log.exists(), "no log for {label}");
    }
    // Checked from outside: three Synced nodes, the proxy routes, the controller runs.
    runtime.block_on(wait_cluster(&dir, &nodes, 3, Duration::from_secs(60)));
    let writer = runtime.block_on(writer_node(&dir, &proxy));
    assert_eq!(writer, "db1", "the proxy's writer is the preferred node");
    assert!(
        controller_running(&bed, "h4"),
        "the controller does not run on h4"
    );
    runtime.block_on(console_answers(&dir, "http://10.77.0.14:4600/", 3));
    // The secrets went over SSH on stdin: 0600 on the hosts, never in the bundle.
    let mode = bed.exec("h2", "stat -c %a /etc/galley/secrets.toml");
    assert_eq!(String::from_utf8_lossy(&mode.stdout).trim(), "600");
    assert!(!dir
        .join("deploy/bundle/hosts/db1/files/secrets.toml")
        .exists());

    // A second run changes nothing and says so.
    let (ok, output) = galley(&dir, &["deploy"]);
    assert!(ok, "{output}");
    assert!(
        output.contains("Nothing changed: every host already matches galley.toml."),
        "{output}"
    );

    // A dry run connects and checks, and changes nothing.
    let (ok, output) = galley(&dir, &["deploy", "--dry-run"]);
    assert!(ok, "{output}");
    assert!(
        output.contains("Dry run: every host passed its checks; nothing was changed."),
        "{output}"
    );

    // Secrets generated anew must not replace an existing cluster's.
    let moved = dir.join("secrets.toml.kept");
    std::fs::rename(dir.join("secrets.toml"), &moved).unwrap();
    let (ok, output) = galley(&dir, &["deploy"]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("already has a secrets file at /etc/galley/secrets.toml"),
        "{output}"
    );
    std::fs::rename(&moved, dir.join("secrets.toml")).unwrap();

    // A cut link: the other two keep the Primary component; the cut node comes back.
    assert!(bed.run(&["link", "h3", "down"]).status.success());
    runtime.block_on(wait_cluster(&dir, &nodes[..2], 2, Duration::from_secs(60)));
    runtime.block_on(writer_node(&dir, &proxy));
    assert!(bed.run(&["link", "h3", "up"]).status.success());
    runtime.block_on(wait_cluster(&dir, &nodes, 3, Duration::from_secs(120)));

    // A changed galley.toml: a rolling restart, each node Synced before the next.
    std::fs::write(
        dir.join("galley.toml"),
        spec_text(&bed, "bed", &nodes, Some(4), 300),
    )
    .unwrap();
    let rolling_started_ms = now_ms();
    let (ok, output) = galley(&dir, &["deploy"]);
    assert!(ok, "{output}");
    // The controller on h4 was told that each node was down on purpose, so it left the
    // restart alone: no decision of its own to start, restart or bootstrap a node.
    assert!(!output.contains("the controller was not told"), "{output}");
    let acted: Vec<serde_json::Value> = runtime
        .block_on(decisions(&dir, "http://10.77.0.14:4600/"))
        .into_iter()
        .filter(|decision| decision["at_ms"].as_i64().unwrap_or(0) >= rolling_started_ms)
        .filter(|decision| {
            let action = decision["action"].as_str().unwrap_or("");
            ["start ", "restart ", "bootstrap ", "wipe-and-start "]
                .iter()
                .any(|verb| action.starts_with(verb))
        })
        .collect();
    assert!(
        acted.is_empty(),
        "the controller acted during the rolling restart: {acted:?}"
    );
    let restarts: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("restarted and Synced"))
        .collect();
    assert_eq!(restarts.len(), 3, "{output}");
    // The proxy reloads galley.toml and keeps its sessions: its listeners did not change.
    assert!(
        output.contains("changed: reloaded galley-proxy"),
        "{output}"
    );
    assert!(!output.contains("restarted galley-proxy"), "{output}");
    for node in &nodes {
        assert_eq!(runtime.block_on(max_connections(&dir, node)), 300);
    }
    runtime.block_on(wait_cluster(&dir, &nodes, 3, Duration::from_secs(60)));

    // Refused deploys: each stops at the checks, names the cause, and the reachable hosts
    // are left untouched.
    let fresh = [address(6), address(7)];
    let untouched = |label: &str| {
        for host in ["h6", "h7"] {
            assert!(
                !bed.has_file(host, "/opt/galley/bin/galley")
                    && !bed.has_file(host, "/etc/galley/galley.toml"),
                "{label}: {host} was changed"
            );
        }
    };
    let cases: [(&str, String, &str); 2] = [
        (
            "unreachable",
            "10.77.0.29".to_owned(),
            "db3: host unreachable: 10.77.0.29 is unreachable over SSH",
        ),
        (
            "sudo-password",
            address(5),
            "db3: sudo asks galleytest for a password on 10.77.0.15",
        ),
    ];
    for (name, third, expected) in cases {
        let spec = spec_text(
            &bed,
            name,
            &[fresh[0].clone(), fresh[1].clone(), third],
            None,
            200,
        );
        let case_dir = operator_dir(&bed, name, &spec);
        let (ok, output) = galley(&case_dir, &["deploy", "--accept-new-host-keys"]);
        assert!(!ok, "{name}: {output}");
        assert!(
            output.contains("deploy stopped before changing anything") && output.contains(expected),
            "{name}: {output}"
        );
        untouched(name);
    }
    let listener = bed.run(&["listen", "h7", "3306"]);
    assert!(
        listener.status.success(),
        "{}",
        String::from_utf8_lossy(&listener.stderr)
    );
    let listener_pid = String::from_utf8_lossy(&listener.stdout).trim().to_owned();
    let spec = spec_text(
        &bed,
        "port",
        &[fresh[0].clone(), fresh[1].clone()],
        None,
        200,
    );
    let case_dir = operator_dir(&bed, "port", &spec);
    let (ok, output) = galley(&case_dir, &["deploy", "--accept-new-host-keys"]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("deploy stopped before changing anything")
            && output.contains(
                "db2: check failed: port 3306 (node-db2-client_port) is taken by socat (pid"
            ),
        "{output}"
    );
    untouched("port taken");
    assert!(Command::new("kill")
        .arg(&listener_pid)
        .status()
        .unwrap()
        .success());

    // The bundle, run by hand (as root on each host, in the README's order), makes the
    // same cluster: three Synced nodes behind a routing proxy.
    let hand_nodes = vec![address(6), address(7), address(5)];
    let spec = spec_text(&bed, "byhand", &hand_nodes, Some(8), 200);
    let hand_dir = operator_dir(&bed, "byhand", &spec);
    let bundle = hand_dir.join("bundle");
    let (ok, output) = galley(
        &hand_dir,
        &[
            "generate",
            "--include-secrets",
            "--output",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(ok, "{output}");
    let hosts = [("db1", "h6"), ("db2", "h7"), ("db3", "h5"), ("proxy", "h8")];
    for (label, _) in hosts {
        std::fs::copy(GALLEY, bundle.join("hosts").join(label).join("galley")).unwrap();
    }
    let step = |label: &str, host: &str, script: &str| {
        let path = bundle.join("hosts").join(label).join(script);
        if !path.exists() {
            return;
        }
        let output = bed.exec(host, &format!("bash {}", path.display()));
        assert!(
            output.status.success(),
            "{script} on {host}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for script in [
        "00-check.sh",
        "10-install.sh",
        "20-configure.sh",
        "30-start-agent.sh",
        "40-bootstrap.sh",
        "50-join.sh",
        "60-start-proxy-controller.sh",
        "70-rolling-restart.sh",
    ] {
        for (label, host) in hosts {
            step(label, host, script);
        }
    }
    runtime.block_on(wait_cluster(
        &hand_dir,
        &hand_nodes,
        3,
        Duration::from_secs(60),
    ));
    assert_eq!(runtime.block_on(writer_node(&hand_dir, &address(8))), "db1");
    assert!(controller_running(&bed, "h8"));
}

/// `wsrep_cluster_status` and the Primary component's members of the node at `address`,
/// as the admin sees them over SQL, after an insert on it succeeded; None while it
/// refuses (not Primary yet, or not answering).
async fn primary_after_insert(dir: &Path, address: &str) -> Option<(String, Vec<String>)> {
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(address.to_owned())
        .tcp_port(3306)
        .user(Some(agent::secrets::ADMIN_USER))
        .pass(Some(secrets(dir).admin_password));
    let mut conn = mysql_async::Conn::new(options).await.ok()?;
    conn.query_drop("CREATE DATABASE IF NOT EXISTS garbd_test")
        .await
        .ok()?;
    conn.query_drop("CREATE TABLE IF NOT EXISTS garbd_test.t (id INT PRIMARY KEY AUTO_INCREMENT)")
        .await
        .ok()?;
    conn.query_drop("INSERT INTO garbd_test.t VALUES ()")
        .await
        .ok()?;
    let status: (String, String) = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_status'")
        .await
        .ok()??;
    let mut members: Vec<String> = conn
        .query("SELECT node_name FROM mysql.wsrep_cluster_members")
        .await
        .ok()?;
    members.sort();
    let _ = conn.disconnect().await;
    Some((status.1, members))
}

#[test]
fn deploys_two_nodes_and_an_arbitrator_that_keep_a_primary() {
    // h1, h2: data nodes; h3: garbd (galera-arbitrator-4), no data node beside it.
    let bed = Bed::up(3, &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nodes: Vec<String> = (1..=2).map(address).collect();
    let mut spec = spec_text(&bed, "garbd", &nodes, None, 200);
    spec.push_str(&format!(
        "\n[[arbitrator]]\nname = \"garbd1\"\naddress = \"{}\"\n",
        address(3)
    ));
    let dir = operator_dir(&bed, "garbd", &spec);

    let (ok, output) = galley(&dir, &["deploy", "--accept-new-host-keys"]);
    assert!(ok, "{output}");
    assert!(output.contains("db1 bootstrapped the cluster"), "{output}");
    // garbd counts in the data nodes' view: two Synced nodes in a cluster of 3.
    runtime.block_on(wait_cluster(&dir, &nodes, 3, Duration::from_secs(60)));
    let garbd = bed.exec(
        "h3",
        "pid=$(cat /run/galley/galley-garbd.child.pid) && cat /proc/$pid/comm",
    );
    assert_eq!(String::from_utf8_lossy(&garbd.stdout).trim(), "garbd");
    assert!(!bed.has_file("h3", "/var/lib/mysql/grastate.dat"));

    // A second run changes nothing, garbd included.
    let (ok, output) = galley(&dir, &["deploy"]);
    assert!(ok, "{output}");
    assert!(
        output.contains("Nothing changed: every host already matches galley.toml."),
        "{output}"
    );

    // db1's mariadbd killed with SIGKILL: db2 and garbd are 2 of 3 and stay Primary.
    let kill = bed.exec("h1", "kill -9 $(cat /run/galley/db1/mariadbd.pid)");
    assert!(kill.status.success(), "{kill:?}");
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let last = primary_after_insert(&dir, &nodes[1]).await;
            if let Some((status, members)) = &last {
                if status == "Primary" && members == &["db2".to_owned(), "garbd1".to_owned()] {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "db2 did not keep a Primary component with garbd1 after db1 was killed; last seen {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}
