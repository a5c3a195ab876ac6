//! The galley controller: every period it observes each node through its agent (which
//! reads the server over SQL), keeps the history in SQLite, asks the pure planner what to
//! do, and acts through the agents. It acts only while it holds the store's lease, so
//! that a second controller or a `galley recover` never acts at the same time.
//!
//! Desired state vs observed state: the desired state is "every node Synced in one
//! Primary component", minus the nodes an operator stopped on purpose. Each tick closes
//! the gap by at most one step (or all position recoveries together) and then observes
//! again, so a controller that dies at any point resumes correctly.

mod alerts;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use agent::api::{NodeReport, StartMode};
use agent::AgentClient;
use anyhow::Context as _;
use planner::{
    Action, AgentState, Blocked, Facts, Mark, NodeView, Observation, Plan, Policy, Situation, Step,
};
use serde_json::json;
use spec::{ClusterSpec, ConfirmStep, ControllerSpec, NodeSpec};
use store::{HighWaterMark, NewDecision, NewEvent, Sample, Severity, Store, Transition};

pub use alerts::{Alert, Alerts};

/// Wall-clock milliseconds since the epoch, for the history. Durations in the control
/// logic are differences of these values, computed here and passed to the planner as
/// verdicts (stuck, backing off), so the planner itself never reads a clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Records the operator's intent for a node (`galley stop` / `galley start`), so that
/// the controller does not undo it. Does nothing for a cluster without a controller.
pub fn set_desired(spec: &ClusterSpec, node: &str, running: bool) -> anyhow::Result<()> {
    let Some(settings) = &spec.controller else {
        return Ok(());
    };
    let store = Store::open(&store_path(settings))?;
    store.set_desired(node, running, now_ms())?;
    Ok(())
}

/// Where the controller keeps its history for a spec.
pub fn store_path(settings: &ControllerSpec) -> PathBuf {
    settings.state_dir.join("galley.db")
}

/// The `[controller]` section, or its defaults under `default_state_dir`.
pub fn settings_for(spec: &ClusterSpec, default_state_dir: &std::path::Path) -> ControllerSpec {
    spec.controller.clone().unwrap_or_else(|| ControllerSpec {
        address: "127.0.0.1".to_owned(),
        port: 4600,
        state_dir: default_state_dir.to_path_buf(),
        interval_ms: 1000,
        stuck_after_s: 30,
        retention_hours: 168,
        auto_recover_nodes: true,
        auto_recover_cluster: true,
        confirm: Vec::new(),
        allow_wipe: false,
        wipe_after_failed_starts: 3,
        flow_control_threshold: 0.1,
        alert_command: Vec::new(),
        alert_webhook: None,
    })
}

/// How this controller instance behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lease owner name, e.g. `controller:1234` or `recover:5678`.
    pub owner: String,
    /// Run steps that policy says need confirmation (`galley recover --yes`).
    pub approve_all: bool,
    /// Allow a bootstrap below the high-water mark (`--force`).
    pub force: bool,
}

#[derive(Debug, Default)]
struct NodeMemory {
    label: Option<String>,
    /// Running but not Synced in a Primary component since then.
    unsettled_since_ms: Option<i64>,
    /// Set when this controller started the node, cleared once it is Synced.
    started_at_ms: Option<i64>,
    failed_starts: u32,
    last_failure_ms: Option<i64>,
    /// For the QPS and multi-writer checks.
    last_questions: Option<(i64, i64)>,
    last_replicated: Option<i64>,
    flow_control_alerted: bool,
}

impl NodeMemory {
    /// This controller just started the node: its patience (stuck) starts now.
    fn started(&mut self, now: i64) {
        self.started_at_ms = Some(now);
        self.unsettled_since_ms = Some(now);
    }
}

#[derive(Debug, Default)]
struct Memory {
    nodes: HashMap<String, NodeMemory>,
    last_plan_key: Option<String>,
    recovering: bool,
    no_primary_alerted: bool,
    multi_writer_alerted: bool,
    last_prune_ms: i64,
}

/// What one tick saw and did; `galley recover` prints it.
#[derive(Debug, Clone)]
pub struct TickReport {
    pub observation: Observation,
    pub plan: Plan,
    pub reports: Vec<(String, Option<NodeReport>)>,
    pub acting: bool,
    pub executed: Vec<(Step, Result<String, String>)>,
}

pub struct Controller {
    spec: ClusterSpec,
    settings: ControllerSpec,
    nodes: Vec<(NodeSpec, AgentClient)>,
    store: Mutex<Store>,
    memory: tokio::sync::Mutex<Memory>,
    alerts: Alerts,
    options: Options,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("cluster", &self.spec.name)
            .field("owner", &self.options.owner)
            .finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(
        spec: ClusterSpec,
        settings: ControllerSpec,
        token: &str,
        options: Options,
    ) -> anyhow::Result<Controller> {
        let path = store_path(&settings);
        let store = Store::open(&path)
            .with_context(|| format!("cannot open the controller's history {}", path.display()))?;
        let mut nodes: Vec<(NodeSpec, AgentClient)> = spec
            .nodes
            .iter()
            .map(|node| (node.clone(), AgentClient::new(&node.agent_address(), token)))
            .collect();
        nodes.sort_by_key(|(node, _)| node.priority);
        let alerts = Alerts::new(
            settings.alert_command.clone(),
            settings.alert_webhook.clone(),
        );
        Ok(Controller {
            spec,
            settings,
            nodes,
            store: Mutex::new(store),
            memory: tokio::sync::Mutex::new(Memory::default()),
            alerts,
            options,
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }

    fn policy(&self) -> Policy {
        Policy {
            auto_recover_nodes: self.settings.auto_recover_nodes,
            auto_recover_cluster: self.settings.auto_recover_cluster,
            confirm_bootstrap: self.settings.confirm.contains(&ConfirmStep::Bootstrap),
            confirm_restart: self.settings.confirm.contains(&ConfirmStep::Restart),
            allow_wipe: self.settings.allow_wipe,
            wipe_after_failed_starts: self.settings.wipe_after_failed_starts,
        }
    }

    /// Records an event and, for warnings and worse, sends it as an alert.
    fn event(&self, severity: Severity, kind: &str, node: Option<&str>, message: String) {
        let at_ms = now_ms();
        match severity {
            Severity::Info => tracing::info!(kind, node, "{message}"),
            Severity::Warning => tracing::warn!(kind, node, "{message}"),
            Severity::Critical => tracing::error!(kind, node, "{message}"),
        }
        let event = NewEvent {
            at_ms,
            severity,
            kind: kind.to_owned(),
            node: node.map(str::to_owned),
            message: message.clone(),
        };
        if let Err(error) = self.store().record_event(&event) {
            tracing::error!("cannot record an event: {error}");
        }
        if severity != Severity::Info {
            self.alerts.send(Alert {
                cluster: self.spec.name.clone(),
                at_ms,
                severity,
                kind: kind.to_owned(),
                node: node.map(str::to_owned),
                message,
            });
        }
    }

    fn decision(
        &self,
        rule: &str,
        action: &str,
        node: Option<&str>,
        reason: &str,
        evidence: serde_json::Value,
        outcome: &str,
    ) {
        let decision = NewDecision {
            at_ms: now_ms(),
            rule: rule.to_owned(),
            action: action.to_owned(),
            node: node.map(str::to_owned),
            reason: reason.to_owned(),
            evidence,
            outcome: outcome.to_owned(),
        };
        if let Err(error) = self.store().record_decision(&decision) {
            tracing::error!("cannot record a decision: {error}");
        }
    }

    /// Asks every agent at once.
    async fn gather(&self) -> Vec<(NodeSpec, Option<NodeReport>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (_, client)) in self.nodes.iter().enumerate() {
            let client = client.clone();
            tasks.spawn(async move { (index, client.status().await.ok()) });
        }
        let mut reports: Vec<Option<NodeReport>> = vec![None; self.nodes.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, report)) = joined {
                reports[index] = report;
            }
        }
        self.nodes
            .iter()
            .map(|(node, _)| node.clone())
            .zip(reports)
            .collect()
    }

    /// What the planner gets: every node's facts, the high-water mark, the policy.
    fn observation(
        &self,
        memory: &Memory,
        gathered: &[(NodeSpec, Option<NodeReport>)],
        now: i64,
        force: bool,
    ) -> anyhow::Result<Observation> {
        let high_water_mark = self.store().high_water_mark()?.map(|mark| Mark {
            uuid: mark.uuid,
            seqno: mark.seqno,
        });
        Ok(Observation {
            nodes: gathered
                .iter()
                .map(|(node, report)| NodeView {
                    name: node.name.clone(),
                    priority: node.priority,
                    agent: match report {
                        None => AgentState::Unreachable,
                        Some(report) => {
                            AgentState::Reported(Box::new(self.facts(memory, node, report, now)))
                        }
                    },
                })
                .collect(),
            high_water_mark,
            policy: self.policy(),
            force,
        })
    }

    /// The plan for an observation, with the nodes stopped on purpose left alone.
    fn plan(&self, observation: &Observation) -> anyhow::Result<Plan> {
        let stopped_on_purpose = self.store().stopped_on_purpose()?;
        Ok(planner::respect_operator_stops(
            planner::plan(observation),
            observation,
            &stopped_on_purpose,
        ))
    }

    /// Observes and plans without recording or acting (`galley recover` without --yes).
    pub async fn plan_only(&self) -> anyhow::Result<TickReport> {
        let now = now_ms();
        let gathered = self.gather().await;
        let memory = self.memory.lock().await;
        let observation = self.observation(&memory, &gathered, now, self.options.force)?;
        let plan = self.plan(&observation)?;
        Ok(TickReport {
            observation,
            plan,
            reports: gathered
                .into_iter()
                .map(|(node, report)| (node.name, report))
                .collect(),
            acting: false,
            executed: Vec::new(),
        })
    }

    /// One observe, plan, act round.
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let now = now_ms();
        let ttl = (self.settings.interval_ms as i64 * 5).max(5000);
        let acting = self.store().acquire_lease(&self.options.owner, now, ttl)?;
        let gathered = self.gather().await;
        let mut memory = self.memory.lock().await;
        self.record_observations(&mut memory, &gathered, now);
        let force =
            self.options.force || self.store().approval("force", now - 3_600_000)?.is_some();
        let observation = self.observation(&memory, &gathered, now, force)?;
        let plan = self.plan(&observation)?;
        self.record_plan(&mut memory, &plan, &observation);
        let mut executed = Vec::new();
        if acting {
            executed = self.act(&mut memory, &plan, &observation).await;
        }
        if now - memory.last_prune_ms > 3_600_000 {
            memory.last_prune_ms = now;
            let older_than = now - self.settings.retention_hours as i64 * 3_600_000;
            if let Err(error) = self.store().prune(older_than) {
                tracing::warn!("pruning the history failed: {error}");
            }
        }
        Ok(TickReport {
            observation,
            plan,
            reports: gathered
                .into_iter()
                .map(|(node, report)| (node.name, report))
                .collect(),
            acting,
            executed,
        })
    }

    fn facts(&self, memory: &Memory, node: &NodeSpec, report: &NodeReport, now: i64) -> Facts {
        let remembered = memory.nodes.get(&node.name);
        let unsettled_since = remembered.and_then(|m| m.unsettled_since_ms);
        let stuck = report.process.running
            && !report.is_synced()
            && unsettled_since
                .is_some_and(|since| now - since > self.settings.stuck_after_s as i64 * 1000);
        let failed_starts = remembered.map_or(0, |m| m.failed_starts);
        let backing_off = remembered
            .and_then(|m| m.last_failure_ms)
            .is_some_and(|at| {
                let backoff_ms = (1000i64 << failed_starts.min(6)).min(60_000);
                now - at < backoff_ms
            });
        Facts {
            running: report.process.running,
            wsrep: report.wsrep.clone(),
            has_data: report.data_dir_initialized,
            grastate: report.grastate.clone(),
            recovered: report.recovered.clone(),
            stuck,
            failed_starts,
            backing_off,
        }
    }

    /// History and alerts from one observation: transitions, samples, the high-water
    /// mark, flow control and multi-writer checks, failed starts.
    fn record_observations(
        &self,
        memory: &mut Memory,
        gathered: &[(NodeSpec, Option<NodeReport>)],
        now: i64,
    ) {
        let mut samples = Vec::new();
        let mut writers = Vec::new();
        for (node, report) in gathered {
            let remembered = memory.nodes.entry(node.name.clone()).or_default();
            let label = report
                .as_ref()
                .map_or_else(|| "agent down".to_owned(), NodeReport::state_label);
            if remembered.label.as_deref() != Some(label.as_str()) {
                let from = remembered
                    .label
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned());
                let transition = Transition {
                    at_ms: now,
                    node: node.name.clone(),
                    from: from.clone(),
                    to: label.clone(),
                };
                if let Err(error) = self.store().record_transition(&transition) {
                    tracing::error!("cannot record a transition: {error}");
                }
                let was_serving = from == "Synced" || from == "Donor/Desynced";
                if was_serving
                    && (label == "stopped" || label == "agent down" || label == "non-Primary")
                {
                    let why = report
                        .as_ref()
                        .and_then(|r| r.process.last_exit.clone())
                        .unwrap_or_default();
                    self.event(
                        Severity::Critical,
                        "node_down",
                        Some(&node.name),
                        format!("{} went from {from} to {label}. {why}", node.name),
                    );
                } else if label == "Synced" && remembered.label.is_some() {
                    self.event(
                        Severity::Info,
                        "node_synced",
                        Some(&node.name),
                        format!("{} is Synced (was {from})", node.name),
                    );
                }
                remembered.label = Some(label.clone());
            }
            let Some(report) = report else {
                continue;
            };
            // A saved or recovered position is proof of committed history too: a node
            // stopped at seqno N means N was committed, even if no running node said so.
            if !report.process.running {
                let proven = report
                    .grastate
                    .as_ref()
                    .and_then(galera::GraState::position)
                    .or_else(|| report.recovered.clone());
                if let Some(position) = proven.filter(|p| !p.is_empty()) {
                    let mark = HighWaterMark {
                        uuid: position.uuid,
                        seqno: position.seqno,
                        node: node.name.clone(),
                        at_ms: now,
                    };
                    if let Err(error) = self.store().raise_high_water_mark(&mark) {
                        tracing::error!("cannot raise the high-water mark: {error}");
                    }
                }
            }
            if report.process.running && !report.is_synced() {
                remembered.unsettled_since_ms.get_or_insert(now);
            } else {
                remembered.unsettled_since_ms = None;
            }
            if report.is_synced() {
                remembered.started_at_ms = None;
                remembered.failed_starts = 0;
                remembered.last_failure_ms = None;
            } else if !report.process.running
                && report.process.last_exit.is_some()
                && remembered.started_at_ms.take().is_some()
            {
                remembered.failed_starts += 1;
                remembered.last_failure_ms = Some(now);
                self.event(
                    Severity::Warning,
                    "start_failed",
                    Some(&node.name),
                    format!(
                        "{} failed to start ({} in a row): {}",
                        node.name,
                        remembered.failed_starts,
                        report.process.last_exit.clone().unwrap_or_default()
                    ),
                );
            }
            let Some(wsrep) = &report.wsrep else {
                continue;
            };
            let queries_per_second = match remembered.last_questions {
                Some((at, questions)) if now > at && wsrep.questions >= questions => {
                    (wsrep.questions - questions) as f64 * 1000.0 / (now - at) as f64
                }
                _ => 0.0,
            };
            remembered.last_questions = Some((now, wsrep.questions));
            if let Some(previous) = remembered.last_replicated {
                if wsrep.replicated > previous {
                    writers.push(node.name.clone());
                }
            }
            remembered.last_replicated = Some(wsrep.replicated);
            if wsrep.flow_control_paused > self.settings.flow_control_threshold {
                if !remembered.flow_control_alerted {
                    remembered.flow_control_alerted = true;
                    self.event(
                        Severity::Warning,
                        "flow_control",
                        Some(&node.name),
                        format!(
                            "{} reports flow control paused {:.0}% of the time (threshold {:.0}%): a slow node is throttling the cluster's writes",
                            node.name,
                            wsrep.flow_control_paused * 100.0,
                            self.settings.flow_control_threshold * 100.0
                        ),
                    );
                }
            } else {
                remembered.flow_control_alerted = false;
            }
            samples.push(Sample {
                at_ms: now,
                node: node.name.clone(),
                last_committed: wsrep.last_committed,
                queries_per_second,
                flow_control_paused: wsrep.flow_control_paused,
                recv_queue: wsrep.local_recv_queue,
                send_queue: wsrep.local_send_queue,
                cert_failures: wsrep.cert_failures,
                bf_aborts: wsrep.bf_aborts,
                connections: wsrep.threads_connected,
                replicated: wsrep.replicated,
            });
            if wsrep.is_primary()
                && wsrep.last_committed >= 0
                && !wsrep.cluster_state_uuid.is_empty()
            {
                let mark = HighWaterMark {
                    uuid: wsrep.cluster_state_uuid.clone(),
                    seqno: wsrep.last_committed,
                    node: node.name.clone(),
                    at_ms: now,
                };
                let raised = self.store().raise_high_water_mark(&mark);
                if let Ok(false) = raised {
                    // Bound first: a MutexGuard in an `if let` scrutinee lives through
                    // the block, and the block locks the store again.
                    let stored = self.store().high_water_mark();
                    if let Ok(Some(stored)) = stored {
                        if stored.uuid != mark.uuid {
                            // A new cluster history took over (a forced or first bootstrap
                            // of other data); follow it, loudly.
                            let reason = format!(
                                "the running Primary component has cluster UUID {} instead of {}",
                                mark.uuid, stored.uuid
                            );
                            let _ = self
                                .store()
                                .reset_high_water_mark(Some(&mark), &reason, now);
                        }
                    }
                }
            }
        }
        if !samples.is_empty() {
            if let Err(error) = self.store().record_samples(&samples) {
                tracing::error!("cannot record samples: {error}");
            }
        }
        if writers.len() > 1 {
            if !memory.multi_writer_alerted {
                memory.multi_writer_alerted = true;
                self.event(
                    Severity::Warning,
                    "multiple_writers",
                    None,
                    format!(
                        "{} all replicated writes since the last observation: writes on several nodes cause certification conflicts (deadlock errors in OpenStack); send writes to one node",
                        writers.join(", ")
                    ),
                );
            }
        } else {
            memory.multi_writer_alerted = false;
        }
    }

    fn record_plan(&self, memory: &mut Memory, plan: &Plan, observation: &Observation) {
        let key = plan_key(plan);
        if memory.last_plan_key.as_deref() == Some(key.as_str()) {
            return;
        }
        memory.last_plan_key = Some(key);
        let stopped_on_purpose = matches!(
            plan.blocked,
            Some(Blocked::Waiting {
                rule: planner::Rule::Policy,
                ..
            })
        );
        let no_primary = matches!(plan.situation, Situation::NoPrimary | Situation::Stopped);
        if no_primary && !stopped_on_purpose && !memory.no_primary_alerted {
            memory.no_primary_alerted = true;
            self.event(
                Severity::Critical,
                "cluster_not_primary",
                None,
                "no node is in a Primary component: the cluster takes no writes".to_owned(),
            );
        }
        if plan.situation == Situation::Healthy {
            memory.no_primary_alerted = false;
            if memory.recovering {
                memory.recovering = false;
                self.event(
                    Severity::Info,
                    "recovery_finished",
                    None,
                    "every node is Synced in one Primary component".to_owned(),
                );
            }
            self.decision(
                "healthy",
                "none",
                None,
                "every node is Synced",
                json!({}),
                "nothing to do",
            );
            return;
        }
        let evidence = evidence(observation);
        match &plan.blocked {
            Some(Blocked::Refused { rule, reason }) => {
                self.decision(
                    &format!("{rule:?}"),
                    "none",
                    None,
                    reason,
                    evidence,
                    "refused",
                );
                self.event(
                    Severity::Critical,
                    "recovery_refused",
                    None,
                    format!("{reason} ({rule})"),
                );
            }
            Some(Blocked::Waiting { rule, reason }) => {
                self.decision(
                    &format!("{rule:?}"),
                    "wait",
                    None,
                    reason,
                    evidence,
                    "waiting",
                );
            }
            None => {}
        }
    }

    /// Runs the plan's runnable steps that policy allows or an operator approved.
    async fn act(
        &self,
        memory: &mut Memory,
        plan: &Plan,
        observation: &Observation,
    ) -> Vec<(Step, Result<String, String>)> {
        let mut executed = Vec::new();
        let mut steps: Vec<Step> = plan.runnable().to_vec();
        // A plan refused only by policy runs when an operator approved its first step.
        if steps.is_empty() {
            if let (
                Some(Blocked::Refused {
                    rule: planner::Rule::Policy,
                    ..
                }),
                Some(first),
            ) = (&plan.blocked, plan.steps.first())
            {
                steps.push(first.clone());
            }
        }
        // Position recoveries only read stopped nodes: run them all at once, since each
        // starts InnoDB and the bootstrap waits for the slowest.
        if steps.len() > 1
            && steps
                .iter()
                .all(|step| matches!(step.action, Action::Recover { .. }))
        {
            if !memory.recovering {
                memory.recovering = true;
                self.event(
                    Severity::Warning,
                    "recovery_started",
                    None,
                    "recovery started: reading every node's position".to_owned(),
                );
            }
            let mut tasks = tokio::task::JoinSet::new();
            for step in steps {
                let client = self.client(step.action.node()).cloned();
                tasks.spawn(async move {
                    let result = match client {
                        Some(client) => client
                            .recover()
                            .await
                            .map(|position| format!("recovered position {position}"))
                            .map_err(|e| e.to_string()),
                        None => Err(format!("no node {}", step.action.node())),
                    };
                    (step, result)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let Ok((step, result)) = joined else { continue };
                self.record_outcome(&step, &result, observation);
                executed.push((step, result));
            }
            return executed;
        }
        for step in steps {
            let key = step.action.key();
            let policy_blocked = matches!(
                plan.blocked,
                Some(Blocked::Refused {
                    rule: planner::Rule::Policy,
                    ..
                })
            );
            if step.needs_confirmation || policy_blocked {
                let approval = if self.options.approve_all {
                    None
                } else {
                    let approval = self.store().approval(&key, now_ms() - 3_600_000);
                    match approval {
                        Ok(Some(approval)) => Some(approval),
                        _ => {
                            self.decision(
                                &format!("{:?}", step.rule),
                                &key,
                                Some(step.action.node()),
                                &step.reason,
                                evidence(observation),
                                "needs confirmation: galley recover --yes",
                            );
                            continue;
                        }
                    }
                };
                if let Some(approval) = approval {
                    let _ = self.store().consume_approval(approval.id);
                }
            }
            if !memory.recovering {
                memory.recovering = true;
                self.event(
                    Severity::Warning,
                    "recovery_started",
                    Some(step.action.node()),
                    format!("recovery started: {} ({})", step.action, step.reason),
                );
            }
            let result = self.execute(memory, &step).await;
            self.record_outcome(&step, &result, observation);
            if let Err(error) = &result {
                self.event(
                    Severity::Warning,
                    "step_failed",
                    Some(step.action.node()),
                    format!("{} failed: {error}", step.action),
                );
            }
            executed.push((step, result));
        }
        executed
    }

    /// Records a step that ran, with its evidence and how it ended.
    fn record_outcome(
        &self,
        step: &Step,
        result: &Result<String, String>,
        observation: &Observation,
    ) {
        let outcome = match result {
            Ok(done) => format!("done: {done}"),
            Err(error) => format!("failed: {error}"),
        };
        let rule = format!("{:?}", step.rule);
        self.decision(
            &rule,
            &step.action.to_string(),
            Some(step.action.node()),
            &step.reason,
            evidence(observation),
            &outcome,
        );
    }

    fn client(&self, node: &str) -> Option<&AgentClient> {
        self.nodes
            .iter()
            .find(|(spec, _)| spec.name == node)
            .map(|(_, client)| client)
    }

    /// Starts the node and remembers that this controller did, so that its patience
    /// (stuck) and failed-start count run from now. Returns the new pid.
    async fn start_tracked(
        &self,
        memory: &mut Memory,
        node: &str,
        mode: StartMode,
        mark_safe: bool,
    ) -> Result<u32, String> {
        let client = self.client(node).ok_or_else(|| format!("no node {node}"))?;
        let started = client
            .start(mode, mark_safe)
            .await
            .map_err(|error| error.to_string())?;
        memory
            .nodes
            .entry(node.to_owned())
            .or_default()
            .started(now_ms());
        Ok(started.pid)
    }

    async fn execute(&self, memory: &mut Memory, step: &Step) -> Result<String, String> {
        let node = step.action.node();
        let client = self.client(node).ok_or_else(|| format!("no node {node}"))?;
        let describe = |error: agent::AgentError| error.to_string();
        match &step.action {
            Action::Start { .. } => {
                let pid = self
                    .start_tracked(memory, node, StartMode::Join, false)
                    .await?;
                Ok(format!("started as a joiner (pid {pid})"))
            }
            Action::Stop { .. } => {
                let stopped = client.stop().await.map_err(describe)?;
                Ok(format!(
                    "stopped; saved position {:?}",
                    stopped.grastate.and_then(|g| g.position()).map(|p| p.seqno)
                ))
            }
            Action::Restart { .. } => {
                client.stop().await.map_err(describe)?;
                let pid = self
                    .start_tracked(memory, node, StartMode::Join, false)
                    .await?;
                Ok(format!("restarted as a joiner (pid {pid})"))
            }
            Action::Recover { .. } => {
                let position = client.recover().await.map_err(describe)?;
                Ok(format!("recovered position {position}"))
            }
            Action::ClearBootstrapFlag { .. } => {
                client.clear_bootstrap_flag().await.map_err(describe)?;
                Ok("cleared safe_to_bootstrap".to_owned())
            }
            Action::Bootstrap {
                mark_safe, seqno, ..
            } => {
                // Read before the bootstrap: the planner only plans one below the mark
                // when an operator forced it, and then the mark must follow the new history.
                let mark = self.store().high_water_mark();
                let pid = self
                    .start_tracked(memory, node, StartMode::Bootstrap, *mark_safe)
                    .await?;
                let force_approval = self.store().approval("force", now_ms() - 3_600_000);
                if let Ok(Some(approval)) = force_approval {
                    let _ = self.store().consume_approval(approval.id);
                }
                if let Ok(Some(mark)) = mark.as_ref().map(Option::as_ref) {
                    if mark.seqno > *seqno {
                        let reason = format!(
                            "forced bootstrap of {node} at seqno {seqno}, below the mark {}, by an operator",
                            mark.seqno
                        );
                        let _ = self.store().reset_high_water_mark(None, &reason, now_ms());
                    }
                }
                Ok(format!("bootstrapped a new Primary Component (pid {pid})"))
            }
            Action::WipeAndStart { .. } => {
                let moved = client.wipe(&now_ms().to_string()).await.map_err(describe)?;
                let pid = self
                    .start_tracked(memory, node, StartMode::Join, false)
                    .await?;
                Ok(format!(
                    "data moved to {}; started empty for a full SST (pid {pid})",
                    moved.moved_to
                ))
            }
        }
    }

    /// Observes and acts every interval until `shutdown` resolves; then gives up the lease.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            let started = tokio::time::Instant::now();
            // A tick waits on agents (up to seconds when they are unreachable), so shutdown
            // may cut it short. That is safe: store writes are synchronous and never cut in
            // half, an agent finishes a start or stop it was asked for on its own, and the
            // next controller plans again from a fresh observation.
            tokio::select! {
                result = self.tick() => {
                    if let Err(error) = result {
                        tracing::error!("controller tick failed: {error:#}");
                    }
                }
                () = &mut shutdown => break,
            }
            tokio::select! {
                () = tokio::time::sleep_until(started + interval) => {}
                () = &mut shutdown => break,
            }
        }
        let _ = self.store().release_lease(&self.options.owner);
    }
}

/// What distinguishes one plan from the next, so unchanged plans are not re-recorded.
fn plan_key(plan: &Plan) -> String {
    let steps: Vec<String> = plan.runnable().iter().map(|s| s.action.key()).collect();
    let blocked = match &plan.blocked {
        Some(Blocked::Waiting { reason, .. }) => format!("wait:{reason}"),
        Some(Blocked::Refused { reason, .. }) => format!("refused:{reason}"),
        None => String::new(),
    };
    format!("{:?}|{}|{}", plan.situation, steps.join(","), blocked)
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
        "high_water_mark": observation.high_water_mark.as_ref().map(|m| json!({"uuid": m.uuid, "seqno": m.seqno})),
        "force": observation.force,
    })
}
