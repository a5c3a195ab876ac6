//! Events, decisions, transitions and samples: round trips, filters, order, retention.

use serde_json::json;
use store::{
    EventFilter, HighWaterMark, MarkRaise, NewDecision, NewEvent, Sample, Severity, Transition,
};

use crate::{event, fixture};

fn sample(at_ms: i64, node: &str) -> Sample {
    Sample {
        at_ms,
        node: node.to_owned(),
        last_committed: 1000 + at_ms,
        queries_per_second: 12.5,
        flow_control_paused: 0.25,
        recv_queue: 1,
        send_queue: 2,
        cert_failures: 3,
        bf_aborts: 4,
        connections: 5,
        replicated: 6,
        replication_bytes_per_second: 1024.0,
    }
}

fn decision(at_ms: i64) -> NewDecision {
    NewDecision {
        situation: Some("degraded".to_owned()),
        at_ms,
        rule: "restart_stopped_node".to_owned(),
        action: "start node2".to_owned(),
        node: Some("node2".to_owned()),
        reason: "node2 stopped while node1 and node3 are synced".to_owned(),
        evidence: json!({"node1": "Synced", "node3": {"state": "Synced", "seqno": 42}}),
        outcome: "started".to_owned(),
    }
}

#[test]
fn an_event_round_trips() {
    let f = fixture();
    let new = NewEvent {
        at_ms: 1_700_000_000_000,
        severity: Severity::Critical,
        kind: "node_down".to_owned(),
        node: Some("node1".to_owned()),
        message: "node1 stopped answering".to_owned(),
    };
    let id = f.store.record_event(&new).unwrap();
    let events = f.store.events(&EventFilter::default()).unwrap();
    assert_eq!(
        events,
        [store::Event {
            id,
            at_ms: new.at_ms,
            severity: new.severity,
            kind: new.kind,
            node: new.node,
            message: new.message,
        }]
    );
}

#[test]
fn events_are_newest_first_filtered_and_limited() {
    let f = fixture();
    f.store
        .record_event(&event(10, Some("node1"), "a"))
        .unwrap();
    f.store.record_event(&event(30, None, "c")).unwrap();
    f.store
        .record_event(&event(20, Some("node2"), "b"))
        .unwrap();
    f.store
        .record_event(&event(30, Some("node1"), "d"))
        .unwrap();

    let messages = |filter: EventFilter| -> Vec<String> {
        f.store
            .events(&filter)
            .unwrap()
            .into_iter()
            .map(|event| event.message)
            .collect()
    };
    // Equal times keep recording order, newest recorded first.
    assert_eq!(messages(EventFilter::default()), ["d", "c", "b", "a"]);
    assert_eq!(
        messages(EventFilter {
            limit: 2,
            ..EventFilter::default()
        }),
        ["d", "c"]
    );
    assert_eq!(
        messages(EventFilter {
            since_ms: Some(20),
            ..EventFilter::default()
        }),
        ["d", "c", "b"]
    );
    assert_eq!(
        messages(EventFilter {
            node: Some("node1".to_owned()),
            ..EventFilter::default()
        }),
        ["d", "a"]
    );
    assert_eq!(
        messages(EventFilter {
            since_ms: Some(11),
            node: Some("node1".to_owned()),
            limit: 5
        }),
        ["d"]
    );
    assert!(messages(EventFilter {
        node: Some("node9".to_owned()),
        ..EventFilter::default()
    })
    .is_empty());
}

#[test]
fn decisions_round_trip_with_their_evidence() {
    let f = fixture();
    let first = f.store.record_decision(&decision(100)).unwrap();
    let second = f.store.record_decision(&decision(200)).unwrap();
    assert!(second > first);

    let decisions = f.store.decisions(None, 0).unwrap();
    assert_eq!(
        decisions.iter().map(|d| d.id).collect::<Vec<_>>(),
        [second, first]
    );
    let newest = &decisions[0];
    let expected = decision(200);
    assert_eq!(newest.evidence, expected.evidence);
    assert_eq!(newest.situation, expected.situation);
    assert_eq!(
        (
            &newest.rule,
            &newest.action,
            &newest.node,
            &newest.reason,
            &newest.outcome
        ),
        (
            &expected.rule,
            &expected.action,
            &expected.node,
            &expected.reason,
            &expected.outcome
        )
    );
    assert_eq!(f.store.decisions(Some(150), 0).unwrap().len(), 1);
    assert_eq!(f.store.decisions(None, 1).unwrap()[0].id, second);
}

#[test]
fn transitions_round_trip_newest_first() {
    let f = fixture();
    let transition = |at_ms, node: &str, from: &str, to: &str| Transition {
        at_ms,
        node: node.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
    };
    f.store
        .record_transition(&transition(1, "node1", "Joining", "Joined"))
        .unwrap();
    f.store
        .record_transition(&transition(2, "node2", "Donor", "Synced"))
        .unwrap();
    f.store
        .record_transition(&transition(3, "node1", "Joined", "Synced"))
        .unwrap();

    assert_eq!(
        f.store.transitions(None, None, 0).unwrap(),
        [
            transition(3, "node1", "Joined", "Synced"),
            transition(2, "node2", "Donor", "Synced"),
            transition(1, "node1", "Joining", "Joined"),
        ]
    );
    assert_eq!(
        f.store.transitions(Some("node1"), None, 0).unwrap(),
        [
            transition(3, "node1", "Joined", "Synced"),
            transition(1, "node1", "Joining", "Joined")
        ]
    );
    assert_eq!(
        f.store.transitions(None, Some(2), 1).unwrap(),
        [transition(3, "node1", "Joined", "Synced")]
    );
}

#[test]
fn samples_come_back_oldest_first_within_the_window() {
    let f = fixture();
    let written: Vec<Sample> = (0..10)
        .flat_map(|second| {
            [
                sample(second * 1000, "node1"),
                sample(second * 1000, "node2"),
            ]
        })
        .collect();
    f.store.record_samples(&written).unwrap();

    let window = f.store.samples(None, 2000, 4000).unwrap();
    assert_eq!(window, written[4..10]);
    let node2 = f.store.samples(Some("node2"), 2000, 4000).unwrap();
    assert_eq!(
        node2,
        [
            sample(2000, "node2"),
            sample(3000, "node2"),
            sample(4000, "node2")
        ]
    );
    assert!(f.store.samples(None, 10_000, 20_000).unwrap().is_empty());
    f.store.record_samples(&[]).unwrap();
}

#[test]
fn a_nan_rate_reads_back_as_nan() {
    let f = fixture();
    let mut first = sample(0, "node1");
    first.queries_per_second = f64::NAN;
    f.store.record_samples(&[first]).unwrap();
    let read = f.store.samples(None, 0, 0).unwrap();
    assert!(read[0].queries_per_second.is_nan());
    assert_eq!(read[0].flow_control_paused, 0.25);
}

#[test]
fn prune_respects_retention_and_keeps_the_mark_lease_and_open_approvals() {
    let f = fixture();
    for at_ms in [100, 200, 300] {
        f.store.record_event(&event(at_ms, None, "e")).unwrap();
        f.store.record_decision(&decision(at_ms)).unwrap();
        f.store
            .record_transition(&Transition {
                at_ms,
                node: "node1".to_owned(),
                from: "Synced".to_owned(),
                to: "Donor".to_owned(),
            })
            .unwrap();
        f.store.record_samples(&[sample(at_ms, "node1")]).unwrap();
    }
    let mark = HighWaterMark {
        uuid: "u".to_owned(),
        seqno: 7,
        node: "node1".to_owned(),
        at_ms: 50,
    };
    assert_eq!(
        f.store.raise_high_water_mark(&mark).unwrap(),
        MarkRaise::Adopted
    );
    assert!(f.store.acquire_lease("controller", 50, 1_000_000).unwrap());
    let open = f.store.approve("bootstrap node1", false, 60).unwrap();
    let used = f.store.approve("bootstrap node2", false, 70).unwrap();
    f.store.consume_approval(used).unwrap();

    // Events, decisions, transitions and samples at 100 and 200, the event of the mark's
    // adoption at 50, and the consumed approval; the mark and its record of changes stay.
    assert_eq!(f.store.prune(300).unwrap(), 4 * 2 + 1 + 1);
    assert_eq!(f.store.events(&EventFilter::default()).unwrap().len(), 1);
    assert_eq!(f.store.decisions(None, 0).unwrap().len(), 1);
    assert_eq!(f.store.transitions(None, None, 0).unwrap().len(), 1);
    assert_eq!(
        f.store.samples(None, 0, i64::MAX).unwrap(),
        [sample(300, "node1")]
    );
    assert_eq!(f.store.high_water_marks().unwrap().accepted, Some(mark));
    assert_eq!(f.store.mark_changes().unwrap().len(), 1);
    assert_eq!(
        f.store.lease_holder(60).unwrap(),
        Some(("controller".to_owned(), 1_000_050))
    );
    assert_eq!(
        f.store
            .approval("bootstrap node1", 0)
            .unwrap()
            .map(|a| a.id),
        Some(open)
    );
    assert_eq!(f.store.prune(300).unwrap(), 0);
}
