//! Observation, policy and plan types, and `plan` itself.

use std::fmt;

use galera::{GraState, NodePosition, Position, WsrepState, WsrepStatus};
use serde::{Deserialize, Serialize};

/// Everything the planner may know, gathered by the controller in one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// In priority order (most preferred first).
    pub nodes: Vec<NodeView>,
    /// The high-water mark of every cluster history seen (rules 4 and 10).
    pub marks: HighWaterMarks,
    pub policy: Policy,
    /// The operator allowed a bootstrap below its history's high-water mark or of
    /// another history than the accepted one, or accepts that the running Primary
    /// component is (`--force`). The plan then says what to record (`Plan::acceptance`).
    pub force: bool,
    /// What else the operator asked for on this run (`galley up`, `--rebuild`).
    #[serde(default)]
    pub operator: Operator,
    /// The spec's arbitrators (garbd): voting members of the group that store no data
    /// (docs/arbitrator.md). They are in no `nodes` entry, so the planner never starts,
    /// recovers or bootstraps one and never weighs their position; it only knows that
    /// a Primary component's view may count this many members besides the data nodes.
    #[serde(default)]
    pub arbitrators: u32,
}

/// Requests that only an operator (or a command an operator ran) can make: the planner
/// never assumes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Create a new cluster when no node has any data (`galley up`, a deployment's
    /// bootstrap step). The controller never does: a cluster that lost every disk is not
    /// silently replaced by an empty one.
    pub create_new: bool,
    /// Nodes whose own data an operator gave up (`--rebuild NODE`): an empty data dir
    /// among them does not block a bootstrap (`Rule::MissingData`); data they still hold
    /// is moved aside and rebuilt from the Primary component by a state transfer, even
    /// where rule 8 would keep it; in a bootstrap choice their positions do not count.
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

impl Observation {
    fn rebuilds(&self, node: &str) -> bool {
        self.operator.rebuild.iter().any(|name| name == node)
    }
}

/// The nodes whose agent did not answer.
fn unreachable_nodes(observation: &Observation) -> Vec<&str> {
    observation
        .nodes
        .iter()
        .filter(|node| node.agent == AgentState::Unreachable)
        .map(|node| node.name.as_str())
        .collect()
}

/// The highest committed seqno of one cluster history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub uuid: String,
    pub seqno: i64,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uuid, self.seqno)
    }
}

/// The high-water marks the controller's store keeps, one per cluster history (rule 10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWaterMarks {
    /// The cluster's accepted history and its mark: the history it runs, or last ran.
    /// None while no history was ever seen.
    pub accepted: Option<Mark>,
    /// Every other history ever seen (a node restored from another cluster, a
    /// bootstrap of other data by hand), with its own mark.
    #[serde(default)]
    pub others: Vec<Mark>,
}

impl HighWaterMarks {
    /// The mark of history `uuid`, accepted or not.
    pub fn of(&self, uuid: &str) -> Option<&Mark> {
        self.accepted
            .iter()
            .chain(&self.others)
            .find(|mark| mark.uuid == uuid)
    }
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
    /// Earlier copies of this node's data dir that a rebuild moved aside (never deleted).
    /// An automatic rebuild happens only while there is none, so that a node that keeps
    /// failing cannot fill the disk with copies (docs/safety-rules.md, rule 7).
    #[serde(default)]
    pub set_aside: Vec<String>,
    /// The node reports a view the other nodes have left (`galera::stale_views`): it is
    /// neither Synced nor in the Primary component, whatever it says about itself.
    #[serde(default)]
    pub stale_view: Option<String>,
}

impl Facts {
    /// Running in a Primary component (one whose view is current).
    pub fn primary(&self) -> bool {
        self.running
            && self.stale_view.is_none()
            && self.wsrep.as_ref().is_some_and(WsrepStatus::is_primary)
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
    KeepNewerData,
    KeepOtherHistory,
    PositionBeforeJoin,
    SplitBrain,
    PrimaryBehindMark,
    AcceptedHistory,
    RebuildOnRequest,
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
            Rule::KeepNewerData => {
                "rule 8: never start a joiner whose data is ahead of the Primary or of the high-water mark: a state transfer would overwrite the newest copy"
            }
            Rule::KeepOtherHistory => {
                "rule 8: never start a joiner whose data belongs to another cluster history: a state transfer would overwrite it"
            }
            Rule::PositionBeforeJoin => {
                "rule 8: learn a crashed node's position (--wsrep-recover) before it may join"
            }
            Rule::SplitBrain => {
                "rule 9: two cluster histories running as Primary components is a split brain: no writes to the minority"
            }
            Rule::PrimaryBehindMark => {
                "rule 10: a Primary component behind its history's high-water mark is missing committed writes"
            }
            Rule::AcceptedHistory => {
                "rule 10: one high-water mark per cluster history; running or bootstrapping another history than the accepted one needs an operator"
            }
            Rule::RebuildOnRequest => {
                "rebuild a node whose data an operator gave up (moved aside, then a state transfer)"
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
    /// A Primary component exists; some node is not in it, or it is missing committed
    /// writes or runs another history than the accepted one (rule 10).
    Degraded,
    /// No Primary component, some node running or unknown.
    NoPrimary,
    /// Every node reported stopped.
    Stopped,
    /// Running Primary nodes report two or more cluster histories (rule 9).
    SplitBrain,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub situation: Situation,
    /// In order; unless `blocked`, the controller runs the first one (or all leading
    /// `Recover` steps together) and plans again from a fresh observation.
    pub steps: Vec<Step>,
    /// Set when nothing may run now; `steps` then shows the plan ahead.
    pub blocked: Option<Blocked>,
    /// Per-node reasons that hold some node back while others go on, and what is wrong
    /// with the running cluster's history (rule 10).
    pub notes: Vec<Blocked>,
    /// What the operator's `force` accepts, for the controller to record in its store
    /// (rule 10: a mark is never lowered or switched silently).
    #[serde(default)]
    pub acceptance: Option<Acceptance>,
}

/// A history and position that the operator's `force` makes the cluster's accepted
/// history and its high-water mark (`store::Store::accept_history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    pub mark: Mark,
    /// Record it once this node's `Bootstrap` step succeeded; None: record it now (the
    /// Primary component runs it already).
    pub after_bootstrap: Option<String>,
    /// What is accepted and what it loses, for the record.
    pub reason: String,
}

/// The highest committed seqno that one observation proves for a cluster history, and
/// the node that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedMark {
    pub uuid: String,
    pub seqno: i64,
    pub node: String,
}

impl Plan {
    fn new(situation: Situation, steps: Vec<Step>, blocked: Option<Blocked>) -> Plan {
        Plan {
            situation,
            steps,
            blocked,
            notes: Vec::new(),
            acceptance: None,
        }
    }

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

/// `write 11` or `writes 11..15`.
fn writes(first: i64, last: i64) -> String {
    if first == last {
        format!("write {first}")
    } else {
        format!("writes {first}..{last}")
    }
}

/// `write 11 was` or `writes 11..15 were`.
fn writes_were(first: i64, last: i64) -> String {
    let verb = if first == last { "was" } else { "were" };
    format!("{} {verb}", writes(first, last))
}

/// `node3 holds` or `node3, node4 hold`.
fn hold(names: &[&str]) -> String {
    let verb = if names.len() == 1 { "holds" } else { "hold" };
    format!("{} {verb}", names.join(", "))
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

/// The highest committed seqno this observation proves for each cluster history, with
/// the node that proves it: the last committed seqno of a Synced member of a Primary
/// component, or a stopped node's saved or recovered position. The controller raises
/// its store's mark of each history with them before it plans (rule 10). Histories that
/// a Primary component runs come first, so that a store that knows no history yet
/// adopts the running one. A joiner's last committed seqno does not count: during its
/// state transfer it may still show its old data's.
pub fn observed_marks(observation: &Observation) -> Vec<ObservedMark> {
    let mut marks: Vec<(bool, ObservedMark)> = Vec::new();
    for node in &observation.nodes {
        let AgentState::Reported(facts) = &node.agent else {
            continue;
        };
        let (running, position) = match facts.wsrep.as_ref().filter(|_| facts.synced()) {
            Some(wsrep) => (
                true,
                Position {
                    uuid: wsrep.cluster_state_uuid.clone(),
                    seqno: wsrep.last_committed,
                },
            ),
            None if facts.running => continue,
            None => match facts.position() {
                Some(position) => (false, position),
                None => continue,
            },
        };
        if position.uuid.is_empty() || position.is_empty() {
            continue;
        }
        match marks
            .iter_mut()
            .find(|(_, mark)| mark.uuid == position.uuid)
        {
            Some((runs, mark)) => {
                *runs |= running;
                if position.seqno > mark.seqno {
                    mark.seqno = position.seqno;
                    mark.node.clone_from(&node.name);
                }
            }
            None => marks.push((
                running,
                ObservedMark {
                    uuid: position.uuid,
                    seqno: position.seqno,
                    node: node.name.clone(),
                },
            )),
        }
    }
    // Stable: otherwise in the order the nodes were given.
    marks.sort_by_key(|(running, _)| !running);
    marks.into_iter().map(|(_, mark)| mark).collect()
}

/// The running Primary component, once split brain is ruled out: one history.
struct RunningPrimary<'a> {
    /// Empty when no member reported it.
    uuid: &'a str,
    /// The highest last committed seqno of the members that hold their data (Synced,
    /// donating, or Joined: catching up after a state transfer), of every member when
    /// none does: what a joiner would receive. A Joined member counts because a donor
    /// passes through Joined on its way back to Synced while the others may still be
    /// applying its last write set: without it, the Primary would look one write behind
    /// the mark that its Synced report raised a moment before.
    seqno: i64,
    members: Vec<&'a str>,
}

fn running_primary<'a>(reported: &[(&'a NodeView, &'a Facts)]) -> RunningPrimary<'a> {
    let members: Vec<(&str, bool, &WsrepStatus)> = reported
        .iter()
        .filter(|(_, facts)| facts.primary())
        .filter_map(|(node, facts)| {
            let wsrep = facts.wsrep.as_ref()?;
            let holds_data = facts.synced() || wsrep.local_state == WsrepState::Joined;
            Some((node.name.as_str(), holds_data, wsrep))
        })
        .collect();
    let uuid = members
        .iter()
        .map(|(_, _, wsrep)| wsrep.cluster_state_uuid.as_str())
        .find(|uuid| !uuid.is_empty())
        .unwrap_or("");
    let highest = |holding_only: bool| {
        members
            .iter()
            .filter(|(_, holds_data, _)| *holds_data || !holding_only)
            .map(|(_, _, wsrep)| wsrep.last_committed)
            .max()
    };
    RunningPrimary {
        uuid,
        seqno: highest(true).or_else(|| highest(false)).unwrap_or(-1),
        members: members.iter().map(|(name, _, _)| *name).collect(),
    }
}

/// What a node would lose if a state transfer replaced its data (rule 8).
enum OwnData {
    /// Nothing: no data dir, a recovery that found no history (an SST cut short), or a
    /// running server that has not answered over SQL yet (it was checked when started).
    Nothing,
    /// Files whose position is unknown (grastate.dat says -1 after a crash).
    Unknown,
    Position(Position),
}

fn own_data(facts: &Facts) -> OwnData {
    if facts.running {
        return match &facts.wsrep {
            Some(wsrep) if !wsrep.cluster_state_uuid.is_empty() => {
                let position = Position {
                    uuid: wsrep.cluster_state_uuid.clone(),
                    seqno: wsrep.last_committed,
                };
                if position.is_empty() {
                    OwnData::Nothing
                } else {
                    OwnData::Position(position)
                }
            }
            _ => OwnData::Nothing,
        };
    }
    if !facts.has_data {
        return OwnData::Nothing;
    }
    match facts.position() {
        Some(position) => OwnData::Position(position),
        None if facts.recovered.is_some() => OwnData::Nothing,
        None => OwnData::Unknown,
    }
}

/// Rule 8: why `node` must keep its data rather than take a state transfer from the
/// running Primary component, if it must.
fn keep_own_data(
    node: &str,
    own: &Position,
    primary: &RunningPrimary,
    marks: &HighWaterMarks,
) -> Option<Blocked> {
    if primary.uuid.is_empty() {
        return waiting(
            Rule::KeepOtherHistory,
            format!("{node} holds history {own}, but the Primary component's cluster UUID was not read; it joins once the two can be compared"),
        );
    }
    let choices = format!(
        "{node} stays as it is, with its data. `galley recover` shows every node's history and position; to keep {node}'s data, move its data dir aside by hand (or bring the cluster back from it); to give it up, rebuild it with `galley recover --rebuild {node}` (its data is moved aside, then replaced by a state transfer)"
    );
    let members = primary.members.join(", ");
    if own.uuid != primary.uuid {
        let accepted = if marks.accepted.as_ref().is_some_and(|a| a.uuid == own.uuid) {
            " (this cluster's accepted history)"
        } else {
            ""
        };
        return refused(
            Rule::KeepOtherHistory,
            format!(
                "{node} holds cluster history {}{accepted} up to seqno {}, but the Primary component ({members}) runs history {} at seqno {}: a state transfer would replace {node}'s data with the other history. {choices}",
                own.uuid, own.seqno, primary.uuid, primary.seqno
            ),
        );
    }
    if own.seqno > primary.seqno {
        let mark = marks.of(&own.uuid).map_or_else(String::new, |mark| {
            format!(" (its high-water mark is {})", mark.seqno)
        });
        return refused(
            Rule::KeepNewerData,
            format!(
                "{node} is at seqno {} of history {}{mark}, ahead of the Primary component ({members}, last committed {}): {} may exist only on {node}, and a state transfer would overwrite them. {choices}",
                own.seqno,
                own.uuid,
                primary.seqno,
                writes(primary.seqno + 1, own.seqno)
            ),
        );
    }
    None
}

/// Rule 10 for the running Primary component: whether it is behind its history's mark,
/// or runs another history than the accepted one. Refusal notes, or, when the operator
/// forced it, the acceptance to record instead.
fn history_of_primary(
    observation: &Observation,
    reported: &[(&NodeView, &Facts)],
    primary: &RunningPrimary,
) -> (Vec<Blocked>, Option<Acceptance>) {
    if primary.uuid.is_empty() {
        return (Vec::new(), None);
    }
    let marks = &observation.marks;
    let members = primary.members.join(", ");
    // Stopped nodes prove committed writes, even before the store's mark has them.
    let stopped_at = |uuid: &str| -> Vec<(&str, i64)> {
        reported
            .iter()
            .filter(|(_, facts)| !facts.running)
            .filter_map(|(node, facts)| {
                let position = facts.position().filter(|p| p.uuid == uuid)?;
                Some((node.name.as_str(), position.seqno))
            })
            .collect()
    };
    let mut notes = Vec::new();
    let mut accepted_loss = Vec::new();
    if let Some(accepted) = marks.accepted.as_ref().filter(|a| a.uuid != primary.uuid) {
        let holders: Vec<&str> = stopped_at(&accepted.uuid)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let held = if holders.is_empty() {
            String::new()
        } else {
            format!("; {} it", hold(&holders))
        };
        notes.push(Blocked::Refused {
            rule: Rule::AcceptedHistory,
            reason: format!(
                "the Primary component ({members}) runs cluster history {} at seqno {}, but this cluster's accepted history is {} (high-water mark {}{held}): none of its writes are in the running cluster. `galley recover` shows both histories; to keep the running one, accept it with `galley recover --force --yes` (recorded); to go back, stop the Primary component's nodes, and the bootstrap choice falls on a node that holds {}",
                primary.uuid, primary.seqno, accepted.uuid, accepted.seqno, accepted.uuid
            ),
        });
        accepted_loss.push(format!(
            "the running history {} at seqno {} replaces the accepted history {} (high-water mark {})",
            primary.uuid, primary.seqno, accepted.uuid, accepted.seqno
        ));
    }
    let ahead: Vec<(&str, i64)> = stopped_at(primary.uuid)
        .into_iter()
        .filter(|(_, seqno)| *seqno > primary.seqno)
        .collect();
    let mark = marks
        .of(primary.uuid)
        .map(|mark| mark.seqno)
        .into_iter()
        .chain(ahead.iter().map(|(_, seqno)| *seqno))
        .max()
        .filter(|mark| *mark > primary.seqno);
    if let Some(mark) = mark {
        let held = if ahead.is_empty() {
            "no node reported holding them".to_owned()
        } else {
            let names: Vec<&str> = ahead.iter().map(|(name, _)| *name).collect();
            format!(
                "{} them and keeps them: it is not started as a joiner (rule 8)",
                hold(&names)
            )
        };
        notes.push(Blocked::Refused {
            rule: Rule::PrimaryBehindMark,
            reason: format!(
                "the Primary component ({members}) runs history {} at seqno {}, below its high-water mark {mark}: {} committed and {} missing from it; {held}. `galley recover` shows every node's position; to keep those writes, stop the Primary component's nodes, and the bootstrap choice falls on the node that holds them; to accept their loss, run `galley recover --force --yes` (recorded)",
                primary.uuid,
                primary.seqno,
                writes_were(primary.seqno + 1, mark),
                if primary.seqno + 1 == mark { "is" } else { "are" }
            ),
        });
        accepted_loss.push(format!(
            "{} of history {} given up",
            writes(primary.seqno + 1, mark),
            primary.uuid
        ));
    }
    if notes.is_empty() || !observation.force {
        return (notes, None);
    }
    // An agent that does not answer may hide a node running another Primary component
    // (a split brain that cannot be seen): accepting the one in view could be wrong.
    let unreachable = unreachable_nodes(observation);
    if !unreachable.is_empty() {
        notes.push(Blocked::Waiting {
            rule: Rule::AcceptedHistory,
            reason: format!(
                "the operator's acceptance waits until every agent answers: {} may run another Primary component",
                unreachable.join(", ")
            ),
        });
        return (notes, None);
    }
    let acceptance = Acceptance {
        mark: Mark {
            uuid: primary.uuid.to_owned(),
            seqno: primary.seqno,
        },
        after_bootstrap: None,
        reason: format!(
            "accepted by an operator (--force): {}",
            accepted_loss.join("; ")
        ),
    };
    (Vec::new(), Some(acceptance))
}

/// A Primary component exists: bring the other nodes into it, one at a time, each only
/// if it loses nothing by taking the Primary component's state (rule 8).
fn plan_with_primary(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    let policy = &observation.policy;
    let statuses = reported
        .iter()
        .filter(|(_, facts)| facts.primary())
        .filter_map(|(node, facts)| Some((node.name.as_str(), facts.wsrep.as_ref()?)));
    if let Some(split) = galera::split_brain(statuses) {
        return Plan::new(
            Situation::SplitBrain,
            Vec::new(),
            refused(
                Rule::SplitBrain,
                format!(
                    "{split}. No node is started or restarted into either side: galley does not choose whose writes to keep. Send no writes to the minority; `galley recover` shows both histories; stop the side whose writes you give up, and its nodes then stay stopped with their data (rule 8) until you move it aside or rebuild them"
                ),
            ),
        );
    }
    let primary = running_primary(reported);
    let (history_notes, acceptance) = history_of_primary(observation, reported, &primary);
    let all_synced = reported.len() == observation.nodes.len()
        && reported.iter().all(|(_, facts)| facts.synced());
    if all_synced && history_notes.is_empty() {
        return Plan {
            acceptance,
            ..Plan::new(Situation::Healthy, Vec::new(), None)
        };
    }
    let mut steps = Vec::new();
    let mut recovers = Vec::new();
    let mut blocked = None;
    let mut notes = Vec::new();
    // A node running but not yet Synced is a joiner; while one joins, no other starts.
    let joining: Vec<&str> = reported
        .iter()
        .filter(|(_, facts)| facts.running && !facts.synced() && !facts.stuck)
        .map(|(node, _)| node.name.as_str())
        .collect();
    for (node, facts) in reported {
        let name = node.name.as_str();
        if facts.running {
            if !facts.stuck || facts.synced() {
                continue;
            }
            // A restarted node is a joiner again: its data counts as a stopped one's.
            if let OwnData::Position(own) = own_data(facts) {
                if let Some(note) = keep_own_data(name, &own, &primary, &observation.marks) {
                    notes.push(note);
                    continue;
                }
            }
            steps.push(step(
                Action::Restart { node: name.to_owned() },
                Rule::RestartStuckNode,
                format!("{name} runs outside the Primary component (or does not reach Synced) while the others form one"),
                policy.confirm_restart,
            ));
            continue;
        }
        // An empty data dir has nothing to move aside: it just joins.
        let rebuild = observation.rebuilds(name) && facts.has_data;
        if facts.failed_starts >= policy.wipe_after_failed_starts && !policy.allow_wipe && !rebuild
        {
            notes.push(Blocked::Refused {
                rule: Rule::Policy,
                reason: format!(
                    "{name} failed to start {} times in a row; rebuilding it by SST is off (controller.allow_wipe); see its error log",
                    facts.failed_starts
                ),
            });
            continue;
        }
        let wipe_due = policy.allow_wipe && facts.failed_starts >= policy.wipe_after_failed_starts;
        if wipe_due && !rebuild && !facts.set_aside.is_empty() {
            notes.push(Blocked::Refused {
                rule: Rule::WipeAfterFailedStarts,
                reason: format!(
                    "{name} failed to start {} times in a row, but its data was already moved aside once ({}); another automatic rebuild would keep one more full copy on that disk. See its error log; once that copy is removed (or with `galley recover --rebuild {name}`) it is rebuilt by SST",
                    facts.failed_starts,
                    facts.set_aside.join(", ")
                ),
            });
            continue;
        }
        if facts.backing_off {
            notes.push(Blocked::Waiting {
                rule: Rule::RestartCrashedNode,
                reason: format!(
                    "{name} failed to start {} time(s); backing off before the next attempt",
                    facts.failed_starts
                ),
            });
            continue;
        }
        if !rebuild {
            match own_data(facts) {
                OwnData::Unknown => {
                    recovers.push(step(
                        Action::Recover { node: name.to_owned() },
                        Rule::PositionBeforeJoin,
                        format!("{name} stopped without saving its position (a crash); --wsrep-recover reads it from InnoDB, so that a state transfer never overwrites newer data or another history"),
                        false,
                    ));
                    continue;
                }
                OwnData::Position(own) => {
                    if let Some(note) = keep_own_data(name, &own, &primary, &observation.marks) {
                        notes.push(note);
                        continue;
                    }
                }
                OwnData::Nothing => {}
            }
        }
        let (action, rule, reason, needs_confirmation) = if rebuild {
            (
                Action::WipeAndStart { node: name.to_owned() },
                Rule::RebuildOnRequest,
                format!("an operator gave up {name}'s data: it is moved aside, and {name} is rebuilt from the Primary component by a full state transfer"),
                false,
            )
        } else if wipe_due {
            (
                Action::WipeAndStart {
                    node: name.to_owned(),
                },
                Rule::WipeAfterFailedStarts,
                format!(
                    "{name} failed to start {} times in a row; policy allows rebuilding it by SST",
                    facts.failed_starts
                ),
                policy.confirm_restart,
            )
        } else {
            (
                Action::Start { node: name.to_owned() },
                Rule::RestartCrashedNode,
                format!("{name} is stopped while the cluster has a Primary component; it rejoins by IST or SST"),
                policy.confirm_restart,
            )
        };
        steps.push(step(action, rule, reason, needs_confirmation));
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
    let mut all_notes = history_notes;
    if !recovers.is_empty() {
        // --wsrep-recover reads only the stopped node's own files: it runs whatever the
        // other steps wait for, and the next plan knows the position.
        all_notes.extend(blocked.take());
        recovers.append(&mut steps);
        steps = recovers;
    }
    all_notes.append(&mut notes);
    let unreachable = unreachable_nodes(observation);
    if !unreachable.is_empty() {
        all_notes.push(Blocked::Waiting {
            rule: Rule::EveryNodeReported,
            reason: format!(
                "the agent of {} does not answer; nothing can be done for it from here",
                unreachable.join(", ")
            ),
        });
    }
    if steps.is_empty() && blocked.is_none() {
        blocked = all_notes
            .iter()
            .find(|note| matches!(note, Blocked::Refused { .. }))
            .or(all_notes.first())
            .cloned();
    }
    Plan {
        situation: Situation::Degraded,
        steps,
        blocked,
        notes: all_notes,
        acceptance,
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
    // An arbitrator is a member of the view without an agent: the view of two data
    // nodes and garbd is 3 with both nodes running, and 2 once one of them has left.
    let alive = (running + unreachable) as i64 + i64::from(observation.arbitrators);
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
    let unreachable = unreachable_nodes(observation);
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
            return Plan::new(Situation::NoPrimary, Vec::new(), blocked);
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
        return Plan::new(Situation::NoPrimary, steps, blocked);
    }
    if !unreachable.is_empty() {
        return Plan::new(
            Situation::NoPrimary,
            Vec::new(),
            waiting(
                Rule::EveryNodeReported,
                format!(
                    "no Primary component, and the agent of {} does not answer: the most advanced node cannot be known until every node reports (or its agent confirms it is stopped)",
                    unreachable.join(", ")
                ),
            ),
        );
    }
    plan_bootstrap(observation, reported)
}

/// Every node reported stopped: learn positions, then bootstrap the most advanced node.
fn plan_bootstrap(observation: &Observation, reported: &[(&NodeView, &Facts)]) -> Plan {
    let policy = &observation.policy;
    // Data an operator gave up counts as none: it is moved aside when its node joins.
    let kept_data =
        |node: &NodeView, facts: &Facts| facts.has_data && !observation.rebuilds(&node.name);
    if reported.iter().all(|(node, facts)| !kept_data(node, facts)) {
        return plan_new_cluster(observation, reported);
    }
    let unknown: Vec<&str> = reported
        .iter()
        // A recovery that found no history (the zero UUID, seqno -1: files from an SST cut
        // short) is an answer too: that node has no position and rejoins by SST.
        .filter(|(node, facts)| {
            kept_data(node, facts) && facts.position().is_none() && facts.recovered.is_none()
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
        return Plan::new(Situation::Stopped, steps, None);
    }
    let positions: Vec<NodePosition> = reported
        .iter()
        .map(|(node, facts)| {
            let kept = kept_data(node, facts);
            NodePosition {
                name: node.name.clone(),
                priority: node.priority,
                reported: true,
                running: facts.running,
                position: facts.position().filter(|_| kept),
                safe_to_bootstrap: kept
                    && facts.grastate.as_ref().is_some_and(|g| g.safe_to_bootstrap),
            }
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
            return Plan::new(
                Situation::Stopped,
                Vec::new(),
                refused(rule, refusal.to_string()),
            );
        }
    };
    let chosen = &choice.position;
    // Rule 10: the bootstrap continues one history; it is checked against that
    // history's own mark, and against the history the cluster accepted.
    let other_history = observation
        .marks
        .accepted
        .as_ref()
        .filter(|accepted| accepted.uuid != chosen.uuid);
    let below = observation
        .marks
        .of(&chosen.uuid)
        .filter(|mark| chosen.seqno < mark.seqno);
    if !observation.force {
        if let Some(accepted) = other_history {
            let own_mark = below.map_or_else(String::new, |mark| {
                format!(", below that history's own high-water mark {}", mark.seqno)
            });
            return Plan::new(
                Situation::Stopped,
                Vec::new(),
                refused(
                    Rule::AcceptedHistory,
                    format!(
                        "the nodes hold cluster history {} (the most advanced, {}, at seqno {}{own_mark}), but this cluster's accepted history is {} (high-water mark {}), which no node that keeps its data holds: a bootstrap would start the cluster on other data, without those writes. `galley recover` shows every node's history; bring back a node that holds {}, or, if these nodes are the cluster now (restored on purpose), accept their history with `galley recover --force --yes` (recorded)",
                        chosen.uuid, choice.node, chosen.seqno, accepted.uuid, accepted.seqno, accepted.uuid
                    ),
                ),
            );
        }
        if let Some(mark) = below {
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
            return Plan::new(
                Situation::Stopped,
                Vec::new(),
                refused(
                    Rule::HighWaterMark,
                    format!(
                        "the most advanced node available, {}, is at seqno {}, below the high-water mark {}: {} committed and would be lost.{suspects} \
                         Restore that node's data, or accept the loss with `galley recover --force --yes`",
                        choice.node,
                        chosen.seqno,
                        mark.seqno,
                        writes_were(chosen.seqno + 1, mark.seqno)
                    ),
                ),
            );
        }
    }
    // After the mark (whose refusal names the writes at stake): an empty data dir may
    // have held writes the mark never saw.
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
            acceptance: None,
        };
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
    let mut accepted_loss = Vec::new();
    if let Some(accepted) = other_history {
        reason.push_str(&format!(
            "; FORCED to another history than the accepted {} (high-water mark {}) by the operator",
            accepted.uuid, accepted.seqno
        ));
        accepted_loss.push(format!(
            "history {} replaces the accepted history {} (high-water mark {})",
            chosen.uuid, accepted.uuid, accepted.seqno
        ));
    }
    if let Some(mark) = below {
        reason.push_str(&format!(
            "; FORCED below the high-water mark {} by the operator",
            mark.seqno
        ));
        accepted_loss.push(format!(
            "{} of history {} given up",
            writes(chosen.seqno + 1, mark.seqno),
            chosen.uuid
        ));
    }
    // Without force, a bootstrap of another history or below the mark was refused above.
    let acceptance = (!accepted_loss.is_empty()).then(|| Acceptance {
        mark: Mark {
            uuid: chosen.uuid.clone(),
            seqno: chosen.seqno,
        },
        after_bootstrap: Some(choice.node.clone()),
        reason: format!(
            "forced bootstrap of {} at {} by an operator (--force): {}",
            choice.node,
            chosen,
            accepted_loss.join("; ")
        ),
    });
    steps.push(step(
        Action::Bootstrap {
            node: choice.node.clone(),
            seqno: chosen.seqno,
            mark_safe,
        },
        Rule::MostAdvancedNode,
        reason,
        policy.confirm_bootstrap,
    ));
    for (node, facts) in reported.iter().filter(|(node, _)| node.name != choice.node) {
        let name = node.name.clone();
        steps.push(if observation.rebuilds(&name) && facts.has_data {
            step(
                Action::WipeAndStart { node: name.clone() },
                Rule::RebuildOnRequest,
                format!(
                    "an operator gave up {name}'s data: after {} is Primary, it is moved aside and {name} is rebuilt by a full state transfer, one node at a time",
                    choice.node
                ),
                false,
            )
        } else {
            step(
                Action::Start { node: name.clone() },
                Rule::OneJoinerAtATime,
                format!(
                    "{name} joins after {} is Primary, one node at a time",
                    choice.node
                ),
                policy.confirm_restart,
            )
        });
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
        acceptance,
        ..Plan::new(Situation::Stopped, steps, blocked)
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
            acceptance: None,
        };
    }
    // The history says this cluster held data: an empty cluster in its place would
    // lose all of it without a word (rule 4).
    if let Some(mark) = observation
        .marks
        .accepted
        .as_ref()
        .or(observation.marks.others.first())
        .filter(|_| !observation.force)
    {
        return Plan {
            situation: Situation::Stopped,
            steps: Vec::new(),
            blocked: refused(
                Rule::HighWaterMark,
                format!(
                    "no node holds any history, but this cluster's history ({}) reached seqno {}: creating a new, empty cluster would lose all of it. \
                     Restore the data dirs, or start afresh on purpose with --force",
                    mark.uuid, mark.seqno
                ),
            ),
            notes: Vec::new(),
            acceptance: None,
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
        acceptance: None,
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
        plan.acceptance = None;
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
        // The acceptance waited for that bootstrap.
        plan.acceptance = None;
        plan.blocked = refused(
            Rule::MostAdvancedNode,
            format!("{node} must bootstrap (it is the most advanced), but an operator stopped it on purpose; bring it back with `galley start {node}` or `galley up`"),
        );
        return plan;
    }
    // A position read only to start the node (rule 8) is not needed either; one read for
    // a bootstrap choice is (rule 3).
    plan.steps.retain(|step| {
        let joins = matches!(
            step.action,
            Action::Start { .. } | Action::Restart { .. } | Action::WipeAndStart { .. }
        ) || step.rule == Rule::PositionBeforeJoin;
        !(joins && on_purpose(step.action.node()))
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
                set_aside: Vec::new(),
                stale_view: None,
                backing_off: false,
            })),
        }
    }

    fn observation(nodes: Vec<NodeView>) -> Observation {
        Observation {
            nodes,
            marks: HighWaterMarks::default(),
            policy: Policy::default(),
            force: false,
            operator: Operator::default(),
            arbitrators: 0,
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
