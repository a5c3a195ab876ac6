//! The writer choice, pure: deterministic (priority, then `wsrep_local_index`, then
//! name), so that proxies seeing the same health agree; sticky (no fail-back unless
//! asked), so that a returning node does not pull every session back.

/// What the choice needs to know about one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub priority: u32,
    /// From the last status; None while the node has not been seen healthy.
    pub local_index: Option<i64>,
    pub write_healthy: bool,
    pub draining: bool,
    /// In the minority of a split brain (or on either side without a majority).
    pub split_minority: bool,
}

impl Candidate<'_> {
    pub fn eligible(&self) -> bool {
        self.write_healthy && !self.draining && !self.split_minority
    }

    fn rank(&self) -> (u32, i64, &str) {
        (
            self.priority,
            self.local_index.unwrap_or(i64::MAX),
            self.name,
        )
    }
}

/// The index of the writer among `candidates`, given the current one.
pub fn choose_writer(
    candidates: &[Candidate<'_>],
    current: Option<usize>,
    failback: bool,
) -> Option<usize> {
    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, candidate)| candidate.eligible())
        .min_by(|(_, a), (_, b)| a.rank().cmp(&b.rank()))
        .map(|(index, _)| index);
    match current {
        Some(index) if candidates.get(index).is_some_and(Candidate::eligible) && !failback => {
            Some(index)
        }
        _ => best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixture: one backend per entry, `name priority [index] [down] [drain] [minority]`; `*` marks
    /// the current writer. Expected: the chosen name or `none`.
    fn check(fixture: &str, failback: bool, expected: &str) {
        let mut current = None;
        let parsed: Vec<(String, Vec<String>)> = fixture
            .split(',')
            .map(|entry| {
                let words: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
                (words[0].trim_start_matches('*').to_owned(), words)
            })
            .collect();
        let candidates: Vec<Candidate> = parsed
            .iter()
            .enumerate()
            .map(|(index, (name, words))| {
                if words[0].starts_with('*') {
                    current = Some(index);
                }
                Candidate {
                    name,
                    priority: words[1].parse().unwrap(),
                    local_index: words
                        .iter()
                        .find_map(|w| w.strip_prefix('i'))
                        .map(|i| i.parse().unwrap()),
                    write_healthy: !words.iter().any(|w| w == "down"),
                    draining: words.iter().any(|w| w == "drain"),
                    split_minority: words.iter().any(|w| w == "minority"),
                }
            })
            .collect();
        let chosen =
            choose_writer(&candidates, current, failback).map_or("none", |i| candidates[i].name);
        assert_eq!(chosen, expected, "fixture {fixture} failback {failback}");
    }

    #[test]
    fn writer_choice() {
        check("n1 1, n2 2, n3 3", false, "n1");
        check("n1 1 down, n2 2, n3 3", false, "n2");
        check("n1 1 down, n2 2 down, n3 3 down", false, "none");
        // Equal priority: wsrep_local_index, then name.
        check("n1 1 i2, n2 1 i0, n3 1 i1", false, "n2");
        check("b 1, a 1", false, "a");
        // Sticky: the returning preferred node does not take the writer back...
        check("n1 1, *n2 2, n3 3", false, "n2");
        // ...unless fail-back is configured.
        check("n1 1, *n2 2, n3 3", true, "n1");
        // The current writer is replaced when it fails or drains.
        check("n1 1, *n2 2 down, n3 3", false, "n1");
        check("n1 1 down, *n2 2 drain, n3 3", false, "n3");
        check("*n1 1 drain, n2 2, n3 3", false, "n2");
        // A split brain's minority never takes writes, sticky or preferred.
        check("*n1 1 minority, n2 2, n3 3", false, "n2");
        check("n1 1 minority, n2 2, n3 3", true, "n2");
        check("n1 1 minority, n2 2 minority", false, "none");
    }
}
