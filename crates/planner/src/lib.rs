//! The recovery planner, pure: what every node reported, the high-water mark and the
//! policy go in; an ordered plan of steps, each with the rule that chose it and why, or
//! the reason to wait or refuse, comes out. No I/O and no clock: the controller measures
//! time (how long a node is stuck, whether a backoff is over) and passes the verdicts in.
//!
//! The safety rules of docs/safety-rules.md, and where they live:
//! 1. never bootstrap while any node may be in a Primary component: bootstrap is planned
//!    only when every node is reported stopped;
//! 2. never two bootstraps: one `Bootstrap` step at most, leftover flags cleared first;
//! 3. only the node with the cluster's UUID and the highest seqno, once every node has
//!    reported (`galera::choose_bootstrap`), otherwise wait and say for what;
//! 4. never below the high-water mark without the operator's `force`;
//! 5. pc.recovery preferred: nodes running outside a Primary component are waited for,
//!    and `pc.bootstrap` is never planned;
//! 6. joiners one at a time, each after the previous is Synced.

mod plan;

pub use plan::{
    plan, respect_operator_stops, Action, AgentState, Blocked, Facts, Mark, NodeView, Observation,
    Operator, Plan, Policy, Rule, Situation, Step,
};
