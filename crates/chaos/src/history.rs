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
    /// `wsrep_node_name` of the node the session was on (the proxy keeps a session on
    /// one node for its life); None when the session could not say.
    pub node: Option<String>,
}

/// One transfer of the bank workload: `amount` from one account to another in one
/// transaction, its rows locked with SELECT ... FOR UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    pub began_ms: u64,
    pub ended_ms: u64,
    pub outcome: Outcome,
    pub node: Option<String>,
}

/// One read of every balance in one snapshot, through the reader port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceRead {
    pub began_ms: u64,
    pub node: String,
    pub total: i64,
    /// The lowest balance seen.
    pub lowest: i64,
    pub accounts: u64,
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
    pub transfers: Vec<Transfer>,
    pub balance_reads: Vec<BalanceRead>,
    pub appends: Vec<Append>,
    pub list_reads: Vec<ListRead>,
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

/// One transaction of the append-list workload: it read list `read_key` and appended
/// `element` to list `key`, under the session settings oslo.db gives its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Append {
    pub key: u64,
    /// Unique over the run.
    pub element: u64,
    pub read_key: u64,
    /// What the transaction read of `read_key` (None when it did not get that far).
    pub read: Option<Vec<u64>>,
    pub began_ms: u64,
    pub ended_ms: u64,
    pub outcome: Outcome,
    pub node: Option<String>,
}

/// One read of every list in one snapshot through the reader port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRead {
    pub began_ms: u64,
    pub node: String,
    /// Whether the session read causally (`wsrep_sync_wait = 1`).
    pub causal: bool,
    /// (key, its elements in order).
    pub lists: Vec<(u64, Vec<u64>)>,
}
