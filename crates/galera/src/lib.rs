//! The Galera domain in pure code: node states, `grastate.dat` and recovered positions,
//! wsrep status variables and the health rules built on them, the choice of a bootstrap
//! node, split brain (two cluster histories running at once) and stale views (a node
//! that still reports a view the others have left). No I/O: callers read
//! files and run queries, this crate interprets.

mod bootstrap;
mod grastate;
mod split_brain;
mod status;
mod views;

pub use bootstrap::{choose_bootstrap, BootstrapChoice, BootstrapRefusal, NodePosition};
pub use grastate::{
    parse_gvwstate_my_uuid, parse_recovered_position, GraState, GrastateError, Position, ZERO_UUID,
};
pub use split_brain::{split_brain, HistoryGroup, SplitBrain};
pub use status::{Unhealthy, WsrepState, WsrepStatus, STATUS_VARIABLES};
pub use views::{stale_views, StaleView};

/// The first statement of every connection galley itself opens to a node to watch it
/// (the agent's status reads, the proxy's probes, the controller's observations): with
/// `server.causal_reads` on, a read would first wait for a causality check through the
/// group, which stalls while a peer is frozen and fails outside the Primary; a probe must
/// see the node as it is, at once (docs/galera.md, "Causal reads").
pub const PROBE_SESSION_INIT: &str = "SET SESSION wsrep_sync_wait = 0";
