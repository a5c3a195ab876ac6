//! Proof under faults: workloads that run through galley's proxy and record when each
//! operation began, when it ended and how (`history`), and pure checkers that judge
//! those histories (`check`).
//!
//! A write whose answer never came (a timeout, a lost connection) is *unknown*, never
//! counted as acknowledged nor as failed: it may or may not have committed. Checkers
//! count against acknowledged writes only.

pub mod check;
pub mod history;
pub mod report;
pub mod schedule;
pub mod workload;

pub use check::{missing_writes, stale_reads, StaleRead};
pub use history::{History, Outcome, Read, Write};
