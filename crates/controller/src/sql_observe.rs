//! Observing the nodes of an imported cluster (`managed = false`), which have no galley
//! agent: the controller reads each one over SQL, maps what it reads into the agent's
//! `NodeReport` so that status, events, samples and history work unchanged, and leaves
//! every recovery step for those nodes to the operator.

use std::fmt;
use std::time::Duration;

use agent::api::{NodeReport, ProcessReport};
use galera::WsrepStatus;
use planner::{AgentState, Blocked, Observation, Plan, Rule};
use spec::{ClusterSpec, NodeSpec};

/// How long connecting to a node, and then reading its status, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// The account that reads an imported node's status. `Debug` hides the password.
#[derive(Clone)]
pub struct SqlAccount {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for SqlAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlAccount")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why a node could not be read over SQL. The message never holds the password
/// (MariaDB's own "Access denied" text names only the user and the client host).
#[derive(Debug, thiserror::Error)]
pub enum SqlObserveError {
    #[error("cannot connect to {address}: {message}")]
    Connect { address: String, message: String },
    #[error("connecting to {address} timed out after {} s", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout { address: String },
    #[error("reading the status of {address} failed: {message}")]
    Query { address: String, message: String },
    #[error("reading the status of {address} timed out after {} s", QUERY_TIMEOUT.as_secs())]
    QueryTimeout { address: String },
}

/// Opens a TCP connection to `host:port` as `account`, within the connect timeout.
pub async fn connect(
    host: &str,
    port: u16,
    account: &SqlAccount,
) -> Result<mysql_async::Conn, SqlObserveError> {
    let address = spec::host_port(host, port);
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_owned())
        .tcp_port(port)
        .user(Some(account.user.clone()))
        .pass(Some(account.password.clone()))
        .prefer_socket(false)
        .init(vec![galera::PROBE_SESSION_INIT]);
    match tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(SqlObserveError::Connect {
            address,
            message: describe(&error),
        }),
        Err(_) => Err(SqlObserveError::ConnectTimeout { address }),
    }
}

/// The names of the Primary component's members (`mysql.wsrep_cluster_members`) as the
/// node at `host:port` reports them: data nodes and arbitrators (garbd) alike.
pub async fn primary_members(
    host: &str,
    port: u16,
    account: &SqlAccount,
) -> Result<Vec<String>, SqlObserveError> {
    use mysql_async::prelude::Queryable as _;
    let address = spec::host_port(host, port);
    let mut conn = connect(host, port, account).await?;
    let query = conn.query("SELECT node_name FROM mysql.wsrep_cluster_members");
    let members = match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(Ok(members)) => members,
        Ok(Err(error)) => {
            return Err(SqlObserveError::Query {
                address,
                message: describe(&error),
            })
        }
        Err(_) => return Err(SqlObserveError::QueryTimeout { address }),
    };
    let _ = conn.disconnect().await;
    Ok(members)
}

/// Reads the wsrep status variables and the settings that decide whether the node
/// serves (read_only, wsrep_desync, wsrep_reject_queries), as the agent does.
pub async fn read_wsrep(
    conn: &mut mysql_async::Conn,
    address: &str,
) -> Result<WsrepStatus, SqlObserveError> {
    let query = agent::read_wsrep_variables(conn);
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(Ok(rows)) => Ok(WsrepStatus::from_variables(
            rows.iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )),
        Ok(Err(error)) => Err(SqlObserveError::Query {
            address: address.to_owned(),
            message: error.to_string(),
        }),
        Err(_) => Err(SqlObserveError::QueryTimeout {
            address: address.to_owned(),
        }),
    }
}

/// A connection error in few words: for an I/O error its innermost cause ("Connection
/// refused (os error 111)") instead of the layers mysql_async wraps around it.
fn describe(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Io(_) => {
            let mut current: &dyn std::error::Error = error;
            while let Some(source) = current.source() {
                current = source;
            }
            current.to_string()
        }
        other => other.to_string(),
    }
}

/// One observation of an unmanaged node, as the agent would have reported it: a node
/// that answers over SQL is running with its data in place; what only an agent could
/// know (grastate.dat, the pid, a recovered position) stays empty. A node that does not
/// answer is an error: nothing says whether it runs.
pub async fn observe(node: &NodeSpec, account: &SqlAccount) -> Result<NodeReport, SqlObserveError> {
    let mut conn = connect(&node.address, node.client_port, account).await?;
    let wsrep = read_wsrep(&mut conn, &node.client_address()).await;
    // Closing politely is best effort: the status is what matters.
    let _ = tokio::time::timeout(QUERY_TIMEOUT, conn.disconnect()).await;
    let wsrep = wsrep?;
    Ok(report_from_sql(&node.name, wsrep))
}

/// The `NodeReport` of a node read over SQL.
pub fn report_from_sql(node: &str, wsrep: WsrepStatus) -> NodeReport {
    NodeReport {
        node: node.to_owned(),
        agent_version: "none (observed over SQL)".to_owned(),
        process: ProcessReport {
            running: true,
            pid: None,
            mode: None,
            last_exit: None,
            receiving_state_transfer: false,
        },
        data_dir_initialized: true,
        grastate: None,
        grastate_error: None,
        recovered: None,
        wsrep: Some(wsrep),
        sql_error: None,
        set_aside: Vec::new(),
        stale_view: None,
    }
}

/// For an imported cluster, a plan galley must not carry out: every step is for a node
/// it does not manage. When the cluster is not healthy, the plan becomes a refusal by
/// policy whose reason says that recovery is manual and what galley would have done (or
/// was waiting for), so that the decision and event history tells the operator what to
/// do by hand, starting with the nodes that are not serving as the controller saw them
/// (the planner's own words speak of agents, which imported nodes do not have). A
/// healthy plan, or any plan of a managed cluster, is returned unchanged.
pub fn leave_unmanaged_alone(
    mut plan: Plan,
    spec: &ClusterSpec,
    observation: &Observation,
) -> Plan {
    if !spec.is_imported() || (plan.steps.is_empty() && plan.blocked.is_none()) {
        return plan;
    }
    let not_serving: Vec<String> = observation
        .nodes
        .iter()
        .filter_map(|node| match &node.agent {
            AgentState::Unreachable => Some(format!("{} does not answer over SQL", node.name)),
            AgentState::Reported(facts) => match &facts.wsrep {
                Some(wsrep) if wsrep.write_health().is_ok() => None,
                Some(wsrep) => Some(format!(
                    "{} is {} ({})",
                    node.name,
                    wsrep.local_state,
                    if wsrep.is_primary() {
                        "Primary"
                    } else {
                        "not Primary"
                    }
                )),
                None => Some(format!("{} reports no wsrep status", node.name)),
            },
        })
        .collect();
    let mut seen: Vec<String> = plan
        .steps
        .iter()
        .map(|step| format!("{} ({})", step.action, step.reason))
        .collect();
    match &plan.blocked {
        Some(Blocked::Waiting { reason, .. }) => seen.push(format!("wait: {reason}")),
        Some(Blocked::Refused { reason, .. }) => seen.push(format!("refused: {reason}")),
        None => {}
    }
    plan.steps.clear();
    plan.blocked = Some(Blocked::Refused {
        rule: Rule::Policy,
        reason: format!(
            "recovery is manual for imported nodes (managed = false): {}. galley watches them but never acts on them; the planner says: {}",
            if not_serving.is_empty() {
                "the cluster is not healthy".to_owned()
            } else {
                not_serving.join(", ")
            },
            seen.join("; ")
        ),
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::{Action, Facts, NodeView, Policy, Situation, Step};

    /// db1 and db2 Synced, db3 unreachable.
    fn observation() -> Observation {
        let synced = WsrepStatus::from_variables([
            ("wsrep_ready", "ON"),
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_local_state", "4"),
            ("read_only", "OFF"),
        ]);
        let reported = |name: &str| NodeView {
            name: name.to_owned(),
            priority: 1,
            agent: AgentState::Reported(Box::new(Facts {
                running: true,
                wsrep: Some(synced.clone()),
                has_data: true,
                grastate: None,
                recovered: None,
                stuck: false,
                failed_starts: 0,
                backing_off: false,
                set_aside: Vec::new(),
                stale_view: None,
            })),
        };
        Observation {
            nodes: vec![
                reported("db1"),
                reported("db2"),
                NodeView {
                    name: "db3".to_owned(),
                    priority: 3,
                    agent: AgentState::Unreachable,
                },
            ],
            marks: Default::default(),
            policy: Policy::default(),
            force: false,
            operator: Default::default(),
            arbitrators: 0,
        }
    }

    fn imported_spec() -> ClusterSpec {
        let text = r#"
[cluster]
name = "legacy"
secrets_file = "/etc/galley/secrets.toml"

[[node]]
name = "db1"
address = "10.0.0.1"
client_port = 3306
managed = false

[[node]]
name = "db2"
address = "10.0.0.2"
client_port = 3306
managed = false

[[node]]
name = "db3"
address = "10.0.0.3"
client_port = 3306
managed = false
"#;
        spec::parse(std::path::Path::new("galley.toml"), text)
            .expect("valid spec")
            .spec
    }

    fn start(node: &str) -> Step {
        Step {
            action: Action::Start {
                node: node.to_owned(),
            },
            rule: Rule::RestartCrashedNode,
            reason: format!("{node} is stopped"),
            needs_confirmation: false,
        }
    }

    #[test]
    fn steps_for_imported_nodes_become_a_manual_refusal() {
        let plan = Plan {
            situation: Situation::Degraded,
            steps: vec![start("db2")],
            blocked: None,
            notes: Vec::new(),
            acceptance: None,
        };
        let plan = leave_unmanaged_alone(plan, &imported_spec(), &observation());
        assert!(plan.steps.is_empty());
        assert!(plan.runnable().is_empty());
        match plan.blocked {
            Some(Blocked::Refused {
                rule: Rule::Policy,
                reason,
            }) => {
                assert!(
                    reason.contains("recovery is manual for imported nodes"),
                    "{reason}"
                );
                assert!(reason.contains("db2 is stopped"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_healthy_plan_and_a_managed_cluster_are_left_as_they_are() {
        let healthy = Plan {
            situation: Situation::Healthy,
            steps: Vec::new(),
            blocked: None,
            notes: Vec::new(),
            acceptance: None,
        };
        assert_eq!(
            leave_unmanaged_alone(healthy.clone(), &imported_spec(), &observation()),
            healthy
        );
        let managed = spec::parse(
            std::path::Path::new("galley.toml"),
            "[cluster]\nname = \"c\"\n[[node]]\nname = \"db1\"\naddress = \"10.0.0.1\"\ndata_dir = \"/var/lib/mysql\"\n",
        )
        .unwrap()
        .spec;
        let degraded = Plan {
            situation: Situation::Degraded,
            steps: vec![start("db1")],
            blocked: None,
            notes: Vec::new(),
            acceptance: None,
        };
        assert_eq!(
            leave_unmanaged_alone(degraded.clone(), &managed, &observation()),
            degraded
        );
    }

    #[test]
    fn a_wait_on_an_imported_cluster_is_a_manual_refusal_that_names_it() {
        let plan = Plan {
            situation: Situation::Degraded,
            steps: Vec::new(),
            blocked: Some(Blocked::Waiting {
                rule: Rule::EveryNodeReported,
                reason: "db3 does not answer".to_owned(),
            }),
            notes: Vec::new(),
            acceptance: None,
        };
        let plan = leave_unmanaged_alone(plan, &imported_spec(), &observation());
        let Some(Blocked::Refused { reason, .. }) = plan.blocked else {
            panic!("expected a refusal");
        };
        assert!(reason.contains("wait: db3 does not answer"), "{reason}");
        assert!(
            reason.contains("(managed = false): db3 does not answer over SQL."),
            "only the node that is not serving is named: {reason}"
        );
    }

    #[test]
    fn the_account_debug_hides_the_password() {
        let account = SqlAccount {
            user: "dba".to_owned(),
            password: "hunter2".to_owned(),
        };
        let shown = format!("{account:?}");
        assert!(
            shown.contains("dba") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
