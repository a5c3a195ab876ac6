//! The high-water marks (rule 10): one per cluster history, the highest
//! `wsrep_last_committed` ever seen in it, which only rises; and the history the cluster
//! accepted. A history seen for the first time gets its own mark beside the others and
//! is never accepted by itself, except the very first one; a mark is lowered, or another
//! history accepted, only by an operator's recorded decision.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::history::insert_event;
use crate::{
    HighWaterMark, HighWaterMarks, MarkChange, MarkRaise, NewEvent, Result, Severity, Store,
    StoreError,
};

impl Store {
    /// Every history's mark: the accepted one and the others (by UUID).
    pub fn high_water_marks(&self) -> Result<HighWaterMarks> {
        Ok(read_marks(&self.connection)?)
    }

    /// Raises the mark of `mark.uuid`'s history when `mark.seqno` is higher than its
    /// stored mark, and records the mark of a history seen for the first time. It never
    /// touches another history's mark nor which history is accepted, except that the
    /// first history the store ever sees becomes the accepted one ([`MarkRaise::Adopted`],
    /// recorded as a change). A new history beside the accepted one
    /// ([`MarkRaise::NewHistory`]) gets a warning event.
    pub fn raise_high_water_mark(&self, mark: &HighWaterMark) -> Result<MarkRaise> {
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let raise = match read_mark(&transaction, &mark.uuid)? {
            Some(stored) if mark.seqno <= stored.seqno => return Ok(MarkRaise::Unchanged),
            Some(_) => MarkRaise::Raised,
            None => match accepted_uuid(&transaction)? {
                None => MarkRaise::Adopted,
                Some(_) => MarkRaise::NewHistory,
            },
        };
        write_mark(&transaction, mark)?;
        let said = match raise {
            MarkRaise::Adopted => {
                accept(
                    &transaction,
                    mark,
                    "the first cluster history seen",
                    None,
                    mark.at_ms,
                )?;
                Some((
                    Severity::Info,
                    "cluster_history_adopted",
                    format!(
                        "cluster history {} is this cluster's (the first seen, at seqno {} on {})",
                        mark.uuid, mark.seqno, mark.node
                    ),
                ))
            }
            MarkRaise::NewHistory => {
                let accepted = accepted_uuid(&transaction)?.unwrap_or_default();
                Some((
                    Severity::Warning,
                    "new_cluster_history",
                    format!(
                        "another cluster history, {}, appeared at seqno {} on {}, beside the accepted history {accepted}: its mark is kept apart, and only an operator can accept it",
                        mark.uuid, mark.seqno, mark.node
                    ),
                ))
            }
            MarkRaise::Raised | MarkRaise::Unchanged => None,
        };
        if let Some((severity, kind, message)) = said {
            insert_event(
                &transaction,
                &NewEvent {
                    at_ms: mark.at_ms,
                    severity,
                    kind: kind.to_owned(),
                    node: Some(mark.node.clone()),
                    message,
                },
            )?;
        }
        transaction.commit()?;
        Ok(raise)
    }

    /// An operator's decision (a forced bootstrap, or accepting the running Primary
    /// component): `mark.uuid` becomes the accepted history and its mark is set to
    /// `mark.seqno`, lower than before or not. Other histories keep their marks, the
    /// previously accepted one too. Recorded for good as a [`MarkChange`] with `reason`,
    /// and as a warning event of kind "high_water_mark_reset"; both commit together.
    /// Fails with [`StoreError::MissingReason`] when `reason` is blank.
    pub fn accept_history(&self, mark: &HighWaterMark, reason: &str, at_ms: i64) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(StoreError::MissingReason);
        }
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let old = read_mark(&transaction, &mark.uuid)?;
        let previous = accepted_uuid(&transaction)?.filter(|uuid| *uuid != mark.uuid);
        write_mark(&transaction, mark)?;
        accept(
            &transaction,
            mark,
            reason,
            old.as_ref().map(|m| m.seqno),
            at_ms,
        )?;
        let replaced = previous
            .as_ref()
            .map_or_else(String::new, |uuid| format!(", accepted in place of {uuid}"));
        insert_event(
            &transaction,
            &NewEvent {
                at_ms,
                severity: Severity::Warning,
                kind: "high_water_mark_reset".to_owned(),
                node: None,
                message: format!(
                    "high-water mark of cluster history {} set from {} to {}{replaced}: {reason}",
                    mark.uuid,
                    old.as_ref()
                        .map_or_else(|| "none".to_owned(), HighWaterMark::to_string),
                    mark,
                ),
            },
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// The recorded changes of the accepted history and its mark, newest first.
    pub fn mark_changes(&self) -> Result<Vec<MarkChange>> {
        let mut statement = self.connection.prepare(
            "SELECT id, at_ms, uuid, from_seqno, to_seqno, previous_history, reason
             FROM mark_changes ORDER BY id DESC",
        )?;
        let changes = statement
            .query_map([], |row| {
                Ok(MarkChange {
                    id: row.get(0)?,
                    at_ms: row.get(1)?,
                    uuid: row.get(2)?,
                    from_seqno: row.get(3)?,
                    to_seqno: row.get(4)?,
                    previous_history: row.get(5)?,
                    reason: row.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(changes)
    }
}

/// Makes `mark.uuid` the accepted history and records the change at `at_ms`.
/// `from_seqno` is its mark before.
fn accept(
    connection: &Connection,
    mark: &HighWaterMark,
    reason: &str,
    from_seqno: Option<i64>,
    at_ms: i64,
) -> rusqlite::Result<()> {
    let previous = accepted_uuid(connection)?.filter(|uuid| *uuid != mark.uuid);
    connection.execute(
        "INSERT OR REPLACE INTO accepted_history (id, uuid, at_ms) VALUES (1, ?1, ?2)",
        params![mark.uuid, at_ms],
    )?;
    connection.execute(
        "INSERT INTO mark_changes (at_ms, uuid, from_seqno, to_seqno, previous_history, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at_ms, mark.uuid, from_seqno, mark.seqno, previous, reason],
    )?;
    Ok(())
}

fn accepted_uuid(connection: &Connection) -> rusqlite::Result<Option<String>> {
    connection
        .query_row(
            "SELECT uuid FROM accepted_history WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()
}

fn read_marks(connection: &Connection) -> rusqlite::Result<HighWaterMarks> {
    let accepted = accepted_uuid(connection)?;
    let mut statement =
        connection.prepare("SELECT uuid, seqno, node, at_ms FROM history_marks ORDER BY uuid")?;
    let mut marks = HighWaterMarks::default();
    for mark in statement.query_map([], mark_from_row)? {
        let mark = mark?;
        if accepted.as_deref() == Some(mark.uuid.as_str()) {
            marks.accepted = Some(mark);
        } else {
            marks.others.push(mark);
        }
    }
    Ok(marks)
}

fn read_mark(connection: &Connection, uuid: &str) -> rusqlite::Result<Option<HighWaterMark>> {
    connection
        .query_row(
            "SELECT uuid, seqno, node, at_ms FROM history_marks WHERE uuid = ?1",
            [uuid],
            mark_from_row,
        )
        .optional()
}

fn mark_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<HighWaterMark> {
    Ok(HighWaterMark {
        uuid: row.get(0)?,
        seqno: row.get(1)?,
        node: row.get(2)?,
        at_ms: row.get(3)?,
    })
}

fn write_mark(connection: &Connection, mark: &HighWaterMark) -> rusqlite::Result<()> {
    connection.execute(
        // An upsert, not REPLACE: the accepted history refers to this row.
        "INSERT INTO history_marks (uuid, seqno, node, at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (uuid) DO UPDATE
         SET seqno = excluded.seqno, node = excluded.node, at_ms = excluded.at_ms",
        params![mark.uuid, mark.seqno, mark.node, mark.at_ms],
    )?;
    Ok(())
}
