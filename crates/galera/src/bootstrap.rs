//! Which node may bootstrap a stopped cluster, by the recovery safety rules of
//! docs/safety-rules.md: never while a node runs (rule 1), only once every node has
//! reported (rule 3), only a node with the cluster's UUID and the highest seqno (rule 3),
//! whatever `safe_to_bootstrap` says on a less advanced node.

use std::fmt;

use crate::Position;

/// What one node reported about its saved state while it was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePosition {
    pub name: String,
    /// Lower is preferred among nodes at the same position.
    pub priority: u32,
    /// false when the node's agent could not be asked.
    pub reported: bool,
    pub running: bool,
    /// From grastate.dat after a graceful stop, or from `--wsrep-recover` after a crash;
    /// None for a node with no history (an empty data dir).
    pub position: Option<Position>,
    pub safe_to_bootstrap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapChoice {
    pub node: String,
    pub position: Position,
    /// Why this node, for the operator and the event log.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapRefusal {
    /// Rule 1: a running node may be part of a Primary component.
    NodesRunning(Vec<String>),
    /// Rule 3: wait until these report their position.
    NotReported(Vec<String>),
    /// Nodes hold the history of different clusters: a human must decide.
    UuidConflict(Vec<(String, String)>),
    /// No node has any history: this is a new cluster, not a recovery.
    NoHistory,
}

impl fmt::Display for BootstrapRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootstrapRefusal::NodesRunning(nodes) => write!(
                f,
                "not bootstrapping: {} still running and may be in a Primary component; start the others as joiners instead",
                nodes.join(", ")
            ),
            BootstrapRefusal::NotReported(nodes) => write!(
                f,
                "waiting for {} to report a position: the most advanced node cannot be known before every node has reported",
                nodes.join(", ")
            ),
            BootstrapRefusal::UuidConflict(nodes) => {
                let listed: Vec<String> = nodes.iter().map(|(node, uuid)| format!("{node} has {uuid}")).collect();
                write!(f, "nodes hold different cluster histories ({}); refusing to choose", listed.join(", "))
            }
            BootstrapRefusal::NoHistory => f.write_str("no node has any cluster history; this is a new cluster"),
        }
    }
}

pub fn choose_bootstrap(nodes: &[NodePosition]) -> Result<BootstrapChoice, BootstrapRefusal> {
    let running: Vec<String> = nodes
        .iter()
        .filter(|n| n.running)
        .map(|n| n.name.clone())
        .collect();
    if !running.is_empty() {
        return Err(BootstrapRefusal::NodesRunning(running));
    }
    let silent: Vec<String> = nodes
        .iter()
        .filter(|n| !n.reported)
        .map(|n| n.name.clone())
        .collect();
    if !silent.is_empty() {
        return Err(BootstrapRefusal::NotReported(silent));
    }
    let with_history: Vec<(&NodePosition, &Position)> = nodes
        .iter()
        .filter_map(|node| {
            node.position
                .as_ref()
                .filter(|p| !p.is_empty())
                .map(|p| (node, p))
        })
        .collect();
    let Some((_, first)) = with_history.first() else {
        return Err(BootstrapRefusal::NoHistory);
    };
    if with_history
        .iter()
        .any(|(_, position)| position.uuid != first.uuid)
    {
        return Err(BootstrapRefusal::UuidConflict(
            with_history
                .iter()
                .map(|(node, position)| (node.name.clone(), position.uuid.clone()))
                .collect(),
        ));
    }
    let (best, position) = with_history
        .iter()
        .min_by_key(|(node, position)| (-position.seqno, !node.safe_to_bootstrap, node.priority))
        .expect("with_history is not empty");
    let mut reason = format!(
        "highest seqno {} of {} nodes with history",
        position.seqno,
        with_history.len()
    );
    if best.safe_to_bootstrap {
        reason.push_str("; marked safe_to_bootstrap");
    }
    let stale_flags: Vec<&str> = with_history
        .iter()
        .filter(|(node, other)| node.safe_to_bootstrap && other.seqno < position.seqno)
        .map(|(node, _)| node.name.as_str())
        .collect();
    if !stale_flags.is_empty() {
        reason.push_str(&format!(
            "; ignoring safe_to_bootstrap on less advanced {}",
            stale_flags.join(", ")
        ));
    }
    Ok(BootstrapChoice {
        node: best.name.clone(),
        position: (*position).clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
    const B: &str = "11111111-2a80-46ae-a206-519b5024470e";

    /// Compact fixture: one node per entry, `name uuid:seqno [safe] [running] [silent]`;
    /// `-` for a node with no history.
    fn nodes(fixture: &str) -> Vec<NodePosition> {
        fixture
            .split(',')
            .enumerate()
            .map(|(index, entry)| {
                let words: Vec<&str> = entry.split_whitespace().collect();
                NodePosition {
                    name: words[0].to_owned(),
                    priority: index as u32,
                    position: Position::parse(&words[1].replace('A', A).replace('B', B)),
                    safe_to_bootstrap: words.contains(&"safe"),
                    running: words.contains(&"running"),
                    reported: !words.contains(&"silent"),
                }
            })
            .collect()
    }

    fn check(fixture: &str, expected: &str) {
        let got = match choose_bootstrap(&nodes(fixture)) {
            Ok(choice) => format!("bootstrap {}", choice.node),
            Err(BootstrapRefusal::NodesRunning(n)) => format!("running {}", n.join(" ")),
            Err(BootstrapRefusal::NotReported(n)) => format!("wait {}", n.join(" ")),
            Err(BootstrapRefusal::UuidConflict(_)) => "conflict".to_owned(),
            Err(BootstrapRefusal::NoHistory) => "new".to_owned(),
        };
        assert_eq!(got, expected, "fixture: {fixture}");
    }

    #[test]
    fn bootstrap_choices() {
        // Graceful shutdown: the last node out is marked safe and is the most advanced.
        check("n1 A:10, n2 A:11, n3 A:12 safe", "bootstrap n3");
        // A stale node marked safe (the bug of other tools) loses to the advanced one.
        check("n1 A:20 safe, n2 A:25, n3 A:25", "bootstrap n2");
        // Equal positions: the safe flag, then priority.
        check("n1 A:7, n2 A:7 safe, n3 A:7", "bootstrap n2");
        check("n1 A:7, n2 A:7, n3 A:7", "bootstrap n1");
        // An empty node (lost disk) is never chosen, even if marked safe.
        check("n1 -, n2 A:3, n3 A:4", "bootstrap n3");
        check("n1 A:-1 safe, n2 A:3, n3 A:2", "bootstrap n2");
        // Safety refusals.
        check("n1 A:5, n2 A:9 running, n3 A:4", "running n2");
        check("n1 A:5, n2 A:9 silent, n3 A:4", "wait n2");
        check("n1 A:5, n2 B:9, n3 A:4", "conflict");
        check("n1 -, n2 -, n3 -", "new");
    }

    #[test]
    fn reason_mentions_ignored_stale_flag() {
        let choice = choose_bootstrap(&nodes("n1 A:20 safe, n2 A:25, n3 A:24")).unwrap();
        assert!(
            choice
                .reason
                .contains("ignoring safe_to_bootstrap on less advanced n1"),
            "{}",
            choice.reason
        );
    }
}
