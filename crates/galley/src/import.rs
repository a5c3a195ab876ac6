//! `galley import`: register an existing Galera cluster that galley did not deploy, so
//! that the controller, the API and the console can watch it and manage its databases
//! and accounts. Every node is checked over SQL first (reachable, one Galera cluster,
//! an account with the privileges galley needs); only then are galley.toml (nodes with
//! `managed = false`) and the secrets file (mode 0600) written, so a failed import
//! leaves nothing behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use controller::sql_observe::{self, SqlAccount};
use galera::WsrepStatus;
use mysql_async::prelude::Queryable as _;

use crate::local::{Cluster, Location};

/// `galley import`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The new state directory for the imported cluster (galley.toml, secrets file,
    /// controller history). It must not hold a cluster yet.
    #[arg(long, default_value = ".galley", env = "GALLEY_DIR")]
    dir: std::path::PathBuf,
    /// The cluster's name in galley [default: the servers' wsrep_cluster_name].
    #[arg(long)]
    name: Option<String>,
    /// A node of the cluster as [NAME=]HOST:PORT (repeat for every node). Without a
    /// NAME, the server's wsrep_node_name is used.
    #[arg(long = "node", value_name = "[NAME=]HOST:PORT", required = true, value_parser = parse_node_arg)]
    nodes: Vec<NodeArg>,
    /// An account with ALL PRIVILEGES ON *.* WITH GRANT OPTION on the cluster.
    #[arg(long)]
    user: String,
    /// Read the account's password from stdin (the only way to give it: a password
    /// on the command line is visible in `ps`).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// The port of the controller (API and console) for this cluster, on 127.0.0.1.
    #[arg(long, default_value_t = 4600)]
    controller_port: u16,
    /// Where clients send writes today (an existing load balancer or virtual IP), as
    /// HOST:PORT; OpenStack connection strings will point at it [default: the first node].
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_writer_arg)]
    proxy_writer: Option<NodeArg>,
}

fn parse_writer_arg(text: &str) -> Result<NodeArg, String> {
    let parsed = parse_node_arg(text)?;
    if parsed.name.is_some() {
        return Err(format!("`{text}`: expected HOST:PORT, without a name"));
    }
    Ok(parsed)
}

/// `galley import ARGS`.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let location = Location::new(args.dir, None);
    let writer = args
        .proxy_writer
        .map(|writer| spec::host_port(&writer.host, writer.port));
    import(
        &location,
        args.name,
        &args.nodes,
        &args.user,
        args.controller_port,
        writer.as_deref(),
    )
    .await
}

/// One `--node [NAME=]HOST:PORT` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArg {
    pub name: Option<String>,
    pub host: String,
    pub port: u16,
}

/// Parses `[NAME=]HOST:PORT` (an IPv6 host in brackets: `[::1]:3306`). The port is
/// required: a guessed 3306 would silently import the wrong server on a shared host.
pub fn parse_node_arg(text: &str) -> Result<NodeArg, String> {
    let usage = "expected [NAME=]HOST:PORT, like db1=10.0.0.1:3306";
    let (name, address) = match text.split_once('=') {
        Some((name, address)) => (Some(name.to_owned()), address),
        None => (None, text),
    };
    if let Some(name) = &name {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(format!(
                "node name `{name}` is not allowed; use 1 to 64 letters, digits, `_` or `-`"
            ));
        }
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("`{address}`: {usage}"))?;
        (host, port)
    } else {
        address
            .rsplit_once(':')
            .ok_or_else(|| format!("`{address}` has no port; {usage}"))?
    };
    if host.is_empty() || host.contains(':') && !address.starts_with('[') {
        return Err(format!("`{address}`: {usage}"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| format!("`{port}` is not a port; allowed: 1 to 65535"))?;
    Ok(NodeArg {
        name,
        host: host.to_owned(),
        port,
    })
}

/// Global privileges galley uses: databases and accounts for OpenStack (granting ALL on
/// a database needs every database privilege plus GRANT OPTION), and status reading.
pub const REQUIRED_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
    "REFERENCES",
    "CREATE USER",
    "RELOAD",
    "PROCESS",
    "GRANT OPTION",
];

/// The required privileges that the `SHOW GRANTS` lines do not give on `*.*`.
/// Only global grants count; the lines may carry password hashes, so they are never
/// echoed back.
pub fn missing_privileges(grant_lines: &[String]) -> Vec<&'static str> {
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut all = false;
    for line in grant_lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privileges, after)) = rest.split_once(" ON *.* TO ") else {
            continue;
        };
        if after.contains("WITH GRANT OPTION") {
            held.insert("GRANT OPTION".to_owned());
        }
        for privilege in privileges.split(", ") {
            let privilege = privilege.trim().to_ascii_uppercase();
            if privilege == "ALL PRIVILEGES" || privilege == "ALL" {
                all = true;
            }
            held.insert(privilege);
        }
    }
    REQUIRED_PRIVILEGES
        .iter()
        .copied()
        .filter(|privilege| {
            let granted_by_all = all && *privilege != "GRANT OPTION";
            !granted_by_all && !held.contains(*privilege)
        })
        .collect()
}

/// What one node said about itself.
#[derive(Debug)]
struct Found {
    arg: NodeArg,
    name: String,
    wsrep_on: bool,
    cluster_name: String,
    node_name: String,
    version: String,
    wsrep: WsrepStatus,
    missing: Vec<&'static str>,
}

async fn inspect(arg: &NodeArg, account: &SqlAccount) -> anyhow::Result<Found> {
    let address = spec::host_port(&arg.host, arg.port);
    let mut conn = sql_observe::connect(&arg.host, arg.port, account).await?;
    let wsrep = sql_observe::read_wsrep(&mut conn, &address).await?;
    let (wsrep_on, cluster_name, node_name, version): (String, String, String, String) = conn
        .query_first("SELECT @@wsrep_on, @@wsrep_cluster_name, @@wsrep_node_name, @@version")
        .await
        .with_context(|| format!("cannot read the Galera settings of {address}"))?
        .unwrap_or_default();
    let grants: Vec<String> = conn
        .query("SHOW GRANTS FOR CURRENT_USER()")
        .await
        .with_context(|| format!("cannot read the account's privileges on {address}"))?;
    let _ = conn.disconnect().await;
    Ok(Found {
        arg: arg.clone(),
        name: String::new(),
        wsrep_on: matches!(wsrep_on.as_str(), "1" | "ON"),
        cluster_name,
        node_name,
        version,
        wsrep,
        missing: missing_privileges(&grants),
    })
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Names every node: the given name, else the server's wsrep_node_name when it is a
/// valid and unused name, else `nodeN`.
fn assign_names(found: &mut [Found]) {
    let mut used: BTreeSet<String> = found.iter().filter_map(|f| f.arg.name.clone()).collect();
    for (index, node) in found.iter_mut().enumerate() {
        node.name = match &node.arg.name {
            Some(name) => name.clone(),
            None if is_identifier(&node.node_name) && !used.contains(&node.node_name) => {
                node.node_name.clone()
            }
            None => {
                let mut n = index + 1;
                while used.contains(&format!("node{n}")) {
                    n += 1;
                }
                format!("node{n}")
            }
        };
        used.insert(node.name.clone());
    }
}

/// The galley.toml of an imported cluster.
pub fn render_spec(
    cluster_name: &str,
    dir: &Path,
    controller_port: u16,
    nodes: &[(String, String, u16)],
    writer_address: Option<&str>,
) -> String {
    let root = dir.display();
    let writer = writer_address
        .map(|address| format!("writer_address = \"{address}\"\n"))
        .unwrap_or_default();
    let mut text = format!(
        "# Imported by `galley import`. galley watches these nodes over SQL and manages\n\
         # their databases and accounts; it never starts, stops or recovers them.\n\
         [cluster]\nname = \"{cluster_name}\"\nsecrets_file = \"{root}/secrets.toml\"\n{writer}\n\
         [controller]\naddress = \"127.0.0.1\"\nport = {controller_port}\nstate_dir = \"{root}/controller\"\n"
    );
    for (name, host, port) in nodes {
        text.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\naddress = \"{host}\"\nclient_port = {port}\nmanaged = false\n"
        ));
    }
    text
}

/// `galley import`.
pub async fn import(
    location: &Location,
    name: Option<String>,
    node_args: &[NodeArg],
    user: &str,
    controller_port: u16,
    writer_address: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let secrets_path = location.dir.join("secrets.toml");
    for path in [&location.config, &secrets_path] {
        if path.exists() {
            bail!(
                "{} already exists: import into a new directory (--dir), or remove the old cluster there first",
                path.display()
            );
        }
    }
    if node_args.is_empty() {
        bail!("give every node of the cluster with --node [NAME=]HOST:PORT");
    }
    let password = crate::manage_cli::read_secret_from_stdin("the account's password")?;
    let account = SqlAccount {
        user: user.to_owned(),
        password,
    };

    // Every node is asked before anything is decided, so that one run lists every
    // problem.
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for arg in node_args {
        match inspect(arg, &account).await {
            Ok(node) => found.push(node),
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    for node in &found {
        let address = spec::host_port(&node.arg.host, node.arg.port);
        if !node.wsrep_on || node.wsrep.cluster_state_uuid.is_empty() {
            problems.push(format!(
                "{address} is not a Galera node (wsrep_on is OFF or the provider is not loaded); galley imports Galera clusters only"
            ));
        } else if !node.wsrep.is_primary() {
            problems.push(format!(
                "{address} is not in a Primary component (wsrep_cluster_status {}); import a cluster while it is healthy",
                node.wsrep.cluster_status
            ));
        }
        if !node.missing.is_empty() {
            problems.push(format!(
                "the account `{user}` on {address} lacks {}; galley needs them to manage databases, accounts and grants \
                 (GRANT ALL PRIVILEGES ON *.* TO ... WITH GRANT OPTION gives them)",
                node.missing.join(", ")
            ));
        }
    }
    let uuids: BTreeSet<&str> = found
        .iter()
        .filter(|n| n.wsrep_on)
        .map(|n| n.wsrep.cluster_state_uuid.as_str())
        .collect();
    if uuids.len() > 1 {
        let members: Vec<String> = found
            .iter()
            .map(|n| {
                format!(
                    "{} has {}",
                    spec::host_port(&n.arg.host, n.arg.port),
                    n.wsrep.cluster_state_uuid
                )
            })
            .collect();
        problems.push(format!(
            "the nodes are not one Galera cluster (different wsrep_cluster_state_uuid): {}",
            members.join(", ")
        ));
    }
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        bail!("nothing was imported:\n{}", list.join("\n"));
    }

    assign_names(&mut found);
    let cluster_name = match name {
        Some(name) => name,
        None if is_identifier(&found[0].cluster_name) => found[0].cluster_name.clone(),
        None => bail!(
            "the cluster's wsrep_cluster_name `{}` is not a valid galley name; give one with --name",
            found[0].cluster_name
        ),
    };
    println!(
        "Found Galera cluster {} ({}), {} member(s) in its Primary component:",
        found[0].cluster_name, found[0].wsrep.cluster_state_uuid, found[0].wsrep.cluster_size
    );
    println!(
        "  {:<12} {:<22} {:<15} {:>10}  VERSION",
        "NODE", "ADDRESS", "STATE", "SEQNO"
    );
    for node in &found {
        println!(
            "  {:<12} {:<22} {:<15} {:>10}  {}",
            node.name,
            spec::host_port(&node.arg.host, node.arg.port),
            node.wsrep.local_state.to_string(),
            node.wsrep.last_committed,
            node.version
        );
    }
    let size = found[0].wsrep.cluster_size;
    if size != found.len() as i64 {
        eprintln!(
            "warning: the cluster has {size} member(s) but {} node(s) were given; galley watches only the nodes given",
            found.len()
        );
    }

    let nodes: Vec<(String, String, u16)> = found
        .iter()
        .map(|n| (n.name.clone(), n.arg.host.clone(), n.arg.port))
        .collect();
    let text = render_spec(
        &cluster_name,
        &location.dir,
        controller_port,
        &nodes,
        writer_address,
    );
    // The generated spec must load: check it before anything is written.
    let loaded = spec::parse(&location.config, &text)?;
    std::fs::create_dir_all(&location.dir)
        .with_context(|| format!("cannot create {}", location.dir.display()))?;
    let secrets = agent::Secrets::for_imported(user, &account.password);
    secrets.write_new(&loaded.spec.secrets_file)?;
    if let Err(error) = write_new_file(&location.config, &text) {
        let _ = std::fs::remove_file(&loaded.spec.secrets_file);
        return Err(error);
    }
    println!(
        "\nImported cluster {cluster_name} into {}: {} and {} (mode 0600).",
        location.dir.display(),
        location.config.display(),
        loaded.spec.secrets_file.display()
    );
    println!(
        "galley watches these nodes over SQL and never starts, stops or recovers them.\n\
         Start the controller with `galley up --dir {dir}`; see the nodes with `galley status --dir {dir}`.",
        dir = location.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_new_file(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `galley up` on an imported cluster: there are no nodes to start, only the controller.
pub async fn up_imported(
    cluster: &Cluster,
    new_console_password: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if cluster.spec.controller.is_some() {
        crate::control::ensure_controller(cluster).await?;
        println!(
            "Cluster {} was imported: galley does not start its nodes; the controller watches them.\n",
            cluster.spec.name
        );
    }
    let rows = crate::status::collect(cluster).await;
    crate::status::print_table(&rows);
    println!();
    crate::cluster::print_console_help(cluster, new_console_password);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_arguments() {
        let cases: &[(&str, Result<NodeArg, &str>)] = &[
            (
                "db1=10.0.0.1:3306",
                Ok(NodeArg {
                    name: Some("db1".into()),
                    host: "10.0.0.1".into(),
                    port: 3306,
                }),
            ),
            (
                "galera-2.example.org:3307",
                Ok(NodeArg {
                    name: None,
                    host: "galera-2.example.org".into(),
                    port: 3307,
                }),
            ),
            (
                "[::1]:3306",
                Ok(NodeArg {
                    name: None,
                    host: "::1".into(),
                    port: 3306,
                }),
            ),
            ("10.0.0.1", Err("has no port")),
            ("10.0.0.1:0", Err("`0` is not a port")),
            ("10.0.0.1:99999", Err("`99999` is not a port")),
            ("db 1=10.0.0.1:3306", Err("node name `db 1` is not allowed")),
            (":3306", Err("expected [NAME=]HOST:PORT")),
        ];
        for (text, expected) in cases {
            let parsed = parse_node_arg(text);
            match (expected, &parsed) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{text}"),
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{text}: {message}")
                }
                _ => panic!("{text}: expected {expected:?}, got {parsed:?}"),
            }
        }
    }

    fn found(name: Option<&str>, node_name: &str) -> Found {
        Found {
            arg: NodeArg {
                name: name.map(str::to_owned),
                host: "10.0.0.1".to_owned(),
                port: 3306,
            },
            name: String::new(),
            wsrep_on: true,
            cluster_name: "c".to_owned(),
            node_name: node_name.to_owned(),
            version: String::new(),
            wsrep: WsrepStatus::from_variables([]),
            missing: Vec::new(),
        }
    }

    #[test]
    fn nodes_are_named_by_argument_then_by_the_server_then_by_position() {
        let mut nodes = vec![
            found(None, "galera-a"),
            found(Some("db2"), "galera-b"),
            // Not a valid galley name: falls back to its position.
            found(None, "has space"),
            // Taken by the first node: falls back too.
            found(None, "galera-a"),
        ];
        assign_names(&mut nodes);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["galera-a", "db2", "node3", "node4"]);
    }

    fn lines(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn all_privileges_with_grant_option_is_enough() {
        let grants = lines(&["GRANT ALL PRIVILEGES ON *.* TO `dba`@`%` IDENTIFIED BY PASSWORD '*ABC' WITH GRANT OPTION"]);
        assert!(missing_privileges(&grants).is_empty());
    }

    #[test]
    fn missing_privileges_are_named() {
        let without_grant_option =
            lines(&["GRANT ALL PRIVILEGES ON *.* TO `dba`@`%` IDENTIFIED BY PASSWORD '*ABC'"]);
        assert_eq!(missing_privileges(&without_grant_option), ["GRANT OPTION"]);
        let monitor = lines(&["GRANT PROCESS, REPLICATION CLIENT ON *.* TO `mon`@`%`"]);
        let missing = missing_privileges(&monitor);
        assert!(missing.contains(&"CREATE USER") && missing.contains(&"GRANT OPTION"));
        assert!(!missing.contains(&"PROCESS"));
        // Database-level grants do not count: galley creates new databases.
        let one_database = lines(&["GRANT ALL PRIVILEGES ON `nova`.* TO `nova`@`%`"]);
        assert_eq!(
            missing_privileges(&one_database).len(),
            REQUIRED_PRIVILEGES.len()
        );
    }

    #[test]
    fn the_rendered_spec_is_valid_and_unmanaged() {
        let nodes = vec![
            ("db1".to_owned(), "10.0.0.1".to_owned(), 3306),
            ("db2".to_owned(), "10.0.0.2".to_owned(), 3306),
            ("db3".to_owned(), "10.0.0.3".to_owned(), 3306),
        ];
        let text = render_spec(
            "legacy",
            Path::new("/srv/galley"),
            4600,
            &nodes,
            Some("10.0.0.10:3306"),
        );
        let loaded = spec::parse(Path::new("/srv/galley/galley.toml"), &text).unwrap();
        assert!(loaded.spec.is_imported());
        assert_eq!(
            loaded.spec.secrets_file,
            Path::new("/srv/galley/secrets.toml")
        );
        let controller = loaded.spec.controller.clone().unwrap();
        assert_eq!(controller.state_dir, Path::new("/srv/galley/controller"));
        assert_eq!(loaded.spec.node_names(), ["db1", "db2", "db3"]);
        assert_eq!(
            loaded.spec.client_endpoint(),
            ("10.0.0.10".to_owned(), 3306)
        );
        let without = render_spec("legacy", Path::new("/srv/galley"), 4600, &nodes, None);
        let loaded = spec::parse(Path::new("/srv/galley/galley.toml"), &without).unwrap();
        assert_eq!(loaded.spec.client_endpoint(), ("10.0.0.1".to_owned(), 3306));
    }
}
