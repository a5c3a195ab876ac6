//! A cluster on this machine, as the `galley` commands find it: its state directory
//! (./.galley by default) and spec (`Location`), the loaded spec and secrets with a
//! client per agent (`Cluster`), the spec `galley up` writes for a new local cluster on a
//! free block of ports (`create_local`), and the daemons it starts and stops: the node
//! agents and the proxy (`Cluster::ensure_agents`, `Cluster::ensure_proxy`) and the
//! controller (`controller_daemon`), and the arbitrators' garbd (`arbitrator`).
//!
//! The daemons are the galley executable itself (`spawn_daemon`), so this library is
//! meant for the galley binary and its tests only.

pub mod arbitrator;
mod cluster;
pub mod controller_daemon;
mod create;
mod daemon;
mod location;

pub use cluster::{write_client_config, Cluster};
pub use create::{create_local, local_spec_text, local_spec_text_for, LocalTopology};
pub use daemon::{proxy_dir, spawn_daemon, tail};
pub use location::Location;
