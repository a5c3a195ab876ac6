//! Table-driven scenarios: one compact fixture per cluster state and the plan it must
//! give, one group per recovery situation and safety rule of docs/safety-rules.md.

use planner::{Action, Blocked};

use crate::fixtures::check;

#[test]
fn healthy_cluster_needs_nothing() {
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 primary synced seqno=10
        ",
        "healthy: nothing",
    );
    // A donor serves its joiner and is still part of a healthy cluster.
    check(
        "
        node1 primary synced
        node2 primary donor
        node3 primary synced
        ",
        "healthy: nothing",
    );
}

#[test]
fn crashed_node_of_a_healthy_cluster_is_started() {
    // Its position is read first (rule 8), then it starts.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped crashed data
        ",
        "degraded: recover node3",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:7
        ",
        "degraded: start node3",
    );
    // It rejoins by SST even with an empty data dir.
    check(
        "
        node1 primary synced
        node2 stopped nodata
        node3 primary synced
        ",
        "degraded: start node2",
    );
}

#[test]
fn joiners_start_one_at_a_time() {
    check(
        "
        node1 primary synced seqno=10
        node2 stopped recovered=A:9
        node3 stopped grastate=A:8
        ",
        "degraded: start node2; then start node3",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary joiner
        node3 stopped recovered=A:9
        node4 stopped nodata
        ",
        "degraded: waiting rule=OneJoinerAtATime (node2); then start node3, start node4",
    );
    // Joined (IST applied, catching up) is not Synced yet either.
    check(
        "
        node1 primary synced seqno=10
        node2 primary joined
        node3 stopped recovered=A:9
        ",
        "degraded: waiting rule=OneJoinerAtATime (node2); then start node3",
    );
    check(
        "
        node1 primary synced
        node2 primary joiner
        node3 primary synced
        ",
        "degraded: waiting rule=OneJoinerAtATime (node2)",
    );
}

#[test]
fn node_stuck_outside_the_primary_component_is_restarted() {
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 running nonprimary stuck
        ",
        "degraded: restart node3",
    );
    // Not stuck yet: Galera may still bring it in; wait.
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 running nonprimary
        ",
        "degraded: waiting rule=OneJoinerAtATime (node3)",
    );
    // Stuck in the joiner state (a hung SST) is restarted too.
    check(
        "
        node1 primary synced
        node2 primary joiner stuck
        node3 primary synced
        ",
        "degraded: restart node2",
    );
}

#[test]
fn stuck_node_is_restarted_before_another_node_starts() {
    // Rule 6: node3 is stuck joining (a hung SST); starting node1 beside it would make
    // two joiners at once. node3 is restarted first, and node1 waits until it is Synced.
    check(
        "
        node1 stopped grastate=A:7
        node2 primary synced seqno=10
        node3 primary joiner stuck
        ",
        "degraded: restart node3; then start node1",
    );
    check(
        "
        node1 stopped recovered=A:7
        node2 primary synced seqno=10
        node3 running nonprimary stuck
        ",
        "degraded: restart node3; then start node1",
    );
}

#[test]
fn failed_starts_back_off_then_wipe_or_refuse() {
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 stopped crashed failed=1 backoff
        ",
        "degraded: waiting rule=RestartCrashedNode (node3); note waiting rule=RestartCrashedNode (node3)",
    );
    // The backoff is over: read its position again (the failed start forgot it), then
    // try again.
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 stopped crashed failed=2
        ",
        "degraded: recover node3",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9 failed=2
        ",
        "degraded: start node3",
    );
    check(
        "
        policy allow_wipe=true
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9 failed=3
        ",
        "degraded: wipe-and-start node3",
    );
    // Even a wipe waits for the backoff.
    check(
        "
        policy allow_wipe=true
        node1 primary synced
        node2 primary synced
        node3 stopped crashed failed=3 backoff
        ",
        "degraded: waiting rule=RestartCrashedNode (node3); note waiting rule=RestartCrashedNode (node3)",
    );
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 stopped crashed failed=3
        ",
        "degraded: refused rule=Policy (node3); note refused rule=Policy (node3)",
    );
    // The refused node does not hold the others back.
    check(
        "
        node1 primary synced seqno=10
        node2 stopped recovered=A:9
        node3 stopped crashed failed=4
        ",
        "degraded: start node2; note refused rule=Policy (node3)",
    );
    check(
        "
        policy allow_wipe=true wipe_after_failed_starts=5
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9 failed=4
        ",
        "degraded: start node3",
    );
    // One copy moved aside already: another automatic rebuild would keep one more full
    // copy, so a node that keeps failing would fill its disk. It waits for an operator.
    check(
        "
        policy allow_wipe=true
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9 failed=3 aside
        ",
        "degraded: refused rule=WipeAfterFailedStarts (node3); note refused rule=WipeAfterFailedStarts (node3)",
    );
    // The operator's own rebuild is not bounded by it.
    check(
        "
        policy allow_wipe=true
        rebuild node3
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9 failed=3 aside
        ",
        "degraded: wipe-and-start node3",
    );
}

#[test]
fn graceful_stop_of_all_bootstraps_the_most_advanced_node() {
    // The last node out is marked safe and is the most advanced: it keeps its flag.
    check(
        "
        node1 stopped grastate=A:10
        node2 stopped grastate=A:11
        node3 stopped grastate=A:12 safe
        ",
        "stopped: bootstrap node3@12; then start node1, start node2",
    );
    // A stale node marked safe is NOT bootstrapped (the bug of other tools): its flag is
    // cleared first, then the most advanced node bootstraps and is marked safe.
    check(
        "
        node1 stopped grastate=A:20 safe
        node2 stopped grastate=A:25
        node3 stopped grastate=A:25
        ",
        "stopped: clear-bootstrap-flag node1; then bootstrap node2@25 +safe, start node1, start node3",
    );
    // Equal positions: the safe flag wins over priority.
    check(
        "
        node1 stopped grastate=A:7
        node2 stopped grastate=A:7 safe
        node3 stopped grastate=A:7
        ",
        "stopped: bootstrap node2@7; then start node1, start node3",
    );
}

#[test]
fn all_crashed_recovers_every_position_then_bootstraps_the_highest() {
    let plan = check(
        "
        node1 stopped crashed
        node2 stopped crashed
        node3 stopped crashed
        ",
        "stopped: recover node1, recover node2, recover node3",
    );
    assert_eq!(plan.runnable().len(), 3, "all recover steps run together");
    // Only nodes with data and an unknown position need recovery.
    check(
        "
        node1 stopped crashed
        node2 stopped nodata
        node3 stopped grastate=A:9
        node4 stopped recovered=A:11
        ",
        "stopped: recover node1",
    );
    check(
        "
        node1 stopped recovered=A:10
        node2 stopped recovered=A:12
        node3 stopped recovered=A:11
        ",
        "stopped: bootstrap node2@12 +safe; then start node1, start node3",
    );
    // A graceful position and a recovered one compare alike.
    check(
        "
        rebuild node3
        node1 stopped grastate=A:12 safe
        node2 stopped recovered=A:14
        node3 stopped nodata
        ",
        "stopped: clear-bootstrap-flag node1; then bootstrap node2@14 +safe, start node1, start node3",
    );
    // An empty node marked safe is never chosen; a crashed node with a leftover flag
    // first reports its position.
    check(
        "
        node1 stopped crashed safe
        node2 stopped grastate=A:3
        ",
        "stopped: recover node1",
    );
    check(
        "
        node1 stopped recovered=A:2 safe
        node2 stopped grastate=A:3
        ",
        "stopped: clear-bootstrap-flag node1; then bootstrap node2@3 +safe, start node1",
    );
}

#[test]
fn crashed_node_without_history_is_not_recovered_forever() {
    // node2 was killed during its SST: its data dir has files but --wsrep-recover finds
    // no history (the zero UUID, seqno -1). Its position is known to be "none": the
    // others bootstrap without it, and it rejoins by SST.
    check(
        "
        node1 stopped grastate=A:10
        node2 stopped recovered=0:-1
        node3 stopped grastate=A:9
        ",
        "stopped: bootstrap node1@10 +safe; then start node2, start node3",
    );
}

#[test]
fn unreachable_agent_blocks_the_bootstrap() {
    // Rule 3: node2 may be the most advanced node, or even running.
    check(
        "
        node1 stopped grastate=A:10
        node2 unreachable
        node3 stopped grastate=A:12 safe
        ",
        "no_primary: waiting rule=EveryNodeReported (node2)",
    );
    // With a Primary component the others go on; nothing is done for node2.
    check(
        "
        node1 primary synced seqno=10
        node2 unreachable
        node3 stopped recovered=A:9
        ",
        "degraded: start node3; note waiting rule=EveryNodeReported (node2)",
    );
    check(
        "
        node1 primary synced
        node2 unreachable
        node3 primary synced
        ",
        "degraded: waiting rule=EveryNodeReported (node2); note waiting rule=EveryNodeReported (node2)",
    );
}

#[test]
fn node_running_outside_a_primary_component_while_others_are_stopped() {
    check(
        "
        node1 running nonprimary
        node2 stopped crashed
        node3 stopped grastate=A:12
        ",
        "no_primary: waiting rule=PreferPcRecovery (node1)",
    );
    // Stuck: stop it so that its position is saved, never bootstrap beside it.
    check(
        "
        node1 running nonprimary stuck
        node2 stopped crashed
        node3 stopped grastate=A:12
        ",
        "no_primary: stop node1",
    );
    check(
        "
        node1 running nonprimary stuck
        node2 running nonprimary
        node3 stopped crashed
        ",
        "no_primary: waiting rule=PreferPcRecovery (node1, node2)",
    );
    check(
        "
        node1 running nonprimary stuck
        node2 running nonprimary stuck
        node3 stopped crashed
        ",
        "no_primary: stop node1; then stop node2",
    );
    // A node that still shows Synced but is outside the Primary component is no
    // Primary component.
    check(
        "
        node1 running nonprimary synced stuck
        node2 stopped grastate=A:5
        ",
        "no_primary: stop node1",
    );
}

#[test]
fn all_running_outside_a_primary_component_waits_for_pc_recovery() {
    check(
        "
        node1 running nonprimary
        node2 running nonprimary
        node3 running nonprimary
        ",
        "no_primary: waiting rule=PreferPcRecovery",
    );
    check(
        "
        node1 running nonprimary stuck
        node2 running nonprimary
        node3 running nonprimary stuck
        ",
        "no_primary: waiting rule=PreferPcRecovery",
    );
    // Rule 5: never pc.bootstrap automatically, not even when all are stuck.
    check(
        "
        node1 running nonprimary stuck
        node2 running nonprimary stuck
        node3 running nonprimary stuck
        ",
        "no_primary: refused rule=PreferPcRecovery",
    );
}

#[test]
fn high_water_mark_refuses_a_bootstrap_that_loses_writes() {
    // node2 lost its disk, which held writes 13..15 (the operator says it is lost).
    check(
        "
        hwm A:15
        rebuild node2
        node1 stopped grastate=A:12 safe
        node2 stopped nodata
        node3 stopped grastate=A:10
        ",
        "stopped: refused rule=HighWaterMark (node1, node2)",
    );
    let plan = check(
        "
        hwm A:15
        force
        rebuild node2
        node1 stopped grastate=A:12 safe
        node2 stopped nodata
        node3 stopped grastate=A:10
        ",
        "stopped: bootstrap node1@12; then start node2, start node3; accept A:12 after bootstrap node1",
    );
    let bootstrap = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Bootstrap { .. }))
        .unwrap();
    assert!(bootstrap.reason.contains("FORCED"), "{}", bootstrap.reason);
    // At the mark is fine.
    check(
        "
        hwm A:12
        rebuild node2
        node1 stopped grastate=A:12 safe
        node2 stopped nodata
        ",
        "stopped: bootstrap node1@12; then start node2",
    );
    // Nodes from another history than the accepted one (rule 10).
    check(
        "
        hwm B:5
        node1 stopped grastate=A:12 safe
        node2 stopped grastate=A:11
        ",
        "stopped: refused rule=AcceptedHistory (node1)",
    );
    check(
        "
        hwm B:5
        force
        node1 stopped grastate=A:12 safe
        node2 stopped grastate=A:11
        ",
        "stopped: bootstrap node1@12; then start node2; accept A:12 after bootstrap node1",
    );
}

#[test]
fn refuse_when_nodes_hold_different_histories() {
    check(
        "
        node1 stopped grastate=A:10
        node2 stopped grastate=B:12 safe
        node3 stopped nodata
        ",
        "stopped: refused rule=MostAdvancedNode (node1, node2)",
    );
}

#[test]
fn leftover_bootstrap_flags_are_cleared_before_the_bootstrap() {
    let plan = check(
        "
        node1 stopped grastate=A:25 safe
        node2 stopped grastate=A:20 safe
        node3 stopped grastate=A:25
        node4 stopped grastate=A:19 safe
        ",
        "stopped: clear-bootstrap-flag node2; then clear-bootstrap-flag node4, bootstrap node1@25, start node2, start node3, start node4",
    );
    let bootstrap_at = plan
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::Bootstrap { .. }))
        .unwrap();
    assert!(plan.steps[..bootstrap_at]
        .iter()
        .all(|s| matches!(s.action, Action::ClearBootstrapFlag { .. })));
    // Once cleared, the bootstrap runs.
    check(
        "
        node1 stopped grastate=A:25 safe
        node2 stopped grastate=A:20
        node3 stopped grastate=A:25
        node4 stopped grastate=A:19
        ",
        "stopped: bootstrap node1@25; then start node2, start node3, start node4",
    );
}

#[test]
fn no_data_anywhere_is_a_new_cluster() {
    // The controller never creates a cluster on its own.
    check(
        "
        node1 stopped nodata
        node2 stopped nodata
        node3 stopped nodata
        ",
        "stopped: refused rule=NewCluster",
    );
    // `galley up` asks for one: the most preferred node initializes and bootstraps.
    check(
        "
        create_new
        node1 stopped nodata
        node2 stopped nodata
        node3 stopped nodata
        ",
        "stopped: create-cluster node1 +init; then start node2, start node3",
    );
    // Initialized but never started (an `up` cut short): its files hold no history, so
    // once recovery says so, it bootstraps as it is.
    check(
        "
        create_new
        node1 stopped crashed
        node2 stopped nodata
        ",
        "stopped: recover node1",
    );
    check(
        "
        create_new
        node1 stopped recovered=0:-1
        node2 stopped nodata
        ",
        "stopped: create-cluster node1; then start node2",
    );
    // A cluster whose history is known is not replaced by an empty one, unless the
    // operator forces it.
    check(
        "
        create_new
        hwm A:30
        node1 stopped nodata
        node2 stopped nodata
        ",
        "stopped: refused rule=HighWaterMark",
    );
    check(
        "
        create_new
        hwm A:30
        force
        node1 stopped nodata
        node2 stopped nodata
        ",
        "stopped: create-cluster node1 +init; then start node2",
    );
    // History anywhere means no new cluster, whatever the operator asked.
    check(
        "
        create_new
        node1 stopped nodata
        node2 stopped grastate=A:7 safe
        ",
        "stopped: refused rule=MissingData (node1)",
    );
}

#[test]
fn a_node_without_data_blocks_a_bootstrap_until_the_operator_says_it_is_lost() {
    // node3's empty data dir may be a lost disk that held the latest writes.
    check(
        "
        node1 stopped grastate=A:12 safe
        node2 stopped grastate=A:11
        node3 stopped nodata
        ",
        "stopped: refused rule=MissingData (node3)",
    );
    check(
        "
        rebuild node3
        node1 stopped grastate=A:12 safe
        node2 stopped grastate=A:11
        node3 stopped nodata
        ",
        "stopped: bootstrap node1@12; then start node2, start node3",
    );
    // A running cluster is another matter: the empty node joins it by SST.
    check(
        "
        node1 primary synced
        node2 primary synced
        node3 stopped nodata
        ",
        "degraded: start node3",
    );
}

#[test]
fn policy_marks_steps_that_need_an_operator() {
    check(
        "
        policy auto_recover_nodes=false
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9
        ",
        "degraded: refused rule=Policy (node3); then start node3?",
    );
    check(
        "
        policy auto_recover_cluster=false
        node1 stopped grastate=A:10
        node2 stopped grastate=A:11
        node3 stopped grastate=A:12 safe
        ",
        "stopped: refused rule=Policy; then bootstrap node3@12?, start node1?, start node2?",
    );
    check(
        "
        policy confirm_bootstrap=true
        node1 stopped grastate=A:10
        node2 stopped grastate=A:11
        node3 stopped grastate=A:12 safe
        ",
        "stopped: bootstrap node3@12?; then start node1, start node2",
    );
    check(
        "
        policy confirm_restart=true
        node1 primary synced
        node2 primary synced
        node3 running nonprimary stuck
        ",
        "degraded: restart node3?",
    );
    check(
        "
        policy confirm_restart=true
        node1 primary synced seqno=10
        node2 stopped recovered=A:9
        ",
        "degraded: start node2?",
    );
    // Reading positions changes nothing in the cluster: it runs even when cluster
    // recovery waits for an operator, so that the operator sees the whole plan.
    check(
        "
        policy auto_recover_cluster=false
        node1 stopped crashed
        node2 stopped grastate=A:4
        ",
        "stopped: recover node1",
    );
}

#[test]
fn every_decision_names_its_rule_and_reason() {
    let plan = check(
        "
        hwm A:15
        rebuild node2
        node1 stopped grastate=A:12 safe
        node2 stopped nodata
        ",
        "stopped: refused rule=HighWaterMark (node1, node2)",
    );
    let Some(Blocked::Refused { reason, .. }) = &plan.blocked else {
        unreachable!()
    };
    assert!(
        reason.contains("13..15"),
        "the lost writes are named: {reason}"
    );
    assert!(reason.contains("--force"), "the way out is named: {reason}");
}

#[test]
fn joiner_waits_until_the_view_drops_the_dead_member() {
    // node3 was just killed: the survivors still count it (size 3), so starting it now
    // would make Galera reconfigure twice while commits stall.
    check(
        "
        node1 primary synced size=3
        node2 primary synced size=3
        node3 stopped nodata
        ",
        "degraded: waiting rule=DeadMemberInView; then start node3",
    );
    // Once the view has dropped it (size 2), it starts.
    check(
        "
        node1 primary synced size=2
        node2 primary synced size=2
        node3 stopped nodata
        ",
        "degraded: start node3",
    );
    // An unreachable agent may hide a running member; the view of 3 still counts the
    // stopped node3, so the wait holds.
    check(
        "
        node1 primary synced size=3
        node2 unreachable
        node3 stopped nodata
        ",
        "degraded: waiting rule=DeadMemberInView; then start node3; note waiting rule=EveryNodeReported (node2)",
    );
    // With the view at 2 (node1 and, possibly, node2), node3 starts.
    check(
        "
        node1 primary synced size=2
        node2 unreachable
        node3 stopped nodata
        ",
        "degraded: start node3; note waiting rule=EveryNodeReported (node2)",
    );
}

#[test]
fn a_joiner_never_overwrites_newer_data() {
    // Rule 8. Someone bootstrapped node1 by hand from stale data: node3 holds writes
    // 11..15 that the Primary component lacks. Starting it would SST them away.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped grastate=A:15
        ",
        "degraded: refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=KeepNewerData (node1, node2, node3)",
    );
    // A node behind the Primary still joins; the one ahead stays stopped.
    check(
        "
        hwm A:15
        node1 primary synced seqno=10
        node2 stopped grastate=A:8
        node3 stopped recovered=A:15
        ",
        "degraded: start node2; note refused rule=PrimaryBehindMark (node1, node3); note refused rule=KeepNewerData (node1, node3)",
    );
    // A wipe moves the data aside: the cluster would still go on without it.
    check(
        "
        policy allow_wipe=true
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:12 failed=3
        ",
        "degraded: refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=KeepNewerData (node1, node2, node3)",
    );
    // A restart makes a running node a joiner again: its data counts too.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 running nonprimary stuck seqno=14
        ",
        "degraded: refused rule=KeepNewerData (node1, node2, node3); note refused rule=KeepNewerData (node1, node2, node3)",
    );
    // At the Primary's position or behind it, nothing is lost.
    check(
        "
        hwm A:10
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped grastate=A:10
        ",
        "degraded: start node3",
    );
}

#[test]
fn a_joiner_never_overwrites_another_cluster_history() {
    // Rule 8. node3 was restored from another cluster (history B).
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped grastate=B:4
        ",
        "degraded: refused rule=KeepOtherHistory (node1, node2, node3); note refused rule=KeepOtherHistory (node1, node2, node3)",
    );
    check(
        "
        policy allow_wipe=true
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=B:40 failed=3
        ",
        "degraded: refused rule=KeepOtherHistory (node1, node2, node3); note refused rule=KeepOtherHistory (node1, node2, node3)",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 running nonprimary stuck uuid=B
        ",
        "degraded: refused rule=KeepOtherHistory (node1, node2, node3); note refused rule=KeepOtherHistory (node1, node2, node3)",
    );
}

#[test]
fn a_crashed_joiner_reports_its_position_first() {
    // Rule 8. grastate.dat says -1 after a crash: the position is unknown until
    // --wsrep-recover reads it, and only then may the node take a state transfer.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped crashed
        ",
        "degraded: recover node3",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:9
        ",
        "degraded: start node3",
    );
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=A:11
        ",
        "degraded: refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=KeepNewerData (node1, node2, node3)",
    );
    // No history at all (an empty data dir, or an SST cut short: the zero UUID and
    // seqno -1): nothing to lose, it joins.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped recovered=0:-1
        ",
        "degraded: start node3",
    );
    // Reading a position touches no other node: it runs while a joiner syncs, and
    // the node that will not be started is not read.
    check(
        "
        node1 primary synced seqno=10
        node2 primary joiner
        node3 stopped crashed
        node4 stopped crashed failed=3
        ",
        "degraded: recover node3; note waiting rule=OneJoinerAtATime (node2); note refused rule=Policy (node4)",
    );
}

#[test]
fn two_cluster_histories_running_is_a_split_brain() {
    // Rule 9: never healthy, no node started into either side; the minority is named.
    let plan = check(
        "
        node1 primary synced seqno=10 size=2
        node2 primary synced seqno=10 size=2
        node3 primary synced seqno=40 size=1 uuid=B
        ",
        "split_brain: refused rule=SplitBrain (node1, node2, node3)",
    );
    let Some(Blocked::Refused { reason, .. }) = &plan.blocked else {
        unreachable!()
    };
    assert!(reason.contains("the minority is node3"), "{reason}");
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=40 uuid=B
        node3 stopped grastate=A:9
        ",
        "split_brain: refused rule=SplitBrain (node1, node2)",
    );
    // A node outside the Primary component that still reports an old UUID is no
    // second history running.
    check(
        "
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 running nonprimary uuid=B
        ",
        "degraded: waiting rule=OneJoinerAtATime (node3)",
    );
}

#[test]
fn a_primary_behind_its_mark_is_missing_writes() {
    // Rule 10: every node is Synced, but writes 11..15 were committed and are gone (a
    // bootstrap from stale data by hand): not healthy, and said so.
    let plan = check(
        "
        hwm A:15
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 primary synced seqno=10
        ",
        "degraded: refused rule=PrimaryBehindMark (node1, node2, node3); note refused rule=PrimaryBehindMark (node1, node2, node3)",
    );
    let Some(Blocked::Refused { reason, .. }) = &plan.blocked else {
        unreachable!()
    };
    assert!(
        reason.contains("11..15"),
        "the missing writes are named: {reason}"
    );
    // A donor on its way back (Joined) holds the newest write while the Synced member
    // is still applying it: the Primary is at the mark, not behind it (seen in the
    // controller's integration test as a false refusal, seqno 6985 below mark 6986).
    check(
        "
        hwm A:11
        node1 primary synced seqno=10
        node2 primary joined seqno=11
        node3 stopped grastate=A:9
        ",
        "degraded: waiting rule=OneJoinerAtATime (node2); then start node3",
    );
    // At the mark: healthy.
    check(
        "
        hwm A:10
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 primary synced seqno=10
        ",
        "healthy: nothing",
    );
}

#[test]
fn a_primary_of_another_history_than_the_accepted_one_is_reported() {
    // Rule 10: the cluster's history is A; someone bootstrapped B (restored from
    // another cluster). A's nodes are kept, and the running history is not accepted
    // silently.
    check(
        "
        hwm A:15
        node1 primary synced seqno=3 uuid=B
        node2 primary synced seqno=3 uuid=B
        node3 stopped grastate=A:15
        ",
        "degraded: refused rule=AcceptedHistory (node1, node2, node3); note refused rule=AcceptedHistory (node1, node2, node3); note refused rule=KeepOtherHistory (node1, node2, node3)",
    );
}

#[test]
fn each_history_has_its_own_mark() {
    // Rule 10. The cluster accepted history B after a forced bootstrap; A's mark (50) is
    // kept beside it. Nodes holding A are not bootstrapped without the operator...
    check(
        "
        hwm B:10
        mark A:50
        node1 stopped grastate=A:30
        node2 stopped grastate=A:30
        ",
        "stopped: refused rule=AcceptedHistory (node1)",
    );
    // ... and when forced, the bootstrap is checked against A's own mark, not B's, and
    // says what the acceptance gives up.
    let plan = check(
        "
        hwm B:10
        mark A:50
        force
        node1 stopped grastate=A:30
        node2 stopped grastate=A:30
        ",
        "stopped: bootstrap node1@30 +safe; then start node2; accept A:30 after bootstrap node1",
    );
    let acceptance = plan.acceptance.as_ref().unwrap();
    assert!(
        acceptance.reason.contains("31..50"),
        "{}",
        acceptance.reason
    );
    assert!(
        acceptance.reason.contains("replaces the accepted history"),
        "{}",
        acceptance.reason
    );
    // A bootstrap of the accepted history is checked against its mark only.
    check(
        "
        hwm A:12
        mark B:90
        node1 stopped grastate=A:12
        node2 stopped grastate=A:11
        ",
        "stopped: bootstrap node1@12 +safe; then start node2",
    );
    check(
        "
        hwm A:15
        mark B:90
        node1 stopped grastate=A:12
        node2 stopped grastate=A:11
        ",
        "stopped: refused rule=HighWaterMark (node1)",
    );
    // A running Primary of the accepted history is measured against its own mark: B's
    // higher one does not matter.
    check(
        "
        hwm A:10
        mark B:90
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        ",
        "healthy: nothing",
    );
    // A running Primary of another history is measured against that history's mark.
    check(
        "
        hwm A:10
        mark B:90
        node1 primary synced seqno=40 uuid=B
        node2 primary synced seqno=40 uuid=B
        ",
        "degraded: refused rule=AcceptedHistory (node1, node2); note refused rule=AcceptedHistory (node1, node2); note refused rule=PrimaryBehindMark (node1, node2)",
    );
}

#[test]
fn force_accepts_the_running_history_explicitly() {
    // Rule 10: with the operator's force, a Primary behind its mark or of another
    // history is accepted, and the plan says what to record; nothing happens silently.
    let plan = check(
        "
        hwm A:15
        force
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        ",
        "healthy: accept A:10",
    );
    let acceptance = plan.acceptance.unwrap();
    assert!(
        acceptance.reason.contains("11..15"),
        "{}",
        acceptance.reason
    );
    check(
        "
        hwm A:15
        force
        node1 primary synced seqno=3 uuid=B
        node2 primary synced seqno=3 uuid=B
        ",
        "healthy: accept B:3",
    );
    // Force accepts the loss of writes, not the overwriting of a node that holds them:
    // that is a separate decision, per node (rule 8).
    check(
        "
        hwm A:15
        force
        node1 primary synced seqno=10
        node2 stopped grastate=A:15
        ",
        "degraded: refused rule=KeepNewerData (node1, node2); note refused rule=KeepNewerData (node1, node2); accept A:10",
    );
}

#[test]
fn an_operator_may_give_up_a_nodes_data() {
    // Rule 8's override: node3's data (another history, or ahead) is given up by name:
    // it is moved aside and rebuilt, one joiner at a time like any other.
    check(
        "
        rebuild node3
        node1 primary synced seqno=10
        node2 primary synced seqno=10
        node3 stopped grastate=B:40
        ",
        "degraded: wipe-and-start node3",
    );
    check(
        "
        rebuild node3
        node1 primary synced seqno=10
        node2 primary joiner
        node3 stopped crashed
        ",
        "degraded: waiting rule=OneJoinerAtATime (node2); then wipe-and-start node3",
    );
    // Given-up data does not count in a bootstrap choice either.
    check(
        "
        rebuild node2 node3
        node1 stopped grastate=A:10
        node2 stopped grastate=B:12 safe
        node3 stopped nodata
        ",
        "stopped: bootstrap node1@10 +safe; then wipe-and-start node2, start node3",
    );
}

#[test]
fn a_split_brain_of_equal_sides_names_both() {
    let plan = check(
        "
        node1 primary synced seqno=10 size=1
        node2 primary synced seqno=40 size=1 uuid=B
        node3 stopped grastate=A:10
        ",
        "split_brain: refused rule=SplitBrain (node1, node2)",
    );
    let Some(Blocked::Refused { reason, .. }) = &plan.blocked else {
        unreachable!()
    };
    assert!(reason.contains("neither is the majority"), "{reason}");
}

#[test]
fn an_observation_proves_a_mark_per_history() {
    // What the controller raises its store's marks with (rule 10): Synced members'
    // last committed seqno and stopped nodes' positions, the highest per history, the
    // running history first; a joiner's seqno and a crash's unknown position do not
    // count.
    let observation = crate::fixtures::parse(
        "
        node1 stopped grastate=B:40
        node2 primary synced seqno=10
        node3 primary joiner seqno=99
        node4 stopped recovered=A:12
        node5 stopped crashed
        node6 stopped nodata
        ",
    );
    let marks: Vec<String> = planner::observed_marks(&observation)
        .iter()
        .map(|mark| {
            format!(
                "{}:{} on {}",
                crate::fixtures::letter(&mark.uuid),
                mark.seqno,
                mark.node
            )
        })
        .collect();
    assert_eq!(marks, ["A:12 on node4", "B:40 on node1"]);
}

#[test]
fn an_acceptance_waits_for_its_bootstrap() {
    // The most advanced node is stopped on purpose: no bootstrap, so nothing to accept.
    let observation = crate::fixtures::parse(
        "
        hwm A:15
        force
        node1 stopped grastate=A:12
        node2 stopped grastate=A:10
        ",
    );
    let plan = planner::plan(&observation);
    assert!(plan.acceptance.is_some());
    let plan = planner::respect_operator_stops(plan, &observation, &["node1".to_owned()]);
    assert!(plan.steps.is_empty());
    assert_eq!(plan.acceptance, None);
}

#[test]
fn an_acceptance_waits_for_every_agent() {
    // node3 does not answer: it may run a Primary component of the accepted history
    // A, so accepting B now could bless one side of a split brain nobody sees.
    check(
        "
        hwm A:15
        force
        node1 primary synced seqno=3 uuid=B
        node2 primary synced seqno=3 uuid=B
        node3 unreachable
        ",
        "degraded: refused rule=AcceptedHistory (node1, node2); note refused rule=AcceptedHistory (node1, node2); note waiting rule=AcceptedHistory (node3); note waiting rule=EveryNodeReported (node3)",
    );
}

#[test]
fn a_node_in_a_stale_view_is_not_synced_and_is_restarted_when_stuck() {
    // Frozen and resumed: it still says Primary and Synced, the others moved on.
    check(
        "
        node1 primary synced seqno=10 stale
        node2 primary synced seqno=20
        node3 primary synced seqno=20
        ",
        "degraded: waiting rule=OneJoinerAtATime (node1)",
    );
    check(
        "
        node1 primary synced seqno=10 stale stuck
        node2 primary synced seqno=20
        node3 primary synced seqno=20
        ",
        "degraded: restart node1",
    );
}
