//! The galley node agent: it owns one mariadbd on its host (initialize, secure, start,
//! bootstrap, stop, recover, report) and serves that over HTTP+JSON, authenticated with
//! the cluster token. [`AgentClient`] is how everything else talks to it.

pub mod api;
mod client;
pub mod clustercheck;
mod fence;
mod files;
pub mod metrics;
pub mod ports;
pub mod secrets;
mod server;
mod service;

pub use client::{AgentClient, AgentError};
pub use clustercheck::{ClusterCheck, Probing};
pub use secrets::Secrets;
pub use server::{read_wsrep_variables, Binaries, Server, ServerError, INSTALL_COMMAND};
pub use service::{serve, serve_with};
