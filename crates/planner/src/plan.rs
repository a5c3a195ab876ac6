//! Observation, policy and plan types, and `plan` itself.

use std::fmt;

use galera::{GraState, NodePosition, Position, WsrepState, WsrepStatus};
use serde::{Deserialize, Serialize};

/// Everything the planner may know, gathered by the controller in one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// In priority order (most preferred first).
    pub nodes: Vec<NodeView>,
    /// The highest last committed seqno ever seen in this cluster (rule 4).
    pub high_water_mark: Option<Mark>,
    pub policy: Policy,
    /// The operator allowed a bootstrap below the high-water mark (`--force`).
    pub force: bool,
    /// What else the operator asked for on this run (`galley up`, `--rebuild`).
    #[serde(default)]
    pub operator: Operator,
}

/// Requests that only an operator (or a command an operator ran) can make: the planner
/// never assumes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Create a new cluster when no node has any data (`galley up`, a deployment's
    /// bootstrap step). The controller never does: a cluster that lost every disk is not
    /// silently replaced by an empty one.
    pub create_new: bool,
    /// Nodes whose data dir is empty because their data is lost (`--rebuild NODE`): the
    /// others may bootstrap without them, and they are rebuilt by a full state transfer.
    pub rebuild: Vec<String>,
}

impl Observation {
    /// The node's facts, when its agent reported.
    pub fn facts(&self, node: &str) -> Option<&Facts> {
        self.nodes
            .iter()
            .find(|view| view.name == node)
            .and_then(|view| match &view.agent {
                AgentState::Reported(facts) => Some(facts.as_ref()),
                AgentState::Unreachable => None,
            })
    }

    /// The node reported Synced in a Primary component.
    pub fn synced(&self, node: &str) -> bool {
        self.facts(node).is_some_and(Facts::synced)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub uuid: String,
    pub seqno: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub priority: u32,
    pub agent: AgentState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// The agent did not answer: the node may be running or not.
    Unreachable,
    Reported(Box<Facts>),
}

/// What a node's agent reported, plus the controller's time-based verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub running: bool,
    /// Present when the server runs and answered over SQL.
    pub wsrep: Option<WsrepStatus>,
    pub has_data: bool,
    pub grastate: Option<GraState>,
    /// From `--wsrep-recover`, when it ran on the stopped server.
    pub recovered: Option<Position>,
    /// Running but outside a Primary component (or not Synced) for longer than the
    /// controller's patience.
    pub stuck: bool,
    /// Starts that ended with the server exiting by itself, in a row.
    pub failed_starts: u32,
    /// A failed start was too recent: wait before the next attempt.
    pub backing_off: bool,
}

impl Facts {
    /// Running in a Primary component.
    pub fn primary(&self) -> bool {
        self.running && self.wsrep.as_ref().is_some_and(WsrepStatus::is_primary)
    }

    /// Synced (or donating) in a Primary component: the one definition every wait and
    /// every "healthy" uses.
    pub fn synced(&self) -> bool {
        self.primary()
            && self.wsrep.as_ref().is_some_and(|w| {
                matches!(
                    w.local_state,
                    WsrepState::Synced | WsrepState::DonorDesynced
                )
            })
    }

    /// The position this node can prove: grastate after a graceful stop, else recovery.
    fn position(&self) -> Option<Position> {
        self.grastate
            .as_ref()
            .and_then(GraState::position)
            .or_else(|| self.recovered.clone().filter(|p| !p.is_empty()))
    }
}

/// Which steps happen by themselves (galley.toml `[controller]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Restart a crashed or stuck node of a cluster that still has a Primary component.
    pub auto_recover_nodes: bool,
    /// Recover a cluster with no Primary component (bootstrap from the right node).
    pub auto_recover_cluster: bool,
    pub confirm_bootstrap: bool,
    pub confirm_restart: bool,
    /// Move a node's data dir aside and rebuild it by SST after repeated failed starts.
    pub allow_wipe: bool,
    /// Failed starts in a row before a wipe is considered.
    pub wipe_after_failed_starts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            auto_recover_nodes: true,
            auto_recover_cluster: true,
            confirm_bootstrap: false,
            confirm_restart: false,
            allow_wipe: false,
            wipe_after_failed_starts: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Start the stopped server so that it joins the Primary component (IST or SST).
    Start { node: String },
    /// Stop the server gracefully (it is outside any Primary component and stuck).
    Stop { node: String },
    /// Stop and start again: stuck outside the Primary component while one exists.
    Restart { node: String },
    /// Run `--wsrep-recover` on the stopped server to learn its position.
    Recover { node: String },
    /// Set safe_to_bootstrap to 0 on a node that will not bootstrap (rule 2).
    ClearBootstrapFlag { node: String },
    /// Start a new Primary Component from this node's data.
    Bootstrap {
        node: String,
        seqno: i64,
        mark_safe: bool,
    },
    /// Move the data dir aside and start empty, to be rebuilt by SST.
    WipeAndStart { node: String },
    /// Start a new cluster from this node: initialize and secure its data dir first when
    /// it has none, then bootstrap. Planned only when no node has any cluster history
    /// and the operator asked for a new cluster (`Operator::create_new`).
    CreateCluster { node: String, initialize: bool },
}

impl Action {
    pub fn node(&self) -> &str {
        match self {
            Action::Start { node }
            | Action::Stop { node }
            | Action::Restart { node }
            | Action::Recover { node }
            | Action::ClearBootstrapFlag { node }
            | Action::Bootstrap { node, .. }
            | Action::WipeAndStart { node }
            | Action::CreateCluster { node, .. } => node,
        }
    }

    /// A short stable key (`bootstrap node1`), used to match operator approvals.
    pub fn key(&self) -> String {
        let verb = match self {
            Action::Start { .. } => "start",
            Action::Stop { .. } => "stop",
            Action::Restart { .. } => "restart",
            Action::Recover { .. } => "recover",
            Action::ClearBootstrapFlag { .. } => "clear-bootstrap-flag",
            Action::Bootstrap { .. } => "bootstrap",
            Action::WipeAndStart { .. } => "wipe-and-start",
            Action::CreateCluster { .. } => "create-cluster",
        };
        format!("{verb} {}", self.node())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Bootstrap {
                node,
                seqno,
                mark_safe,
            } => {
                write!(f, "bootstrap {node} at seqno {seqno}")?;
                if *mark_safe {
                    f.write_str(" (marking it safe_to_bootstrap)")?;
                }
                Ok(())
            }
            other => f.write_str(&other.key()),
        }
    }
}

/// The rule that chose a step or a refusal; recorded with every decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    RestartCrashedNode,
    RestartStuckNode,
    WipeAfterFailedStarts,
    OneJoinerAtATime,
    NoBootstrapBesideRunningNodes,
    EveryNodeReported,
    SingleBootstrap,
    MostAdvancedNode,
    HighWaterMark,
    PreferPcRecovery,
    DeadMemberInView,
    NewCluster,
    MissingData,
    Policy,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Rule::RestartCrashedNode => "restart a crashed node of a healthy cluster",
            Rule::RestartStuckNode => "restart a node stuck outside the Primary component",
            Rule::WipeAfterFailedStarts => "rebuild a node that keeps failing to start",
            Rule::OneJoinerAtATime => {
                "rule 6: one joiner at a time, each after the previous is Synced"
            }
            Rule::NoBootstrapBesideRunningNodes => {
                "rule 1: never bootstrap while a node may be in a Primary component"
            }
            Rule::EveryNodeReported => {
                "rule 3: bootstrap only once every node has reported its position"
            }
            Rule::SingleBootstrap => {
                "rule 2: never two bootstraps; clear leftover bootstrap flags first"
            }
            Rule::MostAdvancedNode => {
                "rule 3: bootstrap the node with the cluster's UUID and the highest seqno"
            }
            Rule::HighWaterMark => {
                "rule 4: never bootstrap below the high-water mark without --force"
            }
            Rule::PreferPcRecovery => {
                "rule 5: let pc.recovery re-form the Primary Component; never force pc.bootstrap"
            }
            Rule::DeadMemberInView => {
                "start a joiner only after the Primary component has dropped the dead member"
            }
            Rule::NewCluster => {
                "a new cluster only when no node has any history, and only when asked"
            }
            Rule::MissingData => {
                "a node whose data dir is empty may have held the latest writes: bootstrap without it only when the operator says its data is lost"
            }
            Rule::Policy => "policy in galley.toml [controller]",
        };
        f.write_str(text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    pub rule: Rule,
    pub reason: String,
    /// Policy says an operator must approve it (`galley recover --yes`).
    pub needs_confirmation: bool,
}

/// Why nothing (more) can be done now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Blocked {
    /// Something will change by itself (a joiner syncing, an agent coming back).
    Waiting { rule: Rule, reason: String },
    /// Only an operator can unblock it.
    Refused { rule: Rule, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Situation {
    /// Every node Synced in one Primary component.
    Healthy,
    /// A Primary component exists; some node is not in it.
    Degraded,
    /// No Primary component, some node running or unknown.
    NoPrimary,
    /// Every node reported stopped.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub situation: Situation,
    /// In order; unless `blocked`, the controller runs the first one (or all leading
    /// `Recover` steps together) and plans again from a fresh observation.
    pub steps: Vec<Step>,
    /// Set when nothing may run now; `steps` then shows the plan ahead.
    pub blocked: Option<Blocked>,
    /// Per-node reasons that hold some node back while others go on.
    pub notes: Vec<Blocked>,
}

impl Plan {
    /// The steps to run now: none when blocked; otherwise the leading `Recover` steps
    /// together, or else the first step.
    pub fn runnable(&self) -> &[Step] {
        if self.blocked.is_some() || self.steps.is_empty() {
            return &[];
        }
        let recovers = self
            .steps
            .iter()
            .take_while(|s| matches!(s.action, Action::Recover { .. }))
            .count();
        &self.steps[..recovers.max(1)]
    }
}

fn step(action: Action, rule: Rule, reason: impl Into<String>, needs_confirmation: bool) -> Step {
    Step {
        action,
        rule,
        reason: reason.into(),
        needs_confirmation,
    }
}

fn waiting(rule: Rule, reason: impl Into<String>) -> Option<Blocked> {
    Some(Blocked::Waiting {
        rule,
        reason: reason.into(),
    })
}

fn refused(rule: Rule, reason: impl Into<String>) -> Option<Blocked> {
    Some(Blocked::Refused {
        rule,
        reason: reason.into(),
    })
}

/// The plan for one observation.
pub fn plan(observation: &Observation) -> Plan {
    let reported: Vec<(&NodeView, &Facts)> = observation
        .nodes
        .iter()
        .filter_map(|node| match &node.agent {
            AgentState::Reported(facts) => Some((node, facts.as_ref())),
            AgentState::Unreachable => None,
        })
        .collect();
    if reported.iter().any(|(_, facts)| facts.primary()) {
        plan_with_primary(observation, &reported)
    } else {
        plan_without_primary(observation, &reported)
    }
}

/// A Primary component exists: bring the other nodes into it, one at a time.
fn plan_with_primary(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    let policy = &observation.policy;
    let all_synced = reported.len() == observation.nodes.len()
        && reported.iter().all(|(_, facts)| facts.synced());
    if all_synced {
        return Plan {
            situation: Situation::Healthy,
            steps: Vec::new(),
            blocked: None,
            notes: Vec::new(),
        };
    }
    let mut steps = Vec::new();
    let mut blocked = None;
    let mut notes = Vec::new();
    // A node running but not yet Synced is a joiner; while one joins, no other starts.
    let joining: Vec<&str> = reported
        .iter()
        .filter(|(_, facts)| facts.running && !facts.synced() && !facts.stuck)
        .map(|(node, _)| node.name.as_str())
        .collect();
    for (node, facts) in reported {
        if facts.running && facts.stuck && !facts.synced() {
            steps.push(step(
                Action::Restart { node: node.name.clone() },
                Rule::RestartStuckNode,
                format!("{} runs outside the Primary component (or does not reach Synced) while the others form one", node.name),
                policy.confirm_restart,
            ));
        } else if !facts.running {
            let wipe = policy.allow_wipe && facts.failed_starts >= policy.wipe_after_failed_starts;
            let (action, rule, reason) = if wipe {
                (
                    Action::WipeAndStart {
                        node: node.name.clone(),
                    },
                    Rule::WipeAfterFailedStarts,
                    format!(
                        "{} failed to start {} times in a row; policy allows rebuilding it by SST",
                        node.name, facts.failed_starts
                    ),
                )
            } else {
                (
                    Action::Start { node: node.name.clone() },
                    Rule::RestartCrashedNode,
                    format!("{} is stopped while the cluster has a Primary component; it rejoins by IST or SST", node.name),
                )
            };
            if facts.failed_starts >= policy.wipe_after_failed_starts && !policy.allow_wipe {
                notes.push(Blocked::Refused {
                    rule: Rule::Policy,
                    reason: format!(
                        "{} failed to start {} times in a row; rebuilding it by SST is off (controller.allow_wipe); see its error log",
                        node.name, facts.failed_starts
                    ),
                });
                continue;
            }
            if facts.backing_off {
                notes.push(Blocked::Waiting {
                    rule: Rule::RestartCrashedNode,
                    reason: format!(
                        "{} failed to start {} time(s); backing off before the next attempt",
                        node.name, facts.failed_starts
                    ),
                });
                continue;
            }
            steps.push(step(action, rule, reason, policy.confirm_restart));
        }
    }
    // A stuck node is running but not Synced: restart it before any other node starts,
    // so that the restarted node, a joiner again, holds the next start back (rule 6).
    steps.sort_by_key(|step| !matches!(step.action, Action::Restart { .. }));
    if !policy.auto_recover_nodes && !steps.is_empty() {
        let names: Vec<&str> = steps.iter().map(|s| s.action.node()).collect();
        blocked = refused(
            Rule::Policy,
            format!("automatic node recovery is off (controller.auto_recover_nodes); run `galley start` for {}", names.join(", ")),
        );
        for step in &mut steps {
            step.needs_confirmation = true;
        }
    } else if let Some((view, alive)) =
        dead_member_in_view(observation, reported).filter(|_| !steps.is_empty())
    {
        // A joiner arriving while the others still count a dead incarnation makes Galera
        // run its membership protocol twice, and commits stall meanwhile.
        blocked = waiting(
            Rule::DeadMemberInView,
            format!("the Primary component still counts {view} members but at most {alive} run; waiting for it to drop the dead one"),
        );
    } else if let Some(joiner) = joining.first() {
        if !steps.is_empty() {
            blocked = waiting(
                Rule::OneJoinerAtATime,
                format!("{joiner} is joining; the next node starts once it is Synced"),
            );
            // Keep the steps as the plan ahead, but the first is not runnable yet.
            for step in &mut steps {
                step.reason
                    .push_str(&format!(" (after {joiner} is Synced)"));
            }
        } else {
            blocked = waiting(Rule::OneJoinerAtATime, format!("{joiner} is joining"));
        }
    }
    let unreachable: Vec<&str> = observation
        .nodes
        .iter()
        .filter(|node| node.agent == AgentState::Unreachable)
        .map(|node| node.name.as_str())
        .collect();
    if !unreachable.is_empty() {
        notes.push(Blocked::Waiting {
            rule: Rule::EveryNodeReported,
            reason: format!(
                "the agent of {} does not answer; nothing can be done for it from here",
                unreachable.join(", ")
            ),
        });
    }
    if steps.is_empty() && blocked.is_none() {
        blocked = notes.first().cloned();
    }
    Plan {
        situation: Situation::Degraded,
        steps,
        blocked,
        notes,
    }
}

/// The Primary component's view size and how many nodes may be running, when the view
/// counts more members than can be alive.
fn dead_member_in_view(
    observation: &Observation,
    reported: &[(&NodeView, &Facts)],
) -> Option<(i64, i64)> {
    let view = reported
        .iter()
        .filter(|(_, facts)| facts.primary())
        .filter_map(|(_, facts)| facts.wsrep.as_ref().map(|w| w.cluster_size))
        .max()?;
    let unreachable = observation
        .nodes
        .iter()
        .filter(|node| node.agent == AgentState::Unreachable)
        .count();
    let running = reported.iter().filter(|(_, facts)| facts.running).count();
    let alive = (running + unreachable) as i64;
    (view > alive).then_some((view, alive))
}

/// No Primary component anywhere.
fn plan_without_primary(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    let policy = &observation.policy;
    let running: Vec<(&NodeView, &Facts)> = reported
        .iter()
        .filter(|(_, facts)| facts.running)
        .copied()
        .collect();
    let unreachable: Vec<&str> = observation
        .nodes
        .iter()
        .filter(|node| node.agent == AgentState::Unreachable)
        .map(|node| node.name.as_str())
        .collect();
    if !running.is_empty() {
        let names: Vec<&str> = running.iter().map(|(node, _)| node.name.as_str()).collect();
        let all_running = running.len() == observation.nodes.len();
        let all_stuck = running.iter().all(|(_, facts)| facts.stuck);
        if all_running || !all_stuck {
            let reason = if all_running {
                (
                    "every node runs but none is in a Primary component; Galera re-forms it by itself once they reach each other (pc.recovery). galley never forces pc.bootstrap; if this lasts, decide with `galley recover`"
                )
                .to_owned()
            } else {
                format!(
                    "{} running outside a Primary component; giving Galera time to re-form it",
                    names.join(", ")
                )
            };
            let blocked = if all_running && all_stuck {
                refused(Rule::PreferPcRecovery, reason)
            } else {
                waiting(Rule::PreferPcRecovery, reason)
            };
            return Plan {
                situation: Situation::NoPrimary,
                steps: Vec::new(),
                blocked,
                notes: Vec::new(),
            };
        }
        // Some nodes run outside any Primary component, the others are stopped, and it
        // has lasted: stop the stragglers gracefully so that every node can report a
        // position, then bootstrap from the most advanced one.
        let steps = running
            .iter()
            .map(|(node, _)| {
                step(
                    Action::Stop { node: node.name.clone() },
                    Rule::NoBootstrapBesideRunningNodes,
                    format!(
                        "{} has been outside any Primary component too long while other nodes are stopped; stopping it records its position for the bootstrap choice",
                        node.name
                    ),
                    policy.confirm_restart || !policy.auto_recover_cluster,
                )
            })
            .collect();
        let blocked = (!policy.auto_recover_cluster).then(|| Blocked::Refused {
            rule: Rule::Policy,
            reason: "automatic cluster recovery is off (controller.auto_recover_cluster); run `galley recover`".to_owned(),
        });
        return Plan {
            situation: Situation::NoPrimary,
            steps,
            blocked,
            notes: Vec::new(),
        };
    }
    if !unreachable.is_empty() {
        return Plan {
            situation: Situation::NoPrimary,
            steps: Vec::new(),
            blocked: waiting(
                Rule::EveryNodeReported,
                format!(
                    "no Primary component, and the agent of {} does not answer: the most advanced node cannot be known until every node reports (or its agent confirms it is stopped)",
                    unreachable.join(", ")
                ),
            ),
            notes: Vec::new(),
        };
    }
    plan_bootstrap(observation, reported)
}

/// Every node reported stopped: learn positions, then bootstrap the most advanced node.
fn plan_bootstrap(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    let policy = &observation.policy;
    if reported.iter().all(|(_, facts)| !facts.has_data) {
        return plan_new_cluster(observation, reported);
    }
    let unknown: Vec<&str> = reported
        .iter()
        // A recovery that found no history (the zero UUID, seqno -1: files from an SST cut
        // short) is an answer too: that node has no position and rejoins by SST.
        .filter(|(_, facts)| {
            facts.has_data && facts.position().is_none() && facts.recovered.is_none()
        })
        .map(|(node, _)| node.name.as_str())
        .collect();
    if !unknown.is_empty() {
        let steps = unknown
            .iter()
            .map(|name| {
                step(
                    Action::Recover { node: (*name).to_owned() },
                    Rule::EveryNodeReported,
                    format!("{name} stopped without saving its position (a crash); --wsrep-recover reads it from InnoDB"),
                    false,
                )
            })
            .collect();
        return Plan {
            situation: Situation::Stopped,
            steps,
            blocked: None,
            notes: Vec::new(),
        };
    }
    let positions: Vec<NodePosition> = reported
        .iter()
        .map(|(node, facts)| NodePosition {
            name: node.name.clone(),
            priority: node.priority,
            reported: true,
            running: facts.running,
            position: facts.position(),
            safe_to_bootstrap: facts.grastate.as_ref().is_some_and(|g| g.safe_to_bootstrap),
        })
        .collect();
    let choice = match galera::choose_bootstrap(&positions) {
        Ok(choice) => choice,
        // Data, but no history anywhere (a node initialized but never started, or SSTs
        // cut short): nothing to lose by starting afresh, if the operator asks for it.
        Err(galera::BootstrapRefusal::NoHistory) if observation.operator.create_new => {
            return plan_new_cluster(observation, reported);
        }
        Err(refusal) => {
            let rule = match refusal {
                galera::BootstrapRefusal::NodesRunning(_) => Rule::NoBootstrapBesideRunningNodes,
                galera::BootstrapRefusal::NotReported(_) => Rule::EveryNodeReported,
                _ => Rule::MostAdvancedNode,
            };
            return Plan {
                situation: Situation::Stopped,
                steps: Vec::new(),
                blocked: refused(rule, refusal.to_string()),
                notes: Vec::new(),
            };
        }
    };
    let missing: Vec<&str> = reported
        .iter()
        .filter(|(node, facts)| {
            !facts.has_data && !observation.operator.rebuild.contains(&node.name)
        })
        .map(|(node, _)| node.name.as_str())
        .collect();
    if let Some(node) = missing.first() {
        return Plan {
            situation: Situation::Stopped,
            steps: Vec::new(),
            blocked: refused(
                Rule::MissingData,
                format!(
                    "{node}'s data dir holds no data, but the other nodes have cluster history. galley will not guess \
                     whether {node} held the latest writes. Restore its data dir, or, if it is lost, run \
                     `galley up --rebuild {node}` (or `galley recover --rebuild {node} --yes`): the others bootstrap \
                     and {node} is rebuilt from them by a full state transfer"
                ),
            ),
            notes: Vec::new(),
        };
    }
    if let Some(mark) = &observation.high_water_mark {
        if mark.uuid != choice.position.uuid && !observation.force {
            return Plan {
                situation: Situation::Stopped,
                steps: Vec::new(),
                blocked: refused(
                    Rule::HighWaterMark,
                    format!(
                        "the nodes hold cluster {} but this cluster's history is {} (high-water mark seqno {}); refusing to bootstrap a different history without --force",
                        choice.position.uuid, mark.uuid, mark.seqno
                    ),
                ),
                notes: Vec::new(),
            };
        }
        if mark.uuid == choice.position.uuid
            && choice.position.seqno < mark.seqno
            && !observation.force
        {
            let missing: Vec<&str> = reported
                .iter()
                .filter(|(_, facts)| !facts.has_data)
                .map(|(node, _)| node.name.as_str())
                .collect();
            let suspects = if missing.is_empty() {
                String::new()
            } else {
                format!(
                    " {} has no data: its disk may have held them.",
                    missing.join(", ")
                )
            };
            return Plan {
                situation: Situation::Stopped,
                steps: Vec::new(),
                blocked: refused(
                    Rule::HighWaterMark,
                    format!(
                        "the most advanced node available, {}, is at seqno {}, below the high-water mark {}: writes {}..{} were committed and would be lost.{suspects} \
                         Restore that node's data, or accept the loss with `galley recover --force --yes`",
                        choice.node,
                        choice.position.seqno,
                        mark.seqno,
                        choice.position.seqno + 1,
                        mark.seqno
                    ),
                ),
                notes: Vec::new(),
            };
        }
    }
    let mut steps = Vec::new();
    for position in &positions {
        if position.safe_to_bootstrap && position.name != choice.node {
            steps.push(step(
                Action::ClearBootstrapFlag {
                    node: position.name.clone(),
                },
                Rule::SingleBootstrap,
                format!(
                    "{} is marked safe_to_bootstrap but {} bootstraps; clear the leftover flag",
                    position.name, choice.node
                ),
                false,
            ));
        }
    }
    let mark_safe = !positions
        .iter()
        .any(|p| p.name == choice.node && p.safe_to_bootstrap);
    let mut reason = choice.reason.clone();
    if observation.force {
        if let Some(mark) = observation
            .high_water_mark
            .as_ref()
            .filter(|m| m.seqno > choice.position.seqno)
        {
            reason.push_str(&format!(
                "; FORCED below the high-water mark {} by the operator",
                mark.seqno
            ));
        }
    }
    steps.push(step(
        Action::Bootstrap {
            node: choice.node.clone(),
            seqno: choice.position.seqno,
            mark_safe,
        },
        Rule::MostAdvancedNode,
        reason,
        policy.confirm_bootstrap,
    ));
    for (node, _) in reported.iter().filter(|(node, _)| node.name != choice.node) {
        steps.push(step(
            Action::Start {
                node: node.name.clone(),
            },
            Rule::OneJoinerAtATime,
            format!(
                "{} joins after {} is Primary, one node at a time",
                node.name, choice.node
            ),
            policy.confirm_restart,
        ));
    }
    let blocked = (!policy.auto_recover_cluster).then(|| Blocked::Refused {
        rule: Rule::Policy,
        reason: "automatic cluster recovery is off (controller.auto_recover_cluster); approve the plan with `galley recover --yes`".to_owned(),
    });
    if blocked.is_some() {
        for step in &mut steps {
            step.needs_confirmation = true;
        }
    }
    Plan {
        situation: Situation::Stopped,
        steps,
        blocked,
        notes: Vec::new(),
    }
}

/// No node has any history: a new cluster from the most preferred node, when the
/// operator asked for one; the others join one at a time once it is Primary.
fn plan_new_cluster(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    if !observation.operator.create_new {
        return Plan {
            situation: Situation::Stopped,
            steps: Vec::new(),
            blocked: refused(
                Rule::NewCluster,
                "no node has any data: this is a new cluster; create it with `galley up`",
            ),
            notes: Vec::new(),
        };
    }
    let first = observation
        .nodes
        .iter()
        .min_by_key(|node| node.priority)
        .expect("a cluster has nodes");
    let initialize = reported
        .iter()
        .find(|(node, _)| node.name == first.name)
        .is_some_and(|(_, facts)| !facts.has_data);
    let mut steps = vec![step(
        Action::CreateCluster {
            node: first.name.clone(),
            initialize,
        },
        Rule::NewCluster,
        format!(
            "new cluster: no node has any history; {} is the most preferred node",
            first.name
        ),
        false,
    )];
    for (node, _) in reported.iter().filter(|(node, _)| node.name != first.name) {
        steps.push(step(
            Action::Start {
                node: node.name.clone(),
            },
            Rule::OneJoinerAtATime,
            format!(
                "{} joins after {} is Primary, one node at a time",
                node.name, first.name
            ),
            false,
        ));
    }
    Plan {
        situation: Situation::Stopped,
        steps,
        blocked: None,
        notes: Vec::new(),
    }
}

/// Applies the operator's intent: nodes stopped on purpose (`galley stop`) are not
/// started again. Their positions still count for a bootstrap choice (rule 3); if the
/// choice falls on such a node, the plan is refused instead of bootstrapping another.
pub fn respect_operator_stops(
    mut plan: Plan,
    observation: &Observation,
    stopped_on_purpose: &[String],
) -> Plan {
    if stopped_on_purpose.is_empty() {
        return plan;
    }
    let on_purpose = |name: &str| stopped_on_purpose.iter().any(|stopped| stopped == name);
    let everyone_stopped = observation.nodes.iter().all(|node| {
        on_purpose(&node.name)
            && matches!(&node.agent, AgentState::Reported(facts) if !facts.running)
    });
    if everyone_stopped {
        plan.steps.clear();
        plan.blocked = waiting(
            Rule::Policy,
            "every node was stopped on purpose; `galley start` or `galley up` brings them back",
        );
        return plan;
    }
    if let Some(bootstrap) = plan.steps.iter().find(|s| {
        matches!(
            s.action,
            Action::Bootstrap { .. } | Action::CreateCluster { .. }
        ) && on_purpose(s.action.node())
    }) {
        let node = bootstrap.action.node().to_owned();
        plan.steps.clear();
        plan.blocked = refused(
            Rule::MostAdvancedNode,
            format!("{node} must bootstrap (it is the most advanced), but an operator stopped it on purpose; bring it back with `galley start {node}` or `galley up`"),
        );
        return plan;
    }
    plan.steps.retain(|step| {
        !(matches!(
            step.action,
            Action::Start { .. } | Action::Restart { .. } | Action::WipeAndStart { .. }
        ) && on_purpose(step.action.node()))
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped_node(name: &str, seqno: i64) -> NodeView {
        NodeView {
            name: name.to_owned(),
            priority: 1,
            agent: AgentState::Reported(Box::new(Facts {
                running: false,
                wsrep: None,
                has_data: true,
                grastate: Some(GraState {
                    version: "2.1".to_owned(),
                    uuid: "259f0f64-2a80-46ae-a206-519b5024470e".to_owned(),
                    seqno,
                    safe_to_bootstrap: false,
                }),
                recovered: None,
                stuck: false,
                failed_starts: 0,
                backing_off: false,
            })),
        }
    }

    fn observation(nodes: Vec<NodeView>) -> Observation {
        Observation {
            nodes,
            high_water_mark: None,
            policy: Policy::default(),
            force: false,
            operator: Operator::default(),
        }
    }

    #[test]
    fn operator_stops_are_respected() {
        let all = observation(vec![
            stopped_node("n1", 9),
            stopped_node("n2", 8),
            stopped_node("n3", 7),
        ]);
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // Nobody stopped on purpose: bootstrap n1, start the others.
        let plan = respect_operator_stops(plan(&all), &all, &[]);
        assert_eq!(plan.steps.len(), 3);
        // n3 stopped on purpose: it is not started.
        let plan = respect_operator_stops(super::plan(&all), &all, &names(&["n3"]));
        let keys: Vec<String> = plan.steps.iter().map(|s| s.action.key()).collect();
        assert_eq!(keys, ["bootstrap n1", "start n2"]);
        // The most advanced node stopped on purpose: refuse rather than bootstrap n2.
        let plan = respect_operator_stops(super::plan(&all), &all, &names(&["n1"]));
        assert!(plan.steps.is_empty());
        assert!(matches!(plan.blocked, Some(Blocked::Refused { .. })));
        // Everyone stopped on purpose: nothing to do, and no alarm.
        let plan = respect_operator_stops(super::plan(&all), &all, &names(&["n1", "n2", "n3"]));
        assert!(plan.steps.is_empty());
        assert!(matches!(plan.blocked, Some(Blocked::Waiting { .. })));
    }
}
