//! The spec crate's one integration-test binary: validation of galley.toml and rendering
//! of node configs, each driven by fixtures and checked against inline snapshots.

mod arbitrator;
mod fixtures;
mod hostile;
mod render;
mod validate;
