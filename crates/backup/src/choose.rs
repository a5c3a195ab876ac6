//! Which node a backup is taken from, pure: a Synced node that is not the writer, the
//! least preferred first (it serves the fewest clients), unless the operator names one.

/// One node as the chooser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// Lower is more preferred, as in galley.toml.
    pub priority: u32,
    pub synced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub node: String,
    /// Set when the operator chose the writer itself.
    pub warning: Option<String>,
}

pub fn choose_node(
    candidates: &[Candidate],
    writer: Option<&str>,
    requested: Option<&str>,
) -> Result<Choice, String> {
    if let Some(requested) = requested {
        let Some(node) = candidates.iter().find(|c| c.name == requested) else {
            let names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "no node named `{}` in galley.toml; nodes: {}",
                requested.escape_debug(),
                names.join(", ")
            ));
        };
        if !node.synced {
            return Err(format!(
                "node {requested} is not Synced; a backup is taken only from a Synced node (see `galley status`)"
            ));
        }
        let warning = (writer == Some(requested)).then(|| {
            format!("node {requested} is the writer: its clients wait while the backup holds its read lock")
        });
        return Ok(Choice {
            node: requested.to_owned(),
            warning,
        });
    }
    let mut eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.synced && Some(c.name.as_str()) != writer)
        .collect();
    eligible.sort_by_key(|c| std::cmp::Reverse(c.priority));
    match eligible.first() {
        Some(node) => Ok(Choice {
            node: node.name.clone(),
            warning: None,
        }),
        None => Err(format!(
            "no Synced node other than the writer ({}) to take a backup from; name one with --node",
            writer.unwrap_or("none")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(synced: [bool; 3]) -> Vec<Candidate> {
        (0..3)
            .map(|i| Candidate {
                name: format!("node{}", i + 1),
                priority: i as u32 + 1,
                synced: synced[i],
            })
            .collect()
    }

    #[test]
    fn picks_the_least_preferred_synced_non_writer() {
        let choice = |synced, writer, requested| {
            choose_node(&nodes(synced), writer, requested).map(|c| (c.node, c.warning.is_some()))
        };
        assert_eq!(
            choice([true; 3], Some("node1"), None),
            Ok(("node3".into(), false))
        );
        assert_eq!(
            choice([true; 3], Some("node3"), None),
            Ok(("node2".into(), false))
        );
        assert_eq!(
            choice([true, true, false], Some("node1"), None),
            Ok(("node2".into(), false))
        );
        assert!(choice([true, false, false], Some("node1"), None)
            .unwrap_err()
            .contains("no Synced node other than the writer (node1)"));
        assert_eq!(
            choice([true; 3], Some("node1"), Some("node1")),
            Ok(("node1".into(), true))
        );
        assert!(choice([true, true, false], None, Some("node3"))
            .unwrap_err()
            .contains("not Synced"));
        assert!(choice([true; 3], None, Some("db9"))
            .unwrap_err()
            .contains("nodes: node1, node2, node3"));
    }
}
