//! Seeded random fault schedules against a simulated Galera cluster: crashes, graceful
//! stops, lost disks, unreachable agents and partitions interleaved with planner runs
//! whose steps are applied to the model; the safety rules are checked after every step,
//! and from every calm state the planner must bring the whole cluster back.
//!
//! A failure prints the seed and the step log; rerun one seed with
//! `GALLEY_SIM_SEED=1234 cargo test -p planner --test it simulation -- --nocapture`, or
//! search further with `GALLEY_SIM_SEEDS=20000`.

use std::collections::{BTreeMap, BTreeSet};

use galera::{GraState, Position, ZERO_UUID};
use planner::{
    Action, AgentState, Blocked, Facts, HighWaterMarks, Mark, NodeView, Observation, Plan, Policy,
    Rule,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fixtures::{grastate, wsrep, UUID_A};

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
    /// The last applied seqno of cluster A; None for an empty data dir or one whose SST
    /// was cut short (files, but no history).
    seqno: Option<i64>,
    running: bool,
    /// A member of the Primary component.
    in_primary: bool,
    /// In the Primary component but not Synced yet.
    joining: bool,
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
            running: true,
            in_primary: true,
            joining: false,
            grastate: Some(grastate(UUID_A, -1, false)),
            recovered: None,
            agent_reachable: true,
            unhappy_ticks: 0,
            failed_starts: 0,
            backoff_ticks: 0,
            broken: false,
        }
    }

    fn synced(&self) -> bool {
        self.running && self.in_primary && !self.joining
    }

    fn history_uuid(&self) -> &'static str {
        if self.seqno.is_some() {
            UUID_A
        } else {
            ZERO_UUID
        }
    }
}

#[derive(Debug, Clone)]
struct Cluster {
    nodes: Vec<Node>,
    /// The members of the one Primary component, when there is one.
    component: Option<BTreeSet<usize>>,
    /// While the network is split: the members of the component it broke.
    partition: Option<BTreeSet<usize>>,
    /// The highest seqno ever committed (rule 4), tracked by the simulation.
    high_water_mark: i64,
    policy: Policy,
    /// Start attempts may fail (the server exits by itself).
    starts_may_fail: bool,
    log: Vec<String>,
    /// Applied steps by verb (`bootstrap`, `forced bootstrap`, ...), to show coverage.
    applied: BTreeMap<&'static str, usize>,
}

/// A broken invariant, with the model state at the time.
type Violation = String;

impl Cluster {
    fn new(node_count: usize, policy: Policy) -> Cluster {
        Cluster {
            nodes: (0..node_count).map(Node::new).collect(),
            component: Some((0..node_count).collect()),
            partition: None,
            high_water_mark: 1,
            policy,
            starts_may_fail: true,
            log: Vec::new(),
            applied: BTreeMap::new(),
        }
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn primary_seqno(&self) -> Option<i64> {
        let members = self.component.as_ref()?;
        members
            .iter()
            .filter_map(|&member| self.nodes[member].seqno)
            .max()
    }

    fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let state = match (node.running, node.in_primary, node.joining) {
                    (false, _, _) => "stopped",
                    (true, true, false) => "synced",
                    (true, true, true) => "joining",
                    (true, false, _) => "nonprimary",
                };
                let seqno = node.seqno.map_or("-".to_owned(), |s| s.to_string());
                let saved = node.grastate.as_ref().map_or("none".to_owned(), |g| {
                    format!(
                        "{}{}",
                        g.seqno,
                        if g.safe_to_bootstrap { " safe" } else { "" }
                    )
                });
                format!(
                    "{} {state} seqno={seqno} data={} grastate={saved}{}{}",
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
                )
            })
            .collect();
        format!(
            "[{}] component={:?} partition={:?} hwm={}",
            nodes.join(" | "),
            self.component,
            self.partition,
            self.high_water_mark
        )
    }

    /// Time passes: joiners may finish, counters move.
    fn tick(&mut self, rng: &mut StdRng, joiners_always_finish: bool) {
        for node in &mut self.nodes {
            if node.joining && (joiners_always_finish || rng.gen_bool(0.6)) {
                node.joining = false;
            }
            if node.running && (!node.in_primary || node.joining) {
                node.unhappy_ticks += 1;
            } else {
                node.unhappy_ticks = 0;
            }
            node.backoff_ticks = node.backoff_ticks.saturating_sub(1);
        }
    }

    fn write(&mut self) {
        let Some(members) = self.component.clone() else {
            return;
        };
        for member in members {
            let node = &mut self.nodes[member];
            let seqno = node
                .seqno
                .expect("a member of the Primary component has a history")
                + 1;
            node.seqno = Some(seqno);
            self.high_water_mark = self.high_water_mark.max(seqno);
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

    /// Starts the server: it joins the Primary component if there is one, else runs
    /// outside any. Returns false when the start failed.
    fn start(&mut self, index: usize, rng: &mut StdRng) -> bool {
        if self.nodes[index].broken || (self.starts_may_fail && rng.gen_bool(0.08)) {
            let node = &mut self.nodes[index];
            node.failed_starts += 1;
            node.backoff_ticks = 2;
            return false;
        }
        let primary_seqno = self.primary_seqno();
        let node = &mut self.nodes[index];
        node.running = true;
        node.failed_starts = 0;
        node.recovered = None;
        node.unhappy_ticks = 0;
        if let (Some(members), Some(seqno)) = (self.component.as_mut(), primary_seqno) {
            members.insert(index);
            node.in_primary = true;
            node.joining = true;
            node.has_data = true;
            node.seqno = Some(seqno);
        }
        node.grastate = Some(grastate(node.history_uuid(), -1, false));
        true
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
                    let local_state = match (node.in_primary, node.joining) {
                        (true, true) => [1, 3][rng.gen_range(0..2)],
                        (true, false) => [4, 4, 2][rng.gen_range(0..3)],
                        // Outside a Primary component a node may still show Synced.
                        (false, _) => [0, 4][rng.gen_range(0..2)],
                    };
                    let unhappy = node.running && !node.synced() && node.unhappy_ticks >= PATIENCE;
                    AgentState::Reported(Box::new(Facts {
                        running: node.running,
                        wsrep: node
                            .running
                            .then(|| wsrep(node.in_primary, local_state, node.seqno.unwrap_or(-1))),
                        has_data: node.has_data,
                        grastate: node.grastate.clone(),
                        recovered: node.recovered.clone(),
                        stuck: node.running
                            && !node.synced()
                            && (always_stuck || (unhappy && rng.gen_bool(0.5))),
                        failed_starts: node.failed_starts,
                        backing_off: node.backoff_ticks > 0,
                    }))
                };
                NodeView {
                    name: node.name.clone(),
                    priority: index as u32,
                    agent,
                }
            })
            .collect();
        Observation {
            nodes,
            marks: HighWaterMarks {
                accepted: Some(Mark {
                    uuid: UUID_A.to_owned(),
                    seqno: self.high_water_mark,
                }),
                others: Vec::new(),
            },
            policy: self.policy.clone(),
            force,
            rebuild: Vec::new(),
        }
    }

    /// Plans from a fresh observation and applies the runnable steps, checking the safety
    /// invariants before and after each.
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
        for step in plan.runnable() {
            if step.needs_confirmation {
                continue;
            }
            self.apply(&step.action, rng, force)?;
            *self.applied.entry(verb(&step.action, force)).or_default() += 1;
            self.log
                .push(format!("  applied {}: {}", step.action, self.describe()));
            self.check_model()?;
        }
        Ok(plan)
    }

    fn apply(&mut self, action: &Action, rng: &mut StdRng, force: bool) -> Result<(), Violation> {
        let index = self.index(action.node());
        let stopped = !self.nodes[index].running;
        match action {
            Action::Start { .. } | Action::WipeAndStart { .. } => {
                if !stopped {
                    return Err(format!("`{action}` on a running node"));
                }
                // (f) One joiner at a time: nobody else the planner can see is running
                // without being Synced.
                if let Some(other) = self
                    .nodes
                    .iter()
                    .find(|n| n.agent_reachable && n.running && !n.synced())
                {
                    return Err(format!(
                        "(f) `{action}` while {} runs but is not Synced",
                        other.name
                    ));
                }
                if matches!(action, Action::WipeAndStart { .. }) {
                    let node = &mut self.nodes[index];
                    node.has_data = false;
                    node.seqno = None;
                    node.grastate = None;
                    node.recovered = None;
                    node.broken = false;
                }
                self.start(index, rng);
            }
            Action::Stop { .. } => {
                if stopped {
                    return Err(format!("`{action}` on a stopped node"));
                }
                self.graceful_stop(index, rng);
            }
            Action::Restart { .. } => {
                if stopped {
                    return Err(format!("`{action}` on a stopped node"));
                }
                self.graceful_stop(index, rng);
                self.start(index, rng);
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
                // (c) The most advanced node, at its real position.
                let own = self.nodes[index].seqno;
                let highest = self.nodes.iter().filter_map(|n| n.seqno).max();
                if own != Some(*seqno) || own != highest {
                    return Err(format!(
                        "(c) `{action}`: its seqno is {own:?}, the highest is {highest:?}"
                    ));
                }
                // (d) Never below the high-water mark unless forced.
                if *seqno < self.high_water_mark {
                    if !force {
                        return Err(format!(
                            "(d) `{action}` below the high-water mark {}",
                            self.high_water_mark
                        ));
                    }
                    // The operator accepted the loss: the history goes on from here.
                    self.high_water_mark = *seqno;
                }
                let node = &mut self.nodes[index];
                node.running = true;
                node.in_primary = true;
                node.joining = false;
                node.failed_starts = 0;
                node.unhappy_ticks = 0;
                node.recovered = None;
                node.grastate = Some(grastate(UUID_A, -1, false));
                self.component = Some(BTreeSet::from([index]));
                self.partition = None;
            }
        }
        Ok(())
    }

    /// The model's own consistency, and (b): at most one Primary component.
    fn check_model(&self) -> Result<(), Violation> {
        for (index, node) in self.nodes.iter().enumerate() {
            let member = self
                .component
                .as_ref()
                .is_some_and(|members| members.contains(&index));
            if node.in_primary != member || (node.in_primary && !node.running) {
                return Err(format!(
                    "(b) {} is in_primary={} but member={member}",
                    node.name, node.in_primary
                ));
            }
        }
        let seqnos: BTreeSet<i64> = self
            .component
            .iter()
            .flatten()
            .filter_map(|&member| self.nodes[member].seqno)
            .collect();
        if seqnos.len() > 1 {
            return Err(format!(
                "(b) members of the Primary component disagree: {seqnos:?}"
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

    fn all_synced(&self) -> bool {
        self.nodes.iter().all(Node::synced)
    }

    fn random_node(&self, rng: &mut StdRng, filter: impl Fn(&Node) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| filter(&self.nodes[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())])
    }
}

fn verb(action: &Action, force: bool) -> &'static str {
    match action {
        Action::Start { .. } => "start",
        Action::Stop { .. } => "stop",
        Action::Restart { .. } => "restart",
        Action::Recover { .. } => "recover",
        Action::ClearBootstrapFlag { .. } => "clear-bootstrap-flag",
        Action::Bootstrap { .. } if force => "forced bootstrap",
        Action::Bootstrap { .. } => "bootstrap",
        Action::WipeAndStart { .. } => "wipe-and-start",
    }
}

/// Liveness: from a calm copy of the cluster (every agent answers, the network is whole,
/// an operator looked at the failed starts), repeated planner runs with `stuck` set bring
/// every node into the Primary component, Synced. Skipped when a data dir is empty.
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
    let bound = 4 * calm.nodes.len() + 6;
    for _ in 0..bound {
        calm.tick(rng, true);
        if calm.all_synced() {
            return Ok(true);
        }
        let plan = calm
            .run_planner(rng, true, false)
            .map_err(|violation| format!("{violation}\n{}", calm.log.join("\n")))?;
        if let Some(Blocked::Refused { rule, reason }) = &plan.blocked {
            return Err(format!(
                "liveness: refused ({rule:?}): {reason}\n{}",
                calm.log.join("\n")
            ));
        }
    }
    calm.tick(rng, true);
    if calm.all_synced() {
        return Ok(true);
    }
    Err(format!(
        "liveness: not all Synced after {bound} planner runs: {}\n{}",
        calm.describe(),
        calm.log.join("\n")
    ))
}

struct Outcome {
    planner_runs: usize,
    liveness_checks: usize,
    /// Steps applied in the random schedule (not in the liveness checks), by verb.
    applied: BTreeMap<&'static str, usize>,
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
                    let node = &mut cluster.nodes[index];
                    node.has_data = false;
                    node.seqno = None;
                    node.grastate = None;
                    node.recovered = None;
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
                if cluster.component.is_some() {
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
            _ => {
                cluster.log.push(format!("{step}: run the planner"));
                outcome.planner_runs += 1;
                let force = std::mem::take(&mut operator_forces);
                cluster.run_planner(&mut rng, false, force).map(|plan| {
                    // An operator accepts the loss of a disk now and then.
                    if let Some(Blocked::Refused {
                        rule: Rule::HighWaterMark,
                        ..
                    }) = plan.blocked
                    {
                        operator_forces = rng.gen_bool(0.3);
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
    outcome
}

#[test]
fn random_fault_schedules_keep_the_safety_rules() {
    if let Ok(seed) = std::env::var("GALLEY_SIM_SEED") {
        let seed: u64 = seed.parse().expect("GALLEY_SIM_SEED is a number");
        let outcome = simulate(seed);
        eprintln!(
            "seed {seed}: {} planner runs, {} liveness checks, applied {:?}",
            outcome.planner_runs, outcome.liveness_checks, outcome.applied
        );
        return;
    }
    let (mut planner_runs, mut liveness_checks) = (0, 0);
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
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
    }
    eprintln!("{seeds} seeds x {STEPS} steps: {planner_runs} planner runs, {liveness_checks} liveness checks, applied {applied:?}");
    // The schedules must reach every kind of step, not only the healthy cluster.
    for verb in [
        "start",
        "stop",
        "restart",
        "recover",
        "clear-bootstrap-flag",
        "bootstrap",
        "forced bootstrap",
        "wipe-and-start",
    ] {
        assert!(
            applied.get(verb).copied().unwrap_or(0) > 0,
            "no `{verb}` step was ever applied: {applied:?}"
        );
    }
    assert!(
        liveness_checks > SEEDS as usize,
        "only {liveness_checks} liveness checks"
    );
}
