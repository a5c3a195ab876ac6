//! The bodies and queries of the overview routes: health, the observed cluster (with the
//! proxy's writer), events, decisions, metric history and a node's desired state.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Health { ok: true })]
pub struct Health {
    pub ok: bool,
}

/// `GET /cluster`: every node as the controller last observed it, the Primary
/// component, the proxy's view and the controller's recovery settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = ClusterView::example())]
pub struct ClusterView {
    /// The cluster's name from galley.toml.
    pub name: String,
    /// When the latest observation was made (ms since the Unix epoch); null before the
    /// first one.
    pub observed_at_ms: Option<i64>,
    /// In the spec's order.
    pub nodes: Vec<NodeView>,
    pub cluster: ComponentView,
    /// null when the spec has no proxy or it did not answer within a second.
    pub proxy: Option<ProxyView>,
    pub controller: ControllerView,
}

/// One node of the cluster view. Its wsrep values are null while its agent does not
/// answer or its server is down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeView {
    pub name: String,
    pub address: String,
    pub client_port: u16,
    /// `Synced`, `Donor/Desynced`, `stopped`, `agent down`, `unknown` (no observation
    /// yet), ...
    pub state: String,
    /// Whether its agent (or, for an imported node, its SQL port) answered.
    pub reachable: bool,
    pub cluster_size: Option<i64>,
    pub cluster_status: Option<String>,
    pub last_committed: Option<i64>,
    pub recv_queue: Option<i64>,
    pub send_queue: Option<i64>,
    /// The fraction of time replication was paused by flow control.
    pub flow_control_paused: Option<f64>,
    pub cert_failures: Option<i64>,
    pub ready: Option<bool>,
    pub desync: Option<bool>,
    pub read_only: Option<bool>,
}

/// The largest Primary component among the nodes' reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComponentView {
    /// 0 when no node is in a Primary component.
    pub size: i64,
    /// `Primary` or `non-Primary`.
    pub status: String,
    /// Its `wsrep_cluster_state_uuid`; null when there is no Primary component.
    pub uuid: Option<String>,
}

/// The proxy's view, from its admin `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProxyView {
    /// The node that takes writes now; null while the proxy has none.
    pub writer: Option<String>,
    /// Where clients write (`host:port`).
    pub writer_address: String,
    /// Where clients read (`host:port`).
    pub reader_address: String,
    /// The nodes the proxy sends reads to.
    pub healthy: Vec<String>,
}

/// Whether the controller heals on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ControllerView {
    pub auto_recover_nodes: bool,
    pub auto_recover_cluster: bool,
}

impl ClusterView {
    fn example() -> ClusterView {
        let node = |name: &str, address: &str, state: &str| NodeView {
            name: name.to_owned(),
            address: address.to_owned(),
            client_port: 3306,
            state: state.to_owned(),
            reachable: true,
            cluster_size: Some(2),
            cluster_status: Some("Primary".to_owned()),
            last_committed: Some(1_402),
            recv_queue: Some(0),
            send_queue: Some(0),
            flow_control_paused: Some(0.0),
            cert_failures: Some(0),
            ready: Some(true),
            desync: Some(false),
            read_only: Some(false),
        };
        let down = NodeView {
            reachable: false,
            cluster_size: None,
            cluster_status: None,
            last_committed: None,
            recv_queue: None,
            send_queue: None,
            flow_control_paused: None,
            cert_failures: None,
            ready: None,
            desync: None,
            read_only: None,
            ..node("node3", "10.0.0.3", "agent down")
        };
        ClusterView {
            name: "openstack".to_owned(),
            observed_at_ms: Some(1_767_225_600_000),
            nodes: vec![
                node("node1", "10.0.0.1", "Synced"),
                node("node2", "10.0.0.2", "Synced"),
                down,
            ],
            cluster: ComponentView {
                size: 2,
                status: "Primary".to_owned(),
                uuid: Some("6b8c2a4e-0f1d-11f0-9a3b-5b1e2c3d4f5a".to_owned()),
            },
            proxy: Some(ProxyView {
                writer: Some("node1".to_owned()),
                writer_address: "10.0.0.10:3306".to_owned(),
                reader_address: "10.0.0.10:3307".to_owned(),
                healthy: vec!["node1".to_owned(), "node2".to_owned()],
            }),
            controller: ControllerView {
                auto_recover_nodes: true,
                auto_recover_cluster: false,
            },
        }
    }
}

/// `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventsQuery {
    /// How many, newest first: 1 to 10000 (default 100).
    pub limit: Option<usize>,
    /// Only this node's events.
    pub node: Option<String>,
}

/// `GET /decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionsQuery {
    /// How many, newest first: 1 to 10000 (default 100).
    pub limit: Option<usize>,
}

/// How much an event matters to an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// An event the controller recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Event::example())]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub severity: Severity,
    /// What happened, as a short name (`node_down`, `node_synced`, ...).
    pub kind: String,
    pub node: Option<String>,
    pub message: String,
}

impl Event {
    fn example() -> Event {
        Event {
            at_ms: 1_767_225_600_000,
            severity: Severity::Critical,
            kind: "node_down".to_owned(),
            node: Some("node3".to_owned()),
            message: "node3 went from Synced to agent down. ".to_owned(),
        }
    }
}

/// A decision of the controller: which rule chose which action, why, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Decision::example())]
pub struct Decision {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The planner's view of the cluster when it decided (healthy, degraded, ...).
    pub situation: Option<String>,
    pub rule: String,
    pub action: String,
    pub node: Option<String>,
    pub reason: String,
    pub outcome: String,
    /// The observations the decision was made on.
    pub evidence: serde_json::Value,
}

impl Decision {
    fn example() -> Decision {
        Decision {
            at_ms: 1_767_225_600_000,
            situation: Some("degraded".to_owned()),
            rule: "RestartCrashedNode".to_owned(),
            action: "start node3".to_owned(),
            node: Some("node3".to_owned()),
            reason: "node3 crashed while the others stay Primary; it rejoins by IST".to_owned(),
            outcome: "done: started with pid 4711".to_owned(),
            evidence: serde_json::json!({"node3": {"state": "stopped"}}),
        }
    }
}

/// `GET /history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryQuery {
    /// The window the series cover: 5m, 1h (default), 6h, 24h or 7d.
    pub window: Option<String>,
}

/// Metric series for the console's charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = History::example())]
pub struct History {
    /// The window asked for.
    pub window: String,
    /// `qps`, `flow_control_paused`, `recv_queue` and `replication_bytes_per_s` for the
    /// cluster, and per node as `"<metric>:<node>"`: `[at_ms, value]` points, averaged
    /// into at most 300 buckets of the window.
    pub series: BTreeMap<String, Vec<(i64, f64)>>,
}

impl History {
    fn example() -> History {
        let points = vec![(1_767_225_600_000, 12.5), (1_767_225_612_000, 14.0)];
        History {
            window: "1h".to_owned(),
            series: BTreeMap::from([
                ("qps".to_owned(), points.clone()),
                ("qps:node1".to_owned(), points),
            ]),
        }
    }
}

/// `PUT /nodes/{node}/desired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = DesiredRequest { running: false })]
pub struct DesiredRequest {
    /// false: the node is stopped on purpose and must not be healed; true: heal it again.
    pub running: bool,
}

/// A node's desired state, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = DesiredState::example())]
pub struct DesiredState {
    pub node: String,
    pub running: bool,
}

impl DesiredState {
    fn example() -> DesiredState {
        DesiredState {
            node: "node2".to_owned(),
            running: false,
        }
    }
}
