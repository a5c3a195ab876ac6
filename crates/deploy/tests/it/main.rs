//! The deploy crate's tests: snapshots of the generated bundle (what an operator reviews),
//! checks that every script is valid bash, and the check step run for real.

mod arbitrator;
mod bundle;
mod check;
