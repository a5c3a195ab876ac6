//! The shared writer decision: one record in the cluster itself, `galley.writer`, that
//! every proxy of the cluster follows, changed only by compare-and-set inside the
//! Primary component (ARCHITECTURE.md, "One writer for every proxy").
//!
//! Each proxy reads the record on every probe round from a node in the Primary
//! component and routes writes to the node it names. It proposes another node (an
//! `UPDATE ... WHERE term = <the term it read>`) only on facts that every proxy reads the
//! same way: the recorded node has left the Primary component (it is not in
//! `mysql.wsrep_cluster_members` of the node the transaction runs on), or it answered
//! this proxy's probe with a status that forbids writes, or an operator drains it. A
//! recorded node that is still a member but that this proxy cannot reach is not such a
//! fact (the others may reach it): the proxy then refuses writes rather than guess.
//! Galera's certification lets one of two concurrent proposals commit and aborts the
//! other, whose proxy reads the winner on its next round.
//!
//! This module is the pure part: [`next_step`] decides, `crate::decision_sql` runs it.

/// The record as read from `galley.writer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Raised by one at every change; a proposal names the term it read.
    pub term: u64,
    pub node: String,
}

/// What this proxy knows of one backend when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<'a> {
    pub name: &'a str,
    /// Write-healthy by this proxy's probes (hysteresis applied).
    pub write_healthy: bool,
    /// The last probe answered, with a status that forbids writes (not Synced, a stale
    /// view, read_only, desynced, split-brain minority): a fact about the node, not
    /// about the path from this proxy to it.
    pub refuses_writes: bool,
    /// Drained by an operator.
    pub draining: bool,
}

/// What the proxy does after reading the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Route writes to this node.
    Follow(String),
    /// Compare-and-set the record from `expected` (None: no record yet) to `node`.
    Propose {
        expected: Option<u64>,
        node: String,
        why: String,
    },
    /// Route no writes, for this reason.
    Refuse(String),
}

/// Decides from the record, the members of the Primary component as the node that was
/// read reports them, this proxy's view of every backend, and the node this proxy would
/// choose on its own (`crate::writer::choose_writer`, with the recorded node excluded
/// when it is being replaced). With `failback`, a healthy recorded writer that is not
/// the node this proxy prefers is replaced by that node (`proxy.failback`).
pub fn next_step(
    record: Option<&Record>,
    members: &[String],
    seen: &[Seen<'_>],
    failback: bool,
    choice_without: impl Fn(Option<&str>) -> Option<String>,
) -> Step {
    let propose =
        |expected: Option<u64>, leaving: Option<&str>, why: String| match choice_without(leaving) {
            Some(node) => Step::Propose {
                expected,
                node,
                why,
            },
            None => Step::Refuse(format!("{why}, and no other node can take writes")),
        };
    let Some(record) = record else {
        return propose(None, None, "no writer has been recorded yet".to_owned());
    };
    let node = record.node.as_str();
    if !members.iter().any(|member| member == node) {
        return propose(
            Some(record.term),
            Some(node),
            format!("the recorded writer {node} is not in the Primary component"),
        );
    }
    let Some(backend) = seen.iter().find(|backend| backend.name == node) else {
        // A record naming a node this proxy does not know (another spec version): its
        // members say it is there, so no other proxy may be told otherwise.
        return Step::Refuse(format!(
            "the recorded writer {node} is not one of this proxy's nodes"
        ));
    };
    if backend.draining {
        return propose(
            Some(record.term),
            Some(node),
            format!("the recorded writer {node} is drained"),
        );
    }
    if backend.refuses_writes {
        return propose(
            Some(record.term),
            Some(node),
            format!("the recorded writer {node} reports that it cannot take writes"),
        );
    }
    if backend.write_healthy {
        if failback {
            if let Some(preferred) = choice_without(None).filter(|preferred| preferred != node) {
                return Step::Propose {
                    expected: Some(record.term),
                    node: preferred,
                    why: format!("fail-back: the preferred node is healthy again (from {node})"),
                };
            }
        }
        return Step::Follow(node.to_owned());
    }
    Step::Refuse(format!(
        "the recorded writer {node} is in the Primary component but this proxy cannot reach it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seen`: `name state`, state one of `ok`, `unreachable`, `refuses`, `drained`.
    /// The local choice is the first `ok` node other than the one leaving.
    fn check(record: Option<(u64, &str)>, members: &str, seen: &str, expected: Step) {
        check_with(record, members, seen, false, expected);
    }

    fn check_with(
        record: Option<(u64, &str)>,
        members: &str,
        seen: &str,
        failback: bool,
        expected: Step,
    ) {
        let record = record.map(|(term, node)| Record {
            term,
            node: node.to_owned(),
        });
        let members: Vec<String> = members.split_whitespace().map(str::to_owned).collect();
        let parsed: Vec<(&str, &str)> = seen
            .split(',')
            .map(|entry| {
                let mut words = entry.split_whitespace();
                (words.next().unwrap(), words.next().unwrap())
            })
            .collect();
        let seen: Vec<Seen> = parsed
            .iter()
            .map(|(name, state)| Seen {
                name,
                write_healthy: *state == "ok",
                refuses_writes: *state == "refuses",
                draining: *state == "drained",
            })
            .collect();
        let choice = |leaving: Option<&str>| {
            parsed
                .iter()
                .find(|(name, state)| *state == "ok" && Some(*name) != leaving)
                .map(|(name, _)| (*name).to_owned())
        };
        assert_eq!(
            next_step(record.as_ref(), &members, &seen, failback, choice),
            expected,
            "record {record:?}, members {members:?}, seen {seen:?}"
        );
    }

    fn propose(expected: Option<u64>, node: &str, why: &str) -> Step {
        Step::Propose {
            expected,
            node: node.to_owned(),
            why: why.to_owned(),
        }
    }

    #[test]
    fn a_healthy_recorded_writer_is_followed_even_when_another_is_preferred() {
        // node1 came back after a failover: the record keeps node2, and a proxy that
        // starts now follows it instead of choosing node1 by priority.
        check(
            Some((4, "node2")),
            "node1 node2 node3",
            "node1 ok, node2 ok, node3 ok",
            Step::Follow("node2".into()),
        );
    }

    #[test]
    fn an_arbitrator_among_the_members_is_never_a_writer() {
        // Two data nodes and garbd: the Primary component's members name garbd too, but
        // the proxy's nodes are the data nodes only (docs/arbitrator.md). node1 is gone:
        // the record moves to node2, never to garbd1.
        check(
            Some((4, "node1")),
            "node2 garbd1",
            "node1 unreachable, node2 ok",
            propose(
                Some(4),
                "node2",
                "the recorded writer node1 is not in the Primary component",
            ),
        );
        check(
            Some((5, "node2")),
            "node2 garbd1",
            "node1 unreachable, node2 ok",
            Step::Follow("node2".into()),
        );
    }

    #[test]
    fn fail_back_moves_the_record_to_the_preferred_node_only_when_asked() {
        check_with(
            Some((4, "node2")),
            "node1 node2 node3",
            "node1 ok, node2 ok, node3 ok",
            true,
            propose(
                Some(4),
                "node1",
                "fail-back: the preferred node is healthy again (from node2)",
            ),
        );
        check_with(
            Some((5, "node1")),
            "node1 node2 node3",
            "node1 ok, node2 ok, node3 ok",
            true,
            Step::Follow("node1".into()),
        );
    }

    #[test]
    fn the_first_proxy_records_its_choice() {
        check(
            None,
            "node1 node2 node3",
            "node1 ok, node2 ok, node3 ok",
            propose(None, "node1", "no writer has been recorded yet"),
        );
        check(
            None,
            "node1",
            "node1 unreachable, node2 unreachable",
            Step::Refuse(
                "no writer has been recorded yet, and no other node can take writes".into(),
            ),
        );
    }

    #[test]
    fn a_writer_outside_the_primary_component_is_replaced() {
        check(
            Some((4, "node1")),
            "node2 node3",
            "node1 unreachable, node2 ok, node3 ok",
            propose(
                Some(4),
                "node2",
                "the recorded writer node1 is not in the Primary component",
            ),
        );
        // Even when this proxy still reaches it (a node cut off from its peers only).
        check(
            Some((4, "node1")),
            "node2 node3",
            "node1 ok, node2 ok, node3 ok",
            propose(
                Some(4),
                "node2",
                "the recorded writer node1 is not in the Primary component",
            ),
        );
    }

    #[test]
    fn an_unreachable_member_is_not_replaced_by_one_proxy_alone() {
        check(
            Some((4, "node1")),
            "node1 node2 node3",
            "node1 unreachable, node2 ok, node3 ok",
            Step::Refuse(
                "the recorded writer node1 is in the Primary component but this proxy cannot reach it"
                    .into(),
            ),
        );
    }

    #[test]
    fn a_writer_that_says_it_cannot_write_or_is_drained_is_replaced() {
        check(
            Some((7, "node1")),
            "node1 node2 node3",
            "node1 refuses, node2 ok, node3 ok",
            propose(
                Some(7),
                "node2",
                "the recorded writer node1 reports that it cannot take writes",
            ),
        );
        check(
            Some((7, "node1")),
            "node1 node2 node3",
            "node1 drained, node2 unreachable, node3 ok",
            propose(Some(7), "node3", "the recorded writer node1 is drained"),
        );
        check(
            Some((7, "node1")),
            "node1 node2 node3",
            "node1 drained, node2 unreachable, node3 unreachable",
            Step::Refuse(
                "the recorded writer node1 is drained, and no other node can take writes".into(),
            ),
        );
    }

    #[test]
    fn a_recorded_node_this_proxy_does_not_know_is_not_overruled() {
        check(
            Some((2, "node9")),
            "node1 node9",
            "node1 ok",
            Step::Refuse("the recorded writer node9 is not one of this proxy's nodes".into()),
        );
    }
}
