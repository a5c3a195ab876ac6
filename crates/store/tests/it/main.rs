//! Integration tests of the store against real SQLite files in temporary directories.

mod approvals;
mod history;
mod lease;
mod mark;
mod open;

use std::path::PathBuf;

use store::{NewEvent, Severity, Store};
use tempfile::TempDir;

/// A fresh database in its own temporary directory, which must outlive the store.
pub(crate) struct Fixture {
    pub(crate) _dir: TempDir,
    pub(crate) path: PathBuf,
    pub(crate) store: Store,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let store = Store::open(&path).unwrap();
    Fixture {
        _dir: dir,
        path,
        store,
    }
}

pub(crate) fn event(at_ms: i64, node: Option<&str>, message: &str) -> NewEvent {
    NewEvent {
        at_ms,
        severity: Severity::Info,
        kind: "state".to_owned(),
        node: node.map(str::to_owned),
        message: message.to_owned(),
    }
}
