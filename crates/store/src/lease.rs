//! The lease: at most one actor (the controller, or `galley recover`) acts on the
//! cluster at a time. It expires unless its holder renews it, so a crashed holder does
//! not block the others for longer than its time to live.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use crate::{Result, Store, StoreError};

impl Store {
    /// Atomically takes or renews the lease for `owner` until now_ms + ttl_ms, if it is
    /// free, expired, or already held by `owner` (use BEGIN IMMEDIATE). Returns whether
    /// `owner` holds it now.
    ///
    /// A lease is held while `now_ms < expires_ms`.
    pub fn acquire_lease(&self, owner: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        if ttl_ms <= 0 {
            return Err(StoreError::InvalidLeaseTtl { ttl_ms });
        }
        let transaction =
            Transaction::new_unchecked(self.writable()?, TransactionBehavior::Immediate)?;
        let current: Option<(String, i64)> = transaction
            .query_row(
                "SELECT owner, expires_ms FROM lease WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let free = match &current {
            None => true,
            Some((holder, expires_ms)) => holder == owner || *expires_ms <= now_ms,
        };
        if free {
            transaction.execute(
                "INSERT OR REPLACE INTO lease (id, owner, expires_ms) VALUES (1, ?1, ?2)",
                params![owner, now_ms.saturating_add(ttl_ms)],
            )?;
            transaction.commit()?;
        }
        Ok(free)
    }

    /// Gives the lease up if `owner` holds it; otherwise does nothing.
    pub fn release_lease(&self, owner: &str) -> Result<()> {
        self.writable()?
            .execute("DELETE FROM lease WHERE owner = ?1", [owner])?;
        Ok(())
    }

    /// The current holder and its expiry, if not expired at now_ms.
    pub fn lease_holder(&self, now_ms: i64) -> Result<Option<(String, i64)>> {
        Ok(self
            .connection
            .query_row(
                "SELECT owner, expires_ms FROM lease WHERE id = 1 AND expires_ms > ?1",
                [now_ms],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }
}
