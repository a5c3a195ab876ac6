//! Two data nodes and an arbitrator (garbd): garbd votes in the group, so the survivor of
//! one data node's loss stays Primary and nothing is bootstrapped; garbd has no agent and
//! no data, so it is never started, recovered, bootstrapped or weighed for a seqno.
//! `size=` is `wsrep_cluster_size`, which counts garbd (docs/arbitrator.md).

use crate::fixtures::check;

#[test]
fn losing_a_data_node_keeps_the_survivor_primary_and_rejoins_the_node() {
    // Scenario, then plan: each row is one observation of two data nodes and garbd.
    let table = [
        // Just killed: the survivor's view still counts node2 (node1, node2, garbd).
        (
            "node1 primary synced seqno=10 size=3\nnode2 stopped crashed",
            "degraded: recover node2",
        ),
        (
            "node1 primary synced seqno=10 size=3\nnode2 stopped recovered=A:10",
            "degraded: waiting rule=DeadMemberInView; then start node2",
        ),
        // Evicted: node1 and garbd are 2 of the last view's 3, a Primary; node2 rejoins
        // by IST. Nothing is bootstrapped.
        (
            "node1 primary synced seqno=10 size=2\nnode2 stopped recovered=A:10",
            "degraded: start node2",
        ),
        // node2's agent is gone with its host: node1 keeps serving, nothing to do for
        // node2 but wait for it.
        (
            "node1 primary synced seqno=10 size=2\nnode2 unreachable",
            "degraded: waiting rule=EveryNodeReported (node2); note waiting rule=EveryNodeReported (node2)",
        ),
    ];
    for (nodes, plan) in table {
        check(&format!("arbitrators 1\n{nodes}"), plan);
    }
}

#[test]
fn without_the_arbitrator_counted_the_survivor_would_wait_forever() {
    // The same view of 2 (node1 and garbd) read as two data nodes: one may be dead in it.
    check(
        "node1 primary synced seqno=10 size=2\nnode2 stopped recovered=A:10",
        "degraded: waiting rule=DeadMemberInView; then start node2",
    );
}

#[test]
fn losing_the_arbitrator_is_healthy() {
    // garbd gone: node1 and node2 are 2 of 3, still Primary; garbd is restarted by its
    // supervisor, not by the planner.
    for size in ["size=3", "size=2"] {
        check(
            &format!("arbitrators 1\nnode1 primary synced {size}\nnode2 primary synced {size}"),
            "healthy: nothing",
        );
    }
}

#[test]
fn both_data_nodes_down_recover_as_a_full_crash_without_the_arbitrator() {
    // garbd alone is a non-Primary component of one: it holds no position and is in no
    // choice. The most advanced data node bootstraps, exactly as without garbd.
    let table = [
        (
            "node1 stopped crashed\nnode2 stopped crashed",
            "stopped: recover node1, recover node2",
        ),
        (
            "node1 stopped recovered=A:10\nnode2 stopped recovered=A:12",
            "stopped: bootstrap node2@12 +safe; then start node1",
        ),
        (
            "node1 stopped recovered=A:12\nnode2 stopped crashed",
            "stopped: recover node2",
        ),
        (
            "node1 stopped recovered=A:12\nnode2 unreachable",
            "no_primary: waiting rule=EveryNodeReported (node2)",
        ),
    ];
    for (nodes, plan) in table {
        check(&format!("arbitrators 1\n{nodes}"), plan);
        check(nodes, plan);
    }
}
