//! A simulated Galera cluster and simulated agents over it. The model keeps the truth
//! (who runs, who is in the Primary component, every node's real seqno, the highest
//! seqno ever committed); `SimAgents` answers the engine as real agents would, from
//! that truth, and checks the safety rules at the moment each action reaches a node.
//! A broken rule is recorded as a violation, and the test fails with the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use agent::api::{NodeReport, ProcessReport, StartMode};
use agent::AgentError;
use galera::{GraState, Position, WsrepStatus, ZERO_UUID};
use rand::rngs::StdRng;
use rand::Rng;
use reconcile::{NodeAgents, StepError};

pub const UUID_A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";

pub fn grastate(uuid: &str, seqno: i64, safe_to_bootstrap: bool) -> GraState {
    GraState {
        version: "2.1".to_owned(),
        uuid: uuid.to_owned(),
        seqno,
        safe_to_bootstrap,
    }
}

/// The wsrep status of a running node. `local_state` is the `wsrep_local_state` code
/// (1 joiner, 2 donor, 3 joined, 4 synced).
fn wsrep(primary: bool, local_state: i64, last_committed: i64, size: usize) -> WsrepStatus {
    let local_state = local_state.to_string();
    let last_committed = last_committed.to_string();
    let size = size.to_string();
    WsrepStatus::from_variables([
        ("wsrep_ready", if primary { "ON" } else { "OFF" }),
        ("wsrep_connected", "ON"),
        (
            "wsrep_cluster_status",
            if primary { "Primary" } else { "non-Primary" },
        ),
        ("wsrep_cluster_size", size.as_str()),
        ("wsrep_local_state", local_state.as_str()),
        ("wsrep_last_committed", last_committed.as_str()),
        ("wsrep_cluster_state_uuid", UUID_A),
    ])
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The data dir holds files (what the agent reports as `data_dir_initialized`).
    pub has_data: bool,
    /// The last applied seqno of cluster A; None for an empty data dir, a fresh one, or
    /// one whose SST was cut short (files, but no history).
    pub seqno: Option<i64>,
    pub running: bool,
    /// A member of the Primary component.
    pub in_primary: bool,
    /// In the Primary component but not Synced yet.
    pub joining: bool,
    pub grastate: Option<GraState>,
    pub recovered: Option<Position>,
    pub agent_reachable: bool,
    /// How the last run ended, when the server exited by itself.
    pub last_exit: Option<String>,
    /// Corrupt data: every start fails until the node is rebuilt or an operator fixes it.
    pub broken: bool,
    pub pid: u32,
    /// Data dirs a rebuild moved aside (what the agent reports as `set_aside`).
    pub set_aside: Vec<String>,
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
            last_exit: None,
            broken: false,
            pid: 100 + index as u32,
            set_aside: Vec::new(),
        }
    }

    pub fn synced(&self) -> bool {
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

/// A broken invariant, with the model state at the time.
pub type Violation = String;

#[derive(Debug, Clone)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The members of the one Primary component, when there is one.
    pub component: Option<BTreeSet<usize>>,
    /// While the network is split: the members of the component it broke.
    pub partition: Option<BTreeSet<usize>>,
    /// The highest seqno ever committed (rule 4), the truth.
    pub high_water_mark: i64,
    /// Start attempts may fail (the server exits by itself).
    pub starts_may_fail: bool,
    /// The operator allowed a bootstrap below the mark for the next one.
    pub forced: bool,
    /// Arbitrators (garbd): voting members without data or agent that never fail here.
    /// They are in whatever Primary component exists (garbd joins it by itself), count
    /// in its size and in its quorum, and alone are never one.
    pub arbitrators: usize,
    pub log: Vec<String>,
    /// Actions that reached a node, by verb, to show coverage.
    pub applied: BTreeMap<&'static str, usize>,
    pub violations: Vec<Violation>,
    next_pid: u32,
}

impl Cluster {
    /// A running, Synced cluster of `node_count` nodes at seqno 1.
    pub fn new(node_count: usize) -> Cluster {
        Cluster {
            nodes: (0..node_count).map(Node::new).collect(),
            component: Some((0..node_count).collect()),
            partition: None,
            high_water_mark: 1,
            starts_may_fail: true,
            forced: false,
            arbitrators: 0,
            log: Vec::new(),
            applied: BTreeMap::new(),
            violations: Vec::new(),
            next_pid: 1000,
        }
    }

    /// Nodes with empty data dirs, all stopped: before the first `galley up`.
    pub fn empty(node_count: usize) -> Cluster {
        let mut cluster = Cluster::new(node_count);
        cluster.component = None;
        cluster.high_water_mark = -1;
        for node in &mut cluster.nodes {
            *node = Node {
                has_data: false,
                seqno: None,
                running: false,
                in_primary: false,
                grastate: None,
                ..node.clone()
            };
        }
        cluster
    }

    pub fn index(&self, name: &str) -> usize {
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

    pub fn describe(&self) -> String {
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
                    if node.broken { " broken" } else { "" },
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

    /// Time passes: joiners may finish.
    pub fn tick(&mut self, rng: &mut StdRng, joiners_always_finish: bool) {
        for node in &mut self.nodes {
            if node.joining && (joiners_always_finish || rng.gen_bool(0.6)) {
                node.joining = false;
            }
        }
    }

    pub fn write(&mut self) {
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
        let votes = |data: usize| data + self.arbitrators;
        if last_out || (crashed && votes(members.len()) * 2 <= votes(before)) {
            for member in std::mem::take(members) {
                self.nodes[member].in_primary = false;
                self.nodes[member].joining = false;
            }
            self.component = None;
        }
        (last_out, orphans)
    }

    pub fn kill(&mut self, index: usize, rng: &mut StdRng) {
        if !self.nodes[index].running {
            return;
        }
        let was_joining = self.nodes[index].joining;
        let (_, orphans) = self.leave_component(index, true);
        let node = &mut self.nodes[index];
        node.running = false;
        node.last_exit = Some("killed by signal 9 (SIGKILL)".to_owned());
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

    pub fn graceful_stop(&mut self, index: usize, rng: &mut StdRng) {
        if !self.nodes[index].running {
            return;
        }
        let (last_out, orphans) = self.leave_component(index, false);
        let node = &mut self.nodes[index];
        node.running = false;
        node.last_exit = None;
        node.grastate = Some(grastate(
            node.history_uuid(),
            node.seqno.unwrap_or(-1),
            last_out,
        ));
        node.recovered = None;
        self.abort_orphans(orphans, rng);
    }

    /// Starts the server: it joins the Primary component if there is one, else runs
    /// outside any. A start that fails leaves it stopped with the reason in `last_exit`,
    /// as the agent reports a mariadbd that exited by itself.
    fn start(&mut self, index: usize, rng: &mut StdRng) {
        self.next_pid += 1;
        if self.nodes[index].broken || (self.starts_may_fail && rng.gen_bool(0.08)) {
            self.nodes[index].last_exit = Some("exited with status 1: [ERROR] Aborting".to_owned());
            return;
        }
        let primary_seqno = self.primary_seqno();
        let pid = self.next_pid;
        let node = &mut self.nodes[index];
        node.running = true;
        node.pid = pid;
        node.last_exit = None;
        node.recovered = None;
        if let (Some(members), Some(seqno)) = (self.component.as_mut(), primary_seqno) {
            members.insert(index);
            node.in_primary = true;
            node.joining = true;
            node.has_data = true;
            node.seqno = Some(seqno);
        }
        node.grastate = Some(grastate(node.history_uuid(), -1, false));
    }

    /// The model's own consistency, and (b): at most one Primary component.
    pub fn check_model(&self) -> Result<(), Violation> {
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

    pub fn partition_network(&mut self) {
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
    pub fn heal_network(&mut self) -> Result<(), Violation> {
        let Some(members) = self.partition.take() else {
            return Ok(());
        };
        let survivors: BTreeSet<usize> = members
            .iter()
            .copied()
            .filter(|&m| self.nodes[m].running && !self.nodes[m].in_primary)
            .collect();
        if (survivors.len() + self.arbitrators) * 2 <= members.len() + self.arbitrators {
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

    pub fn all_synced(&self) -> bool {
        self.nodes.iter().all(Node::synced)
    }

    pub fn random_node(&self, rng: &mut StdRng, filter: impl Fn(&Node) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| filter(&self.nodes[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[rng.gen_range(0..candidates.len())])
    }

    /// What the node's agent reports. Outside a Primary component a node may still show
    /// Synced; a joiner shows Joiner or Joined; a member may be donating.
    fn report(&self, index: usize, rng: &mut StdRng) -> NodeReport {
        let node = &self.nodes[index];
        let size = self
            .component
            .as_ref()
            .map_or(1, |members| members.len() + self.arbitrators);
        let local_state = match (node.in_primary, node.joining) {
            (true, true) => [1, 3][rng.gen_range(0..2)],
            (true, false) => [4, 4, 2][rng.gen_range(0..3)],
            (false, _) => [0, 4][rng.gen_range(0..2)],
        };
        NodeReport {
            node: node.name.clone(),
            agent_version: "simulated".to_owned(),
            process: ProcessReport {
                running: node.running,
                pid: node.running.then_some(node.pid),
                mode: None,
                last_exit: node.last_exit.clone(),
                receiving_state_transfer: false,
            },
            data_dir_initialized: node.has_data,
            grastate: node.grastate.clone(),
            grastate_error: None,
            recovered: node.recovered.clone(),
            wsrep: node
                .running
                .then(|| wsrep(node.in_primary, local_state, node.seqno.unwrap_or(-1), size)),
            sql_error: None,
            set_aside: node.set_aside.clone(),
            stale_view: None,
        }
    }

    fn violation(&mut self, violation: Violation) {
        self.log.push(format!("    VIOLATION {violation}"));
        self.violations.push(violation);
    }

    fn count(&mut self, verb: &'static str) {
        *self.applied.entry(verb).or_default() += 1;
    }

    fn stopped_or_violation(&mut self, index: usize, what: &str) -> bool {
        if self.nodes[index].running {
            let name = self.nodes[index].name.clone();
            self.violation(format!("`{what}` on running {name}"));
            return false;
        }
        true
    }

    /// A joiner start: (f) one joiner at a time: nobody else the engine can see is
    /// running without being Synced.
    fn start_joiner(&mut self, index: usize, rng: &mut StdRng) {
        if !self.stopped_or_violation(index, "start") {
            return;
        }
        if let Some(other) = self
            .nodes
            .iter()
            .find(|n| n.agent_reachable && n.running && !n.synced())
        {
            let violation = format!(
                "(f) start {} while {} runs but is not Synced",
                self.nodes[index].name, other.name
            );
            self.violation(violation);
        }
        self.count("start");
        self.start(index, rng);
    }

    /// A bootstrap: (a) never while any node runs, (b) never beside a Primary component,
    /// (c) only the most advanced node (or a new cluster when no node has history), (d)
    /// never below the high-water mark unless the operator forced it.
    fn bootstrap(&mut self, index: usize) {
        let name = self.nodes[index].name.clone();
        if let Some(running) = self.nodes.iter().find(|n| n.running) {
            let violation = format!("(a) bootstrap {name} while {} runs", running.name);
            self.violation(violation);
        }
        if self.component.is_some() {
            self.violation(format!(
                "(b) bootstrap {name} while a Primary component exists"
            ));
        }
        let own = self.nodes[index].seqno;
        let highest = self.nodes.iter().filter_map(|n| n.seqno).max();
        if own != highest {
            self.violation(format!(
                "(c) bootstrap {name}: its seqno is {own:?}, the highest is {highest:?}"
            ));
        }
        let seqno = own.unwrap_or(0);
        if seqno < self.high_water_mark {
            if !self.forced {
                let violation = format!(
                    "(d) bootstrap {name} at {seqno}, below the high-water mark {}",
                    self.high_water_mark
                );
                self.violation(violation);
            }
            // The operator accepted the loss: the history goes on from here.
            self.high_water_mark = seqno;
            self.count("forced bootstrap");
        } else {
            self.count(if own.is_some() {
                "bootstrap"
            } else {
                "new cluster"
            });
        }
        self.forced = false;
        self.next_pid += 1;
        let pid = self.next_pid;
        let node = &mut self.nodes[index];
        node.running = true;
        node.pid = pid;
        node.in_primary = true;
        node.joining = false;
        node.has_data = true;
        node.seqno = Some(seqno);
        node.last_exit = None;
        node.recovered = None;
        node.grastate = Some(grastate(UUID_A, -1, false));
        self.component = Some(BTreeSet::from([index]));
        self.partition = None;
        self.high_water_mark = self.high_water_mark.max(seqno);
    }
}

/// The simulated agents: the engine's `NodeAgents` over the model.
#[derive(Debug, Clone)]
pub struct SimAgents {
    pub world: Arc<Mutex<(Cluster, StdRng)>>,
}

impl SimAgents {
    pub fn new(cluster: Cluster, rng: StdRng) -> SimAgents {
        SimAgents {
            world: Arc::new(Mutex::new((cluster, rng))),
        }
    }

    /// Runs `f` on a node whose agent answers; an unreachable one is refused as a real
    /// one would be, and (e) the engine should never have asked it to act.
    fn with_node<T>(
        &self,
        node: &str,
        acting: bool,
        f: impl FnOnce(&mut Cluster, usize, &mut StdRng) -> T,
    ) -> Result<T, StepError> {
        let mut world = self.world.lock().expect("world lock");
        let (cluster, rng) = &mut *world;
        let index = cluster.index(node);
        if !cluster.nodes[index].agent_reachable {
            if acting {
                cluster.violation(format!(
                    "(e) an action reached {node}, whose agent does not answer"
                ));
            }
            return Err(StepError::Agent(AgentError::Unreachable {
                address: node.to_owned(),
                reason: "simulated".to_owned(),
            }));
        }
        Ok(f(cluster, index, rng))
    }

    fn log(&self, line: String) {
        self.world.lock().expect("world lock").0.log.push(line);
    }
}

impl NodeAgents for SimAgents {
    async fn status(&self, node: &str) -> Result<NodeReport, StepError> {
        self.with_node(node, false, |cluster, index, rng| {
            cluster.report(index, rng)
        })
    }

    async fn init(&self, node: &str) -> Result<bool, StepError> {
        self.log(format!("  init {node}"));
        self.with_node(node, true, |cluster, index, _| {
            let node = &mut cluster.nodes[index];
            let initialized = !node.has_data;
            node.has_data = true;
            cluster.count("init");
            initialized
        })
    }

    async fn start(&self, node: &str, mode: StartMode, _mark_safe: bool) -> Result<u32, StepError> {
        self.log(format!("  start {node} {mode:?}"));
        self.with_node(node, true, |cluster, index, rng| {
            match mode {
                StartMode::Join => cluster.start_joiner(index, rng),
                StartMode::Bootstrap => cluster.bootstrap(index),
            }
            cluster.nodes[index].pid
        })
    }

    async fn stop(&self, node: &str) -> Result<Option<GraState>, StepError> {
        self.log(format!("  stop {node}"));
        self.with_node(node, true, |cluster, index, rng| {
            cluster.count("stop");
            cluster.graceful_stop(index, rng);
            cluster.nodes[index].grastate.clone()
        })
    }

    async fn recover(&self, node: &str) -> Result<Position, StepError> {
        self.log(format!("  recover {node}"));
        self.with_node(node, true, |cluster, index, _| {
            cluster.stopped_or_violation(index, "recover");
            cluster.count("recover");
            let node = &mut cluster.nodes[index];
            let position = Position {
                uuid: node.history_uuid().to_owned(),
                seqno: node.seqno.unwrap_or(-1),
            };
            node.recovered = Some(position.clone());
            position
        })
    }

    async fn move_aside(&self, node: &str, label: &str) -> Result<String, StepError> {
        self.log(format!("  move aside {node}"));
        self.with_node(node, true, |cluster, index, _| {
            cluster.stopped_or_violation(index, "move aside");
            cluster.count("wipe-and-start");
            // (g) a node keeps at most one copy moved aside automatically: another would
            // be one more full copy of the data on its disk, and a node that keeps failing
            // would fill it.
            if !cluster.nodes[index].set_aside.is_empty() {
                let name = cluster.nodes[index].name.clone();
                cluster.violation(format!("(g) a second copy of {name}'s data moved aside"));
            }
            let moved = format!("data.moved-{label}");
            let node = &mut cluster.nodes[index];
            node.set_aside.push(moved.clone());
            node.has_data = false;
            node.seqno = None;
            node.grastate = None;
            node.recovered = None;
            node.broken = false;
            moved
        })
    }

    async fn clear_bootstrap_flag(&self, node: &str) -> Result<(), StepError> {
        self.log(format!("  clear the flag of {node}"));
        self.with_node(node, true, |cluster, index, _| {
            cluster.stopped_or_violation(index, "clear-bootstrap-flag");
            cluster.count("clear-bootstrap-flag");
            if let Some(grastate) = cluster.nodes[index].grastate.as_mut() {
                grastate.safe_to_bootstrap = false;
            }
        })
    }
}
