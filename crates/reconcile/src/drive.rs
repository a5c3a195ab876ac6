//! Rounds until a goal holds: the one wait-for-Synced loop. It stops when the goal
//! holds, when the planner refuses (only an operator can unblock it), when a start or
//! step fails and the caller wants to hear of it at once, or when nothing has moved for
//! longer than the caller allows.

use std::future::Future;
use std::time::Duration;

use planner::{Blocked, Rule, Situation, Step};

use crate::agents::{NodeAgents, StepError};
use crate::engine::{Engine, Recorder, Round, RoundError, RoundOptions};
use crate::memory::Noticed;

/// Wall-clock milliseconds, read once per round.
pub trait Clock: Sync {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64)
    }
}

/// What must hold for the drive to end well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Every node Synced in one Primary component (the planner's Healthy).
    AllSynced,
    /// This node Synced in a Primary component.
    Synced(String),
}

impl Goal {
    pub fn holds(&self, round: &Round) -> bool {
        match self {
            Goal::AllSynced => round.plan.situation == Situation::Healthy,
            Goal::Synced(node) => round.observation.synced(node),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Between rounds.
    pub poll: Duration,
    /// How long the drive may go without a step being carried out (a full SST of a
    /// large node takes long) before it gives up.
    pub stall: Duration,
    /// End at the first failed step or failed start (a CLI command), instead of letting
    /// the planner retry with backoff (`galley recover`).
    pub fail_fast: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            poll: Duration::from_millis(200),
            stall: Duration::from_secs(900),
            fail_fast: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The planner refuses: only an operator can unblock it.
    #[error("{reason} ({rule})")]
    Refused { rule: Rule, reason: String },
    /// The watched node stopped, or a node the engine started exited by itself.
    #[error("{node} did not reach Synced: {reason}")]
    Stopped { node: String, reason: String },
    #[error("{} failed: {error}", .step.action)]
    StepFailed { step: Step, error: StepError },
    #[error("{waiting_for} after {} s", .after.as_secs())]
    Stalled {
        waiting_for: String,
        after: Duration,
    },
    /// The round itself could not run (the caller's store, say).
    #[error(transparent)]
    Round(RoundError),
}

/// Anything that runs one round at a time: the engine with a recorder, or the
/// controller's tick.
pub trait Rounds {
    fn round(&mut self, now: i64) -> impl Future<Output = Result<Round, RoundError>> + Send;
}

/// The engine with a recorder and its round options.
#[derive(Debug)]
pub struct EngineRounds<'a, A, R> {
    pub engine: &'a mut Engine<A>,
    pub recorder: &'a mut R,
    pub options: RoundOptions,
}

impl<A: NodeAgents + Send, R: Recorder> Rounds for EngineRounds<'_, A, R> {
    async fn round(&mut self, now: i64) -> Result<Round, RoundError> {
        self.engine.round(now, &self.options, self.recorder).await
    }
}

/// Rounds until `goal` holds. `on_round` sees every round (progress output). With
/// `acting` off in the rounds, this is a wait: it ends at once if the watched node stops.
pub async fn drive<R: Rounds>(
    rounds: &mut R,
    goal: &Goal,
    limits: &Limits,
    clock: &impl Clock,
    mut on_round: impl FnMut(&Round),
) -> Result<Round, DriveError> {
    let mut last_progress = clock.now_ms();
    loop {
        let now = clock.now_ms();
        let round = rounds.round(now).await.map_err(DriveError::Round)?;
        on_round(&round);
        if goal.holds(&round) {
            return Ok(round);
        }
        if let Some(error) = first_failure(&round, goal, limits) {
            return Err(error);
        }
        if !round.executed.is_empty() {
            last_progress = now;
        }
        let stalled_for = Duration::from_millis((now - last_progress).max(0) as u64);
        if stalled_for > limits.stall {
            return Err(DriveError::Stalled {
                waiting_for: waiting_for(&round, goal),
                after: limits.stall,
            });
        }
        tokio::time::sleep(limits.poll).await;
    }
}

/// Why the drive must end now, if it must.
fn first_failure(round: &Round, goal: &Goal, limits: &Limits) -> Option<DriveError> {
    if !round.acting {
        // A wait: only the watched node's own fate ends it early.
        let Goal::Synced(node) = goal else {
            return None;
        };
        let (_, report) = round.reports.iter().find(|(name, _)| name == node)?;
        let report = report.as_ref()?;
        if report.process.running {
            return None;
        }
        return Some(DriveError::Stopped {
            node: node.clone(),
            reason: report
                .process
                .last_exit
                .clone()
                .unwrap_or_else(|| "it was stopped".to_owned()),
        });
    }
    if limits.fail_fast {
        if let Some((step, Err(error))) = round.executed.iter().find(|(_, result)| result.is_err())
        {
            return Some(DriveError::StepFailed {
                step: step.clone(),
                error: error.clone(),
            });
        }
        if let Some(Noticed::StartFailed { node, why, .. }) = round.noticed.first() {
            return Some(DriveError::Stopped {
                node: node.clone(),
                reason: why.clone(),
            });
        }
    }
    match &round.plan.blocked {
        Some(Blocked::Refused { rule, reason })
            if round.executed.is_empty() && round.plan.runnable().is_empty() =>
        {
            Some(DriveError::Refused {
                rule: *rule,
                reason: reason.clone(),
            })
        }
        _ => None,
    }
}

/// What the drive was waiting for when it gave up, in words.
fn waiting_for(round: &Round, goal: &Goal) -> String {
    let state = |node: &str| {
        round
            .reports
            .iter()
            .find(|(name, _)| name == node)
            .and_then(|(_, report)| report.as_ref())
            .map_or_else(|| "unreachable".to_owned(), |report| report.state_label())
    };
    match (goal, &round.plan.blocked) {
        (Goal::Synced(node), _) => format!("{node} is still {}", state(node)),
        (Goal::AllSynced, Some(Blocked::Waiting { reason, .. })) => {
            format!("still waiting: {reason}")
        }
        (Goal::AllSynced, _) => {
            let states: Vec<String> = round
                .reports
                .iter()
                .map(|(name, _)| format!("{name} {}", state(name)))
                .collect();
            format!("the cluster is not Synced yet ({})", states.join(", "))
        }
    }
}
