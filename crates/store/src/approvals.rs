//! Operator approvals of plan steps that policy says need confirmation. The controller
//! consumes an approval when it acts on it, so one approval authorises one action.

use rusqlite::{params, OptionalExtension};

use crate::{Approval, Result, Store, StoreError};

impl Store {
    /// An operator approved a plan step (e.g. "bootstrap node1") that policy says needs
    /// confirmation; `force` also allows bootstrapping below the high-water mark.
    pub fn approve(&self, step: &str, force: bool, at_ms: i64) -> Result<i64> {
        let connection = self.writable()?;
        connection.execute(
            "INSERT INTO approvals (at_ms, step, force) VALUES (?1, ?2, ?3)",
            params![at_ms, step, force],
        )?;
        Ok(connection.last_insert_rowid())
    }

    /// The newest unconsumed approval for `step` no older than `since_ms`.
    pub fn approval(&self, step: &str, since_ms: i64) -> Result<Option<Approval>> {
        Ok(self
            .connection
            .query_row(
                "SELECT id, at_ms, step, force FROM approvals
                 WHERE step = ?1 AND at_ms >= ?2 AND consumed = 0
                 ORDER BY at_ms DESC, id DESC LIMIT 1",
                params![step, since_ms],
                |row| {
                    Ok(Approval {
                        id: row.get(0)?,
                        at_ms: row.get(1)?,
                        step: row.get(2)?,
                        force: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Marks approval `id` used. Fails with [`StoreError::ApprovalUnavailable`] if it
    /// does not exist or was already consumed, so one approval never authorises two
    /// actions.
    pub fn consume_approval(&self, id: i64) -> Result<()> {
        let changed = self.writable()?.execute(
            "UPDATE approvals SET consumed = 1 WHERE id = ?1 AND consumed = 0",
            [id],
        )?;
        if changed == 0 {
            return Err(StoreError::ApprovalUnavailable { id });
        }
        Ok(())
    }
}
