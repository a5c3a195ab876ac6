//! Seeded random fault schedules against a simulated Galera cluster: crashes, graceful
//! stops, lost disks, unreachable agents and partitions, and careless operators: a node
//! restored from another cluster's backup (a second cluster history), a bootstrap by
//! hand from stale data (a Primary component behind its mark) or of the other history
//! beside the running cluster (a split brain). Planner runs are interleaved and their
//! steps applied to the model; the safety rules are checked after every step, and from
//! every calm state the planner must bring the whole cluster back (with an operator
//! answering what only an operator may decide, where the model needs one).
//!
//! A failure prints the seed and the step log; rerun one seed with
//! `GALLEY_SIM_SEED=1234 cargo test -p planner --test it simulation -- --nocapture`, or
//! search further with `GALLEY_SIM_SEEDS=20000`.
//!
//! The model knows a node's data by history and seqno only, as the planner does. Writes
//! taken by a Primary component bootstrapped by hand below the mark fork the history
//! under the same UUID; once that component passes the mark, a node holding the other
//! branch looks behind it to the model as to the planner (see ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};

use galera::{GraState, Position, ZERO_UUID};
use planner::{
    Action, AgentState, Blocked, Facts, HighWaterMarks, Mark, NodeView, Observation, Plan, Policy,
    Rule, Situation,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fixtures::{grastate, wsrep, UUID_A, UUID_B};

const SEEDS: u64 = 500;
const STEPS: usize = 200;
/// Ticks outside the Primary component (or joining) before the controller may call a
/// node stuck.
const PATIENCE: u32 = 3;

#[derive(Debug, Clone)]
struct Node {
    name: String,
    /// The data dir holds files (what the agent reports as `has_data`).
    has_data: bool,
    /// The last applied seqno of the node's history; None for an empty data dir or one
    /// whose SST was cut short (files, but no history).
    seqno: Option<i64>,
    /// The cluster history `seqno` belongs to: A, or B for data restored from another
    /// cluster.
    history: &'static str,
    running: bool,
    /// A member of the main Primary component.
    in_primary: bool,
    /// In the Primary component but not Synced yet.
    joining: bool,
    /// Runs a Primary component of its own, bootstrapped by hand beside the main one.
    rogue: bool,
    grastate: Option<GraState>,
    recovered: Option<Position>,
    agent_reachable: bool,
    /// Ticks spent running outside the Primary component, or joining.
    unhappy_ticks: u32,
    failed_starts: u32,
    backoff_ticks: u32,
    /// Corrupt data: every start fails until the node is rebuilt or an operator fixes it.
    broken: bool,
}

impl Node {
    fn new(index: usize) -> Node {
        Node {
            name: format!("node{}", index + 1),
            has_data: true,
            seqno: Some(1),
            history: UUID_A,
            running: true,
            in_primary: true,
            joining: false,
            rogue: false,
            grastate: Some(grastate(UUID_A, -1, false)),
            recovered: None,
            agent_reachable: true,
            unhappy_ticks: 0,
            failed_starts: 0,
            backoff_ticks: 0,
            broken: false,
        }
    }

    /// Serving: Synced in the main Primary component, or alone in a rogue one.
    fn synced(&self) -> bool {
        self.running && ((self.in_primary && !self.joining) || self.rogue)
    }

    fn history_uuid(&self) -> &'static str {
        if self.seqno.is_some() {
            self.history
        } else {
            ZERO_UUID
        }
    }

    fn forget_data(&mut self) {
        self.has_data = false;
        self.seqno = None;
        self.grastate = None;
        self.recovered = None;
    }
}

/// The model's `&'static` name of a planner UUID.
fn history(uuid: &str) -> &'static str {
    match uuid {
        UUID_A => UUID_A,
        UUID_B => UUID_B,
        other => panic!("no history {other} in the model"),
    }
}

fn letter(uuid: &str) -> &'static str {
    match uuid {
        UUID_A => "A",
        UUID_B => "B",
        _ => "0",
    }
}

#[derive(Debug, Clone)]
struct Cluster {
    nodes: Vec<Node>,
    /// The members of the main Primary component, when there is one.
    component: Option<BTreeSet<usize>>,
    /// While the network is split: the members of the component it broke.
    partition: Option<BTreeSet<usize>>,
    /// The highest seqno ever committed in each history (rules 4 and 10), as the
    /// controller's store holds it; lowered only by an operator's acceptance.
    marks: BTreeMap<&'static str, i64>,
    /// The history the cluster accepted.
    accepted: &'static str,
    /// Nodes whose data an operator gave up (`--rebuild`), until they are rebuilt.
    rebuild: BTreeSet<usize>,
    policy: Policy,
    /// Start attempts may fail (the server exits by itself).
    starts_may_fail: bool,
    log: Vec<String>,
    /// Applied steps by verb (`bootstrap`, `forced bootstrap`, ...), to show coverage.
    applied: BTreeMap<&'static str, usize>,
    /// The rules of applied steps, refusals and notes, to show which rules the
    /// schedules reach.
    rules: BTreeMap<String, usize>,
}

/// A broken invariant, with the model state at the time.
type Violation = String;

impl Cluster {
    fn new(node_count: usize, policy: Policy) -> Cluster {
        Cluster {
            nodes: (0..node_count).map(Node::new).collect(),
            component: Some((0..node_count).collect()),
            partition: None,
            marks: BTreeMap::from([(UUID_A, 1)]),
            accepted: UUID_A,
            rebuild: BTreeSet::new(),
            policy,
            starts_may_fail: true,
            log: Vec::new(),
            applied: BTreeMap::new(),
            rules: BTreeMap::new(),
        }
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn mark(&self, history: &str) -> i64 {
        self.marks.get(history).copied().unwrap_or(-1)
    }

    fn raise_mark(&mut self, history: &'static str, seqno: i64) {
        let mark = self.marks.entry(history).or_insert(seqno);
        *mark = (*mark).max(seqno);
    }

    fn primary_seqno(&self) -> Option<i64> {
        let members = self.component.as_ref()?;
        members
            .iter()
            .filter_map(|&member| self.nodes[member].seqno)
            .max()
    }

    fn primary_history(&self) -> Option<&'static str> {
        let members = self.component.as_ref()?;
        members.first().map(|&member| self.nodes[member].history)
    }

    fn rogue(&self) -> Option<usize> {
        self.nodes.iter().position(|node| node.rogue)
    }

    /// What a state transfer from the main Primary component would destroy of this
    /// node's own data (rule 8), in words; None when nothing.
    fn loss_by_state_transfer(&self, index: usize) -> Option<String> {
        self.loss_by_state_transfer_from(index, self.primary_history()?, self.primary_seqno()?)
    }

    fn loss_by_state_transfer_from(
        &self,
        index: usize,
        history: &'static str,
        primary: i64,
    ) -> Option<String> {
        let node = &self.nodes[index];
        let seqno = node.seqno?;
        if node.history != history {
            Some(format!(
                "it holds history {} and the Primary runs {}",
                letter(node.history),
                letter(history)
            ))
        } else if seqno > primary {
            Some(format!("it is at seqno {seqno}, the Primary at {primary}"))
        } else {
            None
        }
    }

    fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let state = match (node.running, node.in_primary, node.joining, node.rogue) {
                    (false, ..) => "stopped",
                    (true, _, _, true) => "rogue-primary",
                    (true, true, false, _) => "synced",
                    (true, true, true, _) => "joining",
                    (true, false, ..) => "nonprimary",
                };
                let seqno = node
                    .seqno
                    .map_or("-".to_owned(), |s| format!("{}:{s}", letter(node.history)));
                let saved = node.grastate.as_ref().map_or("none".to_owned(), |g| {
                    format!(
                        "{}{}",
                        g.seqno,
                        if g.safe_to_bootstrap { " safe" } else { "" }
                    )
                });
                format!(
                    "{} {state} seqno={seqno} data={} grastate={saved}{}{}{}",
                    node.name,
                    node.has_data,
                    if node.agent_reachable {
                        ""
                    } else {
                        " unreachable"
                    },
                    if node.failed_starts > 0 {
                        format!(" failed={}", node.failed_starts)
                    } else {
                        String::new()
                    },
                    if self.rebuild.contains(&index) {
                        " given-up"
                    } else {
                        ""
                    },
                )
            })
            .collect();
        let marks: Vec<String> = self
            .marks
            .iter()
            .map(|(history, seqno)| format!("{}:{seqno}", letter(history)))
            .collect();
        format!(
            "[{}] component={:?} partition={:?} marks={} accepted={}",
            nodes.join(" | "),
            self.component,
            self.partition,
            marks.join(","),
            letter(self.accepted)
        )
    }

    /// Time passes: joiners may finish, counters move.
    fn tick(&mut self, rng: &mut StdRng, joiners_always_finish: bool) {
        for node in &mut self.nodes {
            if node.joining && (joiners_always_finish || rng.gen_bool(0.6)) {
                node.joining = false;
            }
            if node.running && !node.synced() {
                node.unhappy_ticks += 1;
            } else {
                node.unhappy_ticks = 0;
            }
            node.backoff_ticks = node.backoff_ticks.saturating_sub(1);
        }
    }

    /// Clients write through every Primary component, a rogue one too.
    fn write(&mut self) {
        let members: Vec<usize> = self
            .component
            .iter()
            .flatten()
            .copied()
            .chain(self.rogue())
            .collect();
        for member in members {
            let node = &mut self.nodes[member];
            let seqno = node
                .seqno
                .expect("a member of a Primary component has a history")
                + 1;
            node.seqno = Some(seqno);
            let history = node.history;
            self.raise_mark(history, seqno);
        }
    }

    /// Leaves the Primary component; by a crash, the survivors keep it only while they
    /// are a majority of the component they were in (Galera's quorum). Returns whether it
    /// was the last one out, and the joiners left without a donor (their SST fails).
    fn leave_component(&mut self, index: usize, crashed: bool) -> (bool, Vec<usize>) {
        let node = &mut self.nodes[index];
        let was_member = node.in_primary;
        node.in_primary = false;
        node.joining = false;
        node.rogue = false;
        let Some(members) = self.component.as_mut() else {
            return (false, Vec::new());
        };
        if !was_member {
            return (false, Vec::new());
        }
        let before = members.len();
        members.remove(&index);
        let last_out = members.is_empty();
        let orphans: Vec<usize> = if members.iter().all(|&m| self.nodes[m].joining) {
            members.iter().copied().collect()
        } else {
            Vec::new()
        };
        if last_out || (crashed && members.len() * 2 <= before) {
            for member in std::mem::take(members) {
                self.nodes[member].in_primary = false;
                self.nodes[member].joining = false;
            }
            self.component = None;
            // A rogue component bootstrapped by hand is then the only one.
            if let Some(rogue) = self.rogue() {
                let node = &mut self.nodes[rogue];
                node.rogue = false;
                node.in_primary = true;
                self.component = Some(BTreeSet::from([rogue]));
                self.log.push(format!(
                    "    {}'s own Primary component is the only one left",
                    self.nodes[rogue].name
                ));
            }
        }
        (last_out, orphans)
    }

    fn kill(&mut self, index: usize, rng: &mut StdRng) {
        if !self.nodes[index].running {
            return;
        }
        let was_joining = self.nodes[index].joining;
        let (_, orphans) = self.leave_component(index, true);
        let node = &mut self.nodes[index];
        node.running = false;
        if was_joining && rng.gen_bool(0.3) {
            // Killed during its SST: files, but no usable history.
            node.seqno = None;
        }
        node.grastate = Some(grastate(node.history_uuid(), -1, false));
        node.recovered = None;
        self.abort_orphans(orphans, rng);
    }

    /// Joiners whose only donors left abort their SST and exit.
    fn abort_orphans(&mut self, orphans: Vec<usize>, rng: &mut StdRng) {
        for orphan in orphans {
            if self.nodes[orphan].running {
                self.nodes[orphan].joining = true;
                self.log.push(format!(
                    "    {} loses its donor and exits",
                    self.nodes[orphan].name
                ));
                self.kill(orphan, rng);
            }
        }
    }

    fn graceful_stop(&mut self, index: usize, rng: &mut StdRng) {
        if !self.nodes[index].running {
            return;
        }
        let (last_out, orphans) = self.leave_component(index, false);
        let node = &mut self.nodes[index];
        node.running = false;
        node.grastate = Some(grastate(
            node.history_uuid(),
            node.seqno.unwrap_or(-1),
            last_out,
        ));
        node.recovered = None;
        self.abort_orphans(orphans, rng);
    }

    /// Starts the server: it joins the Primary component if there is one (taking its
    /// history), else runs outside any. Returns false when the start failed.
    fn start(&mut self, index: usize, rng: &mut StdRng) -> bool {
        if self.nodes[index].broken || (self.starts_may_fail && rng.gen_bool(0.08)) {
            let node = &mut self.nodes[index];
            node.failed_starts += 1;
            node.backoff_ticks = 2;
            return false;
        }
        let primary_seqno = self.primary_seqno();
        let primary_history = self.primary_history();
        let node = &mut self.nodes[index];
        node.running = true;
        node.failed_starts = 0;
        node.recovered = None;
        node.unhappy_ticks = 0;
        if let (Some(members), Some(seqno), Some(history)) =
            (self.component.as_mut(), primary_seqno, primary_history)
        {
            members.insert(index);
            node.in_primary = true;
            node.joining = true;
            node.has_data = true;
            node.seqno = Some(seqno);
            node.history = history;
        }
        node.grastate = Some(grastate(node.history_uuid(), -1, false));
        true
    }

    /// An operator runs `mariadbd --wsrep-new-cluster` on a stopped node by hand: with no
    /// Primary component it becomes the cluster, from whatever data it has (perhaps
    /// stale); beside a Primary component of another history it is a split brain.
    fn bootstrap_by_hand(&mut self, index: usize) -> bool {
        let other_history = self
            .primary_history()
            .is_some_and(|history| history != self.nodes[index].history);
        // One rogue component at most: two of one history are a split brain that no
        // UUID tells apart.
        if (self.component.is_some() && !other_history) || self.rogue().is_some() {
            return false;
        }
        let node = &mut self.nodes[index];
        node.running = true;
        node.joining = false;
        node.unhappy_ticks = 0;
        node.recovered = None;
        node.grastate = Some(grastate(node.history_uuid(), -1, false));
        if self.component.is_some() {
            node.rogue = true;
        } else {
            node.in_primary = true;
            self.component = Some(BTreeSet::from([index]));
        }
        self.rebuild.remove(&index);
        true
    }

    /// The nodes whose data an operator gives up so that the cluster can go on: stopped
    /// nodes of another history than the one kept, or ahead of the running Primary.
    fn data_to_give_up(&self) -> Vec<usize> {
        let held = |history: &str| {
            self.nodes
                .iter()
                .enumerate()
                .filter(|(index, node)| {
                    node.seqno.is_some() && node.history == history && !self.rebuild.contains(index)
                })
                .count()
        };
        let kept = self
            .primary_history()
            .unwrap_or(if held(self.accepted) > 0 {
                self.accepted
            } else if held(UUID_B) > held(UUID_A) {
                UUID_B
            } else {
                UUID_A
            });
        (0..self.nodes.len())
            .filter(|&index| {
                let node = &self.nodes[index];
                !node.running
                    && node.seqno.is_some()
                    && (node.history != kept || self.loss_by_state_transfer(index).is_some())
            })
            .collect()
    }

    /// What only an operator may decide is needed: two histories, a split brain, a
    /// Primary behind its mark or of another history, a node ahead of it, data given up,
    /// or the newest writes gone (a node restored over them).
    fn needs_operator(&self) -> bool {
        let behind = self.primary_history().is_some_and(|history| {
            history != self.accepted || self.primary_seqno().unwrap_or(-1) < self.mark(history)
        });
        let newest = self
            .nodes
            .iter()
            .filter(|node| node.history == self.accepted)
            .filter_map(|node| node.seqno)
            .max();
        self.rogue().is_some()
            || behind
            || newest.unwrap_or(-1) < self.mark(self.accepted)
            || !self.rebuild.is_empty()
            || self
                .nodes
                .iter()
                .any(|node| node.seqno.is_some() && node.history != self.accepted)
            || (0..self.nodes.len()).any(|index| {
                !self.nodes[index].in_primary && self.loss_by_state_transfer(index).is_some()
            })
    }

    /// Every node Synced in the one Primary component, of the accepted history, at its
    /// mark.
    fn settled(&self) -> bool {
        self.nodes
            .iter()
            .all(|node| node.running && node.in_primary && !node.joining)
            && self.primary_history() == Some(self.accepted)
            && self.primary_seqno().unwrap_or(-1) >= self.mark(self.accepted)
    }

    fn observe(&self, rng: &mut StdRng, always_stuck: bool, force: bool) -> Observation {
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let agent = if !node.agent_reachable {
                    AgentState::Unreachable
                } else {
                    let local_state = match (node.in_primary || node.rogue, node.joining) {
                        (true, true) => [1, 3][rng.gen_range(0..2)],
                        (true, false) => [4, 4, 2][rng.gen_range(0..3)],
                        // Outside a Primary component a node may still show Synced.
                        (false, _) => [0, 4][rng.gen_range(0..2)],
                    };
                    let unhappy = node.running && !node.synced() && node.unhappy_ticks >= PATIENCE;
                    let status = node.running.then(|| {
                        let mut status = wsrep(
                            node.in_primary || node.rogue,
                            local_state,
                            node.seqno.unwrap_or(-1),
                        );
                        status.cluster_state_uuid = node.history_uuid().to_owned();
                        status
                    });
                    AgentState::Reported(Box::new(Facts {
                        running: node.running,
                        wsrep: status,
                        has_data: node.has_data,
                        grastate: node.grastate.clone(),
                        recovered: node.recovered.clone(),
                        stuck: node.running
                            && !node.synced()
                            && (always_stuck || (unhappy && rng.gen_bool(0.5))),
                        failed_starts: node.failed_starts,
                        backing_off: node.backoff_ticks > 0,
                        set_aside: Vec::new(),
                        stale_view: None,
                    }))
                };
                NodeView {
                    name: node.name.clone(),
                    priority: index as u32,
                    agent,
                }
            })
            .collect();
        let mark = |history: &str, seqno: &i64| Mark {
            uuid: history.to_owned(),
            seqno: *seqno,
        };
        Observation {
            nodes,
            marks: HighWaterMarks {
                accepted: Some(mark(self.accepted, &self.mark(self.accepted))),
                others: self
                    .marks
                    .iter()
                    .filter(|(history, _)| **history != self.accepted)
                    .map(|(history, seqno)| mark(history, seqno))
                    .collect(),
            },
            policy: self.policy.clone(),
            force,
            // The nodes whose data the simulated operator gave up, and those whose disk
            // it knows it lost (as an operator says with `--rebuild`).
            operator: planner::Operator {
                create_new: false,
                rebuild: self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(index, node)| self.rebuild.contains(index) || !node.has_data)
                    .map(|(_, node)| node.name.clone())
                    .collect(),
            },
            arbitrators: 0,
        }
    }

    /// Plans from a fresh observation, checks the plan against the model, and applies
    /// the runnable steps, checking the safety invariants before and after each.
    fn run_planner(
        &mut self,
        rng: &mut StdRng,
        always_stuck: bool,
        force: bool,
    ) -> Result<Plan, Violation> {
        let observation = self.observe(rng, always_stuck, force);
        let plan = planner::plan(&observation);
        let names: Vec<&str> = self.nodes.iter().map(|node| node.name.as_str()).collect();
        let rendered = crate::fixtures::render(&plan, &names);
        self.log.push(format!(
            "  plan{}: {rendered}",
            if force { " (force)" } else { "" }
        ));
        // (e) No step targets a node whose agent does not answer.
        for step in &plan.steps {
            if !self.nodes[self.index(step.action.node())].agent_reachable {
                return Err(format!(
                    "(e) `{}` targets a node whose agent is unreachable",
                    step.action
                ));
            }
        }
        if plan
            .steps
            .iter()
            .filter(|step| matches!(step.action, Action::Bootstrap { .. }))
            .count()
            > 1
        {
            return Err("(b) two bootstraps in one plan".to_owned());
        }
        self.check_plan(&plan, force)?;
        for blocked in plan.blocked.iter().chain(&plan.notes) {
            let (Blocked::Waiting { rule, .. } | Blocked::Refused { rule, .. }) = blocked;
            *self.rules.entry(format!("{rule:?}")).or_default() += 1;
        }
        if let Some(acceptance) = plan
            .acceptance
            .as_ref()
            .filter(|a| a.after_bootstrap.is_none())
        {
            // (k) What is accepted is what runs.
            let running = (self.primary_history(), self.primary_seqno());
            if (
                Some(history(&acceptance.mark.uuid)),
                Some(acceptance.mark.seqno),
            ) != running
            {
                return Err(format!(
                    "(k) accepting {} while the Primary runs {running:?}",
                    acceptance.mark
                ));
            }
            self.accept(&acceptance.mark);
            *self.applied.entry("accept").or_default() += 1;
        }
        for step in plan.runnable() {
            if step.needs_confirmation {
                continue;
            }
            let forced = self.apply(&step.action, rng, force)?;
            if let Action::Bootstrap { node, .. } = &step.action {
                match &plan.acceptance {
                    Some(acceptance) if acceptance.after_bootstrap.as_ref() == Some(node) => {
                        let index = self.index(node);
                        let own = (self.nodes[index].history, self.nodes[index].seqno);
                        if (history(&acceptance.mark.uuid), Some(acceptance.mark.seqno)) != own {
                            return Err(format!(
                                "(k) accepting {} after bootstrapping {node} at {own:?}",
                                acceptance.mark
                            ));
                        }
                        self.accept(&acceptance.mark);
                        *self.applied.entry("accept after bootstrap").or_default() += 1;
                    }
                    _ if forced => {
                        return Err(format!(
                            "(k) `{}` was forced but the plan records no acceptance",
                            step.action
                        ))
                    }
                    _ => {}
                }
            }
            *self.applied.entry(verb(step, force)).or_default() += 1;
            *self.rules.entry(format!("{:?}", step.rule)).or_default() += 1;
            self.log
                .push(format!("  applied {}: {}", step.action, self.describe()));
            self.check_model()?;
        }
        Ok(plan)
    }

    /// The operator's acceptance recorded: the history is the cluster's, at this mark.
    fn accept(&mut self, mark: &Mark) {
        let accepted = history(&mark.uuid);
        self.accepted = accepted;
        self.marks.insert(accepted, mark.seqno);
        self.log
            .push(format!("  accepted {}:{}", letter(accepted), mark.seqno));
    }

    /// Rules 9 and 10 on the plan itself, against what the model knows.
    fn check_plan(&self, plan: &Plan, force: bool) -> Result<(), Violation> {
        let visible = |index: usize| self.nodes[index].agent_reachable;
        let rogue_visible = self.rogue().is_some_and(visible);
        let main_visible = self
            .component
            .iter()
            .flatten()
            .any(|&member| visible(member));
        // (h) Rule 9: two histories running as Primary is a split brain: said so, and
        // nothing is started into either side.
        if rogue_visible && main_visible {
            if plan.situation != Situation::SplitBrain {
                return Err(format!("(h) a split brain planned as {:?}", plan.situation));
            }
            if !plan.steps.is_empty() {
                return Err("(h) steps planned during a split brain".to_owned());
            }
            return Ok(());
        }
        let refuses = |rule: Rule| {
            plan.blocked
                .iter()
                .chain(&plan.notes)
                .any(|b| matches!(b, Blocked::Refused { rule: r, .. } if *r == rule))
        };
        if let (true, Some(history), Some(seqno)) =
            (main_visible, self.primary_history(), self.primary_seqno())
        {
            // (i) Rule 10: a Primary of another history than the accepted one, or behind
            // its mark, is never healthy and always refused, unless the operator accepts
            // it (the plan then records the acceptance).
            if !force {
                if history != self.accepted && !refuses(Rule::AcceptedHistory) {
                    return Err(format!(
                        "(i) the Primary runs history {} but {} is accepted, and the plan does not say so",
                        letter(history),
                        letter(self.accepted)
                    ));
                }
                if seqno < self.mark(history) && !refuses(Rule::PrimaryBehindMark) {
                    return Err(format!(
                        "(i) the Primary is at seqno {seqno}, below its mark {}, and the plan does not say so",
                        self.mark(history)
                    ));
                }
            }
        }
        if plan.situation == Situation::Healthy
            && (self.rogue().is_some()
                || !self
                    .nodes
                    .iter()
                    .all(|n| n.running && n.in_primary && !n.joining))
        {
            return Err("(i) healthy while not every node is Synced in one component".to_owned());
        }
        Ok(())
    }

    /// Applies one step; returns whether it needed the operator's force (a bootstrap
    /// below its history's mark or of another history than the accepted one).
    fn apply(&mut self, action: &Action, rng: &mut StdRng, force: bool) -> Result<bool, Violation> {
        let index = self.index(action.node());
        let stopped = !self.nodes[index].running;
        match action {
            Action::CreateCluster { .. } => {
                return Err(format!(
                    "`{action}`: the simulated cluster always has history and never asks for a new one"
                ));
            }
            Action::Start { .. } | Action::Restart { .. } | Action::WipeAndStart { .. } => {
                if stopped == matches!(action, Action::Restart { .. }) {
                    return Err(format!(
                        "`{action}` on a {} node",
                        if stopped { "stopped" } else { "running" }
                    ));
                }
                // (g) Rule 8: no state transfer over data the Primary does not hold,
                // unless an operator gave that data up and it is moved aside...
                let given_up =
                    matches!(action, Action::WipeAndStart { .. }) && self.rebuild.contains(&index);
                // When every agent of the main component is silent, the planner sees only
                // the rogue one and sends its joiners there.
                let main_hidden = self
                    .component
                    .iter()
                    .flatten()
                    .all(|&member| !self.nodes[member].agent_reachable);
                let seen = match self.rogue() {
                    Some(rogue) if main_hidden => {
                        let node = &self.nodes[rogue];
                        node.seqno.map(|seqno| (node.history, seqno))
                    }
                    _ => self.primary_history().zip(self.primary_seqno()),
                };
                let loss = seen.and_then(|(history, seqno)| {
                    self.loss_by_state_transfer_from(index, history, seqno)
                });
                if let Some(loss) = loss.filter(|_| !given_up) {
                    return Err(format!(
                        "(g) `{action}` overwrites newer or other data: {loss}"
                    ));
                }
                // ... and no start of data whose position nobody read.
                let node = &self.nodes[index];
                let unknown = node.has_data
                    && node.recovered.is_none()
                    && node
                        .grastate
                        .as_ref()
                        .is_none_or(|g| g.position().is_none());
                if stopped && unknown && !given_up {
                    return Err(format!(
                        "(g) `{action}` of a node whose position was never read"
                    ));
                }
                if !stopped {
                    self.graceful_stop(index, rng);
                }
                if self.rogue().is_some() && main_hidden && self.component.is_some() {
                    // Both components answer on the network, and which one a joiner
                    // reaches is undefined: the model lets such a start fail.
                    let node = &mut self.nodes[index];
                    node.failed_starts += 1;
                    node.backoff_ticks = 2;
                    return Ok(false);
                }
                // (f) One joiner at a time: nobody else the planner can see is running
                // without being Synced, except a node outside the Primary component that
                // rule 8 keeps out of it (it is not restarted, so it never joins). A
                // stuck node is restarted whatever else runs.
                let restart = !stopped;
                if let Some(other) = self.nodes.iter().enumerate().find(|(i, n)| {
                    !restart
                        && n.agent_reachable
                        && n.running
                        && !n.synced()
                        && (n.in_primary || self.loss_by_state_transfer(*i).is_none())
                }) {
                    let other = other.1;
                    return Err(format!(
                        "(f) `{action}` while {} runs but is not Synced",
                        other.name
                    ));
                }
                if matches!(action, Action::WipeAndStart { .. }) {
                    let node = &mut self.nodes[index];
                    node.forget_data();
                    node.broken = false;
                    self.rebuild.remove(&index);
                }
                self.start(index, rng);
            }
            Action::Stop { .. } => {
                if stopped {
                    return Err(format!("`{action}` on a stopped node"));
                }
                self.graceful_stop(index, rng);
            }
            Action::Recover { .. } => {
                if !stopped {
                    return Err(format!("`{action}` on a running node"));
                }
                let node = &mut self.nodes[index];
                node.recovered = Some(Position {
                    uuid: node.history_uuid().to_owned(),
                    seqno: node.seqno.unwrap_or(-1),
                });
            }
            Action::ClearBootstrapFlag { .. } => {
                if !stopped {
                    return Err(format!("`{action}` on a running node"));
                }
                if let Some(grastate) = self.nodes[index].grastate.as_mut() {
                    grastate.safe_to_bootstrap = false;
                }
            }
            Action::Bootstrap { seqno, .. } => {
                // (a) Never while any node runs.
                if let Some(running) = self.nodes.iter().find(|n| n.running) {
                    return Err(format!("(a) `{action}` while {} runs", running.name));
                }
                // (b) Never a second Primary component.
                if self.component.is_some() {
                    return Err(format!("(b) `{action}` while a Primary component exists"));
                }
                // (c) The most advanced node of its history, at its real position, and
                // no other node holds another history that it would overwrite.
                let own = self.nodes[index].seqno;
                let own_history = self.nodes[index].history;
                let kept: Vec<&Node> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| n.seqno.is_some() && !self.rebuild.contains(i))
                    .map(|(_, n)| n)
                    .collect();
                let highest = kept
                    .iter()
                    .filter(|n| n.history == own_history)
                    .filter_map(|n| n.seqno)
                    .max();
                if own != Some(*seqno) || own != highest {
                    return Err(format!(
                        "(c) `{action}`: its seqno is {own:?}, the highest is {highest:?}"
                    ));
                }
                if let Some(other) = kept.iter().find(|n| n.history != own_history) {
                    return Err(format!(
                        "(c) `{action}` of history {} while {} holds {}",
                        letter(own_history),
                        other.name,
                        letter(other.history)
                    ));
                }
                // (d) Never below its history's mark, (j) never another history than
                // the accepted one, unless forced.
                let below = *seqno < self.mark(own_history);
                let other_history = own_history != self.accepted;
                if (below || other_history) && !force {
                    return Err(format!(
                        "(d) `{action}` of history {} below its mark {} or other than the accepted {}",
                        letter(own_history),
                        self.mark(own_history),
                        letter(self.accepted)
                    ));
                }
                let node = &mut self.nodes[index];
                node.running = true;
                node.in_primary = true;
                node.joining = false;
                node.failed_starts = 0;
                node.unhappy_ticks = 0;
                node.recovered = None;
                node.grastate = Some(grastate(own_history, -1, false));
                self.component = Some(BTreeSet::from([index]));
                self.partition = None;
                return Ok(below || other_history);
            }
        }
        Ok(false)
    }

    /// The model's own consistency, and (b): at most one main Primary component, whose
    /// members agree.
    fn check_model(&self) -> Result<(), Violation> {
        for (index, node) in self.nodes.iter().enumerate() {
            let member = self
                .component
                .as_ref()
                .is_some_and(|members| members.contains(&index));
            if node.in_primary != member
                || (node.in_primary && !node.running)
                || (node.rogue && (node.in_primary || !node.running))
            {
                return Err(format!(
                    "(b) {} is in_primary={} rogue={} but member={member}",
                    node.name, node.in_primary, node.rogue
                ));
            }
        }
        let positions: BTreeSet<(&str, Option<i64>)> = self
            .component
            .iter()
            .flatten()
            .map(|&member| (self.nodes[member].history, self.nodes[member].seqno))
            .collect();
        if positions.len() > 1 {
            return Err(format!(
                "(b) members of the Primary component disagree: {positions:?}"
            ));
        }
        Ok(())
    }

    fn partition_network(&mut self) {
        let Some(members) = self.component.take() else {
            return;
        };
        for &member in &members {
            self.nodes[member].in_primary = false;
            self.nodes[member].joining = false;
        }
        self.partition = Some(members);
    }

    /// The network heals: pc.recovery re-forms the component when a majority of its last
    /// members still runs outside any component.
    fn heal_network(&mut self) -> Result<(), Violation> {
        let Some(members) = self.partition.take() else {
            return Ok(());
        };
        let survivors: BTreeSet<usize> = members
            .iter()
            .copied()
            .filter(|&m| self.nodes[m].running && !self.nodes[m].in_primary)
            .collect();
        if survivors.len() * 2 <= members.len() {
            return Ok(());
        }
        if self.component.is_some() {
            return Err("(b) the partition heals into a second Primary component".to_owned());
        }
        let seqno = survivors.iter().filter_map(|&m| self.nodes[m].seqno).max();
        for &survivor in &survivors {
            let node = &mut self.nodes[survivor];
            node.in_primary = true;
            node.seqno = seqno;
        }
        self.component = Some(survivors);
        Ok(())
    }

    fn random_node(&self, rng: &mut StdRng, filter: impl Fn(&Node) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| filter(&self.nodes[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())])
    }

    /// An operator answers a refusal that only an operator can resolve, as they would:
    /// gives up the data that blocks the cluster, or stops the side of a split brain
    /// whose writes are given up.
    fn give_up_blocking_data(&mut self, why: &str) {
        for index in self.data_to_give_up() {
            if self.rebuild.insert(index) {
                self.log.push(format!(
                    "  an operator gives up the data of {} ({why})",
                    self.nodes[index].name
                ));
            }
        }
    }

    /// Stops what runs outside the Primary component with data it lacks: the side of a
    /// split brain whose writes are given up, and a node that rule 8 keeps from a
    /// restart.
    fn stop_outsiders(&mut self, rng: &mut StdRng) {
        if let Some(rogue) = self.rogue() {
            self.log.push(format!(
                "  an operator stops {}, the side of the split brain whose writes are given up",
                self.nodes[rogue].name
            ));
            self.graceful_stop(rogue, rng);
        }
        for index in 0..self.nodes.len() {
            let node = &self.nodes[index];
            if node.running && !node.in_primary && self.loss_by_state_transfer(index).is_some() {
                self.log.push(format!(
                    "  an operator stops {}, which rule 8 keeps out of the Primary component",
                    node.name
                ));
                self.graceful_stop(index, rng);
            }
        }
    }
}

fn verb(step: &planner::Step, force: bool) -> &'static str {
    match &step.action {
        Action::Start { .. } => "start",
        Action::Stop { .. } => "stop",
        Action::Restart { .. } => "restart",
        Action::Recover { .. } if step.rule == Rule::PositionBeforeJoin => "recover before join",
        Action::Recover { .. } => "recover",
        Action::ClearBootstrapFlag { .. } => "clear-bootstrap-flag",
        Action::Bootstrap { .. } if force => "forced bootstrap",
        Action::Bootstrap { .. } => "bootstrap",
        Action::WipeAndStart { .. } if step.rule == Rule::RebuildOnRequest => "rebuild",
        Action::WipeAndStart { .. } => "wipe-and-start",
        Action::CreateCluster { .. } => "create-cluster",
    }
}

/// Liveness: from a calm copy of the cluster (every agent answers, the network is whole,
/// an operator looked at the failed starts), repeated planner runs with `stuck` set bring
/// every node into the Primary component, Synced. Where the model needs an operator's
/// decision (two histories, a split brain, a Primary behind its mark), the operator
/// decides as the refusals tell them: stops the rogue side, gives up the blocking data,
/// and accepts the loss (`force`). Skipped when a data dir is empty.
fn check_liveness(cluster: &Cluster, rng: &mut StdRng) -> Result<bool, Violation> {
    let mut calm = cluster.clone();
    calm.starts_may_fail = false;
    calm.log.push("liveness check from a calm copy:".to_owned());
    for node in &mut calm.nodes {
        node.agent_reachable = true;
        node.failed_starts = 0;
        node.backoff_ticks = 0;
        node.broken = false;
    }
    calm.heal_network()?;
    if calm.nodes.iter().any(|node| !node.has_data) {
        return Ok(false);
    }
    let operator = calm.needs_operator();
    let bound = 6 * calm.nodes.len() + 8;
    for _ in 0..bound {
        calm.tick(rng, true);
        if calm.settled() {
            return Ok(true);
        }
        if operator {
            calm.stop_outsiders(rng);
            calm.give_up_blocking_data("liveness");
        }
        let plan = calm
            .run_planner(rng, true, operator)
            .map_err(|violation| format!("{violation}\n{}", calm.log.join("\n")))?;
        if let Some(Blocked::Refused { rule, reason }) = &plan.blocked {
            return Err(format!(
                "liveness: refused ({rule:?}): {reason}\n{}",
                calm.log.join("\n")
            ));
        }
    }
    calm.tick(rng, true);
    if calm.settled() {
        return Ok(true);
    }
    Err(format!(
        "liveness: not settled after {bound} planner runs: {}\n{}",
        calm.describe(),
        calm.log.join("\n")
    ))
}

struct Outcome {
    planner_runs: usize,
    liveness_checks: usize,
    /// Steps applied in the random schedule (not in the liveness checks), by verb.
    applied: BTreeMap<&'static str, usize>,
    /// Rules of applied steps, refusals and notes in the random schedule.
    rules: BTreeMap<String, usize>,
}

fn simulate(seed: u64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let node_count = if rng.gen_bool(0.25) { 5 } else { 3 };
    let policy = Policy {
        allow_wipe: rng.gen_bool(0.5),
        ..Policy::default()
    };
    let mut cluster = Cluster::new(node_count, policy);
    let mut outcome = Outcome {
        planner_runs: 0,
        liveness_checks: 0,
        applied: BTreeMap::new(),
        rules: BTreeMap::new(),
    };
    let mut operator_forces = false;
    let fail = |cluster: &Cluster, step: usize, violation: &str| -> ! {
        panic!(
            "seed {seed}: step {step}: {violation}\nstep log:\n{}\nstate: {}",
            cluster.log.join("\n"),
            cluster.describe()
        )
    };
    for step in 0..STEPS {
        cluster.tick(&mut rng, false);
        let event = rng.gen_range(0..100);
        let result = match event {
            0..=19 => {
                cluster.log.push(format!("{step}: write"));
                cluster.write();
                Ok(())
            }
            20..=27 => {
                if let Some(index) = cluster.random_node(&mut rng, |n| n.running) {
                    cluster
                        .log
                        .push(format!("{step}: kill -9 {}", cluster.nodes[index].name));
                    cluster.kill(index, &mut rng);
                }
                Ok(())
            }
            28..=29 => {
                cluster.log.push(format!("{step}: kill -9 all"));
                for index in 0..cluster.nodes.len() {
                    cluster.kill(index, &mut rng);
                }
                Ok(())
            }
            30..=35 => {
                if let Some(index) = cluster.random_node(&mut rng, |n| n.running) {
                    cluster
                        .log
                        .push(format!("{step}: stop {}", cluster.nodes[index].name));
                    cluster.graceful_stop(index, &mut rng);
                }
                Ok(())
            }
            36..=37 => {
                cluster.log.push(format!("{step}: stop all"));
                let mut order: Vec<usize> = (0..cluster.nodes.len()).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.gen_range(0..=i));
                }
                for index in order {
                    cluster.graceful_stop(index, &mut rng);
                }
                Ok(())
            }
            38..=39 => {
                if let Some(index) = cluster.random_node(&mut rng, |n| !n.running && n.has_data) {
                    cluster.log.push(format!(
                        "{step}: lose the data dir of {}",
                        cluster.nodes[index].name
                    ));
                    cluster.nodes[index].forget_data();
                }
                Ok(())
            }
            40..=44 => {
                let index = rng.gen_range(0..cluster.nodes.len());
                let node = &mut cluster.nodes[index];
                // Unreachable agents come back sooner than they go away.
                if !node.agent_reachable || rng.gen_bool(0.4) {
                    node.agent_reachable = !node.agent_reachable;
                    let now = if node.agent_reachable {
                        "reachable"
                    } else {
                        "unreachable"
                    };
                    cluster
                        .log
                        .push(format!("{step}: the agent of {} becomes {now}", node.name));
                }
                Ok(())
            }
            45..=46 => {
                // (A split brain of a rogue component is not also partitioned.)
                if cluster.component.is_some() && cluster.rogue().is_none() {
                    cluster.log.push(format!("{step}: network partition"));
                    cluster.partition_network();
                }
                Ok(())
            }
            47..=50 => {
                if cluster.partition.is_some() {
                    cluster.log.push(format!("{step}: the network heals"));
                }
                cluster.heal_network()
            }
            51 => {
                if let Some(index) =
                    cluster.random_node(&mut rng, |n| n.failed_starts > 0 || n.broken)
                {
                    cluster.log.push(format!(
                        "{step}: an operator fixes {}",
                        cluster.nodes[index].name
                    ));
                    cluster.nodes[index].failed_starts = 0;
                    cluster.nodes[index].broken = false;
                }
                Ok(())
            }
            52 => {
                if let Some(index) = cluster.random_node(&mut rng, |n| !n.running && n.has_data) {
                    cluster.log.push(format!(
                        "{step}: the data of {} gets corrupt",
                        cluster.nodes[index].name
                    ));
                    cluster.nodes[index].broken = true;
                }
                Ok(())
            }
            53 => {
                // Operators edit grastate.dat by hand, as the Galera docs tell them to.
                if let Some(index) =
                    cluster.random_node(&mut rng, |n| !n.running && n.grastate.is_some())
                {
                    cluster.log.push(format!(
                        "{step}: an operator sets safe_to_bootstrap on {}",
                        cluster.nodes[index].name
                    ));
                    if let Some(grastate) = cluster.nodes[index].grastate.as_mut() {
                        grastate.safe_to_bootstrap = true;
                    }
                }
                Ok(())
            }
            54 => {
                // A second cluster history: a node restored from another cluster's
                // backup, stopped cleanly or not.
                if let Some(index) = cluster.random_node(&mut rng, |n| !n.running) {
                    let seqno = rng.gen_range(1..60);
                    let clean = rng.gen_bool(0.5);
                    cluster.log.push(format!(
                        "{step}: an operator restores {} from another cluster (B:{seqno}, {})",
                        cluster.nodes[index].name,
                        if clean { "clean" } else { "crashed" }
                    ));
                    let node = &mut cluster.nodes[index];
                    node.has_data = true;
                    node.seqno = Some(seqno);
                    node.history = UUID_B;
                    node.grastate = Some(grastate(UUID_B, if clean { seqno } else { -1 }, false));
                    node.recovered = None;
                    node.broken = false;
                    cluster.raise_mark(UUID_B, seqno);
                    cluster.rebuild.remove(&index);
                }
                Ok(())
            }
            55 => {
                // A bootstrap by hand, outside galley: from stale data (a Primary behind
                // its mark), of the other history (a Primary of another history than the
                // accepted one), or beside the running cluster (a split brain).
                if cluster.partition.is_none() {
                    // Beside a running cluster, only another history's node makes a
                    // second component that rule 9 can tell apart.
                    let running = cluster.primary_history();
                    if let Some(index) = cluster.random_node(&mut rng, |n| {
                        !n.running
                            && n.seqno.is_some()
                            && !n.broken
                            && running.is_none_or(|history| n.history != history)
                    }) {
                        if cluster.bootstrap_by_hand(index) {
                            cluster.log.push(format!(
                                "{step}: an operator bootstraps {} by hand",
                                cluster.nodes[index].name
                            ));
                        }
                    }
                }
                Ok(())
            }
            _ => {
                cluster.log.push(format!("{step}: run the planner"));
                outcome.planner_runs += 1;
                let force = std::mem::take(&mut operator_forces);
                cluster.run_planner(&mut rng, false, force).map(|plan| {
                    let refused: Vec<Rule> = plan
                        .blocked
                        .iter()
                        .chain(&plan.notes)
                        .filter_map(|blocked| match blocked {
                            Blocked::Refused { rule, .. } => Some(*rule),
                            Blocked::Waiting { .. } => None,
                        })
                        .collect();
                    // Now and then an operator accepts the loss of writes or of the
                    // accepted history, gives up a node's data, or ends a split brain.
                    if refused.iter().any(|rule| {
                        matches!(
                            rule,
                            Rule::HighWaterMark | Rule::AcceptedHistory | Rule::PrimaryBehindMark
                        )
                    }) {
                        operator_forces = rng.gen_bool(0.3);
                    }
                    if refused.iter().any(|rule| {
                        matches!(
                            rule,
                            Rule::KeepNewerData | Rule::KeepOtherHistory | Rule::MostAdvancedNode
                        )
                    }) && rng.gen_bool(0.3)
                    {
                        cluster.give_up_blocking_data("refused by the planner");
                    }
                    if (plan.situation == Situation::SplitBrain || !refused.is_empty())
                        && rng.gen_bool(0.3)
                    {
                        cluster.stop_outsiders(&mut rng);
                    }
                })
            }
        };
        if let Err(violation) = result.and_then(|()| cluster.check_model()) {
            fail(&cluster, step, &violation);
        }
        cluster.log.push(format!("    {}", cluster.describe()));
        if step % 25 == 24 {
            match check_liveness(&cluster, &mut rng) {
                Ok(checked) => outcome.liveness_checks += usize::from(checked),
                Err(violation) => fail(&cluster, step, &violation),
            }
        }
    }
    outcome.applied = cluster.applied;
    outcome.rules = cluster.rules;
    outcome
}

#[test]
fn random_fault_schedules_keep_the_safety_rules() {
    if let Ok(seed) = std::env::var("GALLEY_SIM_SEED") {
        let seed: u64 = seed.parse().expect("GALLEY_SIM_SEED is a number");
        let outcome = simulate(seed);
        eprintln!(
            "seed {seed}: {} planner runs, {} liveness checks, applied {:?}, rules {:?}",
            outcome.planner_runs, outcome.liveness_checks, outcome.applied, outcome.rules
        );
        return;
    }
    let (mut planner_runs, mut liveness_checks) = (0, 0);
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    // GALLEY_SIM_SEEDS=20000 runs a longer search.
    let seeds: u64 = std::env::var("GALLEY_SIM_SEEDS")
        .map_or(SEEDS, |n| n.parse().expect("GALLEY_SIM_SEEDS is a number"));
    for seed in 0..seeds {
        let outcome = simulate(seed);
        planner_runs += outcome.planner_runs;
        liveness_checks += outcome.liveness_checks;
        for (verb, count) in outcome.applied {
            *applied.entry(verb).or_default() += count;
        }
        for (rule, count) in outcome.rules {
            *rules.entry(rule).or_default() += count;
        }
    }
    eprintln!("{seeds} seeds x {STEPS} steps: {planner_runs} planner runs, {liveness_checks} liveness checks, applied {applied:?}, rules {rules:?}");
    // The schedules must reach every kind of step, not only the healthy cluster...
    for verb in [
        "start",
        "stop",
        "restart",
        "recover",
        "recover before join",
        "clear-bootstrap-flag",
        "bootstrap",
        "forced bootstrap",
        "wipe-and-start",
        "rebuild",
        "accept",
        "accept after bootstrap",
    ] {
        assert!(
            applied.get(verb).copied().unwrap_or(0) > 0,
            "no `{verb}` step was ever applied: {applied:?}"
        );
    }
    // ... and every refusal of rules 8 to 10.
    for rule in [
        Rule::KeepNewerData,
        Rule::KeepOtherHistory,
        Rule::SplitBrain,
        Rule::PrimaryBehindMark,
        Rule::AcceptedHistory,
    ] {
        assert!(
            rules.get(&format!("{rule:?}")).copied().unwrap_or(0) > 0,
            "no plan was ever held back by {rule:?}: {rules:?}"
        );
    }
    assert!(
        liveness_checks > SEEDS as usize,
        "only {liveness_checks} liveness checks"
    );
}
