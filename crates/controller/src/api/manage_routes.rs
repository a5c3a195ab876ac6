//! Databases, users, grants and OpenStack provisioning (through the `manage` crate).

use super::Route;

pub(super) fn routes() -> Vec<Route> {
    Vec::new()
}
