//! Opening: file modes, reopening, read-only handles, and schema versions.

use std::os::unix::fs::PermissionsExt as _;

use store::{EventFilter, HighWaterMark, Store, StoreError, SCHEMA_VERSION};

use crate::{event, fixture};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_file_and_its_directories_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/controller/history.sqlite");
    let store = Store::open(&path).unwrap();
    store.record_event(&event(1, None, "hello")).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("state/controller")), 0o700);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&path.with_extension("sqlite-wal")), 0o600);
    assert_eq!(
        format!("{store:?}"),
        format!("Store {{ path: {path:?}, .. }}")
    );
}

#[test]
fn reopening_keeps_the_data() {
    let f = fixture();
    let mark = HighWaterMark {
        uuid: "u".to_owned(),
        seqno: 5,
        node: "node1".to_owned(),
        at_ms: 1,
    };
    f.store
        .record_event(&event(1, Some("node1"), "kept"))
        .unwrap();
    f.store.raise_high_water_mark(&mark).unwrap();
    drop(f.store);

    let store = Store::open(&f.path).unwrap();
    let events = store.events(&EventFilter::default()).unwrap();
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"kept"), "{messages:?}");
    assert_eq!(store.high_water_marks().unwrap().accepted, Some(mark));
}

#[test]
fn a_read_only_handle_sees_writes_and_refuses_to_write() {
    let f = fixture();
    let reader = Store::open_read_only(&f.path).unwrap();
    assert!(reader.is_read_only());
    assert!(reader.events(&EventFilter::default()).unwrap().is_empty());

    f.store
        .record_event(&event(1, None, "while reading"))
        .unwrap();
    let events = reader.events(&EventFilter::default()).unwrap();
    assert_eq!(events[0].message, "while reading");

    assert!(matches!(
        reader.record_event(&event(2, None, "no")),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(matches!(
        reader.acquire_lease("galley", 0, 1),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(matches!(reader.prune(10), Err(StoreError::ReadOnly { .. })));
}

#[test]
fn read_only_open_of_a_missing_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.sqlite");
    let error = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    assert!(
        error.to_string().contains("missing.sqlite does not exist"),
        "{error}"
    );
    assert!(!path.exists());
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let f = fixture();
    drop(f.store);
    let raw = rusqlite::Connection::open(&f.path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);

    for error in [
        Store::open(&f.path).unwrap_err(),
        Store::open_read_only(&f.path).unwrap_err(),
    ] {
        match &error {
            StoreError::SchemaTooNew { found, known, .. } => {
                assert_eq!((*found, *known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{message}"
        );
        assert!(message.contains("upgrade galley"), "{message}");
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not a database, just some text that is long enough ".repeat(20),
    )
    .unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("notes.txt"), "{error}");
}

#[test]
fn an_existing_file_readable_by_others_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("galley.db");
    drop(Store::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&path).unwrap();
    store.set_console_user("admin", "hash", 1).unwrap();
    assert_eq!(mode(&path), 0o600);
}
