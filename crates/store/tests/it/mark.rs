//! The high-water mark only rises, never switches cluster UUID by itself, and a reset
//! is recorded.

use store::{EventFilter, HighWaterMark, Severity};

use crate::fixture;

fn mark(uuid: &str, seqno: i64, node: &str) -> HighWaterMark {
    HighWaterMark {
        uuid: uuid.to_owned(),
        seqno,
        node: node.to_owned(),
        at_ms: seqno * 10,
    }
}

#[test]
fn the_mark_only_rises() {
    let f = fixture();
    assert_eq!(f.store.high_water_mark().unwrap(), None);
    assert!(f
        .store
        .raise_high_water_mark(&mark("u1", 10, "node1"))
        .unwrap());
    assert!(f
        .store
        .raise_high_water_mark(&mark("u1", 12, "node2"))
        .unwrap());
    assert!(!f
        .store
        .raise_high_water_mark(&mark("u1", 12, "node3"))
        .unwrap());
    assert!(!f
        .store
        .raise_high_water_mark(&mark("u1", 11, "node1"))
        .unwrap());
    assert_eq!(
        f.store.high_water_mark().unwrap(),
        Some(mark("u1", 12, "node2"))
    );
}

#[test]
fn a_different_uuid_does_not_replace_the_mark() {
    let f = fixture();
    assert!(f
        .store
        .raise_high_water_mark(&mark("u1", 10, "node1"))
        .unwrap());
    assert!(!f
        .store
        .raise_high_water_mark(&mark("u2", 1_000, "node1"))
        .unwrap());
    assert_eq!(
        f.store.high_water_mark().unwrap(),
        Some(mark("u1", 10, "node1"))
    );
}

#[test]
fn a_reset_replaces_the_mark_and_records_an_event() {
    let f = fixture();
    assert!(f
        .store
        .raise_high_water_mark(&mark("u1", 10, "node1"))
        .unwrap());
    f.store
        .reset_high_water_mark(
            Some(&mark("u2", 3, "node2")),
            "forced bootstrap of node2",
            500,
        )
        .unwrap();
    assert_eq!(
        f.store.high_water_mark().unwrap(),
        Some(mark("u2", 3, "node2"))
    );
    assert!(f
        .store
        .raise_high_water_mark(&mark("u2", 4, "node2"))
        .unwrap());

    f.store
        .reset_high_water_mark(None, "new cluster", 600)
        .unwrap();
    assert_eq!(f.store.high_water_mark().unwrap(), None);

    let events = f.store.events(&EventFilter::default()).unwrap();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|event| event.kind == "high_water_mark_reset" && event.severity == Severity::Warning));
    assert_eq!(events[0].at_ms, 600);
    assert_eq!(
        events[0].message,
        "high-water mark reset from u2:4 (seen on node2) to none: new cluster"
    );
    assert_eq!(
        events[1].message,
        "high-water mark reset from u1:10 (seen on node1) to u2:3 (seen on node2): forced bootstrap of node2"
    );
}
