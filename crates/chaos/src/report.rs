//! What a chaos run tells its reader: per fault, what was done to whom and how long the
//! cluster took to come back; per fault class, the counts and times the issue asks for;
//! the checkers' verdicts; and an SVG timeline. Pure: the runner fills `RunRecord` in,
//! this module judges and renders it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::check::{self, Ack, Missing, StaleRead, SLOT_MS};
use crate::history::{History, Outcome};
use crate::schedule::{Fault, FaultClass};

/// One fault as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRun {
    pub fault: Fault,
    /// Whom it hit, resolved at the moment it ran ("node2 (the writer)", "every node").
    pub target: String,
    /// When it was injected, in ms since the run began.
    pub injected_ms: u64,
    /// When a hang ended (SIGCONT); None for a kill.
    pub released_ms: Option<u64>,
    /// When the cluster was whole again (every node Synced in one view, the proxy with a
    /// writer, every daemon answering); None when it was not within the run's bound.
    pub healed_ms: Option<u64>,
}

/// What one node held at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEnd {
    pub node: String,
    pub missing: Missing,
    /// The bank on this node: total, lowest balance, accounts.
    pub bank: (i64, i64, u64),
    /// The append-list workload's lists on this node.
    pub lists: BTreeMap<u64, Vec<u64>>,
    /// Why the node could not be read at the end (then nothing above was checked).
    pub unreadable: Option<String>,
}

/// Everything a run recorded: the input of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub seed: u64,
    /// Where the workloads sent their SQL: "galley's proxy", or a peer's address.
    pub through: String,
    pub faults: Vec<FaultRun>,
    pub history: History,
    pub ends: Vec<NodeEnd>,
    pub accounts: u64,
    pub initial_balance: i64,
    /// How long after a write's acknowledgement a read must see it.
    pub stale_lag_ms: u64,
    pub duration_ms: u64,
    pub aborted: Option<String>,
}

/// Per fault class: what the table asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassSummary {
    pub class: FaultClass,
    pub count: usize,
    /// From the fault to the end of the first acknowledged write that began after it
    /// (for a hang: after the fault, not after the release).
    pub writes_back_p50_ms: Option<u64>,
    pub writes_back_max_ms: Option<u64>,
    /// From the fault (a hang: its release) until the cluster was whole again.
    pub healed_p50_ms: Option<u64>,
    pub healed_max_ms: Option<u64>,
    pub not_healed: usize,
    /// Multi-writer seconds outside a hand-over, in the fault's window (from the fault
    /// until the next one).
    pub multi_writer_s: f64,
}

/// The report: the verdicts and the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub seed: u64,
    pub through: String,
    pub duration_ms: u64,
    pub faults: Vec<FaultRun>,
    pub classes: Vec<ClassSummary>,
    pub writes_acknowledged: usize,
    pub writes_failed: usize,
    pub writes_unknown: usize,
    pub transfers_acknowledged: usize,
    pub reads: usize,
    pub balance_reads: usize,
    /// Acknowledged inserts missing on some node, or refused ones present (per node).
    pub lost: Vec<NodeEnd>,
    pub stale_reads: Vec<StaleRead>,
    pub stale_lag_ms: u64,
    /// Balance reads and final per-node totals that broke the bank's invariants.
    pub bank_violations: Vec<String>,
    /// Lost appends, reads of states that never committed, stale list reads, lists that
    /// differ between nodes (`check::list_violations`).
    pub list_violations: Vec<String>,
    pub appends_acknowledged: usize,
    pub list_reads: usize,
    /// Slots (start, ms) in which two nodes acknowledged writes, not as one hand-over.
    pub multi_writer_slots: Vec<u64>,
    /// Nodes that could not be read at the end, and why: their data was not checked.
    pub unchecked: Vec<String>,
    /// Why the run stopped before its schedule ended (a fault that could not be
    /// injected), if it did.
    pub aborted: Option<String>,
    /// How many times the node acknowledging writes changed.
    pub writer_changes: usize,
    pub not_healed: usize,
}

impl Report {
    /// Whether every goal that is a correctness property held: nothing acknowledged was
    /// lost, no invariant broke, no read was stale, no two nodes took writes at once
    /// outside a hand-over, and every fault healed without an operator.
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.stale_reads.is_empty()
            && self.bank_violations.is_empty()
            && self.list_violations.is_empty()
            && self.multi_writer_slots.is_empty()
            && self.not_healed == 0
            && self.unchecked.is_empty()
            && self.aborted.is_none()
    }

    pub fn multi_writer_s(&self) -> f64 {
        self.multi_writer_slots.len() as f64 * SLOT_MS as f64 / 1000.0
    }
}

/// The multi-writer slots that are not a hand-over. A slot in which two nodes
/// acknowledged writes is a hand-over when, in the order the acknowledgements came
/// (the last one before the slot included), the node changes once: the old writer's last
/// writes, then the new one's. Any more changes in one slot mean that two nodes took
/// writes at the same time.
pub fn multi_writer_outside_hand_overs(acks: &[Ack]) -> Vec<u64> {
    let mut by_end: Vec<&Ack> = acks.iter().collect();
    by_end.sort_by_key(|ack| (ack.ended_ms, ack.began_ms));
    check::multi_writer_slots(acks)
        .into_iter()
        .filter(|&slot| {
            let end = slot + SLOT_MS;
            let in_slot = |ack: &&&Ack| ack.began_ms >= slot && ack.began_ms < end;
            let before = by_end
                .iter()
                .rev()
                .find(|ack| ack.ended_ms < slot && ack.began_ms < slot);
            let nodes: Vec<&str> = before
                .into_iter()
                .chain(by_end.iter().filter(in_slot))
                .map(|ack| ack.node.as_str())
                .collect();
            changes(&nodes) > 1
        })
        .collect()
}

fn changes(nodes: &[&str]) -> usize {
    nodes.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

fn percentile(values: &mut [u64], fraction: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let index = ((values.len() - 1) as f64 * fraction).round() as usize;
    Some(values[index])
}

/// Judges a run.
pub fn judge(record: &RunRecord) -> Report {
    let history = &record.history;
    let acks = check::acks(history);
    let multi_writer_slots = multi_writer_outside_hand_overs(&acks);
    let mut by_end: Vec<&Ack> = acks.iter().collect();
    by_end.sort_by_key(|ack| (ack.ended_ms, ack.began_ms));
    let nodes: Vec<&str> = by_end.iter().map(|ack| ack.node.as_str()).collect();

    let mut bank_violations =
        check::bank_violations(history, record.accounts, record.initial_balance);
    let expected = record.accounts as i64 * record.initial_balance;
    for end in record.ends.iter().filter(|end| end.unreadable.is_none()) {
        let (total, lowest, accounts) = end.bank;
        if total != expected || lowest < 0 || accounts != record.accounts {
            bank_violations.push(format!(
                "at the end on {}: total {total} (expected {expected}), lowest balance {lowest}, {accounts} accounts (expected {})",
                end.node, record.accounts
            ));
        }
    }

    let readable: Vec<&NodeEnd> = record
        .ends
        .iter()
        .filter(|end| end.unreadable.is_none())
        .collect();
    let mut list_violations = Vec::new();
    if let Some(first) = readable.first() {
        list_violations = check::list_violations(history, &first.lists, record.stale_lag_ms);
        for other in &readable[1..] {
            if other.lists != first.lists {
                list_violations.push(format!(
                    "the lists on {} differ from those on {}",
                    other.node, first.node
                ));
            }
        }
    }

    #[derive(Default)]
    struct Tally {
        count: usize,
        back: Vec<u64>,
        healed: Vec<u64>,
        not_healed: usize,
        slots: usize,
    }
    let mut classes: BTreeMap<FaultClass, Tally> = BTreeMap::new();
    for (index, run) in record.faults.iter().enumerate() {
        let tally = classes.entry(run.fault.class).or_default();
        tally.count += 1;
        if let Some(back) = check::writes_back_after(&acks, run.injected_ms) {
            tally.back.push(back);
        }
        let from = run.released_ms.unwrap_or(run.injected_ms);
        match run.healed_ms {
            Some(healed) => tally.healed.push(healed.saturating_sub(from)),
            None => tally.not_healed += 1,
        }
        let window_end = record
            .faults
            .get(index + 1)
            .map_or(u64::MAX, |next| next.injected_ms);
        tally.slots += multi_writer_slots
            .iter()
            .filter(|&&slot| slot + SLOT_MS > run.injected_ms && slot < window_end)
            .count();
    }
    let classes = classes
        .into_iter()
        .map(|(class, mut tally)| ClassSummary {
            class,
            count: tally.count,
            writes_back_p50_ms: percentile(&mut tally.back, 0.5),
            writes_back_max_ms: tally.back.iter().copied().max(),
            healed_p50_ms: percentile(&mut tally.healed, 0.5),
            healed_max_ms: tally.healed.iter().copied().max(),
            not_healed: tally.not_healed,
            multi_writer_s: tally.slots as f64 * SLOT_MS as f64 / 1000.0,
        })
        .collect();

    Report {
        seed: record.seed,
        through: record.through.clone(),
        duration_ms: record.duration_ms,
        faults: record.faults.clone(),
        classes,
        writes_acknowledged: history.count(Outcome::Acknowledged),
        writes_failed: history.count(Outcome::Failed),
        writes_unknown: history.count(Outcome::Unknown),
        transfers_acknowledged: history
            .transfers
            .iter()
            .filter(|t| t.outcome == Outcome::Acknowledged)
            .count(),
        reads: history.reads.len(),
        balance_reads: history.balance_reads.len(),
        lost: record
            .ends
            .iter()
            .filter(|end| !end.missing.is_empty())
            .cloned()
            .collect(),
        stale_reads: check::stale_reads(history, record.stale_lag_ms),
        stale_lag_ms: record.stale_lag_ms,
        bank_violations,
        list_violations,
        appends_acknowledged: history
            .appends
            .iter()
            .filter(|a| a.outcome == Outcome::Acknowledged)
            .count(),
        list_reads: history.list_reads.len(),
        multi_writer_slots,
        unchecked: record
            .ends
            .iter()
            .filter_map(|end| Some(format!("{}: {}", end.node, end.unreadable.as_ref()?)))
            .collect(),
        aborted: record.aborted.clone(),
        writer_changes: changes(&nodes),
        not_healed: record
            .faults
            .iter()
            .filter(|f| f.healed_ms.is_none())
            .count(),
    }
}

fn seconds(ms: Option<u64>) -> String {
    ms.map_or("-".to_owned(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
}

fn first_few<T: std::fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(5).map(|i| format!("{i:?}")).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The report as markdown: the verdict first, then the figures.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.passed() { "PASSED" } else { "FAILED" };
    let _ = writeln!(
        out,
        "# galley chaos: {verdict}\n\nThrough {}. Seed {} (replay with `galley chaos --seed {} --faults {}`), {} faults in {:.0} s.\n",
        report.through,
        report.seed,
        report.seed,
        report.faults.len(),
        report.faults.len(),
        report.duration_ms as f64 / 1000.0
    );
    if let Some(why) = &report.aborted {
        let _ = writeln!(out, "The run stopped early: {why}\n");
    }
    for unchecked in &report.unchecked {
        let _ = writeln!(out, "Not checked, unreadable at the end: {unchecked}\n");
    }
    let _ = writeln!(out, "## Checks\n");
    let check = |ok: bool| if ok { "ok" } else { "**violated**" };
    let lost: usize = report.lost.iter().map(|end| end.missing.lost.len()).sum();
    let _ = writeln!(
        out,
        "- acknowledged writes lost: {lost} ({}){}",
        check(report.lost.is_empty()),
        report
            .lost
            .iter()
            .map(|end| format!(
                "; {} misses {} and holds refused {}",
                end.node,
                first_few(&end.missing.lost),
                first_few(&end.missing.unexpected)
            ))
            .collect::<String>()
    );
    let _ = writeln!(
        out,
        "- stale reads (a read missing a write acknowledged over {} ms before it): {} ({}){}",
        report.stale_lag_ms,
        report.stale_reads.len(),
        check(report.stale_reads.is_empty()),
        report
            .stale_reads
            .first()
            .map(|s| format!(
                "; first at {} ms on {}: saw id {}, needed {}",
                s.began_ms, s.node, s.saw, s.required
            ))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "- bank invariants (constant total, no negative balance, every account): {} violations ({}){}",
        report.bank_violations.len(),
        check(report.bank_violations.is_empty()),
        report
            .bank_violations
            .first()
            .map(|v| format!("; first: {v}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "- append lists (no lost append, every read a committed prefix, no stale read; oslo.db's session settings, causal and plain readers): {} violations ({}){}",
        report.list_violations.len(),
        check(report.list_violations.is_empty()),
        report
            .list_violations
            .first()
            .map(|v| format!("; first: {v}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "- multi-writer seconds outside a hand-over: {:.1} ({}); the writer changed {} times",
        report.multi_writer_s(),
        check(report.multi_writer_slots.is_empty()),
        report.writer_changes
    );
    let _ = writeln!(
        out,
        "- faults healed without an operator: {} of {} ({})\n",
        report.faults.len() - report.not_healed,
        report.faults.len(),
        check(report.not_healed == 0)
    );
    let _ = writeln!(
        out,
        "Workload: {} inserts acknowledged, {} refused, {} without an answer; {} transfers acknowledged; {} appends acknowledged; {} id reads, {} balance reads, {} list reads.\n",
        report.writes_acknowledged,
        report.writes_failed,
        report.writes_unknown,
        report.transfers_acknowledged,
        report.appends_acknowledged,
        report.reads,
        report.balance_reads,
        report.list_reads
    );
    let _ = writeln!(out, "## Per fault class\n");
    let _ = writeln!(
        out,
        "| class | faults | writes back p50 | max | healed p50 | max | not healed | multi-writer s |\n|---|---|---|---|---|---|---|---|"
    );
    for class in &report.classes {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            class.class,
            class.count,
            seconds(class.writes_back_p50_ms),
            seconds(class.writes_back_max_ms),
            seconds(class.healed_p50_ms),
            seconds(class.healed_max_ms),
            class.not_healed,
            class.multi_writer_s
        );
    }
    let _ = writeln!(
        out,
        "\nWrites back: from the fault to the first acknowledged write that began after it. Healed: from the fault (a hang: its end) until every node was Synced in one view, the proxy had a writer and every daemon answered.\n"
    );
    let _ = writeln!(out, "## Faults\n");
    let _ = writeln!(
        out,
        "| fault | target | at | healed after |\n|---|---|---|---|"
    );
    for run in &report.faults {
        let from = run.released_ms.unwrap_or(run.injected_ms);
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} s | {} |",
            run.fault,
            run.target,
            run.injected_ms as f64 / 1000.0,
            run.healed_ms
                .map_or("not healed".to_owned(), |h| seconds(Some(h - from)))
        );
    }
    out
}

const WIDTH: f64 = 1000.0;
const PLOT_TOP: f64 = 30.0;
const PLOT_HEIGHT: f64 = 160.0;

/// An SVG timeline of the run: acknowledged writes per second (coloured by the node that
/// took them, so writer changes show), failed and unanswered writes per second below the
/// axis, and a line per fault.
pub fn svg(record: &RunRecord) -> String {
    let seconds = (record.duration_ms / 1000 + 1) as usize;
    let step = WIDTH / seconds as f64;
    let mut acked: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); seconds];
    let mut errors = vec![0u64; seconds];
    for write in &record.history.writes {
        let second = ((write.ended_ms / 1000) as usize).min(seconds - 1);
        match write.outcome {
            Outcome::Acknowledged => {
                *acked[second]
                    .entry(write.node.as_deref().unwrap_or("?"))
                    .or_default() += 1
            }
            Outcome::Failed | Outcome::Unknown => errors[second] += 1,
        }
    }
    let mut names: Vec<&str> = acked.iter().flat_map(|m| m.keys().copied()).collect();
    names.sort_unstable();
    names.dedup();
    let peak = acked
        .iter()
        .map(|m| m.values().sum::<u64>())
        .chain(errors.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let scale = PLOT_HEIGHT / peak;
    let axis = PLOT_TOP + PLOT_HEIGHT;
    let height = axis + PLOT_HEIGHT / 2.0 + 40.0;
    const COLOURS: [&str; 6] = [
        "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948",
    ];
    let colour =
        |name: &str| COLOURS[names.iter().position(|n| *n == name).unwrap_or(0) % COLOURS.len()];
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <title>galley chaos, seed {}: acknowledged inserts per second by node, errors below the axis, faults as lines</title>\n",
        record.seed
    );
    for (second, by_node) in acked.iter().enumerate() {
        let mut y = axis;
        for (node, count) in by_node {
            let h = *count as f64 * scale;
            y -= h;
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                second as f64 * step,
                step.max(1.0),
                colour(node)
            );
        }
        if errors[second] > 0 {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{axis:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#e15759\"/>",
                second as f64 * step,
                step.max(1.0),
                (errors[second] as f64 * scale / 2.0).max(1.0)
            );
        }
    }
    let _ = writeln!(
        out,
        "<line x1=\"0\" y1=\"{axis}\" x2=\"{WIDTH}\" y2=\"{axis}\" stroke=\"#333\"/>"
    );
    for run in &record.faults {
        let x = run.injected_ms as f64 / 1000.0 * step;
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{PLOT_TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\" stroke-dasharray=\"3,2\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" transform=\"rotate(-30 {x:.1} {:.1})\">{}</text>",
            axis + PLOT_HEIGHT / 2.0,
            PLOT_TOP - 4.0,
            PLOT_TOP - 4.0,
            xml_escape(&format!("#{} {}", run.fault.index, run.fault.class))
        );
    }
    let mut x = 0.0;
    for name in names.iter().copied().chain(["errors"]) {
        let fill = if name == "errors" {
            "#e15759"
        } else {
            colour(name)
        };
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            height - 18.0,
            x + 14.0,
            height - 9.0,
            xml_escape(name)
        );
        x += 90.0;
    }
    out.push_str("</svg>\n");
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{BalanceRead, Write};

    fn ack(began_ms: u64, ended_ms: u64, node: &str) -> Ack {
        Ack {
            began_ms,
            ended_ms,
            node: node.to_owned(),
        }
    }

    #[test]
    fn one_hand_over_in_a_slot_is_not_multi_writer() {
        // node1's last write and node2's first in the same 100 ms slot.
        let acks = [
            ack(10, 20, "node1"),
            ack(110, 115, "node1"),
            ack(150, 160, "node2"),
            ack(210, 220, "node2"),
        ];
        assert_eq!(check::multi_writer_slots(&acks), vec![100]);
        assert!(multi_writer_outside_hand_overs(&acks).is_empty());
    }

    #[test]
    fn interleaved_writers_in_a_slot_are_multi_writer() {
        let acks = [
            ack(10, 20, "node1"),
            ack(110, 115, "node1"),
            ack(120, 125, "node2"),
            ack(130, 135, "node1"),
        ];
        assert_eq!(multi_writer_outside_hand_overs(&acks), vec![100]);
        // The change counts from the write before the slot: node2 was the writer, then
        // node1 and node2 again in one slot is two changes.
        let acks = [
            ack(10, 20, "node2"),
            ack(110, 115, "node1"),
            ack(120, 125, "node2"),
        ];
        assert_eq!(multi_writer_outside_hand_overs(&acks), vec![100]);
    }

    fn write(id: u64, at: u64, outcome: Outcome, node: &str) -> Write {
        Write {
            id,
            began_ms: at,
            ended_ms: at + 5,
            outcome,
            node: Some(node.to_owned()),
        }
    }

    fn record() -> RunRecord {
        let mut history = History::default();
        for id in 0..20 {
            let node = if id < 10 { "node1" } else { "node2" };
            history
                .writes
                .push(write(id + 1, id * 200, Outcome::Acknowledged, node));
        }
        history
            .writes
            .push(write(21, 4100, Outcome::Unknown, "node2"));
        history.balance_reads.push(BalanceRead {
            began_ms: 1000,
            node: "node3".to_owned(),
            total: 1000,
            lowest: 40,
            accounts: 10,
        });
        let fault = |index, class, at, healed| FaultRun {
            fault: Fault {
                index,
                class,
                pick: 0,
                hold_ms: 0,
            },
            target: "node1 (the writer)".to_owned(),
            injected_ms: at,
            released_ms: None,
            healed_ms: healed,
        };
        RunRecord {
            seed: 7,
            through: "galley's proxy".to_owned(),
            faults: vec![
                fault(1, FaultClass::KillWriter, 1950, Some(3000)),
                fault(2, FaultClass::KillNode, 3050, Some(3500)),
            ],
            history,
            ends: ["node1", "node2", "node3"]
                .iter()
                .map(|node| NodeEnd {
                    node: node.to_string(),
                    missing: Missing::default(),
                    bank: (1000, 10, 10),
                    lists: BTreeMap::new(),
                    unreadable: None,
                })
                .collect(),
            accounts: 10,
            initial_balance: 100,
            stale_lag_ms: 1000,
            duration_ms: 4200,
            aborted: None,
        }
    }

    #[test]
    fn a_clean_run_passes_with_its_figures_per_class() {
        let report = judge(&record());
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.writes_acknowledged, 20);
        assert_eq!(report.writes_unknown, 1);
        assert_eq!(report.writer_changes, 1);
        let kill_writer = report
            .classes
            .iter()
            .find(|c| c.class == FaultClass::KillWriter)
            .unwrap();
        // The first write that began after 1950 ms is id 11 at 2000 ms, ended 2005.
        assert_eq!(kill_writer.writes_back_p50_ms, Some(55));
        assert_eq!(kill_writer.healed_max_ms, Some(1050));
        let text = markdown(&report);
        assert!(text.starts_with("# galley chaos: PASSED"), "{text}");
        assert!(
            text.contains("| kill-writer | 1 | 0.06 s | 0.06 s | 1.05 s |"),
            "{text}"
        );
        assert!(text.contains("galley chaos --seed 7 --faults 2"), "{text}");
    }

    #[test]
    fn a_lost_write_a_broken_total_and_an_unhealed_fault_each_fail_the_run() {
        let mut lost = record();
        lost.ends[2].missing.lost = vec![4];
        let report = judge(&lost);
        assert!(!report.passed());
        assert!(markdown(&report).contains("node3 misses 4"));

        let mut broken = record();
        broken.ends[1].bank = (990, 10, 10);
        let report = judge(&broken);
        assert!(!report.passed());
        assert!(
            report.bank_violations[0].contains("on node2: total 990"),
            "{report:?}"
        );

        let mut unhealed = record();
        unhealed.faults[1].healed_ms = None;
        let report = judge(&unhealed);
        assert!(!report.passed());
        assert_eq!(report.not_healed, 1);
        assert!(markdown(&report).contains("| not healed |"));

        let mut unreadable = record();
        unreadable.ends[0].unreadable = Some("connection refused".to_owned());
        let report = judge(&unreadable);
        assert!(!report.passed());
        assert!(markdown(&report).contains("unreadable at the end: node1: connection refused"));

        let mut differing = record();
        differing.ends[1].lists = BTreeMap::from([(1, vec![5])]);
        let report = judge(&differing);
        assert!(!report.passed());
        assert!(
            report
                .list_violations
                .contains(&"the lists on node2 differ from those on node1".to_owned()),
            "{report:?}"
        );

        let mut aborted = record();
        aborted.aborted = Some("cannot inject #3".to_owned());
        assert!(!judge(&aborted).passed());
    }

    #[test]
    fn the_timeline_draws_each_node_each_fault_and_the_errors() {
        let svg = svg(&record());
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">#1 kill-writer</text>") && svg.contains(">#2 kill-node</text>"));
        assert!(svg.contains(">node1</text>") && svg.contains(">node2</text>"));
        assert!(
            svg.contains("fill=\"#e15759\"/>"),
            "the unknown write is drawn"
        );
    }
}
