//! The planner's integration tests, in one binary: table-driven scenarios written as
//! compact text fixtures, and seeded random fault schedules against a simulated cluster.

mod fixtures;
mod simulation;
mod table;
