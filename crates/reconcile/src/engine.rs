//! One round of the engine: observe every node, plan, record, act on what may run.
//! What differs between callers (the controller's history and approvals, a CLI's
//! progress lines) goes through `Recorder`; the decisions themselves come only from
//! `planner::plan`.

use agent::api::{NodeReport, StartMode};
use planner::{
    Action, AgentState, Blocked, Facts, HighWaterMarks, NodeView, Observation, Operator, Plan,
    Policy, Rule, Step,
};

use crate::agents::{NodeAgents, StepError};
use crate::memory::{Memory, Noticed};

/// One node as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Lower is preferred.
    pub priority: u32,
    /// false for a node of an imported cluster: observed, never acted on.
    pub managed: bool,
}

/// How the engine judges time and what it may do by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub policy: Policy,
    /// Running outside a Primary component (or not Synced) for longer than this is stuck.
    pub stuck_after_ms: i64,
}

/// What a round's caller adds to the agents' reports before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// The high-water marks, per cluster history.
    pub marks: HighWaterMarks,
    /// The operator allowed a bootstrap below the high-water mark.
    pub force: bool,
    pub operator: Operator,
    /// Nodes an operator stopped on purpose: never started by the engine.
    pub stopped_on_purpose: Vec<String>,
}

/// How one round may act.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundOptions {
    /// false: observe and plan only (a dry run, a wait, or a controller without the lease).
    pub acting: bool,
    /// Act only on this node (`galley start NODE`, a host's own join); steps for the
    /// other nodes are left to their own commands.
    pub only: Option<String>,
}

/// A step that ran and how it ended.
pub type Executed = (Step, Result<String, StepError>);

/// What one round saw and did.
#[derive(Debug, Clone)]
pub struct Round {
    pub at_ms: i64,
    /// Every node's report in priority order; None when its agent did not answer.
    pub reports: Vec<(String, Option<NodeReport>)>,
    pub noticed: Vec<Noticed>,
    pub observation: Observation,
    pub plan: Plan,
    pub acting: bool,
    pub executed: Vec<Executed>,
}

/// Why a round could not run: its recorder could not read what the planner needs (the
/// controller's store, say). Planning without it could break a safety rule.
pub type RoundError = Box<dyn std::error::Error + Send + Sync>;

/// What differs between the engine's callers. Every method but `observed` has a
/// default that records nothing and approves everything.
pub trait Recorder: Send {
    /// Takes in the round's reports (history, high-water mark) and returns the inputs
    /// the planner needs besides them.
    fn observed(
        &mut self,
        reports: &[(String, Option<NodeReport>)],
        noticed: &[Noticed],
        now: i64,
    ) -> Result<Inputs, RoundError>;

    /// A last word on the plan (the controller leaves imported nodes alone).
    fn revise(&mut self, plan: Plan, _observation: &Observation) -> Plan {
        plan
    }

    fn planned(&mut self, _observation: &Observation, _plan: &Plan, _now: i64) {}

    /// Whether a step that needs an operator's confirmation may run now.
    fn approved(
        &mut self,
        _step: &Step,
        _plan: &Plan,
        _observation: &Observation,
        _now: i64,
    ) -> bool {
        true
    }

    fn starting(&mut self, _step: &Step, _now: i64) {}

    fn executed(
        &mut self,
        _plan: &Plan,
        _step: &Step,
        _result: &Result<String, StepError>,
        _observation: &Observation,
        _now: i64,
    ) {
    }
}

/// Records nothing; the planner gets these inputs every round.
#[derive(Debug, Clone, Default)]
pub struct NoRecorder(pub Inputs);

impl Recorder for NoRecorder {
    fn observed(
        &mut self,
        _: &[(String, Option<NodeReport>)],
        _: &[Noticed],
        _: i64,
    ) -> Result<Inputs, RoundError> {
        Ok(self.0.clone())
    }
}

/// The facts an agent's report gives, before any verdict of time.
pub fn reported_facts(report: &NodeReport) -> Facts {
    Facts {
        running: report.process.running,
        wsrep: report.wsrep.clone(),
        has_data: report.data_dir_initialized,
        grastate: report.grastate.clone(),
        recovered: report.recovered.clone(),
        stuck: false,
        failed_starts: 0,
        backing_off: false,
        set_aside: report.set_aside.clone(),
        stale_view: report.stale_view.clone(),
    }
}

/// Marks the reports of running nodes whose view the others have left
/// (`galera::stale_views`; docs/galera.md, "A node that froze and resumed"): a node frozen
/// for a while still says Synced and Primary for seconds after it resumes. Every reader
/// of one round's reports (the planner, the waits, the status) then sees it as not
/// Synced.
pub fn mark_stale_views(reports: &mut [(String, Option<NodeReport>)]) {
    let running = reports.iter().filter_map(|(name, report)| {
        let report = report.as_ref()?;
        let wsrep = report.wsrep.as_ref().filter(|_| report.process.running)?;
        Some((name.as_str(), wsrep))
    });
    let stale = galera::stale_views(running);
    for (name, report) in reports.iter_mut() {
        if let (Some(view), Some(report)) = (stale.iter().find(|v| &v.node == name), report) {
            report.stale_view = Some(view.reason());
        }
    }
}

/// The committed position a report proves, for the high-water mark: a running Primary
/// node's last committed seqno, or a stopped node's saved or recovered position (a node
/// stopped at seqno N means N was committed, even if no running node said so).
pub fn proven_position(report: &NodeReport) -> Option<galera::Position> {
    if report.process.running {
        let wsrep = report.wsrep.as_ref()?;
        let proven =
            wsrep.is_primary() && wsrep.last_committed >= 0 && !wsrep.cluster_state_uuid.is_empty();
        return proven.then(|| galera::Position {
            uuid: wsrep.cluster_state_uuid.clone(),
            seqno: wsrep.last_committed,
        });
    }
    report
        .grastate
        .as_ref()
        .and_then(galera::GraState::position)
        .or_else(|| report.recovered.clone())
        .filter(|position| !position.is_empty())
}

/// The engine of one cluster: its members, settings, agents and memory.
#[derive(Debug)]
pub struct Engine<A> {
    members: Vec<Member>,
    agents: A,
    settings: Settings,
    memory: Memory,
    /// The spec's arbitrators (garbd), which vote in the group and have no agent.
    arbitrators: u32,
}

impl<A: NodeAgents> Engine<A> {
    /// `members` in any order; the engine keeps them by priority.
    pub fn new(mut members: Vec<Member>, agents: A, settings: Settings) -> Engine<A> {
        members.sort_by_key(|member| member.priority);
        Engine {
            members,
            agents,
            settings,
            memory: Memory::default(),
            arbitrators: 0,
        }
    }

    /// The engine of a cluster whose group also has `count` arbitrators (garbd): the
    /// planner then knows that a Primary view may count them (`Observation::arbitrators`).
    pub fn with_arbitrators(mut self, count: usize) -> Engine<A> {
        self.arbitrators = u32::try_from(count).unwrap_or(u32::MAX);
        self
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn agents(&self) -> &A {
        &self.agents
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Asks every agent at once, and judges each view against the others'.
    pub async fn gather(&self) -> Vec<(String, Option<NodeReport>)> {
        let asks = self.members.iter().map(|member| async {
            let report = self.agents.status(&member.name).await.ok();
            (member.name.clone(), report)
        });
        let mut reports = futures_util::future::join_all(asks).await;
        mark_stale_views(&mut reports);
        reports
    }

    /// What the planner gets: every node's facts with the engine's verdicts, and the inputs.
    pub fn observation(
        &self,
        reports: &[(String, Option<NodeReport>)],
        inputs: &Inputs,
        now: i64,
    ) -> Observation {
        Observation {
            nodes: self
                .members
                .iter()
                .zip(reports)
                .map(|(member, (_, report))| NodeView {
                    name: member.name.clone(),
                    priority: member.priority,
                    agent: match report {
                        None => AgentState::Unreachable,
                        Some(report) => AgentState::Reported(Box::new(self.memory.facts(
                            &member.name,
                            report,
                            now,
                            self.settings.stuck_after_ms,
                        ))),
                    },
                })
                .collect(),
            marks: inputs.marks.clone(),
            policy: self.settings.policy.clone(),
            force: inputs.force,
            operator: inputs.operator.clone(),
            arbitrators: self.arbitrators,
        }
    }

    /// One observe, plan, record and act round at `now` (the clock is read once, by
    /// the caller).
    pub async fn round<R: Recorder>(
        &mut self,
        now: i64,
        options: &RoundOptions,
        recorder: &mut R,
    ) -> Result<Round, RoundError> {
        let reports = self.gather().await;
        let noticed = self.memory.remember(&reports, now);
        let inputs = recorder.observed(&reports, &noticed, now)?;
        let observation = self.observation(&reports, &inputs, now);
        let plan = planner::respect_operator_stops(
            planner::plan(&observation),
            &observation,
            &inputs.stopped_on_purpose,
        );
        let plan = recorder.revise(plan, &observation);
        recorder.planned(&observation, &plan, now);
        let executed = if options.acting {
            self.act(&plan, &observation, options, recorder, now).await
        } else {
            Vec::new()
        };
        Ok(Round {
            at_ms: now,
            reports,
            noticed,
            observation,
            plan,
            acting: options.acting,
            executed,
        })
    }

    /// Runs the plan's runnable steps that policy allows or an operator approved.
    async fn act<R: Recorder>(
        &mut self,
        plan: &Plan,
        observation: &Observation,
        options: &RoundOptions,
        recorder: &mut R,
        now: i64,
    ) -> Vec<Executed> {
        let may_act_on = |node: &str| {
            self.members
                .iter()
                .any(|member| member.name == node && member.managed)
                && options.only.as_deref().is_none_or(|only| only == node)
        };
        let mut steps: Vec<Step> = plan
            .runnable()
            .iter()
            .filter(|step| may_act_on(step.action.node()))
            .cloned()
            .collect();
        let policy_refused = matches!(
            plan.blocked,
            Some(Blocked::Refused {
                rule: Rule::Policy,
                ..
            })
        );
        // A plan refused only by policy runs when an operator approved its first step.
        if steps.is_empty() && policy_refused {
            if let Some(first) = plan
                .steps
                .first()
                .filter(|step| may_act_on(step.action.node()))
            {
                steps.push(first.clone());
            }
        }
        steps.retain(|step| {
            !(step.needs_confirmation || policy_refused)
                || recorder.approved(step, plan, observation, now)
        });
        // Position recoveries only read stopped nodes: run them all at once, since each
        // starts InnoDB and the bootstrap waits for the slowest.
        if steps.len() > 1
            && steps
                .iter()
                .all(|step| matches!(step.action, Action::Recover { .. }))
        {
            for step in &steps {
                recorder.starting(step, now);
            }
            let agents = &self.agents;
            let recoveries = steps.into_iter().map(|step| async move {
                let result = agents
                    .recover(step.action.node())
                    .await
                    .map(|position| format!("recovered position {position}"));
                (step, result)
            });
            let executed = futures_util::future::join_all(recoveries).await;
            for (step, result) in &executed {
                recorder.executed(plan, step, result, observation, now);
            }
            return executed;
        }
        let mut executed = Vec::new();
        for step in steps {
            recorder.starting(&step, now);
            let result = self.execute(&step, now).await;
            recorder.executed(plan, &step, &result, observation, now);
            executed.push((step, result));
        }
        executed
    }

    /// Starts the node and remembers that the engine did, so that its patience (stuck)
    /// and failed-start count run from now.
    async fn start_tracked(
        &mut self,
        node: &str,
        mode: StartMode,
        mark_safe: bool,
        now: i64,
    ) -> Result<u32, StepError> {
        let pid = self.agents.start(node, mode, mark_safe).await?;
        self.memory.started(node, now);
        Ok(pid)
    }

    async fn execute(&mut self, step: &Step, now: i64) -> Result<String, StepError> {
        let node = step.action.node();
        match &step.action {
            Action::Start { .. } => {
                let pid = self
                    .start_tracked(node, StartMode::Join, false, now)
                    .await?;
                Ok(format!("started as a joiner (pid {pid})"))
            }
            Action::Stop { .. } => {
                let saved = self.agents.stop(node).await?;
                Ok(format!(
                    "stopped; saved position {:?}",
                    saved.and_then(|g| g.position()).map(|p| p.seqno)
                ))
            }
            Action::Restart { .. } => {
                self.agents.stop(node).await?;
                let pid = self
                    .start_tracked(node, StartMode::Join, false, now)
                    .await?;
                self.memory.restarted_stuck(node, now);
                Ok(format!("restarted as a joiner (pid {pid})"))
            }
            Action::Recover { .. } => {
                let position = self.agents.recover(node).await?;
                Ok(format!("recovered position {position}"))
            }
            Action::ClearBootstrapFlag { .. } => {
                self.agents.clear_bootstrap_flag(node).await?;
                Ok("cleared safe_to_bootstrap".to_owned())
            }
            Action::Bootstrap { mark_safe, .. } => {
                let pid = self
                    .start_tracked(node, StartMode::Bootstrap, *mark_safe, now)
                    .await?;
                Ok(format!("bootstrapped a new Primary Component (pid {pid})"))
            }
            Action::CreateCluster { initialize, .. } => {
                if *initialize {
                    self.agents.init(node).await?;
                }
                let pid = self
                    .start_tracked(node, StartMode::Bootstrap, false, now)
                    .await?;
                Ok(format!("created a new cluster (pid {pid})"))
            }
            Action::WipeAndStart { .. } => {
                let moved_to = self.agents.move_aside(node, &now.to_string()).await?;
                let pid = self
                    .start_tracked(node, StartMode::Join, false, now)
                    .await?;
                Ok(format!(
                    "data moved to {moved_to}; started empty for a full SST (pid {pid})"
                ))
            }
        }
    }
}
