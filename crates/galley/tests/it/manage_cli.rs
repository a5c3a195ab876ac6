//! The management commands and `galley import` against one real running 3-node
//! cluster with its controller: databases, accounts, grants and OpenStack provisioning
//! through the controller's API (each checked on the servers over SQL where it matters),
//! API tokens, clear errors with exit code 1 (3 for drift); then the same cluster
//! imported into a new state directory and watched over SQL, and imports that must fail
//! without writing anything. The steps share the cluster: each cleans up what it made.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use serde_json::Value;

use crate::support::{TestCluster, GALLEY};
use testkit::free_ports;

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
        "--proxy-writer".to_owned(),
        format!("127.0.0.1:{}", cluster.client_ports[0]),
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
    assert!(
        spec_text.contains(&format!(
            "writer_address = \"127.0.0.1:{}\"",
            cluster.client_ports[0]
        )),
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
    for _ in 0..240 {
        events = text(&galley_in(&["events", "--limit", "50"], &dir).stdout);
        if events.contains("every node is Synced") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(events.contains("every node is Synced"), "{events}");

    // Its API manages the databases of the imported cluster, through the account given
    // to the import.
    wait_for_api(&dir).await;
    let output = galley_in(&["db", "create", "imported_app"], &dir);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let list = json_of(cluster, &["db", "list", "--json"]);
    assert!(
        names(&list, "name").contains(&"imported_app".to_owned()),
        "created through the imported cluster's controller: {list}"
    );
    let output = galley_in(&["db", "drop", "imported_app", "--yes"], &dir);
    assert!(output.status.success(), "{}", text(&output.stderr));

    // A node goes away (stopped through the cluster that really runs it): the imported
    // cluster's status shows it unreachable, and its controller records that recovery
    // is manual instead of acting.
    cluster.galley_ok(&["stop", "node3"]);
    let output = galley_in(&["status", "--json"], &dir);
    assert_eq!(output.status.code(), Some(3), "a node is not Synced");
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["nodes"][2]["state"], "unreachable", "{status:#}");
    for _ in 0..240 {
        events = text(&galley_in(&["events", "--limit", "50"], &dir).stdout);
        if events.contains("recovery is manual for imported nodes") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        events.contains("recovery is manual for imported nodes"),
        "{events}"
    );
    assert!(
        events.contains("node3 does not answer over SQL"),
        "{events}"
    );
    cluster.galley_ok(&["start", "node3"]);

    let output = galley_in(&["down"], &dir);
    assert!(
        text(&output.stdout).contains("keep running"),
        "{}",
        text(&output.stdout)
    );
    // The imported nodes really do keep running: the original cluster settles back to
    // three Synced nodes (node3's donor may still be finishing its transfer).
    let mut code = None;
    for _ in 0..120 {
        code = cluster.galley(&["status"]).status.code();
        if code == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(code, Some(0), "the original cluster is Synced again");
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

    // An account without the privileges galley needs: named, with what it lacks.
    let mut admin = cluster.conn(1).await;
    admin
        .query_drop("CREATE USER 'limited'@'%' IDENTIFIED BY 'Limited-Pass-1'; GRANT PROCESS, CREATE ON *.* TO 'limited'@'%'")
        .await
        .unwrap();
    let dir = scratch.path().join("limited");
    let mut args = import_args(cluster, free_ports(1)[0]);
    let user = args.iter().position(|a| a == "--user").unwrap() + 1;
    args[user] = "limited".to_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = galley_with_stdin(&args, &dir, "Limited-Pass-1\n");
    admin.query_drop("DROP USER 'limited'@'%'").await.unwrap();
    drop(admin);
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.contains("the account `limited`"), "{error}");
    assert!(error.contains("CREATE USER"), "{error}");
    assert!(error.contains("GRANT OPTION"), "{error}");
    // The privileges it does hold are not listed as missing.
    let lacks = error
        .split("lacks ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default();
    let missing: Vec<&str> = lacks.split(", ").collect();
    assert!(missing.contains(&"DROP"), "{error}");
    assert!(
        !missing.contains(&"CREATE") && !missing.contains(&"PROCESS"),
        "{error}"
    );
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

/// `galley ARGS --dir <cluster>`; returns (exit code, stdout, stderr).
fn run(cluster: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let output = cluster.galley(args);
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}

fn json_of(cluster: &TestCluster, args: &[&str]) -> Value {
    let (code, stdout, stderr) = run(cluster, args);
    assert_eq!(code, 0, "galley {args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

/// Waits until the controller of the cluster in `dir` serves its API and has seen a
/// Synced node; bounded.
async fn wait_for_api(dir: &Path) {
    let mut last = String::new();
    for _ in 0..120 {
        let output = galley_in(&["db", "list", "--json"], dir);
        if output.status.success() {
            return;
        }
        last = text(&output.stderr);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the controller's API did not serve `db list` within 30 s: {last}");
}

/// A TCP login as `user`@127.0.0.1 with `password` on node 1.
async fn login(cluster: &TestCluster, user: &str, password: &str) -> Result<(), String> {
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(cluster.client_ports[0])
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false);
    let conn = mysql_async::Conn::new(options)
        .await
        .map_err(|e| e.to_string())?;
    conn.disconnect().await.map_err(|e| e.to_string())
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

async fn databases(cluster: &TestCluster) {
    let created = run(cluster, &["db", "create", "cli_app"]);
    assert_eq!(created.0, 0, "{}", created.2);
    assert!(
        created.1.contains("Created database cli_app"),
        "{}",
        created.1
    );
    let list = json_of(cluster, &["db", "list", "--json"]);
    assert!(
        names(&list, "name").contains(&"cli_app".to_owned()),
        "{list}"
    );
    let table = run(cluster, &["db", "list"]).1;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("cli_app"), "{table}");

    // Creating it again: the controller's 409, passed on clearly.
    let again = run(cluster, &["db", "create", "cli_app"]);
    assert_eq!(again.0, 1);
    assert!(again.2.contains("error: conflict (409"), "{}", again.2);

    // A bad name: exit 1 and the controller's explanation.
    let bad = run(cluster, &["db", "create", "bad name!"]);
    assert_eq!(bad.0, 1);
    assert!(
        bad.2
            .contains("error: the controller refused the request (400 invalid input):"),
        "{}",
        bad.2
    );
    assert!(bad.2.contains("bad name!"), "{}", bad.2);

    // A drop needs its name repeated; a wrong one drops nothing.
    let refused = run(cluster, &["db", "drop", "cli_app"]);
    assert_eq!(refused.0, 1);
    assert!(refused.2.contains("--confirm cli_app"), "{}", refused.2);
    let wrong = run(cluster, &["db", "drop", "cli_app", "--confirm", "cli_ap"]);
    assert_eq!(wrong.0, 1);
    let list = json_of(cluster, &["db", "list", "--json"]);
    assert!(names(&list, "name").contains(&"cli_app".to_owned()));
    let dropped = run(cluster, &["db", "drop", "cli_app", "--confirm", "cli_app"]);
    assert_eq!(dropped.0, 0, "{}", dropped.2);
    let list = json_of(cluster, &["db", "list", "--json"]);
    assert!(
        !names(&list, "name").contains(&"cli_app".to_owned()),
        "{list}"
    );
}

async fn users_and_grants(cluster: &TestCluster) {
    assert_eq!(run(cluster, &["db", "create", "clidata"]).0, 0);

    // A generated password, printed once, that really logs in.
    let (code, stdout, stderr) = run(cluster, &["user", "create", "cli_user", "--host", "%"]);
    assert_eq!(code, 0, "{stderr}");
    let password = stdout
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password line in {stdout}"))
        .to_owned();
    login(cluster, "cli_user", &password).await.unwrap();

    // A new password from stdin replaces it.
    let output = galley_with_stdin(
        &["user", "password", "cli_user", "--password-stdin"],
        cluster.path(),
        "Stdin-Pass-1234\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(!text(&output.stdout).contains("Stdin-Pass-1234"));
    login(cluster, "cli_user", "Stdin-Pass-1234").await.unwrap();
    assert!(login(cluster, "cli_user", &password).await.is_err());

    // Grants show in `user list --json`, and go again with revoke.
    let granted = run(
        cluster,
        &[
            "grant",
            "cli_user",
            "clidata",
            "--privileges",
            "select,insert",
        ],
    );
    assert_eq!(granted.0, 0, "{}", granted.2);
    let grants_of = |list: &Value| -> String {
        list.as_array()
            .unwrap()
            .iter()
            .find(|u| u["user"] == "cli_user" && u["host"] == "%")
            .map(|u| u["grants"].to_string())
            .unwrap_or_default()
    };
    let list = json_of(cluster, &["user", "list", "--json"]);
    let grants = grants_of(&list);
    assert!(grants.contains("SELECT, INSERT ON `clidata`"), "{grants}");
    assert!(!grants.contains("IDENTIFIED BY PASSWORD"), "{grants}");
    let revoked = run(
        cluster,
        &["revoke", "cli_user", "clidata", "--privileges", "insert"],
    );
    assert_eq!(revoked.0, 0, "{}", revoked.2);
    let grants = grants_of(&json_of(cluster, &["user", "list", "--json"]));
    assert!(grants.contains("SELECT ON `clidata`"), "{grants}");
    assert!(!grants.contains("INSERT"), "{grants}");
    let table = run(cluster, &["user", "list"]).1;
    assert!(table.contains("cli_user"), "{table}");
    assert!(
        !table.contains("galley_admin"),
        "system accounts only with --all: {table}"
    );

    // Drop: gone from the list and from the server.
    assert_eq!(run(cluster, &["user", "drop", "cli_user"]).0, 0);
    let list = json_of(cluster, &["user", "list", "--json"]);
    assert!(
        !names(&list, "user").contains(&"cli_user".to_owned()),
        "{list}"
    );
    assert!(login(cluster, "cli_user", "Stdin-Pass-1234").await.is_err());
    let missing = run(cluster, &["user", "drop", "cli_user"]);
    assert_eq!(missing.0, 1, "dropping a missing account is an error");
    assert!(missing.2.starts_with("error: "), "{}", missing.2);
    assert_eq!(
        run(cluster, &["db", "drop", "clidata", "--yes"]).0,
        0,
        "--yes confirms a drop"
    );
}

async fn openstack(cluster: &TestCluster) {
    let first = json_of(
        cluster,
        &["openstack", "provision", "--service", "glance", "--json"],
    );
    assert_eq!(first["changed"], true, "{first}");
    let second = run(cluster, &["openstack", "provision", "--service", "glance"]);
    assert_eq!(second.0, 0, "{}", second.2);
    assert!(second.1.contains("Nothing changed"), "{}", second.1);
    assert!(second.1.contains("glance: unchanged"), "{}", second.1);

    // The config lines, to a private file, with a password that logs in.
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("glance.conf");
    let file_arg = file.display().to_string();
    let shown = run(
        cluster,
        &[
            "openstack",
            "show",
            "--service",
            "glance",
            "--output",
            &file_arg,
        ],
    );
    assert_eq!(shown.0, 0, "{}", shown.2);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = std::fs::read_to_string(&file).unwrap();
    let connection = config
        .lines()
        .find_map(|line| line.strip_prefix("connection = mysql+pymysql://glance:"))
        .unwrap_or_else(|| panic!("no connection line in {config}"));
    let password = connection.split('@').next().unwrap();
    login(cluster, "glance", password).await.unwrap();

    // No drift; then an account dropped behind galley's back is drift (exit 3), and a
    // provision puts it back.
    let (code, stdout, stderr) = run(cluster, &["openstack", "drift"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut conn = cluster.conn(1).await;
    conn.query_drop("DROP USER 'glance'@'%'").await.unwrap();
    drop(conn);
    let (code, stdout, _) = run(cluster, &["openstack", "drift"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("glance"), "{stdout}");
    let drift = cluster.galley(&["openstack", "drift", "--json"]);
    assert_eq!(drift.status.code(), Some(3));
    let drift: Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert_eq!(drift["clean"], false, "{drift}");
    let repaired = json_of(
        cluster,
        &["openstack", "provision", "--service", "glance", "--json"],
    );
    assert_eq!(repaired["changed"], true, "{repaired}");
    assert_eq!(run(cluster, &["openstack", "drift"]).0, 0);

    let unknown = run(cluster, &["openstack", "provision", "--service", "no_such"]);
    assert_eq!(unknown.0, 1);
    assert!(unknown.2.contains("no_such"), "{}", unknown.2);
}

async fn tokens_and_targets(cluster: &TestCluster) {
    let created = json_of(cluster, &["token", "create", "cli-test", "--json"]);
    let token = created["token"].as_str().unwrap().to_owned();
    let id = match &created["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    };
    let listed = json_of(cluster, &["token", "list", "--json"]);
    assert!(
        names(&listed, "name").contains(&"cli-test".to_owned()),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&token),
        "a token is shown only once"
    );

    // The API token from a file, with --url, from a directory with no cluster.
    let scratch = tempfile::tempdir().unwrap();
    let token_file = scratch.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let url = format!("http://127.0.0.1:{}", cluster.controller_port.unwrap());
    let remote = |extra: &[&str]| {
        Command::new(GALLEY)
            .args(["db", "list", "--json", "--url", &url, "--token-file"])
            .arg(&token_file)
            .arg("--dir")
            .arg(scratch.path().join("no-cluster"))
            .args(extra)
            .output()
            .unwrap()
    };
    let output = remote(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    let revoked = run(cluster, &["token", "revoke", &id]);
    assert_eq!(revoked.0, 0, "{}", revoked.2);
    let output = remote(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("401"),
        "{}",
        text(&output.stderr)
    );

    // No controller there: said so, with how to start one.
    let nobody = free_ports(1)[0];
    let output = Command::new(GALLEY)
        .args(["user", "list", "--url", &format!("127.0.0.1:{nobody}")])
        .env("GALLEY_TOKEN", "anything")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(error.contains("cannot reach the controller"), "{error}");
    assert!(error.contains("galley up"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manage_through_the_api_and_import_the_cluster() {
    let cluster = TestCluster::with_controller();
    cluster.galley_ok(&["up", "--detach"]);
    wait_for_api(cluster.path()).await;
    databases(&cluster).await;
    users_and_grants(&cluster).await;
    openstack(&cluster).await;
    tokens_and_targets(&cluster).await;
    refuse_bad_imports(&cluster).await;
    import_and_watch(&cluster).await;
}
