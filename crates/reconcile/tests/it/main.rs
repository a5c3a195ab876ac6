//! The reconcile engine's integration tests, in one binary: the whole engine (its
//! memory, its rounds, the planner behind it, the drive loop) against simulated agents
//! of a simulated Galera cluster, under seeded fault schedules.

mod model;
mod simulation;
