//! The append-only history: events, decisions, transitions and samples, their queries
//! (newest first, except samples) and retention (`prune`).

use rusqlite::types::Type;
use rusqlite::{
    params, params_from_iter, Connection, Row, ToSql, Transaction, TransactionBehavior,
};

use crate::{
    Decision, Event, EventFilter, NewDecision, NewEvent, Result, Sample, Store, Transition,
};

/// SQLite reads `LIMIT -1` as no limit; the API uses 0 for that.
fn sql_limit(limit: usize) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

/// A query's `WHERE` clause built from optional conditions, with its parameters.
#[derive(Default)]
struct Conditions {
    clauses: Vec<&'static str>,
    values: Vec<Box<dyn ToSql>>,
}

impl Conditions {
    fn add(&mut self, clause: &'static str, value: Option<impl ToSql + 'static>) {
        if let Some(value) = value {
            self.clauses.push(clause);
            self.values.push(Box::new(value));
        }
    }

    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Inserts one event; also used inside other writes' transactions (the marks).
pub(crate) fn insert_event(connection: &Connection, event: &NewEvent) -> rusqlite::Result<i64> {
    connection.execute(
        "INSERT INTO events (at_ms, severity, kind, node, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            event.at_ms,
            event.severity,
            event.kind,
            event.node,
            event.message
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

impl Store {
    pub fn record_event(&self, event: &NewEvent) -> Result<i64> {
        Ok(insert_event(self.writable()?, event)?)
    }

    pub fn record_decision(&self, decision: &NewDecision) -> Result<i64> {
        let connection = self.writable()?;
        connection.execute(
            "INSERT INTO decisions (at_ms, rule, action, node, reason, evidence, outcome, situation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                decision.at_ms,
                decision.rule,
                decision.action,
                decision.node,
                decision.reason,
                decision.evidence.to_string(),
                decision.outcome,
                decision.situation,
            ],
        )?;
        Ok(connection.last_insert_rowid())
    }

    pub fn record_transition(&self, transition: &Transition) -> Result<()> {
        self.writable()?.execute(
            "INSERT INTO transitions (at_ms, node, from_state, to_state) VALUES (?1, ?2, ?3, ?4)",
            params![
                transition.at_ms,
                transition.node,
                transition.from,
                transition.to
            ],
        )?;
        Ok(())
    }

    /// Records all `samples` in one transaction: all of them or none.
    pub fn record_samples(&self, samples: &[Sample]) -> Result<()> {
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO samples (at_ms, node, last_committed, queries_per_second,
                     flow_control_paused, recv_queue, send_queue, cert_failures, bf_aborts,
                     connections, replicated, replication_bytes_per_second)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for sample in samples {
                insert.execute(params![
                    sample.at_ms,
                    sample.node,
                    sample.last_committed,
                    sample.queries_per_second,
                    sample.flow_control_paused,
                    sample.recv_queue,
                    sample.send_queue,
                    sample.cert_failures,
                    sample.bf_aborts,
                    sample.connections,
                    sample.replicated,
                    sample.replication_bytes_per_second,
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Newest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        let mut conditions = Conditions::default();
        conditions.add("at_ms >= ?", filter.since_ms);
        conditions.add("node = ?", filter.node.clone());
        let sql = format!(
            "SELECT id, at_ms, severity, kind, node, message FROM events {}
             ORDER BY at_ms DESC, id DESC LIMIT {}",
            conditions.where_clause(),
            sql_limit(filter.limit),
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(&conditions.values), |row| {
            Ok(Event {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                severity: row.get(2)?,
                kind: row.get(3)?,
                node: row.get(4)?,
                message: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Newest first; limit 0 = all.
    pub fn decisions(&self, since_ms: Option<i64>, limit: usize) -> Result<Vec<Decision>> {
        let mut conditions = Conditions::default();
        conditions.add("at_ms >= ?", since_ms);
        let sql = format!(
            "SELECT id, at_ms, rule, action, node, reason, evidence, outcome, situation
             FROM decisions {}
             ORDER BY at_ms DESC, id DESC LIMIT {}",
            conditions.where_clause(),
            sql_limit(limit),
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(&conditions.values), |row| {
            Ok(Decision {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                rule: row.get(2)?,
                action: row.get(3)?,
                node: row.get(4)?,
                reason: row.get(5)?,
                evidence: json_column(row, 6)?,
                outcome: row.get(7)?,
                situation: row.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Newest first, optionally of one node and at or after `since_ms`; limit 0 = all.
    pub fn transitions(
        &self,
        node: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Transition>> {
        let mut conditions = Conditions::default();
        conditions.add("node = ?", node.map(str::to_owned));
        conditions.add("at_ms >= ?", since_ms);
        let sql = format!(
            "SELECT at_ms, node, from_state, to_state FROM transitions {}
             ORDER BY at_ms DESC, id DESC LIMIT {}",
            conditions.where_clause(),
            sql_limit(limit),
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(&conditions.values), |row| {
            Ok(Transition {
                at_ms: row.get(0)?,
                node: row.get(1)?,
                from: row.get(2)?,
                to: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Oldest first, in [since_ms, until_ms].
    pub fn samples(&self, node: Option<&str>, since_ms: i64, until_ms: i64) -> Result<Vec<Sample>> {
        let mut conditions = Conditions::default();
        conditions.add("at_ms >= ?", Some(since_ms));
        conditions.add("at_ms <= ?", Some(until_ms));
        conditions.add("node = ?", node.map(str::to_owned));
        let sql = format!(
            "SELECT at_ms, node, last_committed, queries_per_second, flow_control_paused,
                 recv_queue, send_queue, cert_failures, bf_aborts, connections, replicated,
                 replication_bytes_per_second
             FROM samples {} ORDER BY at_ms, id",
            conditions.where_clause(),
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params_from_iter(&conditions.values), |row| {
            Ok(Sample {
                at_ms: row.get(0)?,
                node: row.get(1)?,
                last_committed: row.get(2)?,
                queries_per_second: rate_column(row, 3)?,
                flow_control_paused: rate_column(row, 4)?,
                recv_queue: row.get(5)?,
                send_queue: row.get(6)?,
                cert_failures: row.get(7)?,
                bf_aborts: row.get(8)?,
                connections: row.get(9)?,
                replicated: row.get(10)?,
                replication_bytes_per_second: rate_column(row, 11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes events, decisions, transitions and samples older than `older_than_ms`;
    /// returns rows deleted. Never deletes the high-water mark, the lease or unconsumed
    /// approvals.
    ///
    /// Consumed approvals older than `older_than_ms` go too: they can no longer
    /// authorise anything, and their use is recorded as decisions.
    pub fn prune(&self, older_than_ms: i64) -> Result<usize> {
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        for sql in [
            "DELETE FROM events WHERE at_ms < ?1",
            "DELETE FROM decisions WHERE at_ms < ?1",
            "DELETE FROM transitions WHERE at_ms < ?1",
            "DELETE FROM samples WHERE at_ms < ?1",
            "DELETE FROM approvals WHERE at_ms < ?1 AND consumed = 1",
        ] {
            deleted += transaction.execute(sql, [older_than_ms])?;
        }
        transaction.commit()?;
        Ok(deleted)
    }
}

fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
    })
}

/// SQLite stores a NaN as NULL; read it back as NaN.
fn rate_column(row: &Row<'_>, index: usize) -> rusqlite::Result<f64> {
    Ok(row.get::<_, Option<f64>>(index)?.unwrap_or(f64::NAN))
}
