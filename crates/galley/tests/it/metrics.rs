//! Metrics against a real cluster and a real Prometheus server (Debian's `prometheus`):
//! the test writes a scrape config for the three agents, the controller and the proxy,
//! queries the server's HTTP API and checks the values against the nodes' own SHOW
//! STATUS; and it runs the real mysqld_exporter (`prometheus-mysqld-exporter`) on node1
//! to check that the agent exports every name the exporter does (docs/metrics.md). The
//! daemons run with `GALLEY_LOG_FORMAT=json`, and their logs are checked to be JSON lines.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::{TestCluster, GALLEY};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const MYSQLD_EXPORTER: &str = "/usr/bin/prometheus-mysqld-exporter";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The names of the samples on a Prometheus text page.
fn names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The families a page declares (`# TYPE name kind`), with or without samples now.
fn families(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

/// An instant query through Prometheus's HTTP API: each result's labels and value.
async fn query(port: u16, promql: &str) -> Vec<(Value, f64)> {
    let client = reqwest::Client::new();
    let body: Value = client
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            let value: f64 = result["value"][1].as_str().unwrap().parse().unwrap();
            (result["metric"].clone(), value)
        })
        .collect()
}

/// Polls `promql` until it has `count` results; bounded at 60 s.
async fn query_until(port: u16, promql: &str, count: usize) -> Vec<(Value, f64)> {
    let mut last = Vec::new();
    for _ in 0..240 {
        last = query(port, promql).await;
        if last.len() == count {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "{promql}: {} results after 60 s, wanted {count}: {last:?}",
        last.len()
    );
}

async fn status_value(conn: &mut mysql_async::Conn, name: &str) -> f64 {
    // `name` is one of the test's own constants (letters and underscores).
    assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .unwrap();
    row.unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_scraped_by_a_real_prometheus_match_the_nodes_status() {
    let cluster = TestCluster::with_proxy_and_controller();
    let output = Command::new(GALLEY)
        .args(["up", "--detach", "--dir"])
        .arg(cluster.path())
        .env("GALLEY_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "galley up: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(cluster.path().join("galley.toml")).unwrap();
    let spec = spec::parse(&cluster.path().join("galley.toml"), &text)
        .unwrap()
        .spec;
    let agent_ports: Vec<u16> = spec.nodes.iter().map(|node| node.agent_port).collect();
    let (_, _, admin_port) = cluster.proxy_ports.unwrap();
    let controller_port = cluster.controller_port.unwrap();

    // The agent's page needs no token; the controller's needs one.
    let page = get(&format!("http://127.0.0.1:{}/metrics", agent_ports[0])).await;
    assert_eq!(page.status(), 200);
    let unauthorized = get(&format!(
        "http://127.0.0.1:{controller_port}/api/v1/metrics"
    ))
    .await;
    assert_eq!(unauthorized.status(), 401);

    // The real mysqld_exporter on node1, with the admin account in a 0600 my.cnf.
    let root = cluster.path();
    let ports = testkit::free_ports(2);
    let (prometheus_port, exporter_port) = (ports[0], ports[1]);
    let my_cnf = root.join("exporter.cnf");
    std::fs::write(
        &my_cnf,
        format!(
            "[client]\nuser = {}\npassword = {}\nhost = 127.0.0.1\nport = {}\n",
            agent::secrets::ADMIN_USER,
            cluster.secrets().admin_password,
            cluster.client_ports[0]
        ),
    )
    .unwrap();
    std::fs::set_permissions(&my_cnf, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let _exporter = Killed(
        Command::new(MYSQLD_EXPORTER)
            .arg(format!("--config.my-cnf={}", my_cnf.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("exporter.log")).unwrap())
            .spawn()
            .expect("prometheus-mysqld-exporter (scripts/setup-debian.sh installs it)"),
    );

    let token_file = root.join("prometheus-token");
    std::fs::write(&token_file, &cluster.secrets().cluster_token).unwrap();
    let agents: Vec<String> = agent_ports
        .iter()
        .map(|port| format!("'127.0.0.1:{port}'"))
        .collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n\
         - job_name: agent\n  static_configs:\n  - targets: [{agents}]\n\
         - job_name: controller\n  metrics_path: /api/v1/metrics\n  authorization:\n    credentials_file: {token}\n  static_configs:\n  - targets: ['127.0.0.1:{controller_port}']\n\
         - job_name: proxy\n  static_configs:\n  - targets: ['127.0.0.1:{admin_port}']\n\
         - job_name: mysqld_exporter\n  static_configs:\n  - targets: ['127.0.0.1:{exporter_port}']\n",
        agents = agents.join(", "),
        token = token_file.display(),
    );
    std::fs::write(root.join("prometheus.yml"), config).unwrap();
    let _prometheus = Killed(
        Command::new(PROMETHEUS)
            .arg(format!(
                "--config.file={}",
                root.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                root.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (scripts/setup-debian.sh installs it)"),
    );

    let mut ready = false;
    for _ in 0..120 {
        let answer = reqwest::get(format!("http://127.0.0.1:{prometheus_port}/-/ready")).await;
        if answer.is_ok_and(|answer| answer.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        ready,
        "prometheus not ready after 30 s; see {}",
        root.join("prometheus.log").display()
    );
    // Every target up.
    let up = query_until(prometheus_port, "up == 1", 6).await;
    assert_eq!(up.len(), 6, "{up:?}");

    // The agents' wsrep gauges, each against its own node's SHOW STATUS.
    let sizes = query_until(
        prometheus_port,
        "mysql_global_status_wsrep_cluster_size{job=\"agent\"} == 3",
        3,
    )
    .await;
    for (index, port) in agent_ports.iter().enumerate() {
        let mut conn = cluster.conn(index + 1).await;
        let instance = format!("127.0.0.1:{port}");
        for (metric, status) in [
            (
                "mysql_global_status_wsrep_cluster_size",
                "wsrep_cluster_size",
            ),
            ("mysql_global_status_wsrep_local_state", "wsrep_local_state"),
            ("mysql_global_status_wsrep_local_index", "wsrep_local_index"),
        ] {
            let scraped = query(
                prometheus_port,
                &format!("{metric}{{job=\"agent\",instance=\"{instance}\"}}"),
            )
            .await;
            assert_eq!(scraped.len(), 1, "{metric} of {instance}: {scraped:?}");
            assert_eq!(
                scraped[0].1,
                status_value(&mut conn, status).await,
                "{metric} of {instance}"
            );
        }
    }
    assert_eq!(sizes.len(), 3);
    let states = query(
        prometheus_port,
        "mysql_global_status_wsrep_local_state{job=\"agent\"} == 4",
    )
    .await;
    assert_eq!(states.len(), 3, "{states:?}");
    let primary = query(
        prometheus_port,
        "mysql_global_status_wsrep_cluster_status{job=\"agent\"} == 1",
    )
    .await;
    assert_eq!(primary.len(), 3, "{primary:?}");
    let info = query(prometheus_port, "mysql_galera_status_info{job=\"agent\"}").await;
    assert_eq!(info.len(), 3, "{info:?}");
    let uuids: BTreeSet<&str> = info
        .iter()
        .map(|(labels, _)| labels["wsrep_cluster_state_uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids.len(), 1, "one history: {info:?}");

    // The controller's view, one series per node.
    let controller_sizes = query_until(
        prometheus_port,
        "mysql_global_status_wsrep_cluster_size{job=\"controller\"} == 3",
        3,
    )
    .await;
    let nodes: BTreeSet<&str> = controller_sizes
        .iter()
        .map(|(labels, _)| labels["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, BTreeSet::from(["node1", "node2", "node3"]));
    let synced = query_until(
        prometheus_port,
        "galley_node_state{job=\"controller\",state=\"Synced\"}",
        3,
    )
    .await;
    assert_eq!(synced.len(), 3);
    let writers = query_until(
        prometheus_port,
        "galley_node_writer{job=\"controller\"} == 1",
        1,
    )
    .await;
    let proxy_writer = cluster.proxy_status().await["writer"].clone();
    assert_eq!(writers[0].0["node"], proxy_writer, "{writers:?}");
    let lease = query(prometheus_port, "galley_controller_lease_held").await;
    assert_eq!(lease.len(), 1, "{lease:?}");
    let decisions = query(prometheus_port, "sum(galley_controller_decisions_total)").await;
    assert!(decisions[0].1 >= 1.0, "{decisions:?}");

    // The proxy's additions.
    let changes = query_until(prometheus_port, "galley_proxy_writer_changes_total >= 1", 1).await;
    assert_eq!(changes.len(), 1);
    let stale = query(prometheus_port, "sum(galley_proxy_backend_stale_view)").await;
    assert_eq!(stale[0].1, 0.0, "{stale:?}");

    // The names: the agent on node1 exports every name the real mysqld_exporter does
    // from SHOW GLOBAL STATUS and VARIABLES and its Galera families, but no name of a
    // credential (the exporter exports wsrep_sst_auth's and the like when numeric).
    let agent_page = get(&format!("http://127.0.0.1:{}/metrics", agent_ports[0]))
        .await
        .text()
        .await
        .unwrap();
    let agent_names = names(&agent_page);
    let mut exporter_page = String::new();
    for _ in 0..40 {
        if let Ok(response) =
            reqwest::get(format!("http://127.0.0.1:{exporter_port}/metrics")).await
        {
            exporter_page = response.text().await.unwrap();
            if exporter_page.contains("mysql_up 1") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        exporter_page.contains("mysql_up 1"),
        "the exporter never reached node1"
    );
    let exporter_names: BTreeSet<String> = names(&exporter_page)
        .into_iter()
        .filter(|name| {
            name.starts_with("mysql_global_status_")
                || name.starts_with("mysql_global_variables_")
                || name.starts_with("mysql_galera_")
                || name == "mysql_up"
                || name == "mysql_version_info"
        })
        .filter(|name| {
            name.strip_prefix("mysql_global_variables_")
                .is_none_or(|variable| !agent::metrics::is_secret(variable))
        })
        .collect();
    let missing: Vec<&String> = exporter_names.difference(&agent_names).collect();
    assert!(
        missing.is_empty(),
        "the agent lacks these mysqld_exporter names: {missing:?}"
    );
    // The labelled families carry the same label sets too.
    let labelled = |page: &str| -> BTreeSet<String> {
        page.lines()
            .filter(|line| {
                [
                    "mysql_global_status_buffer_pool",
                    "mysql_global_status_commands_total",
                    "mysql_global_status_handlers_total",
                    "mysql_global_status_innodb_row_ops_total",
                    "mysql_global_status_connection_errors_total",
                ]
                .iter()
                .any(|family| line.starts_with(family))
            })
            .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_owned()))
            .collect()
    };
    let missing: Vec<String> = labelled(&exporter_page)
        .difference(&labelled(&agent_page))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "the agent lacks these mysqld_exporter series: {missing:?}"
    );
    let wsrep = agent_names
        .iter()
        .filter(|name| name.starts_with("mysql_global_status_wsrep_"))
        .count();
    eprintln!(
        "names: agent {} ({wsrep} wsrep), mysqld_exporter {} of the same collectors",
        agent_names.len(),
        exporter_names.len()
    );

    // The Grafana dashboard: valid by Grafana's schema (tests/grafana/check.mjs), and
    // every metric it queries is on one of galley's live pages.
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let grafana = repository.join("tests/grafana");
    assert!(
        grafana.join("node_modules/@grafana/schema").is_dir(),
        "run `npm ci` in {} first (scripts/test.sh does)",
        grafana.display()
    );
    let queried_file = root.join("dashboard-metrics.txt");
    let check = Command::new("node")
        .arg(grafana.join("check.mjs"))
        .env("GALLEY_DASHBOARD_METRICS", &queried_file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the dashboard check failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let client = reqwest::Client::new();
    let controller_page = client
        .get(format!("http://127.0.0.1:{controller_port}/api/v1/metrics"))
        .bearer_auth(&cluster.secrets().cluster_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let proxy_page = get(&format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .text()
        .await
        .unwrap();
    let mut exported = BTreeSet::new();
    for page in [&agent_page, &controller_page, &proxy_page] {
        exported.extend(names(page));
        exported.extend(families(page));
    }
    let queried = std::fs::read_to_string(&queried_file).unwrap();
    let unknown: Vec<&str> = queried
        .lines()
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics galley does not export: {unknown:?}"
    );
    eprintln!(
        "series: agent node1 {}, controller {}, proxy {}",
        agent_page.lines().filter(|l| !l.starts_with('#')).count(),
        controller_page
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        proxy_page.lines().filter(|l| !l.starts_with('#')).count()
    );

    // The daemons' logs are JSON lines with the stable fields.
    for log in [
        root.join("node1/log/agent.log"),
        root.join("controller/controller.log"),
    ] {
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines = 0;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{}: not JSON ({error}): {line}", log.display()));
            for field in ["timestamp", "level", "target", "message"] {
                assert!(
                    entry.get(field).is_some(),
                    "{}: no {field}: {line}",
                    log.display()
                );
            }
            lines += 1;
        }
        assert!(lines > 0, "{} is empty", log.display());
    }
}
