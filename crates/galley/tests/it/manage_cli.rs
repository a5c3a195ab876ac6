//! `galley import` against a real running 3-node cluster: the imported copy is watched
//! over SQL (status, and a controller that records its decisions without agents), and
//! an import with a wrong password or an unreachable node fails clearly and writes
//! nothing. The steps share one cluster: none of them changes it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{free_ports, TestCluster, GALLEY};

/// Runs `galley ARGS` with `stdin` piped in (a password), as an operator would.
fn galley_with_stdin(args: &[&str], dir: &Path, stdin: &str) -> Output {
    let mut child = Command::new(GALLEY)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn galley_in(args: &[&str], dir: &Path) -> Output {
    Command::new(GALLEY)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stops the controller of an imported cluster, even when the test failed half-way.
struct ImportedGuard<'a>(&'a Path);

impl Drop for ImportedGuard<'_> {
    fn drop(&mut self) {
        let _ = galley_in(&["down"], self.0);
    }
}

fn import_args(cluster: &TestCluster, controller_port: u16) -> Vec<String> {
    let mut args = vec![
        "import".to_owned(),
        "--name".to_owned(),
        "legacy".to_owned(),
    ];
    for port in &cluster.client_ports {
        args.push("--node".to_owned());
        args.push(format!("127.0.0.1:{port}"));
    }
    args.extend([
        "--user".to_owned(),
        agent::secrets::ADMIN_USER.to_owned(),
        "--password-stdin".to_owned(),
        "--controller-port".to_owned(),
        controller_port.to_string(),
    ]);
    args
}

fn assert_nothing_written(dir: &Path) {
    assert!(!dir.join("galley.toml").exists(), "galley.toml was written");
    assert!(
        !dir.join("secrets.toml").exists(),
        "secrets.toml was written"
    );
}

async fn import_and_watch(cluster: &TestCluster) {
    let imported = tempfile::tempdir().unwrap();
    let dir = imported.path().join("legacy");
    let controller_port = free_ports(1)[0];
    let args = import_args(cluster, controller_port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let password = format!("{}\n", cluster.secrets().admin_password);
    let output = galley_with_stdin(&args, &dir, &password);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "import failed:\n{stdout}\n{}",
        text(&output.stderr)
    );
    // It lists what it found: the nodes by their wsrep_node_name, Synced.
    assert!(stdout.contains("Found Galera cluster"), "{stdout}");
    for node in ["node1", "node2", "node3"] {
        assert!(stdout.contains(node), "{stdout}");
    }
    assert!(
        !stdout.contains(&cluster.secrets().admin_password),
        "the password is never printed"
    );

    let spec_text = std::fs::read_to_string(dir.join("galley.toml")).unwrap();
    assert_eq!(
        spec_text.matches("managed = false").count(),
        3,
        "{spec_text}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("secrets.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let secrets = agent::Secrets::load(&dir.join("secrets.toml")).unwrap();
    assert_eq!(secrets.admin_user(), agent::secrets::ADMIN_USER);

    // galley status reads the nodes over SQL: three Synced, no agents.
    let output = galley_in(&["status", "--json"], &dir);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["cluster"], "legacy");
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{status:#}");
    for node in nodes {
        assert_eq!(node["state"], "Synced", "{node}");
        assert_eq!(node["synced"], true, "{node}");
        assert_eq!(node["cluster_size"], 3, "{node}");
        assert_eq!(node["agent"], "none", "{node}");
    }

    // Starting or stopping a node galley did not deploy is refused, with the reason.
    let output = galley_in(&["stop", "node2"], &dir);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("was imported"),
        "{}",
        text(&output.stderr)
    );

    // `galley up` starts only the controller, which observes the nodes over SQL and
    // records that the cluster is healthy.
    let _guard = ImportedGuard(&dir);
    let output = galley_in(&["up"], &dir);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(
        text(&output.stdout).contains("does not start its nodes"),
        "{}",
        text(&output.stdout)
    );
    let mut events = String::new();
    for _ in 0..80 {
        events = text(&galley_in(&["events", "--limit", "50"], &dir).stdout);
        if events.contains("every node is Synced") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(events.contains("every node is Synced"), "{events}");
    let output = galley_in(&["down"], &dir);
    assert!(
        text(&output.stdout).contains("keep running"),
        "{}",
        text(&output.stdout)
    );
    // The imported nodes really do keep running.
    let output = cluster.galley(&["status", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the original cluster is still Synced"
    );
}

async fn refuse_bad_imports(cluster: &TestCluster) {
    let scratch = tempfile::tempdir().unwrap();

    // A wrong password: every node says so, and nothing is written.
    let dir = scratch.path().join("wrong-password");
    let args = import_args(cluster, free_ports(1)[0]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = galley_with_stdin(&args, &dir, "not-the-password\n");
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.contains("nothing was imported"), "{error}");
    assert!(error.contains("Access denied"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert_nothing_written(&dir);

    // An address where nothing listens.
    let dir = scratch.path().join("unreachable");
    let nobody = free_ports(1)[0];
    let node = format!("127.0.0.1:{nobody}");
    let password = cluster.secrets().admin_password;
    let output = galley_with_stdin(
        &[
            "import",
            "--node",
            &node,
            "--user",
            agent::secrets::ADMIN_USER,
            "--password-stdin",
        ],
        &dir,
        &password,
    );
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(
        error.contains(&format!("cannot connect to {node}")),
        "{error}"
    );
    assert_nothing_written(&dir);

    // A node argument without a port is refused before anything connects.
    let output = galley_with_stdin(
        &[
            "import",
            "--node",
            "127.0.0.1",
            "--user",
            "x",
            "--password-stdin",
        ],
        &dir,
        &password,
    );
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(
        text(&output.stderr).contains("has no port"),
        "{}",
        text(&output.stderr)
    );
    assert_nothing_written(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_registers_a_running_cluster_and_refuses_bad_input() {
    let cluster = TestCluster::new();
    cluster.galley_ok(&["up", "--detach"]);
    refuse_bad_imports(&cluster).await;
    import_and_watch(&cluster).await;
}
