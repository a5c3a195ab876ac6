//! The lease between two handles on one file, as the controller and `galley recover`
//! would hold it.

use store::{Store, StoreError};

use crate::fixture;

#[test]
fn one_owner_at_a_time_until_expiry() {
    let f = fixture();
    let controller = &f.store;
    let recover = Store::open(&f.path).unwrap();

    assert_eq!(controller.lease_holder(0).unwrap(), None);
    assert!(controller
        .acquire_lease("controller", 1_000, 10_000)
        .unwrap());
    assert!(!recover.acquire_lease("recover", 2_000, 10_000).unwrap());
    assert_eq!(
        recover.lease_holder(2_000).unwrap(),
        Some(("controller".to_owned(), 11_000))
    );

    // Renewal by the holder extends it.
    assert!(controller
        .acquire_lease("controller", 9_000, 10_000)
        .unwrap());
    assert!(!recover.acquire_lease("recover", 12_000, 10_000).unwrap());
    assert_eq!(
        recover.lease_holder(12_000).unwrap(),
        Some(("controller".to_owned(), 19_000))
    );

    // Expired at its expiry time: the other owner takes it.
    assert_eq!(recover.lease_holder(19_000).unwrap(), None);
    assert!(recover.acquire_lease("recover", 19_000, 10_000).unwrap());
    assert!(!controller
        .acquire_lease("controller", 20_000, 10_000)
        .unwrap());
    assert_eq!(
        controller.lease_holder(20_000).unwrap(),
        Some(("recover".to_owned(), 29_000))
    );
}

#[test]
fn release_frees_the_lease_only_for_its_holder() {
    let f = fixture();
    let other = Store::open(&f.path).unwrap();
    assert!(f.store.acquire_lease("controller", 0, 10_000).unwrap());
    other.release_lease("recover").unwrap();
    assert!(!other.acquire_lease("recover", 1, 10_000).unwrap());
    f.store.release_lease("controller").unwrap();
    assert_eq!(other.lease_holder(1).unwrap(), None);
    assert!(other.acquire_lease("recover", 2, 10_000).unwrap());
}

#[test]
fn a_lease_needs_a_positive_ttl() {
    let f = fixture();
    assert!(matches!(
        f.store.acquire_lease("controller", 0, 0),
        Err(StoreError::InvalidLeaseTtl { ttl_ms: 0 })
    ));
}
