//! Pure checkers over a `History`.
//!
//! Stale reads: a read that began more than `lag_ms` after a write was acknowledged must
//! see that write. Galera applies writesets on every node in one global order, and the
//! unique-insert workload writes ids in increasing order from one client that waits for
//! each answer, so a node that shows row k shows every acknowledged row before it: the
//! highest id a read sees is enough to judge it (docs/galera.md, "A node that froze and
//! resumed"). `lag_ms` allows Galera's normal apply lag on the other nodes; a node
//! outside the Primary component falls behind without bound and is caught.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::history::{History, Outcome};

/// A read that missed acknowledged writes older than the allowed lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    pub node: String,
    pub began_ms: u64,
    /// The highest id the read saw.
    pub saw: u64,
    /// The highest id acknowledged more than the allowed lag before the read began.
    pub required: u64,
    /// How many such acknowledged rows the read missed.
    pub behind: usize,
}

/// Every read that missed an acknowledged write older than `lag_ms`.
pub fn stale_reads(history: &History, lag_ms: u64) -> Vec<StaleRead> {
    let mut acknowledged: Vec<(u64, u64)> = history
        .acknowledged()
        .map(|write| (write.ended_ms, write.id))
        .collect();
    acknowledged.sort_unstable();
    let mut stale = Vec::new();
    for read in &history.reads {
        let cutoff = read.began_ms.saturating_sub(lag_ms);
        if read.began_ms < lag_ms {
            continue;
        }
        let old_enough = acknowledged.partition_point(|&(ended, _)| ended <= cutoff);
        let older = &acknowledged[..old_enough];
        let Some(required) = older.iter().map(|&(_, id)| id).max() else {
            continue;
        };
        if read.max_id < required {
            stale.push(StaleRead {
                node: read.node.clone(),
                began_ms: read.began_ms,
                saw: read.max_id,
                required,
                behind: older.iter().filter(|&&(_, id)| id > read.max_id).count(),
            });
        }
    }
    stale
}

/// What one node holds at the end, against what the clients were told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// Acknowledged, but not on the node: a lost write.
    pub lost: Vec<u64>,
    /// Refused by the server, but on the node anyway.
    pub unexpected: Vec<u64>,
}

impl Missing {
    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty()
    }
}

/// Compares the ids `present` on one node with the history. Unknown writes may be
/// present or not.
pub fn missing_writes(history: &History, present: &BTreeSet<u64>) -> Missing {
    let mut missing = Missing::default();
    for write in &history.writes {
        match write.outcome {
            Outcome::Acknowledged if !present.contains(&write.id) => missing.lost.push(write.id),
            Outcome::Failed if present.contains(&write.id) => missing.unexpected.push(write.id),
            _ => {}
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Read, Write};

    fn write(id: u64, began_ms: u64, ended_ms: u64, outcome: Outcome) -> Write {
        Write {
            id,
            began_ms,
            ended_ms,
            outcome,
        }
    }

    fn read(began_ms: u64, max_id: u64) -> Read {
        Read {
            began_ms,
            ended_ms: began_ms + 1,
            node: "n1".into(),
            max_id,
        }
    }

    fn history(writes: Vec<Write>, reads: Vec<Read>) -> History {
        History {
            writes,
            reads,
            failed_reads: 0,
        }
    }

    #[test]
    fn reads_judged_against_writes_acknowledged_before_the_lag() {
        let writes = vec![
            write(1, 0, 100, Outcome::Acknowledged),
            write(2, 100, 200, Outcome::Acknowledged),
            write(3, 200, 5_000, Outcome::Unknown),
            write(4, 5_000, 5_100, Outcome::Acknowledged),
        ];
        // (read began, highest id seen, stale against a 1 s lag?)
        let table = [
            (500, 0, false),   // nothing acknowledged a second before
            (1_150, 0, true),  // row 1 is older than a second
            (1_150, 1, false), // row 1 seen; row 2 is 950 ms old: allowed lag
            (1_250, 1, true),  // row 2 is now older than a second
            (6_000, 2, false), // row 3 unknown, row 4 only 900 ms old
            (6_200, 2, true),  // row 4 missed
            (6_200, 4, false),
        ];
        for (began, seen, expected) in table {
            let found = stale_reads(&history(writes.clone(), vec![read(began, seen)]), 1_000);
            assert_eq!(
                !found.is_empty(),
                expected,
                "read at {began} seeing {seen}: {found:?}"
            );
        }
    }

    #[test]
    fn a_stale_read_says_how_far_behind_it_was() {
        let writes = (1..=10)
            .map(|id| write(id, id * 10, id * 10 + 5, Outcome::Acknowledged))
            .collect();
        let found = stale_reads(&history(writes, vec![read(2_000, 7)]), 1_000);
        assert_eq!(
            found,
            vec![StaleRead {
                node: "n1".into(),
                began_ms: 2_000,
                saw: 7,
                required: 10,
                behind: 3,
            }]
        );
    }

    #[test]
    fn lost_and_unexpected_rows_are_named_unknown_ones_are_not() {
        let writes = vec![
            write(1, 0, 1, Outcome::Acknowledged),
            write(2, 1, 2, Outcome::Acknowledged),
            write(3, 2, 3, Outcome::Unknown),
            write(4, 3, 4, Outcome::Failed),
            write(5, 4, 5, Outcome::Unknown),
        ];
        let history = history(writes, vec![]);
        assert!(missing_writes(&history, &BTreeSet::from([1, 2, 3])).is_empty());
        assert!(missing_writes(&history, &BTreeSet::from([1, 2, 5])).is_empty());
        let found = missing_writes(&history, &BTreeSet::from([2, 4]));
        assert_eq!(found.lost, vec![1]);
        assert_eq!(found.unexpected, vec![4]);
    }
}
