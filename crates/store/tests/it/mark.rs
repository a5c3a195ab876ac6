//! The high-water marks (rule 10): one per cluster history, each only rising; a new
//! history never replaces the accepted one by itself; an operator's acceptance is
//! recorded with its reason and time.

use store::{EventFilter, HighWaterMark, MarkRaise, Severity, StoreError};

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
    assert_eq!(f.store.high_water_marks().unwrap().accepted, None);
    let raise = |m: HighWaterMark| f.store.raise_high_water_mark(&m).unwrap();
    assert_eq!(raise(mark("u1", 10, "node1")), MarkRaise::Adopted);
    assert_eq!(raise(mark("u1", 12, "node2")), MarkRaise::Raised);
    assert_eq!(raise(mark("u1", 12, "node3")), MarkRaise::Unchanged);
    assert_eq!(raise(mark("u1", 11, "node1")), MarkRaise::Unchanged);
    let marks = f.store.high_water_marks().unwrap();
    assert_eq!(marks.accepted, Some(mark("u1", 12, "node2")));
    assert!(marks.others.is_empty());
}

#[test]
fn a_new_history_gets_its_own_mark_and_is_not_accepted() {
    let f = fixture();
    let raise = |m: HighWaterMark| f.store.raise_high_water_mark(&m).unwrap();
    assert_eq!(raise(mark("u1", 10, "node1")), MarkRaise::Adopted);
    // A node restored from another cluster, or a bootstrap of other data by hand.
    assert_eq!(raise(mark("u2", 1_000, "node3")), MarkRaise::NewHistory);
    assert_eq!(raise(mark("u2", 1_001, "node3")), MarkRaise::Raised);
    assert_eq!(raise(mark("u1", 11, "node1")), MarkRaise::Raised);
    let marks = f.store.high_water_marks().unwrap();
    assert_eq!(marks.accepted, Some(mark("u1", 11, "node1")));
    assert_eq!(marks.others, [mark("u2", 1_001, "node3")]);
    assert_eq!(marks.of("u2"), Some(&mark("u2", 1_001, "node3")));

    let events = f.store.events(&EventFilter::default()).unwrap();
    let kinds: Vec<(&str, Severity)> = events
        .iter()
        .map(|event| (event.kind.as_str(), event.severity))
        .collect();
    assert_eq!(
        kinds,
        [
            ("new_cluster_history", Severity::Warning),
            ("cluster_history_adopted", Severity::Info)
        ]
    );
    assert!(
        events[0].message.contains("u2") && events[0].message.contains("accepted history u1"),
        "{}",
        events[0].message
    );
    // Adopting the first history is the one change nobody decided; it is recorded too.
    let changes = f.store.mark_changes().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (
            changes[0].uuid.as_str(),
            changes[0].from_seqno,
            changes[0].to_seqno
        ),
        ("u1", None, 10)
    );
}

#[test]
fn accepting_another_history_is_explicit_and_recorded() {
    let f = fixture();
    f.store
        .raise_high_water_mark(&mark("u1", 10, "node1"))
        .unwrap();
    f.store
        .raise_high_water_mark(&mark("u2", 3, "node2"))
        .unwrap();
    f.store
        .accept_history(&mark("u2", 3, "node2"), "forced bootstrap of node2", 500)
        .unwrap();
    let marks = f.store.high_water_marks().unwrap();
    assert_eq!(marks.accepted, Some(mark("u2", 3, "node2")));
    // The history given up keeps its mark: nodes that still hold it are recognised.
    assert_eq!(marks.others, [mark("u1", 10, "node1")]);

    let changes = f.store.mark_changes().unwrap();
    assert_eq!(changes.len(), 2);
    let accepted = &changes[0];
    assert_eq!(accepted.at_ms, 500);
    assert_eq!(accepted.uuid, "u2");
    assert_eq!((accepted.from_seqno, accepted.to_seqno), (Some(3), 3));
    assert_eq!(accepted.previous_history.as_deref(), Some("u1"));
    assert_eq!(accepted.reason, "forced bootstrap of node2");

    let events = f.store.events(&EventFilter::default()).unwrap();
    assert_eq!(events[0].kind, "high_water_mark_reset");
    assert_eq!(events[0].severity, Severity::Warning);
    assert_eq!(
        events[0].message,
        "high-water mark of cluster history u2 set from u2:3 (seen on node2) to u2:3 (seen on node2), accepted in place of u1: forced bootstrap of node2"
    );
}

#[test]
fn a_mark_is_lowered_only_by_an_acceptance() {
    let f = fixture();
    f.store
        .raise_high_water_mark(&mark("u1", 15, "node3"))
        .unwrap();
    assert_eq!(
        f.store
            .raise_high_water_mark(&mark("u1", 10, "node1"))
            .unwrap(),
        MarkRaise::Unchanged
    );
    f.store
        .accept_history(
            &mark("u1", 10, "node1"),
            "writes 11..15 given up by an operator",
            700,
        )
        .unwrap();
    assert_eq!(
        f.store.high_water_marks().unwrap().accepted,
        Some(mark("u1", 10, "node1"))
    );
    let change = &f.store.mark_changes().unwrap()[0];
    assert_eq!((change.from_seqno, change.to_seqno), (Some(15), 10));
    assert_eq!(change.previous_history, None);
    // From there it rises again as usual.
    assert_eq!(
        f.store
            .raise_high_water_mark(&mark("u1", 11, "node1"))
            .unwrap(),
        MarkRaise::Raised
    );
}

#[test]
fn an_acceptance_needs_a_reason() {
    let f = fixture();
    f.store
        .raise_high_water_mark(&mark("u1", 15, "node3"))
        .unwrap();
    let error = f
        .store
        .accept_history(&mark("u2", 1, "node1"), "  ", 700)
        .unwrap_err();
    assert!(matches!(error, StoreError::MissingReason), "{error}");
    let marks = f.store.high_water_marks().unwrap();
    assert_eq!(marks.accepted, Some(mark("u1", 15, "node3")));
    assert!(marks.others.is_empty());
    assert_eq!(f.store.mark_changes().unwrap().len(), 1);
}
