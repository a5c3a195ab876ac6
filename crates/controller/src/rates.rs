//! The pure parts of the controller's record of each observation: a node's state as
//! the history names it, the rates between two observations (queries, replication
//! traffic), which nodes took writes, and what distinguishes one plan from the next.

use std::collections::BTreeMap;

use agent::api::{NodeReport, NodeState};
use planner::{AgentState, Blocked, Observation, Plan};
use serde_json::json;

/// A node as one observation saw it, for transitions and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The agent of a managed node did not answer.
    AgentDown,
    /// An imported node did not answer over SQL.
    Unreachable,
    Node(NodeState),
}

impl Seen {
    pub fn of(report: Option<&NodeReport>, managed: bool) -> Seen {
        match (report, managed) {
            (Some(report), _) => Seen::Node(report.state()),
            (None, true) => Seen::AgentDown,
            (None, false) => Seen::Unreachable,
        }
    }

    /// Serving clients (Synced or donating).
    pub fn serving(self) -> bool {
        matches!(self, Seen::Node(state) if state.serving())
    }

    /// Gone from the cluster: a node that was serving and is now this went down.
    pub fn gone(self) -> bool {
        matches!(
            self,
            Seen::AgentDown
                | Seen::Unreachable
                | Seen::Node(NodeState::Stopped | NodeState::NonPrimary)
        )
    }

    pub fn synced(self) -> bool {
        self == Seen::Node(NodeState::Primary(galera::WsrepState::Synced))
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::AgentDown => f.write_str("agent down"),
            Seen::Unreachable => f.write_str("unreachable"),
            Seen::Node(state) => write!(f, "{state}"),
        }
    }
}

/// A counter's rate per second between two readings `(at_ms, value)`; None when there
/// is no earlier reading, no time passed, or the counter went back (a restart).
pub fn rate(earlier: Option<(i64, i64)>, now: (i64, i64)) -> Option<f64> {
    let (at, value) = earlier?;
    (now.0 > at && now.1 >= value).then(|| (now.1 - value) as f64 * 1000.0 / (now.0 - at) as f64)
}

/// What distinguishes one plan from the next, so unchanged plans are not re-recorded.
pub fn plan_key(plan: &Plan) -> String {
    let steps: Vec<String> = plan.runnable().iter().map(|s| s.action.key()).collect();
    let blocked = match &plan.blocked {
        Some(Blocked::Waiting { reason, .. }) => format!("wait:{reason}"),
        Some(Blocked::Refused { reason, .. }) => format!("refused:{reason}"),
        None => String::new(),
    };
    // A refusal held in a note (a node kept stopped with its data, rule 8) counts too.
    let refused_notes: Vec<&str> = plan
        .notes
        .iter()
        .filter_map(|note| match note {
            Blocked::Refused { reason, .. } => Some(reason.as_str()),
            Blocked::Waiting { .. } => None,
        })
        .collect();
    format!(
        "{:?}|{}|{}|{}",
        plan.situation,
        steps.join(","),
        blocked,
        refused_notes.join("|")
    )
}

/// The per-node facts behind a decision, for the history.
pub fn evidence(observation: &Observation) -> serde_json::Value {
    let nodes: BTreeMap<&str, serde_json::Value> = observation
        .nodes
        .iter()
        .map(|node| {
            let value = match &node.agent {
                AgentState::Unreachable => json!({"agent": "unreachable"}),
                AgentState::Reported(facts) => json!({
                    "running": facts.running,
                    "state": facts.wsrep.as_ref().map(|w| w.local_state.to_string()),
                    "primary": facts.wsrep.as_ref().map(|w| w.is_primary()),
                    "last_committed": facts.wsrep.as_ref().map(|w| w.last_committed),
                    "grastate": facts.grastate.as_ref().map(|g| json!({"uuid": g.uuid, "seqno": g.seqno, "safe_to_bootstrap": g.safe_to_bootstrap})),
                    "recovered": facts.recovered.as_ref().map(ToString::to_string),
                    "has_data": facts.has_data,
                    "stuck": facts.stuck,
                    "failed_starts": facts.failed_starts,
                }),
            };
            (node.name.as_str(), value)
        })
        .collect();
    json!({
        "nodes": nodes,
        "high_water_mark": observation.marks.accepted.as_ref().map(|m| json!({"uuid": m.uuid, "seqno": m.seqno})),
        "other_histories": observation.marks.others.iter().map(|m| json!({"uuid": m.uuid, "seqno": m.seqno})).collect::<Vec<_>>(),
        "force": observation.force,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use galera::WsrepState;
    use planner::{Situation, Step};

    #[test]
    fn rates_need_an_earlier_reading_and_a_counter_that_did_not_go_back() {
        assert_eq!(rate(None, (1_000, 10)), None);
        assert_eq!(rate(Some((1_000, 10)), (1_000, 20)), None, "no time passed");
        assert_eq!(rate(Some((1_000, 10)), (2_000, 5)), None, "a restart");
        assert_eq!(rate(Some((1_000, 10)), (3_000, 30)), Some(10.0));
    }

    #[test]
    fn states_read_as_the_history_names_them() {
        let cases = [
            (Seen::AgentDown, "agent down", false, true),
            (Seen::Unreachable, "unreachable", false, true),
            (Seen::Node(NodeState::Stopped), "stopped", false, true),
            (
                Seen::Node(NodeState::NonPrimary),
                "non-Primary",
                false,
                true,
            ),
            (Seen::Node(NodeState::Starting), "starting", false, false),
            (
                Seen::Node(NodeState::Primary(WsrepState::Joiner)),
                "Joiner",
                false,
                false,
            ),
            (
                Seen::Node(NodeState::Primary(WsrepState::DonorDesynced)),
                "Donor/Desynced",
                true,
                false,
            ),
            (
                Seen::Node(NodeState::Primary(WsrepState::Synced)),
                "Synced",
                true,
                false,
            ),
        ];
        for (seen, label, serving, gone) in cases {
            assert_eq!(seen.to_string(), label);
            assert_eq!(seen.serving(), serving, "{label}");
            assert_eq!(seen.gone(), gone, "{label}");
        }
    }

    #[test]
    fn plan_keys_differ_by_situation_steps_and_reason() {
        let plan = |situation, steps: Vec<Step>, blocked| Plan {
            situation,
            steps,
            blocked,
            notes: Vec::new(),
            acceptance: None,
        };
        let start = Step {
            action: planner::Action::Start {
                node: "n2".to_owned(),
            },
            rule: planner::Rule::RestartCrashedNode,
            reason: "why".to_owned(),
            needs_confirmation: false,
        };
        let waiting = |reason: &str| {
            Some(Blocked::Waiting {
                rule: planner::Rule::OneJoinerAtATime,
                reason: reason.to_owned(),
            })
        };
        let keys = [
            plan_key(&plan(Situation::Healthy, vec![], None)),
            plan_key(&plan(Situation::Degraded, vec![start.clone()], None)),
            plan_key(&plan(
                Situation::Degraded,
                vec![start.clone()],
                waiting("a"),
            )),
            plan_key(&plan(Situation::Degraded, vec![start], waiting("b"))),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
