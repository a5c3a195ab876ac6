//! The one reconcile engine. Every path that brings nodes up or back (the controller's
//! loop, `galley up`, `galley start`, a deployment's bootstrap and joins, `galley
//! recover`, the rolling restart's waits) goes through it: observe every node through
//! its agent, turn the reports into the planner's facts, ask `planner::plan`, record the
//! decision, act on its first step, and repeat until the goal holds or the planner
//! refuses. The planner is the only place a safety rule is written
//! (docs/safety-rules.md); this crate only carries its decisions out.
//!
//! - `agents`: the `NodeAgents` trait (status, init, start, stop, recover, move data
//!   aside, clear a flag) and its implementation over HTTP, `AgentClients`;
//! - `memory`: what the engine remembers between rounds to turn time into verdicts
//!   (stuck, failed starts, backing off), pure and unit-tested;
//! - `engine`: `Engine::round`, one observe-plan-act round, with a `Recorder` for what
//!   differs between callers (the controller's history, a CLI's progress lines);
//! - `drive`: `drive`, rounds until a `Goal` holds, the planner refuses, a start fails
//!   or nothing moves for too long;
//! - `command`: the engine for operator commands, `bring` (act until the goal holds)
//!   and `wait_synced` (watch only), with their progress told by `Narrator`.
//!
//! The simulated agents of `tests/it/simulation.rs` implement the same trait, so the
//! whole engine runs under seeded faults in milliseconds.

mod agents;
mod command;
mod drive;
mod engine;
mod memory;

pub use agents::{AgentClients, NodeAgents, StepError};
pub use command::{bring, wait_synced, Narrator, Progress};
pub use drive::{drive, Clock, DriveError, EngineRounds, Goal, Limits, Rounds, SystemClock};
pub use engine::{
    mark_stale_views, proven_position, reported_facts, Engine, Executed, Inputs, Member,
    NoRecorder, Recorder, Round, RoundError, RoundOptions, Settings,
};
pub use memory::{Memory, Noticed};
