//! Split brain (rule 9 of docs/safety-rules.md): running nodes that each say they are in a Primary
//! component but report different `wsrep_cluster_state_uuid`s belong to two cluster
//! histories that both take writes. Galera cannot merge them; the minority must get no
//! writes, and a human decides which data to keep.

use std::fmt;

use crate::WsrepStatus;

/// The running Primary nodes that share one cluster state UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryGroup {
    pub uuid: String,
    /// In the order they were given.
    pub nodes: Vec<String>,
    /// The largest `wsrep_cluster_size` its members report: Galera's own count of the
    /// component, which includes members whose status was not read.
    pub cluster_size: i64,
    /// The highest `wsrep_last_committed` its members report.
    pub last_committed: i64,
}

impl HistoryGroup {
    /// What makes one group larger than another: the view size, then the members seen.
    fn weight(&self) -> (i64, usize) {
        (self.cluster_size, self.nodes.len())
    }
}

/// Two or more cluster histories running as Primary components at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitBrain {
    /// Largest first (view size, then members seen); at least two.
    pub groups: Vec<HistoryGroup>,
}

impl SplitBrain {
    /// The group larger than every other; None when the largest two are the same size.
    pub fn majority(&self) -> Option<&HistoryGroup> {
        let [first, second, ..] = self.groups.as_slice() else {
            return None;
        };
        (first.weight() > second.weight()).then_some(first)
    }

    /// The groups that must get no writes: all but the majority (all of them on a tie).
    pub fn minorities(&self) -> impl Iterator<Item = &HistoryGroup> {
        let skip = usize::from(self.majority().is_some());
        self.groups.iter().skip(skip)
    }

    /// Whether `node` is in a group that must get no writes.
    pub fn is_minority(&self, node: &str) -> bool {
        self.minorities()
            .any(|group| group.nodes.iter().any(|member| member == node))
    }
}

impl fmt::Display for SplitBrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|group| {
                format!(
                    "{} on {} (view size {}, last committed {})",
                    group.uuid,
                    group.nodes.join(", "),
                    group.cluster_size,
                    group.last_committed
                )
            })
            .collect();
        write!(
            f,
            "split brain: {} cluster histories run as Primary components: {}; ",
            self.groups.len(),
            groups.join(" and ")
        )?;
        let minorities: Vec<&str> = self
            .minorities()
            .flat_map(|group| group.nodes.iter().map(String::as_str))
            .collect();
        match self.majority() {
            Some(majority) => write!(
                f,
                "the minority is {} (the majority {} runs {})",
                minorities.join(", "),
                majority.nodes.join(", "),
                majority.uuid
            ),
            None => write!(
                f,
                "no side is larger, so neither is the majority ({})",
                minorities.join(", ")
            ),
        }
    }
}

/// The split brain among these running nodes' statuses, if any. Only nodes in a Primary
/// component count (a node outside one keeps reporting the last UUID it knew), and only
/// those that report a UUID.
pub fn split_brain<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a WsrepStatus)>,
) -> Option<SplitBrain> {
    let mut groups: Vec<HistoryGroup> = Vec::new();
    for (name, status) in nodes {
        if !status.is_primary() || status.cluster_state_uuid.is_empty() {
            continue;
        }
        match groups
            .iter_mut()
            .find(|group| group.uuid == status.cluster_state_uuid)
        {
            Some(group) => {
                group.nodes.push(name.to_owned());
                group.cluster_size = group.cluster_size.max(status.cluster_size);
                group.last_committed = group.last_committed.max(status.last_committed);
            }
            None => groups.push(HistoryGroup {
                uuid: status.cluster_state_uuid.clone(),
                nodes: vec![name.to_owned()],
                cluster_size: status.cluster_size,
                last_committed: status.last_committed,
            }),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    // Stable: among groups of one size, the one met first comes first.
    groups.sort_by_key(|group| std::cmp::Reverse(group.weight()));
    Some(SplitBrain { groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
    const B: &str = "11111111-2a80-46ae-a206-519b5024470e";

    /// `name uuid status size seqno`, comma separated; the uuid is `A`, `B` or `-` (none).
    fn statuses(fixture: &str) -> Vec<(String, WsrepStatus)> {
        fixture
            .split(',')
            .map(|entry| {
                let words: Vec<&str> = entry.split_whitespace().collect();
                let uuid = match words[1] {
                    "A" => A,
                    "B" => B,
                    _ => "",
                };
                let status = WsrepStatus::from_variables([
                    ("wsrep_cluster_state_uuid", uuid),
                    ("wsrep_cluster_status", words[2]),
                    ("wsrep_cluster_size", words[3]),
                    ("wsrep_last_committed", words[4]),
                ]);
                (words[0].to_owned(), status)
            })
            .collect()
    }

    fn check(fixture: &str) -> Option<SplitBrain> {
        let nodes = statuses(fixture);
        split_brain(nodes.iter().map(|(name, status)| (name.as_str(), status)))
    }

    #[test]
    fn one_history_is_no_split_brain() {
        assert_eq!(
            check("n1 A Primary 3 9, n2 A Primary 3 9, n3 A Primary 3 8"),
            None
        );
        // A node outside the Primary component keeps its old UUID: not a second history.
        assert_eq!(
            check("n1 A Primary 2 9, n2 A Primary 2 9, n3 B non-Primary 1 4"),
            None
        );
        // A status without a UUID (a variable that could not be read) is not counted.
        assert_eq!(check("n1 A Primary 2 9, n2 - Primary 2 9"), None);
    }

    #[test]
    fn two_histories_name_the_minority() {
        let split = check("n1 A Primary 2 9, n2 B Primary 1 40, n3 A Primary 2 9").unwrap();
        assert_eq!(split.groups.len(), 2);
        let majority = split.majority().unwrap();
        assert_eq!(majority.uuid, A);
        assert_eq!(majority.nodes, ["n1", "n3"]);
        assert!(split.is_minority("n2"));
        assert!(!split.is_minority("n1"));
        let text = split.to_string();
        assert!(text.contains(A) && text.contains(B), "{text}");
        assert!(text.contains("the minority is n2"), "{text}");
        assert!(text.contains("last committed 40"), "{text}");
    }

    #[test]
    fn the_view_size_counts_members_whose_status_is_missing() {
        // Only one member of A's component was read, but Galera counts three.
        let split = check("n1 A Primary 3 9, n2 B Primary 1 40, n3 B Primary 1 40").unwrap();
        assert_eq!(split.majority().unwrap().uuid, A);
        assert!(split.is_minority("n2") && split.is_minority("n3"));
    }

    #[test]
    fn a_tie_has_no_majority() {
        let split = check("n1 A Primary 1 9, n2 B Primary 1 40").unwrap();
        assert_eq!(split.majority(), None);
        assert!(split.is_minority("n1") && split.is_minority("n2"));
        assert!(split.to_string().contains("neither is the majority"));
    }
}
