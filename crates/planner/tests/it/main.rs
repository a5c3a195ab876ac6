//! The planner's integration tests, in one binary: table-driven scenarios written as
//! compact text fixtures, and seeded random fault schedules against a simulated cluster
//! that call the planner directly and check rules 1-10 on every plan and step. The
//! same kind of schedules also run the whole reconcile engine, planner included
//! (crates/reconcile/tests/it/simulation.rs).

mod arbitrator;
mod fixtures;
mod simulation;
mod table;
