//! The controller's agents: the node agents over HTTP, and for an imported cluster (no
//! agents) its nodes read over SQL into the same report. Acting on an imported node is
//! refused here too, whatever asks.

use agent::api::{NodeReport, StartMode};
use galera::{GraState, Position};
use reconcile::{AgentClients, NodeAgents, StepError};
use spec::NodeSpec;

use crate::sql_observe::{self, SqlAccount};

#[derive(Debug)]
pub struct ControllerAgents {
    clients: AgentClients,
    /// The imported nodes and the account that reads them.
    imported: Vec<NodeSpec>,
    sql_account: Option<SqlAccount>,
}

impl ControllerAgents {
    pub fn new(
        nodes: &[NodeSpec],
        token: &str,
        sql_account: Option<SqlAccount>,
    ) -> ControllerAgents {
        ControllerAgents {
            clients: AgentClients::new(
                nodes
                    .iter()
                    .filter(|node| node.managed)
                    .map(|node| {
                        (
                            node.name.clone(),
                            agent::AgentClient::new(&node.agent_address(), token),
                        )
                    })
                    .collect(),
            ),
            imported: nodes.iter().filter(|node| !node.managed).cloned().collect(),
            sql_account,
        }
    }
}

impl NodeAgents for ControllerAgents {
    async fn status(&self, node: &str) -> Result<NodeReport, StepError> {
        if let (Some(spec), Some(account)) = (
            self.imported.iter().find(|spec| spec.name == node),
            &self.sql_account,
        ) {
            return sql_observe::observe(spec, account).await.map_err(|error| {
                tracing::debug!(node, "{error}");
                StepError::Agent(agent::AgentError::Unreachable {
                    address: format!("{}:{}", spec.address, spec.client_port),
                    reason: error.to_string(),
                })
            });
        }
        self.clients.status(node).await
    }

    async fn init(&self, node: &str) -> Result<bool, StepError> {
        self.clients.init(node).await
    }

    async fn start(&self, node: &str, mode: StartMode, mark_safe: bool) -> Result<u32, StepError> {
        self.clients.start(node, mode, mark_safe).await
    }

    async fn stop(&self, node: &str) -> Result<Option<GraState>, StepError> {
        self.clients.stop(node).await
    }

    async fn recover(&self, node: &str) -> Result<Position, StepError> {
        self.clients.recover(node).await
    }

    async fn move_aside(&self, node: &str, label: &str) -> Result<String, StepError> {
        self.clients.move_aside(node, label).await
    }

    async fn clear_bootstrap_flag(&self, node: &str) -> Result<(), StepError> {
        self.clients.clear_bootstrap_flag(node).await
    }
}
