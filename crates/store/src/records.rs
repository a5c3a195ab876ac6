//! The values the store records and returns: events, decisions, transitions, samples,
//! the high-water marks and their changes, approvals and the event filter.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// How much an event matters to an operator. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Severity`]; it lists the allowed names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected info, warning or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(text: &str) -> Result<Severity, UnknownSeverity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| UnknownSeverity(text.to_owned()))
    }
}

impl ToSql for Severity {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Severity {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Severity> {
        value
            .as_str()?
            .parse()
            .map_err(|error| FromSqlError::Other(Box::new(error)))
    }
}

/// An event to record; the store assigns its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub at_ms: i64,
    pub severity: Severity,
    pub kind: String,
    pub node: Option<String>,
    pub message: String,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub at_ms: i64,
    pub severity: Severity,
    pub kind: String,
    pub node: Option<String>,
    pub message: String,
}

/// A decision of the controller to record: which rule fired, what it did and why, with
/// the observations it acted on as `evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDecision {
    pub at_ms: i64,
    /// The planner's view of the cluster when it decided (healthy, degraded,
    /// no_primary, stopped); absent in decisions recorded before schema 3.
    #[serde(default)]
    pub situation: Option<String>,
    pub rule: String,
    pub action: String,
    pub node: Option<String>,
    pub reason: String,
    pub evidence: serde_json::Value,
    pub outcome: String,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: i64,
    pub at_ms: i64,
    #[serde(default)]
    pub situation: Option<String>,
    pub rule: String,
    pub action: String,
    pub node: Option<String>,
    pub reason: String,
    pub evidence: serde_json::Value,
    pub outcome: String,
}

/// A node moved from one observed state to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at_ms: i64,
    pub node: String,
    pub from: String,
    pub to: String,
}

/// One node's metrics at one moment. A NaN rate (not computable yet) is stored as NULL
/// and read back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at_ms: i64,
    pub node: String,
    pub last_committed: i64,
    pub queries_per_second: f64,
    pub flow_control_paused: f64,
    pub recv_queue: i64,
    pub send_queue: i64,
    pub cert_failures: i64,
    pub bf_aborts: i64,
    pub connections: i64,
    pub replicated: i64,
    /// Write-set bytes replicated plus received per second; NaN before two observations.
    #[serde(default)]
    pub replication_bytes_per_second: f64,
}

/// The highest `wsrep_last_committed` ever seen in one cluster history: the cluster
/// UUID, the seqno, the node that reported it and when. A bootstrap of that history
/// from a node below it would lose transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HighWaterMark {
    pub uuid: String,
    pub seqno: i64,
    pub node: String,
    pub at_ms: i64,
}

impl fmt::Display for HighWaterMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (seen on {})", self.uuid, self.seqno, self.node)
    }
}

/// Every cluster history's mark (rule 10).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HighWaterMarks {
    /// The history the cluster runs, or last ran: the first one ever seen, until an
    /// operator accepts another ([`crate::Store::accept_history`]).
    pub accepted: Option<HighWaterMark>,
    /// Every other history ever seen, by UUID.
    pub others: Vec<HighWaterMark>,
}

impl HighWaterMarks {
    /// The mark of history `uuid`, accepted or not.
    pub fn of(&self, uuid: &str) -> Option<&HighWaterMark> {
        self.accepted
            .iter()
            .chain(&self.others)
            .find(|mark| mark.uuid == uuid)
    }
}

/// What [`crate::Store::raise_high_water_mark`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkRaise {
    /// The history's stored mark is as high or higher: nothing changed.
    Unchanged,
    /// The history's mark rose.
    Raised,
    /// The first history the store ever saw: recorded, and accepted as the cluster's.
    Adopted,
    /// A history the store did not know, beside the accepted one: recorded with its
    /// own mark, not accepted; a warning event says so.
    NewHistory,
}

/// A recorded change of the accepted history, or of a mark other than a rise: the
/// adoption of the first history, and every operator acceptance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkChange {
    pub id: i64,
    pub at_ms: i64,
    /// The history that is accepted from then on.
    pub uuid: String,
    /// Its mark before; None when it had none.
    pub from_seqno: Option<i64>,
    pub to_seqno: i64,
    /// The history accepted before, when it was another one.
    pub previous_history: Option<String>,
    pub reason: String,
}

/// An operator's approval of one plan step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: i64,
    pub at_ms: i64,
    pub step: String,
    pub force: bool,
}

/// Which events to read: those at or after `since_ms`, about `node`, at most `limit`
/// (0 = no limit).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub since_ms: Option<i64>,
    pub node: Option<String>,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_round_trip() {
        for severity in Severity::ALL {
            assert_eq!(severity.to_string().parse::<Severity>(), Ok(severity));
            let json = serde_json::to_string(&severity).unwrap();
            assert_eq!(json, format!("\"{severity}\""));
        }
        assert_eq!(
            "fatal".parse::<Severity>().unwrap_err().to_string(),
            "unknown severity \"fatal\" (expected info, warning or critical)"
        );
    }
}
