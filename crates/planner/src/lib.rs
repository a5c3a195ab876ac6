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
//! 6. joiners one at a time, each after the previous is Synced;
//! 7. every step and refusal names its `Rule` and a reason;
//! 8. a node never takes a state transfer (start, restart, wipe) when its data is ahead
//!    of the running Primary component or belongs to another cluster history; a crashed
//!    node's position is read first (`Rule::KeepNewerData`, `KeepOtherHistory`,
//!    `PositionBeforeJoin`);
//! 9. two cluster histories running as Primary components is `Situation::SplitBrain`,
//!    refused, never healthy (`galera::split_brain` names the minority);
//! 10. one high-water mark per history (`HighWaterMarks`): a bootstrap is checked against
//!     its own history's mark and the accepted history, a Primary component behind its
//!     mark or of another history is reported, and what `force` accepts comes out as
//!     `Plan::acceptance` for the controller to record.

mod plan;

pub use plan::{
    observed_marks, plan, respect_operator_stops, Acceptance, Action, AgentState, Blocked, Facts,
    HighWaterMarks, Mark, NodeView, Observation, ObservedMark, Operator, Plan, Policy, Rule,
    Situation, Step,
};
