//! Approvals: the newest unconsumed one for a step, within a time window, used once.

use store::StoreError;

use crate::fixture;

#[test]
fn the_newest_unconsumed_approval_is_returned_and_used_once() {
    let f = fixture();
    assert_eq!(f.store.approval("bootstrap node1", 0).unwrap(), None);
    let older = f.store.approve("bootstrap node1", false, 100).unwrap();
    let newer = f.store.approve("bootstrap node1", true, 200).unwrap();
    f.store.approve("bootstrap node2", false, 300).unwrap();

    let approval = f.store.approval("bootstrap node1", 0).unwrap().unwrap();
    assert_eq!(
        approval,
        store::Approval {
            id: newer,
            at_ms: 200,
            step: "bootstrap node1".to_owned(),
            force: true
        }
    );
    f.store.consume_approval(newer).unwrap();
    assert!(matches!(
        f.store.consume_approval(newer),
        Err(StoreError::ApprovalUnavailable { id }) if id == newer
    ));
    let approval = f.store.approval("bootstrap node1", 0).unwrap().unwrap();
    assert_eq!((approval.id, approval.force), (older, false));
    f.store.consume_approval(older).unwrap();
    assert_eq!(f.store.approval("bootstrap node1", 0).unwrap(), None);
    assert!(matches!(
        f.store.consume_approval(9_999),
        Err(StoreError::ApprovalUnavailable { id: 9_999 })
    ));
}

#[test]
fn approvals_older_than_since_are_ignored() {
    let f = fixture();
    let id = f.store.approve("rebuild node3", false, 1_000).unwrap();
    assert_eq!(f.store.approval("rebuild node3", 1_001).unwrap(), None);
    assert_eq!(
        f.store
            .approval("rebuild node3", 1_000)
            .unwrap()
            .map(|a| a.id),
        Some(id)
    );
}

#[test]
fn desired_state_remembers_nodes_stopped_on_purpose() {
    let f = fixture();
    assert!(f.store.stopped_on_purpose().unwrap().is_empty());
    f.store.set_desired("node2", false, 100).unwrap();
    f.store.set_desired("node3", false, 110).unwrap();
    assert_eq!(f.store.stopped_on_purpose().unwrap(), ["node2", "node3"]);
    f.store.set_desired("node2", true, 120).unwrap();
    assert_eq!(f.store.stopped_on_purpose().unwrap(), ["node3"]);
}
