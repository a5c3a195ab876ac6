//! What the engine remembers between rounds, to turn time into the planner's verdicts:
//! how long a node has been running outside a Primary component (stuck), how many
//! starts in a row ended with the server exiting by itself, and whether the next
//! attempt must wait (backing off). Pure: the clock is a parameter.

use std::collections::HashMap;

use agent::api::NodeReport;
use planner::Facts;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct NodeMemory {
    /// Running but not Synced in a Primary component since then.
    unsettled_since_ms: Option<i64>,
    /// Set when the engine started the node, cleared once it is Synced.
    started_at_ms: Option<i64>,
    failed_starts: u32,
    last_failure_ms: Option<i64>,
    /// Restarts because it was stuck, in a row: each doubles the patience, so that a
    /// node that is only slow (a large state transfer, a loaded host) is not restarted
    /// in a loop.
    stuck_restarts: u32,
}

/// Something the engine noticed while remembering a round's reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noticed {
    /// A node the engine started exited by itself before it was Synced.
    StartFailed {
        node: String,
        in_a_row: u32,
        why: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Memory {
    nodes: HashMap<String, NodeMemory>,
}

/// The longest wait between two failed starts of one node.
const MAX_BACKOFF_MS: i64 = 60_000;

impl Memory {
    /// The engine started the node now: its patience (stuck) starts now, and an exit
    /// before Synced counts as a failed start.
    pub fn started(&mut self, node: &str, now: i64) {
        let memory = self.nodes.entry(node.to_owned()).or_default();
        memory.started_at_ms = Some(now);
        memory.unsettled_since_ms = Some(now);
    }

    /// The engine restarted the node because it was stuck: the next verdict waits
    /// twice as long.
    pub fn restarted_stuck(&mut self, node: &str, now: i64) {
        self.started(node, now);
        let memory = self.nodes.entry(node.to_owned()).or_default();
        memory.stuck_restarts = memory.stuck_restarts.saturating_add(1);
    }

    /// Takes in one round's reports (None: the agent did not answer).
    pub fn remember(&mut self, reports: &[(String, Option<NodeReport>)], now: i64) -> Vec<Noticed> {
        let mut noticed = Vec::new();
        for (node, report) in reports {
            let Some(report) = report else { continue };
            let memory = self.nodes.entry(node.clone()).or_default();
            let facts = crate::reported_facts(report);
            let synced = facts.synced();
            if report.process.receiving_state_transfer || receiving_state(&facts) {
                // A joiner inside the Primary component is receiving its state transfer,
                // which takes as long as the data is large: not stuck. Galera ends a
                // transfer that fails (the joiner exits, a failed start), and patience
                // starts once it is Joined.
                memory.unsettled_since_ms = Some(now);
            } else if report.process.running && !synced {
                memory.unsettled_since_ms.get_or_insert(now);
            } else {
                memory.unsettled_since_ms = None;
            }
            if synced {
                *memory = NodeMemory::default();
            } else if !report.process.running
                && report.process.last_exit.is_some()
                && memory.started_at_ms.take().is_some()
            {
                memory.failed_starts += 1;
                memory.last_failure_ms = Some(now);
                noticed.push(Noticed::StartFailed {
                    node: node.clone(),
                    in_a_row: memory.failed_starts,
                    why: report.process.last_exit.clone().unwrap_or_default(),
                });
            }
        }
        noticed
    }

    /// The planner's facts for a report: what the agent said plus the verdicts.
    pub fn facts(&self, node: &str, report: &NodeReport, now: i64, stuck_after_ms: i64) -> Facts {
        let mut facts = crate::reported_facts(report);
        let Some(memory) = self.nodes.get(node) else {
            return facts;
        };
        let patience = stuck_after_ms.saturating_mul(1 << memory.stuck_restarts.min(6));
        facts.stuck = report.process.running
            && !facts.synced()
            && memory
                .unsettled_since_ms
                .is_some_and(|since| now - since > patience);
        facts.failed_starts = memory.failed_starts;
        facts.backing_off = memory.last_failure_ms.is_some_and(|at| {
            let backoff_ms = (1000i64 << memory.failed_starts.min(6)).min(MAX_BACKOFF_MS);
            now - at < backoff_ms
        });
        facts
    }
}

/// In a Primary component, as a Joiner: a state transfer is under way.
fn receiving_state(facts: &Facts) -> bool {
    facts.primary()
        && facts
            .wsrep
            .as_ref()
            .is_some_and(|wsrep| wsrep.local_state == galera::WsrepState::Joiner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::api::ProcessReport;

    fn report(running: bool, last_exit: Option<&str>) -> NodeReport {
        NodeReport {
            node: "n1".to_owned(),
            agent_version: "test".to_owned(),
            process: ProcessReport {
                running,
                pid: running.then_some(42),
                mode: None,
                last_exit: last_exit.map(str::to_owned),
                receiving_state_transfer: false,
            },
            data_dir_initialized: true,
            grastate: None,
            grastate_error: None,
            recovered: None,
            wsrep: None,
            sql_error: None,
            set_aside: Vec::new(),
            stale_view: None,
        }
    }

    fn joiner(report: &mut NodeReport, local_state: &str) {
        report.wsrep = Some(galera::WsrepStatus::from_variables([
            ("wsrep_ready", "OFF"),
            ("wsrep_connected", "ON"),
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_local_state", local_state),
        ]));
    }

    #[test]
    fn a_joiner_receiving_its_state_transfer_is_never_stuck() {
        let mut memory = Memory::default();
        let mut receiving = report(true, None);
        joiner(&mut receiving, "1");
        memory.started("n1", 0);
        for now in [1_000, 60_000, 600_000] {
            remember(&mut memory, receiving.clone(), now);
            assert!(!memory.facts("n1", &receiving, now + 500, 30_000).stuck);
        }
        // Joined (catching up): patience starts now.
        let mut joined = report(true, None);
        joiner(&mut joined, "3");
        remember(&mut memory, joined.clone(), 601_000);
        assert!(!memory.facts("n1", &joined, 630_000, 30_000).stuck);
        assert!(memory.facts("n1", &joined, 631_001, 30_000).stuck);
    }

    #[test]
    fn each_restart_for_being_stuck_doubles_the_patience_until_it_is_synced() {
        let mut memory = Memory::default();
        let starting = report(true, None);
        remember(&mut memory, starting.clone(), 0);
        assert!(memory.facts("n1", &starting, 30_001, 30_000).stuck);
        memory.restarted_stuck("n1", 40_000);
        remember(&mut memory, starting.clone(), 41_000);
        assert!(!memory.facts("n1", &starting, 90_000, 30_000).stuck);
        assert!(memory.facts("n1", &starting, 100_001, 30_000).stuck);
        memory.restarted_stuck("n1", 110_000);
        assert!(!memory.facts("n1", &starting, 220_000, 30_000).stuck);
        assert!(memory.facts("n1", &starting, 230_001, 30_000).stuck);
        // Synced: the memory starts over.
        let mut synced = report(true, None);
        joiner(&mut synced, "4");
        remember(&mut memory, synced, 240_000);
        remember(&mut memory, starting.clone(), 250_000);
        assert!(memory.facts("n1", &starting, 280_001, 30_000).stuck);
    }

    fn remember(memory: &mut Memory, report: NodeReport, now: i64) -> Vec<Noticed> {
        memory.remember(&[("n1".to_owned(), Some(report))], now)
    }

    #[test]
    fn a_node_is_stuck_only_after_the_patience_and_only_while_unsettled() {
        let mut memory = Memory::default();
        let starting = report(true, None);
        remember(&mut memory, starting.clone(), 1_000);
        assert!(!memory.facts("n1", &starting, 30_000, 30_000).stuck);
        assert!(memory.facts("n1", &starting, 31_001, 30_000).stuck);
        // Stopped: not stuck, and the patience starts again at the next start.
        let stopped = report(false, None);
        remember(&mut memory, stopped.clone(), 40_000);
        assert!(!memory.facts("n1", &stopped, 90_000, 30_000).stuck);
        remember(&mut memory, starting.clone(), 100_000);
        assert!(!memory.facts("n1", &starting, 120_000, 30_000).stuck);
    }

    #[test]
    fn only_starts_by_the_engine_count_as_failed_and_they_back_off() {
        let mut memory = Memory::default();
        let exited = report(false, Some("exited with status 1"));
        // Not started by the engine: an exit the engine did not cause is no failed start.
        assert!(remember(&mut memory, exited.clone(), 0).is_empty());
        memory.started("n1", 1_000);
        let noticed = remember(&mut memory, exited.clone(), 2_000);
        assert_eq!(
            noticed,
            [Noticed::StartFailed {
                node: "n1".to_owned(),
                in_a_row: 1,
                why: "exited with status 1".to_owned()
            }]
        );
        // The same exit seen again is not a second failure.
        assert!(remember(&mut memory, exited.clone(), 3_000).is_empty());
        let facts = memory.facts("n1", &exited, 3_000, 30_000);
        assert_eq!(facts.failed_starts, 1);
        assert!(facts.backing_off, "2 s backoff after one failure");
        assert!(!memory.facts("n1", &exited, 4_001, 30_000).backing_off);
        memory.started("n1", 5_000);
        remember(&mut memory, exited.clone(), 6_000);
        let facts = memory.facts("n1", &exited, 9_000, 30_000);
        assert_eq!(facts.failed_starts, 2);
        assert!(facts.backing_off, "4 s backoff after two failures");
    }
}
