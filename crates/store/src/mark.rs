//! The high-water mark: the highest `wsrep_last_committed` ever seen, which only rises,
//! except by an operator's recorded reset.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::{HighWaterMark, NewEvent, Result, Severity, Store};

impl Store {
    pub fn high_water_mark(&self) -> Result<Option<HighWaterMark>> {
        Ok(read_mark(&self.connection)?)
    }

    /// Raises the mark if `seqno` is higher than the stored one for the same uuid, or if
    /// none is stored. If the uuid differs from the stored one, it does NOT replace it
    /// (returns Ok(false)); the caller decides. Returns true when raised.
    pub fn raise_high_water_mark(&self, mark: &HighWaterMark) -> Result<bool> {
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let raise = match read_mark(&transaction)? {
            None => true,
            Some(stored) => stored.uuid == mark.uuid && mark.seqno > stored.seqno,
        };
        if raise {
            write_mark(&transaction, mark)?;
            transaction.commit()?;
        }
        Ok(raise)
    }

    /// Operator override (after a forced bootstrap below the mark or a new cluster):
    /// replaces the mark unconditionally and records an event of kind
    /// "high_water_mark_reset" with `reason`.
    ///
    /// The event is a warning whose message names the old and the new mark; both
    /// changes commit together.
    pub fn reset_high_water_mark(
        &self,
        mark: Option<&HighWaterMark>,
        reason: &str,
        at_ms: i64,
    ) -> Result<()> {
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let old = read_mark(&transaction)?;
        transaction.execute("DELETE FROM high_water_mark", [])?;
        if let Some(mark) = mark {
            write_mark(&transaction, mark)?;
        }
        let describe = |mark: Option<&HighWaterMark>| {
            mark.map_or_else(|| "none".to_owned(), HighWaterMark::to_string)
        };
        let event = NewEvent {
            at_ms,
            severity: Severity::Warning,
            kind: "high_water_mark_reset".to_owned(),
            node: None,
            message: format!(
                "high-water mark reset from {} to {}: {reason}",
                describe(old.as_ref()),
                describe(mark),
            ),
        };
        transaction.execute(
            "INSERT INTO events (at_ms, severity, kind, node, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                event.at_ms,
                event.severity,
                event.kind,
                event.node,
                event.message
            ],
        )?;
        transaction.commit()?;
        Ok(())
    }
}

fn read_mark(connection: &Connection) -> rusqlite::Result<Option<HighWaterMark>> {
    connection
        .query_row(
            "SELECT uuid, seqno, node, at_ms FROM high_water_mark WHERE id = 1",
            [],
            |row| {
                Ok(HighWaterMark {
                    uuid: row.get(0)?,
                    seqno: row.get(1)?,
                    node: row.get(2)?,
                    at_ms: row.get(3)?,
                })
            },
        )
        .optional()
}

fn write_mark(connection: &Connection, mark: &HighWaterMark) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT OR REPLACE INTO high_water_mark (id, uuid, seqno, node, at_ms) VALUES (1, ?1, ?2, ?3, ?4)",
        params![mark.uuid, mark.seqno, mark.node, mark.at_ms],
    )?;
    Ok(())
}
