//! wsrep status variables, the node state they describe, and the health rules that decide
//! whether a node may take writes or reads (docs/galera.md, "Node states").

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The variables galley reads from `SHOW GLOBAL STATUS` and `SHOW GLOBAL VARIABLES`.
pub const STATUS_VARIABLES: &[&str] = &[
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_cluster_status",
    "wsrep_cluster_size",
    "wsrep_cluster_state_uuid",
    "wsrep_cluster_conf_id",
    "wsrep_local_state",
    "wsrep_local_state_comment",
    "wsrep_local_index",
    "wsrep_last_committed",
    "wsrep_local_recv_queue",
    "wsrep_local_send_queue",
    "wsrep_flow_control_paused",
    "wsrep_local_cert_failures",
    "wsrep_local_bf_aborts",
    "wsrep_replicated",
    "wsrep_received",
    "wsrep_replicated_bytes",
    "wsrep_received_bytes",
    "wsrep_desync",
    "wsrep_reject_queries",
    "read_only",
    "questions",
    "threads_connected",
];

/// `wsrep_local_state`: where a node is in joining and serving the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WsrepState {
    Joiner,
    DonorDesynced,
    Joined,
    Synced,
    /// 0 (initializing) or a value this version does not know.
    Other(i64),
}

impl WsrepState {
    pub fn from_code(code: i64) -> WsrepState {
        match code {
            1 => WsrepState::Joiner,
            2 => WsrepState::DonorDesynced,
            3 => WsrepState::Joined,
            4 => WsrepState::Synced,
            other => WsrepState::Other(other),
        }
    }

    /// The `wsrep_local_state` number (the inverse of [`WsrepState::from_code`]).
    pub fn code(self) -> i64 {
        match self {
            WsrepState::Joiner => 1,
            WsrepState::DonorDesynced => 2,
            WsrepState::Joined => 3,
            WsrepState::Synced => 4,
            WsrepState::Other(code) => code,
        }
    }
}

impl fmt::Display for WsrepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsrepState::Joiner => f.write_str("Joiner"),
            WsrepState::DonorDesynced => f.write_str("Donor/Desynced"),
            WsrepState::Joined => f.write_str("Joined"),
            WsrepState::Synced => f.write_str("Synced"),
            WsrepState::Other(0) => f.write_str("Initialized"),
            WsrepState::Other(code) => write!(f, "state {code}"),
        }
    }
}

/// The wsrep view of one running node, as read over SQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsrepStatus {
    pub ready: bool,
    pub connected: bool,
    pub cluster_status: String,
    pub cluster_size: i64,
    pub cluster_state_uuid: String,
    /// `wsrep_cluster_conf_id`: the same on every member of one component, higher in
    /// each new view of the history; -1 when not read.
    #[serde(default = "unknown_conf_id")]
    pub conf_id: i64,
    pub local_state: WsrepState,
    pub local_index: i64,
    pub last_committed: i64,
    pub local_recv_queue: i64,
    pub local_send_queue: i64,
    pub flow_control_paused: f64,
    pub cert_failures: i64,
    pub bf_aborts: i64,
    pub replicated: i64,
    pub received: i64,
    pub desync: bool,
    pub reject_queries: String,
    pub read_only: bool,
    /// Statements executed since the server started (`Questions`); its rate is the QPS.
    #[serde(default)]
    pub questions: i64,
    #[serde(default)]
    pub threads_connected: i64,
    /// Write-set bytes this node sent and received since it started; their rate is the
    /// replication traffic the console charts.
    #[serde(default)]
    pub replicated_bytes: i64,
    #[serde(default)]
    pub received_bytes: i64,
}

fn unknown_conf_id() -> i64 {
    -1
}

/// Why a node may not serve, in words an operator reads in `galley status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unhealthy(pub String);

impl fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl WsrepStatus {
    /// Builds the status from variable names (any case) and their text values. Missing
    /// variables take the value that makes the node look least healthy.
    pub fn from_variables<'a>(
        variables: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> WsrepStatus {
        let map: HashMap<String, &str> = variables
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let text = |name: &str| map.get(name).copied().unwrap_or("").to_owned();
        let int = |name: &str, missing: i64| {
            map.get(name)
                .and_then(|value| value.trim().parse::<i64>().ok())
                .unwrap_or(missing)
        };
        let on = |name: &str| {
            map.get(name).is_some_and(|value| {
                matches!(
                    value.trim().to_ascii_uppercase().as_str(),
                    "ON" | "1" | "TRUE"
                )
            })
        };
        WsrepStatus {
            ready: on("wsrep_ready"),
            connected: on("wsrep_connected"),
            cluster_status: text("wsrep_cluster_status"),
            cluster_size: int("wsrep_cluster_size", 0),
            cluster_state_uuid: text("wsrep_cluster_state_uuid"),
            conf_id: int("wsrep_cluster_conf_id", -1),
            local_state: WsrepState::from_code(int("wsrep_local_state", 0)),
            local_index: int("wsrep_local_index", -1),
            last_committed: int("wsrep_last_committed", -1),
            local_recv_queue: int("wsrep_local_recv_queue", 0),
            local_send_queue: int("wsrep_local_send_queue", 0),
            // A fraction of time; NaN or infinity would not survive JSON (it becomes null).
            flow_control_paused: map
                .get("wsrep_flow_control_paused")
                .and_then(|value| value.trim().parse::<f64>().ok())
                .filter(|fraction| fraction.is_finite())
                .unwrap_or(0.0),
            cert_failures: int("wsrep_local_cert_failures", 0),
            bf_aborts: int("wsrep_local_bf_aborts", 0),
            replicated: int("wsrep_replicated", 0),
            received: int("wsrep_received", 0),
            desync: on("wsrep_desync"),
            reject_queries: map
                .get("wsrep_reject_queries")
                .map(|value| value.trim().to_ascii_uppercase())
                .unwrap_or_else(|| "NONE".to_owned()),
            read_only: on("read_only"),
            questions: int("questions", 0),
            threads_connected: int("threads_connected", 0),
            replicated_bytes: int("wsrep_replicated_bytes", 0),
            received_bytes: int("wsrep_received_bytes", 0),
        }
    }

    pub fn is_primary(&self) -> bool {
        self.cluster_status == "Primary"
    }

    /// Usable for writes: ready, Primary, Synced, not desynced, not rejecting, writable.
    pub fn write_health(&self) -> Result<(), Unhealthy> {
        self.common_health()?;
        if self.local_state != WsrepState::Synced {
            return Err(Unhealthy(format!(
                "state is {}, not Synced",
                self.local_state
            )));
        }
        if self.desync {
            return Err(Unhealthy("wsrep_desync is ON".to_owned()));
        }
        if self.read_only {
            return Err(Unhealthy("read_only is ON".to_owned()));
        }
        Ok(())
    }

    /// Usable for reads: as for writes, except that a donor which does not reject queries
    /// may serve, and a node whose receive queue is over `recv_queue_limit` may not.
    pub fn read_health(&self, recv_queue_limit: i64) -> Result<(), Unhealthy> {
        self.common_health()?;
        match self.local_state {
            WsrepState::Synced | WsrepState::DonorDesynced => {}
            other => return Err(Unhealthy(format!("state is {other}, which never serves"))),
        }
        if self.local_recv_queue > recv_queue_limit {
            return Err(Unhealthy(format!(
                "receive queue {} is over the limit of {recv_queue_limit}",
                self.local_recv_queue
            )));
        }
        Ok(())
    }

    fn common_health(&self) -> Result<(), Unhealthy> {
        if !self.ready {
            return Err(Unhealthy("wsrep_ready is OFF".to_owned()));
        }
        if !self.is_primary() {
            return Err(Unhealthy(format!(
                "cluster status is {}, not Primary",
                if self.cluster_status.is_empty() {
                    "unknown"
                } else {
                    &self.cluster_status
                }
            )));
        }
        if self.reject_queries != "NONE" {
            return Err(Unhealthy(format!(
                "wsrep_reject_queries is {}",
                self.reject_queries
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that is not a finite number reads as 0: NaN or infinity would serialize as
    /// JSON null in the agent's report, which the controller then cannot read (the JSON
    /// round-trip property of fuzz/wsrep_status).
    #[test]
    fn flow_control_paused_is_always_a_finite_number() {
        for value in ["inf", "-inf", "NaN", "infinity", "1e999"] {
            let status = WsrepStatus::from_variables([("wsrep_flow_control_paused", value)]);
            assert_eq!(status.flow_control_paused, 0.0, "{value}");
            let json = serde_json::to_string(&status).unwrap();
            let back: WsrepStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(back, status, "{value}");
        }
    }

    fn status(overrides: &[(&str, &str)]) -> WsrepStatus {
        let mut variables: Vec<(&str, &str)> = vec![
            ("wsrep_ready", "ON"),
            ("wsrep_connected", "ON"),
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_cluster_size", "3"),
            ("wsrep_local_state", "4"),
            ("wsrep_local_recv_queue", "0"),
            ("wsrep_desync", "OFF"),
            ("wsrep_reject_queries", "NONE"),
            ("read_only", "OFF"),
        ];
        variables.retain(|(name, _)| !overrides.iter().any(|(other, _)| other == name));
        variables.extend_from_slice(overrides);
        WsrepStatus::from_variables(variables)
    }

    /// One row per rule: the overrides, then the write and read verdicts (None = healthy,
    /// Some(text) = unhealthy with a reason containing text).
    #[test]
    fn health_rules() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (&[], None, None),
            (
                &[("wsrep_ready", "OFF")],
                Some("wsrep_ready"),
                Some("wsrep_ready"),
            ),
            (
                &[("wsrep_cluster_status", "non-Primary")],
                Some("non-Primary"),
                Some("non-Primary"),
            ),
            (&[("wsrep_local_state", "2")], Some("Donor/Desynced"), None),
            (
                &[("wsrep_local_state", "2"), ("wsrep_reject_queries", "ALL")],
                Some("reject"),
                Some("reject"),
            ),
            (
                &[("wsrep_local_state", "3")],
                Some("Joined"),
                Some("never serves"),
            ),
            (
                &[("wsrep_local_state", "1")],
                Some("Joiner"),
                Some("never serves"),
            ),
            (&[("wsrep_desync", "ON")], Some("desync"), None),
            (&[("read_only", "ON")], Some("read_only"), None),
            (
                &[("wsrep_local_recv_queue", "500")],
                None,
                Some("receive queue 500"),
            ),
        ];
        for (overrides, write, read) in cases {
            let node = status(overrides);
            check(node.write_health(), *write, overrides);
            check(node.read_health(100), *read, overrides);
        }
    }

    fn check(result: Result<(), Unhealthy>, expected: Option<&str>, case: &[(&str, &str)]) {
        match (result, expected) {
            (Ok(()), None) => {}
            (Err(reason), Some(text)) => assert!(reason.0.contains(text), "{case:?}: {reason}"),
            (got, want) => panic!("{case:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn missing_variables_look_unhealthy() {
        let node = WsrepStatus::from_variables([]);
        assert!(node.write_health().is_err());
        assert_eq!(node.local_state, WsrepState::Other(0));
        assert_eq!(node.last_committed, -1);
    }

    #[test]
    fn parses_case_insensitively() {
        let node = WsrepStatus::from_variables([
            ("WSREP_LAST_COMMITTED", "17"),
            ("Wsrep_Flow_Control_Paused", "0.25"),
            ("wsrep_local_state_comment", "Synced"),
        ]);
        assert_eq!(node.last_committed, 17);
        assert!((node.flow_control_paused - 0.25).abs() < f64::EPSILON);
    }
}
