//! `galley generate` and `galley deploy`: which host runs what ([`plan_hosts`]), the
//! reviewable bundle of per-host files and ordered shell scripts ([`generate`], pure), and
//! the executor that runs the very same scripts on the hosts over SSH ([`Deployment`]).
//!
//! The bundle is the single description of a deployment: an operator who reads it and
//! runs its scripts by hand gets the cluster `galley deploy` would make.

mod bundle;
mod executor;
mod hosts;
mod remote;
mod ssh;

pub use bundle::{generate, inline_script, package_units, Bundle, BundleFile, Secrets, STEPS};
pub use executor::{summary, write_bundle, DeployOptions, Deployment, Outcome};
pub use hosts::{plan_hosts, Host, PlanError, HOST_CONFIG};
pub use ssh::{Ssh, SshError};
