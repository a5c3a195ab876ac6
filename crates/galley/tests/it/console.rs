//! The web console in a real browser against a real cluster: `galley up` starts three
//! nodes, the proxy and the controller; headless Chromium (driven by
//! tests/browser/console.mjs through playwright-core) signs in, sees every node Synced,
//! provisions OpenStack, creates a database and a user, grants and revokes; then the SQL servers
//! confirm what the page showed, and tests/openstack/check_connections.py proves each
//! provisioned service's connection string works through the proxy with PyMySQL and
//! SQLAlchemy, as oslo.db uses it. Screenshots stay under target/tmp/console-screenshots.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::support::TestCluster;

/// The repository root (this crate lives in crates/galley).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs a program with `input` on its standard input (how secrets reach it: never on
/// the command line), bounded by `limit`; returns its exit status and output.
async fn run_with_input(
    command: &mut tokio::process::Command,
    input: &[u8],
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} did not finish within {limit:?}"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// `npm ci` once per checkout (scripts/test.sh runs it too); offline after the first.
async fn ensure_playwright(browser_dir: &Path) {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/setup-debian.sh (apt package chromium)"
    );
    if browser_dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let (status, output) = run_with_input(
        tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
            .current_dir(browser_dir),
        b"",
        Duration::from_secs(300),
    )
    .await;
    assert!(
        status.success(),
        "npm ci in {browser_dir:?} failed:\n{output}"
    );
}

async fn api_get(base: &str, token: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Waits until the controller has observed every node Synced; bounded.
async fn wait_observed_synced(base: &str, token: &str) {
    let mut last = Value::Null;
    for _ in 0..240 {
        last = api_get(base, token, "/api/v1/cluster").await;
        let nodes = last["nodes"].as_array().cloned().unwrap_or_default();
        if nodes.len() == 3 && nodes.iter().all(|node| node["state"] == "Synced") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the controller never observed every node Synced: {last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_and_provisioned_credentials_in_python() {
    let root = repository_root();
    let browser_dir = root.join("tests/browser");
    ensure_playwright(&browser_dir).await;

    let cluster = TestCluster::with_proxy_and_controller();
    cluster.galley_ok(&["up", "--detach"]);
    let secrets = cluster.secrets();
    let password = secrets
        .console_admin_password
        .clone()
        .expect("galley up wrote the console admin password");
    let base = format!("http://127.0.0.1:{}", cluster.controller_port.unwrap());
    wait_observed_synced(&base, &secrets.cluster_token).await;

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    let suffix = format!("{}", std::process::id());
    let (status, output) = run_with_input(
        tokio::process::Command::new("node")
            .arg(browser_dir.join("console.mjs"))
            .env("GALLEY_CONSOLE_URL", format!("{base}/"))
            .env("GALLEY_SCREENSHOTS_DIR", &screenshots)
            .env("GALLEY_TEST_SUFFIX", &suffix)
            .env_remove("GALLEY_CONSOLE_PASSWORD")
            .current_dir(&browser_dir),
        password.as_bytes(),
        Duration::from_secs(400),
    )
    .await;
    assert!(status.success(), "the browser test failed:\n{output}");
    assert!(
        !output.contains(&password),
        "the browser test printed the password"
    );
    for expected in ["overview", "openstack-provisioned", "schemas", "users"] {
        let found = std::fs::read_dir(&screenshots).unwrap().any(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(expected)
        });
        assert!(found, "no {expected} screenshot in {screenshots:?}");
    }
    eprintln!("console screenshots: {}", screenshots.display());

    // What the page showed is what the servers hold, on another node than the writer's.
    let database = format!("console_db_{suffix}");
    let user = format!("console_user_{suffix}");
    let mut conn = cluster.conn(3).await;
    let schemas: Vec<String> = conn.query("SHOW DATABASES").await.unwrap();
    assert!(
        schemas.contains(&database),
        "{database} missing: {schemas:?}"
    );
    assert!(
        !schemas.contains(&format!("console_drop_{suffix}")),
        "the dropped database is still there: {schemas:?}"
    );
    for service_database in ["keystone", "nova_api", "nova", "nova_cell0", "neutron"] {
        assert!(
            schemas.iter().any(|name| name == service_database),
            "{service_database} not provisioned: {schemas:?}"
        );
    }
    let grants: Vec<String> = conn
        .query(format!("SHOW GRANTS FOR `{user}`@`%`"))
        .await
        .unwrap();
    assert!(
        grants
            .iter()
            // SHOW GRANTS escapes the wildcard `_` of a database name (console\_db\_1).
            .map(|grant| grant.replace("\\_", "_"))
            .any(|grant| grant.starts_with("GRANT SELECT ON") && grant.contains(&database)),
        "{user}@% should have SELECT (granted with INSERT, INSERT revoked) on {database}: {grants:?}"
    );
    drop(conn);

    // Every provisioned connection string works through the proxy's writer port.
    let provisioned = api_get(&base, &secrets.cluster_token, "/api/v1/openstack").await;
    assert!(
        provisioned["services"]
            .as_array()
            .is_some_and(|services| services.len() >= 7),
        "the default set (7 services) provisioned: {provisioned:#}"
    );
    let writer_port = cluster.proxy_ports.unwrap().0;
    let (status, output) = run_with_input(
        tokio::process::Command::new("/usr/bin/python3")
            .arg(root.join("tests/openstack/check_connections.py"))
            .arg("--expect-port")
            .arg(writer_port.to_string()),
        provisioned.to_string().as_bytes(),
        Duration::from_secs(300),
    )
    .await;
    assert!(
        status.success(),
        "the PyMySQL/SQLAlchemy check failed:\n{output}"
    );
    assert!(
        output.contains("ok nova nova_cell0 sqlalchemy") && output.contains(" 0 problems"),
        "{output}"
    );
}
