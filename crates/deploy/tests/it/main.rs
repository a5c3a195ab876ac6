//! The deploy crate's tests: snapshots of the generated bundle (what an operator reviews),
//! and checks that every script is valid bash.

mod bundle;
