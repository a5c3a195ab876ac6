//! The agent's HTTP+JSON contract, shared by the service and its client.

use galera::{GraState, Position, WsrepStatus};
use serde::{Deserialize, Serialize};

/// Everything the agent knows about its node, as `GET /v1/status` returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    pub agent_version: String,
    pub process: ProcessReport,
    /// True once the data dir holds a MariaDB system schema (installed or received by SST).
    pub data_dir_initialized: bool,
    pub grastate: Option<GraState>,
    /// Why grastate.dat could not be read, when it exists but is invalid.
    pub grastate_error: Option<String>,
    /// The position `--wsrep-recover` found the last time it ran on the stopped server.
    pub recovered: Option<Position>,
    /// The wsrep status, when the server runs and answers over SQL.
    pub wsrep: Option<WsrepStatus>,
    /// Why the status could not be read over SQL while the server runs.
    pub sql_error: Option<String>,
    /// Earlier data dirs of this node that a rebuild moved aside, oldest first.
    #[serde(default)]
    pub set_aside: Vec<String>,
    /// Set by whoever compared every node's view (`reconcile::mark_stale_views`), never
    /// by the agent: the node still reports a view the others have left
    /// (`galera::stale_views`), so it is not Synced whatever it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_view: Option<String>,
}

impl NodeReport {
    /// The node's state as tables and the history show it.
    pub fn state(&self) -> NodeState {
        if self.process.running && self.stale_view.is_some() {
            return NodeState::StaleView;
        }
        match (&self.wsrep, self.process.running) {
            (Some(wsrep), true) if !wsrep.is_primary() && wsrep.cluster_status.is_empty() => {
                NodeState::Starting
            }
            (Some(wsrep), true) if !wsrep.is_primary() => NodeState::NonPrimary,
            (Some(wsrep), true) => NodeState::Primary(wsrep.local_state),
            (None, true) => NodeState::Starting,
            (_, false) => NodeState::Stopped,
        }
    }

    /// A short state for tables: the wsrep state when known, else the process state.
    pub fn state_label(&self) -> String {
        self.state().to_string()
    }

    /// Synced by its own word, and not in a stale view (when the caller compared views).
    pub fn is_synced(&self) -> bool {
        self.process.running
            && self.stale_view.is_none()
            && self
                .wsrep
                .as_ref()
                .is_some_and(|wsrep| wsrep.write_health().is_ok())
    }
}

/// A node's state from its agent's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Stopped,
    /// Running, but not answering over SQL yet (or not yet in any component).
    Starting,
    NonPrimary,
    /// Says it is in a Primary component, but in a view the others have left
    /// (`NodeReport::stale_view`).
    StaleView,
    /// In a Primary component, in this wsrep state.
    Primary(galera::WsrepState),
}

impl NodeState {
    /// Synced or donating in a Primary component: serving.
    pub fn serving(self) -> bool {
        matches!(
            self,
            NodeState::Primary(galera::WsrepState::Synced | galera::WsrepState::DonorDesynced)
        )
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeState::Stopped => f.write_str("stopped"),
            NodeState::Starting => f.write_str("starting"),
            NodeState::NonPrimary => f.write_str("non-Primary"),
            NodeState::StaleView => f.write_str("stale view"),
            NodeState::Primary(state) => write!(f, "{state}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessReport {
    pub running: bool,
    pub pid: Option<u32>,
    pub mode: Option<StartMode>,
    /// How the last run ended, with the server's last error lines, when it stopped by itself.
    pub last_exit: Option<String>,
    /// The server is receiving a state transfer (an SST script of its runs): it may take
    /// as long as the data is large, and it does not answer SQL meanwhile.
    #[serde(default)]
    pub receiving_state_transfer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// Join the cluster named in the config (IST or SST from a donor).
    Join,
    /// Start a new Primary Component from this node's data (`--wsrep-new-cluster`).
    Bootstrap,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRequest {
    pub mode: StartMode,
    /// For a bootstrap from existing data: set safe_to_bootstrap in grastate.dat first.
    /// The caller must have chosen this node by the recovery rules (most advanced node,
    /// every node reported, none running).
    #[serde(default)]
    pub mark_safe_to_bootstrap: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartResponse {
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopResponse {
    pub grastate: Option<GraState>,
    /// Set when the graceful stop passed its deadline (`server.stop_timeout_s`) and the
    /// server was killed: its next start recovers as after a crash.
    #[serde(default)]
    pub killed_after_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitResponse {
    /// False when the data dir was already initialized and left alone.
    pub initialized: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverResponse {
    pub position: Position,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeRequest {
    /// Appended to the moved data dir's name (letters, digits and `-` are kept).
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeResponse {
    pub moved_to: String,
}
