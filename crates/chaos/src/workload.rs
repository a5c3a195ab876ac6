//! The workloads, run against any MySQL port (the proxy's writer and reader ports in the
//! tests). Each records every operation it started, with its outcome, until `stop` is
//! set; each operation is bounded by `answer_within`, after which it counts as unknown.

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::history::{BalanceRead, Outcome, Read, Transfer, Write};

/// Where a workload writes: `database.table`, created by `prepare`.
#[derive(Debug, Clone)]
pub struct Table {
    pub database: String,
    pub table: String,
}

impl Table {
    fn name(&self) -> String {
        format!("`{}`.`{}`", self.database, self.table)
    }
}

/// Creates the workload's table (empty) on a node or through the writer port.
pub async fn prepare(opts: Opts, table: &Table) -> Result<(), mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{}`",
        table.database
    ))
    .await?;
    conn.query_drop(format!("DROP TABLE IF EXISTS {}", table.name()))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE {} (id BIGINT UNSIGNED PRIMARY KEY, written_ms BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB",
        table.name()
    ))
    .await?;
    conn.disconnect().await
}

/// How a workload runs.
#[derive(Debug, Clone)]
pub struct Run {
    pub opts: Opts,
    pub table: Table,
    /// Time zero of the history.
    pub clock: Instant,
    /// An operation (connect included) without an answer after this is unknown.
    pub answer_within: Duration,
}

impl Run {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    async fn connect(&self) -> Option<Conn> {
        match tokio::time::timeout(self.answer_within, Conn::new(self.opts.clone())).await {
            Ok(Ok(conn)) => Some(conn),
            _ => None,
        }
    }

    /// A session and the node it is on (`wsrep_node_name`; None if it did not say).
    async fn connect_on_node(&self) -> Option<(Conn, Option<String>)> {
        let mut conn = self.connect().await?;
        let node = tokio::time::timeout(
            self.answer_within,
            conn.query_first::<String, _>("SELECT @@wsrep_node_name"),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
        Some((conn, node))
    }

    /// Makes sure `session` holds a live session, connecting if it does not. Without
    /// one, waits a little (or until `stop`) and says so: nothing was sent, so the
    /// caller records nothing and tries again.
    async fn ensure_session(
        &self,
        session: &mut Option<(Conn, Option<String>)>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        if session.is_none() {
            *session = self.connect_on_node().await;
        }
        if session.is_none() {
            let _ = tokio::time::timeout(Duration::from_millis(50), stop.changed()).await;
        }
        session.is_some()
    }
}

/// How a statement that changes data ended, as the client saw it.
fn outcome_of<T>(
    answer: Result<Result<T, mysql_async::Error>, tokio::time::error::Elapsed>,
) -> Outcome {
    match answer {
        Ok(Ok(_)) => Outcome::Acknowledged,
        // The server refused it with an error packet: not committed.
        Ok(Err(mysql_async::Error::Server(_))) => Outcome::Failed,
        Ok(Err(_)) | Err(_) => Outcome::Unknown,
    }
}

/// One client inserting ids 1, 2, 3, ... one at a time, each under a new id whatever
/// became of the one before; on an error it reconnects (the proxy sends it to the
/// writer of the moment).
pub async fn unique_inserts(run: Run, mut stop: watch::Receiver<bool>) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut conn: Option<(Conn, Option<String>)> = None;
    let mut id = 0u64;
    let table = run.table.name();
    while !*stop.borrow() {
        if !run.ensure_session(&mut conn, &mut stop).await {
            continue;
        }
        let (live, node) = conn.as_mut().expect("connected above");
        let node = node.clone();
        id += 1;
        let began_ms = run.now_ms();
        let insert = live.exec_drop(
            format!("INSERT INTO {table} (id, written_ms) VALUES (?, ?)"),
            (id, began_ms),
        );
        let outcome = outcome_of(tokio::time::timeout(run.answer_within, insert).await);
        if outcome == Outcome::Unknown {
            conn = None;
        }
        writes.push(Write {
            id,
            began_ms,
            ended_ms: run.now_ms(),
            outcome,
            node,
        });
    }
    writes
}

/// The bank's accounts: `accounts` rows in `database.accounts`, each with
/// `INITIAL_BALANCE`, so that the total is `accounts * INITIAL_BALANCE` forever.
pub async fn prepare_bank(
    opts: Opts,
    database: &str,
    accounts: u64,
) -> Result<(), mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
        .await?;
    conn.query_drop(format!("DROP TABLE IF EXISTS `{database}`.`accounts`"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE `{database}`.`accounts` (id BIGINT UNSIGNED PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB"
    ))
    .await?;
    let rows: Vec<String> = (1..=accounts)
        .map(|id| format!("({id}, {INITIAL_BALANCE})"))
        .collect();
    conn.query_drop(format!(
        "INSERT INTO `{database}`.`accounts` VALUES {}",
        rows.join(", ")
    ))
    .await?;
    conn.disconnect().await
}

pub const INITIAL_BALANCE: i64 = 100;

/// One client moving money between random accounts until `stop`: each transfer locks
/// both rows with SELECT ... FOR UPDATE, moves at most what the source holds, and
/// commits. A transfer refused by the server (a certification conflict, a deadlock) is
/// rolled back and counts as failed; one without an answer is unknown.
pub async fn bank_transfers(
    run: Run,
    accounts: u64,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> Vec<Transfer> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut transfers = Vec::new();
    let mut conn: Option<(Conn, Option<String>)> = None;
    let table = format!("`{}`.`accounts`", run.table.database);
    while !*stop.borrow() {
        if !run.ensure_session(&mut conn, &mut stop).await {
            continue;
        }
        let (live, node) = conn.as_mut().expect("connected above");
        let node = node.clone();
        // Two different accounts (ids 1..=accounts); `accounts` is at least 2.
        let from_index = rng.gen_range(0..accounts);
        let to_index = (from_index + rng.gen_range(1..accounts)) % accounts;
        let (from, to) = (from_index + 1, to_index + 1);
        let amount = rng.gen_range(1..=INITIAL_BALANCE / 2);
        let began_ms = run.now_ms();
        let transfer = async {
            let mut tx = live
                .start_transaction(mysql_async::TxOpts::default())
                .await?;
            let balance: Option<i64> = tx
                .exec_first(
                    format!("SELECT balance FROM {table} WHERE id = ? FOR UPDATE"),
                    (from,),
                )
                .await?;
            let _: Option<i64> = tx
                .exec_first(
                    format!("SELECT balance FROM {table} WHERE id = ? FOR UPDATE"),
                    (to,),
                )
                .await?;
            let moved = amount.min(balance.unwrap_or(0));
            tx.exec_drop(
                format!("UPDATE {table} SET balance = balance - ? WHERE id = ?"),
                (moved, from),
            )
            .await?;
            tx.exec_drop(
                format!("UPDATE {table} SET balance = balance + ? WHERE id = ?"),
                (moved, to),
            )
            .await?;
            tx.commit().await
        };
        let outcome = outcome_of(tokio::time::timeout(run.answer_within, transfer).await);
        if outcome != Outcome::Acknowledged {
            // A refused transaction may leave the session in an unknown state: start over.
            conn = None;
        }
        transfers.push(Transfer {
            began_ms,
            ended_ms: run.now_ms(),
            outcome,
            node,
        });
    }
    transfers
}

/// Reads the total and the lowest balance in one snapshot every `every`, each on a new
/// session through `run.opts` (the reader port). Reads without an answer are dropped.
pub async fn balance_reads(
    run: Run,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<BalanceRead> {
    let mut reads = Vec::new();
    let query = format!(
        "SELECT @@wsrep_node_name, CAST(COALESCE(SUM(balance), 0) AS SIGNED), COALESCE(MIN(balance), 0), COUNT(*) FROM `{}`.`accounts`",
        run.table.database
    );
    while !*stop.borrow() {
        let next = Instant::now() + every;
        if let Some(mut conn) = run.connect().await {
            let began_ms = run.now_ms();
            let answer = tokio::time::timeout(
                run.answer_within,
                conn.query_first::<(String, i64, i64, u64), _>(query.as_str()),
            )
            .await;
            if let Ok(Ok(Some((node, total, lowest, accounts)))) = answer {
                reads.push(BalanceRead {
                    began_ms,
                    node,
                    total,
                    lowest,
                    accounts,
                });
            }
            let _ = tokio::time::timeout(run.answer_within, conn.disconnect()).await;
        }
        let _ = tokio::time::timeout_at(next, stop.changed()).await;
    }
    reads
}

/// The total, the lowest balance and the number of accounts on one node (connect to the
/// node itself).
pub async fn bank_on_node(
    opts: Opts,
    database: &str,
) -> Result<(i64, i64, u64), mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    let row: Option<(i64, i64, u64)> = conn
        .query_first(format!(
            "SELECT CAST(COALESCE(SUM(balance), 0) AS SIGNED), COALESCE(MIN(balance), 0), COUNT(*) FROM `{database}`.`accounts`"
        ))
        .await?;
    conn.disconnect().await?;
    Ok(row.unwrap_or((0, 0, 0)))
}

/// Reads the highest id every `every`, each on a new connection (a new session is
/// routed by the proxy's current view, as a pool's new connection would be). Returns
/// the reads and how many got no answer.
pub async fn max_id_reads(
    run: Run,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Read>, u64) {
    let mut reads = Vec::new();
    let mut failed = 0;
    let query = format!(
        "SELECT @@wsrep_node_name, CAST(COALESCE(MAX(id), 0) AS UNSIGNED) FROM {}",
        run.table.name()
    );
    while !*stop.borrow() {
        let next = Instant::now() + every;
        match run.connect().await {
            None => failed += 1,
            Some(mut conn) => {
                let began_ms = run.now_ms();
                let answer = tokio::time::timeout(
                    run.answer_within,
                    conn.query_first::<(String, u64), _>(query.as_str()),
                )
                .await;
                match answer {
                    Ok(Ok(Some((node, max_id)))) => reads.push(Read {
                        began_ms,
                        ended_ms: run.now_ms(),
                        node,
                        max_id,
                    }),
                    _ => failed += 1,
                }
                let _ = tokio::time::timeout(run.answer_within, conn.disconnect()).await;
            }
        }
        let _ = tokio::time::timeout_at(next, stop.changed()).await;
    }
    (reads, failed)
}

/// Every id present on one node (connect to the node itself, not through the proxy).
pub async fn present_ids(opts: Opts, table: &Table) -> Result<BTreeSet<u64>, mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    let ids: Vec<u64> = conn
        .query(format!("SELECT id FROM {}", table.name()))
        .await?;
    conn.disconnect().await?;
    Ok(ids.into_iter().collect())
}

/// The append-list workload's table: `lists` keys 1..=`keys`, each an empty list (its
/// elements are kept as text, separated by spaces, in the order they committed).
pub async fn prepare_lists(
    opts: Opts,
    database: &str,
    keys: u64,
) -> Result<(), mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
        .await?;
    conn.query_drop(format!("DROP TABLE IF EXISTS `{database}`.`lists`"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE `{database}`.`lists` (k BIGINT UNSIGNED PRIMARY KEY, v MEDIUMTEXT NOT NULL) ENGINE=InnoDB"
    ))
    .await?;
    let rows: Vec<String> = (1..=keys).map(|key| format!("({key}, '')")).collect();
    conn.query_drop(format!(
        "INSERT INTO `{database}`.`lists` VALUES {}",
        rows.join(", ")
    ))
    .await?;
    conn.disconnect().await
}

fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|element| element.parse().ok())
        .collect()
}

/// The session settings oslo.db gives every connection of an OpenStack service.
pub const OSLO_DB_SESSION: &str = "SET SESSION sql_mode = 'TRADITIONAL'";

/// One client appending unique elements (`client * 1e9 + 1, + 2, ...`) to random lists
/// until `stop`: each transaction reads one list and appends to another (or the same),
/// in REPEATABLE READ with oslo.db's session settings, and commits.
pub async fn list_appends(
    run: Run,
    keys: u64,
    client: u64,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> Vec<crate::history::Append> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ client.rotate_left(17));
    let run = Run {
        opts: mysql_async::OptsBuilder::from_opts(run.opts.clone())
            .init(vec![OSLO_DB_SESSION])
            .into(),
        ..run
    };
    let table = format!("`{}`.`lists`", run.table.database);
    let mut appends = Vec::new();
    let mut conn: Option<(Conn, Option<String>)> = None;
    let mut next = client * 1_000_000_000;
    while !*stop.borrow() {
        if !run.ensure_session(&mut conn, &mut stop).await {
            continue;
        }
        let (live, node) = conn.as_mut().expect("connected above");
        let node = node.clone();
        next += 1;
        let (key, read_key) = (rng.gen_range(1..=keys), rng.gen_range(1..=keys));
        let began_ms = run.now_ms();
        let mut read = None;
        let transaction = async {
            let mut tx = live
                .start_transaction(mysql_async::TxOpts::default())
                .await?;
            let value: Option<String> = tx
                .exec_first(format!("SELECT v FROM {table} WHERE k = ?"), (read_key,))
                .await?;
            read = Some(parse_list(value.as_deref().unwrap_or("")));
            tx.exec_drop(
                format!("UPDATE {table} SET v = CONCAT(v, ' ', ?) WHERE k = ?"),
                (next, key),
            )
            .await?;
            tx.commit().await
        };
        let outcome = outcome_of(tokio::time::timeout(run.answer_within, transaction).await);
        if outcome != Outcome::Acknowledged {
            conn = None;
        }
        appends.push(crate::history::Append {
            key,
            element: next,
            read_key,
            read,
            began_ms,
            ended_ms: run.now_ms(),
            outcome,
            node,
        });
    }
    appends
}

/// Reads every list in one snapshot every `every`, each on a new session through
/// `run.opts` (the reader port); `causal` sessions set `wsrep_sync_wait = 1` first.
pub async fn list_reads(
    run: Run,
    every: Duration,
    causal: bool,
    mut stop: watch::Receiver<bool>,
) -> Vec<crate::history::ListRead> {
    let mut init = vec![OSLO_DB_SESSION];
    if causal {
        init.push("SET SESSION wsrep_sync_wait = 1");
    }
    let run = Run {
        opts: mysql_async::OptsBuilder::from_opts(run.opts.clone())
            .init(init)
            .into(),
        ..run
    };
    let query = format!(
        "SELECT @@wsrep_node_name, k, v FROM `{}`.`lists` ORDER BY k",
        run.table.database
    );
    let mut reads = Vec::new();
    while !*stop.borrow() {
        let next = Instant::now() + every;
        if let Some(mut conn) = run.connect().await {
            let began_ms = run.now_ms();
            let answer = tokio::time::timeout(
                run.answer_within,
                conn.query::<(String, u64, String), _>(query.as_str()),
            )
            .await;
            if let Ok(Ok(rows)) = answer {
                if let Some((node, _, _)) = rows.first() {
                    reads.push(crate::history::ListRead {
                        began_ms,
                        node: node.clone(),
                        causal,
                        lists: rows
                            .iter()
                            .map(|(_, key, value)| (*key, parse_list(value)))
                            .collect(),
                    });
                }
            }
            let _ = tokio::time::timeout(run.answer_within, conn.disconnect()).await;
        }
        let _ = tokio::time::timeout_at(next, stop.changed()).await;
    }
    reads
}

/// Every list on one node (connect to the node itself).
pub async fn lists_on_node(
    opts: Opts,
    database: &str,
) -> Result<std::collections::BTreeMap<u64, Vec<u64>>, mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    let rows: Vec<(u64, String)> = conn
        .query(format!("SELECT k, v FROM `{database}`.`lists`"))
        .await?;
    conn.disconnect().await?;
    Ok(rows
        .into_iter()
        .map(|(key, value)| (key, parse_list(&value)))
        .collect())
}
