//! The workloads, run against any MySQL port (the proxy's writer and reader ports in the
//! tests). Each records every operation it started, with its outcome, until `stop` is
//! set; each operation is bounded by `answer_within`, after which it counts as unknown.

use std::collections::BTreeSet;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::history::{Outcome, Read, Write};

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
}

/// One client inserting ids 1, 2, 3, ... one at a time, each under a new id whatever
/// became of the one before; on an error it reconnects (the proxy sends it to the
/// writer of the moment).
pub async fn unique_inserts(run: Run, mut stop: watch::Receiver<bool>) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut conn: Option<Conn> = None;
    let mut id = 0u64;
    let table = run.table.name();
    while !*stop.borrow() {
        if conn.is_none() {
            conn = run.connect().await;
            if conn.is_none() {
                // Nothing was sent: no write to record. Try again shortly.
                let _ = tokio::time::timeout(Duration::from_millis(50), stop.changed()).await;
                continue;
            }
        }
        let live = conn.as_mut().expect("connected above");
        id += 1;
        let began_ms = run.now_ms();
        let insert = live.exec_drop(
            format!("INSERT INTO {table} (id, written_ms) VALUES (?, ?)"),
            (id, began_ms),
        );
        let outcome = match tokio::time::timeout(run.answer_within, insert).await {
            Ok(Ok(())) => Outcome::Acknowledged,
            // The server refused it with an error packet: not committed.
            Ok(Err(mysql_async::Error::Server(_))) => Outcome::Failed,
            Ok(Err(_)) | Err(_) => {
                conn = None;
                Outcome::Unknown
            }
        };
        writes.push(Write {
            id,
            began_ms,
            ended_ms: run.now_ms(),
            outcome,
        });
    }
    writes
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
