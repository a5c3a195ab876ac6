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

/// One write that a client was told committed: when it began and ended, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub began_ms: u64,
    pub ended_ms: u64,
    pub node: String,
}

/// Every acknowledged change of the history (inserts and transfers) whose node is known.
pub fn acks(history: &History) -> Vec<Ack> {
    let inserts = history
        .acknowledged()
        .filter_map(|w| Some((w.began_ms, w.ended_ms, w.node.clone()?)));
    let transfers = history
        .transfers
        .iter()
        .filter(|t| t.outcome == Outcome::Acknowledged)
        .filter_map(|t| Some((t.began_ms, t.ended_ms, t.node.clone()?)));
    let mut acks: Vec<Ack> = inserts
        .chain(transfers)
        .map(|(began_ms, ended_ms, node)| Ack {
            began_ms,
            ended_ms,
            node,
        })
        .collect();
    acks.sort_by_key(|ack| (ack.began_ms, ack.ended_ms));
    acks
}

/// Width of the multi-writer check's time slots.
pub const SLOT_MS: u64 = 100;

/// The slots (by the start of each, in ms) in which writes that began in the slot were
/// acknowledged by two or more nodes: two nodes taking writes through galley at once.
/// Single-writer routing allows one such slot at a writer change (the old writer's last
/// write and the new one's first); the report judges the rest.
pub fn multi_writer_slots(acks: &[Ack]) -> Vec<u64> {
    let mut slots = Vec::new();
    let mut current: Option<(u64, &str)> = None;
    let mut counted = None;
    for ack in acks {
        let slot = ack.began_ms / SLOT_MS * SLOT_MS;
        match current {
            Some((s, node)) if s == slot && node != ack.node && counted != Some(slot) => {
                slots.push(slot);
                counted = Some(slot);
            }
            Some((s, _)) if s == slot => {}
            _ => current = Some((slot, ack.node.as_str())),
        }
    }
    slots
}

/// When writes were back after a fault injected at `fault_ms`: the end of the first
/// acknowledged write that began at or after it, in ms after the fault.
pub fn writes_back_after(acks: &[Ack], fault_ms: u64) -> Option<u64> {
    acks.iter()
        .filter(|ack| ack.began_ms >= fault_ms)
        .map(|ack| ack.ended_ms - fault_ms)
        .min()
}

/// What broke the bank's invariants: a total that changed, a balance below zero, an
/// account gone.
pub fn bank_violations(history: &History, accounts: u64, initial: i64) -> Vec<String> {
    let expected = accounts as i64 * initial;
    history
        .balance_reads
        .iter()
        .filter_map(|read| {
            let mut wrong = Vec::new();
            if read.total != expected {
                wrong.push(format!("total {} (expected {expected})", read.total));
            }
            if read.lowest < 0 {
                wrong.push(format!("a balance of {}", read.lowest));
            }
            if read.accounts != accounts {
                wrong.push(format!("{} accounts (expected {accounts})", read.accounts));
            }
            (!wrong.is_empty()).then(|| {
                format!(
                    "read at {} ms on {}: {}",
                    read.began_ms,
                    read.node,
                    wrong.join(", ")
                )
            })
        })
        .collect()
}

/// The append-list checker (Elle's list-append model, for one writer order per list):
/// every list's final value on a node is the order in which its appends committed, so
///
/// - every acknowledged append is in it and no refused one is (a lost update otherwise),
///   and no element appears twice or under another key;
/// - every value read (by a transaction or by a reader) is a prefix of it: a read that
///   shows elements in another order, or one the end does not hold, saw a state that
///   never committed;
/// - a read that began more than `lag_ms` after an append was acknowledged (0 for a
///   causal reader) contains it: otherwise it is stale.
///
/// `finals` holds each key's final list on one node. Returns what broke, in words.
pub fn list_violations(
    history: &History,
    finals: &std::collections::BTreeMap<u64, Vec<u64>>,
    lag_ms: u64,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let empty = Vec::new();
    let final_of = |key: u64| finals.get(&key).unwrap_or(&empty);
    let mut where_is: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for (key, list) in finals {
        for element in list {
            if let Some(other) = where_is.insert(*element, *key) {
                wrong.push(format!(
                    "element {element} is in list {other} and in list {key} (or twice)"
                ));
            }
        }
    }
    for append in &history.appends {
        let present = final_of(append.key).contains(&append.element);
        match append.outcome {
            Outcome::Acknowledged if !present => wrong.push(format!(
                "lost update: append of {} to list {} was acknowledged at {} ms and is not in it",
                append.element, append.key, append.ended_ms
            )),
            Outcome::Failed if present => wrong.push(format!(
                "append of {} to list {} was refused and is in it",
                append.element, append.key
            )),
            _ => {}
        }
    }
    let is_prefix = |read: &[u64], key: u64| final_of(key).starts_with(read);
    for append in &history.appends {
        if let Some(read) = &append.read {
            if !is_prefix(read, append.read_key) {
                wrong.push(format!(
                    "the transaction appending {} read list {} as {:?}, which is not how it committed",
                    append.element, append.read_key, read
                ));
            }
        }
    }
    let acknowledged: Vec<&crate::history::Append> = history
        .appends
        .iter()
        .filter(|a| a.outcome == Outcome::Acknowledged)
        .collect();
    for read in &history.list_reads {
        let lag = if read.causal { 0 } else { lag_ms };
        for (key, list) in &read.lists {
            if !is_prefix(list, *key) {
                wrong.push(format!(
                    "read at {} ms on {} saw list {key} as {:?}, which is not how it committed",
                    read.began_ms, read.node, list
                ));
                continue;
            }
            let missed = acknowledged
                .iter()
                .filter(|a| a.key == *key && a.ended_ms + lag < read.began_ms)
                .filter(|a| !list.contains(&a.element))
                .count();
            if missed > 0 {
                wrong.push(format!(
                    "stale read at {} ms on {}{}: list {key} missed {missed} appends acknowledged over {lag} ms before",
                    read.began_ms,
                    read.node,
                    if read.causal { " (causal)" } else { "" }
                ));
            }
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::history::{Append, ListRead};

    fn append(
        key: u64,
        element: u64,
        read: Option<Vec<u64>>,
        ended_ms: u64,
        outcome: Outcome,
    ) -> Append {
        Append {
            key,
            element,
            read_key: key,
            read,
            began_ms: ended_ms.saturating_sub(5),
            ended_ms,
            outcome,
            node: Some("node1".to_owned()),
        }
    }

    fn list_read(began_ms: u64, causal: bool, lists: Vec<(u64, Vec<u64>)>) -> ListRead {
        ListRead {
            began_ms,
            node: "node2".to_owned(),
            causal,
            lists,
        }
    }

    #[test]
    fn lists_that_end_as_they_committed_pass() {
        let history = History {
            appends: vec![
                append(1, 10, Some(vec![]), 100, Outcome::Acknowledged),
                append(1, 11, Some(vec![10]), 200, Outcome::Acknowledged),
                append(1, 12, None, 300, Outcome::Unknown),
            ],
            list_reads: vec![
                list_read(150, true, vec![(1, vec![10])]),
                list_read(250, false, vec![(1, vec![10])]),
            ],
            ..History::default()
        };
        let finals = BTreeMap::from([(1, vec![10, 11])]);
        assert_eq!(
            list_violations(&history, &finals, 1000),
            Vec::<String>::new()
        );
        // The unknown append may have committed too.
        let finals = BTreeMap::from([(1, vec![10, 11, 12])]);
        assert!(list_violations(&history, &finals, 1000).is_empty());
    }

    #[test]
    fn lost_reordered_duplicated_and_stale_lists_are_named() {
        let history = History {
            appends: vec![
                append(1, 10, Some(vec![]), 100, Outcome::Acknowledged),
                append(1, 11, Some(vec![11]), 200, Outcome::Acknowledged),
                append(2, 20, None, 300, Outcome::Failed),
            ],
            list_reads: vec![
                // Causal, after 10 was acknowledged, without it.
                list_read(150, true, vec![(1, vec![])]),
                // Another order than the end's.
                list_read(400, false, vec![(1, vec![11])]),
            ],
            ..History::default()
        };
        let finals = BTreeMap::from([(1, vec![10]), (2, vec![20, 10])]);
        let wrong = list_violations(&history, &finals, 1000).join("\n");
        for needle in [
            "element 10 is in list 1 and in list 2",
            "lost update: append of 11 to list 1",
            "append of 20 to list 2 was refused and is in it",
            "the transaction appending 11 read list 1 as [11]",
            "stale read at 150 ms on node2 (causal): list 1 missed 1 appends",
            "read at 400 ms on node2 saw list 1 as [11]",
        ] {
            assert!(wrong.contains(needle), "{needle} missing from:\n{wrong}");
        }
    }

    use super::*;
    use crate::history::{Read, Write};

    fn write(id: u64, began_ms: u64, ended_ms: u64, outcome: Outcome) -> Write {
        Write {
            id,
            began_ms,
            ended_ms,
            outcome,
            node: None,
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
            ..History::default()
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

    fn ack(began_ms: u64, node: &str) -> Ack {
        Ack {
            began_ms,
            ended_ms: began_ms + 2,
            node: node.into(),
        }
    }

    #[test]
    fn two_nodes_in_one_slot_are_a_multi_writer_slot() {
        // One writer, then a clean change in slot 200: one slot.
        let clean = [
            ack(10, "a"),
            ack(120, "a"),
            ack(210, "a"),
            ack(250, "b"),
            ack(330, "b"),
        ];
        assert_eq!(multi_writer_slots(&clean), vec![200]);
        // Flapping: a, b, a, b over three slots.
        let flapping = [
            ack(10, "a"),
            ack(20, "b"),
            ack(30, "a"),
            ack(110, "b"),
            ack(150, "a"),
            ack(210, "a"),
        ];
        assert_eq!(multi_writer_slots(&flapping), vec![0, 100]);
        assert!(multi_writer_slots(&[]).is_empty());
    }

    #[test]
    fn writes_are_back_at_the_first_ack_that_began_after_the_fault() {
        let acks = [ack(10, "a"), ack(900, "b"), ack(950, "b")];
        assert_eq!(writes_back_after(&acks, 100), Some(802));
        assert_eq!(writes_back_after(&acks, 1000), None);
    }

    #[test]
    fn the_bank_flags_a_changed_total_and_a_negative_balance() {
        use crate::history::BalanceRead;
        let read = |total, lowest| BalanceRead {
            began_ms: 5,
            node: "n1".into(),
            total,
            lowest,
            accounts: 4,
        };
        let history = History {
            balance_reads: vec![read(400, 0), read(390, 3), read(400, -1)],
            ..History::default()
        };
        let violations = bank_violations(&history, 4, 100);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations[0].contains("total 390"), "{violations:?}");
        assert!(violations[1].contains("balance of -1"), "{violations:?}");
    }
}
