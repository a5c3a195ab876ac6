//! The fault schedule: which faults a run injects, in which order, drawn from a seed so
//! that a run can be replayed exactly (`galley chaos --seed N`). Pure: the schedule
//! names its targets by role (the writer, a node that is not the writer, every node),
//! and the runner resolves them against the cluster of the moment.

use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

/// A kind of fault. docs/chaos.md describes what each does and how the cluster heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultClass {
    /// kill -9 of a node's mariadbd that is not the proxy's writer.
    KillNode,
    /// kill -9 of the writer's mariadbd.
    KillWriter,
    /// kill -9 of every mariadbd at once (a power cut of the whole cluster).
    KillAll,
    /// SIGSTOP of a non-writer's mariadbd for `hold_ms`, then SIGCONT (a hang).
    HangNode,
    /// SIGSTOP of the writer's mariadbd for `hold_ms`, then SIGCONT.
    HangWriter,
    /// kill -9 of a node's agent; mariadbd keeps running.
    KillAgent,
    /// kill -9 of the proxy: every client session is cut.
    KillProxy,
    /// kill -9 of the controller.
    KillController,
}

impl FaultClass {
    pub const ALL: [FaultClass; 8] = [
        FaultClass::KillNode,
        FaultClass::KillWriter,
        FaultClass::KillAll,
        FaultClass::HangNode,
        FaultClass::HangWriter,
        FaultClass::KillAgent,
        FaultClass::KillProxy,
        FaultClass::KillController,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultClass::KillNode => "kill-node",
            FaultClass::KillWriter => "kill-writer",
            FaultClass::KillAll => "kill-all",
            FaultClass::HangNode => "hang-node",
            FaultClass::HangWriter => "hang-writer",
            FaultClass::KillAgent => "kill-agent",
            FaultClass::KillProxy => "kill-proxy",
            FaultClass::KillController => "kill-controller",
        }
    }

    /// A hang lasts a while; every other fault is a moment.
    fn holds(self) -> bool {
        matches!(self, FaultClass::HangNode | FaultClass::HangWriter)
    }

    /// Whether its target is one node, chosen among those that are not the writer.
    fn picks_a_non_writer(self) -> bool {
        matches!(
            self,
            FaultClass::KillNode | FaultClass::HangNode | FaultClass::KillAgent
        )
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultClass {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultClass, String> {
        FaultClass::ALL
            .into_iter()
            .find(|class| class.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultClass::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown fault class `{text}`; the classes are {}",
                    names.join(", ")
                )
            })
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// 1-based position in the schedule.
    pub index: usize,
    pub class: FaultClass,
    /// For a fault on a non-writer: which of them, as an index into the non-writers in
    /// the spec's order (taken modulo their number when the fault runs).
    pub pick: usize,
    /// How long a hang lasts (0 for a kill).
    pub hold_ms: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {}", self.index, self.class)?;
        if self.class.picks_a_non_writer() {
            write!(f, " (non-writer #{})", self.pick + 1)?;
        }
        if self.class.holds() {
            write!(f, " for {:.1} s", self.hold_ms as f64 / 1000.0)?;
        }
        Ok(())
    }
}

/// Shortest and longest hang the schedule draws: long enough to pass Galera's suspect
/// timeout and the agent's fence, short enough for a run of a hundred faults.
pub const HOLD_MS: std::ops::RangeInclusive<u64> = 2_000..=8_000;

/// `count` faults drawn from `classes` by `seed`: the same arguments give the same
/// schedule on every machine (StdRng is seeded deterministically). Every class appears
/// before any appears twice, so that a short smoke run covers them all.
pub fn schedule(seed: u64, count: usize, classes: &[FaultClass]) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::with_capacity(count);
    let mut round: Vec<FaultClass> = Vec::new();
    for index in 1..=count {
        if round.is_empty() {
            round = classes.to_vec();
        }
        let class = round.swap_remove(rng.gen_range(0..round.len()));
        let pick = rng.gen_range(0..8);
        let hold_ms = if class.holds() {
            rng.gen_range(HOLD_MS) / 100 * 100
        } else {
            0
        };
        faults.push(Fault {
            index,
            class,
            pick,
            hold_ms,
        });
    }
    faults
}

/// Parses `--faults-of kill-node,hang-writer,...`; every name must be a class.
pub fn parse_classes(text: &str) -> Result<Vec<FaultClass>, String> {
    let mut classes = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let class: FaultClass = name.parse()?;
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    if classes.is_empty() {
        return Err("no fault class given".to_owned());
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = schedule(7, 30, &FaultClass::ALL);
        let b = schedule(7, 30, &FaultClass::ALL);
        assert_eq!(a, b);
        assert_ne!(a, schedule(8, 30, &FaultClass::ALL), "another seed differs");
    }

    #[test]
    fn every_class_comes_before_any_repeats() {
        for seed in 0..50 {
            let faults = schedule(seed, FaultClass::ALL.len(), &FaultClass::ALL);
            let mut classes: Vec<FaultClass> = faults.iter().map(|f| f.class).collect();
            classes.sort();
            assert_eq!(classes, FaultClass::ALL.to_vec(), "seed {seed}");
        }
    }

    #[test]
    fn hangs_hold_within_bounds_and_kills_do_not_hold() {
        for fault in schedule(3, 200, &FaultClass::ALL) {
            if fault.class.holds() {
                assert!(HOLD_MS.contains(&fault.hold_ms), "{fault}");
            } else {
                assert_eq!(fault.hold_ms, 0, "{fault}");
            }
            assert!(fault.index >= 1);
        }
    }

    #[test]
    fn classes_parse_and_unknown_ones_are_named() {
        assert_eq!(
            parse_classes("kill-node, hang-writer,kill-node").unwrap(),
            vec![FaultClass::KillNode, FaultClass::HangWriter]
        );
        let error = parse_classes("kill-node,unplug").unwrap_err();
        assert!(
            error.contains("`unplug`") && error.contains("hang-writer"),
            "{error}"
        );
        assert!(parse_classes(" , ").is_err());
    }

    #[test]
    fn a_fault_prints_what_it_does() {
        let fault = Fault {
            index: 3,
            class: FaultClass::HangNode,
            pick: 1,
            hold_ms: 2500,
        };
        assert_eq!(fault.to_string(), "#3 hang-node (non-writer #2) for 2.5 s");
    }
}
