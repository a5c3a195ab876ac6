//! The planner's integration tests, in one binary: table-driven scenarios written as
//! compact text fixtures. The seeded random fault schedules run the planner through the
//! reconcile engine (crates/reconcile/tests/it/simulation.rs).

mod fixtures;
mod table;
