//! What a workload did, operation by operation, in milliseconds since the run began.

use serde::Serialize;

/// How a write ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The server answered OK: the row is committed.
    Acknowledged,
    /// The server answered with an error before committing (it was refused).
    Failed,
    /// No answer: the connection broke or the client gave up waiting. The row may be
    /// committed or not.
    Unknown,
}

/// One insert of the unique-insert workload: row `id`, written once, never retried
/// under the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Write {
    pub id: u64,
    pub began_ms: u64,
    pub ended_ms: u64,
    pub outcome: Outcome,
}

/// One read of the highest id present, through the reader port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Read {
    pub began_ms: u64,
    pub ended_ms: u64,
    /// `wsrep_node_name` of the node that answered.
    pub node: String,
    /// The highest id it saw; 0 when the table was empty.
    pub max_id: u64,
}

/// Everything one run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct History {
    pub writes: Vec<Write>,
    pub reads: Vec<Read>,
    /// Reads that got no answer (refused, broken connection): not judged.
    pub failed_reads: u64,
}

impl History {
    pub fn acknowledged(&self) -> impl Iterator<Item = &Write> {
        self.writes
            .iter()
            .filter(|write| write.outcome == Outcome::Acknowledged)
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.writes
            .iter()
            .filter(|write| write.outcome == outcome)
            .count()
    }
}
