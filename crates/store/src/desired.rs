//! Desired node state: which nodes an operator stopped on purpose (`galley stop`), so
//! that the controller does not start them again, until `galley start`.

use rusqlite::params;

use crate::{Result, Store};

impl Store {
    /// Records that `node` should run (or stay stopped).
    pub fn set_desired(&self, node: &str, running: bool, at_ms: i64) -> Result<()> {
        self.writable()?.execute(
            "INSERT INTO desired (node, running, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (node) DO UPDATE SET running = excluded.running, at_ms = excluded.at_ms",
            params![node, running, at_ms],
        )?;
        Ok(())
    }

    /// The nodes an operator stopped on purpose.
    pub fn stopped_on_purpose(&self) -> Result<Vec<String>> {
        let mut statement = self
            .connection
            .prepare("SELECT node FROM desired WHERE running = 0 ORDER BY node")?;
        let nodes = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(nodes)
    }
}
