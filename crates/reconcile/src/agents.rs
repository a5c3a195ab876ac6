//! The engine's only way to touch a node: its agent. `NodeAgents` is the trait the
//! engine acts through; `AgentClients` implements it over the agents' HTTP API, and the
//! simulation implements it in memory.

use std::future::Future;

use agent::api::{NodeReport, StartMode};
use agent::{AgentClient, AgentError};
use galera::{GraState, Position};

/// Why a step could not be carried out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("no node {0} in this cluster")]
    UnknownNode(String),
}

/// The node agents of one cluster, by node name.
pub trait NodeAgents: Sync {
    /// The node's report (`GET /v1/status`).
    fn status(&self, node: &str) -> impl Future<Output = Result<NodeReport, StepError>> + Send;
    /// Initializes and secures an empty data dir; false when it was initialized already.
    fn init(&self, node: &str) -> impl Future<Output = Result<bool, StepError>> + Send;
    /// Starts mariadbd as a joiner or as the bootstrap node; returns its pid.
    fn start(
        &self,
        node: &str,
        mode: StartMode,
        mark_safe: bool,
    ) -> impl Future<Output = Result<u32, StepError>> + Send;
    /// Stops mariadbd gracefully; returns the saved grastate.dat.
    fn stop(&self, node: &str) -> impl Future<Output = Result<Option<GraState>, StepError>> + Send;
    /// Runs `--wsrep-recover` on the stopped server.
    fn recover(&self, node: &str) -> impl Future<Output = Result<Position, StepError>> + Send;
    /// Moves the stopped node's data dir aside (kept, never deleted); returns where to.
    fn move_aside(
        &self,
        node: &str,
        label: &str,
    ) -> impl Future<Output = Result<String, StepError>> + Send;
    /// Sets safe_to_bootstrap to 0 in the stopped node's grastate.dat.
    fn clear_bootstrap_flag(
        &self,
        node: &str,
    ) -> impl Future<Output = Result<(), StepError>> + Send;
}

/// The real agents, one HTTP client each.
#[derive(Debug, Clone)]
pub struct AgentClients {
    clients: Vec<(String, AgentClient)>,
}

impl AgentClients {
    pub fn new(clients: Vec<(String, AgentClient)>) -> AgentClients {
        AgentClients { clients }
    }

    pub fn client(&self, node: &str) -> Result<&AgentClient, StepError> {
        self.clients
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, client)| client)
            .ok_or_else(|| StepError::UnknownNode(node.to_owned()))
    }
}

impl NodeAgents for AgentClients {
    async fn status(&self, node: &str) -> Result<NodeReport, StepError> {
        Ok(self.client(node)?.status().await?)
    }

    async fn init(&self, node: &str) -> Result<bool, StepError> {
        Ok(self.client(node)?.init().await?.initialized)
    }

    async fn start(&self, node: &str, mode: StartMode, mark_safe: bool) -> Result<u32, StepError> {
        Ok(self.client(node)?.start(mode, mark_safe).await?.pid)
    }

    async fn stop(&self, node: &str) -> Result<Option<GraState>, StepError> {
        Ok(self.client(node)?.stop().await?.grastate)
    }

    async fn recover(&self, node: &str) -> Result<Position, StepError> {
        Ok(self.client(node)?.recover().await?)
    }

    async fn move_aside(&self, node: &str, label: &str) -> Result<String, StepError> {
        Ok(self.client(node)?.wipe(label).await?.moved_to)
    }

    async fn clear_bootstrap_flag(&self, node: &str) -> Result<(), StepError> {
        self.client(node)?.clear_bootstrap_flag().await?;
        Ok(())
    }
}
