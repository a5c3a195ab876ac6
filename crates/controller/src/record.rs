//! What the controller records of each round: node transitions, metric samples, the
//! high-water mark, alerts (node down, flow control, several writers, no Primary
//! component), and every decision with its evidence and outcome. `Journal` is the
//! controller's `reconcile::Recorder`: the engine plans and acts, the journal writes it
//! all down and supplies what the planner needs from the store.

use std::collections::HashMap;

use agent::api::NodeReport;
use planner::{Action, Blocked, Observation, Plan, Rule, Situation, Step};
use reconcile::{Inputs, Noticed, Recorder, StepError};
use store::{HighWaterMark, NewDecision, NewEvent, Sample, Severity, Transition};

use crate::rates::{evidence, plan_key, rate, Seen};
use crate::{Alert, Controller, LastObservation};

/// How long an operator's approval (`galley recover --yes`) stays valid.
const APPROVAL_TTL_MS: i64 = 3_600_000;

#[derive(Debug, Default)]
struct NodeRecord {
    seen: Option<Seen>,
    /// (at_ms, Questions) for the QPS.
    last_questions: Option<(i64, i64)>,
    /// For the multi-writer check.
    last_replicated: Option<i64>,
    /// (at_ms, replicated + received bytes) for the replication rate.
    last_replication_bytes: Option<(i64, i64)>,
    flow_control_alerted: bool,
}

/// What the journal remembers between rounds.
#[derive(Debug, Default)]
pub(crate) struct RecordMemory {
    nodes: HashMap<String, NodeRecord>,
    last_plan_key: Option<String>,
    recovering: bool,
    no_primary_alerted: bool,
    multi_writer_alerted: bool,
}

/// The controller's recorder for one round. With `recording` off (a dry run) it only
/// reads the store for the planner's inputs.
pub(crate) struct Journal<'a> {
    pub controller: &'a Controller,
    pub memory: &'a mut RecordMemory,
    pub recording: bool,
    /// This round may act (the controller holds the lease).
    pub acting: bool,
}

impl Journal<'_> {
    /// Records an event and, for warnings and worse, sends it as an alert.
    fn event(&self, severity: Severity, kind: &str, node: Option<&str>, message: String, now: i64) {
        match severity {
            Severity::Info => tracing::info!(kind, node, "{message}"),
            Severity::Warning => tracing::warn!(kind, node, "{message}"),
            Severity::Critical => tracing::error!(kind, node, "{message}"),
        }
        let event = NewEvent {
            at_ms: now,
            severity,
            kind: kind.to_owned(),
            node: node.map(str::to_owned),
            message: message.clone(),
        };
        let severity_name = match severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        self.controller
            .observations
            .counters()
            .event(kind, severity_name);
        if let Err(error) = self.controller.store().record_event(&event) {
            tracing::error!("cannot record an event: {error}");
        }
        if severity != Severity::Info {
            self.controller.alerts.send(Alert {
                cluster: self.controller.spec.name.clone(),
                at_ms: now,
                severity,
                kind: kind.to_owned(),
                node: node.map(str::to_owned),
                message,
            });
        }
    }

    fn decision(&self, decision: NewDecision) {
        self.controller
            .observations
            .counters()
            .decision(&decision.rule, &decision.outcome);
        if let Err(error) = self.controller.store().record_decision(&decision) {
            tracing::error!("cannot record a decision: {error}");
        }
    }

    // One parameter per column of the recorded decision.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        situation: Situation,
        rule: &str,
        action: &str,
        node: Option<&str>,
        reason: &str,
        observation: &Observation,
        outcome: &str,
        now: i64,
    ) {
        self.decision(NewDecision {
            at_ms: now,
            situation: Some(situation_name(situation).to_owned()),
            rule: rule.to_owned(),
            action: action.to_owned(),
            node: node.map(str::to_owned),
            reason: reason.to_owned(),
            evidence: evidence(observation),
            outcome: outcome.to_owned(),
        });
    }

    /// The planner's inputs from the store: the high-water mark, the operator's force
    /// and rebuilds (options or approvals), and the nodes stopped on purpose.
    fn inputs(&self, now: i64) -> Result<Inputs, store::StoreError> {
        let controller = self.controller;
        let store = controller.store();
        let marks = crate::planner_marks(store.high_water_marks()?);
        let force =
            controller.options.force || store.approval("force", now - APPROVAL_TTL_MS)?.is_some();
        let mut rebuild = controller.options.rebuild.clone();
        for node in &controller.spec.nodes {
            if store
                .approval(&format!("rebuild {}", node.name), now - APPROVAL_TTL_MS)?
                .is_some()
                && !rebuild.contains(&node.name)
            {
                rebuild.push(node.name.clone());
            }
        }
        Ok(Inputs {
            marks,
            force,
            operator: planner::Operator {
                create_new: false,
                rebuild,
            },
            stopped_on_purpose: store.stopped_on_purpose()?,
        })
    }

    /// History and alerts from one observation: transitions, samples, the high-water
    /// mark, flow control and multi-writer checks, failed starts.
    fn record_reports(
        &mut self,
        reports: &[(String, Option<NodeReport>)],
        noticed: &[Noticed],
        now: i64,
    ) {
        let controller = self.controller;
        let mut samples = Vec::new();
        let mut writers = Vec::new();
        for (name, report) in reports {
            let managed = controller.spec.node(name).is_none_or(|node| node.managed);
            let seen = Seen::of(report.as_ref(), managed);
            let previous = self.memory.nodes.entry(name.clone()).or_default().seen;
            if previous != Some(seen) {
                let from = previous.map_or_else(|| "unknown".to_owned(), |seen| seen.to_string());
                let transition = Transition {
                    at_ms: now,
                    node: name.clone(),
                    from: from.clone(),
                    to: seen.to_string(),
                };
                if let Err(error) = controller.store().record_transition(&transition) {
                    tracing::error!("cannot record a transition: {error}");
                }
                if previous.is_some_and(Seen::serving) && seen.gone() {
                    let why = report
                        .as_ref()
                        .and_then(|r| r.process.last_exit.clone())
                        .unwrap_or_default();
                    self.event(
                        Severity::Critical,
                        "node_down",
                        Some(name),
                        format!("{name} went from {from} to {seen}. {why}"),
                        now,
                    );
                } else if seen.synced() && previous.is_some() {
                    self.event(
                        Severity::Info,
                        "node_synced",
                        Some(name),
                        format!("{name} is Synced (was {from})"),
                        now,
                    );
                }
                self.memory.nodes.entry(name.clone()).or_default().seen = Some(seen);
            }
            let Some(report) = report else { continue };
            if let Some(mark) = proven_mark(name, report, now) {
                self.raise_mark(mark);
            }
            let Some(wsrep) = &report.wsrep else { continue };
            let record = self.memory.nodes.entry(name.clone()).or_default();
            let queries_per_second =
                rate(record.last_questions, (now, wsrep.questions)).unwrap_or(0.0);
            record.last_questions = Some((now, wsrep.questions));
            let replication_bytes = wsrep.replicated_bytes + wsrep.received_bytes;
            let replication_bytes_per_second =
                rate(record.last_replication_bytes, (now, replication_bytes)).unwrap_or(f64::NAN);
            record.last_replication_bytes = Some((now, replication_bytes));
            if record
                .last_replicated
                .is_some_and(|previous| wsrep.replicated > previous)
            {
                writers.push(name.clone());
            }
            record.last_replicated = Some(wsrep.replicated);
            let threshold = controller.settings.flow_control_threshold;
            let flow_control_alert = if wsrep.flow_control_paused > threshold {
                !std::mem::replace(&mut record.flow_control_alerted, true)
            } else {
                record.flow_control_alerted = false;
                false
            };
            if flow_control_alert {
                self.event(
                    Severity::Warning,
                    "flow_control",
                    Some(name),
                    format!(
                        "{name} reports flow control paused {:.0}% of the time (threshold {:.0}%): a slow node is throttling the cluster's writes",
                        wsrep.flow_control_paused * 100.0,
                        threshold * 100.0
                    ),
                    now,
                );
            }
            samples.push(Sample {
                at_ms: now,
                node: name.clone(),
                last_committed: wsrep.last_committed,
                queries_per_second,
                flow_control_paused: wsrep.flow_control_paused,
                recv_queue: wsrep.local_recv_queue,
                send_queue: wsrep.local_send_queue,
                cert_failures: wsrep.cert_failures,
                bf_aborts: wsrep.bf_aborts,
                connections: wsrep.threads_connected,
                replicated: wsrep.replicated,
                replication_bytes_per_second,
            });
        }
        for noticed in noticed {
            let Noticed::StartFailed {
                node,
                in_a_row,
                why,
            } = noticed;
            self.event(
                Severity::Warning,
                "start_failed",
                Some(node),
                format!("{node} failed to start ({in_a_row} in a row): {why}"),
                now,
            );
        }
        if !samples.is_empty() {
            if let Err(error) = controller.store().record_samples(&samples) {
                tracing::error!("cannot record samples: {error}");
            }
        }
        if writers.len() > 1 {
            if !std::mem::replace(&mut self.memory.multi_writer_alerted, true) {
                self.event(
                    Severity::Warning,
                    "multiple_writers",
                    None,
                    format!(
                        "{} all replicated writes since the last observation: writes on several nodes cause certification conflicts (deadlock errors in OpenStack); send writes to one node",
                        writers.join(", ")
                    ),
                    now,
                );
            }
        } else {
            self.memory.multi_writer_alerted = false;
        }
    }

    /// Raises the high-water mark of the report's history. A history the store did not
    /// know beside the accepted one gets a mark of its own and is never accepted here:
    /// only an operator's `--force` does that (`accept`), so the mark is never reset
    /// silently (rule 10).
    fn raise_mark(&self, mark: HighWaterMark) {
        if let Err(error) = self.controller.store().raise_high_water_mark(&mark) {
            tracing::error!("cannot raise the high-water mark: {error}");
        }
    }

    /// Uses up an operator's approval; false when there is none.
    fn use_approval(&self, key: &str, now: i64) -> bool {
        let store = self.controller.store();
        match store.approval(key, now - APPROVAL_TTL_MS) {
            Ok(Some(approval)) => {
                if let Err(error) = store.consume_approval(approval.id) {
                    tracing::error!("cannot use up the approval of {key}: {error}");
                }
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::error!("cannot read the approval of {key}: {error}");
                false
            }
        }
    }

    /// Records what the operator's `--force` accepted (a history, a lower mark), with
    /// the reason, and uses up the force approval.
    fn accept(&self, acceptance: &planner::Acceptance, node: &str, now: i64) {
        let mark = HighWaterMark {
            uuid: acceptance.mark.uuid.clone(),
            seqno: acceptance.mark.seqno,
            node: node.to_owned(),
            at_ms: now,
        };
        let accepted = self
            .controller
            .store()
            .accept_history(&mark, &acceptance.reason, now);
        if let Err(error) = accepted {
            tracing::error!("cannot record the accepted history: {error}");
        }
        self.use_approval("force", now);
    }

    fn record_plan(&mut self, observation: &Observation, plan: &Plan, now: i64) {
        let key = plan_key(plan);
        if self.memory.last_plan_key.as_deref() == Some(key.as_str()) {
            return;
        }
        self.memory.last_plan_key = Some(key);
        let stopped_on_purpose = matches!(
            plan.blocked,
            Some(Blocked::Waiting {
                rule: Rule::Policy,
                ..
            })
        );
        let no_primary = matches!(plan.situation, Situation::NoPrimary | Situation::Stopped);
        if no_primary && !stopped_on_purpose && !self.memory.no_primary_alerted {
            self.memory.no_primary_alerted = true;
            self.event(
                Severity::Critical,
                "cluster_not_primary",
                None,
                "no node is in a Primary component: the cluster takes no writes".to_owned(),
                now,
            );
        }
        if plan.situation == Situation::Healthy {
            self.memory.no_primary_alerted = false;
            if std::mem::take(&mut self.memory.recovering) {
                self.event(
                    Severity::Info,
                    "recovery_finished",
                    None,
                    "every node is Synced in one Primary component".to_owned(),
                    now,
                );
            }
            self.decide(
                plan.situation,
                "healthy",
                "none",
                None,
                "every node is Synced",
                observation,
                "nothing to do",
                now,
            );
            return;
        }
        // Refusals held in notes while other steps go on: a node kept stopped because its
        // data is newer or of another history (rule 8), a split brain (rule 9), a
        // Primary behind its mark (rule 10). Only an operator can settle them.
        for note in &plan.notes {
            if let Blocked::Refused { rule, reason } = note {
                if plan.blocked.as_ref() != Some(note) && *rule != Rule::Policy {
                    self.event(
                        Severity::Critical,
                        "recovery_refused",
                        None,
                        format!("{reason} ({rule})"),
                        now,
                    );
                }
            }
        }
        match &plan.blocked {
            Some(Blocked::Refused { rule, reason }) => {
                self.decide(
                    plan.situation,
                    &format!("{rule:?}"),
                    "none",
                    None,
                    reason,
                    observation,
                    "refused",
                    now,
                );
                self.event(
                    Severity::Critical,
                    "recovery_refused",
                    None,
                    format!("{reason} ({rule})"),
                    now,
                );
            }
            Some(Blocked::Waiting { rule, reason }) => {
                self.decide(
                    plan.situation,
                    &format!("{rule:?}"),
                    "wait",
                    None,
                    reason,
                    observation,
                    "waiting",
                    now,
                );
            }
            None => {}
        }
    }
}

/// The high-water mark a report proves (`reconcile::proven_position`).
fn proven_mark(node: &str, report: &NodeReport, now: i64) -> Option<HighWaterMark> {
    let position = reconcile::proven_position(report)?;
    Some(HighWaterMark {
        uuid: position.uuid,
        seqno: position.seqno,
        node: node.to_owned(),
        at_ms: now,
    })
}

/// The situation's name in the history.
fn situation_name(situation: Situation) -> &'static str {
    match situation {
        Situation::Healthy => "healthy",
        Situation::Degraded => "degraded",
        Situation::NoPrimary => "no_primary",
        Situation::Stopped => "stopped",
        Situation::SplitBrain => "split_brain",
    }
}

impl Recorder for Journal<'_> {
    fn observed(
        &mut self,
        reports: &[(String, Option<NodeReport>)],
        noticed: &[Noticed],
        now: i64,
    ) -> Result<Inputs, reconcile::RoundError> {
        if self.recording {
            self.controller.observations.publish(LastObservation {
                at_ms: now,
                // The reports come in the engine's order; each names its node.
                nodes: reports
                    .iter()
                    .filter_map(|(name, report)| {
                        let node = self.controller.spec.node(name)?;
                        Some((node.clone(), report.clone()))
                    })
                    .collect(),
            });
            self.record_reports(reports, noticed, now);
        }
        Ok(self.inputs(now)?)
    }

    fn revise(&mut self, plan: Plan, observation: &Observation) -> Plan {
        crate::sql_observe::leave_unmanaged_alone(plan, &self.controller.spec, observation)
    }

    fn planned(&mut self, observation: &Observation, plan: &Plan, now: i64) {
        if self.recording {
            self.record_plan(observation, plan, now);
        }
        // A Primary component of another history, or behind its mark, that the
        // operator's --force accepts: recorded now (only by the actor holding the lease).
        if let Some(acceptance) = plan
            .acceptance
            .as_ref()
            .filter(|a| a.after_bootstrap.is_none() && self.acting)
        {
            self.accept(acceptance, "-", now);
        }
    }

    fn approved(&mut self, step: &Step, plan: &Plan, observation: &Observation, now: i64) -> bool {
        if self.controller.options.approve_all {
            return true;
        }
        let key = step.action.key();
        if self.use_approval(&key, now) {
            return true;
        }
        self.decide(
            plan.situation,
            &format!("{:?}", step.rule),
            &key,
            Some(step.action.node()),
            &step.reason,
            observation,
            "needs confirmation: galley recover --yes",
            now,
        );
        false
    }

    fn starting(&mut self, step: &Step, now: i64) {
        if !std::mem::replace(&mut self.memory.recovering, true) {
            let (node, message) = match step.action {
                Action::Recover { .. } => (
                    None,
                    "recovery started: reading every node's position".to_owned(),
                ),
                _ => (
                    Some(step.action.node()),
                    format!("recovery started: {} ({})", step.action, step.reason),
                ),
            };
            self.event(Severity::Warning, "recovery_started", node, message, now);
        }
    }

    fn executed(
        &mut self,
        plan: &Plan,
        step: &Step,
        result: &Result<String, StepError>,
        observation: &Observation,
        now: i64,
    ) {
        let verb = step.action.key();
        let verb = verb.split(' ').next().unwrap_or_default();
        self.controller.observations.counters().step(
            verb,
            &format!("{:?}", step.rule),
            result.is_ok(),
        );
        let outcome = match result {
            Ok(done) => format!("done: {done}"),
            Err(error) => format!("failed: {error}"),
        };
        self.decide(
            plan.situation,
            &format!("{:?}", step.rule),
            &step.action.to_string(),
            Some(step.action.node()),
            &step.reason,
            observation,
            &outcome,
            now,
        );
        match (result, &step.action) {
            (Err(error), action) if !matches!(action, Action::Recover { .. }) => self.event(
                Severity::Warning,
                "step_failed",
                Some(step.action.node()),
                format!("{} failed: {error}", step.action),
                now,
            ),
            (Ok(_), Action::Bootstrap { node, .. }) => {
                if let Some(acceptance) = plan
                    .acceptance
                    .as_ref()
                    .filter(|a| a.after_bootstrap.as_deref() == Some(node.as_str()))
                {
                    self.accept(acceptance, node, now);
                }
            }
            // A node whose data the operator gave up is rebuilt: the approval is used.
            (Ok(_), Action::WipeAndStart { node } | Action::Start { node }) => {
                self.use_approval(&format!("rebuild {node}"), now);
            }
            _ => {}
        }
    }
}
