//! Stale views (docs/galera.md, "A node that froze and resumed"): a node that was frozen (a
//! paused VM, a stalled disk, a host cut off) keeps reporting the view it had before,
//! Synced, Primary, with the old cluster size, for seconds after it resumes, while the
//! others have already formed a new Primary component without it and taken writes. Its
//! own status cannot tell; only the others' can. Every member of one component reports
//! the same `wsrep_cluster_conf_id`, and each new view of the history has a higher one,
//! so a node whose conf id is lower than another Primary node's of the same history is
//! in a view that no longer exists.

use std::collections::BTreeMap;

use crate::WsrepStatus;

/// A running node whose view is older than the newest one its history shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleView {
    pub node: String,
    /// The node's `wsrep_cluster_conf_id` and `wsrep_cluster_size`.
    pub conf_id: i64,
    pub cluster_size: i64,
    /// The newest view of the same history: its conf id and size.
    pub newest_conf_id: i64,
    pub newest_size: i64,
}

impl StaleView {
    /// Why the node may not serve, for status lines, events and the proxy's log.
    pub fn reason(&self) -> String {
        format!(
            "stale view: it reports view {} of {} nodes, while others are in view {} of {}",
            self.conf_id, self.cluster_size, self.newest_conf_id, self.newest_size
        )
    }
}

/// The nodes among `nodes` (name, status of a running node) in a stale view. Nodes that
/// are not Primary or report no conf id are not judged here (they never serve anyway);
/// nodes of different histories are a split brain (`split_brain`), not a stale view.
pub fn stale_views<'a>(
    nodes: impl IntoIterator<Item = (&'a str, &'a WsrepStatus)>,
) -> Vec<StaleView> {
    let judged: Vec<(&str, &WsrepStatus)> = nodes
        .into_iter()
        .filter(|(_, status)| status.is_primary() && status.conf_id >= 0)
        .collect();
    let mut newest: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (_, status) in &judged {
        let entry = newest
            .entry(status.cluster_state_uuid.as_str())
            .or_insert((status.conf_id, status.cluster_size));
        if status.conf_id > entry.0 {
            *entry = (status.conf_id, status.cluster_size);
        }
    }
    judged
        .iter()
        .filter_map(|(node, status)| {
            let (newest_conf_id, newest_size) = newest[status.cluster_state_uuid.as_str()];
            (status.conf_id < newest_conf_id).then(|| StaleView {
                node: (*node).to_owned(),
                conf_id: status.conf_id,
                cluster_size: status.cluster_size,
                newest_conf_id,
                newest_size,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
    const B: &str = "a1b2c3d4-0000-4000-8000-000000000001";

    fn status(primary: bool, uuid: &str, conf_id: i64, size: i64) -> WsrepStatus {
        let conf_id = conf_id.to_string();
        let size = size.to_string();
        WsrepStatus::from_variables([
            ("wsrep_ready", "ON"),
            ("wsrep_connected", "ON"),
            (
                "wsrep_cluster_status",
                if primary { "Primary" } else { "non-Primary" },
            ),
            ("wsrep_cluster_size", size.as_str()),
            ("wsrep_cluster_state_uuid", uuid),
            ("wsrep_cluster_conf_id", conf_id.as_str()),
            ("wsrep_local_state", "4"),
        ])
    }

    fn stale(nodes: &[(&str, WsrepStatus)]) -> Vec<String> {
        stale_views(nodes.iter().map(|(name, status)| (*name, status)))
            .iter()
            .map(|view| format!("{}: {}", view.node, view.reason()))
            .collect()
    }

    #[test]
    fn a_resumed_node_with_the_old_view_is_stale() {
        // The freeze of issue 21: db1 was paused, db2 and db3 formed view 4 without it.
        let nodes = [
            ("db1", status(true, A, 3, 3)),
            ("db2", status(true, A, 4, 2)),
            ("db3", status(true, A, 4, 2)),
        ];
        assert_eq!(
            stale(&nodes),
            ["db1: stale view: it reports view 3 of 3 nodes, while others are in view 4 of 2"]
        );
    }

    #[test]
    fn one_view_or_nothing_to_compare_is_not_stale() {
        let same = [
            ("db1", status(true, A, 7, 3)),
            ("db2", status(true, A, 7, 3)),
            ("db3", status(true, A, 7, 3)),
        ];
        assert!(stale(&same).is_empty());
        // Alone, a node's view cannot be judged.
        assert!(stale(&[("db1", status(true, A, 3, 3))]).is_empty());
        // A node outside the Primary does not set the newest view, and is not judged.
        let outside = [
            ("db1", status(true, A, 3, 3)),
            ("db2", status(false, A, 9, 1)),
        ];
        assert!(stale(&outside).is_empty());
        // Missing conf id (an old server, a partial read): not judged.
        let missing = [
            ("db1", status(true, A, -1, 3)),
            ("db2", status(true, A, 4, 2)),
        ];
        assert!(stale(&missing).is_empty());
    }

    #[test]
    fn histories_are_compared_only_with_themselves() {
        // Two histories is a split brain, not a stale view: conf ids of different
        // histories mean nothing to each other.
        let nodes = [
            ("db1", status(true, A, 3, 1)),
            ("db2", status(true, B, 12, 2)),
            ("db3", status(true, B, 11, 3)),
        ];
        assert_eq!(stale(&nodes).len(), 1);
        assert!(stale(&nodes)[0].starts_with("db3:"), "{:?}", stale(&nodes));
    }
}
