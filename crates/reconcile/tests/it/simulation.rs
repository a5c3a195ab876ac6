//! Seeded random fault schedules against a simulated Galera cluster, through the whole
//! engine: its memory (stuck, failed starts, backoff in virtual time), its rounds, the
//! planner behind them and the drive loop. Crashes, graceful stops, lost disks, corrupt
//! data, unreachable agents and partitions are interleaved with engine rounds; the
//! simulated agents check the safety rules at the moment each action reaches a node.
//!
//! Four schedules: the controller's loop over a long random history (with a liveness
//! check from calm copies: every node comes back), `galley up` after a crash and from
//! nothing, a rolling restart through the engine's waits, and a full-crash recovery,
//! each with faults injected while it runs.
//!
//! A failure prints the seed and the step log; rerun one seed with
//! `GALLEY_SIM_SEED=1234 cargo test -p reconcile --test it simulation -- --nocapture`,
//! or search further with `GALLEY_SIM_SEEDS=20000`.

use std::collections::BTreeMap;
use std::time::Duration;

use agent::api::{NodeReport, StartMode};
use planner::{Blocked, HighWaterMarks, Mark, Observation, Operator, Plan, Policy, Rule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reconcile::{
    Clock, DriveError, Engine, Goal, Inputs, Limits, Member, NodeAgents, Noticed, Recorder, Round,
    RoundError, RoundOptions, Rounds, Settings,
};

use crate::model::{Cluster, SimAgents, UUID_A};

const SEEDS: u64 = 300;
const STEPS: usize = 200;
/// Rounds (seconds of virtual time) a node may be unsettled before it is stuck.
const PATIENCE_MS: i64 = 3_000;
/// One round of the controller: a second of virtual time.
const ROUND_MS: i64 = 1_000;

/// Virtual time from tokio's paused clock.
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.0.elapsed().as_millis() as i64
    }
}

fn settings(policy: Policy) -> Settings {
    Settings {
        policy,
        stuck_after_ms: PATIENCE_MS,
    }
}

fn engine(agents: &SimAgents, policy: Policy) -> Engine<SimAgents> {
    let count = agents.world.lock().unwrap().0.nodes.len();
    let members = (0..count)
        .map(|index| Member {
            name: format!("node{}", index + 1),
            priority: index as u32,
            managed: true,
        })
        .collect();
    Engine::new(members, agents.clone(), settings(policy))
}

/// The controller's part, simulated: the high-water mark (the truth: a controller that
/// saw every commit), the operator's force and rebuilds, and the plan in the log.
struct SimRecorder {
    agents: SimAgents,
    create_new: bool,
    /// Every plan this recorder saw refused, by rule.
    refusals: Vec<Rule>,
}

impl SimRecorder {
    fn new(agents: &SimAgents, create_new: bool) -> SimRecorder {
        SimRecorder {
            agents: agents.clone(),
            create_new,
            refusals: Vec::new(),
        }
    }
}

impl Recorder for SimRecorder {
    fn observed(
        &mut self,
        reports: &[(String, Option<NodeReport>)],
        _noticed: &[Noticed],
        _now: i64,
    ) -> Result<Inputs, RoundError> {
        let mut world = self.agents.world.lock().unwrap();
        let cluster = &mut world.0;
        // The controller raises its mark from what the reports prove; it must never
        // claim more than was committed, or recovery would wait forever.
        for (name, report) in reports {
            let proven = report.as_ref().and_then(reconcile::proven_position);
            if let Some(position) = proven.filter(|p| p.seqno > cluster.high_water_mark) {
                cluster.violations.push(format!(
                    "the report of {name} proves seqno {}, above every commit ({})",
                    position.seqno, cluster.high_water_mark
                ));
            }
        }
        Ok(Inputs {
            marks: HighWaterMarks {
                accepted: (cluster.high_water_mark >= 0).then(|| Mark {
                    uuid: UUID_A.to_owned(),
                    seqno: cluster.high_water_mark,
                }),
                others: Vec::new(),
            },
            force: cluster.forced,
            // The simulated operator knows which disks it lost and says so, as an
            // operator does with `--rebuild`; the high-water mark still guards rule 4.
            operator: Operator {
                create_new: self.create_new,
                rebuild: cluster
                    .nodes
                    .iter()
                    .filter(|node| !node.has_data && cluster.high_water_mark >= 0)
                    .map(|node| node.name.clone())
                    .collect(),
            },
            stopped_on_purpose: Vec::new(),
        })
    }

    fn planned(&mut self, _observation: &Observation, plan: &Plan, _now: i64) {
        if let Some(Blocked::Refused { rule, .. }) = &plan.blocked {
            self.refusals.push(*rule);
        }
        let steps: Vec<String> = plan
            .runnable()
            .iter()
            .map(|s| s.action.to_string())
            .collect();
        let blocked = match &plan.blocked {
            Some(Blocked::Waiting { rule, .. }) => format!(" waiting {rule:?}"),
            Some(Blocked::Refused { rule, .. }) => format!(" refused {rule:?}"),
            None => String::new(),
        };
        self.agents.world.lock().unwrap().0.log.push(format!(
            "  plan {:?}: [{}]{blocked}",
            plan.situation,
            steps.join(", ")
        ));
    }
}

/// A fault now and then while a drive runs.
struct Faults {
    rng: StdRng,
    /// Chance per round.
    chance: f64,
    /// Rounds left in which faults may happen; then the cluster is left alone.
    rounds: usize,
}

impl Faults {
    fn none() -> Faults {
        Faults {
            rng: StdRng::seed_from_u64(0),
            chance: 0.0,
            rounds: 0,
        }
    }

    fn strike(&mut self, cluster: &mut Cluster) {
        if self.rounds == 0 {
            return;
        }
        self.rounds -= 1;
        if !self.rng.gen_bool(self.chance) {
            return;
        }
        let rng = &mut self.rng;
        match rng.gen_range(0..4) {
            0 => {
                if let Some(index) = cluster.random_node(rng, |n| n.running) {
                    cluster
                        .log
                        .push(format!("fault: kill -9 {}", cluster.nodes[index].name));
                    cluster.kill(index, rng);
                }
            }
            1 => {
                let index = rng.gen_range(0..cluster.nodes.len());
                let node = &mut cluster.nodes[index];
                node.agent_reachable = !node.agent_reachable;
                cluster.log.push(format!(
                    "fault: the agent of {} is {}",
                    cluster.nodes[index].name,
                    if cluster.nodes[index].agent_reachable {
                        "back"
                    } else {
                        "unreachable"
                    }
                ));
            }
            2 => {
                cluster.log.push("fault: a write".to_owned());
                cluster.write();
            }
            _ => {
                if let Some(index) = cluster.random_node(rng, |n| n.running) {
                    cluster
                        .log
                        .push(format!("fault: stop {}", cluster.nodes[index].name));
                    cluster.graceful_stop(index, rng);
                }
            }
        }
    }

    /// After the faults: every agent answers again.
    fn calm(cluster: &mut Cluster) {
        for node in &mut cluster.nodes {
            node.agent_reachable = true;
        }
    }
}

/// The engine's rounds over the model: time passes (joiners may finish), a fault may
/// strike, then one engine round.
struct SimRounds<'a> {
    engine: &'a mut Engine<SimAgents>,
    recorder: &'a mut SimRecorder,
    options: RoundOptions,
    faults: Faults,
    joiners_always_finish: bool,
}

impl Rounds for SimRounds<'_> {
    async fn round(&mut self, now: i64) -> Result<Round, RoundError> {
        {
            let mut world = self.engine.agents().world.lock().unwrap();
            let (cluster, rng) = &mut *world;
            cluster.tick(rng, self.joiners_always_finish);
            self.faults.strike(cluster);
            if self.faults.rounds == 0 {
                Faults::calm(cluster);
            }
        }
        self.engine.round(now, &self.options, self.recorder).await
    }
}

/// Fails the test with the seed, the log and the state when a rule broke.
fn check(agents: &SimAgents, seed: u64, what: &str) {
    let world = agents.world.lock().unwrap();
    let cluster = &world.0;
    let model = cluster.check_model().err();
    if !cluster.violations.is_empty() || model.is_some() {
        panic!(
            "seed {seed}: {what}: {:?} {model:?}\nlog:\n{}\nstate: {}",
            cluster.violations,
            cluster.log.join("\n"),
            cluster.describe()
        );
    }
}

fn all_synced(agents: &SimAgents) -> bool {
    agents.world.lock().unwrap().0.all_synced()
}

fn drive_limits(fail_fast: bool) -> Limits {
    Limits {
        poll: Duration::from_millis(ROUND_MS as u64),
        stall: Duration::from_secs(60),
        fail_fast,
    }
}

/// Liveness: from a calm copy of the cluster (every agent answers, the network is
/// whole, an operator looked at the failed starts: a fresh engine), the engine driven
/// to `AllSynced` brings every node into the Primary component. Skipped when a data dir
/// is empty and the mark cannot be reached.
async fn check_liveness(cluster: &Cluster, seed: u64) -> bool {
    let mut calm = cluster.clone();
    calm.starts_may_fail = false;
    calm.log.push("liveness check from a calm copy:".to_owned());
    for node in &mut calm.nodes {
        node.agent_reachable = true;
        node.broken = false;
    }
    if let Err(violation) = calm.heal_network() {
        panic!("seed {seed}: {violation}");
    }
    if calm.nodes.iter().any(|node| !node.has_data) {
        return false;
    }
    let agents = SimAgents::new(calm, StdRng::seed_from_u64(seed ^ 0x5eed));
    let mut engine = engine(&agents, Policy::default());
    let mut recorder = SimRecorder::new(&agents, false);
    let mut rounds = SimRounds {
        engine: &mut engine,
        recorder: &mut recorder,
        options: RoundOptions {
            acting: true,
            only: None,
        },
        faults: Faults::none(),
        joiners_always_finish: true,
    };
    let clock = TokioClock(tokio::time::Instant::now());
    let outcome = reconcile::drive(
        &mut rounds,
        &Goal::AllSynced,
        &drive_limits(false),
        &clock,
        |_| {},
    )
    .await;
    check(&agents, seed, "liveness");
    if outcome.is_err() || !all_synced(&agents) {
        let world = agents.world.lock().unwrap();
        panic!(
            "seed {seed}: liveness: {outcome:?}\nlog:\n{}\nstate: {}",
            world.0.log.join("\n"),
            world.0.describe()
        );
    }
    true
}

#[derive(Debug, Default)]
struct Outcome {
    rounds: usize,
    liveness_checks: usize,
    /// Actions that reached a node in the random schedule, by verb.
    applied: BTreeMap<&'static str, usize>,
}

/// The controller's loop over a long random history.
async fn controller_schedule(seed: u64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed);
    let node_count = if rng.gen_bool(0.25) { 5 } else { 3 };
    let policy = Policy {
        allow_wipe: rng.gen_bool(0.5),
        ..Policy::default()
    };
    let agents = SimAgents::new(Cluster::new(node_count), StdRng::seed_from_u64(seed + 1));
    let mut engine = engine(&agents, policy);
    let mut recorder = SimRecorder::new(&agents, false);
    let mut outcome = Outcome::default();
    let acting = RoundOptions {
        acting: true,
        only: None,
    };
    for step in 0..STEPS {
        let now = step as i64 * ROUND_MS;
        let run_round = {
            let mut world = agents.world.lock().unwrap();
            let (cluster, model_rng) = &mut *world;
            cluster.tick(model_rng, false);
            let event = rng.gen_range(0..100);
            let result = fault(cluster, &mut rng, step, event);
            if let Err(violation) = result {
                cluster.violations.push(violation);
            }
            event >= 54
        };
        if run_round {
            outcome.rounds += 1;
            agents
                .world
                .lock()
                .unwrap()
                .0
                .log
                .push(format!("{step}: engine round"));
            let round = engine
                .round(now, &acting, &mut recorder)
                .await
                .expect("the recorder never fails");
            // An operator accepts the loss of a disk now and then.
            if let Some(Blocked::Refused {
                rule: Rule::HighWaterMark,
                ..
            }) = round.plan.blocked
            {
                agents.world.lock().unwrap().0.forced = rng.gen_bool(0.3);
            }
        }
        check(&agents, seed, &format!("step {step}"));
        if step % 25 == 24 {
            let snapshot = agents.world.lock().unwrap().0.clone();
            outcome.liveness_checks += usize::from(check_liveness(&snapshot, seed).await);
        }
    }
    outcome.applied = agents.world.lock().unwrap().0.applied.clone();
    outcome
}

/// One random event of the schedule (54 and above: an engine round instead).
fn fault(cluster: &mut Cluster, rng: &mut StdRng, step: usize, event: u32) -> Result<(), String> {
    match event {
        0..=19 => {
            cluster.log.push(format!("{step}: write"));
            cluster.write();
        }
        20..=27 => {
            if let Some(index) = cluster.random_node(rng, |n| n.running) {
                cluster
                    .log
                    .push(format!("{step}: kill -9 {}", cluster.nodes[index].name));
                cluster.kill(index, rng);
            }
        }
        28..=29 => {
            cluster.log.push(format!("{step}: kill -9 all"));
            for index in 0..cluster.nodes.len() {
                cluster.kill(index, rng);
            }
        }
        30..=35 => {
            if let Some(index) = cluster.random_node(rng, |n| n.running) {
                cluster
                    .log
                    .push(format!("{step}: stop {}", cluster.nodes[index].name));
                cluster.graceful_stop(index, rng);
            }
        }
        36..=37 => {
            cluster.log.push(format!("{step}: stop all"));
            let mut order: Vec<usize> = (0..cluster.nodes.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.gen_range(0..=i));
            }
            for index in order {
                cluster.graceful_stop(index, rng);
            }
        }
        38..=39 => {
            if let Some(index) = cluster.random_node(rng, |n| !n.running && n.has_data) {
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
                let line = format!("{step}: the agent of {} becomes {now}", node.name);
                cluster.log.push(line);
            }
        }
        45..=46 if cluster.component.is_some() => {
            cluster.log.push(format!("{step}: network partition"));
            cluster.partition_network();
        }
        47..=50 => {
            if cluster.partition.is_some() {
                cluster.log.push(format!("{step}: the network heals"));
            }
            return cluster.heal_network();
        }
        51 => {
            if let Some(index) = cluster.random_node(rng, |n| n.broken) {
                cluster.log.push(format!(
                    "{step}: an operator fixes {}",
                    cluster.nodes[index].name
                ));
                cluster.nodes[index].broken = false;
            }
        }
        52 => {
            if let Some(index) = cluster.random_node(rng, |n| !n.running && n.has_data) {
                cluster.log.push(format!(
                    "{step}: the data of {} gets corrupt",
                    cluster.nodes[index].name
                ));
                cluster.nodes[index].broken = true;
            }
        }
        53 => {
            // Operators edit grastate.dat by hand, as the Galera docs tell them to.
            if let Some(index) = cluster.random_node(rng, |n| !n.running && n.grastate.is_some()) {
                cluster.log.push(format!(
                    "{step}: an operator sets safe_to_bootstrap on {}",
                    cluster.nodes[index].name
                ));
                if let Some(grastate) = cluster.nodes[index].grastate.as_mut() {
                    grastate.safe_to_bootstrap = true;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A cluster that ran and took writes, then crashed as a whole (and some disks may be
/// lost or corrupt), for the bring-up schedules.
fn crashed_cluster(rng: &mut StdRng) -> Cluster {
    let node_count = if rng.gen_bool(0.25) { 5 } else { 3 };
    let mut cluster = Cluster::new(node_count);
    for step in 0..rng.gen_range(5..40) {
        let event = rng.gen_range(0..40);
        if let Err(violation) = fault(&mut cluster, rng, step, event) {
            panic!("{violation}");
        }
    }
    for index in 0..cluster.nodes.len() {
        cluster.kill(index, rng);
    }
    for node in &mut cluster.nodes {
        node.agent_reachable = true;
    }
    cluster.partition = None;
    cluster
}

/// `galley up` (`reconcile::bring`, failing fast as the command does) with faults while
/// it runs; then `galley up` again on the calm cluster must bring every node back.
async fn up_schedule(seed: u64, cluster: Cluster) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let agents = SimAgents::new(cluster, StdRng::seed_from_u64(seed + 7));
    let clock = TokioClock(tokio::time::Instant::now());
    let mut rounds_run = 0;
    for attempt in 0..4 {
        let faults = if attempt == 0 {
            Faults {
                rng: StdRng::seed_from_u64(rng.gen()),
                chance: 0.15,
                rounds: 30,
            }
        } else {
            let mut world = agents.world.lock().unwrap();
            world.0.starts_may_fail = false;
            for node in &mut world.0.nodes {
                node.broken = false;
            }
            Faults::none()
        };
        let mut engine = engine(&agents, Policy::default());
        let mut recorder = SimRecorder::new(&agents, true);
        let mut rounds = SimRounds {
            engine: &mut engine,
            recorder: &mut recorder,
            options: RoundOptions {
                acting: true,
                only: None,
            },
            faults,
            joiners_always_finish: false,
        };
        let outcome = reconcile::drive(
            &mut rounds,
            &Goal::AllSynced,
            &drive_limits(true),
            &clock,
            |_| {
                rounds_run += 1;
            },
        )
        .await;
        agents
            .world
            .lock()
            .unwrap()
            .0
            .log
            .push(format!("up attempt {attempt}: {outcome:?}"));
        check(&agents, seed, &format!("galley up, attempt {attempt}"));
        match outcome {
            Ok(_) if all_synced(&agents) => return rounds_run,
            Ok(_) => panic!("seed {seed}: the drive ended well but the cluster is not Synced"),
            // What a command may end with: a clear reason, never a hang.
            Err(DriveError::Stopped { .. } | DriveError::StepFailed { .. }) => {}
            Err(DriveError::Refused { rule, .. })
                if attempt == 0 || rule == Rule::HighWaterMark =>
            {
                // The operator accepts the loss of the lost disk's writes.
                agents.world.lock().unwrap().0.forced = rule == Rule::HighWaterMark;
            }
            Err(error) => {
                let world = agents.world.lock().unwrap();
                panic!(
                    "seed {seed}: galley up attempt {attempt}: {error}\nlog:\n{}\nstate: {}",
                    world.0.log.join("\n"),
                    world.0.describe()
                )
            }
        }
    }
    let world = agents.world.lock().unwrap();
    panic!(
        "seed {seed}: galley up never brought the cluster back\nlog:\n{}\nstate: {}",
        world.0.log.join("\n"),
        world.0.describe()
    )
}

/// A rolling restart: each node stopped, started as a joiner and waited for through
/// the engine's watch (`reconcile::wait_synced`), while faults strike; afterwards the
/// controller's loop must bring back whatever the faults took down.
async fn rolling_schedule(seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let node_count = if rng.gen_bool(0.25) { 5 } else { 3 };
    let mut cluster = Cluster::new(node_count);
    cluster.starts_may_fail = false;
    let agents = SimAgents::new(cluster, StdRng::seed_from_u64(seed + 11));
    let clock = TokioClock(tokio::time::Instant::now());
    let mut faults = Faults {
        rng: StdRng::seed_from_u64(rng.gen()),
        chance: 0.1,
        rounds: 10 * node_count,
    };
    let mut waits = 0;
    for index in (0..node_count).rev() {
        let name = format!("node{}", index + 1);
        let ready = {
            let mut world = agents.world.lock().unwrap();
            let (cluster, model_rng) = &mut *world;
            faults.strike(cluster);
            cluster.tick(model_rng, true);
            // The restart's preflight: every node Synced and every agent answering.
            cluster.all_synced() && cluster.nodes.iter().all(|node| node.agent_reachable)
        };
        if !ready {
            break;
        }
        // A fault may have made its agent unreachable: the restart stops there.
        if agents.stop(&name).await.is_err()
            || agents.start(&name, StartMode::Join, false).await.is_err()
        {
            break;
        }
        let mut engine = engine(&agents, Policy::default());
        let agents_for_time = agents.clone();
        let outcome =
            reconcile::wait_synced(&mut engine, &name, &drive_limits(true), &clock, |_| {
                let mut world = agents_for_time.world.lock().unwrap();
                let (cluster, model_rng) = &mut *world;
                cluster.tick(model_rng, false);
            })
            .await;
        waits += 1;
        check(&agents, seed, &format!("rolling restart of {name}"));
        let synced = agents.world.lock().unwrap().0.nodes[index].synced();
        match outcome {
            Ok(_) if synced => {}
            Ok(_) => panic!("seed {seed}: the wait for {name} ended, but it is not Synced"),
            Err(DriveError::Stopped { .. })
                if !agents.world.lock().unwrap().0.nodes[index].running =>
            {
                break
            }
            Err(error) => panic!("seed {seed}: the wait for {name}: {error}"),
        }
    }
    Faults::calm(&mut agents.world.lock().unwrap().0);
    let snapshot = agents.world.lock().unwrap().0.clone();
    check_liveness(&snapshot, seed).await;
    waits
}

/// A full crash, then the controller's loop (planning again after each failed step)
/// with faults in its first rounds: once they stop, every node is back.
async fn full_crash_schedule(seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = crashed_cluster(&mut rng);
    for node in &mut cluster.nodes {
        node.broken = false;
    }
    let lost_disk = cluster.nodes.iter().any(|node| !node.has_data);
    let agents = SimAgents::new(cluster, StdRng::seed_from_u64(seed + 13));
    let mut engine = engine(&agents, Policy::default());
    let mut recorder = SimRecorder::new(&agents, false);
    let mut rounds = SimRounds {
        engine: &mut engine,
        recorder: &mut recorder,
        options: RoundOptions {
            acting: true,
            only: None,
        },
        faults: Faults {
            rng: StdRng::seed_from_u64(rng.gen()),
            chance: 0.2,
            rounds: 15,
        },
        joiners_always_finish: false,
    };
    let clock = TokioClock(tokio::time::Instant::now());
    let mut rounds_run = 0;
    let limits = Limits {
        stall: Duration::from_secs(300),
        ..drive_limits(false)
    };
    let outcome = reconcile::drive(&mut rounds, &Goal::AllSynced, &limits, &clock, |_| {
        rounds_run += 1
    })
    .await;
    check(&agents, seed, "full-crash recovery");
    match outcome {
        Ok(_) => assert!(
            all_synced(&agents),
            "seed {seed}: ended well but not Synced"
        ),
        // A lost disk that held the newest writes: only an operator may accept the loss.
        Err(DriveError::Refused {
            rule: Rule::HighWaterMark | Rule::NewCluster,
            ..
        }) if lost_disk => {}
        // A node whose starts keep failing (8% each here) waits for an operator when
        // rebuilding it is off.
        Err(DriveError::Refused {
            rule: Rule::Policy, ..
        }) => {}
        // A node that failed again after one rebuild: its first copy stays aside, and
        // the next rebuild waits for an operator.
        Err(DriveError::Refused {
            rule: Rule::WipeAfterFailedStarts,
            ..
        }) => {}
        Err(error) => {
            let world = agents.world.lock().unwrap();
            panic!(
                "seed {seed}: full-crash recovery: {error}\nlog:\n{}\nstate: {}",
                world.0.log.join("\n"),
                world.0.describe()
            )
        }
    }
    rounds_run
}

fn seeds() -> Box<dyn Iterator<Item = u64>> {
    if let Ok(seed) = std::env::var("GALLEY_SIM_SEED") {
        let seed: u64 = seed.parse().expect("GALLEY_SIM_SEED is a number");
        return Box::new(std::iter::once(seed));
    }
    // GALLEY_SIM_SEEDS=20000 runs a longer search.
    let count: u64 = std::env::var("GALLEY_SIM_SEEDS")
        .map_or(SEEDS, |n| n.parse().expect("GALLEY_SIM_SEEDS is a number"));
    Box::new(0..count)
}

#[tokio::test(start_paused = true)]
async fn the_controllers_loop_keeps_the_safety_rules_under_random_faults() {
    let (mut rounds, mut liveness_checks, mut count) = (0, 0, 0);
    let mut applied: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in seeds() {
        let outcome = controller_schedule(seed).await;
        rounds += outcome.rounds;
        liveness_checks += outcome.liveness_checks;
        count += 1;
        for (verb, n) in outcome.applied {
            *applied.entry(verb).or_default() += n;
        }
    }
    eprintln!("{count} seeds x {STEPS} steps: {rounds} engine rounds, {liveness_checks} liveness checks, applied {applied:?}");
    if count < SEEDS {
        return;
    }
    // The schedules must reach every kind of step, not only the healthy cluster.
    for verb in [
        "start",
        "stop",
        "recover",
        "clear-bootstrap-flag",
        "bootstrap",
        "forced bootstrap",
        "wipe-and-start",
    ] {
        assert!(
            applied.get(verb).copied().unwrap_or(0) > 0,
            "no `{verb}` ever reached a node: {applied:?}"
        );
    }
    assert!(
        liveness_checks > SEEDS as usize,
        "only {liveness_checks} liveness checks"
    );
}

#[tokio::test(start_paused = true)]
async fn galley_up_after_a_crash_and_from_nothing_keeps_the_rules_and_comes_up() {
    let (mut rounds, mut count) = (0, 0);
    for seed in seeds() {
        let mut rng = StdRng::seed_from_u64(seed);
        rounds += up_schedule(seed, crashed_cluster(&mut rng)).await;
        let node_count = if rng.gen_bool(0.25) { 5 } else { 3 };
        rounds += up_schedule(seed, Cluster::empty(node_count)).await;
        count += 1;
    }
    eprintln!("{count} seeds x 2 bring-ups (after a crash, from nothing): {rounds} engine rounds");
}

#[tokio::test(start_paused = true)]
async fn a_rolling_restart_waits_through_the_engine_and_keeps_the_rules() {
    let (mut waits, mut count) = (0, 0);
    for seed in seeds() {
        waits += rolling_schedule(seed).await;
        count += 1;
    }
    eprintln!("{count} seeds: {waits} waits for Synced through the engine");
    assert!(
        waits >= count * 2,
        "the faults cut almost every restart short: {waits} waits"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_crash_recovers_through_the_engine_under_faults() {
    let (mut rounds, mut count) = (0, 0);
    for seed in seeds() {
        rounds += full_crash_schedule(seed).await;
        count += 1;
    }
    eprintln!("{count} seeds: {rounds} engine rounds of full-crash recovery");
}
