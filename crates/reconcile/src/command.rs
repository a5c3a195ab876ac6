//! The engine for operator commands (`galley up`, `galley start`, a deployment's host
//! steps, the rolling restart's waits): rounds driven to a goal, with what happens told
//! as progress lines. `Narrator` is the recorder that tells it; `bring` acts, `wait`
//! only watches.

use agent::api::NodeReport;
use planner::{Action, Observation, Plan, Step};

use crate::agents::{NodeAgents, StepError};
use crate::drive::{drive, Clock, DriveError, EngineRounds, Goal, Limits};
use crate::engine::{Engine, Inputs, Recorder, Round, RoundError, RoundOptions};
use crate::memory::Noticed;

/// Where a command's progress goes: a spinner line that changes, and lines that stay.
pub trait Progress: Sync {
    fn step(&self, text: &str);
    fn done(&self, text: &str);
}

/// Tells a command's rounds as progress lines: each step as it starts, and a line that
/// stays once its node is Synced (or the step ended).
#[derive(Debug)]
pub struct Narrator<'a, P> {
    progress: &'a P,
    inputs: Inputs,
    /// Steps whose node is not Synced yet, with when they started.
    pending: Vec<(Step, i64)>,
}

impl<'a, P: Progress> Narrator<'a, P> {
    pub fn new(progress: &'a P, inputs: Inputs) -> Narrator<'a, P> {
        Narrator {
            progress,
            inputs,
            pending: Vec::new(),
        }
    }
}

fn seconds(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(0) as f64 / 1000.0
}

/// The line that stays once the step's node is Synced.
fn settled_line(step: &Step, elapsed: f64) -> String {
    let node = step.action.node();
    match &step.action {
        Action::Bootstrap { .. } | Action::CreateCluster { .. } => format!(
            "✓ {node} bootstrapped the cluster ({}) in {elapsed:.1} s",
            step.reason
        ),
        Action::WipeAndStart { .. } => {
            format!("✓ {node} was rebuilt by a full state transfer in {elapsed:.1} s")
        }
        Action::Restart { .. } => format!("✓ {node} restarted and rejoined in {elapsed:.1} s"),
        _ => format!("✓ {node} joined in {elapsed:.1} s"),
    }
}

impl<P: Progress + Send> Recorder for Narrator<'_, P> {
    fn observed(
        &mut self,
        reports: &[(String, Option<NodeReport>)],
        _noticed: &[Noticed],
        now: i64,
    ) -> Result<Inputs, RoundError> {
        let synced = |node: &str| {
            reports.iter().any(|(name, report)| {
                name == node
                    && report
                        .as_ref()
                        .is_some_and(|report| crate::reported_facts(report).synced())
            })
        };
        let progress = self.progress;
        self.pending.retain(|(step, started)| {
            if synced(step.action.node()) {
                progress.done(&settled_line(step, seconds(*started, now)));
                false
            } else {
                true
            }
        });
        if let Some((step, _)) = self.pending.first() {
            let node = step.action.node();
            if let Some((_, Some(report))) = reports.iter().find(|(name, _)| name == node) {
                progress.step(&format!("{node}: {}", report.state_label()));
            }
        }
        Ok(self.inputs.clone())
    }

    fn starting(&mut self, step: &Step, _now: i64) {
        let node = step.action.node();
        let doing = match &step.action {
            Action::Start { .. } => "joining",
            Action::Stop { .. } => "stopping",
            Action::Restart { .. } => "restarting",
            Action::Recover { .. } => "recovering its position",
            Action::ClearBootstrapFlag { .. } => "clearing a leftover safe_to_bootstrap",
            Action::Bootstrap { .. } => "bootstrapping",
            Action::CreateCluster {
                initialize: true, ..
            } => "initializing and securing the data dir, then bootstrapping",
            Action::CreateCluster { .. } => "bootstrapping",
            Action::WipeAndStart { .. } => "moving its data aside and starting empty",
        };
        self.progress.step(&format!("{node}: {doing}"));
    }

    fn executed(
        &mut self,
        _plan: &Plan,
        step: &Step,
        result: &Result<String, StepError>,
        _observation: &Observation,
        now: i64,
    ) {
        let node = step.action.node();
        let Ok(done) = result else { return };
        match &step.action {
            Action::Recover { .. } | Action::ClearBootstrapFlag { .. } | Action::Stop { .. } => {
                self.progress.done(&format!("  {node}: {done}"));
            }
            _ => self.pending.push((step.clone(), now)),
        }
    }
}

/// Acts until `goal` holds (`only`: on that node alone), telling the progress.
pub async fn bring<A: NodeAgents + Send, P: Progress + Send>(
    engine: &mut Engine<A>,
    goal: &Goal,
    only: Option<String>,
    inputs: Inputs,
    limits: &Limits,
    progress: &P,
    clock: &impl Clock,
) -> Result<Round, DriveError> {
    let mut narrator = Narrator::new(progress, inputs);
    let mut rounds = EngineRounds {
        engine,
        recorder: &mut narrator,
        options: RoundOptions { acting: true, only },
    };
    drive(&mut rounds, goal, limits, clock, |_| {}).await
}

/// Watches until the node is Synced, without acting; ends at once if it stops.
/// `on_state` hears each new state of the node.
pub async fn wait_synced<A: NodeAgents + Send>(
    engine: &mut Engine<A>,
    node: &str,
    limits: &Limits,
    clock: &impl Clock,
    mut on_state: impl FnMut(&str),
) -> Result<Round, DriveError> {
    let mut recorder = crate::NoRecorder::default();
    let mut rounds = EngineRounds {
        engine,
        recorder: &mut recorder,
        options: RoundOptions::default(),
    };
    let mut last_state = String::new();
    drive(
        &mut rounds,
        &Goal::Synced(node.to_owned()),
        limits,
        clock,
        |round| {
            let state = round
                .reports
                .iter()
                .find(|(name, _)| name == node)
                .and_then(|(_, report)| report.as_ref())
                .map_or_else(
                    || "unknown (agent does not answer)".to_owned(),
                    NodeReport::state_label,
                );
            if state != last_state {
                on_state(&state);
                last_state = state;
            }
        },
    )
    .await
}
