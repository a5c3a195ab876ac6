//! `galley import`'s logic: register an existing Galera cluster that galley did not
//! deploy, so that the controller, the API and the console can watch it and manage its
//! databases and accounts. Every node is inspected over SQL first (`survey`): it must
//! answer, run Galera in a Primary component, share one cluster UUID with the others,
//! and the account must hold the privileges galley needs. Only then are galley.toml and
//! the secrets file written (`write_cluster`), so a failed import leaves nothing behind.
//! The CLI (crates/galley/src/import.rs) parses the arguments, reads the password and
//! prints.

mod files;
mod node_arg;
mod privileges;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context as _;
use controller::sql_observe::{self, SqlAccount};
use galera::WsrepStatus;
use mysql_async::prelude::Queryable as _;

pub use files::{check_new_dir, render_spec, secrets_path, write_cluster, SpecNode};
pub use node_arg::{parse_node_arg, parse_writer_arg, NodeArg};
pub use privileges::{missing_privileges, REQUIRED_PRIVILEGES};

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} already exists: import into a new directory (--dir), or remove the old cluster there first", .0.display())]
    AlreadyExists(PathBuf),
    #[error("give every node of the cluster with --node [NAME=]HOST:PORT")]
    NoNodes,
    /// Every problem found on every node, so that one run lists them all.
    #[error("nothing was imported:\n{}", list(.0))]
    Refused(Vec<String>),
    #[error(
        "the cluster's wsrep_cluster_name `{0}` is not a valid galley name; give one with --name"
    )]
    ClusterName(String),
    /// The generated spec does not load (a name or address galley does not accept).
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("{0:#}")]
    Write(anyhow::Error),
}

fn list(problems: &[String]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    lines.join("\n")
}

/// What one node said about itself.
#[derive(Debug, Clone)]
pub struct FoundNode {
    pub arg: NodeArg,
    /// The name galley gives it (`assign_names`); empty until then.
    pub name: String,
    pub wsrep_on: bool,
    pub cluster_name: String,
    pub node_name: String,
    pub version: String,
    pub wsrep: WsrepStatus,
    /// Required privileges the account lacks on this node.
    pub missing: Vec<&'static str>,
}

/// Asks one node, over SQL as `account`, for its Galera status and settings, its version
/// and the account's privileges.
pub async fn inspect(arg: &NodeArg, account: &SqlAccount) -> anyhow::Result<FoundNode> {
    let address = arg.address();
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
    // Everything needed was read; a failed goodbye changes nothing.
    let _ = conn.disconnect().await;
    Ok(FoundNode {
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

/// Inspects every node (all of them, so that one run lists every problem), checks them
/// (`problems`) and names them (`assign_names`). `Refused` lists what is wrong.
pub async fn survey(
    node_args: &[NodeArg],
    account: &SqlAccount,
) -> Result<Vec<FoundNode>, ImportError> {
    if node_args.is_empty() {
        return Err(ImportError::NoNodes);
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for arg in node_args {
        match inspect(arg, account).await {
            Ok(node) => found.push(node),
            Err(error) => problems.push(format!("{error:#}")),
        }
    }
    problems.extend(self::problems(&found, &account.user));
    if !problems.is_empty() {
        return Err(ImportError::Refused(problems));
    }
    assign_names(&mut found);
    Ok(found)
}

/// What keeps these nodes from being imported: a node that is not Galera or not in a
/// Primary component, an account without the privileges galley needs, nodes of
/// different clusters (different `wsrep_cluster_state_uuid`).
pub fn problems(found: &[FoundNode], user: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for node in found {
        let address = node.arg.address();
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
            .map(|n| format!("{} has {}", n.arg.address(), n.wsrep.cluster_state_uuid))
            .collect();
        problems.push(format!(
            "the nodes are not one Galera cluster (different wsrep_cluster_state_uuid): {}",
            members.join(", ")
        ));
    }
    problems
}

/// 1 to 64 letters, digits, `_` or `-`: a name galley accepts for a node or a cluster.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Names every node: the given name, else the server's wsrep_node_name when it is a
/// valid and unused name, else `nodeN`.
pub fn assign_names(found: &mut [FoundNode]) {
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

/// The cluster's name in galley: the one given, else the first node's
/// wsrep_cluster_name when galley accepts it as a name.
pub fn cluster_name(given: Option<String>, found: &[FoundNode]) -> Result<String, ImportError> {
    let server_name = found.first().map_or("", |node| node.cluster_name.as_str());
    match given {
        Some(name) => Ok(name),
        None if is_identifier(server_name) => Ok(server_name.to_owned()),
        None => Err(ImportError::ClusterName(server_name.to_owned())),
    }
}

/// The nodes as galley.toml lists them.
pub fn spec_nodes(found: &[FoundNode]) -> Vec<SpecNode> {
    found
        .iter()
        .map(|node| SpecNode {
            name: node.name.clone(),
            host: node.arg.host.clone(),
            port: node.arg.port,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
    const UUID_B: &str = "8c1b5d3e-0b7a-4b8e-9a51-0c2f6e7d9a10";

    fn found(name: Option<&str>, node_name: &str) -> FoundNode {
        FoundNode {
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

    /// A healthy member of the cluster with `uuid`, at 10.0.0.`n`:3306.
    fn member(n: u8, uuid: &str) -> FoundNode {
        let mut node = found(None, &format!("galera-{n}"));
        node.arg.host = format!("10.0.0.{n}");
        node.wsrep = WsrepStatus::from_variables([
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_cluster_state_uuid", uuid),
            ("wsrep_local_state", "4"),
        ]);
        node
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

    #[test]
    fn every_problem_of_every_node_is_listed() {
        let healthy = [member(1, UUID_A), member(2, UUID_A), member(3, UUID_A)];
        assert_eq!(problems(&healthy, "dba"), Vec::<String>::new());

        let mut not_galera = member(1, UUID_A);
        not_galera.wsrep_on = false;
        let mut not_primary = member(2, UUID_A);
        not_primary.wsrep.cluster_status = "non-Primary".to_owned();
        let mut weak_account = member(3, UUID_A);
        weak_account.missing = vec!["CREATE USER", "GRANT OPTION"];
        let found = problems(&[not_galera, not_primary, weak_account], "dba");
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with("10.0.0.1:3306 is not a Galera node"),
            "{}",
            found[0]
        );
        assert!(
            found[1].starts_with(
                "10.0.0.2:3306 is not in a Primary component (wsrep_cluster_status non-Primary)"
            ),
            "{}",
            found[1]
        );
        assert!(
            found[2]
                .starts_with("the account `dba` on 10.0.0.3:3306 lacks CREATE USER, GRANT OPTION;"),
            "{}",
            found[2]
        );

        let two_clusters = problems(&[member(1, UUID_A), member(2, UUID_B)], "dba");
        assert_eq!(
            two_clusters,
            [format!(
                "the nodes are not one Galera cluster (different wsrep_cluster_state_uuid): \
                 10.0.0.1:3306 has {UUID_A}, 10.0.0.2:3306 has {UUID_B}"
            )]
        );
    }

    #[test]
    fn the_refusal_lists_each_problem_on_its_own_line() {
        let error = ImportError::Refused(vec!["one".to_owned(), "two".to_owned()]);
        assert_eq!(error.to_string(), "nothing was imported:\n  - one\n  - two");
    }

    #[test]
    fn the_cluster_is_named_as_given_else_as_the_servers_call_it() {
        let mut nodes = vec![member(1, UUID_A)];
        nodes[0].cluster_name = "legacy".to_owned();
        assert_eq!(cluster_name(None, &nodes).unwrap(), "legacy");
        assert_eq!(
            cluster_name(Some("prod".to_owned()), &nodes).unwrap(),
            "prod"
        );
        nodes[0].cluster_name = "my cluster".to_owned();
        let error = cluster_name(None, &nodes).unwrap_err().to_string();
        assert_eq!(
            error,
            "the cluster's wsrep_cluster_name `my cluster` is not a valid galley name; give one with --name"
        );
    }
}
